//! What `hisp store copy` and `hisp store check` move and compare: every
//! table of the store with its columns, in one list. A column added to the
//! schema is one line here; the test `every_table_and_column_of_both_schemas_is_listed_or_left_out`
//! fails until it is.
//!
//! Tables are listed parents first, so that a table's rows are written
//! after the rows they refer to (PostgreSQL checks each foreign key as the
//! row goes in).

/// How a column's values are stored, alike in both backends (SQLite's
/// storage class, PostgreSQL's type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `INTEGER` / `bigint`.
    Int,
    /// A flag: `INTEGER` 0 or 1 / `boolean`.
    Bool,
    /// `TEXT` / `text`.
    Text,
    /// A small `BLOB` / `bytea` (certificates, keys, hashes), read whole.
    Bytes,
    /// Message bytes (`BLOB` / `bytea`), possibly tens of MiB: streamed
    /// from SQLite in pieces, never held whole on the way.
    Body,
}

/// One copied column.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Column {
    /// Its name, the same in both backends.
    pub(crate) name: &'static str,
    /// How its values are stored.
    pub(crate) kind: Kind,
}

/// One copied table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Table {
    /// Its name, the same in both backends.
    pub(crate) name: &'static str,
    /// The columns copied and compared, in this order.
    pub(crate) columns: &'static [Column],
    /// The primary key column, the order rows are read, written and hashed in.
    pub(crate) key: &'static str,
    /// Whether PostgreSQL's `id` is an identity column, moved past the
    /// highest copied id after the copy.
    pub(crate) identity: bool,
}

impl Table {
    /// Whether the table holds message bytes (read in small batches).
    pub(crate) fn has_body(&self) -> bool {
        self.columns.iter().any(|c| c.kind == Kind::Body)
    }

    /// The key column.
    pub(crate) fn key_column(&self) -> &'static Column {
        self.columns
            .iter()
            .find(|c| c.name == self.key)
            .expect("every table's key is one of its columns (the schema test checks it)")
    }
}

const fn c(name: &'static str, kind: Kind) -> Column {
    Column { name, kind }
}

use Kind::{Body, Bool, Bytes, Int, Text};

/// Every table of the store, parents first.
pub(crate) const TABLES: &[Table] = &[
    Table {
        name: "domains",
        key: "id",
        identity: true,
        columns: &[c("id", Int), c("name", Text), c("added_at", Int)],
    },
    Table {
        name: "addresses",
        key: "id",
        identity: true,
        columns: &[
            c("id", Int),
            c("domain_id", Int),
            c("local_part", Text),
            c("added_at", Int),
        ],
    },
    Table {
        name: "certificates",
        key: "id",
        identity: true,
        columns: &[
            c("id", Int),
            c("address_id", Int),
            c("domain_id", Int),
            c("der", Bytes),
            c("private_key", Bytes),
            c("usage", Text),
            c("subject", Text),
            c("issuer", Text),
            c("serial", Text),
            c("fingerprint", Bytes),
            c("not_before", Int),
            c("not_after", Int),
            c("added_at", Int),
        ],
    },
    Table {
        name: "anchors",
        key: "id",
        identity: true,
        columns: &[
            c("id", Int),
            c("domain_id", Int),
            c("direction", Text),
            c("der", Bytes),
            c("subject", Text),
            c("issuer", Text),
            c("serial", Text),
            c("fingerprint", Bytes),
            c("not_before", Int),
            c("not_after", Int),
            c("added_at", Int),
        ],
    },
    Table {
        name: "bundles",
        key: "id",
        identity: true,
        columns: &[
            c("id", Int),
            c("domain_id", Int),
            c("kind", Text),
            c("source", Text),
            c("direction", Text),
            c("refresh_secs", Int),
            c("last_good", Bytes),
            c("last_good_at", Int),
            c("last_fetched_at", Int),
            c("last_error", Text),
            c("added_at", Int),
        ],
    },
    Table {
        name: "users",
        key: "id",
        identity: true,
        columns: &[
            c("id", Int),
            c("name", Text),
            c("password_hash", Text),
            c("request_final_delivery", Bool),
            c("added_at", Int),
        ],
    },
    Table {
        name: "user_grants",
        key: "id",
        identity: true,
        columns: &[
            c("id", Int),
            c("user_id", Int),
            c("address_id", Int),
            c("domain_id", Int),
            c("added_at", Int),
        ],
    },
    Table {
        name: "messages",
        key: "id",
        identity: true,
        columns: &[
            c("id", Int),
            c("direction", Text),
            c("message_id", Text),
            c("envelope_from", Text),
            c("received_at", Int),
            c("size", Int),
            c("body", Body),
        ],
    },
    Table {
        name: "message_tracking",
        key: "message",
        identity: false,
        columns: &[c("message", Int), c("expect", Text), c("subject", Text)],
    },
    Table {
        name: "queue",
        key: "id",
        identity: true,
        columns: &[
            c("id", Int),
            c("message", Int),
            c("state", Text),
            c("attempts", Int),
            c("next_attempt_at", Int),
            c("lease_token", Text),
            c("lease_until", Int),
            c("last_error", Text),
            c("updated_at", Int),
            c("queued_ms", Int),
            c("first_attempt_ms", Int),
            c("last_attempt_ms", Int),
        ],
    },
    Table {
        name: "recipients",
        key: "id",
        identity: true,
        columns: &[
            c("id", Int),
            c("message", Int),
            c("address", Text),
            c("state", Text),
            c("queued_at", Int),
            c("relayed_at", Int),
            c("processed_at", Int),
            c("dispatched_at", Int),
            c("delivered_at", Int),
            c("failed_at", Int),
            c("reason", Text),
            c("notified_at", Int),
            c("status", Text),
        ],
    },
    Table {
        name: "mailbox",
        key: "id",
        identity: true,
        columns: &[
            c("id", Int),
            c("address", Text),
            c("folder", Text),
            c("home", Text),
            c("message_id", Text),
            c("from_field", Text),
            c("subject", Text),
            c("date", Int),
            c("size", Int),
            c("unread", Bool),
            c("received_at", Int),
            c("body", Body),
        ],
    },
    Table {
        name: "mailbox_senders",
        key: "entry",
        identity: false,
        columns: &[c("entry", Int), c("address", Text), c("name", Text)],
    },
    Table {
        name: "quarantine",
        key: "id",
        identity: true,
        columns: &[
            c("id", Int),
            c("message_id", Text),
            c("envelope_from", Text),
            c("recipients", Text),
            c("received_at", Int),
            c("reason", Text),
            c("detail", Text),
            c("size", Int),
            c("quarantined_at", Int),
            c("message", Int),
            c("body", Body),
        ],
    },
    // `id` is no identity in PostgreSQL: the writer picks the next id under
    // the chain's lock, since the id is hashed into the chain.
    Table {
        name: "audit_events",
        key: "id",
        identity: false,
        columns: &[
            c("id", Int),
            c("at", Int),
            c("kind", Text),
            c("message_id", Text),
            c("message", Int),
            c("detail", Text),
            c("address", Text),
            c("hash", Bytes),
        ],
    },
    Table {
        name: "portal_users",
        key: "id",
        identity: true,
        columns: &[
            c("id", Int),
            c("address_id", Int),
            c("password_hash", Text),
            c("email", Text),
            c("notify", Bool),
            c("disabled_at", Int),
            c("added_at", Int),
        ],
    },
    Table {
        name: "portal_notices",
        key: "message",
        identity: false,
        columns: &[c("message", Int), c("owner", Text), c("about", Int)],
    },
    Table {
        name: "queued_once",
        key: "mark",
        identity: false,
        columns: &[c("mark", Text), c("message", Int), c("at", Int)],
    },
];

/// Tables of either backend that are not copied, with the reason.
// Read by the schema test, which holds both schemas to these lists.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const LEFT_OUT_TABLES: &[(&str, &str)] = &[
    (
        "schema_version",
        "each backend's own migration history; the destination is migrated by its own files",
    ),
    (
        "store_counters",
        "PostgreSQL only: counters moved by its triggers (the directory version)",
    ),
];

/// Columns of one backend only, not copied nor compared, with the reason.
/// `(backend, table, column, reason)`; backend is `"postgres"` or `"sqlite"`.
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) const LEFT_OUT_COLUMNS: &[(&str, &str, &str, &str)] = &[
    ("postgres", "addresses", "local_part_key", GENERATED_KEY),
    ("postgres", "messages", "envelope_from_key", GENERATED_KEY),
    ("postgres", "recipients", "address_key", GENERATED_KEY),
    ("postgres", "mailbox", "address_key", GENERATED_KEY),
    ("postgres", "mailbox_senders", "address_key", GENERATED_KEY),
    ("postgres", "audit_events", "address_key", GENERATED_KEY),
    ("postgres", "portal_notices", "owner_key", GENERATED_KEY),
    (
        "postgres",
        "queue",
        "lease_owner",
        "the instance holding a lease; SQLite has one process, so copied leases have no owner \
         and simply run out",
    ),
];

/// Why the `*_key` columns are left out.
#[cfg_attr(not(test), allow(dead_code))]
const GENERATED_KEY: &str =
    "generated by PostgreSQL from the address beside it (lower-cased, for comparing)";

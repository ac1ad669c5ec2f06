-- The directory: local domains, their addresses, the certificates (with
-- private keys) of both, trust anchors and trust bundles.
--
-- Conventions: times are Unix seconds (UTC); fingerprints are the 32 bytes
-- of SHA-256 over the DER; serials are lower-case hex without leading zeros.

CREATE TABLE domains (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE CHECK (name <> '' AND name = lower(name)),
    added_at   INTEGER NOT NULL
);

-- The local part keeps its letter case but compares without it (NOCASE), so
-- Alice@d and alice@d are one address.
CREATE TABLE addresses (
    id         INTEGER PRIMARY KEY,
    domain_id  INTEGER NOT NULL REFERENCES domains(id) ON DELETE RESTRICT,
    local_part TEXT NOT NULL COLLATE NOCASE CHECK (local_part <> ''),
    added_at   INTEGER NOT NULL,
    UNIQUE (domain_id, local_part)
);

-- Certificates of local addresses or domains (exactly one owner), with the
-- private key (PKCS#8 PEM) when hisp signs or decrypts with it.
CREATE TABLE certificates (
    id          INTEGER PRIMARY KEY,
    address_id  INTEGER REFERENCES addresses(id) ON DELETE CASCADE,
    domain_id   INTEGER REFERENCES domains(id) ON DELETE CASCADE,
    der         BLOB NOT NULL,
    private_key BLOB,
    usage       TEXT NOT NULL CHECK (usage IN ('both', 'signing', 'encryption')),
    subject     TEXT NOT NULL,
    issuer      TEXT NOT NULL,
    serial      TEXT NOT NULL,
    fingerprint BLOB NOT NULL UNIQUE CHECK (length(fingerprint) = 32),
    not_before  INTEGER NOT NULL,
    not_after   INTEGER NOT NULL,
    added_at    INTEGER NOT NULL,
    CHECK ((address_id IS NULL) <> (domain_id IS NULL))
);
CREATE INDEX certificates_address ON certificates(address_id);
CREATE INDEX certificates_domain ON certificates(domain_id);

CREATE TABLE anchors (
    id          INTEGER PRIMARY KEY,
    domain_id   INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    direction   TEXT NOT NULL CHECK (direction IN ('in', 'out', 'both')),
    der         BLOB NOT NULL,
    subject     TEXT NOT NULL,
    issuer      TEXT NOT NULL,
    serial      TEXT NOT NULL,
    fingerprint BLOB NOT NULL CHECK (length(fingerprint) = 32),
    not_before  INTEGER NOT NULL,
    not_after   INTEGER NOT NULL,
    added_at    INTEGER NOT NULL,
    UNIQUE (domain_id, fingerprint)
);

CREATE TABLE bundles (
    id              INTEGER PRIMARY KEY,
    domain_id       INTEGER NOT NULL REFERENCES domains(id) ON DELETE CASCADE,
    kind            TEXT NOT NULL CHECK (kind IN ('url', 'file')),
    source          TEXT NOT NULL,
    direction       TEXT NOT NULL CHECK (direction IN ('in', 'out', 'both')),
    refresh_secs    INTEGER NOT NULL CHECK (refresh_secs >= 60),
    last_good       BLOB,
    last_good_at    INTEGER,
    last_fetched_at INTEGER,
    last_error      TEXT,
    added_at        INTEGER NOT NULL,
    UNIQUE (domain_id, source)
);

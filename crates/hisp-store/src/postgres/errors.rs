//! PostgreSQL's failures as the store's backend-neutral
//! [`StoreError::Database`]: SQLSTATE codes and broken connections
//! classified into [`DatabaseErrorKind`].

use std::error::Error as _;

use ::postgres::error::SqlState;

use crate::error::{DatabaseErrorKind, StoreError};

impl StoreError {
    /// A closure wrapping a `postgres` error with what the store was doing,
    /// for `map_err`.
    pub(crate) fn postgres(context: &'static str) -> impl FnOnce(::postgres::Error) -> StoreError {
        move |source| StoreError::Database {
            context,
            kind: kind_of(&source),
            message: describe(&source),
        }
    }
}

/// The kind of a failure of the `postgres` client: by the server's SQLSTATE
/// when it sent one ([`kind_of_state`]); else a connection that broke, was
/// closed or could not be made (an I/O error, a connect timeout) is
/// [`DatabaseErrorKind::ConnectionLost`], and the rest (a TLS handshake
/// refused, a value that does not convert) is
/// [`DatabaseErrorKind::Other`].
pub(crate) fn kind_of(e: &::postgres::Error) -> DatabaseErrorKind {
    if let Some(code) = e.code() {
        return kind_of_state(code);
    }
    let io = e
        .source()
        .is_some_and(|s| s.downcast_ref::<std::io::Error>().is_some());
    if e.is_closed() || io {
        DatabaseErrorKind::ConnectionLost
    } else {
        DatabaseErrorKind::Other
    }
}

/// The kind of a failure the server reported with `code` (PostgreSQL's
/// documentation, appendix A, "PostgreSQL Error Codes"):
///
/// - 40001 serialization_failure and 40P01 deadlock_detected: the
///   transaction was rolled back because of another one; run again, it
///   reads the new data.
/// - 55P03 lock_not_available (`NOWAIT`, `lock_timeout`): busy.
/// - class 08 (connection exception), 57P01 admin_shutdown, 57P02
///   crash_shutdown and 57P03 cannot_connect_now (a server starting,
///   stopping or in recovery): connection lost.
/// - class 23 (integrity constraint violation: unique, foreign key,
///   check, not null, exclusion; and the audit log's append-only
///   triggers): constraint.
/// - everything else: other.
pub(crate) fn kind_of_state(code: &SqlState) -> DatabaseErrorKind {
    let code = code.code();
    match code {
        "40001" | "40P01" => DatabaseErrorKind::Serialization,
        "55P03" => DatabaseErrorKind::Busy,
        "57P01" | "57P02" | "57P03" => DatabaseErrorKind::ConnectionLost,
        _ if code.starts_with("08") => DatabaseErrorKind::ConnectionLost,
        _ if code.starts_with("23") => DatabaseErrorKind::Constraint,
        _ => DatabaseErrorKind::Other,
    }
}

/// The error in words: the server's message with its SQLSTATE (and detail),
/// or the client's with its cause. (`postgres::Error` alone says only
/// "db error".)
pub(crate) fn describe(e: &::postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            text.push_str(": ");
            text.push_str(detail);
        }
        return text;
    }
    match e.source() {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(code: &str) -> DatabaseErrorKind {
        kind_of_state(&SqlState::from_code(code))
    }

    #[test]
    fn serialization_failure_and_deadlock_are_serialization_and_retryable() {
        assert_eq!(kind("40001"), DatabaseErrorKind::Serialization);
        assert_eq!(kind("40P01"), DatabaseErrorKind::Serialization);
        assert!(kind("40001").is_retryable());
    }

    #[test]
    fn lock_not_available_is_busy() {
        assert_eq!(kind("55P03"), DatabaseErrorKind::Busy);
        assert!(kind("55P03").is_retryable());
    }

    #[test]
    fn connection_exceptions_and_shutdowns_are_connection_lost() {
        for code in [
            "08000", "08003", "08006", "08001", "08P01", "57P01", "57P02", "57P03",
        ] {
            assert_eq!(kind(code), DatabaseErrorKind::ConnectionLost, "{code}");
        }
        assert!(kind("57P01").is_retryable());
    }

    #[test]
    fn integrity_violations_are_constraints_and_not_retried() {
        for code in ["23505", "23503", "23514", "23502", "23P01", "23000"] {
            assert_eq!(kind(code), DatabaseErrorKind::Constraint, "{code}");
        }
        assert!(!kind("23505").is_retryable());
    }

    #[test]
    fn everything_else_is_other() {
        // syntax error, undefined table, query canceled, invalid password,
        // disk full.
        for code in ["42601", "42P01", "57014", "28P01", "53100", "40002"] {
            assert_eq!(kind(code), DatabaseErrorKind::Other, "{code}");
        }
    }
}

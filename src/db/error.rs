//! Database errors: what the database layer returns ([`DbError`]), and the one classification
//! of a database error ([`ErrorClass`]) every caller relies on — a 503, a retried transaction, a
//! run refused with a 422.
//!
//! A PostgreSQL error is classified by its SQLSTATE, never by its message: the message is
//! translated under a non-English `lc_messages`. diesel 2.3 does not expose the SQLSTATE; the
//! patched copies in `vendor/` add `DatabaseErrorInformation::sqlstate` (vendor/README.md). An
//! error that reached no server (a lost connection, an I/O error) has no SQLSTATE, and is
//! classified by its type.

use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::pooled_connection::deadpool::PoolError;

use super::{describe_pool_error, strip_credentials};

/// What a database error means for the work that met it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// The transaction lost to a concurrent one and was rolled back: running it again can
    /// succeed at once. 40001 serialization_failure (also a standby's conflict with recovery),
    /// 40P01 deadlock_detected.
    Conflict,
    /// The database cannot serve now — an outage, a timeout, a lost connection — and a later
    /// attempt can succeed (503 with `Retry-After`). 55P03 lock_not_available (`NOWAIT`,
    /// `lock_timeout`); class 57 operator intervention: 57014 query_canceled
    /// (`statement_timeout`, a cancel request), 57P01 admin_shutdown, 57P02 crash_shutdown,
    /// 57P03 cannot_connect_now, 57P04 database_dropped, 57P05 idle_session_timeout; 25P03
    /// idle_in_transaction_session_timeout, 25P04 transaction_timeout; class 08 connection
    /// exception. Without a SQLSTATE: no answer from the server, a broken transaction manager,
    /// no connection from the pool.
    Unavailable,
    /// The data written is refused, not the database's state: class 22 data exception (a value
    /// too long, out of range, not valid input for its type, not valid in the encoding), 23502
    /// not_null_violation, 23503 foreign_key_violation, 23505 unique_violation, 23514
    /// check_violation.
    Data,
    /// Anything else: a bug, a misconfiguration, a schema that does not match (500).
    Other,
}

impl ErrorClass {
    /// The class of a diesel error: by its SQLSTATE when the server sent one, else by its kind.
    pub fn of(err: &DieselError) -> Self {
        match err {
            DieselError::DatabaseError(kind, info) => match info.sqlstate() {
                Some(code) => Self::of_sqlstate(code),
                None => Self::of_kind(kind),
            },
            DieselError::BrokenTransactionManager => ErrorClass::Unavailable,
            _ => ErrorClass::Other,
        }
    }

    /// The class of a SQLSTATE code (PostgreSQL's errcodes.txt).
    pub fn of_sqlstate(code: &str) -> Self {
        let class = code.get(..2).unwrap_or_default();
        match code {
            "40001" | "40P01" => ErrorClass::Conflict,
            "55P03" | "25P03" | "25P04" => ErrorClass::Unavailable,
            _ if class == "57" || class == "08" => ErrorClass::Unavailable,
            "23502" | "23503" | "23505" | "23514" => ErrorClass::Data,
            _ if class == "22" => ErrorClass::Data,
            _ => ErrorClass::Other,
        }
    }

    /// A database error without a SQLSTATE: one that reached no server (diesel-async reports
    /// those as `UnableToSendCommand`), or one this service makes itself (a run deleted while
    /// being written is a `SerializationFailure`). The other kinds are diesel-async's names for
    /// SQLSTATEs, and classified as their codes are.
    fn of_kind(kind: &DatabaseErrorKind) -> Self {
        match kind {
            DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection => {
                ErrorClass::Unavailable
            }
            DatabaseErrorKind::SerializationFailure => ErrorClass::Conflict,
            DatabaseErrorKind::UniqueViolation
            | DatabaseErrorKind::ForeignKeyViolation
            | DatabaseErrorKind::CheckViolation
            | DatabaseErrorKind::NotNullViolation => ErrorClass::Data,
            _ => ErrorClass::Other,
        }
    }

    /// Whether a retry can cure it, now or later (a 503 rather than a 500).
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorClass::Conflict | ErrorClass::Unavailable)
    }
}

/// The SQLSTATE of a diesel error, when the server sent one.
pub fn sqlstate(err: &DieselError) -> Option<&str> {
    match err {
        DieselError::DatabaseError(_, info) => info.sqlstate(),
        _ => None,
    }
}

/// Whether a database error is one a retry can cure (an outage, a timeout, a lost connection,
/// a lost race).
pub fn is_transient(err: &DieselError) -> bool {
    ErrorClass::of(err).is_transient()
}

/// Whether a transaction that failed with `err` should run again at once (it lost a race).
pub fn is_retryable(err: &DieselError) -> bool {
    ErrorClass::of(err) == ErrorClass::Conflict
}

/// Whether `err` was caused by the data written rather than by the database's state.
pub fn is_data_error(err: &DieselError) -> bool {
    ErrorClass::of(err) == ErrorClass::Data
}

/// A failure of database work outside a request: no connection, a statement that failed, no
/// answer in time. Its text names the cause, never the URL or its credentials.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection from the pool (exhausted, or the database refused or did not answer).
    #[error("{}", describe_pool_error(.0))]
    Pool(#[from] PoolError),
    /// A statement failed.
    #[error("{}", strip_credentials(&.0.to_string()))]
    Query(#[from] DieselError),
    /// The work did not finish within its deadline.
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
}

impl DbError {
    /// The class of this failure: a pool error or a timeout is [`ErrorClass::Unavailable`] by
    /// type; a statement's error is classified by [`ErrorClass::of`].
    pub fn class(&self) -> ErrorClass {
        match self {
            DbError::Pool(_) | DbError::Timeout(_) => ErrorClass::Unavailable,
            DbError::Query(err) => ErrorClass::of(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use diesel::result::DatabaseErrorInformation;

    use super::*;

    /// A database error as a server sends it: a SQLSTATE and a message, here chosen to lie.
    struct Reported {
        code: &'static str,
        message: &'static str,
    }

    impl DatabaseErrorInformation for Reported {
        fn message(&self) -> &str {
            self.message
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            None
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
        fn sqlstate(&self) -> Option<&str> {
            Some(self.code)
        }
    }

    /// An error with `code` as diesel-async makes it: the kind it maps the code to, if any.
    fn reported(code: &'static str, message: &'static str) -> DieselError {
        let kind = match code {
            "23505" => DatabaseErrorKind::UniqueViolation,
            "23503" => DatabaseErrorKind::ForeignKeyViolation,
            "23502" => DatabaseErrorKind::NotNullViolation,
            "23514" => DatabaseErrorKind::CheckViolation,
            "23001" => DatabaseErrorKind::RestrictViolation,
            "23P01" => DatabaseErrorKind::ExclusionViolation,
            "40001" => DatabaseErrorKind::SerializationFailure,
            "25006" => DatabaseErrorKind::ReadOnlyTransaction,
            _ => DatabaseErrorKind::Unknown,
        };
        DieselError::DatabaseError(kind, Box::new(Reported { code, message }))
    }

    /// Every SQLSTATE the old message matching stood for, and its neighbours that it did not.
    const TABLE: &[(&str, ErrorClass)] = &[
        ("40001", ErrorClass::Conflict), // could not serialize access; conflict with recovery
        ("40P01", ErrorClass::Conflict), // deadlock detected
        ("55P03", ErrorClass::Unavailable), // lock timeout; could not obtain lock (NOWAIT)
        ("57014", ErrorClass::Unavailable), // statement timeout; user request
        ("57P01", ErrorClass::Unavailable), // terminating connection (administrator command)
        ("57P02", ErrorClass::Unavailable), // crash of another server process
        ("57P03", ErrorClass::Unavailable), // the database system is starting up, shutting down…
        ("57P04", ErrorClass::Unavailable), // terminating connection: conflict with recovery
        ("57P05", ErrorClass::Unavailable), // idle-session timeout
        ("25P03", ErrorClass::Unavailable), // idle-in-transaction timeout
        ("25P04", ErrorClass::Unavailable), // transaction timeout
        ("08006", ErrorClass::Unavailable), // connection failure
        ("08P01", ErrorClass::Unavailable), // protocol synchronization was lost
        ("22001", ErrorClass::Data),     // value too long
        ("22003", ErrorClass::Data),     // integer out of range
        ("22008", ErrorClass::Data),     // timestamp out of range
        ("22P02", ErrorClass::Data),     // invalid input syntax
        ("22007", ErrorClass::Data),     // invalid input syntax for type timestamp
        ("22P05", ErrorClass::Data),     // unsupported Unicode escape sequence
        ("22021", ErrorClass::Data),     // invalid byte sequence for encoding
        ("23502", ErrorClass::Data),     // not null
        ("23503", ErrorClass::Data),     // foreign key
        ("23505", ErrorClass::Data),     // unique
        ("23514", ErrorClass::Data),     // check
        ("23001", ErrorClass::Other),    // restrict: not a data error before either
        ("23P01", ErrorClass::Other),    // exclusion: not a data error before either
        ("25006", ErrorClass::Other),    // read-only transaction: logged, a 500
        ("40002", ErrorClass::Other),    // other transaction rollbacks were not retried
        ("40003", ErrorClass::Other),    //
        ("42P01", ErrorClass::Other),    // undefined table
        ("42601", ErrorClass::Other),    // syntax error
        ("53300", ErrorClass::Other),    // too many connections: only at login (the pool's)
        ("XX000", ErrorClass::Other),    // internal error
    ];

    #[test]
    fn every_sqlstate_has_its_class() {
        for &(code, class) in TABLE {
            assert_eq!(ErrorClass::of_sqlstate(code), class, "{code}");
            assert_eq!(ErrorClass::of(&reported(code, "")), class, "{code}");
        }
        assert_eq!(ErrorClass::of_sqlstate(""), ErrorClass::Other);
    }

    #[test]
    fn the_message_does_not_count() {
        // A translated message classifies as its code does…
        let deadlock = reported("40P01", "Verklemmung (Deadlock) entdeckt");
        assert!(is_retryable(&deadlock) && is_transient(&deadlock));
        let lock = reported("55P03", "Zeitüberschreitung beim Warten auf Sperre");
        assert!(is_transient(&lock) && !is_retryable(&lock) && !is_data_error(&lock));
        let range = reported("22003", "integer ist außerhalb des gültigen Bereichs");
        assert!(is_data_error(&range) && !is_transient(&range));
        // …and an English one that used to match counts for nothing under another code.
        let lying = reported(
            "42P01",
            "deadlock detected; could not obtain lock; out of range",
        );
        assert_eq!(ErrorClass::of(&lying), ErrorClass::Other);
        let lying = reported("22P02", "canceling statement due to statement timeout");
        assert_eq!(ErrorClass::of(&lying), ErrorClass::Data);
        // Without a SQLSTATE, an English message that used to match is not enough.
        for message in [
            "deadlock detected",
            "canceling statement due to lock timeout",
            "terminating connection due to administrator command",
            "the database system is shutting down",
            "value too long for type character varying(3)",
            "invalid input syntax for type integer",
        ] {
            let err = DieselError::DatabaseError(
                DatabaseErrorKind::Unknown,
                Box::new(message.to_owned()),
            );
            assert_eq!(ErrorClass::of(&err), ErrorClass::Other, "{message}");
        }
    }

    #[test]
    fn errors_without_a_sqlstate_are_classified_by_type() {
        let no_answer = DieselError::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand,
            Box::new("connection closed".to_owned()),
        );
        assert_eq!(ErrorClass::of(&no_answer), ErrorClass::Unavailable);
        let closed = DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection,
            Box::new(String::new()),
        );
        assert_eq!(ErrorClass::of(&closed), ErrorClass::Unavailable);
        // src/store/runs/set.rs reports a run deleted while being written so, to be written again.
        let deleted = DieselError::DatabaseError(
            DatabaseErrorKind::SerializationFailure,
            Box::new("run deleted while being written".to_owned()),
        );
        assert!(is_retryable(&deleted));
        assert_eq!(
            ErrorClass::of(&DieselError::BrokenTransactionManager),
            ErrorClass::Unavailable
        );
        assert_eq!(ErrorClass::of(&DieselError::NotFound), ErrorClass::Other);
        assert_eq!(
            DbError::Timeout(Duration::from_secs(2)).class(),
            ErrorClass::Unavailable
        );
        assert_eq!(
            DbError::Pool(PoolError::Closed).class(),
            ErrorClass::Unavailable
        );
        assert_eq!(
            DbError::Query(reported("22P02", "")).class(),
            ErrorClass::Data
        );
    }
}

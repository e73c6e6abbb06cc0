//! Running a transaction again when it lost a race with a concurrent one.
//!
//! Concurrent writers of overlapping runs can deadlock (PostgreSQL then rolls one of them back,
//! 40P01) or fail to serialize (40001); both write paths lock in a consistent order to make that
//! rare, and run a transaction that lost anyway again at once, as the error's class says a retry
//! can cure it ([`is_retryable`](crate::db::error::is_retryable), src/db/error.rs). Other
//! failures are returned as they are.

/// How many times a transaction is run in all when it keeps losing races.
pub const ATTEMPTS: usize = 3;

/// Evaluates `$transaction` — an expression that runs one whole transaction
/// (`conn.transaction(…).await`), so that a failed attempt left nothing behind — until it
/// succeeds, fails for another reason than a lost race, or has run [`ATTEMPTS`] times; the
/// value is its last result.
///
/// A macro rather than a function taking the attempt as an async closure: diesel-async's
/// `transaction` needs its body's future to be `Send`, and behind a generic closure parameter
/// the compiler cannot show that for futures holding borrows ("implementation of `Send` is not
/// general enough"); expanded in place, the closure is concrete.
macro_rules! on_conflict {
    ($transaction:expr) => {{
        let mut attempt = 1;
        loop {
            match $transaction {
                Err(err)
                    if attempt < $crate::store::retry::ATTEMPTS
                        && $crate::db::error::is_retryable(&err) =>
                {
                    attempt += 1
                }
                result => break result,
            }
        }
    }};
}

pub(crate) use on_conflict;

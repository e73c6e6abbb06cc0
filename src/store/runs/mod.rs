//! The native write path: validated runs into PostgreSQL, set-based ([`set`]).
//!
//! All runs of one call share a transaction and each statement handles every run at once
//! (`INSERT … SELECT FROM UNNEST(…)`), so a batch of 1,000 runs is a handful of statements. A
//! run's rows commit together; a resend of a final run changes nothing; a run stored as
//! `running` is replaced. When a set-based statement fails on one run's data (a `step_id` that
//! belongs to another run), the runs are written again one by one, each in its own savepoint, so
//! the others are not lost.
//!
//! A single new run — what an idle server sees, one request at a time — has a shorter way
//! ([`one`]): its rows and rollup deltas in one statement, committed on its own, so one
//! round trip and one WAL flush instead of a transaction's eight round trips. Anything else (a
//! known run, a run the database refuses) takes the general path above.
//!
//! [`rows`] has the rows of runs and what writing one answers; [`erase`] deletes runs, one by
//! request or old ones for retention.

pub mod erase;
pub mod one;
pub mod rows;
pub mod set;

pub use erase::{delete_run, purge_before};
pub use one::write_one;
pub use rows::Outcome;
pub use set::write_runs;

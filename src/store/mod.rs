//! The write side's statements: what the ingest routes store, set-based (docs/architecture.md,
//! docs/performance.md). Below `ingest`, above `db`: it takes validated runs ([`crate::model`])
//! and mapped traces ([`spans`]), and writes their rollup deltas through [`crate::rollup`].
//!
//! - [`runs`]: native runs (POST /v1/runs and /v1/runs/batch), deletes and the retention purge.
//! - [`traces`]: OTLP traces merged into runs, and the finalizer of silent running runs.
//! - [`spans`]: what the OTLP path takes, per trace; the ids derived from trace and span ids.
//! - [`batch`]: the rows of one statement as one array per column, and the SQL that unnests
//!   them, both from one declaration of the columns.
//! - [`retry`]: a transaction run again when it lost a race (deadlock, serialization failure).

pub mod batch;
pub mod retry;
pub mod runs;
pub mod spans;
pub mod traces;

pub use runs::{Outcome, delete_run, purge_before, write_one, write_runs};
pub use traces::{TraceOutcome, finalize_stale, write_traces};

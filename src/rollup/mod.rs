//! The stats rollups behind `GET /v1/stats` and `GET /v1/agents`.
//!
//! Every change to runs, steps and failures adds, in the same transaction, delta rows to
//! `stats_rollup`: one per grain (the UTC hour, day and month a run started in) and agent, with a
//! map of counters that sum across rows. Deltas are inserted, never updated, so concurrent
//! writers never wait on each other; the ingest role's [`compactor`] merges each key's deltas
//! into one row every few seconds. A stats query reads whole grains from the rollups and the
//! partial hours at a window's edges from the rows ([`plan`]).
//!
//! - [`counter`]: the counters and their keys (`runs:<status>`, `lat:<bucket>`, …).
//! - [`bucket`]: the histogram buckets of step latency and run duration.
//! - [`plan`]: the grains, and where each part of a stats window is read from.
//! - [`deltas`]: the deltas of the rows a write path inserts, computed in Rust.
//! - [`writer`]: skipping the insert triggers for those rows, only together with their deltas.
//! - [`compactor`]: the background merge.
//!
//! In the database (migrations/): the table, the functions that name each row's counters
//! (`agenttracer_*_entries`), the histogram's percentiles and the compaction in
//! `2026-11-23-000003_stats_rollup`; the writers' switch in `2026-11-30-000004_rollup_by_writer`;
//! the triggers that keep the deltas of every other insert, every update and every delete in
//! `2026-12-02-000007_rollup_triggers_plain`.

pub mod bucket;
pub mod compactor;
pub mod counter;
pub mod deltas;
pub mod plan;
pub mod writer;

pub use counter::Counter;
pub use deltas::{Deltas, RunKey};
pub use plan::{Grain, Plan, Span};
pub use writer::{DeltasWritten, SkipTriggers, single_statement, without_insert_triggers};

//! AgentTracer: self-hosted observability for AI agents.
//!
//! One binary serves two roles over one PostgreSQL database:
//!
//! - [`cli`], [`config`], [`role`]: the command line, the layered configuration, the roles.
//! - [`startup`]: builds the listeners a role needs, mounts its route sets, shuts down gracefully.
//! - [`health`], [`telemetry`]: what every listener serves or wraps.
//! - [`ingest`]: the write side (single runs, batches, deletes, OTLP, retention), on its
//!   `IngestState`; [`query`]: the read side, on its `QueryState`.
//! - [`state`], [`extract`], [`openapi`], [`auth`], [`error`]: what the route sets share: pools
//!   with their bound, the `{run_id}` extractor, the documents' shared parts, API keys, the error
//!   type.
//! - [`alerts`]: drift alerts to Slack, PagerDuty and a webhook: queued in `alert_log` with the
//!   drift events, delivered and retried by the ingest role.
//! - [`rollup`]: the stats rollups: counters, deltas, grains, the triggers' switch, the compactor.
//! - [`db`]: pools (writer, read-only), diesel schema, embedded migrations, the run reader.
//! - [`model`]: runs, steps and failures; validation of what agents send; the privacy policy.
//!   It uses no other module.
//! - [`ui`]: the web UI the query role serves (server-rendered pages, embedded assets).
//! - [`cost`]: the model price table (docs/cost.md).
//! - [`drift`]: behaviour profiles, baselines, drift detection (its statistics and schedule).
//! - [`store`]: the write side's statements: native runs and OTLP traces, set-based.
//! - [`healthcheck`]: the `healthcheck` command's HTTP probe; [`memory`]: giving memory back.
//!
//! The modules stand in layers, each using only modules of the layers below its own
//! (docs/architecture.md, The dependency rule; checked by `tests/api/architecture.rs`).

pub mod alerts;
pub mod auth;
pub mod cli;
pub mod config;
pub mod cost;
pub mod db;
pub mod drift;
pub mod error;
pub mod extract;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod health;
pub mod healthcheck;
pub mod ingest;
pub mod memory;
pub mod model;
pub mod openapi;
pub mod query;
pub mod role;
pub mod rollup;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod ui;

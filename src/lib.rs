//! AgentTracer: self-hosted observability for AI agents.
//!
//! One binary serves two roles over one PostgreSQL database:
//!
//! - [`cli`], [`config`], [`role`]: the command line, the layered configuration, the roles.
//! - [`startup`]: builds the listeners a role needs, mounts its route sets, shuts down gracefully.
//! - [`state`], [`error`], [`auth`], [`health`], [`telemetry`]: what every route shares.
//! - [`db`]: pools (writer, read-only), diesel schema, embedded migrations, the run reader.
//! - [`model`]: runs, steps and failures; validation of what agents send; the privacy policy.
//! - [`ingest`]: the write side's routes (single runs, batches, deletes, OTLP, retention).
//! - [`store`]: the write side's statements: native runs and OTLP traces, set-based.
//! - [`query`]: the read side.
//! - [`rollup`]: the stats rollups: counters, deltas, grains, the triggers' switch, the compactor.
//! - [`openapi`]: the OpenAPI documents, collected from the routes as they are mounted.
//! - [`healthcheck`]: the `healthcheck` command's HTTP probe.

pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod error;
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

//! One integration-test binary against a real PostgreSQL (see `helpers`).
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod alerts;
mod architecture;
mod attacks;
mod batch;
mod behaviour;
mod browser;
mod cli;
mod cost;
mod db;
mod drift;
mod exporters;
mod faults;
mod helpers;
mod ingest;
mod instrumentation;
mod limits;
mod ops;
mod otlp;
#[path = "../support/otlp.rs"]
mod otlp_build;
#[path = "../support/pg.rs"]
mod pg;
mod prices;
mod query;
#[path = "../support/ready.rs"]
mod ready;
mod replica;
mod schema;
mod sessions;
mod sqlstate;
mod stream;
mod tls;
mod ui;
mod ui_drift;

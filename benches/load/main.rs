//! The load benchmark (issue 6): the database's own write limit, then the release server under
//! fixed-duration concurrent load, all on this machine in one run.
//!
//! `cargo bench --bench load` — it
//! 1. starts a throwaway PostgreSQL (initdb; durability settings at their defaults: fsync,
//!    synchronous_commit, full_page_writes and wal_sync_method are not touched; only memory and
//!    checkpoint spacing are set, see [`PG_SETTINGS`]) and migrates a database;
//! 2. measures the limit: COPY of generated runs (10 steps, ~300 B of metadata per step) and their
//!    steps into the same schema, a transaction per 1,000 runs, from two connections;
//! 3. starts the release `agenttracer serve --role all` with its default configuration and drives
//!    it for a fixed duration each: single-run `POST /v1/runs`, `POST /v1/runs/batch` (100 runs a
//!    request), OTLP `POST /v1/traces` (protobuf, 10 traces of 11 spans a request);
//! 4. loads runs by COPY up to 100,000 (then 1,000,000) and drives the reads: `GET /v1/runs`
//!    (page_size=20) with and without `agent_id`, `GET /v1/runs/{id}`, `GET /v1/stats`, and
//!    each page of the web UI ([`ui`]: server time, and the gzipped JS + CSS each page loads);
//! 5. prints a table (throughput, p50/p95/p99, errors, server RSS, ratio to COPY, target) and
//!    writes it as JSON to `target/load-bench.json` (or `LOAD_JSON`).
//!
//! Knobs: `LOAD_SECS` (seconds per scenario, default 10), `LOAD_MAX_RUNS` (largest read dataset,
//! default 1,000,000; 100,000 skips the million-run phase, 0 every read), `LOAD_LATENCY` (the
//! latency-at-rest scenario of `latency.rs`, first on the idle server: `0` leaves it out,
//! `only` runs just it; its own knobs are documented there), `LOAD_SERVER_BIN` (serve with that
//! `agenttracer` binary instead of this build's, to compare builds), `LOAD_BASELINE_BIN` (a
//! second server of that binary on the same database: the write scenarios alternate between it
//! and this build, the same bodies to both, instead of without and with decisions and signals —
//! a before/after of a change in one run).
//!
//! `SOAK_SECS` runs the soak instead ([`soak`]). The modules: [`data`] generates runs (JSON bodies
//! and COPY rows), [`server`] starts the server under test, [`driver`] drives it with closed-loop
//! clients, [`report`] holds the targets and prints the results; the modes are [`throughput`]
//! (the default), [`latency_only`] and [`soak`], and [`latency`] is the latency-at-rest scenario.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod data;
mod driver;
mod items;
mod latency;
mod latency_only;
#[path = "../../tests/support/otlp.rs"]
mod otlp;
#[path = "../../tests/support/pg.rs"]
mod pg;
#[path = "../../tests/support/ready.rs"]
mod ready;
mod report;
mod server;
mod soak;
mod throughput;
mod ui;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;

/// Memory and checkpoint spacing only; durability settings stay at PostgreSQL's defaults.
pub const PG_SETTINGS: &[&str] = &[
    "shared_buffers = '512MB'",
    "max_wal_size = '8GB'",
    "checkpoint_timeout = '30min'",
    "log_min_duration_statement = -1",
];

/// This build's `agenttracer`.
pub const THIS_BIN: &str = env!("CARGO_BIN_EXE_agenttracer");

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let secs: f64 = env_or("LOAD_SECS", 10.0);
    let max_runs: usize = env_or("LOAD_MAX_RUNS", 1_000_000usize);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match std::env::var("SOAK_SECS").ok().and_then(|v| v.parse().ok()) {
        Some(soak_secs) => {
            runtime.block_on(soak::soak(soak_secs, env_or("SOAK_WINDOW_SECS", 60.0)))
        }
        None if std::env::var("LOAD_LATENCY").as_deref() == Ok("only") => {
            runtime.block_on(latency_only::latency_only())
        }
        None => runtime.block_on(throughput::run(secs, max_runs)),
    }
}

/// The environment variable `name`, parsed, or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Creates database `db` in the cluster and applies the migrations of the binary `bin`.
pub fn create_database(admin: &pg::Admin, db: &str, bin: impl AsRef<OsStr>) {
    admin.psql("postgres", &format!("CREATE DATABASE {db}"));
    let migrate = Command::new(bin)
        .arg("migrate")
        .env("DATABASE_URL", admin.url(db))
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{migrate:?}");
}

/// Writes `report` as JSON to `LOAD_JSON`, or to `name` in the target directory.
pub fn write_report(name: &str, report: &serde_json::Value) {
    let path = std::env::var("LOAD_JSON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(
                std::env::var("CARGO_TARGET_DIR")
                    .unwrap_or_else(|_| format!("{}/target", env!("CARGO_MANIFEST_DIR"))),
            )
            .join(name)
        });
    std::fs::write(&path, serde_json::to_string_pretty(report).unwrap()).unwrap();
    println!("\nwritten to {}", path.display());
}

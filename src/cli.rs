//! The command line: `serve --role`, `migrate`, `drift detect`, `reprice`, `config`, `healthcheck`,
//! `--version`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::role::Role;

/// Self-hosted observability for AI agents.
#[derive(Debug, Parser)]
#[command(name = "agenttracer", version, about, propagate_version = true)]
pub struct Cli {
    /// Configuration file (default: config/agenttracer.toml when it exists).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the ingest listener, the query listener, or both.
    Serve {
        /// Which listeners to run (also `AGENTTRACER_ROLE` or `server.role`).
        #[arg(long, value_enum)]
        role: Option<Role>,
    },
    /// Apply pending database migrations with the writer credentials, then exit.
    Migrate,
    /// Behaviour drift (docs/drift.md).
    #[command(subcommand)]
    Drift(DriftCommand),
    /// Recompute the stored costs (steps, runs, stats) of the runs that started in a period with
    /// the price table as it is now, in bounded batches while ingest goes on (docs/cost.md);
    /// print what it did as JSON.
    Reprice {
        /// The period's start (RFC 3339), e.g. 2026-06-01T00:00:00Z.
        #[arg(long, value_parser = parse_time)]
        since: time::OffsetDateTime,
        /// The period's end, exclusive (default: none).
        #[arg(long, value_parser = parse_time)]
        until: Option<time::OffsetDateTime>,
        /// Runs per transaction.
        #[arg(long, default_value_t = crate::cost::reprice::BATCH_RUNS, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        batch: i64,
    },
    /// Print the effective configuration, secrets masked.
    Config,
    /// GET /readyz of the configured role's listeners (or URL); exit 0 when ready.
    Healthcheck {
        /// A URL to probe instead, e.g. http://127.0.0.1:8000/readyz.
        url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DriftCommand {
    /// Compare every active baseline with the last `drift.window_s` once, as the ingest role's
    /// schedule does (waiting for a pass another process runs); print what it did as JSON.
    Detect,
}

/// An RFC 3339 time of the command line.
fn parse_time(text: &str) -> Result<time::OffsetDateTime, String> {
    crate::model::timestamp::parse(text)
        .ok_or_else(|| format!("not an RFC 3339 time: {text:?} (e.g. 2026-06-01T00:00:00Z)"))
}

impl Command {
    /// The role given on the command line, the top configuration layer.
    pub fn role_flag(&self) -> Option<Role> {
        match self {
            Command::Serve { role } => *role,
            _ => None,
        }
    }
}

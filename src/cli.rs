//! The command line: `serve --role`, `migrate`, `drift detect`, `config`, `healthcheck`,
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

impl Command {
    /// The role given on the command line, the top configuration layer.
    pub fn role_flag(&self) -> Option<Role> {
        match self {
            Command::Serve { role } => *role,
            _ => None,
        }
    }
}

//! The `agenttracer` binary: parse the command line, load configuration, dispatch.

use std::process::ExitCode;

use agenttracer::cli::{Cli, Command, DriftCommand};
use agenttracer::config::Config;
use agenttracer::drift::detect::{Lock, detect_all};
use agenttracer::startup::Application;
use agenttracer::{db, healthcheck, telemetry};
use clap::Parser;

/// mimalloc, with `--features mimalloc`; by default glibc's malloc, which measured the same
/// throughput here with less than half the peak RSS.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref(), cli.command.role_flag()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("agenttracer: {error}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Config => {
            print!("{}", config.to_masked_toml());
            ExitCode::SUCCESS
        }
        Command::Healthcheck { url } => match healthcheck::run(&config, url.as_deref()) {
            true => ExitCode::SUCCESS,
            false => ExitCode::FAILURE,
        },
        Command::Migrate => {
            telemetry::init_logging(&config.log);
            block_on(async {
                let applied = db::migrate::run(&config.database.url, &config.database).await?;
                tracing::info!(applied = applied.len(), versions = ?applied, "migrations up to date");
                Ok(())
            })
        }
        Command::Drift(DriftCommand::Detect) => {
            telemetry::init_logging(&config.log);
            block_on(async {
                let db_cfg = &config.database;
                let pool = db::build_pool(&db_cfg.url, db_cfg, db::Access::Write)?;
                let mut conn = pool.get().await?;
                let now = time::OffsetDateTime::now_utc();
                let channels = agenttracer::alerts::channels(&config.alerts);
                let report =
                    detect_all(&mut conn, &config.drift, &channels, now, Lock::Wait).await?;
                println!("{}", serde_json::to_string_pretty(&report)?);
                Ok(())
            })
        }
        Command::Reprice {
            since,
            until,
            batch,
        } => {
            telemetry::init_logging(&config.log);
            block_on(async {
                let db_cfg = &config.database;
                let pool = db::build_pool(&db_cfg.url, db_cfg, db::Access::Write)?;
                let mut conn = pool.get().await?;
                let book = agenttracer::cost::prices::book(&mut conn).await?;
                let done =
                    agenttracer::cost::reprice::reprice(&mut conn, &book, since, until, batch)
                        .await?;
                println!("{}", serde_json::to_string_pretty(&done)?);
                Ok(())
            })
        }
        Command::Serve { .. } => {
            telemetry::init_logging(&config.log);
            tracing::info!(role = %config.server.role, version = env!("CARGO_PKG_VERSION"), "starting agenttracer");
            block_on(async {
                let app = Application::build(config).await?;
                Ok(app.run_until_stopped().await?)
            })
        }
    }
}

fn block_on(work: impl Future<Output = Result<(), Box<dyn std::error::Error>>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("agenttracer: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "agenttracer failed");
            eprintln!("agenttracer: {error}");
            ExitCode::FAILURE
        }
    }
}

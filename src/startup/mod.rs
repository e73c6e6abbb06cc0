//! Building the service for a role and running it until a signal stops it.
//!
//! `Application::build` binds the role's listeners from the configuration; tests call
//! `Application::build_with` with listeners bound to port 0. `run_until_stopped` waits for
//! SIGINT/SIGTERM, then stops accepting, lets in-flight requests finish (every acknowledged run
//! is committed) within `server.shutdown_timeout_s`, stops the background tasks (each after the
//! unit of work it is in, see [`tasks`]), and closes the pools.

mod http;
mod tasks;

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::web;
use futures_util::future::BoxFuture;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::alerts;
use crate::config::Config;
use crate::db::schema_gate::{SchemaGate, SchemaState};
use crate::db::{self, Access, PgPool, migrate};
use crate::ingest::otlp::grpc;
use crate::ingest::{self, IngestState};
use crate::query::QueryState;
use crate::role::Listener;
use crate::state::AppState;
use crate::telemetry;
use http::{RoleState, http_server};
use tasks::Background;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Pool(#[from] db::PoolSetupError),
    #[error(transparent)]
    Migrate(#[from] migrate::MigrateError),
    #[error("cannot put the configured model prices (cost.prices): {0}")]
    Prices(String),
    #[error("cannot start the {listener} server: {source}")]
    Server {
        listener: &'static str,
        source: std::io::Error,
    },
    #[error("the {listener} listener is not part of role {role}")]
    NotInRole {
        listener: &'static str,
        role: &'static str,
    },
}

/// Puts `cost.prices` into the price table (each as `PUT /v1/model-prices/{model}` would, marked
/// `config`), in one transaction: the ingest role starts with them or not at all.
async fn put_configured_prices(
    pool: &PgPool,
    cost: &crate::config::CostConfig,
) -> Result<(), StartupError> {
    use diesel_async::AsyncConnection;
    // (Checked when the configuration loaded.)
    let prices = cost.new_prices().map_err(StartupError::Prices)?;
    let mut conn = pool
        .get()
        .await
        .map_err(|e| StartupError::Prices(e.to_string()))?;
    conn.transaction(async |conn| {
        for price in &prices {
            crate::cost::prices::put(conn, price, "config").await?;
        }
        Ok::<_, diesel::result::Error>(())
    })
    .await
    .map_err(|e| StartupError::Prices(e.to_string()))?;
    tracing::info!(prices = prices.len(), "configured model prices put");
    Ok(())
}

/// How to stop one listener gracefully.
enum Stop {
    Http(ServerHandle),
    Grpc(oneshot::Sender<()>),
}

pub struct Application {
    config: Arc<Config>,
    /// Every pool, closed at the end of the shutdown.
    pools: Vec<PgPool>,
    servers: Vec<BoxFuture<'static, std::io::Result<()>>>,
    stops: Vec<Stop>,
    ports: HashMap<Listener, u16>,
    background: Background,
}

impl Application {
    /// Binds the role's listeners at their configured addresses and builds the service.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let mut listeners = Vec::new();
        for &listener in config.server.role.listeners() {
            let addr = match listener {
                Listener::Ingest => format!(
                    "{}:{}",
                    config.server.ingest_host, config.server.ingest_port
                ),
                Listener::Query => {
                    format!("{}:{}", config.server.query_host, config.server.query_port)
                }
                Listener::OtlpGrpc => config.server.otlp_grpc_addr.clone(),
            };
            let tcp =
                TcpListener::bind(&addr).map_err(|source| StartupError::Bind { addr, source })?;
            listeners.push((listener, tcp));
        }
        Self::build_with(config, listeners).await
    }

    /// Builds the service on listeners already bound (one per listener of the role).
    pub async fn build_with(
        config: Config,
        listeners: Vec<(Listener, TcpListener)>,
    ) -> Result<Self, StartupError> {
        let role = config.server.role;
        let db_cfg = &config.database;
        let write = match role.runs_ingest() {
            true => Some(db::build_pool(&db_cfg.url, db_cfg, Access::Write)?),
            false => None,
        };
        let read = match role.runs_query() {
            true => {
                let url = match &db_cfg.read_url {
                    Some(url) => url,
                    None => {
                        tracing::warn!(
                            "database.read_url is unset: the query listener uses database.url (its sessions are still read-only)"
                        );
                        &db_cfg.url
                    }
                };
                Some(db::build_pool(url, db_cfg, Access::ReadOnly)?)
            }
            false => None,
        };
        if role.runs_ingest() && db_cfg.migrate_on_start {
            let applied = migrate::run(&db_cfg.url, db_cfg).await?;
            tracing::info!(applied = applied.len(), versions = ?applied, "migrations up to date");
        }
        if let Some(pool) = &write
            && !config.cost.prices.is_empty()
        {
            put_configured_prices(pool, &config.cost).await?;
        }

        // The query role waits for the schema (it never migrates); when this process migrated it
        // itself, the gate is open from the start.
        let schema = match (&read, role.runs_ingest() && db_cfg.migrate_on_start) {
            (Some(pool), false) => {
                let gate = SchemaGate::unknown();
                gate.refresh(pool).await;
                gate
            }
            _ => SchemaGate::ready(),
        };
        let config = Arc::new(config);
        let ingest = write
            .clone()
            .map(|pool| web::Data::new(IngestState::start(config.clone(), pool)));
        let query = read
            .clone()
            .map(|pool| web::Data::new(QueryState::new(&config, pool, schema.clone())));
        let pools: Vec<(Access, PgPool)> = (write.iter().map(|p| (Access::Write, p.clone())))
            .chain(read.iter().map(|p| (Access::ReadOnly, p.clone())))
            .collect();
        let shared = web::Data::new(AppState {
            metrics: telemetry::install_metrics(),
            pools: pools.clone(),
        });
        let query_port = listeners
            .iter()
            .find(|(l, _)| *l == Listener::Query)
            .and_then(|(_, tcp)| tcp.local_addr().ok())
            .map(|a| a.port());
        let ui_origins = http::paired_ui_origins(&config, query_port);
        let mut servers: Vec<BoxFuture<'static, std::io::Result<()>>> = Vec::new();
        let mut stops = Vec::new();
        let mut ports = HashMap::new();
        for (listener, tcp) in listeners {
            let port = tcp.local_addr().map(|a| a.port()).unwrap_or_default();
            ports.insert(listener, port);
            let routes = match (listener, &ingest, &query) {
                (Listener::Ingest | Listener::OtlpGrpc, Some(state), _) => {
                    RoleState::Ingest(state.clone())
                }
                (Listener::Query, _, Some(state)) => RoleState::Query(state.clone()),
                _ => {
                    return Err(StartupError::NotInRole {
                        listener: listener.as_str(),
                        role: role.as_str(),
                    });
                }
            };
            match routes {
                RoleState::Ingest(state) if listener == Listener::OtlpGrpc => {
                    let service = grpc::OtlpGrpc {
                        state,
                        keys: config.auth.ingest_keys.clone(),
                    };
                    let (stop, stopped) = oneshot::channel();
                    stops.push(Stop::Grpc(stop));
                    servers.push(Box::pin(grpc::serve(
                        tcp,
                        service,
                        config.server.max_body_bytes,
                        config.otlp.clone(),
                        stopped,
                    )));
                }
                routes => {
                    let on = (listener, tcp);
                    let origins = ui_origins.clone();
                    let server = http_server(on, routes, shared.clone(), &config, origins)
                        .map_err(|source| StartupError::Server {
                            listener: listener.as_str(),
                            source,
                        })?;
                    stops.push(Stop::Http(server.handle()));
                    servers.push(Box::pin(server));
                }
            }
            tracing::info!(listener = listener.as_str(), port, "listening");
        }

        let mut background = Background::default();
        background.spawn("memory trim", |stop| {
            crate::memory::trim_when_idle(std::time::Duration::from_secs(2), stop)
        });
        for (_, pool) in &pools {
            background.spawn_until_stopped(
                "pool warm-up",
                db::warm_up(pool.clone(), config.database.pool_size as usize),
            );
        }
        if let Some(pool) = &read
            && schema.state() != SchemaState::Ready
        {
            let (schema, pool) = (schema.clone(), pool.clone());
            background.spawn("schema watch", |stop| schema.watch(pool, stop));
        }
        if let Some(state) = &query {
            // Its streams end with it, when shutdown starts.
            let feed = state.live.clone();
            background.spawn("live feed", move |stop| feed.run(stop));
        }
        if let (Some(pool), Some(_)) = (&write, config.retention.days) {
            let (pool, retention) = (pool.clone(), config.retention.clone());
            background.spawn("retention", |stop| {
                ingest::retention::run(pool, retention, stop)
            });
        }
        if let (Some(pool), Some(state)) = (&write, &ingest) {
            let (pool, book) = (pool.clone(), state.prices.clone());
            background.spawn("price refresh", |stop| book.refresh(pool, stop));
        }
        if let Some(pool) = &write {
            let compactor = pool.clone();
            background.spawn("stats compaction", |stop| {
                crate::rollup::compactor::run(compactor, stop)
            });
            if config.drift.enabled {
                let (detector, cfg) = (pool.clone(), config.drift.clone());
                let channels = alerts::channels(&config.alerts);
                background.spawn("drift detection", |stop| {
                    crate::drift::detect::run(detector, cfg, channels, stop)
                });
            }
            let (pool, after_s) = (pool.clone(), config.otlp.finalize_after_s);
            background.spawn("OTLP finalizer", move |stop| {
                ingest::otlp::run_finalizer(pool, after_s, stop)
            });
        }
        if let Some(pool) = &write {
            match alerts::Deliverer::new(pool.clone(), &config.alerts) {
                Ok(Some(deliverer)) => {
                    let channels = deliverer.channel_names().join(",");
                    tracing::info!(channels, "alert delivery on");
                    background.spawn("alert delivery", |stop| deliverer.run(stop));
                }
                Ok(None) => {}
                // (The HTTP client's TLS setup; alerts stay queued in alert_log meanwhile.)
                Err(error) => tracing::error!(%error, "alert delivery cannot start"),
            }
        }
        Ok(Self {
            config,
            pools: pools.into_iter().map(|(_, pool)| pool).collect(),
            servers,
            stops,
            ports,
            background,
        })
    }

    /// The port a listener is bound to.
    pub fn port(&self, listener: Listener) -> Option<u16> {
        self.ports.get(&listener).copied()
    }

    /// Serves until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes (or a server ends), then shuts down gracefully.
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> std::io::Result<()> {
        let mut running: Vec<JoinHandle<std::io::Result<()>>> =
            self.servers.into_iter().map(tokio::spawn).collect();
        let first_exit = futures_util::future::select_all(running.iter_mut());
        tokio::select! {
            _ = stop => tracing::info!("shutting down: finishing in-flight requests"),
            (result, _, _) = first_exit => tracing::warn!(?result, "a listener stopped; shutting down"),
        }
        // The background tasks stop while the listeners finish their requests.
        let deadline = tasks::deadline(self.config.server.shutdown_timeout_s);
        self.background.cancel();
        for stop in self.stops {
            match stop {
                Stop::Http(handle) => handle.stop(true).await,
                Stop::Grpc(stop) => {
                    let _ = stop.send(());
                }
            }
        }
        for server in running {
            if let Ok(Err(error)) = server.await {
                tracing::warn!(%error, "listener ended with an error");
            }
        }
        self.background.wait(deadline).await;
        for pool in &self.pools {
            pool.close();
        }
        tracing::info!("stopped");
        Ok(())
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}

//! Building the service for a role and running it until a signal stops it.
//!
//! `Application::build` binds the role's listeners from the configuration; tests call
//! `Application::build_with` with listeners bound to port 0. `run_until_stopped` waits for
//! SIGINT/SIGTERM, then stops accepting, lets in-flight requests finish (every acknowledged run
//! is committed) within `server.shutdown_timeout_s`, and closes the pools.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::dev::ResourceDef;
use actix_web::dev::{Server, ServerHandle};
use actix_web::http::header;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use futures_util::future::BoxFuture;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing_actix_web::TracingLogger;
use utoipa_actix_web::AppExt;

use crate::auth::{self, ListenerCtx};
use crate::config::Config;
use crate::db::schema_gate::{SchemaGate, SchemaState};
use crate::db::{self, Access, migrate};
use crate::ingest::group::GroupCommit;
use crate::ingest::otlp::grpc;
use crate::role::Listener;
use crate::state::AppState;
use crate::{health, ingest, openapi, query, telemetry};

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
    #[error("cannot start the {listener} server: {source}")]
    Server {
        listener: &'static str,
        source: std::io::Error,
    },
}

/// How to stop one listener gracefully.
enum Stop {
    Http(ServerHandle),
    Grpc(oneshot::Sender<()>),
}

pub struct Application {
    state: web::Data<AppState>,
    servers: Vec<BoxFuture<'static, std::io::Result<()>>>,
    stops: Vec<Stop>,
    ports: HashMap<Listener, u16>,
    tasks: Vec<JoinHandle<()>>,
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
            true => Some(db::build_pool(db_cfg.url.expose(), db_cfg, Access::Write)?),
            false => None,
        };
        let read = match role.runs_query() {
            true => {
                let url = match &db_cfg.read_url {
                    Some(url) => url.expose(),
                    None => {
                        tracing::warn!(
                            "database.read_url is unset: the query listener uses database.url (its sessions are still read-only)"
                        );
                        db_cfg.url.expose()
                    }
                };
                Some(db::build_pool(url, db_cfg, Access::ReadOnly)?)
            }
            false => None,
        };
        if role.runs_ingest() && db_cfg.migrate_on_start {
            let applied = migrate::run(db_cfg.url.expose(), db_cfg).await?;
            tracing::info!(applied = applied.len(), versions = ?applied, "migrations up to date");
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
        let group = write.as_ref().map(|pool| {
            GroupCommit::start(
                pool.clone(),
                config.database.clone(),
                config.ingest.group_commit_writers,
                config.ingest.group_commit_max_runs,
            )
        });
        let state = web::Data::new(AppState {
            config: config.clone(),
            write,
            read,
            metrics: telemetry::install_metrics(),
            schema: schema.clone(),
            group,
            bodies: crate::ingest::body::BodyLimits::new(&config.server),
        });
        let mut servers: Vec<BoxFuture<'static, std::io::Result<()>>> = Vec::new();
        let mut stops = Vec::new();
        let mut ports = HashMap::new();
        for (listener, tcp) in listeners {
            let port = tcp.local_addr().map(|a| a.port()).unwrap_or_default();
            ports.insert(listener, port);
            if listener == Listener::OtlpGrpc {
                let service = grpc::OtlpGrpc {
                    state: state.clone(),
                    keys: config.auth.ingest_keys.expose().to_vec(),
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
            } else {
                let server =
                    http_server(listener, tcp, state.clone(), &config).map_err(|source| {
                        StartupError::Server {
                            listener: listener.as_str(),
                            source,
                        }
                    })?;
                stops.push(Stop::Http(server.handle()));
                servers.push(Box::pin(server));
            }
            tracing::info!(listener = listener.as_str(), port, "listening");
        }

        let mut tasks = vec![tokio::spawn(crate::memory::trim_when_idle(
            std::time::Duration::from_secs(2),
        ))];
        for pool in state.write.iter().chain(state.read.iter()) {
            tasks.push(tokio::spawn(db::warm_up(
                pool.clone(),
                config.database.pool_size as usize,
            )));
        }
        if let Some(pool) = &state.read
            && schema.state() != SchemaState::Ready
        {
            tasks.push(tokio::spawn(schema.clone().watch(pool.clone())));
        }
        if let (Some(pool), Some(_)) = (&state.write, config.retention.days) {
            tasks.push(tokio::spawn(ingest::retention::run(
                pool.clone(),
                config.retention.clone(),
            )));
        }
        if let Some(pool) = &state.write {
            tasks.push(tokio::spawn(crate::rollup::compactor::run(pool.clone())));
            tasks.push(tokio::spawn(ingest::otlp::run_finalizer(
                pool.clone(),
                config.otlp.finalize_after_s,
            )));
        }
        Ok(Self {
            state,
            servers,
            stops,
            ports,
            tasks,
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
        for task in self.tasks {
            task.abort();
        }
        if let Some(pool) = &self.state.write {
            pool.close();
        }
        if let Some(pool) = &self.state.read {
            pool.close();
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// CORS for one listener: the configured origins, and the methods that listener serves (a
/// browser posting runs to the ingest listener sends a preflight too).
fn cors(config: &Config, listener: Listener) -> Cors {
    let origins = &config.server.cors_origins.0;
    let methods: &[&str] = match listener {
        Listener::Query => &["GET", "HEAD", "OPTIONS"],
        Listener::Ingest | Listener::OtlpGrpc => &["GET", "POST", "DELETE", "OPTIONS"],
    };
    let mut cors = Cors::default()
        .allowed_methods(methods.iter().copied())
        .allow_any_header()
        .expose_headers([
            query::NEXT_CURSOR_HEADER,
            "Link",
            crate::ingest::REDACTED_HEADER,
            query::STEPS_TRUNCATED_HEADER,
        ])
        .max_age(3600);
    if origins.iter().any(|o| o == "*") {
        cors = cors.allow_any_origin();
    } else {
        for origin in origins {
            cors = cors.allowed_origin(origin);
        }
    }
    cors
}

/// The proxies whose forwarding headers are believed (`server.trusted_proxies`).
struct TrustedProxies(Vec<ipnet::IpNet>);

/// Headers a proxy sets about the client; believed only from a trusted proxy.
const FORWARDING_HEADERS: [&str; 5] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-real-ip",
];

/// Middleware: removes the forwarding headers of a request whose peer is not a trusted proxy,
/// before the request log or anything else reads them (a client cannot forge its address).
async fn untrusted_forwarding(
    mut req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let trusted = match (req.peer_addr(), req.app_data::<web::Data<TrustedProxies>>()) {
        (Some(peer), Some(proxies)) => proxies.0.iter().any(|net| net.contains(&peer.ip())),
        _ => false,
    };
    if !trusted {
        for name in FORWARDING_HEADERS {
            req.headers_mut().remove(name);
        }
    }
    next.call(req).await
}

/// A listener's OpenAPI document, rendered once per worker.
struct OpenApiJson(web::Bytes);

async fn openapi_json(doc: web::Data<OpenApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.0.clone())
}

/// Which methods each route pattern of a listener answers, read from its OpenAPI document (the
/// same registration that mounts the routes): what the fallback needs to tell a known path asked
/// with another method (405 with `Allow`) from an unknown path (404).
struct Routes(Vec<(ResourceDef, Vec<&'static str>)>);

impl Routes {
    fn of(doc: &utoipa::openapi::OpenApi) -> Routes {
        let mut routes: Vec<(ResourceDef, Vec<&'static str>)> = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ];
                let allowed = methods.iter().filter(|(_, on)| *on).map(|(m, _)| *m);
                (ResourceDef::new(path.as_str()), allowed.collect())
            })
            .collect();
        routes.push((ResourceDef::new("/openapi.json"), vec!["GET"]));
        Routes(routes)
    }

    /// The methods `path` answers, sorted; empty for an unknown path.
    fn allowed(&self, path: &str) -> Vec<&'static str> {
        let mut allowed: Vec<&'static str> = Vec::new();
        for (def, methods) in &self.0 {
            if def.is_match(path) {
                allowed.extend(methods);
            }
        }
        allowed.sort_unstable();
        allowed.dedup();
        allowed
    }
}

/// Every request no route took: 405 with `Allow` for a known path, else 404.
async fn fallback(req: HttpRequest, routes: web::Data<Routes>) -> HttpResponse {
    let allowed = routes.allowed(req.path());
    if allowed.is_empty() {
        return HttpResponse::NotFound().json(serde_json::json!({ "detail": "Not Found" }));
    }
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, allowed.join(", ")))
        .json(serde_json::json!({ "detail": "Method Not Allowed" }))
}

fn http_server(
    listener: Listener,
    tcp: TcpListener,
    state: web::Data<AppState>,
    config: &Config,
) -> std::io::Result<Server> {
    let keys = match listener {
        Listener::Ingest | Listener::OtlpGrpc => config.auth.ingest_keys.expose().to_vec(),
        Listener::Query => config.auth.query_keys.expose().to_vec(),
    };
    if keys.is_empty() {
        tracing::warn!(
            listener = listener.as_str(),
            "no API keys configured: the listener is open to anyone who can reach it"
        );
    }
    let ctx = web::Data::new(ListenerCtx { listener, keys });
    let proxies = web::Data::new(TrustedProxies(
        config
            .server
            .trusted_proxies
            .0
            .iter()
            .filter_map(|p| crate::config::parse_proxy(p))
            .collect(),
    ));
    let config_for_app = config.clone();
    let workers = config
        .server
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    let server = HttpServer::new(move || {
        // The document is collected from the same `service(...)` calls that mount the routes.
        let (app, doc) = App::new()
            .into_utoipa_app()
            .openapi(openapi::base(listener))
            .app_data(state.clone())
            .app_data(ctx.clone())
            .app_data(proxies.clone())
            .configure(health::configure)
            .configure(|cfg| match listener {
                Listener::Ingest | Listener::OtlpGrpc => ingest::configure(cfg),
                Listener::Query => query::configure(cfg),
            })
            .split_for_parts();
        let routes = web::Data::new(Routes::of(&doc));
        let doc = web::Data::new(OpenApiJson(web::Bytes::from(
            doc.to_json().unwrap_or_default(),
        )));
        app.app_data(doc)
            .app_data(routes)
            .route("/openapi.json", web::get().to(openapi_json))
            .default_service(web::to(fallback))
            .wrap(from_fn(auth::require_key))
            .wrap(from_fn(crate::error::complete_error_bodies))
            .wrap(cors(&config_for_app, listener))
            .wrap(from_fn(telemetry::track_requests))
            .wrap(TracingLogger::default())
            .wrap(from_fn(untrusted_forwarding))
    })
    .workers(workers)
    .shutdown_timeout(config.server.shutdown_timeout_s)
    .disable_signals()
    .listen(tcp)?
    .run();
    Ok(server)
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

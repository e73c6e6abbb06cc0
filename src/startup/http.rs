//! One HTTP listener's server: its routes (health, the role's routes, its OpenAPI document), the
//! fallback that answers 405 with `Allow` for a known path and 404 otherwise, CORS, API keys, and
//! the forwarding headers believed only from a trusted proxy.

use std::net::TcpListener;

use actix_cors::Cors;
use actix_web::dev::{ResourceDef, Server};
use actix_web::http::header;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use tracing_actix_web::TracingLogger;
use utoipa_actix_web::AppExt;

use utoipa::Modify;

use crate::auth::{self, ListenerCtx};
use crate::config::Config;
use crate::db::schema_gate::SchemaGate;
use crate::health::Readiness;
use crate::ingest::IngestState;
use crate::query::QueryState;
use crate::role::Listener;
use crate::state::AppState;
use crate::{health, ingest, openapi, query, telemetry, ui};

/// The state of the routes a listener mounts: the ingest routes' or the query routes'.
#[derive(Clone)]
pub(super) enum RoleState {
    Ingest(web::Data<IngestState>),
    Query(web::Data<QueryState>),
}

impl RoleState {
    /// What the listener's `/health` and `/readyz` check: its pool, and the gate its routes wait on.
    fn readiness(&self) -> Readiness {
        match self {
            RoleState::Ingest(state) => Readiness {
                pool: state.db.pool().clone(),
                schema: SchemaGate::ready(),
            },
            RoleState::Query(state) => Readiness {
                pool: state.db.pool().clone(),
                schema: state.schema.clone(),
            },
        }
    }

    /// Mounts the routes with their state.
    fn configure(&self, cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
        match self {
            RoleState::Ingest(state) => ingest::configure(state.clone())(cfg),
            RoleState::Query(state) => query::configure(state.clone())(cfg),
        }
    }
}

/// The web UI's origins when this process serves it and sends its write actions to its own
/// ingest listener at another origin (role `all` with `ui.ingest_url` set, no proxy in front):
/// `ui.ingest_url`'s scheme and host with the query listener's port — for a loopback host
/// (`localhost`, `127.0.0.1`, `[::1]`) under each of those names, as a browser on this machine may
/// use any. The ingest listener's CORS allows them beside `server.cors_origins`.
pub(super) fn paired_ui_origins(config: &Config, query_port: Option<u16>) -> Vec<String> {
    let (Some(port), true) = (query_port, config.ui.enabled) else {
        return Vec::new();
    };
    let Ok(url) = url::Url::parse(&config.ui.ingest_url) else {
        return Vec::new();
    };
    let loopback = ["localhost", "127.0.0.1", "[::1]"];
    let hosts: Vec<String> = match url.host_str() {
        Some(host) if loopback.contains(&host) => loopback.map(str::to_owned).to_vec(),
        Some(host) => vec![host.to_owned()],
        None => Vec::new(),
    };
    hosts
        .into_iter()
        .map(|host| format!("{}://{host}:{port}", url.scheme()))
        .collect()
}

/// CORS for one listener: the configured origins (and on the ingest listener `ui_origins`, see
/// [`paired_ui_origins`]), and the methods that listener serves (a browser posting runs to the
/// ingest listener sends a preflight too).
fn cors(config: &Config, listener: Listener, ui_origins: &[String]) -> Cors {
    let mut origins = config.server.cors_origins.0.clone();
    if listener != Listener::Query {
        origins.extend(ui_origins.iter().cloned());
    }
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
            ingest::REDACTED_HEADER,
            query::STEPS_TRUNCATED_HEADER,
        ])
        .max_age(3600);
    if origins.iter().any(|o| o == "*") {
        cors = cors.allow_any_origin();
    } else {
        for origin in &origins {
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

/// Builds the HTTP server of `listener` on `tcp`; `ui_origins` are [`paired_ui_origins`].
pub(super) fn http_server(
    (listener, tcp): (Listener, TcpListener),
    routes: RoleState,
    shared: web::Data<AppState>,
    config: &Config,
    ui_origins: Vec<String>,
) -> std::io::Result<Server> {
    let keys = match listener {
        Listener::Ingest | Listener::OtlpGrpc => config.auth.ingest_keys.clone(),
        Listener::Query => config.auth.query_keys.clone(),
    };
    if keys.is_empty() {
        tracing::warn!(
            listener = listener.as_str(),
            "no API keys configured: the listener is open to anyone who can reach it"
        );
    }
    // The web UI: on the query listener unless `ui.enabled` is false. Its pages check a session
    // cookie rather than a key header (src/ui/session.rs).
    let ui = (listener == Listener::Query && config.ui.enabled).then(|| {
        let sessions = ui::session::Sessions::new(
            keys.clone(),
            &ui::session::signing_secret(config.ui.session_secret.as_ref()),
            config.ui.session_ttl_s,
            config.ui.base_path.clone(),
        );
        ui::Shared::new(
            config.ui.base_path.clone(),
            sessions,
            config.ui.ingest_url.clone(),
        )
    });
    let ctx = web::Data::new(ListenerCtx {
        listener,
        keys,
        session_paths: ui.as_ref().map(|_| auth::SessionPaths {
            base: config.ui.base_path.clone(),
            pages: &ui::PAGES,
        }),
    });
    let readiness = web::Data::new(routes.readiness());
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
        let (app, mut doc) = App::new()
            .into_utoipa_app()
            .openapi(openapi::base(listener))
            .app_data(shared.clone())
            .app_data(readiness.clone())
            .app_data(ctx.clone())
            .app_data(proxies.clone())
            .configure(health::configure)
            .configure(|cfg| routes.configure(cfg))
            .split_for_parts();
        openapi::SharedResponses.modify(&mut doc);
        let known = web::Data::new(Routes::of(&doc));
        let doc = web::Data::new(OpenApiJson(web::Bytes::from(
            doc.to_json().unwrap_or_default(),
        )));
        let ui = ui.clone();
        app.app_data(doc)
            .app_data(known)
            .route("/openapi.json", web::get().to(openapi_json))
            .configure(move |cfg| {
                if let Some(ui) = &ui {
                    ui::configure(cfg, ui);
                }
            })
            .default_service(web::to(fallback))
            .wrap(from_fn(auth::require_key))
            .wrap(from_fn(crate::error::complete_error_bodies))
            .wrap(cors(&config_for_app, listener, &ui_origins))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paired_ui_origins_are_the_ingest_urls_host_at_the_query_port() {
        let mut config = Config::default();
        assert!(paired_ui_origins(&config, Some(8001)).is_empty(), "unset");
        config.ui.ingest_url = "https://agents.example.com:8443".into();
        assert_eq!(
            paired_ui_origins(&config, Some(8001)),
            vec!["https://agents.example.com:8001"]
        );
        assert!(
            paired_ui_origins(&config, None).is_empty(),
            "no query listener"
        );
        config.ui.ingest_url = "http://127.0.0.1:8000".into();
        assert_eq!(
            paired_ui_origins(&config, Some(8001)),
            vec![
                "http://localhost:8001",
                "http://127.0.0.1:8001",
                "http://[::1]:8001"
            ]
        );
        config.ui.enabled = false;
        assert!(paired_ui_origins(&config, Some(8001)).is_empty(), "no UI");
    }
}

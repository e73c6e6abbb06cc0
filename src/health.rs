//! `/health` and `/readyz` (a connection from this listener's pool and `SELECT 1` within 2 s),
//! `/livez` (the process runs; the database is not touched) and `/metrics`, on every listener.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::ListenerCtx;
use crate::db::schema_gate::{SchemaBehind, SchemaGate};
use crate::db::{self, DbError, PgPool};
use crate::error::Detail;
use crate::state::AppState;

const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(health)
        .service(readyz)
        .service(livez)
        .service(metrics);
}

/// What a listener's readiness check looks at: its pool, and the schema gate its routes wait on
/// (on the ingest listener, a gate that never closes: its routes do not wait for the schema).
pub struct Readiness {
    pub pool: PgPool,
    pub schema: Arc<SchemaGate>,
}

/// `GET /health`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub service: &'static str,
    pub version: &'static str,
}

/// `GET /livez`.
#[derive(Serialize, ToSchema)]
pub struct Alive {
    pub status: &'static str,
    pub service: &'static str,
}

/// Why a listener is not ready.
#[derive(Debug, thiserror::Error)]
enum NotReady {
    #[error(transparent)]
    Database(#[from] DbError),
    /// A query listener on a schema it cannot read yet.
    #[error(transparent)]
    Schema(#[from] SchemaBehind),
}

async fn database_check(ready: &Readiness, ctx: &ListenerCtx) -> HttpResponse {
    let result = async {
        db::ping(&ready.pool, HEALTH_TIMEOUT).await?;
        ready.schema.check()?;
        Ok::<_, NotReady>(())
    }
    .await;
    match result {
        Ok(()) => HttpResponse::Ok().json(Health {
            status: "healthy",
            service: ctx.listener.service_name(),
            version: env!("CARGO_PKG_VERSION"),
        }),
        Err(reason) => {
            tracing::warn!(listener = ctx.listener.as_str(), %reason, "health check failed");
            let detail = match reason {
                NotReady::Schema(behind) => behind.0,
                other => format!("Database connection failed: {other}"),
            };
            HttpResponse::ServiceUnavailable()
                .insert_header(("Retry-After", crate::error::RETRY_AFTER_S.to_string()))
                .json(json!({ "detail": detail }))
        }
    }
}

/// The original's readiness check.
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "A pooled connection answered SELECT 1 within 2 s", body = Health),
        (status = 503, description = "Database connection failed (or, on the query listener, the schema is behind)", body = Detail),
    )
)]
#[get("/health")]
async fn health(ready: web::Data<Readiness>, ctx: web::Data<ListenerCtx>) -> HttpResponse {
    database_check(&ready, &ctx).await
}

/// Readiness for orchestrators: the same check as `/health`.
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "A pooled connection answered SELECT 1 within 2 s", body = Health),
        (status = 503, description = "Database connection failed (or, on the query listener, the schema is behind)", body = Detail),
    )
)]
#[get("/readyz")]
async fn readyz(ready: web::Data<Readiness>, ctx: web::Data<ListenerCtx>) -> HttpResponse {
    database_check(&ready, &ctx).await
}

/// Liveness: 200 while the process runs, whatever the database does.
#[utoipa::path(tag = "health", responses((status = 200, description = "The process runs", body = Alive)))]
#[get("/livez")]
async fn livez(ctx: web::Data<ListenerCtx>) -> HttpResponse {
    HttpResponse::Ok().json(Alive {
        status: "alive",
        service: ctx.listener.service_name(),
    })
}

/// Prometheus text format; one process-wide registry, whichever listener is scraped.
#[utoipa::path(
    tag = "health",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String))
)]
#[get("/metrics")]
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    for (access, pool) in &state.pools {
        db::record_pool_metrics(pool, *access);
    }
    state.metrics.run_upkeep();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}

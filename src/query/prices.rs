//! `GET /v1/model-prices` (docs/cost.md): the price table, every period. It is changed on the
//! ingest role.

use actix_web::{HttpRequest, HttpResponse, get, web};

use super::QueryState;
use super::filters::{Problems, pairs};
use crate::cost::prices::{self, Price};
use crate::error::{ApiError, ValidationErrors};
use crate::openapi::Unavailable;

/// Mounts the price read route.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_prices);
}

/// Every price period, by model (name or pattern) and then time; `model` keeps one.
#[utoipa::path(
    tag = "cost",
    params(("model" = Option<String>, Query, description = "Only this model name or pattern")),
    responses(
        (status = 200, description = "The periods", body = [Price]),
        (status = 422, description = "A malformed parameter, named", body = ValidationErrors),
        Unavailable,
    )
)]
#[get("/v1/model-prices")]
async fn list_prices(
    req: HttpRequest,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    let pairs = pairs(req.query_string());
    let mut p = Problems(Vec::new());
    let model = p.text(&pairs, "model");
    let model = p.or(model)?;
    let rows = state
        .read(async |conn| Ok(prices::list(conn, model.as_deref()).await?))
        .await?;
    Ok(HttpResponse::Ok().json(rows))
}

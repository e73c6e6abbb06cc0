//! The price routes that write (docs/cost.md): add a price period for a model or pattern, and
//! delete a model's periods. The table is read on the query role (`GET /v1/model-prices`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, put, web};
use serde_json::Value;
use utoipa::ToSchema;

use super::body;
use super::state::IngestState;
use crate::cost::prices::{self, Price};
use crate::error::{ApiError, Detail, ValidationErrors};
use crate::model::FieldError;
use crate::model::cost::pattern_problem;
use crate::model::input::parse_price;
use crate::model::timestamp;
use crate::openapi::Unavailable;

/// Mounts the price write routes.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(put_price).service(delete_price);
}

/// The body of `PUT /v1/model-prices/{model}`: USD per million tokens.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PriceIn {
    input_per_mtok: f64,
    output_per_mtok: f64,
    /// Null or absent: cached input is priced as input.
    cached_input_per_mtok: Option<f64>,
    /// Null or absent: reasoning tokens are priced as output.
    reasoning_per_mtok: Option<f64>,
    /// From when it applies (RFC 3339); absent means now.
    valid_from: Option<String>,
    /// Only `USD`.
    currency: Option<String>,
}

/// Adds a price period for `{model}` (a model's name, or a prefix pattern ending in `*`; a `/`
/// in a name is sent as is or as `%2F`). A period at the same `valid_from` is replaced (200);
/// the model's other periods are kept, so data is priced at the price of its time.
#[utoipa::path(
    tag = "cost",
    params(("model" = String, Path, description = "A model name, or a prefix pattern ending in `*`")),
    request_body(content = PriceIn, content_type = "application/json"),
    responses(
        (status = 201, description = "A new period", body = Price),
        (status = 200, description = "The period starting at that time, replaced", body = Price),
        (status = 422, description = "Every problem found, named", body = ValidationErrors),
        Unavailable,
    )
)]
#[put("/v1/model-prices/{model:.+}")]
async fn put_price(
    req: HttpRequest,
    model: web::Path<String>,
    payload: web::Payload,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    let (value, _body) = body::read_json(&req, payload, &state.bodies).await?;
    let new = parse_price(&model, value, &state.rules).map_err(ApiError::validation)?;
    let (price, inserted) = state
        .db
        .run(async |conn| Ok(prices::put(conn, &new, "operator").await?))
        .await?;
    tracing::info!(model = %price.model, inserted, "model price set");
    reload(&state).await;
    let status = match inserted {
        true => StatusCode::CREATED,
        false => StatusCode::OK,
    };
    Ok(HttpResponse::build(status).json(price))
}

/// Deletes `{model}`'s price periods, or with `valid_from` the one starting then. Data already
/// priced keeps its cost until it is repriced (`agenttracer reprice`).
#[utoipa::path(
    tag = "cost",
    params(
        ("model" = String, Path, description = "The model name or pattern, as put"),
        ("valid_from" = Option<String>, Query, description = "Only the period starting at this time (RFC 3339)"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such price", body = Detail),
        (status = 422, description = "A malformed model or valid_from, named", body = ValidationErrors),
        Unavailable,
    )
)]
#[delete("/v1/model-prices/{model:.+}")]
async fn delete_price(
    req: HttpRequest,
    model: web::Path<String>,
    state: web::Data<IngestState>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    if let Some(problem) = pattern_problem(&model) {
        errors.push(FieldError::new(
            "value_error",
            vec![Value::from("path"), Value::from("model")],
            problem,
        ));
    }
    let mut valid_from = None;
    for (key, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        if key == "valid_from" {
            valid_from = timestamp::parse(&value);
            if valid_from.is_none() {
                errors.push(FieldError::new(
                    "datetime_parsing",
                    vec![Value::from("query"), Value::from("valid_from")],
                    "Input should be a valid datetime (RFC 3339)",
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let deleted = state
        .db
        .run(async |conn| Ok(prices::delete(conn, &model, valid_from).await?))
        .await?;
    if deleted == 0 {
        return Err(ApiError::NotFound(format!("No price for model {model}")));
    }
    tracing::info!(model = %model, deleted, "model price deleted");
    reload(&state).await;
    Ok(HttpResponse::NoContent().finish())
}

/// Reads the price book again after a change, so this process prices new data with it at once
/// (other replicas within `cost::book::REFRESH`; so does this one if this read fails).
async fn reload(state: &IngestState) {
    if let Err(error) = state.reload_prices().await {
        tracing::warn!(%error, "model prices not reloaded after a change; the next refresh will");
    }
}

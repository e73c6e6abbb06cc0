//! One error type for every route: a status code and a `{"detail": …}` body — completed by
//! [`complete_error_bodies`] with the later original's `error`, `status_code` and `path`.
//!
//! 5xx bodies are generic and their cause is logged once, here. Database trouble that retrying
//! can cure (no connection within the acquire timeout, statement or lock timeout, a lost
//! connection: [`ErrorClass`], by SQLSTATE) is 503 with `Retry-After`.

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::db::ErrorClass;
use crate::model::FieldError;

/// Seconds a client should wait before retrying a 503.
pub const RETRY_AFTER_S: u32 = 1;

/// Every error but validation: Phase 1's `{"detail": msg}` and the later original's
/// `{"error": msg, "status_code": n, "path": p}` in one object.
// (The shape of a body once `complete_error_bodies` completed it; this doc is the schema's.)
#[derive(Serialize, ToSchema)]
pub struct Detail {
    pub detail: String,
    /// The same message as `detail`.
    pub error: String,
    /// The HTTP status code.
    pub status_code: u16,
    /// The request's path.
    pub path: String,
}

/// 422: every problem found.
#[derive(Serialize, ToSchema)]
pub struct ValidationErrors<'a> {
    pub detail: &'a [FieldError],
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// Over a limit other than the body size (413).
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body was not read in time (408).
    #[error("{0}")]
    RequestTimeout(String),
    #[error("Not authenticated")]
    Unauthorized,
    #[error("Invalid API key")]
    Forbidden,
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    pub fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        ApiError::Internal(err.into())
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        ApiError::Validation(errors)
    }

    /// The answer for each request of a group commit that failed as a whole. A database write
    /// fails only as `Unavailable` (503, kept) or `Internal` (500, its cause kept as text).
    pub fn for_each_request(&self) -> Self {
        match self {
            ApiError::Unavailable(m) => ApiError::Unavailable(m.clone()),
            ApiError::Internal(cause) => ApiError::internal(cause.to_string()),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<DieselError> for ApiError {
    fn from(err: DieselError) -> Self {
        if ErrorClass::of(&err).is_transient() {
            tracing::warn!(error = %err, "database unavailable");
            return ApiError::Unavailable("Database unavailable, retry later".into());
        }
        if let DieselError::DatabaseError(DatabaseErrorKind::ReadOnlyTransaction, _) = err {
            tracing::error!(error = %err, "write attempted on a read-only connection");
        }
        ApiError::internal(err)
    }
}

impl From<crate::drift::DriftError> for ApiError {
    fn from(err: crate::drift::DriftError) -> Self {
        use crate::drift::DriftError;
        match err {
            DriftError::InsufficientData { .. } | DriftError::AlreadyDone(_) => {
                ApiError::BadRequest(err.to_string())
            }
            DriftError::NotFound(what) => ApiError::NotFound(what),
            DriftError::Db(db) => ApiError::from(db),
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for ApiError {
    fn from(err: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        tracing::warn!(error = %crate::db::describe_pool_error(&err), "no database connection");
        ApiError::Unavailable("Database unavailable, retry later".into())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge { .. } | ApiError::TooLarge(_) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        let body = match self {
            ApiError::Validation(errors) => {
                return res.json(ValidationErrors { detail: errors });
            }
            ApiError::Internal(err) => {
                let mut chain = err.to_string();
                let mut source = err.source();
                while let Some(cause) = source {
                    chain.push_str(": ");
                    chain.push_str(&cause.to_string());
                    source = cause.source();
                }
                tracing::error!(error = %chain, "internal error");
                json!({ "detail": "Internal server error" })
            }
            ApiError::Unauthorized => {
                res.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
                json!({ "detail": self.to_string() })
            }
            ApiError::Unavailable(_) => {
                res.insert_header((header::RETRY_AFTER, RETRY_AFTER_S.to_string()));
                json!({ "detail": self.to_string() })
            }
            _ => json!({ "detail": self.to_string() }),
        };
        res.json(body)
    }
}

/// Error bodies larger than this are left as they are (ours are a few dozen bytes).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Middleware: every JSON error body but a 422 carries both shapes the original used — Phase 1's
/// `{"detail": msg}` and the later version's `{"error": msg, "status_code": n, "path": p}` — in
/// one object, whichever part of the service produced it (a route, the key check, the fallback).
pub async fn complete_error_bodies(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let path = req.path().to_owned();
    let res = next.call(req).await?.map_into_boxed_body();
    let status = res.status();
    let is_json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let small =
        matches!(res.response().body().size(), BodySize::Sized(n) if n as usize <= MAX_ERROR_BODY);
    if status.as_u16() < 400 || status == StatusCode::UNPROCESSABLE_ENTITY || !is_json || !small {
        return Ok(res);
    }
    let (req, res) = res.into_parts();
    let (res, body) = res.into_parts();
    let bytes = match actix_web::body::to_bytes(body).await {
        Ok(bytes) => bytes,
        Err(err) => return Err(actix_web::error::ErrorInternalServerError(err.to_string())),
    };
    let bytes = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::Object(mut body)) if body.contains_key("detail") => {
            if let Some(serde_json::Value::String(msg)) = body.get("detail") {
                let msg = msg.clone();
                body.entry("error").or_insert(msg.into());
            }
            body.entry("status_code").or_insert(status.as_u16().into());
            body.entry("path").or_insert(path.into());
            serde_json::to_vec(&body).map_or(bytes, Into::into)
        }
        _ => bytes,
    };
    let mut res = res.set_body(BoxBody::new(bytes));
    res.headers_mut().remove(header::CONTENT_LENGTH);
    Ok(ServiceResponse::new(req, res))
}

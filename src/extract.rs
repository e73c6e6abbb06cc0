//! Request extractors the route sets share: [`RunId`], the `{run_id}` of a path.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::{Ready, ready};
use serde::Deserialize;
use serde_json::Value;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::error::{ApiError, Detail, ValidationErrors};
use crate::model::FieldError;

/// The `{run_id}` segment of a route's path, a UUID; a malformed one is a 422 naming it, as
/// FastAPI answers (docs/api.md, Errors and CORS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, IntoParams)]
#[into_params(names("run_id"), parameter_in = Path)]
pub struct RunId(
    /// The run's id
    pub Uuid,
);

/// What a route about one run answers for its `{run_id}`: listed in its `responses(...)`.
#[derive(utoipa::IntoResponses)]
pub enum RunIdRefused {
    #[response(status = 404, description = "No such run")]
    Unknown(Detail),
    #[response(status = 422, description = "A malformed run id")]
    Malformed(ValidationErrors<'static>),
}

/// The segment as actix-web's `web::Path` gives it: percent-decoded.
#[derive(Deserialize)]
struct Segment {
    run_id: String,
}

fn malformed_at(name: &str) -> ApiError {
    ApiError::validation(vec![FieldError::new(
        "uuid_parsing",
        vec![Value::from("path"), Value::from(name)],
        "Input should be a valid UUID",
    )])
}

fn malformed() -> ApiError {
    malformed_at("run_id")
}

/// The UUID in the path segment `name` of a route (`{drift_id}`, `{baseline_id}`, …); a
/// malformed one is a 422 naming it.
pub fn path_uuid(req: &HttpRequest, name: &str) -> Result<Uuid, ApiError> {
    req.match_info()
        .get(name)
        .and_then(|segment| Uuid::parse_str(segment).ok())
        .ok_or_else(|| malformed_at(name))
}

impl FromRequest for RunId {
    type Error = ApiError;
    type Future = Ready<Result<RunId, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let segment = web::Path::<Segment>::extract(req).into_inner();
        let run_id = segment.ok().and_then(|s| Uuid::parse_str(&s.run_id).ok());
        ready(run_id.map(RunId).ok_or_else(malformed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn extract(path: &str) -> Result<RunId, ApiError> {
        let req = TestRequest::with_uri(path)
            .param(
                "run_id",
                path.rsplit('/').next().unwrap_or_default().to_owned(),
            )
            .to_http_request();
        RunId::extract(&req).into_inner()
    }

    #[test]
    fn a_uuid_is_extracted_and_anything_else_is_a_named_422() {
        let id = Uuid::now_v7();
        assert_eq!(
            extract(&format!("/v1/runs/{id}")).map_err(|e| e.to_string()),
            Ok(RunId(id))
        );
        let Err(ApiError::Validation(errors)) = extract("/v1/runs/not-a-uuid") else {
            panic!("expected 422")
        };
        assert_eq!(
            serde_json::to_value(&errors).unwrap_or_default(),
            serde_json::json!([{"type": "uuid_parsing", "loc": ["path", "run_id"],
                                "msg": "Input should be a valid UUID"}])
        );
    }
}

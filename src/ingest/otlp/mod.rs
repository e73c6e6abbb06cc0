//! OpenTelemetry ingest (docs/api.md, OpenTelemetry): `POST /v1/traces` (OTLP/HTTP, protobuf or
//! JSON, gzip, chunked) and OTLP/gRPC on `server.otlp_grpc_addr`; both map spans with [`map`] and
//! store them with [`store`]. Runs still `running` after `otlp.finalize_after_s` of silence are
//! closed by [`run_finalizer`].

pub mod grpc;
pub mod map;
pub mod wire;

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, post, web};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tokio_util::sync::CancellationToken;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::db::PgPool;
use crate::error::{ApiError, RETRY_AFTER_S};

use super::IngestState;
use super::body;
use crate::model::cost::{PriceBook, Tokens};
use crate::store::spans::TraceUpdate;
use crate::store::{self, TraceOutcome};

/// `google.rpc.Status`, the body of an OTLP/HTTP error (its `details` are never sent).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(post_traces);
}

/// How many spans an export request carries.
pub fn span_count(request: &ExportTraceServiceRequest) -> usize {
    request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum()
}

/// Refuses a request that would take more than `otlp.max_decoded_bytes` once decoded
/// ([`wire`]'s estimate), before it is decoded.
pub fn check_decoded_size(limit: usize, estimate: usize) -> Result<(), ApiError> {
    if estimate > limit {
        metrics::counter!("otlp_requests_refused_total", "reason" => "decoded_size").increment(1);
        return Err(ApiError::TooLarge(format!(
            "The export request would take about {estimate} bytes decoded, over \
             otlp.max_decoded_bytes ({limit}): send fewer spans or attributes per request"
        )));
    }
    Ok(())
}

/// Prices each span's step at its start (`cost::price_steps` for spans).
fn price_spans(book: &PriceBook, traces: &mut [TraceUpdate]) {
    let mut pricer = crate::cost::Pricer::new(book);
    for s in traces.iter_mut().flat_map(|t| &mut t.steps) {
        let tokens = Tokens::counted(
            s.input_tokens,
            s.output_tokens,
            s.cached_input_tokens,
            s.reasoning_tokens,
        );
        s.cost_nanos = pricer.cost(s.model.as_deref(), s.started_at, tokens);
    }
}

/// Maps and stores one export request; shared by OTLP/HTTP and OTLP/gRPC.
pub async fn export(
    state: &IngestState,
    request: &ExportTraceServiceRequest,
) -> Result<ExportTraceServiceResponse, ApiError> {
    let started = Instant::now();
    let max_spans = state.config.otlp.max_spans_per_request;
    let spans = span_count(request);
    if spans > max_spans {
        return Err(ApiError::TooLarge(format!(
            "An export request may carry at most {max_spans} spans (otlp.max_spans_per_request), not {spans}; send smaller batches"
        )));
    }
    let mut mapped = map::map_request(request, &state.rules);
    let outcomes = match mapped.traces.is_empty() {
        true => Vec::new(),
        false => {
            let book = state.price_book().await?;
            price_spans(&book, &mut mapped.traces);
            state
                .db
                .run(async |conn| {
                    let max_steps = state.config.ingest.max_steps_per_run;
                    Ok(store::write_traces(conn, &mapped.traces, max_steps).await?)
                })
                .await?
        }
    };
    let mut rejected = mapped.rejected_spans;
    let mut message = mapped.rejection.clone();
    if mapped.over_limit_attributes > 0 {
        metrics::counter!("otlp_attributes_over_limit_total")
            .increment(mapped.over_limit_attributes);
        message.get_or_insert_with(|| {
            format!(
                "{} attributes were dropped: over ingest.max_metadata_depth or ingest.max_metadata_bytes",
                mapped.over_limit_attributes
            )
        });
    }
    let mut stored_spans = 0u64;
    for (trace, outcome) in mapped.traces.iter().zip(&outcomes) {
        let spans = (trace.steps.len() + usize::from(trace.root.is_some())) as u64;
        match outcome {
            TraceOutcome::Stored { capped: 0 } => stored_spans += spans,
            TraceOutcome::Stored { capped } => {
                stored_spans += spans - *capped as u64;
                rejected += *capped as i64;
                message = Some(format!(
                    "trace {} reached {} steps (ingest.max_steps_per_run): {capped} spans were not stored",
                    trace.run_id, state.config.ingest.max_steps_per_run
                ));
            }
            TraceOutcome::NativeRun => {
                rejected += spans as i64;
                message = Some(format!(
                    "trace {} is a run ingested through /v1/runs; its spans were not merged",
                    trace.run_id
                ));
            }
        }
    }
    metrics::counter!("otlp_spans_received_total").increment(stored_spans + rejected.max(0) as u64);
    metrics::counter!("otlp_spans_stored_total").increment(stored_spans);
    metrics::counter!("otlp_spans_rejected_total").increment(rejected.max(0) as u64);
    metrics::histogram!("ingest_latency_seconds", "endpoint" => "traces")
        .record(started.elapsed().as_secs_f64());
    tracing::info!(
        traces = mapped.traces.len(),
        spans = stored_spans,
        rejected,
        dropped_attributes = mapped.dropped_attributes,
        "traces ingested"
    );
    Ok(ExportTraceServiceResponse {
        // With no span rejected, a message is a warning (OTLP's partial success allows it).
        partial_success: (rejected > 0 || message.is_some()).then(|| ExportTracePartialSuccess {
            rejected_spans: rejected,
            error_message: message.unwrap_or_default(),
        }),
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn of(req: &HttpRequest) -> Option<Encoding> {
        let value = req.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
        match value
            .split(';')
            .next()?
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// An error as OTLP/HTTP wants it: a `google.rpc.Status` in the request's encoding.
fn status_response(encoding: Encoding, status: StatusCode, message: String) -> HttpResponse {
    // The gRPC code that goes with the HTTP status.
    let code = match status.as_u16() {
        400 | 413 | 415 | 422 => 3,
        401 => 16,
        403 => 7,
        503 => 14,
        _ => 13,
    };
    let mut res = HttpResponse::build(status);
    res.content_type(encoding.content_type());
    if status == StatusCode::SERVICE_UNAVAILABLE {
        res.insert_header((header::RETRY_AFTER, RETRY_AFTER_S.to_string()));
    }
    match encoding {
        Encoding::Protobuf => res.body(RpcStatus { code, message }.encode_to_vec()),
        Encoding::Json => {
            res.body(serde_json::json!({ "code": code, "message": message }).to_string())
        }
    }
}

fn error_response(encoding: Encoding, err: ApiError) -> HttpResponse {
    let status = err.status_code();
    if status.is_server_error() && !matches!(err, ApiError::Unavailable(_)) {
        // The generic answer logs the cause once.
        let _ = err.error_response();
        return status_response(encoding, status, "internal error".into());
    }
    status_response(encoding, status, err.to_string())
}

/// OTLP/HTTP trace export (protobuf or JSON; gzip and chunked bodies accepted).
#[utoipa::path(
    tag = "ingest",
    request_body(content = Vec<u8>, description = "An OTLP ExportTraceServiceRequest",
        content(("application/x-protobuf"), ("application/json"))),
    responses(
        (status = 200, description = "ExportTraceServiceResponse, in the request's encoding; `partial_success` counts rejected spans"),
        (status = 400, description = "An undecodable body: google.rpc.Status"),
        (status = 413, description = "Over server.max_body_bytes or otlp.max_spans_per_request: google.rpc.Status"),
        (status = 415, description = "Neither application/x-protobuf nor application/json"),
        (status = 503, description = "Database unavailable; retry after Retry-After: google.rpc.Status"),
    )
)]
#[post("/v1/traces")]
async fn post_traces(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IngestState>,
) -> HttpResponse {
    let Some(encoding) = Encoding::of(&req) else {
        return status_response(
            Encoding::Json,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported Content-Type: send application/x-protobuf or application/json".into(),
        );
    };
    let mut body = match body::read_body(&req, payload, &state.bodies).await {
        Ok(body) => body,
        Err(err) => return error_response(encoding, err),
    };
    // What it will take decoded, from its bytes (None: not JSON, for the decoder to name).
    // Large bodies are walked and decoded off the event loop.
    let estimate = {
        let bytes = body.bytes.clone();
        body::off_loop(body.is_large(), move || match encoding {
            Encoding::Protobuf => Some(wire::estimate_protobuf(&bytes)),
            Encoding::Json => wire::estimate_json(&bytes),
        })
        .await
    };
    let estimate = match estimate {
        Ok(estimate) => estimate,
        Err(err) => return error_response(encoding, err),
    };
    if let Some(estimate) = estimate {
        if let Err(err) = check_decoded_size(state.config.otlp.max_decoded_bytes, estimate) {
            return error_response(encoding, err);
        }
        if let Err(err) = body.reserve(&state.bodies, estimate).await {
            return error_response(encoding, err);
        }
    }
    let bytes = body.bytes.clone();
    let decoded = body::off_loop(body.is_large(), move || match encoding {
        Encoding::Protobuf => {
            ExportTraceServiceRequest::decode(bytes.as_ref()).map_err(|e| e.to_string())
        }
        Encoding::Json => {
            serde_json::from_slice::<ExportTraceServiceRequest>(&bytes).map_err(|e| e.to_string())
        }
    })
    .await;
    let decoded = match decoded {
        Ok(decoded) => decoded,
        Err(err) => return error_response(encoding, err),
    };
    let request = match decoded {
        Ok(request) => request,
        Err(e) => {
            return status_response(
                encoding,
                StatusCode::BAD_REQUEST,
                format!("Cannot decode the export request: {e}"),
            );
        }
    };
    match export(&state, &request).await {
        Err(err) => error_response(encoding, err),
        Ok(response) => {
            let mut res = HttpResponse::Ok();
            res.content_type(encoding.content_type());
            match encoding {
                Encoding::Protobuf => res.body(response.encode_to_vec()),
                // OTLP/JSON: lowerCamelCase, int64 as a string, an empty message as {}.
                Encoding::Json => res.body(match response.partial_success {
                    Some(p) => serde_json::json!({"partialSuccess": {"rejectedSpans": p.rejected_spans.to_string(), "errorMessage": p.error_message}}).to_string(),
                    None => "{}".to_owned(),
                }),
            }
        }
    }
}

/// Closes stale OTLP runs every so often (a quarter of `after_s`, between 0.2 and 30 s), until
/// `stop` is cancelled (a pass in progress ends after its current batch).
pub async fn run_finalizer(pool: PgPool, after_s: u64, stop: CancellationToken) {
    let every = Duration::from_millis((after_s * 250).clamp(200, 30_000));
    // The first pass waits a period too: nothing can be stale at start, and the pool is busiest then.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    while stop.run_until_cancelled(tick.tick()).await.is_some() {
        let Ok(mut conn) = pool.get().await else {
            continue;
        };
        loop {
            match store::finalize_stale(&mut conn, after_s, 1000).await {
                Ok(0) => break,
                Ok(n) => {
                    metrics::counter!("otlp_runs_finalized_total").increment(n as u64);
                    tracing::info!(runs = n, after_s, "closed OTLP runs without a root span");
                    if n < 1000 || stop.is_cancelled() {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "finalizing OTLP runs failed; will retry");
                    break;
                }
            }
        }
    }
}

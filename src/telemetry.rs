//! Logs (tracing, `text` or one JSON object per line), the process-wide Prometheus registry,
//! and the middleware that counts and times every request by route pattern.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::auth::ListenerCtx;
use crate::config::{LogConfig, LogFormat, normalize_level};

/// Histogram buckets in seconds, for every latency metric.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Dependencies whose debug logs carry request or row values, held at info.
const QUIET: &str = "tokio_postgres=info,postgres_protocol=info,h2=info,hyper=info,tonic=info";

/// Installs the global subscriber, writing to stderr; `RUST_LOG` overrides `log.level`. A
/// second call does nothing. Colour codes only when stderr is a terminal (a log file or a
/// collector gets plain text).
pub fn init_logging(cfg: &LogConfig) {
    use std::io::IsTerminal;
    init_logging_to(cfg, std::io::stderr, std::io::stderr().is_terminal());
}

/// [`init_logging`] to any writer (the test harness captures a whole session's logs).
pub fn init_logging_to<W>(cfg: &LogConfig, writer: W, ansi: bool)
where
    W: for<'a> tracing_subscriber::fmt::MakeWriter<'a> + Send + Sync + 'static,
{
    // tokio-postgres logs every statement's bound values at debug: the values of runs (metadata
    // included) must never reach the logs, so it stays at info whatever `log.level` says
    // (an explicit RUST_LOG still rules).
    let mut level = normalize_level(&cfg.level);
    if level == "debug" || level == "trace" {
        level = format!("{level},{QUIET}");
    }
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer);
    let _ = match cfg.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Runs per group-commit transaction: powers of two up to the default group size.
const GROUP_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide registry, installed on first use (both listeners of `--role all` share it).
pub fn install_metrics() -> PrometheusHandle {
    METRICS
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let builder = builder
                .set_buckets(LATENCY_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        metrics_exporter_prometheus::Matcher::Full(
                            "ingest_group_commit_runs".into(),
                        ),
                        GROUP_BUCKETS,
                    )
                })
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            describe_metrics();
            handle
        })
        .clone()
}

fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "runs_ingested_total",
        "Runs stored (new, or a running run replaced)."
    );
    describe_counter!(
        "runs_failed_total",
        "Runs refused: reason=invalid (validation) or rejected (by the database)."
    );
    describe_counter!(
        "runs_duplicate_total",
        "Resends of a run already stored as final, answered 200 unchanged."
    );
    describe_counter!("steps_ingested_total", "Steps stored.");
    describe_counter!("runs_purged_total", "Runs deleted by retention.");
    describe_counter!(
        "alerts_delivered_total",
        "Drift alerts accepted (2xx) by their channel (slack, pagerduty, webhook)."
    );
    describe_counter!(
        "alerts_retried_total",
        "Drift alert deliveries that failed and will be retried, by channel."
    );
    describe_counter!(
        "alerts_failed_total",
        "Drift alerts given up after alerts.max_attempts failed deliveries, by channel."
    );
    describe_counter!(
        "privacy_violations_total",
        "Privacy rule hits by rule (content_key, secret_value) and action."
    );
    describe_counter!(
        "otlp_spans_received_total",
        "OTLP spans received (stored or rejected)."
    );
    describe_counter!(
        "otlp_spans_stored_total",
        "OTLP spans stored as runs or steps."
    );
    describe_counter!(
        "otlp_spans_rejected_total",
        "OTLP spans rejected (invalid ids, or a trace that is a native run)."
    );
    describe_counter!(
        "otlp_attributes_over_limit_total",
        "OTLP span attributes dropped for ingest.max_metadata_depth or max_metadata_bytes."
    );
    describe_counter!(
        "otlp_runs_finalized_total",
        "OTLP runs closed by the finalizer (no root span within otlp.finalize_after_s)."
    );
    describe_counter!(
        "otlp_grpc_requests_total",
        "OTLP/gRPC export calls by status code."
    );
    describe_counter!(
        "http_requests_total",
        "HTTP requests by role, method, route pattern and status."
    );
    describe_histogram!(
        "ingest_latency_seconds",
        Unit::Seconds,
        "Time to validate and commit an ingest request."
    );
    describe_histogram!(
        "ingest_group_commit_runs",
        "Runs per group-commit transaction of POST /v1/runs."
    );
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by role, method and route pattern."
    );
    describe_gauge!(
        "db_pool_connections",
        "Database pool connections by pool and state (idle, in_use)."
    );
    describe_gauge!("db_pool_max_connections", "Database pool maximum size.");
    describe_gauge!(
        "db_pool_waiting_requests",
        "Requests waiting for a database connection."
    );
}

/// Counts and times each request, labelled by route pattern (never the raw path), and logs it.
/// A request method as a metric label: the standard methods by name, anything else `other`, so
/// made-up methods cannot grow `/metrics`.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::HEAD, "HEAD"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::PATCH, "PATCH"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(m, _)| m == method)
        .map_or("other", |(_, label)| label)
}

pub async fn track_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let role = req
        .app_data::<web::Data<ListenerCtx>>()
        .map_or("unknown", |ctx| ctx.listener.as_str());
    let result = next.call(req).await;
    let status = match &result {
        Ok(res) => res.status().as_u16(),
        Err(err) => err.as_response_error().status_code().as_u16(),
    };
    let elapsed = started.elapsed();
    metrics::counter!("http_requests_total", "role" => role, "method" => method, "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "role" => role, "method" => method, "route" => route.clone())
        .record(elapsed.as_secs_f64());
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(role, method, route, status, latency_ms, "request failed");
    } else {
        tracing::info!(role, method, route, status, latency_ms, "request completed");
    }
    result
}

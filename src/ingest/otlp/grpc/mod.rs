//! OTLP/gRPC: tonic's `TraceService` from opentelemetry-proto, gzip accepted, beside actix-web
//! in the same tokio runtime. API keys come as `x-api-key` or `authorization: Bearer` metadata.
//!
//! Nothing a client without a key sends costs more than reading its headers: the key is checked
//! by an interceptor, before the message is read. For everyone, what the listener holds is
//! bounded (`otlp.grpc_*`): connections (more are closed as they arrive; a silent one is closed
//! after the handshake timeout; every one is asked to go away at its maximum age), streams per
//! connection, HTTP/2 flow-control windows, header size, request time (reading the message
//! included), and how many exports are decoded at once in the process.

mod connection;
mod export_limit;
mod service;

use std::io;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, oneshot};
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Status};

use crate::auth::key_matches;
use crate::config::{OtlpConfig, SecretList};
use export_limit::ExportLimit;
pub use service::OtlpGrpc;
use service::{ExportServer, count};

/// The key check, on the request's headers only (its message is not read yet).
fn authorize(keys: &SecretList, request: &Request<()>) -> Result<(), Status> {
    let result = check_key(keys, request);
    if let Err(status) = &result {
        count(status.code());
    }
    result
}

/// Whether the request's `x-api-key` or `authorization: Bearer` is one of `keys` (every request
/// passes when there are none).
pub fn check_key(keys: &SecretList, request: &Request<()>) -> Result<(), Status> {
    if keys.is_empty() {
        return Ok(());
    }
    let md = request.metadata();
    let key = md
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .or_else(|| {
            let auth = md.get("authorization")?.to_str().ok()?.trim();
            let (scheme, token) = auth.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    match key {
        None => Err(Status::unauthenticated("Not authenticated")),
        Some(key) if key_matches(keys, key) => Ok(()),
        Some(_) => Err(Status::permission_denied("Invalid API key")),
    }
}

/// Serves OTLP/gRPC on `tcp` until `stop` fires, then finishes in-flight exports.
pub async fn serve(
    tcp: TcpListener,
    service: OtlpGrpc,
    max_bytes: usize,
    limits: OtlpConfig,
    stop: oneshot::Receiver<()>,
) -> io::Result<()> {
    tcp.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(tcp)?;
    let keys = service.keys.clone();
    let server = ExportServer {
        max_decoded: service.state.config.otlp.max_decoded_bytes,
        inner: Arc::new(service),
        max_bytes,
    };
    let server = InterceptedService::new(server, move |request: Request<()>| {
        authorize(&keys, &request).map(|()| request)
    });
    let incoming = connection::incoming(
        listener,
        limits.grpc_max_connections,
        Duration::from_secs(limits.grpc_handshake_timeout_s),
    );
    let exports = ExportLimit {
        permits: Arc::new(Semaphore::new(limits.grpc_max_concurrent_exports)),
        wait: Duration::from_secs(limits.grpc_request_timeout_s),
    };
    tonic::transport::Server::builder()
        .layer(exports)
        .timeout(Duration::from_secs(limits.grpc_request_timeout_s))
        .max_concurrent_streams(limits.grpc_max_concurrent_streams)
        .initial_stream_window_size(256 * 1024)
        .initial_connection_window_size(1024 * 1024)
        .http2_max_header_list_size(16 * 1024)
        .http2_keepalive_interval(Some(Duration::from_secs(60)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .max_connection_age(Duration::from_secs(limits.grpc_max_connection_age_s))
        .max_connection_age_grace(Duration::from_secs(limits.grpc_request_timeout_s))
        .add_service(server)
        .serve_with_incoming_shutdown(incoming, async {
            let _ = stop.await;
        })
        .await
        .map_err(io::Error::other)
}

//! OTLP/gRPC: tonic's `TraceService` from opentelemetry-proto, gzip accepted, beside actix-web
//! in the same tokio runtime. API keys come as `x-api-key` or `authorization: Bearer` metadata.

use std::net::TcpListener;

use actix_web::web;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::sync::oneshot;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use crate::auth::key_matches;
use crate::error::ApiError;
use crate::state::AppState;

pub struct OtlpGrpc {
    pub state: web::Data<AppState>,
    pub keys: Vec<String>,
}

impl OtlpGrpc {
    fn authorize(&self, request: &Request<ExportTraceServiceRequest>) -> Result<(), Status> {
        if self.keys.is_empty() {
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
            Some(key) if key_matches(&self.keys, key) => Ok(()),
            Some(_) => Err(Status::permission_denied("Invalid API key")),
        }
    }
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let result = match self.authorize(&request) {
            Err(status) => Err(status),
            Ok(()) => match super::export(&self.state, request.get_ref()).await {
                Ok(response) => Ok(Response::new(response)),
                Err(ApiError::Unavailable(message)) => Err(Status::unavailable(message)),
                Err(ApiError::TooLarge(message)) => Err(Status::invalid_argument(message)),
                Err(err) => {
                    tracing::error!(error = %err, "OTLP/gRPC export failed");
                    Err(Status::internal("internal error"))
                }
            },
        };
        let code = match &result {
            Ok(_) => "ok".to_owned(),
            Err(status) => format!("{:?}", status.code()).to_lowercase(),
        };
        metrics::counter!("otlp_grpc_requests_total", "code" => code).increment(1);
        result
    }
}

/// Serves OTLP/gRPC on `tcp` until `stop` fires, then finishes in-flight exports.
pub async fn serve(
    tcp: TcpListener,
    service: OtlpGrpc,
    max_bytes: usize,
    stop: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    tcp.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(tcp)?;
    let server = TraceServiceServer::new(service)
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(max_bytes);
    tonic::transport::Server::builder()
        .add_service(server)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
            let _ = stop.await;
        })
        .await
        .map_err(std::io::Error::other)
}

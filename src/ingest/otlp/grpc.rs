//! OTLP/gRPC: tonic's `TraceService` from opentelemetry-proto, gzip accepted, beside actix-web
//! in the same tokio runtime. API keys come as `x-api-key` or `authorization: Bearer` metadata.
//!
//! Nothing a client without a key sends costs more than reading its headers: the key is checked
//! by an interceptor, before the message is read. For everyone, what the listener holds is
//! bounded (`otlp.grpc_*`): connections (more are closed as they arrive; a silent one is closed
//! after the handshake timeout; every one is asked to go away at its maximum age), streams per
//! connection, HTTP/2 flow-control windows, header size, request time (reading the message
//! included), and how many exports are decoded at once in the process.

use std::io;
use std::net::TcpListener;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::web;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::time::Sleep;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::codec::{
    BufferSettings, Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings,
};
use tonic::codegen::http;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::{Request, Response, Status};
use tonic_prost::{ProstDecoder, ProstEncoder};

use crate::auth::key_matches;
use crate::config::OtlpConfig;
use crate::error::ApiError;
use crate::state::AppState;

pub struct OtlpGrpc {
    pub state: web::Data<AppState>,
    pub keys: Vec<String>,
}

/// The key check, on the request's headers only (its message is not read yet).
fn authorize(keys: &[String], request: &Request<()>) -> Result<(), Status> {
    let result = check_key(keys, request);
    if let Err(status) = &result {
        count(status.code());
    }
    result
}

/// Whether the request's `x-api-key` or `authorization: Bearer` is one of `keys` (every request
/// passes when there are none).
pub fn check_key(keys: &[String], request: &Request<()>) -> Result<(), Status> {
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

fn count(code: tonic::Code) {
    let code = match code {
        tonic::Code::Ok => "ok".to_owned(),
        other => format!("{other:?}").to_lowercase(),
    };
    metrics::counter!("otlp_grpc_requests_total", "code" => code).increment(1);
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let result = match super::export(&self.state, request.get_ref()).await {
            Ok(response) => Ok(Response::new(response)),
            Err(ApiError::Unavailable(message)) => Err(Status::unavailable(message)),
            Err(ApiError::TooLarge(message)) => Err(Status::invalid_argument(message)),
            Err(err) => {
                tracing::error!(error = %err, "OTLP/gRPC export failed");
                Err(Status::internal("internal error"))
            }
        };
        count(
            result
                .as_ref()
                .map_or_else(Status::code, |_| tonic::Code::Ok),
        );
        result
    }
}

/// The path of the one method served.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// `TraceService` as opentelemetry-proto's generated `TraceServiceServer` serves it, but with a
/// codec that refuses a message over `otlp.max_decoded_bytes` before decoding it (the generated
/// server hard-codes prost's codec).
#[derive(Clone)]
struct ExportServer {
    inner: Arc<OtlpGrpc>,
    max_bytes: usize,
    max_decoded: usize,
}

impl tonic::server::NamedService for ExportServer {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

struct ExportMethod(Arc<OtlpGrpc>);

impl tonic::server::UnaryService<ExportTraceServiceRequest> for ExportMethod {
    type Response = ExportTraceServiceResponse;
    type Future = BoxFuture<'static, Result<Response<ExportTraceServiceResponse>, Status>>;

    fn call(&mut self, request: Request<ExportTraceServiceRequest>) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move { inner.export(request).await })
    }
}

impl<B> tower::Service<http::Request<B>> for ExportServer
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = HttpResponse;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<'static, Result<HttpResponse, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != EXPORT_PATH {
            return Box::pin(async { Ok(Status::unimplemented("").into_http()) });
        }
        let mut gzip = EnabledCompressionEncodings::default();
        gzip.enable(CompressionEncoding::Gzip);
        let mut grpc = tonic::server::Grpc::new(BoundedCodec {
            max_decoded: self.max_decoded,
        })
        .apply_compression_config(gzip, gzip)
        .apply_max_message_size_config(Some(self.max_bytes), None);
        let method = ExportMethod(self.inner.clone());
        Box::pin(async move { Ok(grpc.unary(method, request).await) })
    }
}

/// Prost's codec, with [`wire`](super::wire)'s estimate checked before a message is decoded.
struct BoundedCodec {
    max_decoded: usize,
}

impl Codec for BoundedCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = ExportTraceServiceRequest;
    type Encoder = ProstEncoder<ExportTraceServiceResponse>;
    type Decoder = BoundedDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        BoundedDecoder {
            inner: ProstDecoder::default(),
            max_decoded: self.max_decoded,
        }
    }
}

struct BoundedDecoder {
    inner: ProstDecoder<ExportTraceServiceRequest>,
    max_decoded: usize,
}

impl Decoder for BoundedDecoder {
    type Item = ExportTraceServiceRequest;
    type Error = Status;

    fn decode(
        &mut self,
        buf: &mut DecodeBuf<'_>,
    ) -> Result<Option<ExportTraceServiceRequest>, Status> {
        use prost::bytes::Buf;
        // The message is one contiguous buffer (tonic reads it whole before decoding).
        let estimate = if buf.chunk().len() == buf.remaining() {
            super::wire::estimate_protobuf(buf.chunk())
        } else {
            let bytes = buf.copy_to_bytes(buf.remaining());
            let estimate = super::wire::estimate_protobuf(&bytes);
            super::check_decoded_size(self.max_decoded, estimate).map_err(refused)?;
            return ExportTraceServiceRequest::decode(bytes)
                .map(Some)
                .map_err(|e| Status::invalid_argument(e.to_string()));
        };
        super::check_decoded_size(self.max_decoded, estimate).map_err(refused)?;
        self.inner.decode(buf)
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.inner.buffer_settings()
    }
}

/// A message refused before decoding: INVALID_ARGUMENT (not retried), counted.
fn refused(err: ApiError) -> Status {
    count(tonic::Code::InvalidArgument);
    Status::invalid_argument(err.to_string())
}

/// A connection counted against `otlp.grpc_max_connections` while it is open, and closed if it
/// sends nothing within the handshake timeout.
struct Limited {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
    /// Until the first byte arrives.
    handshake: Option<Pin<Box<Sleep>>>,
}

impl Connected for Limited {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Limited {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                this.handshake = None;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => match this.handshake.as_mut().map(|t| t.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => {
                    metrics::counter!("otlp_grpc_connections_closed_total", "reason" => "handshake_timeout")
                        .increment(1);
                    Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no bytes within the handshake timeout",
                    )))
                }
                _ => Poll::Pending,
            },
            other => other,
        }
    }
}

impl AsyncWrite for Limited {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// At most so many requests read, decode and store their message at once, process-wide; the
/// others wait (their bodies held back by HTTP/2 flow control) at most `wait`, then are answered
/// `RESOURCE_EXHAUSTED` (exporters retry it).
#[derive(Clone)]
struct ExportLimit {
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl<S> tower::Layer<S> for ExportLimit {
    type Service = ExportLimited<S>;

    fn layer(&self, inner: S) -> ExportLimited<S> {
        ExportLimited {
            inner,
            limit: self.clone(),
        }
    }
}

#[derive(Clone)]
struct ExportLimited<S> {
    inner: S,
    limit: ExportLimit,
}

type HttpResponse = tonic::codegen::http::Response<tonic::body::Body>;

impl<S, B> tower::Service<tonic::codegen::http::Request<B>> for ExportLimited<S>
where
    S: tower::Service<tonic::codegen::http::Request<B>, Response = HttpResponse>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = futures_util::future::BoxFuture<'static, Result<HttpResponse, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: tonic::codegen::http::Request<B>) -> Self::Future {
        // The clone that was made ready serves this request (tower's usual hand-over).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let ExportLimit { permits, wait } = self.limit.clone();
        Box::pin(async move {
            match tokio::time::timeout(wait, permits.acquire_owned()).await {
                Ok(Ok(_permit)) => {
                    let answer = inner.call(request).await;
                    crate::memory::large_work_done();
                    answer
                }
                _ => {
                    count(tonic::Code::ResourceExhausted);
                    Ok(Status::resource_exhausted("Too many exports at once, retry").into_http())
                }
            }
        })
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
    let connections = Arc::new(Semaphore::new(limits.grpc_max_connections));
    let handshake = Duration::from_secs(limits.grpc_handshake_timeout_s);
    let incoming = TcpListenerStream::new(listener).filter_map(move |accepted| {
        let connections = connections.clone();
        async move {
            let stream = match accepted {
                Ok(stream) => stream,
                Err(err) => return Some(Err(err)),
            };
            match connections.try_acquire_owned() {
                Ok(permit) => {
                    let _ = stream.set_nodelay(true);
                    Some(Ok(Limited {
                        stream,
                        _permit: permit,
                        handshake: Some(Box::pin(tokio::time::sleep(handshake))),
                    }))
                }
                // Over the limit: closed at once (dropped), the others keep being served.
                Err(_) => {
                    metrics::counter!("otlp_grpc_connections_closed_total", "reason" => "over_limit")
                        .increment(1);
                    None
                }
            }
        }
    });
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

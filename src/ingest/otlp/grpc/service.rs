//! The one method served, `TraceService/Export`: [`OtlpGrpc`] exports through the same path as
//! OTLP/HTTP, served as opentelemetry-proto's generated server would but with a codec that checks
//! a message's decoded size before decoding it; every answer is counted by its code.

use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::web;
use futures_util::future::BoxFuture;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::TraceService;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::codec::{
    BufferSettings, Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings,
};
use tonic::codegen::http;
use tonic::{Request, Response, Status};
use tonic_prost::{ProstDecoder, ProstEncoder};

use crate::error::ApiError;
use crate::ingest::IngestState;
use crate::ingest::otlp::{self, check_decoded_size, wire};

/// The gRPC service: the ingest routes' state and the ingest keys.
pub struct OtlpGrpc {
    pub state: web::Data<IngestState>,
    pub keys: crate::config::SecretList,
}

/// Counts an answer in `otlp_grpc_requests_total` by its code.
pub(super) fn count(code: tonic::Code) {
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
        let result = match otlp::export(&self.state, request.get_ref()).await {
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

/// An HTTP answer of the gRPC listener.
pub(super) type HttpResponse = tonic::codegen::http::Response<tonic::body::Body>;

/// The path of the one method served.
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// `TraceService` as opentelemetry-proto's generated `TraceServiceServer` serves it, but with a
/// codec that refuses a message over `otlp.max_decoded_bytes` before decoding it (the generated
/// server hard-codes prost's codec).
#[derive(Clone)]
pub(super) struct ExportServer {
    pub(super) inner: Arc<OtlpGrpc>,
    pub(super) max_bytes: usize,
    pub(super) max_decoded: usize,
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

/// Prost's codec, with [`wire`]'s estimate checked before a message is decoded.
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
        // The message is one contiguous buffer (tonic reads it whole before decoding); were it
        // not, it is copied into one.
        if buf.chunk().len() == buf.remaining() {
            check(self.max_decoded, buf.chunk())?;
            return self.inner.decode(buf);
        }
        let bytes = buf.copy_to_bytes(buf.remaining());
        check(self.max_decoded, &bytes)?;
        ExportTraceServiceRequest::decode(bytes)
            .map(Some)
            .map_err(|e| Status::invalid_argument(e.to_string()))
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.inner.buffer_settings()
    }
}

/// Refuses `message` when its decoded size would be over `max_decoded`.
fn check(max_decoded: usize, message: &[u8]) -> Result<(), Status> {
    check_decoded_size(max_decoded, wire::estimate_protobuf(message)).map_err(refused)
}

/// A message refused before decoding: INVALID_ARGUMENT (not retried), counted.
fn refused(err: ApiError) -> Status {
    count(tonic::Code::InvalidArgument);
    Status::invalid_argument(err.to_string())
}

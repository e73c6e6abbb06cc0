//! How many exports are read, decoded and stored at once, process-wide: a tower layer.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::Semaphore;
use tonic::Status;

use super::service::{HttpResponse, count};

/// At most so many requests read, decode and store their message at once, process-wide; the
/// others wait (their bodies held back by HTTP/2 flow control) at most `wait`, then are answered
/// `RESOURCE_EXHAUSTED` (exporters retry it).
#[derive(Clone)]
pub(super) struct ExportLimit {
    pub(super) permits: Arc<Semaphore>,
    pub(super) wait: Duration,
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
pub(super) struct ExportLimited<S> {
    inner: S,
    limit: ExportLimit,
}

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

//! Reading a request body within `server.max_body_bytes`, counted after decompression and
//! enforced while reading, so neither a large body nor a gzip bomb is ever held whole; within
//! `server.body_read_timeout_s` (a slow sender gets 408); and, for bodies over 64 KiB, within a
//! process-wide budget of bytes being read and processed at once
//! (`server.max_inflight_body_bytes`): a large body waits for room, so memory stays bounded
//! however many arrive together, while small requests never wait.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut, Payload};
use flate2::read::MultiGzDecoder;
use futures_util::StreamExt;

use crate::config::ServerConfig;
use crate::error::{ApiError, Detail};
use crate::model::input::json_error;

/// Bodies up to this size take nothing from the budget (connections bound them already).
const SMALL_BODY: usize = 64 * 1024;

/// Gzip bodies up to this size (compressed) are inflated on the event loop.
const GZIP_INLINE: usize = 1024;

/// How bodies are read: the size limit, the read deadline, the shared budget.
pub struct BodyLimits {
    pub max_bytes: usize,
    read_timeout: Duration,
    budget: Arc<Semaphore>,
    budget_bytes: usize,
}

impl BodyLimits {
    pub fn new(server: &ServerConfig) -> BodyLimits {
        let budget_bytes = server.max_inflight_body_bytes.min(Semaphore::MAX_PERMITS);
        BodyLimits {
            max_bytes: server.max_body_bytes,
            read_timeout: Duration::from_secs(server.body_read_timeout_s),
            budget: Arc::new(Semaphore::new(budget_bytes)),
            budget_bytes,
        }
    }
}

/// A body read whole, and its share of the budget, given back when this is dropped: keep it
/// until the body's data is no longer held.
pub struct Body {
    pub bytes: Bytes,
    _share: Option<OwnedSemaphorePermit>,
}

impl Drop for Body {
    fn drop(&mut self) {
        if self._share.is_some() {
            crate::memory::large_work_done();
        }
    }
}

impl Body {
    /// Whether the body is over 64 KiB: worth parsing off the event loop.
    pub fn is_large(&self) -> bool {
        self.bytes.len() > SMALL_BODY
    }

    /// Makes the body's share of the budget `n` bytes (what it will take once decoded, when that
    /// is more than its bytes), waiting for room within the read timeout. What it held is given
    /// back first and the whole asked for at once, so bodies cannot deadlock each holding part.
    pub async fn reserve(&mut self, limits: &BodyLimits, n: usize) -> Result<(), ApiError> {
        let held = self._share.as_ref().map_or(0, |p| p.num_permits());
        if n <= SMALL_BODY || n <= held {
            return Ok(());
        }
        self._share = None;
        match tokio::time::timeout(limits.read_timeout, take(limits, n)).await {
            Ok(share) => {
                self._share = share;
                Ok(())
            }
            Err(_) => {
                metrics::counter!("http_body_budget_timeouts_total").increment(1);
                Err(ApiError::Unavailable(
                    "Too many large requests at once (server.max_inflight_body_bytes), retry later"
                        .into(),
                ))
            }
        }
    }
}

/// Runs `work` on the blocking pool when `large` (parsing, inflating or decoding a large body),
/// off the worker's event loop, which serves other connections meanwhile; else here.
pub async fn off_loop<T: Send + 'static>(
    large: bool,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    if !large {
        return Ok(work());
    }
    actix_web::web::block(work)
        .await
        .map_err(ApiError::internal)
}

/// Waits for `n` bytes of the budget. A body asks once, holding nothing of it before, so bodies
/// cannot deadlock each holding part of the budget while waiting for more.
async fn take(limits: &BodyLimits, n: usize) -> Option<OwnedSemaphorePermit> {
    let n = n.min(limits.budget_bytes) as u32;
    // The semaphore is never closed.
    limits.budget.clone().acquire_many_owned(n).await.ok()
}

/// Gives back what `share` holds beyond `n` bytes.
fn keep_only(share: &mut Option<OwnedSemaphorePermit>, n: usize) {
    if let Some(permit) = share {
        let extra = permit.num_permits().saturating_sub(n);
        if extra > 0 {
            drop(permit.split(extra));
        }
    }
}

/// The body's declared encoding.
enum Encoding {
    Identity,
    Gzip,
}

/// Checks the Content-Type: JSON (or `+json`), or none at all, which is read as JSON.
pub fn require_json(req: &HttpRequest) -> Result<(), ApiError> {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") || essence.is_empty() {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "Unsupported Content-Type `{essence}`: send application/json"
        )))
    }
}

fn encoding(req: &HttpRequest) -> Result<Encoding, ApiError> {
    let Some(value) = req.headers().get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    match value
        .to_str()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "Unsupported Content-Encoding `{other}`: send gzip or no encoding"
        ))),
    }
}

/// What a route answers when [`read_json`] refuses its body: listed in its `responses(...)`.
#[derive(utoipa::IntoResponses)]
pub enum Refused {
    #[response(status = 400, description = "An undecodable gzip body")]
    Undecodable(Detail),
    #[response(status = 413, description = "Over server.max_body_bytes")]
    TooLarge(Detail),
    #[response(status = 415, description = "Not JSON")]
    NotJson(Detail),
}

/// The body as JSON (required by `Content-Type`, a missing one read as JSON), decoded as `T` (a
/// `serde_json::Value`, or a type that decodes any JSON as one would, such as
/// [`crate::model::input::RawRun`]), with its share of the in-flight budget: hold it while the
/// value lives.
pub async fn read_json<T: serde::de::DeserializeOwned + Send + 'static>(
    req: &HttpRequest,
    payload: Payload,
    limits: &BodyLimits,
) -> Result<(T, Body), ApiError> {
    require_json(req)?;
    let body = read_body(req, payload, limits).await?;
    let bytes = body.bytes.clone();
    let value = off_loop(body.is_large(), move || {
        serde_json::from_slice(&bytes).map_err(|e| ApiError::validation(vec![json_error(&e)]))
    })
    .await??;
    Ok((value, body))
}

/// Reads the whole body, decompressing gzip, never holding more than `limits.max_bytes` of it,
/// within the read deadline and the shared budget.
pub async fn read_body(
    req: &HttpRequest,
    payload: Payload,
    limits: &BodyLimits,
) -> Result<Body, ApiError> {
    let encoding = encoding(req)?;
    match tokio::time::timeout(limits.read_timeout, read(req, payload, limits, encoding)).await {
        Ok(result) => result,
        Err(_) => {
            metrics::counter!("http_body_read_timeouts_total").increment(1);
            Err(ApiError::RequestTimeout(format!(
                "The request body was not received within {} s (server.body_read_timeout_s)",
                limits.read_timeout.as_secs()
            )))
        }
    }
}

async fn read(
    req: &HttpRequest,
    mut payload: Payload,
    limits: &BodyLimits,
    encoding: Encoding,
) -> Result<Body, ApiError> {
    let limit = limits.max_bytes;
    let too_large = || ApiError::PayloadTooLarge { limit };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if matches!(encoding, Encoding::Identity) && declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut share = None;
    // A gzip stream is never larger than what it inflates to by more than its small framing,
    // so the compressed bytes are bounded by the same limit.
    let mut raw = BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::BadRequest(format!("Cannot read the request body: {e}")))?;
        if raw.len() + chunk.len() > limit {
            return Err(too_large());
        }
        raw.extend_from_slice(&chunk);
        if share.is_none() && raw.len() > SMALL_BODY {
            // What the body will take: its declared length, else (chunked, gzip) the limit.
            let want = match (&encoding, declared) {
                (Encoding::Identity, Some(n)) => n,
                _ => limit,
            };
            share = take(limits, want).await;
        }
    }
    let bytes = match encoding {
        Encoding::Identity => raw.freeze(),
        Encoding::Gzip => {
            let large = raw.len() > GZIP_INLINE;
            let inflate = move || {
                let mut out = Vec::new();
                let read = MultiGzDecoder::new(&raw[..])
                    .take(limit as u64 + 1)
                    .read_to_end(&mut out);
                read.map(|n| (n, out))
            };
            // A few KB can inflate to the limit: anything but a tiny body is inflated off the
            // event loop.
            let read = off_loop(large, inflate).await?;
            match read {
                Ok((n, _)) if n > limit => return Err(too_large()),
                Ok((n, out)) => {
                    if share.is_none() && n > SMALL_BODY {
                        share = take(limits, n).await;
                    }
                    Bytes::from(out)
                }
                Err(e) => return Err(ApiError::BadRequest(format!("Invalid gzip body: {e}"))),
            }
        }
    };
    keep_only(&mut share, bytes.len());
    Ok(Body {
        bytes,
        _share: share,
    })
}

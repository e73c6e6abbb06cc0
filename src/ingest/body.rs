//! Reading a request body within `server.max_body_bytes`, counted after decompression and
//! enforced while reading, so neither a large body nor a gzip bomb is ever held whole.

use std::io::Read;

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{Bytes, BytesMut, Payload};
use flate2::read::MultiGzDecoder;
use futures_util::StreamExt;

use crate::error::ApiError;

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

/// Reads the whole body, decompressing gzip, never holding more than `limit` bytes of it.
pub async fn read_body(
    req: &HttpRequest,
    mut payload: Payload,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let encoding = encoding(req)?;
    let too_large = || ApiError::PayloadTooLarge { limit };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if matches!(encoding, Encoding::Identity) && declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
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
    }
    match encoding {
        Encoding::Identity => Ok(raw.freeze()),
        Encoding::Gzip => {
            let mut out = Vec::new();
            let read = MultiGzDecoder::new(&raw[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out);
            match read {
                Ok(n) if n > limit => Err(too_large()),
                Ok(_) => Ok(Bytes::from(out)),
                Err(e) => Err(ApiError::BadRequest(format!("Invalid gzip body: {e}"))),
            }
        }
    }
}

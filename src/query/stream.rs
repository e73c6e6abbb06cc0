//! One server-sent event stream of [`super::live::LiveFeed`]: `GET /v1/runs/stream` (with an API
//! key) and the UI's live tail (with a session) answer with it.
//!
//! The stream starts with `retry: 2000`, then for each run the filters select
//! `id: <position>`, `event: run`, `data: <run as JSON>`, and `: heartbeat` comments between.
//! With `Last-Event-ID` (header, or `last_event_id` in the query for clients that cannot set
//! it) it first sends the runs committed after that one, at most [`super::live::RESUME_LIMIT`].
//! A stream too slow to keep up with the feed is ended; its client reconnects with its last id
//! and catches up from the database, so nothing is skipped silently.

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use super::filters::{self, Cursor};
use super::live::{LiveFeed, LiveRun, event_id, matches};
use crate::error::ApiError;
use crate::model::input::FieldError;

fn event(run: &LiveRun) -> Bytes {
    Bytes::from(format!(
        "id: {}\nevent: run\ndata: {}\n\n",
        event_id(&run.position),
        run.json
    ))
}

/// The stream's answer for `req`, with the list's filters from its query string.
pub async fn open(req: &HttpRequest, feed: &Arc<LiveFeed>) -> Result<HttpResponse, ApiError> {
    let pairs = filters::pairs(req.query_string());
    let filter = filters::parse_filter(&pairs, true)?;
    let last = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            pairs
                .iter()
                .rev()
                .find(|(k, _)| k == "last_event_id")
                .map(|(_, v)| v.clone())
        })
        .filter(|v| !v.is_empty());
    let resume = match last {
        None => None,
        Some(text) => Some(Cursor::decode(text.trim()).ok_or_else(|| {
            ApiError::validation(vec![FieldError::new(
                "value_error",
                vec!["header".into(), "last-event-id".into()],
                "Last-Event-ID is not an event id of this stream",
            )])
        })?),
    };
    // Subscribe before reading the backlog, so no run falls between the two.
    let mut live = feed.subscribe();
    let backlog = match resume {
        Some(after) => feed.since(after, &filter).await?,
        None => Vec::new(),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let heartbeat = feed.heartbeat;
    let stop = feed.stop.clone();
    actix_web::rt::spawn(async move {
        if tx
            .send(Bytes::from_static(b"retry: 2000\n\n"))
            .await
            .is_err()
        {
            return;
        }
        let sent: HashSet<uuid::Uuid> = backlog.iter().map(|r| r.run.run_id).collect();
        for run in &backlog {
            if tx.send(event(run)).await.is_err() {
                return;
            }
        }
        let mut beat = tokio::time::interval(heartbeat);
        beat.tick().await;
        loop {
            let out = tokio::select! {
                _ = stop.cancelled() => return,
                _ = tx.closed() => return,
                _ = beat.tick() => Bytes::from_static(b": heartbeat\n\n"),
                next = live.recv() => match next {
                    Ok(run) if !sent.contains(&run.run.run_id) && matches(&filter, &run.run) => event(&run),
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::info!(missed, "live stream fell behind; ending it so the client resumes");
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            };
            if tx.send(out).await.is_err() {
                return;
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(ReceiverStream::new(rx).map(Ok::<_, Infallible>)))
}

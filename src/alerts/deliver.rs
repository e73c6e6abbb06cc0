//! The deliverer: the ingest role's background task that sends the alerts of `alert_log`.
//!
//! Each pass claims due rows (`pending` or `retry`, `next_attempt_at` passed) of the channels
//! this process has, in one statement: `FOR UPDATE SKIP LOCKED` picks rows no other replica is
//! claiming, and the claim counts the attempt and moves `next_attempt_at` past the delivery's
//! time limit — a lease. The claim commits at once; the posts follow outside any transaction,
//! and each outcome is recorded only if the row is still the one claimed (same attempt count,
//! still unsent). No transaction stays open across a 10 s request, and a process that dies
//! mid-delivery leaves a row that is due again when its lease ends.
//!
//! So a delivery happens at least once, and exactly once unless the answer to a delivery is lost
//! (a crash or database outage between the receiver's 2xx and the record): then it is sent again
//! when the lease ends. PagerDuty folds such a repeat into the same incident (`dedup_key`); a
//! webhook receiver can do the same with `drift_id`.

use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{Array, Bool, Double, Integer, Nullable, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use futures_util::future::join_all;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use secrecy::ExposeSecret;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Channel;
use super::body::{self, DriftEvent};
use crate::config::AlertsConfig;
use crate::db::prepared::prepared;
use crate::db::{DbError, PgPool};

/// Rows one pass claims (and posts at once).
const BATCH: i32 = 16;
/// The lease beyond the request's time limit: room to record the outcome.
const LEASE_MARGIN: Duration = Duration::from_secs(30);
/// The longest `Retry-After` honoured, in seconds.
const MAX_RETRY_AFTER_S: u64 = 3600;
/// Tries at recording an outcome, and the pause between two.
const RECORD_TRIES: u32 = 5;
const RECORD_PAUSE: Duration = Duration::from_secs(2);
/// How much of a refusal's body `last_error` keeps.
const ERROR_BODY_CHARS: usize = 120;

/// A claimed row: the alert, its attempt (counted by the claim), and its drift event.
#[derive(Debug, QueryableByName)]
struct Claimed {
    #[diesel(sql_type = SqlUuid)]
    alert_id: Uuid,
    #[diesel(sql_type = Text)]
    alert_channel: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(embed)]
    drift: DriftEvent,
}

/// How one delivery went.
#[derive(Debug)]
enum Outcome {
    Sent,
    /// Not accepted: a short description (status or error kind, never the URL), and the wait the
    /// receiver asked for (`Retry-After`).
    Refused {
        error: String,
        retry_after: Option<Duration>,
    },
}

/// Sends the alerts of `alert_log` to the configured channels; see the module documentation.
pub struct Deliverer {
    pool: PgPool,
    client: reqwest::Client,
    channels: Vec<Channel>,
    cfg: AlertsConfig,
}

impl Deliverer {
    /// A deliverer for the channels `cfg` turns on; none when it turns none on.
    pub fn new(pool: PgPool, cfg: &AlertsConfig) -> Result<Option<Self>, reqwest::Error> {
        let channels = super::channels(cfg);
        if channels.is_empty() {
            return Ok(None);
        }
        let client = reqwest::Client::builder()
            .timeout(cfg.request_timeout())
            // A redirect is an answer that is not a 2xx (a POST followed as a GET would be lost).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("AgentTracer/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Some(Self {
            pool,
            client,
            channels,
            cfg: cfg.clone(),
        }))
    }

    /// The channels' names, for the startup log.
    pub fn channel_names(&self) -> Vec<&'static str> {
        self.channels.iter().map(Channel::name).collect()
    }

    /// Delivers what is due every `alerts.poll_interval_ms` until `stop` is cancelled. A pass in
    /// progress finishes first (its posts are bounded by `alerts.request_timeout_ms`), so that
    /// nothing sent goes unrecorded at shutdown.
    pub async fn run(self, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.cfg.poll_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while stop.run_until_cancelled(tick.tick()).await.is_some() {
            loop {
                match self.deliver_due().await {
                    Ok(claimed) if claimed == BATCH as usize && !stop.is_cancelled() => {}
                    Ok(_) => break,
                    Err(error) => {
                        tracing::warn!(%error, "alert delivery pass failed; will retry");
                        break;
                    }
                }
            }
        }
    }

    /// One pass: claims up to a batch of due alerts, posts them at once, records each outcome.
    /// Returns how many it claimed.
    pub async fn deliver_due(&self) -> Result<usize, DbError> {
        let lease = self.cfg.request_timeout() + LEASE_MARGIN;
        let names: Vec<&'static str> = self.channels.iter().map(Channel::name).collect();
        let claimed = {
            let mut conn = self.pool.get().await?;
            claim(&mut conn, names, lease).await?
        };
        if claimed.is_empty() {
            return Ok(0);
        }
        let outcomes = join_all(claimed.iter().map(|row| self.send(row))).await;
        for (row, outcome) in claimed.iter().zip(outcomes) {
            // An outcome not recorded is a delivery repeated when the lease ends: a brief
            // database outage is waited out (the lease has room for it).
            let mut tries = 0;
            while let Err(error) = self.record(row, &outcome).await {
                tries += 1;
                if tries == RECORD_TRIES {
                    let (drift_id, channel) = (row.drift.drift_id, &row.alert_channel);
                    tracing::warn!(%drift_id, channel, %error, "alert outcome not recorded; it will be delivered again");
                    break;
                }
                tokio::time::sleep(RECORD_PAUSE).await;
            }
        }
        Ok(claimed.len())
    }

    /// Posts one alert to its channel.
    async fn send(&self, row: &Claimed) -> Outcome {
        let Some(channel) = self.channels.iter().find(|c| c.name() == row.alert_channel) else {
            return refused("channel not configured");
        };
        let d = &row.drift;
        // (The URL, the body, and the secret to keep out of what is reported.)
        let (url, body, secret) = match channel {
            Channel::Slack { url } => {
                let url = url.secret().expose_secret();
                (url, serde_json::to_vec(&body::slack(d)), url)
            }
            Channel::Webhook { url } => {
                let url = url.secret().expose_secret();
                (url, serde_json::to_vec(&body::webhook(d)), url)
            }
            Channel::PagerDuty {
                routing_key,
                events_url,
            } => {
                let key = routing_key.secret().expose_secret();
                let event = serde_json::to_vec(&body::pagerduty(d, key));
                (events_url.as_str(), event, key)
            }
        };
        match body {
            Ok(body) => post(self.client.post(url), body, secret).await,
            Err(_) => refused("body not serializable"),
        }
    }

    /// Records how a claimed alert's delivery went, unless the row moved on meanwhile (its lease
    /// ended and another process claimed it).
    async fn record(&self, row: &Claimed, outcome: &Outcome) -> Result<(), DbError> {
        let channel = row.alert_channel.clone();
        let (status, wait, error) = match outcome {
            Outcome::Sent => ("sent", None, None),
            Outcome::Refused { error, .. } if row.attempts >= self.cfg.max_attempts as i32 => {
                ("failed", None, Some(error.clone()))
            }
            Outcome::Refused { error, retry_after } => {
                let backoff = self.cfg.backoff(row.attempts.max(1) as u32);
                let wait = retry_after.map_or(backoff, |asked| asked.max(backoff));
                ("retry", Some(wait.as_secs_f64()), Some(error.clone()))
            }
        };
        let recorded = prepared(
            "UPDATE alert_log SET delivery_status = $1, \
                 sent_at = CASE WHEN $2 THEN now() AT TIME ZONE 'UTC' END, \
                 next_attempt_at = now() AT TIME ZONE 'UTC' + make_interval(secs => $3), \
                 last_error = coalesce($4, last_error) \
             WHERE alert_id = $5 AND attempts = $6 AND delivery_status IN ('pending', 'retry')",
        )
        .bind::<Text, _>(status)
        .bind::<Bool, _>(status == "sent")
        .bind::<Nullable<Double>, _>(wait)
        .bind::<Nullable<Text>, _>(error.clone())
        .bind::<SqlUuid, _>(row.alert_id)
        .bind::<Integer, _>(row.attempts)
        .execute(&mut *self.pool.get().await?)
        .await?;
        let (drift_id, attempts) = (row.drift.drift_id, row.attempts);
        if recorded == 0 {
            tracing::warn!(%drift_id, channel, attempts, "alert outcome not recorded: its lease ended and it was claimed again");
            return Ok(());
        }
        let error = error.unwrap_or_default();
        match status {
            "sent" => {
                metrics::counter!("alerts_delivered_total", "channel" => channel.clone())
                    .increment(1);
                tracing::info!(%drift_id, channel, attempts, "alert delivered");
            }
            "failed" => {
                metrics::counter!("alerts_failed_total", "channel" => channel.clone()).increment(1);
                tracing::error!(%drift_id, channel, attempts, error, "alert delivery failed; giving up");
            }
            _ => {
                metrics::counter!("alerts_retried_total", "channel" => channel.clone())
                    .increment(1);
                let retry_in_ms = (wait.unwrap_or_default() * 1000.0) as u64;
                tracing::warn!(%drift_id, channel, attempts, error, retry_in_ms, "alert delivery failed; will retry");
            }
        }
        Ok(())
    }
}

/// Claims up to [`BATCH`] due alerts of `channels`, oldest due first, skipping rows another
/// process is claiming: counts the attempt and leases the row for `lease`. With each its drift
/// event. Commits on its own.
async fn claim(
    conn: &mut AsyncPgConnection,
    channels: Vec<&'static str>,
    lease: Duration,
) -> Result<Vec<Claimed>, DbError> {
    let rows = prepared(
        "UPDATE alert_log AS a \
         SET attempts = a.attempts + 1, \
             next_attempt_at = now() AT TIME ZONE 'UTC' + make_interval(secs => $1) \
         FROM ( \
             SELECT alert_id FROM alert_log \
             WHERE delivery_status IN ('pending', 'retry') \
               AND next_attempt_at <= now() AT TIME ZONE 'UTC' \
               AND alert_channel = ANY($2) \
             ORDER BY next_attempt_at \
             LIMIT $3 \
             FOR UPDATE SKIP LOCKED \
         ) AS due, behavior_drift AS d \
         WHERE a.alert_id = due.alert_id AND d.drift_id = a.drift_id \
         RETURNING a.alert_id, a.alert_channel, a.attempts, \
             d.drift_id, d.baseline_id, d.agent_id, d.agent_version, d.environment, d.drift_type, \
             d.metric, d.baseline_value, d.observed_value, d.delta, d.delta_percent, \
             d.significance, d.test_method, d.severity, d.detected_at, \
             d.observation_window_start, d.observation_window_end, d.observation_sample_size",
    )
    .bind::<Double, _>(lease.as_secs_f64())
    .bind::<Array<Text>, _>(channels)
    .bind::<Integer, _>(BATCH)
    .load(conn)
    .await?;
    Ok(rows)
}

fn refused(error: &str) -> Outcome {
    Outcome::Refused {
        error: error.into(),
        retry_after: None,
    }
}

/// Posts `body` as JSON; `secret` (the URL or routing key) is kept out of what it reports.
async fn post(request: reqwest::RequestBuilder, body: Vec<u8>, secret: &str) -> Outcome {
    let response = request
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let mut response = match response {
        Ok(response) => response,
        Err(err) => return refused(&describe(&err, secret)),
    };
    let status = response.status();
    if status.is_success() {
        return Outcome::Sent;
    }
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(MAX_RETRY_AFTER_S)));
    // The start of the receiver's answer says why (Slack: `invalid_token`, `no_service`, …).
    let mut said = Vec::new();
    while said.len() < ERROR_BODY_CHARS * 4 {
        match response.chunk().await {
            Ok(Some(chunk)) => said.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let said: String = String::from_utf8_lossy(&said)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(ERROR_BODY_CHARS)
        .collect();
    let said = said.trim();
    let error = match said.is_empty() || said.contains(secret) {
        true => format!("HTTP {}", status.as_u16()),
        false => format!("HTTP {}: {said}", status.as_u16()),
    };
    Outcome::Refused { error, retry_after }
}

/// A failed request as its kind and innermost cause (`timeout`, `connection failed: Connection
/// refused (os error 111)`), never the URL that reqwest's own message carries.
fn describe(err: &reqwest::Error, secret: &str) -> String {
    let kind = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connection failed"
    } else if err.is_body() || err.is_decode() {
        "bad answer"
    } else {
        "request failed"
    };
    let Some(mut cause) = std::error::Error::source(err) else {
        return kind.into();
    };
    while let Some(source) = cause.source() {
        cause = source;
    }
    let cause = cause.to_string();
    if cause.contains(secret) || cause.contains("://") {
        return kind.into();
    }
    let cause: String = cause.chars().take(ERROR_BODY_CHARS).collect();
    format!("{kind}: {cause}")
}

//! Drift alerts that arrive (docs/alerts.md): Slack, PagerDuty (Events v2) and a generic webhook,
//! each alert a row of `alert_log` (one per drift event and channel) written with the drift event,
//! then delivered by the ingest role and retried with backoff until it is accepted or given up.
//!
//! - [`enqueue`]: the rows of new drift events, in the caller's transaction.
//! - [`body`]: what each channel is sent: the original's bodies.
//! - [`deliver`]: the deliverer: claims due rows under a lease, posts, records the outcome.

pub mod body;
pub mod deliver;
#[cfg(test)]
mod tests;

use diesel::QueryResult;
use diesel::sql_types::{Array, Text, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::config::{AlertsConfig, HttpUrl, Secret, SecretUrl};
use crate::db::prepared::prepared;

pub use body::DriftEvent;
pub use deliver::Deliverer;

/// Where alerts go. The URLs and the routing key are secrets: they are read only to send, and
/// never logged or stored (`alert_log.alert_channel` holds the channel's [`Channel::name`]).
#[derive(Clone, Debug)]
pub enum Channel {
    /// A Slack incoming webhook.
    Slack { url: SecretUrl },
    /// PagerDuty's Events API v2.
    PagerDuty {
        routing_key: Secret,
        events_url: HttpUrl,
    },
    /// A generic webhook.
    Webhook { url: SecretUrl },
}

impl Channel {
    /// The channel's name in `alert_log.alert_channel` and in metrics: `slack`, `pagerduty`,
    /// `webhook`.
    pub fn name(&self) -> &'static str {
        match self {
            Channel::Slack { .. } => "slack",
            Channel::PagerDuty { .. } => "pagerduty",
            Channel::Webhook { .. } => "webhook",
        }
    }
}

/// The channels `[alerts]` turns on (a URL or routing key set), in a fixed order.
pub fn channels(cfg: &AlertsConfig) -> Vec<Channel> {
    let slack = cfg
        .slack_webhook_url
        .clone()
        .map(|url| Channel::Slack { url });
    let pagerduty = cfg
        .pagerduty_routing_key
        .clone()
        .map(|routing_key| Channel::PagerDuty {
            routing_key,
            events_url: cfg.pagerduty_events_url.clone(),
        });
    let webhook = cfg.webhook_url.clone().map(|url| Channel::Webhook { url });
    [slack, pagerduty, webhook].into_iter().flatten().collect()
}

/// Queues an alert of each drift event in `drift_ids` to each of `channels`: a `pending` row of
/// `alert_log` per event and channel, due now, `alert_message` the original's log line
/// (`DRIFT_DETECTED: {agent} v{version} - {metric}`). One statement; a pair already queued is
/// left as it is (`ON CONFLICT DO NOTHING`), so a drift event never gets two alerts on one
/// channel. Call it in the transaction that inserts the drift rows: the alerts then exist exactly
/// when the events do. Returns how many rows it added; ids of no drift event add none.
pub async fn enqueue(
    conn: &mut AsyncPgConnection,
    channels: &[Channel],
    drift_ids: &[Uuid],
) -> QueryResult<usize> {
    if channels.is_empty() || drift_ids.is_empty() {
        return Ok(0);
    }
    let names: Vec<&'static str> = channels.iter().map(Channel::name).collect();
    prepared(
        "INSERT INTO alert_log \
             (drift_id, alert_message, alert_channel, sent_at, delivery_status, attempts, next_attempt_at) \
         SELECT d.drift_id, 'DRIFT_DETECTED: ' || d.agent_id || ' v' || d.agent_version || ' - ' || d.metric, \
                c.name, NULL, 'pending', 0, now() AT TIME ZONE 'UTC' \
         FROM behavior_drift d CROSS JOIN unnest($1::text[]) AS c(name) \
         WHERE d.drift_id = ANY($2) \
         ON CONFLICT (drift_id, alert_channel) DO NOTHING",
    )
    .bind::<Array<Text>, _>(names)
    .bind::<Array<SqlUuid>, _>(drift_ids.to_vec())
    .execute(conn)
    .await
}

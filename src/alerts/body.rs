//! What each channel is sent for a drift event: the original's bodies (its `server/core/alerts.py`),
//! field for field and with its number and time formats (Python's `:.2%`, `:+.1f`, `:.4f`,
//! `strftime`, `isoformat`), plus a PagerDuty `dedup_key` (the drift id). Pure: no I/O.

use diesel::QueryableByName;
use diesel::sql_types::{Double, Integer, Text, Timestamp, Uuid as SqlUuid};
use serde::Serialize;
use time::PrimitiveDateTime;
use time::macros::format_description;
use uuid::Uuid;

/// A drift event, as `behavior_drift` holds it (its timestamps naive, in UTC).
#[derive(Clone, Debug, PartialEq, QueryableByName)]
pub struct DriftEvent {
    #[diesel(sql_type = SqlUuid)]
    pub drift_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub baseline_id: Uuid,
    #[diesel(sql_type = Text)]
    pub agent_id: String,
    #[diesel(sql_type = Text)]
    pub agent_version: String,
    #[diesel(sql_type = Text)]
    pub environment: String,
    #[diesel(sql_type = Text)]
    pub drift_type: String,
    #[diesel(sql_type = Text)]
    pub metric: String,
    #[diesel(sql_type = Double)]
    pub baseline_value: f64,
    #[diesel(sql_type = Double)]
    pub observed_value: f64,
    #[diesel(sql_type = Double)]
    pub delta: f64,
    #[diesel(sql_type = Double)]
    pub delta_percent: f64,
    #[diesel(sql_type = Double)]
    pub significance: f64,
    #[diesel(sql_type = Text)]
    pub test_method: String,
    #[diesel(sql_type = Text)]
    pub severity: String,
    #[diesel(sql_type = Timestamp)]
    pub detected_at: PrimitiveDateTime,
    #[diesel(sql_type = Timestamp)]
    pub observation_window_start: PrimitiveDateTime,
    #[diesel(sql_type = Timestamp)]
    pub observation_window_end: PrimitiveDateTime,
    #[diesel(sql_type = Integer)]
    pub observation_sample_size: i32,
}

/// Python's `f"{x:.2%}"`: times 100 (in floating point, as CPython does), two decimals, `%`.
fn percent(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

/// `strftime('%Y-%m-%d %H:%M:%S UTC')`.
fn utc_seconds(t: &PrimitiveDateTime) -> String {
    let f = format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.format(&f).unwrap_or_default()
}

/// `strftime('%Y-%m-%d %H:%M')`.
fn minutes(t: &PrimitiveDateTime) -> String {
    let f = format_description!("[year]-[month]-[day] [hour]:[minute]");
    t.format(&f).unwrap_or_default()
}

/// A naive datetime's `isoformat()`: microseconds only when there are any.
fn isoformat(t: &PrimitiveDateTime) -> String {
    let f = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let base = t.format(&f).unwrap_or_default();
    match t.microsecond() {
        0 => base,
        us => format!("{base}.{us:06}"),
    }
}

impl DriftEvent {
    /// The line the original logged for every drift event, and our `alert_log.alert_message`.
    pub fn log_line(&self) -> String {
        format!(
            "DRIFT_DETECTED: {} v{} - {}",
            self.agent_id, self.agent_version, self.metric
        )
    }

    /// The original's human-readable alert (the generic webhook's `message`).
    pub fn message(&self) -> String {
        let change = match self.delta {
            d if d > 0.0 => "observed increase",
            d if d < 0.0 => "observed decrease",
            _ => "no change",
        };
        format!(
            "Behavioral drift detected\n\nAgent: {} v{} ({})\nMetric: {}\n\
             Change: {change} from {} to {} ({:+.1}%)\nSeverity: {}\n\nBaseline: {}\n\
             Statistical significance: p={:.4}\nTest method: {}\nDetected: {}\n\n\
             Observation window: {} to {} ({} runs)\n",
            self.agent_id,
            self.agent_version,
            self.environment,
            self.metric,
            percent(self.baseline_value),
            percent(self.observed_value),
            self.delta_percent,
            self.severity,
            self.baseline_id,
            self.significance,
            self.test_method,
            utc_seconds(&self.detected_at),
            minutes(&self.observation_window_start),
            minutes(&self.observation_window_end),
            self.observation_sample_size,
        )
    }
}

/// A Slack text object (`plain_text` or `mrkdwn`).
#[derive(Debug, Serialize)]
struct SlackText {
    #[serde(rename = "type")]
    kind: &'static str,
    text: String,
}

fn mrkdwn(text: String) -> SlackText {
    SlackText {
        kind: "mrkdwn",
        text,
    }
}

/// One Slack block: a header, a section (with a text or fields) or a context.
#[derive(Debug, Serialize)]
struct SlackBlock {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<SlackText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fields: Option<Vec<SlackText>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    elements: Option<Vec<SlackText>>,
}

/// A Slack incoming-webhook message: `{text, blocks}`.
#[derive(Debug, Serialize)]
pub struct SlackMessage {
    text: String,
    blocks: Vec<SlackBlock>,
}

/// The original's Slack message: a header with the severity's sign, the agent, environment,
/// metric and severity, the change with its significance and sample size, the detection time.
pub fn slack(d: &DriftEvent) -> SlackMessage {
    let sign = match d.severity.as_str() {
        "medium" => "\u{26a0}\u{fe0f}",
        "high" => "\u{1f514}",
        _ => "\u{2139}\u{fe0f}",
    };
    let title = format!("{sign} Behavioral Drift Detected");
    let block = |kind| SlackBlock {
        kind,
        text: None,
        fields: None,
        elements: None,
    };
    let change = format!(
        "*Observed change:* {} \u{2192} {} ({:+.1}%)\n*Statistical significance:* p={:.4}\n*Sample size:* {} runs",
        percent(d.baseline_value),
        percent(d.observed_value),
        d.delta_percent,
        d.significance,
        d.observation_sample_size
    );
    SlackMessage {
        text: title.clone(),
        blocks: vec![
            SlackBlock {
                text: Some(SlackText {
                    kind: "plain_text",
                    text: title,
                }),
                ..block("header")
            },
            SlackBlock {
                fields: Some(vec![
                    mrkdwn(format!("*Agent:*\n{} v{}", d.agent_id, d.agent_version)),
                    mrkdwn(format!("*Environment:*\n{}", d.environment)),
                    mrkdwn(format!("*Metric:*\n{}", d.metric)),
                    mrkdwn(format!("*Severity:*\n{}", d.severity)),
                ]),
                ..block("section")
            },
            SlackBlock {
                text: Some(mrkdwn(change)),
                ..block("section")
            },
            SlackBlock {
                elements: Some(vec![mrkdwn(format!(
                    "Detected at {}",
                    utc_seconds(&d.detected_at)
                ))]),
                ..block("context")
            },
        ],
    }
}

#[derive(Debug, Serialize)]
struct PagerDutyDetails<'a> {
    agent_id: &'a str,
    agent_version: &'a str,
    environment: &'a str,
    metric: &'a str,
    baseline_value: f64,
    observed_value: f64,
    delta_percent: f64,
    significance: f64,
    baseline_id: Uuid,
    drift_id: Uuid,
}

#[derive(Debug, Serialize)]
struct PagerDutyPayload<'a> {
    summary: String,
    severity: &'static str,
    source: &'static str,
    custom_details: PagerDutyDetails<'a>,
}

/// A PagerDuty Events API v2 `trigger` event.
#[derive(Debug, Serialize)]
pub struct PagerDutyEvent<'a> {
    routing_key: &'a str,
    event_action: &'static str,
    /// Ours: PagerDuty folds events with the same key into one incident, so a delivery repeated
    /// (after a lost answer) never pages twice.
    dedup_key: String,
    payload: PagerDutyPayload<'a>,
}

/// The original's PagerDuty event (severity low/medium/high → info/warning/error), with the
/// drift id as its `dedup_key`.
pub fn pagerduty<'a>(d: &'a DriftEvent, routing_key: &'a str) -> PagerDutyEvent<'a> {
    let severity = match d.severity.as_str() {
        "medium" => "warning",
        "high" => "error",
        _ => "info",
    };
    PagerDutyEvent {
        routing_key,
        event_action: "trigger",
        dedup_key: d.drift_id.to_string(),
        payload: PagerDutyPayload {
            summary: format!(
                "Behavioral drift detected: {} v{} - {}",
                d.agent_id, d.agent_version, d.metric
            ),
            severity,
            source: "AgentTracer Drift Detection",
            custom_details: PagerDutyDetails {
                agent_id: &d.agent_id,
                agent_version: &d.agent_version,
                environment: &d.environment,
                metric: &d.metric,
                baseline_value: d.baseline_value,
                observed_value: d.observed_value,
                delta_percent: d.delta_percent,
                significance: d.significance,
                baseline_id: d.baseline_id,
                drift_id: d.drift_id,
            },
        },
    }
}

/// The generic webhook's body: the event name, the drift event's fields (not `resolved_at` or
/// `created_at`), and the original's message.
#[derive(Debug, Serialize)]
pub struct WebhookEvent<'a> {
    event: &'static str,
    drift_id: Uuid,
    baseline_id: Uuid,
    agent_id: &'a str,
    agent_version: &'a str,
    environment: &'a str,
    drift_type: &'a str,
    metric: &'a str,
    baseline_value: f64,
    observed_value: f64,
    delta: f64,
    delta_percent: f64,
    significance: f64,
    test_method: &'a str,
    severity: &'a str,
    detected_at: String,
    observation_window_start: String,
    observation_window_end: String,
    observation_sample_size: i32,
    message: String,
}

pub fn webhook(d: &DriftEvent) -> WebhookEvent<'_> {
    WebhookEvent {
        event: "drift_detected",
        drift_id: d.drift_id,
        baseline_id: d.baseline_id,
        agent_id: &d.agent_id,
        agent_version: &d.agent_version,
        environment: &d.environment,
        drift_type: &d.drift_type,
        metric: &d.metric,
        baseline_value: d.baseline_value,
        observed_value: d.observed_value,
        delta: d.delta,
        delta_percent: d.delta_percent,
        significance: d.significance,
        test_method: &d.test_method,
        severity: &d.severity,
        detected_at: isoformat(&d.detected_at),
        observation_window_start: isoformat(&d.observation_window_start),
        observation_window_end: isoformat(&d.observation_window_end),
        observation_sample_size: d.observation_sample_size,
        message: d.message(),
    }
}

//! Detection: every active baseline against the observation window that just ended
//! (`drift.window_s` up to now), on a schedule in the ingest role, from `POST /v1/drift/detect`
//! and from `agenttracer drift detect`.
//!
//! A pass runs in one transaction under an advisory lock, so several ingest replicas do not
//! detect at once: the schedule skips a pass another process is running, a request waits for it.
//! An unresolved finding of a baseline and metric is stored once (`ux_behavior_drift_open`):
//! detecting it again moves its `last_detected_at` and adds no row, so passes are idempotent
//! whichever process runs them and however often.

use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{Bool, Double, Integer, Text, Timestamp, Uuid as SqlUuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use utoipa::ToSchema;
use uuid::Uuid;

use super::compare::{Finding, compare};
use super::profile::{self, AgentKey, Latency, counts_from_json};
use super::store::{self, Baseline, DRIFT, Drift};
use super::{DriftError, naive};
use crate::alerts::{self, Channel};
use crate::config::DriftConfig;
use crate::db::PgPool;

/// The advisory lock of a detection pass ("agdrift" in ASCII).
const LOCK_KEY: i64 = 0x61_67_64_72_69_66_74;

/// Whether a pass waits for another process's pass to end, or skips.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lock {
    Wait,
    Skip,
}

/// A baseline a pass did not compare, and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct Skipped {
    pub baseline_id: Uuid,
    pub reason: String,
}

/// What a pass did (`POST /v1/drift/detect`, `agenttracer drift detect`).
#[derive(Debug, Serialize, ToSchema)]
pub struct Report {
    /// Active baselines compared.
    pub checked: usize,
    #[serde(serialize_with = "super::iso::serialize")]
    #[schema(value_type = String)]
    pub window_start: time::PrimitiveDateTime,
    #[serde(serialize_with = "super::iso::serialize")]
    #[schema(value_type = String)]
    pub window_end: time::PrimitiveDateTime,
    /// Drift events stored by this pass.
    pub detected: Vec<Drift>,
    /// Findings already open from an earlier pass (not stored again).
    pub still_open: usize,
    pub skipped: Vec<Skipped>,
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// One pass over every active baseline, with the window ending at `now`; each drift event it
/// stores gets an alert queued on each of `channels`, in the same transaction (src/alerts).
/// `None` when `lock` is [`Lock::Skip`] and another process is in a pass.
pub async fn detect_all(
    conn: &mut AsyncPgConnection,
    cfg: &DriftConfig,
    channels: &[Channel],
    now: OffsetDateTime,
    lock: Lock,
) -> Result<Option<Report>, DriftError> {
    let window = (now - Duration::from_secs(cfg.window_s), now);
    conn.transaction(async |conn| {
        let sql = match lock {
            Lock::Wait => "SELECT true AS locked FROM (SELECT pg_advisory_xact_lock($1)) l",
            Lock::Skip => "SELECT pg_try_advisory_xact_lock($1) AS locked",
        };
        let got: Locked = diesel::sql_query(sql)
            .bind::<diesel::sql_types::BigInt, _>(LOCK_KEY)
            .get_result(conn)
            .await?;
        if !got.locked {
            return Ok(None);
        }
        let mut report = Report {
            checked: 0,
            window_start: naive(window.0),
            window_end: naive(window.1),
            detected: Vec::new(),
            still_open: 0,
            skipped: Vec::new(),
        };
        for baseline in store::active_baselines(conn).await? {
            match detect_one(conn, &baseline, window, cfg).await {
                Ok((new, open)) => {
                    report.checked += 1;
                    report.detected.extend(new);
                    report.still_open += open;
                }
                Err(DriftError::InsufficientData { found, required }) => {
                    report.skipped.push(Skipped {
                        baseline_id: baseline.baseline_id,
                        reason: format!(
                            "Insufficient data: {found} runs found, minimum {required} required"
                        ),
                    });
                }
                Err(other) => return Err(other),
            }
        }
        let new: Vec<Uuid> = report.detected.iter().map(|d| d.drift_id).collect();
        alerts::enqueue(conn, channels, &new).await?;
        Ok(Some(report))
    })
    .await
}

/// Compares one baseline with `window`: the findings stored now, and how many were open already.
async fn detect_one(
    conn: &mut AsyncPgConnection,
    baseline: &Baseline,
    window: (OffsetDateTime, OffsetDateTime),
    cfg: &DriftConfig,
) -> Result<(Vec<Drift>, usize), DriftError> {
    let Some(stored) = store::profile(conn, baseline.profile_id).await? else {
        return Err(DriftError::NotFound(format!(
            "Profile {} not found",
            baseline.profile_id
        )));
    };
    let key = AgentKey {
        agent_id: baseline.agent_id.clone(),
        agent_version: baseline.agent_version.clone(),
        environment: baseline.environment.clone(),
    };
    let observed = profile::build(conn, &key, window, i64::from(cfg.min_sample_size)).await?;
    let (decisions, signals) = (
        counts_from_json(
            &stored.decision_counts,
            &stored.decision_distributions,
            stored.sample_size,
        ),
        counts_from_json(
            &stored.signal_counts,
            &stored.signal_distributions,
            stored.sample_size,
        ),
    );
    let latency = Latency::from_json(&stored.latency_stats);
    let base = super::compare::Side {
        decisions: &decisions,
        signals: &signals,
        mean_ms: latency.mean,
        p95_ms: latency.p95,
    };
    let findings = compare(&base, &observed.side(), cfg);
    let sample = i32::try_from(observed.sample_size).unwrap_or(i32::MAX);
    let mut new = Vec::new();
    let mut open = 0;
    for finding in &findings {
        match record(conn, baseline, finding, window, sample).await? {
            Some(drift) => new.push(drift),
            None => open += 1,
        }
    }
    Ok((new, open))
}

/// Stores a finding, unless one of the same baseline and metric is open: then only its
/// `last_detected_at` moves, and `None` is returned.
async fn record(
    conn: &mut AsyncPgConnection,
    baseline: &Baseline,
    f: &Finding,
    (start, end): (OffsetDateTime, OffsetDateTime),
    sample: i32,
) -> Result<Option<Drift>, DriftError> {
    let sql = format!(
        "WITH new AS (
            INSERT INTO behavior_drift (baseline_id, agent_id, agent_version, environment,
                drift_type, metric, baseline_value, observed_value, delta, delta_percent,
                significance, test_method, severity, detected_at, observation_window_start,
                observation_window_end, observation_sample_size, created_at, last_detected_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13,
                timezone('UTC', now()), $14, $15, $16, timezone('UTC', now()), timezone('UTC', now()))
            ON CONFLICT (baseline_id, drift_type, metric) WHERE resolved_at IS NULL
            DO UPDATE SET last_detected_at = EXCLUDED.last_detected_at
            RETURNING {DRIFT}, (xmax = 0) AS inserted)
         SELECT {DRIFT} FROM new WHERE inserted"
    );
    let stored: Vec<Drift> = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(baseline.baseline_id)
        .bind::<Text, _>(&baseline.agent_id)
        .bind::<Text, _>(&baseline.agent_version)
        .bind::<Text, _>(&baseline.environment)
        .bind::<Text, _>(f.kind.as_str())
        .bind::<Text, _>(&f.metric)
        .bind::<Double, _>(f.baseline_value)
        .bind::<Double, _>(f.observed_value)
        .bind::<Double, _>(f.delta)
        .bind::<Double, _>(f.delta_percent)
        .bind::<Double, _>(f.significance)
        .bind::<Text, _>(f.test_method)
        .bind::<Text, _>(f.severity)
        .bind::<Timestamp, _>(naive(start))
        .bind::<Timestamp, _>(naive(end))
        .bind::<Integer, _>(sample)
        .get_results(conn)
        .await?;
    Ok(stored.into_iter().next())
}

/// Detects every `drift.interval_s` until `stop` is cancelled, skipping a pass that another
/// process is running, queueing alerts on `channels`. The first pass is one interval after the
/// start.
pub async fn run(pool: PgPool, cfg: DriftConfig, channels: Vec<Channel>, stop: CancellationToken) {
    let period = Duration::from_secs(cfg.interval_s);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while stop.run_until_cancelled(tick.tick()).await.is_some() {
        let pass = async {
            let mut conn = pool.get().await.map_err(|e| e.to_string())?;
            detect_all(
                &mut conn,
                &cfg,
                &channels,
                OffsetDateTime::now_utc(),
                Lock::Skip,
            )
            .await
            .map_err(|e| e.to_string())
        };
        match pass.await {
            Ok(Some(report)) => {
                metrics::counter!("drift_events_detected_total")
                    .increment(report.detected.len() as u64);
                tracing::info!(
                    baselines = report.checked,
                    detected = report.detected.len(),
                    still_open = report.still_open,
                    skipped = report.skipped.len(),
                    "drift detection pass"
                );
            }
            Ok(None) => tracing::debug!("drift detection pass skipped: another process runs one"),
            Err(error) => tracing::warn!(%error, "drift detection pass failed; will retry"),
        }
    }
}

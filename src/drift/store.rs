//! The rows of `behavior_profiles`, `behavior_baselines` and `behavior_drift`, read and written
//! in SQL text (the drift table is wider than diesel's default table size), in the original's
//! answer shapes.

use diesel::QueryableByName;
use diesel::pg::Pg;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{
    Array, BigInt, Bool, Double, Integer, Jsonb, Nullable, Text, Timestamp, Uuid as SqlUuid,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use serde_json::Value;
use time::{OffsetDateTime, PrimitiveDateTime};
use utoipa::ToSchema;
use uuid::Uuid;

use super::profile::{AgentKey, Built};
use super::{DriftError, iso, naive};
use crate::model::behaviour::NewBaseline;

/// A stored profile (`GET /v1/drift/profiles`); ours adds the counts behind the shares.
#[derive(Debug, Serialize, QueryableByName, ToSchema)]
pub struct Profile {
    #[diesel(sql_type = SqlUuid)]
    pub profile_id: Uuid,
    #[diesel(sql_type = Text)]
    pub agent_id: String,
    #[diesel(sql_type = Text)]
    pub agent_version: String,
    #[diesel(sql_type = Text)]
    pub environment: String,
    #[diesel(sql_type = Timestamp)]
    #[serde(serialize_with = "iso::serialize")]
    #[schema(value_type = String)]
    pub window_start: PrimitiveDateTime,
    #[diesel(sql_type = Timestamp)]
    #[serde(serialize_with = "iso::serialize")]
    #[schema(value_type = String)]
    pub window_end: PrimitiveDateTime,
    #[diesel(sql_type = Integer)]
    pub sample_size: i32,
    /// `{decision_type: {selected: share}}`
    #[diesel(sql_type = Jsonb)]
    #[schema(value_type = Object)]
    pub decision_distributions: Value,
    /// `{signal_type: {signal_code: share}}`
    #[diesel(sql_type = Jsonb)]
    #[schema(value_type = Object)]
    pub signal_distributions: Value,
    /// Run durations: `mean_`, `p50_`, `p95_`, `p99_run_duration_ms`, `sample_count`.
    #[diesel(sql_type = Jsonb)]
    #[schema(value_type = Object)]
    pub latency_stats: Value,
    #[diesel(sql_type = Nullable<Timestamp>)]
    #[serde(serialize_with = "iso::option::serialize")]
    #[schema(value_type = Option<String>)]
    pub created_at: Option<PrimitiveDateTime>,
    /// `{decision_type: {selected: count}}`: what the drift test reads.
    #[diesel(sql_type = Jsonb)]
    #[schema(value_type = Object)]
    pub decision_counts: Value,
    #[diesel(sql_type = Jsonb)]
    #[schema(value_type = Object)]
    pub signal_counts: Value,
}

/// A stored baseline (`GET /v1/drift/baselines`).
#[derive(Debug, Serialize, QueryableByName, ToSchema)]
pub struct Baseline {
    #[diesel(sql_type = SqlUuid)]
    pub baseline_id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    pub profile_id: Uuid,
    #[diesel(sql_type = Text)]
    pub agent_id: String,
    #[diesel(sql_type = Text)]
    pub agent_version: String,
    #[diesel(sql_type = Text)]
    pub environment: String,
    /// `version`, `time_window` or `manual`.
    #[diesel(sql_type = Text)]
    pub baseline_type: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub approved_by: Option<String>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    #[serde(serialize_with = "iso::option::serialize")]
    #[schema(value_type = Option<String>)]
    pub approved_at: Option<PrimitiveDateTime>,
    #[diesel(sql_type = Nullable<Text>)]
    pub description: Option<String>,
    #[diesel(sql_type = Bool)]
    pub is_active: bool,
    #[diesel(sql_type = Nullable<Timestamp>)]
    #[serde(serialize_with = "iso::option::serialize")]
    #[schema(value_type = Option<String>)]
    pub created_at: Option<PrimitiveDateTime>,
}

/// A drift event (`GET /v1/drift`); ours adds `last_detected_at`, when detection last saw it
/// still open.
#[derive(Debug, Serialize, QueryableByName, ToSchema)]
pub struct Drift {
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
    /// `decision`, `signal` or `latency`.
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
    /// The p-value (1.0 for latency).
    #[diesel(sql_type = Double)]
    pub significance: f64,
    #[diesel(sql_type = Text)]
    pub test_method: String,
    /// `low`, `medium` or `high`.
    #[diesel(sql_type = Text)]
    pub severity: String,
    #[diesel(sql_type = Timestamp)]
    #[serde(serialize_with = "iso::serialize")]
    #[schema(value_type = String)]
    pub detected_at: PrimitiveDateTime,
    #[diesel(sql_type = Timestamp)]
    #[serde(serialize_with = "iso::serialize")]
    #[schema(value_type = String)]
    pub observation_window_start: PrimitiveDateTime,
    #[diesel(sql_type = Timestamp)]
    #[serde(serialize_with = "iso::serialize")]
    #[schema(value_type = String)]
    pub observation_window_end: PrimitiveDateTime,
    #[diesel(sql_type = Integer)]
    pub observation_sample_size: i32,
    #[diesel(sql_type = Nullable<Timestamp>)]
    #[serde(serialize_with = "iso::option::serialize")]
    #[schema(value_type = Option<String>)]
    pub resolved_at: Option<PrimitiveDateTime>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    #[serde(serialize_with = "iso::option::serialize")]
    #[schema(value_type = Option<String>)]
    pub created_at: Option<PrimitiveDateTime>,
    #[diesel(sql_type = Nullable<Timestamp>)]
    #[serde(serialize_with = "iso::option::serialize")]
    #[schema(value_type = Option<String>)]
    pub last_detected_at: Option<PrimitiveDateTime>,
}

const PROFILE: &str = "profile_id, agent_id, agent_version, environment, window_start, window_end, \
     sample_size, decision_distributions, signal_distributions, latency_stats, created_at, \
     decision_counts, signal_counts";
const BASELINE: &str = "baseline_id, profile_id, agent_id, agent_version, environment, \
     baseline_type, approved_by, approved_at, description, coalesce(is_active, false) AS is_active, \
     created_at";
pub(super) const DRIFT: &str = "drift_id, baseline_id, agent_id, agent_version, environment, \
     drift_type, metric, baseline_value, observed_value, delta, delta_percent, significance, \
     test_method, severity, detected_at, observation_window_start, observation_window_end, \
     observation_sample_size, resolved_at, created_at, last_detected_at";

/// The filters and page of a list route; `None` is no filter. Each route reads the ones it has.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    pub agent_id: Option<String>,
    pub agent_version: Option<String>,
    pub environment: Option<String>,
    pub baseline_type: Option<String>,
    pub is_active: Option<bool>,
    pub drift_type: Option<String>,
    pub severity: Option<String>,
    pub resolved: Option<bool>,
    pub limit: i64,
    pub offset: i64,
}

/// The agent conditions on `$1..$3`, shared by the three lists.
const BY_AGENT: &str = "($1::text IS NULL OR agent_id = $1) AND ($2::text IS NULL OR agent_version = $2) \
     AND ($3::text IS NULL OR environment = $3)";

/// The row of `sql` (one `$1`, the id), if any.
async fn by_id<T: QueryableByName<Pg> + Send + 'static>(
    conn: &mut AsyncPgConnection,
    sql: String,
    id: Uuid,
) -> Result<Option<T>, DriftError> {
    Ok(diesel::sql_query(sql)
        .bind::<SqlUuid, _>(id)
        .get_results(conn)
        .await?
        .pop())
}

/// `sql` with its `$1..$3`, the agent filters of `f`, bound; the caller binds the rest.
fn by_agent<'f>(sql: String, f: &'f Filter) -> BoxedSqlQuery<'f, Pg, SqlQuery> {
    diesel::sql_query(sql)
        .into_boxed()
        .bind::<Nullable<Text>, _>(&f.agent_id)
        .bind::<Nullable<Text>, _>(&f.agent_version)
        .bind::<Nullable<Text>, _>(&f.environment)
}

pub async fn profiles(
    conn: &mut AsyncPgConnection,
    f: &Filter,
) -> Result<Vec<Profile>, DriftError> {
    let sql = format!(
        "SELECT {PROFILE} FROM behavior_profiles WHERE {BY_AGENT}
         ORDER BY created_at DESC NULLS LAST, profile_id DESC LIMIT $4 OFFSET $5"
    );
    Ok(by_agent(sql, f)
        .bind::<BigInt, _>(f.limit)
        .bind::<BigInt, _>(f.offset)
        .load(conn)
        .await?)
}

pub async fn profile(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<Profile>, DriftError> {
    by_id(
        conn,
        format!("SELECT {PROFILE} FROM behavior_profiles WHERE profile_id = $1"),
        id,
    )
    .await
}

/// The profiles of `ids` (a page of baselines' profiles), in one statement.
pub async fn profiles_by_id(
    conn: &mut AsyncPgConnection,
    ids: &[Uuid],
) -> Result<Vec<Profile>, DriftError> {
    let sql = format!("SELECT {PROFILE} FROM behavior_profiles WHERE profile_id = ANY($1)");
    Ok(diesel::sql_query(sql)
        .bind::<Array<SqlUuid>, _>(ids)
        .load(conn)
        .await?)
}

pub async fn baselines(
    conn: &mut AsyncPgConnection,
    f: &Filter,
) -> Result<Vec<Baseline>, DriftError> {
    let sql = format!(
        "SELECT {BASELINE} FROM behavior_baselines WHERE {BY_AGENT}
           AND ($4::text IS NULL OR baseline_type = $4)
           AND ($5::bool IS NULL OR coalesce(is_active, false) = $5)
         ORDER BY created_at DESC NULLS LAST, baseline_id DESC LIMIT $6 OFFSET $7"
    );
    Ok(by_agent(sql, f)
        .bind::<Nullable<Text>, _>(&f.baseline_type)
        .bind::<Nullable<Bool>, _>(f.is_active)
        .bind::<BigInt, _>(f.limit)
        .bind::<BigInt, _>(f.offset)
        .load(conn)
        .await?)
}

pub async fn baseline(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<Baseline>, DriftError> {
    by_id(
        conn,
        format!("SELECT {BASELINE} FROM behavior_baselines WHERE baseline_id = $1"),
        id,
    )
    .await
}

/// Every active baseline, oldest first.
pub async fn active_baselines(conn: &mut AsyncPgConnection) -> Result<Vec<Baseline>, DriftError> {
    let sql = format!(
        "SELECT {BASELINE} FROM behavior_baselines WHERE is_active ORDER BY created_at, baseline_id"
    );
    Ok(diesel::sql_query(sql).load(conn).await?)
}

pub async fn drifts(conn: &mut AsyncPgConnection, f: &Filter) -> Result<Vec<Drift>, DriftError> {
    let sql = format!(
        "SELECT {DRIFT} FROM behavior_drift WHERE {BY_AGENT}
           AND ($4::text IS NULL OR drift_type = $4) AND ($5::text IS NULL OR severity = $5)
           AND ($6::bool IS NULL OR (resolved_at IS NOT NULL) = $6)
         ORDER BY detected_at DESC, drift_id DESC LIMIT $7 OFFSET $8"
    );
    Ok(by_agent(sql, f)
        .bind::<Nullable<Text>, _>(&f.drift_type)
        .bind::<Nullable<Text>, _>(&f.severity)
        .bind::<Nullable<Bool>, _>(f.resolved)
        .bind::<BigInt, _>(f.limit)
        .bind::<BigInt, _>(f.offset)
        .load(conn)
        .await?)
}

pub async fn drift(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Drift>, DriftError> {
    by_id(
        conn,
        format!("SELECT {DRIFT} FROM behavior_drift WHERE drift_id = $1"),
        id,
    )
    .await
}

/// The drift events of an agent, oldest first, for the timeline: `detected_at` within the bounds
/// (inclusive).
pub async fn timeline(
    conn: &mut AsyncPgConnection,
    f: &Filter,
    (start, end): (Option<OffsetDateTime>, Option<OffsetDateTime>),
) -> Result<Vec<Drift>, DriftError> {
    let sql = format!(
        "SELECT {DRIFT} FROM behavior_drift WHERE {BY_AGENT}
           AND ($4::timestamp IS NULL OR detected_at >= $4)
           AND ($5::timestamp IS NULL OR detected_at <= $5)
         ORDER BY detected_at, drift_id"
    );
    Ok(by_agent(sql, f)
        .bind::<Nullable<Timestamp>, _>(start.map(naive))
        .bind::<Nullable<Timestamp>, _>(end.map(naive))
        .load(conn)
        .await?)
}

/// The unresolved drift events of the agent filters of `f`, and how many of them are `high`.
#[derive(Debug, QueryableByName)]
pub struct Open {
    #[diesel(sql_type = BigInt)]
    pub open: i64,
    #[diesel(sql_type = BigInt)]
    pub high: i64,
}

/// Counts the unresolved drift events (`idx_behavior_drift_resolved` holds just those).
pub async fn open(conn: &mut AsyncPgConnection, f: &Filter) -> Result<Open, DriftError> {
    let sql = format!(
        "SELECT count(*) AS open, count(*) FILTER (WHERE severity = 'high') AS high
         FROM behavior_drift WHERE resolved_at IS NULL AND {BY_AGENT}"
    );
    Ok(diesel::sql_query(sql)
        .bind::<Nullable<Text>, _>(&f.agent_id)
        .bind::<Nullable<Text>, _>(&f.agent_version)
        .bind::<Nullable<Text>, _>(&f.environment)
        .get_result(conn)
        .await?)
}

/// The summary of drift events detected since `since` (an environment's, or all).
#[derive(Debug, Serialize, QueryableByName, ToSchema)]
pub struct Summary {
    #[diesel(sql_type = BigInt)]
    pub total_drift_events: i64,
    #[diesel(sql_type = BigInt)]
    pub unresolved_drift_events: i64,
    /// Counts by severity; a zero count is absent.
    #[diesel(sql_type = Jsonb)]
    #[schema(value_type = Object)]
    pub drift_by_severity: Value,
    /// Counts by drift type; a zero count is absent.
    #[diesel(sql_type = Jsonb)]
    #[schema(value_type = Object)]
    pub drift_by_type: Value,
    #[diesel(sql_type = BigInt)]
    pub agents_with_drift: i64,
}

pub async fn summary(
    conn: &mut AsyncPgConnection,
    environment: Option<&str>,
    since: OffsetDateTime,
) -> Result<Summary, DriftError> {
    let sql = "WITH d AS (SELECT * FROM behavior_drift
                 WHERE detected_at >= $1 AND ($2::text IS NULL OR environment = $2))
        SELECT (SELECT count(*) FROM d) AS total_drift_events,
               (SELECT count(*) FROM d WHERE resolved_at IS NULL) AS unresolved_drift_events,
               (SELECT coalesce(jsonb_object_agg(severity, n), '{}') FROM
                   (SELECT severity, count(*) AS n FROM d GROUP BY 1) s) AS drift_by_severity,
               (SELECT coalesce(jsonb_object_agg(drift_type, n), '{}') FROM
                   (SELECT drift_type, count(*) AS n FROM d GROUP BY 1) t) AS drift_by_type,
               (SELECT count(DISTINCT agent_id) FROM d) AS agents_with_drift";
    Ok(diesel::sql_query(sql)
        .bind::<Timestamp, _>(naive(since))
        .bind::<Nullable<Text>, _>(environment)
        .get_result(conn)
        .await?)
}

/// Stores the profile of `key` over `window` (or finds the one stored for that exact window,
/// which the original's unique constraint allows only once).
pub async fn save_profile(
    conn: &mut AsyncPgConnection,
    key: &AgentKey,
    (start, end): (OffsetDateTime, OffsetDateTime),
    built: &Built,
) -> Result<Profile, DriftError> {
    let sql = format!(
        "WITH new AS (
            INSERT INTO behavior_profiles (agent_id, agent_version, environment, window_start,
                window_end, sample_size, decision_distributions, signal_distributions,
                latency_stats, created_at, decision_counts, signal_counts)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, timezone('UTC', now()), $10, $11)
            ON CONFLICT ON CONSTRAINT unique_profile DO NOTHING
            RETURNING {PROFILE})
         SELECT {PROFILE} FROM new
         UNION ALL
         SELECT {PROFILE} FROM behavior_profiles
         WHERE agent_id = $1 AND agent_version = $2 AND environment = $3
           AND window_start = $4 AND window_end = $5 AND NOT EXISTS (SELECT 1 FROM new)"
    );
    let sample = i32::try_from(built.sample_size).unwrap_or(i32::MAX);
    Ok(diesel::sql_query(sql)
        .bind::<Text, _>(&key.agent_id)
        .bind::<Text, _>(&key.agent_version)
        .bind::<Text, _>(&key.environment)
        .bind::<Timestamp, _>(naive(start))
        .bind::<Timestamp, _>(naive(end))
        .bind::<Integer, _>(sample)
        .bind::<Jsonb, _>(built.decision_distributions())
        .bind::<Jsonb, _>(built.signal_distributions())
        .bind::<Jsonb, _>(built.latency.to_json())
        .bind::<Jsonb, _>(serde_json::json!(built.decisions))
        .bind::<Jsonb, _>(serde_json::json!(built.signals))
        .get_result(conn)
        .await?)
}

/// Stores a new baseline of `profile_id`, inactive, approved now when `approved_by` is given.
pub async fn insert_baseline(
    conn: &mut AsyncPgConnection,
    profile_id: Uuid,
    new: &NewBaseline,
) -> Result<Baseline, DriftError> {
    let sql = format!(
        "INSERT INTO behavior_baselines (profile_id, agent_id, agent_version, environment,
            baseline_type, approved_by, approved_at, description, is_active, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $6 IS NULL THEN NULL ELSE timezone('UTC', now()) END,
            $7, false, timezone('UTC', now()))
         RETURNING {BASELINE}"
    );
    Ok(diesel::sql_query(sql)
        .bind::<SqlUuid, _>(profile_id)
        .bind::<Text, _>(&new.agent_id)
        .bind::<Text, _>(&new.agent_version)
        .bind::<Text, _>(&new.environment)
        .bind::<Text, _>(&new.baseline_type)
        .bind::<Nullable<Text>, _>(&new.approved_by)
        .bind::<Nullable<Text>, _>(&new.description)
        .get_result(conn)
        .await?)
}

/// Activates a baseline: the active one of its agent version (if another) is deactivated first,
/// in this transaction, under a lock on that agent version so two activations take turns. Call
/// inside a transaction.
pub async fn activate(
    conn: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<Baseline>, DriftError> {
    let Some(found) = baseline(conn, id).await? else {
        return Ok(None);
    };
    diesel::sql_query(
        "SELECT pg_advisory_xact_lock(hashtextextended($1 || chr(31) || $2 || chr(31) || $3, 17))",
    )
    .bind::<Text, _>(&found.agent_id)
    .bind::<Text, _>(&found.agent_version)
    .bind::<Text, _>(&found.environment)
    .execute(conn)
    .await?;
    diesel::sql_query(
        "UPDATE behavior_baselines SET is_active = false
         WHERE agent_id = $1 AND agent_version = $2 AND environment = $3 AND is_active
           AND baseline_id <> $4",
    )
    .bind::<Text, _>(&found.agent_id)
    .bind::<Text, _>(&found.agent_version)
    .bind::<Text, _>(&found.environment)
    .bind::<SqlUuid, _>(id)
    .execute(conn)
    .await?;
    set_active(conn, id, true).await
}

/// Sets a baseline's `is_active` (unchanged when it already is: the immutability trigger allows
/// only a change).
pub async fn set_active(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    active: bool,
) -> Result<Option<Baseline>, DriftError> {
    diesel::sql_query(
        "UPDATE behavior_baselines SET is_active = $2
         WHERE baseline_id = $1 AND is_active IS DISTINCT FROM $2",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Bool, _>(active)
    .execute(conn)
    .await?;
    baseline(conn, id).await
}

/// Records an approval; a baseline is approved once (the original's trigger refuses a second).
pub async fn approve(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    approved_by: &str,
) -> Result<Option<Baseline>, DriftError> {
    let Some(found) = baseline(conn, id).await? else {
        return Ok(None);
    };
    if found.approved_by.is_some() {
        return Err(DriftError::AlreadyDone(
            "Baseline is already approved".into(),
        ));
    }
    diesel::sql_query(
        "UPDATE behavior_baselines SET approved_by = $2, approved_at = timezone('UTC', now())
         WHERE baseline_id = $1",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(approved_by)
    .execute(conn)
    .await?;
    baseline(conn, id).await
}

/// Resolves a drift event now: `None` when unknown, [`DriftError::Conflict`] when it already is.
pub async fn resolve(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Drift>, DriftError> {
    let sql = format!(
        "UPDATE behavior_drift SET resolved_at = timezone('UTC', now())
         WHERE drift_id = $1 AND resolved_at IS NULL RETURNING {DRIFT}"
    );
    let mut updated: Vec<Drift> = diesel::sql_query(sql)
        .bind::<SqlUuid, _>(id)
        .get_results(conn)
        .await?;
    if let Some(done) = updated.pop() {
        return Ok(Some(done));
    }
    match drift(conn, id).await? {
        Some(_) => Err(DriftError::AlreadyDone(
            "Drift event is already resolved".into(),
        )),
        None => Ok(None),
    }
}

//! An agent version's behaviour over a window, as the original builds it (reference §3): the runs
//! of exactly that agent, version and environment that started in `start..end` (any status);
//! how often each decision type chose each option and each signal type gave each code; the run
//! durations' mean and percentiles. One aggregate statement reads it all.

use std::collections::BTreeMap;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Double, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::DriftError;
use super::compare::{Counts, Side, shares};

/// Which runs a profile is of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentKey {
    pub agent_id: String,
    pub agent_version: String,
    pub environment: String,
}

/// A profile as built, before it is stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Built {
    pub sample_size: i64,
    pub decisions: Counts,
    pub signals: Counts,
    pub latency: Latency,
}

/// Run durations in ms: the original's statistics, rounded to 2 decimals; all 0 without any.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Latency {
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub count: i64,
}

impl Latency {
    pub fn to_json(&self) -> Value {
        json!({
            "mean_run_duration_ms": self.mean,
            "p50_run_duration_ms": self.p50,
            "p95_run_duration_ms": self.p95,
            "p99_run_duration_ms": self.p99,
            "sample_count": self.count,
        })
    }

    /// The statistics of a stored profile's `latency_stats` (0 where one is missing).
    pub fn from_json(value: &Value) -> Latency {
        let num = |key: &str| value.get(key).and_then(Value::as_f64).unwrap_or(0.0);
        Latency {
            mean: num("mean_run_duration_ms"),
            p50: num("p50_run_duration_ms"),
            p95: num("p95_run_duration_ms"),
            p99: num("p99_run_duration_ms"),
            count: value
                .get("sample_count")
                .and_then(Value::as_i64)
                .unwrap_or(0),
        }
    }
}

impl Built {
    /// The shares of each type's options, as the original's `*_distributions`.
    pub fn decision_distributions(&self) -> Value {
        json!(shares(&self.decisions))
    }

    pub fn signal_distributions(&self) -> Value {
        json!(shares(&self.signals))
    }

    /// What the comparison reads.
    pub fn side(&self) -> Side<'_> {
        Side {
            decisions: &self.decisions,
            signals: &self.signals,
            mean_ms: self.latency.mean,
            p95_ms: self.latency.p95,
        }
    }
}

/// The index of percentile `p` in `n` sorted values, as the original computes it:
/// `min(n − 1, floor(p·n) − 1)`, at least 0 (so p95 of 10 values is the 9th, not the 10th).
fn percentile_sql(p: f64) -> String {
    format!("l.a[greatest(0, least(l.n - 1, floor({p} * l.n)::integer - 1)) + 1]")
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    sample_size: i64,
    #[diesel(sql_type = Jsonb)]
    decisions: Value,
    #[diesel(sql_type = Jsonb)]
    signals: Value,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Nullable<Double>)]
    mean: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    p50: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    p95: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    p99: Option<f64>,
}

/// `[[type, option, n], …]` as counts by type and option.
fn counts(rows: &Value) -> Counts {
    let mut out: Counts = BTreeMap::new();
    for row in rows.as_array().into_iter().flatten() {
        if let (Some(kind), Some(option), Some(n)) = (
            row.get(0).and_then(Value::as_str),
            row.get(1).and_then(Value::as_str),
            row.get(2).and_then(Value::as_i64),
        ) {
            out.entry(kind.into()).or_default().insert(option.into(), n);
        }
    }
    out
}

/// Counts stored as `{type: {option: n}}` (a profile's `*_counts`). A profile written by another
/// tool (the original's) has shares and no counts: each share × `sample_size` stands in for its
/// count, as if each run made one decision of each type.
pub fn counts_from_json(counts: &Value, shares: &Value, sample_size: i32) -> Counts {
    let stored: Counts = serde_json::from_value(counts.clone()).unwrap_or_default();
    if !stored.is_empty() {
        return stored;
    }
    let shares: BTreeMap<String, BTreeMap<String, f64>> =
        serde_json::from_value(shares.clone()).unwrap_or_default();
    shares
        .into_iter()
        .map(|(kind, options)| {
            let options = options
                .into_iter()
                .map(|(option, share)| (option, (share * f64::from(sample_size)).round() as i64))
                .collect();
            (kind, options)
        })
        .collect()
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Builds the profile of `key`'s runs that started in `start..end`; fewer than `min_sample_size`
/// runs is [`DriftError::InsufficientData`].
pub async fn build(
    conn: &mut AsyncPgConnection,
    key: &AgentKey,
    (start, end): (OffsetDateTime, OffsetDateTime),
    min_sample_size: i64,
) -> Result<Built, DriftError> {
    let sql = format!(
        "WITH r AS MATERIALIZED (
            SELECT started_at, ended_at, decisions, quality_signals FROM agent_runs
            WHERE agent_id = $1 AND agent_version = $2 AND environment = $3
              AND started_at >= $4 AND started_at < $5),
         d AS (SELECT x ->> 'decision_type' AS kind, x ->> 'selected' AS option, count(*) AS n
               FROM r, jsonb_array_elements(r.decisions) x GROUP BY 1, 2),
         s AS (SELECT x ->> 'signal_type' AS kind, x ->> 'signal_code' AS option, count(*) AS n
               FROM r, jsonb_array_elements(r.quality_signals) x GROUP BY 1, 2),
         l AS (SELECT array_agg(ms ORDER BY ms) AS a, count(*)::integer AS n, avg(ms) AS mean
               FROM (SELECT (extract(epoch FROM ended_at - started_at) * 1000)::float8 AS ms
                     FROM r WHERE ended_at > started_at) x)
         SELECT (SELECT count(*) FROM r) AS sample_size,
                (SELECT coalesce(jsonb_agg(jsonb_build_array(kind, option, n)), '[]') FROM d)
                    AS decisions,
                (SELECT coalesce(jsonb_agg(jsonb_build_array(kind, option, n)), '[]') FROM s)
                    AS signals,
                l.n::bigint AS n, l.mean, {} AS p50, {} AS p95, {} AS p99
         FROM l",
        percentile_sql(0.50),
        percentile_sql(0.95),
        percentile_sql(0.99),
    );
    let row: Row = diesel::sql_query(sql)
        .bind::<Text, _>(&key.agent_id)
        .bind::<Text, _>(&key.agent_version)
        .bind::<Text, _>(&key.environment)
        .bind::<Timestamptz, _>(start)
        .bind::<Timestamptz, _>(end)
        .get_result(conn)
        .await?;
    if row.sample_size < min_sample_size {
        return Err(DriftError::InsufficientData {
            found: row.sample_size,
            required: min_sample_size,
        });
    }
    let value = |x: Option<f64>| round2(x.unwrap_or(0.0));
    Ok(Built {
        sample_size: row.sample_size,
        decisions: counts(&row.decisions),
        signals: counts(&row.signals),
        latency: Latency {
            mean: value(row.mean),
            p50: value(row.p50),
            p95: value(row.p95),
            p99: value(row.p99),
            count: row.n,
        },
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_profile_without_counts_stands_in_its_shares_times_its_sample() {
        let counts = json!({"tool_selection": {"api": 130, "cache": 70}});
        let shares = json!({"tool_selection": {"api": 0.65, "cache": 0.35}});
        let stored = counts_from_json(&counts, &json!({}), 0);
        assert_eq!(stored["tool_selection"]["api"], 130);
        let estimated = counts_from_json(&json!({}), &shares, 200);
        assert_eq!(estimated, stored);
    }
}

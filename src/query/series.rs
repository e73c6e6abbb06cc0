//! Time series of a window for the overview's charts: per time bin, runs by status, failure
//! records by type, the p95 of step latency and run duration, and cost by agent — one statement.
//!
//! Long windows read the rollups (their hour or day rows, so bins are whole UTC hours or days and
//! the first bin starts at the hour or day holding the window's start); windows up to six hours
//! read the rows themselves in minute bins, through the same `agenttracer_*_entries` functions
//! the rollups are built with, so both sources count alike.

use std::collections::BTreeMap;

use diesel::QueryableByName;
use diesel::result::QueryResult;
use diesel::sql_types::{Double, Jsonb, Nullable, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::{Duration, OffsetDateTime};

use super::filters::{Bind, RunFilter, apply_binds};
use crate::db::prepared::prepared;
use crate::rollup::Grain;

/// Where a window's series are read from, and the width of one bin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The rows, in bins of this many minutes.
    Rows { minutes: i64 },
    /// The rollups' rows of one grain (hour or day).
    Rollup(Grain),
}

impl Source {
    /// The source for a window `[from, to)`: rows up to six hours (about 60 bins), hourly
    /// rollups up to eight days, daily beyond.
    pub fn of(from: OffsetDateTime, to: OffsetDateTime) -> Source {
        let span = to - from;
        if span <= Duration::hours(1) {
            Source::Rows { minutes: 1 }
        } else if span <= Duration::hours(6) {
            Source::Rows { minutes: 5 }
        } else if span <= Duration::days(8) {
            Source::Rollup(Grain::Hour)
        } else {
            Source::Rollup(Grain::Day)
        }
    }

    /// One bin, in seconds.
    pub fn step_s(self) -> i64 {
        match self {
            Source::Rows { minutes } => minutes * 60,
            Source::Rollup(Grain::Hour) => 3600,
            Source::Rollup(_) => 86_400,
        }
    }
}

/// One bin of a series.
#[derive(Debug, PartialEq)]
pub struct Bin {
    pub start: OffsetDateTime,
    /// `status: runs` (statuses with none are absent).
    pub runs: BTreeMap<String, i64>,
    /// `failure_type: failure records`.
    pub failures: BTreeMap<String, i64>,
    pub p95_step_latency_ms: Option<f64>,
    pub p95_run_duration_ms: Option<f64>,
    /// `agent_id: nano-dollars` of its priced steps (agents with none are absent).
    pub cost: BTreeMap<String, i64>,
}

/// The bins that have data, in time order (an empty bin is absent: the caller fills the gaps).
#[derive(Debug, PartialEq)]
pub struct Series {
    pub source: Source,
    pub bins: Vec<Bin>,
}

#[derive(QueryableByName)]
struct BinRow {
    #[diesel(sql_type = Timestamptz)]
    t: OffsetDateTime,
    #[diesel(sql_type = Jsonb)]
    runs: serde_json::Value,
    #[diesel(sql_type = Jsonb)]
    failures: serde_json::Value,
    #[diesel(sql_type = Nullable<Double>)]
    p95_lat: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    p95_dur: Option<f64>,
    #[diesel(sql_type = Jsonb)]
    cost: serde_json::Value,
}

/// The keys a series needs, as a condition on `col`.
fn wanted(col: &str) -> String {
    format!(
        "({col} LIKE 'runs:%' OR {col} LIKE 'fail:%' OR {col} LIKE 'lat:%' OR {col} LIKE 'dur:%' \
         OR {col} LIKE 'cost:%')"
    )
}

/// The statement for the runs `filter` selects by agent, version and environment (its other
/// fields are not used) over `[from, to)`, with its binds.
pub(crate) fn series_sql(
    filter: &RunFilter,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> (String, Vec<Bind>) {
    let keys = RunFilter {
        agent_id: filter.agent_id.clone(),
        agent_version: filter.agent_version.clone(),
        environment: filter.environment.clone(),
        ..RunFilter::default()
    };
    let source = Source::of(from, to);
    let mut binds = Vec::new();
    let entries = match source {
        Source::Rollup(grain) => {
            binds.push(Bind::Time(grain.floor(from)));
            binds.push(Bind::Time(to));
            let keys = keys.conditions(&mut binds);
            format!(
                "SELECT r.bucket AS t, r.agent_id::text AS a, x.key AS k, x.value::bigint AS n \
                 FROM stats_rollup r, jsonb_each_text(r.c) x \
                 WHERE r.grain = '{}' AND r.bucket >= $1 AND r.bucket < $2 AND {keys} AND {}",
                grain.code(),
                wanted("x.key")
            )
        }
        Source::Rows { minutes } => {
            binds.push(Bind::Time(from));
            binds.push(Bind::Time(to));
            let keys = keys.conditions(&mut binds);
            let bin = format!("date_bin('{minutes} minutes', r.started_at, $1)");
            let runs = format!("r.started_at >= $1 AND r.started_at < $2 AND {keys}");
            format!(
                "SELECT {bin} AS t, r.agent_id::text AS a, e.k, e.n FROM agent_runs r, \
                   agenttracer_run_entries(r.status, r.started_at, r.ended_at) e WHERE {runs} \
                 UNION ALL SELECT {bin}, r.agent_id, e.k, e.n FROM agent_steps s JOIN agent_runs r ON r.run_id = s.run_id, \
                   agenttracer_step_entries(s.step_type, s.latency_ms, s.model, s.input_tokens, s.output_tokens, s.cost_nanos) e \
                   WHERE {runs} AND (e.k LIKE 'lat:%' OR e.k LIKE 'cost:%') \
                 UNION ALL SELECT {bin}, r.agent_id, e.k, e.n FROM agent_failures f JOIN agent_runs r ON r.run_id = f.run_id, \
                   agenttracer_failure_entries(f.failure_type, f.failure_code) e WHERE {runs}"
            )
        }
    };
    // Failure keys `fail:<type>/<code>` are summed per type, cost keys `cost:<model>` per agent
    // (as `cost:<agent>`); the histograms go to agenttracer_quantiles as `{bucket: n}`.
    let sql = format!(
        "WITH e AS (SELECT t, CASE WHEN k LIKE 'fail:%' THEN split_part(k, '/', 1) \
                    WHEN k LIKE 'cost:%' THEN 'cost:' || a ELSE k END AS k, n \
                    FROM ({entries}) e0), \
         s AS (SELECT t, k, sum(n)::bigint AS n FROM e GROUP BY t, k HAVING sum(n) <> 0) \
         SELECT t, \
           coalesce(jsonb_object_agg(substr(k, 6), n) FILTER (WHERE k LIKE 'runs:%'), '{{}}') AS runs, \
           coalesce(jsonb_object_agg(substr(k, 6), n) FILTER (WHERE k LIKE 'fail:%'), '{{}}') AS failures, \
           (agenttracer_quantiles(jsonb_object_agg(substr(k, 5), n) FILTER (WHERE k LIKE 'lat:%'), '{{0.95}}'))[1] AS p95_lat, \
           (agenttracer_quantiles(jsonb_object_agg(substr(k, 5), n) FILTER (WHERE k LIKE 'dur:%'), '{{0.95}}'))[1] AS p95_dur, \
           coalesce(jsonb_object_agg(substr(k, 6), n) FILTER (WHERE k LIKE 'cost:%'), '{{}}') AS cost \
         FROM s GROUP BY t ORDER BY t"
    );
    (sql, binds)
}

fn counts(value: serde_json::Value) -> BTreeMap<String, i64> {
    match value {
        serde_json::Value::Object(map) => map
            .into_iter()
            .filter_map(|(k, v)| Some((k, v.as_i64()?)))
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// The series of the runs `filter` selects by agent, version and environment over `[from, to)`.
pub async fn series(
    conn: &mut AsyncPgConnection,
    filter: &RunFilter,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> QueryResult<Series> {
    let (sql, binds) = series_sql(filter, from, to);
    let rows: Vec<BinRow> = apply_binds(prepared(sql), binds).load(conn).await?;
    Ok(Series {
        source: Source::of(from, to),
        bins: rows
            .into_iter()
            .map(|r| Bin {
                start: r.t,
                runs: counts(r.runs),
                failures: counts(r.failures),
                p95_step_latency_ms: r.p95_lat,
                p95_run_duration_ms: r.p95_dur,
                cost: counts(r.cost),
            })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn short_windows_read_rows_and_long_ones_the_rollups() {
        let to = datetime!(2026-12-02 12:00 UTC);
        assert_eq!(
            Source::of(to - Duration::hours(1), to),
            Source::Rows { minutes: 1 }
        );
        assert_eq!(
            Source::of(to - Duration::hours(6), to),
            Source::Rows { minutes: 5 }
        );
        assert_eq!(
            Source::of(to - Duration::hours(24), to),
            Source::Rollup(Grain::Hour)
        );
        assert_eq!(
            Source::of(to - Duration::days(30), to),
            Source::Rollup(Grain::Day)
        );
    }

    #[test]
    fn filters_bind_after_the_window() {
        let filter = RunFilter {
            agent_id: Some("a".into()),
            status: Some(crate::model::RunStatus::Failure),
            ..RunFilter::default()
        };
        let to = datetime!(2026-12-02 12:00 UTC);
        let (sql, binds) = series_sql(&filter, to - Duration::days(2), to);
        assert_eq!(
            binds.len(),
            3,
            "window and agent only; status is not a series filter"
        );
        assert!(sql.contains("r.agent_id = $3"), "{sql}");
        assert!(sql.contains("r.grain = 'h'"), "{sql}");
    }
}

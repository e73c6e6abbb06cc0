//! `GET /v1/stats` and `GET /v1/agents`, computed in PostgreSQL (aggregates over the filtered
//! runs; nothing is loaded row by row into the server).

use std::collections::BTreeMap;

use diesel::QueryableByName;
use diesel::result::QueryResult;
use diesel::sql_types::{Array, BigInt, Double, Jsonb, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::filters::{Bind, RunFilter, apply_binds};
use crate::db::prepared::prepared;
use crate::model::RunStatus;

/// Percentiles of a distribution, in milliseconds; null when there is no data.
#[derive(Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// Failure and latency statistics of the runs a filter selects.
#[derive(Debug, PartialEq, Serialize, ToSchema)]
pub struct Stats {
    pub total_runs: i64,
    /// Runs whose status is `failure`, as the original counted (its UI shows
    /// `total_runs - total_failures` as "successful").
    pub total_failures: i64,
    /// Failure records (a run may have several; `failure_breakdown` sums to this).
    pub failure_count: i64,
    /// Percent of final runs (success, failure, partial) that are success or partial; 0.0 when none.
    pub success_rate: f64,
    /// Mean step latency; 0.0 when there are no steps.
    pub avg_latency_ms: f64,
    /// `"type/code": count` of failure records.
    pub failure_breakdown: BTreeMap<String, i64>,
    /// `step_type: count` of steps.
    pub step_type_breakdown: BTreeMap<String, i64>,
    /// `status: count` of runs, every status present.
    pub status_breakdown: BTreeMap<String, i64>,
    /// Run duration (`ended_at - started_at`) of runs that have ended.
    pub run_duration_ms: Percentiles,
    pub step_latency_ms: Percentiles,
    /// Per model: the steps that named it and their token usage.
    pub tokens_by_model: BTreeMap<String, ModelUsage>,
}

/// Token usage of the steps of one model.
#[derive(Debug, PartialEq, Serialize, ToSchema)]
pub struct ModelUsage {
    pub steps: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
}

/// The stats query's one row: every counter of the selected runs summed (`key: n`, see the
/// `stats_rollup` migration for the keys) and the two distributions' percentiles.
#[derive(QueryableByName)]
struct Totals {
    #[diesel(sql_type = Jsonb)]
    counters: serde_json::Value,
    #[diesel(sql_type = Nullable<Array<Nullable<Double>>>)]
    step_latency: Option<Vec<Option<f64>>>,
    #[diesel(sql_type = Nullable<Array<Nullable<Double>>>)]
    run_duration: Option<Vec<Option<f64>>>,
}

/// A half-open time range `[from, to)`; `None` is unbounded.
type Span = (Option<OffsetDateTime>, Option<OffsetDateTime>);

/// The rollups' grains, coarsest first: `stats_rollup.grain` and how a time rounds to one.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Grain {
    Month,
    Day,
    Hour,
}

impl Grain {
    const ALL: [Grain; 3] = [Grain::Month, Grain::Day, Grain::Hour];

    fn code(self) -> &'static str {
        match self {
            Grain::Month => "m",
            Grain::Day => "d",
            Grain::Hour => "h",
        }
    }

    /// The start of the grain that holds `t` (UTC).
    fn floor(self, t: OffsetDateTime) -> OffsetDateTime {
        let t = t.to_offset(time::UtcOffset::UTC);
        let day = t.replace_time(time::Time::MIDNIGHT);
        match self {
            Grain::Month => day.replace_day(1).unwrap_or(day),
            Grain::Day => day,
            Grain::Hour => day.replace_hour(t.hour()).unwrap_or(day),
        }
    }

    /// The first grain boundary at or after `t`; `None` past the last one `time` represents
    /// (the end of year 9999).
    fn ceil(self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        let floor = self.floor(t);
        if floor == t {
            return Some(t);
        }
        match self {
            Grain::Month => {
                let (year, month) = match floor.month() {
                    time::Month::December => (floor.year() + 1, time::Month::January),
                    m => (floor.year(), m.next()),
                };
                floor
                    .replace_month(month)
                    .and_then(|f| f.replace_year(year))
                    .ok()
            }
            Grain::Day => floor.checked_add(time::Duration::DAY),
            Grain::Hour => floor.checked_add(time::Duration::HOUR),
        }
    }
}

/// Where each part of a stats window is read from: whole UTC months, days and hours from
/// `stats_rollup` (coarsest first), the partial hours at its edges (and everything, under a
/// failure filter, which rollups do not key) from the rows themselves.
#[derive(Debug, Default, PartialEq)]
struct Plan {
    rollups: Vec<(Grain, Span)>,
    raw: Vec<Span>,
}

/// Whether `[from, to)` holds anything.
fn nonempty((from, to): Span) -> bool {
    !matches!((from, to), (Some(f), Some(t)) if f >= t)
}

impl Plan {
    fn of(filter: &RunFilter) -> Plan {
        let start = filter.start_time;
        // Timestamps are kept to the microsecond: `<= end` is `< end + 1 µs` (unbounded when
        // `end` is the last microsecond `time` represents: nothing is later).
        let end = filter
            .end_time
            .and_then(|t| t.checked_add(time::Duration::microseconds(1)));
        let mut plan = Plan::default();
        if filter.failure_type.is_some() || filter.failure_code.is_some() {
            plan.raw.push((start, end));
        } else {
            plan.cover((start, end), &Grain::ALL);
        }
        plan
    }

    /// Covers `[from, to)` with the whole grains of the coarsest of `grains` that fit, then
    /// what is left at either edge with the finer ones, and rows for what no grain covers.
    fn cover(&mut self, (from, to): Span, grains: &[Grain]) {
        let Some((&grain, finer)) = grains.split_first() else {
            self.raw.push((from, to));
            return;
        };
        let inner_from = match from {
            Some(t) => match grain.ceil(t) {
                Some(c) => Some(c),
                // No whole grain starts after `from`.
                None => return self.cover((from, to), finer),
            },
            None => None,
        };
        let whole = (inner_from, to.map(|t| grain.floor(t)));
        if !nonempty(whole) {
            return self.cover((from, to), finer);
        }
        if let (Some(from), Some(inner)) = (from, whole.0)
            && from < inner
        {
            self.cover((Some(from), Some(inner)), finer);
        }
        self.rollups.push((grain, whole));
        if let (Some(inner), Some(to)) = (whole.1, to)
            && inner < to
        {
            self.cover((Some(inner), Some(to)), finer);
        }
    }
}

/// `column` within one of `spans` (`FALSE` when there is none).
fn within(column: &str, spans: &[Span], binds: &mut Vec<Bind>) -> String {
    let mut any = Vec::new();
    for &(from, to) in spans {
        let mut both = vec!["TRUE".to_owned()];
        for (op, bound) in [(">=", from), ("<", to)] {
            if let Some(t) = bound {
                binds.push(Bind::Time(t));
                both.push(format!("{column} {op} ${}", binds.len()));
            }
        }
        any.push(format!("({})", both.join(" AND ")));
    }
    match any.is_empty() {
        true => "FALSE".into(),
        false => format!("({})", any.join(" OR ")),
    }
}

/// The stats query for a filter, with its binds: one statement, so one snapshot.
pub(crate) fn stats_sql(filter: &RunFilter) -> (String, Vec<Bind>) {
    let plan = Plan::of(filter);
    let mut binds = Vec::new();
    let mut parts = Vec::new();
    // Rollup rows carry the run's agent_id, agent_version and environment as `r.*` does.
    let keys = RunFilter {
        agent_id: filter.agent_id.clone(),
        agent_version: filter.agent_version.clone(),
        environment: filter.environment.clone(),
        ..RunFilter::default()
    };
    let mut rollup = Vec::new();
    for grain in Grain::ALL {
        let spans: Vec<Span> = plan
            .rollups
            .iter()
            .filter(|(g, _)| *g == grain)
            .map(|(_, span)| *span)
            .collect();
        if !spans.is_empty() {
            let within = within("r.bucket", &spans, &mut binds);
            rollup.push(format!("(r.grain = '{}' AND {within})", grain.code()));
        }
    }
    if !rollup.is_empty() {
        let keys = keys.conditions(&mut binds);
        parts.push(format!(
            "SELECT x.key AS k, x.value::bigint AS n FROM stats_rollup r, jsonb_each_text(r.c) x \
             WHERE ({}) AND {keys}",
            rollup.join(" OR ")
        ));
    }
    if !plan.raw.is_empty() {
        let mut raw = filter.conditions(&mut binds);
        raw = format!(
            "{raw} AND {}",
            within("r.started_at", &plan.raw, &mut binds)
        );
        parts.push(format!(
            "SELECT e.k, e.n FROM agent_runs r, \
             agenttracer_run_entries(r.status, r.started_at, r.ended_at) e WHERE {raw}"
        ));
        parts.push(format!(
            "SELECT e.k, e.n FROM agent_steps s JOIN agent_runs r ON r.run_id = s.run_id, \
             agenttracer_step_entries(s.step_type, s.latency_ms, s.model, s.input_tokens, s.output_tokens) e \
             WHERE {raw}"
        ));
        parts.push(format!(
            "SELECT e.k, e.n FROM agent_failures f JOIN agent_runs r ON r.run_id = f.run_id, \
             agenttracer_failure_entries(f.failure_type, f.failure_code) e WHERE {raw}"
        ));
    }
    let sql = format!(
        "WITH t AS (SELECT k, sum(n)::bigint AS n FROM ({}) e GROUP BY k HAVING sum(n) <> 0) \
         SELECT (SELECT coalesce(jsonb_object_agg(k, n), '{{}}') FROM t \
                 WHERE k NOT LIKE 'lat:%' AND k NOT LIKE 'dur:%') AS counters, \
         agenttracer_quantiles((SELECT jsonb_object_agg(substr(k, 5), n) FROM t WHERE k LIKE 'lat:%'), \
                               '{{0.5,0.95,0.99}}') AS step_latency, \
         agenttracer_quantiles((SELECT jsonb_object_agg(substr(k, 5), n) FROM t WHERE k LIKE 'dur:%'), \
                               '{{0.5,0.95,0.99}}') AS run_duration",
        parts.join(" UNION ALL ")
    );
    (sql, binds)
}

fn model<'a>(stats: &'a mut Stats, name: &str) -> &'a mut ModelUsage {
    stats
        .tokens_by_model
        .entry(name.to_owned())
        .or_insert(ModelUsage {
            steps: 0,
            input_tokens: 0,
            output_tokens: 0,
        })
}

fn percentiles(values: Option<Vec<Option<f64>>>) -> Percentiles {
    let mut v = values.unwrap_or_default().into_iter();
    Percentiles {
        p50: v.next().flatten(),
        p95: v.next().flatten(),
        p99: v.next().flatten(),
    }
}

/// Stats of the runs `filter` selects (its `status` is not a stats filter and must be unset).
/// Counts, sums and means are exact; percentiles come from log histograms, within 4 % of the
/// exact `percentile_cont`.
pub async fn stats(conn: &mut AsyncPgConnection, filter: &RunFilter) -> QueryResult<Stats> {
    let (sql, binds) = stats_sql(filter);
    let totals: Totals = apply_binds(prepared(sql), binds).get_result(conn).await?;
    let counters = match totals.counters {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    let mut stats = Stats {
        total_runs: 0,
        total_failures: 0,
        failure_count: 0,
        success_rate: 0.0,
        avg_latency_ms: 0.0,
        failure_breakdown: BTreeMap::new(),
        step_type_breakdown: BTreeMap::new(),
        status_breakdown: RunStatus::VALUES
            .iter()
            .map(|status| ((*status).to_owned(), 0))
            .collect(),
        run_duration_ms: percentiles(totals.run_duration),
        step_latency_ms: percentiles(totals.step_latency),
        tokens_by_model: BTreeMap::new(),
    };
    let (mut steps, mut latency_sum) = (0, 0);
    for (key, n) in counters {
        let n = n.as_i64().unwrap_or(0);
        let (kind, name) = key.split_once(':').unwrap_or((key.as_str(), ""));
        match kind {
            "runs" => {
                stats.total_runs += n;
                stats.status_breakdown.insert(name.to_owned(), n);
            }
            "steps" => steps = n,
            "latency_sum" => latency_sum = n,
            "type" => {
                stats.step_type_breakdown.insert(name.to_owned(), n);
            }
            "fail" => {
                stats.failure_count += n;
                stats.failure_breakdown.insert(name.to_owned(), n);
            }
            "model_steps" => model(&mut stats, name).steps = n,
            "model_in" => model(&mut stats, name).input_tokens = n,
            "model_out" => model(&mut stats, name).output_tokens = n,
            _ => {}
        }
    }
    if steps > 0 {
        stats.avg_latency_ms = latency_sum as f64 / steps as f64;
    }
    let count = |status: &str| stats.status_breakdown.get(status).copied().unwrap_or(0);
    let (success, partial, failure) = (count("success"), count("partial"), count("failure"));
    stats.total_failures = failure;
    let finals = success + partial + failure;
    if finals > 0 {
        stats.success_rate =
            ((success + partial) as f64 * 100.0 / finals as f64 * 100.0).round() / 100.0;
    }
    Ok(stats)
}

/// One agent: what versions and environments it ran in, how much, how often it failed.
#[derive(Debug, PartialEq, Serialize, ToSchema, QueryableByName)]
pub struct Agent {
    #[diesel(sql_type = Text)]
    pub agent_id: String,
    #[diesel(sql_type = Array<Text>)]
    pub versions: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    pub environments: Vec<String>,
    #[diesel(sql_type = BigInt)]
    pub run_count: i64,
    /// Runs whose status is `failure`.
    #[diesel(sql_type = BigInt)]
    pub failed_run_count: i64,
    /// Failure records across its runs.
    #[diesel(sql_type = BigInt)]
    pub failure_count: i64,
    #[diesel(sql_type = Timestamptz)]
    #[serde(with = "time::serde::rfc3339")]
    pub last_run_at: OffsetDateTime,
}

/// Every agent, most recently active first: counts from the month rollups (which cover every
/// run, exactly), the last run's time from the `(agent_id, started_at)` index — never a scan of
/// the runs (that took 1.1 s at a million runs).
pub async fn agents(conn: &mut AsyncPgConnection) -> QueryResult<Vec<Agent>> {
    prepared(
        "WITH k AS (SELECT r.agent_id::text AS agent_id, r.agent_version::text AS agent_version,            r.environment::text AS environment, x.key, sum(x.value::bigint) AS n            FROM stats_rollup r, jsonb_each_text(r.c) x            WHERE r.grain = 'm' AND (x.key LIKE 'runs:%' OR x.key LIKE 'fail:%')            GROUP BY 1, 2, 3, 4 HAVING sum(x.value::bigint) <> 0),          a AS (SELECT agent_id,            array_agg(DISTINCT agent_version) FILTER (WHERE key LIKE 'runs:%') AS versions,            array_agg(DISTINCT environment) FILTER (WHERE key LIKE 'runs:%') AS environments,            coalesce(sum(n) FILTER (WHERE key LIKE 'runs:%'), 0)::bigint AS run_count,            coalesce(sum(n) FILTER (WHERE key = 'runs:failure'), 0)::bigint AS failed_run_count,            coalesce(sum(n) FILTER (WHERE key LIKE 'fail:%'), 0)::bigint AS failure_count            FROM k GROUP BY agent_id HAVING sum(n) FILTER (WHERE key LIKE 'runs:%') > 0)          SELECT a.*, l.last_run_at FROM a, LATERAL (SELECT r.started_at AS last_run_at FROM agent_runs r            WHERE r.agent_id = a.agent_id ORDER BY r.started_at DESC LIMIT 1) l          ORDER BY l.last_run_at DESC, a.agent_id",
    )
    .load(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn plan(start: Option<OffsetDateTime>, end: Option<OffsetDateTime>) -> Plan {
        Plan::of(&RunFilter {
            start_time: start,
            end_time: end,
            ..RunFilter::default()
        })
    }

    #[test]
    fn an_unbounded_window_reads_month_rollups_only() {
        assert_eq!(
            plan(None, None),
            Plan {
                rollups: vec![(Grain::Month, (None, None))],
                raw: vec![],
            }
        );
    }

    #[test]
    fn a_window_reads_whole_months_days_and_hours_then_its_edges_raw() {
        let start = datetime!(2025-12-30 22:30 UTC);
        let end = datetime!(2026-02-02 01:15 UTC);
        let us = time::Duration::microseconds(1);
        let t = |t: OffsetDateTime| Some(t);
        assert_eq!(
            plan(Some(start), Some(end)),
            Plan {
                rollups: vec![
                    (
                        Grain::Hour,
                        (
                            t(datetime!(2025-12-30 23:00 UTC)),
                            t(datetime!(2025-12-31 0:00 UTC))
                        )
                    ),
                    (
                        Grain::Day,
                        (
                            t(datetime!(2025-12-31 0:00 UTC)),
                            t(datetime!(2026-01-01 0:00 UTC))
                        )
                    ),
                    (
                        Grain::Month,
                        (
                            t(datetime!(2026-01-01 0:00 UTC)),
                            t(datetime!(2026-02-01 0:00 UTC))
                        )
                    ),
                    (
                        Grain::Day,
                        (
                            t(datetime!(2026-02-01 0:00 UTC)),
                            t(datetime!(2026-02-02 0:00 UTC))
                        )
                    ),
                    (
                        Grain::Hour,
                        (
                            t(datetime!(2026-02-02 0:00 UTC)),
                            t(datetime!(2026-02-02 1:00 UTC))
                        )
                    ),
                ],
                raw: vec![
                    (t(start), t(datetime!(2025-12-30 23:00 UTC))),
                    (t(datetime!(2026-02-02 1:00 UTC)), t(end + us)),
                ],
            }
        );
    }

    #[test]
    fn aligned_bounds_need_few_raw_rows_and_short_windows_are_all_raw() {
        // `end_time` is inclusive: a run starting exactly at 03:00 belongs, so 03:00 is raw.
        let aligned = plan(
            Some(datetime!(2026-01-01 1:00 UTC)),
            Some(datetime!(2026-01-01 3:00 UTC)),
        );
        assert_eq!(
            aligned.rollups,
            vec![(
                Grain::Hour,
                (
                    Some(datetime!(2026-01-01 1:00 UTC)),
                    Some(datetime!(2026-01-01 3:00 UTC))
                )
            )]
        );
        assert_eq!(aligned.raw.len(), 1);
        let short = plan(
            Some(datetime!(2026-01-01 1:10 UTC)),
            Some(datetime!(2026-01-01 1:50 UTC)),
        );
        assert_eq!((short.rollups.len(), short.raw.len()), (0, 1));
        let open_end = plan(Some(datetime!(2026-03-31 23:10 UTC)), None);
        assert_eq!(
            open_end.rollups,
            vec![(Grain::Month, (Some(datetime!(2026-04-01 0:00 UTC)), None))]
        );
        assert_eq!(open_end.raw.len(), 1);
        // December rounds up into the next year.
        assert_eq!(
            Grain::Month.ceil(datetime!(2026-12-05 0:00 UTC)),
            Some(datetime!(2027-01-01 0:00 UTC))
        );
        // The last representable instants have no grain after them, and plan without a panic.
        let last = datetime!(9999-12-31 23:59:59.999999 UTC);
        for grain in Grain::ALL {
            assert_eq!(grain.ceil(last), None);
        }
        let to_the_end = plan(Some(datetime!(9999-12-31 23:59:59 UTC)), Some(last));
        assert_eq!(
            to_the_end.raw,
            vec![(Some(datetime!(9999-12-31 23:59:59 UTC)), None)]
        );
        let backwards = plan(
            Some(datetime!(9999-12-31 23:59:59 UTC)),
            Some(datetime!(0000-01-01 0:00 UTC)),
        );
        assert!(backwards.rollups.is_empty());
    }

    #[test]
    fn a_failure_filter_reads_every_row_raw() {
        let plan = Plan::of(&RunFilter {
            failure_code: Some("x".into()),
            ..RunFilter::default()
        });
        assert_eq!(plan.raw, vec![(None, None)]);
        assert!(plan.rollups.is_empty());
    }
}

//! `GET /v1/stats` and `GET /v1/agents`, computed in PostgreSQL (aggregates over the filtered
//! runs; nothing is loaded row by row into the server).

use std::collections::BTreeMap;
use std::sync::LazyLock;

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
use crate::model::cost::Usd;
use crate::rollup::{Counter, Grain, Plan, Span};

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
    /// The cost of every priced step (docs/cost.md); null when no step is priced.
    pub total_cost_usd: Option<Usd>,
    /// Per model with a price: its steps' cost.
    pub cost_by_model: BTreeMap<String, Usd>,
}

/// Token usage of the steps of one model.
#[derive(Debug, PartialEq, Serialize, ToSchema)]
pub struct ModelUsage {
    pub steps: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
}

/// The stats query's one row: every counter of the selected runs summed (`key: n`, the keys of
/// [`Counter`]) but the histograms, and the two distributions' percentiles.
#[derive(QueryableByName)]
struct Totals {
    #[diesel(sql_type = Jsonb)]
    counters: serde_json::Value,
    #[diesel(sql_type = Nullable<Array<Nullable<Double>>>)]
    step_latency: Option<Vec<Option<f64>>>,
    #[diesel(sql_type = Nullable<Array<Nullable<Double>>>)]
    run_duration: Option<Vec<Option<f64>>>,
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

/// Where the stats of `filter` are read from: rollups are not keyed by failure, session or
/// user, so under such a filter every row of the window is read (the same counters, from the
/// rows: the same answer as the rollups give for the same runs).
fn plan(filter: &RunFilter) -> Plan {
    let (start, end) = (filter.start_time, filter.end_time);
    let unkeyed = filter.failure_type.is_some()
        || filter.failure_code.is_some()
        || filter.session_id.is_some()
        || filter.user_id.is_some();
    match unkeyed {
        true => Plan::rows_only(start, end),
        false => Plan::of(start, end),
    }
}

/// Which counter rows [`counter_rows`] reads.
pub(crate) struct Rows {
    /// Also `r.agent_id` and `r.agent_version` before `k, n`.
    pub by_agent: bool,
    /// The steps' counters too (from the rows at a window's edges); runs' and failures' always.
    pub steps: bool,
}

/// The counters of the runs `filter` selects, as rows `(k, n)` (with `Rows::by_agent`,
/// `(agent_id, agent_version, k, n)`) to be summed: whole grains from the rollups, the partial
/// hours at the window's edges from the rows themselves ([`Plan`]).
pub(crate) fn counter_rows(filter: &RunFilter, binds: &mut Vec<Bind>, rows: Rows) -> String {
    let plan = plan(filter);
    let mut parts = Vec::new();
    let agent = match rows.by_agent {
        true => "r.agent_id::text AS agent_id, r.agent_version::text AS agent_version, ",
        false => "",
    };
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
            let within = within("r.bucket", &spans, binds);
            rollup.push(format!("(r.grain = '{}' AND {within})", grain.code()));
        }
    }
    if !rollup.is_empty() {
        let keys = keys.conditions(binds);
        parts.push(format!(
            "SELECT {agent}x.key AS k, x.value::bigint AS n FROM stats_rollup r, jsonb_each_text(r.c) x \
             WHERE ({}) AND {keys}",
            rollup.join(" OR ")
        ));
    }
    if !plan.raw.is_empty() {
        let mut raw = filter.conditions(binds);
        raw = format!("{raw} AND {}", within("r.started_at", &plan.raw, binds));
        parts.push(format!(
            "SELECT {agent}e.k, e.n FROM agent_runs r, \
             agenttracer_run_entries(r.status, r.started_at, r.ended_at) e WHERE {raw}"
        ));
        if rows.steps {
            parts.push(format!(
                "SELECT {agent}e.k, e.n FROM agent_steps s JOIN agent_runs r ON r.run_id = s.run_id, \
                 agenttracer_step_entries(s.step_type, s.latency_ms, s.model, s.input_tokens, s.output_tokens, s.cost_nanos) e \
                 WHERE {raw}"
            ));
        }
        parts.push(format!(
            "SELECT {agent}e.k, e.n FROM agent_failures f JOIN agent_runs r ON r.run_id = f.run_id, \
             agenttracer_failure_entries(f.failure_type, f.failure_code) e WHERE {raw}"
        ));
    }
    match parts.is_empty() {
        true => format!("SELECT {agent}NULL::text AS k, 0::bigint AS n WHERE FALSE"),
        false => parts.join(" UNION ALL "),
    }
}

/// The stats query for a filter, with its binds: one statement, so one snapshot.
pub(crate) fn stats_sql(filter: &RunFilter) -> (String, Vec<Bind>) {
    let mut binds = Vec::new();
    let rows = counter_rows(
        filter,
        &mut binds,
        Rows {
            by_agent: false,
            steps: true,
        },
    );
    // The histograms' counters, `lat:<bucket>` and `dur:<bucket>`, go to agenttracer_quantiles
    // as `{bucket: n}`; the others are summed by key.
    let (lat, dur) = (Counter::STEP_LATENCY, Counter::RUN_DURATION);
    let (lat_from, dur_from) = (lat.len() + 1, dur.len() + 1);
    let sql = format!(
        "WITH t AS (SELECT k, sum(n)::bigint AS n FROM ({}) e GROUP BY k HAVING sum(n) <> 0) \
         SELECT (SELECT coalesce(jsonb_object_agg(k, n), '{{}}') FROM t \
                 WHERE k NOT LIKE '{lat}%' AND k NOT LIKE '{dur}%') AS counters, \
         agenttracer_quantiles((SELECT jsonb_object_agg(substr(k, {lat_from}), n) FROM t WHERE k LIKE '{lat}%'), \
                               '{{0.5,0.95,0.99}}') AS step_latency, \
         agenttracer_quantiles((SELECT jsonb_object_agg(substr(k, {dur_from}), n) FROM t WHERE k LIKE '{dur}%'), \
                               '{{0.5,0.95,0.99}}') AS run_duration",
        rows
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
        total_cost_usd: None,
        cost_by_model: BTreeMap::new(),
    };
    let (mut steps, mut latency_sum) = (0, 0);
    for (key, n) in &counters {
        let n = n.as_i64().unwrap_or(0);
        match Counter::parse(key) {
            Some(Counter::Runs(status)) => {
                stats.total_runs += n;
                stats.status_breakdown.insert(status.as_str().to_owned(), n);
            }
            Some(Counter::Steps) => steps = n,
            Some(Counter::LatencySum) => latency_sum = n,
            Some(Counter::StepType(step_type)) => {
                stats
                    .step_type_breakdown
                    .insert(step_type.as_str().to_owned(), n);
            }
            Some(Counter::Failures(failure_type, code)) => {
                stats.failure_count += n;
                let name = format!("{}/{code}", failure_type.as_str());
                stats.failure_breakdown.insert(name, n);
            }
            Some(Counter::ModelSteps(name)) => model(&mut stats, name).steps = n,
            Some(Counter::ModelInputTokens(name)) => model(&mut stats, name).input_tokens = n,
            Some(Counter::ModelOutputTokens(name)) => model(&mut stats, name).output_tokens = n,
            Some(Counter::ModelCost(name)) => {
                stats.cost_by_model.insert(name.to_owned(), Usd(n));
            }
            // The histograms are read as percentiles; a key this version does not know, not at all.
            Some(Counter::StepLatency(_) | Counter::RunDuration(_)) | None => {}
        }
    }
    if steps > 0 {
        stats.avg_latency_ms = latency_sum as f64 / steps as f64;
    }
    if !stats.cost_by_model.is_empty() {
        stats.total_cost_usd = Some(Usd(stats.cost_by_model.values().map(|c| c.0).sum()));
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
    prepared(AGENTS.as_str()).load(conn).await
}

/// The query of [`agents`]: the month rollups' run and failure counters, per agent.
static AGENTS: LazyLock<String> = LazyLock::new(|| {
    let (runs, fail) = (Counter::RUNS, Counter::FAILURES);
    let failed = Counter::Runs(RunStatus::Failure).key();
    format!(
        "WITH k AS (SELECT r.agent_id::text AS agent_id, r.agent_version::text AS agent_version, \
           r.environment::text AS environment, x.key, sum(x.value::bigint) AS n \
           FROM stats_rollup r, jsonb_each_text(r.c) x \
           WHERE r.grain = '{month}' AND (x.key LIKE '{runs}%' OR x.key LIKE '{fail}%') \
           GROUP BY 1, 2, 3, 4 HAVING sum(x.value::bigint) <> 0), \
         a AS (SELECT agent_id, \
           array_agg(DISTINCT agent_version) FILTER (WHERE key LIKE '{runs}%') AS versions, \
           array_agg(DISTINCT environment) FILTER (WHERE key LIKE '{runs}%') AS environments, \
           coalesce(sum(n) FILTER (WHERE key LIKE '{runs}%'), 0)::bigint AS run_count, \
           coalesce(sum(n) FILTER (WHERE key = '{failed}'), 0)::bigint AS failed_run_count, \
           coalesce(sum(n) FILTER (WHERE key LIKE '{fail}%'), 0)::bigint AS failure_count \
           FROM k GROUP BY agent_id HAVING sum(n) FILTER (WHERE key LIKE '{runs}%') > 0) \
         SELECT a.*, l.last_run_at FROM a, LATERAL (SELECT r.started_at AS last_run_at FROM agent_runs r \
           WHERE r.agent_id = a.agent_id ORDER BY r.started_at DESC LIMIT 1) l \
         ORDER BY l.last_run_at DESC, a.agent_id",
        month = Grain::Month.code(),
    )
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_filter_reads_every_row_raw() {
        let plan = plan(&RunFilter {
            failure_code: Some("x".into()),
            ..RunFilter::default()
        });
        assert_eq!(plan.raw, vec![(None, None)]);
        assert!(plan.rollups.is_empty());
    }

    #[test]
    fn a_session_or_user_filter_reads_the_whole_window_raw() {
        let start = time::macros::datetime!(2026-01-01 00:00 UTC);
        let end = time::macros::datetime!(2026-03-01 00:00 UTC);
        for filter in [
            RunFilter {
                session_id: Some("s".into()),
                ..RunFilter::default()
            },
            RunFilter {
                user_id: Some("u".into()),
                ..RunFilter::default()
            },
        ] {
            let windowed = RunFilter {
                start_time: Some(start),
                end_time: Some(end),
                ..filter.clone()
            };
            assert_eq!(plan(&filter).raw, vec![(None, None)]);
            let plan = plan(&windowed);
            assert!(plan.rollups.is_empty(), "{windowed:?}");
            assert_eq!(plan.raw.len(), 1);
        }
        let keyed = plan(&RunFilter {
            start_time: Some(start),
            end_time: Some(end),
            ..RunFilter::default()
        });
        assert!(!keyed.rollups.is_empty());
    }
}

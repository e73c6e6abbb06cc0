//! The deltas of the rows a write path inserts, computed in Rust: what the insert triggers would
//! add for the same rows (one small insert instead of their per-row SQL).

use std::collections::HashMap;

use diesel::sql_types::{Array, Jsonb, Text, Timestamptz};
use serde_json::{Map, Value};
use time::{OffsetDateTime, Time, UtcOffset};

use super::bucket::{bucket, duration_ms};
use super::counter::Counter;
use super::plan::Grain;
use crate::db::prepared::Prepared;
use crate::model::{FailureType, NewRun, RunStatus, StepType};

/// The key of a delta row without its grain: the UTC hour a run started in (or the start of the
/// grain's bucket), and its agent.
type HourKey<'a> = (OffsetDateTime, &'a str, &'a str, &'a str);

/// A delta row: its grain, its key and its counters.
type Row<'a> = (Grain, HourKey<'a>, Map<String, Value>);

/// The run a row is counted under: its agent and start, as stored.
#[derive(Clone, Copy)]
pub struct RunKey<'a> {
    pub agent_id: &'a str,
    pub agent_version: &'a str,
    pub environment: &'a str,
    pub started_at: OffsetDateTime,
}

impl<'a> RunKey<'a> {
    pub fn of(run: &'a NewRun) -> RunKey<'a> {
        RunKey {
            agent_id: &run.agent_id,
            agent_version: &run.agent_version,
            environment: &run.environment,
            started_at: run.started_at,
        }
    }
}

/// The counters that inserted rows add, per hour and agent, before they are summed per grain.
#[derive(Default)]
pub struct Deltas<'a> {
    hours: HashMap<HourKey<'a>, HashMap<Counter<'a>, i64>>,
}

impl<'a> Deltas<'a> {
    fn counters(&mut self, key: RunKey<'a>) -> &mut HashMap<Counter<'a>, i64> {
        let utc = key.started_at.to_offset(UtcOffset::UTC);
        let hour = utc.replace_time(Time::from_hms(utc.hour(), 0, 0).unwrap_or(Time::MIDNIGHT));
        self.hours
            .entry((hour, key.agent_id, key.agent_version, key.environment))
            .or_default()
    }

    /// A run row inserted (not its steps or failures): `runs:<status>`, and `dur:<bucket>` once
    /// it ended.
    pub fn run(&mut self, key: RunKey<'a>, status: RunStatus, ended_at: Option<OffsetDateTime>) {
        let duration = ended_at.map(|end| duration_ms(key.started_at, end));
        let c = self.counters(key);
        *c.entry(Counter::Runs(status)).or_default() += 1;
        if let Some(b) = duration.and_then(bucket) {
            *c.entry(Counter::RunDuration(b)).or_default() += 1;
        }
    }

    /// A step row inserted under the run `key`: its type, latency, and model with token counts
    /// and cost.
    pub fn step(
        &mut self,
        key: RunKey<'a>,
        step_type: StepType,
        latency_ms: i32,
        model: Option<&'a str>,
        tokens: (Option<i32>, Option<i32>),
        cost_nanos: Option<i64>,
    ) {
        let c = self.counters(key);
        *c.entry(Counter::Steps).or_default() += 1;
        *c.entry(Counter::LatencySum).or_default() += i64::from(latency_ms);
        *c.entry(Counter::StepType(step_type)).or_default() += 1;
        if let Some(b) = bucket(f64::from(latency_ms)) {
            *c.entry(Counter::StepLatency(b)).or_default() += 1;
        }
        if let Some(model) = model {
            *c.entry(Counter::ModelSteps(model)).or_default() += 1;
            *c.entry(Counter::ModelInputTokens(model)).or_default() +=
                i64::from(tokens.0.unwrap_or(0));
            *c.entry(Counter::ModelOutputTokens(model)).or_default() +=
                i64::from(tokens.1.unwrap_or(0));
            if let Some(nanos) = cost_nanos {
                *c.entry(Counter::ModelCost(model)).or_default() += nanos;
            }
        }
    }

    /// A failure row inserted under the run `key`.
    pub fn failure(&mut self, key: RunKey<'a>, failure_type: FailureType, code: &'a str) {
        *self
            .counters(key)
            .entry(Counter::Failures(failure_type, code))
            .or_default() += 1;
    }

    /// The steps and failures of a native run, inserted under its key.
    pub fn children(&mut self, run: &'a NewRun) {
        let key = RunKey::of(run);
        for s in &run.steps {
            let tokens = (s.input_tokens, s.output_tokens);
            let (model, cost) = (s.model.as_deref(), s.cost_nanos);
            self.step(key, s.step_type, s.latency_ms, model, tokens, cost);
        }
        for f in &run.failures {
            self.failure(key, f.failure_type, &f.failure_code);
        }
    }

    /// One delta row per grain, bucket and agent, with the counters that do not sum to zero:
    /// the rows the insert triggers would add for the same rows.
    fn rows(&self) -> Vec<Row<'a>> {
        let mut grains: HashMap<(Grain, HourKey<'a>), HashMap<Counter<'a>, i64>> = HashMap::new();
        for (key, counters) in &self.hours {
            for grain in Grain::ALL {
                let sums = grains
                    .entry((grain, (grain.floor(key.0), key.1, key.2, key.3)))
                    .or_default();
                for (counter, n) in counters {
                    *sums.entry(*counter).or_default() += n;
                }
            }
        }
        grains
            .into_iter()
            .filter_map(|((grain, key), sums)| {
                let c: Map<String, Value> = sums
                    .into_iter()
                    .filter(|(_, n)| *n != 0)
                    .map(|(counter, n)| (counter.key(), Value::from(n)))
                    .collect();
                (!c.is_empty()).then_some((grain, key, c))
            })
            .collect()
    }

    /// Whether no row was counted (then there is no delta row either: every row counts 1).
    pub fn is_empty(&self) -> bool {
        self.hours.is_empty()
    }

    /// Binds the delta rows to `query`'s next six placeholders, as arrays for UNNEST: grain,
    /// bucket, agent_id, agent_version, environment, counters (`text[]`, `timestamptz[]`,
    /// `text[]` ×3, `jsonb[]`), for the insert of [`super::single_statement`] or
    /// [`super::SkipTriggers::write`].
    pub fn bind<'q>(&self, query: Prepared<'q>) -> Prepared<'q>
    where
        'a: 'q,
    {
        let rows = self.rows();
        query
            .bind::<Array<Text>, _>(rows.iter().map(|r| r.0.code()).collect::<Vec<_>>())
            .bind::<Array<Timestamptz>, _>(rows.iter().map(|r| r.1.0).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(rows.iter().map(|r| r.1.1).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(rows.iter().map(|r| r.1.2).collect::<Vec<_>>())
            .bind::<Array<Text>, _>(rows.iter().map(|r| r.1.3).collect::<Vec<_>>())
            .bind::<Array<Jsonb>, _>(
                rows.into_iter()
                    .map(|r| Value::Object(r.2))
                    .collect::<Vec<_>>(),
            )
    }
}

/// The insert of the delta rows [`Deltas::bind`] binds, from its placeholders `$n`…`$n+5`.
pub(super) fn insert(n: usize) -> String {
    format!(
        "INSERT INTO stats_rollup (grain, bucket, agent_id, agent_version, environment, c) \
         SELECT * FROM UNNEST(${}::text[], ${}::timestamptz[], ${}::text[], ${}::text[], ${}::text[], ${}::jsonb[])",
        n,
        n + 1,
        n + 2,
        n + 3,
        n + 4,
        n + 5
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn key(started_at: OffsetDateTime) -> RunKey<'static> {
        RunKey {
            agent_id: "a",
            agent_version: "1",
            environment: "production",
            started_at,
        }
    }

    #[test]
    fn a_row_counts_at_its_hour_day_and_month_and_zero_sums_vanish() {
        let mut deltas = Deltas::default();
        let start = datetime!(2026-03-14 15:09:26 +01:00);
        deltas.run(key(start), RunStatus::Success, Some(start));
        deltas.step(
            key(start),
            StepType::Llm,
            0,
            Some("m"),
            (Some(3), None),
            Some(42),
        );
        deltas.step(key(start), StepType::Tool, 5, None, (None, None), None);
        deltas.failure(key(start), FailureType::Tool, "timeout");
        let mut rows = deltas.rows();
        rows.sort_by_key(|r| r.0.code());
        let buckets: Vec<_> = rows.iter().map(|r| (r.0, r.1.0)).collect();
        assert_eq!(
            buckets,
            [
                (Grain::Day, datetime!(2026-03-14 0:00 UTC)),
                (Grain::Hour, datetime!(2026-03-14 14:00 UTC)),
                (Grain::Month, datetime!(2026-03-01 0:00 UTC)),
            ]
        );
        let c = &rows[0].2;
        assert!(rows.iter().all(|r| &r.2 == c));
        assert_eq!(c["runs:success"], 1);
        assert_eq!(c["dur:-32768"], 1);
        assert_eq!(c["steps"], 2);
        assert_eq!(c["latency_sum"], 5);
        assert_eq!(c["lat:-32768"], 1);
        assert_eq!(c["model_in:m"], 3);
        assert_eq!(c["cost:m"], 42);
        assert_eq!(c["fail:tool/timeout"], 1);
        // No output tokens: a counter that sums to zero has no key.
        assert!(!c.contains_key("model_out:m"));
    }
}

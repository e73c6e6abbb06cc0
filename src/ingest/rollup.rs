//! The stats rollups: every write adds delta rows to `stats_rollup` (see its migrations), and
//! the ingest role's compactor merges each key's deltas into one row every few seconds, so a
//! stats query reads about one row per key and hour or day, however many writes made it.
//!
//! Triggers compute the deltas of every change. The native and OTLP write paths compute those of
//! the rows they insert themselves ([`Deltas`]) — one small insert instead of the triggers'
//! per-row SQL — and mark their transaction so the insert triggers skip its statements.

use std::collections::HashMap;
use std::time::Duration;

use diesel::QueryableByName;
use diesel::result::QueryResult;
use diesel::sql_types::{Array, Integer, Jsonb, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::{Map, Value};
use time::{OffsetDateTime, Time, UtcOffset};

use crate::db::prepared::{Prepared, prepared};
use crate::db::{DbError, PgPool};
use crate::model::{FailureType, NewRun, StepType};

/// `ln(γ)`, γ = 1.04 / 0.96: the histogram bucket width, as `agenttracer_bucket` has it.
const LN_GAMMA: f64 = 0.0800427076735364;

/// The histogram bucket of `x` (a latency or duration in milliseconds), exactly as the SQL
/// function `agenttracer_bucket` computes it: `ceil(ln(x) / ln γ)`, -32768 for zero, none for a
/// negative value. Both sides use the same IEEE operations on the same inputs (glibc's `log`),
/// so a row counted here is uncounted by the delete triggers from the very same bucket.
pub fn bucket(x: f64) -> Option<i32> {
    if x > 0.0 {
        Some((x.ln() / LN_GAMMA).ceil() as i32)
    } else if x == 0.0 {
        Some(-32768)
    } else {
        None
    }
}

/// A run's duration in milliseconds as the SQL computes it
/// (`extract(epoch FROM ended_at - started_at)::float8 * 1000`).
fn duration_ms(started_at: OffsetDateTime, ended_at: OffsetDateTime) -> f64 {
    let micros = (ended_at - started_at).whole_microseconds();
    micros as f64 / 1_000_000.0 * 1000.0
}

/// The setting that makes the insert triggers skip a transaction's statements (its rows'
/// deltas are written by [`Deltas::insert`] instead).
pub const SKIP_INSERT_TRIGGERS: &str =
    "SELECT set_config('agenttracer.rollup_by_writer', 'on', true)";

const INSERT_DELTAS: &str = "INSERT INTO stats_rollup (grain, bucket, agent_id, agent_version, environment, c) \
    SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::jsonb[])";

/// The key of a delta row without its grain: the UTC hour a run started in, and its agent.
type HourKey<'a> = (OffsetDateTime, &'a str, &'a str, &'a str);

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
    hours: HashMap<HourKey<'a>, HashMap<String, i64>>,
}

impl<'a> Deltas<'a> {
    fn counters(&mut self, key: RunKey<'a>) -> &mut HashMap<String, i64> {
        let utc = key.started_at.to_offset(UtcOffset::UTC);
        let hour = utc.replace_time(Time::from_hms(utc.hour(), 0, 0).unwrap_or(Time::MIDNIGHT));
        self.hours
            .entry((hour, key.agent_id, key.agent_version, key.environment))
            .or_default()
    }

    /// A run row inserted (not its steps or failures): `runs:<status>`, and `dur:<bucket>` once
    /// it ended.
    pub fn run(&mut self, key: RunKey<'a>, status: &str, ended_at: Option<OffsetDateTime>) {
        let duration = ended_at.map(|end| duration_ms(key.started_at, end));
        let c = self.counters(key);
        *c.entry(format!("runs:{status}")).or_default() += 1;
        if let Some(b) = duration.and_then(bucket) {
            *c.entry(format!("dur:{b}")).or_default() += 1;
        }
    }

    /// A step row inserted under the run `key`: its type, latency, and model with token counts.
    pub fn step(
        &mut self,
        key: RunKey<'a>,
        step_type: StepType,
        latency_ms: i32,
        model: Option<&str>,
        tokens: (Option<i32>, Option<i32>),
    ) {
        let c = self.counters(key);
        *c.entry("steps".to_owned()).or_default() += 1;
        *c.entry("latency_sum".to_owned()).or_default() += i64::from(latency_ms);
        *c.entry(format!("type:{}", step_type.as_str())).or_default() += 1;
        if let Some(b) = bucket(f64::from(latency_ms)) {
            *c.entry(format!("lat:{b}")).or_default() += 1;
        }
        if let Some(model) = model {
            *c.entry(format!("model_steps:{model}")).or_default() += 1;
            *c.entry(format!("model_in:{model}")).or_default() += i64::from(tokens.0.unwrap_or(0));
            *c.entry(format!("model_out:{model}")).or_default() += i64::from(tokens.1.unwrap_or(0));
        }
    }

    /// A failure row inserted under the run `key`.
    pub fn failure(&mut self, key: RunKey<'a>, failure_type: FailureType, code: &str) {
        *self
            .counters(key)
            .entry(format!("fail:{}/{code}", failure_type.as_str()))
            .or_default() += 1;
    }

    /// The steps and failures of a native run, inserted under its key.
    pub fn children(&mut self, run: &'a NewRun) {
        let key = RunKey::of(run);
        for s in &run.steps {
            let tokens = (s.input_tokens, s.output_tokens);
            self.step(key, s.step_type, s.latency_ms, s.model.as_deref(), tokens);
        }
        for f in &run.failures {
            self.failure(key, f.failure_type, &f.failure_code);
        }
    }

    /// One delta row per grain, bucket and agent, with the counters that do not sum to zero:
    /// the rows `agenttracer_rollup_sql` would insert for the same rows.
    /// (The key's time is the grain's bucket.)
    fn rows(&self) -> Vec<(&'static str, HourKey<'a>, Map<String, Value>)> {
        let mut grains: HashMap<(&'static str, HourKey<'a>), HashMap<&str, i64>> = HashMap::new();
        for (key, counters) in &self.hours {
            let hour = key.0;
            let day = hour.replace_time(Time::MIDNIGHT);
            let month = day.replace_day(1).unwrap_or(day);
            for (grain, bucket) in [("h", hour), ("d", day), ("m", month)] {
                let sums = grains
                    .entry((grain, (bucket, key.1, key.2, key.3)))
                    .or_default();
                for (k, n) in counters {
                    *sums.entry(k.as_str()).or_default() += n;
                }
            }
        }
        grains
            .into_iter()
            .filter_map(|((grain, key), sums)| {
                let c: Map<String, Value> = sums
                    .into_iter()
                    .filter(|(_, n)| *n != 0)
                    .map(|(k, n)| (k.to_owned(), Value::from(n)))
                    .collect();
                (!c.is_empty()).then_some((grain, key, c))
            })
            .collect()
    }

    /// Inserts the delta rows in the current transaction.
    pub async fn insert(&self, conn: &mut AsyncPgConnection) -> QueryResult<()> {
        let rows = self.rows();
        if rows.is_empty() {
            return Ok(());
        }
        bind_rows(prepared(INSERT_DELTAS), rows)
            .execute(conn)
            .await
            .map(|_| ())
    }

    /// Binds the delta rows to `query`'s next six placeholders, as arrays for UNNEST: grain,
    /// bucket, agent_id, agent_version, environment, counters (`text[]`, `timestamptz[]`,
    /// `text[]` ×3, `jsonb[]`).
    pub fn bind_rows<'q>(&self, query: Prepared<'q>) -> Prepared<'q>
    where
        'a: 'q,
    {
        bind_rows(query, self.rows())
    }
}

/// Delta rows as the six array binds of [`Deltas::bind_rows`].
fn bind_rows<'q>(
    query: Prepared<'q>,
    rows: Vec<(&'static str, HourKey<'q>, Map<String, Value>)>,
) -> Prepared<'q> {
    query
        .bind::<Array<Text>, _>(rows.iter().map(|r| r.0).collect::<Vec<_>>())
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

/// How often the compactor runs, and how many keys one of its transactions merges.
pub const INTERVAL: Duration = Duration::from_secs(5);
pub const KEYS_PER_TRANSACTION: i32 = 500;

#[derive(QueryableByName)]
struct Merged {
    #[diesel(sql_type = Integer)]
    merged: i32,
}

/// Merges every key that has deltas, a bounded number of keys per transaction; returns how many.
pub async fn compact(pool: &PgPool) -> Result<usize, DbError> {
    let mut total = 0;
    loop {
        let mut conn = pool.get().await?;
        let Merged { merged } = prepared("SELECT agenttracer_rollup_compact($1) AS merged")
            .bind::<Integer, _>(KEYS_PER_TRANSACTION)
            .get_result(&mut conn)
            .await?;
        total += merged as usize;
        if merged < KEYS_PER_TRANSACTION {
            return Ok(total);
        }
    }
}

/// Runs [`compact`] every [`INTERVAL`], the first time one interval after startup (when the pool
/// is busiest opening connections), until the task is dropped.
pub async fn run(pool: PgPool) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + INTERVAL, INTERVAL);
    loop {
        tick.tick().await;
        match compact(&pool).await {
            Ok(merged) => tracing::debug!(merged, "stats rollups compacted"),
            Err(error) => tracing::warn!(%error, "stats rollup compaction failed; will retry"),
        }
    }
}

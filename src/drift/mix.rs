//! An agent's behaviour as the web UI shows it: how often each decision type chose each option and
//! each signal type gave each code, over a window and in time bins of it. One aggregate statement,
//! bounded by the agent and the window (`agent_runs (agent_id, started_at)`) and by
//! [`MAX_RUNS`]: it reads the window's latest runs, at most that many, so a page stays within its
//! time however busy the agent (exact counts of any window would need rollups of these counts;
//! docs/performance.md).
//!
//! Unlike a profile ([`super::profile`]) the version and environment may be left open (all of the
//! agent's), and nothing is stored.

use std::collections::BTreeMap;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Double, Nullable, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use time::OffsetDateTime;

use super::DriftError;
use super::compare::Counts;

/// Whose runs: an agent, and optionally one version and one environment of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MixKey {
    pub agent_id: String,
    pub agent_version: Option<String>,
    pub environment: Option<String>,
}

/// The window `[from, to)` cut in bins of `step_s` seconds counted from `origin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bins {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub origin: OffsetDateTime,
    pub step_s: i64,
}

impl Bins {
    /// The start of bin `index`.
    pub fn start(&self, index: i64) -> OffsetDateTime {
        self.origin + time::Duration::seconds(index.saturating_mul(self.step_s))
    }
}

/// The most runs a window's mix is read from: its latest ones. At a million runs, an agent's
/// 1,000 runs and their decisions and signals take about 30 ms; 50,000 (a busy agent's 30 days)
/// took 3 s.
pub const MAX_RUNS: i64 = 1000;

/// Counts per type, then per bin (its index from [`Bins::origin`]), then per option.
pub type Binned = BTreeMap<String, BTreeMap<i64, BTreeMap<String, i64>>>;

/// The behaviour of a window.
#[derive(Debug, Default, PartialEq)]
pub struct Mix {
    /// The runs it was read from: those that started in the window, at most [`MAX_RUNS`].
    pub runs: i64,
    /// When the window held more runs than were read: the start of the earliest one read (the
    /// counts are those of the runs since then).
    pub since: Option<OffsetDateTime>,
    pub decisions: Binned,
    pub signals: Binned,
}

/// A type's counts over every bin: per type, per option.
pub fn totals(binned: &Binned) -> Counts {
    binned
        .iter()
        .map(|(kind, bins)| {
            let mut options: BTreeMap<String, i64> = BTreeMap::new();
            for (option, n) in bins.values().flatten() {
                *options.entry(option.clone()).or_default() += n;
            }
            (kind.clone(), options)
        })
        .collect()
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    bin: Option<i64>,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    option: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    since: Option<OffsetDateTime>,
}

/// The latest runs of `key` that started in the window (at most [`MAX_RUNS`]), and their
/// decisions and signals counted per bin.
pub async fn mix(
    conn: &mut AsyncPgConnection,
    key: &MixKey,
    bins: Bins,
) -> Result<Mix, DriftError> {
    let sql = "WITH r AS MATERIALIZED (
            SELECT started_at, decisions, quality_signals,
                   floor((extract(epoch FROM started_at) - $6) / $7)::bigint AS bin
            FROM agent_runs
            WHERE agent_id = $1 AND ($2::text IS NULL OR agent_version = $2)
              AND ($3::text IS NULL OR environment = $3)
              AND started_at >= $4 AND started_at < $5
            ORDER BY started_at DESC LIMIT $8)
        SELECT 'd' AS kind, r.bin, x ->> 'decision_type' AS name, x ->> 'selected' AS option,
               count(*) AS n, NULL::timestamptz AS since
          FROM r, jsonb_array_elements(r.decisions) x GROUP BY r.bin, 3, 4
        UNION ALL
        SELECT 's', r.bin, x ->> 'signal_type', x ->> 'signal_code', count(*), NULL
          FROM r, jsonb_array_elements(r.quality_signals) x GROUP BY r.bin, 3, 4
        UNION ALL
        SELECT 'r', NULL, '', '', count(*), min(started_at) FROM r";
    let rows: Vec<Row> = diesel::sql_query(sql)
        .bind::<Text, _>(&key.agent_id)
        .bind::<Nullable<Text>, _>(&key.agent_version)
        .bind::<Nullable<Text>, _>(&key.environment)
        .bind::<Timestamptz, _>(bins.from)
        .bind::<Timestamptz, _>(bins.to)
        .bind::<Double, _>(bins.origin.unix_timestamp() as f64)
        .bind::<Double, _>(bins.step_s.max(1) as f64)
        .bind::<BigInt, _>(MAX_RUNS)
        .load(conn)
        .await?;
    let mut mix = Mix::default();
    for row in rows {
        let binned = match row.kind.as_str() {
            "d" => &mut mix.decisions,
            "s" => &mut mix.signals,
            _ => {
                mix.runs = row.n;
                mix.since = row.since.filter(|_| row.n >= MAX_RUNS);
                continue;
            }
        };
        binned
            .entry(row.name)
            .or_default()
            .entry(row.bin.unwrap_or_default())
            .or_default()
            .insert(row.option, row.n);
    }
    Ok(mix)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn totals_add_up_the_bins_and_bins_know_their_start() {
        let mut binned = Binned::new();
        let kind = binned.entry("tool_selection".into()).or_default();
        kind.entry(0)
            .or_default()
            .extend([("api".to_owned(), 3), ("cache".to_owned(), 1)]);
        kind.entry(2).or_default().insert("api".into(), 2);
        let totals = totals(&binned);
        assert_eq!(totals["tool_selection"]["api"], 5);
        assert_eq!(totals["tool_selection"]["cache"], 1);
        let origin = datetime!(2026-12-02 10:00 UTC);
        let bins = Bins {
            from: origin,
            to: origin + time::Duration::hours(3),
            origin,
            step_s: 3600,
        };
        assert_eq!(bins.start(2), datetime!(2026-12-02 12:00 UTC));
    }
}

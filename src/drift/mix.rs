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

    /// The bin of these that holds the start of bin `index` of `finer` (whose width divides
    /// theirs, and whose origin is on or after theirs).
    fn holding(&self, finer: &Bins, index: i64) -> i64 {
        (finer.start(index) - self.origin)
            .whole_seconds()
            .div_euclid(self.step_s.max(1))
    }

    /// These bins widened to `step_s`. A grid counted from the Unix epoch (the rollups' hours
    /// and days) stays counted from it, so that wider bins start at the same UTC times (6-hour
    /// bins at 00, 06, 12 and 18 h) whatever the window; others keep their origin.
    pub fn widened(&self, step_s: i64) -> Bins {
        let origin = self.origin.unix_timestamp();
        let origin = match origin.rem_euclid(self.step_s.max(1)) {
            0 => origin - origin.rem_euclid(step_s.max(1)),
            _ => origin,
        };
        Bins {
            origin: OffsetDateTime::from_unix_timestamp(origin).unwrap_or(self.origin),
            step_s,
            ..*self
        }
    }

    /// How many bins cover `[origin, to)`.
    pub fn count(&self) -> i64 {
        let span = (self.to - self.origin).whole_seconds();
        (span + self.step_s.max(1) - 1)
            .div_euclid(self.step_s.max(1))
            .max(0)
    }
}

/// The widths a chart's bins may take, in seconds: 1, 5, 10, 15 and 30 minutes, 1, 2, 3, 6 and 12
/// hours, 1, 2 and 7 days.
const WIDTHS: [i64; 13] = [
    60, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800,
];

/// The runs a bin that has runs should hold on average: bins are widened until they do.
pub const MEAN_RUNS: i64 = 20;

/// The fewest decisions (or signals) of a type a bin's share is drawn from: a bin with fewer
/// draws no share (a gap), rather than a swing to 0 % or 100 % on a run or two.
pub const MIN_COUNT: i64 = 10;

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
    /// Per bin (its index), the runs read that started in it; bins without any are absent.
    pub runs_per_bin: BTreeMap<i64, i64>,
    pub decisions: Binned,
    pub signals: Binned,
}

impl Mix {
    /// The bins to draw this mix in, counted in `bins`: the narrowest of [`WIDTHS`] (from `bins`'
    /// own, of which it is a multiple, up to the window's span) whose bins that hold runs hold
    /// [`MEAN_RUNS`] on average; the widest when none does. A dense window keeps its bins, a
    /// sparse one is drawn in fewer, wider ones; the bins of a window read in part (more runs
    /// than [`MAX_RUNS`]) are judged by the part read.
    pub fn chart_bins(&self, bins: Bins) -> Bins {
        let span = (bins.to - bins.origin).whole_seconds();
        let mut chosen = bins;
        let candidates = WIDTHS
            .into_iter()
            .filter(|&w| w > bins.step_s && w % bins.step_s.max(1) == 0 && w <= span);
        for wider in std::iter::once(bins).chain(candidates.map(|w| bins.widened(w))) {
            chosen = wider;
            let mut held: BTreeMap<i64, i64> = BTreeMap::new();
            for (&index, &n) in &self.runs_per_bin {
                *held.entry(wider.holding(&bins, index)).or_default() += n;
            }
            let runs: i64 = held.values().sum();
            if held.is_empty() || runs >= MEAN_RUNS * held.len() as i64 {
                break;
            }
        }
        chosen
    }

    /// This mix, counted in `bins`, counted in `wider` (from [`Mix::chart_bins`]).
    pub fn rebinned(self, bins: &Bins, wider: &Bins) -> Mix {
        let to = |binned: Binned| -> Binned {
            binned
                .into_iter()
                .map(|(kind, per_bin)| {
                    let mut out: BTreeMap<i64, BTreeMap<String, i64>> = BTreeMap::new();
                    for (index, options) in per_bin {
                        let bin = out.entry(wider.holding(bins, index)).or_default();
                        for (option, n) in options {
                            *bin.entry(option).or_default() += n;
                        }
                    }
                    (kind, out)
                })
                .collect()
        };
        let mut runs_per_bin: BTreeMap<i64, i64> = BTreeMap::new();
        for (index, n) in self.runs_per_bin {
            *runs_per_bin.entry(wider.holding(bins, index)).or_default() += n;
        }
        Mix {
            runs: self.runs,
            since: self.since,
            runs_per_bin,
            decisions: to(self.decisions),
            signals: to(self.signals),
        }
    }
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
        SELECT 'r', r.bin, '', '', count(*), min(started_at) FROM r GROUP BY r.bin";
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
                mix.runs += row.n;
                mix.since = match (mix.since, row.since) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                mix.runs_per_bin.insert(row.bin.unwrap_or_default(), row.n);
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
    mix.since = mix.since.filter(|_| mix.runs >= MAX_RUNS);
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

    /// `runs` runs in each of the hourly bins `at` of a day from 10:00 UTC.
    fn day_of(at: &[(i64, i64)]) -> (Mix, Bins) {
        let origin = datetime!(2026-12-01 10:00 UTC);
        let bins = Bins {
            from: origin + time::Duration::minutes(20),
            to: origin + time::Duration::hours(24) + time::Duration::minutes(20),
            origin,
            step_s: 3600,
        };
        let mut mix = Mix::default();
        for &(index, runs) in at {
            mix.runs += runs;
            mix.runs_per_bin.insert(index, runs);
            mix.decisions
                .entry("tool_selection".into())
                .or_default()
                .insert(index, BTreeMap::from([("api".to_owned(), runs)]));
        }
        (mix, bins)
    }

    #[test]
    fn a_dense_window_keeps_its_bins_and_a_sparse_one_widens_them_from_utc_boundaries() {
        let (dense, bins) = day_of(&(0..25).map(|i| (i, 25)).collect::<Vec<_>>());
        assert_eq!(dense.chart_bins(bins), bins);
        // A run an hour: 3 hours hold 3, 6 hours 6, 12 hours about 12, a day (the widest
        // within the window) 14 and 11.
        let (sparse, bins) = day_of(&(0..25).map(|i| (i, 1)).collect::<Vec<_>>());
        let wider = sparse.chart_bins(bins);
        assert_eq!(wider.step_s, 86_400);
        assert_eq!(wider.origin, datetime!(2026-12-01 00:00 UTC));
        assert_eq!(wider.count(), 2);
        let rebinned = sparse.rebinned(&bins, &wider);
        assert_eq!(rebinned.runs_per_bin, BTreeMap::from([(0, 14), (1, 11)]));
        assert_eq!(rebinned.decisions["tool_selection"][&1]["api"], 11);
        // Two runs an hour from 10:00 to 19:59 and none after: 6-hour bins (00, 06, 12, 18 h)
        // hold 4, 12 and 4 runs, not 20 on average; 12-hour ones 4 and 16, neither; a day's
        // 20 do.
        let (evening, bins) = day_of(&(0..10).map(|i| (i, 2)).collect::<Vec<_>>());
        assert_eq!(evening.chart_bins(bins).step_s, 86_400);
        // 40 an hour in a burst of three hours, and one run later: hourly bins hold 30 on
        // average; the lone run's bin draws no share (MIN_COUNT).
        let (burst, bins) = day_of(&[(2, 40), (3, 40), (4, 40), (20, 1)]);
        assert_eq!(burst.chart_bins(bins), bins);
        // Nothing read: the bins stay.
        assert_eq!(Mix::default().chart_bins(bins), bins);
    }

    #[test]
    fn bins_not_counted_from_the_epoch_keep_their_origin_when_widened() {
        let from = datetime!(2026-12-01 10:23:17 UTC);
        let bins = Bins {
            from,
            to: from + time::Duration::hours(1),
            origin: from,
            step_s: 60,
        };
        let wider = bins.widened(900);
        assert_eq!((wider.origin, wider.count()), (from, 4));
        assert_eq!(wider.holding(&bins, 14), 0);
        assert_eq!(wider.holding(&bins, 15), 1);
    }
}

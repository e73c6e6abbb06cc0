//! The grains of the rollups, and where each part of a stats window is read from.
//!
//! Every delta row is kept at three grains (`stats_rollup.grain`): the UTC hour a run started in,
//! its day and its month. A stats query over `[start, end]` reads whole months, days and hours
//! from the rollups, coarsest first, and only the partial hours at its edges from the rows
//! themselves ([`Plan`]).

use time::OffsetDateTime;

/// A half-open time range `[from, to)`; `None` is unbounded.
pub type Span = (Option<OffsetDateTime>, Option<OffsetDateTime>);

/// The rollups' grains, coarsest first: `stats_rollup.grain` and how a time rounds to one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Grain {
    Month,
    Day,
    Hour,
}

impl Grain {
    pub const ALL: [Grain; 3] = [Grain::Month, Grain::Day, Grain::Hour];

    /// The grain as `stats_rollup.grain` has it.
    pub fn code(self) -> &'static str {
        match self {
            Grain::Month => "m",
            Grain::Day => "d",
            Grain::Hour => "h",
        }
    }

    /// The start of the grain that holds `t` (UTC).
    pub fn floor(self, t: OffsetDateTime) -> OffsetDateTime {
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
    pub fn ceil(self, t: OffsetDateTime) -> Option<OffsetDateTime> {
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
pub struct Plan {
    /// Whole grains, read from `stats_rollup`.
    pub rollups: Vec<(Grain, Span)>,
    /// The rest, read from the rows.
    pub raw: Vec<Span>,
}

/// The exclusive end of an inclusive one. Timestamps are kept to the microsecond: `<= end` is
/// `< end + 1 µs` (unbounded when `end` is the last microsecond `time` represents: nothing is
/// later).
fn after(end: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
    end.and_then(|t| t.checked_add(time::Duration::microseconds(1)))
}

/// Whether `[from, to)` holds anything.
fn nonempty((from, to): Span) -> bool {
    !matches!((from, to), (Some(f), Some(t)) if f >= t)
}

impl Plan {
    /// The plan for the runs that started from `start` to `end` (inclusive; `None` is unbounded).
    pub fn of(start: Option<OffsetDateTime>, end: Option<OffsetDateTime>) -> Plan {
        let mut plan = Plan::default();
        plan.cover((start, after(end)), &Grain::ALL);
        plan
    }

    /// Every row from `start` to `end` (inclusive) read from the rows: for what rollups do not
    /// key (a failure, session or user filter).
    pub fn rows_only(start: Option<OffsetDateTime>, end: Option<OffsetDateTime>) -> Plan {
        Plan {
            rollups: vec![],
            raw: vec![(start, after(end))],
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn plan(start: Option<OffsetDateTime>, end: Option<OffsetDateTime>) -> Plan {
        Plan::of(start, end)
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
        // Whole hours, days, a month, a day and an hour, each from where the one before ends.
        let bounds = [
            datetime!(2025-12-30 23:00 UTC),
            datetime!(2025-12-31 0:00 UTC),
            datetime!(2026-01-01 0:00 UTC),
            datetime!(2026-02-01 0:00 UTC),
            datetime!(2026-02-02 0:00 UTC),
            datetime!(2026-02-02 1:00 UTC),
        ];
        let grains = [
            Grain::Hour,
            Grain::Day,
            Grain::Month,
            Grain::Day,
            Grain::Hour,
        ];
        let whole = grains.iter().zip(bounds.windows(2));
        assert_eq!(
            plan(Some(start), Some(end)),
            Plan {
                rollups: whole.map(|(g, b)| (*g, (t(b[0]), t(b[1])))).collect(),
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
}

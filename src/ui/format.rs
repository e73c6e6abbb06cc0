//! Numbers, durations and times as the pages print them: always with their unit, times in UTC
//! on the server (the browser's script shows them in the reader's zone and keeps UTC on hover).

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A duration in milliseconds: `840 ms`, `1.25 s`, `2 min 5 s`, `3 h 12 min`; `—` for none.
pub fn duration_ms(ms: Option<f64>) -> String {
    let Some(ms) = ms.filter(|m| m.is_finite()) else {
        return "—".into();
    };
    if ms < 1000.0 {
        return format!("{} ms", ms.round() as i64);
    }
    let s = ms / 1000.0;
    if s < 60.0 {
        return format!("{s:.2} s");
    }
    let whole = s.round() as i64;
    if whole < 3600 {
        return format!("{} min {} s", whole / 60, whole % 60);
    }
    format!("{} h {} min", whole / 3600, (whole % 3600) / 60)
}

/// An integer with thousands separators: `1,234,567`.
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A percentage with one decimal: `97.3 %`.
pub fn percent(p: f64) -> String {
    format!("{p:.1} %")
}

/// RFC 3339 in UTC, for `<time datetime>` and links.
pub fn iso(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// `2026-12-02 14:03:07 UTC`.
pub fn utc(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// How long before `now` `t` was: `12 s ago`, `5 min ago`, `3 h ago`, `4 d ago`.
pub fn ago(now: OffsetDateTime, t: OffsetDateTime) -> String {
    let s = (now - t).whole_seconds();
    match s {
        s if s < 0 => "just now".into(),
        s if s < 60 => format!("{s} s ago"),
        s if s < 3600 => format!("{} min ago", s / 60),
        s if s < 86_400 => format!("{} h ago", s / 3600),
        s => format!("{} d ago", s / 86_400),
    }
}

/// A run's duration, or `running` when it has not ended.
pub fn run_duration(started_at: OffsetDateTime, ended_at: Option<OffsetDateTime>) -> String {
    match ended_at {
        Some(end) => duration_ms(Some(crate::rollup::bucket::duration_ms(started_at, end))),
        None => "—".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn durations_carry_their_unit() {
        assert_eq!(duration_ms(Some(0.4)), "0 ms");
        assert_eq!(duration_ms(Some(840.0)), "840 ms");
        assert_eq!(duration_ms(Some(1250.0)), "1.25 s");
        assert_eq!(duration_ms(Some(125_000.0)), "2 min 5 s");
        assert_eq!(duration_ms(Some(11_520_000.0)), "3 h 12 min");
        assert_eq!(duration_ms(None), "—");
        assert_eq!(duration_ms(Some(f64::NAN)), "—");
    }

    #[test]
    fn counts_are_grouped() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(-12_345), "-12,345");
    }

    #[test]
    fn times_in_utc() {
        let t = datetime!(2026-12-02 14:03:07.5 +02:00);
        assert_eq!(utc(t), "2026-12-02 12:03:07 UTC");
        assert_eq!(iso(t), "2026-12-02T12:03:07.5Z");
        let now = datetime!(2026-12-02 12:10:00 UTC);
        assert_eq!(ago(now, t), "6 min ago");
        assert_eq!(ago(now, now - time::Duration::days(3)), "3 d ago");
    }
}

/// A cost in USD for reading: `$1,234`, `$12.35`, `$0.0123`, `$0.000450` (four significant
/// digits below a cent), `$0`; `—` for none (unpriced). The exact figure is the API's.
pub fn usd(cost: Option<crate::model::cost::Usd>) -> String {
    let Some(cost) = cost else {
        return "—".into();
    };
    let usd = cost.as_f64();
    let sign = if usd < 0.0 { "-" } else { "" };
    let a = usd.abs();
    if a >= 100.0 {
        format!("{sign}${}", count(a.round() as i64))
    } else if a >= 1.0 {
        format!("{sign}${a:.2}")
    } else if a >= 0.01 {
        format!("{sign}${a:.4}")
    } else if a == 0.0 {
        "$0".into()
    } else {
        // Four significant digits.
        let places = (3 - a.log10().floor() as i32).clamp(4, 9) as usize;
        format!("{sign}${a:.places$}")
    }
}

#[cfg(test)]
mod usd_tests {
    use super::usd;
    use crate::model::cost::Usd;

    #[test]
    fn costs_read_with_their_unit_and_enough_digits() {
        let cases = [
            (None, "—"),
            (Some(0), "$0"),
            (Some(450_300), "$0.0004503"),
            (Some(12_345_678), "$0.0123"),
            (Some(12_345_678_900), "$12.35"),
            (Some(1_234_000_000_000), "$1,234"),
            (Some(1), "$0.000000001"),
        ];
        for (nanos, text) in cases {
            assert_eq!(usd(nanos.map(Usd)), text, "{nanos:?}");
        }
    }
}

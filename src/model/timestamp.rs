//! Timestamps as agents send them: RFC 3339, or ISO 8601 without an offset (Python's
//! `datetime.utcnow().isoformat()`), with `T` or a space; offset-less times are UTC.

use time::format_description::FormatItem;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

const NAIVE: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]");

/// Parses a timestamp; the result is in UTC, truncated to the microsecond PostgreSQL keeps.
pub fn parse(text: &str) -> Option<OffsetDateTime> {
    let bytes = text.as_bytes();
    let owned;
    let text = if bytes.len() > 10 && matches!(bytes[10], b' ' | b't') {
        owned = format!("{}T{}", &text[..10], &text[11..]);
        owned.as_str()
    } else {
        text
    };
    let parsed = OffsetDateTime::parse(text, &Rfc3339).ok().or_else(|| {
        PrimitiveDateTime::parse(text, NAIVE)
            .ok()
            .map(PrimitiveDateTime::assume_utc)
    })?;
    normalize(parsed)
}

/// The earliest year PostgreSQL's `timestamptz` holds whole (it starts in November 4714 BC,
/// astronomical year -4713); the latest year `time` parses, 9999, is well inside its range.
const MIN_YEAR: i32 = -4712;

/// UTC, whole microseconds, and within PostgreSQL's range for `timestamptz`.
pub fn normalize(t: OffsetDateTime) -> Option<OffsetDateTime> {
    let utc = t.checked_to_offset(UtcOffset::UTC)?;
    if utc.year() < MIN_YEAR {
        return None;
    }
    utc.replace_nanosecond(utc.nanosecond() / 1000 * 1000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn accepts_rfc3339_and_python_isoformat() {
        let want = datetime!(2024-05-01 12:30:00.123456 UTC);
        for text in [
            "2024-05-01T12:30:00.123456Z",
            "2024-05-01T12:30:00.123456+00:00",
            "2024-05-01T14:30:00.123456+02:00",
            "2024-05-01T12:30:00.123456",
            "2024-05-01 12:30:00.123456",
            "2024-05-01 12:30:00.123456Z",
            "2024-05-01T12:30:00.123456789Z",
        ] {
            assert_eq!(parse(text), Some(want), "{text}");
        }
        assert_eq!(
            parse("2024-05-01T12:30:00"),
            Some(datetime!(2024-05-01 12:30:00 UTC))
        );
    }

    #[test]
    fn answers_write_rfc3339_as_time_does_and_a_repeated_instant_alike() {
        use time::macros::offset;
        #[derive(serde::Serialize)]
        struct Ours(
            #[serde(serialize_with = "rfc3339::serialize")] OffsetDateTime,
            #[serde(serialize_with = "rfc3339::option::serialize")] Option<OffsetDateTime>,
        );
        #[derive(serde::Serialize)]
        struct Times(
            #[serde(with = "time::serde::rfc3339")] OffsetDateTime,
            #[serde(with = "time::serde::rfc3339::option")] Option<OffsetDateTime>,
        );
        let a = datetime!(2024-05-01 12:30:00.123456 UTC);
        let b = datetime!(2024-05-01 12:30:00 UTC);
        // The same instant again, at another offset (equal, written otherwise), another one.
        let times = [
            a,
            a,
            a.to_offset(offset!(+2)),
            a,
            b,
            a + time::Duration::microseconds(1),
        ];
        for (t, u) in times.iter().zip(times.iter().rev()) {
            for u in [Some(*u), None] {
                let ours = serde_json::to_string(&Ours(*t, u)).map_err(|e| e.to_string());
                let theirs = serde_json::to_string(&Times(*t, u)).map_err(|e| e.to_string());
                assert_eq!(ours, theirs);
            }
        }
        assert_eq!(
            serde_json::to_string(&Ours(a.to_offset(offset!(+2)), None)).ok(),
            Some(r#"["2024-05-01T14:30:00.123456+02:00",null]"#.to_owned())
        );
    }

    #[test]
    fn rejects_what_is_not_a_timestamp() {
        for text in [
            "",
            "yesterday",
            "2024-13-01T00:00:00Z",
            "2024-05-01",
            "12:30:00",
            "2024-05-01T12:30",
            // Found by fuzzing: in UTC this is past year 9999, and converting it panicked.
            "9999-12-31T23:59:59-23:59",
            "-9999-01-01T00:00:00+23:59",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}

/// RFC 3339 in answers, as `time::serde::rfc3339` writes it, but an instant formatted is kept
/// and written again while the next one asked on the thread is the same: a run's steps,
/// decisions and signals share their `created_at`, written dozens of times an answer (hundreds on
/// a list page), each a format into a fresh `String` before.
pub mod rfc3339 {
    use std::cell::RefCell;

    use serde::Serializer;
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    thread_local! {
        /// The instant last written, its offset, and its text.
        static LAST: RefCell<Option<(OffsetDateTime, time::UtcOffset, String)>> =
            const { RefCell::new(None) };
    }

    pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        LAST.with_borrow_mut(|last| {
            // (Equal instants at other offsets are written differently: the offset is compared too.)
            let text = match last {
                Some((at, offset, text)) if at == t && *offset == t.offset() => text,
                _ => {
                    let text = t.format(&Rfc3339).map_err(serde::ser::Error::custom)?;
                    &mut last.insert((*t, t.offset(), text)).2
                }
            };
            s.serialize_str(text)
        })
    }

    pub mod option {
        use serde::Serializer;
        use time::OffsetDateTime;

        pub fn serialize<S: Serializer>(
            t: &Option<OffsetDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => super::serialize(t, s),
                None => s.serialize_none(),
            }
        }
    }
}

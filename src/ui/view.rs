//! What several pages show alike: the time window, links that carry filters, a run as a row.

use time::{Duration, OffsetDateTime};

use super::format;
use crate::error::ApiError;
use crate::model::input::FieldError;
use crate::query::filters::RunFilter;
use crate::query::summary::RunSummary;

/// A page's time window: one of the presets, or `custom` with `from` and `to`.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// `1h`, `24h`, `7d`, `30d` or `custom`.
    pub key: String,
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
}

/// The presets, as the window picker lists them.
pub const PRESETS: [(&str, &str, i64); 4] = [
    ("1h", "1 hour", 3600),
    ("24h", "24 hours", 86_400),
    ("7d", "7 days", 7 * 86_400),
    ("30d", "30 days", 30 * 86_400),
];

fn invalid(name: &str, msg: &str) -> ApiError {
    ApiError::validation(vec![FieldError::new(
        "value_error",
        vec!["query".into(), name.into()],
        msg,
    )])
}

impl Window {
    /// The window of a query string (`window`, and `from`/`to` for `custom`); 24 hours when
    /// none is given. `to` defaults to `now`.
    pub fn parse(pairs: &[(String, String)], now: OffsetDateTime) -> Result<Window, ApiError> {
        let get = |name: &str| param(pairs, name).filter(|v| !v.is_empty());
        let key = get("window").unwrap_or("24h");
        if let Some((_, _, secs)) = PRESETS.iter().find(|(k, _, _)| *k == key) {
            return Ok(Window {
                key: key.to_owned(),
                from: now - Duration::seconds(*secs),
                to: now,
            });
        }
        if key != "custom" {
            return Err(invalid(
                "window",
                "Input should be one of '1h', '24h', '7d', '30d', 'custom'",
            ));
        }
        let time = |name: &str| match get(name) {
            None => Ok(None),
            Some(raw) => crate::model::timestamp::parse(raw)
                .map(Some)
                .ok_or_else(|| invalid(name, "Input should be a valid datetime")),
        };
        let to = time("to")?.unwrap_or(now);
        let from = time("from")?.unwrap_or(to - Duration::days(1));
        if from >= to {
            return Err(invalid("from", "from should be before to"));
        }
        Ok(Window {
            key: "custom".into(),
            from,
            to,
        })
    }

    /// The window as a page's parameters: `window`, with `from` and `to` when custom.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        let mut params = vec![("window", self.key.clone())];
        if self.key == "custom" {
            params.push(("from", format::iso(self.from)));
            params.push(("to", format::iso(self.to)));
        }
        params
    }

    /// The window as explorer filters: `start_time` and `end_time`.
    pub fn as_filter(&self) -> [(&'static str, String); 2] {
        [
            ("start_time", format::iso(self.from)),
            ("end_time", format::iso(self.to)),
        ]
    }
}

/// A page's query string as pairs, without the empty values a submitted form carries for every
/// field left blank (the API would read `status=` as an invalid status).
pub fn pairs(query: &str) -> Vec<(String, String)> {
    let mut pairs = crate::query::filters::pairs(query);
    pairs.retain(|(_, v)| !v.is_empty());
    pairs
}

/// The last value of `name` among a query string's pairs.
pub fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `path?query` from pairs; empty values are left out.
pub fn href<K: AsRef<str>, V: AsRef<str>>(path: &str, params: &[(K, V)]) -> String {
    let kept: Vec<(&str, &str)> = params
        .iter()
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    match serde_urlencoded::to_string(&kept) {
        Ok(q) if !q.is_empty() => format!("{path}?{q}"),
        _ => path.to_owned(),
    }
}

/// The agent, version and environment filters of a filter, as pairs.
pub fn agent_params(filter: &RunFilter) -> Vec<(&'static str, String)> {
    [
        ("agent_id", &filter.agent_id),
        ("agent_version", &filter.agent_version),
        ("environment", &filter.environment),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
    .collect()
}

/// A time as pages show it: UTC text (the script shows the reader's zone, UTC on hover).
pub struct When {
    pub iso: String,
    pub utc: String,
    pub ago: String,
}

impl When {
    pub fn of(t: OffsetDateTime, now: OffsetDateTime) -> When {
        When {
            iso: format::iso(t),
            utc: format::utc(t),
            ago: format::ago(now, t),
        }
    }
}

/// Which agent a run is of: its id, version and environment.
pub struct RunAgent {
    pub agent_id: String,
    pub agent_version: String,
    pub environment: String,
}

impl RunAgent {
    pub fn of(agent_id: &str, agent_version: &str, environment: &str) -> RunAgent {
        RunAgent {
            agent_id: agent_id.to_owned(),
            agent_version: agent_version.to_owned(),
            environment: environment.to_owned(),
        }
    }
}

/// A run as a table row.
pub struct RunRow {
    pub run_id: String,
    pub href: String,
    pub status: String,
    pub agent: RunAgent,
    pub started: When,
    pub duration: String,
    pub steps: String,
    pub tokens: String,
    /// Its cost, `—` when unpriced.
    pub cost: String,
    pub first_failure: Option<String>,
    /// The explorer filtered by that failure.
    pub failure_href: String,
}

impl RunRow {
    pub fn of(base: &str, s: &RunSummary, now: OffsetDateTime) -> RunRow {
        let r = &s.run;
        let failure_href = match s.first_failure.as_deref().and_then(|f| f.split_once('/')) {
            Some((t, c)) => href(
                &format!("{base}/runs"),
                &[("failure_type", t), ("failure_code", c)],
            ),
            None => String::new(),
        };
        RunRow {
            run_id: r.run_id.to_string(),
            href: format!("{base}/runs/{}", r.run_id),
            status: r.status.clone(),
            agent: RunAgent::of(&r.agent_id, &r.agent_version, &r.environment),
            started: When::of(r.started_at, now),
            duration: format::run_duration(r.started_at, r.ended_at),
            steps: format::count(s.steps),
            tokens: format::count(s.tokens),
            cost: format::usd(r.cost_nanos.map(crate::model::cost::Usd)),
            first_failure: s.first_failure.clone(),
            failure_href,
        }
    }
}

/// JSON for a `<script type="application/json">` block: `<`, `>` and `&` escaped, so no value
/// can end the block.
pub fn script_json(value: &serde_json::Value) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|_| "null".into())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn pairs(q: &str) -> Vec<(String, String)> {
        serde_urlencoded::from_str(q).unwrap()
    }

    #[test]
    fn windows_from_presets_and_custom_bounds() {
        let now = datetime!(2026-12-02 12:00 UTC);
        let w = Window::parse(&pairs(""), now).unwrap();
        assert_eq!((w.key.as_str(), w.to - w.from), ("24h", Duration::days(1)));
        let w = Window::parse(&pairs("window=7d"), now).unwrap();
        assert_eq!(w.from, now - Duration::days(7));
        let w = Window::parse(
            &pairs("window=custom&from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z"),
            now,
        )
        .unwrap();
        assert_eq!(w.from, datetime!(2026-11-01 0:00 UTC));
        assert!(Window::parse(&pairs("window=2y"), now).is_err());
        assert!(Window::parse(&pairs("window=custom&from=nope"), now).is_err());
        assert!(
            Window::parse(
                &pairs("window=custom&from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z"),
                now
            )
            .is_err()
        );
    }

    #[test]
    fn links_leave_out_empty_values_and_escape() {
        assert_eq!(href("/runs", &[("a", "x y"), ("b", "")]), "/runs?a=x+y");
        assert_eq!(href::<&str, &str>("/runs", &[]), "/runs");
    }

    #[test]
    fn script_json_cannot_close_its_block() {
        let v = serde_json::json!({"x": "</script><b>&"});
        let s = script_json(&v);
        assert!(
            !s.contains('<') && !s.contains('>') && !s.contains('&'),
            "{s}"
        );
        assert_eq!(serde_json::from_str::<serde_json::Value>(&s).unwrap(), v);
    }
}

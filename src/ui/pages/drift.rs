//! `/drift`: drift events (docs/drift.md) with the filters and paging of `GET /v1/drift` — each
//! with its severity (a symbol and a word), metric, baseline → observed value, Δ %, p-value, when
//! it was detected and last seen, and a Resolve action; `/drift/{id}`: one event whole; and
//! `/drift/timeline`: an agent's events over a window, their observed values per metric. The
//! Resolve action goes to the ingest role from the browser (docs/ui.md, Writes).

use std::collections::{BTreeMap, BTreeSet};

use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde_json::{Value, json};

use super::{AgentPicker, OffsetPager, Page, Select, WindowForm, Windowed, WriteTarget};
use crate::drift::store::{self, Drift, Filter};
use crate::error::ApiError;
use crate::extract::path_uuid;
use crate::query::drift::{List, list_filter};
use crate::query::filters::RunFilter;
use crate::query::stats;
use crate::ui::view::{RunAgent, When, Window, href};
use crate::ui::{Ctx, PageError, format, html};

/// The kinds of drift and the severities, as detection writes them.
const DRIFT_TYPES: [&str; 3] = ["decision", "signal", "latency"];
const SEVERITIES: [&str; 3] = ["high", "medium", "low"];
/// Rows of a page, unless the URL says otherwise (`limit`).
const PAGE_ROWS: &str = "50";

/// A drift event as a row (and as the detail page's figures).
pub struct DriftRow {
    pub id: String,
    pub href: String,
    pub severity: String,
    pub drift_type: String,
    pub metric: String,
    pub agent: RunAgent,
    pub baseline: String,
    pub observed: String,
    /// `+54.3 %`.
    pub delta: String,
    /// The p-value, or `—` where no test ran (latency).
    pub p: String,
    pub test_method: String,
    pub samples: String,
    pub detected: When,
    pub last: When,
    /// `open` or `resolved`.
    pub state: &'static str,
    pub resolved: Option<When>,
    pub resolve: String,
    pub window: (When, When),
    pub timeline_href: String,
    pub baselines_href: String,
    pub behaviour_href: String,
}

/// A share (decisions, signals) as a percentage, a latency as a duration.
fn value(drift_type: &str, v: f64) -> String {
    match drift_type {
        "latency" => format::duration_ms(Some(v)),
        _ => format::percent(v * 100.0),
    }
}

/// A p-value: `1.3e-4` when small, else three decimals.
fn p_value(test_method: &str, p: f64) -> String {
    match test_method {
        "percent_threshold" => "—".into(),
        _ if p < 0.001 => format!("{p:.1e}"),
        _ => format!("{p:.3}"),
    }
}

impl DriftRow {
    pub fn of(base: &str, d: Drift, now: time::OffsetDateTime) -> DriftRow {
        let agent = [
            ("agent_id", d.agent_id.clone()),
            ("agent_version", d.agent_version.clone()),
            ("environment", d.environment.clone()),
        ];
        let (from, to) = (
            d.observation_window_start.assume_utc(),
            d.observation_window_end.assume_utc(),
        );
        let mut behaviour = agent.to_vec();
        behaviour.extend([
            ("window", "custom".to_owned()),
            ("from", format::iso(from)),
            ("to", format::iso(to)),
        ]);
        let detected = d.detected_at.assume_utc();
        let id = d.drift_id;
        DriftRow {
            id: id.to_string(),
            href: format!("{base}/drift/{id}"),
            baseline: value(&d.drift_type, d.baseline_value),
            observed: value(&d.drift_type, d.observed_value),
            delta: format!("{:+.1} %", d.delta_percent),
            p: p_value(&d.test_method, d.significance),
            samples: format::count(i64::from(d.observation_sample_size)),
            detected: When::of(detected, now),
            last: When::of(d.last_detected_at.map_or(detected, |t| t.assume_utc()), now),
            state: if d.resolved_at.is_some() {
                "resolved"
            } else {
                "open"
            },
            resolved: d.resolved_at.map(|t| When::of(t.assume_utc(), now)),
            resolve: format!("/v1/drift/{id}/resolve"),
            window: (When::of(from, now), When::of(to, now)),
            timeline_href: href(&format!("{base}/drift/timeline"), &agent[..1]),
            baselines_href: href(&format!("{base}/baselines"), &agent),
            behaviour_href: href(&format!("{base}/behaviour"), &behaviour),
            agent: RunAgent::of(&d.agent_id, &d.agent_version, &d.environment),
            severity: d.severity,
            drift_type: d.drift_type,
            metric: d.metric,
            test_method: d.test_method,
        }
    }
}

#[derive(Template)]
#[template(path = "drift.html")]
pub struct DriftPage {
    pub ctx: Ctx,
    pub f: AgentPicker,
    pub drift_type: Select,
    pub severity: Select,
    pub resolved: Select,
    pub limit: i64,
    pub rows: Vec<DriftRow>,
    pub pager: OffsetPager,
    pub writes: WriteTarget,
}

/// The agent filters of a drift filter, as the pickers read them.
fn agent_filter(f: &Filter) -> RunFilter {
    RunFilter {
        agent_id: f.agent_id.clone(),
        agent_version: f.agent_version.clone(),
        environment: f.environment.clone(),
        ..RunFilter::default()
    }
}

pub async fn list(p: Page) -> Result<HttpResponse, PageError> {
    let mut pairs = vec![("limit".to_owned(), PAGE_ROWS.to_owned())];
    pairs.extend(p.pairs.iter().cloned());
    let f = list_filter(&pairs, List::Drift).map_err(|e| p.fail(e))?;
    let (mut rows, agents) = p
        .state
        .read(async |conn| {
            let one_more = Filter {
                limit: f.limit + 1,
                ..f.clone()
            };
            Ok((
                store::drifts(conn, &one_more).await?,
                stats::agents(conn).await?,
            ))
        })
        .await
        .map_err(|e| p.fail(e))?;
    let more = rows.len() as i64 > f.limit;
    rows.truncate(usize::try_from(f.limit).unwrap_or(0));
    let (b, now) = (p.base(), p.now);
    let resolved = f.resolved.map(|r| if r { "true" } else { "false" });
    html(DriftPage {
        ctx: p.ctx("drift"),
        f: AgentPicker::new(&agent_filter(&f), &agents),
        drift_type: Select::new(DRIFT_TYPES, f.drift_type.as_deref()),
        severity: Select::new(SEVERITIES, f.severity.as_deref()),
        resolved: Select::labelled(&[("false", "open"), ("true", "resolved")], resolved),
        limit: f.limit,
        rows: rows.into_iter().map(|d| DriftRow::of(b, d, now)).collect(),
        pager: OffsetPager::new(&format!("{b}/drift"), &p.pairs, (f.limit, f.offset), more),
        writes: p.writes.clone(),
    })
}

#[derive(Template)]
#[template(path = "drift_event.html")]
pub struct DriftEventPage {
    pub ctx: Ctx,
    pub d: DriftRow,
    pub writes: WriteTarget,
}

pub async fn detail(p: Page, req: HttpRequest) -> Result<HttpResponse, PageError> {
    let fail = |e| p.fail(e);
    let id = path_uuid(&req, "drift_id").map_err(fail)?;
    let found = p
        .state
        .read(async |conn| Ok(store::drift(conn, id).await?))
        .await
        .map_err(fail)?
        .ok_or_else(|| fail(ApiError::NotFound(format!("Drift {id} not found"))))?;
    html(DriftEventPage {
        ctx: p.ctx("drift"),
        d: DriftRow::of(p.base(), found, p.now),
        writes: p.writes.clone(),
    })
}

#[derive(Template)]
#[template(path = "drift_timeline.html")]
pub struct TimelinePage {
    pub ctx: Ctx,
    pub form: WindowForm,
    /// No agent chosen: the agents to choose from, as `(agent_id, link)`.
    pub choose: Vec<(String, String)>,
    pub chosen: bool,
    pub chart_json: String,
    /// Which charts have points: shares (decisions, signals) and latency.
    pub charts: (bool, bool),
    /// The events, newest first.
    pub rows: Vec<DriftRow>,
    pub writes: WriteTarget,
}

/// The events as uPlot reads them: one time axis (each distinct detection time, drawn over the
/// whole `window`) and per metric its observed values, shares (in percent) apart from latencies
/// (in ms).
fn timeline_chart(events: &[Drift], window: &Window) -> (Value, bool, bool) {
    let times: BTreeSet<i64> = events
        .iter()
        .map(|d| d.detected_at.assume_utc().unix_timestamp())
        .collect();
    let times: Vec<i64> = times.into_iter().collect();
    let mut shares: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut latency: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for d in events {
        let t = d.detected_at.assume_utc().unix_timestamp();
        let Ok(i) = times.binary_search(&t) else {
            continue;
        };
        let (series, v) = match d.drift_type.as_str() {
            "latency" => (&mut latency, d.observed_value.round()),
            _ => (&mut shares, (d.observed_value * 1000.0).round() / 10.0),
        };
        series
            .entry(d.metric.as_str())
            .or_insert_with(|| vec![Value::Null; times.len()])[i] = json!(v);
    }
    let (has_shares, has_latency) = (!shares.is_empty(), !latency.is_empty());
    let lines = json!({
        "shares": {"unit": "%", "points": true, "series": shares},
        "latency": {"unit": "ms", "points": true, "series": latency},
    });
    let x_range = [window.from.unix_timestamp(), window.to.unix_timestamp()];
    let chart = json!({"t": times, "x_range": x_range, "lines": lines});
    (chart, has_shares, has_latency)
}

pub async fn timeline(p: Page) -> Result<HttpResponse, PageError> {
    let view = Windowed::of(&p)?;
    let (window, filter) = (&view.window, &view.filter);
    let f = Filter {
        agent_id: filter.agent_id.clone(),
        agent_version: filter.agent_version.clone(),
        environment: filter.environment.clone(),
        ..Filter::default()
    };
    let bounds = (Some(window.from), Some(window.to));
    let (events, agents) = p
        .state
        .read(async |conn| {
            let events = match f.agent_id {
                Some(_) => store::timeline(conn, &f, bounds).await?,
                None => Vec::new(),
            };
            Ok((events, stats::agents(conn).await?))
        })
        .await
        .map_err(|e| p.fail(e))?;
    let (b, now) = (p.base(), p.now);
    let here = format!("{b}/drift/timeline");
    let (chart, has_shares, has_latency) = timeline_chart(&events, window);
    html(TimelinePage {
        ctx: p.ctx("drift"),
        choose: view.choose(&here, &agents),
        chosen: f.agent_id.is_some(),
        form: view.form(&here, &agents),
        chart_json: crate::ui::view::script_json(&chart),
        charts: (has_shares, has_latency),
        rows: events
            .into_iter()
            .rev()
            .map(|d| DriftRow::of(b, d, now))
            .collect(),
        writes: p.writes.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_their_unit_and_p_values_their_size() {
        assert_eq!(value("decision", 0.4567), "45.7 %");
        assert_eq!(value("latency", 1250.0), "1.25 s");
        assert_eq!(p_value("chi_square", 1.3e-4), "1.3e-4");
        assert_eq!(p_value("chi_square", 0.0321), "0.032");
        assert_eq!(p_value("percent_threshold", 1.0), "—");
    }
}

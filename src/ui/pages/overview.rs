//! `/`: the overview of a time window — runs, success rate, failed runs, percentiles, tokens by
//! model, charts over time, top failure codes, recent runs. Every figure links into the explorer
//! with its filter. Counts come from the rollups (`/v1/stats`'s own query).

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{Page, WindowForm, Windowed};
use crate::drift::store;
use crate::model::cost::Usd;
use crate::query::filters::{Paging, Position};
use crate::query::series::{Series, Source};
use crate::query::stats::{Percentiles, Stats};
use crate::query::{series, stats, summary};
use crate::rollup::Grain;
use crate::ui::view::{RunRow, Window, href};
use crate::ui::{Ctx, PageError, format, html};

/// A figure on a card, linking to the runs behind it.
pub struct Card {
    pub label: &'static str,
    pub value: String,
    pub sub: String,
    pub href: String,
}

/// A row of a breakdown with a proportional bar (0–1000 of the largest).
pub struct BarRow {
    pub label: String,
    pub href: String,
    pub count: String,
    pub width: i64,
}

pub struct ModelRow {
    pub model: String,
    pub steps: String,
    pub input: String,
    pub output: String,
    /// `—` when the model has no price.
    pub cost: String,
}

/// The unresolved drift events of the page's agent filters (whenever detected), linking to them.
pub struct OpenDrift {
    pub open: i64,
    pub text: String,
    pub href: String,
}

impl OpenDrift {
    fn of(open: &store::Open, base: &str, filter: &crate::query::filters::RunFilter) -> OpenDrift {
        let mut params = crate::ui::view::agent_params(filter);
        params.push(("resolved", "false".into()));
        let events = match open.open {
            1 => "1 unresolved drift event".to_owned(),
            n => format!("{} unresolved drift events", format::count(n)),
        };
        OpenDrift {
            open: open.open,
            text: match open.high {
                0 => events,
                high => format!("{events}, {} high", format::count(high)),
            },
            href: href(&format!("{base}/drift"), &params),
        }
    }
}

#[derive(Template)]
#[template(path = "overview.html")]
pub struct OverviewPage {
    pub ctx: Ctx,
    pub form: WindowForm,
    pub drift: OpenDrift,
    pub cards: Vec<Card>,
    pub breakdowns: Breakdowns,
    pub recent: Recent,
    pub chart_json: String,
    pub bin: String,
}

/// The window's top failure codes, its tokens and cost by model, and its cost by agent.
pub struct Breakdowns {
    pub failures: Vec<BarRow>,
    pub models: Vec<ModelRow>,
    pub agents: Vec<BarRow>,
}

impl Breakdowns {
    /// `scope` selects the explorer's runs behind each row.
    fn of(
        stats: &Stats,
        series: &Series,
        base: &str,
        scope: &[(&'static str, String)],
    ) -> Breakdowns {
        let mut models: Vec<(&String, &stats::ModelUsage)> = stats.tokens_by_model.iter().collect();
        // The costliest first, then the most used.
        let cost = |model: &str| stats.cost_by_model.get(model).copied();
        models.sort_by(|a, b| (cost(b.0), b.1.steps, a.0).cmp(&(cost(a.0), a.1.steps, b.0)));
        Breakdowns {
            failures: failure_rows(stats, base, scope),
            models: models
                .into_iter()
                .map(|(model, m)| ModelRow {
                    model: model.clone(),
                    steps: format::count(m.steps),
                    input: format::count(m.input_tokens),
                    output: format::count(m.output_tokens),
                    cost: format::usd(cost(model)),
                })
                .collect(),
            agents: agent_cost_rows(series, base, scope),
        }
    }
}

/// The latest runs of the window, which reload by themselves.
pub struct Recent {
    pub rows: Vec<RunRow>,
    /// Every run of the window, in the explorer.
    pub all_href: String,
    /// This page's own URL, which the rows reload from.
    pub reload_href: String,
}

fn pcts(p: &Percentiles) -> String {
    format!(
        "p95 {} · p99 {}",
        format::duration_ms(p.p95),
        format::duration_ms(p.p99)
    )
}

/// A chart's time axis: every bin of a window (unix seconds), empty ones too, the first at the
/// start of the bin that holds the window's start.
pub struct Axis {
    pub first: OffsetDateTime,
    pub step_s: i64,
    pub times: Vec<i64>,
}

impl Axis {
    /// The bins of `source` over `window`, at most 2,000.
    pub fn of(source: Source, window: &Window) -> Axis {
        let step_s = source.step_s();
        let first = match source {
            Source::Rows { .. } => window.from,
            Source::Rollup(grain) => grain.floor(window.from),
        };
        let mut times = Vec::new();
        let mut t = first.unix_timestamp();
        while t < window.to.unix_timestamp() && times.len() < 2000 {
            times.push(t);
            t += step_s;
        }
        Axis {
            first,
            step_s,
            times,
        }
    }

    /// The place of the bin starting at `at`, if it is one of the axis'.
    fn index(&self, at: OffsetDateTime) -> Option<usize> {
        let offset = at.unix_timestamp() - self.first.unix_timestamp();
        (offset >= 0 && offset % self.step_s == 0)
            .then(|| usize::try_from(offset / self.step_s).ok())
            .flatten()
            .filter(|&i| i < self.times.len())
    }

    /// How the bins are labelled under a chart.
    pub fn label(source: Source) -> String {
        match source {
            Source::Rows { minutes } => format!("{minutes}-minute bins"),
            Source::Rollup(Grain::Hour) => "hourly bins (UTC)".into(),
            Source::Rollup(_) => "daily bins (UTC)".into(),
        }
    }
}

/// The series as uPlot reads it: one time axis (unix seconds, every bin of the window, empty ones
/// too) and aligned value arrays.
pub fn chart_data(series: &Series, window: &Window) -> Value {
    let axis = Axis::of(series.source, window);
    let times = &axis.times;
    let index = |at: OffsetDateTime| axis.index(at);
    let mut runs: BTreeMap<&str, Vec<i64>> = ["success", "failure", "partial", "running"]
        .into_iter()
        .map(|s| (s, vec![0; times.len()]))
        .collect();
    let mut failures: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut cost: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut p95_step = vec![Value::Null; times.len()];
    let mut p95_run = vec![Value::Null; times.len()];
    for bin in &series.bins {
        let Some(i) = index(bin.start) else { continue };
        for (status, n) in &bin.runs {
            if let Some(v) = runs.get_mut(status.as_str()) {
                v[i] += n;
            }
        }
        for (t, n) in &bin.failures {
            failures
                .entry(t.clone())
                .or_insert_with(|| vec![0; times.len()])[i] += n;
        }
        for (agent, nanos) in &bin.cost {
            cost.entry(agent.clone())
                .or_insert_with(|| vec![json!(0); times.len()])[i] = json!(Usd(*nanos).as_f64());
        }
        p95_step[i] = bin
            .p95_step_latency_ms
            .map_or(Value::Null, |v| json!(v.round()));
        p95_run[i] = bin
            .p95_run_duration_ms
            .map_or(Value::Null, |v| json!(v.round()));
    }
    json!({
        "t": times,
        "runs": runs,
        "failures": failures,
        "p95_step_latency_ms": p95_step,
        "p95_run_duration_ms": p95_run,
        // The generic line chart's shape (app.js `lines`): USD per bin, by agent.
        "lines": {"cost": {"unit": "$", "points": false, "series": top_series(cost, 6)}},
    })
}

/// The `n` series with the largest sums, and the rest summed as `other`.
fn top_series(series: BTreeMap<String, Vec<Value>>, n: usize) -> BTreeMap<String, Vec<Value>> {
    let sum = |v: &[Value]| v.iter().filter_map(Value::as_f64).sum::<f64>();
    let mut all: Vec<(String, Vec<Value>)> = series.into_iter().collect();
    all.sort_by(|a, b| sum(&b.1).total_cmp(&sum(&a.1)).then(a.0.cmp(&b.0)));
    let rest = all.split_off(all.len().min(n));
    let mut top: BTreeMap<String, Vec<Value>> = all.into_iter().collect();
    if let Some(len) = rest.first().map(|r| r.1.len()) {
        let other: Vec<Value> = (0..len)
            .map(|i| json!(rest.iter().filter_map(|r| r.1[i].as_f64()).sum::<f64>()))
            .collect();
        top.insert("other agents".into(), other);
    }
    top
}

fn cards(stats: &Stats, base: &str, scope: &[(&'static str, String)]) -> Vec<Card> {
    let runs = |extra: &[(&'static str, String)]| {
        let mut params = scope.to_vec();
        params.extend_from_slice(extra);
        href(&format!("{base}/runs"), &params)
    };
    let tokens: i64 = stats
        .tokens_by_model
        .values()
        .map(|m| m.input_tokens + m.output_tokens)
        .sum();
    let finals: i64 = ["success", "failure", "partial"]
        .iter()
        .filter_map(|s| stats.status_breakdown.get(*s))
        .sum();
    let running = stats.status_breakdown.get("running").copied().unwrap_or(0);
    vec![
        Card {
            label: "Runs",
            value: format::count(stats.total_runs),
            sub: format!("{} running", format::count(running)),
            href: runs(&[]),
        },
        Card {
            label: "Success rate",
            value: format::percent(stats.success_rate),
            sub: format!("of {} finished runs", format::count(finals)),
            href: runs(&[("status", "success".into())]),
        },
        Card {
            label: "Failed runs",
            value: format::count(stats.total_failures),
            sub: format!("{} failure records", format::count(stats.failure_count)),
            href: runs(&[("status", "failure".into())]),
        },
        Card {
            label: "Run duration p50",
            value: format::duration_ms(stats.run_duration_ms.p50),
            sub: pcts(&stats.run_duration_ms),
            href: runs(&[]),
        },
        Card {
            label: "Step latency p50",
            value: format::duration_ms(stats.step_latency_ms.p50),
            sub: pcts(&stats.step_latency_ms),
            href: runs(&[]),
        },
        Card {
            label: "Tokens",
            value: format::count(tokens),
            sub: format!("{} models", stats.tokens_by_model.len()),
            href: runs(&[]),
        },
        Card {
            label: "Cost",
            value: format::usd(stats.total_cost_usd),
            sub: match stats.cost_by_model.len() {
                0 => "no priced model calls".into(),
                1 => "1 priced model".into(),
                n => format!("{n} priced models"),
            },
            href: runs(&[]),
        },
    ]
}

/// The window's cost by agent (from the chart's bins), the costliest first, each linking to the
/// agent's runs.
fn agent_cost_rows(series: &Series, base: &str, scope: &[(&'static str, String)]) -> Vec<BarRow> {
    let mut sums: BTreeMap<&str, i64> = BTreeMap::new();
    for bin in &series.bins {
        for (agent, nanos) in &bin.cost {
            *sums.entry(agent).or_default() += nanos;
        }
    }
    let mut top: Vec<(&str, i64)> = sums.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    top.truncate(8);
    let max = top.first().map_or(1, |(_, n)| (*n).max(1));
    top.into_iter()
        .map(|(agent, nanos)| {
            let mut params: Vec<(&'static str, String)> = scope
                .iter()
                .filter(|(k, _)| *k != "agent_id")
                .cloned()
                .collect();
            params.push(("agent_id", agent.to_owned()));
            BarRow {
                label: agent.to_owned(),
                href: href(&format!("{base}/runs"), &params),
                count: format::usd(Some(Usd(nanos))),
                width: (i128::from(nanos.max(0)) * 1000 / i128::from(max)) as i64,
            }
        })
        .collect()
}

fn failure_rows(stats: &Stats, base: &str, scope: &[(&'static str, String)]) -> Vec<BarRow> {
    let mut top: Vec<(&String, &i64)> = stats.failure_breakdown.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    top.truncate(8);
    let max = top.first().map_or(1, |(_, n)| (**n).max(1));
    top.into_iter()
        .map(|(key, n)| {
            let (t, c) = key.split_once('/').unwrap_or((key, ""));
            let mut params = scope.to_vec();
            params.push(("failure_type", t.to_owned()));
            params.push(("failure_code", c.to_owned()));
            BarRow {
                label: key.clone(),
                href: href(&format!("{base}/runs"), &params),
                count: format::count(*n),
                width: n * 1000 / max,
            }
        })
        .collect()
}

pub async fn page(req: HttpRequest, p: Page) -> Result<HttpResponse, PageError> {
    let now = p.now;
    let view = Windowed::of(&p)?;
    let (window, filter) = (&view.window, &view.filter);
    let recent_paging = Paging {
        page_size: 10,
        position: Position::Page(1),
    };
    let drift_filter = store::Filter {
        agent_id: filter.agent_id.clone(),
        agent_version: filter.agent_version.clone(),
        environment: filter.environment.clone(),
        ..store::Filter::default()
    };
    let (stats, series, recent, (agents, open)) = p
        .state
        .read(async |conn| {
            let stats = stats::stats(conn, filter).await?;
            let series = series::series(conn, filter, window.from, window.to).await?;
            let recent = summary::page(conn, filter, &recent_paging).await?;
            let agents = stats::agents(conn).await?;
            let open = store::open(conn, &drift_filter).await?;
            Ok((stats, series, recent, (agents, open)))
        })
        .await
        .map_err(|e| p.fail(e))?;
    let b = p.base();
    let scope = view.scope();
    let bin = Axis::label(series.source);
    html(OverviewPage {
        ctx: p.ctx("overview"),
        form: view.form(&format!("{b}/"), &agents),
        drift: OpenDrift::of(&open, b, filter),
        cards: cards(&stats, b, &scope),
        breakdowns: Breakdowns::of(&stats, &series, b, &scope),
        recent: Recent {
            rows: recent.runs.iter().map(|r| RunRow::of(b, r, now)).collect(),
            all_href: href(&format!("{b}/runs"), &scope),
            reload_href: req.uri().to_string(),
        },
        chart_json: crate::ui::view::script_json(&chart_data(&series, window)),
        bin,
    })
}

//! `/behaviour`: an agent's behaviour over a window (docs/behaviour.md) — for each decision type
//! the share and count of each option it chose, for each signal type those of each code, and the
//! same shares over time. The agent, version and environment come from the URL; without an agent
//! the page lists the agents to choose from. One aggregate statement ([`crate::drift::mix`]), over
//! the window's latest runs (at most [`mix::MAX_RUNS`], which the page says when it applies).
//! The shares over time are drawn in bins wide enough to hold [`mix::MEAN_RUNS`] runs on average
//! ([`mix::Mix::chart_bins`]), and a bin with fewer than [`mix::MIN_COUNT`] of a type's decisions
//! (or signals) draws no share: a share of a run or two swings between 0 % and 100 %.

use std::collections::BTreeMap;

use actix_web::HttpResponse;
use askama::Template;
use serde_json::{Value, json};

use super::overview::Axis;
use super::{Page, WindowForm, Windowed};
use crate::drift::mix::{self, Binned, Bins, MixKey};
use crate::query::series::Source;
use crate::query::stats;
use crate::ui::view::{When, agent_params, href};
use crate::ui::{Ctx, PageError, format, html};

/// One option of a type: its share of the type's decisions (or signals) and their count.
pub struct OptionRow {
    pub option: String,
    pub share: String,
    pub count: String,
    /// 0–1000 of the whole.
    pub width: i64,
}

/// A decision type (or signal type) with its options, most chosen first; `key` names its chart.
pub struct TypeMix {
    pub name: String,
    pub total: String,
    pub key: String,
    pub rows: Vec<OptionRow>,
}

/// Where the page leads: the same runs in the explorer, the agent's baselines and drift, and a
/// baseline made of this window.
pub struct Links {
    pub runs: String,
    pub agent: String,
    pub baselines: String,
    pub drift: String,
    pub new_baseline: String,
}

#[derive(Template)]
#[template(path = "behaviour.html")]
pub struct BehaviourPage {
    pub ctx: Ctx,
    pub form: WindowForm,
    /// Whether an agent is chosen (else the page asks for one).
    pub chosen: bool,
    /// No agent chosen: the agents to choose from, as `(agent_id, link)`.
    pub choose: Vec<(String, String)>,
    pub runs: String,
    /// When the window held more runs than are read: the start of the earliest one read.
    pub since: Option<When>,
    pub max_runs: String,
    pub decisions: Vec<TypeMix>,
    pub signals: Vec<TypeMix>,
    pub chart_json: String,
    pub bin: String,
    pub mean_runs: i64,
    pub min_count: i64,
    pub links: Links,
}

/// The types of `binned` as rows, and their shares over time into `lines` (`{prefix}:{type}` →
/// the chart's series: per option, its share in percent per bin, null where the type had fewer
/// than [`mix::MIN_COUNT`]; and `n`, per bin, the type's count).
fn types(
    binned: &Binned,
    prefix: &str,
    bins: usize,
    lines: &mut BTreeMap<String, Value>,
) -> Vec<TypeMix> {
    let totals = mix::totals(binned);
    totals
        .iter()
        .map(|(name, options)| {
            let total: i64 = options.values().sum();
            let mut sorted: Vec<(&String, &i64)> = options.iter().collect();
            sorted.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            let key = format!("{prefix}:{name}");
            let per_bin = &binned[name];
            let counts: Vec<i64> = (0..bins)
                .map(|i| per_bin.get(&(i as i64)).map_or(0, |b| b.values().sum()))
                .collect();
            let series: BTreeMap<&str, Vec<Value>> = sorted
                .iter()
                .map(|(option, _)| {
                    let values = counts
                        .iter()
                        .enumerate()
                        .map(|(i, &all)| match per_bin.get(&(i as i64)) {
                            Some(b) if all >= mix::MIN_COUNT => {
                                let n = b.get(*option).copied().unwrap_or(0);
                                json!((n as f64 * 1000.0 / all as f64).round() / 10.0)
                            }
                            _ => Value::Null,
                        })
                        .collect();
                    (option.as_str(), values)
                })
                .collect();
            lines.insert(
                key.clone(),
                json!({"unit": "%", "points": false, "series": series, "n": counts}),
            );
            TypeMix {
                name: name.clone(),
                total: format::count(total),
                rows: sorted
                    .into_iter()
                    .map(|(option, n)| OptionRow {
                        option: option.clone(),
                        share: format::percent(*n as f64 * 100.0 / total.max(1) as f64),
                        count: format::count(*n),
                        width: n * 1000 / total.max(1),
                    })
                    .collect(),
                key,
            }
        })
        .collect()
}

/// How the bins are named under the charts: their width, and "(UTC)" when they start at whole
/// UTC multiples of it.
fn label(bins: &Bins) -> String {
    let width = match bins.step_s {
        3600 => "hourly".to_owned(),
        86_400 => "daily".to_owned(),
        s if s % 86_400 == 0 => format!("{}-day", s / 86_400),
        s if s % 3600 == 0 => format!("{}-hour", s / 3600),
        s => format!("{}-minute", s / 60),
    };
    match bins.origin.unix_timestamp() % bins.step_s.max(1) {
        0 => format!("{width} bins (UTC)"),
        _ => format!("{width} bins"),
    }
}

pub async fn page(p: Page) -> Result<HttpResponse, PageError> {
    let view = Windowed::of(&p)?;
    let (window, filter) = (&view.window, &view.filter);
    let source = Source::of(window.from, window.to);
    let axis = Axis::of(source, window);
    let key = filter.agent_id.clone().map(|agent_id| MixKey {
        agent_id,
        agent_version: filter.agent_version.clone(),
        environment: filter.environment.clone(),
    });
    let bins = Bins {
        from: window.from,
        to: window.to,
        origin: axis.first,
        step_s: axis.step_s,
    };
    let (found, agents) = p
        .state
        .read(async |conn| {
            let found = match &key {
                Some(key) => Some(mix::mix(conn, key, bins).await?),
                None => None,
            };
            Ok((found, stats::agents(conn).await?))
        })
        .await
        .map_err(|e| p.fail(e))?;
    let b = p.base();
    let here = format!("{b}/behaviour");
    let found = found.unwrap_or_default();
    // Bins as wide as the window's runs need; the axis has every one of them, empty ones too.
    let drawn = found.chart_bins(bins);
    let found = found.rebinned(&bins, &drawn);
    let times: Vec<i64> = (0..drawn.count().min(2000))
        .map(|i| drawn.start(i).unix_timestamp())
        .collect();
    let mut lines = BTreeMap::new();
    let decisions = types(&found.decisions, "d", times.len(), &mut lines);
    let signals = types(&found.signals, "s", times.len(), &mut lines);
    let agent = agent_params(filter);
    let with_agent = |path: &str, extra: &[(&'static str, String)]| {
        let mut params = agent.clone();
        params.extend_from_slice(extra);
        href(&format!("{b}{path}"), &params)
    };
    let window_bounds = [
        ("window_start", format::iso(window.from)),
        ("window_end", format::iso(window.to)),
    ];
    html(BehaviourPage {
        ctx: p.ctx("behaviour"),
        chosen: key.is_some(),
        choose: view.choose(&here, &agents),
        form: view.form(&here, &agents),
        runs: format::count(found.runs),
        since: found.since.map(|t| When::of(t, p.now)),
        max_runs: format::count(mix::MAX_RUNS),
        decisions,
        signals,
        chart_json: crate::ui::view::script_json(&json!({"t": times, "lines": lines})),
        bin: label(&drawn),
        mean_runs: mix::MEAN_RUNS,
        min_count: mix::MIN_COUNT,
        links: Links {
            runs: href(&format!("{b}/runs"), &view.scope()),
            agent: filter
                .agent_id
                .as_deref()
                .map(|id| format!("{b}/agents/{}", super::agents::percent_path(id)))
                .unwrap_or_default(),
            baselines: with_agent("/baselines", &[]),
            drift: with_agent("/drift", &[]),
            new_baseline: format!("{}#new", with_agent("/baselines", &window_bounds)),
        },
    })
}

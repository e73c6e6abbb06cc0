//! `/behaviour`: an agent's behaviour over a window (docs/behaviour.md) — for each decision type
//! the share and count of each option it chose, for each signal type those of each code, and the
//! same shares over time. The agent, version and environment come from the URL; without an agent
//! the page lists the agents to choose from. One aggregate statement ([`crate::drift::mix`]), over
//! the window's latest runs (at most [`mix::MAX_RUNS`], which the page says when it applies).

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
    pub links: Links,
}

/// The types of `binned` as rows, and their shares over time into `lines` (`{prefix}:{type}` →
/// the chart's series: per option, its share in percent per bin, null where the type had none).
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
            let series: BTreeMap<&str, Vec<Value>> = sorted
                .iter()
                .map(|(option, _)| {
                    let values = (0..bins)
                        .map(|i| {
                            let bin = per_bin.get(&(i as i64));
                            let all: i64 = bin.map_or(0, |b| b.values().sum());
                            match (bin, all) {
                                (Some(b), all) if all > 0 => {
                                    let n = b.get(*option).copied().unwrap_or(0);
                                    json!((n as f64 * 1000.0 / all as f64).round() / 10.0)
                                }
                                _ => Value::Null,
                            }
                        })
                        .collect();
                    (option.as_str(), values)
                })
                .collect();
            lines.insert(
                key.clone(),
                json!({"unit": "%", "points": false, "series": series}),
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
    let mut lines = BTreeMap::new();
    let decisions = types(&found.decisions, "d", axis.times.len(), &mut lines);
    let signals = types(&found.signals, "s", axis.times.len(), &mut lines);
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
        chart_json: crate::ui::view::script_json(&json!({"t": axis.times, "lines": lines})),
        bin: Axis::label(source),
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

//! `/failures`: what fails in a window — failure records by type and code, their trend, which
//! agents and versions and which steps fail most, and the latest failures with their runs.

use std::collections::BTreeMap;

use actix_web::HttpResponse;
use askama::Template;

use super::overview::{BarRow, chart_data};
use super::{Page, WindowForm, Windowed};
use crate::query::{failures, series, stats};
use crate::ui::view::{When, href};
use crate::ui::{Ctx, PageError, format, html};

/// One failure type with its codes.
pub struct TypeGroup {
    pub failure_type: String,
    pub total: String,
    pub href: String,
    pub codes: Vec<BarRow>,
}

pub struct AgentRow {
    pub agent: String,
    pub href: String,
    pub failures: String,
    pub runs: String,
}

pub struct StepRow {
    pub step_type: String,
    pub name: String,
    pub failures: String,
}

pub struct Latest {
    pub run_href: String,
    pub agent: String,
    pub code: String,
    pub code_href: String,
    pub message: String,
    pub step: String,
    pub step_href: String,
    pub when: When,
}

#[derive(Template)]
#[template(path = "failures.html")]
pub struct FailuresPage {
    pub ctx: Ctx,
    pub form: WindowForm,
    pub total: String,
    pub by_type: ByType,
    pub most: MostFailing,
    pub latest: Vec<Latest>,
}

/// The failures by type: over time (the chart's data) and by code.
pub struct ByType {
    pub chart_json: String,
    pub groups: Vec<TypeGroup>,
}

/// The agents (at a version) and the steps that fail most.
pub struct MostFailing {
    pub agents: Vec<AgentRow>,
    pub steps: Vec<StepRow>,
}

fn groups(stats: &stats::Stats, runs: &str, scope: &[(&'static str, String)]) -> Vec<TypeGroup> {
    let mut by_type: BTreeMap<&str, Vec<(&str, i64)>> = BTreeMap::new();
    for (key, n) in &stats.failure_breakdown {
        let (t, c) = key.split_once('/').unwrap_or((key, ""));
        by_type.entry(t).or_default().push((c, *n));
    }
    let mut out: Vec<TypeGroup> = by_type
        .into_iter()
        .map(|(t, mut codes)| {
            codes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let total: i64 = codes.iter().map(|(_, n)| n).sum();
            let max = codes.first().map_or(1, |(_, n)| (*n).max(1));
            let mut params = scope.to_vec();
            params.push(("failure_type", t.to_owned()));
            TypeGroup {
                failure_type: t.to_owned(),
                total: format::count(total),
                href: href(runs, &params),
                codes: codes
                    .into_iter()
                    .map(|(c, n)| {
                        let mut params = params.clone();
                        params.push(("failure_code", c.to_owned()));
                        BarRow {
                            label: c.to_owned(),
                            href: href(runs, &params),
                            count: format::count(n),
                            width: n * 1000 / max,
                        }
                    })
                    .collect(),
            }
        })
        .collect();
    out.sort_by_key(|g| std::cmp::Reverse(g.codes.len()));
    out
}

pub async fn page(p: Page) -> Result<HttpResponse, PageError> {
    let now = p.now;
    let view = Windowed::of(&p)?;
    let (window, filter) = (&view.window, &view.filter);
    let (stats, series, by_agent, by_step, latest, agents) = p
        .state
        .read(async |conn| {
            let stats = stats::stats(conn, filter).await?;
            let series = series::series(conn, filter, window.from, window.to).await?;
            let by_agent = failures::by_agent(conn, filter).await?;
            let by_step = failures::by_step(conn, filter).await?;
            let latest = failures::latest(conn, filter, 20).await?;
            let agents = stats::agents(conn).await?;
            Ok((stats, series, by_agent, by_step, latest, agents))
        })
        .await
        .map_err(|e| p.fail(e))?;
    let b = p.base();
    let runs = format!("{b}/runs");
    let scope = view.scope();
    html(FailuresPage {
        ctx: p.ctx("failures"),
        form: view.form(&format!("{b}/failures"), &agents),
        total: format::count(stats.failure_count),
        by_type: ByType {
            chart_json: crate::ui::view::script_json(&chart_data(&series, window)),
            groups: groups(&stats, &runs, &scope),
        },
        most: MostFailing {
            agents: by_agent
                .into_iter()
                .map(|a| {
                    let mut params = window.as_filter().to_vec();
                    params.push(("agent_id", a.agent_id.clone()));
                    params.push(("agent_version", a.agent_version.clone()));
                    params.push(("status", "failure".into()));
                    AgentRow {
                        agent: format!("{}@{}", a.agent_id, a.agent_version),
                        href: href(&runs, &params),
                        failures: format::count(a.failures),
                        runs: format::count(a.runs),
                    }
                })
                .collect(),
            steps: by_step
                .into_iter()
                .map(|s| StepRow {
                    step_type: s.step_type,
                    name: s.name,
                    failures: format::count(s.failures),
                })
                .collect(),
        },
        latest: latest
            .into_iter()
            .map(|l| {
                let run_href = format!("{b}/runs/{}", l.run_id);
                Latest {
                    step_href: l
                        .step_seq
                        .map(|seq| format!("{run_href}?step={seq}#detail"))
                        .unwrap_or_default(),
                    step: match (l.step_seq, l.step_name) {
                        (Some(seq), Some(name)) => format!("#{seq} {name}"),
                        _ => String::new(),
                    },
                    agent: format!("{}@{}", l.agent_id, l.agent_version),
                    code: format!("{}/{}", l.failure_type, l.failure_code),
                    code_href: href(
                        &runs,
                        &[
                            ("failure_type", l.failure_type.as_str()),
                            ("failure_code", l.failure_code.as_str()),
                        ],
                    ),
                    message: l.message,
                    when: When::of(l.started_at, now),
                    run_href,
                }
            })
            .collect(),
    })
}

//! `/agents`: every agent (versions, environments, runs, failures, last run), and
//! `/agents/{agent_id}`: its versions side by side over a window — success rate, run duration,
//! step latency, failure codes, tokens per run, each against the version before it: did the new
//! release regress?

use std::cmp::Ordering;

use actix_web::{HttpResponse, web};
use askama::Template;

use super::{Page, WindowLink};
use crate::error::ApiError;
use crate::query::filters::RunFilter;
use crate::query::stats::{self, Stats};
use crate::ui::view::{PRESETS, When, Window, href};
use crate::ui::{Ctx, PageError, format, html};

/// Versions compared side by side at most (the newest).
const MAX_VERSIONS: usize = 6;

pub struct AgentRow {
    pub agent_id: String,
    pub href: String,
    pub versions: String,
    pub environments: String,
    pub runs: String,
    pub failed: String,
    pub failures: String,
    pub last: When,
}

#[derive(Template)]
#[template(path = "agents.html")]
pub struct AgentsPage {
    pub ctx: Ctx,
    pub agents: Vec<AgentRow>,
}

pub async fn list(p: Page) -> Result<HttpResponse, PageError> {
    let agents = p
        .state
        .read(async |conn| Ok(stats::agents(conn).await?))
        .await
        .map_err(|e| p.fail(e))?;
    let (now, b) = (p.now, p.base());
    html(AgentsPage {
        ctx: p.ctx("agents"),
        agents: agents
            .into_iter()
            .map(|a| AgentRow {
                href: format!("{b}/agents/{}", percent_path(&a.agent_id)),
                versions: a.versions.join(", "),
                environments: a.environments.join(", "),
                runs: format::count(a.run_count),
                failed: format::count(a.failed_run_count),
                failures: format::count(a.failure_count),
                last: When::of(a.last_run_at, now),
                agent_id: a.agent_id,
            })
            .collect(),
    })
}

/// A path segment, percent-encoded.
pub(super) fn percent_path(segment: &str) -> String {
    serde_urlencoded::to_string([("", segment)])
        .map(|s| s.trim_start_matches('=').replace('+', "%20"))
        .unwrap_or_default()
}

/// Version strings in release order: numeric parts compared as numbers.
pub fn version_order(a: &str, b: &str) -> Ordering {
    let parts = |v: &str| -> Vec<Result<u64, String>> {
        v.split(['.', '-', '+'])
            .map(|p| p.parse::<u64>().map_err(|_| p.to_owned()))
            .collect()
    };
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(pb.iter()) {
        let o = match (x, y) {
            (Ok(x), Ok(y)) => x.cmp(y),
            (Ok(_), Err(_)) => Ordering::Greater,
            (Err(_), Ok(_)) => Ordering::Less,
            (Err(x), Err(y)) => x.cmp(y),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    pa.len().cmp(&pb.len())
}

/// One figure of one version, with how it moved from the version before.
pub struct Cell {
    pub value: String,
    /// `better`, `worse` or empty.
    pub trend: &'static str,
    pub change: String,
}

pub struct MetricRow {
    pub label: &'static str,
    pub cells: Vec<Cell>,
}

pub struct VersionHead {
    pub version: String,
    pub href: String,
    pub runs: String,
    /// Its decisions and signals over the same window.
    pub behaviour: String,
}

#[derive(Template)]
#[template(path = "agent.html")]
pub struct AgentPage {
    pub ctx: Ctx,
    pub agent_id: String,
    pub windows: Vec<WindowLink>,
    pub versions: Vec<VersionHead>,
    pub rows: Vec<MetricRow>,
    pub codes: Vec<Vec<(String, String, String)>>,
    pub runs_href: String,
    pub behaviour_href: String,
    pub drift_href: String,
}

/// A metric of a version's stats; `higher_is_better` says which way is good.
struct Metric {
    label: &'static str,
    value: fn(&Stats) -> Option<f64>,
    show: fn(Option<f64>) -> String,
    higher_is_better: bool,
    /// Changes are shown in points (percentages) rather than relative percent.
    points: bool,
}

fn tokens_per_run(s: &Stats) -> Option<f64> {
    let tokens: i64 = s
        .tokens_by_model
        .values()
        .map(|m| m.input_tokens + m.output_tokens)
        .sum();
    (s.total_runs > 0).then(|| tokens as f64 / s.total_runs as f64)
}

const METRICS: [Metric; 6] = [
    Metric {
        label: "Success rate",
        value: |s| (s.total_runs > 0).then_some(s.success_rate),
        show: |v| v.map_or("—".into(), format::percent),
        higher_is_better: true,
        points: true,
    },
    Metric {
        label: "Failed runs",
        value: |s| {
            (s.total_runs > 0).then(|| s.total_failures as f64 * 100.0 / s.total_runs as f64)
        },
        show: |v| v.map_or("—".into(), format::percent),
        higher_is_better: false,
        points: true,
    },
    Metric {
        label: "Run duration p50",
        value: |s| s.run_duration_ms.p50,
        show: format::duration_ms,
        higher_is_better: false,
        points: false,
    },
    Metric {
        label: "Run duration p95",
        value: |s| s.run_duration_ms.p95,
        show: format::duration_ms,
        higher_is_better: false,
        points: false,
    },
    Metric {
        label: "Step latency p95",
        value: |s| s.step_latency_ms.p95,
        show: format::duration_ms,
        higher_is_better: false,
        points: false,
    },
    Metric {
        label: "Tokens per run",
        value: tokens_per_run,
        show: |v| v.map_or("—".into(), |v| format::count(v.round() as i64)),
        higher_is_better: false,
        points: false,
    },
];

fn cell(m: &Metric, now: Option<f64>, before: Option<f64>) -> Cell {
    let value = (m.show)(now);
    let (Some(now), Some(before)) = (now, before) else {
        return Cell {
            value,
            trend: "",
            change: String::new(),
        };
    };
    let delta = now - before;
    let (change, moved) = if m.points {
        (format!("{delta:+.1} pp"), delta.abs() >= 0.5)
    } else if before.abs() > f64::EPSILON {
        let pct = delta * 100.0 / before;
        (format!("{pct:+.0} %"), pct.abs() >= 5.0)
    } else {
        (String::new(), false)
    };
    let trend = match (moved, (delta > 0.0) == m.higher_is_better) {
        (false, _) => "",
        (true, true) => "better",
        (true, false) => "worse",
    };
    Cell {
        value,
        trend,
        change,
    }
}

pub async fn detail(p: Page, path: web::Path<String>) -> Result<HttpResponse, PageError> {
    let fail = |e| p.fail(e);
    let agent_id = path.into_inner();
    let mut pairs_with_default = vec![("window".to_owned(), "7d".to_owned())];
    pairs_with_default.extend(p.pairs.iter().cloned());
    let window = Window::parse(&pairs_with_default, p.now).map_err(fail)?;
    let id = agent_id.clone();
    let per_version = p
        .state
        .read(async |conn| {
            let agents = stats::agents(conn).await?;
            let Some(agent) = agents.into_iter().find(|a| a.agent_id == id) else {
                return Ok(None);
            };
            let mut versions = agent.versions;
            versions.sort_by(|a, b| version_order(b, a));
            let mut out = Vec::new();
            for version in versions {
                let filter = RunFilter {
                    agent_id: Some(id.clone()),
                    agent_version: Some(version.clone()),
                    start_time: Some(window.from),
                    end_time: Some(window.to),
                    ..RunFilter::default()
                };
                let s = stats::stats(conn, &filter).await?;
                if s.total_runs > 0 {
                    out.push((version, s));
                }
                if out.len() == MAX_VERSIONS {
                    break;
                }
            }
            Ok(Some(out))
        })
        .await
        .map_err(fail)?
        .ok_or_else(|| fail(ApiError::NotFound(format!("Agent {agent_id} not found"))))?;
    let b = p.base();
    let runs = format!("{b}/runs");
    let scope = |version: &str| {
        let mut p = window.as_filter().to_vec();
        p.push(("agent_id", agent_id.clone()));
        p.push(("agent_version", version.to_owned()));
        p
    };
    let rows = METRICS
        .iter()
        .map(|m| MetricRow {
            label: m.label,
            cells: per_version
                .iter()
                .enumerate()
                .map(|(i, (_, s))| {
                    let before = per_version.get(i + 1).and_then(|(_, p)| (m.value)(p));
                    cell(m, (m.value)(s), before)
                })
                .collect(),
        })
        .collect();
    let codes = per_version
        .iter()
        .map(|(v, s)| {
            let mut top: Vec<(&String, &i64)> = s.failure_breakdown.iter().collect();
            top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            top.into_iter()
                .take(3)
                .map(|(k, n)| {
                    let (t, c) = k.split_once('/').unwrap_or((k, ""));
                    let mut p = scope(v);
                    p.push(("failure_type", t.to_owned()));
                    p.push(("failure_code", c.to_owned()));
                    (k.clone(), format::count(*n), href(&runs, &p))
                })
                .collect()
        })
        .collect();
    let here = format!("{b}/agents/{}", percent_path(&agent_id));
    html(AgentPage {
        ctx: p.ctx("agents"),
        windows: PRESETS
            .iter()
            .map(|(key, label, _)| WindowLink {
                label,
                href: href(&here, &[("window", *key)]),
                current: window.key == *key,
            })
            .collect(),
        versions: per_version
            .iter()
            .map(|(v, s)| VersionHead {
                version: v.clone(),
                href: href(&runs, &scope(v)),
                runs: format::count(s.total_runs),
                behaviour: {
                    let mut params =
                        vec![("agent_id", agent_id.clone()), ("agent_version", v.clone())];
                    params.extend(window.params());
                    href(&format!("{b}/behaviour"), &params)
                },
            })
            .collect(),
        rows,
        codes,
        runs_href: href(&runs, &[("agent_id", agent_id.as_str())]),
        behaviour_href: {
            let mut params = vec![("agent_id", agent_id.clone())];
            params.extend(window.params());
            href(&format!("{b}/behaviour"), &params)
        },
        drift_href: href(&format!("{b}/drift"), &[("agent_id", agent_id.as_str())]),
        agent_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_as_releases() {
        let mut v = vec!["1.10.0", "1.9.2", "1.9.10", "2.0.0-rc1", "2.0.0", "0.1"];
        v.sort_by(|a, b| version_order(a, b));
        assert_eq!(
            v,
            vec!["0.1", "1.9.2", "1.9.10", "1.10.0", "2.0.0", "2.0.0-rc1"]
        );
    }

    #[test]
    fn changes_say_which_way_is_better() {
        let rate = &METRICS[0];
        assert_eq!(cell(rate, Some(90.0), Some(95.0)).trend, "worse");
        assert_eq!(cell(rate, Some(95.2), Some(95.0)).trend, "");
        let p95 = &METRICS[3];
        let c = cell(p95, Some(1200.0), Some(1000.0));
        assert_eq!((c.trend, c.change.as_str()), ("worse", "+20 %"));
        assert_eq!(cell(p95, Some(800.0), Some(1000.0)).trend, "better");
        assert_eq!(cell(p95, Some(800.0), None).trend, "");
    }
}

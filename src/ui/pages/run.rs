//! `/runs/{run_id}`: one run — its header, failure analysis (type, code, message, the failed
//! step, a short recommendation), step breakdown by type, and a waterfall of its steps placed by
//! their times and coloured by type: OTLP spans nested under their parents, failed steps marked.
//! Selecting a step (`?step=<seq>`, in the URL) shows its model, tokens, times and metadata.

use std::collections::{BTreeMap, HashMap, HashSet};

use actix_web::HttpResponse;
use askama::Template;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Page;
use crate::db::read;
use crate::error::ApiError;
use crate::extract::RunId;
use crate::model::output::{FailureOut, RunOut, StepOut};
use crate::ui::view::{RunAgent, When, href, param};
use crate::ui::{Ctx, PageError, format, html};

/// Depth past which nesting is no longer indented further.
const MAX_INDENT: usize = 8;

/// One bar of the waterfall.
pub struct Bar {
    pub seq: i32,
    pub name: String,
    pub step_type: String,
    pub depth: usize,
    /// Position and width on a 0–1000 axis.
    pub x: i64,
    pub w: i64,
    pub duration: String,
    pub failed: bool,
    pub selected: bool,
    pub href: String,
}

/// The selected step.
pub struct Detail {
    pub seq: i32,
    pub name: String,
    pub step_type: String,
    pub model: String,
    pub tokens: String,
    /// Empty when the step names no model; `—` when its model has no price.
    pub cost: String,
    pub latency: String,
    pub started: When,
    pub ended: When,
    pub offset: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub step_id: String,
    pub metadata: String,
    pub failures: Vec<FailureView>,
}

pub struct FailureView {
    pub failure_type: String,
    pub failure_code: String,
    pub message: String,
    /// The failed step, when the failure names one.
    pub step: Option<(String, String)>,
    pub advice: &'static str,
    pub code_href: String,
    /// What the client sent beside the code (the failure's metadata), as `key: value` lines.
    pub sent: Vec<(String, String)>,
}

pub struct TypeRow {
    pub step_type: String,
    pub steps: String,
    pub latency: String,
    pub plural: bool,
}

#[derive(Template)]
#[template(path = "run.html")]
pub struct RunPage {
    pub ctx: Ctx,
    pub run_id: String,
    pub status: String,
    pub agent: RunAgent,
    pub agent_href: String,
    pub source: String,
    pub started: When,
    pub ended: Option<When>,
    pub duration: String,
    pub steps: String,
    pub tokens: String,
    /// The sum of its priced steps; `—` when none is priced.
    pub cost: String,
    pub failures: Vec<FailureView>,
    pub waterfall: Waterfall,
    pub behaviour: super::decisions::RunBehaviour,
    pub json_href: String,
}

/// The run's steps on its time axis: a legend of their types, a bar a step, and the selected step.
pub struct Waterfall {
    pub types: Vec<TypeRow>,
    pub bars: Vec<Bar>,
    /// Axis labels at 0, 25, 50, 75 and 100 % of the run's span.
    pub ticks: Vec<String>,
    pub detail: Option<Detail>,
}

/// Short advice per failure type, as the original's failure analysis gave.
/// What to look at first: by our code for a well-known provider error (README, "Failure codes
/// from instrumentation libraries"), else by failure type.
fn advice(failure_type: &str, failure_code: &str) -> &'static str {
    match failure_code {
        "rate_limited" => {
            return "The provider is rate limiting: retry with backoff, spread the load over time, or ask for a higher limit.";
        }
        "timeout" => {
            return "The call timed out: check the provider's status and the client's timeout; retry transient errors with backoff.";
        }
        "context_length_exceeded" => {
            return "The input was longer than the model's context window: trim the history or the retrieved documents, or use a model with a longer context.";
        }
        "authentication_failed" => {
            return "The provider refused the credentials: check the API key, its permissions and the project it belongs to.";
        }
        "content_filtered" => {
            return "The provider's content filter stopped the request or its answer: review the input or the filter's settings.";
        }
        _ => {}
    }
    match failure_type {
        "tool" => {
            "Check the tool's inputs, availability and timeouts; retry transient errors with backoff."
        }
        "model" => {
            "Check rate limits, context length and the provider's status; consider a fallback model."
        }
        "retrieval" => {
            "Check the index and the query: an empty or failed retrieval often starts a chain of failures."
        }
        "orchestration" => "Check loop and step limits and the state passed between steps.",
        _ => "Look at the failed step's metadata and the steps just before it.",
    }
}

/// The steps in waterfall order with their depth: a tree by `parent_span_id` (children after
/// their parent, by start time), roots by start time; steps without span ids are roots.
pub fn tree_order(steps: &[StepOut]) -> Vec<(usize, usize)> {
    let ids: HashSet<&str> = steps.iter().filter_map(|s| s.span_id.as_deref()).collect();
    let mut children: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        match s.parent_span_id.as_deref().filter(|p| ids.contains(p)) {
            Some(parent) if s.span_id.as_deref() != Some(parent) => {
                children.entry(parent).or_default().push(i)
            }
            _ => roots.push(i),
        }
    }
    let by_start = |list: &mut Vec<usize>| {
        list.sort_by_key(|&i| (steps[i].started_at, steps[i].seq));
    };
    by_start(&mut roots);
    for list in children.values_mut() {
        by_start(list);
    }
    let mut order = Vec::with_capacity(steps.len());
    let mut seen = vec![false; steps.len()];
    let mut stack: Vec<(usize, usize)> = roots.into_iter().rev().map(|i| (i, 0)).collect();
    while let Some((i, depth)) = stack.pop() {
        if std::mem::replace(&mut seen[i], true) {
            continue;
        }
        order.push((i, depth));
        if let Some(kids) = s_id(&steps[i]).and_then(|id| children.get(id)) {
            stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
        }
    }
    // A cycle of parents leaves steps unreached: they follow, flat.
    order.extend((0..steps.len()).filter(|&i| !seen[i]).map(|i| (i, 0)));
    order
}

fn s_id(s: &StepOut) -> Option<&str> {
    s.span_id.as_deref()
}

fn micros(d: time::Duration) -> i128 {
    d.whole_microseconds()
}

/// The step `step_id` of run `run` as a link that selects it: its label and its href.
pub(super) fn step_link(
    base: &str,
    run: &str,
    steps: &HashMap<Uuid, &StepOut>,
    step_id: Option<Uuid>,
) -> Option<(String, String)> {
    let s = steps.get(&step_id?)?;
    Some((
        format!("#{} {}", s.seq, s.name),
        format!("{base}/runs/{run}?step={}#detail", s.seq),
    ))
}

fn failure_view(
    base: &str,
    f: &FailureOut,
    steps: &HashMap<Uuid, &StepOut>,
    run: &str,
) -> FailureView {
    FailureView {
        failure_type: f.failure_type.clone(),
        failure_code: f.failure_code.clone(),
        message: f.message.clone(),
        step: step_link(base, run, steps, f.step_id),
        advice: advice(&f.failure_type, &f.failure_code),
        code_href: href(
            &format!("{base}/runs"),
            &[
                ("failure_type", f.failure_type.as_str()),
                ("failure_code", f.failure_code.as_str()),
            ],
        ),
        sent: sent_fields(f.metadata.get()),
    }
}

/// A failure's metadata as `key: value` lines (strings unquoted, anything else as JSON).
fn sent_fields(metadata: &str) -> Vec<(String, String)> {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str(metadata) else {
        return Vec::new();
    };
    map.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect()
}

fn pretty(metadata: &str) -> String {
    serde_json::from_str::<serde_json::Value>(metadata)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| metadata.to_owned())
}

/// The failures of `run` (of its step `step` only, when given), as the page shows them.
fn failure_views(base: &str, run: &RunOut, step: Option<Uuid>) -> Vec<FailureView> {
    let by_id: HashMap<Uuid, &StepOut> = run.steps.iter().map(|s| (s.step_id, s)).collect();
    let id = run.run_id.to_string();
    run.failures
        .iter()
        .filter(|f| step.is_none() || f.step_id == step)
        .map(|f| failure_view(base, f, &by_id, &id))
        .collect()
}

fn waterfall(base: &str, run: &RunOut, selected: Option<i32>, now: OffsetDateTime) -> Waterfall {
    let t0 = run
        .steps
        .iter()
        .map(|s| s.started_at)
        .chain([run.started_at])
        .min()
        .unwrap_or(run.started_at);
    let t1 = run
        .steps
        .iter()
        .map(|s| s.ended_at)
        .chain([run.ended_at.unwrap_or(run.started_at)])
        .max()
        .unwrap_or(run.started_at);
    let total = micros(t1 - t0).max(1000);
    let failed: HashSet<Uuid> = run.failures.iter().filter_map(|f| f.step_id).collect();
    let bars = tree_order(&run.steps)
        .into_iter()
        .map(|(i, depth)| {
            let s = &run.steps[i];
            let x = (micros(s.started_at - t0) * 1000 / total).clamp(0, 1000) as i64;
            let w = (micros(s.ended_at - s.started_at) * 1000 / total).clamp(2, 1000) as i64;
            Bar {
                seq: s.seq,
                name: s.name.clone(),
                step_type: s.step_type.clone(),
                depth: depth.min(MAX_INDENT),
                x: x.min(998),
                w: w.min(1000 - x.min(998)),
                duration: format::duration_ms(Some(f64::from(s.latency_ms))),
                failed: failed.contains(&s.step_id),
                selected: selected == Some(s.seq),
                // Relative to the page: a 10,000-step run repeats it 10,000 times.
                href: format!("?step={}#detail", s.seq),
            }
        })
        .collect();
    let ticks = (0..=4)
        .map(|q| format::duration_ms(Some(total as f64 * f64::from(q) / 4.0 / 1000.0)))
        .collect();
    let mut types: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for s in &run.steps {
        let e = types.entry(&s.step_type).or_default();
        e.0 += 1;
        e.1 += i64::from(s.latency_ms);
    }
    let detail = selected
        .and_then(|seq| run.steps.iter().find(|s| s.seq == seq))
        .map(|s| Detail {
            seq: s.seq,
            name: s.name.clone(),
            step_type: s.step_type.clone(),
            model: s.model.clone().unwrap_or_default(),
            tokens: match (s.input_tokens, s.output_tokens) {
                (None, None) => String::new(),
                (i, o) => format!(
                    "{} in · {} out",
                    format::count(i64::from(i.unwrap_or(0))),
                    format::count(i64::from(o.unwrap_or(0)))
                ),
            },
            cost: match (&s.model, s.cost_usd) {
                (None, None) => String::new(),
                (_, cost) => format::usd(cost),
            },
            latency: format::duration_ms(Some(f64::from(s.latency_ms))),
            started: When::of(s.started_at, now),
            ended: When::of(s.ended_at, now),
            offset: format::duration_ms(Some(micros(s.started_at - t0) as f64 / 1000.0)),
            span_id: s.span_id.clone().unwrap_or_default(),
            parent_span_id: s.parent_span_id.clone().unwrap_or_default(),
            step_id: s.step_id.to_string(),
            metadata: pretty(s.metadata.get()),
            failures: failure_views(base, run, Some(s.step_id)),
        });
    Waterfall {
        types: types
            .into_iter()
            .map(|(t, (n, ms))| TypeRow {
                step_type: t.to_owned(),
                steps: format::count(n),
                plural: n != 1,
                latency: format::duration_ms(Some(ms as f64)),
            })
            .collect(),
        bars,
        ticks,
        detail,
    }
}

pub fn build(base: &str, run: &RunOut, selected: Option<i32>, now: OffsetDateTime) -> RunPage {
    let id = run.run_id.to_string();
    let tokens: i64 = run
        .steps
        .iter()
        .map(|s| i64::from(s.input_tokens.unwrap_or(0)) + i64::from(s.output_tokens.unwrap_or(0)))
        .sum();
    RunPage {
        ctx: Ctx {
            base: base.to_owned(),
            nav: "runs",
            assets: crate::ui::assets::names(),
            session: false,
        },
        status: run.status.clone(),
        agent: RunAgent::of(&run.agent_id, &run.agent_version, &run.environment),
        agent_href: href(
            &format!("{base}/runs"),
            &[
                ("agent_id", run.agent_id.as_str()),
                ("agent_version", run.agent_version.as_str()),
            ],
        ),
        source: run.source.clone(),
        started: When::of(run.started_at, now),
        ended: run.ended_at.map(|t| When::of(t, now)),
        duration: format::run_duration(run.started_at, run.ended_at),
        steps: format::count(run.steps.len() as i64),
        tokens: format::count(tokens),
        cost: format::usd(run.cost_usd),
        failures: failure_views(base, run, None),
        waterfall: waterfall(base, run, selected, now),
        behaviour: super::decisions::RunBehaviour::of(base, run),
        json_href: format!("/v1/runs/{id}"),
        run_id: id,
    }
}

pub async fn page(p: Page, run_id: Result<RunId, ApiError>) -> Result<HttpResponse, PageError> {
    let fail = |e| p.fail(e);
    let RunId(run_id) = run_id.map_err(fail)?;
    let step = match param(&p.pairs, "step") {
        None => None,
        Some(v) => Some(v.parse::<i32>().map_err(|_| {
            fail(ApiError::validation(vec![
                crate::model::input::FieldError::new(
                    "int_parsing",
                    vec!["query".into(), "step".into()],
                    "Input should be a valid integer",
                ),
            ]))
        })?),
    };
    let run = p
        .state
        .read(async |conn| Ok(read::load_run(conn, run_id).await?))
        .await
        .map_err(fail)?
        .ok_or_else(|| fail(ApiError::NotFound(format!("Run {run_id} not found"))))?;
    let mut page = build(p.base(), &run, step, p.now);
    page.ctx = p.ctx("runs");
    html(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::output::RawJson;
    use time::macros::datetime;

    fn step(seq: i32, span: Option<&str>, parent: Option<&str>, start_ms: i64) -> StepOut {
        let t0 = datetime!(2026-12-02 12:00 UTC);
        StepOut {
            step_id: Uuid::from_u128(seq as u128 + 1),
            run_id: Uuid::nil(),
            seq,
            step_type: "tool".into(),
            name: format!("s{seq}"),
            latency_ms: 10,
            started_at: t0 + time::Duration::milliseconds(start_ms),
            ended_at: t0 + time::Duration::milliseconds(start_ms + 10),
            metadata: RawJson::from_value(&serde_json::json!({})),
            created_at: t0,
            span_id: span.map(Into::into),
            parent_span_id: parent.map(Into::into),
            model: None,
            input_tokens: None,
            output_tokens: None,
            cost_usd: None,
        }
    }

    #[test]
    fn spans_nest_under_their_parents_in_start_order() {
        let steps = vec![
            step(0, Some("c2"), Some("root"), 50),
            step(1, Some("root"), None, 0),
            step(2, Some("c1"), Some("root"), 10),
            step(3, Some("g1"), Some("c1"), 20),
            step(4, Some("orphan"), Some("missing"), 5),
        ];
        let order: Vec<(i32, usize)> = tree_order(&steps)
            .into_iter()
            .map(|(i, d)| (steps[i].seq, d))
            .collect();
        assert_eq!(order, vec![(1, 0), (2, 1), (3, 2), (0, 1), (4, 0)]);
    }

    #[test]
    fn a_cycle_of_parents_still_shows_every_step() {
        let steps = vec![
            step(0, Some("a"), Some("b"), 0),
            step(1, Some("b"), Some("a"), 5),
        ];
        let mut seqs: Vec<i32> = tree_order(&steps)
            .iter()
            .map(|(i, _)| steps[*i].seq)
            .collect();
        seqs.sort_unstable();
        assert_eq!(seqs, vec![0, 1]);
    }
}

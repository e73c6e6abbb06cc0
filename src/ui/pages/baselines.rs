//! `/baselines`: behaviour baselines (docs/drift.md) with the filters of `GET /v1/drift/baselines`
//! (agent, version, environment, type, active), each with a summary of its profile and an
//! Activate or Deactivate action, and a form that makes a baseline from a window — the body of
//! `POST /v1/drift/baselines`. The writes go to the ingest role from the browser (docs/ui.md,
//! Writes); this page only reads.

use std::collections::HashMap;

use actix_web::HttpResponse;
use askama::Template;
use serde_json::{Value, json};
use time::Duration;
use uuid::Uuid;

use super::{AgentPicker, OffsetPager, Page, Select, WriteTarget};
use crate::drift::store::{self, Baseline, Profile};
use crate::model::behaviour::BASELINE_TYPES;
use crate::query::drift::{List, list_filter};
use crate::query::filters::RunFilter;
use crate::query::stats;
use crate::ui::view::{RunAgent, When, href, param};
use crate::ui::{Ctx, PageError, format, html};

/// Rows of a page, unless the URL says otherwise (`limit`).
pub const PAGE_ROWS: &str = "50";

/// What a baseline froze: its profile, in short.
pub struct ProfileSummary {
    pub sample: String,
    pub from: When,
    pub to: When,
    /// The most chosen option of each type, with its share: `tool_selection: api 65.0 %`.
    pub top: Vec<String>,
    pub p95: String,
}

pub struct BaselineRow {
    pub id: String,
    /// `active` or `inactive`.
    pub state: &'static str,
    pub agent: RunAgent,
    pub baseline_type: String,
    pub profile: Option<ProfileSummary>,
    pub approved: String,
    pub description: String,
    pub created: Option<When>,
    /// The write that flips it, and its button's label.
    pub action: (&'static str, String),
    pub behaviour_href: String,
    pub drift_href: String,
}

/// The form that makes a baseline, filled from the URL (the filters, `window_start`,
/// `window_end`), and the same as a curl command.
pub struct NewBaseline {
    pub f: AgentPicker,
    pub window_start: String,
    pub window_end: String,
    pub types: Vec<&'static str>,
    pub curl: String,
}

#[derive(Template)]
#[template(path = "baselines.html")]
pub struct BaselinesPage {
    pub ctx: Ctx,
    pub f: AgentPicker,
    pub baseline_type: Select,
    pub active: Select,
    pub rows: Vec<BaselineRow>,
    pub pager: OffsetPager,
    pub new: NewBaseline,
    pub writes: WriteTarget,
}

/// The most chosen option of each decision type, then of each signal type: `type: option share`.
fn top_shares(profile: &Profile) -> Vec<String> {
    let mut out = Vec::new();
    for dist in [
        &profile.decision_distributions,
        &profile.signal_distributions,
    ] {
        for (kind, options) in dist.as_object().into_iter().flatten() {
            let best = options
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(o, v)| Some((o, v.as_f64()?)))
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(a.0)));
            if let Some((option, share)) = best {
                out.push(format!(
                    "{kind}: {option} {}",
                    format::percent(share * 100.0)
                ));
            }
        }
    }
    out
}

fn summary(profile: &Profile, now: time::OffsetDateTime) -> ProfileSummary {
    let latency = crate::drift::profile::Latency::from_json(&profile.latency_stats);
    ProfileSummary {
        sample: format::count(i64::from(profile.sample_size)),
        from: When::of(profile.window_start.assume_utc(), now),
        to: When::of(profile.window_end.assume_utc(), now),
        top: top_shares(profile),
        p95: format::duration_ms((latency.count > 0).then_some(latency.p95)),
    }
}

fn row(
    base: &str,
    b: Baseline,
    profile: Option<&Profile>,
    now: time::OffsetDateTime,
) -> BaselineRow {
    let agent = RunAgent::of(&b.agent_id, &b.agent_version, &b.environment);
    let scope = [
        ("agent_id", b.agent_id.clone()),
        ("agent_version", b.agent_version.clone()),
        ("environment", b.environment.clone()),
    ];
    let mut behaviour = scope.to_vec();
    if let Some(p) = profile {
        behaviour.extend([
            ("window", "custom".to_owned()),
            ("from", format::iso(p.window_start.assume_utc())),
            ("to", format::iso(p.window_end.assume_utc())),
        ]);
    }
    let id = b.baseline_id;
    BaselineRow {
        id: id.to_string(),
        state: if b.is_active { "active" } else { "inactive" },
        baseline_type: b.baseline_type,
        profile: profile.map(|p| summary(p, now)),
        approved: match (&b.approved_by, b.approved_at) {
            (Some(by), Some(at)) => format!("{by}, {}", format::utc(at.assume_utc())),
            (Some(by), None) => by.clone(),
            _ => String::new(),
        },
        description: b.description.unwrap_or_default(),
        created: b.created_at.map(|t| When::of(t.assume_utc(), now)),
        action: match b.is_active {
            true => ("Deactivate", format!("/v1/drift/baselines/{id}/deactivate")),
            false => ("Activate", format!("/v1/drift/baselines/{id}/activate")),
        },
        behaviour_href: href(&format!("{base}/behaviour"), &behaviour),
        drift_href: href(&format!("{base}/drift"), &scope),
        agent,
    }
}

/// The create form, filled from the URL; its window defaults to the last 7 days.
fn new_baseline(p: &Page, filter: &RunFilter, agents: &[stats::Agent]) -> NewBaseline {
    let bound = |name: &str, default: time::OffsetDateTime| {
        param(&p.pairs, name).map_or_else(|| format::iso(default), str::to_owned)
    };
    let now = p.now.replace_nanosecond(0).unwrap_or(p.now);
    let window_start = bound("window_start", now - Duration::days(7));
    let window_end = bound("window_end", now);
    let or = |v: &Option<String>, placeholder: &str| v.clone().unwrap_or(placeholder.into());
    let body: Value = json!({
        "agent_id": or(&filter.agent_id, "<agent_id>"),
        "agent_version": or(&filter.agent_version, "<agent_version>"),
        "environment": or(&filter.environment, "production"),
        "baseline_type": "version",
        "window_start": window_start,
        "window_end": window_end,
        "min_sample_size": 100,
        "auto_activate": true,
    });
    NewBaseline {
        f: AgentPicker::new(filter, agents),
        curl: p.writes.command("/v1/drift/baselines", Some(&body)),
        window_start,
        window_end,
        types: BASELINE_TYPES.to_vec(),
    }
}

pub async fn page(p: Page) -> Result<HttpResponse, PageError> {
    let mut pairs = vec![("limit".to_owned(), PAGE_ROWS.to_owned())];
    pairs.extend(p.pairs.iter().cloned());
    let f = list_filter(&pairs, List::Baselines).map_err(|e| p.fail(e))?;
    let (mut rows, profiles, agents) = p
        .state
        .read(async |conn| {
            let one_more = store::Filter {
                limit: f.limit + 1,
                ..f.clone()
            };
            let rows = store::baselines(conn, &one_more).await?;
            let ids: Vec<Uuid> = rows.iter().map(|b| b.profile_id).collect();
            let profiles = store::profiles_by_id(conn, &ids).await?;
            Ok((rows, profiles, stats::agents(conn).await?))
        })
        .await
        .map_err(|e| p.fail(e))?;
    let more = rows.len() as i64 > f.limit;
    rows.truncate(usize::try_from(f.limit).unwrap_or(0));
    let profiles: HashMap<Uuid, Profile> =
        profiles.into_iter().map(|p| (p.profile_id, p)).collect();
    let (b, now) = (p.base(), p.now);
    let filter = RunFilter {
        agent_id: f.agent_id.clone(),
        agent_version: f.agent_version.clone(),
        environment: f.environment.clone(),
        ..RunFilter::default()
    };
    let active = f.is_active.map(|a| if a { "true" } else { "false" });
    html(BaselinesPage {
        ctx: p.ctx("drift"),
        f: AgentPicker::new(&filter, &agents),
        baseline_type: Select::new(BASELINE_TYPES.iter().copied(), f.baseline_type.as_deref()),
        active: Select::labelled(&[("true", "active"), ("false", "inactive")], active),
        rows: rows
            .into_iter()
            .map(|r| {
                let profile = profiles.get(&r.profile_id);
                row(b, r, profile, now)
            })
            .collect(),
        pager: OffsetPager::new(
            &format!("{b}/baselines"),
            &p.pairs,
            (f.limit, f.offset),
            more,
        ),
        new: new_baseline(&p, &filter, &agents),
        writes: p.writes.clone(),
    })
}

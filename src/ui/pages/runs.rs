//! `/runs`: the run explorer — every filter of `GET /v1/runs`, cursor paging, one row per run
//! (status, agent@version, environment, start, duration, steps, tokens, first failure).

use actix_web::HttpResponse;
use askama::Template;

use super::{AgentPicker, Page, Select, runs_and_agents};
use crate::model::FailureType;
use crate::query::filters::{self, Position};

use crate::ui::view::{RunRow, href};
use crate::ui::{Ctx, PageError, html};

#[derive(Template)]
#[template(path = "runs.html")]
pub struct RunsPage {
    pub ctx: Ctx,
    pub f: AgentPicker,
    pub status: Select,
    pub failure_type: Select,
    pub failure_code: String,
    pub start_time: String,
    pub end_time: String,
    pub page_size: i64,
    pub rows: Vec<RunRow>,
    /// The next page, when there is one.
    pub next: Option<String>,
    /// The first page of the same filters, when this is not it.
    pub first: Option<String>,
}

/// The query string's pairs but the paging ones.
fn without_paging(pairs: &[(String, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .filter(|(k, _)| k != "cursor" && k != "page")
        .cloned()
        .collect()
}

pub async fn page(p: Page) -> Result<HttpResponse, PageError> {
    let (now, pairs) = (p.now, &p.pairs);
    let (filter, paging) = filters::parse_list(pairs).map_err(|e| p.fail(e))?;
    let (page, agents) = runs_and_agents(&p, &filter, &paging).await?;
    let b = p.base();
    let path = format!("{b}/runs");
    let kept = without_paging(pairs);
    let next = page.next.map(|cursor| {
        let mut params = kept.clone();
        params.push(("cursor".into(), cursor.encode()));
        href(&path, &params)
    });
    let first = (paging.position != Position::Page(1)).then(|| href(&path, &kept));
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let raw = |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    html(RunsPage {
        ctx: p.ctx("runs"),
        f: AgentPicker::new(&filter, &agents),
        status: Select::status(&filter),
        failure_type: Select::new(
            FailureType::VALUES.iter().copied(),
            filter.failure_type.map(FailureType::as_str),
        ),
        failure_code: text(&filter.failure_code),
        start_time: raw("start_time"),
        end_time: raw("end_time"),
        page_size: paging.page_size,
        rows: page.runs.iter().map(|r| RunRow::of(b, r, now)).collect(),
        next,
        first,
    })
}

//! `/runs`: the run explorer — every filter of `GET /v1/runs`, cursor paging, one row per run
//! (status, agent@version, environment, start, duration, steps, tokens, first failure).

use actix_web::HttpResponse;
use askama::Template;

use super::{AgentPicker, Page, Select, runs_and_agents};
use crate::model::FailureType;
use crate::query::filters::{self, Cursor, Position};
use crate::ui::view::{RunRow, href, param};
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
    pub pager: Pager,
}

/// The links below the list.
pub struct Pager {
    /// The first page of the same filters, when this is not it.
    pub first: Option<String>,
    /// The next page, when there is one.
    pub next: Option<String>,
}

impl Pager {
    /// The links to `path` with the query string's `pairs`, this page being at `position` and
    /// followed by `next`.
    fn new(
        path: &str,
        pairs: &[(String, String)],
        position: Position,
        next: Option<Cursor>,
    ) -> Pager {
        let kept: Vec<(String, String)> = pairs
            .iter()
            .filter(|(k, _)| k != "cursor" && k != "page")
            .cloned()
            .collect();
        Pager {
            first: (position != Position::Page(1)).then(|| href(path, &kept)),
            next: next.map(|cursor| {
                let mut params = kept.clone();
                params.push(("cursor".into(), cursor.encode()));
                href(path, &params)
            }),
        }
    }
}

pub async fn page(p: Page) -> Result<HttpResponse, PageError> {
    let (now, pairs) = (p.now, &p.pairs);
    let (filter, paging) = filters::parse_list(pairs).map_err(|e| p.fail(e))?;
    let (page, agents) = runs_and_agents(&p, &filter, &paging).await?;
    let b = p.base();
    let text = |v: Option<&str>| v.unwrap_or_default().to_owned();
    html(RunsPage {
        ctx: p.ctx("runs"),
        f: AgentPicker::new(&filter, &agents),
        status: Select::status(&filter),
        failure_type: Select::new(
            FailureType::VALUES.iter().copied(),
            filter.failure_type.map(FailureType::as_str),
        ),
        failure_code: text(filter.failure_code.as_deref()),
        start_time: text(param(pairs, "start_time")),
        end_time: text(param(pairs, "end_time")),
        page_size: paging.page_size,
        rows: page.runs.iter().map(|r| RunRow::of(b, r, now)).collect(),
        pager: Pager::new(&format!("{b}/runs"), pairs, paging.position, page.next),
    })
}

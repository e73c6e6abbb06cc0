//! `/live`: new runs as they are committed (the list's filters), newest first. The page starts
//! with the latest runs and follows `{base}/live/stream` — the same stream as
//! `GET /v1/runs/stream`, authorised by the session rather than a key header.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::{AgentPicker, Page, Select, runs_and_agents};
use crate::query::QueryState;
use crate::query::filters::{self, Paging, Position};
use crate::query::stream;
use crate::ui::session::Viewer;
use crate::ui::view::{RunRow, agent_params, href};
use crate::ui::{Ctx, PageError, html};

#[derive(Template)]
#[template(path = "live.html")]
pub struct LivePage {
    pub ctx: Ctx,
    pub f: AgentPicker,
    pub status: Select,
    pub stream: String,
    pub rows: Vec<RunRow>,
}

pub async fn page(p: Page) -> Result<HttpResponse, PageError> {
    let filter = filters::parse_filter(&p.pairs, true).map_err(|e| p.fail(e))?;
    let paging = Paging {
        page_size: 20,
        position: Position::Page(1),
    };
    let (page, agents) = runs_and_agents(&p, &filter, &paging).await?;
    let (now, b) = (p.now, p.base());
    let mut params = agent_params(&filter);
    if let Some(status) = filter.status {
        params.push(("status", status.as_str().to_owned()));
    }
    html(LivePage {
        ctx: p.ctx("live"),
        f: AgentPicker::new(&filter, &agents),
        status: Select::status(&filter),
        stream: href(&format!("{b}/live/stream"), &params),
        rows: page.runs.iter().map(|r| RunRow::of(b, r, now)).collect(),
    })
}

/// `{base}/live/stream`: the live stream for a reader with a session.
pub async fn events(
    req: HttpRequest,
    _viewer: Viewer,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, crate::error::ApiError> {
    state.ready()?;
    stream::open(&req, &state.live).await
}

//! One module per page. Each handler takes a [`super::session::Viewer`] first (the login check),
//! parses its query string (a 422 page naming a bad parameter), reads through the read-only pool
//! and renders its template.

pub mod agents;
mod decisions;
pub mod failures;
pub mod live;
pub mod login;
pub mod overview;
pub mod run;
pub mod runs;

use std::collections::BTreeSet;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use time::OffsetDateTime;

use super::session::Viewer;
use super::view::{PRESETS, Window, href};
use super::{Ctx, PageError, UiBase, format};
use crate::error::ApiError;
use crate::model::RunStatus;
use crate::query::QueryState;
use crate::query::filters::{self, Paging, RunFilter};
use crate::query::stats::{self, Agent};
use crate::query::summary::{self, SummaryPage};

/// What every page's handler starts from: the reader (the login check comes first), the query
/// role's state, where the UI lives, the query string's pairs (blank values left out), the time.
pub struct Page {
    pub viewer: Viewer,
    pub state: web::Data<QueryState>,
    pub base: web::Data<UiBase>,
    pub pairs: Vec<(String, String)>,
    pub now: OffsetDateTime,
}

impl Page {
    /// The error page for `err`.
    pub fn fail(&self, err: ApiError) -> PageError {
        PageError::new(&self.base, err)
    }

    /// The layout's context, with `nav` the current page.
    pub fn ctx(&self, nav: &'static str) -> Ctx {
        Ctx::new(&self.base, nav, &self.viewer)
    }

    /// `ui.base_path`.
    pub fn base(&self) -> &str {
        &self.base.0
    }
}

impl FromRequest for Page {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Page, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let page = Viewer::from_request(req, payload)
            .into_inner()
            .map_err(actix_web::Error::from)
            .and_then(|viewer| {
                let missing = || actix_web::error::ErrorInternalServerError("UI without its state");
                Ok(Page {
                    viewer,
                    state: req
                        .app_data::<web::Data<QueryState>>()
                        .cloned()
                        .ok_or_else(missing)?,
                    base: req
                        .app_data::<web::Data<UiBase>>()
                        .cloned()
                        .ok_or_else(missing)?,
                    pairs: super::view::pairs(req.query_string()),
                    now: OffsetDateTime::now_utc(),
                })
            });
        std::future::ready(page)
    }
}

/// A link of the window picker.
pub struct WindowLink {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

/// A windowed page's filter form: where it submits to, the window picker and the agent pickers.
pub struct WindowForm {
    pub action: String,
    pub links: Vec<WindowLink>,
    pub window: Window,
    /// The window's bounds as a custom window's fields show them.
    pub from: String,
    pub to: String,
    pub f: AgentPicker,
}

/// A windowed page's view: its window, and the runs it selects — the agent, version and
/// environment of its query string within the window.
pub struct Windowed {
    pub window: Window,
    pub filter: RunFilter,
}

impl Windowed {
    /// From the page's query string; a bad parameter is a 422 page naming it.
    pub fn of(page: &Page) -> Result<Windowed, PageError> {
        let fail = |e| page.fail(e);
        let window = Window::parse(&page.pairs, page.now).map_err(fail)?;
        let chosen = filters::parse_filter(&page.pairs, false).map_err(fail)?;
        let filter = RunFilter {
            agent_id: chosen.agent_id,
            agent_version: chosen.agent_version,
            environment: chosen.environment,
            start_time: Some(window.from),
            end_time: Some(window.to),
            ..RunFilter::default()
        };
        Ok(Windowed { window, filter })
    }

    /// The window picker's links to `path`, keeping the agent filters.
    pub fn links(&self, path: &str) -> Vec<WindowLink> {
        let agent = super::view::agent_params(&self.filter);
        PRESETS
            .iter()
            .map(|(key, label, _)| {
                let mut params = agent.clone();
                params.push(("window", (*key).to_owned()));
                WindowLink {
                    label,
                    href: href(path, &params),
                    current: self.window.key == *key,
                }
            })
            .collect()
    }

    /// The filter form at the top of the page at `path`: the window picker's links and the agent
    /// pickers.
    pub fn form(&self, path: &str, agents: &[Agent]) -> WindowForm {
        WindowForm {
            action: path.to_owned(),
            links: self.links(path),
            window: self.window.clone(),
            from: format::iso(self.window.from),
            to: format::iso(self.window.to),
            f: AgentPicker::new(&self.filter, agents),
        }
    }

    /// The explorer's filters for the same runs: the agent filters and the window's bounds.
    pub fn scope(&self) -> Vec<(&'static str, String)> {
        let mut scope = super::view::agent_params(&self.filter);
        scope.extend(self.window.as_filter());
        scope
    }
}

/// A page of runs as rows, and the agents for the pickers: one read.
pub async fn runs_and_agents(
    page: &Page,
    filter: &RunFilter,
    paging: &Paging,
) -> Result<(SummaryPage, Vec<Agent>), PageError> {
    page.state
        .read(async |conn| {
            let runs = summary::page(conn, filter, paging).await?;
            let agents = stats::agents(conn).await?;
            Ok((runs, agents))
        })
        .await
        .map_err(|e| page.fail(e))
}

/// A `<select>` of a filter form: what there is to choose, and what was chosen (empty for any).
pub struct Select {
    pub options: Vec<String>,
    pub chosen: String,
}

impl Select {
    pub fn new<T: Into<String>>(
        options: impl IntoIterator<Item = T>,
        chosen: Option<&str>,
    ) -> Select {
        Select {
            options: options.into_iter().map(Into::into).collect(),
            chosen: chosen.unwrap_or_default().to_owned(),
        }
    }

    /// The run status select of `filter`.
    pub fn status(filter: &RunFilter) -> Select {
        Select::new(
            RunStatus::VALUES.iter().copied(),
            filter.status.map(RunStatus::as_str),
        )
    }
}

/// The agent, version and environment pickers: what was chosen and what there is to choose (the
/// versions and environments of the chosen agent, of every agent when none is chosen).
pub struct AgentPicker {
    pub agent_id: Select,
    pub agent_version: Select,
    pub environment: Select,
}

impl AgentPicker {
    pub fn new(filter: &RunFilter, agents: &[Agent]) -> AgentPicker {
        let chosen = |a: &&Agent| filter.agent_id.as_ref().is_none_or(|id| *id == a.agent_id);
        let versions: BTreeSet<String> = agents
            .iter()
            .filter(chosen)
            .flat_map(|a| a.versions.iter().cloned())
            .collect();
        let environments: BTreeSet<String> = agents
            .iter()
            .filter(chosen)
            .flat_map(|a| a.environments.iter().cloned())
            .collect();
        let ids: BTreeSet<String> = agents.iter().map(|a| a.agent_id.clone()).collect();
        // A chosen value stays choosable even when no rollup knows it yet.
        let select = |mut options: BTreeSet<String>, chosen: &Option<String>| {
            options.extend(chosen.clone());
            Select::new(options, chosen.as_deref())
        };
        AgentPicker {
            agent_id: select(ids, &filter.agent_id),
            agent_version: select(versions, &filter.agent_version),
            environment: select(environments, &filter.environment),
        }
    }
}

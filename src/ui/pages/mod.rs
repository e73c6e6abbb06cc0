//! One module per page. Each handler takes a [`super::session::Viewer`] first (the login check),
//! parses its query string (a 422 page naming a bad parameter), reads through the read-only pool
//! and renders its template.

pub mod agents;
pub mod baselines;
pub mod behaviour;
mod decisions;
pub mod drift;
pub mod failures;
pub mod live;
pub mod login;
pub mod overview;
pub mod run;
pub mod runs;
pub mod sessions;

use std::collections::BTreeSet;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use time::OffsetDateTime;

use super::session::Viewer;
use super::view::{PRESETS, Window, href};
use super::{Ctx, PageError, UiBase, Writes, format};
use crate::error::ApiError;
use crate::model::RunStatus;
use crate::query::QueryState;
use crate::query::filters::{self, Paging, RunFilter};
use crate::query::stats::{self, Agent};
use crate::query::summary::{self, SummaryPage};

/// What every page's handler starts from: the reader (the login check comes first), the query
/// role's state, where the UI lives, the query string's pairs (blank values left out), the time,
/// and where write actions go.
pub struct Page {
    pub viewer: Viewer,
    pub state: web::Data<QueryState>,
    pub base: web::Data<UiBase>,
    pub pairs: Vec<(String, String)>,
    pub now: OffsetDateTime,
    pub writes: WriteTarget,
}

/// Where a page's write actions go (docs/ui.md, Writes): the ingest role's JSON API.
#[derive(Clone)]
pub struct WriteTarget {
    /// The base URL the script sends to: `ui.ingest_url`, or "" for this origin.
    pub api: String,
    /// The absolute base URL the curl commands show (this origin when `api` is "").
    pub curl: String,
}

impl WriteTarget {
    fn of(req: &HttpRequest, writes: Option<&Writes>) -> WriteTarget {
        let api = writes.map(|w| w.ingest_url.clone()).unwrap_or_default();
        let curl = match api.is_empty() {
            true => {
                let info = req.connection_info();
                format!("{}://{}", info.scheme(), info.host())
            }
            false => api.clone(),
        };
        WriteTarget { api, curl }
    }

    /// A `curl` command that POSTs to the ingest role's `path`, with `body` as JSON when given.
    pub fn command(&self, path: &str, body: Option<&serde_json::Value>) -> String {
        let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        let mut cmd = format!(
            "curl -X POST {} -H \"X-API-Key: $AGENTTRACER_INGEST_KEY\"",
            quote(&format!("{}{path}", self.curl))
        );
        if let Some(body) = body {
            cmd.push_str(" -H 'Content-Type: application/json' -d ");
            cmd.push_str(&quote(&body.to_string()));
        }
        cmd
    }
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
                    writes: WriteTarget::of(
                        req,
                        req.app_data::<web::Data<Writes>>().map(|w| w.as_ref()),
                    ),
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

    /// The agents to choose from on a page of one agent (`path`) opened without one: each as
    /// `(agent_id, link)`, keeping the window; none once an agent is chosen.
    pub fn choose(&self, path: &str, agents: &[Agent]) -> Vec<(String, String)> {
        if self.filter.agent_id.is_some() {
            return Vec::new();
        }
        agents
            .iter()
            .map(|a| {
                let mut params = vec![("agent_id", a.agent_id.clone())];
                params.extend(self.window.params());
                (a.agent_id.clone(), href(path, &params))
            })
            .collect()
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

/// The links below a list paged by `limit` and `offset` (the drift routes' paging).
pub struct OffsetPager {
    /// The newer page, when this is not the first.
    pub newer: Option<String>,
    /// The older page, when there is one.
    pub older: Option<String>,
}

impl OffsetPager {
    /// The links to `path` with the query string's `pairs`, this page starting at `offset` with
    /// `limit` rows, `more` when rows follow it.
    pub fn new(
        path: &str,
        pairs: &[(String, String)],
        (limit, offset): (i64, i64),
        more: bool,
    ) -> OffsetPager {
        let at = |offset: i64| {
            let mut params: Vec<(String, String)> = pairs
                .iter()
                .filter(|(k, _)| k != "offset")
                .cloned()
                .collect();
            if offset > 0 {
                params.push(("offset".into(), offset.to_string()));
            }
            href(path, &params)
        };
        OffsetPager {
            newer: (offset > 0).then(|| at((offset - limit).max(0))),
            older: more.then(|| at(offset + limit)),
        }
    }
}

/// A `<select>` of a filter form: what there is to choose, and what was chosen (empty for any).
pub struct Select {
    pub options: Vec<SelectOption>,
    pub chosen: String,
}

/// A choice of a [`Select`]: the value the URL carries, and what the reader sees.
pub struct SelectOption {
    pub value: String,
    pub label: String,
}

impl Select {
    /// Options shown as their values.
    pub fn new<T: Into<String>>(
        options: impl IntoIterator<Item = T>,
        chosen: Option<&str>,
    ) -> Select {
        Select {
            options: options
                .into_iter()
                .map(|o| {
                    let value: String = o.into();
                    SelectOption {
                        label: value.clone(),
                        value,
                    }
                })
                .collect(),
            chosen: chosen.unwrap_or_default().to_owned(),
        }
    }

    /// Options of `(value, label)`.
    pub fn labelled(options: &[(&str, &str)], chosen: Option<&str>) -> Select {
        Select {
            options: options
                .iter()
                .map(|(value, label)| SelectOption {
                    value: (*value).to_owned(),
                    label: (*label).to_owned(),
                })
                .collect(),
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

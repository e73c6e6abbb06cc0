//! One module per page. Each handler takes a [`super::session::Viewer`] first (the login check),
//! parses its query string (a 422 page naming a bad parameter), reads through the read-only pool
//! and renders its template.

pub mod agents;
pub mod failures;
pub mod live;
pub mod login;
pub mod overview;
pub mod run;
pub mod runs;

use std::collections::BTreeSet;

use actix_web::HttpRequest;
use time::OffsetDateTime;

use super::view::{PRESETS, Window, href};
use super::{PageError, UiBase};
use crate::query::QueryState;
use crate::query::filters::{self, Paging, RunFilter};
use crate::query::stats::{self, Agent};
use crate::query::summary::{self, SummaryPage};

/// A link of the window picker.
pub struct WindowLink {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

/// A windowed page's view: its window, and the runs it selects — the agent, version and
/// environment of its query string within the window.
pub struct Windowed {
    pub window: Window,
    pub filter: RunFilter,
}

impl Windowed {
    /// From the request's query string; a bad parameter is a 422 page naming it.
    pub fn of(req: &HttpRequest, base: &UiBase) -> Result<Windowed, PageError> {
        let fail = |e| PageError::new(base, e);
        let pairs = super::view::pairs(req.query_string());
        let window = Window::parse(&pairs, OffsetDateTime::now_utc()).map_err(fail)?;
        let chosen = filters::parse_filter(&pairs, false).map_err(fail)?;
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

    /// The explorer's filters for the same runs: the agent filters and the window's bounds.
    pub fn scope(&self) -> Vec<(&'static str, String)> {
        let mut scope = super::view::agent_params(&self.filter);
        scope.extend(self.window.as_filter());
        scope
    }
}

/// A page of runs as rows, and the agents for the pickers: one read.
pub async fn runs_and_agents(
    state: &QueryState,
    filter: &RunFilter,
    paging: &Paging,
    base: &UiBase,
) -> Result<(SummaryPage, Vec<Agent>), PageError> {
    state
        .read(async |conn| {
            let page = summary::page(conn, filter, paging).await?;
            let agents = stats::agents(conn).await?;
            Ok((page, agents))
        })
        .await
        .map_err(|e| PageError::new(base, e))
}

/// The agent, version and environment pickers: what was chosen and what there is to choose.
pub struct AgentPicker {
    pub agent_id: String,
    pub agent_version: String,
    pub environment: String,
    pub agents: Vec<String>,
    /// The versions of the chosen agent (of every agent when none is chosen).
    pub versions: Vec<String>,
    pub environments: Vec<String>,
}

impl AgentPicker {
    pub fn new(filter: &RunFilter, agents: &[Agent]) -> AgentPicker {
        let chosen = |a: &&Agent| filter.agent_id.as_ref().is_none_or(|id| *id == a.agent_id);
        let mut versions: BTreeSet<String> = agents
            .iter()
            .filter(chosen)
            .flat_map(|a| a.versions.iter().cloned())
            .collect();
        let mut environments: BTreeSet<String> = agents
            .iter()
            .filter(chosen)
            .flat_map(|a| a.environments.iter().cloned())
            .collect();
        let mut ids: BTreeSet<String> = agents.iter().map(|a| a.agent_id.clone()).collect();
        // A chosen value stays choosable even when no rollup knows it yet.
        ids.extend(filter.agent_id.clone());
        versions.extend(filter.agent_version.clone());
        environments.extend(filter.environment.clone());
        AgentPicker {
            agent_id: filter.agent_id.clone().unwrap_or_default(),
            agent_version: filter.agent_version.clone().unwrap_or_default(),
            environment: filter.environment.clone().unwrap_or_default(),
            agents: ids.into_iter().collect(),
            versions: versions.into_iter().collect(),
            environments: environments.into_iter().collect(),
        }
    }
}

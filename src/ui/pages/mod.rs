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

use crate::query::filters::RunFilter;
use crate::query::stats::Agent;

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

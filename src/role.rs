//! Which listeners a process runs: `serve --role ingest|query|all`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The role a process serves; it decides which listeners start and which route sets they mount.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The write side: `POST /v1/runs`, batches, deletes, OTLP traces (HTTP and gRPC).
    Ingest,
    /// The read side, on read-only database credentials.
    Query,
    /// Both listeners in one process, each on its own port.
    #[default]
    All,
}

impl Role {
    /// The listeners this role starts.
    pub fn listeners(self) -> &'static [Listener] {
        match self {
            Role::Ingest => &[Listener::Ingest, Listener::OtlpGrpc],
            Role::Query => &[Listener::Query],
            Role::All => &[Listener::Ingest, Listener::Query, Listener::OtlpGrpc],
        }
    }

    pub fn runs_ingest(self) -> bool {
        self.listeners().contains(&Listener::Ingest)
    }

    pub fn runs_query(self) -> bool {
        self.listeners().contains(&Listener::Query)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Query => "query",
            Role::All => "all",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ingest" => Ok(Role::Ingest),
            "query" => Ok(Role::Query),
            "all" => Ok(Role::All),
            other => Err(format!(
                "unknown role `{other}` (expected ingest, query or all)"
            )),
        }
    }
}

/// One listener; a role runs one or more.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Listener {
    /// HTTP: the ingest routes (and OTLP/HTTP).
    Ingest,
    /// HTTP: the query routes.
    Query,
    /// OTLP/gRPC, part of the ingest role.
    OtlpGrpc,
}

impl Listener {
    /// The label used in metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Listener::Ingest => "ingest",
            Listener::Query => "query",
            Listener::OtlpGrpc => "otlp-grpc",
        }
    }

    /// Whether it speaks HTTP (and so has `/readyz`, `/metrics`, an OpenAPI document).
    pub fn is_http(self) -> bool {
        self != Listener::OtlpGrpc
    }

    /// The `service` field of `GET /health`, as the original named its two APIs.
    pub fn service_name(self) -> &'static str {
        match self {
            Listener::Ingest | Listener::OtlpGrpc => "ingest-api",
            Listener::Query => "query-api",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_choose_listeners() {
        assert_eq!("INGEST".parse::<Role>(), Ok(Role::Ingest));
        assert_eq!(
            Role::All.listeners(),
            &[Listener::Ingest, Listener::Query, Listener::OtlpGrpc]
        );
        assert!(Role::Query.runs_query() && !Role::Query.runs_ingest());
        assert!("writer".parse::<Role>().is_err());
    }
}

//! Loading: the layers merged in order (file, the original plain environment names,
//! `AGENTTRACER_*`, flags), then the values checked against each other.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};

use super::alerts::Phase3Env;
use super::sections::Config;
use super::values::parse_proxy;
use crate::role::Role;

/// The default configuration file, read when it exists and no `--config` is given.
pub const DEFAULT_CONFIG_FILE: &str = "config/agenttracer.toml";

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl From<figment::Error> for ConfigError {
    fn from(err: figment::Error) -> Self {
        // Join every error figment found: each names its key (`for key "server.foo"`).
        ConfigError::Invalid(
            err.into_iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )
    }
}

/// The original deployment's environment names and the keys they set.
/// Variables of the project's scripts that share the `AGENTTRACER_` prefix and are not
/// configuration (`scripts/local-pg.sh`'s data directory and port, the compose smoke's guard):
/// `AGENTTRACER_PGPORT=5434 scripts/run.sh` must not fail as an unknown key.
const SCRIPT_VARIABLES: &[&str] = &["pgdata", "pgport", "smoke_ns"];

const PLAIN_ENV: &[(&str, &str)] = &[
    ("DATABASE_URL", "database.url"),
    ("DATABASE_READ_URL", "database.read_url"),
    ("DATABASE_POOL_SIZE", "database.pool_size"),
    ("DATABASE_MAX_OVERFLOW", "database.max_overflow"),
    ("LOG_LEVEL", "log.level"),
    ("LOG_FORMAT", "log.format"),
    ("INGEST_API_HOST", "server.ingest_host"),
    ("INGEST_API_PORT", "server.ingest_port"),
    ("QUERY_API_HOST", "server.query_host"),
    ("QUERY_API_PORT", "server.query_port"),
];

impl Config {
    /// Loads every layer. `file` is `--config`; `role` is the `--role` flag.
    pub fn load(file: Option<&Path>, role: Option<Role>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        match file {
            Some(path) if !path.exists() => return Err(ConfigError::MissingFile(path.into())),
            Some(path) => figment = figment.merge(Toml::file(path)),
            None => figment = figment.merge(Toml::file(DEFAULT_CONFIG_FILE)),
        }
        figment = figment
            .merge(plain_env())
            .merge(Phase3Env)
            .merge(
                Env::raw()
                    .only(&["API_KEY"])
                    .map(|_| "auth.ingest_keys".into()),
            )
            .merge(
                Env::raw()
                    .only(&["API_KEY"])
                    .map(|_| "auth.query_keys".into()),
            )
            .merge(
                Env::prefixed("AGENTTRACER_")
                    .ignore(SCRIPT_VARIABLES)
                    .map(|key| {
                        // `AGENTTRACER_ROLE` is the documented short form of `server.role`.
                        if key.as_str().eq_ignore_ascii_case("role") {
                            "server.role".into()
                        } else {
                            key.as_str().replace("__", ".").into()
                        }
                    }),
            );
        if let Some(role) = role {
            figment = figment.merge(Serialized::default("server.role", role));
        }
        let config: Config = figment.extract()?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |msg: &str| Err(ConfigError::Invalid(msg.into()));
        if self.server.max_body_bytes == 0 {
            return invalid("server.max_body_bytes must be at least 1");
        }
        if self.ingest.max_batch_runs == 0 {
            return invalid("ingest.max_batch_runs must be at least 1");
        }
        if self.ingest.max_metadata_depth == 0
            || self.ingest.max_metadata_bytes < 256
            || self.ingest.max_string_chars == 0
        {
            return invalid(
                "ingest.max_metadata_depth and ingest.max_string_chars must be at least 1, ingest.max_metadata_bytes at least 256",
            );
        }
        if self.otlp.max_spans_per_request == 0 {
            return invalid("otlp.max_spans_per_request must be at least 1");
        }
        if let Some(bad) = self
            .server
            .trusted_proxies
            .0
            .iter()
            .find(|p| parse_proxy(p).is_none())
        {
            return invalid(&format!(
                "server.trusted_proxies: `{bad}` is not an IP address or CIDR range"
            ));
        }
        if self.server.max_inflight_body_bytes < self.server.max_body_bytes
            || self.server.body_read_timeout_s == 0
        {
            return invalid(
                "server.max_inflight_body_bytes must be at least server.max_body_bytes, server.body_read_timeout_s at least 1",
            );
        }
        let base = &self.ui.base_path;
        if !base.is_empty()
            && (!base.starts_with('/')
                || base.ends_with('/')
                || base.starts_with("/v1")
                || !base
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b)))
        {
            return invalid(
                "ui.base_path must be empty or a path like /agenttracer (no trailing slash, not under /v1)",
            );
        }
        if self.query.stream_poll_ms < 10 || self.query.stream_heartbeat_s == 0 {
            return invalid(
                "query.stream_poll_ms must be at least 10, query.stream_heartbeat_s at least 1",
            );
        }
        if let Some(secret) = &self.ui.session_secret
            && secrecy::ExposeSecret::expose_secret(secret.secret())
                .chars()
                .count()
                < 32
        {
            return invalid("ui.session_secret must be at least 32 characters");
        }
        let ingest = &self.ui.ingest_url;
        if !ingest.is_empty()
            && (self.ui.ingest_origin().is_none()
                || !(ingest.starts_with("http://") || ingest.starts_with("https://"))
                || ingest.ends_with('/')
                || ingest.contains(['?', '#', '\'', '"', ';', ',', ' ']))
        {
            return invalid(
                "ui.ingest_url must be empty or an http(s) URL like http://127.0.0.1:8000 (no trailing slash, query or fragment)",
            );
        }
        if self.ui.session_ttl_s == 0 {
            return invalid("ui.session_ttl_s must be at least 1");
        }
        if self.otlp.finalize_after_s == 0 {
            return invalid("otlp.finalize_after_s must be at least 1");
        }
        let o = &self.otlp;
        if o.grpc_max_connections == 0
            || o.grpc_max_concurrent_streams == 0
            || o.grpc_max_concurrent_exports == 0
            || o.grpc_request_timeout_s == 0
            || o.grpc_handshake_timeout_s == 0
            || o.grpc_max_connection_age_s == 0
        {
            return invalid("otlp.grpc_* limits must be at least 1");
        }
        if self.query.list_max_steps_per_run < 1 || self.query.list_max_step_bytes < 1 {
            return invalid(
                "query.list_max_steps_per_run and query.list_max_step_bytes must be at least 1",
            );
        }
        if self.server.workers == Some(0) {
            return invalid("server.workers must be at least 1");
        }
        if self.retention.days == Some(0) {
            return invalid(
                "retention.days must be at least 1 (leave it unset to keep everything)",
            );
        }
        if self.retention.batch_size == 0 || self.retention.interval_s == 0 {
            return invalid("retention.batch_size and retention.interval_s must be at least 1");
        }
        let d = &self.drift;
        if d.interval_s == 0 || d.window_s == 0 || d.min_sample_size == 0 {
            return invalid(
                "drift.interval_s, drift.window_s and drift.min_sample_size must be at least 1",
            );
        }
        let p_values = [d.decision_p_value, d.signal_p_value];
        if p_values.iter().any(|p| !(0.0..=1.0).contains(p)) {
            return invalid("drift.decision_p_value and drift.signal_p_value must be within 0..1");
        }
        let deltas = [
            d.decision_min_delta_percent,
            d.signal_min_delta_percent,
            d.latency_min_delta_percent,
            d.low_max_delta_percent,
            d.medium_max_delta_percent,
        ];
        if deltas.iter().any(|x| !x.is_finite() || *x < 0.0)
            || d.low_max_delta_percent > d.medium_max_delta_percent
        {
            return invalid(
                "drift.*_delta_percent must be at least 0, with low_max_delta_percent <= medium_max_delta_percent",
            );
        }
        self.alerts.validate().map_err(ConfigError::Invalid)?;
        self.cost.new_prices().map_err(ConfigError::Invalid)?;
        let level = normalize_level(&self.log.level);
        let is_level = ["off", "error", "warn", "info", "debug", "trace"].contains(&level.as_str());
        if !(is_level
            || level.contains('=') && tracing_subscriber::EnvFilter::try_new(&level).is_ok())
        {
            return Err(ConfigError::Invalid(format!(
                "log.level `{}` is not a level (error, warn, info, debug, trace) or a filter",
                self.log.level
            )));
        }
        Ok(())
    }
}

fn plain_env() -> Env {
    let names: Vec<&str> = PLAIN_ENV.iter().map(|(name, _)| *name).collect();
    Env::raw().only(&names).map(|name| {
        PLAIN_ENV
            .iter()
            .find(|(plain, _)| name.as_str().eq_ignore_ascii_case(plain))
            .map(|(_, key)| (*key).into())
            .unwrap_or_else(|| name.into())
    })
}

/// Python's level names (`WARNING`, `CRITICAL`) as tracing knows them.
pub fn normalize_level(level: &str) -> String {
    match level.to_ascii_lowercase().as_str() {
        "warning" => "warn".into(),
        "critical" | "fatal" => "error".into(),
        other => other.into(),
    }
}

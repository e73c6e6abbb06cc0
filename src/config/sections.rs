//! The configuration file: [`Config`], and its sections, one struct each, with their built-in
//! defaults.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::alerts::AlertsConfig;
pub use super::cost::{CostConfig, PriceConfig};
use super::db_url::DatabaseUrl;
use super::values::{Secret, SecretList, StringList};
pub use crate::model::privacy::PrivacyMode;
use crate::role::Role;

/// The whole configuration: a field per section of the file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub log: LogConfig,
    pub privacy: PrivacyConfig,
    pub ingest: IngestConfig,
    pub query: QueryConfig,
    pub retention: RetentionConfig,
    pub drift: DriftConfig,
    pub otlp: OtlpConfig,
    pub ui: UiConfig,
    pub alerts: AlertsConfig,
    pub cost: CostConfig,
}

impl Config {
    /// The effective configuration as TOML, secrets masked.
    pub fn to_masked_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub role: Role,
    pub ingest_host: String,
    pub ingest_port: u16,
    pub query_host: String,
    pub query_port: u16,
    /// OTLP/gRPC, served by the ingest role.
    pub otlp_grpc_addr: String,
    /// HTTP worker threads per listener; default: the number of CPUs.
    pub workers: Option<usize>,
    pub shutdown_timeout_s: u64,
    pub max_body_bytes: usize,
    /// Request bodies over 64 KiB being read and processed at once share this many bytes; a
    /// body waits for room (within `body_read_timeout_s`). At least `max_body_bytes`.
    pub max_inflight_body_bytes: usize,
    /// A request body not read whole within this many seconds is answered 408.
    pub body_read_timeout_s: u64,
    pub cors_origins: StringList,
    /// Peers (addresses or CIDR ranges) whose `Forwarded` / `X-Forwarded-*` / `X-Real-IP`
    /// headers are believed (the proxy in front, such as nginx). From anyone else those headers
    /// are removed before anything reads them. Also a comma-separated string.
    pub trusted_proxies: StringList,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            role: Role::All,
            ingest_host: "0.0.0.0".into(),
            ingest_port: 8000,
            query_host: "0.0.0.0".into(),
            query_port: 8001,
            otlp_grpc_addr: "0.0.0.0:4317".into(),
            workers: None,
            shutdown_timeout_s: 30,
            max_body_bytes: 10 * 1024 * 1024,
            max_inflight_body_bytes: 40 * 1024 * 1024,
            body_read_timeout_s: 30,
            cors_origins: StringList(vec![
                "http://localhost:3000".into(),
                "http://localhost:5173".into(),
            ]),
            trusted_proxies: StringList(Vec::new()),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub url: DatabaseUrl,
    pub read_url: Option<DatabaseUrl>,
    pub pool_size: u32,
    pub max_overflow: u32,
    pub acquire_timeout_ms: u64,
    pub statement_timeout_ms: u64,
    pub lock_timeout_ms: u64,
    pub migrate_on_start: bool,
    /// PEM file of the CA(s) that sign the database's certificate, for `sslmode=require` URLs.
    pub ssl_root_cert: Option<PathBuf>,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "postgresql://postgres:postgres@localhost:5433/agent_observability"
                .parse()
                .unwrap_or_else(|e| panic!("the default database URL: {e}")),
            read_url: None,
            pool_size: 10,
            max_overflow: 10,
            acquire_timeout_ms: 2000,
            statement_timeout_ms: 5000,
            lock_timeout_ms: 2000,
            migrate_on_start: true,
            ssl_root_cert: None,
        }
    }
}

impl DatabaseConfig {
    /// The pool's maximum size: `pool_size + max_overflow`, as SQLAlchemy counted it.
    pub fn max_connections(&self) -> usize {
        (self.pool_size + self.max_overflow).max(1) as usize
    }

    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_millis(self.acquire_timeout_ms)
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub ingest_keys: SecretList,
    pub query_keys: SecretList,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    pub mode: PrivacyMode,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    pub max_batch_runs: usize,
    pub max_steps_per_run: usize,
    /// Deepest nesting of objects and arrays in a step's metadata (the metadata object is 1).
    pub max_metadata_depth: usize,
    /// Largest step metadata, in bytes of its compact JSON.
    pub max_metadata_bytes: usize,
    /// Longest free-text string (a failure's `message`), in characters.
    pub max_string_chars: usize,
    /// Writer tasks of the group commit of `POST /v1/runs` (concurrent transactions).
    pub group_commit_writers: usize,
    /// Most runs one group-commit transaction takes.
    pub group_commit_max_runs: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_batch_runs: 1000,
            max_steps_per_run: 10_000,
            max_metadata_depth: 32,
            max_metadata_bytes: 64 * 1024,
            max_string_chars: 32 * 1024,
            group_commit_writers: 4,
            group_commit_max_runs: 256,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// Steps per run in a `GET /v1/runs` page (the first, by seq); the run says `steps_truncated`.
    pub list_max_steps_per_run: i32,
    /// Bytes of step data a `GET /v1/runs` page carries at most (each step counted as its
    /// metadata's JSON and 256 bytes for the rest); the runs whose steps it cuts say
    /// `steps_truncated`.
    pub list_max_step_bytes: i64,
    /// How often the live feed (`GET /v1/runs/stream`, the UI's live tail) looks for new runs
    /// while anyone listens.
    pub stream_poll_ms: u64,
    /// Seconds between heartbeat comments on an idle stream.
    pub stream_heartbeat_s: u64,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            list_max_steps_per_run: 1000,
            list_max_step_bytes: 8 * 1024 * 1024,
            stream_poll_ms: 500,
            stream_heartbeat_s: 15,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OtlpConfig {
    /// An OTLP run still `running` (no root span yet) with no new span for this long is closed
    /// from the spans it has.
    pub finalize_after_s: u64,
    /// Most spans one export request may carry (413 / INVALID_ARGUMENT above it).
    pub max_spans_per_request: usize,
    /// Most memory one export request may take once decoded, estimated from its encoded bytes
    /// before decoding (413 / INVALID_ARGUMENT above it): empty attributes or spans are 2 bytes
    /// on the wire and 70–250 in memory.
    pub max_decoded_bytes: usize,
    /// OTLP/gRPC: open connections at once; more are closed as they arrive.
    pub grpc_max_connections: usize,
    /// OTLP/gRPC: HTTP/2 streams (requests) at once on one connection.
    pub grpc_max_concurrent_streams: u32,
    /// OTLP/gRPC: exports read, decoded and stored at once, process-wide (the others wait, their
    /// bodies held back by HTTP/2 flow control): what bounds the memory of decoding.
    pub grpc_max_concurrent_exports: usize,
    /// OTLP/gRPC: a request (reading its message included) past this is cancelled.
    pub grpc_request_timeout_s: u64,
    /// OTLP/gRPC: a connection that has not sent a byte this long after it opened is closed.
    pub grpc_handshake_timeout_s: u64,
    /// OTLP/gRPC: a connection is asked to go away (GOAWAY; clients reconnect) after this long.
    pub grpc_max_connection_age_s: u64,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        Self {
            finalize_after_s: 300,
            max_spans_per_request: 20_000,
            max_decoded_bytes: 64 * 1024 * 1024,
            grpc_max_connections: 256,
            grpc_max_concurrent_streams: 16,
            grpc_max_concurrent_exports: 4,
            grpc_request_timeout_s: 30,
            grpc_handshake_timeout_s: 10,
            grpc_max_connection_age_s: 300,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Purge runs that started more than this many days ago; unset keeps everything.
    pub days: Option<u32>,
    pub interval_s: u64,
    pub batch_size: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            days: None,
            interval_s: 3600,
            batch_size: 1000,
        }
    }
}

/// Drift detection (docs/drift.md): the ingest role compares every active baseline with the
/// window that just ended, every `interval_s`; the thresholds are the original's.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DriftConfig {
    /// Whether the ingest role detects on its own (`agenttracer drift detect` works either way).
    pub enabled: bool,
    pub interval_s: u64,
    /// The observation window: the last `window_s` seconds, up to now.
    pub window_s: u64,
    /// Fewer runs than this in the window: no detection for that baseline this time.
    pub min_sample_size: u32,
    pub decision_p_value: f64,
    pub decision_min_delta_percent: f64,
    pub signal_p_value: f64,
    pub signal_min_delta_percent: f64,
    pub latency_min_delta_percent: f64,
    /// |Δ %| up to this is `low`, up to `medium_max_delta_percent` `medium`, above `high`.
    pub low_max_delta_percent: f64,
    pub medium_max_delta_percent: f64,
}

impl Default for DriftConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_s: 3600,
            window_s: 86_400,
            min_sample_size: 100,
            decision_p_value: 0.05,
            decision_min_delta_percent: 10.0,
            signal_p_value: 0.05,
            signal_min_delta_percent: 15.0,
            latency_min_delta_percent: 20.0,
            low_max_delta_percent: 15.0,
            medium_max_delta_percent: 30.0,
        }
    }
}

/// The web UI the query role serves (docs/ui.md).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    /// Whether the query role serves the UI.
    pub enabled: bool,
    /// The path prefix the UI lives under: empty for `/`, or `/prefix` behind a proxy that
    /// forwards that prefix. The JSON API stays at `/v1/...` either way.
    pub base_path: String,
    /// How long a UI session lasts after login (with query keys).
    pub session_ttl_s: u64,
    /// The key that signs session cookies (at least 32 characters). Unset, one is generated at
    /// each start: sessions then end at a restart, and hold on that one process only.
    pub session_secret: Option<Secret>,
    /// Where the UI's write actions (create a baseline, activate, resolve) send their requests:
    /// the ingest role's base URL (`http://127.0.0.1:8000`). Empty: the UI's own origin, which
    /// is right behind a proxy that routes writes to the ingest role (deploy/nginx).
    pub ingest_url: String,
}

impl UiConfig {
    /// The origin of `ingest_url` (`scheme://host:port`), when it is set.
    pub fn ingest_origin(&self) -> Option<String> {
        let url = url::Url::parse(&self.ingest_url).ok()?;
        Some(url.origin().ascii_serialization()).filter(|o| o != "null")
    }
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            base_path: String::new(),
            session_ttl_s: 12 * 3600,
            session_secret: None,
            ingest_url: String::new(),
        }
    }
}

//! Configuration: built-in defaults → `config/agenttracer.toml` (or `--config FILE`) → the original
//! design's plain environment names → `AGENTTRACER_*` (nested with `__`) → command-line flags.
//!
//! Unknown keys are an error naming the key. Secrets ([`Secret`], [`SecretList`], database URLs)
//! print masked, so `agenttracer config` and `Debug` output never reveal them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::role::Role;

/// The default configuration file, read when it exists and no `--config` is given.
pub const DEFAULT_CONFIG_FILE: &str = "config/agenttracer.toml";

/// The original deployment's environment names and the keys they set.
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
    pub otlp: OtlpConfig,
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
            url: DatabaseUrl(
                "postgresql://postgres:postgres@localhost:5433/agent_observability".into(),
            ),
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

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrivacyMode {
    /// Reject only what the original service refused too; redact every other violation.
    #[default]
    Compat,
    /// Reject every violation (422 naming the key path and the rule).
    Reject,
    /// Redact every violation and store the run.
    Redact,
    /// Store everything.
    Off,
}

impl PrivacyMode {
    /// On OTLP nothing is rejected (an exporter cannot fix one span): whether an offending
    /// attribute is redacted (`redact`, `compat`) rather than dropped (`reject`).
    pub fn redacts_attributes(self) -> bool {
        matches!(self, PrivacyMode::Redact | PrivacyMode::Compat)
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
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            list_max_steps_per_run: 1000,
            list_max_step_bytes: 8 * 1024 * 1024,
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
            .merge(Env::prefixed("AGENTTRACER_").map(|key| {
                // `AGENTTRACER_ROLE` is the documented short form of `server.role`.
                if key.as_str().eq_ignore_ascii_case("role") {
                    "server.role".into()
                } else {
                    key.as_str().replace("__", ".").into()
                }
            }));
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

    /// The effective configuration as TOML, secrets masked.
    pub fn to_masked_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
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

/// Accepts any scalar as a string: figment reads `API_KEY=12345` as a number.
fn scalar_to_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        S(String),
        I(i64),
        U(u64),
        F(f64),
        B(bool),
    }
    Ok(match Scalar::deserialize(d)? {
        Scalar::S(s) => s,
        Scalar::I(i) => i.to_string(),
        Scalar::U(u) => u.to_string(),
        Scalar::F(f) => f.to_string(),
        Scalar::B(b) => b.to_string(),
    })
}

/// A list given as an array, or as one comma-separated string (as environment variables are).
fn comma_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<Item>),
        One(Item),
    }
    #[derive(Deserialize)]
    struct Item(#[serde(deserialize_with = "scalar_to_string")] String);
    let items = match OneOrMany::deserialize(d)? {
        OneOrMany::Many(items) => items.into_iter().map(|i| i.0).collect(),
        OneOrMany::One(Item(s)) => s.split(',').map(str::to_owned).collect::<Vec<_>>(),
    };
    Ok(items
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect())
}

/// A plain list of strings: an array, or one comma-separated string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StringList(#[serde(deserialize_with = "comma_list")] pub Vec<String>);

/// A list of secrets (API keys); prints as `["***", …]`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretList(#[serde(deserialize_with = "comma_list")] Vec<String>);

impl SecretList {
    pub fn new(keys: Vec<String>) -> Self {
        Self(keys)
    }

    pub fn expose(&self) -> &[String] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} masked]", self.0.len())
    }
}

impl Serialize for SecretList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|_| "***"))
    }
}

/// A PostgreSQL URL whose password prints as `***`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(#[serde(deserialize_with = "scalar_to_string")] pub String);

impl DatabaseUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password (and any `password=` parameter) replaced by `***`.
    pub fn masked(&self) -> String {
        mask_url(&self.0)
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.masked())
    }
}

/// Masks the userinfo password and a `password=` query parameter of a URL.
pub fn mask_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        let authority_end = out[rest..].find(['/', '?']).map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@') {
            let userinfo = &out[rest..rest + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest + colon + 1..rest + at, "***");
            }
        }
    }
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let masked: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{head}{}", masked.join("&"));
    }
    out
}

/// One `server.trusted_proxies` entry: an address (a range of one) or a CIDR range.
pub fn parse_proxy(entry: &str) -> Option<ipnet::IpNet> {
    let entry = entry.trim();
    entry.parse::<ipnet::IpNet>().ok().or_else(|| {
        entry
            .parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

#[cfg(test)]
#[expect(
    clippy::result_large_err,
    reason = "figment's Jail closures return figment::Error"
)]
mod tests {
    use super::*;
    use figment::Jail;

    fn load(jail: &Jail) -> Result<Config, ConfigError> {
        let _ = jail;
        Config::load(None, None)
    }

    #[test]
    fn defaults_match_the_original_deployment() {
        Jail::expect_with(|jail| {
            let c = load(jail).map_err(|e| e.to_string())?;
            assert_eq!(
                c.database.url.expose(),
                "postgresql://postgres:postgres@localhost:5433/agent_observability"
            );
            assert_eq!((c.server.ingest_port, c.server.query_port), (8000, 8001));
            assert_eq!(c.server.role, Role::All);
            assert_eq!(c.server.max_body_bytes, 10 * 1024 * 1024);
            assert_eq!(c.database.acquire_timeout_ms, 2000);
            assert_eq!(c.database.statement_timeout_ms, 5000);
            assert_eq!(c.database.lock_timeout_ms, 2000);
            assert!(c.database.migrate_on_start);
            assert_eq!(c.privacy.mode, PrivacyMode::Compat);
            assert!(c.auth.ingest_keys.is_empty());
            Ok(())
        });
    }

    #[test]
    fn layers_apply_in_order_file_plain_env_prefixed_env_flag() {
        Jail::expect_with(|jail| {
            jail.create_dir("config")?;
            jail.create_file(
                DEFAULT_CONFIG_FILE,
                r#"
                [server]
                ingest_port = 9000
                query_port = 9001
                role = "query"
                [database]
                pool_size = 3
                "#,
            )?;
            let c = load(jail).map_err(|e| e.to_string())?;
            assert_eq!(c.server.ingest_port, 9000);
            assert_eq!(c.server.role, Role::Query);

            jail.set_env("INGEST_API_PORT", "9100");
            jail.set_env("DATABASE_POOL_SIZE", "4");
            jail.set_env("DATABASE_MAX_OVERFLOW", "6");
            let c = load(jail).map_err(|e| e.to_string())?;
            assert_eq!(c.server.ingest_port, 9100);
            assert_eq!(c.server.query_port, 9001);
            assert_eq!(c.database.max_connections(), 10);

            jail.set_env("AGENTTRACER_SERVER__INGEST_PORT", "9200");
            jail.set_env("AGENTTRACER_DATABASE__POOL_SIZE", "5");
            jail.set_env("AGENTTRACER_ROLE", "ingest");
            let c = load(jail).map_err(|e| e.to_string())?;
            assert_eq!(c.server.ingest_port, 9200);
            assert_eq!(c.database.pool_size, 5);
            assert_eq!(c.server.role, Role::Ingest);

            let c = Config::load(None, Some(Role::All)).map_err(|e| e.to_string())?;
            assert_eq!(c.server.role, Role::All);
            Ok(())
        });
    }

    #[test]
    fn plain_names_of_the_original_work() {
        Jail::expect_with(|jail| {
            jail.set_env("DATABASE_URL", "postgresql://w:pw@db:5432/x");
            jail.set_env("DATABASE_READ_URL", "postgresql://r:rpw@replica:5432/x");
            jail.set_env("API_KEY", "12345");
            jail.set_env("LOG_LEVEL", "WARNING");
            jail.set_env("LOG_FORMAT", "json");
            jail.set_env("QUERY_API_HOST", "127.0.0.1");
            let c = load(jail).map_err(|e| e.to_string())?;
            assert_eq!(c.database.url.expose(), "postgresql://w:pw@db:5432/x");
            assert_eq!(
                c.database.read_url.as_ref().map(DatabaseUrl::expose),
                Some("postgresql://r:rpw@replica:5432/x")
            );
            assert_eq!(c.auth.ingest_keys.expose(), ["12345"]);
            assert_eq!(c.auth.query_keys.expose(), ["12345"]);
            assert_eq!(normalize_level(&c.log.level), "warn");
            assert_eq!(c.log.format, LogFormat::Json);
            assert_eq!(c.server.query_host, "127.0.0.1");
            Ok(())
        });
    }

    #[test]
    fn key_lists_accept_commas_and_arrays() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "custom.toml",
                "[auth]\ningest_keys = [\"a\", \"b\"]\n[server]\ncors_origins = \"*\"\n",
            )?;
            jail.set_env("AGENTTRACER_AUTH__QUERY_KEYS", "x, y");
            let c =
                Config::load(Some(Path::new("custom.toml")), None).map_err(|e| e.to_string())?;
            assert_eq!(c.auth.ingest_keys.expose(), ["a", "b"]);
            assert_eq!(c.auth.query_keys.expose(), ["x", "y"]);
            assert_eq!(c.server.cors_origins.0, ["*"]);
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        Jail::expect_with(|jail| {
            jail.create_dir("config")?;
            jail.create_file(DEFAULT_CONFIG_FILE, "[server]\ningest_prot = 1\n")?;
            let err = load(jail).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("ingest_prot"), "{err}");

            jail.create_file(DEFAULT_CONFIG_FILE, "[databse]\nurl = \"x\"\n")?;
            let err = load(jail).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("databse"), "{err}");

            jail.create_file(DEFAULT_CONFIG_FILE, "")?;
            jail.set_env("AGENTTRACER_DATABASE__POOLSIZE", "3");
            let err = load(jail).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("poolsize"), "{err}");
            Ok(())
        });
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        Jail::expect_with(|_| {
            let err = Config::load(Some(Path::new("nope.toml")), None);
            assert!(matches!(err, Err(ConfigError::MissingFile(_))));
            Ok(())
        });
    }

    #[test]
    fn secrets_are_masked_when_printed() {
        Jail::expect_with(|jail| {
            jail.set_env(
                "DATABASE_URL",
                "postgresql://user:s3cret@db/x?password=other",
            );
            jail.set_env("API_KEY", "key-abcdef");
            let c = load(jail).map_err(|e| e.to_string())?;
            let printed = c.to_masked_toml();
            let debugged = format!("{c:?}");
            for out in [&printed, &debugged] {
                assert!(!out.contains("s3cret") && !out.contains("other"), "{out}");
                assert!(!out.contains("key-abcdef"), "{out}");
            }
            assert!(
                printed.contains("postgresql://user:***@db/x?password=***"),
                "{printed}"
            );
            Ok(())
        });
    }

    #[test]
    fn the_shipped_file_is_the_defaults_and_documents_every_key() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/",
            "config/agenttracer.toml"
        ))
        .unwrap_or_default();
        let shipped: Config = Figment::new()
            .merge(Toml::string(&text))
            .extract()
            .map_err(|e| e.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(shipped.to_masked_toml(), Config::default().to_masked_toml());
        let defaults = toml::Value::try_from(Config::default()).unwrap_or_else(|e| panic!("{e}"));
        let mut sections = vec![
            "server",
            "database",
            "auth",
            "log",
            "privacy",
            "ingest",
            "query",
            "retention",
            "otlp",
        ];
        sections.sort_unstable();
        let table = defaults.as_table().cloned().unwrap_or_default();
        let mut found: Vec<&str> = table.keys().map(String::as_str).collect();
        found.sort_unstable();
        assert_eq!(found, sections, "a section is missing from this test");
        let optional = ["workers", "read_url", "days", "ssl_root_cert"];
        for (section, keys) in &table {
            assert!(
                text.contains(&format!("[{section}]")),
                "[{section}] undocumented"
            );
            let keys: Vec<&String> = keys
                .as_table()
                .map(|t| t.keys().collect())
                .unwrap_or_default();
            for key in keys
                .into_iter()
                .map(String::as_str)
                .chain(optional.iter().copied().filter(|k| {
                    matches!(
                        (section.as_str(), *k),
                        ("server", "workers")
                            | ("database", "read_url" | "ssl_root_cert")
                            | ("retention", "days")
                    )
                }))
            {
                let documented = text.contains(&format!("\n{key} = "))
                    || text.contains(&format!("\n# {key} = "));
                assert!(
                    documented,
                    "{section}.{key} is not in config/agenttracer.toml"
                );
            }
        }
    }

    #[test]
    fn mask_url_handles_urls_without_password() {
        assert_eq!(mask_url("postgresql://u@h/db"), "postgresql://u@h/db");
        assert_eq!(mask_url("postgresql://h/db"), "postgresql://h/db");
        assert_eq!(mask_url("postgresql://u:p@h/db"), "postgresql://u:***@h/db");
    }

    #[test]
    fn invalid_values_are_rejected() {
        Jail::expect_with(|jail| {
            jail.set_env("LOG_LEVEL", "loud");
            assert!(load(jail).is_err());
            jail.set_env("LOG_LEVEL", "info");
            jail.set_env("AGENTTRACER_SERVER__MAX_BODY_BYTES", "0");
            assert!(load(jail).is_err());
            Ok(())
        });
    }
}

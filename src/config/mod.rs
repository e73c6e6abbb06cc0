//! Configuration: built-in defaults → `config/agenttracer.toml` (or `--config FILE`) → the original
//! design's plain environment names → `AGENTTRACER_*` (nested with `__`) → command-line flags.
//!
//! Unknown keys are an error naming the key. Secrets (API keys in a [`SecretList`], the passwords
//! of a [`DatabaseUrl`], alert URLs in a [`SecretUrl`]) are `secrecy` secrets that print masked, so `agenttracer config` and
//! `Debug` output never reveal them. Database URLs are parsed when the configuration loads, once.

mod alerts;
mod cost;
mod db_url;
mod load;
mod sections;
mod values;

pub use alerts::{AlertsConfig, HttpUrl, HttpUrlError, PAGERDUTY_EVENTS_URL, SecretUrl};
pub use db_url::{DatabaseUrl, DatabaseUrlError, SslMode};
pub use load::{ConfigError, DEFAULT_CONFIG_FILE, normalize_level};
pub use sections::{
    AuthConfig, Config, CostConfig, DatabaseConfig, DriftConfig, IngestConfig, LogConfig,
    LogFormat, OtlpConfig, PriceConfig, PrivacyConfig, PrivacyMode, QueryConfig, RetentionConfig,
    ServerConfig, UiConfig,
};
pub use values::{Secret, SecretList, StringList, parse_proxy};

#[cfg(test)]
#[expect(
    clippy::result_large_err,
    reason = "figment's Jail closures return figment::Error"
)]
mod tests {
    use super::*;
    use figment::Jail;
    use std::path::Path;

    use figment::Figment;
    use figment::providers::{Format, Toml};

    use secrecy::ExposeSecret;

    use crate::role::Role;

    /// The configuration, with the environment variables `env` set first (the jail keeps them).
    fn load(jail: &mut Jail, env: &[(&str, &str)]) -> Result<Config, String> {
        for (name, value) in env {
            jail.set_env(name, value);
        }
        Config::load(None, None).map_err(|e| e.to_string())
    }

    /// The URL with its password, to compare.
    fn exposed(url: &DatabaseUrl) -> String {
        url.connection_string().expose_secret().to_owned()
    }

    fn keys(list: &SecretList) -> Vec<&str> {
        list.keys().iter().map(|k| k.expose_secret()).collect()
    }

    #[test]
    fn defaults_match_the_original_deployment() {
        Jail::expect_with(|jail| {
            let c = load(jail, &[])?;
            assert_eq!(
                exposed(&c.database.url),
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
            let c = load(jail, &[])?;
            assert_eq!((c.server.ingest_port, c.server.role), (9000, Role::Query));

            let plain = [
                ("INGEST_API_PORT", "9100"),
                ("DATABASE_POOL_SIZE", "4"),
                ("DATABASE_MAX_OVERFLOW", "6"),
            ];
            let c = load(jail, &plain)?;
            let ports = (c.server.ingest_port, c.server.query_port);
            assert_eq!((ports, c.database.max_connections()), ((9100, 9001), 10));

            let prefixed = [
                ("AGENTTRACER_SERVER__INGEST_PORT", "9200"),
                ("AGENTTRACER_DATABASE__POOL_SIZE", "5"),
                ("AGENTTRACER_ROLE", "ingest"),
            ];
            let c = load(jail, &prefixed)?;
            let ingest = (c.server.ingest_port, c.database.pool_size, c.server.role);
            assert_eq!(ingest, (9200, 5, Role::Ingest));

            let c = Config::load(None, Some(Role::All)).map_err(|e| e.to_string())?;
            assert_eq!(c.server.role, Role::All);
            Ok(())
        });
    }

    #[test]
    fn plain_names_of_the_original_work() {
        Jail::expect_with(|jail| {
            let plain = [
                ("DATABASE_URL", "postgresql://w:pw@db:5432/x"),
                ("DATABASE_READ_URL", "postgresql://r:rpw@replica:5432/x"),
                ("API_KEY", "12345"),
                ("LOG_LEVEL", "WARNING"),
                ("LOG_FORMAT", "json"),
                ("QUERY_API_HOST", "127.0.0.1"),
            ];
            let c = load(jail, &plain)?;
            assert_eq!(exposed(&c.database.url), "postgresql://w:pw@db:5432/x");
            assert_eq!(
                c.database.read_url.as_ref().map(exposed).as_deref(),
                Some("postgresql://r:rpw@replica:5432/x")
            );
            assert_eq!(keys(&c.auth.ingest_keys), ["12345"]);
            assert_eq!(keys(&c.auth.query_keys), ["12345"]);
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
            assert_eq!(keys(&c.auth.ingest_keys), ["a", "b"]);
            assert_eq!(keys(&c.auth.query_keys), ["x", "y"]);
            assert_eq!(c.server.cors_origins.0, ["*"]);
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_key() {
        Jail::expect_with(|jail| {
            jail.create_dir("config")?;
            jail.create_file(DEFAULT_CONFIG_FILE, "[server]\ningest_prot = 1\n")?;
            let err = load(jail, &[]).err().unwrap_or_default();
            assert!(err.contains("ingest_prot"), "{err}");

            jail.create_file(DEFAULT_CONFIG_FILE, "[databse]\nurl = \"x\"\n")?;
            let err = load(jail, &[]).err().unwrap_or_default();
            assert!(err.contains("databse"), "{err}");

            jail.create_file(DEFAULT_CONFIG_FILE, "")?;
            let misspelt = [("AGENTTRACER_DATABASE__POOLSIZE", "3")];
            let err = load(jail, &misspelt).err().unwrap_or_default();
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
            let url = "postgresql://user:s3cret@db/x?password=other";
            let alerts = [
                (
                    "AGENTTRACER_ALERTS__SLACK_WEBHOOK_URL",
                    "https://hooks.slack.com/services/T/B/tok-slack",
                ),
                ("AGENTTRACER_ALERTS__PAGERDUTY_ROUTING_KEY", "tok-pagerduty"),
                (
                    "AGENTTRACER_ALERTS__WEBHOOK_URL",
                    "https://hooks.example:8443/x?token=tok-hook",
                ),
            ];
            for (name, value) in alerts {
                jail.set_env(name, value);
            }
            let c = load(jail, &[("DATABASE_URL", url), ("API_KEY", "key-abcdef")])?;
            let printed = c.to_masked_toml();
            let debugged = format!("{c:?}");
            for out in [&printed, &debugged] {
                assert!(!out.contains("s3cret") && !out.contains("other"), "{out}");
                assert!(!out.contains("key-abcdef"), "{out}");
                assert!(!out.contains("tok-"), "{out}");
            }
            assert!(
                printed.contains("slack_webhook_url = \"https://hooks.slack.com/***\"")
                    && printed.contains("pagerduty_routing_key = \"***\"")
                    && printed.contains("webhook_url = \"https://hooks.example:8443/***\""),
                "{printed}"
            );
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
            "drift",
            "otlp",
            "ui",
            "alerts",
            "cost",
        ];
        sections.sort_unstable();
        let table = defaults.as_table().cloned().unwrap_or_default();
        let mut found: Vec<&str> = table.keys().map(String::as_str).collect();
        found.sort_unstable();
        assert_eq!(found, sections, "a section is missing from this test");
        let optional = [
            "workers",
            "read_url",
            "days",
            "ssl_root_cert",
            "session_secret",
            "slack_webhook_url",
            "pagerduty_routing_key",
            "webhook_url",
        ];
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
                            | ("ui", "session_secret")
                            | (
                                "alerts",
                                "slack_webhook_url" | "pagerduty_routing_key" | "webhook_url"
                            )
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

    /// The alert channels and the secrets they hold, as `(slack, pagerduty key, webhook)`.
    fn alert_secrets(c: &Config) -> (Option<&str>, Option<&str>, Option<&str>) {
        let a = &c.alerts;
        (
            a.slack_webhook_url
                .as_ref()
                .map(|u| u.secret().expose_secret()),
            a.pagerduty_routing_key
                .as_ref()
                .map(|k| k.secret().expose_secret()),
            a.webhook_url.as_ref().map(|u| u.secret().expose_secret()),
        )
    }

    #[test]
    fn the_originals_phase3_variables_turn_alert_channels_on() {
        Jail::expect_with(|jail| {
            let c = load(jail, &[])?;
            assert_eq!(alert_secrets(&c), (None, None, None), "off by default");
            assert_eq!(
                c.alerts.pagerduty_events_url.as_str(),
                "https://events.pagerduty.com/v2/enqueue"
            );
            assert_eq!(c.alerts.request_timeout().as_secs(), 10, "as the original");

            // A channel is on when its switch is "true" in any case and its value is set.
            let on = [
                ("PHASE3_SLACK_ENABLED", "True"),
                (
                    "PHASE3_SLACK_WEBHOOK_URL",
                    "https://hooks.slack.com/services/T/B/x",
                ),
                ("PHASE3_PAGERDUTY_ENABLED", "TRUE"),
                ("PHASE3_PAGERDUTY_ROUTING_KEY", "rk-123"),
                ("PHASE3_WEBHOOK_ENABLED", "true"),
                ("PHASE3_WEBHOOK_URL", "http://hooks.local:9000/drift"),
            ];
            let c = load(jail, &on)?;
            let all = (
                Some("https://hooks.slack.com/services/T/B/x"),
                Some("rk-123"),
                Some("http://hooks.local:9000/drift"),
            );
            assert_eq!(alert_secrets(&c), all);

            // Any other switch value, or an empty value, leaves the channel off.
            let off = [
                ("PHASE3_SLACK_ENABLED", "yes"),
                ("PHASE3_PAGERDUTY_ENABLED", "1"),
                ("PHASE3_WEBHOOK_URL", ""),
            ];
            let c = load(jail, &off)?;
            assert_eq!(alert_secrets(&c), (None, None, None));

            // The file is below them, AGENTTRACER_ALERTS__* above them; a switch that is off
            // does not turn off what the file configures.
            jail.create_dir("config")?;
            jail.create_file(
                DEFAULT_CONFIG_FILE,
                "[alerts]\nslack_webhook_url = \"https://file.example/s\"\nwebhook_url = \"https://file.example/w\"\n",
            )?;
            let env = [
                ("PHASE3_SLACK_ENABLED", "true"),
                ("PHASE3_SLACK_WEBHOOK_URL", "https://phase3.example/s"),
                ("PHASE3_WEBHOOK_ENABLED", "false"),
                ("PHASE3_PAGERDUTY_ENABLED", "true"),
                ("PHASE3_PAGERDUTY_ROUTING_KEY", "rk-phase3"),
                ("AGENTTRACER_ALERTS__PAGERDUTY_ROUTING_KEY", "rk-ours"),
            ];
            let c = load(jail, &env)?;
            let layered = (
                Some("https://phase3.example/s"),
                Some("rk-ours"),
                Some("https://file.example/w"),
            );
            assert_eq!(alert_secrets(&c), layered);
            Ok(())
        });
    }

    #[test]
    fn alert_settings_are_checked_naming_the_key_never_the_url() {
        Jail::expect_with(|jail| {
            let cases = [
                (
                    "AGENTTRACER_ALERTS__WEBHOOK_URL",
                    "not a url/s3cret",
                    "alerts.webhook_url",
                ),
                (
                    "AGENTTRACER_ALERTS__SLACK_WEBHOOK_URL",
                    "ftp://h/s3cret",
                    "alerts.slack_webhook_url",
                ),
                (
                    "AGENTTRACER_ALERTS__PAGERDUTY_EVENTS_URL",
                    "localhost:9/s3cret",
                    "alerts.pagerduty_events_url",
                ),
                (
                    "AGENTTRACER_ALERTS__PAGERDUTY_ROUTING_KEY",
                    " ",
                    "alerts.pagerduty_routing_key",
                ),
                (
                    "AGENTTRACER_ALERTS__MAX_ATTEMPTS",
                    "0",
                    "alerts.max_attempts",
                ),
                (
                    "AGENTTRACER_ALERTS__BACKOFF_MAX_MS",
                    "10",
                    "alerts.backoff_max_ms",
                ),
                (
                    "AGENTTRACER_ALERTS__POLL_INTERVAL_MS",
                    "1",
                    "alerts.poll_interval_ms",
                ),
            ];
            for (name, value, key) in cases {
                let err = load(jail, &[(name, value)]).err().unwrap_or_default();
                // (figment names a key from the environment in the variable's case.)
                assert!(err.to_lowercase().contains(key), "{name}: {err}");
                assert!(!err.contains("s3cret"), "{err}");
                jail.clear_env();
            }
            let bad = [
                ("PHASE3_WEBHOOK_ENABLED", "true"),
                ("PHASE3_WEBHOOK_URL", "s3cret"),
            ];
            let err = load(jail, &bad).err().unwrap_or_default();
            assert!(
                err.contains("alerts.webhook_url") && !err.contains("s3cret"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn the_scripts_own_variables_are_not_configuration() {
        Jail::expect_with(|jail| {
            let env = [
                ("AGENTTRACER_PGPORT", "5434"),
                ("AGENTTRACER_PGDATA", "/tmp/pg"),
                ("AGENTTRACER_SMOKE_NS", "1"),
            ];
            assert!(load(jail, &env).is_ok());
            assert!(load(jail, &[("AGENTTRACER_PGHOST", "x")]).is_err());
            Ok(())
        });
    }

    #[test]
    fn invalid_values_are_rejected() {
        Jail::expect_with(|jail| {
            assert!(load(jail, &[("LOG_LEVEL", "loud")]).is_err());
            let body = ("AGENTTRACER_SERVER__MAX_BODY_BYTES", "0");
            assert!(load(jail, &[("LOG_LEVEL", "info"), body]).is_err());
            Ok(())
        });
    }

    #[test]
    fn the_ui_ingest_url_is_an_origin_or_empty() {
        Jail::expect_with(|jail| {
            let var = "AGENTTRACER_UI__INGEST_URL";
            let c = load(jail, &[(var, "http://localhost:8000")])?;
            assert_eq!(
                c.ui.ingest_origin().as_deref(),
                Some("http://localhost:8000")
            );
            let c = load(jail, &[(var, "https://ingest.example.com/base")])?;
            assert_eq!(
                c.ui.ingest_origin().as_deref(),
                Some("https://ingest.example.com")
            );
            for bad in [
                "localhost:8000",
                "ftp://x",
                "http://x/",
                "http://x?y",
                "http://x'; script-src *",
            ] {
                assert!(load(jail, &[(var, bad)]).is_err(), "{bad}");
            }
            assert_eq!(load(jail, &[(var, "")])?.ui.ingest_origin(), None);
            Ok(())
        });
    }
}

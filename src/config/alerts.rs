//! The `[alerts]` section: where drift alerts go (Slack, PagerDuty Events v2, a generic webhook)
//! and how their delivery is retried (docs/alerts.md); and the original's `PHASE3_*` environment
//! names for the same channels.
//!
//! The URLs of Slack and of a webhook carry their token in the path, and a PagerDuty routing key
//! is a credential: they are secrets, parsed when the configuration loads and printed masked.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use figment::providers::Serialized;
use figment::value::{Dict, Map};
use figment::{Metadata, Profile, Provider};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

use super::values::{Secret, scalar_to_string};

/// PagerDuty's Events API v2 endpoint, as the original posted to.
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// A Slack incoming-webhook URL; set, drift alerts go to Slack.
    pub slack_webhook_url: Option<SecretUrl>,
    /// A PagerDuty Events v2 integration's routing key; set, drift alerts trigger PagerDuty events.
    pub pagerduty_routing_key: Option<Secret>,
    /// Where PagerDuty events are posted (PagerDuty's own endpoint unless overridden).
    pub pagerduty_events_url: HttpUrl,
    /// A URL that gets every drift alert as JSON; set, the generic webhook is on.
    pub webhook_url: Option<SecretUrl>,
    /// One delivery's time limit (connect, send, answer), as the original's 10 s.
    pub request_timeout_ms: u64,
    /// Deliveries of one alert to one channel before it is given up (`failed`).
    pub max_attempts: u32,
    /// The wait after a first failed delivery, doubled after each further one, up to
    /// `backoff_max_ms`.
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    /// How often the ingest role looks for alerts that are due.
    pub poll_interval_ms: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            slack_webhook_url: None,
            pagerduty_routing_key: None,
            pagerduty_events_url: HttpUrl::parse(PAGERDUTY_EVENTS_URL)
                .unwrap_or_else(|e| panic!("the default PagerDuty URL: {e}")),
            webhook_url: None,
            request_timeout_ms: 10_000,
            max_attempts: 6,
            backoff_initial_ms: 30_000,
            backoff_max_ms: 600_000,
            poll_interval_ms: 1000,
        }
    }
}

impl AlertsConfig {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    /// The wait before the next delivery after `attempts` failed ones (at least 1):
    /// `backoff_initial_ms · 2^(attempts−1)`, at most `backoff_max_ms`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(62);
        let ms = self
            .backoff_initial_ms
            .saturating_mul(1u64 << doublings)
            .min(self.backoff_max_ms);
        Duration::from_millis(ms)
    }

    /// Checks the values against each other; the error names the key.
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.request_timeout_ms == 0 || self.max_attempts == 0 {
            return Err(
                "alerts.request_timeout_ms and alerts.max_attempts must be at least 1".into(),
            );
        }
        if self.backoff_initial_ms == 0 || self.backoff_max_ms < self.backoff_initial_ms {
            return Err(
                "alerts.backoff_initial_ms must be at least 1, alerts.backoff_max_ms at least alerts.backoff_initial_ms"
                    .into(),
            );
        }
        if self.poll_interval_ms < 10 {
            return Err("alerts.poll_interval_ms must be at least 10".into());
        }
        if let Some(key) = &self.pagerduty_routing_key
            && key.secret().expose_secret().trim().is_empty()
        {
            return Err("alerts.pagerduty_routing_key must not be empty (leave it unset to turn PagerDuty off)".into());
        }
        Ok(())
    }
}

/// The original's channel switches and the keys their values set: a channel is on when its
/// `*_ENABLED` is `true` (any case) and its URL or key is set and not empty, as the original read
/// them (`os.getenv(...).lower() == "true"`).
const PHASE3_ENV: &[(&str, &str, &str)] = &[
    (
        "PHASE3_SLACK_ENABLED",
        "PHASE3_SLACK_WEBHOOK_URL",
        "slack_webhook_url",
    ),
    (
        "PHASE3_PAGERDUTY_ENABLED",
        "PHASE3_PAGERDUTY_ROUTING_KEY",
        "pagerduty_routing_key",
    ),
    (
        "PHASE3_WEBHOOK_ENABLED",
        "PHASE3_WEBHOOK_URL",
        "webhook_url",
    ),
];

/// The `[alerts]` keys the original's `PHASE3_*` variables set: the layer of the original's
/// environment names (above the file, below `AGENTTRACER_*`). A switch that is not `true` sets
/// nothing, so it never turns off a channel the file configures.
pub(super) struct Phase3Env;

impl Provider for Phase3Env {
    fn metadata(&self) -> Metadata {
        Metadata::named("the original's PHASE3_* environment variable(s)")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let var = |name: &str| std::env::var(name).ok();
        let keys: BTreeMap<&'static str, String> = PHASE3_ENV
            .iter()
            .filter(|(on, _, _)| var(on).is_some_and(|v| v.eq_ignore_ascii_case("true")))
            .filter_map(|(_, value, key)| {
                let value = var(value)?;
                (!value.trim().is_empty()).then(|| (*key, value.trim().to_owned()))
            })
            .collect();
        let mut layer = BTreeMap::new();
        if !keys.is_empty() {
            layer.insert("alerts", keys);
        }
        Serialized::defaults(layer).data()
    }
}

/// Why a URL was refused. Never quotes the URL: it may hold a token.
#[derive(Debug, thiserror::Error)]
pub enum HttpUrlError {
    #[error("not a URL: {0}")]
    Syntax(#[from] url::ParseError),
    #[error("the scheme must be http:// or https://")]
    Scheme,
}

fn parse_http(text: &str) -> Result<Url, HttpUrlError> {
    let url = Url::parse(text.trim())?;
    match url.scheme() {
        // (`url` gives every http(s) URL a host.)
        "http" | "https" => Ok(url),
        _ => Err(HttpUrlError::Scheme),
    }
}

/// An `http://` or `https://` URL, checked when the configuration loads.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpUrl(Url);

impl HttpUrl {
    pub fn parse(text: &str) -> Result<Self, HttpUrlError> {
        parse_http(text).map(Self)
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Debug for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl Serialize for HttpUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&scalar_to_string(d)?).map_err(|e| serde::de::Error::custom(e.to_string()))
    }
}

/// An `http(s)` URL that holds a token (a Slack or webhook URL): checked when the configuration
/// loads, kept as a secret, printed as `https://host/***`. Only a delivery reads it whole.
#[derive(Clone)]
pub struct SecretUrl {
    url: SecretString,
    masked: String,
}

impl SecretUrl {
    pub fn parse(text: &str) -> Result<Self, HttpUrlError> {
        let url = parse_http(text)?;
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        let host = url.host_str().unwrap_or_default();
        let masked = format!("{}://{host}{port}/***", url.scheme());
        Ok(Self {
            url: SecretString::from(String::from(url)),
            masked,
        })
    }

    /// The URL whole, to send to.
    pub fn secret(&self) -> &SecretString {
        &self.url
    }

    /// The scheme, host and port, the rest as `***`.
    pub fn masked(&self) -> &str {
        &self.masked
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked)
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.masked)
    }
}

impl<'de> Deserialize<'de> for SecretUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&scalar_to_string(d)?).map_err(|e| serde::de::Error::custom(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_secret_ones_masked() {
        let url = SecretUrl::parse("https://hooks.slack.com/services/T0/B0/s3cret").unwrap();
        assert_eq!(url.masked(), "https://hooks.slack.com/***");
        assert_eq!(format!("{url:?}"), "https://hooks.slack.com/***");
        assert_eq!(
            url.secret().expose_secret(),
            "https://hooks.slack.com/services/T0/B0/s3cret"
        );
        let local = SecretUrl::parse("http://127.0.0.1:9000/hook?token=s3cret").unwrap();
        assert_eq!(local.masked(), "http://127.0.0.1:9000/***");
        for bad in [
            "hooks.slack.com/s3cret",
            "ftp://host/s3cret",
            "https://host:port/s3cret",
            "",
        ] {
            let err = SecretUrl::parse(bad).err().map(|e| e.to_string());
            let err = err.unwrap_or_else(|| panic!("{bad} was accepted"));
            assert!(!err.contains("s3cret"), "{err}");
        }
        assert!(HttpUrl::parse(PAGERDUTY_EVENTS_URL).is_ok());
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let cfg = AlertsConfig {
            backoff_initial_ms: 100,
            backoff_max_ms: 1000,
            ..AlertsConfig::default()
        };
        let ms: Vec<u128> = (1..=6).map(|n| cfg.backoff(n).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(cfg.backoff(u32::MAX).as_millis(), 1000);
        assert_eq!(cfg.backoff(0).as_millis(), 100);
    }
}

//! [`DatabaseUrl`]: a PostgreSQL URL, parsed once (with the `url` crate) when the configuration
//! loads. Its secrets (the password, a `password=` parameter) are kept apart as
//! [`SecretString`]s, so that the URL prints, logs and serializes with `***` in their place; the
//! pools read its `sslmode` from here and get the URL with its password back only to connect
//! ([`DatabaseUrl::connection_string`]).

use std::fmt;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

use super::values::scalar_to_string;

/// What stands in for a secret when a URL is printed.
const MASK: &str = "***";

/// A URL's `sslmode` (libpq's names; any case).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Option<Self> {
        Some(match value.to_ascii_lowercase().as_str() {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether connections must use TLS: `require`, `verify-ca`, `verify-full`. All three verify
    /// the server's certificate and host name (src/db/tls.rs, docs/operations.md).
    pub fn wants_tls(self) -> bool {
        matches!(
            self,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }

    /// The mode as tokio-postgres knows it (`disable`, `prefer`, `require`): connections
    /// without TLS are made without a TLS connector, so `allow` and `prefer` connect in plain.
    fn for_tokio_postgres(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow | SslMode::Prefer => "prefer",
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => "require",
        }
    }
}

/// One `key=value` pair of the URL's query, as written (percent-encoding kept).
#[derive(Clone)]
enum Param {
    SslMode(SslMode),
    /// `sslrootcert=`: the certificate comes from `database.ssl_root_cert` instead, and
    /// tokio-postgres does not know the parameter, so it is not passed on.
    RootCert(String),
    /// A `password=` pair, as written.
    Password(SecretString),
    Other(String),
}

/// Why a database URL was refused. Never quotes the URL: it may hold a password.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseUrlError {
    #[error("not a URL: {0}")]
    Syntax(#[from] url::ParseError),
    #[error("the scheme must be postgres:// or postgresql://")]
    Scheme,
    #[error("a password needs a host")]
    PasswordWithoutHost,
    #[error("sslmode `{0}` is not one of disable, allow, prefer, require, verify-ca, verify-full")]
    SslMode(String),
}

/// A PostgreSQL URL (`postgres://` or `postgresql://`) whose secrets print as `***`.
#[derive(Clone)]
pub struct DatabaseUrl {
    /// Everything but the password and the query.
    base: Url,
    /// The userinfo password, as written (percent-encoded).
    password: Option<SecretString>,
    params: Vec<Param>,
    sslmode: Option<SslMode>,
}

impl FromStr for DatabaseUrl {
    type Err = DatabaseUrlError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut base = Url::parse(text)?;
        if !matches!(base.scheme(), "postgres" | "postgresql") {
            return Err(DatabaseUrlError::Scheme);
        }
        let password = base.password().map(SecretString::from);
        if password.is_some() && base.set_password(None).is_err() {
            return Err(DatabaseUrlError::PasswordWithoutHost);
        }
        let mut params = Vec::new();
        let mut sslmode = None;
        for pair in base.query().unwrap_or_default().split('&') {
            // Told apart by their decoded keys, as tokio-postgres decodes them; kept as written.
            let Some((key, value)) = url::form_urlencoded::parse(pair.as_bytes()).next() else {
                continue;
            };
            let param = match key.to_ascii_lowercase().as_str() {
                "sslmode" => {
                    let mode = SslMode::parse(&value)
                        .ok_or_else(|| DatabaseUrlError::SslMode(value.clone().into_owned()))?;
                    sslmode = Some(mode);
                    Param::SslMode(mode)
                }
                "sslrootcert" => Param::RootCert(pair.to_owned()),
                "password" => Param::Password(SecretString::from(pair)),
                _ => Param::Other(pair.to_owned()),
            };
            params.push(param);
        }
        base.set_query(None);
        Ok(Self {
            base,
            password,
            params,
            sslmode,
        })
    }
}

impl DatabaseUrl {
    /// The URL's `sslmode`, when it sets one.
    pub fn sslmode(&self) -> Option<SslMode> {
        self.sslmode
    }

    /// Whether connections must use TLS (see [`SslMode::wants_tls`]).
    pub fn wants_tls(&self) -> bool {
        self.sslmode.is_some_and(SslMode::wants_tls)
    }

    /// The host the URL names, if any (a socket directory may come as `?host=` instead).
    pub fn host(&self) -> Option<&str> {
        self.base.host_str().filter(|h| !h.is_empty())
    }

    /// The URL with `***` for its secrets: what `Display`, `Debug` and serialization show.
    pub fn masked(&self) -> String {
        self.render(false, |param| Some(written(param)))
    }

    /// The URL with its secrets, as tokio-postgres accepts it: `sslmode` as it knows it (a
    /// `verify-*` mode is verified by our TLS setup all the same), no `sslrootcert`. The one
    /// place the password leaves its secret: it is handed to the pool, and to nothing that logs.
    pub fn connection_string(&self) -> SecretString {
        SecretString::from(self.render(true, |param| match param {
            Param::SslMode(mode) => Some(format!("sslmode={}", mode.for_tokio_postgres())),
            Param::RootCert(_) => None,
            Param::Password(pair) => Some(pair.expose_secret().to_owned()),
            Param::Other(pair) => Some(pair.clone()),
        }))
    }

    fn render(&self, reveal: bool, pair: impl Fn(&Param) -> Option<String>) -> String {
        let mut url = self.base.clone();
        if let Some(password) = &self.password {
            let shown = if reveal {
                password.expose_secret()
            } else {
                MASK
            };
            // Kept percent-encoded as written: `%` is not re-encoded in userinfo.
            let _ = url.set_password(Some(shown));
        }
        let query: Vec<String> = self.params.iter().filter_map(pair).collect();
        if !query.is_empty() {
            url.set_query(Some(&query.join("&")));
        }
        url.into()
    }
}

/// A parameter as written, its secrets masked.
fn written(param: &Param) -> String {
    match param {
        Param::SslMode(mode) => format!("sslmode={}", mode.as_str()),
        Param::RootCert(pair) | Param::Other(pair) => pair.clone(),
        Param::Password(_) => format!("password={MASK}"),
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

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar_to_string(d)?
            .parse()
            .map_err(|e: DatabaseUrlError| serde::de::Error::custom(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> DatabaseUrl {
        text.parse()
            .unwrap_or_else(|e| panic!("{text} does not parse: {e}"))
    }

    fn connect(text: &str) -> String {
        parse(text).connection_string().expose_secret().to_owned()
    }

    #[test]
    fn secrets_are_masked_and_given_back_to_connect() {
        for (url, masked) in [
            ("postgresql://u@h/db", "postgresql://u@h/db"),
            ("postgresql://h/db", "postgresql://h/db"),
            ("postgresql://u:p@h/db", "postgresql://u:***@h/db"),
            (
                "postgres://u:p%40ss%2F@h:5433/db?password=x&application_name=a%20b",
                "postgres://u:***@h:5433/db?password=***&application_name=a%20b",
            ),
            (
                "postgresql:///db?host=/run/postgresql",
                "postgresql:///db?host=/run/postgresql",
            ),
            (
                "postgresql://h/db?PASS%57ORD=s3",
                "postgresql://h/db?password=***",
            ),
        ] {
            assert_eq!(parse(url).masked(), masked);
            assert_eq!(parse(url).to_string(), masked);
            assert_eq!(format!("{:?}", parse(url)), masked);
            assert_eq!(connect(url), url, "unchanged to connect");
        }
        assert_eq!(
            parse("postgresql://u:p@db.example/x").host(),
            Some("db.example")
        );
        assert_eq!(parse("postgresql:///x?host=/tmp").host(), None);
    }

    #[test]
    fn sslmodes_and_urls() {
        let tls = |url: &str| parse(url).wants_tls();
        assert!(tls("postgresql://u@h/db?sslmode=require"));
        assert!(tls(
            "postgresql://u@h/db?application_name=x&sslmode=verify-full"
        ));
        assert!(tls("postgresql://u@h/db?sslmode=Verify-CA"));
        assert!(!tls("postgresql://u@h/db?sslmode=disable"));
        assert!(!tls("postgresql://u@h/db?sslmode=prefer"));
        assert!(!tls("postgresql://u@h/db"));
        assert_eq!(
            parse("postgresql://u@h/db?sslmode=verify-ca").sslmode(),
            Some(SslMode::VerifyCa)
        );
        assert_eq!(
            connect(
                "postgresql://u@h/db?sslmode=verify-full&sslrootcert=/ca.pem&connect_timeout=5"
            ),
            "postgresql://u@h/db?sslmode=require&connect_timeout=5"
        );
        assert_eq!(
            parse("postgresql://u@h/db?sslmode=verify-full&sslrootcert=/ca.pem").masked(),
            "postgresql://u@h/db?sslmode=verify-full&sslrootcert=/ca.pem"
        );
        assert_eq!(connect("postgresql://u@h/db"), "postgresql://u@h/db");
    }

    #[test]
    fn what_is_not_a_postgresql_url_is_refused_without_quoting_it() {
        for bad in [
            "host=h user=u password=s3cret",
            "mysql://u:s3cret@h/db",
            "postgresql://u:s3cret@h:port/db",
            "postgresql://u:s3cret@h/db?sslmode=sometimes",
            "postgresql://u:s3cret@/db",
        ] {
            let err = bad
                .parse::<DatabaseUrl>()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(!err.is_empty(), "{bad} was accepted");
            assert!(!err.contains("s3cret"), "{err}");
        }
    }
}

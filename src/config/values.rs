//! The value types the sections share: lists given as arrays or comma-separated strings, API keys
//! that print masked, and `server.trusted_proxies` entries (database URLs: [`super::db_url`]).

use std::fmt;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Accepts any scalar as a string: figment reads `API_KEY=12345` as a number.
pub(super) fn scalar_to_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
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

/// A list of secrets (API keys), each a [`SecretString`]; prints as `["***", …]` and debugs as
/// `[N masked]`. Only the key check reads them (src/auth.rs).
#[derive(Clone, Default)]
pub struct SecretList(Vec<SecretString>);

impl SecretList {
    pub fn new(keys: Vec<String>) -> Self {
        Self(keys.into_iter().map(SecretString::from).collect())
    }

    pub fn keys(&self) -> &[SecretString] {
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

impl<'de> Deserialize<'de> for SecretList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        comma_list(d).map(Self::new)
    }
}

/// One secret value (the UI's session signing secret): prints as `***`, debugs as `[masked]`.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(SecretString::from(value))
    }

    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[masked]")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        scalar_to_string(d).map(Self::new)
    }
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

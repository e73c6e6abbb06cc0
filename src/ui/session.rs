//! The UI's sessions when the query listener has keys: the reader gives a key once at `/login`,
//! and gets a cookie `agenttracer_session` (HttpOnly, SameSite=Strict, Secure over TLS) signed
//! with HMAC-SHA256 under `ui.session_secret`.
//!
//! The cookie is `v1.<issued unix seconds>.<key tag>.<signature>`. The key tag names which key
//! logged in without carrying it (an HMAC of the key under the same secret, 8 bytes), so a
//! session ends when its key is removed from `auth.query_keys`, and when `ui.session_ttl_s`
//! passes. Without keys the UI is open, as the API is.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use time::OffsetDateTime;

use secrecy::ExposeSecret;

use crate::auth::key_matches;
use crate::config::SecretList;

/// The cookie's name.
pub const COOKIE: &str = "agenttracer_session";

/// What the UI needs to check sessions: the keys, the signing key, how long a session lasts.
pub struct Sessions {
    keys: SecretList,
    signer: hmac::Key,
    ttl_s: i64,
    /// Where the UI lives (`ui.base_path`), for redirects and the cookie's path.
    base: String,
}

impl Sessions {
    pub fn new(keys: SecretList, secret: &[u8], ttl_s: u64, base: String) -> Sessions {
        Sessions {
            keys,
            signer: hmac::Key::new(hmac::HMAC_SHA256, secret),
            ttl_s: i64::try_from(ttl_s).unwrap_or(i64::MAX),
            base,
        }
    }

    /// Whether the UI asks for a key at all.
    pub fn required(&self) -> bool {
        !self.keys.is_empty()
    }

    fn tag(&self, key: &str) -> String {
        let mac = hmac::sign(&self.signer, format!("key:{key}").as_bytes());
        URL_SAFE_NO_PAD.encode(&mac.as_ref()[..8])
    }

    fn sign(&self, payload: &str) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.signer, payload.as_bytes()).as_ref())
    }

    /// The cookie value of a new session for `key`, issued at `now`.
    pub fn issue(&self, key: &str, now: OffsetDateTime) -> String {
        let payload = format!("v1.{}.{}", now.unix_timestamp(), self.tag(key));
        let signature = self.sign(&payload);
        format!("{payload}.{signature}")
    }

    /// Whether `value` is a session this process accepts at `now`: a valid signature, not
    /// expired, and its key still configured.
    pub fn accepts(&self, value: &str, now: OffsetDateTime) -> bool {
        let Some((payload, signature)) = value.rsplit_once('.') else {
            return false;
        };
        let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        if hmac::verify(&self.signer, payload.as_bytes(), &signature).is_err() {
            return false;
        }
        let mut parts = payload.split('.');
        let (Some("v1"), Some(issued), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let Ok(issued) = issued.parse::<i64>() else {
            return false;
        };
        let age = now.unix_timestamp() - issued;
        (0..=self.ttl_s).contains(&age)
            && self
                .keys
                .keys()
                .iter()
                .any(|k| self.tag(k.expose_secret()) == tag)
    }

    /// Whether `key` is one of the query keys (constant time).
    pub fn key_is_valid(&self, key: &str) -> bool {
        key_matches(&self.keys, key)
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The session cookie for `value` (or, with `None`, the one that removes it).
    pub fn cookie(&self, value: Option<String>, secure: bool) -> Cookie<'static> {
        let path = if self.base.is_empty() {
            "/".to_owned()
        } else {
            self.base.clone()
        };
        let mut cookie = Cookie::build(COOKIE, value.clone().unwrap_or_default())
            .path(path)
            .http_only(true)
            .same_site(SameSite::Strict)
            .secure(secure)
            .finish();
        match value {
            Some(_) => cookie.set_max_age(time::Duration::seconds(self.ttl_s)),
            None => cookie.make_removal(),
        }
        cookie
    }
}

/// The key that signs sessions: `ui.session_secret`, or, unset, a random one for this process
/// (sessions then end when the process restarts, and are not shared between query processes).
pub fn signing_secret(configured: Option<&crate::config::Secret>) -> Vec<u8> {
    match configured {
        Some(secret) => secret.secret().expose_secret().as_bytes().to_vec(),
        None => generated_secret().to_vec(),
    }
}

fn generated_secret() -> [u8; 32] {
    let mut secret = [0u8; 32];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret).is_err() {
        // No system randomness at all: fall back to a v4 UUID pair (also from the OS's source).
        secret[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        secret[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    secret
}

/// Whether the request reached us over TLS (directly, or as a trusted proxy says).
pub fn is_secure(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

/// A reader allowed to see the UI: with keys, one holding a valid session. A page's handler
/// takes it first; without one the answer is a redirect to the login page (for an htmx request,
/// `HX-Redirect`, so the whole page goes there rather than a fragment).
pub struct Viewer {
    /// Whether the reader is logged in (and the page offers to log out).
    pub session: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("login required")]
pub struct LoginRequired {
    login: String,
    htmx: bool,
}

impl ResponseError for LoginRequired {
    fn error_response(&self) -> HttpResponse {
        if self.htmx {
            return HttpResponse::Unauthorized()
                .insert_header(("HX-Redirect", self.login.as_str()))
                .finish();
        }
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, self.login.as_str()))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish()
    }

    fn status_code(&self) -> actix_web::http::StatusCode {
        match self.htmx {
            true => actix_web::http::StatusCode::UNAUTHORIZED,
            false => actix_web::http::StatusCode::SEE_OTHER,
        }
    }
}

/// The path and query a login should return to: only a path of ours (never another origin).
pub fn safe_next(base: &str, next: Option<&str>) -> String {
    let home = format!("{base}/");
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => {
            if n.starts_with(&home) || n == base {
                n.to_owned()
            } else {
                home
            }
        }
        _ => home,
    }
}

impl FromRequest for Viewer {
    type Error = LoginRequired;
    type Future = std::future::Ready<Result<Viewer, LoginRequired>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Registered with the UI's routes (`ui::configure`); without it, no page is shown.
        let Some(sessions) = req.app_data::<web::Data<Sessions>>() else {
            return std::future::ready(Err(LoginRequired {
                login: "/login".into(),
                htmx: false,
            }));
        };
        if !sessions.required() {
            return std::future::ready(Ok(Viewer { session: false }));
        }
        let now = OffsetDateTime::now_utc();
        if let Some(cookie) = req.cookie(COOKIE)
            && sessions.accepts(cookie.value(), now)
        {
            return std::future::ready(Ok(Viewer { session: true }));
        }
        let here = match req.query_string() {
            "" => req.path().to_owned(),
            q => format!("{}?{q}", req.path()),
        };
        let next = serde_urlencoded::to_string([("next", here)]).unwrap_or_default();
        std::future::ready(Err(LoginRequired {
            login: format!("{}/login?{next}", sessions.base()),
            htmx: req.headers().contains_key("hx-request"),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sessions of an hour under `keys`, signed with `secret`.
    fn sessions(keys: &[&str], secret: &[u8]) -> Sessions {
        let keys = keys.iter().map(|k| (*k).to_owned()).collect();
        Sessions::new(SecretList::new(keys), secret, 3600, String::new())
    }

    #[test]
    fn a_session_is_accepted_until_it_expires_or_its_key_goes() {
        let s = sessions(&["k1", "k2"], b"secret");
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let cookie = s.issue("k2", now);
        assert!(!cookie.contains("k2"), "the cookie does not carry the key");
        assert!(s.accepts(&cookie, now));
        assert!(s.accepts(&cookie, now + time::Duration::seconds(3600)));
        assert!(!s.accepts(&cookie, now + time::Duration::seconds(3601)));
        assert!(!s.accepts(&cookie, now - time::Duration::seconds(1)));
        let rotated = sessions(&["k1"], b"secret");
        assert!(!rotated.accepts(&cookie, now), "its key was removed");
        let other = sessions(&["k2"], b"other");
        assert!(!other.accepts(&cookie, now), "another secret");
    }

    #[test]
    fn a_tampered_session_is_refused() {
        let s = sessions(&["k1", "k2"], b"secret");
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let cookie = s.issue("k1", now);
        let (payload, sig) = cookie.rsplit_once('.').unwrap();
        let later = payload.replace("1800000000", "1800001000");
        assert!(!s.accepts(&format!("{later}.{sig}"), now));
        assert!(!s.accepts("v1.1800000000.x", now));
        assert!(!s.accepts("", now));
    }

    #[test]
    fn next_stays_on_our_pages() {
        assert_eq!(safe_next("", Some("/runs?x=1")), "/runs?x=1");
        assert_eq!(safe_next("", Some("//evil.example/")), "/");
        assert_eq!(safe_next("", Some("https://evil.example/")), "/");
        assert_eq!(safe_next("/ui", Some("/ui/runs")), "/ui/runs");
        assert_eq!(safe_next("/ui", Some("/v1/runs")), "/ui/");
        assert_eq!(safe_next("", None), "/");
    }
}

//! API keys: `X-API-Key: <key>` or `Authorization: Bearer <key>`, compared in constant time.
//!
//! When a listener has keys, every route but `/health`, `/livez`, `/readyz`, `/metrics`, CORS
//! preflights and the web UI's pages (which check a session cookie, src/ui/session.rs) needs
//! one: missing is 401 with `WWW-Authenticate: Bearer`, wrong is 403.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::web;
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use crate::config::SecretList;
use crate::error::ApiError;
use crate::role::Listener;

/// What one listener knows about itself: which it is and the keys it accepts.
pub struct ListenerCtx {
    pub listener: Listener,
    pub keys: SecretList,
    /// The web UI's pages, when this listener serves them: they check a session cookie instead
    /// of a key (src/ui/session.rs).
    pub session_paths: Option<SessionPaths>,
}

/// The paths every listener serves without a key.
pub const OPEN_PATHS: &[&str] = &["/health", "/livez", "/readyz", "/metrics"];

/// The paths that check a session rather than a key: the web UI's, under its base path — the
/// base itself, `{base}/`, and each of `pages` with what is below it.
pub struct SessionPaths {
    pub base: String,
    pub pages: &'static [&'static str],
}

impl SessionPaths {
    pub fn contains(&self, path: &str) -> bool {
        let Some(rest) = path.strip_prefix(self.base.as_str()) else {
            return false;
        };
        rest == "/"
            || (rest.is_empty() && !self.base.is_empty())
            || self
                .pages
                .iter()
                .any(|p| rest == *p || rest.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
    }
}

fn is_exempt(req: &ServiceRequest, ctx: &ListenerCtx) -> bool {
    OPEN_PATHS.contains(&req.path())
        || ctx
            .session_paths
            .as_ref()
            .is_some_and(|ui| ui.contains(req.path()))
        || (req.method() == Method::OPTIONS
            && req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD))
}

/// The key a request presents, if any.
fn presented_key(req: &ServiceRequest) -> Option<&str> {
    if let Some(key) = req.headers().get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key.trim());
    }
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, token) = auth.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Whether `presented` is one of `keys`; every key is compared, in constant time per byte. The
/// one place the keys are read (the HTTP and gRPC listeners both check here).
pub fn key_matches(keys: &SecretList, presented: &str) -> bool {
    let mut found = subtle::Choice::from(0);
    for key in keys.keys() {
        found |= key.expose_secret().as_bytes().ct_eq(presented.as_bytes());
    }
    found.into()
}

/// The middleware; it reads the listener's keys from its [`ListenerCtx`].
pub async fn require_key(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let verdict = match req.app_data::<web::Data<ListenerCtx>>() {
        Some(ctx) if !ctx.keys.is_empty() && !is_exempt(&req, ctx) => match presented_key(&req) {
            None => Some(ApiError::Unauthorized),
            Some(key) if key_matches(&ctx.keys, key) => None,
            Some(_) => Some(ApiError::Forbidden),
        },
        _ => None,
    };
    match verdict {
        Some(err) => Ok(req.error_response(err)),
        None => Ok(next.call(req).await?.map_into_boxed_body()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_paths_under_the_base() {
        let pages: &'static [&'static str] = &["/runs", "/assets"];
        let at = |base: &str| SessionPaths {
            base: base.into(),
            pages,
        };
        let under_root: &[(&str, bool)] = &[
            ("/", true),
            ("/runs", true),
            ("/runs/abc", true),
            ("/assets/app.0123.css", true),
            ("/v1/runs", false),
            ("/runsx", false),
            ("/openapi.json", false),
        ];
        let under_ui: &[(&str, bool)] = &[
            ("/ui", true),
            ("/ui/", true),
            ("/ui/runs", true),
            ("/runs", false),
            ("/", false),
        ];
        for (base, paths) in [("", under_root), ("/ui", under_ui)] {
            let paths_of = at(base);
            for &(path, ui) in paths {
                assert_eq!(paths_of.contains(path), ui, "{base} {path}");
            }
        }
    }

    #[test]
    fn keys_match_exactly() {
        let keys = SecretList::new(vec!["alpha-key".to_owned(), "beta-key".to_owned()]);
        assert!(key_matches(&keys, "beta-key"));
        assert!(!key_matches(&keys, "beta-ke"));
        assert!(!key_matches(&keys, "beta-keyy"));
        assert!(!key_matches(&keys, ""));
        assert!(!key_matches(&SecretList::default(), "alpha-key"));
    }
}

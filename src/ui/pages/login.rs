//! `/login` and `/logout`: with query keys, the reader gives a key once and keeps a signed
//! session cookie (see [`crate::ui::session`]). Without keys both just go to the overview.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::ui::session::{Sessions, Viewer, is_secure, safe_next};
use crate::ui::{Ctx, PageError, UiBase, html};

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub ctx: Ctx,
    pub next: String,
    pub error: bool,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    key: String,
    next: Option<String>,
}

fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn login_page(base: &UiBase, next: String, error: bool) -> Result<HttpResponse, PageError> {
    let viewer = Viewer { session: false };
    let mut res = html(LoginPage {
        ctx: Ctx::new(base, "", &viewer),
        next,
        error,
    })?;
    if error {
        *res.status_mut() = actix_web::http::StatusCode::UNAUTHORIZED;
    }
    Ok(res)
}

/// Without query keys there is no login: straight on to `next` (kept on our pages). With them,
/// `login` answers.
fn unless_open(
    sessions: &Sessions,
    base: &UiBase,
    next: Option<&str>,
    login: impl FnOnce(String) -> Result<HttpResponse, PageError>,
) -> Result<HttpResponse, PageError> {
    let next = safe_next(&base.0, next);
    match sessions.required() {
        true => login(next),
        false => Ok(see_other(&next)),
    }
}

/// A redirect to `to` that sets the session cookie (`None` ends the session).
fn see_other_with_session(
    to: &str,
    sessions: &Sessions,
    value: Option<String>,
    req: &HttpRequest,
    base: &UiBase,
) -> Result<HttpResponse, PageError> {
    let mut res = see_other(to);
    res.add_cookie(&sessions.cookie(value, is_secure(req)))
        .map_err(|e| PageError::new(base, crate::error::ApiError::internal(e.to_string())))?;
    Ok(res)
}

pub async fn form(
    query: web::Query<NextQuery>,
    sessions: web::Data<Sessions>,
    base: web::Data<UiBase>,
) -> Result<HttpResponse, PageError> {
    unless_open(&sessions, &base, query.next.as_deref(), |next| {
        login_page(&base, next, false)
    })
}

pub async fn submit(
    req: HttpRequest,
    form: web::Form<LoginForm>,
    sessions: web::Data<Sessions>,
    base: web::Data<UiBase>,
) -> Result<HttpResponse, PageError> {
    unless_open(&sessions, &base, form.next.as_deref(), |next| {
        let key = form.key.trim();
        if !sessions.key_is_valid(key) {
            tracing::info!("UI login refused: the key is not a query key");
            return login_page(&base, next, true);
        }
        let value = sessions.issue(key, OffsetDateTime::now_utc());
        see_other_with_session(&next, &sessions, Some(value), &req, &base)
    })
}

pub async fn logout(
    req: HttpRequest,
    sessions: web::Data<Sessions>,
    base: web::Data<UiBase>,
) -> Result<HttpResponse, PageError> {
    let to = match sessions.required() {
        true => format!("{}/login", base.0),
        false => format!("{}/", base.0),
    };
    see_other_with_session(&to, &sessions, None, &req, &base)
}

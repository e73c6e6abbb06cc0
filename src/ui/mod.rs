//! The web UI, served by the query listener at `ui.base_path` (`/` by default): server-rendered
//! pages (askama templates, checked at compile time) that call the same query functions as the
//! JSON API on the read-only pool, enhanced by htmx and a small script; every asset embedded.
//! Every view's state is in its URL. See docs/ui.md.
//!
//! - [`assets`]: the embedded, content-hashed static files.
//! - [`session`]: login with a query key, the signed session cookie, the [`session::Viewer`] guard.
//! - [`format`]: numbers, durations and times as pages print them.
//! - `pages`: one module per page.

pub mod assets;
pub mod format;
mod pages;
pub mod session;
mod view;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{Compress, DefaultHeaders};
use actix_web::{HttpResponse, ResponseError, web};
use askama::Template;

use crate::error::ApiError;

/// The Content-Security-Policy of every answer of the UI (its pages, assets, redirects and error
/// pages; the JSON API's answers are not documents and go without): nothing inline, nothing from
/// another origin — but the write actions' requests to `ui.ingest_url`'s origin when it is set —,
/// no framing.
pub fn csp(ingest_origin: Option<&str>) -> String {
    let connect = match ingest_origin {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src {connect}; font-src 'self'; form-action 'self'; base-uri 'none'; \
         frame-ancestors 'none'"
    )
}

/// The headers every answer of the UI carries, with its `csp`.
pub fn security_headers(csp: &str) -> DefaultHeaders {
    DefaultHeaders::new()
        .add((header::CONTENT_SECURITY_POLICY, csp))
        .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .add((header::REFERRER_POLICY, "same-origin"))
        .add((header::X_FRAME_OPTIONS, "DENY"))
}

/// The UI's paths below its base path (and `/` itself); the API key check lets them through
/// (`auth::SessionPaths`): a page checks the session cookie instead, see [`session::Viewer`].
pub const PAGES: [&str; 10] = [
    "/runs",
    "/behaviour",
    "/baselines",
    "/drift",
    "/failures",
    "/agents",
    "/live",
    "/login",
    "/logout",
    "/assets",
];

/// What the UI's routes share: its base path and the sessions of its login. Built once a
/// listener, and only for the one that serves the UI.
#[derive(Clone)]
pub struct Shared {
    base: web::Data<UiBase>,
    sessions: web::Data<session::Sessions>,
    writes: web::Data<Writes>,
    csp: String,
}

impl Shared {
    /// `ingest_url` is `ui.ingest_url`: where the write actions go ("" for this origin).
    pub fn new(base: String, sessions: session::Sessions, ingest_url: String) -> Shared {
        let origin = url::Url::parse(&ingest_url)
            .ok()
            .map(|u| u.origin().ascii_serialization());
        Shared {
            base: web::Data::new(UiBase(base)),
            sessions: web::Data::new(sessions),
            csp: csp(origin.as_deref()),
            writes: web::Data::new(Writes { ingest_url }),
        }
    }
}

/// Where the write actions send their requests (see docs/ui.md, Writes): `ui.ingest_url`, or ""
/// for the UI's own origin.
pub struct Writes {
    pub ingest_url: String,
}

/// Mounts the UI's routes under its base path ("" for `/`). Mounted after the API's routes.
pub fn configure(cfg: &mut web::ServiceConfig, shared: &Shared) {
    cfg.app_data(shared.base.clone())
        .app_data(shared.sessions.clone())
        .app_data(shared.writes.clone());
    let base = shared.base.0.as_str();
    let csp = shared.csp.as_str();
    let page = |path: &str| {
        web::resource(format!("{base}{path}"))
            .wrap(Compress::default())
            .wrap(security_headers(csp))
    };
    if !base.is_empty() {
        let home = format!("{base}/");
        cfg.service(
            web::resource(base.to_owned())
                .wrap(security_headers(csp))
                .route(web::get().to(move || {
                    let home = home.clone();
                    async move {
                        HttpResponse::PermanentRedirect()
                            .insert_header((header::LOCATION, home))
                            .finish()
                    }
                })),
        );
    }
    cfg.service(page("/").route(web::get().to(pages::overview::page)))
        .service(page("/runs").route(web::get().to(pages::runs::page)))
        .service(page("/runs/{run_id}").route(web::get().to(pages::run::page)))
        .service(page("/sessions").route(web::get().to(pages::sessions::list)))
        .service(page("/sessions/{session_id:.+}").route(web::get().to(pages::sessions::detail)))
        .service(page("/agents").route(web::get().to(pages::agents::list)))
        .service(page("/agents/{agent_id}").route(web::get().to(pages::agents::detail)))
        .service(page("/failures").route(web::get().to(pages::failures::page)))
        .service(page("/behaviour").route(web::get().to(pages::behaviour::page)))
        .service(page("/baselines").route(web::get().to(pages::baselines::page)))
        .service(page("/drift").route(web::get().to(pages::drift::list)))
        // Before `/drift/{drift_id}`, which would take `timeline` for an id.
        .service(page("/drift/timeline").route(web::get().to(pages::drift::timeline)))
        .service(page("/drift/{drift_id}").route(web::get().to(pages::drift::detail)))
        .service(page("/live").route(web::get().to(pages::live::page)))
        // Not compressed: a stream is written as it goes.
        .service(
            web::resource(format!("{base}/live/stream"))
                .wrap(security_headers(csp))
                .route(web::get().to(pages::live::events)),
        )
        .service(
            page("/login")
                .route(web::get().to(pages::login::form))
                .route(web::post().to(pages::login::submit)),
        )
        .service(page("/logout").route(web::post().to(pages::login::logout)))
        .service(page("/assets/{name}").route(web::get().to(assets::serve)));
}

/// What every page's layout needs.
pub struct Ctx {
    /// `ui.base_path`: "" or "/prefix".
    pub base: String,
    /// The page the navigation marks as current.
    pub nav: &'static str,
    pub assets: assets::Names,
    /// Whether the reader is logged in (the layout offers to log out).
    pub session: bool,
}

/// Where the UI lives, shared with every page.
pub struct UiBase(pub String);

impl Ctx {
    pub fn new(base: &UiBase, nav: &'static str, viewer: &session::Viewer) -> Ctx {
        Ctx {
            base: base.0.clone(),
            nav,
            assets: assets::names(),
            session: viewer.session,
        }
    }
}

/// An error page: the API's error, shown as HTML with the same status (a 422 names the
/// parameter, a 503 says to retry and carries `Retry-After`).
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    title: String,
    lines: Vec<String>,
    base: String,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    ctx: Ctx,
    title: &'a str,
    lines: &'a [String],
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.title)
    }
}

impl PageError {
    pub fn new(base: &UiBase, err: ApiError) -> PageError {
        let status = err.status_code();
        let (title, lines) = match &err {
            ApiError::Validation(errors) => (
                "Invalid parameter".to_owned(),
                errors
                    .iter()
                    .map(|e| {
                        let name = e.loc.last().and_then(|v| v.as_str()).unwrap_or("request");
                        format!("{name}: {}", e.msg)
                    })
                    .collect(),
            ),
            ApiError::NotFound(msg) => ("Not found".to_owned(), vec![msg.clone()]),
            ApiError::Unavailable(msg) => (
                "Database unavailable".to_owned(),
                vec![
                    msg.clone(),
                    "This page will work again once it answers; reload to retry.".into(),
                ],
            ),
            ApiError::Internal(_) => {
                // Logged by the API error's own answer.
                let _ = err.error_response();
                (
                    "Internal error".to_owned(),
                    vec!["The error was logged.".into()],
                )
            }
            other => (other.to_string(), Vec::new()),
        };
        PageError {
            status,
            title,
            lines,
            base: base.0.clone(),
        }
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let page = ErrorPage {
            ctx: Ctx {
                base: self.base.clone(),
                nav: "",
                assets: assets::names(),
                session: false,
            },
            title: &self.title,
            lines: &self.lines,
        };
        let mut res = HttpResponse::build(self.status);
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            res.insert_header((header::RETRY_AFTER, crate::error::RETRY_AFTER_S.to_string()));
        }
        res.content_type("text/html; charset=utf-8")
            .body(page.render().unwrap_or_else(|_| self.title.clone()))
    }
}

/// A rendered page, 200.
pub fn html(page: impl Template) -> Result<HttpResponse, PageError> {
    match page.render() {
        Ok(body) => Ok(HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .body(body)),
        Err(err) => Err(PageError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            title: "Internal error".into(),
            lines: vec![{
                tracing::error!(error = %err, "a page failed to render");
                "The error was logged.".into()
            }],
            base: String::new(),
        }),
    }
}

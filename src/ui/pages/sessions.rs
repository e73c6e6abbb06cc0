//! `/sessions`: conversations — runs grouped by their `session_id`, most recent first (the
//! filters and paging of `GET /v1/sessions`); `/sessions/{id}`: one session, its runs as a
//! timeline, oldest first (docs/sessions.md).

use actix_web::{HttpResponse, web};
use askama::Template;
use time::OffsetDateTime;

use super::{AgentPicker, Page};
use crate::error::ApiError;
use crate::query::sessions::{self, Session, SessionRun};
use crate::query::stats;
use crate::ui::view::{RunAgent, When, href, param};
use crate::ui::{Ctx, PageError, format, html};

/// A session as a table row or a page's header.
pub struct SessionRow {
    pub session_id: String,
    pub href: String,
    pub user_id: String,
    /// Its agents, as links to their runs of this session.
    pub agents: Vec<(String, String)>,
    pub runs: String,
    pub failed: String,
    pub first: When,
    pub last: When,
    /// From its first run's start to its last run's end (or latest start).
    pub span: String,
    pub cost: String,
}

impl SessionRow {
    fn of(base: &str, s: &Session, now: OffsetDateTime) -> SessionRow {
        let runs_of = |agent: &str| {
            href(
                &format!("{base}/runs"),
                &[("session_id", s.session_id.as_str()), ("agent_id", agent)],
            )
        };
        let end = s
            .last_ended_at
            .unwrap_or(s.last_started_at)
            .max(s.last_started_at);
        SessionRow {
            session_id: s.session_id.clone(),
            href: format!("{base}/sessions/{}", path_segment(&s.session_id)),
            user_id: s.user_id.clone().unwrap_or_default(),
            agents: s
                .agent_ids
                .iter()
                .map(|a| (a.clone(), runs_of(a)))
                .collect(),
            runs: format::count(s.run_count),
            failed: format::count(s.failed_run_count),
            first: When::of(s.first_started_at, now),
            last: When::of(s.last_started_at, now),
            span: format::run_duration(s.first_started_at, Some(end)),
            cost: format::usd(s.cost_usd),
        }
    }
}

/// `id` as one path segment: `/` and what a URL path cannot hold, percent-encoded.
fn path_segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[derive(Template)]
#[template(path = "sessions.html")]
pub struct SessionsPage {
    pub ctx: Ctx,
    pub f: AgentPicker,
    pub user_id: String,
    pub start_time: String,
    pub end_time: String,
    pub rows: Vec<SessionRow>,
    /// The newest page, when this is not it; the next page, when there is one.
    pub first: Option<String>,
    pub next: Option<String>,
}

pub async fn list(p: Page) -> Result<HttpResponse, PageError> {
    let pairs = &p.pairs;
    let q = sessions::parse_query(pairs).map_err(|e| p.fail(e))?;
    let (page, agents) = p
        .state
        .read(async |conn| {
            let page = sessions::list(conn, &q).await?;
            Ok((page, stats::agents(conn).await?))
        })
        .await
        .map_err(|e| p.fail(e))?;
    let (rows, next) = page;
    let (b, now) = (p.base(), p.now);
    let path = format!("{b}/sessions");
    let kept: Vec<(String, String)> = pairs
        .iter()
        .filter(|(k, _)| k != "cursor")
        .cloned()
        .collect();
    let text = |name: &str| param(pairs, name).unwrap_or_default().to_owned();
    html(SessionsPage {
        ctx: p.ctx("sessions"),
        f: AgentPicker::new(&q.filter, &agents),
        user_id: text("user_id"),
        start_time: text("start_time"),
        end_time: text("end_time"),
        rows: rows.iter().map(|s| SessionRow::of(b, s, now)).collect(),
        first: q.after.is_some().then(|| href(&path, &kept)),
        next: next.map(|cursor| {
            let mut params = kept.clone();
            params.push(("cursor".into(), cursor.encode()));
            href(&path, &params)
        }),
    })
}

/// A run of the session on its timeline.
pub struct TimelineRun {
    pub href: String,
    pub run_id: String,
    pub status: String,
    pub agent: RunAgent,
    pub started: When,
    pub duration: String,
    pub cost: String,
    /// Its bar on a 0–1000 axis of the session's time (at least 4 wide, so an instant shows).
    pub x: i64,
    pub w: i64,
}

#[derive(Template)]
#[template(path = "session.html")]
pub struct SessionPage {
    pub ctx: Ctx,
    pub s: SessionRow,
    pub runs: Vec<TimelineRun>,
    pub runs_truncated: bool,
    /// The time axis' ticks (offsets from the first run's start).
    pub ticks: Vec<String>,
    /// This session's runs in the explorer, and its JSON.
    pub runs_href: String,
    pub json_href: String,
}

fn timeline(
    base: &str,
    runs: &[SessionRun],
    now: OffsetDateTime,
) -> (Vec<TimelineRun>, Vec<String>) {
    let Some(t0) = runs.iter().map(|r| r.started_at).min() else {
        return (Vec::new(), Vec::new());
    };
    let end = |r: &SessionRun| r.ended_at.unwrap_or(r.started_at).max(r.started_at);
    let t1 = runs.iter().map(end).max().unwrap_or(t0);
    let total = (t1 - t0).whole_milliseconds().max(1);
    let place = |t: OffsetDateTime| ((t - t0).whole_milliseconds() * 1000 / total) as i64;
    let bars = runs
        .iter()
        .map(|r| {
            let x = place(r.started_at).clamp(0, 996);
            TimelineRun {
                href: format!("{base}/runs/{}", r.run_id),
                run_id: r.run_id.to_string(),
                status: r.status.clone(),
                agent: RunAgent::of(&r.agent_id, &r.agent_version, &r.environment),
                started: When::of(r.started_at, now),
                duration: format::run_duration(r.started_at, r.ended_at),
                cost: format::usd(r.cost_usd),
                x,
                w: (place(end(r)) - x).clamp(4, 1000 - x),
            }
        })
        .collect();
    let ticks = (0..=4)
        .map(|q| format::duration_ms(Some(total as f64 * f64::from(q) / 4.0)))
        .collect();
    (bars, ticks)
}

pub async fn detail(p: Page, id: web::Path<String>) -> Result<HttpResponse, PageError> {
    let id = id.into_inner();
    let found = p
        .state
        .read(async |conn| Ok(sessions::one(conn, &id).await?))
        .await
        .map_err(|e| p.fail(e))?
        .ok_or_else(|| p.fail(ApiError::NotFound(format!("Session {id} not found"))))?;
    let (b, now) = (p.base(), p.now);
    let (runs, ticks) = timeline(b, &found.runs, now);
    html(SessionPage {
        ctx: p.ctx("sessions"),
        s: SessionRow::of(b, &found.session, now),
        runs,
        runs_truncated: found.runs_truncated,
        ticks,
        runs_href: href(&format!("{b}/runs"), &[("session_id", id.as_str())]),
        json_href: format!("/v1/sessions/{}", path_segment(&id)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_id_is_one_path_segment() {
        assert_eq!(path_segment("chat/42 a"), "chat%2F42%20a");
        assert_eq!(path_segment("s-1"), "s-1");
    }
}

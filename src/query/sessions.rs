//! `GET /v1/sessions` and `GET /v1/sessions/{session_id}` (docs/sessions.md): runs grouped by
//! their `session_id`, computed from the runs in PostgreSQL (there is no sessions table; the
//! `(session_id, started_at)` index serves one session's runs).
//!
//! The list's filters select runs, as `/v1/runs`' do: a session is listed when one of its runs
//! is selected, and its figures are those of its selected runs (without filters, of all its
//! runs — then a row is exactly what `GET /v1/sessions/{id}` answers). Most recent first, by the
//! start of the session's latest run; paged with a cursor on that order.

use actix_web::{HttpRequest, HttpResponse, get, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::QueryableByName;
use diesel::result::QueryResult;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::filters::{Bind, Problems, RunFilter, apply_binds, last, pairs};
use super::{NEXT_CURSOR_HEADER, QueryState, next_link};
use crate::db::prepared::prepared;
use crate::db::read::RUN_COLUMNS;
use crate::error::{ApiError, Detail, ValidationErrors};
use crate::model::FieldError;
use crate::model::cost::Usd;
use crate::openapi::Unavailable;

/// Sessions a page holds by default, and at most.
pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;
/// Runs `GET /v1/sessions/{session_id}` answers at most (the oldest); a session with more says
/// `runs_truncated`, and `GET /v1/runs?session_id=…` pages through them all.
pub const MAX_SESSION_RUNS: i64 = 1000;

/// Mounts the session routes.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(list_sessions).service(get_session);
}

/// One session: what its runs add up to.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema, QueryableByName)]
pub struct Session {
    #[diesel(sql_type = Text)]
    pub session_id: String,
    /// The user of its runs; of several, the latest run's that names one. Null when none does.
    #[diesel(sql_type = Nullable<Text>)]
    pub user_id: Option<String>,
    /// The agents of its runs, distinct, sorted.
    #[diesel(sql_type = Array<Text>)]
    pub agent_ids: Vec<String>,
    #[diesel(sql_type = BigInt)]
    pub run_count: i64,
    /// Runs whose status is `failure`.
    #[diesel(sql_type = BigInt)]
    pub failed_run_count: i64,
    /// When its first run started.
    #[diesel(sql_type = Timestamptz)]
    #[serde(with = "time::serde::rfc3339")]
    pub first_started_at: OffsetDateTime,
    /// When its latest run started: the list's order.
    #[diesel(sql_type = Timestamptz)]
    #[serde(with = "time::serde::rfc3339")]
    pub last_started_at: OffsetDateTime,
    /// The latest end of its runs; null while none has ended.
    #[diesel(sql_type = Nullable<Timestamptz>)]
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_ended_at: Option<OffsetDateTime>,
    /// The sum of its runs' `cost_usd`; null when none is priced.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub cost_usd: Option<Usd>,
}

/// A page of sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionPage {
    pub sessions: Vec<Session>,
    /// Where the next page starts (`cursor=`); null on the last page. Also in `X-Next-Cursor`.
    pub next_cursor: Option<String>,
}

/// A run of a session, without its steps, failures, decisions and signals (`GET
/// /v1/runs/{run_id}` has them).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema, QueryableByName)]
pub struct SessionRun {
    #[diesel(sql_type = SqlUuid)]
    pub run_id: Uuid,
    #[diesel(sql_type = Text)]
    pub agent_id: String,
    #[diesel(sql_type = Text)]
    pub agent_version: String,
    #[diesel(sql_type = Text)]
    pub environment: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Timestamptz)]
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    #[serde(with = "time::serde::rfc3339::option")]
    pub ended_at: Option<OffsetDateTime>,
    #[diesel(sql_type = Timestamptz)]
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[diesel(sql_type = Text)]
    pub source: String,
    #[diesel(sql_type = Nullable<BigInt>, column_name = cost_nanos)]
    pub cost_usd: Option<Usd>,
    #[diesel(sql_type = Nullable<Text>)]
    pub session_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub user_id: Option<String>,
}

/// One session with its runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionDetail {
    #[serde(flatten)]
    pub session: Session,
    /// Its runs, oldest first (`started_at`, then `run_id`), at most [`MAX_SESSION_RUNS`].
    pub runs: Vec<SessionRun>,
    /// Whether it has more runs than `runs` holds.
    pub runs_truncated: bool,
}

/// Where a page of sessions starts: after the session `(last_started_at, session_id)`.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionCursor {
    pub last_started_at: OffsetDateTime,
    pub session_id: String,
}

impl SessionCursor {
    pub fn encode(&self) -> String {
        let micros = self.last_started_at.unix_timestamp_nanos() / 1000;
        URL_SAFE_NO_PAD.encode(format!("s1:{micros}:{}", self.session_id))
    }

    pub fn decode(text: &str) -> Option<SessionCursor> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
        let rest = raw.strip_prefix("s1:")?;
        let (micros, session_id) = rest.split_once(':')?;
        let nanos = micros.parse::<i128>().ok()?.checked_mul(1000)?;
        let last_started_at = crate::model::timestamp::normalize(
            OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?,
        )?;
        (!session_id.is_empty() && !session_id.contains('\0')).then(|| SessionCursor {
            last_started_at,
            session_id: session_id.to_owned(),
        })
    }
}

/// What the list reads: the run filters it takes, the page size, where it starts.
#[derive(Debug, PartialEq)]
pub struct SessionQuery {
    pub filter: RunFilter,
    pub limit: i64,
    pub after: Option<SessionCursor>,
}

/// The query string of `GET /v1/sessions`: 422 naming each bad parameter.
pub fn parse_query(pairs: &[(String, String)]) -> Result<SessionQuery, ApiError> {
    let mut p = Problems(Vec::new());
    let filter = RunFilter {
        agent_id: p.text(pairs, "agent_id"),
        user_id: p.text(pairs, "user_id"),
        start_time: p.time(pairs, "start_time"),
        end_time: p.time(pairs, "end_time"),
        ..RunFilter::default()
    };
    let limit = p.int(pairs, "limit", 1, MAX_LIMIT).unwrap_or(DEFAULT_LIMIT);
    let after = match last(pairs, "cursor").filter(|c| !c.is_empty()) {
        None => None,
        Some(text) => {
            let cursor = SessionCursor::decode(text);
            if cursor.is_none() {
                p.add(
                    "cursor",
                    "value_error",
                    "Invalid cursor: use the next_cursor of a previous page",
                );
            }
            cursor
        }
    };
    p.or(SessionQuery {
        filter,
        limit,
        after,
    })
}

/// A session's figures over the runs `r` of a `GROUP BY r.session_id`.
const AGGREGATES: &str = "r.session_id::text AS session_id, \
    (array_agg(r.user_id::text ORDER BY r.started_at DESC, r.run_id DESC) \
      FILTER (WHERE r.user_id IS NOT NULL))[1] AS user_id, \
    array_agg(DISTINCT r.agent_id::text COLLATE \"C\" ORDER BY r.agent_id::text COLLATE \"C\") AS agent_ids, \
    count(*) AS run_count, \
    count(*) FILTER (WHERE r.status = 'failure') AS failed_run_count, \
    min(r.started_at) AS first_started_at, \
    max(r.started_at) AS last_started_at, \
    max(r.ended_at) AS last_ended_at, \
    sum(r.cost_nanos)::bigint AS cost_usd";

/// The statement of a page of sessions with its binds (one row more than the page: whether
/// another follows). Session ids order bytewise (`COLLATE "C"`), whatever the database's
/// collation, so the cursor's comparison is the order's.
pub fn list_sql(q: &SessionQuery) -> (String, Vec<Bind>) {
    let mut binds = Vec::new();
    let conditions = q.filter.conditions(&mut binds);
    let mut having = String::new();
    if let Some(after) = &q.after {
        binds.push(Bind::Time(after.last_started_at));
        binds.push(Bind::Text(after.session_id.clone()));
        let n = binds.len();
        having = format!(
            " HAVING (max(r.started_at), r.session_id::text COLLATE \"C\") < (${}, ${n} COLLATE \"C\")",
            n - 1
        );
    }
    binds.push(Bind::Int(q.limit + 1));
    let sql = format!(
        "SELECT {AGGREGATES} FROM agent_runs r WHERE r.session_id IS NOT NULL AND {conditions} \
         GROUP BY r.session_id{having} \
         ORDER BY max(r.started_at) DESC, r.session_id::text COLLATE \"C\" DESC LIMIT ${}",
        binds.len()
    );
    (sql, binds)
}

/// A page of sessions, and where the next starts.
pub async fn list(
    conn: &mut AsyncPgConnection,
    q: &SessionQuery,
) -> QueryResult<(Vec<Session>, Option<SessionCursor>)> {
    let (sql, binds) = list_sql(q);
    let mut rows: Vec<Session> = apply_binds(prepared(sql), binds).load(conn).await?;
    let mut next = None;
    if rows.len() as i64 > q.limit {
        rows.truncate(q.limit as usize);
        next = rows.last().map(|s| SessionCursor {
            last_started_at: s.last_started_at,
            session_id: s.session_id.clone(),
        });
    }
    Ok((rows, next))
}

/// One session's figures, over all its runs.
static ONE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("SELECT {AGGREGATES} FROM agent_runs r WHERE r.session_id = $1 GROUP BY r.session_id")
});

/// One session's runs, oldest first, one more than the cap (whether it cuts them).
static RUNS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {RUN_COLUMNS} FROM agent_runs r WHERE r.session_id = $1 \
         ORDER BY r.started_at, r.run_id LIMIT $2"
    )
});

/// Session `id` with its first runs, or `None` when no run has it: two statements, pipelined
/// (the session's figures, and its runs by the `(session_id, started_at)` index).
pub async fn one(conn: &mut AsyncPgConnection, id: &str) -> QueryResult<Option<SessionDetail>> {
    let conn: &AsyncPgConnection = conn;
    let (mut c1, mut c2) = (conn, conn);
    let (rows, mut runs) = futures_util::try_join!(
        prepared(ONE.as_str())
            .bind::<Text, _>(id)
            .load::<Session>(&mut c1),
        prepared(RUNS.as_str())
            .bind::<Text, _>(id)
            .bind::<BigInt, _>(MAX_SESSION_RUNS + 1)
            .load::<SessionRun>(&mut c2)
    )?;
    let runs_truncated = runs.len() as i64 > MAX_SESSION_RUNS;
    runs.truncate(MAX_SESSION_RUNS as usize);
    Ok(rows.into_iter().next().map(|session| SessionDetail {
        session,
        runs,
        runs_truncated,
    }))
}

/// Sessions (runs grouped by `session_id`), most recent first (by their latest run's start).
#[utoipa::path(
    tag = "query",
    params(
        ("agent_id" = Option<String>, Query, description = "Runs of this agent"),
        ("user_id" = Option<String>, Query, description = "Runs of this user"),
        ("start_time" = Option<String>, Query, description = "Runs that started at or after this time (RFC 3339)"),
        ("end_time" = Option<String>, Query, description = "Runs that started at or before this time (RFC 3339)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "Sessions per page; default 20"),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of sessions. When a next page exists, `next_cursor`, \
            `X-Next-Cursor` and `Link: <…>; rel=\"next\"` say where it starts.", body = SessionPage),
        (status = 422, description = "An invalid query parameter, named", body = ValidationErrors),
        Unavailable,
    )
)]
#[get("/v1/sessions")]
async fn list_sessions(
    req: HttpRequest,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    let pairs = pairs(req.query_string());
    let q = parse_query(&pairs)?;
    let (sessions, next) = state.read(async |conn| Ok(list(conn, &q).await?)).await?;
    let next_cursor = next.map(|c| c.encode());
    let mut res = HttpResponse::Ok();
    if let Some(cursor) = &next_cursor {
        res.insert_header(("Link", next_link(&req, &pairs, cursor)));
        res.insert_header((NEXT_CURSOR_HEADER, cursor.as_str()));
    }
    Ok(res.json(SessionPage {
        sessions,
        next_cursor,
    }))
}

/// One session with its runs, oldest first and without their steps (at most 1000: see
/// `runs_truncated`).
#[utoipa::path(
    tag = "query",
    params(("session_id" = String, Path, description = "The session's id, as sent (a `/` as is or as `%2F`)")),
    responses(
        (status = 200, description = "The session and its runs", body = SessionDetail),
        (status = 404, description = "No run has this session", body = Detail),
        (status = 422, description = "A session id no run can have (a NUL character)", body = ValidationErrors),
        Unavailable,
    )
)]
#[get("/v1/sessions/{session_id:.+}")]
async fn get_session(
    session_id: web::Path<String>,
    state: web::Data<QueryState>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id.into_inner();
    if id.contains('\0') {
        return Err(ApiError::validation(vec![FieldError::new(
            "string_nul",
            vec![Value::from("path"), Value::from("session_id")],
            "String should not contain the NUL character (\\u0000)",
        )]));
    }
    let session = state.read(async |conn| Ok(one(conn, &id).await?)).await?;
    session
        .map(|s| HttpResponse::Ok().json(s))
        .ok_or_else(|| ApiError::NotFound(format!("Session {id} not found")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_any_session_id_and_reject_garbage() {
        for id in ["s-1", "a:b:c", "ünï/code", " "] {
            let cursor = SessionCursor {
                last_started_at: time::macros::datetime!(2026-12-02 12:00:00.123456 UTC),
                session_id: id.into(),
            };
            assert_eq!(SessionCursor::decode(&cursor.encode()), Some(cursor));
        }
        for bad in [
            "",
            "abc",
            &URL_SAFE_NO_PAD.encode("v1:1:x"),
            &URL_SAFE_NO_PAD.encode("s1:1:"),
        ] {
            assert_eq!(SessionCursor::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_list_takes_four_filters_a_limit_and_a_cursor_each_bad_one_named() {
        let q = parse_query(&pairs("agent_id=a&user_id=u&status=failure&limit=5"))
            .map_err(|e| e.to_string());
        let Ok(q) = q else { panic!("{q:?}") };
        assert_eq!(
            (
                q.filter.agent_id.as_deref(),
                q.filter.user_id.as_deref(),
                q.filter.status,
                q.limit
            ),
            (Some("a"), Some("u"), None, 5)
        );
        let Err(ApiError::Validation(errors)) =
            parse_query(&pairs("limit=0&cursor=zzz&start_time=soon&user_id=%00"))
        else {
            panic!("expected 422")
        };
        let names: Vec<String> = errors.iter().map(|e| e.loc[1].to_string()).collect();
        assert_eq!(
            names,
            [
                r#""user_id""#,
                r#""start_time""#,
                r#""limit""#,
                r#""cursor""#
            ]
        );
    }

    #[test]
    fn the_cursor_continues_after_the_last_session_in_the_lists_order() {
        let q = SessionQuery {
            filter: RunFilter {
                agent_id: Some("a".into()),
                ..RunFilter::default()
            },
            limit: 20,
            after: Some(SessionCursor {
                last_started_at: OffsetDateTime::UNIX_EPOCH,
                session_id: "s".into(),
            }),
        };
        let (sql, binds) = list_sql(&q);
        assert_eq!(binds.len(), 4);
        assert!(sql.contains("r.agent_id = $1"), "{sql}");
        assert!(
            sql.contains(
                "HAVING (max(r.started_at), r.session_id::text COLLATE \"C\") < ($2, $3 COLLATE \"C\")"
            ),
            "{sql}"
        );
        assert!(sql.ends_with("LIMIT $4"), "{sql}");
    }
}

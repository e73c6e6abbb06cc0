//! The query string of `GET /v1/runs`, `GET /v1/stats` and the stream: filters and paging, each invalid
//! parameter a 422 naming it. Filters become SQL conditions on `agent_runs AS r` together with
//! their bind values, in one place, so that conditions and binds cannot drift apart.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use diesel::sql_types::{Text, Timestamptz, Uuid as SqlUuid};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::{KnownFormat, ObjectBuilder, Required, SchemaFormat, Type};
use uuid::Uuid;

use crate::db::prepared::Prepared;
use crate::error::ApiError;
use crate::model::{FailureType, FieldError, RunStatus, timestamp};

pub const DEFAULT_PAGE_SIZE: i64 = 20;
pub const MAX_PAGE_SIZE: i64 = 100;

/// The filters of `GET /v1/runs` (and, but `status`, of `GET /v1/stats`).
#[derive(Clone, Debug, Default, PartialEq, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunFilter {
    pub agent_id: Option<String>,
    pub agent_version: Option<String>,
    #[param(inline)]
    pub status: Option<RunStatus>,
    pub environment: Option<String>,
    /// Runs that started at or after this time (RFC 3339).
    #[param(value_type = Option<String>)]
    pub start_time: Option<OffsetDateTime>,
    /// Runs that started at or before this time (RFC 3339).
    #[param(value_type = Option<String>)]
    pub end_time: Option<OffsetDateTime>,
    /// Runs with a failure of this type.
    #[param(inline)]
    pub failure_type: Option<FailureType>,
    /// Runs with a failure of this code.
    pub failure_code: Option<String>,
    /// Runs of this session (docs/sessions.md).
    pub session_id: Option<String>,
    /// Runs of this user.
    pub user_id: Option<String>,
}

/// Where a page starts: an offset page (the original's) or after a cursor.
#[derive(Clone, Debug, PartialEq)]
pub enum Position {
    Page(i64),
    After(Cursor),
}

/// Paging of `GET /v1/runs`: `page`/`page_size` as the original, or `cursor` for deep pages.
#[derive(Clone, Debug, PartialEq)]
pub struct Paging {
    pub page_size: i64,
    pub position: Position,
}

/// The query parameters [`parse_list`] reads into a [`Paging`].
impl IntoParams for Paging {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let param = |name: &str, description: Option<&str>, schema: ObjectBuilder| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .description(description)
                .required(Required::False)
                .schema(Some(schema))
                .build()
        };
        let count = |max: Option<i64>| {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(1))
                .maximum(max)
        };
        vec![
            param("page", None, count(None)),
            param("page_size", None, count(Some(MAX_PAGE_SIZE))),
            param(
                "cursor",
                Some("The `X-Next-Cursor` of the previous page."),
                ObjectBuilder::new().schema_type(Type::String),
            ),
        ]
    }
}

/// The last run of a page: `(started_at, run_id)`, the list's order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Cursor {
    pub started_at: OffsetDateTime,
    pub run_id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        let micros = self.started_at.unix_timestamp_nanos() / 1000;
        URL_SAFE_NO_PAD.encode(format!("v1:{micros}:{}", self.run_id.simple()))
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
        let mut parts = raw.split(':');
        if parts.next()? != "v1" {
            return None;
        }
        let micros: i128 = parts.next()?.parse().ok()?;
        let run_id = Uuid::parse_str(parts.next()?).ok()?;
        let nanos = micros.checked_mul(1000)?;
        let started_at =
            timestamp::normalize(OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?)?;
        parts
            .next()
            .is_none()
            .then_some(Cursor { started_at, run_id })
    }
}

/// A bind value of a filter condition.
pub enum Bind {
    Text(String),
    Time(OffsetDateTime),
    Uuid(Uuid),
    Int(i64),
}

/// Applies binds in order to a query.
pub fn apply_binds(mut query: Prepared<'static>, binds: Vec<Bind>) -> Prepared<'static> {
    for bind in binds {
        query = match bind {
            Bind::Text(v) => query.bind::<Text, _>(v),
            Bind::Time(v) => query.bind::<Timestamptz, _>(v),
            Bind::Uuid(v) => query.bind::<SqlUuid, _>(v),
            Bind::Int(v) => query.bind::<diesel::sql_types::BigInt, _>(v),
        };
    }
    query
}

impl RunFilter {
    /// The conditions on `agent_runs AS r` (`TRUE` when none), numbering placeholders after the
    /// binds already in `binds`, to which it appends its own.
    pub fn conditions(&self, binds: &mut Vec<Bind>) -> String {
        let mut conds: Vec<String> = Vec::new();
        let param = |binds: &mut Vec<Bind>, bind: Bind| {
            binds.push(bind);
            format!("${}", binds.len())
        };
        let text = |v: &Option<String>| v.clone().map(Bind::Text);
        for (column, value) in [
            ("agent_id", text(&self.agent_id)),
            ("agent_version", text(&self.agent_version)),
            ("status", self.status.map(|s| Bind::Text(s.as_str().into()))),
            ("environment", text(&self.environment)),
            ("session_id", text(&self.session_id)),
            ("user_id", text(&self.user_id)),
        ] {
            if let Some(value) = value {
                let p = param(binds, value);
                conds.push(format!("r.{column} = {p}"));
            }
        }
        if let Some(t) = self.start_time {
            let p = param(binds, Bind::Time(t));
            conds.push(format!("r.started_at >= {p}"));
        }
        if let Some(t) = self.end_time {
            let p = param(binds, Bind::Time(t));
            conds.push(format!("r.started_at <= {p}"));
        }
        if self.failure_type.is_some() || self.failure_code.is_some() {
            let mut inner = vec!["ff.run_id = r.run_id".to_owned()];
            if let Some(ft) = self.failure_type {
                let p = param(binds, Bind::Text(ft.as_str().into()));
                inner.push(format!("ff.failure_type = {p}"));
            }
            if let Some(code) = &self.failure_code {
                let p = param(binds, Bind::Text(code.clone()));
                inner.push(format!("ff.failure_code = {p}"));
            }
            conds.push(format!(
                "EXISTS (SELECT 1 FROM agent_failures ff WHERE {})",
                inner.join(" AND ")
            ));
        }
        if conds.is_empty() {
            "TRUE".into()
        } else {
            conds.join(" AND ")
        }
    }
}

/// The query string's pairs; a repeated parameter keeps its last value, as FastAPI does.
pub fn pairs(query: &str) -> Vec<(String, String)> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query).unwrap_or_default()
}

pub(super) fn last<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The problems of a query string so far (also read by the drift routes' parameters).
pub(super) struct Problems(pub(super) Vec<FieldError>);

impl Problems {
    /// The problems as a 422, or `value` when there are none.
    pub(super) fn or<T>(self, value: T) -> Result<T, ApiError> {
        match self.0.is_empty() {
            true => Ok(value),
            false => Err(ApiError::validation(self.0)),
        }
    }

    pub(super) fn add(&mut self, name: &str, kind: &str, msg: impl Into<String>) {
        self.0.push(FieldError::new(
            kind,
            vec![Value::from("query"), Value::from(name)],
            msg,
        ));
    }

    /// A free-text filter; empty is none. PostgreSQL text cannot hold NUL, so no stored value
    /// could match one: a NUL is a 422, like everywhere else.
    pub(super) fn text(&mut self, pairs: &[(String, String)], name: &str) -> Option<String> {
        let raw = last(pairs, name).filter(|v| !v.is_empty())?;
        if raw.contains('\0') {
            self.add(
                name,
                "string_nul",
                "String should not contain the NUL character (\\u0000)",
            );
            return None;
        }
        Some(raw.to_owned())
    }

    pub(super) fn time(
        &mut self,
        pairs: &[(String, String)],
        name: &str,
    ) -> Option<OffsetDateTime> {
        let raw = last(pairs, name)?;
        let parsed = timestamp::parse(raw);
        if parsed.is_none() {
            self.add(
                name,
                "datetime_parsing",
                "Input should be a valid datetime (RFC 3339, or ISO 8601 read as UTC)",
            );
        }
        parsed
    }

    pub(super) fn choice<T>(
        &mut self,
        pairs: &[(String, String)],
        name: &str,
        values: &[&str],
        parse: fn(&str) -> Option<T>,
    ) -> Option<T> {
        let raw = last(pairs, name)?;
        let parsed = parse(raw);
        if parsed.is_none() {
            let list: Vec<String> = values.iter().map(|v| format!("'{v}'")).collect();
            self.add(
                name,
                "enum",
                format!("Input should be one of {}", list.join(", ")),
            );
        }
        parsed
    }

    /// A boolean as FastAPI reads one (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`).
    pub(super) fn boolean(&mut self, pairs: &[(String, String)], name: &str) -> Option<bool> {
        let raw = last(pairs, name)?;
        match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
            "false" | "0" | "no" | "off" | "f" | "n" => Some(false),
            _ => {
                self.add(
                    name,
                    "bool_parsing",
                    "Input should be a valid boolean, unable to interpret input",
                );
                None
            }
        }
    }

    pub(super) fn int(
        &mut self,
        pairs: &[(String, String)],
        name: &str,
        min: i64,
        max: i64,
    ) -> Option<i64> {
        let raw = last(pairs, name)?;
        match raw.trim().parse::<i64>() {
            Err(_) => self.add(name, "int_parsing", "Input should be a valid integer"),
            Ok(n) if n < min => self.add(
                name,
                "greater_than_equal",
                format!("Input should be greater than or equal to {min}"),
            ),
            Ok(n) if n > max => self.add(
                name,
                "less_than_equal",
                format!("Input should be less than or equal to {max}"),
            ),
            Ok(n) => return Some(n),
        }
        None
    }
}

/// The run filters of a query string; `with_status` is false for `/v1/stats`, which ignores it.
pub fn parse_filter(pairs: &[(String, String)], with_status: bool) -> Result<RunFilter, ApiError> {
    let mut problems = Problems(Vec::new());
    let filter = filter_from(pairs, with_status, &mut problems);
    match problems.0.is_empty() {
        true => Ok(filter),
        false => Err(ApiError::validation(problems.0)),
    }
}

fn filter_from(
    pairs: &[(String, String)],
    with_status: bool,
    problems: &mut Problems,
) -> RunFilter {
    RunFilter {
        agent_id: problems.text(pairs, "agent_id"),
        agent_version: problems.text(pairs, "agent_version"),
        status: if with_status {
            problems.choice(pairs, "status", RunStatus::VALUES, RunStatus::parse)
        } else {
            None
        },
        environment: problems.text(pairs, "environment"),
        start_time: problems.time(pairs, "start_time"),
        end_time: problems.time(pairs, "end_time"),
        failure_type: problems.choice(
            pairs,
            "failure_type",
            FailureType::VALUES,
            FailureType::parse,
        ),
        failure_code: problems.text(pairs, "failure_code"),
        session_id: problems.text(pairs, "session_id"),
        user_id: problems.text(pairs, "user_id"),
    }
}

/// Filters and paging of `GET /v1/runs`.
pub fn parse_list(pairs: &[(String, String)]) -> Result<(RunFilter, Paging), ApiError> {
    let mut problems = Problems(Vec::new());
    let filter = filter_from(pairs, true, &mut problems);
    let page_size = problems
        .int(pairs, "page_size", 1, MAX_PAGE_SIZE)
        .unwrap_or(DEFAULT_PAGE_SIZE);
    let page = problems.int(pairs, "page", 1, i64::MAX / MAX_PAGE_SIZE);
    let cursor = last(pairs, "cursor").filter(|c| !c.is_empty());
    let position = match (cursor, page) {
        (Some(_), Some(p)) if p > 1 => {
            problems.add(
                "cursor",
                "value_error",
                "Use either cursor or page, not both",
            );
            Position::Page(p)
        }
        (Some(text), _) => match Cursor::decode(text) {
            Some(cursor) => Position::After(cursor),
            None => {
                problems.add(
                    "cursor",
                    "value_error",
                    "Invalid cursor: use the X-Next-Cursor of a previous page",
                );
                Position::Page(1)
            }
        },
        (None, page) => Position::Page(page.unwrap_or(1)),
    };
    match problems.0.is_empty() {
        true => Ok((
            filter,
            Paging {
                page_size,
                position,
            },
        )),
        false => Err(ApiError::validation(problems.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(query: &str) -> Vec<(String, String)> {
        pairs(query)
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let cursor = Cursor {
            started_at: time::macros::datetime!(2024-06-01 12:00:00.123456 UTC),
            run_id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()), Some(cursor));
        for bad in [
            "",
            "abc",
            "djE6MTox",
            &URL_SAFE_NO_PAD.encode("v2:1:00000000000000000000000000000000"),
        ] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn defaults_and_bounds() {
        let (filter, paging) = parse_list(&p(""))
            .map_err(|e| e.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(filter, RunFilter::default());
        assert_eq!(
            paging,
            Paging {
                page_size: 20,
                position: Position::Page(1)
            }
        );
        for bad in [
            "page=0",
            "page_size=0",
            "page_size=101",
            "page=x",
            "status=done",
            "start_time=soon",
            "cursor=zzz",
            "failure_type=network",
        ] {
            assert!(parse_list(&p(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn every_bad_parameter_is_named() {
        let Err(ApiError::Validation(errors)) = parse_list(&p("page=0&page_size=500&status=x"))
        else {
            panic!("expected 422")
        };
        let names: Vec<String> = errors.iter().map(|e| e.loc[1].to_string()).collect();
        assert_eq!(names, [r#""status""#, r#""page_size""#, r#""page""#]);
    }

    #[test]
    fn a_nul_in_any_text_filter_is_named() {
        let query = "agent_id=a%00&agent_version=%00&environment=x%00y&failure_code=%00\
                     &session_id=%00&user_id=u%00";
        for parsed in [
            parse_list(&p(query)).map(|_| ()),
            parse_filter(&p(query), false).map(|_| ()),
        ] {
            let Err(ApiError::Validation(errors)) = parsed else {
                panic!("expected 422")
            };
            let names: Vec<String> = errors.iter().map(|e| e.loc[1].to_string()).collect();
            assert_eq!(
                names,
                [
                    r#""agent_id""#,
                    r#""agent_version""#,
                    r#""environment""#,
                    r#""failure_code""#,
                    r#""session_id""#,
                    r#""user_id""#
                ]
            );
            assert!(errors.iter().all(|e| e.kind == "string_nul"));
        }
    }

    #[test]
    fn conditions_and_binds_stay_in_step() {
        let filter = RunFilter {
            agent_id: Some("a".into()),
            status: Some(RunStatus::Failure),
            start_time: Some(OffsetDateTime::UNIX_EPOCH),
            failure_type: Some(FailureType::Tool),
            failure_code: Some("timeout".into()),
            ..RunFilter::default()
        };
        let mut binds = vec![Bind::Uuid(Uuid::nil())];
        let sql = filter.conditions(&mut binds);
        assert_eq!(
            sql,
            "r.agent_id = $2 AND r.status = $3 AND r.started_at >= $4 AND EXISTS (SELECT 1 FROM agent_failures ff \
             WHERE ff.run_id = r.run_id AND ff.failure_type = $5 AND ff.failure_code = $6)"
        );
        assert_eq!(binds.len(), 6);
        assert_eq!(RunFilter::default().conditions(&mut Vec::new()), "TRUE");
    }

    #[test]
    fn stats_ignore_status() {
        let filter =
            parse_filter(&p("status=nonsense&environment=prod"), false).map_err(|e| e.to_string());
        assert_eq!(
            filter.map(|f| (f.status, f.environment)),
            Ok((None, Some("prod".into())))
        );
    }
}

//! Row batches: the rows one set-based statement writes, bound as one array per column.
//!
//! Both write paths insert many rows per statement (`INSERT … SELECT * FROM UNNEST($1::uuid[],
//! …)`, docs/performance.md), so each statement's SQL names its columns, their types and their
//! placeholders in one order, and its binds must follow that order exactly: a column bound out of
//! step is a type error at best and, between two columns of one type, rows silently written
//! wrong. Here each batch is declared once, as its columns (`row_batch!`); the SQL's column
//! list and `UNNEST(…)` ([`TableBatch::insert`], [`Batch::unnest`], [`Batch::unnest_as`]) and
//! its binds ([`Batch::bind`]) are both made from that one declaration, each cast from the type
//! of its bind ([`PgType`]).
//!
//! A batch is filled from rows written as struct literals (`FailureRow { failure_id, run_id, … }`),
//! so a column cannot be forgotten or given another's value by its position. The step and run
//! rows of both paths are made by one macro each (`step_row!`, `run_row!`): a native step and a
//! span's step share their fields' names. A table one path writes more columns of takes two
//! batches side by side, `(RunRows, RootRows)`.

use diesel::sql_types::{
    Array, BigInt, Bool, Float4, Int4, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid,
};
use std::io::Write as _;

use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db::prepared::Prepared;
use crate::model::behaviour::{NewDecision, NewSignal};

/// The PostgreSQL name of a bind's SQL type: the cast of its array in `UNNEST`.
pub trait PgType {
    const NAME: &'static str;
}

macro_rules! pg_type {
    ($($sql:ty => $name:literal),+ $(,)?) => {
        $(impl PgType for $sql {
            const NAME: &'static str = $name;
        })+
    };
}

pg_type!(SqlUuid => "uuid", Text => "text", Int4 => "int4", BigInt => "int8", Bool => "bool",
    Jsonb => "jsonb", Timestamptz => "timestamptz", Float4 => "float4");

/// A NULL-able column has its type's name: `NULL`s are elements of an ordinary array.
impl<T: PgType> PgType for Nullable<T> {
    const NAME: &'static str = T::NAME;
}

/// A column of a batch: its name and its PostgreSQL type.
pub type Column = (&'static str, &'static str);

/// The rows of one statement, column by column.
pub trait Batch<'a>: Sized {
    /// Each column's name and type, in the order of [`bind`](Batch::bind).
    fn columns() -> Vec<Column>;

    /// Binds the columns to `query`'s next placeholders, one array each, in
    /// [`columns`](Batch::columns) order: the placeholders of [`unnest`](Batch::unnest) given
    /// the number of the first.
    fn bind<'q>(self, query: Prepared<'q>) -> Prepared<'q>
    where
        'a: 'q;

    /// How many rows.
    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many placeholders [`bind`](Batch::bind) takes: the next batch's first is this more.
    fn width() -> usize {
        Self::columns().len()
    }

    /// The column names, comma-separated: an insert's column list or an alias's.
    fn names() -> String {
        let names: Vec<&str> = Self::columns().iter().map(|(name, _)| *name).collect();
        names.join(", ")
    }

    /// `UNNEST($first::type[], …)`: the rows [`bind`](Batch::bind) binds from `$first` on.
    fn unnest(first: usize) -> String {
        let arrays: Vec<String> = Self::columns()
            .iter()
            .enumerate()
            .map(|(i, (_, ty))| format!("${}::{ty}[]", first + i))
            .collect();
        format!("UNNEST({})", arrays.join(", "))
    }

    /// [`unnest`](Batch::unnest) as a table `alias` with the batch's column names, to select
    /// from by name (`alias.run_id`) or join.
    fn unnest_as(first: usize, alias: &str) -> String {
        format!("{} AS {alias} ({})", Self::unnest(first), Self::names())
    }
}

/// A batch of one table's rows, every column of the row a column of the table.
pub trait TableBatch<'a>: Batch<'a> {
    /// The table an [`insert`](TableBatch::insert) writes.
    const TABLE: &'static str;

    /// `INSERT INTO table (columns) SELECT * FROM UNNEST(…)`, to be followed by any
    /// `ON CONFLICT`, `WHERE` or `RETURNING`.
    fn insert(first: usize) -> String {
        format!(
            "INSERT INTO {} ({}) SELECT * FROM {}",
            Self::TABLE,
            Self::names(),
            Self::unnest(first)
        )
    }
}

/// A table's batch and more of its columns, side by side: a batch of the same table.
impl<'a, A: TableBatch<'a>, B: Batch<'a>> TableBatch<'a> for (A, B) {
    const TABLE: &'static str = A::TABLE;
}

/// Two batches of the same rows side by side, as one: the columns of `A`, then those of `B`
/// (the rows of a table that one write path has more columns of than the other).
impl<'a, A: Batch<'a>, B: Batch<'a>> Batch<'a> for (A, B) {
    fn columns() -> Vec<Column> {
        let mut columns = A::columns();
        columns.extend(B::columns());
        columns
    }

    fn bind<'q>(self, query: Prepared<'q>) -> Prepared<'q>
    where
        'a: 'q,
    {
        self.1.bind(self.0.bind(query))
    }

    fn len(&self) -> usize {
        debug_assert_eq!(self.0.len(), self.1.len(), "two batches of the same rows");
        self.0.len()
    }
}

/// Declares a row (`$row`, one value per column), its batch (`$rows`, one `Vec` per column) and
/// the batch's [`TableBatch`] implementation, all from one list of columns: `name: RustType as
/// SqlType`, in the table's names. A row that borrows its values is declared `$row<'a>`.
macro_rules! row_batch {
    (
        $(#[$meta:meta])*
        $row:ident$(<$lt:lifetime>)?, $rows:ident: $table:literal {
            $($(#[$col_meta:meta])* $col:ident: $rust:ty as $sql:ty,)+
        }
    ) => {
        $(#[$meta])*
        pub struct $row$(<$lt>)? {
            $($(#[$col_meta])* pub $col: $rust,)+
        }

        #[doc = concat!("Rows of [`", stringify!($row), "`], one `Vec` per column.")]
        #[derive(Default)]
        pub struct $rows$(<$lt>)? {
            $($col: Vec<$rust>,)+
        }

        impl$(<$lt>)? Extend<$row$(<$lt>)?> for $rows$(<$lt>)? {
            fn extend<I: IntoIterator<Item = $row$(<$lt>)?>>(&mut self, rows: I) {
                for row in rows {
                    $(self.$col.push(row.$col);)+
                }
            }
        }

        impl$(<$lt>)? FromIterator<$row$(<$lt>)?> for $rows$(<$lt>)? {
            fn from_iter<I: IntoIterator<Item = $row$(<$lt>)?>>(rows: I) -> Self {
                let mut batch = Self::default();
                batch.extend(rows);
                batch
            }
        }

        impl<'a> Batch<'a> for $rows$(<$lt>)? {
            fn columns() -> Vec<Column> {
                vec![$((stringify!($col), <$sql as PgType>::NAME)),+]
            }

            fn bind<'q>(self, query: Prepared<'q>) -> Prepared<'q>
            where
                'a: 'q,
            {
                query $(.bind::<Array<$sql>, _>(self.$col))+
            }

            fn len(&self) -> usize {
                // Every column has as many values: rows are pushed whole.
                [$(self.$col.len()),+][0]
            }
        }

        impl<'a> TableBatch<'a> for $rows$(<$lt>)? {
            const TABLE: &'static str = $table;
        }
    };
}

row_batch! {
    /// A run's row. Both write paths write these columns; the OTLP path adds its root's
    /// ([`RootRow`]).
    RunRow<'a>, RunRows: "agent_runs" {
        run_id: Uuid as SqlUuid,
        agent_id: &'a str as Text,
        agent_version: &'a str as Text,
        environment: &'a str as Text,
        status: &'a str as Text,
        started_at: OffsetDateTime as Timestamptz,
        ended_at: Option<OffsetDateTime> as Nullable<Timestamptz>,
        /// Its session and user, when known (docs/sessions.md).
        session_id: Option<&'a str> as Nullable<Text>,
        user_id: Option<&'a str> as Nullable<Text>,
    }
}

/// The [`RunRow`] of `$run`, a native run (`crate::model::NewRun`) or a root span's fields
/// (`crate::store::spans::Root`): the fields the two share by name are taken here, once; the
/// id, status and end are the caller's.
macro_rules! run_row {
    ($run:expr, run_id: $run_id:expr, status: $status:expr, ended_at: $ended_at:expr $(,)?) => {{
        let r = $run;
        $crate::store::batch::RunRow {
            run_id: $run_id,
            agent_id: &r.agent_id,
            agent_version: &r.agent_version,
            environment: &r.environment,
            status: $status.as_str(),
            started_at: r.started_at,
            ended_at: $ended_at,
            session_id: r.session_id.as_deref(),
            user_id: r.user_id.as_deref(),
        }
    }};
}

pub(crate) use run_row;

row_batch! {
    /// What an OTLP request knows of its run's root span, beside the run's row: the store
    /// merges the run's fields by it and derives the status (src/store/traces/).
    RootRow, RootRows: "agent_runs" {
        /// Whether the run's fields are the root span's (else provisional ones).
        otlp_root: bool as Bool,
        /// Whether the root span is in ERROR.
        otlp_root_error: bool as Bool,
    }
}

row_batch! {
    /// A step row, of a native run (no span ids) or of a span.
    StepRow<'a>, StepRows: "agent_steps" {
        step_id: Uuid as SqlUuid,
        run_id: Uuid as SqlUuid,
        seq: i32 as Int4,
        step_type: &'a str as Text,
        name: &'a str as Text,
        latency_ms: i32 as Int4,
        started_at: OffsetDateTime as Timestamptz,
        ended_at: OffsetDateTime as Timestamptz,
        metadata: &'a Value as Jsonb,
        span_id: Option<&'a str> as Nullable<Text>,
        parent_span_id: Option<&'a str> as Nullable<Text>,
        model: Option<&'a str> as Nullable<Text>,
        input_tokens: Option<i32> as Nullable<Int4>,
        output_tokens: Option<i32> as Nullable<Int4>,
        cost_nanos: Option<i64> as Nullable<BigInt>,
    }
}

/// The [`StepRow`] of `$step`, a native step (`crate::model::NewStep`) or a span's
/// (`crate::store::spans::SpanStep`): the fields the two share by name are taken here, once;
/// the run, `seq` and span ids are the caller's.
macro_rules! step_row {
    ($step:expr, run_id: $run_id:expr, seq: $seq:expr, span_id: $span_id:expr, parent_span_id: $parent:expr $(,)?) => {{
        let s = $step;
        $crate::store::batch::StepRow {
            step_id: s.step_id,
            run_id: $run_id,
            seq: $seq,
            step_type: s.step_type.as_str(),
            name: &s.name,
            latency_ms: s.latency_ms,
            started_at: s.started_at,
            ended_at: s.ended_at,
            metadata: &s.metadata,
            span_id: $span_id,
            parent_span_id: $parent,
            model: s.model.as_deref(),
            input_tokens: s.input_tokens,
            output_tokens: s.output_tokens,
            cost_nanos: s.cost_nanos,
        }
    }};
}

pub(crate) use step_row;

row_batch! {
    /// A failure row; `step_id` is none for a run-level failure.
    FailureRow<'a>, FailureRows: "agent_failures" {
        failure_id: Uuid as SqlUuid,
        run_id: Uuid as SqlUuid,
        step_id: Option<Uuid> as Nullable<SqlUuid>,
        failure_type: &'a str as Text,
        failure_code: &'a str as Text,
        message: &'a str as Text,
        metadata: &'a Value as Jsonb,
    }
}

row_batch! {
    /// A run's decisions and quality signals, beside its [`RunRow`] on the native path: each a
    /// JSON array of items ([`StoredDecision`], [`StoredSignal`]) in the order sent, or NULL for
    /// none (migration 000011; `agent_decisions` and `agent_quality_signals` are views of them).
    BehaviourRow, BehaviourRows: "agent_runs" {
        decisions: Option<JsonText> as Nullable<Jsonb>,
        quality_signals: Option<JsonText> as Nullable<Jsonb>,
    }
}

row_batch! {
    /// A run's cost beside its [`RunRow`]: the sum of its steps' (native path), or what its new
    /// steps add (OTLP); none when no step is priced (migration 000013).
    RunCostRow, RunCostRows: "agent_runs" {
        cost_nanos: Option<i64> as Nullable<BigInt>,
    }
}

impl RunCostRow {
    /// The row of steps that cost these (none for unpriced): their sum, none if none is priced.
    pub fn of(costs: impl IntoIterator<Item = Option<i64>>) -> Self {
        RunCostRow {
            cost_nanos: crate::model::cost::total(costs),
        }
    }
}

row_batch! {
    /// The run of a row beside it (`(RunIds, BehaviourRows)`: what to append to which run).
    RunId, RunIds: "agent_runs" {
        run_id: Uuid as SqlUuid,
    }
}

impl BehaviourRow {
    /// The row of these decisions and signals, in their order.
    pub fn of<'a>(
        decisions: impl IntoIterator<Item = &'a NewDecision>,
        signals: impl IntoIterator<Item = &'a NewSignal>,
    ) -> Self {
        BehaviourRow {
            decisions: JsonText::array(decisions.into_iter().map(StoredDecision::from)),
            quality_signals: JsonText::array(signals.into_iter().map(StoredSignal::from)),
        }
    }
}

/// JSON text, bound as a `jsonb` as it is: the rows are serialized once, straight from the
/// validated items, with no `serde_json::Value` built and cloned on the way (ingest cost,
/// docs/performance.md).
#[derive(Debug)]
pub struct JsonText(String);

impl JsonText {
    /// The JSON array of `items`, or none for no item.
    pub fn array<T: Serialize>(items: impl Iterator<Item = T>) -> Option<JsonText> {
        let items: Vec<T> = items.collect();
        if items.is_empty() {
            return None;
        }
        // Structs of strings, ids, finite numbers and `Value`s always serialize; were one not
        // to, dropping the items quietly would lose them: this fails loudly instead.
        // Sized for a typical item (about 200 bytes), instead of growing from 128 bytes.
        let mut text = Vec::with_capacity(256 * items.len());
        serde_json::to_writer(&mut text, &items)
            .unwrap_or_else(|e| unreachable!("a run's items serialize as JSON: {e}"));
        Some(JsonText(String::from_utf8(text).unwrap_or_else(|e| {
            unreachable!("serde_json writes UTF-8: {e}")
        })))
    }
}

impl ToSql<Jsonb, Pg> for JsonText {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        // The binary jsonb format: a version byte (1) and the value's text.
        out.write_all(&[1])?;
        out.write_all(self.0.as_bytes())?;
        Ok(IsNull::No)
    }
}

/// The stored item of a decision: the API's object without its run (the run's row holds it),
/// without what is null and without an empty `metadata` (the views read `{}`); the views read
/// `recorded_at` and `created_at` from the run.
#[derive(Serialize)]
pub struct StoredDecision<'a> {
    decision_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    step_id: Option<Uuid>,
    decision_type: &'a str,
    selected: &'a str,
    reason_code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    confidence: Option<f32>,
    #[serde(skip_serializing_if = "is_empty_object")]
    metadata: &'a Value,
}

impl<'a> From<&'a NewDecision> for StoredDecision<'a> {
    fn from(d: &'a NewDecision) -> Self {
        StoredDecision {
            decision_id: d.decision_id,
            step_id: d.step_id,
            decision_type: d.decision_type,
            selected: &d.selected,
            reason_code: d.reason_code,
            confidence: d.confidence,
            metadata: &d.metadata,
        }
    }
}

/// Whether `value` is `{}`: an item's metadata not stored.
fn is_empty_object(value: &&Value) -> bool {
    value.as_object().is_some_and(|m| m.is_empty())
}

/// The stored item of a quality signal (as [`StoredDecision`]).
#[derive(Serialize)]
pub struct StoredSignal<'a> {
    signal_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    step_id: Option<Uuid>,
    signal_type: &'a str,
    signal_code: &'a str,
    value: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    weight: Option<f32>,
    #[serde(skip_serializing_if = "is_empty_object")]
    metadata: &'a Value,
}

impl<'a> From<&'a NewSignal> for StoredSignal<'a> {
    fn from(q: &'a NewSignal) -> Self {
        StoredSignal {
            signal_id: q.signal_id,
            step_id: q.step_id,
            signal_type: q.signal_type,
            signal_code: q.signal_code,
            value: q.value,
            weight: q.weight,
            metadata: &q.metadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_names_the_columns_and_casts_the_binds_in_one_order() {
        assert_eq!(
            FailureRows::insert(3),
            "INSERT INTO agent_failures (failure_id, run_id, step_id, failure_type, failure_code, \
             message, metadata) SELECT * FROM UNNEST($3::uuid[], $4::uuid[], $5::uuid[], \
             $6::text[], $7::text[], $8::text[], $9::jsonb[])"
        );
        assert_eq!(
            RunRows::unnest_as(1, "u"),
            "UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::timestamptz[], $7::timestamptz[], $8::text[], $9::text[]) AS u (run_id, \
             agent_id, agent_version, environment, status, started_at, ended_at, session_id, \
             user_id)"
        );
        assert_eq!(StepRows::width(), 15);
        assert_eq!(
            <(RunRows, RootRows)>::unnest(1),
            "UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::timestamptz[], $7::timestamptz[], $8::text[], $9::text[], $10::bool[], \
             $11::bool[])"
        );
    }

    #[test]
    fn a_batch_binds_one_array_per_placeholder() {
        let roots: RootRows = [true, false]
            .into_iter()
            .map(|otlp_root| RootRow {
                otlp_root,
                otlp_root_error: false,
            })
            .collect();
        assert_eq!(roots.len(), 2);
        // Each bind takes its placeholder in order (walking the query fails on a bind whose
        // placeholder is missing), and the next bind the one after the batch's last.
        let sql = format!("SELECT * FROM {} WHERE $3", RootRows::unnest_as(1, "u"));
        let query = roots.bind(crate::db::prepared::prepared(sql));
        let query = query.bind::<Bool, _>(true);
        let text = diesel::debug_query::<diesel::pg::Pg, _>(&query).to_string();
        assert!(
            text.starts_with(
                "SELECT * FROM UNNEST($1::bool[], $2::bool[]) AS u (otlp_root, otlp_root_error) WHERE $3"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_runs_items_are_stored_without_nulls_or_empty_metadata_and_reals_as_sent() {
        let id = Uuid::nil();
        let decision = NewDecision {
            decision_id: id,
            step_id: None,
            decision_type: "tool_selection",
            selected: "api".into(),
            reason_code: "fresh_data_required",
            confidence: Some(0.82),
            metadata: serde_json::json!({}),
        };
        let signal = NewSignal {
            signal_id: id,
            step_id: Some(id),
            signal_type: "schema_valid",
            signal_code: "full_match",
            value: true,
            weight: None,
            metadata: serde_json::json!({"attempt": 2}),
        };
        let row = BehaviourRow::of([&decision], [&signal]);
        let nil = "00000000-0000-0000-0000-000000000000";
        assert_eq!(
            row.decisions.map(|t| t.0),
            Some(format!(
                r#"[{{"decision_id":"{nil}","decision_type":"tool_selection","selected":"api","reason_code":"fresh_data_required","confidence":0.82}}]"#
            ))
        );
        assert_eq!(
            row.quality_signals.map(|t| t.0),
            Some(format!(
                r#"[{{"signal_id":"{nil}","step_id":"{nil}","signal_type":"schema_valid","signal_code":"full_match","value":true,"metadata":{{"attempt":2}}}}]"#
            ))
        );
        let none = BehaviourRow::of([], []);
        assert!(none.decisions.is_none() && none.quality_signals.is_none());
    }
}

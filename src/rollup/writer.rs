//! Writers that count their own rows: the insert triggers off, and the deltas written instead.
//!
//! The insert triggers skip a transaction's statements while its setting
//! `agenttracer.rollup_by_writer` is `on` (migrations/2026-11-30-000004_rollup_by_writer), so a
//! write path can insert the deltas of its rows in one small statement ([`Deltas`]) instead of
//! the triggers' per-row SQL. A writer that turned the setting on and did not write the deltas
//! would leave its rows out of the stats, silently; so the setting is not reachable on its own.
//! The two ways to turn it on each write the deltas with it:
//!
//! - [`without_insert_triggers`], for a transaction's statements: it turns the triggers off and
//!   hands its body a [`SkipTriggers`], and the body must give back the [`DeltasWritten`] that only
//!   [`SkipTriggers::write`] makes, which inserts the deltas and turns the triggers back on in one
//!   statement (with no deltas it sends nothing). The body's rows and their deltas cannot come apart: a body that fails returns
//!   its error, and its transaction (which this requires) rolls back the setting with the rows.
//! - [`single_statement`], for one statement that inserts rows and their deltas together.
//!
//! Updates and deletes always go through the triggers.

use std::sync::LazyLock;

use diesel::result::{Error as DieselError, QueryResult};
use diesel_async::{AnsiTransactionManager, AsyncPgConnection, RunQueryDsl, TransactionManager};

use super::deltas::{Deltas, insert};
use crate::db::prepared::prepared;

/// The transaction-local setting the insert triggers' `WHEN` reads.
macro_rules! setting {
    () => {
        "agenttracer.rollup_by_writer"
    };
}

/// Turns the insert triggers off for the rest of the transaction.
const TRIGGERS_OFF: &str = concat!("SELECT set_config('", setting!(), "', 'on', true)");

/// The same as a condition (true), for the `WHERE` of an insert.
const TRIGGERS_OFF_CONDITION: &str = concat!("set_config('", setting!(), "', 'on', true) = 'on'");

/// Inserts the deltas bound to `$1`…`$6`, then turns the insert triggers back on.
static WRITE_DELTAS: LazyLock<String> = LazyLock::new(|| {
    format!(
        concat!(
            "WITH deltas AS ({}) SELECT set_config('",
            setting!(),
            "', 'off', true)"
        ),
        insert(1)
    )
});

/// The insert triggers are off for the current transaction: the rows it inserts meanwhile are
/// the holder's to count, with [`SkipTriggers::write`].
#[must_use = "the insert triggers are off: write the deltas with `SkipTriggers::write`"]
pub struct SkipTriggers(());

/// Proof that a [`SkipTriggers`] wrote its deltas: what a body of [`without_insert_triggers`]
/// must return.
#[must_use]
pub struct DeltasWritten(());

impl SkipTriggers {
    /// Inserts `deltas` and turns the insert triggers back on (one statement): later inserts in
    /// this transaction go through the triggers again. With no deltas (the body counted nothing:
    /// a resent run) it sends nothing, to cost no round trip there, and the triggers then stay
    /// off until the transaction ends, which its callers do right after.
    pub async fn write(
        self,
        conn: &mut AsyncPgConnection,
        deltas: &Deltas<'_>,
    ) -> QueryResult<DeltasWritten> {
        if deltas.is_empty() {
            return Ok(DeltasWritten(()));
        }
        deltas
            .bind(prepared(WRITE_DELTAS.as_str()))
            .execute(conn)
            .await?;
        Ok(DeltasWritten(()))
    }
}

/// Runs `body` with the insert triggers off. It must be called inside a transaction (or a
/// savepoint), and `body` must write the deltas of the rows it inserts ([`SkipTriggers::write`])
/// to return its result.
pub async fn without_insert_triggers<T>(
    conn: &mut AsyncPgConnection,
    body: impl AsyncFnOnce(&mut AsyncPgConnection, SkipTriggers) -> QueryResult<(T, DeltasWritten)>,
) -> QueryResult<T> {
    // Outside a transaction block the setting would last one statement, and the rows after it
    // would be counted twice: by the triggers and by the deltas.
    let depth = AnsiTransactionManager::transaction_manager_status_mut(conn).transaction_depth()?;
    if depth.is_none() {
        return Err(DieselError::QueryBuilderError(
            "the insert triggers can only be skipped inside a transaction".into(),
        ));
    }
    prepared(TRIGGERS_OFF).execute(conn).await?;
    let (result, DeltasWritten(())) = body(conn, SkipTriggers(())).await?;
    Ok(result)
}

/// One statement that inserts rows and their deltas, with the insert triggers off for its rows.
/// It must run outside a transaction block, where it commits on its own and the setting ends
/// with it (in one, the setting would outlast the statement: it cannot turn the triggers back on
/// itself, as its last inserts finish after its `SELECT`). `sql` has two markers:
///
/// - `{triggers_off}`, a condition that turns the triggers off (and is true), for the `WHERE`
///   of the first insert: a statement-level trigger's `WHEN` is evaluated when its insert has
///   finished, so every insert that waits for the first one (`WHERE EXISTS (SELECT FROM first)`)
///   sees the setting;
/// - `{insert_deltas}`, the insert of the deltas that [`Deltas::bind`] binds to `$first`…`$first+5`.
///
/// Binding fewer values than the statement has placeholders fails the statement.
pub fn single_statement(sql: &str, first: usize) -> String {
    debug_assert!(
        sql.matches("{triggers_off}").count() == 1 && sql.matches("{insert_deltas}").count() == 1,
        "a statement that skips the insert triggers inserts its deltas: {sql}"
    );
    sql.replace("{triggers_off}", TRIGGERS_OFF_CONDITION)
        .replace("{insert_deltas}", &insert(first))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_statement_turns_the_triggers_off_and_inserts_its_deltas() {
        let sql = single_statement(
            "WITH a AS (INSERT INTO t SELECT $1 WHERE {triggers_off} RETURNING 1), \
             d AS ({insert_deltas} WHERE EXISTS (SELECT FROM a)) SELECT 1",
            2,
        );
        assert!(sql.contains(
            "WHERE set_config('agenttracer.rollup_by_writer', 'on', true) = 'on' RETURNING"
        ));
        assert!(sql.contains("INSERT INTO stats_rollup"));
        assert!(sql.contains(
            "UNNEST($2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::jsonb[])"
        ));
        assert!(!sql.contains('{'));
    }

    #[test]
    fn writing_the_deltas_turns_the_triggers_back_on() {
        assert!(WRITE_DELTAS.starts_with("WITH deltas AS (INSERT INTO stats_rollup"));
        assert!(
            WRITE_DELTAS
                .ends_with("SELECT set_config('agenttracer.rollup_by_writer', 'off', true)")
        );
        assert_eq!(
            TRIGGERS_OFF,
            "SELECT set_config('agenttracer.rollup_by_writer', 'on', true)"
        );
    }
}

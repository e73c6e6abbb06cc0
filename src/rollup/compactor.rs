//! The compactor: the ingest role merges each key's delta rows into one row every few seconds,
//! so a stats query reads about one row per key and hour, day or month, however many writes made
//! it (`agenttracer_rollup_compact`, migrations/2026-11-23-000003_stats_rollup).

use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::Integer;
use diesel_async::RunQueryDsl;
use tokio_util::sync::CancellationToken;

use crate::db::prepared::prepared;
use crate::db::{DbError, PgPool};

/// How often the compactor runs, and how many keys one of its transactions merges.
pub const INTERVAL: Duration = Duration::from_secs(5);
pub const KEYS_PER_TRANSACTION: i32 = 500;

#[derive(QueryableByName)]
struct Merged {
    #[diesel(sql_type = Integer)]
    merged: i32,
}

/// Merges every key that has deltas, a bounded number of keys per transaction, or stops between
/// two transactions once `stop` is cancelled; returns how many keys it merged.
pub async fn compact(pool: &PgPool, stop: &CancellationToken) -> Result<usize, DbError> {
    let mut total = 0;
    loop {
        let mut conn = pool.get().await?;
        let Merged { merged } = prepared("SELECT agenttracer_rollup_compact($1) AS merged")
            .bind::<Integer, _>(KEYS_PER_TRANSACTION)
            .get_result(&mut conn)
            .await?;
        total += merged as usize;
        if merged < KEYS_PER_TRANSACTION || stop.is_cancelled() {
            return Ok(total);
        }
    }
}

/// Runs [`compact`] every [`INTERVAL`], the first time one interval after startup (when the pool
/// is busiest opening connections), until `stop` is cancelled: at shutdown a compaction in
/// progress ends after its current transaction (src/startup/tasks.rs).
pub async fn run(pool: PgPool, stop: CancellationToken) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + INTERVAL, INTERVAL);
    while stop.run_until_cancelled(tick.tick()).await.is_some() {
        match compact(&pool, &stop).await {
            Ok(merged) => tracing::debug!(merged, "stats rollups compacted"),
            Err(error) => tracing::warn!(%error, "stats rollup compaction failed; will retry"),
        }
    }
}

//! Retention: with `retention.days` set, the ingest role purges runs that started longer ago,
//! in batches of `retention.batch_size` (each its own short transaction, skipping rows that
//! writers hold), every `retention.interval_s`.

use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::config::RetentionConfig;
use crate::db::{DbError, PgPool};
use crate::store;

/// Purges once: deletes batch after batch until none is left, or `stop` is cancelled between two;
/// returns how many runs it deleted.
pub async fn purge(
    pool: &PgPool,
    cfg: &RetentionConfig,
    stop: &CancellationToken,
) -> Result<usize, DbError> {
    let Some(days) = cfg.days else { return Ok(0) };
    let cutoff = OffsetDateTime::now_utc() - time::Duration::days(i64::from(days));
    let mut total = 0;
    loop {
        let mut conn = pool.get().await?;
        let deleted = store::purge_before(&mut conn, cutoff, cfg.batch_size).await?;
        drop(conn);
        total += deleted;
        metrics::counter!("runs_purged_total").increment(deleted as u64);
        if deleted < cfg.batch_size as usize {
            return Ok(total);
        }
        // Leave room for ingest between batches (and stop there at shutdown).
        let pause = tokio::time::sleep(Duration::from_millis(50));
        if stop.run_until_cancelled(pause).await.is_none() {
            return Ok(total);
        }
    }
}

/// Runs [`purge`] now and every `interval_s` until `stop` is cancelled.
pub async fn run(pool: PgPool, cfg: RetentionConfig, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(cfg.interval_s));
    while stop.run_until_cancelled(tick.tick()).await.is_some() {
        match purge(&pool, &cfg, &stop).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(runs = n, days = cfg.days, "retention purged old runs"),
            Err(error) => tracing::warn!(%error, "retention purge failed; will retry"),
        }
    }
}

//! What the route sets share: a pool with the bound on each request's database work ([`Db`]),
//! and what every listener of the process serves `/metrics` from ([`AppState`]).
//!
//! Each role's routes have a state of their own, registered on the listeners that mount them
//! (`ingest::IngestState` with the writer pool, `query::QueryState` with the read-only pool), so
//! a route cannot run without the pool it needs.

use std::time::Duration;

use diesel_async::AsyncPgConnection;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::DatabaseConfig;
use crate::db::{Access, PgPool};
use crate::error::ApiError;

/// What every listener of the process shares: one metrics registry, and the process's pools
/// (the writer pool with the ingest role, the read-only pool with the query role).
pub struct AppState {
    pub metrics: PrometheusHandle,
    pub pools: Vec<(Access, PgPool)>,
}

/// A pool, and the bound on each request's work on it.
#[derive(Clone)]
pub struct Db {
    pool: PgPool,
    limit: Duration,
}

impl Db {
    /// The bound is the acquire timeout plus two statement timeouts (`[database]`).
    pub fn new(pool: PgPool, config: &DatabaseConfig) -> Self {
        let limit =
            Duration::from_millis(config.acquire_timeout_ms + 2 * config.statement_timeout_ms);
        Db { pool, limit }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Runs `work` on a connection of the pool, within [`Self::bounded`]'s limit.
    pub async fn run<T>(
        &self,
        work: impl AsyncFnOnce(&mut AsyncPgConnection) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.bounded(async {
            let mut conn = self.pool.get().await?;
            work(&mut conn).await
        })
        .await
    }

    /// Bounds a request's database work. Past the bound the answer is 503, so a stalled
    /// database never hangs a request.
    pub async fn bounded<T>(
        &self,
        work: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        match tokio::time::timeout(self.limit, work).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(
                    limit_ms = self.limit.as_millis() as u64,
                    "database work timed out"
                );
                Err(ApiError::Unavailable(
                    "Database did not answer in time, retry later".into(),
                ))
            }
        }
    }
}

//! The application state every route shares: configuration and the two typed pools.

use std::sync::Arc;
use std::time::Duration;

use diesel_async::AsyncPgConnection;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::config::Config;
use crate::db::PgPool;
use crate::db::schema_gate::SchemaGate;
use crate::error::ApiError;
use crate::ingest::group::GroupCommit;
use crate::model::input::Rules;

pub struct AppState {
    pub config: Arc<Config>,
    /// The writer pool (`database.url`); present when the ingest listener runs.
    pub write: Option<PgPool>,
    /// The read-only pool (`database.read_url`); present when the query listener runs.
    pub read: Option<PgPool>,
    pub metrics: PrometheusHandle,
    /// Closed (503) while the schema is behind what the query role reads.
    pub schema: Arc<SchemaGate>,
    /// Group commit of single-run ingest; present with the writer pool.
    pub group: Option<GroupCommit>,
    /// How request bodies are read (size, deadline, the in-flight budget).
    pub bodies: crate::ingest::body::BodyLimits,
}

impl AppState {
    pub fn db_write(&self) -> Result<&PgPool, ApiError> {
        self.write
            .as_ref()
            .ok_or_else(|| ApiError::internal("this role has no writer pool"))
    }

    /// The read pool, once the schema is known not to be behind.
    pub fn db_read(&self) -> Result<&PgPool, ApiError> {
        self.schema
            .check()
            .map_err(|behind| ApiError::Unavailable(behind.0))?;
        self.read
            .as_ref()
            .ok_or_else(|| ApiError::internal("this role has no read pool"))
    }

    pub fn rules(&self) -> Rules {
        Rules::from(self.config.as_ref())
    }

    /// Runs `work` on a connection of the read pool, within [`Self::bounded`]'s limit.
    pub async fn read<T>(
        &self,
        work: impl AsyncFnOnce(&mut AsyncPgConnection) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.on(self.db_read()?, work).await
    }

    /// Runs `work` on a connection of the writer pool, within [`Self::bounded`]'s limit.
    pub async fn write<T>(
        &self,
        work: impl AsyncFnOnce(&mut AsyncPgConnection) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.on(self.db_write()?, work).await
    }

    async fn on<T>(
        &self,
        pool: &PgPool,
        work: impl AsyncFnOnce(&mut AsyncPgConnection) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.bounded(async {
            let mut conn = pool.get().await?;
            work(&mut conn).await
        })
        .await
    }

    /// Bounds a request's database work: see [`bounded`].
    pub async fn bounded<T>(
        &self,
        work: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        bounded(&self.config.database, work).await
    }
}

/// What validation accepts: the limits of `[ingest]` and `privacy.mode`.
impl From<&Config> for Rules {
    fn from(config: &Config) -> Rules {
        let ingest = &config.ingest;
        Rules {
            max_steps: ingest.max_steps_per_run,
            max_metadata_depth: ingest.max_metadata_depth,
            max_metadata_bytes: ingest.max_metadata_bytes,
            max_string_chars: ingest.max_string_chars,
            privacy: config.privacy.mode,
        }
    }
}

/// Bounds database work: the acquire timeout plus two statement timeouts. Past it the answer is
/// 503, so a stalled database never hangs a request.
pub async fn bounded<T>(
    db: &crate::config::DatabaseConfig,
    work: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let limit = Duration::from_millis(db.acquire_timeout_ms + 2 * db.statement_timeout_ms);
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(
                limit_ms = limit.as_millis() as u64,
                "database work timed out"
            );
            Err(ApiError::Unavailable(
                "Database did not answer in time, retry later".into(),
            ))
        }
    }
}

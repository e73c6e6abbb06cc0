//! The query routes' state: the read-only pool, the schema gate every route waits on, and what
//! a list page may carry.

use std::sync::Arc;
use std::time::Duration;

use diesel_async::AsyncPgConnection;

use super::live::LiveFeed;
use crate::config::Config;
use crate::db::PgPool;
use crate::db::read::PageBudget;
use crate::db::schema_gate::SchemaGate;
use crate::error::ApiError;
use crate::state::Db;

pub struct QueryState {
    /// The read-only pool (`database.read_url`).
    pub db: Db,
    /// Closed (503) while the schema is behind what this binary reads.
    pub schema: Arc<SchemaGate>,
    pub budget: PageBudget,
    /// Newly committed runs, for the live streams (its poller is a background task).
    pub live: Arc<LiveFeed>,
}

impl QueryState {
    pub fn new(config: &Config, pool: PgPool, schema: Arc<SchemaGate>) -> QueryState {
        let budget = PageBudget {
            steps_per_run: config.query.list_max_steps_per_run,
            step_bytes: config.query.list_max_step_bytes,
        };
        QueryState {
            live: LiveFeed::new(
                pool.clone(),
                budget,
                Duration::from_millis(config.query.stream_poll_ms),
                Duration::from_secs(config.query.stream_heartbeat_s),
            ),
            db: Db::new(pool, &config.database),
            schema,
            budget,
        }
    }

    /// 503 while the schema is behind what this binary reads.
    pub fn ready(&self) -> Result<(), ApiError> {
        self.schema
            .check()
            .map_err(|behind| ApiError::Unavailable(behind.0))
    }

    /// Runs `work` on a connection of the read pool, once the schema is known not to be behind.
    pub async fn read<T>(
        &self,
        work: impl AsyncFnOnce(&mut AsyncPgConnection) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.ready()?;
        self.db.run(work).await
    }
}

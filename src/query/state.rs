//! The query routes' state: the read-only pool, the schema gate every route waits on, and what
//! a list page may carry.

use std::sync::Arc;

use diesel_async::AsyncPgConnection;

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
}

impl QueryState {
    pub fn new(config: &Config, pool: PgPool, schema: Arc<SchemaGate>) -> QueryState {
        QueryState {
            db: Db::new(pool, &config.database),
            schema,
            budget: PageBudget {
                steps_per_run: config.query.list_max_steps_per_run,
                step_bytes: config.query.list_max_step_bytes,
            },
        }
    }

    /// Runs `work` on a connection of the read pool, once the schema is known not to be behind.
    pub async fn read<T>(
        &self,
        work: impl AsyncFnOnce(&mut AsyncPgConnection) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.schema
            .check()
            .map_err(|behind| ApiError::Unavailable(behind.0))?;
        self.db.run(work).await
    }
}

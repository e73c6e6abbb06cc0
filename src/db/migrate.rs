//! Embedded migrations, applied by `agenttracer migrate` and at ingest start, under a PostgreSQL
//! advisory lock so that several ingest replicas can start at once.

use diesel::connection::SimpleConnection;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel::result::Error as DieselError;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::pooled_connection::deadpool::PoolError;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use super::{Access, PgConn, PoolSetupError};
use crate::config::{DatabaseConfig, DatabaseUrl};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The advisory lock key every migrating process takes ("agenttr" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x0061_6765_6e74_7472;

/// Why migrating failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Setup(#[from] PoolSetupError),
    #[error("cannot connect to migrate: {}", super::describe_pool_error(.0))]
    Connect(PoolError),
    #[error("cannot take the migration lock: {0}")]
    Lock(DieselError),
    #[error("migration failed: {0}")]
    Migration(Box<dyn std::error::Error + Send + Sync>),
    #[error("cannot release the migration lock: {0}")]
    Unlock(DieselError),
    #[error("migration task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Applies every pending migration over a connection to `url` (TLS as the URL asks, no statement
/// timeout), under the advisory lock; returns the versions applied.
pub async fn run(url: &DatabaseUrl, db: &DatabaseConfig) -> Result<Vec<String>, MigrateError> {
    let pool = super::build_pool(url, db, Access::Migrate)?;
    let conn = pool.get().await.map_err(MigrateError::Connect)?;
    let applied = tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<PgConn>::from(conn);
        conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
            .map_err(MigrateError::Lock)?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map(|versions| versions.iter().map(ToString::to_string).collect())
            .map_err(MigrateError::Migration);
        let unlocked =
            conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"));
        let applied = applied?;
        unlocked.map_err(MigrateError::Unlock)?;
        Ok(applied)
    })
    .await?;
    pool.close();
    applied
}

/// The newest migration version this binary knows.
pub fn latest_version() -> Option<String> {
    MigrationSource::<Pg>::migrations(&MIGRATIONS)
        .ok()?
        .iter()
        .map(|m| m.name().version().to_string())
        .max()
}

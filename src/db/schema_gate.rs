//! The query role never migrates. While the database's schema is behind the newest migration this
//! binary knows, the query listener stays up but answers `/readyz` and its routes with 503 (saying
//! why), and rechecks every second until the ingest role or `agenttracer migrate` catches it up.
//! A schema ahead of the binary (migrations run first during an upgrade) is fine.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{Nullable, Text};
use diesel_async::RunQueryDsl;

use tokio_postgres::error::SqlState;
use tokio_util::sync::CancellationToken;

use super::{PgPool, error, migrate};

const RECHECK: Duration = Duration::from_secs(1);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SchemaState {
    /// Not known yet (the database could not be asked); requests go through.
    Unknown,
    /// Behind this binary; the reason says what to do.
    Behind(String),
    Ready,
}

/// The schema is behind this binary: the reason, which says what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SchemaBehind(pub String);

#[derive(Debug)]
pub struct SchemaGate {
    state: RwLock<SchemaState>,
}

#[derive(QueryableByName)]
struct Applied {
    #[diesel(sql_type = Nullable<Text>)]
    version: Option<String>,
}

impl SchemaGate {
    /// A gate that never closes (for roles that migrate the schema themselves).
    pub fn ready() -> Arc<Self> {
        Arc::new(Self {
            state: RwLock::new(SchemaState::Ready),
        })
    }

    pub fn unknown() -> Arc<Self> {
        Arc::new(Self {
            state: RwLock::new(SchemaState::Unknown),
        })
    }

    pub fn state(&self) -> SchemaState {
        self.state
            .read()
            .map(|s| s.clone())
            .unwrap_or(SchemaState::Unknown)
    }

    /// `Err(reason)` while the schema is known to be behind.
    pub fn check(&self) -> Result<(), SchemaBehind> {
        match self.state() {
            SchemaState::Behind(reason) => Err(SchemaBehind(reason)),
            _ => Ok(()),
        }
    }

    fn set(&self, state: SchemaState) {
        if let Ok(mut current) = self.state.write() {
            *current = state;
        }
    }

    /// Asks the database once and records the answer.
    pub async fn refresh(&self, pool: &PgPool) -> SchemaState {
        let Some(wanted) = migrate::latest_version() else {
            self.set(SchemaState::Ready);
            return SchemaState::Ready;
        };
        let state = match pool.get().await {
            Err(_) => SchemaState::Unknown,
            Ok(mut conn) => {
                let applied = diesel::sql_query(
                    "SELECT max(version) AS version FROM __diesel_schema_migrations",
                )
                .get_result::<Applied>(&mut conn)
                .await;
                match applied {
                    Ok(Applied { version: Some(v) }) if v >= wanted => SchemaState::Ready,
                    Ok(Applied { version }) => SchemaState::Behind(format!(
                        "Database schema is behind this version (at {}, needs {wanted}): run `agenttracer migrate`",
                        version.as_deref().unwrap_or("none")
                    )),
                    // No migrations table (42P01).
                    Err(e) if error::sqlstate(&e) == Some(SqlState::UNDEFINED_TABLE.code()) => {
                        SchemaState::Behind(format!(
                            "Database schema is missing (needs {wanted}): run `agenttracer migrate`"
                        ))
                    }
                    Err(_) => SchemaState::Unknown,
                }
            }
        };
        self.set(state.clone());
        state
    }

    /// Rechecks until the schema is ready (or `stop` is cancelled), logging why it is not.
    pub async fn watch(self: Arc<Self>, pool: PgPool, stop: CancellationToken) {
        let mut last_reason = None;
        loop {
            match self.refresh(&pool).await {
                SchemaState::Ready => {
                    if last_reason.is_some() {
                        tracing::info!("database schema is up to date; query routes are open");
                    }
                    return;
                }
                SchemaState::Behind(reason) => {
                    if last_reason.as_ref() != Some(&reason) {
                        tracing::warn!(%reason, "query routes answer 503 until the schema is migrated");
                    }
                    last_reason = Some(reason);
                }
                SchemaState::Unknown => {}
            }
            if stop
                .run_until_cancelled(tokio::time::sleep(RECHECK))
                .await
                .is_none()
            {
                return;
            }
        }
    }
}

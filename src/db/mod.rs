//! PostgreSQL: the writer pool and the read-only pool, migrations, and the shared run reader.
//!
//! Every connection sets `application_name`, `statement_timeout` and `lock_timeout`; the read
//! pool's also sets `default_transaction_read_only = on`, so a query listener cannot write even
//! when it is given the writer's credentials.

pub mod error;
pub mod migrate;
pub mod prepared;
pub mod read;
pub mod schema;
pub mod schema_gate;
pub mod tls;

use std::time::Duration;

use deadpool::Runtime;
use diesel::ConnectionError;
use diesel_async::pooled_connection::deadpool::{Object, Pool, PoolError};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use futures_util::FutureExt;
use secrecy::ExposeSecret;

use crate::config::{DatabaseConfig, DatabaseUrl};

pub use self::error::{DbError, ErrorClass};

pub type PgPool = Pool<AsyncPgConnection>;
pub type PgConn = Object<AsyncPgConnection>;

/// Which credentials and session settings a pool uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Write,
    ReadOnly,
    /// Migrations: the writer, without statement or lock timeouts (a migration must finish).
    Migrate,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Write => "write",
            Access::ReadOnly => "read",
            Access::Migrate => "migrate",
        }
    }
}

/// The session settings every connection of a pool starts with.
fn session_setup(cfg: &DatabaseConfig, access: Access) -> String {
    if access == Access::Migrate {
        return "SET application_name = 'agenttracer-migrate'; SET statement_timeout = 0; SET lock_timeout = 0;".into();
    }
    // No parallel query: every statement of the service reads or writes a handful of rows by
    // index (stats come from the rollups), and a parallel plan forks worker processes for each
    // execution. Steps per run are easily misestimated (a sampled run_id looks rarer than it is),
    // which made the steps of a list page a parallel bitmap scan: two forks per request.
    // No JIT either: no statement of the service runs long enough to repay compiling it, and a
    // cost estimate inflated by a disabled plan node (the rollup triggers') made PostgreSQL
    // compile one on every execution, seconds each (migration 000006 also sets it on them).
    let mut sql = format!(
        "SET application_name = 'agenttracer-{}'; SET statement_timeout = {}; SET lock_timeout = {}; \
         SET max_parallel_workers_per_gather = 0; SET jit = off;",
        access.as_str(),
        cfg.statement_timeout_ms,
        cfg.lock_timeout_ms
    );
    if access == Access::ReadOnly {
        sql.push_str(" SET default_transaction_read_only = on;");
    }
    sql
}

/// Why a pool could not be built (its configuration, never the database: see [`build_pool`]).
#[derive(Debug, thiserror::Error)]
pub enum PoolSetupError {
    #[error(transparent)]
    Tls(#[from] tls::TlsConfigError),
    #[error("cannot build the {access} pool: {source}")]
    Build {
        access: &'static str,
        source: diesel_async::pooled_connection::deadpool::BuildError,
    },
}

/// Builds a pool; connections are made lazily, so this succeeds while the database is down.
/// Over TLS when the URL's `sslmode` asks for it (src/db/tls.rs).
pub fn build_pool(
    url: &DatabaseUrl,
    cfg: &DatabaseConfig,
    access: Access,
) -> Result<PgPool, PoolSetupError> {
    let setup = session_setup(cfg, access);
    let tls = match url.wants_tls() {
        true => Some(tls::client_config(cfg.ssl_root_cert.as_deref())?),
        false => None,
    };
    tracing::debug!(
        pool = access.as_str(),
        host = url.host().unwrap_or("(from the URL's parameters)"),
        tls = tls.is_some(),
        "database pool"
    );
    let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
    // A returned connection is reused without a `SELECT 1` round trip: one that broke (closed
    // socket, broken transaction) is dropped by diesel-async's `is_broken` check instead, and a
    // request that meets a dead connection gets a 503 and the next one a fresh connection.
    manager_config.recycling_method = RecyclingMethod::Fast;
    manager_config.custom_setup = Box::new(move |url| {
        let setup = setup.clone();
        let tls = tls.clone();
        async move {
            let mut conn = match tls {
                None => AsyncPgConnection::establish(url).await?,
                Some(config) => {
                    let connector =
                        tokio_postgres_rustls::MakeRustlsConnect::new((*config).clone());
                    let (client, connection) = tokio_postgres::connect(url, connector)
                        .await
                        .map_err(|e| ConnectionError::BadConnection(describe_pg_error(&e)))?;
                    AsyncPgConnection::try_from_client_and_connection(client, connection).await?
                }
            };
            conn.batch_execute(&setup)
                .await
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
            Ok(conn)
        }
        .boxed()
    });
    // The password leaves its secret here, for the pool's connections only.
    let manager = AsyncDieselConnectionManager::new_with_config(
        url.connection_string().expose_secret(),
        manager_config,
    );
    let size = if access == Access::Migrate {
        1
    } else {
        cfg.max_connections()
    };
    let timeout = Some(cfg.acquire_timeout());
    Pool::builder(manager)
        .max_size(size)
        .wait_timeout(timeout)
        .create_timeout(timeout)
        .recycle_timeout(timeout)
        .runtime(Runtime::Tokio1)
        .build()
        .map_err(|source| PoolSetupError::Build {
            access: access.as_str(),
            source,
        })
}

/// A pool error as an operator may read it: the cause, never the URL or its credentials.
pub fn describe_pool_error(err: &PoolError) -> String {
    match err {
        PoolError::Timeout(_) => {
            "connection pool exhausted (no connection within the acquire timeout)".into()
        }
        PoolError::Backend(e) => strip_credentials(&e.to_string()),
        PoolError::Closed => "connection pool is closed".into(),
        PoolError::NoRuntimeSpecified => "connection pool has no runtime".into(),
        PoolError::PostCreateHook(e) => strip_credentials(&e.to_string()),
    }
}

/// A tokio-postgres error with its cause: its own text is only "db error" or "error connecting".
pub fn describe_pg_error(err: &tokio_postgres::Error) -> String {
    use std::error::Error;
    match err.source() {
        Some(source) => strip_credentials(&format!("{err}: {source}")),
        None => strip_credentials(&err.to_string()),
    }
}

/// Removes anything URL-like with credentials from a message.
pub fn strip_credentials(msg: &str) -> String {
    msg.split_whitespace()
        .map(|word| {
            if word.contains("://") && word.contains('@') {
                "<url>"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs `SELECT 1` on a connection from `pool` within `within`; the error says why not.
pub async fn ping(pool: &PgPool, within: Duration) -> Result<(), DbError> {
    let check = async {
        let mut conn = pool.get().await?;
        conn.batch_execute("SELECT 1").await?;
        Ok(())
    };
    match tokio::time::timeout(within, check).await {
        Ok(result) => result,
        Err(_) => Err(DbError::Timeout(within)),
    }
}

/// Opens `n` connections at once and returns them to the pool, so that the first burst of
/// requests does not wait for logins (`database.pool_size` connections are kept, as the
/// original's pool kept them). Failures are ignored: requests will retry on their own.
pub async fn warm_up(pool: PgPool, n: usize) {
    let conns = futures_util::future::join_all((0..n).map(|_| pool.get())).await;
    let opened = conns.iter().filter(|c| c.is_ok()).count();
    tracing::debug!(opened, wanted = n, "database pool warmed up");
}

/// Pool gauges for `/metrics`.
pub fn record_pool_metrics(pool: &PgPool, access: Access) {
    let status = pool.status();
    let name = access.as_str();
    let in_use = status.size.saturating_sub(status.available);
    metrics::gauge!("db_pool_connections", "pool" => name, "state" => "idle")
        .set(status.available as f64);
    metrics::gauge!("db_pool_connections", "pool" => name, "state" => "in_use").set(in_use as f64);
    metrics::gauge!("db_pool_max_connections", "pool" => name).set(status.max_size as f64);
    metrics::gauge!("db_pool_waiting_requests", "pool" => name).set(status.waiting as f64);
}

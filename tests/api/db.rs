//! Migrations (concurrent starts, down and up again) and the query role's schema gate.

use std::time::Duration;

use agenttracer::db::migrate::{self, MIGRATIONS};
use agenttracer::role::Role;
use diesel::Connection;
use diesel::migration::MigrationSource;
use diesel::pg::Pg;
use diesel_async::AsyncPgConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::MigrationHarness;

use crate::helpers::*;

fn agent_tables(db: &TestDb) -> String {
    db.psql("SELECT count(*) FROM information_schema.tables WHERE table_name LIKE 'agent_%'")
}

/// An empty database (no template), with the read-only login's grants.
fn empty_db() -> TestDb {
    let db = TestDb::new();
    db.unmigrate();
    db
}

#[tokio::test]
async fn replicas_starting_together_migrate_once_under_the_advisory_lock() {
    let db = empty_db();
    let url = database_url(&db.writer_url());
    let db_cfg = agenttracer::config::DatabaseConfig::default();
    let runs = (0..4).map(|_| migrate::run(&url, &db_cfg));
    let results = futures_util::future::join_all(runs).await;
    let applied: Vec<usize> = results
        .into_iter()
        .map(|r| r.expect("every replica starts").len())
        .collect();
    let known = MigrationSource::<Pg>::migrations(&MIGRATIONS)
        .unwrap()
        .len();
    assert!(known >= 2);
    // One replica applied every migration, the others found nothing left to do.
    let mut sorted = applied.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [0, 0, 0, known], "{applied:?}");
    assert_eq!(agent_tables(&db), "5");
}

#[test]
fn migrations_go_down_and_up_again() {
    let db = TestDb::new();
    let mut conn =
        AsyncConnectionWrapper::<AsyncPgConnection>::establish(&db.writer_url()).unwrap();
    let reverted = conn.revert_all_migrations(MIGRATIONS).unwrap();
    assert_eq!(
        reverted.len(),
        MigrationSource::<Pg>::migrations(&MIGRATIONS)
            .unwrap()
            .len()
    );
    assert_eq!(agent_tables(&db), "0");
    conn.run_pending_migrations(MIGRATIONS).unwrap();
    assert_eq!(agent_tables(&db), "5");
}

#[tokio::test]
async fn a_query_role_on_an_old_schema_answers_503_until_it_is_migrated() {
    let db = empty_db();
    let writer = db.writer_url();
    let mut config = test_config(&db);
    config.server.role = Role::Query;
    let app = spawn_app_on(db, config).await;

    let res = app.get(&app.query, "/readyz").await;
    let detail = unavailable_detail(res).await;
    assert!(detail.contains("agenttracer migrate"), "{detail}");
    let res = app.get_run(&uuid::Uuid::new_v4().to_string()).await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(app.get(&app.query, "/livez").await.status(), 200);

    migrate::run(&database_url(&writer), &Default::default())
        .await
        .unwrap();
    let opened = eventually(Duration::from_secs(10), || async {
        app.get(&app.query, "/readyz").await.status() == 200
    })
    .await;
    assert!(opened, "the gate opens once the schema is migrated");
    assert_eq!(
        app.get_run(&uuid::Uuid::new_v4().to_string())
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn a_schema_ahead_of_the_query_role_is_fine() {
    let db = TestDb::new();
    db.psql("INSERT INTO __diesel_schema_migrations (version) VALUES ('99991231000000')");
    let mut config = test_config(&db);
    config.server.role = Role::Query;
    let app = spawn_app_on(db, config).await;
    assert_eq!(app.get(&app.query, "/readyz").await.status(), 200);
}

/// Every pooled connection, writer's and reader's, runs without parallel query: the service's
/// statements touch a handful of rows by index, and a parallel plan forks worker processes on
/// every execution (the steps of a list page were planned so, two forks per request).
#[tokio::test]
async fn pooled_connections_never_plan_parallel_workers_or_jit() {
    use agenttracer::db::{Access, build_pool};
    use diesel::QueryableByName;
    use diesel::sql_types::Text;
    use diesel_async::RunQueryDsl;

    #[derive(QueryableByName)]
    struct Setting {
        #[diesel(sql_type = Text)]
        max_parallel_workers_per_gather: String,
    }
    #[derive(QueryableByName)]
    struct Jit {
        #[diesel(sql_type = Text)]
        jit: String,
    }
    let db = TestDb::new();
    let cfg = agenttracer::config::DatabaseConfig::default();
    for (url, access) in [
        (db.writer_url(), Access::Write),
        (db.reader_url(), Access::ReadOnly),
    ] {
        let pool = build_pool(&database_url(&url), &cfg, access).unwrap();
        let mut conn = pool.get().await.unwrap();
        let setting: Setting = diesel::sql_query("SHOW max_parallel_workers_per_gather")
            .get_result(&mut conn)
            .await
            .unwrap();
        assert_eq!(setting.max_parallel_workers_per_gather, "0", "{access:?}");
        let jit: Jit = diesel::sql_query("SHOW jit")
            .get_result(&mut conn)
            .await
            .unwrap();
        assert_eq!(jit.jit, "off", "{access:?}");
    }
}

/// Every trigger function of the rollups runs without JIT: their statements are planned with
/// node types disabled, whose cost penalty put them over `jit_above_cost`, and compiling them on
/// every execution took ~3 s per OTLP export of 10 traces (statements of a few milliseconds).
/// A migration that rewrites a trigger function must keep the setting.
#[test]
fn rollup_trigger_functions_never_jit() {
    let db = TestDb::new();
    let functions = db.psql(
        "SELECT string_agg(DISTINCT p.proname || '=' || coalesce(array_to_string(p.proconfig, ','), ''), E'\\n') \
         FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid WHERE NOT t.tgisinternal",
    );
    let lines: Vec<&str> = functions.lines().collect();
    assert!(lines.len() >= 11, "{functions}");
    for line in lines {
        assert!(line.contains("jit=off"), "{line}");
    }
}

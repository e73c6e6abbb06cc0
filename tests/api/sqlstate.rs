//! Database errors are classified by SQLSTATE, never by message text: against a PostgreSQL whose
//! messages are translated (`lc_messages` in German), real errors of every class are classified
//! as in English, and the service answers as it does in English.
//!
//! The locale must exist on the machine; `scripts/local-pg.sh install` (run by scripts/test.sh)
//! generates it.

use std::process::Command;
use std::time::{Duration, Instant};

use agenttracer::db::ErrorClass;
use agenttracer::db::error::{is_retryable, sqlstate};
use agenttracer::role::Role;
use diesel::result::Error as DieselError;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use crate::helpers::*;

const LOCALE: &str = "de_DE.UTF-8";

/// A cluster of our own whose messages are German, and quick to report a deadlock.
fn translated_cluster() -> PgCluster {
    let locales = Command::new("locale")
        .arg("-a")
        .output()
        .expect("locale -a");
    let locales = String::from_utf8_lossy(&locales.stdout).to_lowercase();
    assert!(
        locales
            .lines()
            .any(|l| l == "de_de.utf8" || l == "de_de.utf-8"),
        "the {LOCALE} locale is missing: run scripts/local-pg.sh install as root \
         (or localedef -i de_DE -f UTF-8 {LOCALE})"
    );
    PgCluster::start_new(&[
        &format!("lc_messages = '{LOCALE}'"),
        "deadlock_timeout = '100ms'",
    ])
}

/// The error of `sql` on `conn`, which must fail.
async fn error_of(conn: &mut AsyncPgConnection, sql: &str) -> DieselError {
    match conn.batch_execute(sql).await {
        Ok(()) => panic!("{sql} succeeded"),
        Err(err) => err,
    }
}

/// Runs `sql` on `conn`, which must succeed.
async fn ok(conn: &mut AsyncPgConnection, sql: &str) {
    conn.batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// `err` came with `code`, its message is not PostgreSQL's English one (so the test would catch a
/// classification by message), and it is of `class`.
fn assert_classified(err: &DieselError, code: &str, english: &str, class: ErrorClass) {
    assert_eq!(sqlstate(err), Some(code), "{err}");
    assert!(
        !err.to_string().contains(english),
        "the message is not translated: {err}"
    );
    assert_eq!(ErrorClass::of(err), class, "{code}: {err}");
}

/// PostgreSQL answers in German on `url`: a message with an English counterpart differs.
async fn assert_translated(url: &str) {
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    let err = error_of(&mut conn, "SELECT 'x'::int").await;
    assert_classified(&err, "22P02", "invalid input syntax", ErrorClass::Data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_errors_are_classified_by_sqlstate_under_translated_messages() {
    let cluster = translated_cluster();
    let admin = cluster.admin();
    admin.psql("postgres", "CREATE DATABASE classify");
    admin.psql(
        "classify",
        "CREATE TABLE t (id int PRIMARY KEY, v varchar(3)); INSERT INTO t VALUES (1, 'a'), (2, 'b')",
    );
    let url = admin.url("classify");
    assert_translated(&url).await;
    let mut a = AsyncPgConnection::establish(&url).await.unwrap();
    let mut b = AsyncPgConnection::establish(&url).await.unwrap();

    // The run's data: 422 for that run, the others written.
    let err = error_of(&mut a, "SELECT 2147483647::int + 1").await;
    assert_classified(&err, "22003", "out of range", ErrorClass::Data);
    let err = error_of(&mut a, "INSERT INTO t VALUES (3, 'abcd')").await;
    assert_classified(&err, "22001", "value too long", ErrorClass::Data);
    let err = diesel::sql_query("SELECT $1::text")
        .bind::<Text, _>("a\0b")
        .execute(&mut a)
        .await
        .unwrap_err();
    assert_classified(&err, "22021", "invalid byte sequence", ErrorClass::Data);
    let err = error_of(&mut a, "INSERT INTO t VALUES (1, 'z')").await;
    assert_classified(&err, "23505", "duplicate key", ErrorClass::Data);
    // Not the data, not the database's state: a 500.
    let err = error_of(&mut a, "SELECT * FROM missing").await;
    assert_classified(&err, "42P01", "does not exist", ErrorClass::Other);

    // Timeouts: a 503.
    ok(&mut a, "BEGIN; SELECT * FROM t WHERE id = 1 FOR UPDATE").await;
    let err = error_of(
        &mut b,
        "SET lock_timeout = 200; UPDATE t SET v = 'c' WHERE id = 1",
    )
    .await;
    assert_classified(&err, "55P03", "lock timeout", ErrorClass::Unavailable);
    let err = error_of(&mut b, "SELECT * FROM t WHERE id = 1 FOR UPDATE NOWAIT").await;
    assert_classified(
        &err,
        "55P03",
        "could not obtain lock",
        ErrorClass::Unavailable,
    );
    ok(&mut a, "ROLLBACK").await;
    let err = error_of(&mut b, "SET statement_timeout = 200; SELECT pg_sleep(5)").await;
    assert_classified(&err, "57014", "statement timeout", ErrorClass::Unavailable);
    ok(&mut b, "SET lock_timeout = 0; SET statement_timeout = 0").await;

    // Lost races: the transaction runs again.
    ok(
        &mut a,
        "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT * FROM t",
    )
    .await;
    ok(&mut b, "UPDATE t SET v = 'q' WHERE id = 1").await;
    let err = error_of(&mut a, "UPDATE t SET v = 'r' WHERE id = 1").await;
    assert_classified(&err, "40001", "could not serialize", ErrorClass::Conflict);
    ok(&mut a, "ROLLBACK").await;
    ok(&mut a, "BEGIN; UPDATE t SET v = 'x' WHERE id = 1").await;
    ok(&mut b, "BEGIN; UPDATE t SET v = 'y' WHERE id = 2").await;
    // Each takes the other's row; the one PostgreSQL picks fails and rolls back, freeing the other.
    async fn cross(conn: &mut AsyncPgConnection, id: i32) -> Result<(), DieselError> {
        let result = conn
            .batch_execute(&format!("UPDATE t SET v = 'z' WHERE id = {id}"))
            .await;
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        conn.batch_execute(end).await.unwrap();
        result
    }
    let (ra, rb) = tokio::join!(cross(&mut a, 2), cross(&mut b, 1));
    let err = match (ra, rb) {
        (Err(err), Ok(())) | (Ok(()), Err(err)) => err,
        other => panic!("one of the two deadlocked: {other:?}"),
    };
    assert_classified(&err, "40P01", "deadlock detected", ErrorClass::Conflict);
    assert!(is_retryable(&err));

    // A connection the administrator ends: a 503.
    let pid: String = {
        #[derive(diesel::QueryableByName)]
        struct Pid {
            #[diesel(sql_type = Text)]
            pid: String,
        }
        diesel::sql_query("SELECT pg_backend_pid()::text AS pid")
            .get_result::<Pid>(&mut a)
            .await
            .unwrap()
            .pid
    };
    let terminate = async {
        let deadline = Instant::now() + Duration::from_secs(10);
        while admin.psql(
            "classify",
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = {pid} AND state = 'active'"
            ),
        ) != "1"
        {
            assert!(Instant::now() < deadline, "the sleep did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        admin.psql("classify", &format!("SELECT pg_terminate_backend({pid})"));
    };
    let (err, ()) = tokio::join!(error_of(&mut a, "SELECT pg_sleep(10)"), terminate);
    assert_classified(
        &err,
        "57P01",
        "administrator command",
        ErrorClass::Unavailable,
    );
}

#[tokio::test]
async fn the_service_answers_a_translated_postgresql_as_an_english_one() {
    let cluster = translated_cluster();
    let admin = cluster.admin();
    prepare_database(&admin, "translated");
    assert_translated(&admin.url("translated")).await;
    let db = TestDb {
        admin: admin.clone(),
        name: "translated".into(),
    };
    let mut config = test_config(&db);
    config.database.lock_timeout_ms = 300;
    let app = spawn_app_on(db, config).await;

    // A lock timeout (55P03) is a 503.
    let mut lock = app.db.hold_lock(3.0);
    let res = app.post_run(&sample_run(1, "success")).await;
    assert_eq!(res.status(), 503, "{:?}", res.text().await);
    lock.wait().unwrap();
    // A unique violation (23505) refuses that run alone: 422.
    let first = sample_run(2, "success");
    assert_eq!(app.post_run(&first).await.status(), 201);
    let mut second = sample_run(2, "success");
    second["steps"][1]["step_id"] = first["steps"][0]["step_id"].clone();
    assert_eq!(app.post_run(&second).await.status(), 422);

    // No migrations table (42P01): the query role says the schema is missing.
    admin.psql("postgres", "CREATE DATABASE unmigrated");
    let db = TestDb {
        admin,
        name: "unmigrated".into(),
    };
    let mut config = test_config(&db);
    config.server.role = Role::Query;
    config.database.read_url = None;
    let app = spawn_app_on(db, config).await;
    let res = app.get(&app.query, "/readyz").await;
    let detail = unavailable_detail(res).await;
    assert!(detail.starts_with("Database schema is missing"), "{detail}");
}

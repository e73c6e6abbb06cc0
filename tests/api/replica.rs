//! Scale-out: ingest writes to a primary, the query role reads from a streaming replica.

use std::time::{Duration, Instant};

use crate::helpers::*;

#[tokio::test]
async fn the_query_role_reads_from_a_streaming_replica_within_a_bounded_lag() {
    let primary = PgCluster::start_new(&[]);
    let admin = primary.admin();
    prepare_database(&admin, "app");
    let standby = PgCluster::standby_of(&primary);
    let replica = standby.admin();
    assert_eq!(replica.psql("postgres", "SELECT pg_is_in_recovery()"), "t");
    assert_eq!(
        admin.psql(
            "postgres",
            "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
        ),
        "1"
    );

    let db = TestDb {
        admin: admin.clone(),
        name: "app".into(),
    };
    let mut config = test_config(&db);
    config.database.read_url = Some(database_url(&replica.url_as(
        READER_ROLE,
        READER_PASSWORD,
        "app",
    )));
    config.query.stream_poll_ms = 100;
    let app = spawn_app_on(db, config).await;
    // The live stream reads the replica too (a standby delivers no NOTIFY: it polls).
    let mut stream = crate::stream::Sse::open(&app, "", None).await;
    let mut posted = Vec::new();

    // Every run ingested on the primary becomes readable through the replica, within a bound.
    let mut worst = Duration::ZERO;
    for _ in 0..10 {
        let run = sample_run(3, "success");
        assert_eq!(app.post_run(&run).await.status(), 201);
        posted.push(run_id_of(&run));
        let acknowledged = Instant::now();
        let visible = eventually(Duration::from_secs(5), || async {
            app.get_run(&run_id_of(&run)).await.status() == 200
        })
        .await;
        assert!(visible, "run not replicated within 5 s");
        worst = worst.max(acknowledged.elapsed());
    }
    println!("worst replication lag seen through the query role: {worst:?}");
    let stats: serde_json::Value = app.get_json(&app.query, "/v1/stats").await;
    assert_eq!(stats["total_runs"], 10);
    let streamed: Vec<String> = stream
        .runs(Duration::from_secs(2))
        .await
        .iter()
        .map(|(_, run)| run_id_of(run))
        .collect();
    assert_eq!(
        streamed, posted,
        "every run, once, in commit order, through the replica"
    );

    // The replica refuses writes, whatever the login.
    let refused = std::process::Command::new("psql")
        .args([
            "-X",
            "-d",
            &replica.url("app"),
            "-c",
            "DELETE FROM agent_runs",
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("read-only transaction"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(
        app.db.psql("SELECT count(*) FROM agent_runs"),
        "10",
        "the primary kept every run"
    );
}

//! Health, metrics, auth, CORS and what each listener mounts.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn health_readyz_and_livez_on_both_listeners() {
    let app = spawn_app().await;
    for (base, service) in [(&app.ingest, "ingest-api"), (&app.query, "query-api")] {
        let res = app.get(base, "/health").await;
        assert_eq!(res.status(), 200);
        assert_eq!(
            res.json::<Value>().await.unwrap(),
            json!({"status": "healthy", "service": service, "version": env!("CARGO_PKG_VERSION")})
        );
        assert_eq!(app.get(base, "/readyz").await.status(), 200);
        assert_eq!(app.get(base, "/livez").await.status(), 200);
    }
}

#[tokio::test]
async fn metrics_use_the_original_names_and_route_patterns() {
    let app = spawn_app().await;
    let run = sample_run(2, "success");
    app.post_run(&run).await;
    app.post_run(&run).await;
    app.get_run(&run_id_of(&run)).await;
    app.get(&app.ingest, "/no/such/path/123").await;
    let text = app.get_metrics().await;
    for name in [
        "runs_ingested_total",
        "runs_duplicate_total",
        "steps_ingested_total",
        "ingest_latency_seconds_bucket",
        "http_request_duration_seconds_bucket",
        "db_pool_connections",
    ] {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    assert!(
        text.contains(
            r#"http_requests_total{role="ingest",method="POST",route="/v1/runs",status="201"}"#
        ),
        "{text}"
    );
    assert!(text.contains(r#"route="/v1/runs/{run_id}""#), "{text}");
    assert!(text.contains(r#"route="unmatched""#), "{text}");
    assert!(
        !text.contains(&run_id_of(&run)),
        "raw paths never become labels"
    );
    // One process-wide registry: the query listener serves the same series.
    let query_text = app.get(&app.query, "/metrics").await.text().await.unwrap();
    assert!(query_text.contains("runs_ingested_total"));
}

#[tokio::test]
async fn api_keys_guard_routes_but_not_health_or_metrics() {
    let app = spawn_app_with(|c| {
        c.auth.ingest_keys = agenttracer::config::SecretList::new(vec!["ingest-key-1".into()]);
        c.auth.query_keys =
            agenttracer::config::SecretList::new(vec!["query-key-1".into(), "query-key-2".into()]);
    })
    .await;
    let run = sample_run(1, "success");
    let url = format!("{}/v1/runs", app.ingest);
    let res = app.client.post(&url).json(&run).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"detail": "Not authenticated"})
    );
    let res = app
        .client
        .post(&url)
        .header("X-API-Key", "query-key-1")
        .json(&run)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "a query key is not an ingest key");
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"detail": "Invalid API key"})
    );
    let res = app
        .client
        .post(&url)
        .header("X-API-Key", "ingest-key-1")
        .json(&run)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = app
        .client
        .post(&url)
        .bearer_auth("ingest-key-1")
        .json(&run)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let get = format!("{}/v1/runs/{}", app.query, run_id_of(&run));
    assert_eq!(app.client.get(&get).send().await.unwrap().status(), 401);
    assert_eq!(
        app.client
            .get(&get)
            .bearer_auth("query-key-2")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.client
            .get(&get)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    for base in [&app.ingest, &app.query] {
        for path in ["/health", "/livez", "/readyz", "/metrics"] {
            assert_eq!(app.get(base, path).await.status(), 200, "{path} is open");
        }
    }
    // CORS preflights pass without a key.
    let res = app
        .client
        .request(reqwest::Method::OPTIONS, &get)
        .header("Origin", "http://localhost:3000")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "x-api-key")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
}

#[tokio::test]
async fn each_listener_mounts_only_its_routes() {
    let app = spawn_app().await;
    let run = sample_run(1, "success");
    let res = app
        .client
        .post(format!("{}/v1/runs", app.query))
        .json(&run)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "the query listener has no ingest route");
    app.post_run(&run).await;
    assert_eq!(
        app.get(&app.ingest, &format!("/v1/runs/{}", run_id_of(&run)))
            .await
            .status(),
        404
    );
    let res = app
        .client
        .delete(format!("{}/v1/runs/{}", app.query, run_id_of(&run)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"detail": "Not Found"})
    );
}

#[tokio::test]
async fn cors_allows_the_original_ui_origins_and_exposes_our_headers() {
    let app = spawn_app().await;
    let run = sample_run(1, "success");
    app.post_run(&run).await;
    let res = app
        .client
        .get(format!("{}/v1/runs/{}", app.query, run_id_of(&run)))
        .header("Origin", "http://localhost:5173")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    let exposed = res.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for header in ["x-next-cursor", "link", "x-agenttracer-redacted"] {
        assert!(exposed.contains(header), "{exposed}");
    }
}

#[tokio::test]
async fn the_query_pool_cannot_write() {
    use agenttracer::db::{Access, build_pool};
    use diesel_async::RunQueryDsl;

    let db = TestDb::new();
    let config = test_config(&db);
    let insert = "INSERT INTO agent_runs (run_id, agent_id, agent_version, status, started_at) \
                  VALUES (gen_random_uuid(), 'a', '1', 'success', now())";
    // Even on the writer's credentials, the read pool's sessions are read-only.
    let pool = build_pool(&db.writer_url(), &config.database, Access::ReadOnly).unwrap();
    let mut conn = pool.get().await.unwrap();
    let err = diesel::sql_query(insert)
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ReadOnlyTransaction,
                _
            )
        ),
        "{err:?}"
    );
    // And the read-only login has no INSERT privilege at all.
    let pool = build_pool(&db.reader_url(), &config.database, Access::ReadOnly).unwrap();
    let mut conn = pool.get().await.unwrap();
    diesel::sql_query("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")
        .execute(&mut conn)
        .await
        .unwrap();
    let err = diesel::sql_query(insert)
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("permission denied"), "{err}");
    // As an answer, such an error is a generic 500 (it is a deployment bug, not the client's).
    let answer = agenttracer::error::ApiError::from(err);
    assert_eq!(actix_web::ResponseError::status_code(&answer), 500);
}

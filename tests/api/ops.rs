//! Health, metrics, auth, CORS and what each listener mounts.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

/// A browser's CORS preflight of `method {base}{path}` from `origin`, asking to send `headers`.
async fn preflight(
    app: &TestApp,
    (base, path): (&str, &str),
    origin: &str,
    method: &str,
    headers: Option<&str>,
) -> reqwest::Response {
    app.request_with(Method::OPTIONS, (base, path), |r| {
        let r = r
            .header("Origin", origin)
            .header("Access-Control-Request-Method", method);
        match headers {
            Some(headers) => r.header("Access-Control-Request-Headers", headers),
            None => r,
        }
    })
    .await
}

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
    let app = spawn_app_with_keys(&["ingest-key-1"], &["query-key-1", "query-key-2"]).await;
    let run = sample_run(1, "success");
    let res = app.post_run(&run).await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        res.json::<Value>().await.unwrap()["detail"],
        "Not authenticated"
    );
    let with_key = |r: reqwest::RequestBuilder| r.header("X-API-Key", "query-key-1");
    let res = app.post_json_with("/v1/runs", &run, with_key).await;
    assert_eq!(res.status(), 403, "a query key is not an ingest key");
    assert_eq!(
        res.json::<Value>().await.unwrap()["detail"],
        "Invalid API key"
    );
    let with_key = |r: reqwest::RequestBuilder| r.header("X-API-Key", "ingest-key-1");
    let res = app.post_json_with("/v1/runs", &run, with_key).await;
    assert_eq!(res.status(), 201);
    let with_bearer = |r: reqwest::RequestBuilder| r.bearer_auth("ingest-key-1");
    let res = app.post_json_with("/v1/runs", &run, with_bearer).await;
    assert_eq!(res.status(), 200);

    let run_path = format!("/v1/runs/{}", run_id_of(&run));
    let get_with_bearer = |key: &'static str| {
        let url = (app.query.as_str(), run_path.as_str());
        app.request_with(Method::GET, url, move |r| r.bearer_auth(key))
    };
    assert_eq!(app.get_run(&run_id_of(&run)).await.status(), 401);
    assert_eq!(get_with_bearer("query-key-2").await.status(), 200);
    assert_eq!(get_with_bearer("wrong").await.status(), 403);
    for base in [&app.ingest, &app.query] {
        for path in ["/health", "/livez", "/readyz", "/metrics"] {
            assert_eq!(app.get(base, path).await.status(), 200, "{path} is open");
        }
    }
    // CORS preflights pass without a key.
    let url = (app.query.as_str(), run_path.as_str());
    let res = preflight(&app, url, "http://localhost:3000", "GET", Some("x-api-key")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
}

/// The other listener's routes are not mounted: a path the listener knows with another method
/// is 405 naming the methods it does answer (`Allow`), as FastAPI does, never the other role's
/// handler.
#[tokio::test]
async fn each_listener_mounts_only_its_routes_and_a_wrong_method_is_405_with_allow() {
    let app = spawn_app().await;
    let run = sample_run(1, "success");
    let id = run_id_of(&run);
    let url = (app.query.as_str(), "/v1/runs");
    let res = app.request_with(Method::POST, url, |r| r.json(&run)).await;
    assert_eq!(res.status(), 405, "the query listener has no ingest route");
    assert_eq!(res.headers()["allow"], "GET");
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"detail": "Method Not Allowed", "error": "Method Not Allowed",
               "status_code": 405, "path": "/v1/runs"})
    );
    assert_eq!(app.count("agent_runs", &id), 0, "nothing was written");
    app.post_run(&run).await;
    let res = app.get(&app.ingest, &format!("/v1/runs/{id}")).await;
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "DELETE");
    let res = app
        .send(Method::DELETE, &app.query, &format!("/v1/runs/{id}"))
        .await;
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "GET");
    assert_eq!(
        app.count("agent_runs", &id),
        1,
        "the query listener deletes nothing"
    );
    let res = app.send(Method::PUT, &app.ingest, "/v1/runs/batch").await;
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "DELETE, POST");
    let res = app.send(Method::POST, &app.ingest, "/health").await;
    assert_eq!(
        (res.status().as_u16(), &res.headers()["allow"]),
        (405, &"GET".parse().unwrap())
    );
}

/// Every error but a 422 answers both shapes the original used: Phase 1's `detail` and the
/// later version's `error`, `status_code` and `path`, whichever part of the service answers.
#[tokio::test]
async fn error_bodies_carry_detail_error_status_code_and_path() {
    let app = spawn_app_with_keys(&[], &["query-key-0123456789"]).await;
    let id = uuid::Uuid::new_v4();
    // A route's own 404.
    let path = format!("/v1/runs/{id}");
    let with_key =
        |r: reqwest::RequestBuilder| r.header("X-API-Key", secret("query-key-0123456789"));
    let res = app
        .request_with(Method::GET, (&app.query, &path), with_key)
        .await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"detail": format!("Run {id} not found"), "error": format!("Run {id} not found"),
               "status_code": 404, "path": format!("/v1/runs/{id}")})
    );
    // The fallback's 404.
    let res = app.get(&app.ingest, "/v1/nowhere").await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"detail": "Not Found", "error": "Not Found", "status_code": 404, "path": "/v1/nowhere"})
    );
    // The key check's 401 keeps its header.
    let res = app.get(&app.query, "/v1/stats").await;
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"detail": "Not authenticated", "error": "Not authenticated", "status_code": 401, "path": "/v1/stats"})
    );
    // A 415 from the ingest route.
    let res = app
        .client
        .post(format!("{}/v1/runs", app.ingest))
        .header("Content-Type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        (&body["status_code"], &body["path"]),
        (&json!(415), &json!("/v1/runs"))
    );
    assert_eq!(body["error"], body["detail"]);
    // A 422 keeps FastAPI's list of problems, and nothing else.
    let res = app.post_run(&json!({"agent_id": "a"})).await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert!(body["detail"].is_array(), "{body}");
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
}

/// A browser posting runs (the original's UI, a browser SDK) sends a preflight to the ingest
/// listener first; it is answered with the CORS headers, without a key.
#[tokio::test]
async fn the_ingest_listener_answers_cors_preflights() {
    let app = spawn_app_with_keys(&["ingest-key-0123456789"], &[]).await;
    let url = (app.ingest.as_str(), "/v1/runs");
    let headers = Some("content-type, authorization");
    let res = preflight(&app, url, "http://localhost:5173", "POST", headers).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    let methods = res.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let headers = res.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "{headers}"
    );
    // The post itself carries the origin's header too; an origin not allowed gets none, and a
    // client that is not a browser still posts.
    for (origin, allowed) in [
        ("http://localhost:5173", true),
        ("http://elsewhere.example", false),
    ] {
        let res = app
            .post_json_with("/v1/runs", &sample_run(1, "success"), |r| {
                r.header("Origin", origin)
                    .bearer_auth(secret("ingest-key-0123456789"))
            })
            .await;
        assert_eq!(res.status(), 201);
        let header = res.headers().get("access-control-allow-origin");
        assert_eq!(
            header.map(|h| h.to_str().unwrap()),
            allowed.then_some(origin)
        );
    }
    // The query listener's preflight offers only what it serves.
    let url = (app.query.as_str(), "/v1/runs");
    let res = preflight(&app, url, "http://localhost:5173", "GET", None).await;
    assert_eq!(res.status(), 200);
    let methods = res.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap();
    assert!(
        !methods.contains("POST") && !methods.contains("DELETE"),
        "{methods}"
    );
}

#[tokio::test]
async fn cors_allows_the_original_ui_origins_and_exposes_our_headers() {
    let app = spawn_app().await;
    let run = sample_run(1, "success");
    app.post_run(&run).await;
    let path = format!("/v1/runs/{}", run_id_of(&run));
    let res = app
        .request_with(Method::GET, (&app.query, &path), |r| {
            r.header("Origin", "http://localhost:5173")
        })
        .await;
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
    let pool = build_pool(&config.database.url, &config.database, Access::ReadOnly).unwrap();
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
    let pool = build_pool(
        &database_url(&db.reader_url()),
        &config.database,
        Access::ReadOnly,
    )
    .unwrap();
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

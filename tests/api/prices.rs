//! The model price table (docs/cost.md): shipped defaults, periods added and replaced through
//! the ingest role, read on the query role, deleted, and every problem a 422 naming its field.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::*;

impl TestApp {
    pub async fn put_price(&self, model: &str, body: &Value) -> reqwest::Response {
        let url = (self.ingest.as_str(), &*format!("/v1/model-prices/{model}"));
        self.request_with(Method::PUT, url, |r| r.json(body)).await
    }

    async fn prices(&self, model: &str) -> Vec<Value> {
        let path = format!("/v1/model-prices?model={}", urlencode(model));
        let rows = self.get_json(&self.query, &path).await;
        rows.as_array().unwrap().clone()
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn the_shipped_defaults_are_listed_with_their_source_and_date() {
    let app = spawn_app().await;
    let all = app.get_json(&app.query, "/v1/model-prices").await;
    let all = all.as_array().unwrap();
    assert!(all.len() >= 20, "{}", all.len());
    let mini = app.prices("gpt-4o-mini*").await;
    assert_eq!(
        mini,
        [json!({
            "model": "gpt-4o-mini*", "input_per_mtok": 0.15, "output_per_mtok": 0.6,
            "cached_input_per_mtok": 0.075, "reasoning_per_mtok": null, "currency": "USD",
            "valid_from": "2020-01-01T00:00:00Z", "source": "default",
            "created_at": mini[0]["created_at"],
        })]
    );
    // In model order, then time.
    let models = each(&Value::from(all.clone()), |p| {
        p["model"].as_str().unwrap().to_owned()
    });
    let mut sorted = models.clone();
    sorted.sort();
    assert_eq!(models, sorted);
}

#[tokio::test]
async fn a_put_adds_a_period_or_replaces_the_one_at_the_same_time() {
    let app = spawn_app().await;
    let body = json!({"input_per_mtok": 0.1, "output_per_mtok": 0.4, "cached_input_per_mtok": 0.025,
                      "reasoning_per_mtok": 1.2, "valid_from": "2026-06-01T00:00:00Z"});
    let res = app.put_price("gpt-4o-mini*", &body).await;
    assert_eq!(res.status(), 201);
    let put: Value = res.json().await.unwrap();
    assert_eq!(
        (
            &put["input_per_mtok"],
            &put["reasoning_per_mtok"],
            &put["source"]
        ),
        (&json!(0.1), &json!(1.2), &json!("operator"))
    );
    let periods = app.prices("gpt-4o-mini*").await;
    let starts = each(&Value::from(periods), |p| p["valid_from"].clone());
    assert_eq!(
        starts,
        [json!("2020-01-01T00:00:00Z"), json!("2026-06-01T00:00:00Z")]
    );

    // The same start again replaces that period (and only it).
    let mut again = body.clone();
    again["input_per_mtok"] = json!(0.12);
    again["cached_input_per_mtok"] = Value::Null;
    let res = app.put_price("gpt-4o-mini*", &again).await;
    assert_eq!(res.status(), 200);
    let periods = app.prices("gpt-4o-mini*").await;
    assert_eq!(periods.len(), 2);
    assert_eq!(periods[1]["input_per_mtok"], 0.12);
    assert_eq!(periods[1]["cached_input_per_mtok"], Value::Null);
    assert_eq!(periods[0]["input_per_mtok"], 0.15);

    // Without valid_from, from now.
    let before = time::OffsetDateTime::now_utc() - time::Duration::seconds(5);
    let res = app
        .put_price(
            "my-model",
            &json!({"input_per_mtok": 1, "output_per_mtok": 2}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let put: Value = res.json().await.unwrap();
    let from = time::OffsetDateTime::parse(
        put["valid_from"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        from >= before && from <= time::OffsetDateTime::now_utc(),
        "{from}"
    );
    assert_eq!(put["input_per_mtok"], 1.0);

    // A name with a '/', sent as is or encoded, is one model.
    let body = json!({"input_per_mtok": 2.5, "output_per_mtok": 10});
    assert_eq!(app.put_price("openai/gpt-4o", &body).await.status(), 201);
    let mut later = body.clone();
    later["valid_from"] = json!("2026-01-01T00:00:00Z");
    assert_eq!(app.put_price("openai%2Fgpt-4o", &later).await.status(), 201);
    assert_eq!(app.prices("openai/gpt-4o").await.len(), 2);
}

#[tokio::test]
async fn every_problem_of_a_put_is_a_422_naming_its_field() {
    let app = spawn_app().await;
    let ok = json!({"input_per_mtok": 1, "output_per_mtok": 2});
    let with = |key: &str, value: Value| {
        let mut body = ok.clone();
        body[key] = value;
        body
    };
    /// A model, a body, and the errors it must give: each location and type.
    type Case<'a> = (&'a str, Value, Vec<(Value, &'a str)>);
    let cases: Vec<Case> = vec![
        (
            "m",
            json!({"output_per_mtok": 2}),
            vec![(json!(["body", "input_per_mtok"]), "missing")],
        ),
        (
            "m",
            with("input_per_mtok", json!(-0.01)),
            vec![(json!(["body", "input_per_mtok"]), "greater_than_equal")],
        ),
        (
            "m",
            with("output_per_mtok", json!(1e9)),
            vec![(json!(["body", "output_per_mtok"]), "less_than_equal")],
        ),
        (
            "m",
            with("cached_input_per_mtok", json!("0.1")),
            vec![(json!(["body", "cached_input_per_mtok"]), "float_type")],
        ),
        (
            "m",
            with("currency", json!("EUR")),
            vec![(json!(["body", "currency"]), "literal_error")],
        ),
        (
            "m",
            with("valid_from", json!("yesterday")),
            vec![(json!(["body", "valid_from"]), "datetime_parsing")],
        ),
        (
            "m",
            with("cache_read_per_mtok", json!(0.1)),
            vec![(json!(["body", "cache_read_per_mtok"]), "extra_forbidden")],
        ),
        (
            "gpt-*-mini",
            ok.clone(),
            vec![(json!(["path", "model"]), "value_error")],
        ),
        (
            "*",
            json!([]),
            vec![
                (json!(["path", "model"]), "value_error"),
                (json!(["body"]), "model_attributes_type"),
            ],
        ),
    ];
    for (model, body, want) in cases {
        let res = app.put_price(model, &body).await;
        assert_eq!(res.status(), 422, "{model} {body}");
        let got: Value = res.json().await.unwrap();
        let errors = each(&got["detail"], |e| (e["loc"].clone(), e["type"].clone()));
        let want: Vec<(Value, Value)> = want.into_iter().map(|(l, t)| (l, json!(t))).collect();
        assert_eq!(errors, want, "{model} {body}");
    }
    assert_eq!(app.prices("m").await.len(), 0, "nothing refused is stored");
}

#[tokio::test]
async fn a_delete_removes_one_period_or_all_and_says_when_there_is_none() {
    let app = spawn_app().await;
    let later =
        json!({"input_per_mtok": 2, "output_per_mtok": 8, "valid_from": "2026-06-01T00:00:00Z"});
    assert_eq!(app.put_price("gpt-4.1*", &later).await.status(), 201);
    let app = &app;
    let delete = |path: &'static str| async move {
        let path = format!("/v1/model-prices/{path}");
        app.send(Method::DELETE, &app.ingest, &path).await
    };

    let res = delete("gpt-4.1*?valid_from=2026-06-01T00:00:00Z").await;
    assert_eq!(res.status(), 204);
    let left = app.prices("gpt-4.1*").await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["source"], "default");

    assert_eq!(delete("gpt-4.1*").await.status(), 204);
    assert!(app.prices("gpt-4.1*").await.is_empty());
    assert_eq!(
        app.prices("gpt-4.1-mini*").await.len(),
        1,
        "only that model"
    );
    let res = delete("gpt-4.1*").await;
    assert_eq!(res.status(), 404);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["detail"], "No price for model gpt-4.1*");

    let res = delete("gpt-4o*?valid_from=soon").await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["detail"][0]["loc"], json!(["query", "valid_from"]));
    assert_eq!(app.prices("gpt-4o*").await.len(), 1);
}

#[tokio::test]
async fn prices_are_changed_only_with_an_ingest_key_when_keys_are_on() {
    let app = spawn_app_with_keys(&["ingest-key"], &["query-key"]).await;
    let body = json!({"input_per_mtok": 1, "output_per_mtok": 2});
    assert_eq!(app.put_price("m", &body).await.status(), 401);
    let url = (app.ingest.as_str(), "/v1/model-prices/m");
    let res = app
        .request_with(Method::PUT, url, |r| {
            r.json(&body).header("X-API-Key", "query-key")
        })
        .await;
    assert_eq!(res.status(), 403);
    let res = app
        .request_with(Method::PUT, url, |r| {
            r.json(&body).bearer_auth("ingest-key")
        })
        .await;
    assert_eq!(res.status(), 201);
    let res = app
        .request_with(Method::DELETE, url, |r| r.header("X-API-Key", "ingest-key"))
        .await;
    assert_eq!(res.status(), 204);
    let list = (app.query.as_str(), "/v1/model-prices");
    assert_eq!(app.get(list.0, list.1).await.status(), 401);
    let res = app
        .request_with(Method::GET, list, |r| r.bearer_auth("query-key"))
        .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn configured_prices_are_put_when_the_ingest_role_starts() {
    use agenttracer::config::PriceConfig;
    let app = spawn_app_with(|c| {
        c.cost.prices = vec![PriceConfig {
            model: "acme-llm*".into(),
            input_per_mtok: 0.5,
            output_per_mtok: 1.5,
            cached_input_per_mtok: Some(0.05),
            reasoning_per_mtok: None,
            valid_from: "2026-01-01T00:00:00Z".into(),
        }]
    })
    .await;
    let rows = app.prices("acme-llm*").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(
        (
            &rows[0]["source"],
            &rows[0]["input_per_mtok"],
            &rows[0]["valid_from"]
        ),
        (
            &json!("config"),
            &json!(0.5),
            &json!("2026-01-01T00:00:00Z")
        )
    );
}

/// The table read as the ingest role will price steps with it: exact to the nano-dollar, with
/// the period of the step's time.
#[tokio::test]
async fn the_table_prices_a_step_exactly_at_the_price_of_its_time() {
    use agenttracer::model::cost::Tokens;
    use diesel_async::{AsyncConnection, AsyncPgConnection};
    use time::macros::datetime;

    let app = spawn_app().await;
    let later = json!({"input_per_mtok": 0.1, "output_per_mtok": 0.4, "valid_from": "2026-06-01T00:00:00Z"});
    assert_eq!(app.put_price("gpt-4o-mini*", &later).await.status(), 201);
    let mut conn = AsyncPgConnection::establish(&app.db.writer_url())
        .await
        .unwrap();
    let book = agenttracer::cost::prices::book(&mut conn).await.unwrap();
    let t = Tokens {
        input: Some(1234),
        output: Some(567),
        cached_input: Some(1000),
        reasoning: None,
    };
    // The shipped period: 234 × 0.15 + 1000 × 0.075 + 567 × 0.60 = 35.1 + 75 + 340.2 = 450.3
    // per million tokens = 0.0004503 USD.
    let model = "gpt-4o-mini-2024-07-18";
    assert_eq!(
        book.cost_nanos(model, datetime!(2026-05-01 0:00 UTC), t),
        Some(450_300)
    );
    // The operator's period has no cached price: cached input is input. 1234 × 0.1 + 567 × 0.4
    // = 123.4 + 226.8 = 350.2 per million.
    assert_eq!(
        book.cost_nanos(model, datetime!(2026-07-01 0:00 UTC), t),
        Some(350_200)
    );
    assert_eq!(
        book.cost_nanos("llama-3.1-70b", datetime!(2026-07-01 0:00 UTC), t),
        None
    );
}

//! Drift alerts (docs/alerts.md): queued with `agenttracer::alerts::enqueue` for drift events
//! inserted by SQL, delivered by the service's own deliverer to a receiver in this process, with
//! the original's bodies; retried with backoff; given up after `alerts.max_attempts`; once per drift
//! event and channel, also with two processes on one database.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use agenttracer::alerts::{self, Channel};
use agenttracer::config::{Config, HttpUrl, Secret, SecretUrl};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    body: Value,
    status: u16,
    at: Instant,
}

/// How the receiver answers the `n`-th request (from 0) to a path.
type Answer = dyn Fn(&str, usize) -> u16 + Send + Sync;

/// An HTTP/1.1 receiver on a port of its own, in threads of its own (the test's runtime blocks
/// in psql): it records each request and answers as `answer` says, closing the connection.
struct Receiver {
    url: String,
    seen: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
}

impl Receiver {
    fn start(answer: impl Fn(&str, usize) -> u16 + Send + Sync + 'static) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let answer: Arc<Answer> = Arc::new(answer);
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (seen, answer) = (seen2.clone(), answer.clone());
                        std::thread::spawn(move || serve(stream, &seen, &*answer));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Receiver { url, seen, stop }
    }

    fn received(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Received>>, answer: &Answer) {
    stream.set_nonblocking(false).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let path = request_line
        .split(' ')
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let status = {
        let mut seen = seen.lock().unwrap();
        let n = seen.iter().filter(|r| r.path == path).count();
        let status = answer(&path, n);
        seen.push(Received {
            path,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            status,
            at: Instant::now(),
        });
        status
    };
    let said = if status < 300 { "ok" } else { "boom" };
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{said}",
        said.len()
    );
}

/// `expected` as the receiver holds a body: written as JSON and parsed back, through the same
/// parser (serde_json's default float parsing may move a number's last bit, the same way for
/// the same text; the bodies' exact bytes are checked by the unit tests of src/alerts).
fn as_received(expected: Value) -> Value {
    serde_json::from_str(&expected.to_string()).unwrap()
}

/// A config whose deliverer polls often and backs off briefly.
fn fast_alerts(config: &mut Config) {
    let a = &mut config.alerts;
    a.poll_interval_ms = 20;
    a.request_timeout_ms = 2000;
    a.backoff_initial_ms = 100;
    a.backoff_max_ms = 400;
}

fn secret_url(url: &str) -> Option<SecretUrl> {
    Some(SecretUrl::parse(url).unwrap())
}

/// The channels a configuration change turns on.
fn channels_of(set: impl FnOnce(&mut Config)) -> Vec<Channel> {
    let mut config = Config::default();
    set(&mut config);
    alerts::channels(&config.alerts)
}

/// `n` drift events of one baseline (the first as the unit tests' sample), by SQL; their ids.
fn insert_drifts(db: &TestDb, n: usize) -> Vec<Uuid> {
    let out = db.psql(&format!(
        "INSERT INTO behavior_profiles (profile_id, agent_id, agent_version, environment, \
             window_start, window_end, sample_size) \
         VALUES ('{p}', 'support-bot', '1.4.2', 'production', '2026-11-01', '2026-11-02', 1000); \
         INSERT INTO behavior_baselines (baseline_id, profile_id, agent_id, agent_version, \
             environment, baseline_type, is_active) \
         VALUES ('{b}', '{p}', 'support-bot', '1.4.2', 'production', 'version', true); \
         INSERT INTO behavior_drift (baseline_id, agent_id, agent_version, environment, drift_type, \
             metric, baseline_value, observed_value, delta, delta_percent, significance, \
             test_method, severity, detected_at, observation_window_start, \
             observation_window_end, observation_sample_size) \
         SELECT '{b}', 'support-bot', '1.4.2', 'production', 'decision', \
             CASE WHEN i = 0 THEN 'tool_selection.search_api' ELSE 'tool_selection.option_' || i END, \
             0.65, 0.46, -0.19, -29.230769230769234, 2.1e-36, 'chi_square', 'medium', \
             '2026-12-01 10:15:30.25', '2026-11-30 10:15', '2026-12-01 10:15', 1200 \
         FROM generate_series(0, {last}) AS i ORDER BY i RETURNING drift_id",
        p = Uuid::new_v4(),
        b = Uuid::new_v4(),
        last = n - 1,
    ));
    // (psql prints the command's tag after the rows.)
    let ids: Vec<Uuid> = out.lines().filter_map(|l| l.trim().parse().ok()).collect();
    assert_eq!(ids.len(), n, "{out}");
    ids
}

fn baseline_of(db: &TestDb, drift_id: Uuid) -> String {
    db.psql(&format!(
        "SELECT baseline_id FROM behavior_drift WHERE drift_id = '{drift_id}'"
    ))
}

/// Queues alerts of `drift_ids` to `channels` through the library's own function.
async fn enqueue(db: &TestDb, channels: &[Channel], drift_ids: &[Uuid]) -> usize {
    let mut conn = AsyncPgConnection::establish(&db.writer_url())
        .await
        .unwrap();
    alerts::enqueue(&mut conn, channels, drift_ids)
        .await
        .unwrap()
}

/// `alert_log` as `channel|status|attempts|sent?|due?|last_error`, by channel, of one drift.
fn log_of(db: &TestDb, drift_id: Uuid) -> Vec<String> {
    let rows = db.psql(&format!(
        "SELECT concat_ws('|', alert_channel, delivery_status, attempts, sent_at IS NOT NULL, \
             next_attempt_at IS NOT NULL, coalesce(last_error, '-')) \
         FROM alert_log WHERE drift_id = '{drift_id}' ORDER BY alert_channel"
    ));
    rows.lines().map(str::to_owned).collect()
}

/// Waits until no alert of the database is `pending` or `retry`.
async fn settled(db: &TestDb, within: Duration) -> bool {
    let open = "SELECT count(*) FROM alert_log WHERE delivery_status IN ('pending', 'retry')";
    eventually(within, || async { db.psql(open) == "0" }).await
}

#[tokio::test]
async fn alerts_reach_slack_pagerduty_and_a_webhook_as_the_original_sent_them() {
    let receiver = Receiver::start(|_, _| 200);
    let slack_token = secret(&format!("slack-token-{}", Uuid::new_v4().simple())).to_owned();
    let routing_key = secret(&format!("rk-{}", Uuid::new_v4().simple())).to_owned();
    let hook_token = secret(&format!("hook-token-{}", Uuid::new_v4().simple())).to_owned();
    let db = TestDb::new();
    let mut config = test_config(&db);
    fast_alerts(&mut config);
    config.alerts.slack_webhook_url = secret_url(&format!(
        "{}/services/T000/B000/{slack_token}",
        receiver.url
    ));
    config.alerts.pagerduty_routing_key = Some(Secret::new(routing_key.clone()));
    config.alerts.pagerduty_events_url =
        HttpUrl::parse(&format!("{}/v2/enqueue", receiver.url)).unwrap();
    config.alerts.webhook_url = secret_url(&format!("{}/hook?token={hook_token}", receiver.url));
    let channels = alerts::channels(&config.alerts);
    let names: Vec<&str> = channels.iter().map(Channel::name).collect();
    assert_eq!(names, ["slack", "pagerduty", "webhook"]);
    let app = spawn_app_on(db, config).await;

    let ids = insert_drifts(&app.db, 1);
    let drift_id = ids[0];
    let baseline_id = baseline_of(&app.db, drift_id);
    assert_eq!(enqueue(&app.db, &channels, &ids).await, 3);
    assert!(settled(&app.db, Duration::from_secs(10)).await);

    let got = receiver.received();
    assert_eq!(got.len(), 3, "{got:?}");
    let at = |prefix: &str| {
        let found: Vec<&Received> = got.iter().filter(|r| r.path.starts_with(prefix)).collect();
        assert_eq!(found.len(), 1, "{prefix}: {got:?}");
        found[0].body.clone()
    };
    let slack = at("/services/T000/B000/");
    assert_eq!(
        slack,
        as_received(json!({"text": "⚠️ Behavioral Drift Detected", "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "⚠️ Behavioral Drift Detected"}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": "*Agent:*\nsupport-bot v1.4.2"},
                {"type": "mrkdwn", "text": "*Environment:*\nproduction"},
                {"type": "mrkdwn", "text": "*Metric:*\ntool_selection.search_api"},
                {"type": "mrkdwn", "text": "*Severity:*\nmedium"}]},
            {"type": "section", "text": {"type": "mrkdwn", "text":
                "*Observed change:* 65.00% → 46.00% (-29.2%)\n*Statistical significance:* p=0.0000\n*Sample size:* 1200 runs"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "Detected at 2026-12-01 10:15:30 UTC"}]}
        ]}))
    );
    let details = json!({
        "agent_id": "support-bot", "agent_version": "1.4.2", "environment": "production",
        "metric": "tool_selection.search_api", "baseline_value": 0.65, "observed_value": 0.46,
        "delta_percent": -29.230769230769234, "significance": 2.1e-36,
        "baseline_id": baseline_id, "drift_id": drift_id,
    });
    assert_eq!(
        at("/v2/enqueue"),
        as_received(
            json!({"routing_key": routing_key, "event_action": "trigger", "dedup_key": drift_id,
               "payload": {
                   "summary": "Behavioral drift detected: support-bot v1.4.2 - tool_selection.search_api",
                   "severity": "warning", "source": "AgentTracer Drift Detection",
                   "custom_details": details}})
        )
    );
    let message = format!(
        "Behavioral drift detected\n\nAgent: support-bot v1.4.2 (production)\n\
         Metric: tool_selection.search_api\n\
         Change: observed decrease from 65.00% to 46.00% (-29.2%)\nSeverity: medium\n\n\
         Baseline: {baseline_id}\nStatistical significance: p=0.0000\nTest method: chi_square\n\
         Detected: 2026-12-01 10:15:30 UTC\n\n\
         Observation window: 2026-11-30 10:15 to 2026-12-01 10:15 (1200 runs)\n"
    );
    assert_eq!(
        at("/hook?token="),
        as_received(
            json!({"event": "drift_detected", "drift_id": drift_id, "baseline_id": baseline_id,
               "agent_id": "support-bot", "agent_version": "1.4.2", "environment": "production",
               "drift_type": "decision", "metric": "tool_selection.search_api",
               "baseline_value": 0.65, "observed_value": 0.46, "delta": -0.19,
               "delta_percent": -29.230769230769234, "significance": 2.1e-36,
               "test_method": "chi_square", "severity": "medium",
               "detected_at": "2026-12-01T10:15:30.250000",
               "observation_window_start": "2026-11-30T10:15:00",
               "observation_window_end": "2026-12-01T10:15:00",
               "observation_sample_size": 1200, "message": message})
        )
    );
    assert_eq!(
        log_of(&app.db, drift_id),
        [
            "pagerduty|sent|1|t|f|-",
            "slack|sent|1|t|f|-",
            "webhook|sent|1|t|f|-"
        ]
    );
    let messages = app.db.psql("SELECT DISTINCT alert_message FROM alert_log");
    assert_eq!(
        messages,
        "DRIFT_DETECTED: support-bot v1.4.2 - tool_selection.search_api"
    );

    // Queued again (a detection run repeated, a retried transaction): nothing new, nothing resent.
    assert_eq!(enqueue(&app.db, &channels, &ids).await, 0);
    let rows = "SELECT count(*) FROM alert_log";
    assert_eq!(app.db.psql(rows), "3");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 3);

    let metrics = app.get_metrics().await;
    for channel in ["slack", "pagerduty", "webhook"] {
        let series = format!("alerts_delivered_total{{channel=\"{channel}\"}}");
        assert!(metrics.contains(&series), "{series} missing");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_receiver_that_fails_twice_gets_one_accepted_delivery() {
    let receiver = Receiver::start(|_, n| if n < 2 { 500 } else { 200 });
    let hook = format!("{}/hook", receiver.url);
    let set = |c: &mut Config| {
        fast_alerts(c);
        c.alerts.webhook_url = secret_url(&hook);
    };
    let channels = channels_of(set);
    let app = spawn_app_with(set).await;
    let ids = insert_drifts(&app.db, 1);
    assert_eq!(enqueue(&app.db, &channels, &ids).await, 1);
    assert!(settled(&app.db, Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let got = receiver.received();
    let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 200], "three requests, one accepted");
    assert!(got.iter().all(|r| r.body["drift_id"] == json!(ids[0])));
    // Backoff: 100 ms after the first failure, 200 ms after the second (less a poll's slack).
    let gaps: Vec<u128> = got
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_millis())
        .collect();
    assert!(gaps[0] >= 90 && gaps[1] >= 190, "{gaps:?}");
    assert_eq!(
        log_of(&app.db, ids[0]),
        ["webhook|sent|3|t|f|HTTP 500: boom"]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_receiver_that_always_fails_ends_failed_after_max_attempts() {
    let receiver = Receiver::start(|_, _| 503);
    let token = secret(&format!("hook-token-{}", Uuid::new_v4().simple())).to_owned();
    let hook = format!("{}/hook/{token}", receiver.url);
    // A port nothing listens on any more: every delivery there fails to connect.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let slack = format!("http://{closed}/services/{token}");
    let set = |c: &mut Config| {
        fast_alerts(c);
        c.alerts.max_attempts = 3;
        c.alerts.webhook_url = secret_url(&hook);
        c.alerts.slack_webhook_url = secret_url(&slack);
    };
    let channels = channels_of(set);
    let app = spawn_app_with(set).await;
    let ids = insert_drifts(&app.db, 1);
    assert_eq!(enqueue(&app.db, &channels, &ids).await, 2);
    assert!(settled(&app.db, Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;

    assert_eq!(
        receiver.received().len(),
        3,
        "max_attempts deliveries, no more"
    );
    let log = log_of(&app.db, ids[0]);
    assert_eq!(log[1], "webhook|failed|3|f|f|HTTP 503: boom");
    assert!(
        log[0].starts_with("slack|failed|3|f|f|connection failed"),
        "{log:?}"
    );
    assert!(!log.iter().any(|l| l.contains(&token) || l.contains("://")));
    let metrics = app.get_metrics().await;
    assert!(metrics.contains(r#"alerts_failed_total{channel="webhook"}"#));
    assert!(metrics.contains(r#"alerts_retried_total{channel="slack"}"#));
    app.stop().await;
}

#[tokio::test]
async fn two_processes_on_one_database_deliver_each_alert_once() {
    // A slow receiver keeps deliveries in flight while the other process claims.
    let receiver = Receiver::start(|_, _| {
        std::thread::sleep(Duration::from_millis(20));
        200
    });
    let hook = |process: u8| format!("{}/hook?process={process}", receiver.url);
    let first = spawn_app_with(|c| {
        fast_alerts(c);
        c.alerts.webhook_url = secret_url(&hook(1));
    })
    .await;
    let db = TestDb {
        admin: first.db.admin.clone(),
        name: first.db.name.clone(),
    };
    let mut config = test_config(&db);
    fast_alerts(&mut config);
    config.alerts.webhook_url = secret_url(&hook(2));
    config.database.migrate_on_start = false;
    let channels = alerts::channels(&config.alerts);
    let second = spawn_app_on(db, config).await;

    let ids = insert_drifts(&first.db, 60);
    assert_eq!(enqueue(&first.db, &channels, &ids).await, 60);
    assert!(settled(&first.db, Duration::from_secs(15)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let got = receiver.received();
    let mut delivered: Vec<String> = got
        .iter()
        .map(|r| r.body["drift_id"].as_str().unwrap().to_owned())
        .collect();
    delivered.sort();
    let mut expected: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    expected.sort();
    assert_eq!(delivered, expected, "each alert delivered once");
    let by_second = got.iter().filter(|r| r.path.ends_with("=2")).count();
    println!("the second process delivered {by_second} of 60");
    let attempts = "SELECT delivery_status, attempts, count(*) FROM alert_log GROUP BY 1, 2";
    assert_eq!(first.db.psql(attempts), "sent|1|60");
    second.stop().await;
    first.stop().await;
}

/// The whole path: a scheduled detection stores drift events and queues their alerts in its
/// transaction; the deliverer sends each once; later passes, which find the events still open,
/// send nothing more.
#[tokio::test]
async fn detected_drift_reaches_the_webhook_once_per_event() {
    let receiver = Receiver::start(|_, _| 200);
    let hook = format!("{}/hook", receiver.url);
    let app = spawn_app_with(|c| {
        fast_alerts(c);
        c.alerts.webhook_url = secret_url(&hook);
        c.drift.interval_s = 1;
    })
    .await;
    crate::drift::seed(&app, "6.0.0", (92, 108)).await;
    let both = eventually(Duration::from_secs(20), || async {
        receiver.received().len() >= 2
    })
    .await;
    assert!(both, "{:?}", receiver.received());
    // More passes of the schedule, and one on request.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let res = app
        .send(reqwest::Method::POST, &app.ingest, "/v1/drift/detect")
        .await;
    assert_eq!(res.status(), 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.received();
    let mut metrics: Vec<String> = got
        .iter()
        .map(|r| {
            assert_eq!(r.body["event"], "drift_detected");
            r.body["metric"].as_str().unwrap().to_owned()
        })
        .collect();
    metrics.sort();
    assert_eq!(metrics, ["tool_selection.api", "tool_selection.cache"]);
    let rows = app.db.psql(
        "SELECT count(*) FILTER (WHERE delivery_status = 'sent') || '/' || count(*) FROM alert_log",
    );
    assert_eq!(rows, "2/2");
    app.stop().await;
}

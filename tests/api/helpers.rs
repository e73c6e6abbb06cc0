//! The harness: a real PostgreSQL (started here with initdb when `TEST_DATABASE_URL` is unset),
//! a migrated template database, and one database cloned from it per test, dropped after.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use agenttracer::config::{Config, DatabaseUrl, SecretList};
use agenttracer::role::{Listener, Role};
use agenttracer::startup::Application;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use uuid::Uuid;

pub use crate::pg::*;

/// Where this test session's logs go: `TEST_LOG_DIR` (scripts/test.sh sets it, and
/// after the run checks every file there for the secrets listed in its `secrets` file), else
/// `target/test-logs/<pid>`. On first use, the services the tests run in this process start
/// logging there at debug level, through the product's own logging setup.
pub fn log_dir() -> &'static std::path::Path {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::var_os("TEST_LOG_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("target/test-logs")
                    .join(std::process::id().to_string())
            });
        std::fs::create_dir_all(&dir).expect("log dir");
        let file = std::fs::File::options()
            .create(true)
            .append(true)
            .open(dir.join(format!("in-process-{}.log", std::process::id())))
            .expect("log file");
        let cfg = agenttracer::config::LogConfig {
            level: "debug".into(),
            ..Default::default()
        };
        agenttracer::telemetry::init_logging_to(&cfg, std::sync::Mutex::new(file), false);
        for secret in [ADMIN_PASSWORD, READER_PASSWORD, METADATA_CANARY] {
            record_secret(&dir, secret);
        }
        dir
    })
}

fn record_secret(dir: &std::path::Path, secret: &str) {
    use std::io::Write;
    let mut file = std::fs::File::options()
        .create(true)
        .append(true)
        .open(dir.join("secrets"))
        .expect("secrets file");
    writeln!(file, "{secret}").expect("secret recorded");
}

/// A metadata value of every sample run: values must never be logged, so the session's logs
/// are checked for it as for a secret.
pub const METADATA_CANARY: &str = "canary-value-5f3a9c";

/// Lists a secret (an API key, a password) that must never appear in this session's logs.
pub fn secret(secret: &str) -> &str {
    record_secret(log_dir(), secret);
    secret
}

/// A file in the session's log directory for a spawned process's output.
pub fn session_log(name: &str) -> std::fs::File {
    std::fs::File::create(log_dir().join(format!("{name}-{}.log", Uuid::new_v4().simple())))
        .expect("log file")
}

/// A new empty directory under the system's temporary directory.
pub fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("agenttracer-cli-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// Creates a database ready for the service: the read-only role and its grants, then migrations.
pub fn prepare_database(admin: &Admin, db: &str) {
    admin.psql("postgres", &format!("CREATE DATABASE {db}"));
    admin.psql(
        "postgres",
        &format!(
            "DO $$ BEGIN CREATE ROLE {READER_ROLE} LOGIN PASSWORD '{READER_PASSWORD}'; \
             EXCEPTION WHEN duplicate_object THEN NULL; END $$"
        ),
    );
    admin.psql(db, &reader_grants());
    let url = admin.url(db);
    // Migrations are async and need a runtime of their own, off the test's.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(agenttracer::db::migrate::run(
            &database_url(&url),
            &Default::default(),
        ))
        .expect("migrations");
    })
    .join()
    .expect("migration thread");
}

/// What lets the query role's login read every table of the schema, now and after migrations.
fn reader_grants() -> String {
    format!(
        "GRANT USAGE ON SCHEMA public TO {READER_ROLE}; \
         ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT SELECT ON TABLES TO {READER_ROLE};"
    )
}

struct Shared {
    admin: Admin,
    template: String,
    _cluster: Option<PgCluster>,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

fn shared() -> &'static Shared {
    SHARED.get_or_init(|| {
        log_dir();
        let (admin, cluster) = match std::env::var("TEST_DATABASE_URL") {
            Ok(url) => {
                let base = url
                    .rsplit_once('/')
                    .map(|(b, _)| b.to_owned())
                    .unwrap_or(url);
                (Admin { base }, None)
            }
            Err(_) => {
                let cluster = PgCluster::start_new(&[]);
                (cluster.admin(), Some(cluster))
            }
        };
        let template = format!("agenttracer_template_{}", std::process::id());
        prepare_database(&admin, &template);
        Shared {
            admin,
            template,
            _cluster: cluster,
        }
    })
}

/// A database of one test's own, cloned from the migrated template and dropped after.
pub struct TestDb {
    pub admin: Admin,
    pub name: String,
}

impl TestDb {
    pub fn new() -> TestDb {
        let shared = shared();
        let name = format!("t_{}", Uuid::new_v4().simple());
        shared.admin.psql(
            "postgres",
            &format!("CREATE DATABASE {name} TEMPLATE {}", shared.template),
        );
        TestDb {
            admin: shared.admin.clone(),
            name,
        }
    }

    pub fn writer_url(&self) -> String {
        self.admin.url(&self.name)
    }

    pub fn reader_url(&self) -> String {
        self.admin.url_as(READER_ROLE, READER_PASSWORD, &self.name)
    }

    pub fn psql(&self, sql: &str) -> String {
        self.admin.psql(&self.name, sql)
    }

    /// Empties the schema (tables, functions, migration records), as before any migration.
    pub fn unmigrate(&self) {
        self.psql("DROP SCHEMA public CASCADE; CREATE SCHEMA public");
        self.psql(&reader_grants());
    }
}

/// The lock [`TestDb::hold_lock`] takes, among `pg_locks`, in the current database.
pub const HELD_LOCK: &str = "WHERE relation = 'agent_runs'::regclass AND mode = 'AccessExclusiveLock' \
     AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())";

impl TestDb {
    /// Holds an exclusive lock on agent_runs for `seconds` from a separate psql session, and
    /// returns once the lock is granted.
    pub fn hold_lock(&self, seconds: f64) -> Child {
        let child = Command::new(pg_bin().join("psql"))
            .args(["-X", "-q", "-d", &self.writer_url(), "-c"])
            .arg(format!(
                "BEGIN; LOCK TABLE agent_runs IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({seconds}); COMMIT;"
            ))
            .stdout(Stdio::null())
            .spawn()
            .expect("psql");
        let deadline = Instant::now() + Duration::from_secs(10);
        // (pg_locks is the cluster's: the tests' databases are clones, with the same table oids.)
        while self.psql(&format!("SELECT count(*) FROM pg_locks {HELD_LOCK}")) != "1" {
            assert!(Instant::now() < deadline, "lock not taken");
            std::thread::sleep(Duration::from_millis(20));
        }
        child
    }

    /// Waits until at least `n` of the service's sessions are blocked on a lock, so that a test
    /// knows its requests are in flight rather than hoping a sleep was long enough.
    pub async fn wait_for_lock_waiters(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let waiting: usize = self
                .psql("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND application_name LIKE 'agenttracer-%'")
                .parse()
                .expect("count");
            if waiting >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{waiting} of {n} sessions waiting: {}",
                self.psql("SELECT string_agg(concat_ws(' ', application_name, state, wait_event_type, left(query, 40)), E'\n') FROM pg_stat_activity WHERE datname = current_database()")
            );
            // Async: the requests being waited for may run on this test's runtime.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = Command::new(pg_bin().join("psql"))
            .args([
                "-X",
                "-q",
                "-d",
                &self.admin.url("postgres"),
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

/// A URL of the test cluster as the configuration holds it.
pub fn database_url(url: &str) -> DatabaseUrl {
    url.parse().expect("a database URL")
}

/// The configuration tests start from: both listeners, one worker each, the test database.
pub fn test_config(db: &TestDb) -> Config {
    let mut config = Config::default();
    config.server.role = Role::All;
    config.server.workers = Some(1);
    config.server.shutdown_timeout_s = 5;
    config.database.url = database_url(&db.writer_url());
    config.database.read_url = Some(database_url(&db.reader_url()));
    config.database.pool_size = 4;
    config.database.max_overflow = 4;
    config
}

/// A running service on ports chosen by the OS.
pub struct TestApp {
    pub ingest: String,
    pub query: String,
    /// OTLP/gRPC, as `http://127.0.0.1:<port>`.
    pub grpc: String,
    pub client: reqwest::Client,
    pub db: TestDb,
    stop: Option<oneshot::Sender<()>>,
    done: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(change: impl FnOnce(&mut Config)) -> TestApp {
    let db = TestDb::new();
    let mut config = test_config(&db);
    change(&mut config);
    spawn_app_on(db, config).await
}

/// The service with API keys on: `ingest` for the ingest listeners, `query` for the query
/// listener (none: that listener is open).
pub async fn spawn_app_with_keys(ingest: &[&str], query: &[&str]) -> TestApp {
    let keys = |keys: &[&str]| SecretList::new(keys.iter().map(|k| k.to_string()).collect());
    spawn_app_with(|c| {
        c.auth.ingest_keys = keys(ingest);
        c.auth.query_keys = keys(query);
    })
    .await
}

/// The service with the web UI's write actions sent to its own ingest listener
/// (`ui.ingest_url`), as `serve --role all` runs without a proxy in front (docs/ui.md, Writes).
pub async fn spawn_app_paired(change: impl FnOnce(&mut Config)) -> TestApp {
    let db = TestDb::new();
    let mut config = test_config(&db);
    let listeners = bind_listeners(&config);
    let ingest = listeners
        .iter()
        .find(|(l, _)| *l == Listener::Ingest)
        .map(|(_, tcp)| tcp.local_addr().expect("bound").port())
        .expect("role all has an ingest listener");
    config.ui.ingest_url = format!("http://127.0.0.1:{ingest}");
    change(&mut config);
    spawn_app_on_listeners(db, config, listeners).await
}

/// A listener on a port chosen by the OS for each listener of the configured role.
fn bind_listeners(config: &Config) -> Vec<(Listener, TcpListener)> {
    config
        .server
        .role
        .listeners()
        .iter()
        .map(|&l| (l, TcpListener::bind("127.0.0.1:0").expect("bind")))
        .collect()
}

/// Runs the service on a multi-threaded runtime of its own, in a thread of its own, as `main`
/// does: nothing it does depends on the test's runtime (which blocks in psql, and ends first).
pub async fn spawn_app_on(db: TestDb, config: Config) -> TestApp {
    let listeners = bind_listeners(&config);
    spawn_app_on_listeners(db, config, listeners).await
}

/// [`spawn_app_on`] on listeners already bound, one per listener of the role.
async fn spawn_app_on_listeners(
    db: TestDb,
    config: Config,
    listeners: Vec<(Listener, TcpListener)>,
) -> TestApp {
    // Logs are captured from the first service on.
    log_dir();
    for key in config
        .auth
        .ingest_keys
        .keys()
        .iter()
        .chain(config.auth.query_keys.keys())
    {
        secret(key.expose_secret());
    }
    let (started, ports) = std::sync::mpsc::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let app = Application::build_with(config, listeners)
                .await
                .expect("application builds");
            let url = |l| {
                app.port(l)
                    .map(|p| format!("http://127.0.0.1:{p}"))
                    .unwrap_or_default()
            };
            let _ = started.send((
                url(Listener::Ingest),
                url(Listener::Query),
                url(Listener::OtlpGrpc),
            ));
            app.run_until(async {
                let _ = stopped.await;
            })
            .await
        })
    });
    let (ingest, query, grpc) = tokio::task::spawn_blocking(move || ports.recv())
        .await
        .expect("join")
        .expect("the application did not start (see its panic above)");
    TestApp {
        ingest,
        query,
        grpc,
        client: reqwest::Client::new(),
        db,
        stop: Some(stop),
        done: Some(done),
    }
}

impl TestApp {
    /// Sends `method {base}{path}`, the request first given to `with`.
    pub async fn request_with(
        &self,
        method: reqwest::Method,
        url: (&str, &str),
        with: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> reqwest::Response {
        let (base, path) = url;
        let req = self.client.request(method.clone(), format!("{base}{path}"));
        with(req)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// Sends `method {base}{path}` as it is.
    pub async fn send(&self, method: reqwest::Method, base: &str, path: &str) -> reqwest::Response {
        self.request_with(method, (base, path), |r| r).await
    }

    /// POSTs `body` as JSON to the ingest listener's `path`, the request first given to `with`.
    pub async fn post_json_with(
        &self,
        path: &str,
        body: &Value,
        with: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> reqwest::Response {
        let url = (self.ingest.as_str(), path);
        self.request_with(reqwest::Method::POST, url, |r| with(r.json(body)))
            .await
    }

    pub async fn post_run(&self, body: &Value) -> reqwest::Response {
        self.post_json_with("/v1/runs", body, |r| r).await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let url = (self.ingest.as_str(), path);
        self.request_with(reqwest::Method::POST, url, |mut req| {
            for (name, value) in headers {
                req = req.header(*name, *value);
            }
            req.body(body)
        })
        .await
    }

    pub async fn post_batch(&self, runs: &[Value]) -> reqwest::Response {
        let body = json!({ "runs": runs });
        self.post_json_with("/v1/runs/batch", &body, |r| r).await
    }

    pub async fn get_run(&self, run_id: &str) -> reqwest::Response {
        self.get(&self.query, &format!("/v1/runs/{run_id}")).await
    }

    pub async fn delete_run(&self, run_id: &str) -> reqwest::Response {
        let path = format!("/v1/runs/{run_id}");
        self.send(reqwest::Method::DELETE, &self.ingest, &path)
            .await
    }

    pub async fn get(&self, base: &str, path: &str) -> reqwest::Response {
        self.send(reqwest::Method::GET, base, path).await
    }

    /// `GET {base}{path}`'s body, as JSON.
    pub async fn get_json(&self, base: &str, path: &str) -> Value {
        self.get(base, path)
            .await
            .json()
            .await
            .expect("a JSON body")
    }

    pub async fn get_metrics(&self) -> String {
        self.get(&self.ingest, "/metrics")
            .await
            .text()
            .await
            .expect("metrics text")
    }

    /// Stops the service as SIGTERM would and waits until it has.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            tokio::task::spawn_blocking(move || done.join())
                .await
                .expect("joined")
                .expect("the service thread did not panic")
                .expect("stopped cleanly");
        }
    }

    pub fn count(&self, table: &str, run_id: &str) -> i64 {
        self.db
            .psql(&format!(
                "SELECT count(*) FROM {table} WHERE run_id = '{run_id}'"
            ))
            .parse()
            .expect("count")
    }

    /// How `table` was read so far, by every connection of the server too: those are ended
    /// first, since a backend hands its counts over at the latest when it exits (the pools open
    /// new ones when next needed).
    pub fn reads_of(&self, table: &str) -> Reads {
        let server = "datname = current_database() AND pid <> pg_backend_pid() \
                      AND backend_type = 'client backend'";
        let pids = self.db.psql(&format!(
            "SELECT coalesce(string_agg(pid::text, ','), '0') FROM pg_stat_activity WHERE {server}"
        ));
        let pids = pids.trim();
        self.db.psql(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid IN ({pids})"
        ));
        let gone = (0..200).any(|_| {
            let left = self.db.psql(&format!(
                "SELECT count(*) FROM pg_stat_activity WHERE pid IN ({pids})"
            ));
            left.trim() == "0" || {
                std::thread::sleep(Duration::from_millis(50));
                false
            }
        });
        assert!(gone, "the server's connections {pids} did not end");
        let row = self.db.psql(&format!(
            "SELECT seq_scan || ',' || coalesce(idx_tup_fetch, 0) FROM pg_stat_user_tables \
             WHERE relname = '{table}'"
        ));
        let (seq, fetched) = row
            .trim()
            .split_once(',')
            .expect("a row of pg_stat_user_tables");
        Reads {
            seq_scans: seq.parse().expect("seq_scan"),
            index_fetches: fetched.parse().expect("idx_tup_fetch"),
        }
    }
}

/// A table's reads as `pg_stat_user_tables` counts them ([`TestApp::reads_of`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reads {
    pub seq_scans: i64,
    /// Rows fetched by index scans.
    pub index_fetches: i64,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The `detail` of an answer that must be a 503 (a database down, a schema behind, a pool
/// exhausted).
pub async fn unavailable_detail(res: reqwest::Response) -> String {
    assert_eq!(res.status(), 503);
    res.json::<Value>().await.expect("a JSON body")["detail"]
        .as_str()
        .expect("a detail")
        .to_owned()
}

/// A valid run with `steps` steps, a fresh run_id, and the given status.
pub fn sample_run(steps: usize, status: &str) -> Value {
    let run_id = Uuid::new_v4();
    let steps: Vec<Value> = (0..steps)
        .map(|i| {
            let step_type = ["plan", "retrieve", "tool", "llm", "respond"][i % 5];
            json!({
                "step_id": Uuid::new_v4(),
                "seq": i,
                "step_type": step_type,
                "name": format!("step-{i}"),
                "latency_ms": 10 * (i + 1),
                "started_at": format!("2024-06-01T12:00:{:02}Z", i % 60),
                "ended_at": format!("2024-06-01T12:00:{:02}.5Z", i % 60),
                "metadata": {"model": "gpt-4o", "input_tokens": 100 + i, "output_tokens": 20, "nested": {"temperature": 0.2}, "tag": METADATA_CANARY}
            })
        })
        .collect();
    let mut run = json!({
        "run_id": run_id,
        "agent_id": "support-bot",
        "agent_version": "1.4.2",
        "environment": "staging",
        "status": status,
        "started_at": "2024-06-01T12:00:00Z",
        "ended_at": "2024-06-01T12:01:30Z",
        "steps": steps,
    });
    if status == "failure" {
        run["failure"] = json!({"failure_type": "tool", "failure_code": "timeout", "message": "search tool timed out"});
    }
    run
}

/// `f` of each element of the JSON array `list`, in order.
pub fn each<'a, T>(list: &'a Value, f: impl FnMut(&'a Value) -> T) -> Vec<T> {
    list.as_array().expect("an array").iter().map(f).collect()
}

/// The status of each run in a `POST /v1/runs/batch` answer, in order.
pub fn batch_statuses(body: &Value) -> Vec<i64> {
    each(&body["results"], |r| r["status"].as_i64().expect("status"))
}

/// A stored step's model and token counts: `(model, input_tokens, output_tokens)`.
pub fn model_and_tokens(step: &Value) -> (Option<&str>, Option<i64>, Option<i64>) {
    (
        step["model"].as_str(),
        step["input_tokens"].as_i64(),
        step["output_tokens"].as_i64(),
    )
}

/// The seq values of a list of steps, in order.
pub fn seqs(steps: &Value) -> Vec<i64> {
    each(steps, |s| s["seq"].as_i64().expect("seq"))
}

pub fn run_id_of(run: &Value) -> String {
    run["run_id"].as_str().expect("run_id").to_owned()
}

/// Polls `check` until it is true or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Asserts that `GET /v1/stats{query}` equals the same statistics computed exactly from the rows
/// (`cond` selects the runs, on `agent_runs AS r`): counts, breakdowns and means exactly, the
/// percentiles within the 4 % the rollups' histograms promise.
pub async fn assert_stats_match_rows(app: &TestApp, query: &str, cond: &str) {
    let got: Value = app.get_json(&app.query, &format!("/v1/stats{query}")).await;
    let steps = format!("agent_steps s JOIN agent_runs r ON r.run_id = s.run_id WHERE {cond}");
    let pcts = |x: &str| {
        format!(
            "json_build_array(percentile_cont(0.5) WITHIN GROUP (ORDER BY {x}), \
             percentile_cont(0.95) WITHIN GROUP (ORDER BY {x}), percentile_cont(0.99) WITHIN GROUP (ORDER BY {x}))"
        )
    };
    let sql = format!(
        "SELECT json_build_object(\
         'total_runs', (SELECT count(*) FROM agent_runs r WHERE {cond}), \
         'status', (SELECT coalesce(json_object_agg(status, n), '{{}}') FROM \
            (SELECT r.status, count(*) n FROM agent_runs r WHERE {cond} GROUP BY 1) x), \
         'failures', (SELECT coalesce(json_object_agg(k, n), '{{}}') FROM \
            (SELECT f.failure_type || '/' || f.failure_code k, count(*) n FROM agent_failures f \
             JOIN agent_runs r ON r.run_id = f.run_id WHERE {cond} GROUP BY 1) x), \
         'types', (SELECT coalesce(json_object_agg(step_type, n), '{{}}') FROM \
            (SELECT s.step_type, count(*) n FROM {steps} GROUP BY 1) x), \
         'models', (SELECT coalesce(json_object_agg(model, json_build_object('steps', n, \
            'input_tokens', i, 'output_tokens', o)), '{{}}') FROM (SELECT s.model, count(*) n, \
            coalesce(sum(s.input_tokens), 0) i, coalesce(sum(s.output_tokens), 0) o FROM {steps} \
            AND s.model IS NOT NULL GROUP BY 1) x), \
         'costs', (SELECT coalesce(json_object_agg(model, c), '{{}}') FROM (SELECT s.model, \
            trim_scale(sum(s.cost_nanos)::numeric / 1000000000) c FROM {steps} \
            AND s.model IS NOT NULL AND s.cost_nanos IS NOT NULL GROUP BY 1 \
            HAVING sum(s.cost_nanos) <> 0) x), \
         'steps', (SELECT count(*) FROM {steps}), \
         'latency_sum', (SELECT coalesce(sum(s.latency_ms), 0) FROM {steps}), \
         'lat', (SELECT {} FROM {steps}), \
         'dur', (SELECT {} FROM agent_runs r WHERE {cond}))",
        pcts("s.latency_ms"),
        pcts("extract(epoch FROM r.ended_at - r.started_at) * 1000")
    );
    let exact: Value = serde_json::from_str(&app.db.psql(&sql)).expect("exact stats");
    let context = format!("/v1/stats{query}: got {got}, rows say {exact}");
    assert_eq!(got["total_runs"], exact["total_runs"], "{context}");
    let nonzero = |v: &Value| -> Value {
        v.as_object()
            .unwrap()
            .iter()
            .filter(|(_, n)| n.as_i64() != Some(0))
            .map(|(k, n)| (k.clone(), n.clone()))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    assert_eq!(
        nonzero(&got["status_breakdown"]),
        exact["status"],
        "{context}"
    );
    assert_eq!(got["failure_breakdown"], exact["failures"], "{context}");
    let failures: i64 = exact["failures"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_i64().unwrap())
        .sum();
    assert_eq!(got["failure_count"], failures, "{context}");
    let failed_runs = exact["status"].get("failure").cloned().unwrap_or(json!(0));
    assert_eq!(got["total_failures"], failed_runs, "{context}");
    assert_eq!(got["step_type_breakdown"], exact["types"], "{context}");
    assert_eq!(got["tokens_by_model"], exact["models"], "{context}");
    assert_eq!(got["cost_by_model"], exact["costs"], "{context}");
    let steps = exact["steps"].as_i64().unwrap();
    let mean = match steps {
        0 => 0.0,
        n => exact["latency_sum"].as_i64().unwrap() as f64 / n as f64,
    };
    // (Exact in the answer; serde_json's default float parsing may move the last bit.)
    let got_mean = got["avg_latency_ms"].as_f64().unwrap();
    assert!((got_mean - mean).abs() <= 1e-12 * mean, "{context}");
    for (ours, theirs) in [("step_latency_ms", "lat"), ("run_duration_ms", "dur")] {
        for (i, p) in ["p50", "p95", "p99"].iter().enumerate() {
            let (g, e) = (&got[ours][p], &exact[theirs][i]);
            match (g.as_f64(), e.as_f64()) {
                (Some(g), Some(e)) => assert!(
                    (g - e).abs() <= 0.04 * e.abs() + 1e-9,
                    "{ours}.{p}: {g} vs exact {e}; {context}"
                ),
                _ => assert!(g.is_null() && e.is_null(), "{ours}.{p}; {context}"),
            }
        }
    }
}

/// The rollups kept at ingest (by the write paths and the triggers), once merged, are exactly
/// what a rebuild from the stored rows gives.
pub fn assert_rollups_are_those_of_the_rows(app: &TestApp) {
    let rollups = "SELECT grain, bucket, agent_id, agent_version, environment, c \
                   FROM stats_rollup ORDER BY 1, 2, 3, 4, 5";
    app.db.psql("SELECT agenttracer_rollup_compact(100000)");
    let kept = app.db.psql(rollups);
    app.db.psql("SELECT agenttracer_rollup_rebuild()");
    app.db.psql("SELECT agenttracer_rollup_compact(100000)");
    assert_eq!(
        app.db.psql(rollups),
        kept,
        "rollups kept at ingest are the rollups of the rows"
    );
}

/// Runs the `agenttracer` binary with the app's database as its configuration.
pub fn agenttracer_command(app: &TestApp, args: &[&str]) -> String {
    agenttracer_command_on(&app.db.writer_url(), args)
}

/// Runs the `agenttracer` binary with the database `url` as its configuration; its output.
pub fn agenttracer_command_on(url: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_agenttracer"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("LOG_LEVEL", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

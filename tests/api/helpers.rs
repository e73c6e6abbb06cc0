//! The harness: a real PostgreSQL (started here with initdb when `TEST_DATABASE_URL` is unset),
//! a migrated template database, and one database cloned from it per test, dropped after.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use agenttracer::config::{Config, DatabaseUrl};
use agenttracer::role::{Listener, Role};
use agenttracer::startup::Application;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use uuid::Uuid;

pub const ADMIN_PASSWORD: &str = "admin-pw-5ecret";
pub const READER_ROLE: &str = "agenttracer_reader";
pub const READER_PASSWORD: &str = "reader-pw-5ecret";

/// The directory with initdb, postgres, pg_ctl, psql: `PG_BIN`, else Debian's newest.
fn pg_bin() -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path().join("bin"))
                .filter(|p| p.join("postgres").exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found.pop().unwrap_or_else(|| {
        panic!("no PostgreSQL server binaries: install Debian's `postgresql` package, set PG_BIN, or set TEST_DATABASE_URL")
    })
}

/// uid and gid of the `postgres` system user when we are root (PostgreSQL refuses to run as root).
fn postgres_user() -> Option<(u32, u32)> {
    let me = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&me.stdout).trim() != "0" {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .unwrap_or_else(|| {
            panic!("running as root needs a `postgres` system user (useradd --system postgres)")
        });
    let fields: Vec<&str> = line.split(':').collect();
    Some((
        fields[2].parse().expect("uid"),
        fields[3].parse().expect("gid"),
    ))
}

/// Makes `path` the postgres user's (when we are root), with `mode`.
pub fn give_to_postgres(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    if let Some((uid, gid)) = postgres_user() {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown");
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn as_postgres(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = postgres_user() {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A PostgreSQL cluster of our own in a temporary directory, stopped when this process ends.
pub struct PgCluster {
    pub root: PathBuf,
    pub port: u16,
    server: Option<Child>,
}

impl PgCluster {
    /// initdb into a fresh directory and start; `extra` are more `-c name=value` settings.
    /// A new, empty directory for a cluster (with its socket directory), the postgres user's.
    fn new_root() -> PathBuf {
        remove_stale_clusters();
        let root = std::env::temp_dir().join(format!(
            "agenttracer-test-{}-{}",
            std::process::id(),
            Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(root.join("socket")).expect("cluster dir");
        give_to_postgres(&root, 0o755);
        give_to_postgres(&root.join("socket"), 0o755);
        root
    }

    /// Runs a PostgreSQL tool as the postgres user; panics with its stderr when it fails.
    fn run_tool(cmd: &mut Command, what: &str) {
        let out = as_postgres(cmd).output().expect(what);
        assert!(
            out.status.success(),
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn start_new(extra: &[&str]) -> PgCluster {
        let root = Self::new_root();
        let pwfile = root.join("pwfile");
        std::fs::write(&pwfile, ADMIN_PASSWORD).expect("pwfile");
        give_to_postgres(&pwfile, 0o600);
        Self::run_tool(
            Command::new(pg_bin().join("initdb"))
                .args([
                    "-D",
                    root.join("data").to_str().expect("utf8"),
                    "-U",
                    "postgres",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ])
                .arg(format!("--pwfile={}", pwfile.display())),
            "initdb",
        );
        let mut cluster = PgCluster {
            root,
            port: free_port(),
            server: None,
        };
        cluster.extra_settings(extra);
        cluster.start();
        cluster
    }

    /// A streaming standby of `primary` (pg_basebackup -R), started on a port of its own.
    pub fn standby_of(primary: &PgCluster) -> PgCluster {
        let root = Self::new_root();
        // The password in the connection string lands in primary_conninfo, written by -R.
        let conninfo = format!(
            "host=127.0.0.1 port={} user=postgres password={ADMIN_PASSWORD}",
            primary.port
        );
        Self::run_tool(
            Command::new(pg_bin().join("pg_basebackup")).args([
                "-d",
                &conninfo,
                "-D",
                root.join("data").to_str().expect("utf8"),
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
                "--no-sync",
            ]),
            "pg_basebackup",
        );
        let mut standby = PgCluster {
            root,
            port: free_port(),
            server: None,
        };
        standby.start();
        standby
    }

    fn extra_settings(&self, extra: &[&str]) {
        let mut conf = String::from(
            "listen_addresses = '127.0.0.1'\nmax_connections = 400\nfsync = off\nfull_page_writes = off\n",
        );
        for setting in extra {
            conf.push_str(setting);
            conf.push('\n');
        }
        let path = self.root.join("data/postgresql.auto.conf");
        let mut existing = std::fs::read_to_string(&path).unwrap_or_default();
        existing.push_str(&conf);
        std::fs::write(path, existing).expect("postgresql.auto.conf");
    }

    /// Starts the server (again) on the same port and waits until it accepts queries.
    pub fn start(&mut self) {
        let data = self.root.join("data");
        let socket = self.root.join("socket");
        // A watcher shell: it stops the server when the test process is gone.
        let script = format!(
            "{postgres} -D {data} -p {port} -k {socket} > {log} 2>&1 & pid=$!; \
             while kill -0 $pid 2>/dev/null && [ -e /proc/{parent} ]; do sleep 0.2; done; \
             kill -INT $pid 2>/dev/null; wait $pid",
            postgres = pg_bin().join("postgres").display(),
            data = data.display(),
            port = self.port,
            socket = socket.display(),
            log = self.root.join("postgres.log").display(),
            parent = std::process::id(),
        );
        let child = as_postgres(Command::new("sh").args(["-c", &script]))
            .stdin(Stdio::null())
            .spawn()
            .expect("start postgres");
        self.server = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(pg_bin().join("pg_isready"))
                .args([
                    "-h",
                    socket.to_str().expect("utf8"),
                    "-p",
                    &self.port.to_string(),
                    "-t",
                    "1",
                ])
                .output()
                .is_ok_and(|o| o.status.success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (fast shutdown: connections are cut) and waits for it to exit.
    pub fn stop(&mut self) {
        let _ = as_postgres(Command::new(pg_bin().join("pg_ctl")).args([
            "stop",
            "-D",
            self.root.join("data").to_str().expect("utf8"),
            "-m",
            "fast",
            "-w",
        ]))
        .output();
        if let Some(mut child) = self.server.take() {
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("postgres.log")).unwrap_or_default()
    }

    pub fn admin(&self) -> Admin {
        Admin {
            base: format!(
                "postgresql://postgres:{ADMIN_PASSWORD}@127.0.0.1:{}",
                self.port
            ),
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Removes clusters left by test processes that no longer run.
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("agenttracer-test-")
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Superuser access to a cluster: a base URL without database.
#[derive(Clone)]
pub struct Admin {
    pub base: String,
}

impl Admin {
    pub fn url(&self, db: &str) -> String {
        format!("{}/{db}", self.base)
    }

    pub fn url_as(&self, user: &str, password: &str, db: &str) -> String {
        let host = self
            .base
            .rsplit_once('@')
            .map(|(_, h)| h)
            .unwrap_or_default();
        format!("postgresql://{user}:{password}@{host}/{db}")
    }

    /// Runs SQL with psql and returns its unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(pg_bin().join("psql"))
            .args([
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                &self.url(db),
                "-c",
                sql,
            ])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql failed on {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
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
    admin.psql(
        db,
        &format!(
            "GRANT USAGE ON SCHEMA public TO {READER_ROLE}; \
             ALTER DEFAULT PRIVILEGES FOR ROLE postgres IN SCHEMA public GRANT SELECT ON TABLES TO {READER_ROLE};"
        ),
    );
    let url = admin.url(db);
    // Migrations are async and need a runtime of their own, off the test's.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(agenttracer::db::migrate::run(&url, &Default::default()))
            .expect("migrations");
    })
    .join()
    .expect("migration thread");
}

struct Shared {
    admin: Admin,
    template: String,
    _cluster: Option<PgCluster>,
}

static SHARED: OnceLock<Shared> = OnceLock::new();

fn shared() -> &'static Shared {
    SHARED.get_or_init(|| {
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
}

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
        while self.psql("SELECT count(*) FROM pg_locks WHERE relation = 'agent_runs'::regclass AND mode = 'AccessExclusiveLock' AND granted") != "1" {
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
                "{waiting} of {n} sessions waiting"
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

/// The configuration tests start from: both listeners, one worker each, the test database.
pub fn test_config(db: &TestDb) -> Config {
    let mut config = Config::default();
    config.server.role = Role::All;
    config.server.workers = Some(1);
    config.server.shutdown_timeout_s = 5;
    config.database.url = DatabaseUrl(db.writer_url());
    config.database.read_url = Some(DatabaseUrl(db.reader_url()));
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

/// Runs the service on a multi-threaded runtime of its own, in a thread of its own, as `main`
/// does: nothing it does depends on the test's runtime (which blocks in psql, and ends first).
pub async fn spawn_app_on(db: TestDb, config: Config) -> TestApp {
    let listeners: Vec<(Listener, TcpListener)> = config
        .server
        .role
        .listeners()
        .iter()
        .map(|&l| (l, TcpListener::bind("127.0.0.1:0").expect("bind")))
        .collect();
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
    pub async fn post_run(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/runs", self.ingest))
            .json(body)
            .send()
            .await
            .expect("post run")
    }

    pub async fn post_raw(
        &self,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}{path}", self.ingest))
            .body(body);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.send().await.expect("post")
    }

    pub async fn post_batch(&self, runs: &[Value]) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/runs/batch", self.ingest))
            .json(&json!({ "runs": runs }))
            .send()
            .await
            .expect("post batch")
    }

    pub async fn get_run(&self, run_id: &str) -> reqwest::Response {
        self.client
            .get(format!("{}/v1/runs/{run_id}", self.query))
            .send()
            .await
            .expect("get run")
    }

    pub async fn delete_run(&self, run_id: &str) -> reqwest::Response {
        self.client
            .delete(format!("{}/v1/runs/{run_id}", self.ingest))
            .send()
            .await
            .expect("delete run")
    }

    pub async fn get(&self, base: &str, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("get")
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
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
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
                "metadata": {"model": "gpt-4o", "input_tokens": 100 + i, "output_tokens": 20, "nested": {"temperature": 0.2}}
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

/// The seq values of a list of steps, in order.
pub fn seqs(steps: &Value) -> Vec<i64> {
    steps
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["seq"].as_i64().expect("seq"))
        .collect()
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

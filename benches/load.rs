//! The load benchmark (issue 6): the database's own write limit, then the release server under
//! fixed-duration concurrent load, all on this machine in one run.
//!
//! `cargo bench --bench load` — it
//! 1. starts a throwaway PostgreSQL (initdb; durability settings at their defaults: fsync,
//!    synchronous_commit, full_page_writes and wal_sync_method are not touched; only memory and
//!    checkpoint spacing are set, see [`PG_SETTINGS`]) and migrates a database;
//! 2. measures the limit: COPY of generated runs (10 steps, ~300 B of metadata per step) and their
//!    steps into the same schema, a transaction per 1,000 runs, from two connections;
//! 3. starts the release `agenttracer serve --role all` with its default configuration and drives
//!    it for a fixed duration each: single-run `POST /v1/runs`, `POST /v1/runs/batch` (100 runs a
//!    request), OTLP `POST /v1/traces` (protobuf, 10 traces of 11 spans a request);
//! 4. loads runs by COPY up to 100,000 (then 1,000,000) and drives the reads: `GET /v1/runs`
//!    (page_size=20) with and without `agent_id`, `GET /v1/runs/{id}`, `GET /v1/stats`;
//! 5. prints a table (throughput, p50/p95/p99, errors, server RSS, ratio to COPY, target) and
//!    writes it as JSON to `target/load-bench.json` (or `LOAD_JSON`).
//!
//! Knobs: `LOAD_SECS` (seconds per scenario, default 10), `LOAD_MAX_RUNS` (largest read dataset,
//! default 1,000,000; 100,000 skips the million-run phase, 0 every read), `LOAD_LATENCY` (the
//! latency-at-rest scenario of `support/latency.rs`, first on the idle server: `0` leaves it out,
//! `only` runs just it; its own knobs are documented there), `LOAD_SERVER_BIN` (serve with that
//! `agenttracer` binary instead of this build's, to compare builds).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/latency.rs"]
mod latency;
#[path = "support/otlp.rs"]
mod otlp;
#[path = "../tests/support/pg.rs"]
mod pg;

use std::fmt::Write as _;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::SinkExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use serde_json::{Value, json};
use uuid::Uuid;

use otlp::otlp_request;
use pg::PgCluster;

/// Memory and checkpoint spacing only; durability settings stay at PostgreSQL's defaults.
const PG_SETTINGS: &[&str] = &[
    "shared_buffers = '512MB'",
    "max_wal_size = '8GB'",
    "checkpoint_timeout = '30min'",
    "log_min_duration_statement = -1",
];

/// 2026-11-01T00:00:00Z in milliseconds: runs of the read dataset start in the 30 days before.
const BASE_MS: i64 = 1_761_955_200_000;
const STEP_TYPES: [&str; 6] = ["plan", "retrieve", "tool", "llm", "respond", "other"];
const PLACEHOLDER: &str = "00000000-0000-4000-8000-000000000000";
const AGENTS: usize = 50;

// ---------------------------------------------------------------- generated data

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// A latency with a long tail: mostly tens to hundreds of ms, sometimes seconds.
    fn latency_ms(&mut self) -> i64 {
        let exp = self.below(1000) as f64 / 1000.0 * 4.0; // 10^0 .. 10^4
        (10f64.powf(exp) * (1.0 + self.below(100) as f64 / 100.0)) as i64
    }
}

struct GenStep {
    step_id: Uuid,
    step_type: &'static str,
    name: String,
    offset_ms: i64,
    latency_ms: i64,
    metadata: String,
    model: &'static str,
    input_tokens: i64,
    output_tokens: i64,
}

struct GenRun {
    run_id: Uuid,
    agent_id: String,
    agent_version: &'static str,
    environment: &'static str,
    status: &'static str,
    started_ms: i64,
    duration_ms: i64,
    steps: Vec<GenStep>,
    /// (step index or none, failure_type, failure_code)
    failure: Option<(Option<usize>, &'static str, &'static str)>,
}

/// About 300 bytes of JSON, as the measurement assumed.
fn metadata(rng: &mut Rng, model: &str, input: i64, output: i64) -> String {
    let v = json!({
        "model": model, "provider": "openai", "input_tokens": input, "output_tokens": output,
        "temperature": 0.2, "top_p": 0.95, "tool_name": "search_orders", "attempt": 1 + rng.below(3),
        "cache": {"hit": rng.below(2) == 1, "key_hash": format!("{:012x}", rng.next() >> 16)},
        "finish_reasons": ["stop"], "prompt_template_id": "support/v12", "http.status_code": 200,
        "region": "eu-west-1", "request_id": format!("req-{:016x}", rng.next()),
    });
    v.to_string()
}

fn gen_run(rng: &mut Rng, varied: bool) -> GenRun {
    let models = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "llama-3.1-70b"];
    let (agent_id, status, started_ms) = match varied {
        false => ("bench-agent".to_owned(), "success", BASE_MS),
        true => {
            let status = match rng.below(100) {
                0..80 => "success",
                80..90 => "partial",
                90..98 => "failure",
                _ => "running",
            };
            (
                format!("agent-{:02}", rng.below(AGENTS as u64)),
                status,
                BASE_MS - rng.below(30 * 86_400_000) as i64,
            )
        }
    };
    let mut offset = 0;
    let steps: Vec<GenStep> = (0..10)
        .map(|i| {
            let step_type = STEP_TYPES[(i + rng.below(2) as usize) % STEP_TYPES.len()];
            let latency_ms = rng.latency_ms();
            let model = models[rng.below(models.len() as u64) as usize];
            let (input_tokens, output_tokens) =
                (100 + rng.below(4000) as i64, rng.below(800) as i64);
            let step = GenStep {
                step_id: Uuid::new_v4(),
                step_type,
                name: format!("{step_type}-{i}"),
                offset_ms: offset,
                latency_ms,
                metadata: metadata(rng, model, input_tokens, output_tokens),
                model,
                input_tokens,
                output_tokens,
            };
            offset += latency_ms;
            step
        })
        .collect();
    let failure = match status {
        "failure" => Some((Some(rng.below(10) as usize), "tool", "TIMEOUT")),
        "partial" => Some((Some(rng.below(10) as usize), "model", "RATE_LIMIT")),
        _ => None,
    };
    GenRun {
        run_id: Uuid::new_v4(),
        agent_id,
        agent_version: "1.4.2",
        environment: "production",
        status,
        started_ms,
        duration_ms: offset,
        steps,
        failure,
    }
}

fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// The native API body of a run, with `run_id` left as [`PLACEHOLDER`] to patch per request.
fn run_json(run: &GenRun) -> Value {
    let steps: Vec<Value> = run
        .steps
        .iter()
        .enumerate()
        .map(|(seq, s)| {
            let started = run.started_ms + s.offset_ms;
            json!({
                "seq": seq, "step_type": s.step_type, "name": s.name, "latency_ms": s.latency_ms,
                "started_at": rfc3339(started), "ended_at": rfc3339(started + s.latency_ms),
                "metadata": serde_json::from_str::<Value>(&s.metadata).unwrap(),
            })
        })
        .collect();
    let mut body = json!({
        "run_id": PLACEHOLDER, "agent_id": run.agent_id, "agent_version": run.agent_version,
        "environment": run.environment, "status": run.status,
        "started_at": rfc3339(run.started_ms), "ended_at": rfc3339(run.started_ms + run.duration_ms),
        "steps": steps,
    });
    if let Some((_, failure_type, failure_code)) = run.failure {
        body["failure"] = json!({"failure_type": failure_type, "failure_code": failure_code,
            "message": "the step did not complete"});
    }
    body
}

/// A body with placeholders, and their offsets, so that each request gets fresh run ids cheaply.
#[derive(Clone)]
struct Template {
    bytes: Vec<u8>,
    offsets: Vec<usize>,
}

impl Template {
    fn new(value: &Value) -> Template {
        let bytes = serde_json::to_vec(value).unwrap();
        let offsets = bytes
            .windows(PLACEHOLDER.len())
            .enumerate()
            .filter(|(_, w)| *w == PLACEHOLDER.as_bytes())
            .map(|(i, _)| i)
            .collect();
        Template { bytes, offsets }
    }
    fn fresh(&self) -> Vec<u8> {
        let mut body = self.bytes.clone();
        for &at in &self.offsets {
            let id = Uuid::new_v4();
            id.hyphenated()
                .encode_lower(&mut body[at..at + PLACEHOLDER.len()]);
        }
        body
    }
}

/// COPY text rows for runs, steps and failures.
#[derive(Default)]
struct CopyRows {
    runs: String,
    steps: String,
    failures: String,
}

// COPY's text format takes the same RFC 3339 timestamps as the API.
impl CopyRows {
    fn push(&mut self, run: &GenRun) {
        let ended = match run.status {
            "running" => "\\N".to_owned(),
            _ => rfc3339(run.started_ms + run.duration_ms),
        };
        let _ = writeln!(
            self.runs,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            run.run_id,
            run.agent_id,
            run.agent_version,
            run.environment,
            run.status,
            rfc3339(run.started_ms),
            ended
        );
        for (seq, s) in run.steps.iter().enumerate() {
            let started = run.started_ms + s.offset_ms;
            debug_assert!(!s.metadata.contains('\\'));
            let _ = writeln!(
                self.steps,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                s.step_id,
                run.run_id,
                seq,
                s.step_type,
                s.name,
                s.latency_ms,
                rfc3339(started),
                rfc3339(started + s.latency_ms),
                s.metadata,
                s.model,
                s.input_tokens,
                s.output_tokens
            );
        }
        if let Some((step, failure_type, code)) = run.failure {
            let step = step.map_or("\\N".to_owned(), |i| run.steps[i].step_id.to_string());
            let _ = writeln!(
                self.failures,
                "{}\t{}\t{step}\t{failure_type}\t{code}\tgenerated failure",
                Uuid::new_v4(),
                run.run_id
            );
        }
    }
}

/// COPYs `runs` runs (generated, `varied` or not) over `connections` connections, a transaction per
/// 1,000 runs; stops early at `deadline`. Returns the runs written and the rows (runs + steps +
/// failures).
async fn copy_runs(
    url: &str,
    connections: usize,
    runs: usize,
    varied: bool,
    deadline: Option<Instant>,
) -> (usize, usize) {
    let per_conn = runs.div_ceil(connections);
    let mut tasks = Vec::new();
    for c in 0..connections {
        let url = url.to_owned();
        tasks.push(tokio::spawn(async move {
            let (mut client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            let mut rng = Rng((rand_seed() ^ (c as u64 + 1)) | 1);
            let (mut done, mut rows) = (0, 0);
            while done < per_conn && deadline.is_none_or(|d| Instant::now() < d) {
                let n = 1000.min(per_conn - done);
                // Generation is outside the measured database work only in the sense that it is
                // interleaved; it is cheap next to the COPY itself.
                let mut copy = CopyRows::default();
                for _ in 0..n {
                    copy.push(&gen_run(&mut rng, varied));
                }
                let tx = client.transaction().await.unwrap();
                for (sql, data) in [
                    ("COPY agent_runs (run_id, agent_id, agent_version, environment, status, started_at, ended_at) FROM STDIN", &copy.runs),
                    ("COPY agent_steps (step_id, run_id, seq, step_type, name, latency_ms, started_at, ended_at, metadata, model, input_tokens, output_tokens) FROM STDIN", &copy.steps),
                    ("COPY agent_failures (failure_id, run_id, step_id, failure_type, failure_code, message) FROM STDIN", &copy.failures),
                ] {
                    if data.is_empty() {
                        continue;
                    }
                    let sink = tx.copy_in(sql).await.unwrap();
                    let mut sink = Box::pin(sink);
                    sink.send(Bytes::from(data.clone().into_bytes())).await.unwrap();
                    rows += sink.as_mut().finish().await.unwrap() as usize;
                }
                tx.commit().await.unwrap();
                done += n;
            }
            (done, rows)
        }));
    }
    let mut total = (0, 0);
    for t in tasks {
        let (runs, rows) = t.await.unwrap();
        total.0 += runs;
        total.1 += rows;
    }
    total
}

fn rand_seed() -> u64 {
    Uuid::new_v4().as_u64_pair().0
}

// ---------------------------------------------------------------- the server

struct Server {
    child: Child,
    ingest: String,
    query: String,
    log: PathBuf,
}

impl Server {
    /// The server under test: this build, or `LOAD_SERVER_BIN` (another build, for comparing
    /// two builds with the same bench and settings without rebuilding between runs).
    fn start(db_url: &str, dir: &std::path::Path) -> Server {
        let bin = std::env::var_os("LOAD_SERVER_BIN").map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_agenttracer")),
            PathBuf::from,
        );
        Server::start_bin(&bin, db_url, dir)
    }

    /// [`Server::start`] with another build of the binary.
    fn start_bin(bin: &std::path::Path, db_url: &str, dir: &std::path::Path) -> Server {
        let (ingest_port, query_port) = (pg::free_port(), pg::free_port());
        let log = dir.join("agenttracer.log");
        let child = Command::new(bin)
            .args(["serve", "--role", "all"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", db_url)
            .env("INGEST_API_HOST", "127.0.0.1")
            .env("INGEST_API_PORT", ingest_port.to_string())
            .env("QUERY_API_HOST", "127.0.0.1")
            .env("QUERY_API_PORT", query_port.to_string())
            .env(
                "AGENTTRACER_SERVER__OTLP_GRPC_ADDR",
                format!("127.0.0.1:{}", pg::free_port()),
            )
            .env("LOG_FORMAT", "json")
            // Configuration experiments: AGENTTRACER_* settings given to the bench pass on.
            .envs(std::env::vars().filter(|(k, _)| k.starts_with("AGENTTRACER_")))
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Server {
            child,
            ingest: format!("http://127.0.0.1:{ingest_port}"),
            query: format!("http://127.0.0.1:{query_port}"),
            log,
        }
    }

    async fn wait_ready(&self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        for base in [&self.ingest, &self.query] {
            loop {
                let ok = client
                    .get(format!("{base}/readyz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ok {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "server not ready: {}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// (current, peak) resident set size in MiB.
    fn rss_mib(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
                / 1024.0
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- the driver

type Call =
    Arc<dyn Fn(u64) -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send>> + Send + Sync>;

#[derive(Default)]
struct Measured {
    requests: u64,
    units: u64,
    errors: u64,
    first_error: Option<String>,
    secs: f64,
    latencies_us: Vec<u32>,
}

/// `clients` tasks each calling `call` back to back until `secs` have passed.
async fn drive(clients: usize, secs: f64, call: Call) -> Measured {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let call = call.clone();
            tokio::spawn(async move {
                let mut m = Measured {
                    latencies_us: Vec::with_capacity(100_000),
                    ..Measured::default()
                };
                let mut n = c as u64;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let result = call(n).await;
                    m.latencies_us.push(t.elapsed().as_micros() as u32);
                    m.requests += 1;
                    n += clients as u64;
                    match result {
                        Ok(units) => m.units += units,
                        Err(e) => {
                            m.errors += 1;
                            m.first_error.get_or_insert(e);
                        }
                    }
                }
                m
            })
        })
        .collect();
    let mut all = Measured::default();
    for t in tasks {
        let m = t.await.unwrap();
        all.requests += m.requests;
        all.units += m.units;
        all.errors += m.errors;
        all.first_error = all.first_error.or(m.first_error);
        all.latencies_us.extend(m.latencies_us);
    }
    all.secs = started.elapsed().as_secs_f64();
    all.latencies_us.sort_unstable();
    all
}

fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 * p).ceil() as usize).clamp(1, sorted_us.len()) - 1;
    f64::from(sorted_us[i]) / 1000.0
}

async fn check(res: reqwest::Result<reqwest::Response>, want: u16) -> Result<Bytes, String> {
    let res = res.map_err(|e| format!("transport: {e}"))?;
    let status = res.status().as_u16();
    let body = res.bytes().await.map_err(|e| format!("body: {e}"))?;
    match status == want {
        true => Ok(body),
        false => Err(format!(
            "status {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        )),
    }
}

// ---------------------------------------------------------------- results

struct Row {
    name: String,
    clients: usize,
    m: Measured,
    unit: &'static str,
    /// Units per request that count as rows, to compare with COPY's rows/s.
    rows_per_unit: f64,
    rss_mib: f64,
    target: Option<Target>,
}

#[derive(Clone, Copy)]
struct Target {
    text: &'static str,
    min_per_s: Option<f64>,
    max_p99_ms: Option<f64>,
    min_copy_ratio: Option<f64>,
}

/// The targets on this machine.
const SINGLE_TARGET: Target = Target {
    text: ">= 2,500 runs/s, p99 <= 25 ms",
    min_per_s: Some(2500.0),
    max_p99_ms: Some(25.0),
    min_copy_ratio: None,
};
const BATCH_TARGET: Target = Target {
    text: ">= 60% of COPY rows/s",
    min_per_s: None,
    max_p99_ms: None,
    min_copy_ratio: Some(0.6),
};
const OTLP_TARGET: Target = Target {
    text: ">= 25,000 spans/s",
    min_per_s: Some(25_000.0),
    max_p99_ms: None,
    min_copy_ratio: None,
};
const LIST_TARGET: Target = Target {
    text: ">= 1,300 req/s, p99 <= 15 ms",
    min_per_s: Some(1300.0),
    max_p99_ms: Some(15.0),
    min_copy_ratio: None,
};
const RUN_TARGET: Target = Target {
    text: "p99 <= 5 ms",
    min_per_s: None,
    max_p99_ms: Some(5.0),
    min_copy_ratio: None,
};
const STATS_TARGET: Target = Target {
    text: "p99 <= 100 ms",
    min_per_s: None,
    max_p99_ms: Some(100.0),
    min_copy_ratio: None,
};

impl Row {
    fn per_s(&self) -> f64 {
        self.m.units as f64 / self.m.secs
    }
    fn copy_ratio(&self, copy_rows_per_s: f64) -> Option<f64> {
        (self.rows_per_unit > 0.0).then(|| self.per_s() * self.rows_per_unit / copy_rows_per_s)
    }
    fn met(&self, copy_rows_per_s: f64) -> Option<bool> {
        let t = self.target.as_ref()?;
        let p99 = percentile_ms(&self.m.latencies_us, 0.99);
        Some(
            self.m.errors == 0
                && t.min_per_s.is_none_or(|v| self.per_s() >= v)
                && t.max_p99_ms.is_none_or(|v| p99 <= v)
                && t.min_copy_ratio
                    .is_none_or(|v| self.copy_ratio(copy_rows_per_s).unwrap_or(0.0) >= v),
        )
    }
    fn json(&self, copy_rows_per_s: f64) -> Value {
        let l = &self.m.latencies_us;
        json!({
            "scenario": self.name, "clients": self.clients, "seconds": self.m.secs,
            "requests": self.m.requests, "unit": self.unit, "per_second": self.per_s(),
            "p50_ms": percentile_ms(l, 0.50), "p95_ms": percentile_ms(l, 0.95),
            "p99_ms": percentile_ms(l, 0.99), "max_ms": l.last().map_or(0.0, |v| f64::from(*v) / 1000.0),
            "errors": self.m.errors, "first_error": self.m.first_error,
            "server_rss_mib": self.rss_mib,
            "ratio_to_copy": self.copy_ratio(copy_rows_per_s),
            "target": self.target.as_ref().map(|t| t.text),
            "target_met": self.met(copy_rows_per_s),
        })
    }
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let mem_kib: f64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let pg = Command::new(pg::pg_bin().join("postgres"))
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    json!({
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu": cpu,
        "memory_gib": (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
        "postgresql": pg,
        "postgresql_settings": PG_SETTINGS,
    })
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let secs: f64 = env_or("LOAD_SECS", 10.0);
    let max_runs: usize = env_or("LOAD_MAX_RUNS", 1_000_000usize);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match std::env::var("SOAK_SECS").ok().and_then(|v| v.parse().ok()) {
        Some(soak_secs) => runtime.block_on(soak(soak_secs, env_or("SOAK_WINDOW_SECS", 60.0))),
        None if std::env::var("LOAD_LATENCY").as_deref() == Ok("only") => {
            runtime.block_on(latency_only())
        }
        None => runtime.block_on(run(secs, max_runs)),
    }
}

/// `LOAD_LATENCY=only`: a fresh PostgreSQL and server, the latency-at-rest cases and nothing
/// else; the table on stdout, the same as JSON in `target/load-latency.json` (or `LOAD_JSON`).
async fn latency_only() {
    let statements = std::env::var("LOAD_LATENCY_STATEMENTS").as_deref() == Ok("1");
    eprintln!("load: starting PostgreSQL (durability defaults)");
    let mut settings = PG_SETTINGS.to_vec();
    if statements {
        settings.extend_from_slice(latency::STATEMENTS_SETTINGS);
    }
    let cluster = PgCluster::start_with(&settings);
    let admin = cluster.admin();
    admin.psql("postgres", "CREATE DATABASE bench");
    let migrate = Command::new(env!("CARGO_BIN_EXE_agenttracer"))
        .arg("migrate")
        .env("DATABASE_URL", admin.url("bench"))
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{migrate:?}");
    let bare_url = latency::bare_database(&admin);
    let server = Server::start(&admin.url("bench"), &cluster.root);
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .unwrap();
    server.wait_ready(&client).await;
    let mut targets = vec![latency::Target {
        label: "this".into(),
        ingest: server.ingest.clone(),
    }];
    // An A/B comparison with another build, interleaved request by request.
    let baseline = std::env::var("LOAD_LATENCY_BASELINE_BIN").ok().map(|bin| {
        admin.psql("postgres", "CREATE DATABASE bench_baseline");
        let migrate = Command::new(&bin)
            .arg("migrate")
            .env("DATABASE_URL", admin.url("bench_baseline"))
            .output()
            .unwrap();
        assert!(migrate.status.success(), "{migrate:?}");
        let dir = cluster.root.join("baseline");
        std::fs::create_dir_all(&dir).unwrap();
        Server::start_bin(bin.as_ref(), &admin.url("bench_baseline"), &dir)
    });
    if let Some(baseline) = &baseline {
        baseline.wait_ready(&client).await;
        targets.push(latency::Target {
            label: "baseline".into(),
            ingest: baseline.ingest.clone(),
        });
    }
    if statements {
        admin.psql("bench", "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
        admin.psql("bench", "SELECT pg_stat_statements_reset()");
    }
    let cases = latency::measure(&targets, &bare_url, &client).await;
    println!("{}", latency::table(&cases));
    drop(baseline);
    if statements {
        let posts: usize = admin
            .psql("bench", "SELECT count(*) FROM agent_runs")
            .parse()
            .unwrap();
        println!("{}", latency::statements_per_run(&admin, "bench", posts));
        let bare: usize = admin
            .psql("bench_bare", "SELECT count(*) FROM agent_runs")
            .parse()
            .unwrap();
        println!(
            "{}",
            latency::statements_per_run(&admin, "bench_bare", bare)
        );
    }
    let out = json!({
        "machine": machine(),
        "latency_at_rest": cases.iter().map(latency::Case::json).collect::<Vec<_>>(),
    });
    let path = std::env::var("LOAD_JSON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(
                std::env::var("CARGO_TARGET_DIR")
                    .unwrap_or_else(|_| format!("{}/target", env!("CARGO_MANIFEST_DIR"))),
            )
            .join("load-latency.json")
        });
    std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap()).unwrap();
    println!("\nwritten to {}", path.display());
    drop(server);
    drop(cluster);
}

// ---------------------------------------------------------------- the soak

/// What the soak sends, and how often (requests per second, open loop: a slow answer does not
/// slow the rate down).
const SOAK_MIX: &[(&str, f64)] = &[
    ("POST /v1/runs", 40.0),
    ("POST /v1/runs/batch", 1.0),
    ("POST /v1/traces", 4.0),
    ("GET /v1/runs", 10.0),
    ("GET /v1/runs/{id}", 10.0),
    ("GET /v1/stats", 1.0),
];

/// One answered (or failed) request of the soak.
struct Sample {
    class: usize,
    window: usize,
    latency_us: u32,
    error: Option<String>,
}

/// `SOAK_SECS=600 cargo bench --bench load`: mixed ingest and query at a steady rate for that
/// long, against a fresh PostgreSQL and the release server; prints per window (`SOAK_WINDOW_SECS`,
/// default 60) the requests, errors, latency percentiles and server RSS, then RSS at start and
/// end. Writes the same to target/soak.json.
async fn soak(secs: f64, window_secs: f64) {
    eprintln!("soak: starting PostgreSQL (durability defaults)");
    let cluster = PgCluster::start_with(PG_SETTINGS);
    let admin = cluster.admin();
    admin.psql("postgres", "CREATE DATABASE bench");
    let migrate = Command::new(env!("CARGO_BIN_EXE_agenttracer"))
        .arg("migrate")
        .env("DATABASE_URL", admin.url("bench"))
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{migrate:?}");
    let server = Server::start(&admin.url("bench"), &cluster.root);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .build()
        .unwrap();
    server.wait_ready(&client).await;

    let mut rng = Rng(rand_seed() | 1);
    let single_run = run_json(&gen_run(&mut rng, true));
    let agent = single_run["agent_id"].as_str().unwrap().to_owned();
    let single = Template::new(&single_run);
    let batch_runs: Vec<Value> = (0..100)
        .map(|_| run_json(&gen_run(&mut rng, true)))
        .collect();
    let batch = Template::new(&json!({ "runs": batch_runs }));
    // Runs to read back by id: the first of each single POST's answers.
    let ids: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let samples: Arc<std::sync::Mutex<Vec<Sample>>> = Arc::default();
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(secs);
    let last_window = ((secs / window_secs).ceil() as usize).max(1) - 1;
    let window_of =
        move |t: Instant| (((t - started).as_secs_f64() / window_secs) as usize).min(last_window);
    let rss_start = server.rss_mib().0;
    eprintln!("soak: {secs} s, windows of {window_secs} s, server RSS at start {rss_start:.1} MiB");

    let mut pacers = Vec::new();
    for (class, &(_, rate)) in SOAK_MIX.iter().enumerate() {
        let (client, ids, samples) = (client.clone(), ids.clone(), samples.clone());
        let (single, batch, agent) = (single.clone(), batch.clone(), agent.clone());
        let (ingest, query) = (server.ingest.clone(), server.query.clone());
        pacers.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut inflight = Vec::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                tick.tick().await;
                n += 1;
                let (client, ids, samples) = (client.clone(), ids.clone(), samples.clone());
                let req = match class {
                    0 => client
                        .post(format!("{ingest}/v1/runs"))
                        .body(single.fresh()),
                    1 => client
                        .post(format!("{ingest}/v1/runs/batch"))
                        .body(batch.fresh()),
                    2 => client
                        .post(format!("{ingest}/v1/traces"))
                        .header("content-type", "application/x-protobuf")
                        .body(otlp_request(2).encode_to_vec()),
                    3 if n.is_multiple_of(2) => {
                        client.get(format!("{query}/v1/runs?page_size=20&agent_id={agent}"))
                    }
                    3 => client.get(format!("{query}/v1/runs?page_size=20")),
                    4 => {
                        let id = {
                            let ids = ids.lock().unwrap();
                            ids.get((n as usize * 7919) % ids.len().max(1)).cloned()
                        };
                        let Some(id) = id else { continue };
                        client.get(format!("{query}/v1/runs/{id}"))
                    }
                    _ => client.get(format!("{query}/v1/stats")),
                };
                let req = if class <= 1 {
                    req.header("content-type", "application/json")
                } else {
                    req
                };
                inflight.push(tokio::spawn(async move {
                    let t = Instant::now();
                    let want = if class == 0 { 201 } else { 200 };
                    let result =
                        check(req.timeout(Duration::from_secs(30)).send().await, want).await;
                    let latency_us = t.elapsed().as_micros() as u32;
                    let result = result.and_then(|body| {
                        let created = body
                            .windows(b"\"status\":201".len())
                            .filter(|w| *w == b"\"status\":201")
                            .count();
                        match class == 1 && created != 100 {
                            true => Err(format!("{created} of 100 runs created")),
                            false => Ok(body),
                        }
                    });
                    let error = match result {
                        Ok(body) => {
                            if class == 0 && n.is_multiple_of(10) {
                                let run: Value = serde_json::from_slice(&body).unwrap_or_default();
                                if let Some(id) = run["run_id"].as_str() {
                                    ids.lock().unwrap().push(id.to_owned());
                                }
                            }
                            None
                        }
                        Err(e) => Some(e),
                    };
                    samples.lock().unwrap().push(Sample {
                        class,
                        window: window_of(t),
                        latency_us,
                        error,
                    });
                }));
                inflight.retain(|t| !t.is_finished());
            }
            for t in inflight {
                let _ = t.await;
            }
        }));
    }
    // Server RSS at the end of every window.
    let mut rss: Vec<f64> = Vec::new();
    while Instant::now() < deadline {
        let next = started + Duration::from_secs_f64(window_secs * (rss.len() + 1) as f64);
        tokio::time::sleep_until(next.min(deadline).into()).await;
        rss.push(server.rss_mib().0);
        let done = samples.lock().unwrap().len();
        eprintln!(
            "soak:   {:>5.0} s, {done} requests, RSS {:.1} MiB",
            started.elapsed().as_secs_f64(),
            rss.last().unwrap()
        );
    }
    for p in pacers {
        p.await.unwrap();
    }
    let rss_end = server.rss_mib().0;
    let samples = std::mem::take(&mut *samples.lock().unwrap());

    let windows = samples.iter().map(|s| s.window).max().map_or(0, |w| w + 1);
    let mut out = String::new();
    let mut json_windows = Vec::new();
    writeln!(
        out,
        "\n| window | requests | errors | p50 ms | p95 ms | p99 ms | server RSS MiB |"
    )
    .unwrap();
    writeln!(out, "|---|---:|---:|---:|---:|---:|---:|").unwrap();
    for w in 0..windows {
        let mut lat: Vec<u32> = samples
            .iter()
            .filter(|s| s.window == w)
            .map(|s| s.latency_us)
            .collect();
        lat.sort_unstable();
        let errors = samples
            .iter()
            .filter(|s| s.window == w && s.error.is_some())
            .count();
        let (p50, p95, p99) = (
            percentile_ms(&lat, 0.50),
            percentile_ms(&lat, 0.95),
            percentile_ms(&lat, 0.99),
        );
        let window_rss = rss.get(w).copied().unwrap_or(rss_end);
        writeln!(
            out,
            "| {:.0}–{:.0} s | {} | {errors} | {p50:.1} | {p95:.1} | {p99:.1} | {window_rss:.1} |",
            w as f64 * window_secs,
            (w + 1) as f64 * window_secs,
            lat.len()
        )
        .unwrap();
        json_windows.push(json!({"window": w, "requests": lat.len(), "errors": errors,
            "p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "rss_mib": window_rss}));
    }
    writeln!(
        out,
        "\n| request | rate/s | requests | errors | p50 ms | p99 ms |"
    )
    .unwrap();
    writeln!(out, "|---|---:|---:|---:|---:|---:|").unwrap();
    let mut json_classes = Vec::new();
    for (class, &(name, rate)) in SOAK_MIX.iter().enumerate() {
        let mut lat: Vec<u32> = samples
            .iter()
            .filter(|s| s.class == class)
            .map(|s| s.latency_us)
            .collect();
        lat.sort_unstable();
        let errors: Vec<&String> = samples
            .iter()
            .filter(|s| s.class == class)
            .filter_map(|s| s.error.as_ref())
            .collect();
        let (p50, p99) = (percentile_ms(&lat, 0.5), percentile_ms(&lat, 0.99));
        writeln!(
            out,
            "| {name} | {rate} | {} | {} | {p50:.1} | {p99:.1} |",
            lat.len(),
            errors.len()
        )
        .unwrap();
        if let Some(first) = errors.first() {
            writeln!(out, "|   first error: {first} | | | | | |").unwrap();
        }
        json_classes.push(
            json!({"request": name, "rate_per_s": rate, "requests": lat.len(),
            "errors": errors.len(), "p50_ms": p50, "p99_ms": p99}),
        );
    }
    let errors = samples.iter().filter(|s| s.error.is_some()).count();
    // Growth is judged after the first window: that one includes warming up (pools, caches).
    let rss_warm = rss.first().copied().unwrap_or(rss_end);
    writeln!(
        out,
        "\nsoak: {} requests, {errors} errors; server RSS {rss_start:.1} MiB idle at start, {rss_warm:.1} MiB after the first window, {rss_end:.1} MiB at end ({:+.1} MiB since the first window); runs stored: {}",
        samples.len(),
        rss_end - rss_warm,
        admin.psql("bench", "SELECT count(*) FROM agent_runs")
    )
    .unwrap();
    println!("{out}");
    let report = json!({"machine": machine(), "secs": secs, "window_secs": window_secs,
        "mix": json_classes, "windows": json_windows, "errors": errors,
        "rss_start_mib": rss_start, "rss_after_first_window_mib": rss_warm, "rss_end_mib": rss_end});
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/soak.json");
    std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    eprintln!("soak: wrote {}", path.display());
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The stats rollup triggers (user triggers; foreign keys stay checked).
const ROLLUP_TRIGGERS_OFF: &str = "ALTER TABLE agent_runs DISABLE TRIGGER USER; \
     ALTER TABLE agent_steps DISABLE TRIGGER USER; ALTER TABLE agent_failures DISABLE TRIGGER USER";

async fn run(secs: f64, max_runs: usize) {
    let started = Instant::now();
    eprintln!("load: starting PostgreSQL (durability defaults)");
    let cluster = PgCluster::start_with(PG_SETTINGS);
    let admin = cluster.admin();
    // COPY goes into a database of its own: emptied and analyzed afterwards, a shared one would
    // leave the planner believing the server's tables are empty (foreign-key checks planned as
    // sequential scans), which no fresh deployment sees.
    for db in ["bench_copy", "bench"] {
        admin.psql("postgres", &format!("CREATE DATABASE {db}"));
        let migrate = Command::new(env!("CARGO_BIN_EXE_agenttracer"))
            .arg("migrate")
            .env("DATABASE_URL", admin.url(db))
            .output()
            .unwrap();
        assert!(migrate.status.success(), "{migrate:?}");
    }
    let db_url = admin.url("bench");
    for setting in [
        "fsync",
        "synchronous_commit",
        "full_page_writes",
        "wal_sync_method",
    ] {
        eprintln!(
            "load:   {setting} = {}",
            admin.psql("bench", &format!("SHOW {setting}"))
        );
    }

    // 1. The limit: COPY into the bare tables (without the stats rollup triggers, which are
    // the server's own work).
    eprintln!("load: COPY limit ({secs} s)");
    admin.psql("bench_copy", ROLLUP_TRIGGERS_OFF);
    let copy_started = Instant::now();
    let (copy_runs_n, copy_rows) = copy_runs(
        &admin.url("bench_copy"),
        2,
        usize::MAX / 4,
        false,
        Some(Instant::now() + Duration::from_secs_f64(secs)),
    )
    .await;
    let copy_secs = copy_started.elapsed().as_secs_f64();
    let copy_runs_per_s = copy_runs_n as f64 / copy_secs;
    let copy_rows_per_s = copy_rows as f64 / copy_secs;
    eprintln!("load:   {copy_runs_per_s:.0} runs/s, {copy_rows_per_s:.0} rows/s");
    admin.psql("postgres", "DROP DATABASE bench_copy");

    // 2. The server.
    let server = Server::start(&db_url, &cluster.root);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .build()
        .unwrap();
    server.wait_ready(&client).await;
    let mut rows: Vec<Row> = Vec::new();

    let latency_cases = match std::env::var("LOAD_LATENCY").as_deref() {
        Ok("0") => Vec::new(),
        _ => {
            let bare_url = latency::bare_database(&admin);
            let this = latency::Target {
                label: "this".into(),
                ingest: server.ingest.clone(),
            };
            let cases = latency::measure(&[this], &bare_url, &client).await;
            admin.psql("postgres", "DROP DATABASE bench_bare");
            cases
        }
    };

    let mut rng = Rng(rand_seed() | 1);
    let single = Template::new(&run_json(&gen_run(&mut rng, false)));
    eprintln!(
        "load: a run body is {} bytes ({} steps)",
        single.bytes.len(),
        10
    );
    let url = format!("{}/v1/runs", server.ingest);
    let (c, t) = (client.clone(), single.clone());
    let call: Call = Arc::new(move |_| {
        let req = c
            .post(&url)
            .header("content-type", "application/json")
            .body(t.fresh());
        Box::pin(async move { check(req.send().await, 201).await.map(|_| 1) })
    });
    eprintln!("load: POST /v1/runs");
    let m = drive(16, secs, call).await;
    rows.push(Row {
        name: "POST /v1/runs (10 steps)".into(),
        clients: 16,
        m,
        unit: "runs",
        rows_per_unit: 11.0,
        rss_mib: server.rss_mib().0,
        target: Some(SINGLE_TARGET),
    });

    let batch_runs: Vec<Value> = (0..100)
        .map(|_| run_json(&gen_run(&mut rng, false)))
        .collect();
    let batch = Template::new(&json!({ "runs": batch_runs }));
    let url = format!("{}/v1/runs/batch", server.ingest);
    let (c, t) = (client.clone(), batch.clone());
    let call: Call = Arc::new(move |_| {
        let req = c
            .post(&url)
            .header("content-type", "application/json")
            .body(t.fresh());
        Box::pin(async move {
            let body = check(req.send().await, 200).await?;
            let created = body
                .windows(b"\"status\":201".len())
                .filter(|w| *w == b"\"status\":201")
                .count();
            match created {
                100 => Ok(100),
                n => Err(format!("{n} of 100 runs created")),
            }
        })
    });
    eprintln!("load: POST /v1/runs/batch");
    let m = drive(4, secs, call).await;
    rows.push(Row {
        name: "POST /v1/runs/batch (100 runs)".into(),
        clients: 4,
        m,
        unit: "runs",
        rows_per_unit: 11.0,
        rss_mib: server.rss_mib().0,
        target: Some(BATCH_TARGET),
    });

    let url = format!("{}/v1/traces", server.ingest);
    let c = client.clone();
    let call: Call = Arc::new(move |_| {
        let body = otlp_request(10).encode_to_vec();
        let req = c
            .post(&url)
            .header("content-type", "application/x-protobuf")
            .body(body);
        Box::pin(async move {
            let body = check(req.send().await, 200).await?;
            let res = ExportTraceServiceResponse::decode(body).map_err(|e| e.to_string())?;
            match res.partial_success {
                Some(p) if p.rejected_spans > 0 => {
                    Err(format!("{} spans rejected", p.rejected_spans))
                }
                _ => Ok(110),
            }
        })
    });
    eprintln!("load: POST /v1/traces");
    let m = drive(8, secs, call).await;
    rows.push(Row {
        name: "POST /v1/traces (10 traces x 11 spans)".into(),
        clients: 8,
        m,
        unit: "spans",
        rows_per_unit: 1.0,
        rss_mib: server.rss_mib().0,
        target: Some(OTLP_TARGET),
    });

    // 3. Reads, at 100k runs and then at the largest size.
    let mut sizes = vec![100_000usize];
    if max_runs == 0 {
        sizes.clear();
    }
    if max_runs > 100_000 {
        sizes.push(max_runs);
    }
    let mut read_ids: Vec<Uuid> = Vec::new();
    for size in sizes {
        let have: usize = admin
            .psql("bench", "SELECT count(*) FROM agent_runs")
            .parse()
            .unwrap();
        if have < size {
            eprintln!("load: loading {} runs by COPY to reach {size}", size - have);
            let fill_started = Instant::now();
            // Bulk fill without the rollup triggers, then the rollups rebuilt from the rows in
            // one pass (what the triggers would have kept, as the tests check) and merged.
            admin.psql("bench", ROLLUP_TRIGGERS_OFF);
            copy_runs(&db_url, 2, size - have, true, None).await;
            admin.psql("bench", &ROLLUP_TRIGGERS_OFF.replace("DISABLE", "ENABLE"));
            eprintln!(
                "load:   in {:.0} s; rebuilding stats rollups",
                fill_started.elapsed().as_secs_f64()
            );
            let rebuild_started = Instant::now();
            admin.psql(
                "bench",
                "SELECT agenttracer_rollup_rebuild(); \
                 SELECT agenttracer_rollup_compact(1000000)",
            );
            eprintln!(
                "load:   in {:.0} s; VACUUM ANALYZE",
                rebuild_started.elapsed().as_secs_f64()
            );
            admin.psql("bench", "VACUUM ANALYZE");
        }
        eprintln!(
            "load:   stats rollup rows (grain|merged|rows): {}",
            admin
                .psql(
                    "bench",
                    "SELECT grain, compacted, count(*) FROM stats_rollup GROUP BY 1, 2 ORDER BY 1, 2"
                )
                .replace('\n', ", ")
        );
        if read_ids.is_empty() {
            read_ids = admin
                .psql(
                    "bench",
                    "SELECT run_id FROM agent_runs TABLESAMPLE SYSTEM (5) LIMIT 20000",
                )
                .lines()
                .map(|l| l.parse().unwrap())
                .collect();
        }
        let label = match size {
            1_000_000 => "1M".to_owned(),
            n if n % 1000 == 0 => format!("{}k", n / 1000),
            n => n.to_string(),
        };
        let reads: Vec<(String, String, usize, Option<Target>)> = vec![
            (
                format!("GET /v1/runs?page_size=20 @{label}"),
                "/v1/runs?page_size=20".into(),
                8,
                Some(LIST_TARGET),
            ),
            (
                format!("GET /v1/runs?page_size=20&agent_id @{label}"),
                "/v1/runs?page_size=20&agent_id=agent-07".into(),
                8,
                Some(LIST_TARGET),
            ),
            (
                format!("GET /v1/runs/{{id}} @{label}"),
                String::new(),
                8,
                Some(RUN_TARGET),
            ),
            (
                format!("GET /v1/stats @{label}"),
                "/v1/stats".into(),
                2,
                (size == 100_000).then_some(STATS_TARGET),
            ),
        ];
        let ids = Arc::new(read_ids.clone());
        for (name, path, clients, target) in reads {
            let c = client.clone();
            let base = server.query.clone();
            let ids = ids.clone();
            let call: Call = Arc::new(move |n| {
                let url = match path.is_empty() {
                    true => format!("{base}/v1/runs/{}", ids[(n as usize * 7919) % ids.len()]),
                    false => format!("{base}{path}"),
                };
                let req = c.get(url);
                Box::pin(async move { check(req.send().await, 200).await.map(|_| 1) })
            });
            eprintln!("load: {name}");
            let m = drive(clients, secs, call).await;
            rows.push(Row {
                name,
                clients,
                m,
                unit: "req",
                rows_per_unit: 0.0,
                rss_mib: server.rss_mib().0,
                target,
            });
        }
    }

    let (_, peak_rss) = server.rss_mib();
    print_table(&rows, copy_runs_per_s, copy_rows_per_s, peak_rss);
    if !latency_cases.is_empty() {
        println!("{}", latency::table(&latency_cases));
    }
    let out = json!({
        "machine": machine(),
        "seconds_per_scenario": secs,
        "copy_limit": {"runs_per_second": copy_runs_per_s, "rows_per_second": copy_rows_per_s, "connections": 2, "runs_per_transaction": 1000},
        "scenarios": rows.iter().map(|r| r.json(copy_rows_per_s)).collect::<Vec<_>>(),
        "latency_at_rest": latency_cases.iter().map(latency::Case::json).collect::<Vec<_>>(),
        "server_peak_rss_mib": peak_rss,
        "server_peak_rss_target_met": peak_rss <= 100.0,
        "total_seconds": started.elapsed().as_secs_f64(),
    });
    let path = std::env::var("LOAD_JSON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(
                std::env::var("CARGO_TARGET_DIR")
                    .unwrap_or_else(|_| format!("{}/target", env!("CARGO_MANIFEST_DIR"))),
            )
            .join("load-bench.json")
        });
    std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap()).unwrap();
    println!("\nwritten to {}", path.display());
    drop(server);
    drop(cluster);
}

fn print_table(rows: &[Row], copy_runs_per_s: f64, copy_rows_per_s: f64, peak_rss: f64) {
    println!();
    println!(
        "{:<44} {:>7} {:>9} {:>18} {:>8} {:>8} {:>8} {:>6} {:>7} {:>7}  target",
        "scenario",
        "clients",
        "requests",
        "throughput",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "errors",
        "RSS MiB",
        "vs COPY"
    );
    println!(
        "{:<44} {:>7} {:>9} {:>18} {:>8} {:>8} {:>8} {:>6} {:>7} {:>7}",
        "COPY (the limit; 1,000 runs a transaction)",
        2,
        "-",
        format!("{copy_runs_per_s:.0} runs/s"),
        "-",
        "-",
        "-",
        0,
        "-",
        "1.00"
    );
    println!(
        "{:<44} {:>7} {:>9} {:>18}",
        "",
        "",
        "",
        format!("{copy_rows_per_s:.0} rows/s")
    );
    for r in rows {
        let l = &r.m.latencies_us;
        let verdict = match r.met(copy_rows_per_s) {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "",
        };
        println!(
            "{:<44} {:>7} {:>9} {:>18} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>7.1} {:>7}  {} {}",
            r.name,
            r.clients,
            r.m.requests,
            format!("{:.0} {}/s", r.per_s(), r.unit),
            percentile_ms(l, 0.50),
            percentile_ms(l, 0.95),
            percentile_ms(l, 0.99),
            r.m.errors,
            r.rss_mib,
            r.copy_ratio(copy_rows_per_s)
                .map_or("-".to_owned(), |v| format!("{v:.2}")),
            r.target.as_ref().map_or("", |t| t.text),
            verdict
        );
        if let Some(e) = &r.m.first_error {
            println!("    first error: {e}");
        }
    }
    println!(
        "peak server RSS (VmHWM): {peak_rss:.1} MiB (target <= 100 MiB: {})",
        match peak_rss <= 100.0 {
            true => "met",
            false => "MISSED",
        }
    );
}

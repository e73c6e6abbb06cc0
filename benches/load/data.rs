//! Generated runs: the same shape for the API (JSON bodies, templated run ids) and for COPY.

use std::fmt::Write as _;
use std::time::Instant;

use bytes::Bytes;
use futures_util::SinkExt;
use serde_json::{Value, json};
use uuid::Uuid;

/// 2026-11-01T00:00:00Z in milliseconds: runs of the read dataset start in the 30 days before.
pub const BASE_MS: i64 = 1_761_955_200_000;
pub const STEP_TYPES: [&str; 6] = ["plan", "retrieve", "tool", "llm", "respond", "other"];
pub const PLACEHOLDER: &str = "00000000-0000-4000-8000-000000000000";
pub const AGENTS: usize = 50;

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// A latency with a long tail: mostly tens to hundreds of ms, sometimes seconds.
    pub fn latency_ms(&mut self) -> i64 {
        let exp = self.below(1000) as f64 / 1000.0 * 4.0; // 10^0 .. 10^4
        (10f64.powf(exp) * (1.0 + self.below(100) as f64 / 100.0)) as i64
    }
}

pub struct GenStep {
    pub step_id: Uuid,
    pub step_type: &'static str,
    pub name: String,
    pub offset_ms: i64,
    pub latency_ms: i64,
    pub metadata: String,
    pub model: &'static str,
    pub input_tokens: i64,
    pub output_tokens: i64,
}

pub struct GenRun {
    pub run_id: Uuid,
    pub agent_id: String,
    pub agent_version: &'static str,
    pub environment: &'static str,
    pub status: &'static str,
    pub started_ms: i64,
    pub duration_ms: i64,
    pub steps: Vec<GenStep>,
    /// (step index or none, failure_type, failure_code)
    pub failure: Option<(Option<usize>, &'static str, &'static str)>,
}

/// About 300 bytes of JSON, as the measurement assumed.
pub fn metadata(rng: &mut Rng, model: &str, input: i64, output: i64) -> String {
    let v = json!({
        "model": model, "provider": "openai", "input_tokens": input, "output_tokens": output,
        "temperature": 0.2, "top_p": 0.95, "tool_name": "search_orders", "attempt": 1 + rng.below(3),
        "cache": {"hit": rng.below(2) == 1, "key_hash": format!("{:012x}", rng.next() >> 16)},
        "finish_reasons": ["stop"], "prompt_template_id": "support/v12", "http.status_code": 200,
        "region": "eu-west-1", "request_id": format!("req-{:016x}", rng.next()),
    });
    v.to_string()
}

pub fn gen_run(rng: &mut Rng, varied: bool) -> GenRun {
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

pub fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// The native API body of a run, with `run_id` left as [`PLACEHOLDER`] to patch per request.
pub fn run_json(run: &GenRun) -> Value {
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

pub use super::items::{BEHAVIOUR, add_behaviour};

/// A body with placeholders, and their offsets, so that each request gets fresh run ids cheaply.
#[derive(Clone)]
pub struct Template {
    pub bytes: Vec<u8>,
    pub offsets: Vec<usize>,
}

impl Template {
    pub fn new(value: &Value) -> Template {
        let bytes = serde_json::to_vec(value).unwrap();
        let offsets = bytes
            .windows(PLACEHOLDER.len())
            .enumerate()
            .filter(|(_, w)| *w == PLACEHOLDER.as_bytes())
            .map(|(i, _)| i)
            .collect();
        Template { bytes, offsets }
    }
    pub fn fresh(&self) -> Vec<u8> {
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
pub struct CopyRows {
    pub runs: String,
    pub steps: String,
    pub failures: String,
}

// COPY's text format takes the same RFC 3339 timestamps as the API.
impl CopyRows {
    pub fn push(&mut self, run: &GenRun) {
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
pub async fn copy_runs(
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

pub fn rand_seed() -> u64 {
    Uuid::new_v4().as_u64_pair().0
}

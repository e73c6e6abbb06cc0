//! Latency at rest (issue 13, item 3): one client sending one run at a time, as the original
//! Python SDK does inline in an agent, against a bare `INSERT … ; COMMIT` of the same rows on the
//! same PostgreSQL. A module of the load benchmark (`benches/load/`).
//!
//! For each case (1 or 10 steps; back to back or with a pause between runs) the two are
//! interleaved request by request — one `POST /v1/runs`, one bare transaction, each after the
//! same pause — so both see the same machine, WAL and disk at the same moments. The bare
//! transaction is what a hand-written client would send over one tokio-postgres connection:
//! `BEGIN`, the run row, the steps in one multi-row insert, `COMMIT` (prepared statements, into
//! a database of its own with the same schema and no rollup triggers). The server's figure is the
//! whole HTTP request as the client sees it on loopback (keep-alive, TCP_NODELAY on the client).
//!
//! `LOAD_LATENCY=only cargo bench --bench load` runs just this; `LOAD_LATENCY=0` leaves it out of
//! the full run. `LOAD_LATENCY_RUNS` (default 2,000) and `LOAD_LATENCY_PAUSED_RUNS` (default 300)
//! are the measured runs per case back to back and with the 100 ms pause.
//! `LOAD_LATENCY_STATEMENTS=1` loads pg_stat_statements and prints what the server sent per run.
//! `LOAD_LATENCY_BASELINE_BIN=/path/to/agenttracer` (with `only`) also starts that build, on a
//! database of its own in the same cluster, and takes its turn in every round: an A/B comparison
//! under the same noise (this build is `this`, the other `baseline`).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_postgres::Client;
use tokio_postgres::types::Type;

use crate::data::{GenRun, PLACEHOLDER, Rng, Template, gen_run, rand_seed, rfc3339, run_json};
use crate::driver::{check, percentile_ms};
use crate::env_or;
use crate::pg::Admin;
use crate::throughput::ROLLUP_TRIGGERS_OFF;

/// The targets for the one-step run.
const MAX_RATIO_TO_BARE: f64 = 2.0;
const MAX_P99_MS: f64 = 5.0;

const BARE_RUN: &str = "INSERT INTO agent_runs \
    (run_id, agent_id, agent_version, environment, status, started_at, ended_at) \
    VALUES ($1::uuid, $2, $3, $4, $5, $6::timestamptz, $7::timestamptz)";
const BARE_STEPS: &str = "INSERT INTO agent_steps \
    (step_id, run_id, seq, step_type, name, latency_ms, started_at, ended_at, metadata, model, input_tokens, output_tokens) \
    SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int4[], $4::text[], $5::text[], $6::int4[], \
    $7::timestamptz[], $8::timestamptz[], $9::jsonb[], $10::text[], $11::int4[], $12::int4[])";

/// A server under test: a label and its ingest base URL.
pub struct Target {
    pub label: String,
    pub ingest: String,
}

/// One measured case.
pub struct Case {
    pub steps: usize,
    pub pause: Duration,
    pub runs: usize,
    /// Per target (in [`measure`]'s order): its label and sorted latencies in microseconds.
    pub servers: Vec<(String, Vec<u32>)>,
    /// Sorted latencies of the bare transaction in microseconds.
    pub bare_us: Vec<u32>,
    pub errors: usize,
    pub first_error: Option<String>,
}

impl Case {
    fn name(&self) -> String {
        let steps = match self.steps {
            1 => "1 step".to_owned(),
            n => format!("{n} steps"),
        };
        match self.pause.is_zero() {
            true => format!("{steps}, back to back"),
            false => format!("{steps}, {} ms pause", self.pause.as_millis()),
        }
    }

    fn bare(&self) -> (f64, f64) {
        (
            percentile_ms(&self.bare_us, 0.5),
            percentile_ms(&self.bare_us, 0.99),
        )
    }

    /// Whether the one-step target holds for these latencies (none for other cases).
    fn met(&self, server_us: &[u32]) -> Option<bool> {
        let (p50, p99) = (
            percentile_ms(server_us, 0.5),
            percentile_ms(server_us, 0.99),
        );
        let (bare50, _) = self.bare();
        (self.steps == 1)
            .then_some(self.errors == 0 && p50 <= MAX_RATIO_TO_BARE * bare50 && p99 <= MAX_P99_MS)
    }

    pub fn json(&self) -> Value {
        let (bare50, bare99) = self.bare();
        let max = |l: &[u32]| l.last().map_or(0.0, |v| f64::from(*v) / 1000.0);
        let servers: Vec<Value> = self
            .servers
            .iter()
            .map(|(label, l)| {
                let p50 = percentile_ms(l, 0.5);
                json!({"server": label, "p50_ms": p50, "p99_ms": percentile_ms(l, 0.99),
                    "max_ms": max(l), "p50_ratio_to_bare": p50 / bare50,
                    "target_met": self.met(l)})
            })
            .collect();
        json!({
            "case": self.name(), "steps": self.steps, "pause_ms": self.pause.as_millis() as u64,
            "runs": self.runs, "errors": self.errors, "first_error": self.first_error,
            "servers": servers,
            "bare_p50_ms": bare50, "bare_p99_ms": bare99, "bare_max_ms": max(&self.bare_us),
            "target": (self.steps == 1).then_some("p50 <= 2x bare commit, p99 <= 5 ms"),
        })
    }
}

/// A bare writer: one tokio-postgres connection and its two prepared inserts.
struct Bare {
    client: Client,
    run: tokio_postgres::Statement,
    steps: tokio_postgres::Statement,
}

impl Bare {
    async fn connect(url: &str) -> Bare {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        // Every parameter is sent as text (or text[]) and cast by the statement: tokio-postgres is
        // built here without its uuid/time/json features.
        let run = client
            .prepare_typed(BARE_RUN, &[Type::TEXT; 7])
            .await
            .unwrap();
        let steps = client
            .prepare_typed(
                BARE_STEPS,
                &[
                    Type::TEXT_ARRAY,
                    Type::TEXT_ARRAY,
                    Type::INT4_ARRAY,
                    Type::TEXT_ARRAY,
                    Type::TEXT_ARRAY,
                    Type::INT4_ARRAY,
                    Type::TEXT_ARRAY,
                    Type::TEXT_ARRAY,
                    Type::TEXT_ARRAY,
                    Type::TEXT_ARRAY,
                    Type::INT4_ARRAY,
                    Type::INT4_ARRAY,
                ],
            )
            .await
            .unwrap();
        Bare { client, run, steps }
    }

    /// BEGIN; the run; its steps; COMMIT — one statement after the other, as a plain client
    /// sends them.
    async fn write(&mut self, run: &BareRun) -> Result<(), String> {
        let tx = self.client.transaction().await.map_err(|e| e.to_string())?;
        let r = &run.run;
        tx.execute(
            &self.run,
            &[&r[0], &r[1], &r[2], &r[3], &r[4], &r[5], &r[6]],
        )
        .await
        .map_err(|e| e.to_string())?;
        let s = &run.steps;
        tx.execute(
            &self.steps,
            &[
                &s.0, &s.1, &s.2, &s.3, &s.4, &s.5, &s.6, &s.7, &s.8, &s.9, &s.10, &s.11,
            ],
        )
        .await
        .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())
    }
}

type StepColumns = (
    Vec<String>,
    Vec<String>,
    Vec<i32>,
    Vec<String>,
    Vec<String>,
    Vec<i32>,
    Vec<String>,
    Vec<String>,
    Vec<String>,
    Vec<String>,
    Vec<i32>,
    Vec<i32>,
);

/// A generated run's rows as the bare writer binds them.
struct BareRun {
    run: [String; 7],
    steps: StepColumns,
}

impl BareRun {
    fn of(run: &GenRun) -> BareRun {
        let mut s = StepColumns::default();
        for (seq, step) in run.steps.iter().enumerate() {
            let started = run.started_ms + step.offset_ms;
            s.0.push(step.step_id.to_string());
            s.1.push(run.run_id.to_string());
            s.2.push(seq as i32);
            s.3.push(step.step_type.to_owned());
            s.4.push(step.name.clone());
            s.5.push(step.latency_ms as i32);
            s.6.push(rfc3339(started));
            s.7.push(rfc3339(started + step.latency_ms));
            s.8.push(step.metadata.clone());
            s.9.push(step.model.to_owned());
            s.10.push(step.input_tokens as i32);
            s.11.push(step.output_tokens as i32);
        }
        BareRun {
            run: [
                run.run_id.to_string(),
                run.agent_id.clone(),
                run.agent_version.to_owned(),
                run.environment.to_owned(),
                run.status.to_owned(),
                rfc3339(run.started_ms),
                rfc3339(run.started_ms + run.duration_ms),
            ],
            steps: s,
        }
    }
}

/// A generated run cut to `steps` steps (a successful run, as the SDK's overhead test sends).
fn run_with_steps(rng: &mut Rng, steps: usize) -> GenRun {
    let mut run = gen_run(rng, false);
    run.steps.truncate(steps);
    run.duration_ms = run.steps.last().map_or(0, |s| s.offset_ms + s.latency_ms);
    run
}

/// Measures every case against the `targets` (servers) and the bare writer on `bare_url` (a
/// database with the server's schema, rollup triggers off), one request after the other in turn.
pub async fn measure(targets: &[Target], bare_url: &str, client: &reqwest::Client) -> Vec<Case> {
    let runs: usize = env_or("LOAD_LATENCY_RUNS", 2000);
    let paused_runs: usize = env_or("LOAD_LATENCY_PAUSED_RUNS", 300);
    let mut bare = Bare::connect(bare_url).await;
    let mut rng = Rng(rand_seed() | 1);
    let mut cases = Vec::new();
    for (steps, pause, n) in [
        (1, Duration::ZERO, runs),
        (10, Duration::ZERO, runs),
        (1, Duration::from_millis(100), paused_runs),
        (10, Duration::from_millis(100), paused_runs),
    ] {
        let template = Template::new(&run_json(&run_with_steps(&mut rng, steps)));
        assert_eq!(template.offsets.len(), 1, "{PLACEHOLDER} once: the run id");
        let mut case = Case {
            steps,
            pause,
            runs: n,
            servers: targets
                .iter()
                .map(|t| (t.label.clone(), Vec::with_capacity(n)))
                .collect(),
            bare_us: Vec::with_capacity(n),
            errors: 0,
            first_error: None,
        };
        eprintln!("load: latency at rest, {} ({n} runs each)", case.name());
        // Warm-up (not measured): every pooled connection has prepared its statements.
        let warm_up = 50.min(n);
        for i in 0..warm_up + n {
            let mut errors = Vec::new();
            for (t, target) in targets.iter().enumerate() {
                let body = template.fresh();
                tokio::time::sleep(pause).await;
                let started = Instant::now();
                let res = client
                    .post(format!("{}/v1/runs", target.ingest))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                let res = check(res, 201).await;
                let us = started.elapsed().as_micros() as u32;
                if i >= warm_up {
                    case.servers[t].1.push(us);
                }
                errors.extend(res.err());
            }
            let bare_run = BareRun::of(&run_with_steps(&mut rng, steps));
            tokio::time::sleep(pause).await;
            let started = Instant::now();
            let res = bare.write(&bare_run).await;
            let us = started.elapsed().as_micros() as u32;
            errors.extend(res.err());
            if i < warm_up {
                continue;
            }
            case.bare_us.push(us);
            for err in errors {
                case.errors += 1;
                case.first_error.get_or_insert(err);
            }
        }
        for (_, l) in &mut case.servers {
            l.sort_unstable();
        }
        case.bare_us.sort_unstable();
        cases.push(case);
    }
    cases
}

/// The cases as a table, each figure beside its limit.
pub fn table(cases: &[Case]) -> String {
    let mut out = String::new();
    writeln!(
        out,
        "\nlatency at rest: one client, one run at a time; POST /v1/runs (HTTP, loopback) beside a bare \
         BEGIN; INSERT run; INSERT steps; COMMIT of the same rows (tokio-postgres), interleaved"
    )
    .unwrap();
    writeln!(
        out,
        "{:<26} {:<10} {:>5} {:>9} {:>9} {:>9} {:>9} {:>9}  target",
        "case", "server", "runs", "p50 ms", "p99 ms", "bare p50", "bare p99", "p50/bare"
    )
    .unwrap();
    for c in cases {
        let (bare50, bare99) = c.bare();
        for (label, l) in &c.servers {
            let (p50, p99) = (percentile_ms(l, 0.5), percentile_ms(l, 0.99));
            let target = match c.met(l) {
                Some(met) => format!(
                    "p50 <= {MAX_RATIO_TO_BARE:.0}x bare ({:.2} ms), p99 <= {MAX_P99_MS:.0} ms: {}",
                    MAX_RATIO_TO_BARE * bare50,
                    match met {
                        true => "met",
                        false => "MISSED",
                    }
                ),
                None => "(reported)".to_owned(),
            };
            writeln!(
                out,
                "{:<26} {:<10} {:>5} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}  {target}",
                c.name(),
                label,
                c.runs,
                p50,
                p99,
                bare50,
                bare99,
                p50 / bare50
            )
            .unwrap();
        }
        if let Some(e) = &c.first_error {
            writeln!(out, "    {} errors; first: {e}", c.errors).unwrap();
        }
    }
    out
}

/// The settings that `LOAD_LATENCY_STATEMENTS=1` adds to the cluster.
pub const STATEMENTS_SETTINGS: &[&str] = &[
    "shared_preload_libraries = 'pg_stat_statements'",
    "pg_stat_statements.track = all",
    "pg_stat_statements.track_utility = on",
    "pg_stat_statements.track_planning = on",
];

/// What the sessions on database `db` ran per run, from pg_stat_statements (which then must be
/// loaded): call with the number of runs written there since `pg_stat_statements_reset()`.
pub fn statements_per_run(admin: &Admin, db: &str, runs: usize) -> String {
    // The view (in `bench`, where the extension is) shows every database's statements.
    let rows = admin.psql(
        "bench",
        &format!(
            "SELECT to_char(s.calls::float8 / {runs}, 'FM990.00') || ' per run, planned ' || \
             to_char(100.0 * s.plans / NULLIF(s.calls, 0), 'FM990') || ' % of calls (' || \
             to_char(s.mean_plan_time * 1000, 'FM9999990') || ' us), executed in ' || \
             to_char(s.mean_exec_time * 1000, 'FM9999990') || ' us: ' || \
             left(regexp_replace(s.query, '\\s+', ' ', 'g'), 90) \
             FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid \
             WHERE d.datname = '{db}' AND s.query NOT LIKE '%pg_stat_statements%' \
             ORDER BY s.calls DESC, s.query"
        ),
    );
    let mut out = format!(
        "\nstatements per run on {db} (pg_stat_statements over {runs} runs; planning and \
         execution are PostgreSQL's own time, without the round trip):\n"
    );
    for line in rows.lines() {
        writeln!(out, "  {line}").unwrap();
    }
    out
}

/// Prepares the bare database: the server's schema, no rollup triggers (the bare rows only).
pub fn bare_database(admin: &Admin) -> String {
    admin.psql("postgres", "CREATE DATABASE bench_bare");
    let migrate = std::process::Command::new(env!("CARGO_BIN_EXE_agenttracer"))
        .arg("migrate")
        .env("DATABASE_URL", admin.url("bench_bare"))
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{migrate:?}");
    admin.psql("bench_bare", ROLLUP_TRIGGERS_OFF);
    admin.url("bench_bare")
}

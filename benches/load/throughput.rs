//! The default run: COPY's limit, then the server's writes and reads against it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::data::{
    BEHAVIOUR, Rng, Template, add_behaviour, copy_runs, gen_run, rand_seed, run_json,
};
use crate::driver::{Call, Measured, check, created, drive, pooled_client, post_json};
use crate::otlp::otlp_request;
use crate::pg::PgCluster;
use crate::report::{
    BATCH_TARGET, LIST_TARGET, OTLP_TARGET, RUN_TARGET, Row, SINGLE_TARGET, STATS_TARGET, Target,
    machine, print_table,
};
use crate::server::Server;
use crate::{PG_SETTINGS, THIS_BIN, create_database, latency, ui, write_report};

/// The stats rollup triggers (user triggers; foreign keys stay checked).
pub const ROLLUP_TRIGGERS_OFF: &str = "ALTER TABLE agent_runs DISABLE TRIGGER USER; \
     ALTER TABLE agent_steps DISABLE TRIGGER USER; ALTER TABLE agent_failures DISABLE TRIGGER USER";

pub async fn run(secs: f64, max_runs: usize) {
    let started = Instant::now();
    eprintln!("load: starting PostgreSQL (durability defaults)");
    let cluster = PgCluster::start_with(PG_SETTINGS);
    let admin = cluster.admin();
    // COPY goes into a database of its own: emptied and analyzed afterwards, a shared one would
    // leave the planner believing the server's tables are empty (foreign-key checks planned as
    // sequential scans), which no fresh deployment sees.
    for db in ["bench_copy", "bench"] {
        create_database(&admin, db, THIS_BIN);
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
    let client = pooled_client();
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
    let single = run_json(&gen_run(&mut rng, false));
    eprintln!(
        "load: a run body is {} bytes ({} steps)",
        serde_json::to_vec(&single).unwrap().len(),
        10
    );
    let batch: Vec<Value> = (0..100)
        .map(|_| run_json(&gen_run(&mut rng, false)))
        .collect();
    // Two sides of one comparison, alternated A B B A three times, each stretch a sixth of the
    // time: the database grows as the scenarios write and checkpoints come when they come, and
    // whichever ran second would always write into the larger database; short stretches in both
    // orders spread both over the whole run. By default the sides are this build without and
    // with decisions and signals on every run; with `LOAD_BASELINE_BIN` they are that build and
    // this one, the same bodies to both (a before/after of a change, on one database).
    let baseline = std::env::var_os("LOAD_BASELINE_BIN").map(|bin| {
        let other = Server::start_bin(std::path::Path::new(&bin), &db_url, &cluster.root);
        (other, bin.to_string_lossy().into_owned())
    });
    if let Some((other, bin)) = &baseline {
        other.wait_ready(&client).await;
        eprintln!("load: baseline build {bin} at {}", other.ingest);
    }
    const ORDER: [bool; 4] = [false, true, true, false];
    const ROUNDS: usize = 3;
    let stretch = secs / (ROUNDS * ORDER.len() / 2) as f64;
    let mut measured: [Option<[Measured; 2]>; 2] = [None, None];
    for side in ORDER.into_iter().cycle().take(ROUNDS * ORDER.len()) {
        let (mut single, mut batch) = (single.clone(), batch.clone());
        let ingest = match (&baseline, side) {
            (Some((other, _)), false) => other.ingest.clone(),
            _ => server.ingest.clone(),
        };
        if side && baseline.is_none() {
            // What an instrumented agent of the original's later version sends on every run.
            add_behaviour(&mut single);
            batch.iter_mut().for_each(add_behaviour);
        }
        let url = format!("{ingest}/v1/runs");
        let one = post_runs(&client, &url, 16, stretch, Template::new(&single), 1).await;
        let url = format!("{ingest}/v1/runs/batch");
        let body = Template::new(&json!({ "runs": batch }));
        let many = post_runs(&client, &url, 4, stretch, body, 100).await;
        match &mut measured[usize::from(side)] {
            Some([a, b]) => {
                a.merge(one);
                b.merge(many);
            }
            none => *none = Some([one, many]),
        }
    }
    let compared = match &baseline {
        Some(_) => BASELINE,
        None => BEHAVIOUR,
    };
    for (side, [one, many]) in [false, true]
        .into_iter()
        .zip(measured.into_iter().flatten())
    {
        // The marked side: the one with decisions and signals, or the baseline build.
        let marked = side == baseline.is_none();
        let label = match marked {
            true => format!(" + {compared}"),
            false => String::new(),
        };
        let rss_mib = match (&baseline, side) {
            (Some((other, _)), false) => other.rss_mib().0,
            _ => server.rss_mib().0,
        };
        rows.push(Row {
            name: format!("POST /v1/runs (10 steps{label})"),
            clients: 16,
            m: one,
            unit: "runs",
            rows_per_unit: 11.0,
            rss_mib,
            target: (!marked).then_some(SINGLE_TARGET),
        });
        rows.push(Row {
            name: format!("POST /v1/runs/batch (100 runs{label})"),
            clients: 4,
            m: many,
            unit: "runs",
            rows_per_unit: 11.0,
            rss_mib,
            target: (!marked).then_some(BATCH_TARGET),
        });
    }
    drop(baseline);

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
    // A server of an earlier build (LOAD_SERVER_BIN) may have no web UI: its pages are left out.
    let has_ui = ui::served(&client, &server.query).await;
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
        let reads: Vec<(String, String, usize, Option<Target>)> = [
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
                "/v1/runs/{id}".into(),
                8,
                Some(RUN_TARGET),
            ),
            (
                format!("GET /v1/stats @{label}"),
                "/v1/stats".into(),
                2,
                (size == 100_000).then_some(STATS_TARGET),
            ),
        ]
        .into_iter()
        .chain(ui::pages(&label, size, has_ui))
        .collect();
        let ids = Arc::new(read_ids.clone());
        for (name, path, clients, target) in reads {
            let c = client.clone();
            let base = server.query.clone();
            let ids = ids.clone();
            let call: Call = Arc::new(move |n| {
                let id = ids[(n as usize * 7919) % ids.len()].to_string();
                let url = format!("{base}{}", path.replace("{id}", &id));
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

    let assets = match has_ui {
        true => ui::asset_bytes(&client, &server.query, read_ids.first().copied()).await,
        false => Vec::new(),
    };
    let (_, peak_rss) = server.rss_mib();
    print_table(&rows, copy_runs_per_s, copy_rows_per_s, peak_rss);
    println!("{}", comparison(&rows));
    println!("{}", ui::asset_table(&assets));
    if !latency_cases.is_empty() {
        println!("{}", latency::table(&latency_cases));
    }
    let out = json!({
        "machine": machine(),
        "seconds_per_scenario": secs,
        "copy_limit": {"runs_per_second": copy_runs_per_s, "rows_per_second": copy_rows_per_s, "connections": 2, "runs_per_transaction": 1000},
        "scenarios": rows.iter().map(|r| r.json(copy_rows_per_s)).collect::<Vec<_>>(),
        "latency_at_rest": latency_cases.iter().map(latency::Case::json).collect::<Vec<_>>(),
        "ui_assets_gzipped_bytes": ui::asset_json(&assets),
        "server_peak_rss_mib": peak_rss,
        "server_peak_rss_target_met": peak_rss <= 100.0,
        "total_seconds": started.elapsed().as_secs_f64(),
    });
    write_report("load-bench.json", &out);
    drop(server);
    drop(cluster);
}

/// Posts `body` (fresh run ids each time) to `url` from `clients` clients for `secs`: a run
/// (`runs == 1`, answered 201) or a batch of `runs` (200, each run 201).
async fn post_runs(
    client: &reqwest::Client,
    url: &str,
    clients: usize,
    secs: f64,
    body: Template,
    runs: u64,
) -> Measured {
    eprintln!("load: POST {url}");
    let (c, url) = (client.clone(), url.to_owned());
    let call: Call = Arc::new(move |_| {
        let req = post_json(&c, &url, body.fresh());
        Box::pin(async move {
            if runs == 1 {
                return check(req.send().await, 201).await.map(|_| 1);
            }
            let answer = check(req.send().await, 200).await?;
            match created(&answer) {
                n if n as u64 == runs => Ok(runs),
                n => Err(format!("{n} of {runs} runs created")),
            }
        })
    });
    drive(clients, secs, call).await
}

/// The label of the baseline build's rows (`LOAD_BASELINE_BIN`).
const BASELINE: &str = "baseline build";

/// Each write scenario of the compared side against the other: with decisions and signals on
/// every run against without them (within 10 %), or this build against the baseline build
/// (within 5 %: issue 18's limit for computing cost).
fn comparison(rows: &[Row]) -> String {
    let baseline = rows.iter().any(|r| r.name.contains(BASELINE));
    let (marker, limit, mut out) = match baseline {
        true => (
            BASELINE,
            5.0,
            "this build against the baseline build (target: within 5 %)\n".to_owned(),
        ),
        false => (
            BEHAVIOUR,
            10.0,
            format!("{BEHAVIOUR} on every run (target: within 10 % of without)\n"),
        ),
    };
    for marked in rows.iter().filter(|r| r.name.contains(marker)) {
        let name = marked.name.replace(&format!(" + {marker}"), "");
        let Some(other) = rows.iter().find(|r| r.name == name) else {
            continue;
        };
        // From the side without to the side with (the change), or from the baseline to this.
        let (from, to) = match baseline {
            true => (marked, other),
            false => (other, marked),
        };
        let change = (to.per_s() / from.per_s() - 1.0) * 100.0;
        out.push_str(&format!(
            "{name:<44} {:>8.0} -> {:>8.0} runs/s {change:>+6.1} %  {}\n",
            from.per_s(),
            to.per_s(),
            if change >= -limit { "met" } else { "MISSED" }
        ));
    }
    out
}

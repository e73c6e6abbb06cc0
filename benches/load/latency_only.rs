//! `LOAD_LATENCY=only`: the latency-at-rest cases alone, optionally against another build.

use serde_json::json;

use crate::pg::PgCluster;
use crate::report::machine;
use crate::server::Server;
use crate::{PG_SETTINGS, THIS_BIN, create_database, latency, write_report};

/// `LOAD_LATENCY=only`: a fresh PostgreSQL and server, the latency-at-rest cases and nothing
/// else; the table on stdout, the same as JSON in `target/load-latency.json` (or `LOAD_JSON`).
pub async fn latency_only() {
    let statements = std::env::var("LOAD_LATENCY_STATEMENTS").as_deref() == Ok("1");
    eprintln!("load: starting PostgreSQL (durability defaults)");
    let mut settings = PG_SETTINGS.to_vec();
    if statements {
        settings.extend_from_slice(latency::STATEMENTS_SETTINGS);
    }
    let cluster = PgCluster::start_with(&settings);
    let admin = cluster.admin();
    create_database(&admin, "bench", THIS_BIN);
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
        create_database(&admin, "bench_baseline", &bin);
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
    write_report("load-latency.json", &out);
    drop(server);
    drop(cluster);
}

//! Results: a row per scenario against the targets, printed as a table and as JSON, and
//! the machine they were measured on.

use std::process::Command;

use serde_json::{Value, json};

use crate::driver::{Measured, percentile_ms};
use crate::{PG_SETTINGS, pg};

pub struct Row {
    pub name: String,
    pub clients: usize,
    pub m: Measured,
    pub unit: &'static str,
    /// Units per request that count as rows, to compare with COPY's rows/s.
    pub rows_per_unit: f64,
    pub rss_mib: f64,
    pub target: Option<Target>,
}

#[derive(Clone, Copy)]
pub struct Target {
    pub text: &'static str,
    pub min_per_s: Option<f64>,
    pub max_p99_ms: Option<f64>,
    pub min_copy_ratio: Option<f64>,
}

impl Target {
    /// At least `per_s` units a second, and a p99 of at most `p99_ms` if given.
    const fn rate(text: &'static str, per_s: f64, p99_ms: Option<f64>) -> Target {
        Target {
            text,
            min_per_s: Some(per_s),
            max_p99_ms: p99_ms,
            min_copy_ratio: None,
        }
    }

    /// A p99 of at most `p99_ms`.
    const fn p99(text: &'static str, p99_ms: f64) -> Target {
        Target {
            text,
            min_per_s: None,
            max_p99_ms: Some(p99_ms),
            min_copy_ratio: None,
        }
    }

    /// At least `ratio` times the rows a second COPY writes.
    const fn copy_ratio(text: &'static str, ratio: f64) -> Target {
        Target {
            text,
            min_per_s: None,
            max_p99_ms: None,
            min_copy_ratio: Some(ratio),
        }
    }
}

/// The targets on this machine.
pub const SINGLE_TARGET: Target = Target::rate(">= 2,500 runs/s, p99 <= 25 ms", 2500.0, Some(25.0));
pub const BATCH_TARGET: Target = Target::copy_ratio(">= 60% of COPY rows/s", 0.6);
pub const OTLP_TARGET: Target = Target::rate(">= 25,000 spans/s", 25_000.0, None);
pub const LIST_TARGET: Target = Target::rate(">= 1,300 req/s, p99 <= 15 ms", 1300.0, Some(15.0));
pub const RUN_TARGET: Target = Target::p99("p99 <= 5 ms", 5.0);
pub const STATS_TARGET: Target = Target::p99("p99 <= 100 ms", 100.0);
pub const PAGE_TARGET: Target = Target::p99("p99 <= 50 ms", 50.0);
pub const OVERVIEW_TARGET: Target = Target::p99("p99 <= 100 ms", 100.0);

impl Row {
    pub fn per_s(&self) -> f64 {
        self.m.units as f64 / self.m.secs
    }
    pub fn copy_ratio(&self, copy_rows_per_s: f64) -> Option<f64> {
        (self.rows_per_unit > 0.0).then(|| self.per_s() * self.rows_per_unit / copy_rows_per_s)
    }
    pub fn met(&self, copy_rows_per_s: f64) -> Option<bool> {
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
    pub fn json(&self, copy_rows_per_s: f64) -> Value {
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

pub fn machine() -> Value {
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

pub fn print_table(rows: &[Row], copy_runs_per_s: f64, copy_rows_per_s: f64, peak_rss: f64) {
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

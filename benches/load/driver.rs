//! The closed-loop driver: clients calling back to back for a fixed time, their latencies.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

pub type Call =
    Arc<dyn Fn(u64) -> Pin<Box<dyn Future<Output = Result<u64, String>> + Send>> + Send + Sync>;

#[derive(Default)]
pub struct Measured {
    pub requests: u64,
    pub units: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub secs: f64,
    pub latencies_us: Vec<u32>,
}

impl Measured {
    /// Adds `other`, a measurement of the same scenario over another stretch of time.
    pub fn merge(&mut self, other: Measured) {
        self.requests += other.requests;
        self.units += other.units;
        self.errors += other.errors;
        self.first_error = self.first_error.take().or(other.first_error);
        self.secs += other.secs;
        self.latencies_us.extend(other.latencies_us);
        self.latencies_us.sort_unstable();
    }
}

/// `clients` tasks each calling `call` back to back until `secs` have passed.
pub async fn drive(clients: usize, secs: f64, call: Call) -> Measured {
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

pub fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 * p).ceil() as usize).clamp(1, sorted_us.len()) - 1;
    f64::from(sorted_us[i]) / 1000.0
}

pub async fn check(res: reqwest::Result<reqwest::Response>, want: u16) -> Result<Bytes, String> {
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

/// The HTTP client of the throughput run and the soak: TCP_NODELAY, up to 64 idle connections
/// kept per host.
pub fn pooled_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .build()
        .unwrap()
}

/// A POST of the JSON `body` to `url`.
pub fn post_json(client: &reqwest::Client, url: &str, body: Vec<u8>) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
}

/// How many runs a batch answer says were created (`"status":201` entries).
pub fn created(body: &[u8]) -> usize {
    const CREATED: &[u8] = b"\"status\":201";
    body.windows(CREATED.len())
        .filter(|w| *w == CREATED)
        .count()
}

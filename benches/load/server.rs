//! The server under test: this build's release binary (or `LOAD_SERVER_BIN`), started with
//! its default configuration on free ports, and its memory.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::pg;

pub struct Server {
    pub child: Child,
    pub ingest: String,
    pub query: String,
    pub log: PathBuf,
}

impl Server {
    /// The server under test: this build, or `LOAD_SERVER_BIN` (another build, for comparing
    /// two builds with the same bench and settings without rebuilding between runs).
    pub fn start(db_url: &str, dir: &std::path::Path) -> Server {
        let bin = std::env::var_os("LOAD_SERVER_BIN").map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_agenttracer")),
            PathBuf::from,
        );
        Server::start_bin(&bin, db_url, dir)
    }

    /// [`Server::start`] with another build of the binary.
    pub fn start_bin(bin: &std::path::Path, db_url: &str, dir: &std::path::Path) -> Server {
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

    pub async fn wait_ready(&self, client: &reqwest::Client) {
        let bases = [self.ingest.as_str(), self.query.as_str()];
        crate::ready::wait_ready(client, &bases, Duration::from_secs(60), &self.log).await;
    }

    /// (current, peak) resident set size in MiB.
    pub fn rss_mib(&self) -> (f64, f64) {
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

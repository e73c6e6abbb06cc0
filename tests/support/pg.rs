//! A PostgreSQL cluster of our own, from Debian's server binaries: initdb into a temporary
//! directory, start, stop, restart, standby. Shared by the integration tests (`tests/api`) and the
//! load benchmark (`benches/load/`), which include this file by path.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use uuid::Uuid;

pub const ADMIN_PASSWORD: &str = "admin-pw-5ecret";
pub const READER_ROLE: &str = "agenttracer_reader";
pub const READER_PASSWORD: &str = "reader-pw-5ecret";

/// The directory with initdb, postgres, pg_ctl, psql: `PG_BIN`, else Debian's newest.
pub fn pg_bin() -> PathBuf {
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

/// Runs `cmd` to its end; panics with its stderr when it fails.
pub fn run_ok(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
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
        run_ok(as_postgres(cmd), what);
    }

    /// initdb and start a cluster for tests: durability off (fsync, full_page_writes), since a
    /// test never survives a power loss; `extra` are more settings lines.
    pub fn start_new(extra: &[&str]) -> PgCluster {
        let mut settings = vec!["fsync = off", "full_page_writes = off"];
        settings.extend_from_slice(extra);
        Self::start_with(&settings)
    }

    /// initdb and start a cluster with PostgreSQL's durability defaults plus `settings` lines.
    pub fn start_with(settings: &[&str]) -> PgCluster {
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
        cluster.extra_settings(settings);
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

    fn extra_settings(&self, settings: &[&str]) {
        let mut conf = String::from("listen_addresses = '127.0.0.1'\nmax_connections = 400\n");
        for setting in settings {
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
            // gettext prefers LANGUAGE to the server's lc_messages: messages in the language a
            // test sets (tests/api/sqlstate.rs), whatever the desktop session's is.
            .env_remove("LANGUAGE")
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

    /// Crashes the server: SIGKILL to the postmaster and every backend, as the OOM killer
    /// would; the next `start` runs crash recovery. Returns once all of them are gone.
    pub fn kill(&mut self) {
        let pid_file = self.root.join("data").join("postmaster.pid");
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.lines().next().map(str::to_owned))
            .expect("postmaster.pid");
        // Stopped first, so that it forks no backend between the two kills.
        let script = format!("kill -STOP {pid}; pkill -KILL -P {pid}; kill -KILL {pid}");
        run_ok(Command::new("sh").args(["-c", &script]), "kill");
        if let Some(mut child) = self.server.take() {
            let _ = child.wait();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Command::new("pgrep")
            .args([
                "-f",
                &format!("postgres -D {}", self.root.join("data").display()),
            ])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            assert!(
                Instant::now() < deadline,
                "postgres processes left after SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(20));
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

    /// Runs SQL with psql and returns its unaligned output. SQL longer than an argument may be
    /// (a list of thousands of ids) goes through standard input: it must then be one statement,
    /// as with `-c` only the last statement's result is printed.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        use std::io::Write as _;
        let url = self.url(db);
        let mut args = vec!["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", &url];
        let via_stdin = sql.len() > 64 * 1024;
        match via_stdin {
            true => args.extend(["-f", "-"]),
            false => args.extend(["-c", sql]),
        }
        let mut child = Command::new(pg_bin().join("psql"))
            .args(&args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("psql");
        {
            let mut stdin = child.stdin.take().expect("psql stdin");
            if via_stdin {
                stdin.write_all(sql.as_bytes()).expect("psql stdin");
            }
        }
        let out = child.wait_with_output().expect("psql");
        assert!(
            out.status.success(),
            "psql failed on {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

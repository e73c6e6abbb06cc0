//! `agenttracer healthcheck [URL]`: GET `/readyz` of the configured role's listeners (or URL);
//! exit 0 when every one answers 2xx. A tiny HTTP/1.1 client, so the image needs no curl.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::config::Config;
use crate::role::Listener;

const TIMEOUT: Duration = Duration::from_secs(3);

/// The URLs to probe for this configuration: one per listener of its role.
pub fn targets(config: &Config) -> Vec<String> {
    config
        .server
        .role
        .listeners()
        .iter()
        .filter(|l| l.is_http())
        .map(|listener| {
            let (host, port) = match listener {
                Listener::Query => (&config.server.query_host, config.server.query_port),
                _ => (&config.server.ingest_host, config.server.ingest_port),
            };
            let host = match host.as_str() {
                "0.0.0.0" | "" => "127.0.0.1",
                "::" | "[::]" => "[::1]",
                other => other,
            };
            format!("http://{host}:{port}/readyz")
        })
        .collect()
}

/// Why a probe got no HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("only http:// URLs are supported")]
    Scheme,
    #[error("cannot resolve {authority}: {source}")]
    Resolve {
        authority: String,
        source: std::io::Error,
    },
    #[error("cannot resolve {0}")]
    NoAddress(String),
    #[error("cannot connect to {authority}: {source}")]
    Connect {
        authority: String,
        source: std::io::Error,
    },
    /// Setting the socket's timeouts or sending the request failed.
    #[error("{0}")]
    Send(std::io::Error),
    #[error("no answer from {authority}: {source}")]
    NoAnswer {
        authority: String,
        source: std::io::Error,
    },
    #[error("not an HTTP answer from {0}")]
    NotHttp(String),
}

/// GETs `url`; `Ok(status)` when any HTTP answer came back.
pub fn probe(url: &str) -> Result<u16, ProbeError> {
    let rest = url.strip_prefix("http://").ok_or(ProbeError::Scheme)?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/readyz"),
    };
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|source| ProbeError::Resolve {
            authority: authority.to_owned(),
            source,
        })?
        .next()
        .ok_or_else(|| ProbeError::NoAddress(authority.to_owned()))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|source| ProbeError::Connect {
            authority: authority.to_owned(),
            source,
        })?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(ProbeError::Send)?;
    stream
        .set_write_timeout(Some(TIMEOUT))
        .map_err(ProbeError::Send)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .map_err(ProbeError::Send)?;
    let mut head = [0u8; 64];
    let n = stream
        .read(&mut head)
        .map_err(|source| ProbeError::NoAnswer {
            authority: authority.to_owned(),
            source,
        })?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| ProbeError::NotHttp(authority.to_owned()))
}

/// Probes every target; true when all are ready. Prints one line per target.
pub fn run(config: &Config, url: Option<&str>) -> bool {
    let urls = match url {
        Some(url) => vec![url.to_owned()],
        None => targets(config),
    };
    let mut ready = true;
    for url in urls {
        match probe(&url) {
            Ok(status) if (200..300).contains(&status) => println!("{url}: ready ({status})"),
            Ok(status) => {
                println!("{url}: not ready ({status})");
                ready = false;
            }
            Err(error) => {
                println!("{url}: {error}");
                ready = false;
            }
        }
    }
    ready
}

//! `<service> healthcheck --url <url>`: a tiny HTTP/1.1 GET for images that have no shell or curl
//! (Docker HEALTHCHECK, the chart's `helm test` pod). Exit code 0 on a 2xx answer, 1 otherwise.

use std::{
    io::{Read, Write},
    net::{TcpStream, ToSocketAddrs},
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context, bail};
use clap::Args;

use crate::contract::HEALTH_PATH;

/// Arguments of `<service> healthcheck`. The default URL is the service's own /health on its
/// default port, which each service names in its `Command` enum.
#[derive(Debug, Clone, Args)]
pub struct HealthcheckArgs<const DEFAULT_PORT: u16> {
    /// The URL to probe (plain http).
    #[arg(long, default_value_t = format!("http://127.0.0.1:{DEFAULT_PORT}{HEALTH_PATH}"))]
    pub url: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub timeout_seconds: u64,
}

/// Probes the URL and reports the outcome on stdout/stderr.
pub fn run<const DEFAULT_PORT: u16>(args: &HealthcheckArgs<DEFAULT_PORT>) -> ExitCode {
    match probe(&args.url, Duration::from_secs(args.timeout_seconds)) {
        Ok(status) if (200..300).contains(&status) => {
            println!("{} answered {status}", args.url);
            ExitCode::SUCCESS
        }
        Ok(status) => {
            eprintln!("{} answered {status}", args.url);
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("{} is not healthy: {err:#}", args.url);
            ExitCode::FAILURE
        }
    }
}

/// Sends `GET` and returns the status code.
pub fn probe(url: &str, timeout: Duration) -> anyhow::Result<u16> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("only http:// URLs can be probed, got {url:?}"))?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    if authority.is_empty() {
        bail!("the URL {url:?} has no host");
    }
    let target = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let addr = target
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {target}"))?
        .next()
        .with_context(|| format!("{target} resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: healthcheck\r\nConnection: close\r\n\r\n"
    )
    .context("sending the request failed")?;
    let mut head = [0_u8; 64];
    let mut read = 0;
    while read < 12 {
        let n = stream.read(&mut head[read..]).context("reading the response failed")?;
        if n == 0 {
            break;
        }
        read += n;
    }
    let line = String::from_utf8_lossy(&head[..read]);
    let status = line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .with_context(|| format!("not an HTTP response: {line:?}"))?;
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_it_cannot_probe() {
        let timeout = Duration::from_secs(1);
        assert!(
            probe("https://example.com/health", timeout)
                .unwrap_err()
                .to_string()
                .contains("only http://")
        );
        assert!(
            probe("http:///health", timeout)
                .unwrap_err()
                .to_string()
                .contains("no host")
        );
    }

    #[test]
    fn reports_a_refused_connection() {
        // Bind then drop a listener so the port is (almost certainly) closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = probe(&format!("http://127.0.0.1:{port}/health"), Duration::from_secs(1)).unwrap_err();
        assert!(format!("{err:#}").contains("cannot connect"), "{err:#}");
    }
}

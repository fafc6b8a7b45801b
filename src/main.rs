//! Thin: logging, configuration, bind (and METRICS_PORT), serve with a
//! graceful drain; the `healthcheck` subcommand for container health checks.

use std::process::ExitCode;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use s3_resign_proxy::access_log::{self, LogFormat, LogGuard};
use s3_resign_proxy::config::Config;
use s3_resign_proxy::metrics::Metrics;
use s3_resign_proxy::server::serve as serve_workers;
use s3_resign_proxy::{AppState, Drain};

fn main() -> ExitCode {
    let format = match LogFormat::from_env() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("s3-resign-proxy: configuration error: {e}");
            return ExitCode::from(78);
        }
    };
    // Lives to the end of main: dropping it flushes the queued lines.
    let log = access_log::init(format);
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("serve") => serve(&log),
        Some("healthcheck") => healthcheck(),
        #[cfg(feature = "demo")]
        Some("demo") => report(runtime().and_then(|rt| rt.block_on(s3_resign_proxy::demo::run_demo()))),
        // The test origin: s3s-fs checking every signature, with public-read
        // buckets (ORIGIN_PUBLIC_BUCKETS) and bucket CORS (see demo.rs).
        #[cfg(feature = "demo")]
        Some("origin") => match args.get(1) {
            Some(dir) => report(
                runtime().and_then(|rt| rt.block_on(s3_resign_proxy::demo::run_origin(std::path::Path::new(dir)))),
            ),
            None => {
                eprintln!(
                    "usage: s3-resign-proxy origin DIR \
                     (env ORIGIN_ACCESS_KEY, ORIGIN_SECRET_KEY, ORIGIN_PUBLIC_BUCKETS=b1,b2, HOST, PORT)"
                );
                ExitCode::from(2)
            }
        },
        Some("-V" | "--version") => {
            println!("s3-resign-proxy {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("unknown command {other:?}; usage: s3-resign-proxy [serve|healthcheck|demo|origin DIR]");
            ExitCode::from(2)
        }
    }
}

#[cfg(feature = "demo")]
fn runtime() -> Result<tokio::runtime::Runtime, Box<dyn std::error::Error + Send + Sync>> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn serve(log: &LogGuard) -> ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("s3-resign-proxy: configuration error: {e}");
            return ExitCode::from(78);
        }
    };
    let listener = match std::net::TcpListener::bind(config.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("s3-resign-proxy: cannot listen on {}: {e}", config.listen);
            return ExitCode::from(1);
        }
    };
    // One set of metrics for every worker.
    let mut metrics = Metrics::new();
    let dropped = log.dropped_lines();
    metrics.register_counter_fn("log_lines_dropped", "Log lines dropped because stderr did not keep up.", move || {
        dropped.dropped_lines() as u64
    });
    let metrics = Arc::new(metrics);
    // Plain HTTP, for the internal network (TLS_CERT is for the S3 listener);
    // it serves until the process exits, drain included.
    if let Some(port) = config.metrics_port {
        let addr = SocketAddr::new(config.listen.ip(), port);
        let bound = std::net::TcpListener::bind(addr)
            .and_then(|l| s3_resign_proxy::server::spawn_metrics(l, metrics.clone()).map(|_| ()));
        if let Err(e) = bound {
            eprintln!("s3-resign-proxy: cannot serve metrics on {addr}: {e}");
            return ExitCode::from(1);
        }
        tracing::info!(listen = %addr, "metrics listener started");
    }
    let drain = Drain::from_config(&config);
    if let Err(e) = drain.on_signals() {
        eprintln!("s3-resign-proxy: cannot install signal handlers: {e}");
        return ExitCode::from(1);
    }
    // SIGHUP and file changes reload TLS_CERT/TLS_KEY; without the watcher
    // the certificate still serves, it just is not renewed in place.
    let _tls_reloader = config
        .tls
        .as_ref()
        .and_then(|tls| tls.watch().map_err(|e| tracing::error!(error = %e, "TLS certificate reload is off")).ok());
    // SIGHUP and file changes reload ACCESS_FILE; without the watcher the
    // file read at start stays in force.
    let _access_reloader =
        config.access.watch().map_err(|e| tracing::error!(error = %e, "ACCESS_FILE reload is off")).ok().flatten();
    let listen = listener.local_addr().unwrap_or(config.listen);
    let access = config.access.load();
    let origin = access.default_origin();
    tracing::info!(tls = config.tls.is_some(), listen = %listen, origin = %format_args!("{}://{}", origin.origin.scheme(), origin.origin.authority()), region = %origin.region, origins = access.origins().len(), access_file = ?config.access.file(), workers = config.workers, "s3-resign-proxy started");
    let workers = config.workers;
    // The workers share one /healthz cache and one set of metrics.
    let state = AppState::with_metrics(config, metrics);
    report(serve_workers(listener, workers, move || state.sibling(), drain).map_err(Into::into))
}

/// `s3-resign-proxy healthcheck`: GET /healthz on this host's proxy
/// (127.0.0.1:$PORT, or HEALTHCHECK_URL `http://host:port/path`); exit 0 on
/// 200 `{"status":"ok"}`, 1 otherwise. For a container HEALTHCHECK without
/// curl. The proxy's own probe gives up after 2 s, so 5 s is enough.
fn healthcheck() -> ExitCode {
    const TIMEOUT: Duration = Duration::from_secs(5);
    let (addr, host, path) = match health_target() {
        Ok(t) => t,
        Err(e) => {
            println!("unhealthy: {e}");
            return ExitCode::FAILURE;
        }
    };
    let deadline = Instant::now() + TIMEOUT;
    // With built-in TLS (and no HEALTHCHECK_URL), the listener speaks HTTPS:
    // check it over TLS, pinned to the certificate in TLS_CERT.
    let tls =
        match std::env::var("TLS_CERT").ok().filter(|c| !c.is_empty() && std::env::var_os("HEALTHCHECK_URL").is_none())
        {
            Some(cert) => match s3_resign_proxy::tls::pinned_client_config(std::path::Path::new(&cert)) {
                Ok(c) => Some(std::sync::Arc::new(c)),
                Err(e) => {
                    println!("unhealthy: {e}");
                    return ExitCode::FAILURE;
                }
            },
            None => None,
        };
    let exchange = || -> std::io::Result<Vec<u8>> {
        let tcp = TcpStream::connect_timeout(&addr, TIMEOUT)?;
        tcp.set_write_timeout(Some(TIMEOUT))?;
        let mut s: Box<dyn ReadWrite> = match &tls {
            Some(config) => {
                let name = rustls::pki_types::ServerName::from(addr.ip());
                let conn = rustls::ClientConnection::new(config.clone(), name).map_err(std::io::Error::other)?;
                Box::new(rustls::StreamOwned::new(conn, tcp.try_clone()?))
            }
            None => Box::new(tcp.try_clone()?),
        };
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes())?;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            tcp.set_read_timeout(Some(left))?;
            // A TLS peer that closes without close_notify still gave us its answer.
            let read = match s.read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !got.is_empty() => 0,
                r => r?,
            };
            match read {
                0 => return Ok(got),
                n if got.len() < 64 << 10 => got.extend_from_slice(&buf[..n]),
                _ => return Ok(got),
            }
        }
    };
    let got = match exchange() {
        Ok(g) => g,
        Err(e) => {
            println!("unhealthy: {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let text = String::from_utf8_lossy(&got);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).unwrap_or("");
    let ok = status == "200" && body.replace(' ', "").contains(r#""status":"ok""#);
    println!("{} {status} {}", if ok { "healthy:" } else { "unhealthy:" }, body.trim());
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// Where `healthcheck` connects: HEALTHCHECK_URL, else HOST (127.0.0.1 for
/// an unspecified address) and PORT (8000).
/// A byte stream: plain TCP or TLS over it.
trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

fn health_target() -> Result<(SocketAddr, String, String), String> {
    if let Ok(url) = std::env::var("HEALTHCHECK_URL") {
        let rest = url.strip_prefix("http://").ok_or("HEALTHCHECK_URL must start with http://")?;
        let (authority, path) = rest.find('/').map_or((rest, "/healthz"), |i| (&rest[..i], &rest[i..]));
        let addr = authority
            .to_socket_addrs()
            .or_else(|_| format!("{authority}:80").to_socket_addrs())
            .map_err(|e| format!("HEALTHCHECK_URL: {e}"))?
            .next()
            .ok_or("HEALTHCHECK_URL: no address")?;
        return Ok((addr, authority.to_string(), path.to_string()));
    }
    let port = match std::env::var("PORT") {
        Ok(p) => p.parse::<u16>().map_err(|_| "PORT must be a port number")?,
        Err(_) => 8000,
    };
    let ip = match std::env::var("HOST").ok().and_then(|h| h.parse::<IpAddr>().ok()) {
        Some(ip) if !ip.is_unspecified() => ip,
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    let addr = SocketAddr::new(ip, port);
    Ok((addr, addr.to_string(), "/healthz".to_string()))
}

fn report(r: Result<(), Box<dyn std::error::Error + Send + Sync>>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("s3-resign-proxy: {e}");
            ExitCode::FAILURE
        }
    }
}

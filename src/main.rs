//! Thin: logging, configuration, bind (and METRICS_PORT), serve with graceful
//! shutdown.

use std::process::ExitCode;

use std::sync::Arc;

use s3_resign_proxy::access_log::{self, LogFormat, LogGuard};
use s3_resign_proxy::config::Config;
use s3_resign_proxy::metrics::Metrics;
use s3_resign_proxy::server::serve as serve_workers;
use s3_resign_proxy::{AppState, SystemClock, shutdown_signal};

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
        #[cfg(feature = "demo")]
        Some("demo") => report(runtime().and_then(|rt| rt.block_on(s3_resign_proxy::demo::run_demo()))),
        #[cfg(feature = "demo")]
        Some("origin") => match args.get(1) {
            Some(dir) => report(
                runtime().and_then(|rt| rt.block_on(s3_resign_proxy::demo::run_origin(std::path::Path::new(dir)))),
            ),
            None => {
                eprintln!("usage: s3-resign-proxy origin DIR");
                ExitCode::from(2)
            }
        },
        Some("-V" | "--version") => {
            println!("s3-resign-proxy {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("unknown command {other:?}; usage: s3-resign-proxy [serve|demo|origin DIR]");
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
    if let Some(port) = config.metrics_port {
        let addr = std::net::SocketAddr::new(config.listen.ip(), port);
        let bound = std::net::TcpListener::bind(addr)
            .and_then(|l| s3_resign_proxy::server::spawn_metrics(l, metrics.clone()).map(|_| ()));
        if let Err(e) = bound {
            eprintln!("s3-resign-proxy: cannot serve metrics on {addr}: {e}");
            return ExitCode::from(1);
        }
        tracing::info!(listen = %addr, "metrics listener started");
    }
    tracing::info!(listen = %config.listen, origin = %format_args!("{}://{}", config.origin.scheme(), config.origin.authority()), region = %config.region, workers = config.workers, "s3-resign-proxy started");
    let workers = config.workers;
    let make_state = move || AppState::from_parts(config.clone(), Arc::new(SystemClock), metrics.clone());
    report(serve_workers(listener, workers, make_state, shutdown_signal()).map_err(Into::into))
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

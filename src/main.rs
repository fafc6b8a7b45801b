//! Thin: tracing, configuration, bind, serve with graceful shutdown.

use std::process::ExitCode;

use s3_resign_proxy::config::Config;
use s3_resign_proxy::server::serve as serve_workers;
use s3_resign_proxy::{AppState, shutdown_signal};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        // The embedded s3s-fs origin (demo, `origin DIR`) logs at warn unless RUST_LOG asks for more.
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,s3s=warn,s3s_fs=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("serve") => serve(),
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

fn serve() -> ExitCode {
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
    // SIGHUP and file changes reload TLS_CERT/TLS_KEY; without the watcher
    // the certificate still serves, it just is not renewed in place.
    let _tls_reloader = config
        .tls
        .as_ref()
        .and_then(|tls| tls.watch().map_err(|e| tracing::error!(error = %e, "TLS certificate reload is off")).ok());
    tracing::info!(tls = config.tls.is_some(), listen = %config.listen, origin = %format_args!("{}://{}", config.origin.scheme(), config.origin.authority()), region = %config.region, workers = config.workers, "s3-resign-proxy started");
    let workers = config.workers;
    report(
        serve_workers(listener, workers, move || AppState::new(config.clone()), shutdown_signal()).map_err(Into::into),
    )
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

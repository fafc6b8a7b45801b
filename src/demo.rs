//! `s3-resign-proxy demo`: the proxy in front of an embedded, signature-checking
//! S3 origin (s3s-fs) in a temporary directory. Also `s3-resign-proxy origin
//! DIR`, the same origin alone, which the end-to-end suite and benchmarks use.

use std::path::Path;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::error::BoxError;

/// Serves an s3s-fs origin over `root` on `listener`, checking signatures made
/// with `access_key`/`secret_key`, until the task is dropped.
pub async fn serve_origin(
    listener: TcpListener,
    root: &Path,
    access_key: &str,
    secret_key: &str,
) -> Result<(), BoxError> {
    serve_origin_with_domain(listener, root, access_key, secret_key, None).await
}

/// [`serve_origin`], also serving virtual-hosted requests at
/// `<bucket>.<domain>` when `domain` is given (s3s compares it with the Host
/// header, port included: `localhost:9000`).
pub async fn serve_origin_with_domain(
    listener: TcpListener,
    root: &Path,
    access_key: &str,
    secret_key: &str,
    domain: Option<&str>,
) -> Result<(), BoxError> {
    let fs = s3s_fs::FileSystem::new(root).map_err(|e| format!("s3s-fs: {e:?}"))?;
    let mut b = S3ServiceBuilder::new(fs);
    b.set_auth(SimpleAuth::from_single(access_key, secret_key));
    if let Some(d) = domain {
        b.set_host(s3s::host::SingleDomain::new(d).map_err(|e| format!("s3s domain {d}: {e:?}"))?);
    }
    let service = b.build();
    let http = Arc::new(ConnBuilder::new(TokioExecutor::new()));
    // Connections live in this set: dropping the future (aborting its task)
    // closes them all, so a stopped origin is really gone.
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (socket, _) = accepted?;
                let _ = socket.set_nodelay(true);
                let service = service.clone();
                let http = http.clone();
                conns.spawn(async move {
                    let _ = http.serve_connection(TokioIo::new(socket), service).await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Not for production secrets: a random-looking token for the demo's origin.
fn token(label: &str, len: usize) -> String {
    let mut h = Sha256::new();
    h.update(label);
    h.update(time::OffsetDateTime::now_utc().unix_timestamp_nanos().to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    let s = hex::encode_upper(h.finalize());
    s[..len].to_owned()
}

pub const DEMO_ACCESS_KEY: &str = "DEMOACCESSKEY";
pub const DEMO_SECRET_KEY: &str = "demo-secret-key-change-me";

pub async fn run_demo() -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("demo"))?;
    let origin_ak = token("ak", 20);
    let origin_sk = token("sk", 40);
    let origin_listener = TcpListener::bind("127.0.0.1:0").await?;
    let origin_addr = origin_listener.local_addr()?;
    let root = dir.path().to_owned();
    let (oak, osk) = (origin_ak.clone(), origin_sk.clone());
    tokio::spawn(async move {
        if let Err(e) = serve_origin(origin_listener, &root, &oak, &osk).await {
            tracing::error!("demo origin stopped: {e}");
        }
    });

    let port = std::env::var("PORT").ok().and_then(|p| p.parse::<u16>().ok()).unwrap_or(8000);
    let config = Config::from_vars([
        ("CLIENT_ACCESS_KEY".to_owned(), DEMO_ACCESS_KEY.to_owned()),
        ("CLIENT_SECRET_KEY".to_owned(), DEMO_SECRET_KEY.to_owned()),
        ("ORIGIN_ACCESS_KEY".to_owned(), origin_ak),
        ("ORIGIN_SECRET_KEY".to_owned(), origin_sk),
        ("ORIGIN_DOMAIN".to_owned(), format!("http://{origin_addr}")),
        ("HOST".to_owned(), "127.0.0.1".to_owned()),
        ("PORT".to_owned(), port.to_string()),
        // Probe the demo bucket (a HeadBucket): s3s-fs answers `HEAD /` with
        // 501 and logs an error for it, which looks like a failure.
        ("HEALTHCHECK_PATH".to_owned(), "/demo".to_owned()),
    ])?;
    let listener = TcpListener::bind(config.listen).await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    println!(
        "s3-resign-proxy demo\n\
         \n  proxy endpoint : {endpoint}\
         \n  origin         : s3s-fs at http://{origin_addr} (its own random credentials), data in {}\
         \n  client key     : {DEMO_ACCESS_KEY}\
         \n  client secret  : {DEMO_SECRET_KEY}\
         \n\nTry it (aws-cli; the bucket `demo` exists already):\
         \n\n  export AWS_ACCESS_KEY_ID={DEMO_ACCESS_KEY} AWS_SECRET_ACCESS_KEY={DEMO_SECRET_KEY} AWS_DEFAULT_REGION=us-east-1\
         \n  echo hello > hello.txt\
         \n  aws --endpoint-url {endpoint} s3 cp hello.txt s3://demo/hello.txt\
         \n  aws --endpoint-url {endpoint} s3 ls s3://demo/\
         \n  aws --endpoint-url {endpoint} s3 cp s3://demo/hello.txt -\
         \n  curl -s {endpoint}/healthz\
         \n\nCtrl-C stops the demo and removes its data.",
        dir.path().display()
    );
    let state = crate::state::AppState::new(config);
    // Ctrl-C stops the demo without a grace period.
    let drain = crate::drain::Drain::new(std::time::Duration::ZERO, std::time::Duration::from_secs(5));
    let trigger = drain.clone();
    tokio::spawn(async move {
        crate::server::shutdown_signal().await;
        trigger.start();
    });
    crate::server::run(listener, state, drain).await?;
    drop(dir);
    Ok(())
}

/// `s3-resign-proxy origin DIR`: serve s3s-fs over DIR on HOST:PORT with
/// ORIGIN_ACCESS_KEY / ORIGIN_SECRET_KEY.
pub async fn run_origin(root: &Path) -> Result<(), BoxError> {
    let ak = std::env::var("ORIGIN_ACCESS_KEY").map_err(|_| "missing required variable ORIGIN_ACCESS_KEY")?;
    let sk = std::env::var("ORIGIN_SECRET_KEY").map_err(|_| "missing required variable ORIGIN_SECRET_KEY")?;
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "9000".into());
    let listener = TcpListener::bind(format!("{host}:{port}")).await?;
    eprintln!("s3s-fs origin on http://{} over {}", listener.local_addr()?, root.display());
    tokio::select! {
        r = serve_origin(listener, root, &ak, &sk) => r,
        () = crate::server::shutdown_signal() => Ok(()),
    }
}

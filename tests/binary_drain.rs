//! The built binary: SIGTERM drains it (`/healthz` says draining at once, an
//! in-flight download finishes, the listener closes after DRAIN_GRACE, exit
//! 0), a second signal exits at once, and `s3-resign-proxy healthcheck`
//! exits 0 only when `/healthz` says ok. Real s3s-fs origin, in-process.
#![cfg(unix)]

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use common::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_s3-resign-proxy");
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 241) as u8).collect()
}

/// The binary, serving toward `origin`; its address (read from its start-up
/// line, PORT=0) and its log lines so far.
async fn spawn_proxy(origin: SocketAddr, extra: &[(&str, &str)]) -> (Child, SocketAddr, Arc<Mutex<Vec<String>>>) {
    let mut cmd = Command::new(BIN);
    cmd.env_clear().envs(base_vars(origin)).env("RUST_LOG", "info").env("NO_COLOR", "1").env("WORKERS", "2");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let log = Arc::new(Mutex::new(Vec::new()));
    let addr = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let line = lines.next_line().await.unwrap().expect("the proxy started");
            let plain = strip_ansi(&line);
            log.lock().unwrap().push(plain.clone());
            if plain.contains("s3-resign-proxy started") {
                let at = plain.find("listen=").expect("listen field") + "listen=".len();
                let addr: SocketAddr = plain[at..].split_whitespace().next().unwrap().parse().unwrap();
                return addr;
            }
        }
    })
    .await
    .expect("start-up line");
    let l = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            l.lock().unwrap().push(strip_ansi(&line));
        }
    });
    (child, addr, log)
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

async fn kill(child: &Child, sig: &str) {
    let pid = child.id().expect("running").to_string();
    let st = Command::new("kill").args([sig, &pid]).status().await.unwrap();
    assert!(st.success());
}

async fn healthz_status(addr: SocketAddr) -> u16 {
    raw_exchange(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"").await.status
}

fn refused(addr: SocketAddr) -> bool {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err()
}

/// A signed GET whose response head has arrived; the caller reads the body.
async fn start_get(addr: SocketAddr, path: &str) -> (TcpStream, Vec<u8>, usize) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(signed_head(addr, "GET", path, &[], EMPTY_SHA256, None).as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 16 << 10];
    loop {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
        if let Some(end) = find(&got, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).into_owned();
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            let len = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse().ok())
                .unwrap();
            got.drain(..end + 4);
            return (s, got, len);
        }
    }
}

async fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    tokio::time::timeout(limit, child.wait()).await.expect("the proxy exits in time").unwrap()
}

#[tokio::test]
async fn sigterm_drains_the_binary_and_it_exits_0() {
    const LEN: usize = 16 << 20;
    let data = pattern(LEN);
    let origin = Harness::start().await;
    let o = origin.origin();
    o.create_bucket().bucket("bkt").send().await.unwrap();
    o.put_object().bucket("bkt").key("big").body(ByteStream::from(data.clone())).send().await.unwrap();
    let (mut child, proxy, log) =
        spawn_proxy(origin.origin_addr, &[("DRAIN_GRACE", "1"), ("SHUTDOWN_TIMEOUT", "20")]).await;
    assert_eq!(healthz_status(proxy).await, 200);

    let (mut s, mut body, len) = start_get(proxy, "/bkt/big").await;
    assert_eq!(len, LEN);
    let sent = Instant::now();
    kill(&child, "-TERM").await;
    // The signal thread flips the flag; poll as a load balancer would, faster.
    let mut draining_after = None;
    while sent.elapsed() < Duration::from_secs(2) {
        if healthz_status(proxy).await == 503 {
            draining_after = Some(sent.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let draining_after = draining_after.expect("/healthz says draining");
    assert!(draining_after < Duration::from_millis(100), "draining after {draining_after:?}");

    // The download, read slowly, outlasts DRAIN_GRACE.
    let mut buf = vec![0u8; 64 << 10];
    let mut closed_at = None;
    while body.len() < len {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "cut after {} of {len} bytes", body.len());
        body.extend_from_slice(&buf[..n]);
        if body.len() % (1 << 20) < n {
            tokio::time::sleep(Duration::from_millis(150)).await;
            if closed_at.is_none() && refused(proxy) {
                closed_at = Some(sent.elapsed());
            }
        }
    }
    assert!(body == data, "byte-identical");
    let downloaded = sent.elapsed();
    let closed_at = closed_at.expect("the listener closed while the download ran");
    assert!(closed_at >= Duration::from_millis(900), "closed {closed_at:?} after SIGTERM, before DRAIN_GRACE");
    let status = wait_exit(&mut child, Duration::from_secs(10)).await;
    let exited = sent.elapsed();
    assert_eq!(status.code(), Some(0), "{status:?}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let log = log.lock().unwrap().join("\n");
    assert!(log.contains("drained: every in-flight request finished"), "{log}");
    assert!(log.contains("open_at_close=1"), "{log}");
    eprintln!(
        "binary: SIGTERM -> /healthz 503 after {draining_after:?}; listener refused by {closed_at:?}; \
         16 MiB download done at {downloaded:?}; exit 0 at {exited:?}"
    );
}

#[tokio::test]
async fn a_second_signal_exits_at_once() {
    let origin = Harness::start().await;
    let o = origin.origin();
    o.create_bucket().bucket("bkt").send().await.unwrap();
    o.put_object().bucket("bkt").key("big").body(ByteStream::from(pattern(32 << 20))).send().await.unwrap();
    let (mut child, proxy, _log) =
        spawn_proxy(origin.origin_addr, &[("DRAIN_GRACE", "30"), ("SHUTDOWN_TIMEOUT", "30")]).await;
    // A download nobody reads: a drain would wait for it.
    let (_s, _body, _len) = start_get(proxy, "/bkt/big").await;
    kill(&child, "-TERM").await;
    assert!(eventually_async(|| async { healthz_status(proxy).await == 503 }).await, "draining");
    let sent = Instant::now();
    kill(&child, "-INT").await;
    let status = wait_exit(&mut child, Duration::from_secs(5)).await;
    assert_eq!(status.code(), Some(1), "{status:?}");
    assert!(sent.elapsed() < Duration::from_secs(2), "{:?}", sent.elapsed());
}

async fn eventually_async<F: std::future::Future<Output = bool>>(mut f: impl FnMut() -> F) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

async fn healthcheck(env: &[(&str, String)]) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let mut cmd = Command::new(BIN);
    cmd.env_clear().arg("healthcheck").env("RUST_LOG", "off");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::time::timeout(Duration::from_secs(20), cmd.output()).await.expect("in time").unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), started.elapsed())
}

#[tokio::test]
async fn healthcheck_subcommand_exits_0_only_when_healthz_says_ok() {
    let mut h = Harness::start_with(|v| set_var(v, "HEALTH_CACHE_MS", "0"), None).await;
    let port = h.proxy_addr.port().to_string();
    let (code, out, took) = healthcheck(&[("PORT", port.clone())]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("healthy: 200"), "{out}");
    eprintln!("healthcheck: ok in {took:?}");
    let url = format!("http://{}/healthz", h.proxy_addr);
    let (code, out, _) = healthcheck(&[("HEALTHCHECK_URL", url.clone())]).await;
    assert_eq!(code, Some(0), "{out}");
    // HOST=0.0.0.0 (the container's) still means this host.
    let (code, out, _) = healthcheck(&[("PORT", port.clone()), ("HOST", "0.0.0.0".into())]).await;
    assert_eq!(code, Some(0), "{out}");

    // The origin down: /healthz says 450 nok.
    h.stop_origin();
    let (code, out, _) = healthcheck(&[("PORT", port.clone())]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("450"), "{out}");

    // Draining: 503.
    let origin = Harness::start().await;
    let drain = s3_resign_proxy::Drain::new(Duration::from_secs(30), Duration::from_secs(5));
    let config = s3_resign_proxy::config::Config::from_vars(base_vars(origin.origin_addr)).unwrap();
    let (addr, _server) = serve_state_drained(s3_resign_proxy::AppState::new(config), drain.clone()).await;
    let (code, _, _) = healthcheck(&[("PORT", addr.port().to_string())]).await;
    assert_eq!(code, Some(0));
    drain.start();
    let (code, out, _) = healthcheck(&[("PORT", addr.port().to_string())]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("503") && out.contains("draining"), "{out}");

    // Nothing listening.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port().to_string();
    drop(dead);
    let (code, out, took) = healthcheck(&[("PORT", dead_port)]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    // A listener that never answers: the subcommand's own timeout.
    let mute = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mute_url = format!("http://{}/healthz", mute.local_addr().unwrap());
    let (code, out, took) = healthcheck(&[("HEALTHCHECK_URL", mute_url)]).await;
    assert_eq!(code, Some(1), "{out}");
    assert!(took >= Duration::from_secs(4) && took < Duration::from_secs(10), "{took:?}");
    drop(mute);
}

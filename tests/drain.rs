//! Graceful drain and the `/healthz` cache, in-process, against a real s3s-fs
//! origin (through a [`Relay`] where the origin probes are counted): both
//! `server::run` and `server::serve` (the binary's per-core workers), drained
//! through the same [`Drain`] handle the binary's signal handler uses.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use common::*;
use s3_resign_proxy::config::Config;
use s3_resign_proxy::{AppState, Drain};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// The probe the proxy sends for the default HEALTHCHECK_PATH.
const PROBE: &[u8] = b"HEAD / HTTP/1.1\r\n";

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// The harness's s3s-fs origin (its own proxy unused) holding `bkt/big` = `data`.
async fn origin_with_big(data: &[u8]) -> Harness {
    let h = Harness::start().await;
    let o = h.origin();
    o.create_bucket().bucket("bkt").send().await.unwrap();
    o.put_object().bucket("bkt").key("big").body(ByteStream::from(data.to_vec())).send().await.unwrap();
    h
}

/// A proxy toward `origin` served by `run`, stopped by `drain`.
async fn run_proxy(
    origin: SocketAddr,
    drain: &Drain,
    tweak: impl FnOnce(&mut Vec<(String, String)>),
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let mut vars = base_vars(origin);
    tweak(&mut vars);
    let state = AppState::new(Config::from_vars(vars).unwrap());
    serve_state_drained(state, drain.clone()).await
}

fn probes(relay: &Relay) -> usize {
    let up = relay.upstream.lock().unwrap();
    up.windows(PROBE.len()).filter(|w| *w == PROBE).count()
}

async fn healthz(addr: SocketAddr) -> RawResponse {
    raw_exchange(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"").await
}

/// A signed GET of `path` whose body is read at `pace` per MiB; `started`
/// fires once the response head and some body have arrived. Returns the
/// response head and the body.
async fn paced_get(
    addr: SocketAddr,
    path: &str,
    pace: Duration,
    started: tokio::sync::oneshot::Sender<()>,
) -> (String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(signed_head(addr, "GET", path, &[], EMPTY_SHA256, None).as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 64 << 10];
    let mut got = Vec::new();
    let (head, len) = loop {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the response head");
        got.extend_from_slice(&buf[..n]);
        if let Some(end) = find(&got, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).into_owned();
            let len = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                .and_then(|v| v.parse::<usize>().ok())
                .expect("a content-length");
            got.drain(..end + 4);
            break (head, len);
        }
    };
    let _ = started.send(());
    let mut since_pause = got.len();
    while got.len() < len {
        let n = s.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            break; // cut: the caller compares what arrived
        }
        got.extend_from_slice(&buf[..n]);
        since_pause += n;
        if since_pause >= 1 << 20 {
            since_pause = 0;
            tokio::time::sleep(pace).await;
        }
    }
    (head, got)
}

fn refused(addr: SocketAddr) -> bool {
    std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err()
}

/// `/healthz` says draining at once (without probing the origin), requests
/// are still served during DRAIN_GRACE (with `Connection: close`), then new
/// connections are refused and `run` returns.
#[tokio::test]
async fn healthz_says_draining_at_once_while_requests_are_still_served() {
    let origin = origin_with_big(b"small object").await;
    let relay = Relay::start(origin.origin_addr, None).await;
    let drain = Drain::new(Duration::from_millis(800), Duration::from_secs(10));
    let (proxy, server) = run_proxy(relay.addr, &drain, |_| {}).await;

    let r = healthz(proxy).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(probes(&relay), 1);

    let started = Instant::now();
    drain.start();
    let r = healthz(proxy).await;
    let took = started.elapsed();
    assert_eq!((r.status, r.body_str().as_str()), (503, r#"{"status":"draining"}"#), "{}", r.head);
    assert!(took < Duration::from_millis(100), "draining said after {took:?}");
    eprintln!("drain: /healthz 503 draining {took:?} after the drain started");
    assert!(drain.is_draining());

    // Still serving, on a new connection, and asking the client to move on.
    let get = raw_exchange(proxy, &signed_head(proxy, "GET", "/bkt/big", &[], EMPTY_SHA256, None), b"").await;
    assert_eq!((get.status, get.body.as_slice()), (200, b"small object".as_slice()), "{}", get.head);
    assert_eq!(get.header("connection").as_deref(), Some("close"));
    let r = raw_exchange(proxy, "HEAD /healthz HTTP/1.0\r\n\r\n", b"").await;
    assert_eq!(r.status, 503, "HAProxy's HTTP/1.0 HEAD check too");
    assert_eq!(probes(&relay), 1, "a draining proxy never probes the origin");
    assert!(!refused(proxy), "still accepting within DRAIN_GRACE");

    // After the grace: refused, and `run` has returned (nothing was in flight).
    assert!(eventually(Duration::from_secs(3), || refused(proxy)).await, "the listener closes");
    let closed_after = started.elapsed();
    assert!(closed_after >= Duration::from_millis(750), "closed after {closed_after:?}, before DRAIN_GRACE");
    tokio::time::timeout(Duration::from_secs(2), server).await.expect("run returns").unwrap();
    let report = drain.report().expect("a report once run returned");
    assert_eq!(report.cut, 0);
    assert!(report.accepting_for >= Duration::from_millis(800), "{report:?}");
    eprintln!("drain: listener closed {closed_after:?} after the start (DRAIN_GRACE 800 ms); {report:?}");
}

/// Downloads in flight when the drain starts, still running when the listener
/// closes, finish byte-identical; `run` returns only after the last one.
#[tokio::test]
async fn in_flight_downloads_finish_byte_identical_after_the_listener_closes() {
    const LEN: usize = 16 << 20;
    let data = pattern(LEN);
    let origin = origin_with_big(&data).await;
    let drain = Drain::new(Duration::from_millis(300), Duration::from_secs(20));
    let (proxy, server) = run_proxy(origin.origin_addr, &drain, |_| {}).await;

    let mut downloads = Vec::new();
    let mut heads = Vec::new();
    for _ in 0..4 {
        let (tx, rx) = tokio::sync::oneshot::channel();
        // 16 MiB at 60 ms per MiB: about a second each.
        downloads.push(tokio::spawn(paced_get(proxy, "/bkt/big", Duration::from_millis(60), tx)));
        heads.push(rx);
    }
    for rx in heads {
        rx.await.expect("download under way");
    }
    let started = Instant::now();
    drain.start();
    assert!(eventually(Duration::from_secs(3), || refused(proxy)).await, "the listener closes");
    let closed = started.elapsed();
    assert!(downloads.iter().all(|d| !d.is_finished()), "the downloads outlast the grace (else this proves nothing)");
    assert!(!server.is_finished(), "run waits for in-flight downloads");

    for d in downloads {
        let (head, body) = tokio::time::timeout(Duration::from_secs(30), d).await.expect("in time").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert_eq!(body.len(), LEN);
        assert!(body == data, "byte-identical");
    }
    let last_done = started.elapsed();
    tokio::time::timeout(Duration::from_secs(2), server).await.expect("run returns after the downloads").unwrap();
    let report = drain.report().unwrap();
    assert_eq!((report.open_at_close, report.cut), (4, 0), "{report:?}");
    // `run` returns once the proxy has sent the last byte (`report.total`);
    // the client reads the tail from its socket buffer after that.
    assert!(report.total > closed, "{report:?}");
    eprintln!(
        "drain: listener closed after {closed:?}; run returned after {:?}; the client read 4 x 16 MiB by {last_done:?}",
        report.total
    );
}

/// A download the client stops reading outlasts SHUTDOWN_TIMEOUT: its
/// connection is cut and `run` returns at the deadline.
#[tokio::test]
async fn shutdown_timeout_cuts_what_is_still_busy() {
    const LEN: usize = 32 << 20;
    let origin = origin_with_big(&pattern(LEN)).await;
    let drain = Drain::new(Duration::ZERO, Duration::from_millis(500));
    let (proxy, server) = run_proxy(origin.origin_addr, &drain, |_| {}).await;
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(signed_head(proxy, "GET", "/bkt/big", &[], EMPTY_SHA256, None).as_bytes()).await.unwrap();
    let mut first = [0u8; 1024];
    assert!(s.read(&mut first).await.unwrap() > 0, "the response has started");
    // The client reads nothing more: the proxy's writes block.
    let started = Instant::now();
    drain.start();
    tokio::time::timeout(Duration::from_secs(5), server).await.expect("run returns at the deadline").unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(450) && took < Duration::from_secs(3), "{took:?}");
    let report = drain.report().unwrap();
    assert_eq!((report.open_at_close, report.cut), (1, 1), "{report:?}");
    // The client sees the connection end before the body's end.
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest)).await.expect("closed");
    assert!(rest.len() + 1024 < LEN, "the body was cut");
}

/// The binary's shape: `server::serve` with two workers whose states are
/// siblings (one `/healthz` cache). Concurrent checks on several connections
/// make one probe; on drain, /healthz says so at once, an in-flight download
/// finishes byte-identical, new connections are refused, and `serve` returns.
#[test]
fn multi_worker_serve_shares_one_probe_and_drains() {
    const LEN: usize = 8 << 20;
    let data = pattern(LEN);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let origin = rt.block_on(origin_with_big(&data));
    let relay = rt.block_on(Relay::start(origin.origin_addr, None));
    let config = Config::from_vars(base_vars(relay.addr)).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = listener.local_addr().unwrap();
    let drain = Drain::new(Duration::from_millis(500), Duration::from_secs(20));
    let base = AppState::new(config);
    let d = drain.clone();
    let server = std::thread::spawn(move || s3_resign_proxy::server::serve(listener, 2, move || base.sibling(), d));
    rt.block_on(async {
        let checks: Vec<_> = (0..16).map(|_| tokio::spawn(healthz(proxy))).collect();
        for c in checks {
            let r = c.await.unwrap();
            assert_eq!(r.status, 200, "{}", r.body_str());
        }
        assert_eq!(probes(&relay), 1, "16 concurrent checks over two workers, one origin probe");

        let (tx, rx) = tokio::sync::oneshot::channel();
        let download = tokio::spawn(paced_get(proxy, "/bkt/big", Duration::from_millis(150), tx));
        rx.await.unwrap();
        let started = Instant::now();
        drain.start();
        let r = healthz(proxy).await;
        let took = started.elapsed();
        assert_eq!(r.status, 503, "{}", r.body_str());
        assert!(took < Duration::from_millis(100), "draining said after {took:?}");
        assert!(eventually(Duration::from_secs(3), || refused(proxy)).await, "the listener closes");
        let closed = started.elapsed();
        assert!(!download.is_finished(), "the download outlasts the grace");
        let (head, body) = download.await.unwrap();
        assert!(head.starts_with("HTTP/1.1 200") && body == data, "{head}");
        eprintln!("drain (serve, 2 workers): 503 after {took:?}, listener closed after {closed:?}");
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(server.join()));
    rx.recv_timeout(Duration::from_secs(10)).expect("serve returns").expect("no panic").expect("Ok");
    let report = drain.report().unwrap();
    assert_eq!((report.open_at_close, report.cut), (1, 0), "{report:?}");
}

/// Checks that arrive while a probe is under way wait for it (even with
/// HEALTH_CACHE_MS=0); within HEALTH_CACHE_MS a probe answers every check;
/// after it, the next check probes again.
#[tokio::test]
async fn concurrent_checks_share_one_probe_and_the_cache_expires() {
    let origin = Harness::start().await;
    // Probes are held at the relay until released, so checks pile up.
    let relay = Relay::start(origin.origin_addr, Some(("HEAD / ", Fault::Stall))).await;
    let drain = Drain::new(Duration::ZERO, Duration::from_secs(5));
    let (proxy, _server) = run_proxy(relay.addr, &drain, |v| set_var(v, "HEALTH_CACHE_MS", "0")).await;
    let checks: Vec<_> = (0..10).map(|_| tokio::spawn(healthz(proxy))).collect();
    assert!(eventually(Duration::from_secs(2), || Relay::count(&relay.stalled) == 1).await, "a probe is held");
    // Every check has reached the proxy (in-process, on loopback) by now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    relay.release();
    for c in checks {
        let r = c.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body_str());
    }
    assert_eq!(probes(&relay), 1, "10 concurrent checks, one probe");
    assert_eq!(healthz(proxy).await.status, 200);
    assert_eq!(probes(&relay), 2, "HEALTH_CACHE_MS=0: a later check probes again");
    drain.start();

    let relay = Relay::start(origin.origin_addr, None).await;
    let drain = Drain::new(Duration::ZERO, Duration::from_secs(5));
    let (proxy, _server) = run_proxy(relay.addr, &drain, |v| set_var(v, "HEALTH_CACHE_MS", "700")).await;
    let first = healthz(proxy).await;
    let window = Instant::now();
    assert_eq!(first.status, 200);
    let checks: Vec<_> = (0..10).map(|_| tokio::spawn(healthz(proxy))).collect();
    for c in checks {
        let r = c.await.unwrap();
        assert_eq!(r.status, 200);
        let j: serde_json::Value = serde_json::from_str(&r.body_str()).unwrap();
        assert_eq!(j["status"], "ok");
    }
    assert!(window.elapsed() < Duration::from_millis(700), "still within the window");
    assert_eq!(probes(&relay), 1, "11 checks within HEALTH_CACHE_MS, one probe");
    tokio::time::sleep(Duration::from_millis(750)).await;
    assert_eq!(healthz(proxy).await.status, 200);
    assert_eq!(probes(&relay), 2, "after HEALTH_CACHE_MS the next check probes again");
    drain.start();
}

/// An origin nothing listens on: the proxy answers at once with a 502 that
/// says to retry (what HAProxy's `retry-on 502` and SDK retries act on).
#[tokio::test]
async fn an_unreachable_origin_is_answered_fast_with_a_retryable_502() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let (proxy, _stop) = start_proxy(base_vars(dead_addr), None).await;
    let started = Instant::now();
    let r = raw_exchange(proxy, &signed_head(proxy, "GET", "/bkt/k", &[], EMPTY_SHA256, None), b"").await;
    let took = started.elapsed();
    assert_eq!(r.status, 502, "{}", r.body_str());
    assert!(r.body_str().contains("<Code>BadGateway</Code>"));
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    assert!(took < Duration::from_millis(500), "{took:?}");
    eprintln!("unreachable origin (connection refused): 502 in {took:?}");
    let r = healthz(proxy).await;
    assert_eq!(r.status, 450, "{}", r.body_str());
}

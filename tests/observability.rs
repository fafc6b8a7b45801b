//! `/metrics` and the access log, after a known mix of requests through the
//! proxy to a real s3s-fs origin: the metrics count exactly that mix, and the
//! access log (JSON lines, written by the binary's own formatter) has exactly
//! one line per request, with the right fields and no secret or signature.
//!
//! The proxy runs on its own thread; only that thread's events are captured
//! (the origin and the clients in this process log too).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use common::*;
use s3_resign_proxy::access_log::{self, LogFormat};
use s3_resign_proxy::config::Config;
use s3_resign_proxy::{AppState, server};
use serde_json::Value;

const PROXY_THREAD: &str = "observed-proxy";
/// The proxy of the abandoned-requests test, logged apart.
const ABANDON_THREAD: &str = "abandoned-proxy";
const WRONG_SECRET: &str = "not-the-client-secret-EXAMPLE";
const UNKNOWN_KEY: &str = "AKIDUNKNOWNEXAMPLE";

/// What the proxies' threads logged, by thread name.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<HashMap<String, Vec<u8>>>>);

/// Appends to the buffer of the thread that made it (the one logging).
struct ThreadWriter(Capture, String);

impl std::io::Write for ThreadWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        (self.0).0.lock().unwrap().entry(self.1.clone()).or_default().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self, thread: &str) -> String {
        String::from_utf8_lossy(self.0.lock().unwrap().get(thread).map_or(&[][..], |v| v)).into_owned()
    }
}

/// Every event of the proxies' threads, at TRACE, through the binary's JSON
/// layer; installed once for the tests of this binary.
fn capture() -> Capture {
    use tracing_subscriber::prelude::*;
    static CAPTURE: std::sync::OnceLock<Capture> = std::sync::OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let cap = Capture::default();
            let writer = cap.clone();
            // Dynamic: decided per event, not cached per callsite by whichever
            // thread reaches it first.
            let on_proxy_threads = tracing_subscriber::filter::dynamic_filter_fn(|_, _| {
                matches!(std::thread::current().name(), Some(PROXY_THREAD | ABANDON_THREAD))
            });
            let make =
                move || ThreadWriter(writer.clone(), std::thread::current().name().unwrap_or_default().to_string());
            tracing_subscriber::registry()
                .with(access_log::layer(LogFormat::Json, false, make).with_filter(on_proxy_threads))
                .try_init()
                .expect("the only subscriber in this test binary");
            cap
        })
        .clone()
}

/// The access lines in `log`, each parsed (every line of `log` must be JSON).
fn access_lines(log: &str) -> Vec<Value> {
    log.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .filter(|v| v["target"] == "s3_resign_proxy::access_log")
        .collect()
}

/// The proxy toward `origin` on its own thread and runtime, until `stop` is sent.
fn proxy_thread(
    name: &str,
    origin: SocketAddr,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>, std::thread::JoinHandle<()>) {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let (addr, _stop) = start_proxy_to(origin, |_| {}).await;
                addr_tx.send(addr).unwrap();
                let _ = stop_rx.await;
            });
        })
        .unwrap();
    (addr_rx.recv().unwrap(), stop_tx, thread)
}

/// What the client saw of one request.
#[derive(Debug, Clone)]
struct Sent {
    what: &'static str,
    method: &'static str,
    status: u16,
    request_id: String,
    body_in: usize,
    body_out: usize,
}

struct Client {
    http: reqwest::Client,
    addr: SocketAddr,
    sent: Vec<Sent>,
    /// Every signature the client sent, to look for in the log.
    signatures: Vec<String>,
}

impl Client {
    async fn send(
        &mut self,
        what: &'static str,
        method: &'static str,
        target: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> Sent {
        let url = format!("http://{}{target}", self.addr);
        let mut req = self.http.request(method.parse().unwrap(), url);
        for (k, v) in headers {
            req = req.header(k, v);
            if let Some((_, sig)) = v.rsplit_once("Signature=") {
                self.signatures.push(sig.to_string());
            }
        }
        let body_in = body.len();
        if !body.is_empty() || method == "PUT" || method == "POST" {
            req = req.body(body);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let request_id = r.headers().get("x-amz-request-id").expect("every response has a request id");
        let request_id = request_id.to_str().unwrap().to_string();
        let body_out = r.bytes().await.unwrap().len();
        let s = Sent { what, method, status, request_id, body_in, body_out };
        self.sent.push(s.clone());
        s
    }

    /// Header-signed with `keys` (aws-sigv4), `claimed` as the payload hash.
    async fn signed(
        &mut self,
        what: &'static str,
        method: &'static str,
        target: &str,
        body: Vec<u8>,
        claimed: Option<&str>,
        keys: (&str, &str),
    ) -> Sent {
        let hash = claimed.map_or_else(|| sha256_hex(&body), str::to_string);
        let hs = sign_headers(method, &self.addr.to_string(), target, &[], &hash, keys, SystemTime::now());
        self.send(what, method, target, &hs, body).await
    }
}

/// Metric samples: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse::<f64>().unwrap_or_else(|_| panic!("a number in {l:?}")))
        })
        .collect()
}

/// The samples of one metric (its exact name, then `{` or nothing).
fn series(all: &BTreeMap<String, f64>, name: &str) -> BTreeMap<String, f64> {
    all.iter()
        .filter(|(k, _)| k.strip_prefix(name).is_some_and(|r| r.is_empty() || r.starts_with('{')))
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

fn expect(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[tokio::test]
async fn a_known_mix_is_counted_exactly_by_metrics_and_logged_once_each_as_json() {
    let cap = capture();
    let h = Harness::start().await;
    let (addr, stop, thread) = proxy_thread(PROXY_THREAD, h.origin_addr);
    let mut c = Client { http: reqwest::Client::new(), addr, sent: Vec::new(), signatures: Vec::new() };
    let keys = (CAK, CSK);
    const UP: usize = (3 << 20) + 17;
    let big: Vec<u8> = (0..UP).map(|i| (i % 251) as u8).collect();

    // Successes of several operation classes.
    assert_eq!(c.signed("create bucket", "PUT", "/mix", vec![], None, keys).await.status, 200);
    assert_eq!(c.signed("upload", "PUT", "/mix/big.bin", big.clone(), None, keys).await.status, 200);
    let got = c.signed("download", "GET", "/mix/big.bin", vec![], None, keys).await;
    assert_eq!((got.status, got.body_out), (200, UP));
    let url = presign("GET", &addr.to_string(), "/mix/big.bin", &[], Duration::from_secs(300), SystemTime::now());
    c.signatures.push(url.rsplit_once("X-Amz-Signature=").unwrap().1.to_string());
    let got = c.send("presigned download", "GET", &url, &[], vec![]).await;
    assert_eq!((got.status, got.body_out), (200, UP));
    assert_eq!(c.signed("head", "HEAD", "/mix/big.bin", vec![], None, keys).await.status, 200);
    // A list, with a spoofed X-Forwarded-For from an untrusted peer.
    let hs = sign_headers("GET", &addr.to_string(), "/mix?list-type=2", &[], &sha256_hex(b""), keys, SystemTime::now());
    let mut with_xff = hs.clone();
    with_xff.push(("x-forwarded-for".into(), "203.0.113.50".into()));
    assert_eq!(c.send("list", "GET", "/mix?list-type=2", &with_xff, vec![]).await.status, 200);
    assert_eq!(c.signed("multipart", "POST", "/mix/mp.bin?uploads", vec![], None, keys).await.status, 200);
    // The origin's own error: a status, not a refusal.
    assert_eq!(c.signed("missing", "GET", "/mix/missing.bin", vec![], None, keys).await.status, 404);
    assert_eq!(c.signed("delete", "DELETE", "/mix/big.bin", vec![], None, keys).await.status, 204);

    // Refusals, five codes.
    let s = c.signed("wrong secret", "GET", "/mix/big.bin", vec![], None, (CAK, WRONG_SECRET)).await;
    assert_eq!(s.status, 403);
    let s = c.signed("unknown key", "GET", "/mix/big.bin", vec![], None, (UNKNOWN_KEY, CSK)).await;
    assert_eq!(s.status, 403);
    assert_eq!(c.send("patch", "PATCH", "/mix/x", &[], vec![]).await.status, 405);
    assert_eq!(c.send("anonymous", "GET", "/mix/x", &[], vec![]).await.status, 403);
    let claimed = sha256_hex(b"what was signed");
    let s = c.signed("mismatch", "PUT", "/mix/bad.bin", vec![7u8; 1000], Some(&claimed), keys).await;
    assert_eq!(s.status, 400);

    // Not S3 requests: counted elsewhere, not logged.
    let hz = c.http.get(format!("http://{addr}/healthz")).send().await.unwrap();
    assert_eq!(hz.status(), 200);

    let sent = c.sent.clone();
    assert_eq!(sent.len(), 14);
    // The last exchange ends just after its client read the body.
    let scrape = || async {
        let r = reqwest::get(format!("http://{addr}/metrics")).await.unwrap();
        assert_eq!(r.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
        r.text().await.unwrap()
    };
    let mut text = scrape().await;
    for _ in 0..100 {
        if samples(&text).get("s3rp_requests_in_flight") == Some(&0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        text = scrape().await;
    }
    eprintln!("{text}");
    let all = samples(&text);

    let r = |m: &str, op: &str, st: &str| format!("s3rp_requests_total{{method=\"{m}\",op=\"{op}\",status=\"{st}\"}}");
    let want: BTreeMap<String, f64> = [
        (r("GET", "get_object", "2xx"), 2.0),
        (r("GET", "get_object", "4xx"), 4.0),
        (r("HEAD", "head_object", "2xx"), 1.0),
        (r("PUT", "put_object", "2xx"), 1.0),
        (r("PUT", "put_object", "4xx"), 1.0),
        (r("PUT", "bucket", "2xx"), 1.0),
        (r("GET", "list", "2xx"), 1.0),
        (r("POST", "multipart", "2xx"), 1.0),
        (r("DELETE", "delete_object", "2xx"), 1.0),
        (r("OTHER", "other", "4xx"), 1.0),
    ]
    .into_iter()
    .collect();
    assert_eq!(series(&all, "s3rp_requests_total"), want, "\n{text}");
    assert_eq!(
        series(&all, "s3rp_refusals_total"),
        expect(&[
            ("s3rp_refusals_total{code=\"SignatureDoesNotMatch\"}", 1.0),
            ("s3rp_refusals_total{code=\"InvalidAccessKeyId\"}", 1.0),
            ("s3rp_refusals_total{code=\"MethodNotAllowed\"}", 1.0),
            ("s3rp_refusals_total{code=\"AccessDenied\"}", 1.0),
            ("s3rp_refusals_total{code=\"XAmzContentSHA256Mismatch\"}", 1.0),
        ])
    );
    let bytes_in: usize = sent.iter().map(|s| s.body_in).sum();
    let bytes_out: usize = sent.iter().map(|s| s.body_out).sum();
    assert_eq!(bytes_in, UP + 1000);
    assert!(bytes_out > 2 * UP);
    assert_eq!(all["s3rp_request_body_bytes_total"], bytes_in as f64);
    assert_eq!(all["s3rp_response_body_bytes_total"], bytes_out as f64);
    assert_eq!(all["s3rp_requests_in_flight"], 0.0);

    // Histograms: one observation per request; origin time for the 9 the origin answered.
    let per_op = |metric: &str, counts: &[(&str, f64)]| {
        let want: Vec<(String, f64)> =
            counts.iter().map(|(op, n)| (format!("{metric}_count{{op=\"{op}\"}}"), *n)).collect();
        assert_eq!(series(&all, &format!("{metric}_count")), want.into_iter().collect::<BTreeMap<_, _>>());
        for (op, n) in counts {
            assert_eq!(all[&format!("{metric}_bucket{{op=\"{op}\",le=\"+Inf\"}}")], *n, "{metric} {op}");
            assert!(all[&format!("{metric}_sum{{op=\"{op}\"}}")] > 0.0);
        }
    };
    per_op(
        "s3rp_request_duration_seconds",
        &[
            ("get_object", 6.0),
            ("head_object", 1.0),
            ("put_object", 2.0),
            ("delete_object", 1.0),
            ("list", 1.0),
            ("multipart", 1.0),
            ("bucket", 1.0),
            ("other", 1.0),
        ],
    );
    per_op(
        "s3rp_origin_first_byte_seconds",
        &[
            ("get_object", 3.0),
            ("head_object", 1.0),
            ("put_object", 1.0),
            ("delete_object", 1.0),
            ("list", 1.0),
            ("multipart", 1.0),
            ("bucket", 1.0),
        ],
    );
    // The 9 answered, the aborted upload and the health probe each took a
    // connection; sequential requests reuse them.
    let (new, reused) =
        (all["s3rp_origin_connections_total{kind=\"new\"}"], all["s3rp_origin_connections_total{kind=\"reused\"}"]);
    assert_eq!(new + reused, 11.0, "\n{text}");
    assert!(new >= 1.0 && reused >= 5.0, "new {new}, reused {reused}");
    assert_eq!(all["s3rp_health_state{state=\"ok\"}"], 1.0);
    assert_eq!(all["s3rp_health_state{state=\"unknown\"}"], 0.0);

    // The access log: exactly one JSON line per request, found by its request id.
    let log = cap.text(PROXY_THREAD);
    let access = access_lines(&log);
    assert_eq!(access.len(), sent.len(), "one line per request:\n{log}");
    let mut lines: HashMap<String, Value> = HashMap::new();
    for v in access {
        let rid = v["request_id"].as_str().unwrap().to_string();
        assert!(lines.insert(rid, v).is_none(), "two lines for one request id");
    }
    for s in &sent {
        let v = &lines.get(&s.request_id).unwrap_or_else(|| panic!("no line for {s:?}"));
        let ctx = format!("{s:?}: {v}");
        assert_eq!(v["message"], "request", "{ctx}");
        assert_eq!(v["level"], "INFO", "{ctx}");
        let ts = v["timestamp"].as_str().unwrap();
        time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).expect(&ctx);
        assert_eq!(v["client"], "127.0.0.1", "the peer, not a spoofed X-Forwarded-For: {ctx}");
        assert_eq!(v["method"], s.method, "{ctx}");
        assert_eq!(v["status"], s.status, "{ctx}");
        assert_eq!(v["bytes_in"], s.body_in, "{ctx}");
        assert_eq!(v["bytes_out"], s.body_out, "{ctx}");
        assert_eq!(v["complete"], true, "{ctx}");
        assert!(v["ms"].as_f64().unwrap() > 0.0, "{ctx}");
        let (bucket, key, op) = match s.what {
            "create bucket" => ("mix", "-", "bucket"),
            "upload" | "download" | "presigned download" | "delete" | "wrong secret" | "unknown key" => (
                "mix",
                "big.bin",
                ["get_object", "put_object", "delete_object"][match s.method {
                    "GET" => 0,
                    "PUT" => 1,
                    _ => 2,
                }],
            ),
            "head" => ("mix", "big.bin", "head_object"),
            "list" => ("mix", "-", "list"),
            "multipart" => ("mix", "mp.bin", "multipart"),
            "missing" => ("mix", "missing.bin", "get_object"),
            "patch" => ("mix", "x", "other"),
            "anonymous" => ("mix", "x", "get_object"),
            "mismatch" => ("mix", "bad.bin", "put_object"),
            other => panic!("{other}"),
        };
        assert_eq!((v["bucket"].as_str(), v["key"].as_str(), v["op"].as_str()), (Some(bucket), Some(key), Some(op)));
        let (key_id, error) = match s.what {
            "wrong secret" => (CAK, Some("SignatureDoesNotMatch")),
            "unknown key" => (UNKNOWN_KEY, Some("InvalidAccessKeyId")),
            "patch" => ("-", Some("MethodNotAllowed")),
            "anonymous" => ("-", Some("AccessDenied")),
            "mismatch" => (CAK, Some("XAmzContentSHA256Mismatch")),
            _ => (CAK, None),
        };
        assert_eq!(v["key_id"], key_id, "{ctx}");
        assert_eq!(v["error"].as_str(), error, "{ctx}");
        assert_eq!(v.get("reason").is_some(), error.is_some(), "{ctx}");
        // The origin's status when the origin answered.
        let origin = error.is_none();
        assert_eq!(v.get("origin_status").and_then(Value::as_u64), origin.then_some(s.status as u64), "{ctx}");
        assert_eq!(v.get("origin_ms").is_some(), origin, "{ctx}");
    }

    // No secret, signature or query string.
    let mut needles: Vec<String> = vec![CSK.into(), OSK.into(), WRONG_SECRET.into()];
    needles.extend(c.signatures.iter().cloned());
    assert!(c.signatures.len() >= 12, "{:?}", c.signatures);
    for n in &needles {
        assert!(n.len() >= 16, "{n}");
        assert!(!log.contains(n.as_str()), "{n} in the log");
    }
    for word in ["X-Amz-", "list-type", "uploads"] {
        assert!(!log.contains(word), "{word} (a query) in the log");
    }

    let _ = stop.send(());
    thread.join().unwrap();
}

/// With METRICS_PORT, `/metrics` is served on its own listener only: on the
/// main one, an unsigned `GET /metrics` is an (anonymous, refused) S3
/// request, counted as such, and the metrics listener reports a drain.
/// Without METRICS_PORT, a signed request for the bucket `metrics` is an S3
/// request too.
#[tokio::test]
async fn metrics_port_moves_metrics_off_the_main_listener() {
    let h = Harness::start().await;
    let mut vars = base_vars(h.origin_addr);
    set_var(&mut vars, "METRICS_PORT", "9");
    let state = AppState::new(Config::from_vars(vars).unwrap());
    let metrics = state.metrics().clone();
    let drain = s3_resign_proxy::Drain::new(Duration::from_secs(10), Duration::from_secs(10));
    let (main, _server) = serve_state_drained(state, drain.clone()).await;
    let ml = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let maddr = ml.local_addr().unwrap();
    tokio::spawn(server::run_metrics(ml, metrics, std::future::pending()));

    let r = reqwest::get(format!("http://{main}/metrics")).await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("<Code>AccessDenied</Code>"));
    assert_eq!(reqwest::get(format!("http://{maddr}/other")).await.unwrap().status(), 404);
    let text = reqwest::get(format!("http://{maddr}/metrics")).await.unwrap().text().await.unwrap();
    let all = samples(&text);
    assert_eq!(
        series(&all, "s3rp_requests_total"),
        expect(&[("s3rp_requests_total{method=\"GET\",op=\"list\",status=\"4xx\"}", 1.0)]),
        "\n{text}"
    );
    assert_eq!(series(&all, "s3rp_refusals_total"), expect(&[("s3rp_refusals_total{code=\"AccessDenied\"}", 1.0)]));
    assert_eq!(all["s3rp_health_state{state=\"unknown\"}"], 1.0, "no /healthz yet");
    // A drain: /healthz says so, and so does the health state.
    drain.start();
    assert_eq!(reqwest::get(format!("http://{main}/healthz")).await.unwrap().status(), 503);
    let all = samples(&reqwest::get(format!("http://{maddr}/metrics")).await.unwrap().text().await.unwrap());
    assert_eq!(all["s3rp_health_state{state=\"draining\"}"], 1.0);
    assert_eq!(all["s3rp_health_state{state=\"unknown\"}"], 0.0);

    // Without METRICS_PORT: a signed GET /metrics is ListObjects on the
    // bucket `metrics`, which the origin does not have.
    let hs = sign_headers(
        "GET",
        &h.proxy_addr.to_string(),
        "/metrics",
        &[],
        &sha256_hex(b""),
        (CAK, CSK),
        SystemTime::now(),
    );
    let mut req = reqwest::Client::new().get(format!("http://{}/metrics", h.proxy_addr));
    for (k, v) in &hs {
        req = req.header(k, v);
    }
    let r = req.send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("NoSuchBucket"));
    let r = reqwest::get(format!("http://{}/metrics", h.proxy_addr)).await.unwrap();
    assert_eq!(r.status(), 200);
    let all = samples(&r.text().await.unwrap());
    assert_eq!(
        series(&all, "s3rp_requests_total"),
        expect(&[("s3rp_requests_total{method=\"GET\",op=\"list\",status=\"4xx\"}", 1.0)])
    );
    assert!(series(&all, "s3rp_refusals_total").is_empty(), "the origin's 404 is not a refusal");
}

/// A download the client abandons midway is logged and counted with the
/// status it had, `complete: false` and the bytes actually handed on; a
/// request still waiting for the origin when a drain cuts it is 499.
#[tokio::test]
async fn abandoned_and_cut_requests_are_logged_incomplete_or_as_499() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let cap = capture();
    let h = Harness::start().await;
    const SIZE: usize = 32 << 20;
    let origin = h.origin();
    origin.create_bucket().bucket("abandoned").send().await.unwrap();
    let body = aws_sdk_s3::primitives::ByteStream::from(vec![5u8; SIZE]);
    origin.put_object().bucket("abandoned").key("big.bin").body(body).send().await.unwrap();
    // The origin's answer to `stall.bin` is held back.
    let relay = Relay::start(h.origin_addr, Some(("stall.bin", Fault::Stall))).await;
    // The proxy on its own thread, with a drain that cuts what is left after 300 ms.
    let drain = s3_resign_proxy::Drain::new(Duration::ZERO, Duration::from_millis(300));
    let (tx, rx) = std::sync::mpsc::channel();
    let (d, to) = (drain.clone(), relay.addr);
    let thread = std::thread::Builder::new()
        .name(ABANDON_THREAD.into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let state = AppState::new(Config::from_vars(base_vars(to)).unwrap());
                let metrics = state.metrics().clone();
                let (addr, server) = serve_state_drained(state, d).await;
                tx.send((addr, metrics)).unwrap();
                let _ = server.await;
            });
        })
        .unwrap();
    let (addr, metrics) = rx.recv().unwrap();

    // Read the head and a little of 32 MiB, then close with the rest unread (a reset).
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(signed_head(addr, "GET", "/abandoned/big.bin", &[], &sha256_hex(b""), None).as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 64 << 10];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    drop(s);

    // A request waiting on the origin when the drain runs out.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = signed_head(addr, "GET", "/abandoned/stall.bin", &[], &sha256_hex(b""), None);
    s.write_all(head.as_bytes()).await.unwrap();
    assert!(eventually(Duration::from_secs(10), || Relay::count(&relay.stalled) == 1).await, "the origin answered");
    drain.start();
    let mut lines = Vec::new();
    for _ in 0..250 {
        lines = access_lines(&cap.text(ABANDON_THREAD));
        if lines.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    relay.release();
    thread.join().unwrap();
    drop(s);
    assert_eq!(lines.len(), 2, "{lines:?}");
    let big = lines.iter().find(|v| v["key"] == "big.bin").unwrap();
    assert_eq!((big["status"].as_u64(), big["complete"].as_bool()), (Some(200), Some(false)), "{big}");
    let out = big["bytes_out"].as_u64().unwrap();
    assert!(out > 0 && out < SIZE as u64, "{big}");
    let cut = lines.iter().find(|v| v["key"] == "stall.bin").unwrap();
    assert_eq!((cut["status"].as_u64(), cut["complete"].as_bool()), (Some(499), Some(false)), "{cut}");
    assert_eq!(cut["key_id"], CAK, "verified before the origin was asked: {cut}");
    assert!(cut.get("origin_status").is_none(), "{cut}");

    let text = metrics.encode();
    let all = samples(&text);
    assert_eq!(
        series(&all, "s3rp_requests_total"),
        expect(&[
            ("s3rp_requests_total{method=\"GET\",op=\"get_object\",status=\"2xx\"}", 1.0),
            ("s3rp_requests_total{method=\"GET\",op=\"get_object\",status=\"4xx\"}", 1.0),
        ]),
        "\n{text}"
    );
    assert_eq!(all["s3rp_response_body_bytes_total"], out as f64);
    assert_eq!(all["s3rp_requests_in_flight"], 0.0);
}

//! In-process harness: a strict s3s-fs origin (origin credentials) and the
//! proxy (client credentials), both on port 0, plus clients for each.
#![allow(dead_code)]

#[path = "../support/s3_signing.rs"]
pub mod s3_signing;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use s3_resign_proxy::config::Config;
use s3_resign_proxy::{AppState, Clock};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const CAK: &str = "CLIENTKEYEXAMPLE";
pub const CSK: &str = "client/secret+key/EXAMPLE";
pub const OAK: &str = "ORIGINKEYEXAMPLE";
pub const OSK: &str = "origin-secret-key-EXAMPLE";

/// A clock that runs `offset` ahead of (or behind) real time.
pub struct OffsetClock(pub time::Duration);

impl Clock for OffsetClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.0
    }
}

pub struct Harness {
    pub origin_addr: SocketAddr,
    pub proxy_addr: SocketAddr,
    pub origin_dir: tempfile::TempDir,
    origin_tasks: Vec<tokio::task::JoinHandle<()>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

pub fn base_vars(origin: SocketAddr) -> Vec<(String, String)> {
    [
        ("CLIENT_ACCESS_KEY", CAK.to_string()),
        ("CLIENT_SECRET_KEY", CSK.to_string()),
        ("ORIGIN_ACCESS_KEY", OAK.to_string()),
        ("ORIGIN_SECRET_KEY", OSK.to_string()),
        ("ORIGIN_DOMAIN", format!("http://{origin}")),
        ("HOST", "127.0.0.1".to_string()),
        ("PORT", "0".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(|_| {}, None).await
    }

    /// `tweak` edits the environment; `clock` replaces the proxy's clock.
    pub async fn start_with(tweak: impl FnOnce(&mut Vec<(String, String)>), clock: Option<Arc<dyn Clock>>) -> Self {
        let origin_dir = tempfile::tempdir().unwrap();
        let ol = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin_addr = ol.local_addr().unwrap();
        let root = origin_dir.path().to_owned();
        let origin_task = tokio::spawn(async move {
            let _ = s3_resign_proxy::demo::serve_origin(ol, &root, OAK, OSK).await;
        });
        let mut vars = base_vars(origin_addr);
        tweak(&mut vars);
        let (proxy_addr, shutdown) = start_proxy(vars, clock).await;
        Self { origin_addr, proxy_addr, origin_dir, origin_tasks: vec![origin_task], shutdown: Some(shutdown) }
    }

    /// The proxy toward a [`Relay`] in front of the origin, so a test sees
    /// every byte that reaches the origin. With `virtual_origin`, that origin
    /// answers virtual-hosted requests at `<bucket>.localhost:<relay port>`
    /// and ORIGIN_DOMAIN is `http://localhost:<relay port>` (`tweak` sets
    /// ORIGIN_ADDRESSING); `origin()` then talks path-style to a second s3s-fs
    /// over the same directory, since an s3s SingleDomain origin reads
    /// `Host: 127.0.0.1:port` as a bucket name.
    pub async fn start_relayed(tweak: impl FnOnce(&mut Vec<(String, String)>), virtual_origin: bool) -> (Self, Relay) {
        let origin_dir = tempfile::tempdir().unwrap();
        let root = origin_dir.path().to_owned();
        let ol = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = Relay::start(ol.local_addr().unwrap(), None).await;
        let mut origin_tasks = Vec::new();
        let mut vars;
        let origin_addr;
        if virtual_origin {
            let domain = format!("localhost:{}", relay.addr.port());
            let r = root.clone();
            origin_tasks.push(tokio::spawn(async move {
                let _ = s3_resign_proxy::demo::serve_origin_with_domain(ol, &r, OAK, OSK, Some(domain.as_str())).await;
            }));
            let truth = TcpListener::bind("127.0.0.1:0").await.unwrap();
            origin_addr = truth.local_addr().unwrap();
            let r = root.clone();
            origin_tasks.push(tokio::spawn(async move {
                let _ = s3_resign_proxy::demo::serve_origin(truth, &r, OAK, OSK).await;
            }));
            vars = base_vars(origin_addr);
            set_var(&mut vars, "ORIGIN_DOMAIN", &format!("http://localhost:{}", relay.addr.port()));
        } else {
            origin_addr = ol.local_addr().unwrap();
            let r = root.clone();
            origin_tasks.push(tokio::spawn(async move {
                let _ = s3_resign_proxy::demo::serve_origin(ol, &r, OAK, OSK).await;
            }));
            vars = base_vars(relay.addr);
        }
        tweak(&mut vars);
        let (proxy_addr, shutdown) = start_proxy(vars, None).await;
        (Self { origin_addr, proxy_addr, origin_dir, origin_tasks, shutdown: Some(shutdown) }, relay)
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.proxy_addr)
    }

    pub fn client(&self) -> aws_sdk_s3::Client {
        s3_client(&self.endpoint(), CAK, CSK)
    }

    pub fn client_with(&self, ak: &str, sk: &str) -> aws_sdk_s3::Client {
        s3_client(&self.endpoint(), ak, sk)
    }

    /// Straight to the origin with the origin credentials: the ground truth.
    pub fn origin(&self) -> aws_sdk_s3::Client {
        s3_client(&format!("http://{}", self.origin_addr), OAK, OSK)
    }

    pub fn stop_origin(&mut self) {
        for t in self.origin_tasks.drain(..) {
            t.abort();
        }
    }

    /// Does the origin hold `bucket/key`? Asks the origin directly.
    pub async fn origin_has(&self, bucket: &str, key: &str) -> bool {
        self.origin().head_object().bucket(bucket).key(key).send().await.is_ok()
    }

    pub async fn origin_get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let o = self.origin().get_object().bucket(bucket).key(key).send().await.expect("object at origin");
        o.body.collect().await.unwrap().into_bytes().to_vec()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        self.stop_origin();
    }
}

pub async fn start_proxy(
    vars: Vec<(String, String)>,
    clock: Option<Arc<dyn Clock>>,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let config = Config::from_vars(vars).expect("valid config");
    let state = match clock {
        Some(c) => AppState::with_clock(config, c),
        None => AppState::new(config),
    };
    serve_state(state).await
}

/// Serves `state` on 127.0.0.1:0 with `run` (the binary's router), on the
/// current runtime, until the returned sender is dropped or sent to (a drain
/// without grace: the listener closes at once, in-flight requests finish).
pub async fn serve_state(state: AppState) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let drain = s3_resign_proxy::Drain::new(Duration::ZERO, Duration::from_secs(30));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let trigger = drain.clone();
    tokio::spawn(async move {
        let _ = rx.await;
        trigger.start();
    });
    let (addr, _server) = serve_state_drained(state, drain).await;
    (addr, tx)
}

/// Serves `state` on 127.0.0.1:0 with `run` until `drain` has run its course;
/// the task ends when `run` returns.
pub async fn serve_state_drained(
    state: AppState,
    drain: s3_resign_proxy::Drain,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        s3_resign_proxy::run(listener, state, drain).await.unwrap();
    });
    (addr, server)
}

pub fn s3_client(endpoint: &str, ak: &str, sk: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(ak, sk, None, None, "test"))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Signs a raw request with the aws-sigv4 crate (an independent signer).
/// `path_and_query` must already be percent-encoded as an SDK would send it;
/// `(ak, sk)` is the key pair to sign with.
pub fn sign_headers(
    method: &str,
    host: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    payload_hash: &str,
    (ak, sk): (&str, &str),
    at: SystemTime,
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, sign};
    let identity = Credentials::new(ak, sk, None, None, "test").into();
    let params = s3_signing::s3_params(&identity, "us-east-1", at, s3_signing::Location::Headers);
    let mut all: Vec<(&str, &str)> = vec![("host", host)];
    all.extend_from_slice(headers);
    let uri = format!("http://{host}{path_and_query}");
    let req = SignableRequest::new(method, uri, all.into_iter(), SignableBody::Precomputed(payload_hash.to_string()))
        .unwrap();
    let (instr, _sig) = sign(req, &params).unwrap().into_parts();
    let (hs, _qs) = instr.into_parts();
    hs.into_iter().map(|h| (h.name().to_string(), h.value().to_string())).collect()
}

/// A raw HTTP/1.1 exchange: writes `head` (+ `body`), reads one response.
pub async fn raw_exchange(addr: SocketAddr, head: &str, body: &[u8]) -> RawResponse {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    if !body.is_empty() {
        // The peer may close early; what matters is the response we read.
        let _ = s.write_all(body).await;
    }
    read_response(&mut s).await
}

#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

pub async fn read_response(s: &mut TcpStream) -> RawResponse {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let n = tokio::time::timeout_at(deadline, s.read(&mut tmp)).await.expect("response in time").unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..pos]).into_owned();
            let status: u16 = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            if status == 100 {
                buf.drain(..pos + 4);
                continue;
            }
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            while buf.len() < pos + 4 + len {
                let n = tokio::time::timeout_at(deadline, s.read(&mut tmp)).await.expect("body in time").unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&tmp[..n]);
            }
            let body = buf[pos + 4..(pos + 4 + len).min(buf.len())].to_vec();
            return RawResponse { status, head, body };
        }
    }
    RawResponse { status: 0, head: String::from_utf8_lossy(&buf).into_owned(), body: vec![] }
}

pub fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

pub fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// Presigns `method path_and_query` for `host` with the aws-sigv4 crate (an
/// independent signer): the query already in `path_and_query` and `headers`
/// are signed too. Returns the path and query to send.
pub fn presign(
    method: &str,
    host: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    expires: Duration,
    at: SystemTime,
) -> String {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, sign};
    let identity = Credentials::new(CAK, CSK, None, None, "test").into();
    let params = s3_signing::s3_params(&identity, "us-east-1", at, s3_signing::Location::Query(expires));
    let mut all: Vec<(&str, &str)> = vec![("host", host)];
    all.extend_from_slice(headers);
    let uri = format!("http://{host}{path_and_query}");
    let req = SignableRequest::new(method, uri, all.into_iter(), SignableBody::UnsignedPayload).unwrap();
    let (instr, _sig) = sign(req, &params).unwrap().into_parts();
    let (_hs, qs) = instr.into_parts();
    let mut out = path_and_query.to_string();
    for (k, v) in qs {
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(k);
        out.push('=');
        out.push_str(&percent_encoding::utf8_percent_encode(&v, percent_encoding::NON_ALPHANUMERIC).to_string());
    }
    out
}

/// A request head: `method target`, Host, then `headers` in order.
pub fn head(method: &str, target: &str, host: &str, headers: &[(String, String)]) -> String {
    let mut h = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n");
    for (k, v) in headers {
        h += &format!("{k}: {v}\r\n");
    }
    h + "\r\n"
}

/// Owned header pairs.
pub fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// The proxy toward `origin` (often a [`Relay`]), with its `Config` edited by
/// `tweak` (for what the environment cannot say, such as sub-second timeouts).
pub async fn start_proxy_to(
    origin: SocketAddr,
    tweak: impl FnOnce(&mut Config),
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let mut config = Config::from_vars(base_vars(origin)).expect("valid config");
    tweak(&mut config);
    start_proxy_config(config).await
}

/// The proxy with a ready `Config`, on the current runtime.
pub async fn start_proxy_config(config: Config) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    serve_state(AppState::new(config)).await
}

/// What a [`Relay`] does to a connection once a request on it contains its
/// marker (from then on, for that connection).
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Forward the request, hold the response until [`Relay::release`].
    Stall,
    /// Forward the response head and `after` body bytes, wait until the proxy
    /// has read them, then close toward the proxy: with a reset (`reset`) or
    /// a FIN. `chunked` turns a Content-Length response into chunked framing.
    Cut { after: usize, chunked: bool, reset: bool },
}

/// How a relayed connection ended.
enum End {
    ProxyGone,
    OriginGone,
    Cut(tokio::net::tcp::OwnedWriteHalf, bool),
}

/// A TCP relay between the proxy and the origin that counts connections,
/// records what the proxy sends, sees the proxy close, and injects faults.
pub struct Relay {
    pub addr: SocketAddr,
    pub accepted: Arc<std::sync::atomic::AtomicUsize>,
    /// Connections the proxy closed (its side read EOF or an error).
    pub closed_by_proxy: Arc<std::sync::atomic::AtomicUsize>,
    /// Responses held back by [`Fault::Stall`].
    pub stalled: Arc<std::sync::atomic::AtomicUsize>,
    /// Bytes sent toward the proxy, per connection in accept order.
    pub sent_down: Arc<std::sync::Mutex<Vec<usize>>>,
    /// Every byte the proxy sent toward the origin.
    pub upstream: Arc<std::sync::Mutex<Vec<u8>>>,
    release: tokio::sync::watch::Sender<bool>,
}

impl Relay {
    pub async fn start(to: SocketAddr, rule: Option<(&'static str, Fault)>) -> Self {
        use std::sync::atomic::Ordering::SeqCst;
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (release, released) = tokio::sync::watch::channel(false);
        let relay = Self {
            addr: l.local_addr().unwrap(),
            accepted: Arc::default(),
            closed_by_proxy: Arc::default(),
            stalled: Arc::default(),
            sent_down: Arc::default(),
            upstream: Arc::default(),
            release,
        };
        let (accepted, closed, stalled, sent_down, upstream) = (
            relay.accepted.clone(),
            relay.closed_by_proxy.clone(),
            relay.stalled.clone(),
            relay.sent_down.clone(),
            relay.upstream.clone(),
        );
        tokio::spawn(async move {
            while let Ok((inbound, _)) = l.accept().await {
                let idx = accepted.fetch_add(1, SeqCst);
                sent_down.lock().unwrap().push(0);
                let Ok(outbound) = TcpStream::connect(to).await else { continue };
                let (closed, stalled, sent_down, upstream) =
                    (closed.clone(), stalled.clone(), sent_down.clone(), upstream.clone());
                let mut released = released.clone();
                tokio::spawn(async move {
                    let triggered = std::sync::atomic::AtomicBool::new(false);
                    let (mut ir, mut iw) = inbound.into_split();
                    let (mut or, mut ow) = outbound.into_split();
                    let up = async {
                        let mut buf = vec![0u8; 64 << 10];
                        let mut tail: Vec<u8> = Vec::new();
                        loop {
                            let n = match ir.read(&mut buf).await {
                                Ok(0) | Err(_) => return End::ProxyGone,
                                Ok(n) => n,
                            };
                            upstream.lock().unwrap().extend_from_slice(&buf[..n]);
                            if let Some((marker, _)) = rule {
                                tail.extend_from_slice(&buf[..n]);
                                if find(&tail, marker.as_bytes()).is_some() {
                                    triggered.store(true, SeqCst);
                                }
                                let keep = tail.len().saturating_sub(marker.len());
                                tail.drain(..keep);
                            }
                            if ow.write_all(&buf[..n]).await.is_err() {
                                return End::OriginGone;
                            }
                        }
                    };
                    let down = async {
                        let mut buf = vec![0u8; 64 << 10];
                        let mut head: Vec<u8> = Vec::new();
                        let mut body_left: Option<usize> = None;
                        let mut chunked = false;
                        let mut reset = false;
                        loop {
                            let n = match or.read(&mut buf).await {
                                Ok(0) | Err(_) => return End::OriginGone,
                                Ok(n) => n,
                            };
                            let mut out = buf[..n].to_vec();
                            match rule {
                                Some((_, Fault::Stall)) if triggered.load(SeqCst) && !*released.borrow() => {
                                    stalled.fetch_add(1, SeqCst);
                                    let _ = released.wait_for(|r| *r).await;
                                }
                                Some((_, Fault::Cut { after, chunked: c, reset: r }))
                                    if triggered.load(SeqCst) && body_left.is_none() =>
                                {
                                    head.extend_from_slice(&out);
                                    let Some(pos) = find(&head, b"\r\n\r\n") else { continue };
                                    let body = head.split_off(pos + 4);
                                    let mut h = String::from_utf8_lossy(&head).into_owned();
                                    if c {
                                        h = h
                                            .split("\r\n")
                                            .map(|l| {
                                                if l.to_ascii_lowercase().starts_with("content-length:") {
                                                    "transfer-encoding: chunked"
                                                } else {
                                                    l
                                                }
                                            })
                                            .collect::<Vec<_>>()
                                            .join("\r\n");
                                    }
                                    if iw.write_all(h.as_bytes()).await.is_err() {
                                        return End::ProxyGone;
                                    }
                                    (body_left, chunked, reset) = (Some(after), c, r);
                                    out = body;
                                }
                                _ => {}
                            }
                            if let Some(left) = body_left.as_mut() {
                                out.truncate(*left);
                                *left -= out.len();
                                if chunked && !out.is_empty() {
                                    let mut framed = format!("{:x}\r\n", out.len()).into_bytes();
                                    framed.extend_from_slice(&out);
                                    framed.extend_from_slice(b"\r\n");
                                    out = framed;
                                }
                            }
                            if iw.write_all(&out).await.is_err() {
                                return End::ProxyGone;
                            }
                            sent_down.lock().unwrap()[idx] += out.len();
                            if body_left == Some(0) {
                                // Let the proxy read what it got, then cut.
                                tokio::time::sleep(Duration::from_millis(300)).await;
                                if reset {
                                    let _ = iw.as_ref().set_zero_linger();
                                }
                                return End::Cut(iw, reset);
                            }
                        }
                    };
                    // Whichever side notices first: a reset fails both the
                    // read and the write toward the proxy.
                    let end = tokio::select! {
                        e = up => e,
                        e = down => e,
                    };
                    match end {
                        End::ProxyGone => {
                            closed.fetch_add(1, SeqCst);
                        }
                        // A reset must not be preceded by the FIN that
                        // dropping a write half sends: forget it, and the
                        // socket closes (with RST) with its read half.
                        End::Cut(iw, true) => iw.forget(),
                        End::Cut(_, false) | End::OriginGone => {}
                    }
                });
            }
        });
        relay
    }

    /// Lets stalled responses go on.
    pub fn release(&self) {
        let _ = self.release.send(true);
    }

    pub fn count(n: &std::sync::atomic::AtomicUsize) -> usize {
        n.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Waits until `cond` holds, up to `limit`; says whether it did.
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// A header-signed request head for the proxy at `addr` (aws-sigv4 signs it).
pub fn signed_head(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    payload_hash: &str,
    content_length: Option<usize>,
) -> String {
    let hs = sign_headers(method, &addr.to_string(), path, extra, payload_hash, (CAK, CSK), SystemTime::now());
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in &hs {
        head += &format!("{k}: {v}\r\n");
    }
    for (k, v) in extra {
        head += &format!("{k}: {v}\r\n");
    }
    if let Some(n) = content_length {
        head += &format!("Content-Length: {n}\r\n");
    }
    head + "\r\n"
}

/// Sets (or replaces) `name` in an environment list.
pub fn set_var(vars: &mut Vec<(String, String)>, name: &str, value: &str) {
    vars.retain(|(k, _)| k != name);
    vars.push((name.to_string(), value.to_string()));
}

/// A DNS resolver that answers 127.0.0.1 for every name, for the SDK (through
/// aws-smithy-http-client) and for reqwest: the vanity-domain tests need
/// `bkt.s3.vanity.test` to reach the proxy without an /etc/hosts entry.
/// It records the names it was asked for.
#[derive(Clone, Debug, Default)]
pub struct Loopback(pub Arc<std::sync::Mutex<Vec<String>>>);

impl aws_smithy_runtime_api::client::dns::ResolveDns for Loopback {
    fn resolve_dns<'a>(&'a self, name: &'a str) -> aws_smithy_runtime_api::client::dns::DnsFuture<'a> {
        self.0.lock().unwrap().push(name.to_string());
        aws_smithy_runtime_api::client::dns::DnsFuture::ready(Ok(vec![std::net::Ipv4Addr::LOCALHOST.into()]))
    }
}

impl reqwest::dns::Resolve for Loopback {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        self.0.lock().unwrap().push(name.as_str().to_string());
        let addrs: reqwest::dns::Addrs = Box::new(std::iter::once(SocketAddr::from(([127, 0, 0, 1], 0))));
        Box::pin(std::future::ready(Ok(addrs)))
    }
}

/// A reqwest client whose every name resolves to 127.0.0.1.
pub fn loopback_http() -> reqwest::Client {
    reqwest::Client::builder().dns_resolver(Arc::new(Loopback::default())).build().unwrap()
}

/// The URIs an SDK client sent its requests to, in order (an interceptor
/// records them just before they go out).
#[derive(Clone, Debug, Default)]
pub struct Uris(pub Arc<std::sync::Mutex<Vec<String>>>);

impl Uris {
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl aws_sdk_s3::config::Intercept for Uris {
    fn name(&self) -> &'static str {
        "Uris"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_s3::config::RuntimeComponents,
        _: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        self.0.lock().unwrap().push(context.request().uri().to_string());
        Ok(())
    }
}

/// An SDK client for `endpoint` (a name such as `http://s3.vanity.test:PORT`)
/// whose every name resolves to 127.0.0.1, in the SDK's default (virtual-
/// hosted) addressing unless `path_style`; with the URIs it sent to.
pub fn loopback_client(endpoint: &str, (ak, sk): (&str, &str), path_style: bool) -> (aws_sdk_s3::Client, Uris) {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .build_with_resolver(Loopback::default());
    let uris = Uris::default();
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(ak, sk, None, None, "test"))
        .force_path_style(path_style)
        .http_client(http)
        .interceptor(uris.clone())
        .build();
    (aws_sdk_s3::Client::from_conf(conf), uris)
}

/// One request head a [`Relay`] passed toward the origin.
#[derive(Debug, Clone)]
pub struct SeenHead {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
}

impl SeenHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn host(&self) -> &str {
        self.header("host").unwrap_or("")
    }
}

/// The request heads in what a [`Relay`] recorded upstream, read as one
/// HTTP/1.1 stream (each body skipped by its Content-Length or chunked
/// framing): right for requests sent one after another, as the tests do.
pub fn seen_heads(relay: &Relay) -> Vec<SeenHead> {
    let bytes = relay.upstream.lock().unwrap().clone();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(end) = find(&bytes[at..], b"\r\n\r\n") {
        let text = String::from_utf8_lossy(&bytes[at..at + end]).into_owned();
        at += end + 4;
        let mut lines = text.split("\r\n");
        let mut line = lines.next().unwrap_or("").splitn(3, ' ');
        let (method, target) = (line.next().unwrap_or("").to_string(), line.next().unwrap_or("").to_string());
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string())))
            .collect();
        let seen = SeenHead { method, target, headers };
        if seen.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            // Chunk sizes up to the zero chunk, then the (empty) trailer section.
            while let Some(eol) = find(&bytes[at..], b"\r\n") {
                let size_text = String::from_utf8_lossy(&bytes[at..at + eol]).into_owned();
                let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
                at += eol + 2;
                if size == 0 {
                    at += find(&bytes[at..], b"\r\n").map_or(0, |e| e + 2);
                    break;
                }
                at = (at + size + 2).min(bytes.len());
            }
        } else {
            at = (at + seen.header("content-length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0))
                .min(bytes.len());
        }
        out.push(seen);
    }
    out
}

/// A SigV2 signer written from the AWS documentation, independent of
/// `src/sigv2.rs`, for the tests that sign V2 requests themselves.
pub mod v2 {
    use base64::Engine as _;
    use hmac::{Hmac, Mac};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc2822;

    pub fn sign(secret: &str, sts: &str) -> String {
        let mut m = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
        m.update(sts.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
    }

    pub fn http_date(t: OffsetDateTime) -> String {
        t.format(&Rfc2822).unwrap()
    }

    pub fn now() -> String {
        http_date(OffsetDateTime::now_utc())
    }

    pub fn expires_in(secs: i64) -> i64 {
        OffsetDateTime::now_utc().unix_timestamp() + secs
    }

    pub fn enc(s: &str) -> String {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    }

    /// The string to sign of a header-signed request: Content-MD5,
    /// Content-Type and `date` lines, the `x-amz-*` headers (lower case,
    /// sorted), then `resource` (the path plus sub-resources as signed).
    pub fn header_string_to_sign(method: &str, headers: &[(&str, &str)], date: &str, resource: &str) -> String {
        let get = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map_or("", |(_, v)| *v);
        let mut amz: Vec<(String, &str)> = headers
            .iter()
            .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-amz-"))
            .map(|(k, v)| (k.to_ascii_lowercase(), *v))
            .collect();
        amz.sort();
        let amz: String = amz.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        format!("{method}\n{}\n{}\n{date}\n{amz}{resource}", get("content-md5"), get("content-type"))
    }
}

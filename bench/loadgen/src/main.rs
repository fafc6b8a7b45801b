//! Load generator for bench/run.sh. Every request is SigV4 header-signed (the
//! aws-sigv4 crate) for the host it is sent to; a signature is reused for up to
//! RESIGN_EVERY and then made again, so signing costs the client next to nothing
//! while every request carries a signature the proxy accepts (15-minute skew).
//! Origins that ignore auth (nginx, the sink) get the same signed headers.
//!
//!   loadgen small --url URL --ak AK --sk SK --concurrency N --duration SECS [--warmup SECS]
//!       GETs URL on N keep-alive connections for SECS. JSON: requests, errors, rps, p50/p99 (µs).
//!   loadgen get --url URL --ak AK --sk SK --parallel N --duration SECS
//!       N parallel GETs of a big object, each worker repeating whole objects until SECS
//!       have passed (at least one each). JSON: bytes, secs, mb_per_s.
//!   loadgen put --url URL_WITH_{i} --ak AK --sk SK --size BYTES --parallel N --duration SECS
//!       The same for PUT, `{i}` in the URL replaced by the worker index; the body is a
//!       fixed pseudo-random pattern, x-amz-content-sha256 its hex SHA-256.
//!   loadgen sink --listen ADDR
//!       The fast origin for PUT: reads and discards each request body, then 200.
//!
//! Every loop is bounded: --max-secs (default 120) aborts the whole run.

#[path = "../../../tests/support/s3_signing.rs"]
mod s3_signing;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const RESIGN_EVERY: Duration = Duration::from_secs(60);
const PATTERN_LEN: usize = 1 << 20;

// ------------------------------------------------------------------ args

struct Args(Vec<String>);

impl Args {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().position(|a| a == name).and_then(|i| self.0.get(i + 1)).map(String::as_str)
    }
    fn req(&self, name: &str) -> &str {
        self.get(name).unwrap_or_else(|| die(&format!("missing {name}")))
    }
    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> T {
        self.get(name).map_or(default, |v| v.parse().unwrap_or_else(|_| die(&format!("bad {name}"))))
    }
}

fn die(msg: &str) -> ! {
    eprintln!("loadgen: {msg}");
    std::process::exit(2)
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let cmd = argv.first().cloned().unwrap_or_default();
    let args = Args(argv);
    let threads: usize = args.num("--threads", std::thread::available_parallelism().map_or(2, |n| n.get()));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().unwrap();
    let max = Duration::from_secs_f64(args.num("--max-secs", 120.0));
    let result = rt.block_on(async {
        let work = async {
            match cmd.as_str() {
                "small" => small(&args).await,
                "get" => big_get(&args).await,
                "put" => big_put(&args).await,
                "sink" => sink(&args).await,
                _ => die("usage: loadgen small|get|put|sink …"),
            }
        };
        if cmd == "sink" {
            work.await
        } else {
            tokio::time::timeout(max, work).await.unwrap_or_else(|_| Err("--max-secs exceeded".into()))
        }
    });
    match result {
        Ok(json) => println!("{json}"),
        Err(e) => die(&e.to_string()),
    }
    rt.shutdown_timeout(Duration::from_millis(100));
}

// ------------------------------------------------------------------ signing

#[derive(Clone)]
struct Target {
    uri: Uri,
    addr: SocketAddr,
    host: String,
    ak: String,
    sk: String,
}

impl Target {
    fn new(url: &str, ak: &str, sk: &str) -> Result<Self, BoxError> {
        let uri: Uri = url.parse()?;
        let host = uri.authority().ok_or("URL without host")?.as_str().to_owned();
        let addr: SocketAddr = host.parse().map_err(|_| "the URL's host must be IP:PORT")?;
        Ok(Self { uri, addr, host, ak: ak.into(), sk: sk.into() })
    }

    /// SigV4 headers (authorization, x-amz-date, x-amz-content-sha256) for `method` on this URL.
    fn sign(&self, method: &str, payload_hash: &str) -> HeaderMap {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, sign};
        let identity = aws_credential_types::Credentials::new(&self.ak, &self.sk, None, None, "loadgen").into();
        let params = s3_signing::s3_params(&identity, "us-east-1", SystemTime::now(), s3_signing::Location::Headers);
        let url = self.uri.to_string();
        let req = SignableRequest::new(
            method,
            url,
            [("host", self.host.as_str())].into_iter(),
            SignableBody::Precomputed(payload_hash.to_owned()),
        )
        .unwrap();
        let (instr, _) = sign(req, &params).unwrap().into_parts();
        let (hs, _) = instr.into_parts();
        let mut out = HeaderMap::new();
        out.insert(http::header::HOST, HeaderValue::from_str(&self.host).unwrap());
        for h in hs {
            out.insert(HeaderName::from_bytes(h.name().as_bytes()).unwrap(), HeaderValue::from_str(h.value()).unwrap());
        }
        out
    }
}

/// A signed header set, re-made every RESIGN_EVERY.
struct Signed {
    headers: HeaderMap,
    at: Instant,
}

impl Signed {
    fn new(t: &Target, method: &str, payload: &str) -> Self {
        Self { headers: t.sign(method, payload), at: Instant::now() }
    }
    fn refresh(&mut self, t: &Target, method: &str, payload: &str) -> &HeaderMap {
        if self.at.elapsed() > RESIGN_EVERY {
            *self = Self::new(t, method, payload);
        }
        &self.headers
    }
}

// ------------------------------------------------------------------ client connection

type ReqBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

struct Conn {
    sender: hyper::client::conn::http1::SendRequest<ReqBody>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Result<Self, BoxError> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        let (sender, conn) =
            hyper::client::conn::http1::Builder::new().max_buf_size(1 << 20).handshake(TokioIo::new(s)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self { sender })
    }

    /// Sends one request and reads the whole response body. Returns (status, body bytes).
    async fn exchange(
        &mut self,
        method: Method,
        t: &Target,
        headers: &HeaderMap,
        body: ReqBody,
    ) -> Result<(u16, u64), BoxError> {
        let mut req = Request::new(body);
        *req.method_mut() = method;
        *req.uri_mut() = Uri::try_from(t.uri.path_and_query().map_or("/", |p| p.as_str()))?;
        *req.headers_mut() = headers.clone();
        self.sender.ready().await?;
        let resp = self.sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let mut n = 0u64;
        while let Some(f) = body.frame().await {
            if let Ok(d) = f?.into_data() {
                n += d.len() as u64;
            }
        }
        Ok((status, n))
    }
}

fn empty() -> ReqBody {
    http_body_util::Empty::new().boxed()
}

// ------------------------------------------------------------------ small GETs

async fn small(a: &Args) -> Result<String, BoxError> {
    let t = Target::new(a.req("--url"), a.req("--ak"), a.req("--sk"))?;
    let conc: usize = a.num("--concurrency", 16);
    let dur = Duration::from_secs_f64(a.num("--duration", 10.0));
    let warm = Duration::from_secs_f64(a.num("--warmup", 0.0));
    let mut warmup_requests = 0;
    if !warm.is_zero() {
        warmup_requests = run_small(&t, conc, warm).await?.0.len();
    }
    let (lat, errors, secs) = run_small(&t, conc, dur).await?;
    let mut lat = lat;
    lat.sort_unstable();
    let pct = |p: f64| -> u64 {
        if lat.is_empty() {
            return 0;
        }
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        u64::from(lat[i])
    };
    let n = lat.len();
    Ok(format!(
        "{{\"requests\":{n},\"warmup_requests\":{warmup_requests},\"errors\":{errors},\"secs\":{secs:.4},\"rps\":{:.1},\"p50_us\":{},\"p90_us\":{},\"p99_us\":{},\"p999_us\":{},\"max_us\":{}}}",
        n as f64 / secs,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        lat.last().copied().unwrap_or(0)
    ))
}

/// Latencies (µs) of the successful requests, the error count, the elapsed seconds.
async fn run_small(t: &Target, conc: usize, dur: Duration) -> Result<(Vec<u32>, u64, f64), BoxError> {
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + dur;
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let t = t.clone();
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat: Vec<u32> = Vec::with_capacity(1 << 16);
            let mut signed = Signed::new(&t, "GET", EMPTY_SHA256);
            let mut conn: Option<Conn> = None;
            while Instant::now() < deadline {
                if conn.is_none() {
                    match Conn::open(t.addr).await {
                        Ok(c) => conn = Some(c),
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                    }
                }
                let c = conn.as_mut().unwrap();
                let h = signed.refresh(&t, "GET", EMPTY_SHA256);
                let t0 = Instant::now();
                match c.exchange(Method::GET, &t, h, empty()).await {
                    Ok((s, _)) if (200..300).contains(&s) => {
                        lat.push(t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32)
                    }
                    Ok(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        conn = None;
                    }
                }
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await?);
    }
    let secs = start.elapsed().as_secs_f64();
    Ok((all, errors.load(Ordering::Relaxed), secs))
}

// ------------------------------------------------------------------ big transfers

fn pattern() -> Bytes {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut v = Vec::with_capacity(PATTERN_LEN);
    while v.len() < PATTERN_LEN {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    Bytes::from(v)
}

/// A body of `len` bytes: the pattern repeated, in 1 MiB frames (shared, no copies).
struct PatternBody {
    pattern: Bytes,
    left: u64,
}

impl Body for PatternBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(self.pattern.len() as u64) as usize;
        self.left -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(self.pattern.slice(..n)))))
    }
    fn is_end_stream(&self) -> bool {
        self.left == 0
    }
    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

fn pattern_sha256(p: &Bytes, len: u64) -> String {
    let mut h = Sha256::new();
    let mut left = len;
    while left > 0 {
        let n = left.min(p.len() as u64) as usize;
        h.update(&p[..n]);
        left -= n as u64;
    }
    hex::encode(h.finalize())
}

struct BigResult {
    bytes: u64,
    objects: u64,
    errors: u64,
    secs: f64,
    first_error: Option<String>,
}

impl BigResult {
    fn json(&self) -> String {
        let err = self.first_error.as_deref().unwrap_or("").replace(['"', '\\', '\n'], " ");
        format!(
            "{{\"bytes\":{},\"objects\":{},\"errors\":{},\"secs\":{:.4},\"mb_per_s\":{:.2},\"first_error\":\"{err}\"}}",
            self.bytes,
            self.objects,
            self.errors,
            self.secs,
            self.bytes as f64 / 1e6 / self.secs
        )
    }
}

async fn big(a: &Args, put: bool) -> Result<String, BoxError> {
    let url = a.req("--url").to_owned();
    let (ak, sk) = (a.req("--ak").to_owned(), a.req("--sk").to_owned());
    let parallel: usize = a.num("--parallel", 1);
    let dur = Duration::from_secs_f64(a.num("--duration", 0.0));
    let size: u64 = a.num("--size", 0);
    let pat = pattern();
    let payload = if put { pattern_sha256(&pat, size) } else { EMPTY_SHA256.to_owned() };
    let start = Instant::now();
    let deadline = start + dur;
    let mut tasks = Vec::new();
    for i in 0..parallel {
        let t = Target::new(&url.replace("{i}", &i.to_string()), &ak, &sk)?;
        let (pat, payload) = (pat.clone(), payload.clone());
        tasks.push(tokio::spawn(async move {
            let method = if put { "PUT" } else { "GET" };
            let mut signed = Signed::new(&t, method, &payload);
            let (mut bytes, mut objects, mut errors, mut first_error) = (0u64, 0u64, 0u64, None::<String>);
            let mut conn: Option<Conn> = None;
            loop {
                if conn.is_none() {
                    conn = match Conn::open(t.addr).await {
                        Ok(c) => Some(c),
                        Err(e) => {
                            errors += 1;
                            first_error.get_or_insert(e.to_string());
                            break;
                        }
                    };
                }
                let c = conn.as_mut().unwrap();
                let mut h = signed.refresh(&t, method, &payload).clone();
                let (m, body) = if put {
                    h.insert(http::header::CONTENT_LENGTH, HeaderValue::from(size));
                    (Method::PUT, PatternBody { pattern: pat.clone(), left: size }.boxed())
                } else {
                    (Method::GET, empty())
                };
                match c.exchange(m, &t, &h, body).await {
                    Ok((s, n)) if (200..300).contains(&s) => {
                        bytes += if put { size } else { n };
                        objects += 1;
                    }
                    Ok((s, _)) => {
                        errors += 1;
                        first_error.get_or_insert(format!("HTTP {s}"));
                        conn = None;
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e.to_string());
                        conn = None;
                    }
                }
                if Instant::now() >= deadline || errors > 3 {
                    break;
                }
            }
            (bytes, objects, errors, first_error)
        }));
    }
    let mut r = BigResult { bytes: 0, objects: 0, errors: 0, secs: 0.0, first_error: None };
    for task in tasks {
        let (b, o, e, fe) = task.await?;
        r.bytes += b;
        r.objects += o;
        r.errors += e;
        if r.first_error.is_none() {
            r.first_error = fe;
        }
    }
    r.secs = start.elapsed().as_secs_f64();
    Ok(r.json())
}

async fn big_get(a: &Args) -> Result<String, BoxError> {
    big(a, false).await
}

async fn big_put(a: &Args) -> Result<String, BoxError> {
    big(a, true).await
}

// ------------------------------------------------------------------ the PUT sink

async fn sink(a: &Args) -> Result<String, BoxError> {
    use hyper::service::service_fn;
    let listener = tokio::net::TcpListener::bind(a.req("--listen")).await?;
    eprintln!("sink on {}", listener.local_addr()?);
    loop {
        let (s, _) = listener.accept().await?;
        let _ = s.set_nodelay(true);
        tokio::spawn(async move {
            let svc = service_fn(|req: Request<hyper::body::Incoming>| async move {
                let is_put = req.method() == Method::PUT || req.method() == Method::POST;
                let mut body = req.into_body();
                let mut n = 0u64;
                while let Some(f) = body.frame().await {
                    match f {
                        Ok(f) => {
                            if let Ok(d) = f.into_data() {
                                n += d.len() as u64;
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
                let mut resp = http::Response::new(http_body_util::Full::new(Bytes::new()));
                if !is_put {
                    // GET/HEAD of anything (the proxy's health probe is a HEAD).
                    *resp.status_mut() = http::StatusCode::OK;
                }
                resp.headers_mut().insert("etag", HeaderValue::from_str(&format!("\"{n:032x}\"")).unwrap());
                Ok::<_, hyper::Error>(resp)
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(s), svc).await;
        });
    }
}

//! # s3-resign-proxy
//!
//! Serves an S3 origin under a domain of your choice. Clients sign for the
//! proxy's host with the CLIENT credentials; the proxy verifies that signature,
//! signs the request again for ORIGIN_DOMAIN with the ORIGIN credentials, and
//! streams the request and the response through.
//!
//! ## Data flow
//!
//! ```text
//! request in ──► verify ──► canonicalize ──► re-sign ──► forward ──► stream back
//!   (axum)     verify.rs     sigv4/          resign.rs   forward.rs   (body as is)
//!              └─ VerifiedRequest (proof) ─┘
//! ```
//!
//! 1. [`verify::verify`] parses the `Authorization` header or the presigned
//!    query, checks key, date, skew/expiry and signature, and returns a
//!    [`verify::VerifiedRequest`]. No body byte has been read yet.
//! 2. [`resign::Signer::resign`] turns it into an origin request: the same
//!    path and query, the client's signed headers (less hop-by-hop ones) plus
//!    `host`, `x-amz-date`, `x-amz-content-sha256`, signed with the origin key.
//! 3. [`forward::Forwarder::send`] streams the body (checking a hex payload
//!    hash on the way) and the response back.
//!
//! [`sigv4`] is the pure core: no HTTP stack, no clock.

pub mod chunked;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod error;
pub mod forward;
pub mod intake;
pub mod resign;
pub mod server;
pub mod sigv2;
pub mod sigv4;
pub mod verify;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use time::OffsetDateTime;
use tokio::net::TcpListener;

use config::Config;
use error::Error;
use forward::{ChunkErrors, DataStream, Failure, Forwarder, OutBody, Progress, ProxyBody, Sha256Check, SharedBody};
use resign::Signer;
use sigv4::{KeyCache, PayloadHash};
use verify::{VerifyContext, has_auth, verify};

/// The clock, injected so tests can move time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

struct Inner {
    config: Config,
    client_keys: KeyCache,
    origin_keys: KeyCache,
    forwarder: Forwarder,
    clock: Arc<dyn Clock>,
}

/// Shared state: configuration, key caches, the one pooled origin client.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    pub fn new(config: Config) -> Self {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    pub fn with_clock(config: Config, clock: Arc<dyn Clock>) -> Self {
        Self(Arc::new(Inner {
            client_keys: KeyCache::new(config.client_secret_key.expose().as_bytes()),
            origin_keys: KeyCache::new(config.origin_secret_key.expose().as_bytes()),
            forwarder: Forwarder::new(&config.origin, config.connect_timeout, config.read_timeout),
            config,
            clock,
        }))
    }

    fn signer(&self) -> Signer<'_> {
        let c = &self.0.config;
        Signer { origin: &c.origin, access_key: &c.origin_access_key, keys: &self.0.origin_keys, region: &c.region }
    }
}

/// The router: every path goes to the proxy handler (`/healthz` included, since
/// a signed request for it is an S3 request for bucket `healthz`).
pub fn app(state: AppState) -> Router {
    Router::new().fallback(|State(state): State<AppState>, req: Request| handle(state, req)).with_state(state)
}

/// Serves the proxy on `listener`, on the caller's runtime, until `shutdown`
/// resolves; then lets in-flight requests finish. The binary uses
/// [`server::serve`] (one single-threaded runtime per core) instead.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::run_here(listener, state, shutdown).await
}

/// A request id for responses that lack the origin's: unique per process
/// run, 16 hex digits, formatted without allocating.
fn request_id() -> HeaderValue {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        let t = OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
        t ^ u64::from(std::process::id()).rotate_left(32)
    });
    let id = seed.wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut hex = [0u8; 16];
    for (i, b) in hex.iter_mut().enumerate() {
        *b = b"0123456789ABCDEF"[(id >> (60 - 4 * i)) as usize & 0xF];
    }
    HeaderValue::from_bytes(&hex).unwrap_or(HeaderValue::from_static("0"))
}

/// One request, whatever its body type (hyper's `Incoming` from the server,
/// axum's `Body` through [`app`]).
pub(crate) async fn handle<B>(state: AppState, req: http::Request<B>) -> Response<ProxyBody>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<forward::BoxError>,
{
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let head = parts.method == Method::HEAD;
    if parts.uri.path() == "/healthz"
        && (parts.method == Method::GET || head)
        && !has_auth(&parts.headers, parts.uri.query())
    {
        return healthz(&state, head).await.map(ProxyBody::from);
    }
    // Only a request with a body pays for the shared handle on it.
    let len = content_length(&parts.headers);
    let has_body = len.is_some_and(|l| l > 0) || parts.headers.contains_key(header::TRANSFER_ENCODING);
    let body = has_body.then(|| SharedBody::new(Body::new(body), Failure::default()));
    // Refused before any signature is looked at: not an S3 method, over a
    // limit, or ambiguous.
    let result = match intake::check_method(&parts.method).and_then(|()| intake::check(&parts.uri, &parts.headers)) {
        Ok(()) => proxy(&state, &parts, len, body.clone()).await,
        Err(e) => Err((e, false)),
    };
    let mut resp = match result {
        Ok(r) => r,
        Err((e, body_started)) => {
            let rid = request_id();
            let rid_str = rid.to_str().unwrap_or("0");
            tracing::info!(method = %parts.method, path = parts.uri.path(), request_id = rid_str, error = %e, "rejected");
            if let Some(body) = body {
                drain(&parts.headers, body, body_started).await;
            }
            e.into_response(rid_str, head).map(ProxyBody::from)
        }
    };
    resp.headers_mut().entry("x-amz-request-id").or_insert_with(request_id);
    tracing::debug!(method = %parts.method, status = resp.status().as_u16(), elapsed_us = started.elapsed().as_micros() as u64, "proxied");
    resp
}

/// verify → re-sign → forward. An error says whether the body was already
/// being read (so a `100 Continue` may have gone out).
async fn proxy(
    state: &AppState,
    parts: &http::request::Parts,
    len: Option<u64>,
    body: Option<SharedBody>,
) -> Result<Response<ProxyBody>, (Error, bool)> {
    let cfg = &state.0.config;
    let now = state.0.clock.now();
    let ctx = VerifyContext {
        access_key: &cfg.client_access_key,
        secret: cfg.client_secret_key.expose().as_bytes(),
        keys: &state.0.client_keys,
        now,
        max_skew: cfg.max_clock_skew,
    };
    let verified = verify(&parts.method, &parts.uri, &parts.headers, &ctx).map_err(|e| (e, false))?;
    let out = state.signer().resign(&verified, &parts.method, &parts.headers, now).map_err(|e| (e, false))?;
    let failure = body.as_ref().map(|b| b.failure.clone());
    let has_body = body.is_some();
    let out_body = match body {
        Some(body) => {
            let failure = body.failure.clone();
            let stream: DataStream = match verified.payload() {
                PayloadHash::Sha256(h) => Box::pin(Sha256Check::new(body, h, failure)),
                PayloadHash::Unsigned => Box::pin(body),
                PayloadHash::StreamingSigned
                | PayloadHash::StreamingSignedTrailer
                | PayloadHash::StreamingUnsignedTrailer => {
                    Box::pin(ChunkErrors::new(chunk_rewriter(&verified, &out, &parts.headers, body), failure))
                }
                PayloadHash::StreamingEcdsa => {
                    return Err((Error::InvalidArgument("SigV4a streaming payloads are not supported".into()), false));
                }
            };
            OutBody::new(stream, len, Progress::new())
        }
        None => OutBody::empty(),
    };
    let resp = state.0.forwarder.send(out, out_body, failure.as_ref()).await.map_err(|e| (e, has_body))?;
    let (mut rparts, rbody) = resp.into_parts();
    forward::strip_hop_by_hop(&mut rparts.headers);
    let body = screen_origin_error(&rparts, rbody, parts.method == Method::HEAD).await.map_err(|e| (e, has_body))?;
    Ok(Response::from_parts(rparts, body))
}

/// Origin error codes that are about the proxy's own signature or
/// credentials, never the client's: the client must not see them, since
/// such a body (AWS S3's) carries the origin key id, the proxy's canonical
/// request and string to sign.
const ORIGIN_AUTH_CODES: [&str; 10] = [
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "AuthorizationHeaderMalformed",
    "AuthorizationQueryParametersError",
    "RequestTimeTooSkewed",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "InvalidSecurity",
    "MissingSecurityHeader",
];

/// How much of an origin 400/401/403 body is read to find its code.
const ORIGIN_ERROR_PEEK: usize = 64 << 10;

/// An origin auth error (one of [`ORIGIN_AUTH_CODES`]) becomes the proxy's
/// own [`Error::OriginRefused`], its body logged at debug; every other
/// response streams through as it came (a 4xx body read to find its code is
/// sent first, then the rest).
async fn screen_origin_error(
    parts: &http::response::Parts,
    body: forward::OriginBody,
    head: bool,
) -> Result<ProxyBody, Error> {
    use http_body_util::BodyExt;
    if head || !matches!(parts.status.as_u16(), 400 | 401 | 403) {
        return Ok(ProxyBody::Origin { body });
    }
    // Boxed to be read here and moved on after: only 4xx bodies pay for it.
    let mut body = Box::pin(body);
    let mut seen = bytes::BytesMut::new();
    let complete = loop {
        if seen.len() > ORIGIN_ERROR_PEEK {
            break false;
        }
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    seen.extend_from_slice(&data);
                }
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "origin error body failed");
                return Err(Error::OriginUnreachable("The connection to the origin failed".into()));
            }
            None => break true,
        }
    };
    let text = String::from_utf8_lossy(&seen);
    let code = text.split_once("<Code>").and_then(|(_, rest)| rest.split_once("</Code>")).map(|(c, _)| c.trim());
    if let Some(code) = code.filter(|c| ORIGIN_AUTH_CODES.contains(c)) {
        tracing::warn!(status = parts.status.as_u16(), code, "the origin refused the proxy's signature");
        tracing::debug!(origin_body = %text, "origin auth error body");
        return Err(Error::OriginRefused(
            "The origin refused the proxy's signature or credentials; the proxy's log has the details".into(),
        ));
    }
    let prefix = seen.freeze();
    Ok(if complete { ProxyBody::from(Body::from(prefix)) } else { ProxyBody::Prefixed { prefix: Some(prefix), body } })
}

/// The aws-chunked codec for the request's mode: signed chunks are verified on
/// the client's chain and re-signed on the origin's; unsigned framing passes.
fn chunk_rewriter(
    verified: &verify::VerifiedRequest,
    out: &resign::OriginRequest,
    headers: &HeaderMap,
    body: SharedBody,
) -> chunked::AwsChunkedRewriter<SharedBody> {
    let mode = match verified.payload() {
        PayloadHash::StreamingSignedTrailer => chunked::Mode::SignedTrailer,
        PayloadHash::StreamingUnsignedTrailer => chunked::Mode::UnsignedTrailer,
        PayloadHash::StreamingSigned | PayloadHash::Unsigned | PayloadHash::Sha256(_) | PayloadHash::StreamingEcdsa => {
            chunked::Mode::Signed
        }
    };
    let client = verified
        .chunk_seed()
        .map(|c| chunked::ChunkChain::new(*c.signing_key.as_bytes(), c.amz_date.as_str(), &c.scope, &c.seed_signature));
    let origin = out
        .chunk_seed
        .as_ref()
        .map(|c| chunked::ChunkChain::new(*c.signing_key.as_bytes(), c.amz_date.as_str(), &c.scope, &c.seed_signature));
    let decoded = headers.get("x-amz-decoded-content-length").and_then(|v| sigv4::number::parse_decimal(v.as_bytes()));
    // Only the trailers the client declared (and signed, in `x-amz-trailer`).
    let declared = headers
        .get("x-amz-trailer")
        .map(|v| v.as_bytes().split(|&b| b == b',').map(|n| n.trim_ascii().to_ascii_lowercase()).collect())
        .unwrap_or_default();
    chunked::AwsChunkedRewriter::new(body, mode, client, origin, decoded, chunked::Limits::default())
        .with_declared_trailers(declared)
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    sigv4::number::parse_decimal(h.get(header::CONTENT_LENGTH)?.as_bytes())
}

/// A client that sends its body without waiting for `100 Continue` (or after
/// a failure mid-body) must still read our error rather than a reset: read and
/// discard the rest of the body, up to a bound.
async fn drain(headers: &HeaderMap, mut body: SharedBody, body_started: bool) {
    use futures_util::StreamExt;
    const LIMIT: u64 = 64 << 20;
    let expects_continue = headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expects_continue && !body_started {
        return; // the client waits for 100 Continue, which never comes
    }
    let mut seen = 0u64;
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(chunk)) = body.next().await {
            seen += chunk.len() as u64;
            if seen > LIMIT {
                break;
            }
        }
    })
    .await;
}

/// `GET|HEAD /healthz`: HEAD the origin's HEALTHCHECK_PATH with the origin
/// credentials. 200 `{"status":"ok"}` when the origin is up and accepts them,
/// 450 `{"status":"nok"}` otherwise (the code HAProxy configs expect).
async fn healthz(state: &AppState, head: bool) -> Response {
    let cfg = &state.0.config;
    let started = Instant::now();
    let probe = async {
        let out = state.signer().sign_probe(&cfg.healthcheck_path, state.0.clock.now())?;
        state.0.forwarder.send(out, OutBody::empty(), None).await
    };
    let origin_status = match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(Ok(resp)) => Some(resp.status()),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health probe failed");
            None
        }
        Err(_) => {
            tracing::warn!("health probe timed out");
            None
        }
    };
    let ok = origin_status.is_some_and(|s| {
        let c = s.as_u16();
        (200..500).contains(&c) && c != 401 && c != 403 || c == 501
    });
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "nok" },
        "origin_status": origin_status.map(|s| s.as_u16()),
        "latency_ms": started.elapsed().as_secs_f64() * 1000.0,
    })
    .to_string();
    let status = if ok { StatusCode::OK } else { StatusCode::from_u16(450).unwrap_or(StatusCode::SERVICE_UNAVAILABLE) };
    let mut resp = Response::new(if head { Body::empty() } else { Body::from(body) });
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

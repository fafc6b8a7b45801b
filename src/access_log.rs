//! The access log and the per-request record behind it and the metrics.
//!
//! An [`Exchange`] is made when an S3 request arrives and rides along with
//! its response body ([`AccessBody`]); when that body ends (or is dropped: the
//! client went away), it counts the request in [`crate::metrics`] and writes
//! one line at info, target `s3_resign_proxy::access_log`:
//!
//! ```text
//! 2026-12-04T10:15:02.123456Z  INFO s3_resign_proxy::access_log: request client=10.0.0.7 key_id="AKIAEXAMPLE" method="GET" bucket="photos" key="2024/cat.jpg" op="get_object" status=200 bytes_in=0 bytes_out=52311 ms=12.418 origin_status=200 origin_ms=3.9 request_id="1799A0C2E4B1F3D5" complete=true
//! ```
//!
//! The line never carries a query string (a presigned URL's signature is in
//! it), a header value other than the claimed access key id, or a body. The
//! key is the path as sent (percent-encoded).
//!
//! [`layer`] is the one formatter (text, or JSON lines with LOG_FORMAT=json)
//! for the binary ([`init`]) and the tests.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Response, Uri, header};
use http_body::{Body, Frame, SizeHint};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::registry::LookupSpan;

use crate::addressing::Addressing;
use crate::config::ConfigError;
use crate::error::{BoxError, Error};
use crate::forward::ProxyBody;
use crate::metrics::{Op, Outcome, Shard};
use crate::state::AppState;

/// LOG_FORMAT: how every log line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// tracing's human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, the event's fields at the top level.
    Json,
}

impl LogFormat {
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        match s.trim() {
            "" | "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(ConfigError("invalid LOG_FORMAT: must be text or json".into())),
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::parse(&std::env::var("LOG_FORMAT").unwrap_or_default())
    }
}

/// The formatting layer for `format`, writing to `writer`: what the binary
/// installs ([`init`]) and what the tests capture through.
pub fn layer<S, W>(format: LogFormat, ansi: bool, writer: W) -> Box<dyn Layer<S> + Send + Sync + 'static>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt::layer();
    match format {
        LogFormat::Text => fmt.with_ansi(ansi).with_writer(writer).boxed(),
        // serde_json writes each line: every line is valid JSON, whatever a
        // field holds.
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_ansi(false)
            .with_writer(writer)
            .boxed(),
    }
}

/// Keeps the binary's log writer running; dropping it flushes what is queued.
pub struct LogGuard {
    _guard: tracing_appender::non_blocking::WorkerGuard,
    dropped: tracing_appender::non_blocking::ErrorCounter,
}

impl LogGuard {
    /// Lines dropped because stderr could not keep up.
    pub fn dropped_lines(&self) -> tracing_appender::non_blocking::ErrorCounter {
        self.dropped.clone()
    }
}

/// The binary's subscriber: RUST_LOG (default `info`, the embedded s3s-fs at
/// `warn`), `format`, written to stderr by a background thread. A request
/// writes a line: a slow stderr must not stall the workers, so lines are
/// queued (up to 128k) and, past that, dropped and counted
/// (`s3rp_log_lines_dropped_total`).
pub fn init(format: LogFormat) -> LogGuard {
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,s3s=warn,s3s_fs=warn"));
    let ansi = std::io::stderr().is_terminal();
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    let dropped = writer.error_counter();
    tracing_subscriber::registry().with(filter).with(layer(format, ansi, writer)).init();
    LogGuard { _guard: guard, dropped }
}

/// The client's address: the last hop of X-Forwarded-For when the peer is a
/// trusted proxy (TRUSTED_PROXIES) that sent one, else the peer.
pub fn client_addr(addressing: &Addressing, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
    if addressing.trusts(peer) {
        let last = headers.get_all("x-forwarded-for").iter().next_back();
        let hop = last.and_then(|v| v.to_str().ok()).and_then(|v| v.rsplit(',').next()).map(str::trim);
        if let Some(ip) =
            hop.and_then(|h| h.parse::<IpAddr>().ok().or_else(|| h.parse::<SocketAddr>().ok().map(|a| a.ip())))
        {
            return Some(ip.to_canonical());
        }
    }
    peer
}

/// The access key id a refused request claims (Authorization `Credential=`
/// or `AWS key:`, or the presigned `X-Amz-Credential` / `AWSAccessKeyId`),
/// when it looks like one: 1–128 of `[A-Za-z0-9._-]`. Never anything past
/// the key id.
pub fn claimed_key_id(headers: &HeaderMap, query: Option<&str>) -> Option<Box<str>> {
    let plausible = |k: &str| {
        (1..=128).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let auth = auth.to_str().ok()?;
        let key = match auth.strip_prefix("AWS ") {
            Some(v2) => v2.split_once(':')?.0,
            None => auth.split_once("Credential=")?.1.split_once('/')?.0,
        };
        return plausible(key).then(|| key.into());
    }
    for pair in query?.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_encoding::percent_decode_str(v).decode_utf8().ok()?;
        let key = match k {
            "X-Amz-Credential" => v.split_once('/')?.0,
            "AWSAccessKeyId" => &v,
            _ => continue,
        };
        return plausible(key).then(|| key.into());
    }
    None
}

/// Whose access key a request used.
#[derive(Debug)]
enum KeyId {
    Unknown,
    /// The signature verified: this client key.
    Verified(Box<str>),
    /// Refused before (or at) verification: what it claimed.
    Claimed(Box<str>),
}

/// An address, or `-`, formatted without allocating.
struct Client(Option<IpAddr>);

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("-"),
        }
    }
}

/// Bounds what a line echoes of a path or message.
const MAX_FIELD: usize = 1024;

/// `s` bounded to [`MAX_FIELD`], or `-` when empty.
fn dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { cap(s, MAX_FIELD) }
}

fn cap(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// One S3 request, from arrival to the end of its response body.
pub struct Exchange {
    state: AppState,
    started: Instant,
    method: Method,
    uri: Uri,
    client: Option<IpAddr>,
    /// The bucket a virtual-hosted request names in its host.
    bucket: Option<Box<str>>,
    key_id: KeyId,
    /// None until a response exists (499 if none ever does).
    status: Option<u16>,
    refusal: Option<(&'static str, Box<str>)>,
    origin_status: Option<u16>,
    origin_first_byte: Option<Duration>,
    request_id: Option<HeaderValue>,
    bytes_in: Option<Arc<AtomicU64>>,
    bytes_out: u64,
    complete: bool,
}

impl Exchange {
    pub fn start(state: &AppState, peer: Option<IpAddr>, parts: &http::request::Parts) -> Self {
        state.shard().request_started();
        Self {
            client: client_addr(&state.0.config.addressing, peer, &parts.headers),
            state: state.clone(),
            started: Instant::now(),
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            bucket: None,
            key_id: KeyId::Unknown,
            status: None,
            refusal: None,
            origin_status: None,
            origin_first_byte: None,
            request_id: None,
            bytes_in: None,
            bytes_out: 0,
            complete: false,
        }
    }

    /// Counts the request body's bytes as they are read.
    pub fn count_body<B>(&mut self, body: B) -> CountedBody<B> {
        let seen = Arc::new(AtomicU64::new(0));
        self.bytes_in = Some(seen.clone());
        CountedBody { inner: body, seen, shard: self.state.shard().clone() }
    }

    /// The virtual-hosted bucket the signed host names.
    pub fn set_bucket(&mut self, bucket: Option<&str>) {
        self.bucket = bucket.map(Into::into);
    }

    /// The signature of `access_key` verified.
    pub fn verified(&mut self, access_key: &str) {
        self.key_id = KeyId::Verified(access_key.into());
    }

    /// The origin answered with `status`, `first_byte` after the request went out.
    pub fn origin_answered(&mut self, status: u16, first_byte: Duration) {
        self.origin_status = Some(status);
        self.origin_first_byte = Some(first_byte);
    }

    /// The proxy answers with its own error `e`.
    pub fn refused(&mut self, e: &Error, headers: &HeaderMap, query: Option<&str>) {
        self.refusal = Some((e.status_and_code().1, cap(&e.message(), 256).into()));
        if !matches!(self.key_id, KeyId::Verified(_))
            && let Some(k) = claimed_key_id(headers, query)
        {
            self.key_id = KeyId::Claimed(k);
        }
    }

    /// The response head is ready, with `request_id` (the `x-amz-request-id`
    /// it carries); its body carries the exchange to its end.
    pub fn respond(mut self, resp: Response<ProxyBody>, request_id: HeaderValue) -> Response<AccessBody> {
        self.status = Some(resp.status().as_u16());
        self.request_id = Some(request_id);
        resp.map(|inner| AccessBody { inner, exchange: Some(self) })
    }

    /// Bucket and key, path style from the path unless the host named the bucket.
    fn bucket_key(&self) -> (&str, &str) {
        let rest = self.uri.path().strip_prefix('/').unwrap_or(self.uri.path());
        let (b, k) = match &self.bucket {
            Some(b) => (&**b, rest),
            None => rest.split_once('/').unwrap_or((rest, "")),
        };
        (dash(b), dash(k))
    }

    fn finish(&mut self) {
        let total = self.started.elapsed();
        let status = self.status.unwrap_or(499);
        let op = Op::classify(&self.method, self.uri.path(), self.uri.query().unwrap_or(""), self.bucket.is_some());
        if tracing::enabled!(tracing::Level::INFO) {
            self.log(op, status, total);
        }
        // Last: once the in-flight gauge is down, the line is written.
        self.state.shard().request_done(&Outcome {
            method: &self.method,
            op,
            status,
            refusal: self.refusal.as_ref().map(|(c, _)| *c),
            total,
            origin_first_byte: self.origin_first_byte,
        });
    }

    fn log(&self, op: Op, status: u16, total: Duration) {
        let (bucket, key) = self.bucket_key();
        let key_id = match &self.key_id {
            KeyId::Verified(k) | KeyId::Claimed(k) => k,
            KeyId::Unknown => "-",
        };
        let ms = |d: Duration| d.as_micros() as f64 / 1000.0;
        tracing::info!(
            client = tracing::field::display(Client(self.client)),
            key_id,
            method = cap(self.method.as_str(), 32),
            bucket,
            key,
            op = op.as_str(),
            status,
            bytes_in = self.bytes_in.as_ref().map_or(0, |n| n.load(Ordering::Relaxed)),
            bytes_out = self.bytes_out,
            ms = ms(total),
            origin_status = self.origin_status,
            origin_ms = self.origin_first_byte.map(ms),
            request_id = self.request_id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-"),
            error = self.refusal.as_ref().map(|(c, _)| *c),
            reason = self.refusal.as_ref().map(|(_, m)| &**m),
            complete = self.complete,
            "request"
        );
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.finish();
    }
}

pin_project_lite::pin_project! {
    /// The response body, carrying its request's [`Exchange`] until it ends.
    pub struct AccessBody {
        #[pin]
        inner: ProxyBody,
        exchange: Option<Exchange>,
    }

    impl PinnedDrop for AccessBody {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(ex) = this.exchange.as_mut() {
                // hyper may drop a body it knows is over (HEAD, a known length) unpolled.
                ex.complete |= this.inner.is_end_stream();
            }
        }
    }
}

impl AccessBody {
    /// A response that is not an S3 request's (`/healthz`, `/metrics`).
    pub fn unlogged(inner: ProxyBody) -> Self {
        Self { inner, exchange: None }
    }
}

impl Body for AccessBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let r = ready!(this.inner.poll_frame(cx));
        if let Some(ex) = this.exchange.as_mut() {
            match &r {
                Some(Ok(f)) => {
                    if let Some(d) = f.data_ref() {
                        ex.bytes_out += d.len() as u64;
                        ex.state.shard().response_bytes(d.len() as u64);
                    }
                }
                // The end, or a failure: the exchange is over now.
                None => {
                    ex.complete = true;
                    *this.exchange = None;
                }
                Some(Err(_)) => *this.exchange = None,
            }
        }
        Poll::Ready(r)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// A request body whose data bytes are counted as they are read.
    pub struct CountedBody<B> {
        #[pin]
        inner: B,
        seen: Arc<AtomicU64>,
        shard: Arc<Shard>,
    }
}

impl<B: Body<Data = Bytes>> Body for CountedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let r = ready!(this.inner.poll_frame(cx));
        if let Some(Ok(f)) = &r
            && let Some(d) = f.data_ref()
        {
            this.seen.fetch_add(d.len() as u64, Ordering::Relaxed);
            this.shard.request_bytes(d.len() as u64);
        }
        Poll::Ready(r)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addressing::AddressingSettings;

    fn addressing(trusted: &str) -> Addressing {
        Addressing::from_settings(&AddressingSettings { trusted_proxies: trusted, ..Default::default() }).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_client_is_the_forwarded_last_hop_only_from_a_trusted_peer() {
        let peer: Option<IpAddr> = Some("10.0.0.2".parse().unwrap());
        let h = headers(&[("x-forwarded-for", "203.0.113.1, 198.51.100.5"), ("x-forwarded-for", "192.0.2.9")]);
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(client_addr(&addressing("10.0.0.0/8"), peer, &h), ip("192.0.2.9"));
        assert_eq!(client_addr(&addressing("192.168.0.0/16"), peer, &h), peer, "an untrusted peer's header is ignored");
        assert_eq!(client_addr(&addressing(""), peer, &h), peer);
        let h = headers(&[("x-forwarded-for", "203.0.113.1,  [2001:db8::1]:4711 ")]);
        assert_eq!(client_addr(&addressing("10.0.0.2"), peer, &h), ip("2001:db8::1"));
        let h = headers(&[("x-forwarded-for", "203.0.113.1, unknown")]);
        assert_eq!(client_addr(&addressing("10.0.0.2"), peer, &h), peer, "a last hop that is no address");
        assert_eq!(client_addr(&addressing("10.0.0.2"), None, &h), None);
    }

    #[test]
    fn the_claimed_key_id_and_nothing_after_it() {
        let v4 = headers(&[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDCLAIMED/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=abcdef0123456789",
        )]);
        assert_eq!(claimed_key_id(&v4, None).as_deref(), Some("AKIDCLAIMED"));
        let v2 = headers(&[("authorization", "AWS AKIDV2:c2lnbmF0dXJlc2lnbmF0dXJl")]);
        assert_eq!(claimed_key_id(&v2, None).as_deref(), Some("AKIDV2"));
        // No separator: the whole value could be a signature.
        let odd = headers(&[("authorization", "AWS c2lnbmF0dXJlc2lnbmF0dXJl")]);
        assert_eq!(claimed_key_id(&odd, None), None);
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDQ%2F20250101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=ab";
        assert_eq!(claimed_key_id(&HeaderMap::new(), Some(q)).as_deref(), Some("AKIDQ"));
        let q = "AWSAccessKeyId=AKIDV2Q&Expires=1&Signature=c2ln%2B";
        assert_eq!(claimed_key_id(&HeaderMap::new(), Some(q)).as_deref(), Some("AKIDV2Q"));
        assert_eq!(claimed_key_id(&HeaderMap::new(), Some("AWSAccessKeyId=a%2Bb")), None, "not a key id");
        assert_eq!(claimed_key_id(&HeaderMap::new(), None), None);
    }

    #[test]
    fn log_format_values() {
        assert_eq!(LogFormat::parse("").unwrap(), LogFormat::Text);
        assert_eq!(LogFormat::parse("text").unwrap(), LogFormat::Text);
        assert_eq!(LogFormat::parse("json").unwrap(), LogFormat::Json);
        assert!(LogFormat::parse("JSON lines").unwrap_err().0.contains("LOG_FORMAT"));
    }
}

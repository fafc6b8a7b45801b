//! Outbound: one pooled keep-alive client toward the origin, request and
//! response bodies streamed both ways, hop-by-hop headers stripped.
//!
//! The forward path uses hyper's client with an `http::Uri`, not reqwest: the
//! `url` crate behind reqwest removes `.`/`..` segments (and `%2e` forms) from
//! paths, which would make `a/../b` a different object than the one verified.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use http::uri::Authority;
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::{GaiResolver, Name};
use sha2::{Digest, Sha256};
use std::str::FromStr;

use crate::error::{BoxError, Error};
use crate::resign::OriginRequest;

pub type DataStream = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>;

/// Where a body adapter records why it failed, so the handler can answer with
/// the S3 error instead of a generic origin failure.
#[derive(Clone, Default)]
pub struct Failure(Arc<FailureSlot>);

#[derive(Default)]
struct FailureSlot {
    error: Mutex<Option<Error>>,
    /// The client's body timed out: it fails from here on, so the handler's
    /// drain does not wait on a client that sends nothing.
    closed: AtomicBool,
}

impl Failure {
    pub fn set(&self, e: Error) {
        let mut slot = self.0.error.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        slot.get_or_insert(e);
    }
    pub fn take(&self) -> Option<Error> {
        self.0.error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
    }
    /// Has the body recorded the client's fault (not the origin's)?
    fn is_set(&self) -> bool {
        self.0.error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_some()
    }
    fn close_body(&self) {
        self.0.closed.store(true, Ordering::Relaxed);
    }
    fn body_closed(&self) -> bool {
        self.0.closed.load(Ordering::Relaxed)
    }
}

/// Bytes moved so far, for the idle (read) timeout, and whether the upload
/// is waiting on the client (its body stream pending) rather than on the
/// origin (hyper not asking for more). The default tracks nothing (a request
/// without a body allocates nothing for it).
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<ProgressState>>);

#[derive(Default)]
struct ProgressState {
    moved: AtomicU64,
    waiting_on_client: AtomicBool,
}

impl Progress {
    pub fn new() -> Self {
        Self(Some(Arc::default()))
    }
    fn add(&self, n: usize) {
        if let Some(p) = &self.0 {
            p.moved.fetch_add(n as u64 + 1, Ordering::Relaxed);
        }
    }
    fn get(&self) -> u64 {
        self.0.as_ref().map_or(0, |p| p.moved.load(Ordering::Relaxed))
    }
    fn set_waiting(&self, waiting: bool) {
        if let Some(p) = &self.0 {
            p.waiting_on_client.store(waiting, Ordering::Relaxed);
        }
    }
    fn waiting_on_client(&self) -> bool {
        self.0.as_ref().is_some_and(|p| p.waiting_on_client.load(Ordering::Relaxed))
    }
}

/// The request body toward the origin: a stream with a known length (the
/// client's Content-Length) when there is one, so hyper sends Content-Length
/// and not chunked. A stream error aborts the upstream request: the origin
/// never sees a complete body.
pub struct OutBody {
    stream: Option<DataStream>,
    len: Option<u64>,
    progress: Progress,
}

/// The body of a request forwarded with `Expect: 100-continue` (anonymous
/// uploads: the origin, not the proxy, decides): it waits for the origin's
/// `100 Continue` before reading the client's body, or 1 s for an origin that
/// sends none (as curl waits). Once the origin has answered finally, the
/// client's body is never read, so the client never gets a `100` for an
/// upload the origin refused.
#[derive(Clone, Default)]
pub struct ContinueGate(Arc<GateState>);

#[derive(Default)]
struct GateState {
    /// 0 waiting, 1 open, 2 closed.
    state: std::sync::atomic::AtomicU8,
    changed: tokio::sync::Notify,
}

impl ContinueGate {
    const WAITING: u8 = 0;
    const OPEN: u8 = 1;
    const CLOSED: u8 = 2;

    fn set(&self, to: u8) {
        if self.0.state.compare_exchange(Self::WAITING, to, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
            self.0.changed.notify_one();
        }
    }

    /// Ok once the body may go; Err if the origin answered first.
    async fn wait(&self) -> Result<(), BoxError> {
        loop {
            match self.0.state.load(Ordering::SeqCst) {
                Self::OPEN => return Ok(()),
                Self::CLOSED => return Err("the origin answered before the request body was sent".into()),
                _ => {}
            }
            if tokio::time::timeout(Duration::from_secs(1), self.0.changed.notified()).await.is_err() {
                self.set(Self::OPEN);
            }
        }
    }

    /// The body, held until the gate opens.
    fn hold(&self, inner: DataStream) -> DataStream {
        use futures_util::StreamExt;
        let gate = self.clone();
        let opened = futures_util::stream::once(async move { gate.wait().await })
            .filter_map(|r| async move { r.err().map(Err) });
        Box::pin(opened.chain(inner))
    }
}

impl OutBody {
    pub fn empty() -> Self {
        Self { stream: None, len: Some(0), progress: Progress::default() }
    }
    pub fn new(stream: DataStream, len: Option<u64>, progress: Progress) -> Self {
        Self { stream: Some(stream), len, progress }
    }
}

impl Body for OutBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Some(s) = self.stream.as_mut() else {
            return Poll::Ready(None);
        };
        // Pending here means the client has not sent more: the adapters
        // between its body and this one never wait on anything else.
        let Poll::Ready(r) = s.as_mut().poll_next(cx) else {
            self.progress.set_waiting(true);
            return Poll::Pending;
        };
        self.progress.set_waiting(false);
        match r {
            Some(Ok(b)) => {
                self.progress.add(b.len());
                Poll::Ready(Some(Ok(Frame::data(b))))
            }
            Some(Err(e)) => {
                self.stream = None;
                Poll::Ready(Some(Err(e)))
            }
            None => {
                self.stream = None;
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.stream.is_none() || self.len == Some(0)
    }

    fn size_hint(&self) -> SizeHint {
        self.len.map_or_else(SizeHint::default, SizeHint::with_exact)
    }
}

pin_project_lite::pin_project! {
    /// Verifies a hex `x-amz-content-sha256` while streaming. The last byte is
    /// held back until the hash is known; on a mismatch the stream fails
    /// instead, so the origin never receives the complete body.
    pub struct Sha256Check<S> {
        #[pin]
        inner: S,
        hasher: Sha256,
        expected: [u8; 32],
        held: Option<Bytes>,
        pending: Option<Bytes>,
        failure: Failure,
        done: bool,
    }
}

impl<S> Sha256Check<S> {
    pub fn new(inner: S, expected: [u8; 32], failure: Failure) -> Self {
        Self { inner, hasher: Sha256::new(), expected, held: None, pending: None, failure, done: false }
    }
}

impl<S: Stream<Item = Result<Bytes, BoxError>>> Stream for Sha256Check<S> {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        if let Some(p) = this.pending.take() {
            return Poll::Ready(Some(Ok(p)));
        }
        if *this.done {
            return Poll::Ready(None);
        }
        loop {
            match ready!(this.inner.as_mut().poll_next(cx)) {
                Some(Ok(mut b)) => {
                    if b.is_empty() {
                        continue;
                    }
                    this.hasher.update(&b);
                    // Keep back only the last byte: the origin gets everything
                    // but it until the hash is known. No copies: the byte held
                    // before goes out first, as its own frame.
                    let last = b.split_off(b.len() - 1);
                    match this.held.replace(last) {
                        Some(prev) => {
                            if !b.is_empty() {
                                *this.pending = Some(b);
                            }
                            return Poll::Ready(Some(Ok(prev)));
                        }
                        None if b.is_empty() => continue,
                        None => return Poll::Ready(Some(Ok(b))),
                    }
                }
                Some(Err(e)) => {
                    *this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                None => {
                    *this.done = true;
                    let got: [u8; 32] = std::mem::take(this.hasher).finalize().into();
                    if got != *this.expected {
                        let e = Error::XAmzContentSHA256Mismatch {
                            client_computed: hex::encode(this.expected),
                            s3_computed: hex::encode(got),
                        };
                        this.failure.set(e.clone());
                        return Poll::Ready(Some(Err(Box::new(e))));
                    }
                    return Poll::Ready(this.held.take().map(Ok));
                }
            }
        }
    }
}

/// The client's body as a stream, shared: the outbound body reads it, and the
/// handler keeps a handle so that after a mid-body failure it can read and
/// discard the rest, letting the client read the error instead of a reset.
/// A client that goes away mid-upload becomes an IncompleteBody failure.
#[derive(Clone)]
pub struct SharedBody {
    inner: Arc<Mutex<axum::body::BodyDataStream>>,
    pub failure: Failure,
}

impl SharedBody {
    pub fn new(body: axum::body::Body, failure: Failure) -> Self {
        Self { inner: Arc::new(Mutex::new(body.into_data_stream())), failure }
    }
}

pin_project_lite::pin_project! {
    /// What the proxy answers with: the origin's body streamed through, or a
    /// body of its own (errors, `/healthz`). An enum rather than a boxed
    /// body: no allocation per response.
    #[project = ProxyBodyProj]
    pub enum ProxyBody {
        Origin { #[pin] body: OriginBody },
        /// The origin's body, of which `prefix` was already read (an error
        /// body read to find its code): `prefix`, then the rest.
        Prefixed { prefix: Option<Bytes>, body: Pin<Box<OriginBody>> },
        Local { body: axum::body::Body },
    }
}

impl From<axum::body::Body> for ProxyBody {
    fn from(body: axum::body::Body) -> Self {
        Self::Local { body }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project() {
            ProxyBodyProj::Origin { body } => body.poll_frame(cx),
            ProxyBodyProj::Prefixed { prefix, body } => match prefix.take() {
                Some(p) => Poll::Ready(Some(Ok(Frame::data(p)))),
                None => body.as_mut().poll_frame(cx),
            },
            ProxyBodyProj::Local { body } => Pin::new(body).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Origin { body } => body.is_end_stream(),
            Self::Prefixed { prefix, body } => prefix.is_none() && body.is_end_stream(),
            Self::Local { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Origin { body } => body.size_hint(),
            Self::Prefixed { prefix, body } => {
                let n = prefix.as_ref().map_or(0, |p| p.len() as u64);
                let rest = body.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower() + n);
                if let Some(u) = rest.upper() {
                    hint.set_upper(u + n);
                }
                hint
            }
            Self::Local { body } => body.size_hint(),
        }
    }
}

impl Stream for SharedBody {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // An error, not an end: whoever still reads must never take the
        // body for complete.
        if self.failure.body_closed() {
            return Poll::Ready(Some(Err("the client's request body timed out".into())));
        }
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match ready!(Pin::new(&mut *inner).poll_next(cx)) {
            Some(Ok(b)) => Poll::Ready(Some(Ok(b))),
            Some(Err(e)) => {
                self.failure.set(Error::IncompleteBody(
                    "The request body ended before its declared length; nothing was stored".into(),
                ));
                Poll::Ready(Some(Err(BoxError::from(e))))
            }
            None => Poll::Ready(None),
        }
    }
}

pin_project_lite::pin_project! {
    /// Records a chunk-codec error as the request's S3 error.
    pub struct ChunkErrors<S> {
        #[pin]
        inner: S,
        failure: Failure,
    }
}

impl<S> ChunkErrors<S> {
    pub fn new(inner: S, failure: Failure) -> Self {
        Self { inner, failure }
    }
}

impl<S: Stream<Item = Result<Bytes, crate::chunked::ChunkError>>> Stream for ChunkErrors<S> {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        match ready!(this.inner.poll_next(cx)) {
            Some(Ok(b)) => Poll::Ready(Some(Ok(b))),
            Some(Err(e)) => {
                this.failure.set(Error::from(&e));
                Poll::Ready(Some(Err(Box::new(e))))
            }
            None => Poll::Ready(None),
        }
    }
}

/// How long an idle origin connection is kept for reuse.
const POOL_IDLE: Duration = Duration::from_secs(30);
/// Idle origin connections kept per [`Forwarder`].
const POOL_MAX_IDLE: usize = 256;

type Conn = hyper::client::conn::http1::SendRequest<OutBody>;

/// Idle keep-alive connections to the origin, newest last (reused first),
/// each under the Host it was opened for (`bucket.<origin>` with
/// ORIGIN_ADDRESSING=virtual, whose TLS name differs per bucket).
#[derive(Default)]
struct Pool(Mutex<Vec<(Authority, Conn, Instant)>>);

impl Pool {
    fn take(&self, host: &Authority) -> Option<Conn> {
        let mut idle = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // With one origin Host (path style), the newest is the last: O(1).
        while let Some(i) = idle.iter().rposition(|(h, _, _)| h == host) {
            let (_, conn, since) = idle.remove(i);
            if !conn.is_closed() && since.elapsed() < POOL_IDLE {
                return Some(conn);
            }
        }
        None
    }

    fn put(&self, host: Authority, conn: Conn) {
        if conn.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // The oldest are first: drop those past their time, or over the cap.
        let stale = idle.iter().take_while(|(_, c, since)| c.is_closed() || now - *since >= POOL_IDLE).count();
        let over = (idle.len() - stale + 1).saturating_sub(POOL_MAX_IDLE);
        idle.drain(..stale + over);
        idle.push((host, conn, now));
    }
}

/// Resolves every name to the origin's own addresses: a virtual-hosted origin
/// request to `bucket.<origin host>` connects where ORIGIN_DOMAIN does (with
/// the bucket's TLS name), never where a bucket's DNS name would lead.
#[derive(Clone)]
pub struct OriginResolver {
    name: Name,
    gai: GaiResolver,
}

impl tower_service::Service<Name> for OriginResolver {
    type Response = <GaiResolver as tower_service::Service<Name>>::Response;
    type Error = <GaiResolver as tower_service::Service<Name>>::Error;
    type Future = <GaiResolver as tower_service::Service<Name>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.gai.poll_ready(cx)
    }

    fn call(&mut self, _requested: Name) -> Self::Future {
        self.gai.call(self.name.clone())
    }
}

/// The one way to the origin: its own keep-alive pool of HTTP/1.1
/// connections (hyper's connection API driven directly: no per-request
/// task), keyed by the origin Host.
pub struct Forwarder {
    connector: HttpsConnector<HttpConnector<OriginResolver>>,
    scheme: http::uri::Scheme,
    pool: Arc<Pool>,
    connect_timeout: Duration,
    read_timeout: Duration,
    /// ORIGIN_CA_BUNDLE is set (for the log of a certificate failure).
    custom_ca: bool,
    /// Counts new and reused connections.
    metrics: Option<Arc<crate::metrics::Shard>>,
}

impl Forwarder {
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Shard>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// `origin_ca` (ORIGIN_CA_BUNDLE) replaces the system roots for an https
    /// origin. Verification is never off.
    pub fn new(
        origin: &crate::config::Origin,
        origin_ca: Option<&rustls::RootCertStore>,
        connect_timeout: Duration,
        read_timeout: Duration,
    ) -> Self {
        // An IP origin is connected to as is; a name is resolved (the origin's, always).
        let host = origin.authority().host();
        // (An IP literal never reaches the resolver, so its fallback is unused.)
        let name = host.parse::<Name>().unwrap_or_else(|_| Name::from_str("localhost").expect("a valid name"));
        let mut http = HttpConnector::new_with_resolver(OriginResolver { name, gai: GaiResolver::new() });
        http.set_connect_timeout(Some(connect_timeout));
        http.set_nodelay(true);
        http.enforce_http(false);
        http.set_keepalive(Some(Duration::from_secs(60)));
        let with_roots = |roots: rustls::RootCertStore| {
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                    .with_safe_default_protocol_versions()
                    .expect("aws-lc-rs supports the default TLS versions")
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            )
        };
        let builder = match origin_ca {
            Some(roots) => with_roots(roots.clone()),
            // No system roots (a bare container): https origins will fail
            // their handshake with a clear error; http origins still work.
            None => hyper_rustls::HttpsConnectorBuilder::new()
                .with_native_roots()
                .unwrap_or_else(|_| with_roots(rustls::RootCertStore::empty())),
        };
        let connector = builder.https_or_http().enable_http1().wrap_connector(http);
        Self {
            connector,
            scheme: origin.scheme().clone(),
            pool: Arc::default(),
            connect_timeout,
            read_timeout,
            custom_ca: origin_ca.is_some(),
            metrics: None,
        }
    }

    async fn connect(&self, host: &Authority) -> Result<Conn, Error> {
        use tower_service::Service;
        let unreachable = || Error::OriginUnreachable("The origin could not be reached".into());
        let handshake = async {
            let mut connector = self.connector.clone();
            let target = Uri::builder()
                .scheme(self.scheme.clone())
                .authority(host.clone())
                .path_and_query("/")
                .build()
                .map_err(|_| unreachable())?;
            let io = connector.call(target).await.map_err(|e| {
                if is_certificate_error(&*e) {
                    let roots = if self.custom_ca { "ORIGIN_CA_BUNDLE" } else { "the system roots" };
                    tracing::warn!(error = %display_chain(&*e), roots, "origin TLS certificate not trusted (a private CA needs ORIGIN_CA_BUNDLE)");
                } else {
                    tracing::warn!(error = %display_chain(&*e), "origin connect failed");
                }
                unreachable()
            })?;
            let (conn, driver) = hyper::client::conn::http1::Builder::new()
                // Bounds the response read size and what one upload may queue
                // toward a slow origin. Measured (bench/RESULTS.md): 256 KiB
                // costs ~30% more CPU per GiB of GET than 512 KiB; 1 MiB
                // saves a little more but 32 uploads to s3s-fs then peak at
                // 60 MiB of RSS instead of 43.
                .max_buf_size(512 << 10)
                .handshake(io)
                .await
                .map_err(|e| {
                    tracing::warn!(error = %display_chain(&e), "origin handshake failed");
                    unreachable()
                })?;
            tokio::spawn(async move {
                if let Err(e) = driver.await {
                    tracing::debug!(error = %display_chain(&e), "origin connection ended with an error");
                }
            });
            Ok(conn)
        };
        // The TCP connect has its own timeout; this one also bounds TLS.
        tokio::time::timeout(self.connect_timeout * 2, handshake).await.unwrap_or_else(|_| Err(unreachable()))
    }

    /// A pooled connection ready for a request, or a new one.
    async fn checkout(&self, host: &Authority) -> Result<Conn, Error> {
        while let Some(mut conn) = self.pool.take(host) {
            // Usually ready at once; a connection whose last response just
            // ended may need its driver to run first.
            if conn.ready().await.is_ok() {
                if let Some(m) = &self.metrics {
                    m.origin_connection(true);
                }
                return Ok(conn);
            }
        }
        let conn = self.connect(host).await?;
        if let Some(m) = &self.metrics {
            m.origin_connection(false);
        }
        Ok(conn)
    }

    /// Sends the request; waits for the response head while the request body
    /// makes progress, and gives up after `read_timeout` of silence.
    pub async fn send(
        &self,
        out: OriginRequest,
        body: OutBody,
        failure: Option<&Failure>,
    ) -> Result<Response<OriginBody>, Error> {
        let progress = body.progress.clone();
        let host = out
            .uri
            .authority()
            .cloned()
            .ok_or_else(|| Error::OriginUnreachable("The origin request has no host".into()))?;
        // Only an unsigned request keeps `Expect` (the signed path verifies
        // before reading the body, and drops it).
        let expects_continue =
            out.headers.get(http::header::EXPECT).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let gate = expects_continue.then(ContinueGate::default);
        // A request that asks the origin to close (a form upload, whose body
        // cannot be replayed) gets a connection of its own: never a pooled one
        // the origin may be closing, and it is not pooled after.
        let fresh =
            out.headers.get(http::header::CONNECTION).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
        let body = match (&gate, body.stream) {
            (Some(g), Some(stream)) => OutBody { stream: Some(g.hold(stream)), ..body },
            (_, stream) => OutBody { stream, ..body },
        };
        let mut req = Request::new(body);
        if let Some(g) = &gate {
            let g = g.clone();
            hyper::ext::on_informational(&mut req, move |r| {
                if r.status() == http::StatusCode::CONTINUE {
                    g.set(ContinueGate::OPEN);
                }
            });
        }
        *req.method_mut() = out.method;
        // Origin-form: the connection already goes to the origin.
        *req.uri_mut() = match out.uri.path_and_query() {
            Some(pq) => Uri::from(pq.clone()),
            None => Uri::from_static("/"),
        };
        *req.headers_mut() = out.headers;
        let exchange = async {
            let mut req = req;
            loop {
                let mut conn = if fresh { self.connect(&host).await? } else { self.checkout(&host).await? };
                match conn.try_send_request(req).await {
                    Ok(resp) => return Ok((resp, conn)),
                    // A pooled connection the origin closed before this
                    // request was written: the request comes back untouched,
                    // so try it on another connection.
                    Err(mut e) => match e.take_message() {
                        Some(r) => req = r,
                        None => {
                            if failure.is_some_and(Failure::is_set) {
                                // The client's body failed (a bad chunk, a short body): its fault, logged as such.
                                tracing::debug!(error = %display_chain(e.error()), "upload aborted");
                            } else {
                                tracing::warn!(error = %display_chain(e.error()), "origin request failed");
                            }
                            return Err(Error::OriginUnreachable("The connection to the origin failed".into()));
                        }
                    },
                }
            }
        };
        tokio::pin!(exchange);
        let mut seen = progress.get();
        let result = loop {
            tokio::select! {
                r = &mut exchange => break r,
                () = tokio::time::sleep(self.read_timeout) => {
                    let now = progress.get();
                    if now == seen {
                        if let Some(e) = failure.and_then(Failure::take) {
                            return Err(e);
                        }
                        // A stalled upload is the client's fault (S3: 400
                        // RequestTimeout), not the origin's. Returning drops
                        // the exchange, which aborts the origin request.
                        if progress.waiting_on_client() {
                            if let Some(f) = failure {
                                f.close_body();
                            }
                            return Err(Error::RequestTimeout);
                        }
                        return Err(Error::OriginTimeout("The origin did not answer in time".into()));
                    }
                    seen = now;
                }
            }
        };
        if let Some(g) = &gate {
            // The origin's verdict is in: a body not yet started never will be.
            g.set(ContinueGate::CLOSED);
        }
        if let Some(e) = failure.and_then(Failure::take) {
            return Err(e);
        }
        let (resp, conn) = result?;
        let read_timeout = self.read_timeout;
        let pool = self.pool.clone();
        Ok(resp.map(|b| OriginBody {
            inner: IdleTimeout::new(b, read_timeout),
            reuse: (!fresh).then(|| (conn, pool, host.clone())),
        }))
    }
}

pin_project_lite::pin_project! {
    /// The origin's response body. When it has been read to its end, its
    /// connection goes back to the pool; dropped before that, the connection
    /// is closed (hyper cannot reuse it mid-message).
    pub struct OriginBody {
        #[pin]
        inner: IdleTimeout<Incoming>,
        reuse: Option<(Conn, Arc<Pool>, Authority)>,
    }

    impl PinnedDrop for OriginBody {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if this.inner.is_end_stream()
                && let Some((conn, pool, host)) = this.reuse.take()
            {
                pool.put(host, conn);
            }
        }
    }
}

impl Body for OriginBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let r = ready!(this.inner.poll_frame(cx));
        match &r {
            None => {
                if let Some((conn, pool, host)) = this.reuse.take() {
                    pool.put(host, conn);
                }
            }
            Some(Err(_)) => *this.reuse = None,
            Some(Ok(_)) => {}
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

/// Did the origin's certificate fail verification? (rustls' error sits
/// inside `io::Error`s, whose `source()` skips what they wrap.)
fn is_certificate_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(rustls::Error::InvalidCertificate(_)) = c.downcast_ref::<rustls::Error>() {
            return true;
        }
        cur = match c.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => c.source(),
        };
    }
    false
}

fn display_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

pin_project_lite::pin_project! {
    /// A response body that fails when the origin stays silent too long.
    pub struct IdleTimeout<B> {
        #[pin]
        inner: B,
        #[pin]
        sleep: tokio::time::Sleep,
        dur: Duration,
    }
}

impl<B> IdleTimeout<B> {
    pub fn new(inner: B, dur: Duration) -> Self {
        Self { inner, sleep: tokio::time::sleep(dur), dur }
    }
}

impl<B: Body<Data = Bytes>> Body for IdleTimeout<B>
where
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        match this.inner.poll_frame(cx) {
            Poll::Ready(f) => {
                this.sleep.as_mut().reset(tokio::time::Instant::now() + *this.dur);
                Poll::Ready(f.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => match this.sleep.poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err("the origin stopped sending the response body".into()))),
                Poll::Pending => Poll::Pending,
            },
        }
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
    use futures_util::StreamExt;

    fn run(frames: &[&[u8]], claimed: &[u8]) -> (Vec<u8>, bool) {
        let expected: [u8; 32] = Sha256::digest(claimed).into();
        let owned: Vec<Result<Bytes, BoxError>> = frames.iter().map(|f| Ok(Bytes::copy_from_slice(f))).collect();
        let mut s = Sha256Check::new(futures_util::stream::iter(owned), expected, Failure::default());
        let mut out = Vec::new();
        let mut failed = false;
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
            while let Some(r) = s.next().await {
                match r {
                    Ok(b) => out.extend_from_slice(&b),
                    Err(_) => failed = true,
                }
            }
        });
        (out, failed)
    }

    #[test]
    fn passes_every_byte_when_the_hash_matches() {
        let frames: [&[u8]; 4] = [b"ab", b"c", b"", b"defgh"];
        assert_eq!(run(&frames, b"abcdefgh"), (b"abcdefgh".to_vec(), false));
        assert_eq!(run(&[b"x"], b"x"), (b"x".to_vec(), false));
        assert_eq!(run(&[], b""), (vec![], false));
    }

    #[test]
    fn withholds_the_last_byte_on_a_mismatch() {
        let (out, failed) = run(&[b"abc", b"def"], b"abcdeX");
        assert!(failed);
        assert_eq!(out, b"abcde", "the origin never gets the whole body");
    }
}

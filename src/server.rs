//! Accepting connections and serving HTTP/1.1 on them.
//!
//! [`serve`] is the production shape, the one nginx uses: one worker thread
//! per core, each with its own single-threaded tokio runtime and its own
//! [`AppState`] (so its own pooled origin client and key caches). A client
//! connection lives on one worker from accept to close, and so do the origin
//! connections it uses: a request never crosses threads, which saves the
//! cross-thread wake-ups (futex, eventfd) of a work-stealing runtime. The
//! accepting thread hands each new connection to the worker with the fewest
//! open connections.
//!
//! [`run`] serves on the caller's runtime instead (tests, embedding).
//!
//! Both stop through a [`Drain`]: the binary starts it on SIGTERM/SIGINT
//! ([`Drain::on_signals`]), a test calls [`Drain::start`].

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::drain::{Drain, Draining};
use crate::state::AppState;

/// The read buffer: bounds the request head and how much of an upload body
/// one connection buffers. 64 KiB cost 25% more CPU per uploaded GiB (more,
/// smaller reads and frames) than 256 KiB; hyper's default is ~400 KiB.
const MAX_BUF: usize = 256 << 10;
/// A client must send a complete request head within this time (slowloris).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// hyper's own header count limit, set above the proxy's (`intake`), so that
/// the proxy's limit answers with S3 XML and hyper's only with bytes that are
/// not a sane HTTP/1.1 request at all.
const HYPER_MAX_HEADERS: usize = 4 * crate::intake::MAX_HEADERS;
/// The HTTP/2 connection preface (RFC 9113 §3.4), which a prior-knowledge
/// h2c client sends first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Open connections of one worker; the guard gives its slot back on drop.
struct Load(Arc<AtomicUsize>);

impl Drop for Load {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves one connection on the current runtime, watched by `graceful`:
/// HTTP/1.1, inside TLS when TLS_CERT/TLS_KEY are set.
fn spawn_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    state: &AppState,
    graceful: &GracefulShutdown,
    drain: &Drain,
    load: Load,
) {
    let _ = tcp.set_nodelay(true);
    let tls = state.0.config.tls.as_ref().map(|t| t.acceptor());
    let state = state.clone();
    // The peer's address, for TRUSTED_PROXIES (an IPv4 peer on a dual-stack socket as IPv4).
    let peer = Some(peer.ip().to_canonical());
    let svc_drain = drain.clone();
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let state = state.clone();
        let draining = svc_drain.is_draining();
        if draining {
            req.extensions_mut().insert(Draining);
        }
        async move {
            let mut resp = crate::handler::serve(state, peer, req).await;
            if draining {
                // Draining: the client's next request opens a new connection
                // (to another instance, behind a load balancer).
                resp.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
            }
            Ok::<_, Infallible>(resp)
        }
    });
    let watcher = graceful.watcher();
    let drain = drain.clone();
    tokio::spawn(async move {
        let _load = load;
        let mut tcp = tcp;
        if let Some(acceptor) = tls {
            // ALPN offers http/1.1 only, so an h2-only client fails here
            // (no preface check: the bytes are encrypted). The handshake is
            // bounded like a request head.
            let handshake = tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(tcp));
            let stream = tokio::select! {
                r = handshake => match r {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("TLS handshake timed out");
                        return;
                    }
                },
                // No request yet when the listener closes: nothing to finish.
                () = drain.closing() => return,
            };
            return serve_http1(stream, svc, watcher, &drain).await;
        }
        // This proxy speaks HTTP/1.1 only: an HTTP/2 prior-knowledge client
        // gets an HTTP/1.1 answer that says so, not a silent close.
        let first_bytes = tokio::time::timeout(HEADER_READ_TIMEOUT, starts_with_h2_preface(&tcp));
        tokio::select! {
            r = first_bytes => if let Ok(Ok(true)) = r {
                refuse_h2(&mut tcp).await;
                return;
            },
            // Nothing sent yet when the listener closes: nothing to finish.
            () = drain.closing() => return,
        }
        serve_http1(tcp, svc, watcher, &drain).await;
    });
}

/// hyper's HTTP/1.1 server on one connection, plain or TLS, until it ends
/// or the drain cuts it.
async fn serve_http1<I, S>(io: I, svc: S, watcher: hyper_util::server::graceful::Watcher, drain: &Drain)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming> + Send,
    S::Future: Send,
    S::ResBody: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    <S::ResBody as hyper::body::Body>::Data: Send,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_BUF)
        .max_headers(HYPER_MAX_HEADERS)
        // A client that pipelines requests and then shuts down its
        // sending side still gets every response.
        .half_close(true)
        .serve_connection(TokioIo::new(io), svc);
    tokio::select! {
        r = watcher.watch(conn) => if let Err(e) = r {
            tracing::debug!(error = %e, "client connection ended with an error");
        },
        () = drain.cut() => tracing::debug!("connection cut at SHUTDOWN_TIMEOUT"),
    }
}

/// The listener is closed: idle connections close, in-flight requests finish
/// until `deadline`; then the connections left are cut.
async fn finish_connections(
    graceful: GracefulShutdown,
    drain: &Drain,
    deadline: std::time::Instant,
    open: &AtomicUsize,
) {
    if tokio::time::timeout_at(deadline.into(), graceful.shutdown()).await.is_err() {
        drain.cut_now(open.load(Ordering::Relaxed));
    }
}

/// Peeks (without consuming) at the first bytes: do they start the HTTP/2
/// preface? Decides as soon as a byte differs, so an HTTP/1.1 request costs
/// one peek.
async fn starts_with_h2_preface(tcp: &TcpStream) -> io::Result<bool> {
    let mut buf = [0u8; H2_PREFACE.len()];
    loop {
        let n = tcp.peek(&mut buf).await?;
        if n == 0 || buf[..n] != H2_PREFACE[..n] {
            return Ok(false);
        }
        if n == H2_PREFACE.len() {
            return Ok(true);
        }
        // A prefix of the preface so far: wait for more.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn refuse_h2(tcp: &mut TcpStream) {
    use tokio::io::AsyncWriteExt;
    let body = crate::error::Error::HttpVersionNotSupported.to_xml("0");
    let head = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = tcp.write_all(head.as_bytes()).await;
    let _ = tcp.write_all(body.as_bytes()).await;
    let _ = tcp.shutdown().await;
}

/// Accepts until `shutdown` (for the proxy: `Drain::accept_until`, the end
/// of the drain's grace), passing each connection to `dispatch`. Accept
/// errors (EMFILE and the like) are logged and retried after a pause.
async fn accept_loop(
    listener: &TcpListener,
    shutdown: impl Future<Output = ()>,
    mut dispatch: impl FnMut(TcpStream, SocketAddr),
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok((tcp, peer)) => dispatch(tcp, peer),
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
        }
    }
}

/// Keeps a timer due within 250 ms on this runtime. Each request arms
/// timeouts of 30–60 s; tokio's timer wakes the runtime's own event loop
/// (an eventfd write and an extra epoll round) whenever a new timer is due
/// before every other one, which without this happened on a quarter of all
/// requests.
async fn timer_floor() {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
    }
}

/// Serves the proxy on `listener`, on the caller's runtime, until `drain`
/// has been started and its grace is over; then lets in-flight requests
/// finish (up to its timeout) and returns. The binary uses [`serve`] (one
/// single-threaded runtime per core) instead; both run `handler::serve`.
pub async fn run(listener: TcpListener, state: AppState, drain: Drain) -> io::Result<()> {
    let ticker = tokio::spawn(timer_floor());
    let graceful = GracefulShutdown::new();
    let open = Arc::new(AtomicUsize::new(0));
    accept_loop(&listener, drain.accept_until(), |tcp, peer| {
        open.fetch_add(1, Ordering::Relaxed);
        spawn_connection(tcp, peer, &state, &graceful, &drain, Load(open.clone()));
    })
    .await;
    drop(listener);
    let deadline = drain.close(open.load(Ordering::Relaxed));
    finish_connections(graceful, &drain, deadline, &open).await;
    ticker.abort();
    drain.finish();
    Ok(())
}

/// Serves with `workers` threads, each with its own runtime and `make_state()`,
/// until `drain` has been started and its grace is over; then stops
/// accepting, lets in-flight requests finish (up to its timeout), and returns.
pub fn serve(
    listener: std::net::TcpListener,
    workers: usize,
    make_state: impl Fn() -> AppState + Send + Sync + 'static,
    drain: Drain,
) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    let make_state = Arc::new(make_state);
    let mut queues = Vec::with_capacity(workers);
    let mut threads = Vec::with_capacity(workers);
    for i in 0..workers.max(1) {
        let (tx, mut rx) = mpsc::unbounded_channel::<(std::net::TcpStream, SocketAddr)>();
        let load = Arc::new(AtomicUsize::new(0));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (make_state, worker_load, drain) = (make_state.clone(), load.clone(), drain.clone());
        let thread = std::thread::Builder::new().name(format!("s3rp-worker-{i}")).spawn(move || {
            rt.block_on(async move {
                tokio::spawn(timer_floor());
                let state = make_state();
                let graceful = GracefulShutdown::new();
                while let Some((std_tcp, peer)) = rx.recv().await {
                    let load = Load(worker_load.clone());
                    match TcpStream::from_std(std_tcp) {
                        Ok(tcp) => spawn_connection(tcp, peer, &state, &graceful, &drain, load),
                        Err(e) => tracing::warn!(error = %e, "cannot register a connection"),
                    }
                }
                // The channel closes after the listener did (`drain.close`).
                let deadline = drain.deadline();
                finish_connections(graceful, &drain, deadline, &worker_load).await;
            });
        })?;
        queues.push((tx, load));
        threads.push(thread);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let listener = TcpListener::from_std(listener)?;
        accept_loop(&listener, drain.accept_until(), |tcp, peer| {
            let Some((tx, load)) = queues.iter().min_by_key(|(_, l)| l.load(Ordering::Relaxed)) else { return };
            load.fetch_add(1, Ordering::Relaxed);
            match tcp.into_std() {
                Ok(s) => {
                    if tx.send((s, peer)).is_err() {
                        load.fetch_sub(1, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    load.fetch_sub(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "cannot hand over a connection");
                }
            }
        })
        .await;
        io::Result::Ok(())
    })?;
    // The listener is closed (dropped with the block above).
    drain.close(queues.iter().map(|(_, l)| l.load(Ordering::Relaxed)).sum());
    drop(queues);
    for t in threads {
        let _ = t.join();
    }
    drain.finish();
    Ok(())
}

/// Serves `GET|HEAD /metrics` (anything else: 404) on `listener` until
/// `shutdown` resolves: METRICS_PORT's listener, apart from the S3 one.
pub async fn run_metrics(
    listener: TcpListener,
    metrics: Arc<crate::metrics::Metrics>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    accept_loop(&listener, shutdown, |tcp, _| {
        let metrics = metrics.clone();
        let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            let m = req.uri().path() == "/metrics" && matches!(*req.method(), http::Method::GET | http::Method::HEAD);
            let resp = if m {
                crate::handler::metrics(&metrics, req.method() == http::Method::HEAD)
            } else {
                let mut r = axum::response::Response::new(axum::body::Body::empty());
                *r.status_mut() = http::StatusCode::NOT_FOUND;
                r
            };
            std::future::ready(Ok::<_, Infallible>(resp))
        });
        tokio::spawn(async move {
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(tcp), svc);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "metrics connection ended with an error");
            }
        });
    })
    .await;
    Ok(())
}

/// [`run_metrics`] on a thread and runtime of its own, for the life of the
/// process (scrapes go on while the proxy drains).
pub fn spawn_metrics(
    listener: std::net::TcpListener,
    metrics: Arc<crate::metrics::Metrics>,
) -> io::Result<std::thread::JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("s3rp-metrics".into()).spawn(move || {
        rt.block_on(async move {
            match TcpListener::from_std(listener) {
                Ok(l) => {
                    let _ = run_metrics(l, metrics, std::future::pending()).await;
                }
                Err(e) => tracing::error!(error = %e, "cannot serve METRICS_PORT"),
            }
        });
    })
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

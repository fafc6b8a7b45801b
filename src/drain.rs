//! Graceful drain: the one shutdown path of [`server::serve`](crate::server::serve)
//! (the binary, on SIGTERM/SIGINT) and [`server::run`](crate::server::run)
//! (tests, which call [`Drain::start`] themselves).
//!
//! 1. [`Drain::start`]: `/healthz` answers 503 `{"status":"draining"}` at
//!    once (no origin probe) and every response says `Connection: close`,
//!    while the listener keeps accepting for DRAIN_GRACE, so a load balancer's
//!    checks take the instance out before it stops answering.
//! 2. The listener closes (new connections are refused); idle connections
//!    close; in-flight requests finish, for up to SHUTDOWN_TIMEOUT.
//! 3. Connections still open then are cut; the server returns (the binary
//!    exits 0) and says what it did in the log.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::config::Config;

/// Where a drain is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Since this instant: `/healthz` says draining, the listener still accepts.
    Draining(Instant),
    /// Since this instant: the listener is closed, in-flight requests finish.
    Closing(Instant),
    /// SHUTDOWN_TIMEOUT has passed: remaining connections are dropped.
    Cut,
}

/// A request-extension marker: the request arrived while draining (set by the
/// server, read by `/healthz`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Draining;

/// What a finished drain did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DrainReport {
    /// From [`Drain::start`] until the listener closed (DRAIN_GRACE, or less
    /// when the server had to stop for another reason).
    pub accepting_for: Duration,
    /// Client connections open when the listener closed.
    pub open_at_close: usize,
    /// Of those, connections still open at SHUTDOWN_TIMEOUT, then cut.
    pub cut: usize,
    /// From [`Drain::start`] until the server returned.
    pub total: Duration,
}

struct Inner {
    grace: Duration,
    timeout: Duration,
    /// Read on every request: a plain load, no channel.
    draining: AtomicBool,
    phase: watch::Sender<Phase>,
    open_at_close: AtomicUsize,
    cut: AtomicUsize,
    /// Set by `start`, by `close`, and once the server has returned.
    started: std::sync::Mutex<Option<Instant>>,
    accepting_for: std::sync::Mutex<Duration>,
    report: std::sync::Mutex<Option<DrainReport>>,
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The handle that starts and paces a drain; cheap to clone, shared by every
/// worker thread (it works across runtimes).
#[derive(Clone)]
pub struct Drain(Arc<Inner>);

impl std::fmt::Debug for Drain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drain")
            .field("grace", &self.0.grace)
            .field("timeout", &self.0.timeout)
            .field("phase", &*self.0.phase.borrow())
            .finish()
    }
}

impl Drain {
    /// A drain that, once started, accepts for `grace`, then lets in-flight
    /// requests finish for up to `timeout`.
    pub fn new(grace: Duration, timeout: Duration) -> Self {
        Self(Arc::new(Inner {
            grace,
            timeout,
            draining: AtomicBool::new(false),
            phase: watch::channel(Phase::Serving).0,
            open_at_close: AtomicUsize::new(0),
            cut: AtomicUsize::new(0),
            started: std::sync::Mutex::new(None),
            accepting_for: std::sync::Mutex::new(Duration::ZERO),
            report: std::sync::Mutex::new(None),
        }))
    }

    /// DRAIN_GRACE and SHUTDOWN_TIMEOUT.
    pub fn from_config(config: &Config) -> Self {
        Self::new(config.drain_grace, config.shutdown_timeout)
    }

    /// Starts the drain (again: no effect). `/healthz` says draining from now on.
    pub fn start(&self) {
        let now = Instant::now();
        let started = self.0.phase.send_if_modified(|p| {
            if *p != Phase::Serving {
                return false;
            }
            *p = Phase::Draining(now);
            true
        });
        if started {
            *lock(&self.0.started) = Some(now);
            self.0.draining.store(true, Ordering::Release);
            tracing::info!(
                grace_ms = self.0.grace.as_millis() as u64,
                shutdown_timeout_ms = self.0.timeout.as_millis() as u64,
                "draining: /healthz answers 503 draining; still accepting for DRAIN_GRACE"
            );
        }
    }

    /// Has [`Drain::start`] been called?
    pub fn is_draining(&self) -> bool {
        self.0.draining.load(Ordering::Acquire)
    }

    /// The report, once the server has returned.
    pub fn report(&self) -> Option<DrainReport> {
        *lock(&self.0.report)
    }

    /// Resolves when the listener should close: DRAIN_GRACE after the start.
    pub(crate) async fn accept_until(&self) {
        let mut rx = self.0.phase.subscribe();
        let Ok(phase) = rx.wait_for(|p| *p != Phase::Serving).await.map(|p| *p) else { return };
        if let Phase::Draining(at) = phase {
            tokio::time::sleep_until((at + self.0.grace).into()).await;
        }
    }

    /// The listener is closed with `open` connections: in-flight requests
    /// finish until the returned deadline. Only the first call counts.
    pub(crate) fn close(&self, open: usize) -> Instant {
        let now = Instant::now();
        let mut accepting_for = None;
        self.0.phase.send_if_modified(|p| match *p {
            Phase::Serving => {
                accepting_for = Some(Duration::ZERO);
                *p = Phase::Closing(now);
                true
            }
            Phase::Draining(at) => {
                accepting_for = Some(now - at);
                *p = Phase::Closing(now);
                true
            }
            Phase::Closing(_) | Phase::Cut => false,
        });
        if let Some(accepting_for) = accepting_for {
            self.0.open_at_close.store(open, Ordering::Relaxed);
            *lock(&self.0.accepting_for) = accepting_for;
            tracing::info!(
                accepted_for_ms = accepting_for.as_millis() as u64,
                open_connections = open,
                "draining: stopped accepting; in-flight requests may finish within SHUTDOWN_TIMEOUT"
            );
        }
        self.deadline()
    }

    /// When in-flight requests must have finished: SHUTDOWN_TIMEOUT after the
    /// listener closed.
    pub(crate) fn deadline(&self) -> Instant {
        match *self.0.phase.borrow() {
            Phase::Closing(at) => at + self.0.timeout,
            Phase::Serving | Phase::Draining(_) => Instant::now() + self.0.timeout,
            Phase::Cut => Instant::now(),
        }
    }

    /// Resolves once the listener is closed (a connection that has not sent
    /// a byte by then is closed too).
    pub(crate) async fn closing(&self) {
        let mut rx = self.0.phase.subscribe();
        let _ = rx.wait_for(|p| matches!(p, Phase::Closing(_) | Phase::Cut)).await;
    }

    /// Resolves once SHUTDOWN_TIMEOUT has passed.
    pub(crate) async fn cut(&self) {
        let mut rx = self.0.phase.subscribe();
        let _ = rx.wait_for(|p| *p == Phase::Cut).await;
    }

    /// SHUTDOWN_TIMEOUT passed with `left` connections of one worker open:
    /// they are dropped.
    pub(crate) fn cut_now(&self, left: usize) {
        self.0.cut.fetch_add(left, Ordering::Relaxed);
        self.0.phase.send_replace(Phase::Cut);
    }

    /// The server is about to return: log and keep the report.
    pub(crate) fn finish(&self) {
        // A server that stopped without a drain (its listener failed) has nothing to report.
        let Some(started) = *lock(&self.0.started) else { return };
        let report = DrainReport {
            accepting_for: *lock(&self.0.accepting_for),
            open_at_close: self.0.open_at_close.load(Ordering::Relaxed),
            cut: self.0.cut.load(Ordering::Relaxed),
            total: started.elapsed(),
        };
        if report.cut > 0 {
            tracing::warn!(
                total_ms = report.total.as_millis() as u64,
                open_at_close = report.open_at_close,
                cut = report.cut,
                "drained: connections still busy at SHUTDOWN_TIMEOUT were cut"
            );
        } else {
            tracing::info!(
                total_ms = report.total.as_millis() as u64,
                open_at_close = report.open_at_close,
                cut = 0,
                "drained: every in-flight request finished"
            );
        }
        *lock(&self.0.report) = Some(report);
    }
}

impl Drain {
    /// SIGTERM or SIGINT starts the drain; a second one exits the process at
    /// once (status 1). The handlers are installed when this returns; they run
    /// on a thread of their own, so they work whichever runtime serves.
    pub fn on_signals(&self) -> io::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        #[cfg(unix)]
        let mut signals = {
            use tokio::signal::unix::{SignalKind, signal};
            let _guard = rt.enter();
            (signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?)
        };
        #[cfg(unix)]
        let mut next = async move || -> &'static str {
            tokio::select! {
                _ = signals.0.recv() => "SIGTERM",
                _ = signals.1.recv() => "SIGINT",
            }
        };
        #[cfg(not(unix))]
        let mut next = async || -> &'static str {
            let _ = tokio::signal::ctrl_c().await;
            "ctrl-c"
        };
        let drain = self.clone();
        std::thread::Builder::new().name("s3rp-signals".into()).spawn(move || {
            rt.block_on(async move {
                let first = next().await;
                tracing::info!(signal = first, "shutdown requested");
                drain.start();
                let second = next().await;
                tracing::warn!(signal = second, "second signal: exiting at once, in-flight requests are cut");
                std::process::exit(1);
            })
        })?;
        Ok(())
    }
}

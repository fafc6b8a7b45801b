//! Shared state: the configuration, the key caches, the origin connection
//! pool, the injected clock, and the metrics. One `AppState` per worker thread
//! (the metrics are shared by all of them).

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use http::StatusCode;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::config::Config;
use crate::forward::Forwarder;
use crate::metrics::{Metrics, Shard};
use crate::resign::Signer;
use crate::sigv4::KeyCache;

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

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) client_keys: KeyCache,
    pub(crate) origin_keys: KeyCache,
    pub(crate) forwarder: Forwarder,
    /// ORIGIN_SESSION_TOKEN as a sensitive header value, made once.
    pub(crate) origin_token: Option<http::HeaderValue>,
    pub(crate) clock: Arc<dyn Clock>,
    /// Shared by [`AppState::sibling`]s, so all workers share one probe.
    pub(crate) health: Arc<HealthCache>,
    /// Shared by [`AppState::sibling`]s; each worker counts into its own shard.
    pub(crate) metrics: Arc<Metrics>,
    /// This worker's counters in `metrics`.
    pub(crate) shard: Arc<Shard>,
}

/// Shared state: configuration, key caches, the one pooled origin client.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

impl AppState {
    pub fn new(config: Config) -> Self {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    pub fn with_clock(config: Config, clock: Arc<dyn Clock>) -> Self {
        Self::with_parts(config, clock, Arc::default())
    }

    /// A state whose workers ([`AppState::sibling`]s) count into `metrics`
    /// (the binary's, with counters of its own registered).
    pub fn with_metrics(config: Config, metrics: Arc<Metrics>) -> Self {
        Self::with_parts(config, Arc::new(SystemClock), metrics)
    }

    fn with_parts(config: Config, clock: Arc<dyn Clock>, metrics: Arc<Metrics>) -> Self {
        let health = Arc::new(HealthCache::new(config.health_cache));
        Self::build(config, clock, health, metrics)
    }

    /// A state for another worker: the same configuration, clock, `/healthz`
    /// cache and metrics (its own shard of them); its own key caches and
    /// origin connection pool.
    pub fn sibling(&self) -> Self {
        Self::build(self.0.config.clone(), self.0.clock.clone(), self.0.health.clone(), self.0.metrics.clone())
    }

    fn build(config: Config, clock: Arc<dyn Clock>, health: Arc<HealthCache>, metrics: Arc<Metrics>) -> Self {
        let shard = metrics.shard();
        Self(Arc::new(Inner {
            client_keys: KeyCache::new(config.client_secret_key.expose().as_bytes()),
            origin_keys: KeyCache::new(config.origin_secret_key.expose().as_bytes()),
            forwarder: Forwarder::new(
                &config.origin,
                config.origin_ca.as_deref(),
                config.connect_timeout,
                config.read_timeout,
            )
            .with_metrics(shard.clone()),
            origin_token: config.origin_session_token.as_ref().and_then(|t| {
                let mut v = http::HeaderValue::from_str(t.expose()).ok()?;
                v.set_sensitive(true);
                Some(v)
            }),
            config,
            clock,
            health,
            metrics,
            shard,
        }))
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.0.metrics
    }

    /// This worker's counters.
    pub fn shard(&self) -> &Arc<Shard> {
        &self.0.shard
    }

    pub(crate) fn signer(&self) -> Signer<'_> {
        let c = &self.0.config;
        Signer {
            origin: &c.origin,
            style: c.addressing.origin_style,
            access_key: &c.origin_access_key,
            keys: &self.0.origin_keys,
            region: &c.region,
            session_token: self.0.origin_token.as_ref(),
        }
    }
}

/// One origin probe's outcome, as `/healthz` reports it.
#[derive(Debug)]
pub(crate) struct Probe {
    /// None: unreachable or timed out.
    pub(crate) origin_status: Option<StatusCode>,
    pub(crate) latency: Duration,
    pub(crate) done: Instant,
}

/// The `/healthz` cache: a probe answers every check for HEALTH_CACHE_MS, and
/// checks that arrive while one runs wait for it rather than start their own.
pub(crate) struct HealthCache {
    ttl: Duration,
    slot: Mutex<Slot>,
}

#[derive(Default)]
struct Slot {
    last: Option<Arc<Probe>>,
    /// The probe under way: its number and where its result will appear.
    running: Option<(u64, watch::Receiver<Option<Arc<Probe>>>)>,
    started: u64,
}

/// What a check does, decided under the lock.
enum Turn {
    Cached(Arc<Probe>),
    Wait(watch::Receiver<Option<Arc<Probe>>>),
    Lead(u64, watch::Sender<Option<Arc<Probe>>>),
}

/// Clears a leader's `running` entry if its check is dropped mid-probe (the
/// client went away), so a waiting check takes over.
struct LeaderGone<'a>(&'a HealthCache, u64);

impl Drop for LeaderGone<'_> {
    fn drop(&mut self) {
        let mut slot = self.0.lock();
        if slot.running.as_ref().is_some_and(|(n, _)| *n == self.1) {
            slot.running = None;
        }
    }
}

impl HealthCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self { ttl, slot: Mutex::default() }
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The last probe if it is fresh, else the one under way, else a new one
    /// (`probe` runs only then).
    pub(crate) async fn get<F>(&self, probe: impl FnOnce() -> F) -> Arc<Probe>
    where
        F: Future<Output = Option<StatusCode>>,
    {
        let mut probe = Some(probe);
        loop {
            let turn = {
                let mut slot = self.lock();
                match (&slot.last, &slot.running) {
                    (Some(p), _) if p.done.elapsed() < self.ttl => Turn::Cached(p.clone()),
                    (_, Some((_, rx))) => Turn::Wait(rx.clone()),
                    _ => {
                        slot.started += 1;
                        let (tx, rx) = watch::channel(None);
                        slot.running = Some((slot.started, rx));
                        Turn::Lead(slot.started, tx)
                    }
                }
            };
            match turn {
                Turn::Cached(p) => return p,
                Turn::Wait(mut rx) => {
                    if let Ok(p) = rx.wait_for(Option::is_some).await
                        && let Some(p) = p.clone()
                    {
                        return p;
                    }
                    // The leader's check was dropped: look again.
                }
                Turn::Lead(n, tx) => {
                    // A check leads at most once, so `probe` is still here.
                    let Some(probe) = probe.take() else { continue };
                    let gone = LeaderGone(self, n);
                    let started = Instant::now();
                    let origin_status = probe().await;
                    let p = Arc::new(Probe { origin_status, latency: started.elapsed(), done: Instant::now() });
                    self.lock().last = Some(p.clone());
                    drop(gone);
                    let _ = tx.send(Some(p.clone()));
                    return p;
                }
            }
        }
    }
}

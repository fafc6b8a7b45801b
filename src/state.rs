//! Shared state: the configuration, the key caches, the origin connection
//! pool, the injected clock, and the metrics. One `AppState` per worker thread
//! (the metrics are shared by all of them).

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use http::StatusCode;
use time::OffsetDateTime;
use tokio::sync::watch;

use crate::access::Access;
use crate::config::{Config, Origin};
use crate::forward::Forwarder;
use crate::metrics::{Metrics, Shard};

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
    /// This worker's connection pools, one per origin.
    pub(crate) forwarders: Forwarders,
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
            forwarders: Forwarders { pools: Mutex::default(), shard: shard.clone() },
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

    /// The keys, rules, origins and routes now (a request keeps what it took).
    pub fn access(&self) -> Arc<Access> {
        self.0.config.access.load()
    }

    /// This worker's way to `origin`.
    pub(crate) fn forwarder(&self, origin: &Origin) -> Arc<Forwarder> {
        self.0.forwarders.get(origin, &self.0.config)
    }
}

/// A worker's connection pools, one per origin, made on first use (an
/// origin added by a reload gets its own; connections to one removed idle
/// out).
pub(crate) struct Forwarders {
    pools: Mutex<Vec<(Origin, Arc<Forwarder>)>>,
    shard: Arc<Shard>,
}

impl Forwarders {
    fn get(&self, origin: &Origin, config: &Config) -> Arc<Forwarder> {
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, f)) = pools.iter().find(|(o, _)| o == origin) {
            return f.clone();
        }
        let f = Arc::new(
            Forwarder::new(origin, config.origin_ca.as_deref(), config.connect_timeout, config.read_timeout)
                .with_metrics(self.shard.clone()),
        );
        pools.push((origin.clone(), f.clone()));
        f
    }
}

/// One health check's probes of every origin, as `/healthz` reports them.
#[derive(Debug)]
pub(crate) struct Probe {
    pub(crate) origins: Vec<OriginProbe>,
    pub(crate) done: Instant,
}

/// One origin's probe.
#[derive(Debug)]
pub(crate) struct OriginProbe {
    pub(crate) name: String,
    /// The origin requests without a bucket route go to.
    pub(crate) default: bool,
    /// None: unreachable or timed out.
    pub(crate) status: Option<StatusCode>,
    pub(crate) latency: Duration,
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
        F: Future<Output = Vec<OriginProbe>>,
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
                    let origins = probe().await;
                    let p = Arc::new(Probe { origins, done: Instant::now() });
                    self.lock().last = Some(p.clone());
                    drop(gone);
                    let _ = tx.send(Some(p.clone()));
                    return p;
                }
            }
        }
    }
}

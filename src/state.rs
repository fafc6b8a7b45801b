//! Shared state: the configuration, the key caches, the origin connection
//! pool, the injected clock, and the metrics. One `AppState` per worker thread
//! (the metrics are shared by all of them).

use std::sync::Arc;

use time::OffsetDateTime;

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
    pub(crate) clock: Arc<dyn Clock>,
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
        Self::from_parts(config, clock, Arc::default())
    }

    /// One worker's state, counting into `metrics`: the binary gives every
    /// worker the same ones, so one /metrics covers them all.
    pub fn from_parts(config: Config, clock: Arc<dyn Clock>, metrics: Arc<Metrics>) -> Self {
        let shard = metrics.shard();
        Self(Arc::new(Inner {
            client_keys: KeyCache::new(config.client_secret_key.expose().as_bytes()),
            origin_keys: KeyCache::new(config.origin_secret_key.expose().as_bytes()),
            forwarder: Forwarder::new(&config.origin, config.connect_timeout, config.read_timeout)
                .with_metrics(shard.clone()),
            config,
            clock,
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
        }
    }
}

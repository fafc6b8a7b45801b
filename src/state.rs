//! Shared state: the configuration, the key caches, the origin connection
//! pool, and the injected clock. One `AppState` per worker thread.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::config::Config;
use crate::forward::Forwarder;
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
}

/// Shared state: configuration, key caches, the one pooled origin client.
#[derive(Clone)]
pub struct AppState(pub(crate) Arc<Inner>);

impl AppState {
    pub fn new(config: Config) -> Self {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    pub fn with_clock(config: Config, clock: Arc<dyn Clock>) -> Self {
        Self(Arc::new(Inner {
            client_keys: KeyCache::new(config.client_secret_key.expose().as_bytes()),
            origin_keys: KeyCache::new(config.origin_secret_key.expose().as_bytes()),
            forwarder: Forwarder::new(
                &config.origin,
                config.origin_ca.as_deref(),
                config.connect_timeout,
                config.read_timeout,
            ),
            origin_token: config.origin_session_token.as_ref().and_then(|t| {
                let mut v = http::HeaderValue::from_str(t.expose()).ok()?;
                v.set_sensitive(true);
                Some(v)
            }),
            config,
            clock,
        }))
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

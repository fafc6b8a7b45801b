//! Configuration from the environment (envy), validated once at start-up.
//! Variable names match the Python s3proxy this replaces.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use http::uri::{Authority, Scheme};
use serde::Deserialize;

use crate::addressing::{Addressing, AddressingSettings};

/// A secret: never printed, never logged.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub(crate) fn new(s: String) -> Self {
        Self(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    client_access_key: Option<String>,
    #[serde(default)]
    client_secret_key: Option<Secret>,
    #[serde(default)]
    origin_access_key: Option<String>,
    #[serde(default)]
    origin_secret_key: Option<Secret>,
    #[serde(default)]
    origin_domain: Option<String>,
    #[serde(default)]
    access_file: String,
    #[serde(default)]
    cors_allowed_origins: String,
    #[serde(default)]
    cors_allowed_methods: String,
    #[serde(default)]
    cors_allowed_headers: String,
    #[serde(default)]
    cors_expose_headers: String,
    #[serde(default)]
    cors_max_age: Option<u64>,
    #[serde(default)]
    anonymous_access: String,
    #[serde(default = "default_scheme")]
    origin_scheme: String,
    #[serde(default = "default_region")]
    aws_region: String,
    #[serde(default = "default_host")]
    host: String,
    #[serde(default = "default_port")]
    port: u16,
    #[serde(default = "default_skew")]
    max_clock_skew: u64,
    #[serde(default = "default_healthcheck_path")]
    healthcheck_path: String,
    #[serde(default = "default_connect_timeout")]
    origin_connect_timeout: u64,
    #[serde(default = "default_read_timeout")]
    origin_read_timeout: u64,
    #[serde(default)]
    workers: usize,
    #[serde(default)]
    virtual_host_domains: String,
    #[serde(default)]
    origin_addressing: String,
    #[serde(default)]
    public_host: String,
    #[serde(default)]
    allowed_hosts: String,
    #[serde(default)]
    trusted_proxies: String,
    #[serde(default)]
    metrics_port: String,
    #[serde(default)]
    log_format: String,
    #[serde(default = "default_drain_grace")]
    drain_grace: f64,
    #[serde(default = "default_shutdown_timeout")]
    shutdown_timeout: f64,
    #[serde(default = "default_health_cache_ms")]
    health_cache_ms: u64,
    #[serde(default)]
    tls_cert: String,
    #[serde(default)]
    tls_key: String,
    #[serde(default)]
    origin_ca_bundle: String,
    #[serde(default)]
    origin_session_token: Option<Secret>,
}

fn default_scheme() -> String {
    "https".into()
}
fn default_region() -> String {
    "us-east-1".into()
}
fn default_host() -> String {
    "0.0.0.0".into()
}
fn default_port() -> u16 {
    8000
}
fn default_skew() -> u64 {
    900
}
fn default_healthcheck_path() -> String {
    "/".into()
}
fn default_connect_timeout() -> u64 {
    5
}
fn default_read_timeout() -> u64 {
    60
}
fn default_drain_grace() -> f64 {
    5.0
}
fn default_shutdown_timeout() -> f64 {
    30.0
}
fn default_health_cache_ms() -> u64 {
    1000
}

/// Where the proxy connects. Chosen by configuration only, never by a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: Scheme,
    /// `host[:port]`, also the `Host` the proxy signs toward the origin.
    authority: Authority,
    /// `authority` as a header value, made once rather than per request.
    host: HeaderValue,
}

impl Origin {
    pub fn new(scheme: Scheme, authority: Authority) -> Result<Self, http::header::InvalidHeaderValue> {
        let host = HeaderValue::from_str(authority.as_str())?;
        Ok(Self { scheme, authority, host })
    }
    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }
    pub fn authority(&self) -> &Authority {
        &self.authority
    }
    pub fn host(&self) -> &HeaderValue {
        &self.host
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The client keys and their rules, the origins and the bucket routes
    /// (CLIENT_*, ORIGIN_*, ACCESS_FILE); reloadable.
    pub access: Arc<crate::access::AccessStore>,
    /// CORS_*: the CORS policy of buckets without their own (None: CORS off).
    pub cors: Option<Arc<crate::cors::CorsPolicy>>,
    /// ANONYMOUS_ACCESS: what becomes of a request without credentials, for
    /// buckets without their own setting.
    pub anonymous: crate::anonymous::AnonymousAccess,
    pub listen: SocketAddr,
    pub max_clock_skew: Duration,
    pub connect_timeout: Duration,
    /// How long the origin may stay silent (no response, no body progress).
    pub read_timeout: Duration,
    /// Worker threads, each with its own runtime and origin connection pool
    /// (WORKERS; 0 or unset: one per CPU).
    pub workers: usize,
    /// Virtual-hosted buckets, the signed host, the origin's addressing
    /// (VIRTUAL_HOST_DOMAINS, PUBLIC_HOST, ALLOWED_HOSTS, TRUSTED_PROXIES,
    /// ORIGIN_ADDRESSING).
    pub addressing: Addressing,
    /// METRICS_PORT: `/metrics` on its own listener (on HOST) instead of the
    /// main one.
    pub metrics_port: Option<u16>,
    /// LOG_FORMAT: `text` or `json` (read by the binary before this config,
    /// to log in it; validated here too).
    pub log_format: crate::access_log::LogFormat,
    /// After SIGTERM/SIGINT, how long `/healthz` says draining while the
    /// listener still accepts (DRAIN_GRACE, seconds).
    pub drain_grace: Duration,
    /// Then, how long in-flight requests may take before their connections
    /// are cut (SHUTDOWN_TIMEOUT, seconds).
    pub shutdown_timeout: Duration,
    /// How long one origin probe answers `/healthz` (HEALTH_CACHE_MS).
    pub health_cache: Duration,
    /// Built-in HTTPS (TLS_CERT, TLS_KEY): one certificate store that every
    /// worker's acceptor shares, and that reloads swap.
    pub tls: Option<Arc<crate::tls::Tls>>,
    /// ORIGIN_CA_BUNDLE: the roots an https origin is verified against,
    /// instead of the system's.
    pub origin_ca: Option<Arc<rustls::RootCertStore>>,
}

/// A configuration error: one line naming the variable, never its secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

pub(crate) fn bad(var: &str, why: &str) -> ConfigError {
    ConfigError(format!("invalid {var}: {why}"))
}

fn missing(var: &str) -> ConfigError {
    ConfigError(format!("missing required variable {var}"))
}

fn required(var: &str, v: Option<String>) -> Result<String, ConfigError> {
    v.ok_or_else(|| missing(var))
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// The configuration these variables give. ACCESS_FILE is read now, and
    /// the variables its `*_env` entries name are looked up among `vars` (then
    /// in the process environment), now and on each reload.
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        let raw: Raw = envy::from_iter(vars.iter().cloned()).map_err(|e| match e {
            envy::Error::MissingValue(field) => {
                ConfigError(format!("missing required variable {}", field.to_ascii_uppercase()))
            }
            // envy names the variable; only numeric fields can fail to parse, so
            // no secret value is ever in this message.
            envy::Error::Custom(msg) => ConfigError(format!("invalid configuration: {msg}")),
        })?;
        let env = vars.into_iter().map(|(k, v)| (k, Secret(v))).collect();
        Self::validate(raw, env)
    }

    fn validate(mut raw: Raw, vars: std::collections::HashMap<String, Secret>) -> Result<Self, ConfigError> {
        let access_file = raw.access_file.trim().to_owned();
        // Unset and empty are the same; with ACCESS_FILE each group is optional.
        let blank = |v: &Option<String>| v.as_deref().is_none_or(str::is_empty);
        let blank_secret = |v: &Option<Secret>| v.as_ref().is_none_or(|s| s.expose().is_empty());
        let client_set = !blank(&raw.client_access_key) || !blank_secret(&raw.client_secret_key);
        let origin_set =
            !blank(&raw.origin_domain) || !blank(&raw.origin_access_key) || !blank_secret(&raw.origin_secret_key);
        let client = if client_set || access_file.is_empty() {
            let ak = required("CLIENT_ACCESS_KEY", raw.client_access_key.take())?;
            let sk = raw.client_secret_key.take().ok_or_else(|| missing("CLIENT_SECRET_KEY"))?;
            Some((ak, sk))
        } else {
            None
        };
        let origin = if origin_set || access_file.is_empty() {
            let ak = required("ORIGIN_ACCESS_KEY", raw.origin_access_key.take())?;
            let sk = raw.origin_secret_key.take().ok_or_else(|| missing("ORIGIN_SECRET_KEY"))?;
            let domain = raw.origin_domain.take().filter(|d| !d.is_empty()).ok_or_else(|| missing("ORIGIN_DOMAIN"))?;
            Some((ak, sk, domain))
        } else {
            None
        };
        for (var, v) in
            [("CLIENT_ACCESS_KEY", client.as_ref().map(|c| &c.0)), ("ORIGIN_ACCESS_KEY", origin.as_ref().map(|o| &o.0))]
        {
            if v.is_some_and(|v| v.is_empty() || v.chars().any(|c| c.is_whitespace() || c == '/' || c.is_control())) {
                return Err(bad(var, "must be non-empty, without spaces or '/'"));
            }
        }
        for (var, v) in
            [("CLIENT_SECRET_KEY", client.as_ref().map(|c| &c.1)), ("ORIGIN_SECRET_KEY", origin.as_ref().map(|o| &o.1))]
        {
            if v.is_some_and(|v| v.expose().is_empty()) {
                return Err(bad(var, "must not be empty"));
            }
        }
        if raw.aws_region.is_empty() || !raw.aws_region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(bad("AWS_REGION", "must be a region name such as us-east-1"));
        }
        let ip: IpAddr = raw.host.parse().map_err(|_| bad("HOST", "must be an IP address such as 0.0.0.0"))?;
        if !raw.healthcheck_path.starts_with('/') || raw.healthcheck_path.parse::<http::uri::PathAndQuery>().is_err() {
            return Err(bad("HEALTHCHECK_PATH", "must be a path starting with '/'"));
        }
        if raw.origin_connect_timeout == 0 || raw.origin_read_timeout == 0 {
            return Err(bad("ORIGIN_CONNECT_TIMEOUT/ORIGIN_READ_TIMEOUT", "must be at least 1 second"));
        }
        let seconds = |var: &str, v: f64| {
            Duration::try_from_secs_f64(v).map_err(|_| bad(var, "must be a number of seconds, 0 or more"))
        };
        let drain_grace = seconds("DRAIN_GRACE", raw.drain_grace)?;
        let shutdown_timeout = seconds("SHUTDOWN_TIMEOUT", raw.shutdown_timeout)?;
        let addressing = Addressing::from_settings(&AddressingSettings {
            virtual_host_domains: &raw.virtual_host_domains,
            origin_addressing: &raw.origin_addressing,
            public_host: &raw.public_host,
            allowed_hosts: &raw.allowed_hosts,
            trusted_proxies: &raw.trusted_proxies,
        })?;
        let metrics_port = match raw.metrics_port.trim() {
            "" => None,
            p => match p.parse::<u16>() {
                Ok(n) if n != 0 && n == raw.port => return Err(bad("METRICS_PORT", "must differ from PORT")),
                Ok(n) => Some(n),
                Err(_) => return Err(bad("METRICS_PORT", "must be a port number")),
            },
        };
        let log_format = crate::access_log::LogFormat::parse(&raw.log_format)?;
        let tls = match (raw.tls_cert.as_str(), raw.tls_key.as_str()) {
            ("", "") => None,
            ("", _) | (_, "") => return Err(bad("TLS_CERT/TLS_KEY", "set both (PEM files) or neither")),
            (cert, key) => {
                Some(Arc::new(crate::tls::Tls::load(Path::new(cert), Path::new(key)).map_err(|e| ConfigError(e.0))?))
            }
        };
        let origin_ca = match raw.origin_ca_bundle.as_str() {
            "" => None,
            path => Some(Arc::new(crate::tls::load_ca_bundle(Path::new(path)).map_err(|e| ConfigError(e.0))?)),
        };
        let origin_session_token = raw.origin_session_token.filter(|t| !t.expose().is_empty());
        if let Some(t) = &origin_session_token
            && (HeaderValue::from_str(t.expose()).is_err() || t.expose().contains(char::is_whitespace))
        {
            return Err(bad("ORIGIN_SESSION_TOKEN", "must be printable ASCII without spaces"));
        }
        let env_origin = match origin {
            Some((access_key, secret, domain)) => {
                let origin = parse_origin(&domain, &raw.origin_scheme, "ORIGIN_DOMAIN")?;
                Some(crate::access::EnvOrigin {
                    style: addressing.origin_style.check(&origin, "ORIGIN_ADDRESSING")?,
                    origin,
                    access_key,
                    secret,
                    region: raw.aws_region,
                    token: origin_session_token,
                    healthcheck_path: raw.healthcheck_path,
                })
            }
            None => None,
        };
        let file = (!access_file.is_empty()).then(|| std::path::PathBuf::from(&access_file));
        let access =
            crate::access::AccessStore::new(crate::access::EnvAccess { client, origin: env_origin }, file, vars)
                .map_err(|e| ConfigError(e.0))?;
        let cors = crate::cors::CorsPolicy::from_settings(
            &crate::cors::CorsSettings {
                allowed_origins: crate::cors::list(&raw.cors_allowed_origins),
                allowed_methods: crate::cors::list(&raw.cors_allowed_methods),
                allowed_headers: crate::cors::list(&raw.cors_allowed_headers),
                expose_headers: crate::cors::list(&raw.cors_expose_headers),
                max_age: raw.cors_max_age,
            },
            "CORS_*",
        )?
        .map(Arc::new);
        let anonymous = crate::anonymous::AnonymousAccess::parse(&raw.anonymous_access, "ANONYMOUS_ACCESS")?;
        Ok(Self {
            cors,
            anonymous,
            access: Arc::new(access),
            tls,
            origin_ca,
            addressing,
            metrics_port,
            log_format,
            listen: SocketAddr::new(ip, raw.port),
            max_clock_skew: Duration::from_secs(raw.max_clock_skew),
            connect_timeout: Duration::from_secs(raw.origin_connect_timeout),
            read_timeout: Duration::from_secs(raw.origin_read_timeout),
            drain_grace,
            shutdown_timeout,
            health_cache: Duration::from_millis(raw.health_cache_ms),
            workers: match raw.workers {
                0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                n if n <= 1024 => n,
                _ => return Err(bad("WORKERS", "must be at most 1024")),
            },
        })
    }
}

/// `host[:port]` (with ORIGIN_SCHEME), or `http://host:port` / `https://host:port`.
/// `what` names the setting in errors (ORIGIN_DOMAIN, or an ACCESS_FILE origin's domain).
pub(crate) fn parse_origin(domain: &str, scheme: &str, what: &str) -> Result<Origin, ConfigError> {
    let (scheme, rest) = if let Some(r) = domain.strip_prefix("http://") {
        (Scheme::HTTP, r)
    } else if let Some(r) = domain.strip_prefix("https://") {
        (Scheme::HTTPS, r)
    } else if domain.contains("://") {
        return Err(bad(what, "the scheme must be http or https"));
    } else {
        let s = match scheme {
            "https" => Scheme::HTTPS,
            "http" => Scheme::HTTP,
            _ => return Err(bad("ORIGIN_SCHEME", "must be https or http")),
        };
        (s, domain)
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() || rest.contains(['/', '@', '?', '#']) || rest.contains(char::is_whitespace) {
        return Err(bad(what, "must be host[:port] or http(s)://host[:port], without a path"));
    }
    let authority: Authority = rest.parse().map_err(|_| bad(what, "is not a valid host[:port]"))?;
    if authority.host().is_empty() {
        return Err(bad(what, "has no host"));
    }
    Origin::new(scheme, authority).map_err(|_| bad(what, "is not a valid host[:port]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = [
            ("CLIENT_ACCESS_KEY", "cak"),
            ("CLIENT_SECRET_KEY", "csk-very-secret"),
            ("ORIGIN_ACCESS_KEY", "oak"),
            ("ORIGIN_SECRET_KEY", "osk-very-secret"),
            ("ORIGIN_DOMAIN", "s3.example.com"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, val) in extra {
            v.retain(|(kk, _)| kk != k);
            if !val.is_empty() || *k == "CLIENT_SECRET_KEY" {
                v.push((k.to_string(), val.to_string()));
            }
        }
        v
    }

    #[test]
    fn defaults() {
        let c = Config::from_vars(vars(&[])).unwrap();
        let access = c.access.load();
        let o = access.default_origin();
        assert_eq!(o.origin.scheme, Scheme::HTTPS);
        assert_eq!(o.origin.authority.as_str(), "s3.example.com");
        assert_eq!(o.region, "us-east-1");
        assert_eq!(c.listen, "0.0.0.0:8000".parse().unwrap());
        assert_eq!(c.max_clock_skew, Duration::from_secs(900));
        assert_eq!(o.healthcheck_path, "/");
        assert!(c.workers >= 1);
        assert!(!format!("{c:?}").contains("very-secret"));
        assert_eq!((c.drain_grace, c.shutdown_timeout), (Duration::from_secs(5), Duration::from_secs(30)));
        assert_eq!(c.health_cache, Duration::from_millis(1000));
    }

    #[test]
    fn drain_settings() {
        let c =
            Config::from_vars(vars(&[("DRAIN_GRACE", "0.25"), ("SHUTDOWN_TIMEOUT", "0"), ("HEALTH_CACHE_MS", "0")]))
                .unwrap();
        assert_eq!((c.drain_grace, c.shutdown_timeout), (Duration::from_millis(250), Duration::ZERO));
        assert_eq!(c.health_cache, Duration::ZERO);
        for bad in ["-1", "NaN", "inf", "soon"] {
            let e = Config::from_vars(vars(&[("DRAIN_GRACE", bad)])).unwrap_err();
            assert!(e.0.contains("DRAIN_GRACE") || e.0.contains("drain_grace"), "{bad}: {e}");
        }
    }

    #[test]
    fn origin_forms() {
        let origin = |c: Config| c.access.load().default_origin().origin.clone();
        let o = origin(Config::from_vars(vars(&[("ORIGIN_DOMAIN", "http://127.0.0.1:9000/")])).unwrap());
        assert_eq!((o.scheme, o.authority.as_str()), (Scheme::HTTP, "127.0.0.1:9000"));
        let o = origin(Config::from_vars(vars(&[("ORIGIN_DOMAIN", "minio:9000"), ("ORIGIN_SCHEME", "http")])).unwrap());
        assert_eq!((o.scheme, o.authority.as_str()), (Scheme::HTTP, "minio:9000"));
        for bad in ["ftp://x", "http://x/path", "", "a b", "user@host"] {
            assert!(Config::from_vars(vars(&[("ORIGIN_DOMAIN", bad)])).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_name_the_variable_and_hide_secrets() {
        let e = Config::from_vars(vars(&[("ORIGIN_DOMAIN", "")])).unwrap_err();
        assert_eq!(e.0, "missing required variable ORIGIN_DOMAIN");
        let e = Config::from_vars(vars(&[("PORT", "eighty")])).unwrap_err();
        assert!(e.0.contains("PORT"), "{e}");
        let e = Config::from_vars(vars(&[("CLIENT_SECRET_KEY", "")])).unwrap_err();
        assert_eq!(e.0, "invalid CLIENT_SECRET_KEY: must not be empty");
        let e = Config::from_vars(vars(&[("ORIGIN_SCHEME", "gopher")])).unwrap_err();
        assert!(e.0.contains("ORIGIN_SCHEME"));
        let e = Config::from_vars(vars(&[("HOST", "nowhere")])).unwrap_err();
        assert!(e.0.contains("HOST"));
        let e = Config::from_vars(vars(&[("METRICS_PORT", "x")])).unwrap_err();
        assert!(e.0.contains("METRICS_PORT"));
        let e = Config::from_vars(vars(&[("METRICS_PORT", "8000")])).unwrap_err();
        assert!(e.0.contains("METRICS_PORT"), "the main port");
        let e = Config::from_vars(vars(&[("LOG_FORMAT", "xml")])).unwrap_err();
        assert!(e.0.contains("LOG_FORMAT"));
    }

    #[test]
    fn metrics_port_and_log_format() {
        let c = Config::from_vars(vars(&[])).unwrap();
        assert_eq!((c.metrics_port, c.log_format), (None, crate::access_log::LogFormat::Text));
        let c = Config::from_vars(vars(&[("METRICS_PORT", "9100"), ("LOG_FORMAT", "json")])).unwrap();
        assert_eq!((c.metrics_port, c.log_format), (Some(9100), crate::access_log::LogFormat::Json));
    }

    #[test]
    fn tls_settings() {
        let e = Config::from_vars(vars(&[("TLS_CERT", "/nowhere/cert.pem")])).unwrap_err();
        assert_eq!(e.0, "invalid TLS_CERT/TLS_KEY: set both (PEM files) or neither");
        let e = Config::from_vars(vars(&[("TLS_KEY", "/nowhere/key.pem")])).unwrap_err();
        assert_eq!(e.0, "invalid TLS_CERT/TLS_KEY: set both (PEM files) or neither");
        let e = Config::from_vars(vars(&[("TLS_CERT", "/nowhere/c.pem"), ("TLS_KEY", "/nowhere/k.pem")])).unwrap_err();
        assert!(e.0.starts_with("cannot read TLS_CERT /nowhere/c.pem: "), "{e}");
        let e = Config::from_vars(vars(&[("ORIGIN_CA_BUNDLE", "/nowhere/ca.pem")])).unwrap_err();
        assert!(e.0.starts_with("cannot read ORIGIN_CA_BUNDLE /nowhere/ca.pem: "), "{e}");
        let c = Config::from_vars(vars(&[])).unwrap();
        assert!(c.tls.is_none() && c.origin_ca.is_none() && c.access.load().default_origin().token.is_none());
    }

    #[test]
    fn session_token_is_a_secret() {
        let c = Config::from_vars(vars(&[("ORIGIN_SESSION_TOKEN", "FwoGZXIvYXdzEBYaDTOKEN-very-secret/+=")])).unwrap();
        let token = c.access.load().default_origin().token.clone().unwrap();
        assert_eq!(token.to_str().unwrap(), "FwoGZXIvYXdzEBYaDTOKEN-very-secret/+=");
        assert!(token.is_sensitive());
        assert!(!format!("{c:?}").contains("very-secret"));
        let mut v = vars(&[]);
        v.push(("ORIGIN_SESSION_TOKEN".into(), String::new()));
        assert!(Config::from_vars(v).unwrap().access.load().default_origin().token.is_none(), "empty is unset");
        let e = Config::from_vars(vars(&[("ORIGIN_SESSION_TOKEN", "two very-secret")])).unwrap_err();
        assert_eq!(e.0, "invalid ORIGIN_SESSION_TOKEN: must be printable ASCII without spaces");
    }
}

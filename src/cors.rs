//! CORS for browsers on other origins: the proxy answers preflights itself
//! and adds the CORS headers to every response for an allowed origin, errors
//! included (a page must be able to read a 403's XML).
//!
//! The policy comes from CORS_* (the default) or from an ACCESS_FILE
//! `[[buckets]]` entry's `cors` (for its buckets). Without one, CORS is off:
//! an `OPTIONS` is refused (or, with ANONYMOUS_ACCESS=forward, forwarded so the
//! origin's own bucket CORS answers).
//!
//! <https://fetch.spec.whatwg.org/#http-cors-protocol>
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/cors.html>

use http::{HeaderMap, HeaderValue, Method, header};
use serde::Deserialize;

use crate::config::ConfigError;

/// The headers a page may read by default: what uploads and SDKs need.
pub const DEFAULT_EXPOSE: &str =
    "ETag,x-amz-request-id,x-amz-version-id,x-amz-id-2,Content-Length,Content-Type,Last-Modified";
const DEFAULT_METHODS: &str = "GET,PUT,POST,DELETE,HEAD";
const DEFAULT_MAX_AGE: u64 = 3600;

/// One CORS policy, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsPolicy {
    /// None: any origin (`*`).
    origins: Option<Vec<String>>,
    methods: Vec<Method>,
    /// None: any requested header (`*`), echoed back.
    headers: Option<Vec<String>>,
    /// Made once: `Access-Control-Expose-Headers`, `-Allow-Methods`, `-Max-Age`.
    expose: HeaderValue,
    allow_methods: HeaderValue,
    max_age: HeaderValue,
}

/// The settings of a policy, as text (the env's comma lists, or TOML lists).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSettings {
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub allowed_methods: Vec<String>,
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    pub max_age: Option<u64>,
}

/// Comma-separated, trimmed, non-empty items.
pub(crate) fn list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|i| !i.is_empty()).map(str::to_owned).collect()
}

fn bad(what: &str, why: &str) -> ConfigError {
    ConfigError(format!("invalid {what}: {why}"))
}

impl CorsPolicy {
    /// `what` names the setting in errors (CORS_ALLOWED_ORIGINS…, or a
    /// bucket entry's `cors`). An empty origin list is no policy.
    pub fn from_settings(s: &CorsSettings, what: &str) -> Result<Option<Self>, ConfigError> {
        if s.allowed_origins.is_empty() {
            return Ok(None);
        }
        let origins = if s.allowed_origins.iter().any(|o| o == "*") {
            if s.allowed_origins.len() > 1 {
                return Err(bad(what, "allowed origins: `*` or a list, not both"));
            }
            None
        } else {
            for o in &s.allowed_origins {
                let ok = (o.starts_with("http://") || o.starts_with("https://"))
                    && !o.ends_with('/')
                    && o.parse::<http::Uri>().is_ok_and(|u| u.path() == "/" && u.query().is_none())
                    && HeaderValue::from_str(o).is_ok();
                if !ok {
                    return Err(bad(
                        what,
                        "each allowed origin must be scheme://host[:port], such as https://app.example.com",
                    ));
                }
            }
            Some(s.allowed_origins.iter().map(|o| o.to_ascii_lowercase()).collect())
        };
        let methods_text = if s.allowed_methods.is_empty() { list(DEFAULT_METHODS) } else { s.allowed_methods.clone() };
        let mut methods = Vec::new();
        for m in &methods_text {
            let m = m.to_ascii_uppercase();
            match m.as_str() {
                "GET" | "PUT" | "POST" | "DELETE" | "HEAD" => {
                    methods.push(Method::from_bytes(m.as_bytes()).map_err(|_| bad(what, "bad method"))?)
                }
                _ => return Err(bad(what, "allowed methods are among GET, PUT, POST, DELETE, HEAD")),
            }
        }
        let headers = if s.allowed_headers.is_empty() || s.allowed_headers.iter().any(|h| h == "*") {
            None
        } else {
            for h in &s.allowed_headers {
                if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                    return Err(bad(what, "each allowed header must be a header name (or *)"));
                }
            }
            Some(s.allowed_headers.iter().map(|h| h.to_ascii_lowercase()).collect())
        };
        let expose_text = if s.expose_headers.is_empty() { list(DEFAULT_EXPOSE) } else { s.expose_headers.clone() };
        if expose_text.iter().any(|h| http::HeaderName::from_bytes(h.as_bytes()).is_err()) {
            return Err(bad(what, "each exposed header must be a header name"));
        }
        let value = |s: String| HeaderValue::from_str(&s).map_err(|_| bad(what, "not a valid header value"));
        Ok(Some(Self {
            origins,
            allow_methods: value(methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", "))?,
            methods,
            headers,
            expose: value(expose_text.join(", "))?,
            max_age: value(s.max_age.unwrap_or(DEFAULT_MAX_AGE).to_string())?,
        }))
    }

    fn allows_origin(&self, origin: &str) -> bool {
        match &self.origins {
            None => true,
            Some(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)),
        }
    }

    /// `Access-Control-Allow-Origin`: `*` for any origin, else the origin itself.
    fn allow_origin_value(&self, origin: &HeaderValue) -> HeaderValue {
        if self.origins.is_none() { HeaderValue::from_static("*") } else { origin.clone() }
    }

    /// Answers a preflight: Ok with the response headers, or Err with why it
    /// is refused (S3's 403 AccessForbidden).
    pub fn preflight(&self, headers: &HeaderMap) -> Result<HeaderMap, String> {
        let origin = headers.get(header::ORIGIN).ok_or("the preflight has no Origin")?;
        let origin_text = origin.to_str().map_err(|_| "the Origin is not ASCII")?;
        if !self.allows_origin(origin_text) {
            return Err("the origin is not allowed".into());
        }
        let method = headers
            .get(header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
            .ok_or("the preflight has no valid Access-Control-Request-Method")?;
        if !self.methods.contains(&method) {
            return Err(format!("the method {method} is not allowed"));
        }
        let requested = headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS);
        if let (Some(allowed), Some(req)) = (&self.headers, requested) {
            let req = req.to_str().map_err(|_| "Access-Control-Request-Headers is not ASCII")?;
            for h in req.split(',').map(str::trim).filter(|h| !h.is_empty()) {
                if !allowed.iter().any(|a| a.eq_ignore_ascii_case(h)) {
                    return Err(format!("the header {h} is not allowed"));
                }
            }
        }
        let mut out = HeaderMap::new();
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, self.allow_origin_value(origin));
        out.insert(header::ACCESS_CONTROL_ALLOW_METHODS, self.allow_methods.clone());
        if let Some(req) = requested {
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, req.clone());
        }
        out.insert(header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        out.insert(header::VARY, vary());
        Ok(out)
    }

    /// The CORS headers of an actual response to a request from `origin`
    /// (none when it is not allowed).
    pub fn decorate(&self, origin: &HeaderValue, response: &mut HeaderMap) {
        if !origin.to_str().is_ok_and(|o| self.allows_origin(o)) {
            return;
        }
        response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, self.allow_origin_value(origin));
        response.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, self.expose.clone());
        response.append(header::VARY, vary());
    }
}

fn vary() -> HeaderValue {
    HeaderValue::from_static("Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
}

/// Is this a CORS preflight (an `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`)?
pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::OPTIONS
        && headers.contains_key(header::ORIGIN)
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(origins: &[&str], headers: &[&str]) -> CorsPolicy {
        let s = CorsSettings {
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            allowed_headers: headers.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        CorsPolicy::from_settings(&s, "CORS").unwrap().unwrap()
    }

    fn req(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap())).collect()
    }

    #[test]
    fn preflights() {
        let p = policy(&["http://app.test:5500"], &[]);
        let ok = p
            .preflight(&req(&[
                ("origin", "http://app.test:5500"),
                ("access-control-request-method", "PUT"),
                ("access-control-request-headers", "content-type,x-amz-meta-a"),
            ]))
            .unwrap();
        assert_eq!(ok["access-control-allow-origin"], "http://app.test:5500");
        assert_eq!(ok["access-control-allow-headers"], "content-type,x-amz-meta-a");
        assert_eq!(ok["access-control-max-age"], "3600");
        assert!(ok["access-control-allow-methods"].to_str().unwrap().contains("PUT"));
        let no = |h: &[(&str, &str)]| p.preflight(&req(h)).unwrap_err();
        assert!(no(&[("origin", "http://evil.test"), ("access-control-request-method", "GET")]).contains("origin"));
        assert!(
            no(&[("origin", "http://app.test:5500"), ("access-control-request-method", "PATCH")]).contains("PATCH")
        );
        let strict = policy(&["*"], &["content-type"]);
        let ok =
            strict.preflight(&req(&[("origin", "http://x.test"), ("access-control-request-method", "GET")])).unwrap();
        assert_eq!(ok["access-control-allow-origin"], "*");
        let e = strict
            .preflight(&req(&[
                ("origin", "http://x.test"),
                ("access-control-request-method", "PUT"),
                ("access-control-request-headers", "content-type, x-secret"),
            ]))
            .unwrap_err();
        assert!(e.contains("x-secret"), "{e}");
    }

    #[test]
    fn responses_are_decorated_for_allowed_origins_only() {
        let p = policy(&["https://a.test"], &[]);
        let mut h = HeaderMap::new();
        p.decorate(&HeaderValue::from_static("https://b.test"), &mut h);
        assert!(h.is_empty());
        p.decorate(&HeaderValue::from_static("https://a.test"), &mut h);
        assert_eq!(h["access-control-allow-origin"], "https://a.test");
        assert!(h["access-control-expose-headers"].to_str().unwrap().contains("ETag"));
    }

    #[test]
    fn settings_are_checked() {
        let bad = |o: &[&str], m: &[&str]| {
            let s = CorsSettings {
                allowed_origins: o.iter().map(|s| s.to_string()).collect(),
                allowed_methods: m.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            };
            CorsPolicy::from_settings(&s, "CORS_ALLOWED_ORIGINS").is_err()
        };
        assert!(bad(&["app.test"], &[]) && bad(&["http://a.test/"], &[]) && bad(&["*", "http://a.test"], &[]));
        assert!(bad(&["http://a.test/path"], &[]) && bad(&["http://a.test"], &["PATCH"]));
        assert!(!bad(&["http://a.test", "https://b.test:8443"], &["get", "put"]));
        assert!(CorsPolicy::from_settings(&CorsSettings::default(), "x").unwrap().is_none());
    }
}

//! Which host a client signed and which bucket it addresses (request in →
//! intake → **address** → verify), and where that bucket goes at the origin
//! (verify → **route** → re-sign).
//!
//! - The signed host: a forwarded host from a trusted proxy, else PUBLIC_HOST,
//!   else the Host header. ALLOWED_HOSTS is checked against it.
//! - The bucket: a signed host `<bucket>.<domain>` under one of
//!   VIRTUAL_HOST_DOMAINS is virtual-hosted style; any other host is path style.
//! - The route: ORIGIN_ADDRESSING `path` sends `/bucket/key` to the origin's
//!   host; `virtual` sends `/key` with Host `bucket.<origin host>`. The proxy
//!   always connects to the origin's own address ([`crate::forward`] resolves
//!   the origin's name, never the bucket's).
//!
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/VirtualHosting.html>
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html>
//! <https://www.rfc-editor.org/rfc/rfc7239> (`Forwarded`)

use std::borrow::Cow;
use std::net::IpAddr;
use std::ops::Range;

use http::uri::{Authority, Scheme};
use http::{HeaderMap, HeaderValue, header};
use ipnet::IpNet;

use crate::config::{ConfigError, Origin};
use crate::error::Error;
use crate::intake::valid_host;

const X_FORWARDED_HOST: &str = "x-forwarded-host";
const FORWARDED: &str = "forwarded";

/// How the origin is addressed (ORIGIN_ADDRESSING).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OriginStyle {
    /// `/bucket/key` at the origin's host.
    #[default]
    Path,
    /// `/key` at `bucket.<origin host>`.
    Virtual,
}

impl OriginStyle {
    /// `path` (or nothing) or `virtual`; `what` names the setting in errors.
    pub fn parse(text: &str, what: &str) -> Result<Self, ConfigError> {
        match text.trim() {
            "" | "path" => Ok(Self::Path),
            "virtual" => Ok(Self::Virtual),
            _ => Err(bad(what, "must be path or virtual")),
        }
    }

    /// Virtual-hosted origin requests put the bucket in front of the
    /// origin's host name, so the origin must have one.
    pub fn check(self, origin: &Origin, what: &str) -> Result<Self, ConfigError> {
        let host = origin.authority().host();
        if self == Self::Virtual && (host.starts_with('[') || host.parse::<IpAddr>().is_ok()) {
            return Err(bad(what, "virtual needs the origin to be a host name, not an IP address"));
        }
        Ok(self)
    }
}

/// A host split into its name (lower case) and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HostPort<'a> {
    name: &'a str,
    port: Option<&'a str>,
}

/// `host[:port]` or `[v6]:port` → name and port. The caller checked the syntax.
fn split_host(h: &str) -> HostPort<'_> {
    let (name, port) = if h.starts_with('[') {
        match h.find(']') {
            Some(end) => (&h[..=end], h[end + 1..].strip_prefix(':')),
            None => (h, None),
        }
    } else {
        match h.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (h, None),
        }
    };
    // `bkt.s3.example.com.` (a fully qualified name) is `bkt.s3.example.com`:
    // left alone, it would not match its domain and would be read path style.
    let name = name.strip_suffix('.').filter(|n| !n.is_empty()).unwrap_or(name);
    HostPort { name, port }
}

/// One of VIRTUAL_HOST_DOMAINS: a name, and a port that must match if given.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Domain {
    /// Lower case, with a leading `.`: what a virtual-hosted name ends with.
    dotted: String,
    port: Option<String>,
}

/// Which ports an ALLOWED_HOSTS pattern accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PortRule {
    /// No port in the pattern: only a host sent without one.
    None,
    Any,
    Exact(String),
}

/// One ALLOWED_HOSTS pattern: `name` or `*.name`, with `:port` or `:*`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostPattern {
    /// Lower case; for `*.name`, the suffix `.name`.
    name: String,
    wildcard: bool,
    port: PortRule,
}

impl HostPattern {
    fn matches(&self, h: HostPort<'_>) -> bool {
        let name_ok = if self.wildcard {
            h.name.len() > self.name.len() && ends_with_ignore_case(h.name, &self.name)
        } else {
            h.name.eq_ignore_ascii_case(&self.name)
        };
        name_ok
            && match (&self.port, h.port) {
                (PortRule::None, None) | (PortRule::Any, _) => true,
                (PortRule::Exact(p), Some(q)) => p == q,
                _ => false,
            }
    }
}

fn ends_with_ignore_case(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len() && s.as_bytes()[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
}

/// The settings of this module, as read from the environment.
#[derive(Debug, Default)]
pub struct AddressingSettings<'a> {
    pub virtual_host_domains: &'a str,
    pub origin_addressing: &'a str,
    pub public_host: &'a str,
    pub allowed_hosts: &'a str,
    pub trusted_proxies: &'a str,
}

/// The host policy: which host a request is verified against, which bucket
/// it names, and how the origin is addressed. Built once, from configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addressing {
    /// Longest first, so that `s3.example.com` wins over `example.com`.
    domains: Vec<Domain>,
    public_host: Option<String>,
    allowed: Vec<HostPattern>,
    trusted: Vec<IpNet>,
    pub origin_style: OriginStyle,
}

fn bad(var: &str, why: &str) -> ConfigError {
    ConfigError(format!("invalid {var}: {why}"))
}

/// Comma-separated, trimmed, non-empty items.
fn items(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|i| !i.is_empty())
}

impl Addressing {
    pub fn from_settings(s: &AddressingSettings<'_>) -> Result<Self, ConfigError> {
        let mut domains = Vec::new();
        for d in items(s.virtual_host_domains) {
            let d = d.to_ascii_lowercase();
            if !valid_host(d.as_bytes()) || d.starts_with(['[', '.', '*']) || d.parse::<IpAddr>().is_ok() {
                return Err(bad("VIRTUAL_HOST_DOMAINS", "each must be a domain name such as s3.example.com"));
            }
            let hp = split_host(&d);
            domains.push(Domain { dotted: format!(".{}", hp.name), port: hp.port.map(str::to_owned) });
        }
        domains.sort_by_key(|d| std::cmp::Reverse(d.dotted.len()));

        let origin_style = OriginStyle::parse(s.origin_addressing, "ORIGIN_ADDRESSING")?;

        let public_host = match s.public_host.trim() {
            "" => None,
            h if valid_host(h.as_bytes()) => Some(h.to_ascii_lowercase()),
            _ => return Err(bad("PUBLIC_HOST", "must be host[:port]")),
        };

        let mut allowed = Vec::new();
        for p in items(s.allowed_hosts) {
            allowed.push(parse_pattern(p).ok_or_else(|| {
                bad(
                    "ALLOWED_HOSTS",
                    "each must be name, *.name, with an optional :port or :* (e.g. *.s3.example.com:*)",
                )
            })?);
        }

        let mut trusted = Vec::new();
        for c in items(s.trusted_proxies) {
            let net = c
                .parse::<IpNet>()
                .or_else(|_| c.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| bad("TRUSTED_PROXIES", "each must be a CIDR such as 10.0.0.0/8 or an IP address"))?;
            trusted.push(net.trunc());
        }
        Ok(Self { domains, public_host, allowed, trusted, origin_style })
    }

    /// The host this request's signature is checked against, and the bucket
    /// it names. `peer` is the address the connection came from.
    pub fn signed_host<'r>(
        &'r self,
        peer: Option<IpAddr>,
        uri: &'r http::Uri,
        headers: &'r HeaderMap,
    ) -> Result<SignedHost<'r>, Error> {
        let forwarded = if self.trusts(peer) { forwarded_host(headers)? } else { None };
        let host: Option<Cow<'r, str>> = match (forwarded, &self.public_host) {
            (Some(f), _) => Some(f),
            (None, Some(p)) => Some(Cow::Borrowed(p)),
            (None, None) => SignedHost::received(uri, headers).map(Cow::Borrowed),
        };
        let Some(host) = host else {
            return Ok(SignedHost { host: None, bucket: None });
        };
        let hp = split_host(&host);
        // A bad bucket label under a configured domain is named as such,
        // even when ALLOWED_HOSTS would refuse the host too.
        let bucket = self.bucket_in(hp)?;
        if !self.allowed.is_empty() && !self.allowed.iter().any(|p| p.matches(hp)) {
            return Err(Error::HostNotAllowed(host.chars().take(crate::error::MAX_ECHO).collect()));
        }
        Ok(SignedHost { host: Some(host), bucket })
    }

    /// Is `peer` one of TRUSTED_PROXIES (whose forwarded headers are believed)?
    pub fn trusts(&self, peer: Option<IpAddr>) -> bool {
        peer.is_some_and(|ip| self.trusted.iter().any(|n| n.contains(&ip.to_canonical())))
    }

    /// The bucket label of a virtual-hosted name, as a range of `h.name`.
    fn bucket_in(&self, h: HostPort<'_>) -> Result<Option<Range<usize>>, Error> {
        for d in &self.domains {
            if d.port.is_some() && d.port.as_deref() != h.port {
                continue;
            }
            if h.name.eq_ignore_ascii_case(&d.dotted[1..]) {
                return Ok(None); // the bare domain: path style
            }
            if ends_with_ignore_case(h.name, &d.dotted) {
                let bucket = &h.name[..h.name.len() - d.dotted.len()];
                if !valid_bucket(bucket) {
                    return Err(Error::InvalidBucketName(bucket.chars().take(crate::error::MAX_ECHO).collect()));
                }
                return Ok(Some(0..bucket.len()));
            }
        }
        Ok(None)
    }
}

/// `name`, `*.name`, `[v6]`, each with an optional `:port` or `:*`.
fn parse_pattern(p: &str) -> Option<HostPattern> {
    let p = p.to_ascii_lowercase();
    let (rest, port) = if p.starts_with('[') {
        let end = p.find(']')?;
        match &p[end + 1..] {
            "" => (&p[..=end], PortRule::None),
            tail => (&p[..=end], port_rule(tail.strip_prefix(':')?)?),
        }
    } else {
        match p.rsplit_once(':') {
            Some((n, port)) => (n, port_rule(port)?),
            None => (p.as_str(), PortRule::None),
        }
    };
    let (wildcard, name) = match rest.strip_prefix("*.") {
        Some(n) => (true, n),
        None => (false, rest),
    };
    if !valid_host(name.as_bytes()) || name.contains(':') && !name.starts_with('[') {
        return None;
    }
    let name = if wildcard { format!(".{name}") } else { name.to_owned() };
    Some(HostPattern { name, wildcard, port })
}

fn port_rule(p: &str) -> Option<PortRule> {
    match p {
        "*" => Some(PortRule::Any),
        _ if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u16>().ok().map(|n| PortRule::Exact(n.to_string()))
        }
        _ => None,
    }
}

/// S3's bucket naming rules, as a Host label must meet them: 3–63 characters
/// of lower-case letters, digits, `-` and `.`, starting and ending with a
/// letter or digit, no two adjacent periods, not an IPv4 address.
pub fn valid_bucket(b: &str) -> bool {
    let bytes = b.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes.iter().all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && !b.contains("..")
        && b.parse::<std::net::Ipv4Addr>().is_err()
}

/// The host a trusted proxy says the client asked for: `X-Forwarded-Host`,
/// or the `host=` of `Forwarded`. More than one value, in either or between
/// them, is an ambiguity.
fn forwarded_host(headers: &HeaderMap) -> Result<Option<Cow<'_, str>>, Error> {
    let several = |what: &str| Error::InvalidArgument(format!("{what} names more than one host").into());
    let invalid = |what: &str| Error::InvalidArgument(format!("{what} does not name a valid host[:port]").into());
    let mut xfh = headers.get_all(X_FORWARDED_HOST).iter();
    let from_xfh = match (xfh.next(), xfh.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => return Err(several("X-Forwarded-Host")),
        (Some(v), None) => {
            let v = v.to_str().map_err(|_| invalid("X-Forwarded-Host"))?.trim();
            if v.contains(',') {
                return Err(several("X-Forwarded-Host"));
            }
            if !valid_host(v.as_bytes()) {
                return Err(invalid("X-Forwarded-Host"));
            }
            Some(v)
        }
    };
    let mut from_fwd: Option<Cow<'_, str>> = None;
    for v in headers.get_all(FORWARDED) {
        let v = v.to_str().map_err(|_| invalid("Forwarded"))?;
        for h in forwarded_params(v, "host").map_err(|()| invalid("Forwarded"))? {
            if from_fwd.is_some() {
                return Err(several("Forwarded"));
            }
            if !valid_host(h.as_bytes()) {
                return Err(invalid("Forwarded"));
            }
            from_fwd = Some(h);
        }
    }
    match (from_xfh, from_fwd) {
        (Some(x), Some(f)) if !x.eq_ignore_ascii_case(&f) => {
            Err(Error::InvalidArgument("X-Forwarded-Host and Forwarded name different hosts".into()))
        }
        (Some(x), _) => Ok(Some(Cow::Borrowed(x))),
        (None, f) => Ok(f),
    }
}

/// The values of parameter `name` in a `Forwarded` header value (RFC 7239
/// §4): elements separated by `,`, pairs by `;`, each value a token or a
/// quoted string. A malformed value is an error, never a guess.
fn forwarded_params<'v>(v: &'v str, name: &str) -> Result<Vec<Cow<'v, str>>, ()> {
    let mut out = Vec::new();
    let b = v.as_bytes();
    let mut i = 0;
    loop {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b',' | b';') {
            i += 1;
        }
        if i == b.len() {
            return Ok(out);
        }
        let key_start = i;
        while i < b.len() && b[i] != b'=' {
            if !(b[i].is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b[i])) {
                return Err(());
            }
            i += 1;
        }
        if i == b.len() || i == key_start {
            return Err(());
        }
        let key = &v[key_start..i];
        i += 1;
        let value: Cow<'v, str> = if b.get(i) == Some(&b'"') {
            i += 1;
            let mut s = String::new();
            loop {
                match b.get(i) {
                    None => return Err(()),
                    Some(b'"') => break,
                    Some(b'\\') => {
                        s.push(*b.get(i + 1).ok_or(())? as char);
                        i += 2;
                    }
                    Some(&c) => {
                        s.push(c as char);
                        i += 1;
                    }
                }
            }
            i += 1;
            Cow::Owned(s)
        } else {
            let start = i;
            while i < b.len() && !matches!(b[i], b',' | b';' | b' ' | b'\t') {
                if b[i] == b'"' {
                    return Err(());
                }
                i += 1;
            }
            Cow::Borrowed(&v[start..i])
        };
        if i < b.len() && !matches!(b[i], b',' | b';' | b' ' | b'\t') {
            return Err(());
        }
        if key.eq_ignore_ascii_case(name) {
            out.push(value);
        }
    }
}

/// The host a request's signature is checked against, and the bucket named
/// by it (virtual-hosted style), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHost<'r> {
    /// None only for a request without any host (HTTP/1.0 without Host).
    host: Option<Cow<'r, str>>,
    /// The bucket label's range in `host`.
    bucket: Option<Range<usize>>,
}

impl<'r> SignedHost<'r> {
    /// The host the request itself carries (its Host header; for HTTP/2, its
    /// URI's authority), with no virtual-hosted bucket: what [`crate::verify::verify`] uses.
    pub fn of_request(uri: &'r http::Uri, headers: &'r HeaderMap) -> Self {
        Self { host: Self::received(uri, headers).map(Cow::Borrowed), bucket: None }
    }

    fn received(uri: &'r http::Uri, headers: &'r HeaderMap) -> Option<&'r str> {
        match headers.get(header::HOST) {
            Some(h) => h.to_str().ok(),
            None => uri.authority().map(Authority::as_str),
        }
    }

    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The bucket a virtual-hosted request names in its host.
    pub fn bucket(&self) -> Option<&str> {
        Some(&self.host.as_deref()?[self.bucket.clone()?])
    }
}

/// Where a verified request goes at the origin: the Host (and connection
/// target) and the path. Borrowed when nothing changes (a path-style request
/// to a path-style origin), so that case allocates nothing.
#[derive(Debug, Clone)]
pub struct Route<'a> {
    /// `bucket.<origin host>[:port]`, or None for the origin's own host.
    pub authority: Option<(Authority, HeaderValue)>,
    /// The origin's canonical URI: the path as forwarded.
    pub canonical_uri: Cow<'a, str>,
}

/// The bucket of a path-style request: the first segment of its canonical
/// path (a valid bucket name is never percent-encoded in one). None for `/`.
pub fn path_bucket(canonical_uri: &str) -> Option<&str> {
    let b = canonical_uri.strip_prefix('/')?.split('/').next()?;
    (!b.is_empty()).then_some(b)
}

/// Can `bucket` go in front of the origin's host name? Over https a dotted
/// name cannot match a wildcard certificate (`*.s3.example.com` covers one
/// label), so it goes path style, as the AWS SDKs send it.
fn dns_compatible(bucket: &str, scheme: &Scheme) -> bool {
    valid_bucket(bucket) && !(bucket.contains('.') && *scheme == Scheme::HTTPS)
}

/// The origin route of a request whose verified path is `canonical_uri`, and
/// which names `bucket` in its host (virtual-hosted) or not (path style).
pub fn route<'a>(
    style: OriginStyle,
    origin: &Origin,
    bucket: Option<&str>,
    canonical_uri: &'a str,
) -> Result<Route<'a>, Error> {
    let path_style = |b: &str| {
        // `/` on the bucket's host is the bucket itself: `/bucket`.
        let rest = if canonical_uri == "/" { "" } else { canonical_uri };
        Cow::Owned(format!("/{b}{rest}"))
    };
    match (style, bucket) {
        (OriginStyle::Path, None) => Ok(Route { authority: None, canonical_uri: Cow::Borrowed(canonical_uri) }),
        (OriginStyle::Path, Some(b)) => Ok(Route { authority: None, canonical_uri: path_style(b) }),
        (OriginStyle::Virtual, Some(b)) => {
            if dns_compatible(b, origin.scheme()) {
                Ok(Route { authority: Some(bucket_authority(b, origin)?), canonical_uri: Cow::Borrowed(canonical_uri) })
            } else {
                Ok(Route { authority: None, canonical_uri: path_style(b) })
            }
        }
        (OriginStyle::Virtual, None) => {
            // Path style from the client: the first segment is the bucket.
            let after = &canonical_uri[1.min(canonical_uri.len())..];
            let (first, rest) = match after.find('/') {
                Some(i) => (&after[..i], &after[i..]),
                None => (after, ""),
            };
            if first.is_empty() || !dns_compatible(first, origin.scheme()) {
                return Ok(Route { authority: None, canonical_uri: Cow::Borrowed(canonical_uri) });
            }
            let rest = if rest.is_empty() { "/" } else { rest };
            Ok(Route { authority: Some(bucket_authority(first, origin)?), canonical_uri: Cow::Borrowed(rest) })
        }
    }
}

/// `bucket.<origin authority>`: a validated label in front of the configured name.
fn bucket_authority(bucket: &str, origin: &Origin) -> Result<(Authority, HeaderValue), Error> {
    let text = format!("{bucket}.{}", origin.authority().as_str());
    let bad = || Error::InvalidBucketName(bucket.to_owned());
    let value = HeaderValue::from_str(&text).map_err(|_| bad())?;
    let authority = Authority::try_from(text).map_err(|_| bad())?;
    Ok((authority, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(s: &str) -> Origin {
        let (scheme, auth) = s.split_once("://").unwrap();
        Origin::new(scheme.parse().unwrap(), auth.parse().unwrap()).unwrap()
    }

    fn policy(s: AddressingSettings<'_>) -> Addressing {
        Addressing::from_settings(&s).unwrap()
    }

    fn hm(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn signed<'a>(
        a: &'a Addressing,
        peer: &str,
        uri: &'a http::Uri,
        h: &'a HeaderMap,
    ) -> Result<(Option<String>, Option<String>), Error> {
        a.signed_host(Some(peer.parse().unwrap()), uri, h)
            .map(|s| (s.host().map(str::to_owned), s.bucket().map(str::to_owned)))
    }

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my.bucket", "a-b-c", "0bucket9", &"a".repeat(63)] {
            assert!(valid_bucket(ok), "{ok}");
        }
        for bad in ["ab", "", "Abc", "-abc", "abc-", "a..b", "a_b", "192.168.1.1", &"a".repeat(64), ".abc", "abc."] {
            assert!(!valid_bucket(bad), "{bad}");
        }
    }

    #[test]
    fn virtual_hosted_buckets() {
        let a =
            policy(AddressingSettings { virtual_host_domains: "s3.vanity.test, vanity.test", ..Default::default() });
        let uri = http::Uri::from_static("/key");
        let cases: &[(&str, Result<Option<&str>, &str>)] = &[
            ("bkt.s3.vanity.test:8000", Ok(Some("bkt"))),
            ("bkt.s3.vanity.test.:8000", Ok(Some("bkt"))),
            ("bkt.s3.vanity.test.", Ok(Some("bkt"))),
            ("s3.vanity.test.", Ok(None)),
            (".s3.vanity.test", Err("InvalidBucketName")),
            ("BKT.s3.vanity.test", Err("InvalidBucketName")),
            ("bkt.S3.Vanity.TEST", Ok(Some("bkt"))),
            ("my.dotted.bkt.s3.vanity.test", Ok(Some("my.dotted.bkt"))),
            ("s3.vanity.test:8000", Ok(None)),
            ("other.vanity.test", Ok(Some("other"))),
            ("127.0.0.1:8000", Ok(None)),
            ("internal", Ok(None)),
            ("ab.s3.vanity.test", Err("InvalidBucketName")),
            ("a..b.s3.vanity.test", Err("InvalidBucketName")),
            ("192.168.1.1.s3.vanity.test", Err("InvalidBucketName")),
            ("-bad.s3.vanity.test", Err("InvalidBucketName")),
        ];
        for (host, want) in cases {
            let h = hm(&[("host", host)]);
            let got = signed(&a, "127.0.0.1", &uri, &h);
            match (want, got) {
                (Ok(b), Ok((Some(sh), got_b))) => {
                    assert_eq!(sh, *host);
                    assert_eq!(got_b.as_deref(), *b, "{host}");
                }
                (Err(code), Err(e)) => assert_eq!(e.status_and_code().1, *code, "{host}"),
                (w, g) => panic!("{host}: want {w:?}, got {g:?}"),
            }
        }
    }

    #[test]
    fn a_domain_with_a_port_matches_that_port_only() {
        let a = policy(AddressingSettings { virtual_host_domains: "s3.vanity.test:8443", ..Default::default() });
        let uri = http::Uri::from_static("/");
        let h = hm(&[("host", "bkt.s3.vanity.test:8443")]);
        assert_eq!(signed(&a, "127.0.0.1", &uri, &h).unwrap().1.as_deref(), Some("bkt"));
        let h = hm(&[("host", "bkt.s3.vanity.test:8000")]);
        assert_eq!(signed(&a, "127.0.0.1", &uri, &h).unwrap().1, None);
    }

    #[test]
    fn allowed_hosts() {
        let a = policy(AddressingSettings {
            allowed_hosts: "s3.vanity.test, *.s3.vanity.test:*, 10.0.0.5:*, [::1]:8000",
            ..Default::default()
        });
        let uri = http::Uri::from_static("/");
        for (host, ok) in [
            ("s3.vanity.test", true),
            ("s3.vanity.test:8000", false),
            ("bkt.s3.vanity.test:8000", true),
            ("a.b.s3.vanity.test", true),
            ("s3.vanity.test.", true),
            ("S3.VANITY.TEST", true),
            ("evil.test", false),
            ("xs3.vanity.test", false),
            ("10.0.0.5:9", true),
            ("10.0.0.5", true), // `:*` is any port, or none
            ("[::1]:8000", true),
            ("[::1]:8001", false),
        ] {
            let h = hm(&[("host", host)]);
            let r = signed(&a, "127.0.0.1", &uri, &h);
            assert_eq!(r.is_ok(), ok, "{host}: {r:?}");
            if let Err(e) = r {
                assert_eq!(e.status_and_code(), (http::StatusCode::BAD_REQUEST, "InvalidRequest"));
            }
        }
        for bad in ["*", "a:b", "*.:*", "x:99999", "a b"] {
            let s = AddressingSettings { allowed_hosts: bad, ..Default::default() };
            assert!(Addressing::from_settings(&s).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_signed_host_comes_from_a_trusted_proxy_then_public_host_then_host() {
        let a = policy(AddressingSettings {
            virtual_host_domains: "s3.vanity.test",
            trusted_proxies: "10.0.0.0/8, 127.0.0.2",
            public_host: "public.vanity.test:8443",
            ..Default::default()
        });
        let uri = http::Uri::from_static("/");
        let h = hm(&[("host", "internal:8000"), ("x-forwarded-host", "bkt.s3.vanity.test")]);
        let got = |peer| signed(&a, peer, &uri, &h).unwrap();
        assert_eq!(got("10.1.2.3"), (Some("bkt.s3.vanity.test".into()), Some("bkt".into())));
        assert_eq!(got("127.0.0.2"), (Some("bkt.s3.vanity.test".into()), Some("bkt".into())));
        assert_eq!(got("::ffff:10.1.2.3"), (Some("bkt.s3.vanity.test".into()), Some("bkt".into())));
        // Untrusted: the header is ignored, PUBLIC_HOST decides.
        assert_eq!(got("127.0.0.1"), (Some("public.vanity.test:8443".into()), None));
        // Forwarded, quoted, with other parameters and an IPv6 `for`.
        let h = hm(&[
            ("host", "internal"),
            ("forwarded", r#"for="[2001:db8::1]:4711";proto=https;host="bkt.s3.vanity.test:8443""#),
        ]);
        assert_eq!(signed(&a, "10.0.0.1", &uri, &h).unwrap().1.as_deref(), Some("bkt"));
        // No PUBLIC_HOST, untrusted: the Host header.
        let b = policy(AddressingSettings { trusted_proxies: "10.0.0.0/8", ..Default::default() });
        let h = hm(&[("host", "internal:8000"), ("x-forwarded-host", "forged")]);
        assert_eq!(signed(&b, "192.0.2.1", &uri, &h).unwrap().0.as_deref(), Some("internal:8000"));
    }

    #[test]
    fn several_forwarded_hosts_are_refused() {
        let a = policy(AddressingSettings { trusted_proxies: "127.0.0.0/8", ..Default::default() });
        let uri = http::Uri::from_static("/");
        for pairs in [
            &[("x-forwarded-host", "a.test, b.test")][..],
            &[("x-forwarded-host", "a.test"), ("x-forwarded-host", "b.test")],
            &[("forwarded", "host=a.test, host=b.test")],
            &[("forwarded", "host=a.test"), ("forwarded", "host=b.test")],
            &[("forwarded", "host=a.test;host=b.test")],
            &[("x-forwarded-host", "a.test"), ("forwarded", "host=b.test")],
            &[("x-forwarded-host", "a test")],
            &[("forwarded", "host=\"a.test")],
            &[("forwarded", "host")],
            &[("forwarded", "host=\"a/b\"")],
        ] {
            let mut p = vec![("host", "internal")];
            p.extend_from_slice(pairs);
            let h = hm(&p);
            let e = signed(&a, "127.0.0.1", &uri, &h).unwrap_err();
            assert_eq!(e.status_and_code().1, "InvalidArgument", "{pairs:?}");
        }
        // The same host in both is one value.
        let h = hm(&[("host", "i"), ("x-forwarded-host", "a.test"), ("forwarded", "for=x;host=A.test")]);
        assert_eq!(signed(&a, "127.0.0.1", &uri, &h).unwrap().0.as_deref(), Some("a.test"));
    }

    #[test]
    fn settings_are_checked() {
        let o = origin("http://127.0.0.1:9000");
        let virt =
            Addressing::from_settings(&AddressingSettings { origin_addressing: "virtual", ..Default::default() });
        let virt = virt.unwrap().origin_style;
        assert!(virt.check(&o, "ORIGIN_ADDRESSING").is_err(), "virtual needs a host name");
        assert!(virt.check(&origin("http://origin.test:9000"), "ORIGIN_ADDRESSING").is_ok());
        for (s, what) in [
            (AddressingSettings { origin_addressing: "vhost", ..Default::default() }, "ORIGIN_ADDRESSING"),
            (AddressingSettings { virtual_host_domains: "*.x.test", ..Default::default() }, "VIRTUAL_HOST_DOMAINS"),
            (AddressingSettings { virtual_host_domains: "10.0.0.1", ..Default::default() }, "VIRTUAL_HOST_DOMAINS"),
            (AddressingSettings { public_host: "a b", ..Default::default() }, "PUBLIC_HOST"),
            (AddressingSettings { trusted_proxies: "10.0.0.0/33", ..Default::default() }, "TRUSTED_PROXIES"),
            (AddressingSettings { trusted_proxies: "any", ..Default::default() }, "TRUSTED_PROXIES"),
        ] {
            let e = Addressing::from_settings(&s).unwrap_err();
            assert!(e.0.contains(what), "{e}");
        }
    }

    #[test]
    fn routes() {
        let http = origin("http://origin.test:9000");
        let https = origin("https://origin.test");
        let r = |style, o: &Origin, b: Option<&str>, p: &'static str| {
            let r = route(style, o, b, p).unwrap();
            (r.authority.map(|(a, _)| a.to_string()), r.canonical_uri.into_owned())
        };
        use OriginStyle::{Path, Virtual};
        assert_eq!(r(Path, &http, None, "/bkt/key"), (None, "/bkt/key".into()));
        assert_eq!(r(Path, &http, Some("bkt"), "/key"), (None, "/bkt/key".into()));
        assert_eq!(r(Path, &http, Some("bkt"), "/"), (None, "/bkt".into()));
        assert_eq!(r(Path, &http, Some("bkt"), "/private/x"), (None, "/bkt/private/x".into()));
        assert_eq!(r(Path, &http, Some("bkt"), "//k"), (None, "/bkt//k".into()));
        assert_eq!(r(Virtual, &http, Some("bkt"), "/key"), (Some("bkt.origin.test:9000".into()), "/key".into()));
        assert_eq!(r(Virtual, &http, Some("a.b.c"), "/"), (Some("a.b.c.origin.test:9000".into()), "/".into()));
        assert_eq!(r(Virtual, &https, Some("a.b.c"), "/k"), (None, "/a.b.c/k".into()));
        assert_eq!(r(Virtual, &https, Some("abc"), "/k"), (Some("abc.origin.test".into()), "/k".into()));
        assert_eq!(r(Virtual, &http, None, "/bkt/key"), (Some("bkt.origin.test:9000".into()), "/key".into()));
        assert_eq!(r(Virtual, &http, None, "/bkt"), (Some("bkt.origin.test:9000".into()), "/".into()));
        assert_eq!(r(Virtual, &http, None, "/bkt/"), (Some("bkt.origin.test:9000".into()), "/".into()));
        assert_eq!(r(Virtual, &http, None, "/"), (None, "/".into()));
        // Not a valid bucket name: left path style for the origin to judge.
        assert_eq!(r(Virtual, &http, None, "/Legacy_Bucket/k"), (None, "/Legacy_Bucket/k".into()));
        assert_eq!(r(Virtual, &http, None, "/%41bc/k"), (None, "/%41bc/k".into()));
    }
}

//! [`VerifiedRequest`] → the request toward the origin, header-signed with the
//! origin credentials, a fresh `x-amz-date` and AWS_REGION.
//!
//! Invariant: the origin's SignedHeaders are the client's signed headers that
//! are forwarded, plus `host`, `x-amz-date` and `x-amz-content-sha256` (and
//! `x-amz-security-token` with ORIGIN_SESSION_TOKEN; the client's own token is
//! never forwarded). A header the client did not sign is never signed here.

use bytes::Bytes;
use http::header::{self, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery};
use http::{HeaderMap, Method, Uri};
use time::OffsetDateTime;

use crate::addressing::{OriginStyle, route};
use crate::config::Origin;
use crate::error::Error;
use crate::headers::{connection_lists, is_dropped};
use crate::sigv4::canonical::{CanonicalParts, Scope, push_canonical_request, sign_canonical_request};
use crate::sigv4::encode::hex32;
use crate::sigv4::payload::Sha256Digest;
use crate::sigv4::scratch::{SmallVec, Text, with_text};
use crate::sigv4::{AmzDate, ChunkSeed, KeyCache, PayloadHash, Query, SignedHeaders, canonical_uri};
use crate::verify::VerifiedRequest;

const X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
const X_AMZ_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-amz-content-sha256");
const X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");

#[derive(Debug)]
pub struct OriginRequest {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub chunk_seed: Option<ChunkSeed>,
}

pub struct Signer<'a> {
    pub origin: &'a Origin,
    /// ORIGIN_ADDRESSING: where a bucket goes in the origin request.
    pub style: OriginStyle,
    pub access_key: &'a str,
    pub keys: &'a KeyCache,
    pub region: &'a str,
    /// ORIGIN_SESSION_TOKEN as a (sensitive) header value: sent and signed.
    pub session_token: Option<&'a HeaderValue>,
}

/// Where the origin request goes and what its canonical request says of it:
/// three texts that must not be swapped, so they travel by name.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The path as verified; forwarded as is.
    pub canonical_uri: &'a str,
    /// The canonical query the origin's signature covers.
    pub canonical_query: &'a str,
    /// The query as forwarded (wire pairs in canonical order).
    pub forward_query: &'a str,
}

/// A request ready to be signed for the origin.
struct Unsigned<'a> {
    method: &'a Method,
    target: Target<'a>,
    /// The forwarded headers; host, x-amz-date, x-amz-content-sha256 and
    /// Authorization are added by [`Signer::finish`].
    headers: HeaderMap,
    /// `headers` as (name, value) pairs, in order.
    pairs: &'a [(&'a str, &'a [u8])],
    /// The headers to sign: the client's signed headers that are forwarded,
    /// and [`OURS`], sorted, once each.
    names: &'a [&'a str],
    payload: PayloadHash,
    /// `bucket.<origin host>` for a virtual-hosted origin request; None:
    /// the origin's own host.
    host: Option<&'a (Authority, HeaderValue)>,
}

impl Signer<'_> {
    pub fn resign(
        &self,
        v: &VerifiedRequest,
        method: &Method,
        client_headers: &HeaderMap,
        now: OffsetDateTime,
    ) -> Result<OriginRequest, Error> {
        let has_connection = client_headers.contains_key(header::CONNECTION);
        // (`connection_lists` allocates nothing; the check before it skips even the lookup.)
        let forwarded = |n: &str| !(is_dropped(n) || (has_connection && connection_lists(client_headers, n)));

        let mut headers = HeaderMap::with_capacity(client_headers.len() + 3);
        // The forwarded headers, for the canonical request: the very values
        // `headers` gets, in the same order.
        let mut pairs = SmallVec::<(&str, &[u8]), 16>::new(("", b""));
        for (name, value) in client_headers {
            let n = name.as_str();
            if n != "x-amz-date" && n != "x-amz-content-sha256" && forwarded(n) {
                headers.append(name.clone(), value.clone());
                pairs.push((n, value.as_bytes()));
            }
        }
        // A presigned URL's `x-amz-*` parameters, as the headers S3 reads
        // them as (verify made sure none is also a header of the request).
        for (name, value) in v.hoisted() {
            headers.append(name.clone(), value.clone());
            pairs.push((name.as_str(), value.as_bytes()));
        }
        let mut client_names = Names::new("");
        client_names.extend(v.signed_headers().filter(|n| forwarded(n)));
        client_names.extend(v.hoisted().iter().map(|(n, _)| n.as_str()));
        let names = with_ours(client_names.as_slice(), self.ours());
        // The bucket of a virtual-hosted request goes where ORIGIN_ADDRESSING puts it.
        let route = route(self.style, self.origin, v.bucket(), v.canonical_uri())?;
        let out = Unsigned {
            method,
            target: Target { canonical_uri: &route.canonical_uri, ..v.target() },
            headers,
            pairs: pairs.as_slice(),
            names: names.as_slice(),
            payload: v.payload(),
            host: route.authority.as_ref(),
        };
        self.finish(out, now)
    }

    /// A request with no credentials, for the origin **unsigned**
    /// (ANONYMOUS_ACCESS=forward): the client's headers less the dropped ones
    /// (hop-by-hop, `x-amz-security-token`, the forwarded host…), `Expect`
    /// kept so the origin gives its own verdict before the body, the origin's
    /// Host, the path and query as sent (the bucket placed as the origin's
    /// addressing wants). No Authorization, no token, nothing signed.
    pub fn unsigned(
        &self,
        a: &crate::anonymous::AnonymousRequest,
        method: &Method,
        client_headers: &HeaderMap,
    ) -> Result<OriginRequest, Error> {
        let has_connection = client_headers.contains_key(header::CONNECTION);
        let mut headers = HeaderMap::with_capacity(client_headers.len() + 1);
        for (name, value) in client_headers {
            let n = name.as_str();
            let kept = n == "expect" || !(is_dropped(n) || (has_connection && connection_lists(client_headers, n)));
            if kept {
                headers.append(name.clone(), value.clone());
            }
        }
        let route = route(self.style, self.origin, a.host_bucket(), a.canonical_uri())?;
        let (authority, host_value) = match &route.authority {
            Some((a, v)) => (a, v),
            None => (self.origin.authority(), self.origin.host()),
        };
        headers.insert(header::HOST, host_value.clone());
        let target = Target { canonical_uri: &route.canonical_uri, canonical_query: "", forward_query: a.query() };
        let uri = self.origin_uri(authority, &target)?;
        Ok(OriginRequest { method: method.clone(), uri, headers, chunk_seed: None })
    }

    /// The health probe: `HEAD HEALTHCHECK_PATH`, signed with the origin key.
    pub fn sign_probe(&self, path_and_query: &str, now: OffsetDateTime) -> Result<OriginRequest, Error> {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let q = Query::parse(query);
        let (canonical_uri, canonical_query, forward_query) =
            (canonical_uri(path), q.canonical(|_| false), q.forward(|_| false));
        let out = Unsigned {
            method: &Method::HEAD,
            target: Target {
                canonical_uri: &canonical_uri,
                canonical_query: &canonical_query,
                forward_query: &forward_query,
            },
            headers: HeaderMap::new(),
            pairs: &[],
            names: self.ours(),
            payload: PayloadHash::Sha256(Sha256Digest::EMPTY),
            host: None,
        };
        self.finish(out, now)
    }

    /// A browser-form upload (`POST /bucket`, multipart/form-data) toward the
    /// origin. No Authorization header: the form's own policy signature
    /// (`post_policy::origin_fields`) is what the origin checks, as S3 does.
    /// The bucket goes where ORIGIN_ADDRESSING puts it.
    pub fn post_form(&self, bucket: &str, content_type: HeaderValue) -> Result<OriginRequest, Error> {
        let route = route(self.style, self.origin, Some(bucket), "/")?;
        let (authority, host_value) = match route.authority.as_ref() {
            Some((a, v)) => (a, v),
            None => (self.origin.authority(), self.origin.host()),
        };
        let mut headers = HeaderMap::with_capacity(2);
        headers.insert(header::HOST, host_value.clone());
        headers.insert(header::CONTENT_TYPE, content_type);
        let target = Target { canonical_uri: &route.canonical_uri, canonical_query: "", forward_query: "" };
        let uri = self.origin_uri(authority, &target)?;
        Ok(OriginRequest { method: Method::POST, uri, headers, chunk_seed: None })
    }

    /// The headers this signer sets and signs, sorted.
    fn ours(&self) -> &'static [&'static str] {
        if self.session_token.is_some() { &OURS_WITH_TOKEN } else { &OURS }
    }

    /// Adds host, x-amz-date, x-amz-content-sha256, the session token and the
    /// Authorization header; makes the origin URI and, for signed aws-chunked
    /// bodies, the origin's chunk seed.
    fn finish(&self, out: Unsigned<'_>, now: OffsetDateTime) -> Result<OriginRequest, Error> {
        let Unsigned { method, target, mut headers, pairs, names, payload, host } = out;
        let (authority, host_value) = match host {
            Some((a, v)) => (a, v),
            None => (self.origin.authority(), self.origin.host()),
        };
        let date = AmzDate::from_datetime(now);
        let payload_text = payload.as_str();
        headers.insert(header::HOST, host_value.clone());
        headers.insert(X_AMZ_DATE, HeaderValue::from_bytes(date.as_bytes()).map_err(|_| bad_origin())?);
        headers.insert(X_AMZ_CONTENT_SHA256, payload_value(payload)?);
        let token = match self.session_token {
            Some(t) => {
                headers.insert(X_AMZ_SECURITY_TOKEN, t.clone());
                Some(t.to_str().map_err(|_| bad_origin())?)
            }
            None => None,
        };

        let signed = signed_header_list(names);
        // The client's names were checked when its request was, and ours are fine.
        let signed = SignedHeaders::from_valid(&signed);

        // `headers` now holds `pairs` and these (the token's only when set).
        let date_str = date.as_str();
        let fixed = [
            ("host", authority.as_str()),
            ("x-amz-date", date_str),
            ("x-amz-content-sha256", payload_text),
            ("x-amz-security-token", token.unwrap_or("")),
        ];
        let fixed = &fixed[..if token.is_some() { 4 } else { 3 }];
        let scope = Scope { date: &date_str[..8], region: self.region, service: "s3" };
        let (mac, key) = self.keys.with_prepared(scope.date, self.region, |key| {
            with_text(|creq| {
                let parts = CanonicalParts {
                    method: method.as_str(),
                    canonical_uri: target.canonical_uri,
                    canonical_query: |q: &mut Vec<u8>| q.push_str(target.canonical_query),
                    pairs,
                    fixed,
                    names,
                    signed_headers: &signed,
                    payload_hash: payload_text,
                };
                push_canonical_request(creq, parts);
                (sign_canonical_request(key, &date, scope, creq), key.key())
            })
        });
        let signature = hex32(&mac);
        headers.insert(header::AUTHORIZATION, self.authorization(scope, &signed, &signature)?);
        let uri = self.origin_uri(authority, &target)?;
        let chunk_seed = payload.has_chunk_signatures().then(|| ChunkSeed {
            signing_key: key,
            amz_date: date,
            scope: scope.text(),
            seed_signature: String::from_utf8_lossy(&signature).into_owned(),
        });
        Ok(OriginRequest { method: method.clone(), uri, headers, chunk_seed })
    }

    /// `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`, marked
    /// sensitive so that a `Debug` of the request never prints the signature.
    fn authorization(
        &self,
        scope: Scope<'_>,
        signed: &SignedHeaders<'_>,
        signature: &[u8; 64],
    ) -> Result<HeaderValue, Error> {
        let signature = std::str::from_utf8(signature).expect("hex is ASCII");
        let parts = [
            "AWS4-HMAC-SHA256 Credential=",
            self.access_key,
            "/",
            scope.date,
            "/",
            scope.region,
            "/s3/aws4_request, SignedHeaders=",
            signed.as_str(),
            ", Signature=",
            signature,
        ];
        let mut authz = String::with_capacity(parts.iter().map(|p| p.len()).sum());
        parts.iter().for_each(|p| authz.push_str(p));
        // Exactly sized, so the `Bytes` takes the string's buffer as is.
        let mut value = HeaderValue::from_maybe_shared(Bytes::from(authz)).map_err(|_| bad_origin())?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// The origin URI: the verified path and the forwarded query, at the
    /// configured origin (never a host from the request; at most a validated
    /// bucket label in front of the origin's name).
    fn origin_uri(&self, authority: &Authority, target: &Target<'_>) -> Result<Uri, Error> {
        let mut pq = String::with_capacity(target.canonical_uri.len() + 1 + target.forward_query.len());
        pq.push_str(target.canonical_uri);
        if !target.forward_query.is_empty() {
            pq.push('?');
            pq.push_str(target.forward_query);
        }
        let bad_uri = || Error::InvalidArgument("the request URI cannot be forwarded".into());
        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(self.origin.scheme().clone());
        uri.authority = Some(authority.clone());
        uri.path_and_query = Some(PathAndQuery::try_from(pq).map_err(|_| bad_uri())?);
        Uri::from_parts(uri).map_err(|_| bad_uri())
    }
}

/// `names` joined with `;`.
fn signed_header_list(names: &[&str]) -> String {
    let mut signed = String::with_capacity(names.iter().map(|n| n.len() + 1).sum());
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            signed.push(';');
        }
        signed.push_str(n);
    }
    signed
}

/// Signed header names, for sorting.
type Names<'a> = SmallVec<&'a str, 16>;

/// The headers the proxy sets and signs, sorted.
const OURS: [&str; 3] = ["host", "x-amz-content-sha256", "x-amz-date"];
/// [`OURS`] with ORIGIN_SESSION_TOKEN, sorted.
const OURS_WITH_TOKEN: [&str; 4] = ["host", "x-amz-content-sha256", "x-amz-date", "x-amz-security-token"];

/// `str::cmp`, deciding on the first byte without a call when it can.
#[inline]
fn name_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    match a.as_bytes().first().cmp(&b.as_bytes().first()) {
        std::cmp::Ordering::Equal => a.cmp(b),
        other => other,
    }
}

/// `client` and `ours` (sorted), sorted, without repeats. The client's names
/// are usually sorted already (SigV4 asks for it), and are then merged.
#[inline(always)]
fn with_ours<'a>(client: &[&'a str], ours: &[&'a str]) -> Names<'a> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let mut out = Names::new("");
    if client.windows(2).all(|w| name_cmp(w[0], w[1]) == Less) {
        let (mut i, mut j) = (0, 0);
        loop {
            let next = match (client.get(i), ours.get(j)) {
                (Some(&a), Some(&b)) => match name_cmp(a, b) {
                    Less => (a, 1, 0),
                    Greater => (b, 0, 1),
                    Equal => (a, 1, 1),
                },
                (Some(&a), None) => (a, 1, 0),
                (None, Some(&b)) => (b, 0, 1),
                (None, None) => break,
            };
            out.push(next.0);
            i += next.1;
            j += next.2;
        }
    } else {
        out.extend(client.iter().copied());
        out.extend(ours.iter().copied());
        out.as_mut_slice().sort_unstable_by(|a, b| name_cmp(a, b));
        out.dedup();
    }
    out
}

/// The `x-amz-content-sha256` value: the fixed texts without a copy.
fn payload_value(payload: PayloadHash) -> Result<HeaderValue, Error> {
    match payload.as_static_str() {
        Some(text) => Ok(HeaderValue::from_static(text)),
        None => HeaderValue::from_str(payload.as_str()).map_err(|_| bad_origin()),
    }
}

fn bad_origin() -> Error {
    Error::InvalidRequest("a header could not be re-signed for the origin".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigv4::{AmzDate, CanonicalRequest, KeyCache, StringToSign};
    use crate::verify::{SingleKey, VerifyContext, verify};
    use http::Uri;
    use std::time::Duration;

    /// Signs a client request the way an SDK would (with our own pure layer:
    /// this test is about what re-signing keeps and drops, not about signing).
    fn client_request(extra: &[(&str, &str)], signed: &str) -> (Method, Uri, HeaderMap, time::OffsetDateTime) {
        let now = time::macros::datetime!(2025-01-02 03:04:05 UTC);
        let date = AmzDate::from_datetime(now);
        let mut h = HeaderMap::new();
        h.insert("host", "proxy.example:8000".parse().unwrap());
        h.insert("x-amz-date", date.as_str().parse().unwrap());
        h.insert("x-amz-content-sha256", "UNSIGNED-PAYLOAD".parse().unwrap());
        for (k, v) in extra {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        let uri: Uri = "/bkt/a/../b%20c?x-id=GetObject&versionId=7".parse().unwrap();
        let sh = SignedHeaders::parse(signed).unwrap();
        let q = Query::parse(uri.query().unwrap());
        let creq = CanonicalRequest::new(
            "GET",
            &canonical_uri(uri.path()),
            &q.canonical(|_| false),
            &h,
            None,
            &sh,
            "UNSIGNED-PAYLOAD",
        );
        let scope = format!("{}/eu-west-1/s3/aws4_request", date.date());
        let sts = StringToSign::new(&date, &scope, &creq);
        let sig = KeyCache::new(b"csk").get(date.date(), "eu-west-1").sign_hex(sts.as_str().as_bytes());
        h.insert(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential=CAK/{scope}, SignedHeaders={signed}, Signature={sig}")
                .parse()
                .unwrap(),
        );
        (Method::GET, uri, h, now)
    }

    #[test]
    fn ours_are_merged_sorted_and_once() {
        let cases: [&[&str]; 7] = [
            &[],
            &["host"],
            &["a", "host", "range", "x-amz-content-sha256", "x-amz-date", "x-amz-meta-z", "z"],
            &["x-amz-date", "host", "a"],
            &["host", "host", "x-amz-date"],
            &["", "host"],
            &["x-amz-date", "x-amz-content-sha256"],
        ];
        for ours in [&OURS[..], &OURS_WITH_TOKEN[..]] {
            for client in cases {
                let mut want: Vec<&str> = client.iter().copied().chain(ours.iter().copied()).collect();
                want.sort_unstable();
                want.dedup();
                assert_eq!(with_ours(client, ours).as_slice(), want, "{client:?}");
            }
        }
    }

    #[test]
    fn signs_only_what_the_client_signed_and_drops_hop_by_hop() {
        // `x-custom` is listed in Connection, so unsigned (signing it would be refused).
        let signed = "expect;host;transfer-encoding;x-amz-content-sha256;x-amz-date;x-amz-meta-a";
        let (m, uri, h, now) = client_request(
            &[
                ("x-amz-meta-a", "1"),
                ("expect", "100-continue"),
                ("transfer-encoding", "chunked"),
                ("connection", "keep-alive, x-custom"),
                ("x-custom", "hop"),
                ("user-agent", "sdk/1"),
                ("proxy-authorization", "Basic eA=="),
                ("range", "bytes=0-1"),
            ],
            signed,
        );
        let keys = KeyCache::new(b"csk");
        let ctx = VerifyContext {
            keys: &SingleKey { access_key: "CAK", secret: b"csk", keys: &keys },
            now,
            max_skew: Duration::from_secs(900),
        };
        let v = verify(&m, &uri, &h, &ctx).expect("verifies");
        let origin = Origin::new(http::uri::Scheme::HTTP, "origin.internal:9000".parse().unwrap()).unwrap();
        let okeys = KeyCache::new(b"osk");
        let signer = Signer {
            origin: &origin,
            style: Default::default(),
            access_key: "OAK",
            keys: &okeys,
            region: "us-east-1",
            session_token: None,
        };
        let later = now + time::Duration::seconds(3);
        let out = signer.resign(&v, &m, &h, later).unwrap();

        assert_eq!(out.uri.to_string(), "http://origin.internal:9000/bkt/a/../b%20c?versionId=7&x-id=GetObject");
        let o = &out.headers;
        assert_eq!(o["host"], "origin.internal:9000");
        assert_eq!(o["x-amz-date"], AmzDate::from_datetime(later).as_str());
        assert_eq!(o["x-amz-content-sha256"], "UNSIGNED-PAYLOAD");
        for gone in ["expect", "transfer-encoding", "connection", "x-custom", "proxy-authorization"] {
            assert!(!o.contains_key(gone), "{gone} must not be forwarded");
        }
        assert_eq!(o["user-agent"], "sdk/1", "unsigned standard headers pass through");
        assert_eq!(o["range"], "bytes=0-1");
        let authz = o["authorization"].to_str().unwrap();
        assert!(authz.starts_with("AWS4-HMAC-SHA256 Credential=OAK/20250102/us-east-1/s3/aws4_request, "), "{authz}");
        assert!(
            authz.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-meta-a,"),
            "only the client's forwarded signed headers, plus ours: {authz}"
        );

        // The origin's signature checks out under the origin key.
        let sh = SignedHeaders::parse("host;x-amz-content-sha256;x-amz-date;x-amz-meta-a").unwrap();
        let creq = CanonicalRequest::new(
            "GET",
            "/bkt/a/../b%20c",
            "versionId=7&x-id=GetObject",
            o,
            None,
            &sh,
            "UNSIGNED-PAYLOAD",
        );
        let date = AmzDate::from_datetime(later);
        let sts = StringToSign::new(&date, "20250102/us-east-1/s3/aws4_request", &creq);
        let sig = authz.rsplit("Signature=").next().unwrap();
        assert!(okeys.get("20250102", "us-east-1").verify_hex(sts.as_str().as_bytes(), sig));
    }

    #[test]
    fn session_token_is_sent_and_signed() {
        let signed = "host;x-amz-content-sha256;x-amz-date;x-amz-security-token";
        // The client's own token is dropped: the origin gets the proxy's.
        let (m, uri, h, now) = client_request(&[("x-amz-security-token", "client-token")], signed);
        let keys = KeyCache::new(b"csk");
        let ctx = VerifyContext {
            keys: &SingleKey { access_key: "CAK", secret: b"csk", keys: &keys },
            now,
            max_skew: Duration::from_secs(900),
        };
        let v = verify(&m, &uri, &h, &ctx).expect("verifies");
        let origin = Origin::new(http::uri::Scheme::HTTP, "origin.internal:9000".parse().unwrap()).unwrap();
        let okeys = KeyCache::new(b"osk");
        let mut token = HeaderValue::from_static("FQoGZXIvYXdzEXAMPLE/token+=");
        token.set_sensitive(true);
        let signer = Signer {
            origin: &origin,
            style: Default::default(),
            access_key: "OAK",
            keys: &okeys,
            region: "us-east-1",
            session_token: Some(&token),
        };
        for out in [signer.resign(&v, &m, &h, now).unwrap(), signer.sign_probe("/", now).unwrap()] {
            let o = &out.headers;
            assert_eq!(o.get_all("x-amz-security-token").iter().collect::<Vec<_>>(), [&token]);
            let authz = o["authorization"].to_str().unwrap();
            assert!(authz.contains(&format!("SignedHeaders={signed},")), "{authz}");
            assert!(!format!("{out:?}").contains("EXAMPLE/token"), "the token is not in a Debug print");
            let sh = SignedHeaders::parse(signed).unwrap();
            let (path, query) = (out.uri.path().to_owned(), out.uri.query().unwrap_or("").to_owned());
            let q = Query::parse(&query);
            let creq = CanonicalRequest::new(
                out.method.as_str(),
                &path,
                &q.canonical(|_| false),
                o,
                None,
                &sh,
                o["x-amz-content-sha256"].to_str().unwrap(),
            );
            let date = AmzDate::from_datetime(now);
            let sts = StringToSign::new(&date, &format!("{}/us-east-1/s3/aws4_request", date.date()), &creq);
            let sig = authz.rsplit("Signature=").next().unwrap();
            assert!(okeys.get(date.date(), "us-east-1").verify_hex(sts.as_str().as_bytes(), sig), "{}", out.method);
        }
    }
}

//! [`VerifiedRequest`] → the request toward the origin, header-signed with the
//! origin credentials, a fresh `x-amz-date` and AWS_REGION.
//!
//! Invariant: the origin's SignedHeaders are the client's signed headers that
//! are forwarded, plus `host`, `x-amz-date` and `x-amz-content-sha256`. A
//! header the client did not sign is never signed here.

use http::header::{self, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Uri};
use time::OffsetDateTime;

use crate::config::Origin;
use crate::error::Error;
use crate::forward::{connection_listed, is_hop_by_hop};
use crate::sigv4::payload::{
    EMPTY_SHA256, STREAMING_PAYLOAD, STREAMING_PAYLOAD_TRAILER, STREAMING_UNSIGNED_TRAILER, UNSIGNED_PAYLOAD,
};
use crate::sigv4::{
    AmzDate, CanonicalRequest, KeyCache, PayloadHash, Query, SignedHeaders, SigningKey, StringToSign, canonical_uri,
};
use crate::verify::VerifiedRequest;

/// Headers that never travel to the origin: hop-by-hop ones, `Expect` (the
/// proxy answers 100-continue itself), the client's own `Host` and
/// authentication, and its session token, which belongs to the client's
/// credentials, not the origin's.
pub fn is_dropped(name: &str) -> bool {
    is_hop_by_hop(name) || matches!(name, "host" | "authorization" | "expect" | "x-amz-security-token")
}

/// The origin's chunk chain for signed aws-chunked bodies.
#[derive(Debug, Clone)]
pub struct OriginChunkSeed {
    pub signing_key: SigningKey,
    pub amz_date: AmzDate,
    pub scope: String,
    pub seed_signature: String,
}

#[derive(Debug)]
pub struct OriginRequest {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub chunk_seed: Option<OriginChunkSeed>,
}

pub struct Signer<'a> {
    pub origin: &'a Origin,
    pub access_key: &'a str,
    pub keys: &'a KeyCache,
    pub region: &'a str,
}

impl Signer<'_> {
    pub fn resign(
        &self,
        v: &VerifiedRequest,
        method: &Method,
        client_headers: &HeaderMap,
        now: OffsetDateTime,
    ) -> Result<OriginRequest, Error> {
        let listed = connection_listed(client_headers);
        let forwarded = |n: &str| !is_dropped(n) && !listed.iter().any(|l| l == n);

        let mut headers = HeaderMap::with_capacity(client_headers.len() + 3);
        for (name, value) in client_headers {
            let n = name.as_str();
            if forwarded(n) && n != "x-amz-date" && n != "x-amz-content-sha256" {
                headers.append(name.clone(), value.clone());
            }
        }
        let payload_text: std::borrow::Cow<'static, str> = match v.payload() {
            PayloadHash::Unsigned => UNSIGNED_PAYLOAD.into(),
            PayloadHash::Sha256(h) => hex::encode(h).into(),
            PayloadHash::StreamingSigned => STREAMING_PAYLOAD.into(),
            PayloadHash::StreamingSignedTrailer => STREAMING_PAYLOAD_TRAILER.into(),
            PayloadHash::StreamingUnsignedTrailer => STREAMING_UNSIGNED_TRAILER.into(),
            PayloadHash::StreamingEcdsa => {
                return Err(Error::NotImplemented("SigV4a streaming payloads are not supported".into()));
            }
        };
        let signed_by_client: Vec<&str> = v.signed_headers().filter(|n| forwarded(n)).collect();
        let streaming = matches!(v.payload(), PayloadHash::StreamingSigned | PayloadHash::StreamingSignedTrailer);
        self.finish(
            method,
            v.canonical_uri(),
            v.origin_canonical_query(),
            v.forward_query(),
            headers,
            &signed_by_client,
            &payload_text,
            now,
            streaming,
        )
    }

    /// The health probe: `HEAD HEALTHCHECK_PATH`, signed with the origin key.
    pub fn sign_probe(&self, path_and_query: &str, now: OffsetDateTime) -> Result<OriginRequest, Error> {
        let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        let q = Query::parse(query);
        self.finish(
            &Method::HEAD,
            &canonical_uri(path),
            &q.canonical(|_| false),
            &q.forward(|_| false),
            HeaderMap::new(),
            &[],
            EMPTY_SHA256,
            now,
            false,
        )
    }

    /// Adds host, x-amz-date, x-amz-content-sha256 and the Authorization header.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        method: &Method,
        canonical_uri: &str,
        canonical_query: &str,
        forward_query: &str,
        mut headers: HeaderMap,
        signed_by_client: &[&str],
        payload_text: &str,
        now: OffsetDateTime,
        streaming: bool,
    ) -> Result<OriginRequest, Error> {
        let date = AmzDate::from_datetime(now);
        let authority = self.origin.authority.as_str();
        headers.insert(header::HOST, HeaderValue::from_str(authority).map_err(|_| bad_origin())?);
        headers.insert(
            HeaderName::from_static("x-amz-date"),
            HeaderValue::from_str(date.as_str()).map_err(|_| bad_origin())?,
        );
        headers.insert(
            HeaderName::from_static("x-amz-content-sha256"),
            HeaderValue::from_str(payload_text).map_err(|_| bad_origin())?,
        );

        let mut names: Vec<&str> = Vec::with_capacity(signed_by_client.len() + 3);
        names.extend_from_slice(signed_by_client);
        names.extend(["host", "x-amz-date", "x-amz-content-sha256"]);
        names.sort_unstable();
        names.dedup();
        let signed = names.join(";");
        let signed = SignedHeaders::parse(&signed).map_err(|m| Error::InvalidRequest(m.into()))?;

        let creq = CanonicalRequest::new(
            method.as_str(),
            canonical_uri,
            canonical_query,
            &headers,
            Some(authority),
            &signed,
            payload_text,
        );
        let scope = format!("{}/{}/s3/aws4_request", date.date(), self.region);
        let sts = StringToSign::new(&date, &scope, &creq);
        let key = self.keys.get(date.date(), self.region);
        let signature = key.sign_hex(sts.as_str().as_bytes());
        let authz = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
            self.access_key,
            signed.as_str()
        );
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&authz).map_err(|_| bad_origin())?);

        let pq = if forward_query.is_empty() {
            canonical_uri.to_owned()
        } else {
            format!("{canonical_uri}?{forward_query}")
        };
        let bad_uri = || Error::InvalidArgument("the request URI cannot be forwarded".into());
        let uri = Uri::builder()
            .scheme(self.origin.scheme.clone())
            .authority(self.origin.authority.clone())
            .path_and_query(PathAndQuery::try_from(pq).map_err(|_| bad_uri())?)
            .build()
            .map_err(|_| bad_uri())?;

        let chunk_seed =
            streaming.then_some(OriginChunkSeed { signing_key: key, amz_date: date, scope, seed_signature: signature });
        Ok(OriginRequest { method: method.clone(), uri, headers, chunk_seed })
    }
}

fn bad_origin() -> Error {
    Error::InvalidRequest("a header could not be re-signed for the origin".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigv4::{AmzDate, KeyCache};
    use crate::verify::{VerifyContext, verify};
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
    fn signs_only_what_the_client_signed_and_drops_hop_by_hop() {
        let signed = "expect;host;transfer-encoding;x-amz-content-sha256;x-amz-date;x-amz-meta-a;x-custom";
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
        let ctx =
            VerifyContext { access_key: "CAK", secret: b"csk", keys: &keys, now, max_skew: Duration::from_secs(900) };
        let v = verify(&m, &uri, &h, &ctx).expect("verifies");
        let origin = Origin { scheme: http::uri::Scheme::HTTP, authority: "origin.internal:9000".parse().unwrap() };
        let okeys = KeyCache::new(b"osk");
        let signer = Signer { origin: &origin, access_key: "OAK", keys: &okeys, region: "us-east-1" };
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
}

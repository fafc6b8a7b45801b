//! Request in → [`VerifiedRequest`], the proof that the client's signature
//! holds. Nothing can be forwarded without one. The body is not touched here,
//! so a rejected `Expect: 100-continue` upload never sends its body.
//!
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html>

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::addressing::SignedHost;
use crate::error::Error;
use crate::headers::{connection_tokens, is_added_by_cdn, unforwardable_when_signed};
use crate::intake::repeated;
use crate::sigv2;
use crate::sigv4::auth::PRESIGNED_AUTH_PARAMS;
use crate::sigv4::canonical::{
    CanonicalParts, HeaderPairs, Scope, header_pairs, push_canonical_request, sign_canonical_request,
};
use crate::sigv4::encode::{canonical_uri_into, split_byte, unhex32};
use crate::sigv4::payload::{EMPTY_SHA256, PayloadError, Sha256Digest, UNSIGNED_PAYLOAD};
use crate::sigv4::scratch::{Text, into_string, with_text};
use crate::sigv4::{
    AmzDate, AuthorizationV4, CanonicalRequest, ChunkSeed, Credential, KeyCache, PayloadHash, PresignedV4, Query,
    SigningKey, StringToSign,
};

const X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
const X_AMZ_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-amz-content-sha256");
const X_AMZ_DECODED_CONTENT_LENGTH: HeaderName = HeaderName::from_static("x-amz-decoded-content-length");

/// What a verifier needs besides the request: the keys it accepts and the
/// time. The clock is injected.
pub struct VerifyContext<'a> {
    pub keys: &'a dyn ClientKeys,
    pub now: OffsetDateTime,
    pub max_skew: Duration,
}

/// One secret a client key signs with, and its cache of derived SigV4 keys.
#[derive(Debug, Clone, Copy)]
pub struct ClientSecret<'a> {
    /// For SigV2, which signs with the secret itself rather than a derived key.
    pub secret: &'a [u8],
    pub keys: &'a KeyCache,
}

/// The secrets a key may sign with at a moment: its current one, and during a
/// rotation window its previous one.
#[derive(Debug, Clone, Copy)]
pub struct Secrets<'a> {
    pub current: ClientSecret<'a>,
    pub previous: Option<ClientSecret<'a>>,
}

impl<'a> Secrets<'a> {
    fn each(&self) -> impl Iterator<Item = ClientSecret<'a>> {
        std::iter::once(self.current).chain(self.previous)
    }
}

/// The client keys a verifier accepts: the whole access key is looked up
/// (never a prefix), in O(1) for a keyring of any size.
pub trait ClientKeys: Sync {
    /// The secrets of `access_key` valid at `now`; None for an unknown key.
    fn secrets(&self, access_key: &str, now: OffsetDateTime) -> Option<Secrets<'_>>;
}

/// One key and its secret: tests, benchmarks, embedding.
pub struct SingleKey<'a> {
    pub access_key: &'a str,
    pub secret: &'a [u8],
    pub keys: &'a KeyCache,
}

impl ClientKeys for SingleKey<'_> {
    fn secrets(&self, access_key: &str, _now: OffsetDateTime) -> Option<Secrets<'_>> {
        // The key is not secret, so a plain comparison is fine.
        (access_key == self.access_key)
            .then_some(Secrets { current: ClientSecret { secret: self.secret, keys: self.keys }, previous: None })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    HeaderV4,
    PresignedV4,
    HeaderV2,
    PresignedV2,
}

/// What the verified request's body is held to.
#[derive(Debug, Clone)]
struct BodyClaim {
    hash: PayloadHash,
    /// aws-chunked: `x-amz-decoded-content-length`.
    decoded_length: Option<u64>,
    /// aws-chunked with chunk signatures: where the client's chain starts.
    chunk_seed: Option<ChunkSeed>,
}

/// Proof that a request's signature verified. Its fields are private: only
/// [`verify`] makes one, and only a `VerifiedRequest` can be re-signed.
#[derive(Debug, Clone)]
pub struct VerifiedRequest {
    kind: AuthKind,
    /// The canonical URI, the forward query, the origin's canonical query and
    /// the signed headers, end to end in one allocation.
    parts: String,
    /// Where the first three of `parts` end.
    ends: [usize; 3],
    body: BodyClaim,
    /// `x-amz-*` parameters of a presigned URL, which S3 applies as the
    /// request headers of the same names: forwarded (and signed) as headers.
    hoisted: Vec<(HeaderName, HeaderValue)>,
    /// The bucket the signed host names (virtual-hosted style), if any.
    bucket: Option<Box<str>>,
    /// The client key whose signature verified.
    access_key: Box<str>,
}

/// [`VerifiedRequest`] without its signed headers (known once the signature is checked).
struct Parts {
    text: String,
    ends: [usize; 3],
}

impl Parts {
    /// The canonical URI; the query pairs (wire and canonical) not in `skip`.
    fn new(
        raw_path: &str,
        raw_query: &str,
        query: &Query<'_>,
        skip: impl Fn(&[u8]) -> bool,
        signed_len: usize,
    ) -> Self {
        let mut text = String::with_capacity(raw_path.len() + 2 * raw_query.len() + signed_len + 8);
        canonical_uri_into(&mut text, raw_path);
        let uri_end = text.len();
        query.push_forward(&mut text, &skip);
        let forward_end = text.len();
        query.push_canonical(&mut text, &skip);
        Self { ends: [uri_end, forward_end, text.len()], text }
    }

    fn canonical_uri(&self) -> &str {
        &self.text[..self.ends[0]]
    }

    fn canonical_query(&self) -> &str {
        &self.text[self.ends[1]..self.ends[2]]
    }

    fn verified(mut self, kind: AuthKind, signed_headers: &str, body: BodyClaim) -> VerifiedRequest {
        self.text.truncate(self.ends[2]);
        self.text.push_str(signed_headers);
        VerifiedRequest {
            kind,
            parts: self.text,
            ends: self.ends,
            body,
            hoisted: Vec::new(),
            bucket: None,
            access_key: Box::default(),
        }
    }
}

impl VerifiedRequest {
    pub fn kind(&self) -> AuthKind {
        self.kind
    }
    /// The path as verified; forwarded as is.
    pub fn canonical_uri(&self) -> &str {
        &self.parts[..self.ends[0]]
    }
    /// Wire query pairs in canonical order, without presigned auth parameters.
    pub fn forward_query(&self) -> &str {
        &self.parts[self.ends[0]..self.ends[1]]
    }
    pub fn origin_canonical_query(&self) -> &str {
        &self.parts[self.ends[1]..self.ends[2]]
    }
    /// The three texts of the origin request's line, by name.
    pub fn target(&self) -> crate::resign::Target<'_> {
        crate::resign::Target {
            canonical_uri: self.canonical_uri(),
            canonical_query: self.origin_canonical_query(),
            forward_query: self.forward_query(),
        }
    }
    /// The header names the client signed.
    pub fn signed_headers(&self) -> impl Iterator<Item = &str> {
        split_byte(&self.parts[self.ends[2]..], b';')
    }
    pub fn payload(&self) -> PayloadHash {
        self.body.hash
    }
    /// `x-amz-decoded-content-length` of an aws-chunked body, checked once.
    pub fn decoded_length(&self) -> Option<u64> {
        self.body.decoded_length
    }
    /// The client's chunk chain, for aws-chunked bodies with chunk signatures.
    pub fn chunk_seed(&self) -> Option<&ChunkSeed> {
        self.body.chunk_seed.as_ref()
    }
    /// Signed `x-amz-*` query parameters of a presigned URL, as headers.
    pub fn hoisted(&self) -> &[(HeaderName, HeaderValue)] {
        &self.hoisted
    }
    /// The bucket named by the signed host of a virtual-hosted request; the
    /// canonical URI is then the key's path within it.
    pub fn bucket(&self) -> Option<&str> {
        self.bucket.as_deref()
    }
    /// The client key that signed it (its rules apply; the access log names it).
    pub fn access_key(&self) -> &str {
        &self.access_key
    }
}

/// Is there any S3 authentication on this request (V4 or V2, header or query)?
pub fn has_auth(headers: &HeaderMap, query: Option<&str>) -> bool {
    if headers.contains_key(header::AUTHORIZATION) {
        return true;
    }
    let q = query.unwrap_or("");
    q.split('&').any(|p| {
        let k = p.split_once('=').map_or(p, |(k, _)| k);
        matches!(k, "X-Amz-Algorithm" | "X-Amz-Signature" | "X-Amz-Credential" | "Signature" | "AWSAccessKeyId")
    })
}

/// Verifies a request against the host it carries (its Host header), path style.
pub fn verify(
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    ctx: &VerifyContext<'_>,
) -> Result<VerifiedRequest, Error> {
    verify_for_host(method, uri, headers, &SignedHost::of_request(uri, headers), ctx)
}

/// Verifies a request against `host`, the host its signature must cover
/// ([`crate::addressing`] chose it: a trusted forwarded host, PUBLIC_HOST or
/// the Host header), and the bucket that host names.
pub fn verify_for_host(
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    host: &SignedHost<'_>,
    ctx: &VerifyContext<'_>,
) -> Result<VerifiedRequest, Error> {
    let mut v = verify_any(method, uri, headers, host, ctx)?;
    v.bucket = host.bucket().map(Box::from);
    Ok(v)
}

fn verify_any(
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    host: &SignedHost<'_>,
    ctx: &VerifyContext<'_>,
) -> Result<VerifiedRequest, Error> {
    let query = Query::parse(uri.query().unwrap_or(""));
    let authz = headers.get(header::AUTHORIZATION);
    let presigned = query.contains("X-Amz-Algorithm") || query.contains("X-Amz-Signature");
    let v2_query = query.contains("AWSAccessKeyId") || (query.contains("Signature") && query.contains("Expires"));
    if authz.is_some() && (presigned || v2_query) {
        return Err(Error::InvalidArgument(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified".into(),
        ));
    }
    if let Some(authz) = authz {
        let authz = authz
            .to_str()
            .map_err(|_| Error::AuthorizationHeaderMalformed("the Authorization header is not ASCII".into()))?;
        return if authz.starts_with("AWS4-HMAC-SHA256") {
            verify_header(method, uri, headers, host, &query, authz, ctx)
        } else if authz.starts_with("AWS4-ECDSA-P256-SHA256") {
            Err(Error::AuthorizationHeaderMalformed(SIGV4A.into()))
        } else if authz.starts_with("AWS ") {
            verify_v2(method, uri, headers, host, &query, V2Auth::Header(authz), ctx)
        } else {
            Err(Error::AuthorizationHeaderMalformed("Unsupported Authorization Type".into()))
        };
    }
    if presigned {
        return verify_presigned(method, uri, headers, host, &query, ctx);
    }
    if v2_query {
        return verify_v2(method, uri, headers, host, &query, V2Auth::Query, ctx);
    }
    Err(Error::AccessDenied("Anonymous access is not allowed through this proxy; sign the request".into()))
}

/// SigV4a is refused as the client's error (4xx), naming the algorithm: no
/// client in this proxy's audience signs with it for a custom endpoint (the
/// SDKs use it only for Multi-Region Access Points).
const SIGV4A: &str =
    "The algorithm AWS4-ECDSA-P256-SHA256 (SigV4a) is not supported by this proxy; sign with AWS4-HMAC-SHA256 (SigV4)";

/// Checks over the names the client signed, for every kind of authentication:
/// each is present once (two values of a signed header are an ambiguity), and
/// `Connection` names none that would reach the origin (it would be dropped
/// in transit, unpinning what the signer pinned).
fn check_signed_names(
    host: &SignedHost<'_>,
    headers: &HeaderMap,
    names: &[&str],
    malformed: fn(Msg) -> Error,
) -> Result<(), Error> {
    for &n in names {
        let mut values = headers.get_all(n).iter();
        // The signed host is given (the Host header, an HTTP/2 authority, a
        // forwarded host or PUBLIC_HOST); intake allowed one Host at most.
        if n == "host" && host.host().is_some() {
            continue;
        }
        match (values.next(), values.next()) {
            (None, _) => {
                return Err(malformed(format!("SignedHeaders names {n}, which the request does not have").into()));
            }
            (Some(_), Some(_)) => return Err(repeated(n)),
            (Some(_), None) => {}
        }
    }
    check_connection(headers, |n| names.contains(&n))
}

/// Refuses a `Connection` header that names a signed header other than a
/// true hop-by-hop one.
fn check_connection(headers: &HeaderMap, signed: impl Fn(&str) -> bool) -> Result<(), Error> {
    if !headers.contains_key(header::CONNECTION) {
        return Ok(());
    }
    let named = |t: &[u8]| std::str::from_utf8(t).ok().map(str::to_ascii_lowercase);
    match connection_tokens(headers).filter_map(named).find(|t| signed(t) && !unforwardable_when_signed(t)) {
        Some(token) => Err(Error::InvalidArgument(
            format!("The Connection header names {token}, a signed header, which would be removed in transit").into(),
        )),
        None => Ok(()),
    }
}

type Msg = std::borrow::Cow<'static, str>;

/// The secrets of the whole access key, or InvalidAccessKeyId.
fn client_secrets<'c>(access_key: &str, ctx: &VerifyContext<'c>) -> Result<Secrets<'c>, Error> {
    ctx.keys.secrets(access_key, ctx.now).ok_or_else(|| Error::InvalidAccessKeyId(access_key.to_owned()))
}

fn unsigned_amz_headers(headers: &HeaderMap, signed: &[&str]) -> Result<(), Error> {
    let unsigned = |n: &&str| n.starts_with("x-amz-") && !signed.contains(n) && !is_added_by_cdn(n);
    if !headers.keys().map(http::HeaderName::as_str).any(|n| unsigned(&n)) {
        return Ok(());
    }
    let mut missing: Vec<&str> = headers.keys().map(http::HeaderName::as_str).filter(unsigned).collect();
    missing.dedup();
    Err(Error::HeadersNotSigned(missing.join(", ")))
}

fn fmt_time(t: OffsetDateTime) -> String {
    AmzDate::from_datetime(t).to_string()
}

/// What the client claims: who signed, when, and the signature.
struct Claim<'a> {
    cred: &'a Credential<'a>,
    date: &'a AmzDate,
    signature: &'a str,
}

/// The checks on a SigV4 credential that header and presigned requests
/// share: the service is `s3` (the parser already checked the terminator),
/// the whole access key is ours, and the scope's date is the request's date.
/// `malformed` makes the error of the request's kind.
fn check_credential<'c>(
    cred: &Credential<'_>,
    date: &AmzDate,
    ctx: &VerifyContext<'c>,
    malformed: fn(Msg) -> Error,
) -> Result<Secrets<'c>, Error> {
    if cred.service != "s3" {
        return Err(malformed(
            format!(
                "The credential is malformed; incorrect service \"{}\". This endpoint belongs to \"s3\".",
                cred.service
            )
            .into(),
        ));
    }
    let secrets = client_secrets(cred.access_key, ctx)?;
    if cred.date != date.date() {
        return Err(malformed(
            format!(
                "Invalid credential date \"{}\". This date is not the same as X-Amz-Date: \"{}\".",
                cred.date,
                date.date()
            )
            .into(),
        ));
    }
    Ok(secrets)
}

/// The headers of the client's request as the canonical request reads them:
/// its pairs, and the signed host, given outright (it may not be the Host
/// header: a trusted forwarded host, PUBLIC_HOST, an HTTP/2 authority).
fn client_headers<'h>(
    headers: &'h HeaderMap,
    host: &'h SignedHost<'_>,
) -> (HeaderPairs<'h>, Option<(&'static str, &'h str)>) {
    (header_pairs(headers), host.host().map(|h| ("host", h)))
}

/// Checks the client's signature over the canonical request `creq` describes,
/// with each of the key's secrets (the current one first).
fn check_signature<Q: FnOnce(&mut Vec<u8>)>(
    creq: CanonicalParts<'_, Q>,
    claim: &Claim<'_>,
    secrets: &Secrets<'_>,
) -> Result<SigningKey, Error> {
    let Claim { cred, date, signature } = *claim;
    let scope = Scope { date: cred.date, region: cred.region, service: cred.service };
    let want = unhex32(signature.as_bytes());
    let checked = with_text(|text| {
        push_canonical_request(text, creq);
        for s in secrets.each() {
            let found = s.keys.with_prepared(cred.date, cred.region, |key| {
                let computed = sign_canonical_request(key, date, scope, text);
                // As `SigningKey::verify_hex`: a hex signature in any case, compared in constant time.
                want.is_some_and(|want| bool::from(computed.ct_eq(&want))).then(|| key.key())
            });
            if let Some(key) = found {
                return Ok(key);
            }
        }
        Err(text.clone())
    });
    match checked {
        Ok(key) => Ok(key),
        Err(text) => {
            let creq = CanonicalRequest::from_text(into_string(text));
            let sts = StringToSign::new(date, &cred.scope(), &creq);
            Err(Error::SignatureDoesNotMatch {
                access_key: cred.access_key.to_owned(),
                signature_provided: signature.to_owned(),
                string_to_sign: sts.to_string(),
                canonical_request: Some(creq.to_string()),
            })
        }
    }
}

fn verify_header(
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    host: &SignedHost<'_>,
    query: &Query<'_>,
    authz: &str,
    ctx: &VerifyContext<'_>,
) -> Result<VerifiedRequest, Error> {
    let auth = AuthorizationV4::parse(authz).map_err(|m| Error::AuthorizationHeaderMalformed(m.into()))?;
    let cred = auth.credential;
    let date =
        headers.get(X_AMZ_DATE).and_then(|v| v.to_str().ok()).and_then(AmzDate::parse).ok_or_else(|| {
            Error::AccessDenied("AWS authentication requires a valid Date or X-Amz-Date header".into())
        })?;
    let secrets = check_credential(&cred, &date, ctx, Error::AuthorizationHeaderMalformed)?;
    let skew = (ctx.now - date.datetime()).unsigned_abs();
    if skew > ctx.max_skew {
        return Err(Error::RequestTimeTooSkewed {
            request_time: date.to_string(),
            server_time: fmt_time(ctx.now),
            max_skew_secs: ctx.max_skew.as_secs(),
        });
    }
    let names = auth.signed_headers.names();
    let names = names.as_slice();
    if !names.contains(&"host") {
        return Err(Error::AuthorizationHeaderMalformed("SignedHeaders must include host".into()));
    }
    let payload_text = headers
        .get(X_AMZ_CONTENT_SHA256)
        .ok_or_else(|| Error::InvalidRequest("Missing required header for this request: x-amz-content-sha256".into()))?
        .to_str()
        .unwrap_or("");
    let payload = PayloadHash::parse(payload_text).map_err(|e| match e {
        PayloadError::SigV4a => Error::InvalidArgument(
            "SigV4a streaming payloads (STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD) are not supported by this proxy"
                .into(),
        ),
        PayloadError::Invalid => Error::InvalidArgument(
            "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-…, or a SHA256 value".into(),
        ),
    })?;
    unsigned_amz_headers(headers, names)?;
    check_signed_names(host, headers, names, Error::AuthorizationHeaderMalformed)?;

    let parts = Parts::new(uri.path(), uri.query().unwrap_or(""), query, |_| false, auth.signed_headers.as_str().len());
    let (pairs, fixed) = client_headers(headers, host);
    let creq = CanonicalParts {
        method: method.as_str(),
        canonical_uri: parts.canonical_uri(),
        canonical_query: |q: &mut Vec<u8>| q.push_str(parts.canonical_query()),
        pairs: pairs.as_slice(),
        fixed: fixed.as_slice(),
        names,
        signed_headers: &auth.signed_headers,
        payload_hash: payload_text,
    };
    let key = check_signature(creq, &Claim { cred: &cred, date: &date, signature: auth.signature }, &secrets)?;
    let decoded_length = check_payload(method, headers, payload)?;
    let chunk_seed = payload.has_chunk_signatures().then(|| ChunkSeed {
        signing_key: key,
        amz_date: date,
        scope: cred.scope(),
        seed_signature: auth.signature.to_ascii_lowercase(),
    });
    let body = BodyClaim { hash: payload, decoded_length, chunk_seed };
    let mut v = parts.verified(AuthKind::HeaderV4, auth.signed_headers.as_str(), body);
    v.access_key = cred.access_key.into();
    Ok(v)
}

/// Request-level checks on the payload mode, before any body byte is read;
/// for aws-chunked, the decoded length the body is held to.
fn check_payload(method: &Method, headers: &HeaderMap, payload: PayloadHash) -> Result<Option<u64>, Error> {
    let has_length = headers.contains_key(header::CONTENT_LENGTH);
    let zero_length = headers.get(header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes() == b"0");
    let chunked_te = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .any(|v| v.to_str().is_ok_and(|s| s.to_ascii_lowercase().contains("chunked")));
    match payload {
        PayloadHash::StreamingSigned | PayloadHash::StreamingSignedTrailer | PayloadHash::StreamingUnsignedTrailer => {
            let decoded = headers.get(X_AMZ_DECODED_CONTENT_LENGTH).and_then(|v| v.to_str().ok());
            match decoded.map(|d| crate::sigv4::number::parse_decimal(d.as_bytes())) {
                None => Err(Error::MissingContentLength),
                Some(None) => Err(Error::InvalidArgument("x-amz-decoded-content-length must be a number".into())),
                Some(Some(_)) if !has_length && !chunked_te => Err(Error::MissingContentLength),
                Some(Some(n)) => Ok(Some(n)),
            }
        }
        PayloadHash::Unsigned | PayloadHash::Sha256(_) => {
            if chunked_te && !has_length && (method == Method::PUT || method == Method::POST) {
                return Err(Error::MissingContentLength);
            }
            if let PayloadHash::Sha256(h) = payload
                && (!has_length || zero_length)
                && !chunked_te
                && h != Sha256Digest::EMPTY
            {
                // No body at all (none, or `Content-Length: 0`), yet a
                // non-empty hash was signed: there is no body to check it on.
                return Err(Error::XAmzContentSHA256Mismatch {
                    client_computed: h.as_str().into(),
                    s3_computed: EMPTY_SHA256.into(),
                });
            }
            Ok(None)
        }
    }
}

fn verify_presigned(
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    host: &SignedHost<'_>,
    query: &Query<'_>,
    ctx: &VerifyContext<'_>,
) -> Result<VerifiedRequest, Error> {
    let alg = query.get("X-Amz-Algorithm");
    if alg == Some("AWS4-ECDSA-P256-SHA256") {
        return Err(Error::AuthorizationQueryParametersError(SIGV4A.into()));
    }
    // Each authentication parameter once: `Query::get` would read the first.
    for name in PRESIGNED_AUTH_PARAMS.iter().chain([&X_AMZ_CONTENT_SHA256_PARAM]) {
        if query.iter().filter(|p| &*p.key == name.as_bytes()).nth(1).is_some() {
            return Err(Error::AuthorizationQueryParametersError(
                format!("The query parameter {name} appears more than once").into(),
            ));
        }
    }
    let p = PresignedV4::parse(|n| query.get(n)).map_err(|m| Error::AuthorizationQueryParametersError(m.into()))?;
    let cred = p.credential;
    let secrets = check_credential(&cred, &p.date, ctx, Error::AuthorizationQueryParametersError)?;
    let signed_at = p.date.datetime();
    if signed_at - ctx.now > ctx.max_skew {
        return Err(Error::AccessDenied("Request is not valid yet".into()));
    }
    if ctx.now > signed_at + Duration::from_secs(u64::from(p.expires)) {
        return Err(Error::AccessDenied("Request has expired".into()));
    }
    let names = p.signed_headers.names();
    let names = names.as_slice();
    if !names.contains(&"host") {
        return Err(Error::AuthorizationQueryParametersError("X-Amz-SignedHeaders must include host".into()));
    }
    unsigned_amz_headers(headers, names)?;
    check_signed_names(host, headers, names, Error::AuthorizationQueryParametersError)?;
    let payload_text = p.content_sha256.unwrap_or(UNSIGNED_PAYLOAD);
    let payload = presigned_payload(payload_text, headers, names)?;
    let hoisted = hoisted_headers(query, headers)?;
    // Not forwarded: the authentication parameters (the origin request is
    // header-signed, with its own x-amz-content-sha256), and the hoisted
    // `x-amz-*` ones, which travel as headers.
    let is_auth = |k: &[u8]| {
        (k.starts_with(b"X-Amz-") && (PRESIGNED_AUTH_PARAMS.iter().any(|a| a.as_bytes() == k)))
            || k == X_AMZ_CONTENT_SHA256_PARAM.as_bytes()
            || is_hoistable(k)
    };
    let parts = Parts::new(uri.path(), uri.query().unwrap_or(""), query, is_auth, p.signed_headers.as_str().len());
    let (pairs, fixed) = client_headers(headers, host);
    let creq = CanonicalParts {
        method: method.as_str(),
        canonical_uri: parts.canonical_uri(),
        // The client's own canonical query: everything but the signature.
        canonical_query: |q: &mut Vec<u8>| query.push_canonical(q, |k| k == b"X-Amz-Signature"),
        pairs: pairs.as_slice(),
        fixed: fixed.as_slice(),
        names,
        signed_headers: &p.signed_headers,
        payload_hash: payload_text,
    };
    check_signature(creq, &Claim { cred: &cred, date: &p.date, signature: p.signature }, &secrets)?;
    check_payload(method, headers, payload)?;
    let body = BodyClaim { hash: payload, decoded_length: None, chunk_seed: None };
    let mut v = parts.verified(AuthKind::PresignedV4, p.signed_headers.as_str(), body);
    v.hoisted = hoisted;
    v.access_key = cred.access_key.into();
    Ok(v)
}

const X_AMZ_CONTENT_SHA256_PARAM: &str = "X-Amz-Content-Sha256";

/// The body hash a presigned request is held to: a hex `x-amz-content-sha256`
/// header the client signed, or a hex `X-Amz-Content-Sha256` in the URL (the
/// signed canonical request carries the latter as its payload line). Both
/// present and different is an ambiguity. Neither: UNSIGNED-PAYLOAD.
fn presigned_payload(query_text: &str, headers: &HeaderMap, names: &[&str]) -> Result<PayloadHash, Error> {
    let plain = |p: &PayloadHash| p.is_plain();
    let bad = |what: &str| {
        Error::AuthorizationQueryParametersError(
            format!("{what} must be UNSIGNED-PAYLOAD or a SHA256 value in a presigned request").into(),
        )
    };
    let from_query = PayloadHash::parse(query_text).ok().filter(plain).ok_or_else(|| bad("X-Amz-Content-Sha256"))?;
    let from_header = match headers.get(X_AMZ_CONTENT_SHA256) {
        Some(v) if names.contains(&"x-amz-content-sha256") => Some(
            v.to_str()
                .ok()
                .and_then(|s| PayloadHash::parse(s).ok())
                .filter(plain)
                .ok_or_else(|| bad("x-amz-content-sha256"))?,
        ),
        _ => None,
    };
    match from_header {
        Some(h) if h != from_query && from_query != PayloadHash::Unsigned => Err(Error::InvalidArgument(
            "The x-amz-content-sha256 header and the X-Amz-Content-Sha256 parameter disagree".into(),
        )),
        Some(h) => Ok(h),
        None => Ok(from_query),
    }
}

/// Is this query key an `x-amz-*` header hoisted into a presigned URL (by the
/// JS presigner, botocore, the Go SDK) rather than one of the URL's own
/// authentication parameters?
fn is_hoistable(k: &[u8]) -> bool {
    k.len() > 6
        && k[..6].eq_ignore_ascii_case(b"x-amz-")
        && !PRESIGNED_AUTH_PARAMS.iter().chain([&X_AMZ_CONTENT_SHA256_PARAM]).any(|a| a.as_bytes() == k)
}

/// S3 applies the `x-amz-*` query parameters of a presigned request as the
/// request headers of the same names (a checksum, SSE settings, the ACL,
/// metadata): they are the signer's constraints, so the origin must get them
/// where it looks for them, as signed headers. Refused: one that is also sent
/// as a header, sent twice, spelled like an authentication parameter in
/// another case, or not a valid header value.
fn hoisted_headers(query: &Query<'_>, headers: &HeaderMap) -> Result<Vec<(HeaderName, HeaderValue)>, Error> {
    let mut out: Vec<(HeaderName, HeaderValue)> = Vec::new();
    for p in query.iter().filter(|p| is_hoistable(&p.key)) {
        let lower = p.key.to_ascii_lowercase();
        let bad = |why: &str| {
            Error::InvalidArgument(format!("The query parameter {} {why}", String::from_utf8_lossy(&p.key)).into())
        };
        let reserved = PRESIGNED_AUTH_PARAMS.iter().chain([&X_AMZ_CONTENT_SHA256_PARAM]);
        if reserved.map(|a| a.to_ascii_lowercase()).any(|a| a.as_bytes() == lower) {
            return Err(bad("is an authentication parameter spelled in another case"));
        }
        let name = HeaderName::from_bytes(&lower).map_err(|_| bad("is not a valid header name"))?;
        let value = HeaderValue::from_bytes(&p.value).map_err(|_| bad("is not a valid header value"))?;
        if headers.contains_key(&name) {
            return Err(bad("is also sent as a header"));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(repeated(name.as_str()));
        }
        out.push((name, value));
    }
    Ok(out)
}

enum V2Auth<'a> {
    Header(&'a str),
    Query,
}

/// Query parameters that carry SigV2 query authentication; never forwarded.
const V2_AUTH_PARAMS: [&str; 3] = ["AWSAccessKeyId", "Expires", "Signature"];

fn v2_error(e: sigv2::V2Error, ctx: &VerifyContext<'_>, request_time: Option<&str>) -> Error {
    use sigv2::V2Error as E;
    match e {
        E::MalformedAuthorization => {
            Error::InvalidArgument("AWS authorization header is invalid.  Expected AwsAccessKeyId:signature".into())
        }
        E::MissingQueryParameter(_) => Error::AccessDenied(
            "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters".into(),
        ),
        E::DuplicateQueryParameter(p) => {
            Error::InvalidArgument(format!("The query parameter {p} appears more than once").into())
        }
        E::InvalidExpires => Error::AccessDenied("Invalid date (should be seconds since epoch)".into()),
        E::Expired => Error::AccessDenied("Request has expired".into()),
        E::MissingDate | E::InvalidDate => {
            Error::AccessDenied("AWS authentication requires a valid Date or X-Amz-Date header".into())
        }
        E::RequestTimeTooSkewed => Error::RequestTimeTooSkewed {
            request_time: request_time.unwrap_or("").to_owned(),
            server_time: fmt_time(ctx.now),
            max_skew_secs: ctx.max_skew.as_secs(),
        },
    }
}

/// Query parameters that a SigV2 signature leaves unsigned and that only
/// shape a listing (plus `x-id`, which boto3 adds unsigned to its SigV2
/// presigned URLs). With the signed sub-resources, these are all a V2 request
/// may carry: anything else would reach the origin signed by the proxy
/// without the client's signature covering it.
#[rustfmt::skip]
const V2_UNSIGNED_PARAMS: [&str; 16] = [
    "prefix", "delimiter", "marker", "max-keys", "encoding-type", "list-type", "continuation-token",
    "start-after", "fetch-owner", "key-marker", "upload-id-marker", "version-id-marker", "max-uploads",
    "max-parts", "part-number-marker", "x-id",
];

/// The longest a SigV2 presigned URL may live: 7 days, as for SigV4.
const V2_MAX_EXPIRES: i64 = 604_800;

/// Is this header among those a SigV2 signature covers?
fn v2_signed(name: &str) -> bool {
    matches!(name, "content-md5" | "content-type" | "date") || name.starts_with("x-amz-") && !is_added_by_cdn(name)
}

/// Signature Version 2, header or query. Forwarded as SigV4 like any other
/// request: the origin's signed headers are those V2 covers (Content-MD5,
/// Content-Type, `x-amz-*`), the query is the signed sub-resources and the
/// listing parameters V2 leaves unsigned, and the payload is UNSIGNED-PAYLOAD
/// unless the client signed a hex `x-amz-content-sha256`, which is then
/// checked on the body.
///
/// Bytes that are not UTF-8, in the query or in a header V2 signs, are
/// refused: the V2 string to sign is text, and a lossy decode would let two
/// different requests share one signature.
///
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/RESTAuthentication.html>
fn verify_v2(
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    host: &SignedHost<'_>,
    query: &Query<'_>,
    auth: V2Auth<'_>,
    ctx: &VerifyContext<'_>,
) -> Result<VerifiedRequest, Error> {
    let not_utf8 = |what: &str| Error::InvalidArgument(format!("{what} is not valid UTF-8").into());
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(query.iter().count());
    for p in query.iter() {
        let k = std::str::from_utf8(&p.key).map_err(|_| not_utf8("A query parameter name"))?;
        let v = std::str::from_utf8(&p.value).map_err(|_| not_utf8("A query parameter value"))?;
        pairs.push((k.to_owned(), v.to_owned()));
    }
    let mut hdrs: Vec<(String, String)> = Vec::new();
    for (k, v) in headers.iter().filter(|(k, _)| v2_signed(k.as_str())) {
        let v = std::str::from_utf8(v.as_bytes()).map_err(|_| not_utf8(&format!("The {k} header")))?;
        if hdrs.iter().any(|(n, _)| n == k.as_str()) {
            return Err(repeated(k.as_str()));
        }
        hdrs.push((k.as_str().to_owned(), v.to_owned()));
    }
    check_connection(headers, v2_signed)?;
    let now = ctx.now.unix_timestamp();
    let (kind, access_key, signature, date_line) = match auth {
        V2Auth::Header(h) => {
            let a = sigv2::parse_authorization(h).map_err(|e| v2_error(e, ctx, None))?;
            let raw_time =
                headers.get("x-amz-date").or_else(|| headers.get(header::DATE)).and_then(|v| v.to_str().ok());
            sigv2::check_header_time(&hdrs, now, i64::try_from(ctx.max_skew.as_secs()).unwrap_or(i64::MAX))
                .map_err(|e| v2_error(e, ctx, raw_time))?;
            (
                AuthKind::HeaderV2,
                a.access_key,
                std::borrow::Cow::Borrowed(a.signature),
                sigv2::DateLine::for_headers(&hdrs),
            )
        }
        V2Auth::Query => {
            let p = sigv2::parse_presigned(&pairs)
                .map_err(|e| v2_error(e, ctx, None))?
                .ok_or_else(|| v2_error(sigv2::V2Error::MissingQueryParameter("AWSAccessKeyId"), ctx, None))?;
            sigv2::check_expires(p.expires, now).map_err(|e| v2_error(e, ctx, None))?;
            if p.expires - now > V2_MAX_EXPIRES {
                return Err(Error::AuthorizationQueryParametersError(
                    "Expires must be at most 604800 seconds (7 days) from now".into(),
                ));
            }
            (AuthKind::PresignedV2, p.access_key, p.signature, sigv2::DateLine::Expires(p.expires))
        }
    };
    // Only what the signature covers, and what V2 leaves unsigned by design.
    let is_auth = |k: &[u8]| matches!(kind, AuthKind::PresignedV2) && V2_AUTH_PARAMS.iter().any(|a| a.as_bytes() == k);
    for (k, _) in &pairs {
        let allowed = is_auth(k.as_bytes())
            || sigv2::SUB_RESOURCES.binary_search(&k.as_str()).is_ok()
            || V2_UNSIGNED_PARAMS.contains(&k.as_str());
        if !allowed {
            return Err(Error::InvalidArgument(
                format!("The query parameter {k} is not covered by a SigV2 signature; sign the request with SigV4")
                    .into(),
            ));
        }
    }
    let secrets = client_secrets(access_key, ctx)?;
    // Borrow-checker friendly: the strings above borrow `pairs`/`headers`.
    let (access_key, signature) = (access_key.to_owned(), signature.into_owned());
    let req = sigv2::V2Request {
        method: method.as_str(),
        raw_path: uri.path(),
        query: &pairs,
        headers: &hdrs,
        date_line,
        bucket: host.bucket(),
    };
    let sts = sigv2::StringToSign::new(&req);
    if !secrets.each().any(|s| sigv2::verify(s.secret, &sts, &signature)) {
        return Err(Error::SignatureDoesNotMatch {
            access_key,
            signature_provided: signature,
            string_to_sign: sts.to_string(),
            canonical_request: None,
        });
    }
    let payload = match headers.get(X_AMZ_CONTENT_SHA256) {
        None => PayloadHash::Unsigned,
        Some(v) => match v.to_str().ok().and_then(|s| PayloadHash::parse(s).ok()) {
            Some(p) if p.is_plain() => p,
            _ => {
                return Err(Error::InvalidArgument(
                    "With SigV2, x-amz-content-sha256 must be UNSIGNED-PAYLOAD or a SHA256 value".into(),
                ));
            }
        },
    };
    check_payload(method, headers, payload)?;
    let body = BodyClaim { hash: payload, decoded_length: None, chunk_seed: None };
    let mut signed: Vec<&str> = headers
        .keys()
        .map(http::HeaderName::as_str)
        .filter(|n| (*n == "content-md5" || *n == "content-type" || n.starts_with("x-amz-")) && !is_added_by_cdn(n))
        .collect();
    signed.push("host");
    signed.sort_unstable();
    signed.dedup();
    let parts = Parts::new(uri.path(), uri.query().unwrap_or(""), query, is_auth, 0);
    let mut v = parts.verified(kind, &signed.join(";"), body);
    v.access_key = access_key.into();
    Ok(v)
}

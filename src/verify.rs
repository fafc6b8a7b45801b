//! Request in → [`VerifiedRequest`], the proof that the client's signature
//! holds. Nothing can be forwarded without one. The body is not touched here,
//! so a rejected `Expect: 100-continue` upload never sends its body.
//!
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html>

use std::time::Duration;

use http::{HeaderMap, Method, header};
use time::OffsetDateTime;

use crate::error::Error;
use crate::sigv2;
use crate::sigv4::auth::PRESIGNED_AUTH_PARAMS;
use crate::sigv4::payload::{EMPTY_SHA256, UNSIGNED_PAYLOAD};
use crate::sigv4::{
    AmzDate, AuthorizationV4, CanonicalRequest, Credential, KeyCache, PayloadHash, PresignedV4, Query, SignedHeaders,
    SigningKey, StringToSign, canonical_uri,
};

/// What a verifier needs besides the request. The clock is injected.
pub struct VerifyContext<'a> {
    pub access_key: &'a str,
    /// For SigV2, which signs with the secret itself rather than a derived key.
    pub secret: &'a [u8],
    pub keys: &'a KeyCache,
    pub now: OffsetDateTime,
    pub max_skew: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    HeaderV4,
    PresignedV4,
    HeaderV2,
    PresignedV2,
}

/// The client's chain for signed aws-chunked bodies: its seed signature and key.
#[derive(Debug, Clone)]
pub struct ClientChunkSeed {
    pub signing_key: SigningKey,
    pub amz_date: AmzDate,
    pub scope: String,
    pub seed_signature: String,
}

/// Proof that a request's signature verified. Its fields are private: only
/// [`verify`] makes one, and only a `VerifiedRequest` can be re-signed.
#[derive(Debug, Clone)]
pub struct VerifiedRequest {
    kind: AuthKind,
    canonical_uri: String,
    forward_query: String,
    origin_canonical_query: String,
    signed_headers: String,
    payload: PayloadHash,
    chunk_seed: Option<ClientChunkSeed>,
}

impl VerifiedRequest {
    pub fn kind(&self) -> AuthKind {
        self.kind
    }
    /// The path as verified; forwarded as is.
    pub fn canonical_uri(&self) -> &str {
        &self.canonical_uri
    }
    /// Wire query pairs in canonical order, without presigned auth parameters.
    pub fn forward_query(&self) -> &str {
        &self.forward_query
    }
    pub fn origin_canonical_query(&self) -> &str {
        &self.origin_canonical_query
    }
    /// The header names the client signed.
    pub fn signed_headers(&self) -> impl Iterator<Item = &str> {
        self.signed_headers.split(';')
    }
    pub fn payload(&self) -> PayloadHash {
        self.payload
    }
    pub fn chunk_seed(&self) -> Option<&ClientChunkSeed> {
        self.chunk_seed.as_ref()
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

pub fn verify(
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
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
            verify_header(method, uri, headers, &query, authz, ctx)
        } else if authz.starts_with("AWS4-ECDSA-P256-SHA256") {
            Err(Error::NotImplemented(
                "SigV4a (AWS4-ECDSA-P256-SHA256) signatures are not supported by this proxy".into(),
            ))
        } else if authz.starts_with("AWS ") {
            verify_v2(method, uri, headers, &query, V2Auth::Header(authz), ctx)
        } else {
            Err(Error::AuthorizationHeaderMalformed("Unsupported Authorization Type".into()))
        };
    }
    if presigned {
        return verify_presigned(method, uri, headers, &query, ctx);
    }
    if v2_query {
        return verify_v2(method, uri, headers, &query, V2Auth::Query, ctx);
    }
    Err(Error::AccessDenied("Anonymous access is not allowed through this proxy; sign the request".into()))
}

fn check_access_key(cred: &Credential<'_>, ctx: &VerifyContext<'_>) -> Result<(), Error> {
    // Whole-key match; the key is not secret, so a plain comparison is fine.
    if cred.access_key != ctx.access_key {
        return Err(Error::InvalidAccessKeyId(cred.access_key.to_owned()));
    }
    Ok(())
}

fn unsigned_amz_headers(headers: &HeaderMap, signed: &SignedHeaders<'_>) -> Result<(), Error> {
    let mut missing: Vec<&str> = headers
        .keys()
        .map(http::HeaderName::as_str)
        .filter(|n| n.starts_with("x-amz-") && !signed.contains(n))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    missing.dedup();
    Err(Error::HeadersNotSigned(missing.join(", ")))
}

fn fmt_time(t: OffsetDateTime) -> String {
    AmzDate::from_datetime(t).to_string()
}

#[allow(clippy::too_many_arguments)]
fn check_signature(
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    canonical_uri: &str,
    canonical_query: &str,
    signed: &SignedHeaders<'_>,
    payload_text: &str,
    date: &AmzDate,
    cred: &Credential<'_>,
    provided: &str,
    ctx: &VerifyContext<'_>,
) -> Result<SigningKey, Error> {
    let host = if headers.contains_key(header::HOST) { None } else { uri.authority().map(|a| a.as_str()) };
    let creq =
        CanonicalRequest::new(method.as_str(), canonical_uri, canonical_query, headers, host, signed, payload_text);
    let sts = StringToSign::new(date, &cred.scope(), &creq);
    let key = ctx.keys.get(cred.date, cred.region);
    if key.verify_hex(sts.as_str().as_bytes(), provided) {
        Ok(key)
    } else {
        Err(Error::SignatureDoesNotMatch {
            access_key: cred.access_key.to_owned(),
            signature_provided: provided.to_owned(),
            string_to_sign: sts.to_string(),
            canonical_request: Some(creq.to_string()),
        })
    }
}

fn verify_header(
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    query: &Query<'_>,
    authz: &str,
    ctx: &VerifyContext<'_>,
) -> Result<VerifiedRequest, Error> {
    let auth = AuthorizationV4::parse(authz).map_err(|m| Error::AuthorizationHeaderMalformed(m.into()))?;
    let cred = auth.credential;
    if cred.service != "s3" {
        return Err(Error::AuthorizationHeaderMalformed(
            format!(
                "The authorization header is malformed; incorrect service \"{}\". This endpoint belongs to \"s3\".",
                cred.service
            )
            .into(),
        ));
    }
    check_access_key(&cred, ctx)?;
    let date =
        headers.get("x-amz-date").and_then(|v| v.to_str().ok()).and_then(AmzDate::parse).ok_or_else(|| {
            Error::AccessDenied("AWS authentication requires a valid Date or X-Amz-Date header".into())
        })?;
    if cred.date != date.date() {
        return Err(Error::AuthorizationHeaderMalformed(
            format!(
                "Invalid credential date \"{}\". This date is not the same as X-Amz-Date: \"{}\".",
                cred.date,
                date.date()
            )
            .into(),
        ));
    }
    let skew = (ctx.now - date.datetime()).unsigned_abs();
    if skew > ctx.max_skew {
        return Err(Error::RequestTimeTooSkewed {
            request_time: date.to_string(),
            server_time: fmt_time(ctx.now),
            max_skew_secs: ctx.max_skew.as_secs(),
        });
    }
    if !auth.signed_headers.contains("host") {
        return Err(Error::AuthorizationHeaderMalformed("SignedHeaders must include host".into()));
    }
    let payload_text = headers
        .get("x-amz-content-sha256")
        .ok_or_else(|| Error::InvalidRequest("Missing required header for this request: x-amz-content-sha256".into()))?
        .to_str()
        .unwrap_or("");
    let payload = PayloadHash::parse(payload_text).ok_or_else(|| {
        Error::InvalidArgument("x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-…, or a SHA256 value".into())
    })?;
    unsigned_amz_headers(headers, &auth.signed_headers)?;

    let canonical_uri = canonical_uri(uri.path());
    let canonical_query = query.canonical(|_| false);
    let key = check_signature(
        method,
        uri,
        headers,
        &canonical_uri,
        &canonical_query,
        &auth.signed_headers,
        payload_text,
        &date,
        &cred,
        auth.signature,
        ctx,
    )?;
    check_payload(method, headers, payload)?;
    let chunk_seed = match payload {
        PayloadHash::StreamingSigned | PayloadHash::StreamingSignedTrailer => Some(ClientChunkSeed {
            signing_key: key,
            amz_date: date,
            scope: cred.scope(),
            seed_signature: auth.signature.to_ascii_lowercase(),
        }),
        PayloadHash::Unsigned
        | PayloadHash::Sha256(_)
        | PayloadHash::StreamingUnsignedTrailer
        | PayloadHash::StreamingEcdsa => None,
    };
    Ok(VerifiedRequest {
        kind: AuthKind::HeaderV4,
        forward_query: query.forward(|_| false),
        origin_canonical_query: canonical_query,
        canonical_uri,
        signed_headers: auth.signed_headers.as_str().to_owned(),
        payload,
        chunk_seed,
    })
}

/// Request-level checks on the payload mode, before any body byte is read.
fn check_payload(method: &Method, headers: &HeaderMap, payload: PayloadHash) -> Result<(), Error> {
    let has_length = headers.contains_key(header::CONTENT_LENGTH);
    let chunked_te = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .any(|v| v.to_str().is_ok_and(|s| s.to_ascii_lowercase().contains("chunked")));
    match payload {
        PayloadHash::StreamingEcdsa => Err(Error::NotImplemented(
            "SigV4a streaming payloads (STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD) are not supported by this proxy"
                .into(),
        )),
        PayloadHash::StreamingSigned | PayloadHash::StreamingSignedTrailer | PayloadHash::StreamingUnsignedTrailer => {
            let decoded = headers.get("x-amz-decoded-content-length").and_then(|v| v.to_str().ok());
            match decoded.map(str::parse::<u64>) {
                None => Err(Error::MissingContentLength),
                Some(Err(_)) => Err(Error::InvalidArgument("x-amz-decoded-content-length must be a number".into())),
                Some(Ok(_)) if !has_length && !chunked_te => Err(Error::MissingContentLength),
                Some(Ok(_)) => Ok(()),
            }
        }
        PayloadHash::Unsigned | PayloadHash::Sha256(_) => {
            if chunked_te && !has_length && (method == Method::PUT || method == Method::POST) {
                return Err(Error::MissingContentLength);
            }
            if let PayloadHash::Sha256(h) = payload
                && !has_length
                && !chunked_te
                && hex::encode(h) != EMPTY_SHA256
            {
                // No body at all, yet a non-empty hash was signed.
                return Err(Error::XAmzContentSHA256Mismatch {
                    client_computed: hex::encode(h),
                    s3_computed: EMPTY_SHA256.into(),
                });
            }
            Ok(())
        }
    }
}

fn verify_presigned(
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    query: &Query<'_>,
    ctx: &VerifyContext<'_>,
) -> Result<VerifiedRequest, Error> {
    let alg = query.get("X-Amz-Algorithm");
    if alg == Some("AWS4-ECDSA-P256-SHA256") {
        return Err(Error::NotImplemented(
            "SigV4a (AWS4-ECDSA-P256-SHA256) presigned URLs are not supported by this proxy".into(),
        ));
    }
    let p = PresignedV4::parse(|n| query.get(n)).map_err(|m| Error::AuthorizationQueryParametersError(m.into()))?;
    let cred = p.credential;
    if cred.service != "s3" {
        return Err(Error::AuthorizationQueryParametersError(
            format!("Error parsing the X-Amz-Credential parameter; incorrect service \"{}\". This endpoint belongs to \"s3\".", cred.service).into(),
        ));
    }
    check_access_key(&cred, ctx)?;
    if cred.date != p.date.date() {
        return Err(Error::AuthorizationQueryParametersError(
            format!(
                "Invalid credential date \"{}\". This date is not the same as X-Amz-Date: \"{}\".",
                cred.date,
                p.date.date()
            )
            .into(),
        ));
    }
    let signed_at = p.date.datetime();
    if signed_at - ctx.now > ctx.max_skew {
        return Err(Error::AccessDenied("Request is not valid yet".into()));
    }
    if ctx.now > signed_at + Duration::from_secs(u64::from(p.expires)) {
        return Err(Error::AccessDenied("Request has expired".into()));
    }
    if !p.signed_headers.contains("host") {
        return Err(Error::AuthorizationQueryParametersError("X-Amz-SignedHeaders must include host".into()));
    }
    unsigned_amz_headers(headers, &p.signed_headers)?;
    let payload_text = p.content_sha256.unwrap_or(UNSIGNED_PAYLOAD);
    let payload = PayloadHash::parse(payload_text).ok_or_else(|| {
        Error::AuthorizationQueryParametersError(
            "X-Amz-Content-Sha256 must be UNSIGNED-PAYLOAD or a SHA256 value".into(),
        )
    })?;
    let canonical_uri = canonical_uri(uri.path());
    let canonical_query = query.canonical(|k| k == b"X-Amz-Signature");
    check_signature(
        method,
        uri,
        headers,
        &canonical_uri,
        &canonical_query,
        &p.signed_headers,
        payload_text,
        &p.date,
        &cred,
        p.signature,
        ctx,
    )?;
    match payload {
        PayloadHash::Unsigned | PayloadHash::Sha256(_) => check_payload(method, headers, payload)?,
        PayloadHash::StreamingSigned
        | PayloadHash::StreamingSignedTrailer
        | PayloadHash::StreamingUnsignedTrailer
        | PayloadHash::StreamingEcdsa => {
            return Err(Error::AuthorizationQueryParametersError(
                "a presigned URL cannot carry a STREAMING-* payload".into(),
            ));
        }
    }
    let is_auth = |k: &[u8]| PRESIGNED_AUTH_PARAMS.iter().any(|a| a.as_bytes() == k);
    Ok(VerifiedRequest {
        kind: AuthKind::PresignedV4,
        forward_query: query.forward(is_auth),
        origin_canonical_query: query.canonical(is_auth),
        canonical_uri,
        signed_headers: p.signed_headers.as_str().to_owned(),
        payload,
        chunk_seed: None,
    })
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

/// Signature Version 2, header or query. Forwarded as SigV4 like any other
/// request: the origin's signed headers are those V2 covers (Content-MD5,
/// Content-Type, `x-amz-*`), and the payload is UNSIGNED-PAYLOAD.
///
/// <https://docs.aws.amazon.com/AmazonS3/latest/userguide/RESTAuthentication.html>
fn verify_v2(
    method: &Method,
    uri: &http::Uri,
    headers: &HeaderMap,
    query: &Query<'_>,
    auth: V2Auth<'_>,
    ctx: &VerifyContext<'_>,
) -> Result<VerifiedRequest, Error> {
    let pairs: Vec<(String, String)> = query
        .iter()
        .map(|p| (String::from_utf8_lossy(&p.key).into_owned(), String::from_utf8_lossy(&p.value).into_owned()))
        .collect();
    let hdrs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
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
            (AuthKind::PresignedV2, p.access_key, p.signature, sigv2::DateLine::Expires(p.expires))
        }
    };
    if access_key != ctx.access_key {
        return Err(Error::InvalidAccessKeyId(access_key.to_owned()));
    }
    // Borrow-checker friendly: the strings above borrow `pairs`/`headers`.
    let (access_key, signature) = (access_key.to_owned(), signature.into_owned());
    let req = sigv2::V2Request {
        method: method.as_str(),
        raw_path: uri.path(),
        query: &pairs,
        headers: &hdrs,
        date_line,
        bucket: None,
    };
    let sts = sigv2::StringToSign::new(&req);
    if !sigv2::verify(ctx.secret, &sts, &signature) {
        return Err(Error::SignatureDoesNotMatch {
            access_key,
            signature_provided: signature,
            string_to_sign: sts.to_string(),
            canonical_request: None,
        });
    }
    check_payload(method, headers, PayloadHash::Unsigned)?;
    let mut signed: Vec<&str> = headers
        .keys()
        .map(http::HeaderName::as_str)
        .filter(|n| *n == "content-md5" || *n == "content-type" || n.starts_with("x-amz-"))
        .collect();
    signed.push("host");
    signed.sort_unstable();
    signed.dedup();
    let is_auth = |k: &[u8]| matches!(kind, AuthKind::PresignedV2) && V2_AUTH_PARAMS.iter().any(|a| a.as_bytes() == k);
    Ok(VerifiedRequest {
        kind,
        canonical_uri: canonical_uri(uri.path()),
        forward_query: query.forward(is_auth),
        origin_canonical_query: query.canonical(is_auth),
        signed_headers: signed.join(";"),
        payload: PayloadHash::Unsigned,
        chunk_seed: None,
    })
}

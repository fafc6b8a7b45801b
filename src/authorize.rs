//! verify → **authorize** → re-sign: what a verified request may do, by its
//! key's rules ([`crate::authz`]), and where its bucket lives
//! ([`crate::access`]).
//!
//! A key without rules may do everything. A key with rules gets each of its
//! operation's checks ([`crate::authz::classify`]); one that fails is 403
//! AccessDenied and nothing is forwarded. DeleteObjects names its keys in its
//! body, so for a key with rules that body is read here (bounded), held to
//! its signed hash or Content-MD5, checked key by key, and only then
//! forwarded, as the very bytes read. ListBuckets is answered from every
//! origin, each listing only the buckets routed to it, filtered by the rules.
//!
//! <https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html>
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html>
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListBuckets.html>

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::{HeaderMap, Method};

use crate::authz::{self, Action, Check, Operation, Rules};
use crate::error::Error;
use crate::forward::SharedBody;
use crate::sigv4::{PayloadHash, Query};
use crate::verify::VerifiedRequest;

/// The most a DeleteObjects body read for authorization may hold: 1,000 keys
/// of S3's 1,024-byte maximum, XML-escaped, with room to spare.
pub const MAX_DELETE_BODY: usize = 2 << 20;

/// The bucket a verified request names: its virtual host's, else the first
/// segment of its path (canonical, so a valid bucket name is never
/// percent-encoded in it). None for the service (`/`).
pub fn bucket_of(v: &VerifiedRequest) -> Option<&str> {
    v.bucket().or_else(|| crate::addressing::path_bucket(v.canonical_uri()))
}

/// The decoded object key of a verified request ("" for a bucket request).
fn key_of(v: &VerifiedRequest) -> Result<String, Error> {
    let path = v.canonical_uri();
    let encoded = if v.bucket().is_some() {
        path.strip_prefix('/').unwrap_or(path)
    } else {
        // `/bucket/key…`: the key is everything after the bucket's slash.
        path.strip_prefix('/').and_then(|p| p.split_once('/')).map_or("", |(_, k)| k)
    };
    percent_encoding::percent_decode_str(encoded)
        .decode_utf8()
        .map(|k| k.into_owned())
        .map_err(|_| Error::InvalidArgument("The object key is not valid UTF-8".into()))
}

/// What the handler does with a request its key may make.
#[derive(Debug)]
pub enum Decision {
    /// Forward it as it is.
    Forward,
    /// Answer it from every origin, filtered by these rules (None: all).
    ListBuckets,
    /// A DeleteObjects whose body must be read and checked first.
    DeleteObjects { bucket: String },
}

/// The checks of a verified request against its key's `rules`.
pub fn authorize(v: &VerifiedRequest, method: &Method, headers: &HeaderMap, rules: &Rules) -> Result<Decision, Error> {
    let bucket = bucket_of(v);
    let key = key_of(v)?;
    // The query as forwarded: no presigned authentication parameters.
    let query = Query::parse(v.forward_query());
    let copy_source = match headers.get("x-amz-copy-source") {
        Some(h) => Some(h.to_str().map_err(|_| Error::InvalidArgument("x-amz-copy-source is not ASCII".into()))?),
        None => None,
    };
    let req = authz::Request { method, bucket, key: Some(&key), query: &query, copy_source };
    let op = authz::classify(&req).map_err(|m| Error::InvalidArgument(m.into()))?;
    match op {
        Operation::ListBuckets => Ok(Decision::ListBuckets),
        Operation::Checks(checks) => {
            if let Some(c) = checks.iter().find(|c| !rules.allows(&c.as_check())) {
                return Err(denied(c.action));
            }
            Ok(Decision::Forward)
        }
        Operation::DeleteObjects { bucket } => Ok(Decision::DeleteObjects { bucket }),
        Operation::Unclassified => {
            Err(Error::AccessDenied("Access Denied: this key's rules do not cover this operation".into()))
        }
    }
}

fn denied(action: Action) -> Error {
    Error::AccessDenied(format!("Access Denied: this key may not {} here", action.as_str()).into())
}

/// Reads a DeleteObjects body (at most [`MAX_DELETE_BODY`]), holds it to its
/// signed SHA-256 or its Content-MD5, and checks `delete` on every key in it:
/// one forbidden key refuses the whole request. Returns the bytes to forward.
pub async fn check_delete_objects(
    v: &VerifiedRequest,
    headers: &HeaderMap,
    mut body: SharedBody,
    bucket: &str,
    rules: &Rules,
) -> Result<Bytes, Error> {
    if !v.payload().is_plain() {
        return Err(Error::InvalidRequest(
            "DeleteObjects with an aws-chunked body is not supported for keys with rules; send a plain body".into(),
        ));
    }
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|_| Error::IncompleteBody("The request body could not be read".into()))?;
        if buf.len() + chunk.len() > MAX_DELETE_BODY {
            return Err(Error::MalformedXML(
                format!("The DeleteObjects body is over this proxy's limit of {MAX_DELETE_BODY} bytes").into(),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    let buf = buf.freeze();
    if let PayloadHash::Sha256(h) = v.payload() {
        use sha2::Digest;
        let got: [u8; 32] = sha2::Sha256::digest(&buf).into();
        if got != h.bytes() {
            return Err(Error::XAmzContentSHA256Mismatch {
                client_computed: h.as_str().into(),
                s3_computed: hex::encode(got),
            });
        }
    }
    if let Some(md5) = headers.get("content-md5") {
        use base64::Engine;
        use md5::Digest;
        let want = base64::engine::general_purpose::STANDARD.decode(md5.as_bytes()).map_err(|_| {
            Error::InvalidArgument("Content-MD5 is not base64".into()) // S3: InvalidDigest
        })?;
        if want.as_slice() != md5::Md5::digest(&buf).as_slice() {
            return Err(Error::BadDigest);
        }
    }
    let keys = authz::delete_keys(&buf).map_err(|m| {
        Error::MalformedXML(
            format!("The XML you provided was not well-formed or did not validate against our published schema: {m}")
                .into(),
        )
    })?;
    for key in &keys {
        if !rules.allows(&Check { action: Action::Delete, bucket, key }) {
            return Err(denied(Action::Delete));
        }
    }
    Ok(buf)
}

//! Browser form uploads (`POST /bucket`, multipart/form-data, a POST
//! policy): read the fields before the file part (at most 20 KiB, as S3),
//! verify the policy's signature and conditions ([`crate::post_policy`]),
//! then send the origin a new form (its own policy, signed with the origin
//! key) with the file part streamed through in pieces under 64 KiB,
//! `content-length-range` enforced as it streams: an upload out of range
//! aborts the origin request before its closing boundary, so nothing is
//! stored. The client gets S3's answer: 204, `success_action_status`
//! (200, 201 with XML) or a 303 to `success_action_redirect`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http::{HeaderValue, Method, Response, StatusCode, header};

use crate::access::{Access, ClientKey};
use crate::access_log::Exchange;
use crate::addressing::SignedHost;
use crate::authz::{Action, Check};
use crate::error::{BoxError, Error};
use crate::forward::{DataStream, Failure, OutBody, Progress, ProxyBody, SharedBody};
use crate::post_policy::{self, Fields, OriginKey, Policy};
use crate::state::AppState;

/// S3's bound on the form fields before the file part.
pub const MAX_FIELDS_BYTES: usize = 20 << 10;
/// The most the parser may read before the file part starts: the fields, the
/// part headers, and a read-ahead chunk of the client's body.
const MAX_PRE_FILE_BYTES: u64 = 512 << 10;
/// Each piece of the file sent on is under s3s's 64 KiB multipart buffer.
pub const PIECE: usize = 32 << 10;
/// How much of the origin's 201 XML is read for its ETag.
const ORIGIN_ANSWER_LIMIT: usize = 64 << 10;

/// A form upload: a POST of multipart/form-data with no Authorization header
/// and no presigned query (the policy in the form is its credential).
pub(crate) fn is_form_upload(parts: &http::request::Parts) -> bool {
    parts.method == Method::POST
        && parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().get(..19).is_some_and(|p| p.eq_ignore_ascii_case("multipart/form-data")))
        && !crate::verify::has_auth(&parts.headers, parts.uri.query())
}

fn malformed() -> Error {
    Error::MalformedPOSTRequest("The body of your POST request is not well-formed multipart/form-data.".into())
}

/// The bucket a form is posted to: the virtual host's, or `/bucket` of the path.
fn bucket_of<'a>(host: &'a SignedHost<'_>, path: &'a str) -> Result<&'a str, Error> {
    let not_bucket = || Error::InvalidRequest("A POST form upload goes to a bucket: POST /bucket".into());
    match host.bucket() {
        Some(b) if path == "/" => Ok(b),
        Some(_) => Err(not_bucket()),
        None => {
            let b = path.strip_prefix('/').map(|p| p.strip_suffix('/').unwrap_or(p)).unwrap_or("");
            if b.is_empty() || b.contains('/') || b.contains('%') {
                return Err(not_bucket());
            }
            Ok(b)
        }
    }
}

pub(crate) async fn handle(
    state: &AppState,
    access: &Access,
    parts: &http::request::Parts,
    host: &SignedHost<'_>,
    body: Option<SharedBody>,
    ex: &mut Exchange,
) -> Result<Response<ProxyBody>, (Error, bool)> {
    let bucket = bucket_of(host, parts.uri.path()).map_err(|e| (e, false))?;
    ex.set_bucket(Some(bucket));
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let boundary = multer::parse_boundary(content_type).map_err(|_| (malformed(), false))?;
    let body = body.ok_or((malformed(), false))?;
    let failure = body.failure.clone();
    let file_started = Arc::new(AtomicBool::new(false));
    let input = PreFileLimit { inner: body, seen: AtomicU64::new(0), file_started: file_started.clone() };
    let mut multipart = multer::Multipart::new(input, boundary);
    let (fields, file) = read_fields(&mut multipart).await.map_err(|e| (e, true))?;
    file_started.store(true, Ordering::Relaxed);
    drop(multipart); // the file field holds the parser from here on
    upload(state, access, bucket, fields, file, failure, ex).await.map_err(|e| (e, true))
}

/// The fields before the file part, and the file part.
async fn read_fields(multipart: &mut multer::Multipart<'static>) -> Result<(Fields, multer::Field<'static>), Error> {
    let mut fields = Vec::new();
    let mut total = 0usize;
    let too_large = || Error::MaxPostPreDataLengthExceeded;
    loop {
        let Some(mut field) = multipart.next_field().await.map_err(multer_error)? else {
            return Err(Error::InvalidArgument("POST requires exactly one file upload per request.".into()));
        };
        let name = field.name().ok_or_else(malformed)?.to_owned();
        if name.eq_ignore_ascii_case("file") {
            return Ok((Fields::new(fields)?, field));
        }
        total += name.len();
        let mut value = BytesMut::new();
        while let Some(chunk) = field.chunk().await.map_err(multer_error)? {
            total += chunk.len();
            if total > MAX_FIELDS_BYTES {
                return Err(too_large());
            }
            value.extend_from_slice(&chunk);
        }
        if total > MAX_FIELDS_BYTES {
            return Err(too_large());
        }
        let value = String::from_utf8(value.to_vec()).map_err(|_| malformed())?;
        fields.push((name, value));
    }
}

fn multer_error(e: multer::Error) -> Error {
    match e {
        multer::Error::StreamReadFailed(_) => {
            Error::IncompleteBody("The request body ended before the form did; nothing was stored".into())
        }
        _ => malformed(),
    }
}

/// Verify, check, authorize, then stream the new form to the origin.
async fn upload(
    state: &AppState,
    access: &Access,
    bucket: &str,
    fields: Fields,
    file: multer::Field<'static>,
    failure: Failure,
    ex: &mut Exchange,
) -> Result<Response<ProxyBody>, Error> {
    let now = state.0.clock.now();
    let Some(auth) = post_policy::form_auth(&fields)? else {
        // No credential in the form: an anonymous upload, forwarded as it
        // came (unsigned, no policy of ours) where ANONYMOUS_ACCESS or the
        // bucket's entry allows it; the origin's own policy decides.
        let cfg = &state.0.config;
        let policy = crate::anonymous::policy_for(access, cfg.anonymous, Some(bucket));
        if policy != crate::anonymous::AnonymousAccess::Forward {
            return Err(Error::AccessDenied(
                "Anonymous access is not allowed through this proxy; sign the request".into(),
            ));
        }
        return forward_anonymous_form(state, access, bucket, &fields, file, failure, ex).await;
    };
    post_policy::verify_signature(&auth, access, now)?;
    ex.verified(auth.access_key());
    let key = post_policy::object_key(&fields, file.file_name())?;
    let policy = Policy::from_base64(auth.policy())?;
    post_policy::check(&policy, &fields, bucket, &key, now)?;
    if let Some(rules) = access.key(auth.access_key()).and_then(ClientKey::rules)
        && !rules.allows(&Check { action: Action::Write, bucket, key: &key })
    {
        return Err(Error::AccessDenied("Access Denied".into()));
    }
    let range = policy.content_length_range();

    let origin = access.origin_for(Some(bucket));
    let token = origin.token.as_ref().and_then(|t| t.to_str().ok());
    let okey = OriginKey { access_key: &origin.access_key, keys: &origin.keys, region: &origin.region, token };
    let out_fields = post_policy::origin_fields(&fields, bucket, &key, &okey, now);
    let form = OutForm { bucket, fields: &out_fields, file, range };
    let (rparts, rbody) = send_form(state, origin, form, failure, ex).await?;
    if !rparts.status.is_success() {
        let body = crate::handler::screen_origin_error(&rparts, rbody, false).await?;
        return Ok(Response::from_parts(rparts, body));
    }
    let etag = origin_etag(&rparts.headers, rbody).await;
    Ok(answer(&fields, bucket, &key, etag.as_deref()))
}

/// An anonymous form, to its bucket's origin unsigned: its fields as sent,
/// the file streamed; the origin's answer returned as it is.
async fn forward_anonymous_form(
    state: &AppState,
    access: &Access,
    bucket: &str,
    fields: &Fields,
    file: multer::Field<'static>,
    failure: Failure,
    ex: &mut Exchange,
) -> Result<Response<ProxyBody>, Error> {
    let origin = access.origin_for(Some(bucket));
    let pairs: Vec<(String, String)> = fields.iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
    let form = OutForm { bucket, fields: &pairs, file, range: None };
    let (rparts, rbody) = send_form(state, origin, form, failure, ex).await?;
    Ok(Response::from_parts(rparts, ProxyBody::Origin { body: rbody }))
}

/// A form as it goes to the origin.
struct OutForm<'a> {
    bucket: &'a str,
    fields: &'a [(String, String)],
    file: multer::Field<'static>,
    /// content-length-range, enforced while the file streams.
    range: Option<(u64, u64)>,
}

/// Sends `form` to `origin` (a new boundary, the fields, the file streamed),
/// chunked: the file's length is known only at its end. The response head
/// comes back less its hop-by-hop headers.
async fn send_form(
    state: &AppState,
    origin: &crate::access::OriginEntry,
    form: OutForm<'_>,
    failure: Failure,
    ex: &mut Exchange,
) -> Result<(http::response::Parts, crate::forward::OriginBody), Error> {
    let boundary = boundary();
    let prefix = form_prefix(&boundary, form.fields, form.file.file_name().unwrap_or("file"));
    let suffix = Bytes::from(format!("\r\n--{boundary}--\r\n"));
    let ct = HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}"))
        .map_err(|_| Error::InvalidRequest("the form could not be forwarded".into()))?;
    let out = origin.signer().post_form(form.bucket, ct)?;
    let stream =
        FileStream { field: form.file, pending: Bytes::new(), len: 0, range: form.range, failure: failure.clone() };
    let body: DataStream = Box::pin(
        futures_util::stream::once(async move { Ok::<_, BoxError>(prefix) })
            .chain(stream.into_stream())
            .chain(futures_util::stream::once(async move { Ok::<_, BoxError>(suffix) })),
    );
    let sent = Instant::now();
    let resp =
        state.forwarder(&origin.origin).send(out, OutBody::new(body, None, Progress::new()), Some(&failure)).await?;
    ex.origin_answered(resp.status().as_u16(), sent.elapsed());
    let (mut rparts, rbody) = resp.into_parts();
    crate::headers::strip_hop_by_hop(&mut rparts.headers);
    Ok((rparts, rbody))
}

/// An unguessable boundary: the file's bytes come from the client, who must
/// not be able to end the part early and add fields of its own.
fn boundary() -> String {
    let mut r = [0u8; 24];
    if rustls::crypto::aws_lc_rs::default_provider().secure_random.fill(&mut r).is_err() {
        // Unreachable in practice; a per-process random hasher still keeps it unguessable.
        use std::hash::BuildHasher;
        let h = std::collections::hash_map::RandomState::new();
        r[..8].copy_from_slice(&h.hash_one(Instant::now()).to_le_bytes());
        r[8..16].copy_from_slice(&h.hash_one(std::process::id()).to_le_bytes());
    }
    format!("s3rp-{}", hex::encode(r))
}

/// The fields, then the file part's head.
fn form_prefix(boundary: &str, fields: &[(String, String)], filename: &str) -> Bytes {
    let mut out = Vec::with_capacity(fields.iter().map(|(n, v)| n.len() + v.len() + 100).sum::<usize>() + 200);
    for (n, v) in fields {
        out.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"\r\n\r\n", quote(n)).as_bytes(),
        );
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
            quote(filename)
        )
        .as_bytes(),
    );
    Bytes::from(out)
}

/// A name or file name inside a quoted Content-Disposition parameter, as
/// browsers escape it (`"` → %22, CR/LF → %0D/%0A).
fn quote(s: &str) -> String {
    s.replace('"', "%22").replace('\r', "%0D").replace('\n', "%0A")
}

/// The ETag of the stored object: the origin's 201 XML (`<ETag>`), else its
/// ETag header.
async fn origin_etag(headers: &http::HeaderMap, body: crate::forward::OriginBody) -> Option<String> {
    use http_body_util::BodyExt;
    let header = headers.get(header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let xml = http_body_util::Limited::new(body, ORIGIN_ANSWER_LIMIT).collect().await.ok()?.to_bytes();
    let text = String::from_utf8_lossy(&xml);
    let from_xml = text
        .split_once("<ETag>")
        .and_then(|(_, r)| r.split_once("</ETag>"))
        .map(|(e, _)| e.trim().replace("&quot;", "\"").replace("&#34;", "\""));
    // S3's ETag is quoted; s3s-fs 0.14's PostResponse leaves the quotes out.
    from_xml.or(header).filter(|e| !e.is_empty()).map(|e| if e.starts_with('"') { e } else { format!("\"{e}\"") })
}

/// S3's answer to a stored form upload.
fn answer(fields: &Fields, bucket: &str, key: &str, etag: Option<&str>) -> Response<ProxyBody> {
    let etag = etag.unwrap_or("");
    let location = format!("/{bucket}/{}", encode(key, true));
    let redirect = fields.get("success_action_redirect").or_else(|| fields.get("redirect"));
    if let Some(url) = redirect.and_then(|u| redirect_location(u, bucket, key, etag)) {
        let mut resp = Response::new(ProxyBody::from(Body::empty()));
        *resp.status_mut() = StatusCode::SEE_OTHER;
        resp.headers_mut().insert(header::LOCATION, url);
        return resp;
    }
    let (status, body) = match fields.get("success_action_status") {
        Some("200") => (StatusCode::OK, Body::empty()),
        Some("201") => {
            let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse>");
            for (name, v) in [("Location", location.as_str()), ("Bucket", bucket), ("Key", key), ("ETag", etag)] {
                xml.push_str(&format!("<{name}>{}</{name}>", xml_escape(v)));
            }
            xml.push_str("</PostResponse>");
            (StatusCode::CREATED, Body::from(xml))
        }
        _ => (StatusCode::NO_CONTENT, Body::empty()),
    };
    let mut resp = Response::new(ProxyBody::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    if status == StatusCode::CREATED {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    }
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, v);
    }
    resp
}

/// `url` with `bucket`, `key` and `etag` added to its query, as S3 does;
/// None when it is not an absolute http(s) URL (S3 then answers as without one).
fn redirect_location(url: &str, bucket: &str, key: &str, etag: &str) -> Option<HeaderValue> {
    let uri: http::Uri = url.parse().ok()?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return None;
    }
    let enc = |s: &str| encode(s, false);
    let (base, fragment) = url.split_once('#').map_or((url, None), |(b, f)| (b, Some(f)));
    let sep = if base.contains('?') { "&" } else { "?" };
    let mut loc = format!("{base}{sep}bucket={}&key={}&etag={}", enc(bucket), enc(key), enc(etag));
    if let Some(f) = fragment {
        loc.push('#');
        loc.push_str(f);
    }
    HeaderValue::from_str(&loc).ok()
}

/// S3 URI encoding (`/` kept or not).
fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    crate::sigv4::encode::uri_encode_into(&mut out, s.as_bytes(), keep_slash);
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The client's body while the fields are read: more than
/// [`MAX_PRE_FILE_BYTES`] before the file part is refused (multer would
/// buffer an endless part head).
struct PreFileLimit {
    inner: SharedBody,
    seen: AtomicU64,
    file_started: Arc<AtomicBool>,
}

impl Stream for PreFileLimit {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let r = std::pin::Pin::new(&mut self.inner).poll_next(cx);
        if let std::task::Poll::Ready(Some(Ok(b))) = &r {
            let seen = self.seen.fetch_add(b.len() as u64, Ordering::Relaxed) + b.len() as u64;
            if seen > MAX_PRE_FILE_BYTES && !self.file_started.load(Ordering::Relaxed) {
                return std::task::Poll::Ready(Some(Err("the form's fields are too large".into())));
            }
        }
        r
    }
}

/// The file part's bytes, in pieces under 64 KiB, counted against the
/// policy's content-length-range. A failure is recorded in `failure` (the
/// S3 error the client gets) and ends the stream with an error, which
/// aborts the origin request.
struct FileStream {
    field: multer::Field<'static>,
    pending: Bytes,
    len: u64,
    range: Option<(u64, u64)>,
    failure: Failure,
}

impl FileStream {
    fn into_stream(self) -> impl Stream<Item = Result<Bytes, BoxError>> + Send {
        futures_util::stream::unfold(Some(self), |s| async move {
            let mut s = s?;
            loop {
                if !s.pending.is_empty() {
                    let n = s.pending.len().min(PIECE);
                    let piece = s.pending.split_to(n);
                    return Some((Ok(piece), Some(s)));
                }
                let fail = |s: &FileStream, e: Error| {
                    let msg = e.to_string();
                    s.failure.set(e);
                    Some((Err(BoxError::from(msg)), None))
                };
                match s.field.chunk().await {
                    Ok(Some(b)) => {
                        s.len += b.len() as u64;
                        if let Err(e) = post_policy::check_length(s.range, s.len, false) {
                            return fail(&s, e);
                        }
                        s.pending = b;
                    }
                    Ok(None) => {
                        return match post_policy::check_length(s.range, s.len, true) {
                            Ok(()) => None,
                            Err(e) => fail(&s, e),
                        };
                    }
                    Err(e) => return fail(&s, multer_error(e)),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_gets_bucket_key_etag() {
        let v = redirect_location("https://app.example/done?x=1#top", "b", "a b/c.txt", "\"e\"").unwrap();
        assert_eq!(v, "https://app.example/done?x=1&bucket=b&key=a%20b%2Fc.txt&etag=%22e%22#top");
        let v = redirect_location("http://app.example/done", "b", "k", "").unwrap();
        assert_eq!(v, "http://app.example/done?bucket=b&key=k&etag=");
        assert!(redirect_location("/relative", "b", "k", "e").is_none());
        assert!(redirect_location("javascript:alert(1)", "b", "k", "e").is_none());
    }

    #[test]
    fn prefix_escapes_names_and_ends_in_the_file_head() {
        let p = form_prefix("B", &[("key".into(), "k\r\nv".into())], "a\"b\r\n.txt");
        let s = String::from_utf8(p.to_vec()).unwrap();
        assert_eq!(
            s,
            "--B\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\nv\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a%22b%0D%0A.txt\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        );
    }

    #[test]
    fn boundaries_differ() {
        let (a, b) = (boundary(), boundary());
        assert_ne!(a, b);
        assert_eq!(a.len(), 5 + 48);
    }
}

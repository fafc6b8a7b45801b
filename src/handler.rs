//! The handler: request in → intake → verify → re-sign → forward → stream
//! back, and `/healthz` and `/metrics`. [`serve`] is what the server runs for
//! each request.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use time::OffsetDateTime;

use crate::access::{Access, ClientKey, OriginEntry};
use crate::access_log::{AccessBody, Exchange};
use crate::authorize::{Decision, authorize, bucket_of, check_delete_objects};
use crate::authz::{BucketList, Rules};
use crate::error::Error;
use crate::forward::{self, ChunkErrors, DataStream, Failure, OutBody, Progress, ProxyBody, Sha256Check, SharedBody};
use crate::metrics::{HealthState, Metrics};
use crate::sigv4::{self, PayloadHash};
use crate::state::{AppState, OriginProbe};
use crate::verify::{self, VerifiedRequest, VerifyContext, has_auth, verify_for_host};
use crate::{chunked, headers, intake, resign};

/// The one service the server runs for every request, in the binary and in
/// the in-process tests alike: `/healthz` and `/metrics` (unauthenticated
/// `GET|HEAD`; a signed one is an S3 request for a bucket of that name;
/// `/metrics` only while METRICS_PORT is unset), else the proxy.
///
/// Not an axum router: served through axum's `Router`, small GETs cost
/// 8-10% more requests per second than this direct hyper service in the same
/// load-benchmark run (bench/RESULTS.md, issue 12), for two routes.
pub(crate) async fn serve<B>(state: AppState, peer: Option<IpAddr>, req: http::Request<B>) -> Response<AccessBody>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<crate::error::BoxError>,
{
    let (method, path) = (req.method(), req.uri().path());
    let local = path == "/healthz" || path == "/metrics" && state.0.config.metrics_port.is_none();
    if local && (method == Method::GET || method == Method::HEAD) && !has_auth(req.headers(), req.uri().query()) {
        let head = method == Method::HEAD;
        let resp = if path == "/healthz" {
            let draining = req.extensions().get::<crate::drain::Draining>().is_some();
            healthz(&state, head, draining).await
        } else {
            metrics(state.metrics(), head)
        };
        return resp.map(|b| AccessBody::unlogged(ProxyBody::from(b)));
    }
    // CORS: only a request with an Origin pays for finding its policy.
    let cors = match req.headers().get(header::ORIGIN) {
        Some(origin) => cors_policy(&state, peer, &req).map(|p| (p, origin.clone())),
        None => None,
    };
    if let Some((policy, origin)) = &cors
        && crate::cors::is_preflight(req.method(), req.headers())
    {
        // Answered here, never forwarded.
        let resp = match policy.preflight(req.headers()) {
            Ok(headers) => {
                let mut resp = Response::new(Body::empty());
                *resp.headers_mut() = headers;
                resp
            }
            Err(why) => {
                let e = Error::CorsForbidden(
                    format!("CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec ({why}).").into(),
                );
                let mut resp = e.into_response(request_id().to_str().unwrap_or("0"), false);
                policy.decorate(origin, resp.headers_mut());
                resp
            }
        };
        return resp.map(|b| AccessBody::unlogged(ProxyBody::from(b)));
    }
    let mut resp = handle(state, peer, req).await;
    if let Some((policy, origin)) = cors {
        policy.decorate(&origin, resp.headers_mut());
    }
    resp
}

/// The CORS policy of a request's bucket: its ACCESS_FILE entry's, else
/// CORS_*'s; None when CORS is off for it.
fn cors_policy<B>(
    state: &AppState,
    peer: Option<IpAddr>,
    req: &http::Request<B>,
) -> Option<std::sync::Arc<crate::cors::CorsPolicy>> {
    let cfg = &state.0.config;
    let access = state.access();
    let host = cfg.addressing.signed_host(peer, req.uri(), req.headers()).ok();
    let mut path = String::new();
    let bucket = match host.as_ref().and_then(|h| h.bucket()) {
        Some(b) => Some(b),
        None => {
            crate::sigv4::encode::canonical_uri_into(&mut path, req.uri().path());
            crate::addressing::path_bucket(&path)
        }
    };
    access.bucket_entry(bucket).and_then(|e| e.cors.clone()).or_else(|| cfg.cors.clone())
}

/// `GET|HEAD /metrics`: every metric, in the Prometheus text format.
pub fn metrics(metrics: &Metrics, head: bool) -> Response {
    let mut resp = Response::new(if head { Body::empty() } else { Body::from(metrics.encode()) });
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(crate::metrics::CONTENT_TYPE));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// A request id for responses that lack the origin's: unique per process
/// run, 16 hex digits, formatted without allocating.
fn request_id() -> HeaderValue {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        let t = OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
        t ^ u64::from(std::process::id()).rotate_left(32)
    });
    let id = seed.wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut hex = [0u8; 16];
    for (i, b) in hex.iter_mut().enumerate() {
        *b = b"0123456789ABCDEF"[(id >> (60 - 4 * i)) as usize & 0xF];
    }
    HeaderValue::from_bytes(&hex).unwrap_or(HeaderValue::from_static("0"))
}

/// One S3 request: intake → verify → re-sign → forward → stream back.
/// `peer` is the address the connection came from (TRUSTED_PROXIES). Its
/// [`Exchange`] counts it and writes its access line when the response body
/// ends (or when this future is dropped first: status 499).
pub(crate) async fn handle<B>(state: AppState, peer: Option<IpAddr>, req: http::Request<B>) -> Response<AccessBody>
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<crate::error::BoxError>,
{
    let (parts, body) = req.into_parts();
    let mut ex = Exchange::start(&state, peer, &parts);
    let head = parts.method == Method::HEAD;
    // Only a request with a body pays for the shared handle on it.
    let len = content_length(&parts.headers);
    let has_body = len.is_some_and(|l| l > 0) || parts.headers.contains_key(header::TRANSFER_ENCODING);
    let body = has_body.then(|| SharedBody::new(Body::new(ex.count_body(body)), Failure::default()));
    // Refused before any signature is looked at: not an S3 method, over a
    // limit, or ambiguous.
    // An unsigned OPTIONS may be forwarded (ANONYMOUS_ACCESS=forward: the
    // origin's bucket CORS answers it); `proxy` decides, after the limits.
    let unsigned_options = parts.method == Method::OPTIONS
        && (crate::cors::is_preflight(&parts.method, &parts.headers) || !has_auth(&parts.headers, parts.uri.query()));
    let checked = if unsigned_options {
        intake::check_request(&parts.method, &parts.uri, &parts.headers)
    } else {
        intake::check(&parts.method, &parts.uri, &parts.headers)
    };
    let result = match checked {
        Ok(()) => proxy(&state, peer, &parts, len, body.clone(), &mut ex).await,
        Err(e) => Err((e, false)),
    };
    let mut resp = match result {
        Ok(r) => r,
        Err((e, body_started)) => {
            let rid = request_id();
            let rid_str = rid.to_str().unwrap_or("0");
            // The access line names the code; this one has the whole error.
            tracing::debug!(method = %parts.method, path = parts.uri.path(), request_id = rid_str, error = %e, "rejected");
            ex.refused(&e, &parts.headers, parts.uri.query());
            if let Some(body) = body {
                drain(&parts.headers, body, body_started).await;
            }
            e.into_response(rid_str, head).map(ProxyBody::from)
        }
    };
    let rid = resp.headers_mut().entry("x-amz-request-id").or_insert_with(request_id).clone();
    ex.respond(resp, rid)
}

/// verify → re-sign → forward. An error says whether the body was already
/// being read (so a `100 Continue` may have gone out).
async fn proxy(
    state: &AppState,
    peer: Option<IpAddr>,
    parts: &http::request::Parts,
    len: Option<u64>,
    body: Option<SharedBody>,
    ex: &mut Exchange,
) -> Result<Response<ProxyBody>, (Error, bool)> {
    let cfg = &state.0.config;
    let now = state.0.clock.now();
    // The keys, rules and routes this request started with, to its end.
    let access = state.access();
    let ctx = VerifyContext { keys: &*access, now, max_skew: cfg.max_clock_skew };
    // The host the signature must cover, and the bucket it names.
    let host = cfg.addressing.signed_host(peer, &parts.uri, &parts.headers).map_err(|e| (e, false))?;
    ex.set_bucket(host.bucket());
    if crate::post_upload::is_form_upload(parts) {
        // An HTML form upload: its signature is in the form (a POST policy).
        return crate::post_upload::handle(state, &access, parts, &host, body, ex).await;
    }
    let preflight = crate::cors::is_preflight(&parts.method, &parts.headers);
    if preflight || !has_auth(&parts.headers, parts.uri.query()) {
        // No credentials at all: forwarded unsigned where ANONYMOUS_ACCESS
        // (or the bucket's entry) says so, else refused as always.
        let policy = |b: Option<&str>| crate::anonymous::policy_for(&access, cfg.anonymous, b);
        return match crate::anonymous::admit(&parts.uri, &host, policy) {
            Some(mut a) => {
                if preflight {
                    // The presigned query of the actual request is not the
                    // preflight's: the origin's bucket CORS needs only the
                    // path and headers, and never gets a client signature.
                    a.drop_query();
                }
                forward_anonymous(state, &access, &a, parts, len, body, ex).await
            }
            None if parts.method == Method::OPTIONS => Err((
                intake::check_method(&parts.method).err().unwrap_or(Error::AccessDenied("Access Denied".into())),
                false,
            )),
            None => Err((
                Error::AccessDenied("Anonymous access is not allowed through this proxy; sign the request".into()),
                false,
            )),
        };
    }
    let verified = verify_for_host(&parts.method, &parts.uri, &parts.headers, &host, &ctx).map_err(|e| (e, false))?;
    ex.verified(verified.access_key());
    let rules = access.key(verified.access_key()).and_then(ClientKey::rules);
    let decision = match rules {
        Some(rules) => authorize(&verified, &parts.method, &parts.headers, rules).map_err(|e| (e, false))?,
        None if access.origins().len() > 1 && parts.method == Method::GET && bucket_of(&verified).is_none() => {
            Decision::ListBuckets
        }
        None => Decision::Forward,
    };
    let mut body = body;
    let mut read_body = None;
    match decision {
        Decision::Forward => {}
        Decision::ListBuckets => {
            return list_buckets(state, &access, &verified, parts, rules, ex).await.map_err(|e| (e, false));
        }
        Decision::DeleteObjects { bucket } => {
            let rules = rules.ok_or((Error::AccessDenied("Access Denied".into()), false))?;
            let b = body.take().ok_or((Error::MalformedXML("DeleteObjects needs a body".into()), false))?;
            let bytes =
                check_delete_objects(&verified, &parts.headers, b, &bucket, rules).await.map_err(|e| (e, true))?;
            read_body = Some(bytes);
        }
    }
    let origin = access.origin_for(bucket_of(&verified));
    if access.origins().len() > 1 {
        check_same_origin(&access, origin, &parts.headers).map_err(|e| (e, false))?;
    }
    let out = origin.signer().resign(&verified, &parts.method, &parts.headers, now).map_err(|e| (e, false))?;
    let failure = body.as_ref().map(|b| b.failure.clone());
    let has_body = body.is_some() || read_body.is_some();
    let out_body = match (body, read_body) {
        (_, Some(bytes)) => {
            let len = bytes.len() as u64;
            let once: DataStream = Box::pin(futures_util::stream::once(async move { Ok(bytes) }));
            OutBody::new(once, Some(len), Progress::new())
        }
        (Some(body), None) => {
            let failure = body.failure.clone();
            let payload = verified.payload();
            let stream: DataStream = match (chunked::Mode::of(payload), payload) {
                (Some(mode), _) => {
                    Box::pin(ChunkErrors::new(chunk_rewriter(mode, &verified, &out, &parts.headers, body), failure))
                }
                (None, PayloadHash::Sha256(h)) => Box::pin(Sha256Check::new(body, h.bytes(), failure)),
                (None, _) => Box::pin(body),
            };
            OutBody::new(stream, len, Progress::new())
        }
        (None, None) => OutBody::empty(),
    };
    let sent = Instant::now();
    let forwarder = state.forwarder(&origin.origin);
    let resp = forwarder.send(out, out_body, failure.as_ref()).await.map_err(|e| (e, has_body))?;
    ex.origin_answered(resp.status().as_u16(), sent.elapsed());
    let (mut rparts, rbody) = resp.into_parts();
    headers::strip_hop_by_hop(&mut rparts.headers);
    let body = screen_origin_error(&rparts, rbody, parts.method == Method::HEAD).await.map_err(|e| (e, has_body))?;
    Ok(Response::from_parts(rparts, body))
}

/// An anonymous request, to its bucket's origin unsigned, its body streamed as
/// it comes; the origin's answer returned as it is (its own 403 included).
async fn forward_anonymous(
    state: &AppState,
    access: &Access,
    a: &crate::anonymous::AnonymousRequest,
    parts: &http::request::Parts,
    len: Option<u64>,
    body: Option<SharedBody>,
    ex: &mut Exchange,
) -> Result<Response<ProxyBody>, (Error, bool)> {
    let origin = access.origin_for(a.bucket());
    let out = origin.signer().unsigned(a, &parts.method, &parts.headers).map_err(|e| (e, false))?;
    let failure = body.as_ref().map(|b| b.failure.clone());
    let has_body = body.is_some();
    let out_body = match body {
        Some(body) => OutBody::new(Box::pin(body), len, Progress::new()),
        None => OutBody::empty(),
    };
    let sent = Instant::now();
    let resp =
        state.forwarder(&origin.origin).send(out, out_body, failure.as_ref()).await.map_err(|e| (e, has_body))?;
    ex.origin_answered(resp.status().as_u16(), sent.elapsed());
    let (mut rparts, rbody) = resp.into_parts();
    headers::strip_hop_by_hop(&mut rparts.headers);
    Ok(Response::from_parts(rparts, ProxyBody::Origin { body: rbody }))
}

/// A copy (CopyObject, UploadPartCopy) runs at the destination's origin, which
/// can only read its own buckets: a source routed to another origin would be
/// read from the wrong service (or a same-named bucket there). Refused.
fn check_same_origin(access: &Access, origin: &std::sync::Arc<OriginEntry>, headers: &HeaderMap) -> Result<(), Error> {
    let Some(source) = headers.get("x-amz-copy-source") else { return Ok(()) };
    let source = source.to_str().map_err(|_| Error::InvalidArgument("x-amz-copy-source is not ASCII".into()))?;
    let (bucket, _) = crate::authz::parse_copy_source(source).map_err(|m| Error::InvalidArgument(m.into()))?;
    if std::sync::Arc::ptr_eq(access.origin_for(Some(&bucket)), origin) {
        Ok(())
    } else {
        Err(Error::InvalidRequest(
            "The copy source lives on another origin than the destination; copy it with a GET and a PUT".into(),
        ))
    }
}

/// How much of one origin's ListBuckets answer is read (10,000 buckets fit).
const LIST_BUCKETS_LIMIT: usize = 8 << 20;

/// ListBuckets across every origin: each origin's own answer (signed with its
/// key), keeping the buckets routed to it that `rules` let the key list
/// (all, without rules), merged into one ListAllMyBucketsResult whose owner
/// is the default origin's. A key that may list nothing gets an empty list.
async fn list_buckets(
    state: &AppState,
    access: &Access,
    verified: &VerifiedRequest,
    parts: &http::request::Parts,
    rules: Option<&Rules>,
    ex: &mut Exchange,
) -> Result<Response<ProxyBody>, Error> {
    use http_body_util::BodyExt;
    let now = state.0.clock.now();
    let sent = Instant::now();
    let one = |origin: std::sync::Arc<crate::access::OriginEntry>| async move {
        let out = origin.signer().resign(verified, &parts.method, &parts.headers, now)?;
        let resp = state.forwarder(&origin.origin).send(out, OutBody::empty(), None).await?;
        let status = resp.status();
        let body = http_body_util::Limited::new(resp.into_body(), LIST_BUCKETS_LIMIT)
            .collect()
            .await
            .map_err(|_| Error::OriginUnreachable("An origin's bucket list could not be read".into()))?
            .to_bytes();
        if !status.is_success() {
            tracing::warn!(origin = %origin.name, status = status.as_u16(), body = %String::from_utf8_lossy(&body[..body.len().min(512)]), "ListBuckets failed at an origin");
            return Err(Error::OriginRefused(
                format!("An origin answered ListBuckets with {}; the proxy's log has the details", status.as_u16())
                    .into(),
            ));
        }
        let list = crate::authz::parse_list_buckets(&body).map_err(|m| {
            tracing::warn!(origin = %origin.name, error = %m, "an origin's ListBuckets answer is not S3 XML");
            Error::OriginUnreachable("An origin's bucket list is not S3 XML".into())
        })?;
        Ok::<_, Error>((origin, list))
    };
    let lists = futures_util::future::try_join_all(access.origins().iter().cloned().map(one)).await?;
    ex.origin_answered(200, sent.elapsed());
    let mut merged = BucketList::default();
    for (origin, list) in lists {
        if std::sync::Arc::ptr_eq(&origin, access.default_origin()) {
            (merged.owner_id, merged.owner_name) = (list.owner_id, list.owner_name);
        }
        for (name, date) in list.buckets {
            // Only where its route leads: a bucket of the same name elsewhere is unreachable.
            let routed_here = std::sync::Arc::ptr_eq(access.origin_for(Some(&name)), &origin);
            if routed_here && rules.is_none_or(|r| r.lists_bucket(&name)) {
                merged.buckets.push((name, date));
            }
        }
    }
    let xml = crate::authz::render_list_buckets(&merged);
    let mut resp = Response::new(ProxyBody::from(Body::from(xml)));
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    Ok(resp)
}

/// Origin error codes that are about the proxy's own signature or
/// credentials, never the client's: the client must not see them, since
/// such a body (AWS S3's) carries the origin key id, the proxy's canonical
/// request and string to sign.
const ORIGIN_AUTH_CODES: [&str; 11] = [
    "SignatureDoesNotMatch",
    "NotSignedUp",
    "InvalidAccessKeyId",
    "AuthorizationHeaderMalformed",
    "AuthorizationQueryParametersError",
    "RequestTimeTooSkewed",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "InvalidSecurity",
    "MissingSecurityHeader",
];

/// How much of an origin 400/401/403 body is read to find its code.
const ORIGIN_ERROR_PEEK: usize = 64 << 10;

/// An origin auth error (one of [`ORIGIN_AUTH_CODES`]) becomes the proxy's
/// own [`Error::OriginRefused`], its body logged at debug; every other
/// response streams through as it came (a 4xx body read to find its code is
/// sent first, then the rest).
pub(crate) async fn screen_origin_error(
    parts: &http::response::Parts,
    body: forward::OriginBody,
    head: bool,
) -> Result<ProxyBody, Error> {
    use http_body_util::BodyExt;
    if head || !matches!(parts.status.as_u16(), 400 | 401 | 403) {
        return Ok(ProxyBody::Origin { body });
    }
    // Boxed to be read here and moved on after: only 4xx bodies pay for it.
    let mut body = Box::pin(body);
    let mut seen = bytes::BytesMut::new();
    let complete = loop {
        if seen.len() > ORIGIN_ERROR_PEEK {
            break false;
        }
        match body.frame().await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    seen.extend_from_slice(&data);
                }
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "origin error body failed");
                return Err(Error::OriginUnreachable("The connection to the origin failed".into()));
            }
            None => break true,
        }
    };
    let text = String::from_utf8_lossy(&seen);
    let code = text.split_once("<Code>").and_then(|(_, rest)| rest.split_once("</Code>")).map(|(c, _)| c.trim());
    if let Some(code) = code.filter(|c| ORIGIN_AUTH_CODES.contains(c)) {
        tracing::warn!(status = parts.status.as_u16(), code, "the origin refused the proxy's signature");
        tracing::debug!(origin_body = %text, "origin auth error body");
        return Err(Error::OriginRefused(
            "The origin refused the proxy's signature or credentials; the proxy's log has the details".into(),
        ));
    }
    let prefix = seen.freeze();
    Ok(if complete { ProxyBody::from(Body::from(prefix)) } else { ProxyBody::Prefixed { prefix: Some(prefix), body } })
}

/// The aws-chunked codec for the request's mode: signed chunks are verified on
/// the client's chain and re-signed on the origin's; unsigned framing passes.
fn chunk_rewriter(
    mode: chunked::Mode,
    verified: &verify::VerifiedRequest,
    out: &resign::OriginRequest,
    headers: &HeaderMap,
    body: SharedBody,
) -> chunked::AwsChunkedRewriter<SharedBody> {
    let client = verified.chunk_seed().map(chunked::ChunkChain::from);
    let origin = out.chunk_seed.as_ref().map(chunked::ChunkChain::from);
    // Only the trailers the client declared (and signed, in `x-amz-trailer`).
    let declared = headers
        .get("x-amz-trailer")
        .map(|v| v.as_bytes().split(|&b| b == b',').map(|n| n.trim_ascii().to_ascii_lowercase()).collect())
        .unwrap_or_default();
    chunked::AwsChunkedRewriter::new(body, mode, client, origin, verified.decoded_length(), chunked::Limits::default())
        .with_declared_trailers(declared)
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    sigv4::number::parse_decimal(h.get(header::CONTENT_LENGTH)?.as_bytes())
}

/// A client that sends its body without waiting for `100 Continue` (or after
/// a failure mid-body) must still read our error rather than a reset: read and
/// discard the rest of the body, up to a bound.
async fn drain(headers: &HeaderMap, mut body: SharedBody, body_started: bool) {
    use futures_util::StreamExt;
    const LIMIT: u64 = 64 << 20;
    let expects_continue = headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expects_continue && !body_started {
        return; // the client waits for 100 Continue, which never comes
    }
    let mut seen = 0u64;
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(chunk)) = body.next().await {
            seen += chunk.len() as u64;
            if seen > LIMIT {
                break;
            }
        }
    })
    .await;
}

/// `GET|HEAD /healthz`: HEAD the origin's HEALTHCHECK_PATH with the origin
/// credentials. 200 `{"status":"ok"}` when the origin is up and accepts them,
/// 450 `{"status":"nok"}` otherwise (the code HAProxy configs expect); 503
/// `{"status":"draining"}` once a drain has started, without a probe. A probe
/// answers every check for HEALTH_CACHE_MS, and concurrent checks share it.
async fn healthz(state: &AppState, head: bool, draining: bool) -> Response {
    if draining {
        state.metrics().set_health(HealthState::Draining);
        return health_response(StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"draining"}"#.into(), head);
    }
    let access = state.access();
    let probe = state
        .0
        .health
        .get(|| async {
            let probes = access.origins().iter().map(|o| async {
                let started = Instant::now();
                let status = probe_origin(state, o).await;
                let default = std::sync::Arc::ptr_eq(o, access.default_origin());
                OriginProbe { name: o.name.clone(), default, status, latency: started.elapsed() }
            });
            futures_util::future::join_all(probes).await
        })
        .await;
    let ok = |s: Option<StatusCode>| {
        s.is_some_and(|s| {
            let c = s.as_u16();
            (200..500).contains(&c) && c != 401 && c != 403 || c == 501
        })
    };
    let default = probe.origins.iter().find(|p| p.default);
    let healthy = default.is_some_and(|p| ok(p.status));
    state.metrics().set_health(if healthy { HealthState::Ok } else { HealthState::Nok });
    let mut body = serde_json::json!({
        "status": if healthy { "ok" } else { "nok" },
        "origin_status": default.and_then(|p| p.status).map(|s| s.as_u16()),
        "latency_ms": default.map_or(0.0, |p| p.latency.as_secs_f64() * 1000.0),
        "age_ms": probe.done.elapsed().as_millis() as u64,
    });
    if probe.origins.len() > 1 {
        let each: serde_json::Map<String, serde_json::Value> = probe
            .origins
            .iter()
            .map(|p| {
                let v = serde_json::json!({
                    "status": if ok(p.status) { "ok" } else { "nok" },
                    "origin_status": p.status.map(|s| s.as_u16()),
                    "latency_ms": p.latency.as_secs_f64() * 1000.0,
                    "default": p.default,
                });
                (p.name.clone(), v)
            })
            .collect();
        body["origins"] = serde_json::Value::Object(each);
    }
    let status =
        if healthy { StatusCode::OK } else { StatusCode::from_u16(450).unwrap_or(StatusCode::SERVICE_UNAVAILABLE) };
    health_response(status, body.to_string(), head)
}

/// HEAD an origin's healthcheck path, signed with its key; None when it
/// cannot be reached within 2 s.
async fn probe_origin(state: &AppState, o: &crate::access::OriginEntry) -> Option<StatusCode> {
    let probe = async {
        let out = o.signer().sign_probe(&o.healthcheck_path, state.0.clock.now())?;
        state.forwarder(&o.origin).send(out, OutBody::empty(), None).await
    };
    match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(Ok(resp)) => Some(resp.status()),
        Ok(Err(e)) => {
            tracing::warn!(origin = %o.name, error = %e, "health probe failed");
            None
        }
        Err(_) => {
            tracing::warn!(origin = %o.name, "health probe timed out");
            None
        }
    }
}

fn health_response(status: StatusCode, body: String, head: bool) -> Response {
    let mut resp = Response::new(if head { Body::empty() } else { Body::from(body) });
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

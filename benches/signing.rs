//! Criterion micro-benchmarks of the per-request and per-byte signing work,
//! each beside its floor: the same HMAC-SHA256 and SHA-256 work as a bare loop.
//!
//!   cargo bench --bench signing -- --warm-up-time 1 --measurement-time 3
//!
//! Groups (each has a `proxy` and a `floor` function):
//! - `header_get`: verify + re-sign of a header-signed GET with 6 signed headers
//!   (signed by the aws-sigv4 crate, as an SDK would).
//! - `presigned_get`: verify + re-sign of a presigned GET (aws-sigv4, query params).
//! - `chunk_64k`: per-chunk verify + re-sign of 64 KiB aws-chunked data (`chunked::ChunkChain`
//!   as the rewriter calls it, and the whole `chunked::AwsChunkedRewriter`).
//! - `sha256_body`: the hex `x-amz-content-sha256` body path (`forward::Sha256Check`
//!   over 16 KiB and 64 KiB frames) against one bare `Sha256::digest`.
//! - `observe`: the metrics and the access line of one request (`access_log::Exchange`).
//! - `keyring`: verify through an ACCESS_FILE keyring of 1 and of 10,000 keys, and the
//!   authorization of a key with 100 rules (`authorize::authorize`).
//!
//! The floor of a request is, for the client side and then the origin side: SHA-256
//! of that side's canonical request (the real texts, built once outside the loop),
//! its hex written into a ready string to sign, and HMAC-SHA256 of that with the
//! (cached) signing key. Everything else the proxy does (parsing, canonicalizing,
//! header maps, allocation) is overhead over the floor.

#[path = "../tests/support/s3_signing.rs"]
mod s3_signing;

use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::Stream;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use s3_resign_proxy::addressing::{Addressing, AddressingSettings, OriginStyle, route};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use s3_resign_proxy::chunked::{AwsChunkedRewriter, ChunkChain, Limits, Mode};
use s3_resign_proxy::config::Origin;
use s3_resign_proxy::forward::{Failure, Sha256Check};
use s3_resign_proxy::resign::Signer;
use s3_resign_proxy::sigv4::payload::EMPTY_SHA256;
use s3_resign_proxy::sigv4::{AmzDate, CanonicalRequest, KeyCache, SignedHeaders, SigningKey, StringToSign};
use s3_resign_proxy::verify::{SingleKey, VerifyContext, verify};

const CLIENT_AK: &str = "AKIDCLIENTBENCH00001";
const CLIENT_SK: &str = "client/secret+key/for-benchmarks-000001";
const ORIGIN_AK: &str = "AKIDORIGINBENCH00001";
const ORIGIN_SK: &str = "origin/secret+key/for-benchmarks-000001";
const REGION: &str = "us-east-1";
const PROXY_HOST: &str = "s3.proxy.example.com";
const PATH: &str = "/bench-bucket/some/prefix/object-0001.bin";
/// 2025-06-01T12:00:00Z: signing time and the verifier's `now`.
const AT: i64 = 1_748_779_200;

fn at() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(AT as u64)
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(AT).unwrap()
}

fn origin() -> Origin {
    Origin::new(http::uri::Scheme::HTTP, "127.0.0.1:9000".parse().unwrap()).unwrap()
}

// ------------------------------------------------------------------ requests

/// A header-signed GET as an SDK sends it: 6 signed headers (host,
/// amz-sdk-invocation-id, amz-sdk-request, range, x-amz-content-sha256,
/// x-amz-date) and an unsigned user-agent.
fn header_signed_get() -> (Method, Uri, HeaderMap) {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, sign};
    let extra = [
        ("amz-sdk-invocation-id", "6d7f2a3c-2f0e-4b8a-9c1d-0e5f7a9b3c21"),
        ("amz-sdk-request", "attempt=1; max=3"),
        ("range", "bytes=0-1023"),
    ];
    let identity = aws_credential_types::Credentials::new(CLIENT_AK, CLIENT_SK, None, None, "bench").into();
    let params = s3_signing::s3_params(&identity, REGION, at(), s3_signing::Location::Headers);
    let mut all: Vec<(&str, &str)> = vec![("host", PROXY_HOST)];
    all.extend_from_slice(&extra);
    let uri = format!("http://{PROXY_HOST}{PATH}");
    let req =
        SignableRequest::new("GET", uri, all.into_iter(), SignableBody::Precomputed(EMPTY_SHA256.into())).unwrap();
    let (instr, _) = sign(req, &params).unwrap().into_parts();
    let (signed, _) = instr.into_parts();
    let mut headers = HeaderMap::new();
    headers.insert(http::header::HOST, HeaderValue::from_static(PROXY_HOST));
    for (k, v) in extra {
        headers.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    headers.insert(http::header::USER_AGENT, HeaderValue::from_static("aws-sdk-rust/1.0 os/linux lang/rust/1.95"));
    for h in signed {
        headers.insert(HeaderName::from_bytes(h.name().as_bytes()).unwrap(), HeaderValue::from_str(h.value()).unwrap());
    }
    (Method::GET, PATH.parse().unwrap(), headers)
}

/// A presigned GET (1 hour), signed headers `host` only, as boto3/aws-cli make them.
fn presigned_get() -> (Method, Uri, HeaderMap) {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, sign};
    let identity = aws_credential_types::Credentials::new(CLIENT_AK, CLIENT_SK, None, None, "bench").into();
    let params = s3_signing::s3_params(&identity, REGION, at(), s3_signing::Location::Query(Duration::from_secs(3600)));
    let uri = format!("http://{PROXY_HOST}{PATH}");
    let req =
        SignableRequest::new("GET", uri, [("host", PROXY_HOST)].into_iter(), SignableBody::UnsignedPayload).unwrap();
    let (instr, _) = sign(req, &params).unwrap().into_parts();
    let (_, qs) = instr.into_parts();
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, STRICT).to_string();
    let query: Vec<String> = qs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect();
    let mut headers = HeaderMap::new();
    headers.insert(http::header::HOST, HeaderValue::from_static(PROXY_HOST));
    headers.insert(http::header::USER_AGENT, HeaderValue::from_static("curl/7.88.1"));
    (Method::GET, format!("{PATH}?{}", query.join("&")).parse().unwrap(), headers)
}

const STRICT: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

// ------------------------------------------------------------------ the floor

/// One side's crypto: SHA-256 of a canonical request, hex into the string to
/// sign, HMAC-SHA256 of that. Inputs prepared once.
struct SideFloor {
    creq: Vec<u8>,
    /// The string to sign with its last 64 bytes (the hash's hex) to be overwritten.
    sts: Vec<u8>,
    key: [u8; 32],
}

impl SideFloor {
    fn new(creq: &str, scope: &str, date: &AmzDate, key: &SigningKey) -> Self {
        let sts = StringToSign::new(date, scope, &CanonicalRequest::from_text(creq.to_owned()));
        Self { creq: creq.as_bytes().to_vec(), sts: sts.as_str().as_bytes().to_vec(), key: *key.as_bytes() }
    }

    #[inline(never)]
    fn run(&mut self) -> [u8; 32] {
        let hash = Sha256::digest(&self.creq);
        let n = self.sts.len();
        hex::encode_to_slice(hash, &mut self.sts[n - 64..]).unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).unwrap();
        mac.update(&self.sts);
        mac.finalize().into_bytes().into()
    }
}

/// Rebuilds the origin side's canonical request from the proxy's output, for the floor.
fn origin_creq(out: &s3_resign_proxy::resign::OriginRequest) -> String {
    let authz = out.headers.get(http::header::AUTHORIZATION).unwrap().to_str().unwrap();
    let sh = authz.split("SignedHeaders=").nth(1).unwrap().split(',').next().unwrap();
    let signed = SignedHeaders::parse(sh).unwrap();
    let payload = out.headers.get("x-amz-content-sha256").unwrap().to_str().unwrap();
    // Query as sent is already canonical for the benches' requests.
    CanonicalRequest::new(
        out.method.as_str(),
        out.uri.path(),
        out.uri.query().unwrap_or(""),
        &out.headers,
        out.uri.authority().map(|a| a.as_str()),
        &signed,
        payload,
    )
    .as_str()
    .to_owned()
}

fn client_creq(method: &Method, uri: &Uri, headers: &HeaderMap, signed: &str, payload: &str) -> String {
    let q = s3_resign_proxy::sigv4::Query::parse(uri.query().unwrap_or(""));
    let canonical_query = q.canonical(|k| k == b"X-Amz-Signature");
    CanonicalRequest::new(
        method.as_str(),
        &s3_resign_proxy::sigv4::canonical_uri(uri.path()),
        &canonical_query,
        headers,
        None,
        &SignedHeaders::parse(signed).unwrap(),
        payload,
    )
    .as_str()
    .to_owned()
}

// ------------------------------------------------------------------ request benches

fn bench_request(
    c: &mut Criterion,
    group: &str,
    (method, uri, headers): (Method, Uri, HeaderMap),
    client_signed: &str,
    client_payload: &str,
) {
    let client_keys = KeyCache::new(CLIENT_SK.as_bytes());
    let origin_keys = KeyCache::new(ORIGIN_SK.as_bytes());
    let origin = origin();
    let signer = Signer {
        origin: &origin,
        style: Default::default(),
        access_key: ORIGIN_AK,
        keys: &origin_keys,
        region: REGION,
        session_token: None,
    };
    let client_key = SingleKey { access_key: CLIENT_AK, secret: CLIENT_SK.as_bytes(), keys: &client_keys };
    let ctx = VerifyContext { keys: &client_key, now: now(), max_skew: Duration::from_secs(900) };

    // Sanity: the request verifies and re-signs, and the floor's inputs are the real texts.
    let v = verify(&method, &uri, &headers, &ctx).expect("the bench request verifies");
    let out = signer.resign(&v, &method, &headers, now()).expect("the bench request re-signs");
    let date = AmzDate::from_datetime(now());
    let scope = format!("{}/{REGION}/s3/aws4_request", date.date());
    let mut floor = [
        SideFloor::new(
            &client_creq(&method, &uri, &headers, client_signed, client_payload),
            &scope,
            &date,
            &client_keys.get(date.date(), REGION),
        ),
        SideFloor::new(&origin_creq(&out), &scope, &date, &origin_keys.get(date.date(), REGION)),
    ];
    // The floor's origin side computes the very signature the proxy sent.
    let want =
        out.headers.get(http::header::AUTHORIZATION).unwrap().to_str().unwrap().rsplit('=').next().unwrap().to_owned();
    assert_eq!(hex::encode(floor[1].run()), want, "floor mirrors the origin signature");

    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(1));
    g.bench_function("proxy", |b| {
        b.iter(|| {
            let v = verify(black_box(&method), black_box(&uri), black_box(&headers), &ctx).unwrap();
            signer.resign(&v, &method, &headers, ctx.now).unwrap()
        })
    });
    g.bench_function("floor", |b| b.iter(|| (black_box(&mut floor[0]).run(), black_box(&mut floor[1]).run())));
    // What the handler checks before verify: method, limits, ambiguity (issue 11).
    s3_resign_proxy::intake::check(&method, &uri, &headers).expect("the bench request passes intake");
    g.bench_function("intake", |b| {
        b.iter(|| s3_resign_proxy::intake::check(black_box(&method), black_box(&uri), black_box(&headers)).unwrap())
    });
    // The address stage (issue 13) with every host setting on: the signed host (peer not trusted),
    // ALLOWED_HOSTS, the bucket from the host, the origin route. A path-style request, as here, keeps its
    // path borrowed; this is what every request pays over the pre-issue-13 pipeline.
    let settings = AddressingSettings {
        virtual_host_domains: "s3.vanity.test,s3.proxy.example.com",
        allowed_hosts: "s3.vanity.test:*,*.s3.vanity.test:*,s3.proxy.example.com,*.s3.proxy.example.com",
        trusted_proxies: "10.0.0.0/8",
        ..Default::default()
    };
    let addressing = Addressing::from_settings(&settings).unwrap();
    let peer = "127.0.0.1".parse().ok();
    g.bench_function("address", |b| {
        b.iter(|| {
            let host = addressing.signed_host(black_box(peer), black_box(&uri), black_box(&headers)).unwrap();
            route(OriginStyle::Path, &origin, host.bucket(), black_box(v.canonical_uri())).unwrap().canonical_uri.len()
        })
    });
    g.finish();
}

fn header_get(c: &mut Criterion) {
    bench_request(
        c,
        "header_get",
        header_signed_get(),
        "amz-sdk-invocation-id;amz-sdk-request;host;range;x-amz-content-sha256;x-amz-date",
        EMPTY_SHA256,
    );
}

fn presigned(c: &mut Criterion) {
    bench_request(c, "presigned_get", presigned_get(), "host", "UNSIGNED-PAYLOAD");
}

// ------------------------------------------------------------------ aws-chunked

const CHUNK: usize = 64 * 1024;
const CHUNKS: usize = 16;

/// A `STREAMING-AWS4-HMAC-SHA256-PAYLOAD` body of CHUNKS chunks of 64 KiB, signed on `client`.
fn chunked_body(data: &[u8], mut client: ChunkChain) -> Vec<u8> {
    let mut body = Vec::with_capacity(CHUNKS * (CHUNK + 100) + 100);
    for _ in 0..CHUNKS {
        let sig = client.next_chunk_signature(data);
        body.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", data.len()).as_bytes());
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    let sig = client.next_chunk_signature(&[]);
    body.extend_from_slice(format!("0;chunk-signature={sig}\r\n\r\n").as_bytes());
    body
}

/// Per 64 KiB chunk: verify the client's chunk signature, sign the chunk for the origin.
/// - `proxy_chains`: what `AwsChunkedRewriter` does per chunk, `ChunkChain::next_chunk_signature`
///   on the client chain (then a constant-time compare) and again on the origin chain.
/// - `proxy_rewriter`: the whole `AwsChunkedRewriter` (framing, buffering, verify, re-sign) over
///   a 1 MiB body of 16 chunks, fed in 16 KiB frames as hyper hands them over; its time per
///   64 KiB is the per-chunk figure (plus 1/16 of the final empty chunk).
/// - `floor`: one SHA-256 of the chunk, its hex into two ready strings to sign, two HMACs.
fn chunk_64k(c: &mut Criterion) {
    let data: Vec<u8> = (0..CHUNK as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let date = AmzDate::from_datetime(now());
    let scope = format!("{}/{REGION}/s3/aws4_request", date.date());
    let client_key = KeyCache::new(CLIENT_SK.as_bytes()).get(date.date(), REGION);
    let origin_key = KeyCache::new(ORIGIN_SK.as_bytes()).get(date.date(), REGION);
    let client_seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
    let origin_seed = "0a8f6c1e4d2b7a9358c6e0f1d2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5";
    let chain = |signing_key, seed: &str| ChunkChain {
        signing_key,
        amz_date: date.as_str().to_owned(),
        scope: scope.clone(),
        prev_signature: seed.to_owned(),
    };
    let client = chain(client_key, client_seed);
    let origin = chain(origin_key, origin_seed);
    let provided = client.clone().next_chunk_signature(&data);

    let mut g = c.benchmark_group("chunk_64k");
    g.throughput(Throughput::Bytes(CHUNK as u64));
    g.bench_function("proxy_chains", |b| {
        b.iter_batched_ref(
            || (client.clone(), origin.clone()),
            |(cl, or)| {
                let ok = bool::from(cl.next_chunk_signature(black_box(&data)).as_bytes().ct_eq(provided.as_bytes()));
                assert!(ok);
                or.next_chunk_signature(&data)
            },
            criterion::BatchSize::SmallInput,
        )
    });

    let body = chunked_body(&data, client.clone());
    let frames: Vec<Bytes> = body.chunks(16 * 1024).map(Bytes::copy_from_slice).collect();
    let decoded = (CHUNK * CHUNKS) as u64;
    {
        // Sanity: the rewriter accepts the body and keeps its length.
        let inner = futures_util::stream::iter(frames.iter().cloned().map(Ok::<_, std::io::Error>));
        let rw = AwsChunkedRewriter::new(
            inner,
            Mode::Signed,
            Some(client.clone()),
            Some(origin.clone()),
            Some(decoded),
            Limits::default(),
        );
        let (n, len) = drain_len(Box::pin(rw));
        assert!(n > 0 && len == body.len(), "rewriter output {len} bytes, input {}", body.len());
    }
    g.throughput(Throughput::Bytes(decoded));
    g.bench_function("proxy_rewriter_16x64KiB", |b| {
        b.iter(|| {
            let inner = futures_util::stream::iter(frames.iter().cloned().map(Ok::<_, std::io::Error>));
            let rw = AwsChunkedRewriter::new(
                inner,
                Mode::Signed,
                Some(client.clone()),
                Some(origin.clone()),
                Some(decoded),
                Limits::default(),
            );
            drain_len(Box::pin(rw))
        })
    });

    let hash = hex::encode(Sha256::digest(&data));
    let sts_of =
        |seed: &str| format!("AWS4-HMAC-SHA256-PAYLOAD\n{date}\n{scope}\n{seed}\n{EMPTY_SHA256}\n{hash}").into_bytes();
    let mut sts = [sts_of(client_seed), sts_of(origin_seed)];
    let keys = [*client_key.as_bytes(), *origin_key.as_bytes()];
    g.throughput(Throughput::Bytes(CHUNK as u64));
    g.bench_function("floor", |b| {
        b.iter(|| {
            let h = Sha256::digest(black_box(&data));
            let mut out = [[0u8; 32]; 2];
            for i in 0..2 {
                let n = sts[i].len();
                hex::encode_to_slice(h, &mut sts[i][n - 64..]).unwrap();
                let mut mac = Hmac::<Sha256>::new_from_slice(&keys[i]).unwrap();
                mac.update(&sts[i]);
                out[i] = mac.finalize().into_bytes().into();
            }
            out
        })
    });
    g.finish();
}

fn drain_len<S: Stream<Item = Result<Bytes, E>> + Unpin, E: std::fmt::Debug>(mut s: S) -> (usize, usize) {
    let mut cx = Context::from_waker(Waker::noop());
    let (mut n, mut len) = (0, 0);
    loop {
        match Pin::new(&mut s).poll_next(&mut cx) {
            Poll::Ready(Some(r)) => {
                n += 1;
                len += r.expect("no stream error").len();
            }
            Poll::Ready(None) => return (n, len),
            Poll::Pending => unreachable!("stream::iter is always ready"),
        }
    }
}

// ------------------------------------------------------------------ body sha256

fn drain<S: Stream + Unpin>(mut s: S) -> usize {
    // Every item of a `stream::iter` is ready: poll with a no-op waker.
    let mut cx = Context::from_waker(Waker::noop());
    let mut n = 0;
    loop {
        match Pin::new(&mut s).poll_next(&mut cx) {
            Poll::Ready(Some(_)) => n += 1,
            Poll::Ready(None) => return n,
            Poll::Pending => unreachable!("stream::iter is always ready"),
        }
    }
}

fn sha256_body(c: &mut Criterion) {
    const TOTAL: usize = 4 << 20;
    let data: Vec<u8> = (0..TOTAL as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    let expected: [u8; 32] = Sha256::digest(&data).into();
    let sha_ni = std::is_x86_feature_detected!("sha");
    eprintln!(
        "sha256_body: CPU SHA extensions (SHA-NI) detected: {sha_ni}; sha2 0.10 picks its x86 SHA-NI backend at run time when present"
    );

    let mut g = c.benchmark_group("sha256_body");
    g.throughput(Throughput::Bytes(TOTAL as u64));
    for frame in [16 * 1024, 64 * 1024] {
        let frames: Vec<Bytes> = data.chunks(frame).map(Bytes::copy_from_slice).collect();
        g.bench_with_input(
            BenchmarkId::new("proxy_Sha256Check", format!("{}KiB_frames", frame / 1024)),
            &frames,
            |b, frames| {
                b.iter(|| {
                    let inner = futures_util::stream::iter(
                        frames.iter().cloned().map(Ok::<_, s3_resign_proxy::error::BoxError>),
                    );
                    let check = Sha256Check::new(inner, expected, Failure::default());
                    drain(Box::pin(check))
                })
            },
        );
    }
    g.bench_function("floor_digest", |b| b.iter(|| Sha256::digest(black_box(&data))));
    g.finish();
}

// ------------------------------------------------------------------ metrics and access log

/// What issue 14 adds to every request: its `Exchange` (client address, the in-flight gauge,
/// the request, status and refusal counters, both histograms, the record for the access line)
/// from arrival to the end of its response body, on the metrics every worker shares. With the
/// access line off (`RUST_LOG=warn`, as the load benchmark runs the proxy), and on (JSON, into
/// the binary's non-blocking writer, here discarding).
fn observe(c: &mut Criterion) {
    use s3_resign_proxy::access_log::{self, Exchange, LogFormat};
    use s3_resign_proxy::forward::ProxyBody;
    use tracing_subscriber::prelude::*;
    let (method, uri, headers) = header_signed_get();
    let mut req = http::Request::builder().method(method).uri(uri).body(()).unwrap();
    *req.headers_mut() = headers;
    let (parts, ()) = req.into_parts();
    let vars = [
        ("CLIENT_ACCESS_KEY", CLIENT_AK),
        ("CLIENT_SECRET_KEY", CLIENT_SK),
        ("ORIGIN_ACCESS_KEY", ORIGIN_AK),
        ("ORIGIN_SECRET_KEY", ORIGIN_SK),
        ("ORIGIN_DOMAIN", "http://127.0.0.1:9000"),
        ("TRUSTED_PROXIES", "10.0.0.0/8"),
    ];
    let config = s3_resign_proxy::config::Config::from_vars(vars.map(|(k, v)| (k.to_string(), v.to_string())))
        .expect("a valid config");
    let state = s3_resign_proxy::AppState::new(config);
    let peer = "192.0.2.10".parse().ok();
    let one = || {
        let mut ex = Exchange::start(&state, black_box(peer), black_box(&parts));
        ex.verified(CLIENT_AK);
        ex.origin_answered(200, Duration::from_micros(300));
        let mut resp = http::Response::new(ProxyBody::from(axum::body::Body::empty()));
        let rid = resp.headers_mut().entry("x-amz-request-id").or_insert(HeaderValue::from_static("0123456789ABCDEF"));
        let rid = rid.clone();
        drop(ex.respond(resp, rid));
    };
    // The response the handler makes anyway, without the exchange: subtract it.
    let bare = || {
        let mut resp = http::Response::new(ProxyBody::from(axum::body::Body::empty()));
        resp.headers_mut().entry("x-amz-request-id").or_insert(HeaderValue::from_static("0123456789ABCDEF"));
        drop(black_box(resp));
    };
    // The access line before issue 14 (text, at the response head), for comparison.
    let old_line = || {
        let host = parts.headers.get(http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        tracing::info!(
            method = %parts.method,
            host,
            path = parts.uri.path(),
            status = 200u16,
            ms = 1.25f64,
            request_id = "0123456789ABCDEF",
            "request"
        );
    };
    // Sanity (also when a filter skips this group): one exchange is counted.
    one();
    let text = state.metrics().encode();
    assert!(text.contains("s3rp_requests_total{method=\"GET\",op=\"get_object\",status=\"2xx\"}"), "{text}");
    let mut g = c.benchmark_group("observe");
    g.throughput(Throughput::Elements(1));
    g.bench_function("response_only", |b| b.iter(bare));
    g.bench_function("metrics", |b| b.iter(one));
    for format in [LogFormat::Json, LogFormat::Text] {
        let (writer, _guard) = tracing_appender::non_blocking(std::io::sink());
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::INFO)
            .with(access_log::layer(format, false, writer));
        tracing::subscriber::with_default(subscriber, || {
            g.bench_function(format!("metrics_and_{format:?}_line").to_lowercase(), |b| b.iter(one));
            if format == LogFormat::Text {
                g.bench_function("old_text_line", |b| b.iter(old_line));
            }
        });
    }
    g.finish();
}

// ------------------------------------------------------------------ keyring and rules (issue 15)

/// An ACCESS_FILE with `n` keys (the bench's key last), each with `rules`
/// allow rules; the configuration the binary would build from it.
fn access_with(n: usize, rules: usize) -> (tempfile::TempDir, std::sync::Arc<s3_resign_proxy::access::Access>) {
    use std::fmt::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut toml = String::from(
        "[[origins]]\nname = \"o\"\ndomain = \"http://127.0.0.1:9000\"\naccess_key = \"OAK\"\nsecret_key = \"osk\"\n",
    );
    for i in 0..n {
        let (ak, sk) = if i + 1 == n {
            (CLIENT_AK.to_owned(), CLIENT_SK.to_owned())
        } else {
            (format!("AKIDKEY{i:013}"), format!("secret-{i}"))
        };
        let _ = write!(toml, "[[keys]]\naccess_key = \"{ak}\"\nsecret = \"{sk}\"\n");
        if rules > 0 {
            toml.push_str("allow = [\n");
            // The matching rule last: every other one is looked at first.
            for r in 0..rules {
                let (bucket, prefix) = if r + 1 == rules {
                    ("bench-*".to_owned(), "some/".to_owned())
                } else {
                    (format!("other-{r}-*"), format!("x{r}/"))
                };
                let _ = writeln!(toml, "  {{ bucket = \"{bucket}\", prefix = \"{prefix}\", actions = [\"read\"] }},");
            }
            toml.push_str("]\n");
        }
    }
    let path = dir.path().join("access.toml");
    std::fs::write(&path, toml).unwrap();
    let vars = [("ACCESS_FILE".to_owned(), path.display().to_string())];
    let config = s3_resign_proxy::config::Config::from_vars(vars).unwrap();
    (dir, config.access.load())
}

/// Verification through the keyring with 1 and 10,000 keys (flat: a hash
/// lookup of the whole key), and the authorization of a key with 100 rules
/// (classification and evaluation; the matching rule is the last).
fn keyring(c: &mut Criterion) {
    let (method, uri, headers) = header_signed_get();
    let mut g = c.benchmark_group("keyring");
    g.throughput(Throughput::Elements(1));
    for n in [1usize, 10_000] {
        let (_dir, access) = access_with(n, 0);
        let ctx = VerifyContext { keys: &*access, now: now(), max_skew: Duration::from_secs(900) };
        verify(&method, &uri, &headers, &ctx).expect("verifies with the keyring");
        g.bench_with_input(BenchmarkId::new("verify_keys", n), &n, |b, _| {
            b.iter(|| verify(black_box(&method), black_box(&uri), black_box(&headers), &ctx).unwrap())
        });
    }
    let (_dir, access) = access_with(1, 100);
    let ctx = VerifyContext { keys: &*access, now: now(), max_skew: Duration::from_secs(900) };
    let v = verify(&method, &uri, &headers, &ctx).unwrap();
    let rules = access.key(v.access_key()).and_then(|k| k.rules()).expect("100 rules");
    s3_resign_proxy::authorize::authorize(&v, &method, &headers, rules).expect("the last rule allows it");
    g.bench_function("authorize_100_rules", |b| {
        b.iter(|| s3_resign_proxy::authorize::authorize(black_box(&v), &method, black_box(&headers), rules).unwrap())
    });
    g.finish();
}

criterion_group!(benches, header_get, presigned, chunk_64k, sha256_body, observe, keyring);
criterion_main!(benches);

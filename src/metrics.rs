//! Prometheus metrics, encoded by the `prometheus-client` crate (its registry
//! and its Prometheus text format encoder, version 0.0.4).
//!
//! One [`Metrics`] serves the whole process: the binary makes one and every
//! worker's `AppState` holds the same `Arc`, so one scrape covers them all.
//! Inside, each worker counts into a [`Shard`] of its own (atomics on cache
//! lines no other worker writes), and a [`Collector`] adds the shards up at
//! scrape time: a request touches only its own worker's atomics, with no
//! lock and no allocation. Every label set is fixed: the labelled series live
//! in arrays indexed by small enums ([`Op`], the method, the status class, the
//! refusal code), and only the non-zero ones are encoded. (The crate's
//! `Family` takes a lock per lookup and its `Histogram` one per observation;
//! atomics shared by all workers would move a cache line between cores on
//! every update.)

use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::Method;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The S3 operation class of a request, from its method, query parameter
/// names and path shape alone: a small fixed set, so the label is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    GetObject,
    HeadObject,
    PutObject,
    DeleteObject,
    /// ListObjects(V2), ListObjectVersions, ListBuckets.
    List,
    /// Anything with `uploads` or `uploadId`: create, upload part, complete,
    /// abort, list parts, list uploads.
    Multipart,
    /// Bucket-level requests other than listings: create, delete, head, the
    /// bucket's configuration, DeleteObjects.
    Bucket,
    /// Object sub-resources (`?acl`, `?tagging`, …), POST on an object, any
    /// other method.
    Other,
}

impl Op {
    pub const ALL: [Op; 8] = [
        Op::GetObject,
        Op::HeadObject,
        Op::PutObject,
        Op::DeleteObject,
        Op::List,
        Op::Multipart,
        Op::Bucket,
        Op::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::GetObject => "get_object",
            Op::HeadObject => "head_object",
            Op::PutObject => "put_object",
            Op::DeleteObject => "delete_object",
            Op::List => "list",
            Op::Multipart => "multipart",
            Op::Bucket => "bucket",
            Op::Other => "other",
        }
    }

    /// Classifies a request. `path` is the request path as sent; with
    /// `virtual_hosted`, the bucket is in the host and the path is the key.
    pub fn classify(method: &Method, path: &str, query: &str, virtual_hosted: bool) -> Op {
        // One pass over the parameter names (most requests have none).
        let (mut object_sub, mut bucket_sub) = (false, false);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let name = pair.as_bytes().iter().position(|&b| b == b'=').map_or(pair, |i| &pair[..i]);
            if name == "uploads" || name == "uploadId" {
                return Op::Multipart;
            }
            object_sub |= OBJECT_SUBRESOURCES.contains(&name);
            bucket_sub |= BUCKET_SUBRESOURCES.contains(&name);
        }
        let rest = path.strip_prefix('/').unwrap_or(path);
        let (bucket, key) = if virtual_hosted {
            (true, !rest.is_empty())
        } else {
            match rest.as_bytes().iter().position(|&b| b == b'/') {
                Some(i) => (i > 0, i + 1 < rest.len()),
                None => (!rest.is_empty(), false),
            }
        };
        match (bucket, key) {
            (_, true) if object_sub => Op::Other,
            (_, true) => match *method {
                Method::GET => Op::GetObject,
                Method::HEAD => Op::HeadObject,
                Method::PUT => Op::PutObject,
                Method::DELETE => Op::DeleteObject,
                _ => Op::Other,
            },
            (true, false) if *method == Method::GET && !bucket_sub => Op::List,
            (true, false) => Op::Bucket,
            (false, _) if *method == Method::GET => Op::List,
            (false, _) => Op::Other,
        }
    }
}

/// Query parameters that make an object request another operation.
const OBJECT_SUBRESOURCES: [&str; 9] =
    ["acl", "tagging", "retention", "legal-hold", "attributes", "restore", "select", "torrent", "renameObject"];

/// Query parameters that make a bucket GET something other than a listing.
const BUCKET_SUBRESOURCES: [&str; 24] = [
    "acl",
    "policy",
    "policyStatus",
    "location",
    "cors",
    "lifecycle",
    "tagging",
    "versioning",
    "website",
    "logging",
    "notification",
    "replication",
    "encryption",
    "ownershipControls",
    "publicAccessBlock",
    "accelerate",
    "requestPayment",
    "analytics",
    "inventory",
    "metrics",
    "intelligent-tiering",
    "object-lock",
    "metadataTable",
    "session",
];

const METHODS: [&str; 6] = ["GET", "HEAD", "PUT", "POST", "DELETE", "OTHER"];

fn method_index(m: &Method) -> usize {
    match *m {
        Method::GET => 0,
        Method::HEAD => 1,
        Method::PUT => 2,
        Method::POST => 3,
        Method::DELETE => 4,
        _ => 5,
    }
}

const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn status_index(status: u16) -> usize {
    usize::from(status / 100).clamp(1, 5) - 1
}

/// The S3 error codes the proxy answers with itself (`error.rs`), and
/// `other` for a code added there later and not here.
pub const REFUSAL_CODES: [&str; 21] = [
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "RequestTimeTooSkewed",
    "AccessDenied",
    "AuthorizationHeaderMalformed",
    "AuthorizationQueryParametersError",
    "InvalidArgument",
    "InvalidRequest",
    "MissingContentLength",
    "XAmzContentSHA256Mismatch",
    "IncompleteBody",
    "MethodNotAllowed",
    "RequestHeaderSectionTooLarge",
    "RequestURITooLong",
    "InvalidURI",
    "HttpVersionNotSupported",
    "BadGateway",
    "GatewayTimeout",
    "RequestTimeout",
    "InvalidBucketName",
    "other",
];

fn code_index(code: &str) -> usize {
    REFUSAL_CODES.iter().position(|c| *c == code).unwrap_or(REFUSAL_CODES.len() - 1)
}

/// What the last `/healthz` answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum HealthState {
    /// No `/healthz` request yet.
    Unknown = 0,
    Ok = 1,
    /// The origin is down, slow, or refuses the proxy's credentials.
    Nok = 2,
    /// The proxy is shutting down.
    Draining = 3,
}

const HEALTH_STATES: [(HealthState, &str); 4] = [
    (HealthState::Unknown, "unknown"),
    (HealthState::Ok, "ok"),
    (HealthState::Nok, "nok"),
    (HealthState::Draining, "draining"),
];

/// Histogram bucket bounds, in seconds (Prometheus' `le`), and in nanoseconds.
const BOUNDS: [f64; 16] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];
const BOUNDS_NS: [u64; 16] = {
    let mut ns = [0u64; 16];
    let mut i = 0;
    while i < 16 {
        ns[i] = (BOUNDS[i] * 1e9) as u64;
        i += 1;
    }
    ns
};

/// A histogram on atomics: one counter per bucket (the last is `+Inf`) and
/// the sum in nanoseconds. Its count is the sum of its buckets, so a scrape
/// never sees a count that disagrees with them.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BOUNDS.len() + 1],
    sum_ns: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[BOUNDS_NS.partition_point(|&b| b < ns)].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
    }
}

/// Histograms added up: non-cumulative `(le, count)` pairs (the encoder
/// accumulates), the count (the sum of the buckets) and the sum in seconds.
fn merged<'a>(hs: impl Iterator<Item = &'a Histogram>) -> ([(f64, u64); BOUNDS.len() + 1], u64, f64) {
    let mut out: [(f64, u64); BOUNDS.len() + 1] =
        std::array::from_fn(|i| (BOUNDS.get(i).copied().unwrap_or(f64::INFINITY), 0));
    let (mut count, mut sum_ns) = (0, 0u64);
    for h in hs {
        for (o, b) in out.iter_mut().zip(&h.buckets) {
            let n = b.load(Relaxed);
            o.1 += n;
            count += n;
        }
        sum_ns = sum_ns.wrapping_add(h.sum_ns.load(Relaxed));
    }
    (out, count, sum_ns as f64 / 1e9)
}

const REQUEST_CELLS: usize = METHODS.len() * Op::ALL.len() * STATUS_CLASSES.len();

/// One worker's counters. Aligned so that two shards never share a cache line.
#[derive(Debug)]
#[repr(align(128))]
pub struct Shard {
    requests: [AtomicU64; REQUEST_CELLS],
    refusals: [AtomicU64; REFUSAL_CODES.len()],
    duration: [Histogram; Op::ALL.len()],
    origin_ttfb: [Histogram; Op::ALL.len()],
    in_flight: AtomicI64,
    request_bytes: AtomicU64,
    response_bytes: AtomicU64,
    origin_new: AtomicU64,
    origin_reused: AtomicU64,
}

impl Default for Shard {
    fn default() -> Self {
        Self {
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            refusals: std::array::from_fn(|_| AtomicU64::new(0)),
            duration: Default::default(),
            origin_ttfb: Default::default(),
            in_flight: AtomicI64::new(0),
            request_bytes: AtomicU64::new(0),
            response_bytes: AtomicU64::new(0),
            origin_new: AtomicU64::new(0),
            origin_reused: AtomicU64::new(0),
        }
    }
}

/// How one S3 request ended, for [`Shard::request_done`].
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'a> {
    pub method: &'a Method,
    pub op: Op,
    pub status: u16,
    /// The proxy's own S3 error code, when it answered with one.
    pub refusal: Option<&'static str>,
    pub total: Duration,
    pub origin_first_byte: Option<Duration>,
}

impl Shard {
    pub fn request_started(&self) {
        self.in_flight.fetch_add(1, Relaxed);
    }

    /// Counts a finished S3 request (the in-flight gauge goes down too).
    pub fn request_done(&self, o: &Outcome<'_>) {
        let op = o.op as usize;
        let cell = (method_index(o.method) * Op::ALL.len() + op) * STATUS_CLASSES.len() + status_index(o.status);
        self.requests[cell].fetch_add(1, Relaxed);
        if let Some(code) = o.refusal {
            self.refusals[code_index(code)].fetch_add(1, Relaxed);
        }
        self.duration[op].observe(o.total);
        if let Some(t) = o.origin_first_byte {
            self.origin_ttfb[op].observe(t);
        }
        self.in_flight.fetch_sub(1, Relaxed);
    }

    pub fn request_bytes(&self, n: u64) {
        self.request_bytes.fetch_add(n, Relaxed);
    }

    pub fn response_bytes(&self, n: u64) {
        self.response_bytes.fetch_add(n, Relaxed);
    }

    /// An origin connection was checked out: `reused` from the pool, or new.
    pub fn origin_connection(&self, reused: bool) {
        if reused { &self.origin_reused } else { &self.origin_new }.fetch_add(1, Relaxed);
    }
}

/// Every shard, and the health state: what the registry's collector encodes.
#[derive(Debug, Default)]
struct Shards {
    all: Mutex<Vec<Arc<Shard>>>,
    health: AtomicU8,
}

impl Shards {
    fn sum(all: &[Arc<Shard>], f: impl Fn(&Shard) -> u64) -> u64 {
        all.iter().map(|s| f(s)).fold(0, u64::wrapping_add)
    }
}

impl Collector for Shards {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Locked at scrape time and when a worker starts, never by a request.
        let all = self.all.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let sum = |f: &dyn Fn(&Shard) -> u64| Self::sum(&all, f);

        let mut e = encoder.encode_descriptor(
            "requests",
            "S3 requests answered, by method, operation class and status class (status 499: the connection ended before a response head); /healthz and /metrics are not counted.",
            None,
            MetricType::Counter,
        )?;
        for i in 0..REQUEST_CELLS {
            let n = sum(&|s| s.requests[i].load(Relaxed));
            if n == 0 {
                continue;
            }
            let (m, rest) = (i / (Op::ALL.len() * STATUS_CLASSES.len()), i % (Op::ALL.len() * STATUS_CLASSES.len()));
            let (op, class) = (rest / STATUS_CLASSES.len(), rest % STATUS_CLASSES.len());
            let labels = [("method", METHODS[m]), ("op", Op::ALL[op].as_str()), ("status", STATUS_CLASSES[class])];
            e.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }

        let mut e = encoder.encode_descriptor(
            "refusals",
            "Requests the proxy answered with an S3 error of its own (refused, or the origin unreachable), by code.",
            None,
            MetricType::Counter,
        )?;
        for (i, code) in REFUSAL_CODES.iter().enumerate() {
            let n = sum(&|s| s.refusals[i].load(Relaxed));
            if n > 0 {
                e.encode_family(&[("code", *code)])?.encode_counter::<NoLabelSet, _, u64>(&n, None)?;
            }
        }

        type Pick = fn(&Shard) -> &[Histogram; Op::ALL.len()];
        let histograms: [(&str, &str, Pick); 2] = [
            (
                "request_duration",
                "Time from the request head to the end of the response body, by operation class.",
                |s| &s.duration,
            ),
            (
                "origin_first_byte",
                "Time from sending the origin request (connecting included) to its response head, by operation class.",
                |s| &s.origin_ttfb,
            ),
        ];
        for (name, help, pick) in histograms {
            let mut e = encoder.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
            for (i, op) in Op::ALL.iter().enumerate() {
                let (buckets, count, sum) = merged(all.iter().map(|s| &pick(s)[i]));
                if count > 0 {
                    e.encode_family(&[("op", op.as_str())])?
                        .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
                }
            }
        }

        let in_flight: i64 = all.iter().map(|s| s.in_flight.load(Relaxed)).sum();
        encoder
            .encode_descriptor(
                "requests_in_flight",
                "S3 requests received and not yet answered to the end of their response body.",
                None,
                MetricType::Gauge,
            )?
            .encode_gauge(&in_flight)?;
        for (name, help, value) in [
            (
                "request_body",
                "Request body bytes received from clients (as sent: aws-chunked framing included).",
                sum(&|s| s.request_bytes.load(Relaxed)),
            ),
            ("response_body", "Response body bytes sent to clients.", sum(&|s| s.response_bytes.load(Relaxed))),
        ] {
            encoder
                .encode_descriptor(name, help, Some(&Unit::Bytes), MetricType::Counter)?
                .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
        }
        let mut e = encoder.encode_descriptor(
            "origin_connections",
            "Origin connections a request (or a health probe) was sent on: newly opened, or reused from the pool.",
            None,
            MetricType::Counter,
        )?;
        for (kind, n) in
            [("new", sum(&|s| s.origin_new.load(Relaxed))), ("reused", sum(&|s| s.origin_reused.load(Relaxed)))]
        {
            e.encode_family(&[("kind", kind)])?.encode_counter::<NoLabelSet, _, u64>(&n, None)?;
        }

        let mut e = encoder.encode_descriptor(
            "health_state",
            "What the last /healthz answered: 1 for the current state.",
            None,
            MetricType::Gauge,
        )?;
        let now = self.health.load(Relaxed);
        for (state, name) in HEALTH_STATES {
            e.encode_family(&[("state", name)])?.encode_gauge(&i64::from(state as u8 == now))?;
        }
        Ok(())
    }
}

/// A counter read from elsewhere at scrape time (the log writer's drops).
struct FnCounter {
    name: &'static str,
    help: &'static str,
    read: Box<dyn Fn() -> u64 + Send + Sync>,
}

impl std::fmt::Debug for FnCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnCounter").field("name", &self.name).finish()
    }
}

impl Collector for FnCounter {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut e = encoder.encode_descriptor(self.name, self.help, None, MetricType::Counter)?;
        e.encode_counter::<NoLabelSet, _, u64>(&(self.read)(), None)
    }
}

/// The process's metrics. Made once, shared by every worker through an `Arc`;
/// each worker counts into its own [`Shard`].
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    shards: Arc<Shards>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("s3rp");
        let shards = Arc::new(Shards::default());
        registry.register_collector(Box::new(shards.clone()));
        Self { registry, shards }
    }

    /// A new shard for one worker (its `AppState`), counted in every scrape.
    pub fn shard(&self) -> Arc<Shard> {
        let s = Arc::new(Shard::default());
        self.shards.all.lock().unwrap_or_else(PoisonError::into_inner).push(s.clone());
        s
    }

    /// Registers `s3rp_<name>_total`, read by `read` at each scrape (before
    /// the metrics are shared).
    pub fn register_counter_fn(
        &mut self,
        name: &'static str,
        help: &'static str,
        read: impl Fn() -> u64 + Send + Sync + 'static,
    ) {
        self.registry.register_collector(Box::new(FnCounter { name, help, read: Box::new(read) }));
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 << 10);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }

    pub fn set_health(&self, state: HealthState) {
        self.shards.health.store(state as u8, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_classes() {
        let c = |m: Method, p: &str, q: &str| Op::classify(&m, p, q, false);
        assert_eq!(c(Method::GET, "/b/k", ""), Op::GetObject);
        assert_eq!(c(Method::GET, "/b/k/with/slashes", "versionId=3&X-Amz-Signature=ab"), Op::GetObject);
        assert_eq!(c(Method::HEAD, "/b/k", ""), Op::HeadObject);
        assert_eq!(c(Method::PUT, "/b/k", ""), Op::PutObject);
        assert_eq!(c(Method::DELETE, "/b/k", ""), Op::DeleteObject);
        assert_eq!(c(Method::PUT, "/b/k", "partNumber=1&uploadId=x"), Op::Multipart);
        assert_eq!(c(Method::POST, "/b/k", "uploads"), Op::Multipart);
        assert_eq!(c(Method::GET, "/b", "uploads"), Op::Multipart);
        assert_eq!(c(Method::GET, "/b", "list-type=2&prefix=a"), Op::List);
        assert_eq!(c(Method::GET, "/b/", ""), Op::List);
        assert_eq!(c(Method::GET, "/", ""), Op::List);
        assert_eq!(c(Method::GET, "/b", "acl"), Op::Bucket);
        assert_eq!(c(Method::PUT, "/b", ""), Op::Bucket);
        assert_eq!(c(Method::HEAD, "/b", ""), Op::Bucket);
        assert_eq!(c(Method::POST, "/b", "delete"), Op::Bucket);
        assert_eq!(c(Method::GET, "/b/k", "tagging"), Op::Other);
        assert_eq!(c(Method::POST, "/b/k", ""), Op::Other);
        assert_eq!(c(Method::PATCH, "/b/k", ""), Op::Other);
        assert_eq!(c(Method::PUT, "/", ""), Op::Other);
        // Virtual-hosted: the path is the key.
        assert_eq!(Op::classify(&Method::GET, "/k", "", true), Op::GetObject);
        assert_eq!(Op::classify(&Method::GET, "/", "", true), Op::List);
        assert_eq!(Op::classify(&Method::PUT, "/", "", true), Op::Bucket);
    }

    #[test]
    fn every_code_the_proxy_answers_with_has_its_own_label() {
        use crate::error::Error;
        let all = [
            Error::SignatureDoesNotMatch {
                access_key: String::new(),
                signature_provided: String::new(),
                string_to_sign: String::new(),
                canonical_request: None,
            },
            Error::InvalidAccessKeyId(String::new()),
            Error::RequestTimeTooSkewed { request_time: String::new(), server_time: String::new(), max_skew_secs: 1 },
            Error::AccessDenied("".into()),
            Error::HeadersNotSigned(String::new()),
            Error::AuthorizationHeaderMalformed("".into()),
            Error::AuthorizationQueryParametersError("".into()),
            Error::InvalidArgument("".into()),
            Error::InvalidRequest("".into()),
            Error::MissingContentLength,
            Error::XAmzContentSHA256Mismatch { client_computed: String::new(), s3_computed: String::new() },
            Error::IncompleteBody("".into()),
            Error::InvalidChunkedBody("".into()),
            Error::ChunkSignatureDoesNotMatch("".into()),
            Error::MethodNotAllowed("".into()),
            Error::RequestHeaderSectionTooLarge("".into()),
            Error::UriTooLong,
            Error::InvalidUri,
            Error::HttpVersionNotSupported,
            Error::OriginUnreachable("".into()),
            Error::OriginTimeout("".into()),
            Error::OriginRefused("".into()),
            Error::RequestTimeout,
            Error::InvalidBucketName(String::new()),
            Error::HostNotAllowed(String::new()),
        ];
        for e in &all {
            let code = e.status_and_code().1;
            assert_ne!(REFUSAL_CODES[code_index(code)], "other", "{code} has no label of its own");
        }
    }

    #[test]
    fn histogram_buckets_are_upper_inclusive_and_the_count_is_their_sum() {
        let (h, h2) = (Histogram::default(), Histogram::default());
        h.observe(Duration::from_millis(1)); // le=0.001
        h.observe(Duration::from_micros(1001)); // le=0.0025
        h.observe(Duration::from_secs(1000)); // +Inf
        h2.observe(Duration::from_millis(1));
        let (b, count, sum) = merged([&h, &h2].into_iter());
        assert_eq!((b[0], b[1], b[2], b[16]), ((0.001, 2), (0.0025, 1), (0.005, 0), (f64::INFINITY, 1)));
        assert_eq!(count, 4);
        assert_eq!(sum, (2_000_000 + 1_001_000 + 1_000_000_000_000u64) as f64 / 1e9);
    }

    #[test]
    fn the_text_exposition_counts_what_was_recorded() {
        let m = Metrics::new();
        // Two workers' shards: the scrape adds them up.
        let (a, b) = (m.shard(), m.shard());
        a.request_started();
        let o = Outcome {
            method: &Method::GET,
            op: Op::GetObject,
            status: 200,
            refusal: None,
            total: Duration::from_millis(3),
            origin_first_byte: Some(Duration::from_millis(2)),
        };
        a.request_done(&o);
        b.request_started();
        b.request_done(&Outcome { status: 403, refusal: Some("AccessDenied"), origin_first_byte: None, ..o });
        b.request_started();
        b.request_done(&o);
        a.request_bytes(10);
        b.response_bytes(20);
        a.origin_connection(false);
        b.origin_connection(false);
        m.set_health(HealthState::Ok);
        let text = m.encode();
        for line in [
            "# TYPE s3rp_requests_total counter",
            "s3rp_requests_total{method=\"GET\",op=\"get_object\",status=\"2xx\"} 2",
            "s3rp_requests_total{method=\"GET\",op=\"get_object\",status=\"4xx\"} 1",
            "s3rp_refusals_total{code=\"AccessDenied\"} 1",
            "s3rp_request_duration_seconds_bucket{op=\"get_object\",le=\"0.0025\"} 0",
            "s3rp_request_duration_seconds_bucket{op=\"get_object\",le=\"0.005\"} 3",
            "s3rp_request_duration_seconds_bucket{op=\"get_object\",le=\"+Inf\"} 3",
            "s3rp_request_duration_seconds_sum{op=\"get_object\"} 0.009",
            "s3rp_request_duration_seconds_count{op=\"get_object\"} 3",
            "s3rp_origin_first_byte_seconds_count{op=\"get_object\"} 2",
            "s3rp_requests_in_flight 0",
            "s3rp_request_body_bytes_total 10",
            "s3rp_response_body_bytes_total 20",
            "s3rp_origin_connections_total{kind=\"new\"} 2",
            "s3rp_origin_connections_total{kind=\"reused\"} 0",
            "s3rp_health_state{state=\"ok\"} 1",
            "s3rp_health_state{state=\"unknown\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no line {line:?} in\n{text}");
        }
        assert_eq!(text.matches("s3rp_requests_total{").count(), 2, "only the series that were counted:\n{text}");
    }
}

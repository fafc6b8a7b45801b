//! Prometheus metrics, encoded by the `prometheus-client` crate (its registry
//! and its Prometheus text format encoder, version 0.0.4).
//!
//! One [`Metrics`] serves the whole process: the binary makes one and every
//! worker's `AppState` holds the same `Arc`. A request touches atomics only:
//! no lock and no allocation on its path. Every label set is fixed: the
//! labelled series live in arrays indexed by small enums ([`Op`], the method,
//! the status class, the refusal code), and a [`Collector`] encodes the
//! non-zero ones at scrape time. (The crate's `Family` takes a lock per
//! lookup and its `Histogram` one per observation; both are avoided here.)

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use http::Method;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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

    /// Non-cumulative `(le, count)` pairs (the encoder accumulates), and the count.
    fn snapshot(&self) -> ([(f64, u64); BOUNDS.len() + 1], u64) {
        let mut out = [(f64::INFINITY, 0u64); BOUNDS.len() + 1];
        let mut count = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            let n = b.load(Relaxed);
            out[i] = (BOUNDS.get(i).copied().unwrap_or(f64::INFINITY), n);
            count += n;
        }
        (out, count)
    }
}

const REQUEST_CELLS: usize = METHODS.len() * Op::ALL.len() * STATUS_CLASSES.len();

/// The labelled series, encoded by hand-picked label sets (see the module doc).
#[derive(Debug)]
struct Cells {
    requests: [AtomicU64; REQUEST_CELLS],
    refusals: [AtomicU64; REFUSAL_CODES.len()],
    duration: [Histogram; Op::ALL.len()],
    origin_ttfb: [Histogram; Op::ALL.len()],
    health: AtomicU8,
}

impl Default for Cells {
    fn default() -> Self {
        Self {
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            refusals: std::array::from_fn(|_| AtomicU64::new(0)),
            duration: Default::default(),
            origin_ttfb: Default::default(),
            health: AtomicU8::new(HealthState::Unknown as u8),
        }
    }
}

impl Collector for Cells {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut e = encoder.encode_descriptor(
            "requests",
            "S3 requests answered, by method, operation class and status class (status 499: the client left before the response head); /healthz and /metrics are not counted.",
            None,
            MetricType::Counter,
        )?;
        for (i, cell) in self.requests.iter().enumerate() {
            let n = cell.load(Relaxed);
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
        for (code, cell) in REFUSAL_CODES.iter().zip(&self.refusals) {
            let n = cell.load(Relaxed);
            if n > 0 {
                e.encode_family(&[("code", *code)])?.encode_counter::<NoLabelSet, _, u64>(&n, None)?;
            }
        }

        for (name, help, cells) in [
            (
                "request_duration",
                "Time from the request head to the end of the response body, by operation class.",
                &self.duration,
            ),
            (
                "origin_first_byte",
                "Time from sending the origin request to its response head, by operation class.",
                &self.origin_ttfb,
            ),
        ] {
            let mut e = encoder.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
            for (op, h) in Op::ALL.iter().zip(cells) {
                let (buckets, count) = h.snapshot();
                if count > 0 {
                    let sum = h.sum_ns.load(Relaxed) as f64 / 1e9;
                    e.encode_family(&[("op", op.as_str())])?
                        .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
                }
            }
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

/// The process's metrics. Made once, shared by every worker through an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    cells: Arc<Cells>,
    in_flight: Gauge,
    request_bytes: Counter,
    response_bytes: Counter,
    origin_new: Counter,
    origin_reused: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// How one S3 request ended, for [`Metrics::request_done`].
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

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("s3rp");
        let cells = Arc::new(Cells::default());
        registry.register_collector(Box::new(cells.clone()));
        let in_flight = Gauge::default();
        registry.register(
            "requests_in_flight",
            "S3 requests received and not yet answered to the end of their response body",
            in_flight.clone(),
        );
        let (request_bytes, response_bytes) = (Counter::default(), Counter::default());
        registry.register_with_unit(
            "request_body",
            "Request body bytes received from clients (as sent: aws-chunked framing included)",
            Unit::Bytes,
            request_bytes.clone(),
        );
        registry.register_with_unit(
            "response_body",
            "Response body bytes sent to clients",
            Unit::Bytes,
            response_bytes.clone(),
        );
        // Both label sets made now: the request path never looks one up.
        let conns = Family::<[(&'static str, &'static str); 1], Counter>::default();
        let origin_new = conns.get_or_create_owned(&[("kind", "new")]);
        let origin_reused = conns.get_or_create_owned(&[("kind", "reused")]);
        registry.register(
            "origin_connections",
            "Origin connections a request (or a health probe) was sent on: newly opened, or reused from the pool",
            conns,
        );
        Self { registry, cells, in_flight, request_bytes, response_bytes, origin_new, origin_reused }
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

    pub fn request_started(&self) {
        self.in_flight.inc();
    }

    /// Counts a finished S3 request (the in-flight gauge goes down too).
    pub fn request_done(&self, o: &Outcome<'_>) {
        let c = &self.cells;
        let op = o.op as usize;
        let cell = (method_index(o.method) * Op::ALL.len() + op) * STATUS_CLASSES.len() + status_index(o.status);
        c.requests[cell].fetch_add(1, Relaxed);
        if let Some(code) = o.refusal {
            c.refusals[code_index(code)].fetch_add(1, Relaxed);
        }
        c.duration[op].observe(o.total);
        if let Some(t) = o.origin_first_byte {
            c.origin_ttfb[op].observe(t);
        }
        self.in_flight.dec();
    }

    pub fn request_bytes(&self, n: u64) {
        self.request_bytes.inc_by(n);
    }

    pub fn response_bytes(&self, n: u64) {
        self.response_bytes.inc_by(n);
    }

    /// An origin connection was checked out: `reused` from the pool, or new.
    pub fn origin_connection(&self, reused: bool) {
        if reused { &self.origin_reused } else { &self.origin_new }.inc();
    }

    pub fn set_health(&self, state: HealthState) {
        self.cells.health.store(state as u8, Relaxed);
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
        let h = Histogram::default();
        h.observe(Duration::from_millis(1)); // le=0.001
        h.observe(Duration::from_micros(1001)); // le=0.0025
        h.observe(Duration::from_secs(1000)); // +Inf
        let (b, count) = h.snapshot();
        assert_eq!((b[0], b[1], b[16]), ((0.001, 1), (0.0025, 1), (f64::INFINITY, 1)));
        assert_eq!(count, 3);
        assert_eq!(h.sum_ns.load(Relaxed), 1_000_000 + 1_001_000 + 1_000_000_000_000);
    }

    #[test]
    fn the_text_exposition_counts_what_was_recorded() {
        let m = Metrics::new();
        m.request_started();
        let o = Outcome {
            method: &Method::GET,
            op: Op::GetObject,
            status: 200,
            refusal: None,
            total: Duration::from_millis(3),
            origin_first_byte: Some(Duration::from_millis(2)),
        };
        m.request_done(&o);
        m.request_started();
        m.request_done(&Outcome { status: 403, refusal: Some("AccessDenied"), origin_first_byte: None, ..o });
        m.request_bytes(10);
        m.response_bytes(20);
        m.origin_connection(false);
        m.set_health(HealthState::Ok);
        let text = m.encode();
        for line in [
            "# TYPE s3rp_requests_total counter",
            "s3rp_requests_total{method=\"GET\",op=\"get_object\",status=\"2xx\"} 1",
            "s3rp_requests_total{method=\"GET\",op=\"get_object\",status=\"4xx\"} 1",
            "s3rp_refusals_total{code=\"AccessDenied\"} 1",
            "s3rp_request_duration_seconds_bucket{op=\"get_object\",le=\"0.005\"} 2",
            "s3rp_request_duration_seconds_count{op=\"get_object\"} 2",
            "s3rp_origin_first_byte_seconds_count{op=\"get_object\"} 1",
            "s3rp_requests_in_flight 0",
            "s3rp_request_body_bytes_total 10",
            "s3rp_response_body_bytes_total 20",
            "s3rp_origin_connections_total{kind=\"new\"} 1",
            "s3rp_origin_connections_total{kind=\"reused\"} 0",
            "s3rp_health_state{state=\"ok\"} 1",
            "s3rp_health_state{state=\"unknown\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no line {line:?} in\n{text}");
        }
        assert_eq!(text.matches("s3rp_requests_total{").count(), 2, "only the series that were counted:\n{text}");
    }
}

//! `s3-resign-proxy demo`: the proxy in front of an embedded, signature-checking
//! S3 origin (s3s-fs) in a temporary directory. Also `s3-resign-proxy origin
//! DIR`, the same origin alone, which the tests, the end-to-end suite and the
//! benchmarks use.
//!
//! The origin is s3s-fs 0.14 with every signature checked (SigV4 header,
//! presigned, aws-chunked, SigV2, POST policy), plus two things real S3 has and
//! s3s-fs does not, so that anonymous and browser traffic can be tested
//! against a strict origin:
//!
//! - **Public-read buckets** ([`OriginOptions::public_buckets`], env
//!   `ORIGIN_PUBLIC_BUCKETS=b1,b2` for `origin DIR`): the effect of a bucket
//!   policy granting `s3:GetObject` and `s3:ListBucket` to everyone. A request
//!   with no credentials at all may GetObject, HeadObject, ListObjects,
//!   ListObjectsV2 and HeadBucket on those buckets; every other anonymous
//!   request is 403 `AccessDenied`, as S3 answers. A request that carries a
//!   signature is verified as before: a bad one is refused, never treated as
//!   anonymous.
//! - **Bucket CORS**: PutBucketCors / GetBucketCors / DeleteBucketCors (signed,
//!   like any bucket subresource) store the rules per bucket in
//!   `DIR/.s3-resign-proxy-cors.json` (kept across requests and restarts,
//!   dropped with the bucket). An `OPTIONS` preflight is answered from them as
//!   S3 does: the first rule whose AllowedOrigin (one `*` wildcard),
//!   AllowedMethod and AllowedHeaders (each requested header, one `*`
//!   wildcard, case-insensitive) match gives 200 with
//!   `Access-Control-Allow-Origin` (`*` for a `*` rule, else the origin, with
//!   `Access-Control-Allow-Credentials: true`), `-Allow-Methods`,
//!   `-Allow-Headers` (the requested ones), `-Expose-Headers`, `-Max-Age` and
//!   `Vary`; otherwise 403 `AccessForbidden` "CORSResponse: ..." S3 XML (400
//!   `BadRequest` without `Origin` or `Access-Control-Request-Method`). Any
//!   other request whose `Origin` and method match a rule gets the same
//!   headers on its response, errors included.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::SimpleAuth;
use s3s::dto;
use s3s::host::{S3Host, SingleDomain};
use s3s::service::{S3Service, S3ServiceBuilder};
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::error::BoxError;

/// The test origin's settings: its one key, the optional virtual-hosted
/// domain, and the public-read buckets. Build it with [`OriginOptions::new`]
/// and the setters, or as a struct literal.
#[derive(Clone)]
pub struct OriginOptions {
    /// The only key whose signatures the origin accepts.
    pub access_key: String,
    pub secret_key: String,
    /// Also serve virtual-hosted requests at `<bucket>.<domain>` (s3s compares
    /// it with the Host header, port included: `localhost:9000`).
    pub domain: Option<String>,
    /// Buckets anyone may read without a signature (GetObject, HeadObject,
    /// ListObjects, ListObjectsV2, HeadBucket), as with a public-read bucket
    /// policy on S3.
    pub public_buckets: BTreeSet<String>,
}

impl OriginOptions {
    /// The origin with key `access_key`/`secret_key`, path-style only, no
    /// public bucket.
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Self {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            domain: None,
            public_buckets: BTreeSet::new(),
        }
    }

    /// Also serve virtual-hosted requests at `<bucket>.<domain>`.
    #[must_use]
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Adds `buckets` to the public-read buckets.
    #[must_use]
    pub fn public_buckets<I, S>(mut self, buckets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.public_buckets.extend(buckets.into_iter().map(Into::into));
        self
    }

    /// `origin DIR`'s settings: ORIGIN_ACCESS_KEY, ORIGIN_SECRET_KEY and
    /// ORIGIN_PUBLIC_BUCKETS (comma-separated bucket names, may be empty).
    pub fn from_env() -> Result<Self, BoxError> {
        let ak = std::env::var("ORIGIN_ACCESS_KEY").map_err(|_| "missing required variable ORIGIN_ACCESS_KEY")?;
        let sk = std::env::var("ORIGIN_SECRET_KEY").map_err(|_| "missing required variable ORIGIN_SECRET_KEY")?;
        let public = parse_bucket_list(&std::env::var("ORIGIN_PUBLIC_BUCKETS").unwrap_or_default())
            .map_err(|e| format!("ORIGIN_PUBLIC_BUCKETS: {e}"))?;
        Ok(Self::new(ak, sk).public_buckets(public))
    }
}

// By hand: the secret key must never reach a log line.
impl std::fmt::Debug for OriginOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginOptions")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("domain", &self.domain)
            .field("public_buckets", &self.public_buckets)
            .finish()
    }
}

/// `b1, b2,,b3` → {b1, b2, b3}; each must be a valid S3 bucket name.
fn parse_bucket_list(s: &str) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    for b in s.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        if !s3s::path::check_bucket_name(b) {
            return Err(format!("{b:?} is not a valid bucket name"));
        }
        out.insert(b.to_owned());
    }
    Ok(out)
}

/// Serves an s3s-fs origin over `root` on `listener`, checking signatures made
/// with `access_key`/`secret_key`, until the task is dropped.
pub async fn serve_origin(
    listener: TcpListener,
    root: &Path,
    access_key: &str,
    secret_key: &str,
) -> Result<(), BoxError> {
    serve_origin_with(listener, root, &OriginOptions::new(access_key, secret_key)).await
}

/// [`serve_origin`], also serving virtual-hosted requests at
/// `<bucket>.<domain>` when `domain` is given (s3s compares it with the Host
/// header, port included: `localhost:9000`).
pub async fn serve_origin_with_domain(
    listener: TcpListener,
    root: &Path,
    access_key: &str,
    secret_key: &str,
    domain: Option<&str>,
) -> Result<(), BoxError> {
    let mut options = OriginOptions::new(access_key, secret_key);
    options.domain = domain.map(str::to_owned);
    serve_origin_with(listener, root, &options).await
}

/// Serves the test origin (module docs) over `root` on `listener` with
/// `options`, until the task is dropped.
pub async fn serve_origin_with(listener: TcpListener, root: &Path, options: &OriginOptions) -> Result<(), BoxError> {
    let fs = s3s_fs::FileSystem::new(root).map_err(|e| format!("s3s-fs: {e:?}"))?;
    // Absolute, as s3s-fs made its own: the rules file stays put if the cwd changes.
    let cors = Arc::new(CorsStore { root: root.canonicalize()?, write: tokio::sync::Mutex::new(()) });
    let mut b = S3ServiceBuilder::new(CorsFs { fs, cors: cors.clone() });
    b.set_auth(SimpleAuth::from_single(options.access_key.as_str(), options.secret_key.as_str()));
    b.set_access(PublicRead { buckets: options.public_buckets.clone() });
    let domain = |d: &str| SingleDomain::new(d).map_err(|e| format!("s3s domain {d}: {e:?}"));
    let host = match options.domain.as_deref() {
        Some(d) => {
            b.set_host(domain(d)?);
            Some(domain(d)?)
        }
        None => None,
    };
    let front = Arc::new(Front { s3: b.build(), cors, host });
    let http = Arc::new(ConnBuilder::new(TokioExecutor::new()));
    // Connections live in this set: dropping the future (aborting its task)
    // closes them all, so a stopped origin is really gone.
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (socket, _) = accepted?;
                let _ = socket.set_nodelay(true);
                let front = front.clone();
                let http = http.clone();
                conns.spawn(async move {
                    let service = hyper::service::service_fn(move |req| front.clone().call(req));
                    let _ = http.serve_connection(TokioIo::new(socket), service).await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// The anonymous half of a public-read bucket policy; signed requests (their
/// signature already verified by s3s) may do anything, as the owner.
struct PublicRead {
    buckets: BTreeSet<String>,
}

/// What a policy granting `s3:GetObject` and `s3:ListBucket` to `*` allows.
const PUBLIC_READ_OPS: [&str; 5] = ["GetObject", "HeadObject", "ListObjects", "ListObjectsV2", "HeadBucket"];

#[async_trait::async_trait]
impl S3Access for PublicRead {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        if cx.credentials().is_some() {
            return Ok(());
        }
        let public = cx.s3_path().get_bucket_name().is_some_and(|b| self.buckets.contains(b));
        if public && PUBLIC_READ_OPS.contains(&cx.s3_op().name()) {
            return Ok(());
        }
        Err(s3_error!(AccessDenied, "Access Denied"))
    }
}

/// One bucket CORS rule, as stored in the rules file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct CorsRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    allowed_origins: Vec<String>,
    allowed_methods: Vec<String>,
    #[serde(default)]
    allowed_headers: Vec<String>,
    #[serde(default)]
    expose_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_age_seconds: Option<i32>,
}

impl From<dto::CORSRule> for CorsRule {
    fn from(r: dto::CORSRule) -> Self {
        Self {
            id: r.id,
            allowed_origins: r.allowed_origins,
            allowed_methods: r.allowed_methods,
            allowed_headers: r.allowed_headers.unwrap_or_default(),
            expose_headers: r.expose_headers.unwrap_or_default(),
            max_age_seconds: r.max_age_seconds,
        }
    }
}

impl From<CorsRule> for dto::CORSRule {
    fn from(r: CorsRule) -> Self {
        let some = |v: Vec<String>| (!v.is_empty()).then_some(v);
        Self {
            id: r.id,
            allowed_origins: r.allowed_origins,
            allowed_methods: r.allowed_methods,
            allowed_headers: some(r.allowed_headers),
            expose_headers: some(r.expose_headers),
            max_age_seconds: r.max_age_seconds,
        }
    }
}

/// S3's checks on PutBucketCors.
fn validate_cors(rules: &[CorsRule]) -> S3Result<()> {
    if rules.is_empty() || rules.len() > 100 {
        return Err(s3_error!(MalformedXML, "a CORS configuration has 1 to 100 rules"));
    }
    for r in rules {
        if r.allowed_origins.is_empty() || r.allowed_methods.is_empty() {
            return Err(s3_error!(MalformedXML, "a CORS rule needs an AllowedOrigin and an AllowedMethod"));
        }
        if let Some(m) = r.allowed_methods.iter().find(|m| !CORS_METHODS.contains(&m.as_str())) {
            return Err(s3_error!(
                InvalidRequest,
                "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
            ));
        }
        if let Some(o) = r.allowed_origins.iter().find(|o| o.matches('*').count() > 1) {
            return Err(s3_error!(InvalidRequest, "AllowedOrigin \"{o}\" can not have more than one wildcard."));
        }
        if let Some(h) = r.allowed_headers.iter().find(|h| h.matches('*').count() > 1) {
            return Err(s3_error!(InvalidRequest, "AllowedHeader \"{h}\" can not have more than one wildcard."));
        }
    }
    Ok(())
}

const CORS_METHODS: [&str; 5] = ["GET", "PUT", "HEAD", "POST", "DELETE"];

/// Bucket CORS rules, in one JSON file under the origin's root: several
/// origins over one root (the tests run two) see the same rules, and
/// `origin DIR` keeps them across restarts.
struct CorsStore {
    root: PathBuf,
    /// Serializes read-modify-write of the file within this process.
    write: tokio::sync::Mutex<()>,
}

const CORS_FILE: &str = ".s3-resign-proxy-cors.json";

impl CorsStore {
    async fn load(&self) -> S3Result<HashMap<String, Vec<CorsRule>>> {
        match tokio::fs::read(self.root.join(CORS_FILE)).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| s3_error!(e, InternalError, "bad {CORS_FILE}")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(HashMap::new()),
            Err(e) => Err(s3_error!(e, InternalError, "cannot read {CORS_FILE}")),
        }
    }

    async fn rules(&self, bucket: &str) -> S3Result<Option<Vec<CorsRule>>> {
        Ok(self.load().await?.remove(bucket))
    }

    /// Sets (`Some`) or removes (`None`) `bucket`'s rules.
    async fn set(&self, bucket: &str, rules: Option<Vec<CorsRule>>) -> S3Result<()> {
        let _one_writer = self.write.lock().await;
        let mut all = self.load().await?;
        let changed = match rules {
            Some(r) => all.insert(bucket.to_owned(), r.clone()).as_ref() != Some(&r),
            None => all.remove(bucket).is_some(),
        };
        if !changed {
            return Ok(());
        }
        let bytes = serde_json::to_vec_pretty(&all).map_err(|e| s3_error!(e, InternalError))?;
        // Write then rename: a reader never sees half a file.
        let tmp = self.root.join(format!("{CORS_FILE}.{}.tmp", std::process::id()));
        tokio::fs::write(&tmp, bytes).await.map_err(|e| s3_error!(e, InternalError, "cannot write {CORS_FILE}"))?;
        tokio::fs::rename(&tmp, self.root.join(CORS_FILE))
            .await
            .map_err(|e| s3_error!(e, InternalError, "cannot write {CORS_FILE}"))
    }

    fn bucket_exists(&self, bucket: &str) -> bool {
        // s3s has validated the name: no `/`, no `..`.
        self.root.join(bucket).is_dir()
    }
}

/// s3s-fs with bucket CORS: every operation s3s-fs implements is delegated
/// unchanged; the three CORS ones are added.
struct CorsFs {
    fs: s3s_fs::FileSystem,
    cors: Arc<CorsStore>,
}

type Res<T> = S3Result<S3Response<T>>;

#[async_trait::async_trait]
impl S3 for CorsFs {
    async fn put_bucket_cors(&self, req: S3Request<dto::PutBucketCorsInput>) -> Res<dto::PutBucketCorsOutput> {
        let input = req.input;
        if !self.cors.bucket_exists(&input.bucket) {
            return Err(s3_error!(NoSuchBucket));
        }
        let rules: Vec<CorsRule> = input.cors_configuration.cors_rules.into_iter().map(Into::into).collect();
        validate_cors(&rules)?;
        self.cors.set(&input.bucket, Some(rules)).await?;
        Ok(S3Response::new(dto::PutBucketCorsOutput::default()))
    }

    async fn get_bucket_cors(&self, req: S3Request<dto::GetBucketCorsInput>) -> Res<dto::GetBucketCorsOutput> {
        let bucket = req.input.bucket;
        if !self.cors.bucket_exists(&bucket) {
            return Err(s3_error!(NoSuchBucket));
        }
        match self.cors.rules(&bucket).await? {
            Some(rules) => Ok(S3Response::new(dto::GetBucketCorsOutput {
                cors_rules: Some(rules.into_iter().map(Into::into).collect()),
            })),
            None => Err(s3_error!(NoSuchCORSConfiguration, "The CORS configuration does not exist")),
        }
    }

    async fn delete_bucket_cors(&self, req: S3Request<dto::DeleteBucketCorsInput>) -> Res<dto::DeleteBucketCorsOutput> {
        let bucket = req.input.bucket;
        if !self.cors.bucket_exists(&bucket) {
            return Err(s3_error!(NoSuchBucket));
        }
        self.cors.set(&bucket, None).await?;
        Ok(S3Response::new(dto::DeleteBucketCorsOutput::default()))
    }

    async fn delete_bucket(&self, req: S3Request<dto::DeleteBucketInput>) -> Res<dto::DeleteBucketOutput> {
        let bucket = req.input.bucket.clone();
        let out = self.fs.delete_bucket(req).await?;
        // A bucket made again under this name starts without CORS, as on S3.
        self.cors.set(&bucket, None).await?;
        Ok(out)
    }

    // The rest: s3s-fs's own operations, unchanged.
    async fn create_bucket(&self, req: S3Request<dto::CreateBucketInput>) -> Res<dto::CreateBucketOutput> {
        self.fs.create_bucket(req).await
    }
    async fn copy_object(&self, req: S3Request<dto::CopyObjectInput>) -> Res<dto::CopyObjectOutput> {
        self.fs.copy_object(req).await
    }
    async fn delete_object(&self, req: S3Request<dto::DeleteObjectInput>) -> Res<dto::DeleteObjectOutput> {
        self.fs.delete_object(req).await
    }
    async fn delete_objects(&self, req: S3Request<dto::DeleteObjectsInput>) -> Res<dto::DeleteObjectsOutput> {
        self.fs.delete_objects(req).await
    }
    async fn get_bucket_location(
        &self,
        req: S3Request<dto::GetBucketLocationInput>,
    ) -> Res<dto::GetBucketLocationOutput> {
        self.fs.get_bucket_location(req).await
    }
    async fn get_object(&self, req: S3Request<dto::GetObjectInput>) -> Res<dto::GetObjectOutput> {
        self.fs.get_object(req).await
    }
    async fn head_bucket(&self, req: S3Request<dto::HeadBucketInput>) -> Res<dto::HeadBucketOutput> {
        self.fs.head_bucket(req).await
    }
    async fn head_object(&self, req: S3Request<dto::HeadObjectInput>) -> Res<dto::HeadObjectOutput> {
        self.fs.head_object(req).await
    }
    async fn list_buckets(&self, req: S3Request<dto::ListBucketsInput>) -> Res<dto::ListBucketsOutput> {
        self.fs.list_buckets(req).await
    }
    async fn list_objects(&self, req: S3Request<dto::ListObjectsInput>) -> Res<dto::ListObjectsOutput> {
        self.fs.list_objects(req).await
    }
    async fn list_objects_v2(&self, req: S3Request<dto::ListObjectsV2Input>) -> Res<dto::ListObjectsV2Output> {
        self.fs.list_objects_v2(req).await
    }
    async fn put_object(&self, req: S3Request<dto::PutObjectInput>) -> Res<dto::PutObjectOutput> {
        self.fs.put_object(req).await
    }
    async fn post_object(&self, req: S3Request<dto::PostObjectInput>) -> Res<dto::PostObjectOutput> {
        self.fs.post_object(req).await
    }
    async fn create_multipart_upload(
        &self,
        req: S3Request<dto::CreateMultipartUploadInput>,
    ) -> Res<dto::CreateMultipartUploadOutput> {
        self.fs.create_multipart_upload(req).await
    }
    async fn upload_part(&self, req: S3Request<dto::UploadPartInput>) -> Res<dto::UploadPartOutput> {
        self.fs.upload_part(req).await
    }
    async fn upload_part_copy(&self, req: S3Request<dto::UploadPartCopyInput>) -> Res<dto::UploadPartCopyOutput> {
        self.fs.upload_part_copy(req).await
    }
    async fn list_parts(&self, req: S3Request<dto::ListPartsInput>) -> Res<dto::ListPartsOutput> {
        self.fs.list_parts(req).await
    }
    async fn complete_multipart_upload(
        &self,
        req: S3Request<dto::CompleteMultipartUploadInput>,
    ) -> Res<dto::CompleteMultipartUploadOutput> {
        self.fs.complete_multipart_upload(req).await
    }
    async fn abort_multipart_upload(
        &self,
        req: S3Request<dto::AbortMultipartUploadInput>,
    ) -> Res<dto::AbortMultipartUploadOutput> {
        self.fs.abort_multipart_upload(req).await
    }
}

/// `pattern` with at most one `*` (any run of characters) against `value`.
fn wildcard_match(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let eq = |a: &str, b: &str| if ignore_case { a.eq_ignore_ascii_case(b) } else { a == b };
    match pattern.split_once('*') {
        None => eq(pattern, value),
        Some((pre, post)) => {
            value.len() >= pre.len() + post.len()
                && value.get(..pre.len()).is_some_and(|v| eq(pre, v))
                && value.get(value.len() - post.len()..).is_some_and(|v| eq(post, v))
        }
    }
}

/// A rule that matched a request, and what `Access-Control-Allow-Origin` says.
struct CorsMatch<'r> {
    rule: &'r CorsRule,
    allow_origin: &'r str,
}

/// The first rule allowing `origin` to use `method` and send every one of
/// `headers` (lowercase), as S3 evaluates them.
fn match_rule<'r>(rules: &'r [CorsRule], origin: &'r str, method: &str, headers: &[String]) -> Option<CorsMatch<'r>> {
    rules.iter().find_map(|rule| {
        if !rule.allowed_methods.iter().any(|m| m == method) {
            return None;
        }
        if !headers.iter().all(|h| rule.allowed_headers.iter().any(|p| wildcard_match(p, h, true))) {
            return None;
        }
        // A named origin (or pattern) is echoed; only a bare `*` answers `*`.
        if rule.allowed_origins.iter().any(|p| p != "*" && wildcard_match(p, origin, false)) {
            Some(CorsMatch { rule, allow_origin: origin })
        } else if rule.allowed_origins.iter().any(|p| p == "*") {
            Some(CorsMatch { rule, allow_origin: "*" })
        } else {
            None
        }
    })
}

/// The CORS response headers S3 sends for a matched rule.
fn cors_headers(h: &mut HeaderMap, m: &CorsMatch<'_>, allow_headers: &[String]) {
    let mut set = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    set("access-control-allow-origin", m.allow_origin);
    if m.allow_origin != "*" {
        set("access-control-allow-credentials", "true");
    }
    set("access-control-allow-methods", &m.rule.allowed_methods.join(", "));
    if !allow_headers.is_empty() {
        set("access-control-allow-headers", &allow_headers.join(", "));
    }
    if !m.rule.expose_headers.is_empty() {
        set("access-control-expose-headers", &m.rule.expose_headers.join(", "));
    }
    if let Some(age) = m.rule.max_age_seconds {
        set("access-control-max-age", &age.to_string());
    }
    set("vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method");
}

/// The HTTP layer in front of s3s: answers preflights, adds CORS headers.
struct Front {
    s3: S3Service,
    cors: Arc<CorsStore>,
    host: Option<SingleDomain>,
}

type HttpResult = Result<http::Response<s3s::Body>, s3s::HttpError>;

impl Front {
    async fn call(self: Arc<Self>, req: http::Request<hyper::body::Incoming>) -> HttpResult {
        let target = self.target(&req);
        if req.method() == Method::OPTIONS {
            return Ok(self.preflight(req.headers(), target).await);
        }
        let origin = header_str(req.headers(), "origin").map(str::to_owned);
        let method = req.method().as_str().to_owned();
        let mut resp = self.s3.call(req.map(s3s::Body::from)).await?;
        if let (Some(origin), Some((bucket, _))) = (origin, target) {
            // Unreadable rules only cost the CORS headers, not the answer.
            if let Ok(Some(rules)) = self.cors.rules(&bucket).await
                && let Some(m) = match_rule(&rules, &origin, &method, &[])
            {
                cors_headers(resp.headers_mut(), &m, &[]);
            }
        }
        Ok(resp)
    }

    /// The request's bucket, and whether it names an object, addressed as s3s
    /// reads it: virtual-hosted when a domain is set and Host is a name, else
    /// path-style.
    fn target(&self, req: &http::Request<hyper::body::Incoming>) -> Option<(String, bool)> {
        let path = percent_encoding::percent_decode_str(req.uri().path()).decode_utf8().ok()?;
        let path = path.strip_prefix('/').unwrap_or(&path);
        let host = header_str(req.headers(), "host").or_else(|| req.uri().authority().map(|a| a.as_str()));
        if let (Some(s3_host), Some(host)) = (&self.host, host)
            && host.parse::<SocketAddr>().is_err()
            && host.parse::<IpAddr>().is_err()
            && let Some(bucket) = s3_host.parse_host_header(host).ok()?.bucket()
        {
            return Some((bucket.to_owned(), !path.is_empty()));
        }
        let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
        (!bucket.is_empty()).then(|| (bucket.to_owned(), !key.is_empty()))
    }

    /// An `OPTIONS` request, answered as S3 does from the bucket's rules.
    async fn preflight(&self, headers: &HeaderMap, target: Option<(String, bool)>) -> http::Response<s3s::Body> {
        let method = header_str(headers, "access-control-request-method");
        let is_object = target.as_ref().is_some_and(|t| t.1);
        let refuse = |status: StatusCode, code: &str, message: &str| {
            error_response(status, code, message, method.unwrap_or("OPTIONS"), is_object)
        };
        let Some(origin) = header_str(headers, "origin") else {
            return refuse(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Insufficient information. Origin request header needed.",
            );
        };
        let Some(method) = method else {
            return refuse(StatusCode::BAD_REQUEST, "BadRequest", "Invalid Access-Control-Request-Method: null");
        };
        let forbidden = |message: &str| refuse(StatusCode::FORBIDDEN, "AccessForbidden", message);
        let Some((bucket, _)) = target.as_ref().filter(|(b, _)| self.cors.bucket_exists(b)) else {
            return forbidden("CORSResponse: Bucket not found");
        };
        let rules = match self.cors.rules(bucket).await {
            Ok(Some(rules)) => rules,
            Ok(None) => return forbidden("CORSResponse: CORS is not enabled for this bucket."),
            Err(_) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "bucket CORS unreadable"),
        };
        let requested: Vec<String> = header_str(headers, "access-control-request-headers")
            .unwrap_or("")
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        let Some(m) = match_rule(&rules, origin, method, &requested) else {
            return forbidden(
                "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, \
                 request method / Access-Control-Request-Method or Access-Control-Request-Headers are not \
                 whitelisted by the resource's CORS spec.",
            );
        };
        let mut resp = http::Response::new(s3s::Body::empty());
        cors_headers(resp.headers_mut(), &m, &requested);
        resp.headers_mut().insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        resp
    }
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// An S3 XML error, as S3 words a refused preflight.
fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    method: &str,
    is_object: bool,
) -> http::Response<s3s::Body> {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let id = format!("{:016X}", NEXT_ID.fetch_add(1, Ordering::Relaxed));
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message>\
         <Method>{}</Method><ResourceType>{}</ResourceType><RequestId>{id}</RequestId></Error>",
        esc(message),
        esc(method),
        if is_object { "OBJECT" } else { "BUCKET" },
    );
    let mut resp = http::Response::new(s3s::Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
    resp
}

/// Not for production secrets: a random-looking token for the demo's origin.
fn token(label: &str, len: usize) -> String {
    let mut h = Sha256::new();
    h.update(label);
    h.update(time::OffsetDateTime::now_utc().unix_timestamp_nanos().to_le_bytes());
    h.update(std::process::id().to_le_bytes());
    let s = hex::encode_upper(h.finalize());
    s[..len].to_owned()
}

pub const DEMO_ACCESS_KEY: &str = "DEMOACCESSKEY";
pub const DEMO_SECRET_KEY: &str = "demo-secret-key-change-me";

pub async fn run_demo() -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("demo"))?;
    let origin_ak = token("ak", 20);
    let origin_sk = token("sk", 40);
    let origin_listener = TcpListener::bind("127.0.0.1:0").await?;
    let origin_addr = origin_listener.local_addr()?;
    let root = dir.path().to_owned();
    let (oak, osk) = (origin_ak.clone(), origin_sk.clone());
    tokio::spawn(async move {
        if let Err(e) = serve_origin(origin_listener, &root, &oak, &osk).await {
            tracing::error!("demo origin stopped: {e}");
        }
    });

    let port = std::env::var("PORT").ok().and_then(|p| p.parse::<u16>().ok()).unwrap_or(8000);
    let config = Config::from_vars([
        ("CLIENT_ACCESS_KEY".to_owned(), DEMO_ACCESS_KEY.to_owned()),
        ("CLIENT_SECRET_KEY".to_owned(), DEMO_SECRET_KEY.to_owned()),
        ("ORIGIN_ACCESS_KEY".to_owned(), origin_ak),
        ("ORIGIN_SECRET_KEY".to_owned(), origin_sk),
        ("ORIGIN_DOMAIN".to_owned(), format!("http://{origin_addr}")),
        ("HOST".to_owned(), "127.0.0.1".to_owned()),
        ("PORT".to_owned(), port.to_string()),
        // Probe the demo bucket (a HeadBucket): s3s-fs answers `HEAD /` with
        // 501 and logs an error for it, which looks like a failure.
        ("HEALTHCHECK_PATH".to_owned(), "/demo".to_owned()),
    ])?;
    let listener = TcpListener::bind(config.listen).await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    println!(
        "s3-resign-proxy demo\n\
         \n  proxy endpoint : {endpoint}\
         \n  origin         : s3s-fs at http://{origin_addr} (its own random credentials), data in {}\
         \n  client key     : {DEMO_ACCESS_KEY}\
         \n  client secret  : {DEMO_SECRET_KEY}\
         \n\nTry it (aws-cli; the bucket `demo` exists already):\
         \n\n  export AWS_ACCESS_KEY_ID={DEMO_ACCESS_KEY} AWS_SECRET_ACCESS_KEY={DEMO_SECRET_KEY} AWS_DEFAULT_REGION=us-east-1\
         \n  echo hello > hello.txt\
         \n  aws --endpoint-url {endpoint} s3 cp hello.txt s3://demo/hello.txt\
         \n  aws --endpoint-url {endpoint} s3 ls s3://demo/\
         \n  aws --endpoint-url {endpoint} s3 cp s3://demo/hello.txt -\
         \n  curl -s {endpoint}/healthz\
         \n\nCtrl-C stops the demo and removes its data.",
        dir.path().display()
    );
    let state = crate::state::AppState::new(config);
    // Ctrl-C stops the demo without a grace period.
    let drain = crate::drain::Drain::new(std::time::Duration::ZERO, std::time::Duration::from_secs(5));
    let trigger = drain.clone();
    tokio::spawn(async move {
        crate::server::shutdown_signal().await;
        trigger.start();
    });
    crate::server::run(listener, state, drain).await?;
    drop(dir);
    Ok(())
}

/// `s3-resign-proxy origin DIR`: serve the test origin over DIR on HOST:PORT
/// with ORIGIN_ACCESS_KEY / ORIGIN_SECRET_KEY, ORIGIN_PUBLIC_BUCKETS public.
pub async fn run_origin(root: &Path) -> Result<(), BoxError> {
    let options = OriginOptions::from_env()?;
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("PORT").unwrap_or_else(|_| "9000".into());
    let listener = TcpListener::bind(format!("{host}:{port}")).await?;
    eprintln!(
        "s3s-fs origin on http://{} over {} (public-read buckets: {:?})",
        listener.local_addr()?,
        root.display(),
        options.public_buckets
    );
    tokio::select! {
        r = serve_origin_with(listener, root, &options) => r,
        () = crate::server::shutdown_signal() => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
        let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect();
        CorsRule {
            allowed_origins: v(origins),
            allowed_methods: v(methods),
            allowed_headers: v(headers),
            ..Default::default()
        }
    }

    #[test]
    fn wildcards_have_one_star_prefix_and_suffix() {
        assert!(wildcard_match("http://*.example.com", "http://a.example.com", false));
        assert!(wildcard_match("http://*.example.com", "http://a.b.example.com", false));
        assert!(!wildcard_match("http://*.example.com", "http://example.com", false));
        assert!(!wildcard_match("http://*.example.com", "https://a.example.com", false));
        assert!(!wildcard_match("http://a.example.com", "http://A.example.com", false));
        assert!(wildcard_match("x-amz-*", "X-Amz-Date", true));
        assert!(wildcard_match("*", "", false));
        // The prefix and the suffix may not overlap.
        assert!(!wildcard_match("ab*ba", "aba", false));
        assert!(!wildcard_match("é*", "e", false));
    }

    #[test]
    fn first_matching_rule_wins_and_star_answers_star() {
        let rules = [
            rule(&["http://app.test"], &["PUT"], &["content-type"]),
            rule(&["*"], &["GET", "HEAD"], &[]),
            rule(&["http://*.app.test"], &["GET"], &["*"]),
        ];
        let m = match_rule(&rules, "http://app.test", "PUT", &["content-type".into()]).unwrap();
        assert_eq!((m.allow_origin, m.rule.allowed_methods.as_slice()), ("http://app.test", &["PUT".to_owned()][..]));
        assert!(match_rule(&rules, "http://app.test", "PUT", &["x-amz-date".into()]).is_none());
        assert!(match_rule(&rules, "http://app.test", "DELETE", &[]).is_none());
        assert_eq!(match_rule(&rules, "http://other", "GET", &[]).unwrap().allow_origin, "*");
        // Rule 2 allows GET for everyone but no header; rule 3 allows headers for *.app.test.
        let m = match_rule(&rules, "http://x.app.test", "GET", &["range".into()]).unwrap();
        assert_eq!(m.allow_origin, "http://x.app.test");
        assert!(match_rule(&rules, "http://other", "GET", &["range".into()]).is_none());
    }

    #[test]
    fn put_bucket_cors_is_checked_as_s3_does() {
        assert!(validate_cors(&[rule(&["http://*.a.test"], &["GET", "PUT"], &["x-amz-*"])]).is_ok());
        for bad in [
            vec![],
            vec![rule(&["http://a.test"], &["PATCH"], &[])],
            vec![rule(&["http://*.*.test"], &["GET"], &[])],
            vec![rule(&["*"], &["GET"], &["*-*"])],
            vec![rule(&[], &["GET"], &[])],
            vec![rule(&["*"], &[], &[])],
        ] {
            assert!(validate_cors(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn public_bucket_list() {
        let got = parse_bucket_list(" pub1, ,pub-2,").unwrap();
        assert_eq!(got.into_iter().collect::<Vec<_>>(), ["pub-2", "pub1"]);
        assert!(parse_bucket_list("").unwrap().is_empty());
        assert!(parse_bucket_list("ok1,Bad_Name").is_err());
    }

    #[test]
    fn options_debug_hides_the_secret() {
        let o = OriginOptions::new("AKID", "the-secret").public_buckets(["pub1"]).domain("localhost:9000");
        let s = format!("{o:?}");
        assert!(s.contains("AKID") && s.contains("pub1") && !s.contains("the-secret"), "{s}");
    }
}

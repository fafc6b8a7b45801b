//! Issue 15: scoped client keys and several origins from an ACCESS_FILE, in
//! process, against strict s3s-fs origins (each checks the signature made with
//! its own credentials, so a request that reaches one was re-signed for it).
//!
//! - `access_table`: one row per (key, operation, bucket/key) with the
//!   expected allow or deny, through a `Relay` in front of the origin, so a
//!   denial is also shown to have forwarded nothing. The proxy there is built
//!   from ACCESS_FILE alone (no CLIENT_*/ORIGIN_*).
//! - ListBuckets per key, two origins behind one proxy, secret rotation with
//!   an injected clock, in-process reload (and the file watcher).

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier, Tag, Tagging,
    VersioningConfiguration,
};
use common::v2;
use common::{Relay, raw_exchange, serve_state, sha256_hex, sign_headers};
use s3_resign_proxy::config::Config;
use s3_resign_proxy::{AppState, Clock};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::net::TcpListener;

const BODY: &[u8] = b"row body";

// ---------------------------------------------------------------------------
// Parts: origins, the access file, the proxy, clients.

/// A strict s3s-fs origin on 127.0.0.1:0 with its own credentials and directory.
struct Origin {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    ak: &'static str,
    sk: &'static str,
    task: tokio::task::JoinHandle<()>,
}

impl Origin {
    async fn start(ak: &'static str, sk: &'static str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let root = dir.path().to_owned();
        let task = tokio::spawn(async move {
            let _ = s3_resign_proxy::demo::serve_origin(listener, &root, ak, sk).await;
        });
        Self { addr, dir, ak, sk, task }
    }

    /// Straight to the origin with its own credentials: the ground truth.
    fn client(&self) -> Client {
        client(self.addr, self.ak, self.sk)
    }

    /// Is `bucket/key` a file in the origin's directory?
    fn holds(&self, bucket: &str, key: &str) -> bool {
        self.dir.path().join(bucket).join(key).is_file()
    }

    fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A proxy serving a `Config` built with `Config::from_vars`, with the handle
/// on its access store (for `reload`).
struct Proxy {
    addr: SocketAddr,
    access: Arc<s3_resign_proxy::access::AccessStore>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Proxy {
    async fn start(vars: Vec<(String, String)>, clock: Option<Arc<dyn Clock>>) -> Self {
        let config = Config::from_vars(vars).expect("a valid config from the access file");
        let access = config.access.clone();
        let state = match clock {
            Some(c) => AppState::with_clock(config, c),
            None => AppState::new(config),
        };
        let (addr, stop) = serve_state(state).await;
        Self { addr, access, _stop: stop }
    }

    fn client(&self, (ak, sk): (&str, &str)) -> Client {
        client(self.addr, ak, sk)
    }
}

/// The environment of a proxy configured by the access file alone: HOST,
/// PORT, ACCESS_FILE and the variables the file names.
fn file_vars(file: &Path, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v = vec![
        ("HOST".to_string(), "127.0.0.1".to_string()),
        ("PORT".to_string(), "0".to_string()),
        ("ACCESS_FILE".to_string(), file.display().to_string()),
    ];
    v.extend(extra.iter().map(|(k, val)| (k.to_string(), val.to_string())));
    v
}

/// Writes `text` to `dir/access.toml` (in place) and returns the path.
fn write_access(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("access.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// An SDK client toward `addr`, path style, without retries (a retried
/// request would blur what reached the origin).
fn client(addr: SocketAddr, ak: &str, sk: &str) -> Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(format!("http://{addr}"))
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(ak, sk, None, None, "test"))
        .force_path_style(true)
        .retry_config(RetryConfig::disabled())
        .build();
    Client::from_conf(conf)
}

/// A header-signed (SigV4) raw request head for `addr` signed with `(ak, sk)`
/// at `at`.
fn signed_head_as(
    addr: SocketAddr,
    creds: (&str, &str),
    method: &str,
    path: &str,
    body: &[u8],
    at: SystemTime,
) -> String {
    let hash = sha256_hex(body);
    let hs = sign_headers(method, &addr.to_string(), path, &[], &hash, creds, at);
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in &hs {
        head += &format!("{k}: {v}\r\n");
    }
    head + &format!("Content-Length: {}\r\nConnection: close\r\n\r\n", body.len())
}

/// A SigV4 presigned `path_and_query` for `host`, signed with `(ak, sk)` (the
/// aws-sigv4 crate, as `common::presign` but for any key).
fn presign_as((ak, sk): (&str, &str), method: &str, host: &str, path_and_query: &str) -> String {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, sign};
    let identity = Credentials::new(ak, sk, None, None, "test").into();
    let params = common::s3_signing::s3_params(
        &identity,
        "us-east-1",
        SystemTime::now(),
        common::s3_signing::Location::Query(Duration::from_secs(300)),
    );
    let uri = format!("http://{host}{path_and_query}");
    let req = SignableRequest::new(method, uri, [("host", host)].into_iter(), SignableBody::UnsignedPayload).unwrap();
    let (instr, _sig) = sign(req, &params).unwrap().into_parts();
    let (_hs, qs) = instr.into_parts();
    let mut out = path_and_query.to_string();
    for (k, v) in qs {
        out.push(if out.contains('?') { '&' } else { '?' });
        out += &format!("{k}={}", v2::enc(&v));
    }
    out
}

/// A SigV2 header-signed raw request (`resource` as it goes into the string to sign).
fn v2_head(addr: SocketAddr, (ak, sk): (&str, &str), method: &str, target: &str, resource: &str, len: usize) -> String {
    v2_head_at(addr, (ak, sk), method, target, resource, len, OffsetDateTime::now_utc())
}

fn v2_head_at(
    addr: SocketAddr,
    (ak, sk): (&str, &str),
    method: &str,
    target: &str,
    resource: &str,
    len: usize,
    at: OffsetDateTime,
) -> String {
    let date = v2::http_date(at);
    let sig = v2::sign(sk, &v2::header_string_to_sign(method, &[], &date, resource));
    format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nDate: {date}\r\nAuthorization: AWS {ak}:{sig}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    )
}

/// A SigV2 presigned GET target: `path` plus `query` (the listing parameters,
/// already encoded, which V2 leaves unsigned).
fn v2_query_target((ak, sk): (&str, &str), path: &str, query: &str) -> String {
    let expires = v2::expires_in(300);
    let sig = v2::sign(sk, &format!("GET\n\n\n{expires}\n{path}"));
    let mut t = format!("{path}?AWSAccessKeyId={ak}&Expires={expires}&Signature={}", v2::enc(&sig));
    if !query.is_empty() {
        t += "&";
        t += query;
    }
    t
}

/// A plain GET of `target` (a presigned URL's path and query).
async fn raw_get(addr: SocketAddr, target: &str) -> common::RawResponse {
    raw_exchange(addr, &format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"), b"").await
}

/// What came back: the status and the S3 error code, if any.
#[derive(Debug, Clone, Default)]
struct Got {
    status: u16,
    code: Option<String>,
    /// A HEAD response has no body, so no code to read.
    head: bool,
}

impl Got {
    fn sdk<T, E: ProvideErrorMetadata>(r: &Result<T, SdkError<E>>) -> Self {
        match r {
            // The SDK only says "2xx".
            Ok(_) => Got { status: 200, ..Got::default() },
            Err(e) => Got {
                status: e.raw_response().map_or(0, |r| r.status().as_u16()),
                code: e.code().map(str::to_string),
                head: false,
            },
        }
    }

    fn raw(r: &common::RawResponse) -> Self {
        let b = r.body_str();
        let code = b.split_once("<Code>").and_then(|(_, t)| t.split_once("</Code>")).map(|(c, _)| c.to_string());
        Got { status: r.status, code, head: false }
    }

    fn on_head(mut self) -> Self {
        self.head = true;
        self
    }

    fn show(&self) -> String {
        format!("{} {}", self.status, self.code.as_deref().unwrap_or("-"))
    }
}

fn code_is(got: &Got, code: &str) -> bool {
    got.code.as_deref() == Some(code)
}

// ---------------------------------------------------------------------------
// The table.

/// The keys of the table's access file, with their secrets.
const KEYS: &[(&str, &str)] = &[
    ("ADMINKEY", "admin-secret-from-env"),
    ("READER", "reader-secret"),
    ("LISTER", "lister-secret"),
    ("PARTNER", "partner-secret-from-env"),
    ("LOGGER", "logger-secret"),
    ("JANITOR", "janitor-secret"),
    ("BUCKETADMIN", "badmin-secret"),
    ("COPIER", "copier-secret"),
    ("WIDE", "wide-secret"),
];

/// Pseudo keys for the table: one the file does not know, one with the wrong secret.
const UNKNOWN: &str = "UNKNOWN";
const BAD_SECRET: &str = "READER(wrong secret)";

fn creds(name: &str) -> (&'static str, &'static str) {
    match name {
        UNKNOWN => ("NOSUCHKEY0000000", "whatever-secret"),
        BAD_SECRET => ("READER", "not-the-reader-secret"),
        _ => *KEYS.iter().find(|(k, _)| *k == name).unwrap_or_else(|| panic!("no key {name}")),
    }
}

const ORIGIN_AK: &str = "TABLEORIGINKEY";
const ORIGIN_SK: &str = "table-origin-secret";

/// Every bucket the table's origin holds.
const BUCKETS: &[&str] =
    &["admin-a", "data", "dst", "logs-2024", "logs-2025", "logs-x", "logsx", "other", "photos", "secret1", "src"];

fn table_toml(origin: SocketAddr) -> String {
    format!(
        r#"
[[origins]]
name = "main"
domain = "http://{origin}"
access_key = "{ORIGIN_AK}"
secret_key_env = "MAIN_ORIGIN_SECRET"
region = "us-east-1"
addressing = "path"

# No rules: may do everything (checks effects as an unscoped key).
[[keys]]
access_key = "ADMINKEY"
secret_env = "ADMIN_SECRET"

[[keys]]
access_key = "READER"
secret = "reader-secret"
allow = [ {{ bucket = "data", actions = ["read"] }} ]

[[keys]]
access_key = "LISTER"
secret = "lister-secret"
allow = [ {{ bucket = "data", actions = ["list"] }}, {{ bucket = "photos", prefix = "pub/", actions = ["list"] }} ]
deny = [ {{ bucket = "data", prefix = "keep/", actions = ["list"] }} ]

[[keys]]
access_key = "PARTNER"
secret_env = "PARTNER_SECRET"
allow = [ {{ bucket = "photos", prefix = "partner1/", actions = ["read", "write", "list"] }} ]
deny  = [ {{ bucket = "photos", prefix = "partner1/private/", actions = ["read"] }} ]

[[keys]]
access_key = "LOGGER"
secret = "logger-secret"
allow = [
  {{ bucket = "logs-*", actions = ["write", "list"] }},
  {{ bucket = "logs-202?", prefix = "old/", actions = ["delete"] }},
]

[[keys]]
access_key = "JANITOR"
secret = "janitor-secret"
allow = [ {{ bucket = "data", actions = ["read", "list", "delete"] }} ]
deny = [ {{ bucket = "data", prefix = "keep/", actions = ["delete"] }} ]

[[keys]]
access_key = "BUCKETADMIN"
secret = "badmin-secret"
allow = [ {{ bucket = "admin-*", actions = ["bucket-admin"] }} ]

[[keys]]
access_key = "COPIER"
secret = "copier-secret"
allow = [ {{ bucket = "dst", actions = ["write"] }}, {{ bucket = "src", prefix = "ok/", actions = ["read"] }} ]

[[keys]]
access_key = "WIDE"
secret = "wide-secret"
allow = [ {{ bucket = "*", actions = ["read", "write", "list", "delete", "bucket-admin"] }} ]
deny = [
  {{ bucket = "secret*", actions = ["read", "write", "list", "delete", "bucket-admin"] }},
  {{ bucket = "*", prefix = "ro/", actions = ["write", "delete"] }},
]
"#
    )
}

/// The table's world: one origin behind a relay, the proxy from the file alone.
struct Table {
    _origin: Origin,
    relay: Relay,
    proxy: Proxy,
    _dir: tempfile::TempDir,
    direct: Client,
    admin: Client,
    clients: BTreeMap<&'static str, Client>,
}

impl Table {
    async fn start() -> Self {
        let origin = Origin::start(ORIGIN_AK, ORIGIN_SK).await;
        let relay = Relay::start(origin.addr, None).await;
        let dir = tempfile::tempdir().unwrap();
        let file = write_access(dir.path(), &table_toml(relay.addr));
        // No CLIENT_* and no ORIGIN_*: the file alone is enough.
        let vars = file_vars(
            &file,
            &[
                ("MAIN_ORIGIN_SECRET", ORIGIN_SK),
                ("ADMIN_SECRET", creds("ADMINKEY").1),
                ("PARTNER_SECRET", creds("PARTNER").1),
            ],
        );
        let proxy = Proxy::start(vars, None).await;
        let direct = origin.client();
        for b in BUCKETS {
            direct.create_bucket().bucket(*b).send().await.unwrap();
        }
        let admin = proxy.client(creds("ADMINKEY"));
        let mut clients = BTreeMap::new();
        for name in KEYS.iter().map(|(k, _)| *k).chain([UNKNOWN, BAD_SECRET]) {
            clients.insert(name, proxy.client(creds(name)));
        }
        Self { _origin: origin, relay, proxy, _dir: dir, direct, admin, clients }
    }

    /// Bytes the proxy has sent toward the origin so far.
    fn mark(&self) -> usize {
        self.relay.upstream.lock().unwrap().len()
    }

    async fn put_direct(&self, b: &str, k: &str, body: &[u8]) {
        self.direct.put_object().bucket(b).key(k).body(ByteStream::from(body.to_vec())).send().await.unwrap();
    }

    async fn ensure(&self, b: &str, k: &str) {
        self.put_direct(b, k, BODY).await;
    }

    async fn absent(&self, b: &str, k: &str) {
        let _ = self.direct.delete_object().bucket(b).key(k).send().await;
        assert!(!self.exists(b, k).await, "{b}/{k} could not be removed");
    }

    async fn exists(&self, b: &str, k: &str) -> bool {
        self.direct.head_object().bucket(b).key(k).send().await.is_ok()
    }

    async fn bucket_exists(&self, b: &str) -> bool {
        self.direct.head_bucket().bucket(b).send().await.is_ok()
    }

    async fn read_direct(&self, b: &str, k: &str) -> Vec<u8> {
        let o = self.direct.get_object().bucket(b).key(k).send().await.unwrap();
        o.body.collect().await.unwrap().into_bytes().to_vec()
    }

    /// A multipart upload started at the origin (the row then uses its id).
    async fn upload_direct(&self, b: &str, k: &str) -> String {
        let r = self.direct.create_multipart_upload().bucket(b).key(k).send().await.unwrap();
        r.upload_id().unwrap().to_string()
    }

    /// s3s-fs lists the parts of an aborted upload as empty; a new part tells.
    async fn upload_alive(&self, b: &str, k: &str, id: &str) -> bool {
        let part = ByteStream::from_static(BODY);
        self.direct.upload_part().bucket(b).key(k).upload_id(id).part_number(2).body(part).send().await.is_ok()
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    /// Forwarded, and the origin's 2xx came back (with the effect done).
    Allow,
    /// Forwarded; s3s-fs does not implement it and answers 501 NotImplemented.
    AllowNi,
    /// 403 AccessDenied, nothing forwarded (and no effect).
    Deny,
    /// 403 with this code, nothing forwarded.
    Refuse(&'static str),
}

type Bk = (&'static str, &'static str);

#[derive(Debug, Clone)]
enum Op {
    Get(Bk),
    Head(Bk),
    Put(Bk),
    Delete(Bk),
    GetTagging(Bk),
    PutTagging(Bk),
    DeleteTagging(Bk),
    GetAcl(Bk),
    ListV2(&'static str, Option<&'static str>),
    ListV1(&'static str, Option<&'static str>),
    ListVersions(&'static str, Option<&'static str>),
    ListUploads(&'static str, Option<&'static str>),
    ListParts(Bk),
    CreateMpu(Bk),
    UploadPart(Bk),
    CompleteMpu(Bk),
    AbortMpu(Bk),
    /// (source, destination)
    UploadPartCopy(Bk, Bk),
    /// (source, destination)
    Copy(Bk, Bk),
    HeadBucket(&'static str),
    CreateBucket(&'static str),
    DeleteBucket(&'static str),
    Location(&'static str),
    GetVersioning(&'static str),
    PutVersioning(&'static str),
    GetBucketTagging(&'static str),
    DeleteObjects(&'static str, &'static [&'static str]),
    /// SigV4 presigned URL.
    PreGet(Bk),
    PrePut(Bk),
    /// SigV2, Authorization header.
    V2Get(Bk),
    V2Put(Bk),
    V2List(&'static str),
    /// SigV2 presigned (query).
    V2QGet(Bk),
    V2QList(&'static str, &'static str),
    /// A header-signed POST on a bucket with no sub-resource: not classifiable.
    PostBucket(&'static str),
}

struct Row {
    key: &'static str,
    op: Op,
    want: Want,
}

fn rows() -> Vec<Row> {
    use Op::*;
    use Want::*;
    let r = |key, op, want| Row { key, op, want };
    vec![
        // READER: read on the whole of `data`.
        r("READER", Get(("data", "a.txt")), Allow),
        r("READER", Head(("data", "a.txt")), Allow),
        r("READER", GetTagging(("data", "a.txt")), AllowNi),
        r("READER", GetAcl(("data", "a.txt")), AllowNi),
        r("READER", Put(("data", "reader-new.txt")), Deny),
        r("READER", Delete(("data", "reader-del.txt")), Deny),
        r("READER", PutTagging(("data", "a.txt")), Deny),
        r("READER", ListV2("data", None), Deny),
        r("READER", HeadBucket("data"), Deny),
        r("READER", Location("data"), Deny),
        r("READER", Get(("photos", "pub/x.jpg")), Deny),
        r("READER", CreateMpu(("data", "reader-mpu")), Deny),
        r("READER", PreGet(("data", "a.txt")), Allow),
        r("READER", PrePut(("data", "reader-pre.txt")), Deny),
        r("READER", V2Get(("data", "a.txt")), Allow),
        r("READER", V2Put(("data", "reader-v2.txt")), Deny),
        r("READER", V2QGet(("data", "a.txt")), Allow),
        r("READER", V2QGet(("photos", "pub/x.jpg")), Deny),
        // LISTER: list on `data` (but not under keep/), list on photos/pub/.
        r("LISTER", ListV2("data", None), Allow),
        r("LISTER", ListV1("data", Some("tmp/")), Allow),
        r("LISTER", ListV2("data", Some("kee")), Allow),
        r("LISTER", ListV1("data", Some("keep/")), Deny),
        r("LISTER", ListV2("data", Some("keep/sub")), Deny),
        r("LISTER", ListV2("photos", Some("pub/")), Allow),
        r("LISTER", ListV2("photos", Some("pub/sub/")), Allow),
        r("LISTER", ListV2("photos", Some("pu")), Deny),
        r("LISTER", ListV2("photos", None), Deny),
        r("LISTER", ListV1("photos", Some("other/")), Deny),
        r("LISTER", ListVersions("data", None), AllowNi),
        r("LISTER", ListVersions("photos", Some("pub/")), AllowNi),
        r("LISTER", ListVersions("photos", Some("x/")), Deny),
        r("LISTER", ListUploads("data", None), AllowNi),
        r("LISTER", ListUploads("photos", Some("pub/a")), AllowNi),
        r("LISTER", ListUploads("photos", None), Deny),
        r("LISTER", HeadBucket("data"), Allow),
        r("LISTER", HeadBucket("photos"), Deny),
        r("LISTER", Get(("data", "a.txt")), Deny),
        r("LISTER", Location("data"), Deny),
        r("LISTER", V2List("data"), Allow),
        r("LISTER", V2QList("photos", "prefix=pub%2F"), Allow),
        r("LISTER", V2QList("photos", "prefix=other%2F"), Deny),
        // PARTNER: read/write/list under photos/partner1/, no read under partner1/private/.
        r("PARTNER", Get(("photos", "partner1/p.txt")), Allow),
        r("PARTNER", Get(("photos", "partner1/private/s.txt")), Deny),
        r("PARTNER", Head(("photos", "partner1/private/s.txt")), Deny),
        r("PARTNER", Put(("photos", "partner1/private/up.txt")), Allow),
        r("PARTNER", Put(("photos", "partner1/new.txt")), Allow),
        r("PARTNER", Put(("photos", "partner2/new.txt")), Deny),
        r("PARTNER", Put(("photos", "partner1.txt")), Deny),
        r("PARTNER", Get(("photos", "pub/x.jpg")), Deny),
        r("PARTNER", Delete(("photos", "partner1/d.txt")), Deny),
        r("PARTNER", ListV2("photos", Some("partner1/")), Allow),
        r("PARTNER", ListV2("photos", Some("partner1/private/")), Allow),
        r("PARTNER", ListV2("photos", None), Deny),
        r("PARTNER", ListParts(("photos", "partner1/lp")), Allow),
        r("PARTNER", ListParts(("photos", "other/lp")), Deny),
        r("PARTNER", CreateMpu(("photos", "partner1/mpu")), Allow),
        r("PARTNER", UploadPart(("photos", "partner1/up")), Allow),
        r("PARTNER", CompleteMpu(("photos", "partner1/done")), Allow),
        r("PARTNER", AbortMpu(("photos", "partner1/abort")), Allow),
        r("PARTNER", CreateMpu(("photos", "other/mpu")), Deny),
        r("PARTNER", UploadPart(("photos", "other/up")), Deny),
        r("PARTNER", CompleteMpu(("photos", "other/done")), Deny),
        r("PARTNER", AbortMpu(("photos", "other/abort")), Deny),
        r("PARTNER", PutTagging(("photos", "partner1/p.txt")), AllowNi),
        r("PARTNER", DeleteTagging(("photos", "partner1/p.txt")), AllowNi),
        r("PARTNER", GetTagging(("photos", "partner1/p.txt")), AllowNi),
        r("PARTNER", GetTagging(("photos", "partner1/private/s.txt")), Deny),
        r("PARTNER", HeadBucket("photos"), Deny),
        r("PARTNER", GetVersioning("photos"), Deny),
        r("PARTNER", PreGet(("photos", "partner1/p.txt")), Allow),
        r("PARTNER", PreGet(("photos", "partner1/private/s.txt")), Deny),
        r("PARTNER", PrePut(("photos", "partner1/pre.txt")), Allow),
        r("PARTNER", PrePut(("photos", "other/pre.txt")), Deny),
        r("PARTNER", V2Put(("photos", "partner1/v2.txt")), Allow),
        r("PARTNER", V2Get(("photos", "partner1/private/s.txt")), Deny),
        r("PARTNER", V2QGet(("photos", "partner1/private/s.txt")), Deny),
        r("PARTNER", V2QGet(("photos", "partner1/p.txt")), Allow),
        // LOGGER: write and list on logs-*, delete under old/ on logs-202?.
        r("LOGGER", Put(("logs-2024", "app.log")), Allow),
        r("LOGGER", Put(("logs-x", "app.log")), Allow),
        r("LOGGER", Put(("logsx", "app.log")), Deny),
        r("LOGGER", Get(("logs-2024", "seen.log")), Deny),
        r("LOGGER", ListV2("logs-2025", None), Allow),
        r("LOGGER", ListV2("logsx", None), Deny),
        r("LOGGER", Delete(("logs-2024", "old/1.log")), Allow),
        r("LOGGER", Delete(("logs-2025", "old/1.log")), Allow),
        r("LOGGER", Delete(("logs-2024", "new/1.log")), Deny),
        r("LOGGER", Delete(("logs-x", "old/1.log")), Deny),
        r("LOGGER", DeleteObjects("logs-2024", &["old/a.log", "old/b.log"]), Allow),
        r("LOGGER", DeleteObjects("logs-2024", &["old/c.log", "new/d.log"]), Deny),
        r("LOGGER", CreateBucket("logs-new"), Deny),
        // JANITOR: read, list, delete on data, except delete under keep/.
        r("JANITOR", Delete(("data", "tmp/1")), Allow),
        r("JANITOR", Delete(("data", "keep/1")), Deny),
        r("JANITOR", DeleteObjects("data", &["tmp/2", "tmp/3"]), Allow),
        r("JANITOR", DeleteObjects("data", &["tmp/4", "keep/2", "tmp/5"]), Deny),
        r("JANITOR", DeleteTagging(("data", "a.txt")), Deny),
        r("JANITOR", Put(("data", "janitor.txt")), Deny),
        // BUCKETADMIN: bucket-admin on admin-*.
        r("BUCKETADMIN", CreateBucket("admin-new"), Allow),
        r("BUCKETADMIN", DeleteBucket("admin-gone"), Allow),
        r("BUCKETADMIN", Location("admin-a"), Allow),
        r("BUCKETADMIN", GetVersioning("admin-a"), AllowNi),
        r("BUCKETADMIN", PutVersioning("admin-a"), AllowNi),
        r("BUCKETADMIN", GetBucketTagging("admin-a"), AllowNi),
        r("BUCKETADMIN", HeadBucket("admin-a"), Deny),
        r("BUCKETADMIN", ListV2("admin-a", None), Deny),
        r("BUCKETADMIN", CreateBucket("data2"), Deny),
        r("BUCKETADMIN", DeleteBucket("other-gone"), Deny),
        r("BUCKETADMIN", Location("data"), Deny),
        r("BUCKETADMIN", Get(("admin-a", "x")), Deny),
        r("BUCKETADMIN", Put(("admin-a", "x")), Deny),
        // COPIER: write on dst, read on src/ok/.
        r("COPIER", Copy(("src", "ok/a"), ("dst", "c1")), Allow),
        r("COPIER", Copy(("src", "no/b"), ("dst", "c2")), Deny),
        r("COPIER", Copy(("src", "ok/a"), ("src", "ok/c3")), Deny),
        r("COPIER", UploadPartCopy(("src", "ok/a"), ("dst", "mpc1")), Allow),
        r("COPIER", UploadPartCopy(("src", "no/b"), ("dst", "mpc2")), Deny),
        r("COPIER", Get(("src", "ok/a")), Allow),
        r("COPIER", Get(("dst", "c1")), Deny),
        // WIDE: everything on *, nothing on secret*, no write/delete under ro/.
        r("WIDE", Get(("other", "o.txt")), Allow),
        r("WIDE", Get(("secret1", "s")), Deny),
        r("WIDE", ListV2("secret1", None), Deny),
        r("WIDE", HeadBucket("secret1"), Deny),
        r("WIDE", Location("secret1"), Deny),
        r("WIDE", Location("other"), Allow),
        r("WIDE", HeadBucket("other"), Allow),
        r("WIDE", Put(("other", "ro/x")), Deny),
        r("WIDE", Put(("other", "rw/x")), Allow),
        r("WIDE", Delete(("other", "ro/y")), Deny),
        r("WIDE", Get(("other", "ro/z")), Allow),
        r("WIDE", Copy(("secret1", "s"), ("other", "copied1")), Deny),
        r("WIDE", Copy(("other", "o.txt"), ("secret1", "copied2")), Deny),
        r("WIDE", Copy(("other", "o.txt"), ("other", "copied3")), Allow),
        r("WIDE", DeleteObjects("other", &["rw/1", "ro/2"]), Deny),
        r("WIDE", PostBucket("other"), Deny),
        // The unscoped key may do everything.
        r("ADMINKEY", Get(("secret1", "s")), Allow),
        r("ADMINKEY", Put(("secret1", "admin.txt")), Allow),
        r("ADMINKEY", CreateBucket("admin-made"), Allow),
        r("ADMINKEY", ListVersions("secret1", None), AllowNi),
        // Unknown key and wrong secret keep their own codes.
        r(UNKNOWN, Get(("data", "a.txt")), Refuse("InvalidAccessKeyId")),
        r(UNKNOWN, V2Get(("data", "a.txt")), Refuse("InvalidAccessKeyId")),
        r(UNKNOWN, PreGet(("data", "a.txt")), Refuse("InvalidAccessKeyId")),
        r(BAD_SECRET, Get(("data", "a.txt")), Refuse("SignatureDoesNotMatch")),
        r(BAD_SECRET, V2Get(("data", "a.txt")), Refuse("SignatureDoesNotMatch")),
        r(BAD_SECRET, V2QGet(("data", "a.txt")), Refuse("SignatureDoesNotMatch")),
        r(BAD_SECRET, PreGet(("data", "a.txt")), Refuse("SignatureDoesNotMatch")),
        // Last: s3s-fs deletes a bucket with its objects, which would spoil
        // the rows on `data` if this were wrongly allowed.
        r("JANITOR", DeleteBucket("data"), Deny),
    ]
}

/// A row's result: what came back, whether anything reached the origin, and
/// whether the effect (object stored, deleted, copied...) matches the want.
struct Outcome {
    got: Got,
    forwarded: bool,
    effect: Result<(), String>,
}

fn expect(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

async fn run_row(t: &Table, row: &Row) -> Outcome {
    let c = &t.clients[row.key];
    let creds = creds(row.key);
    let allow = matches!(row.want, Want::Allow);
    let addr = t.proxy.addr;
    let host = addr.to_string();
    let mut effect = Ok(());
    // Setup and effect checks go straight to the origin (not through the
    // relay), so the marks count only what the proxy forwards for the row.
    let before;
    let mut sent = None;
    let got = match row.op {
        Op::Get((b, k)) => {
            t.ensure(b, k).await;
            before = t.mark();
            match c.get_object().bucket(b).key(k).send().await {
                Ok(o) => {
                    let body = o.body.collect().await.map(|b| b.into_bytes().to_vec()).unwrap_or_default();
                    effect = expect(body == BODY, || format!("body {body:?}"));
                    Got { status: 200, ..Got::default() }
                }
                e => Got::sdk(&e),
            }
        }
        Op::Head((b, k)) => {
            t.ensure(b, k).await;
            before = t.mark();
            Got::sdk(&c.head_object().bucket(b).key(k).send().await).on_head()
        }
        Op::Put((b, k)) => {
            t.absent(b, k).await;
            before = t.mark();
            let g = Got::sdk(&c.put_object().bucket(b).key(k).body(ByteStream::from_static(BODY)).send().await);
            let stored = t.exists(b, k).await;
            effect = expect(stored == allow, || format!("stored: {stored}"));
            g
        }
        Op::Delete((b, k)) => {
            t.ensure(b, k).await;
            before = t.mark();
            let g = Got::sdk(&c.delete_object().bucket(b).key(k).send().await);
            let still = t.exists(b, k).await;
            effect = expect(still != allow, || format!("still there: {still}"));
            g
        }
        Op::GetTagging((b, k)) => {
            t.ensure(b, k).await;
            before = t.mark();
            Got::sdk(&c.get_object_tagging().bucket(b).key(k).send().await)
        }
        Op::PutTagging((b, k)) => {
            t.ensure(b, k).await;
            before = t.mark();
            let tagging = Tagging::builder().tag_set(Tag::builder().key("t").value("v").build().unwrap()).build();
            Got::sdk(&c.put_object_tagging().bucket(b).key(k).tagging(tagging.unwrap()).send().await)
        }
        Op::DeleteTagging((b, k)) => {
            t.ensure(b, k).await;
            before = t.mark();
            Got::sdk(&c.delete_object_tagging().bucket(b).key(k).send().await)
        }
        Op::GetAcl((b, k)) => {
            t.ensure(b, k).await;
            before = t.mark();
            Got::sdk(&c.get_object_acl().bucket(b).key(k).send().await)
        }
        Op::ListV2(b, p) => {
            before = t.mark();
            Got::sdk(&c.list_objects_v2().bucket(b).set_prefix(p.map(str::to_string)).send().await)
        }
        Op::ListV1(b, p) => {
            before = t.mark();
            Got::sdk(&c.list_objects().bucket(b).set_prefix(p.map(str::to_string)).send().await)
        }
        Op::ListVersions(b, p) => {
            before = t.mark();
            Got::sdk(&c.list_object_versions().bucket(b).set_prefix(p.map(str::to_string)).send().await)
        }
        Op::ListUploads(b, p) => {
            before = t.mark();
            Got::sdk(&c.list_multipart_uploads().bucket(b).set_prefix(p.map(str::to_string)).send().await)
        }
        Op::ListParts((b, k)) => {
            let id = t.upload_direct(b, k).await;
            before = t.mark();
            Got::sdk(&c.list_parts().bucket(b).key(k).upload_id(id).send().await)
        }
        Op::CreateMpu((b, k)) => {
            before = t.mark();
            Got::sdk(&c.create_multipart_upload().bucket(b).key(k).send().await)
        }
        Op::UploadPart((b, k)) => {
            let id = t.upload_direct(b, k).await;
            before = t.mark();
            let r = c
                .upload_part()
                .bucket(b)
                .key(k)
                .upload_id(&id)
                .part_number(1)
                .body(ByteStream::from_static(BODY))
                .send()
                .await;
            let g = Got::sdk(&r);
            let parts = t.direct.list_parts().bucket(b).key(k).upload_id(&id).send().await.unwrap();
            let n = parts.parts().len();
            effect = expect((n == 1) == allow, || format!("parts at the origin: {n}"));
            g
        }
        Op::CompleteMpu((b, k)) => {
            t.absent(b, k).await;
            let id = t.upload_direct(b, k).await;
            let part = t
                .direct
                .upload_part()
                .bucket(b)
                .key(k)
                .upload_id(&id)
                .part_number(1)
                .body(ByteStream::from_static(BODY))
                .send()
                .await
                .unwrap();
            let done = CompletedMultipartUpload::builder()
                .parts(CompletedPart::builder().part_number(1).e_tag(part.e_tag().unwrap_or_default()).build())
                .build();
            before = t.mark();
            let g = Got::sdk(
                &c.complete_multipart_upload().bucket(b).key(k).upload_id(id).multipart_upload(done).send().await,
            );
            let stored = t.exists(b, k).await;
            effect = expect(stored == allow, || format!("completed object stored: {stored}"));
            g
        }
        Op::AbortMpu((b, k)) => {
            let id = t.upload_direct(b, k).await;
            before = t.mark();
            let g = Got::sdk(&c.abort_multipart_upload().bucket(b).key(k).upload_id(&id).send().await);
            let alive = t.upload_alive(b, k, &id).await;
            effect = expect(alive != allow, || format!("upload still alive: {alive}"));
            g
        }
        Op::UploadPartCopy((sb, sk), (b, k)) => {
            t.ensure(sb, sk).await;
            let id = t.upload_direct(b, k).await;
            before = t.mark();
            let r = c
                .upload_part_copy()
                .bucket(b)
                .key(k)
                .upload_id(&id)
                .part_number(1)
                .copy_source(format!("{sb}/{sk}"))
                .send()
                .await;
            let g = Got::sdk(&r);
            let parts = t.direct.list_parts().bucket(b).key(k).upload_id(&id).send().await.unwrap();
            let n = parts.parts().len();
            effect = expect((n == 1) == allow, || format!("parts at the origin: {n}"));
            g
        }
        Op::Copy((sb, sk), (b, k)) => {
            t.put_direct(sb, sk, format!("copy of {sb}/{sk}").as_bytes()).await;
            t.absent(b, k).await;
            before = t.mark();
            let g = Got::sdk(&c.copy_object().bucket(b).key(k).copy_source(format!("{sb}/{sk}")).send().await);
            if allow {
                let got = if t.exists(b, k).await { t.read_direct(b, k).await } else { Vec::new() };
                let want = format!("copy of {sb}/{sk}");
                effect =
                    expect(got == want.as_bytes(), || format!("destination holds {:?}", String::from_utf8_lossy(&got)));
            } else {
                let made = t.exists(b, k).await;
                effect = expect(!made, || "a denied copy created the destination".to_string());
            }
            g
        }
        Op::HeadBucket(b) => {
            before = t.mark();
            Got::sdk(&c.head_bucket().bucket(b).send().await).on_head()
        }
        Op::CreateBucket(b) => {
            let _ = t.direct.delete_bucket().bucket(b).send().await;
            before = t.mark();
            let g = Got::sdk(&c.create_bucket().bucket(b).send().await);
            let made = t.bucket_exists(b).await;
            effect = expect(made == allow, || format!("bucket exists: {made}"));
            g
        }
        Op::DeleteBucket(b) => {
            // The bucket may be there already (and hold objects: `data`).
            let _ = t.direct.create_bucket().bucket(b).send().await;
            before = t.mark();
            let g = Got::sdk(&c.delete_bucket().bucket(b).send().await);
            let still = t.bucket_exists(b).await;
            effect = expect(still != allow, || format!("bucket still exists: {still}"));
            g
        }
        Op::Location(b) => {
            before = t.mark();
            Got::sdk(&c.get_bucket_location().bucket(b).send().await)
        }
        Op::GetVersioning(b) => {
            before = t.mark();
            Got::sdk(&c.get_bucket_versioning().bucket(b).send().await)
        }
        Op::PutVersioning(b) => {
            before = t.mark();
            let conf = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
            Got::sdk(&c.put_bucket_versioning().bucket(b).versioning_configuration(conf).send().await)
        }
        Op::GetBucketTagging(b) => {
            before = t.mark();
            Got::sdk(&c.get_bucket_tagging().bucket(b).send().await)
        }
        Op::DeleteObjects(b, keys) => {
            for k in keys {
                t.ensure(b, k).await;
            }
            before = t.mark();
            let objects: Vec<ObjectIdentifier> =
                keys.iter().map(|k| ObjectIdentifier::builder().key(*k).build().unwrap()).collect();
            let del = Delete::builder().set_objects(Some(objects)).build().unwrap();
            let g = Got::sdk(&c.delete_objects().bucket(b).delete(del).send().await);
            // Checked through the proxy with the unscoped key, as a user would:
            // what the row forwarded is counted before that.
            sent = Some(t.mark());
            let mut left = Vec::new();
            for k in keys {
                if t.admin.head_object().bucket(b).key(*k).send().await.is_ok() {
                    left.push(*k);
                }
            }
            effect = if allow {
                expect(left.is_empty(), || format!("not deleted: {left:?}"))
            } else {
                expect(left.len() == keys.len(), || format!("only {left:?} left: a refused batch deleted some"))
            };
            g
        }
        Op::PreGet((b, k)) => {
            t.ensure(b, k).await;
            let target = presign_as(creds, "GET", &host, &format!("/{b}/{k}"));
            before = t.mark();
            let r = raw_get(addr, &target).await;
            if r.status == 200 {
                effect = expect(r.body == BODY, || format!("body {:?}", r.body_str()));
            }
            Got::raw(&r)
        }
        Op::PrePut((b, k)) => {
            t.absent(b, k).await;
            let target = presign_as(creds, "PUT", &host, &format!("/{b}/{k}"));
            before = t.mark();
            let head = format!(
                "PUT {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                BODY.len()
            );
            let g = Got::raw(&raw_exchange(addr, &head, BODY).await);
            let stored = t.exists(b, k).await;
            effect = expect(stored == allow, || format!("stored: {stored}"));
            g
        }
        Op::V2Get((b, k)) => {
            t.ensure(b, k).await;
            let path = format!("/{b}/{k}");
            before = t.mark();
            let r = raw_exchange(addr, &v2_head(addr, creds, "GET", &path, &path, 0), b"").await;
            if r.status == 200 {
                effect = expect(r.body == BODY, || format!("body {:?}", r.body_str()));
            }
            Got::raw(&r)
        }
        Op::V2Put((b, k)) => {
            t.absent(b, k).await;
            let path = format!("/{b}/{k}");
            before = t.mark();
            let g = Got::raw(&raw_exchange(addr, &v2_head(addr, creds, "PUT", &path, &path, BODY.len()), BODY).await);
            let stored = t.exists(b, k).await;
            effect = expect(stored == allow, || format!("stored: {stored}"));
            g
        }
        Op::V2List(b) => {
            let path = format!("/{b}");
            before = t.mark();
            Got::raw(&raw_exchange(addr, &v2_head(addr, creds, "GET", &path, &path, 0), b"").await)
        }
        Op::V2QGet((b, k)) => {
            t.ensure(b, k).await;
            let target = v2_query_target(creds, &format!("/{b}/{k}"), "");
            before = t.mark();
            let r = raw_get(addr, &target).await;
            if r.status == 200 {
                effect = expect(r.body == BODY, || format!("body {:?}", r.body_str()));
            }
            Got::raw(&r)
        }
        Op::V2QList(b, query) => {
            let target = v2_query_target(creds, &format!("/{b}"), query);
            before = t.mark();
            Got::raw(&raw_get(addr, &target).await)
        }
        Op::PostBucket(b) => {
            before = t.mark();
            let head = signed_head_as(addr, creds, "POST", &format!("/{b}"), b"", SystemTime::now());
            Got::raw(&raw_exchange(addr, &head, b"").await)
        }
    };
    // What the proxy forwarded happened before its answer came back.
    let forwarded = sent.unwrap_or_else(|| t.mark()) > before;
    Outcome { got, forwarded, effect }
}

/// Does `o` satisfy `want`? `Err` says how it does not.
fn judge(want: Want, o: &Outcome) -> Result<(), String> {
    let g = &o.got;
    match want {
        Want::Allow => {
            expect((200..300).contains(&g.status), || format!("wanted 2xx, got {}", g.show()))?;
            expect(o.forwarded, || "answered 2xx but nothing reached the origin".to_string())?;
        }
        Want::AllowNi => {
            expect(g.status == 501 && code_is(g, "NotImplemented"), || {
                format!("wanted the origin's 501 NotImplemented, got {}", g.show())
            })?;
            expect(o.forwarded, || "nothing reached the origin".to_string())?;
        }
        Want::Deny | Want::Refuse(_) => {
            let code = if let Want::Refuse(c) = want { c } else { "AccessDenied" };
            // A HEAD answer has no body to carry the code.
            expect(g.status == 403 && (g.head || code_is(g, code)), || format!("wanted 403 {code}, got {}", g.show()))?;
            expect(!o.forwarded, || "refused, yet the request reached the origin".to_string())?;
        }
    }
    o.effect.clone().map_err(|e| format!("effect: {e}"))
}

/// Issue 15's table: every action, bucket globs, prefix rules, deny over
/// allow, lists with a `prefix` inside and outside a rule, multipart, object
/// and bucket sub-resources, DeleteObjects, CopyObject, presigned URLs and
/// SigV2, unknown key and wrong secret. Every row also checks what reached the
/// origin (a relay records it) and the effect on the origin's state.
#[tokio::test]
async fn access_table() {
    let t = Table::start().await;
    let rows = rows();
    assert!(rows.len() >= 80, "the issue asks for at least 80 rows, have {}", rows.len());
    let mut table = String::new();
    let mut failed = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let o = run_row(&t, row).await;
        let verdict = judge(row.want, &o);
        let _ = writeln!(
            table,
            "{:>3} {} {:<22} {:<62} want {:<32} got {:<34} fwd {:<5} {}",
            i + 1,
            if verdict.is_ok() { "ok  " } else { "FAIL" },
            row.key,
            format!("{:?}", row.op),
            format!("{:?}", row.want),
            o.got.show(),
            o.forwarded,
            verdict.as_ref().err().map_or("", String::as_str)
        );
        if verdict.is_err() {
            failed.push(i + 1);
        }
    }
    println!("{table}");
    assert!(failed.is_empty(), "{} of {} rows failed: {failed:?}\n{table}", failed.len(), rows.len());

    // Every request that reached the origin was signed with the origin's key,
    // and no client key or secret travelled there.
    let heads = common::seen_heads(&t.relay);
    assert!(heads.len() > 50, "the relay saw {} requests", heads.len());
    for h in &heads {
        let auth = h.header("authorization").unwrap_or("");
        assert!(auth.contains(&format!("Credential={ORIGIN_AK}/")), "{} {}: {auth}", h.method, h.target);
    }
    let upstream = String::from_utf8_lossy(&t.relay.upstream.lock().unwrap()).into_owned();
    for (k, secret) in KEYS {
        assert!(
            !upstream.contains(&format!("{k}:")) && !upstream.contains(&format!("={k}/")),
            "{k} reached the origin"
        );
        assert!(!upstream.contains(secret), "the secret of {k} reached the origin");
    }
}

// ---------------------------------------------------------------------------
// ListBuckets.

async fn bucket_names(c: &Client) -> Result<Vec<String>, String> {
    let r = c.list_buckets().send().await.map_err(|e| format!("{:?} {:?}", e.code(), e.message()))?;
    Ok(r.buckets().iter().filter_map(|b| b.name().map(str::to_string)).collect())
}

/// ListBuckets answers with the buckets the key may list: an
/// empty list (200) for a key that may list nothing, exactly the listable
/// buckets otherwise; a prefix deny does not hide a bucket, a whole-bucket
/// list deny does.
#[tokio::test]
async fn list_buckets_shows_what_each_key_may_list() {
    let t = Table::start().await;
    let all: Vec<&str> = BUCKETS.to_vec();
    let wide: Vec<&str> = BUCKETS.iter().copied().filter(|b| *b != "secret1").collect();
    let cases: &[(&str, Vec<&str>)] = &[
        ("READER", vec![]),
        ("BUCKETADMIN", vec![]),
        ("COPIER", vec![]),
        ("LISTER", vec!["data", "photos"]),
        ("PARTNER", vec!["photos"]),
        ("LOGGER", vec!["logs-2024", "logs-2025", "logs-x"]),
        ("JANITOR", vec!["data"]),
        ("WIDE", wide),
        ("ADMINKEY", all),
    ];
    let mut bad = Vec::new();
    for (key, want) in cases {
        // A scoped key's list is filtered and rendered by the proxy, sorted by
        // name. The unscoped key's ListBuckets at a single origin is forwarded
        // as is, in the origin's order (s3s-fs: directory order), so only its
        // names are compared.
        let exact = |got: &Vec<String>| {
            let mut g = got.clone();
            if *key == "ADMINKEY" {
                g.sort();
            }
            g == *want
        };
        match bucket_names(&t.clients[key]).await {
            Ok(got) if exact(&got) => {}
            Ok(got) => bad.push(format!("{key}: want {want:?}, got {got:?}")),
            Err(e) => bad.push(format!("{key}: want {want:?}, got an error {e}")),
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));

    // The empty list on the wire: 200 and a ListAllMyBucketsResult with no bucket.
    let addr = t.proxy.addr;
    let r = raw_exchange(addr, &signed_head_as(addr, creds("READER"), "GET", "/", b"", SystemTime::now()), b"").await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    let body = r.body_str();
    assert!(body.contains("<ListAllMyBucketsResult") && !body.contains("<Bucket>"), "{body}");
    // Unknown key and wrong secret are still refused on ListBuckets.
    let r = raw_exchange(addr, &signed_head_as(addr, creds(UNKNOWN), "GET", "/", b"", SystemTime::now()), b"").await;
    assert!(r.status == 403 && r.body_str().contains("<Code>InvalidAccessKeyId</Code>"), "{}", r.body_str());
    let r = raw_exchange(addr, &signed_head_as(addr, creds(BAD_SECRET), "GET", "/", b"", SystemTime::now()), b"").await;
    assert!(r.status == 403 && r.body_str().contains("<Code>SignatureDoesNotMatch</Code>"), "{}", r.body_str());
}

// ---------------------------------------------------------------------------
// Two origins.

const A_AK: &str = "ORIGINAKEY";
const A_SK: &str = "origin-a-secret";
const B_AK: &str = "ORIGINBKEY";
const B_SK: &str = "origin-b-secret";
const MULTI: (&str, &str) = ("MULTIKEY", "multi-secret");

fn two_origins_toml(a: SocketAddr, b: SocketAddr) -> String {
    format!(
        r#"
[[origins]]
name = "a"
domain = "http://{a}"
access_key = "{A_AK}"
secret_key_env = "ORIGIN_A_SECRET"
default = true

[[origins]]
name = "b"
domain = "http://{b}"
access_key = "{B_AK}"
secret_key = "{B_SK}"
region = "eu-west-1"
addressing = "path"

[[buckets]]
name = "alpha*"
origin = "a"

[[buckets]]
name = "beta*"
origin = "b"

[[keys]]
access_key = "{}"
secret = "{}"
allow = [
  {{ bucket = "alpha*", actions = ["read", "write", "list", "delete", "bucket-admin"] }},
  {{ bucket = "beta*", actions = ["read", "write", "list", "delete", "bucket-admin"] }},
]
"#,
        MULTI.0, MULTI.1
    )
}

/// Two s3s-fs origins with different credentials behind one proxy: one client
/// key creates, writes and reads buckets on both; each object lands at the
/// origin its bucket routes to and only there; ListBuckets merges both and
/// lists a bucket only from the origin it routes to.
#[tokio::test]
async fn two_origins_behind_one_proxy() {
    let a = Origin::start(A_AK, A_SK).await;
    let b = Origin::start(B_AK, B_SK).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_access(dir.path(), &two_origins_toml(a.addr, b.addr));
    let proxy = Proxy::start(file_vars(&file, &[("ORIGIN_A_SECRET", A_SK)]), None).await;
    let c = proxy.client(MULTI);

    for bucket in ["alpha1", "beta1"] {
        c.create_bucket().bucket(bucket).send().await.unwrap_or_else(|e| panic!("create {bucket}: {e:?}"));
    }
    assert!(a.dir.path().join("alpha1").is_dir() && !b.dir.path().join("alpha1").exists(), "alpha1 lives on a only");
    assert!(b.dir.path().join("beta1").is_dir() && !a.dir.path().join("beta1").exists(), "beta1 lives on b only");

    for (bucket, key, body) in [("alpha1", "dir/x.txt", "on a"), ("beta1", "dir/y.txt", "on b")] {
        c.put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(body.as_bytes().to_vec()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {bucket}/{key}: {e:?}"));
        let o = c.get_object().bucket(bucket).key(key).send().await.unwrap();
        assert_eq!(o.body.collect().await.unwrap().into_bytes().as_ref(), body.as_bytes());
        let listed = c.list_objects_v2().bucket(bucket).send().await.unwrap();
        let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(keys, [key]);
    }
    assert!(a.holds("alpha1", "dir/x.txt") && !b.holds("alpha1", "dir/x.txt"), "x.txt is on a only");
    assert!(b.holds("beta1", "dir/y.txt") && !a.holds("beta1", "dir/y.txt"), "y.txt is on b only");
    // Ground truth, with each origin's own key.
    assert_eq!(a.client().list_buckets().send().await.unwrap().buckets().len(), 1);
    assert_eq!(b.client().list_buckets().send().await.unwrap().buckets().len(), 1);

    // Strays: a bucket at an origin it does not route to is not listed; an
    // unrouted bucket at the default origin (a) is, for a key that may list it.
    a.client().create_bucket().bucket("beta-stray").send().await.unwrap();
    b.client().create_bucket().bucket("alpha-stray").send().await.unwrap();
    b.client().create_bucket().bucket("zeta").send().await.unwrap();
    a.client().create_bucket().bucket("gamma").send().await.unwrap();
    assert_eq!(bucket_names(&c).await.unwrap(), ["alpha1", "beta1"]);

    // With the env key too (no rules: it may list everything it can reach).
    let mut vars = file_vars(&file, &[("ORIGIN_A_SECRET", A_SK)]);
    vars.push(("CLIENT_ACCESS_KEY".into(), common::CAK.into()));
    vars.push(("CLIENT_SECRET_KEY".into(), common::CSK.into()));
    let p2 = Proxy::start(vars, None).await;
    let env = p2.client((common::CAK, common::CSK));
    assert_eq!(bucket_names(&env).await.unwrap(), ["alpha1", "beta1", "gamma"]);
    let o = env.get_object().bucket("beta1").key("dir/y.txt").send().await.unwrap();
    assert_eq!(o.body.collect().await.unwrap().into_bytes().as_ref(), b"on b");
    // The default origin takes what no route names.
    env.put_object().bucket("gamma").key("g").body(ByteStream::from_static(b"g")).send().await.unwrap();
    assert!(a.holds("gamma", "g") && !b.holds("gamma", "g"));
}

/// /healthz with several origins: the top level is the default origin, and
/// each origin is reported under `origins`.
#[tokio::test]
async fn healthz_reports_each_origin() {
    let a = Origin::start(A_AK, A_SK).await;
    let b = Origin::start(B_AK, B_SK).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write_access(dir.path(), &two_origins_toml(a.addr, b.addr));
    let proxy = Proxy::start(file_vars(&file, &[("ORIGIN_A_SECRET", A_SK), ("HEALTH_CACHE_MS", "0")]), None).await;
    let get = || async {
        let r = raw_exchange(proxy.addr, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"").await;
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body_str()));
        (r.status, v)
    };
    let (status, v) = get().await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["status"], "ok", "{v}");
    assert_eq!(v["origins"]["a"]["status"], "ok", "{v}");
    assert_eq!(v["origins"]["b"]["status"], "ok", "{v}");

    b.stop();
    let (status, v) = get().await;
    assert_eq!(status, 200, "the default origin is up: {v}");
    assert_eq!(v["origins"]["b"]["status"], "nok", "{v}");
    assert_eq!(v["origins"]["b"]["origin_status"], serde_json::Value::Null, "{v}");

    a.stop();
    let (status, v) = get().await;
    assert_eq!(status, 450, "the default origin is down: {v}");
    assert_eq!(v["status"], "nok", "{v}");
}

// ---------------------------------------------------------------------------
// Rotation.

const ROT_NEW: &str = "rot-new-secret";
const ROT_OLD: &str = "rot-old-secret";

fn rotation_toml(origin: SocketAddr, expires: &str) -> String {
    format!(
        r#"
[[origins]]
name = "o"
domain = "http://{origin}"
access_key = "ROTORIGINKEY"
secret_key = "rot-origin-secret"

[[keys]]
access_key = "ROTKEY"
secret = "{ROT_NEW}"
previous_secret_env = "ROT_PREVIOUS"
previous_secret_expires = "{expires}"
allow = [ {{ bucket = "rot", actions = ["read", "list"] }} ]
"#
    )
}

/// Status and code of `GET /rot/k` signed with `secret` at `at`, SigV4 header
/// and SigV2 header.
async fn rot_get(addr: SocketAddr, secret: &str, at: SystemTime) -> [(u16, Option<String>); 2] {
    let r4 = raw_exchange(addr, &signed_head_as(addr, ("ROTKEY", secret), "GET", "/rot/k", b"", at), b"").await;
    let at2 = OffsetDateTime::from(at);
    let r2 = raw_exchange(addr, &v2_head_at(addr, ("ROTKEY", secret), "GET", "/rot/k", "/rot/k", 0, at2), b"").await;
    let g4 = Got::raw(&r4);
    let g2 = Got::raw(&r2);
    [(g4.status, g4.code), (g2.status, g2.code)]
}

/// `previous_secret` works until `previous_secret_expires`, compared with the
/// proxy's clock; after it the old secret is SignatureDoesNotMatch and the new
/// one still works.
#[tokio::test]
async fn rotation_window_follows_the_proxy_clock() {
    let o = Origin::start("ROTORIGINKEY", "rot-origin-secret").await;
    o.client().create_bucket().bucket("rot").send().await.unwrap();
    o.client().put_object().bucket("rot").key("k").body(ByteStream::from_static(b"rot")).send().await.unwrap();
    let ok = || [(200u16, None::<String>), (200, None)];
    let refused =
        || [(403u16, Some("SignatureDoesNotMatch".to_string())), (403, Some("SignatureDoesNotMatch".to_string()))];

    // Expiry five minutes from now.
    let dir = tempfile::tempdir().unwrap();
    let soon = (OffsetDateTime::now_utc() + time::Duration::minutes(5)).format(&Rfc3339).unwrap();
    let file = write_access(dir.path(), &rotation_toml(o.addr, &soon));
    let vars = file_vars(&file, &[("ROT_PREVIOUS", ROT_OLD)]);

    // Proxy clock = now: inside the window, both secrets work.
    let p = Proxy::start(vars.clone(), None).await;
    assert_eq!(rot_get(p.addr, ROT_NEW, SystemTime::now()).await, ok(), "new secret in the window");
    assert_eq!(rot_get(p.addr, ROT_OLD, SystemTime::now()).await, ok(), "old secret in the window");
    assert_eq!(rot_get(p.addr, "neither-secret", SystemTime::now()).await, refused(), "a wrong secret");

    // Proxy clock ten minutes ahead: past the window on the proxy's clock, not
    // on the wall clock. The clients sign at the proxy's time, and the origin
    // (real clock) accepts the proxy's signatures ten minutes ahead (s3s allows
    // 15 minutes of skew). Only the new secret works.
    let later = SystemTime::now() + Duration::from_secs(600);
    let p = Proxy::start(vars, Some(Arc::new(common::OffsetClock(time::Duration::minutes(10))))).await;
    assert_eq!(rot_get(p.addr, ROT_NEW, later).await, ok(), "new secret after the window");
    assert_eq!(rot_get(p.addr, ROT_OLD, later).await, refused(), "old secret after the window");

    // An expiry already past on the real clock.
    let file = write_access(dir.path(), &rotation_toml(o.addr, "2001-01-01T00:00:00Z"));
    let p = Proxy::start(file_vars(&file, &[("ROT_PREVIOUS", ROT_OLD)]), None).await;
    assert_eq!(rot_get(p.addr, ROT_NEW, SystemTime::now()).await, ok(), "new secret, expiry in the past");
    assert_eq!(rot_get(p.addr, ROT_OLD, SystemTime::now()).await, refused(), "old secret, expiry in the past");
}

// ---------------------------------------------------------------------------
// Reload.

const RL: (&str, &str) = ("RLKEY", "rl-secret");

fn reload_toml(origin: SocketAddr, actions: &str) -> String {
    format!(
        r#"
[[origins]]
name = "o"
domain = "http://{origin}"
access_key = "RLORIGINKEY"
secret_key = "rl-origin-secret"

[[keys]]
access_key = "{}"
secret = "{}"
allow = [ {{ bucket = "rlb", actions = [{actions}] }} ]
"#,
        RL.0, RL.1
    )
}

/// (GET allowed, PUT allowed) for RLKEY right now; a denial must be AccessDenied.
async fn rl_rights(c: &Client) -> (bool, bool) {
    let judge = |g: Got, what: &str| match g.status {
        200..=299 => true,
        403 if code_is(&g, "AccessDenied") => false,
        _ => panic!("{what}: neither allowed nor AccessDenied: {}", g.show()),
    };
    let get = judge(Got::sdk(&c.get_object().bucket("rlb").key("k").send().await), "GET");
    let put =
        judge(Got::sdk(&c.put_object().bucket("rlb").key("p").body(ByteStream::from_static(b"p")).send().await), "PUT");
    (get, put)
}

/// `AccessStore::reload` re-reads the file: a changed rule applies to the
/// next requests; a broken file (TOML error, unknown origin, missing secret
/// variable, bad glob, unknown action) is refused with an error that quotes no
/// secret, and the rules in force keep working.
#[tokio::test]
async fn reload_applies_good_files_and_refuses_broken_ones() {
    let o = Origin::start("RLORIGINKEY", "rl-origin-secret").await;
    o.client().create_bucket().bucket("rlb").send().await.unwrap();
    o.client().put_object().bucket("rlb").key("k").body(ByteStream::from_static(b"k")).send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write_access(dir.path(), &reload_toml(o.addr, r#""read""#));
    let p = Proxy::start(file_vars(&file, &[]), None).await;
    let c = p.client(RL);
    assert_eq!(rl_rights(&c).await, (true, false), "read only");

    write_access(dir.path(), &reload_toml(o.addr, r#""write""#));
    p.access.reload().expect("a good file reloads");
    assert_eq!(rl_rights(&c).await, (false, true), "write only after the reload");

    let good = reload_toml(o.addr, r#""write""#);
    let broken = [
        ("a TOML error", good.replace(r#"secret = "rl-secret""#, r#"secret = "TOPSECRET-rl-unterminated"#)),
        ("an unknown origin", format!("{good}\n[[buckets]]\nname = \"rl\"\norigin = \"nowhere\"\n")),
        (
            "a missing secret variable",
            good.replace(r#"secret = "rl-secret""#, r#"secret_env = "ACCESS_TEST_UNSET_VAR""#),
        ),
        ("a bad glob", good.replace(r#"bucket = "rlb""#, r#"bucket = "rlb/[x]""#)),
        ("an unknown action", good.replace(r#"["write"]"#, r#"["write", "fly"]"#)),
    ];
    for (what, text) in &broken {
        write_access(dir.path(), text);
        match p.access.reload() {
            Ok(()) => panic!("{what}: the broken file was accepted"),
            Err(e) => {
                let msg = format!("{e} {e:?}");
                assert!(
                    !msg.contains("TOPSECRET") && !msg.contains("rl-secret"),
                    "{what}: the error quotes a secret: {msg}"
                );
            }
        }
        assert_eq!(rl_rights(&c).await, (false, true), "{what}: the previous rules stay");
    }

    write_access(dir.path(), &reload_toml(o.addr, r#""read", "write""#));
    p.access.reload().expect("a good file again");
    assert_eq!(rl_rights(&c).await, (true, true), "read and write after the last reload");
}

/// `AccessStore::watch` picks up a file replaced by rename (as editors and
/// config tools do) and one rewritten in place, within a few seconds.
#[tokio::test]
async fn watch_reloads_on_rename_and_in_place_writes() {
    let o = Origin::start("RLORIGINKEY", "rl-origin-secret").await;
    o.client().create_bucket().bucket("rlb").send().await.unwrap();
    o.client().put_object().bucket("rlb").key("k").body(ByteStream::from_static(b"k")).send().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = write_access(dir.path(), &reload_toml(o.addr, r#""read""#));
    let p = Proxy::start(file_vars(&file, &[]), None).await;
    let _reloader = p.access.watch().expect("the watcher starts");
    let c = p.client(RL);
    assert_eq!(rl_rights(&c).await, (true, false));

    // Replaced by rename.
    let tmp = dir.path().join("access.toml.new");
    std::fs::write(&tmp, reload_toml(o.addr, r#""write""#)).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    let mut now = (true, false);
    for _ in 0..100 {
        now = rl_rights(&c).await;
        if now == (false, true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(now, (false, true), "the renamed file is in force within 10 s");

    // Rewritten in place.
    std::fs::write(&file, reload_toml(o.addr, r#""read", "write""#)).unwrap();
    for _ in 0..100 {
        now = rl_rights(&c).await;
        if now == (true, true) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(now, (true, true), "the rewritten file is in force within 10 s");
}

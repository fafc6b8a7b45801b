//! The test origin itself (`s3_resign_proxy::demo`), no proxy: s3s-fs with
//! every signature checked, plus public-read buckets and bucket CORS. These
//! are the behaviours of S3 the browser and anonymous tests rely on, checked
//! directly so a proxy test cannot pass on an origin that is too lenient.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CorsConfiguration, CorsRule};
use common::{OAK, OSK, head, owned, raw_exchange, s3_client};
use s3_resign_proxy::demo::{OriginOptions, serve_origin_with};
use tokio::net::TcpListener;

const PUBLIC: &str = "pub1";
const PRIVATE: &str = "priv1";
const BODY: &[u8] = b"public bytes\n";

struct Origin {
    addr: SocketAddr,
    dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn spawn_origin(root: &Path, options: OriginOptions) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let root = root.to_owned();
    let task = tokio::spawn(async move {
        serve_origin_with(listener, &root, &options).await.unwrap();
    });
    (addr, task)
}

impl Origin {
    /// An origin where `pub1` is public-read and `priv1` is not, each with
    /// object `k`, both written with a signed client.
    async fn start() -> Self {
        Self::start_with(|o| o).await
    }

    async fn start_with(tweak: impl FnOnce(OriginOptions) -> OriginOptions) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (addr, task) = spawn_origin(dir.path(), tweak(OriginOptions::new(OAK, OSK).public_buckets([PUBLIC]))).await;
        let o = Self { addr, dir, task };
        let c = o.signed();
        for b in [PUBLIC, PRIVATE] {
            c.create_bucket().bucket(b).send().await.unwrap();
            c.put_object().bucket(b).key("k").body(ByteStream::from_static(BODY)).send().await.unwrap();
        }
        o
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn signed(&self) -> aws_sdk_s3::Client {
        s3_client(&self.url(""), OAK, OSK)
    }

    fn stored(&self, bucket: &str, key: &str) -> bool {
        self.dir.path().join(bucket).join(key).exists()
    }
}

/// Every file and directory under `root`, with its size.
fn files(root: &Path) -> Vec<(std::path::PathBuf, u64)> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_owned()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                todo.push(e.path());
            }
            out.push((e.path(), meta.len()));
        }
    }
    out.sort();
    out
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// `<Code>` of an S3 XML error body.
fn code(body: &str) -> &str {
    body.split_once("<Code>").and_then(|(_, r)| r.split_once("</Code>")).map_or("", |(c, _)| c)
}

async fn status_code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    (status, code(&body).to_owned())
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers().get(name).map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn anonymous_reads_of_a_public_bucket_pass_and_of_a_private_one_are_403() {
    let o = Origin::start().await;
    let h = http();
    let r = h.get(o.url("/pub1/k")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap(), BODY);
    let r = h.head(o.url("/pub1/k")).send().await.unwrap();
    assert_eq!((r.status().as_u16(), header(&r, "content-length")), (200, Some(BODY.len().to_string())));
    for list in ["/pub1?list-type=2", "/pub1"] {
        let r = h.get(o.url(list)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{list}");
        assert!(r.text().await.unwrap().contains("<Key>k</Key>"), "{list}");
    }
    assert_eq!(h.head(o.url("/pub1")).send().await.unwrap().status(), 200, "HeadBucket");
    // Public, yet absent: the origin says so (ListBucket is granted too).
    assert_eq!(status_code(h.get(o.url("/pub1/nope")).send().await.unwrap()).await, (404, "NoSuchKey".into()));

    // The private bucket, the bucket list, and what a read-only policy does not grant.
    for path in ["/priv1/k", "/priv1?list-type=2", "/priv1", "/", "/pub1/k?acl", "/pub1?cors", "/pub1?location"] {
        let (status, code) = status_code(h.get(o.url(path)).send().await.unwrap()).await;
        assert_eq!((status, code.as_str()), (403, "AccessDenied"), "anonymous GET {path}");
    }
    for path in ["/priv1/k", "/priv1"] {
        assert_eq!(h.head(o.url(path)).send().await.unwrap().status(), 403, "anonymous HEAD {path}");
    }
}

#[tokio::test]
async fn anonymous_writes_are_403_and_store_nothing() {
    let o = Origin::start().await;
    let h = http();
    let cors = r#"<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"#;
    let delete = r#"<Delete><Object><Key>k</Key></Object></Delete>"#;
    let attempts = [
        h.put(o.url("/pub1/new")).body("x"),
        h.put(o.url("/priv1/new")).body("x"),
        h.put(o.url("/pub1/k")).body("overwritten"),
        h.put(o.url("/newbucket")),
        h.put(o.url("/pub1?cors")).body(cors),
        h.post(o.url("/pub1/new?uploads")),
        h.post(o.url("/pub1?delete")).body(delete),
        h.delete(o.url("/pub1/k")),
        h.delete(o.url("/pub1")),
        h.put(o.url("/pub1/copy")).header("x-amz-copy-source", "/pub1/k"),
    ];
    let before = files(o.dir.path());
    for req in attempts {
        let req = req.build().unwrap();
        let what = format!("{} {}", req.method(), req.url());
        let (status, code) = status_code(h.execute(req).await.unwrap()).await;
        assert_eq!((status, code.as_str()), (403, "AccessDenied"), "anonymous {what}");
    }
    // An HTML form with no signature fields is anonymous too.
    let form = "--B\r\ncontent-disposition: form-data; name=\"key\"\r\n\r\nform\r\n\
                --B\r\ncontent-disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\nf\r\n--B--\r\n";
    let post = h.post(o.url("/pub1")).header("content-type", "multipart/form-data; boundary=B").body(form);
    let (status, code) = status_code(post.send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (403, "AccessDenied"), "anonymous POST form");

    assert_eq!(files(o.dir.path()), before, "the origin's directory is unchanged");
    for (b, k) in [(PUBLIC, "new"), (PRIVATE, "new"), (PUBLIC, "form"), (PUBLIC, "copy")] {
        assert!(!o.stored(b, k), "{b}/{k} stored");
    }
    assert!(!o.dir.path().join("newbucket").exists());
    let c = o.signed();
    let got = c.get_object().bucket(PUBLIC).key("k").send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes(), BODY, "k unchanged");
    let err = c.get_bucket_cors().bucket(PUBLIC).send().await.unwrap_err();
    assert_eq!(err.into_service_error().meta().code(), Some("NoSuchCORSConfiguration"));
}

#[tokio::test]
async fn signed_requests_are_checked_as_before() {
    let o = Origin::start().await;
    let c = o.signed();
    c.put_object().bucket(PRIVATE).key("s").body(ByteStream::from_static(b"signed")).send().await.unwrap();
    let got = c.get_object().bucket(PRIVATE).key("s").send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"signed");
    let listed = c.list_objects_v2().bucket(PUBLIC).send().await.unwrap();
    assert_eq!(listed.contents().iter().filter_map(|o| o.key()).collect::<Vec<_>>(), ["k"]);
    c.delete_object().bucket(PUBLIC).key("k").send().await.unwrap();
    assert!(!o.stored(PUBLIC, "k"));
    assert_eq!(c.list_buckets().send().await.unwrap().buckets().len(), 2);

    // A bad signature is refused, never downgraded to anonymous, even for a
    // read the public bucket would grant. (s3s answers an unknown key with
    // NotSignedUp where S3 says InvalidAccessKeyId.)
    for (ak, sk, want) in [(OAK, "wrong-secret", "SignatureDoesNotMatch"), ("NOSUCHKEY", OSK, "NotSignedUp")] {
        let bad = s3_client(&o.url(""), ak, sk);
        let err = bad.get_object().bucket(PRIVATE).key("s").send().await.unwrap_err();
        assert_eq!(err.into_service_error().meta().code(), Some(want), "{ak}/{sk} private");
        let err = bad.list_objects_v2().bucket(PUBLIC).send().await.unwrap_err();
        assert_eq!(err.into_service_error().meta().code(), Some(want), "{ak}/{sk} public list");
    }
    let cfg = PresigningConfig::expires_in(Duration::from_secs(300)).unwrap();
    let good = c.get_object().bucket(PRIVATE).key("s").presigned(cfg.clone()).await.unwrap();
    assert_eq!(http().get(good.uri()).send().await.unwrap().status(), 200);
    let bad = s3_client(&o.url(""), OAK, "wrong-secret");
    c.put_object().bucket(PUBLIC).key("k").body(ByteStream::from_static(BODY)).send().await.unwrap();
    let forged = bad.get_object().bucket(PUBLIC).key("k").presigned(cfg).await.unwrap();
    let (status, code) = status_code(http().get(forged.uri()).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (403, "SignatureDoesNotMatch"), "forged presigned GET of a public object");
}

fn cors_rule(origins: &[&str], methods: &[&str], headers: &[&str], expose: &[&str], max_age: Option<i32>) -> CorsRule {
    let mut b = CorsRule::builder();
    for x in origins {
        b = b.allowed_origins(*x);
    }
    for x in methods {
        b = b.allowed_methods(*x);
    }
    for x in headers {
        b = b.allowed_headers(*x);
    }
    for x in expose {
        b = b.expose_headers(*x);
    }
    b.set_max_age_seconds(max_age).build().unwrap()
}

async fn put_cors(c: &aws_sdk_s3::Client, bucket: &str, rules: Vec<CorsRule>) {
    let conf = CorsConfiguration::builder().set_cors_rules(Some(rules)).build().unwrap();
    c.put_bucket_cors().bucket(bucket).cors_configuration(conf).send().await.unwrap();
}

/// The rules the CORS tests use on `pub1`.
fn app_rules() -> Vec<CorsRule> {
    vec![
        cors_rule(
            &["http://app.test"],
            &["PUT", "GET"],
            &["content-type", "x-amz-*"],
            &["ETag", "x-amz-request-id"],
            Some(600),
        ),
        cors_rule(&["http://*.wild.test"], &["GET"], &[], &[], None),
    ]
}

async fn preflight(
    o: &Origin,
    path: &str,
    origin: Option<&str>,
    method: Option<&str>,
    headers: Option<&str>,
) -> reqwest::Response {
    let mut r = http().request(reqwest::Method::OPTIONS, o.url(path));
    if let Some(v) = origin {
        r = r.header("origin", v);
    }
    if let Some(v) = method {
        r = r.header("access-control-request-method", v);
    }
    if let Some(v) = headers {
        r = r.header("access-control-request-headers", v);
    }
    r.send().await.unwrap()
}

async fn refused(r: reqwest::Response) -> (u16, String, String, bool) {
    let status = r.status().as_u16();
    let has_cors = r.headers().contains_key("access-control-allow-origin");
    let body = r.text().await.unwrap();
    let message = body.split_once("<Message>").and_then(|(_, m)| m.split_once("</Message>")).map_or("", |(m, _)| m);
    (status, code(&body).to_owned(), message.to_owned(), has_cors)
}

#[tokio::test]
async fn put_bucket_cors_then_preflights_are_allowed_or_refused_from_the_rules() {
    let o = Origin::start().await;
    let c = o.signed();
    // No rules yet: S3's "not enabled" answer.
    let (status, code, message, _) =
        refused(preflight(&o, "/pub1/k", Some("http://app.test"), Some("GET"), None).await).await;
    assert_eq!(
        (status, code.as_str(), message.as_str()),
        (403, "AccessForbidden", "CORSResponse: CORS is not enabled for this bucket.")
    );

    put_cors(&c, PUBLIC, app_rules()).await;
    let got = c.get_bucket_cors().bucket(PUBLIC).send().await.unwrap();
    assert_eq!(got.cors_rules(), app_rules().as_slice(), "GetBucketCors gives back what was put");

    let r =
        preflight(&o, "/pub1/new.txt", Some("http://app.test"), Some("PUT"), Some("Content-Type, X-Amz-Date")).await;
    assert_eq!(r.status(), 200);
    for (name, want) in [
        ("access-control-allow-origin", "http://app.test"),
        ("access-control-allow-methods", "PUT, GET"),
        ("access-control-allow-headers", "content-type, x-amz-date"),
        ("access-control-expose-headers", "ETag, x-amz-request-id"),
        ("access-control-max-age", "600"),
        ("access-control-allow-credentials", "true"),
    ] {
        assert_eq!(header(&r, name).as_deref(), Some(want), "{name}");
    }
    assert!(header(&r, "vary").is_some_and(|v| v.contains("Origin")));
    // One `*` in AllowedOrigin; no Max-Age when the rule has none.
    let r = preflight(&o, "/pub1", Some("http://a.b.wild.test"), Some("GET"), None).await;
    assert_eq!(
        (r.status().as_u16(), header(&r, "access-control-allow-origin")),
        (200, Some("http://a.b.wild.test".into()))
    );
    assert_eq!(header(&r, "access-control-max-age"), None);

    let not_allowed = "CORSResponse: This CORS request is not allowed.";
    for (origin, method, headers, why) in [
        ("http://evil.test", "GET", None, "origin"),
        ("https://app.test", "GET", None, "scheme"),
        ("http://wild.test", "GET", None, "wildcard needs a label"),
        ("http://app.test", "DELETE", None, "method"),
        ("http://app.test", "PUT", Some("content-type, x-custom"), "header"),
        ("http://x.wild.test", "GET", Some("range"), "header of the wildcard rule"),
    ] {
        let (status, code, message, has_cors) =
            refused(preflight(&o, "/pub1/k", Some(origin), Some(method), headers).await).await;
        assert_eq!((status, code.as_str(), has_cors), (403, "AccessForbidden", false), "{why}");
        assert!(message.starts_with(not_allowed), "{why}: {message}");
    }
    for (origin, method, want) in [
        (None, Some("GET"), "Insufficient information. Origin request header needed."),
        (Some("http://app.test"), None, "Invalid Access-Control-Request-Method: null"),
    ] {
        let (status, code, message, _) = refused(preflight(&o, "/pub1/k", origin, method, None).await).await;
        assert_eq!((status, code.as_str(), message.as_str()), (400, "BadRequest", want));
    }
    let (status, _, message, _) =
        refused(preflight(&o, "/nosuchbucket/k", Some("http://app.test"), Some("GET"), None).await).await;
    assert_eq!((status, message.as_str()), (403, "CORSResponse: Bucket not found"));
    // Rules are per bucket.
    let (status, _, message, _) =
        refused(preflight(&o, "/priv1/k", Some("http://app.test"), Some("GET"), None).await).await;
    assert_eq!((status, message.as_str()), (403, "CORSResponse: CORS is not enabled for this bucket."));

    // Another origin over the same directory (or `origin DIR` restarted) has the rules.
    let (addr2, task2) = spawn_origin(o.dir.path(), OriginOptions::new(OAK, OSK)).await;
    let r = http()
        .request(reqwest::Method::OPTIONS, format!("http://{addr2}/pub1/k"))
        .header("origin", "http://app.test")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    task2.abort();
    assert_eq!(r.status(), 200, "rules kept under the root");

    // S3 refuses rules it cannot apply.
    for bad in [
        cors_rule(&["http://app.test"], &["PATCH"], &[], &[], None),
        cors_rule(&["http://*.*.test"], &["GET"], &[], &[], None),
    ] {
        let conf = CorsConfiguration::builder().cors_rules(bad).build().unwrap();
        let err = c.put_bucket_cors().bucket(PUBLIC).cors_configuration(conf).send().await.unwrap_err();
        assert_eq!(err.into_service_error().meta().code(), Some("InvalidRequest"));
    }
    assert_eq!(c.get_bucket_cors().bucket(PUBLIC).send().await.unwrap().cors_rules(), app_rules().as_slice());

    c.delete_bucket_cors().bucket(PUBLIC).send().await.unwrap();
    let err = c.get_bucket_cors().bucket(PUBLIC).send().await.unwrap_err();
    assert_eq!(err.into_service_error().meta().code(), Some("NoSuchCORSConfiguration"));
    let (status, _, message, _) =
        refused(preflight(&o, "/pub1/k", Some("http://app.test"), Some("GET"), None).await).await;
    assert_eq!((status, message.as_str()), (403, "CORSResponse: CORS is not enabled for this bucket."));
}

#[tokio::test]
async fn responses_to_requests_with_a_matching_origin_carry_the_cors_headers() {
    let o = Origin::start().await;
    let c = o.signed();
    put_cors(&c, PUBLIC, app_rules()).await;
    put_cors(&c, PRIVATE, vec![cors_rule(&["*"], &["GET", "HEAD"], &[], &["ETag"], None)]).await;
    let h = http();

    let r = h.get(o.url("/pub1/k")).header("origin", "http://app.test").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "access-control-allow-origin").as_deref(), Some("http://app.test"));
    assert_eq!(header(&r, "access-control-expose-headers").as_deref(), Some("ETag, x-amz-request-id"));
    assert!(header(&r, "vary").is_some_and(|v| v.contains("Origin")));
    assert!(header(&r, "etag").is_some());
    assert_eq!(r.bytes().await.unwrap(), BODY);

    // No matching rule (origin, or method): the answer is unchanged, without CORS headers.
    let r = h.get(o.url("/pub1/k")).header("origin", "http://evil.test").send().await.unwrap();
    assert_eq!((r.status().as_u16(), header(&r, "access-control-allow-origin")), (200, None));
    let r = h.head(o.url("/pub1/k")).header("origin", "http://app.test").send().await.unwrap();
    assert_eq!((r.status().as_u16(), header(&r, "access-control-allow-origin")), (200, None), "HEAD not in the rule");
    let r = h.get(o.url("/pub1/k")).send().await.unwrap();
    assert_eq!(header(&r, "access-control-allow-origin"), None, "no Origin");

    // Errors too, so a page can read the XML: the private bucket, anonymous.
    let r = h.get(o.url("/priv1/k")).header("origin", "http://any.test").send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(header(&r, "access-control-allow-origin").as_deref(), Some("*"));
    assert_eq!(header(&r, "access-control-allow-credentials"), None, "`*` is never sent with credentials");

    // A signed (presigned) GET with an Origin: the same headers.
    let cfg = PresigningConfig::expires_in(Duration::from_secs(300)).unwrap();
    let url = c.get_object().bucket(PRIVATE).key("k").presigned(cfg).await.unwrap();
    let r = h.get(url.uri()).header("origin", "http://any.test").send().await.unwrap();
    assert_eq!((r.status().as_u16(), header(&r, "access-control-allow-origin")), (200, Some("*".into())));
    assert_eq!(header(&r, "access-control-expose-headers").as_deref(), Some("ETag"));
}

#[tokio::test]
async fn virtual_hosted_requests_use_the_bucket_in_the_host() {
    // The domain names the listener's port, which is only known once bound.
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let domain = format!("localhost:{}", addr.port());
    let options = OriginOptions::new(OAK, OSK).domain(domain.clone()).public_buckets([PUBLIC]);
    let root = dir.path().to_owned();
    let task = tokio::spawn(async move { serve_origin_with(listener, &root, &options).await.unwrap() });
    let c = s3_client(&format!("http://{addr}"), OAK, OSK);
    c.create_bucket().bucket(PUBLIC).send().await.unwrap();
    c.put_object().bucket(PUBLIC).key("k").body(ByteStream::from_static(BODY)).send().await.unwrap();
    put_cors(&c, PUBLIC, app_rules()).await;

    let host = format!("{PUBLIC}.{domain}");
    let r = raw_exchange(
        addr,
        &head("GET", "/k", &host, &owned(&[("origin", "http://app.test"), ("connection", "close")])),
        b"",
    )
    .await;
    assert_eq!((r.status, r.body.as_slice()), (200, BODY), "anonymous virtual-hosted GET: {}", r.head);
    assert_eq!(r.header("access-control-allow-origin").as_deref(), Some("http://app.test"));
    let pre =
        owned(&[("origin", "http://app.test"), ("access-control-request-method", "PUT"), ("connection", "close")]);
    let r = raw_exchange(addr, &head("OPTIONS", "/k", &host, &pre), b"").await;
    assert_eq!((r.status, r.header("access-control-allow-methods")), (200, Some("PUT, GET".into())), "{}", r.head);
    let r = raw_exchange(addr, &head("OPTIONS", "/k", &format!("{PRIVATE}.{domain}"), &pre), b"").await;
    assert_eq!(r.status, 403, "no bucket priv1: {}", r.body_str());
    task.abort();
}

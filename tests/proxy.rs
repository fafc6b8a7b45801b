//! In-process integration: aws-sdk-s3 → proxy → strict s3s-fs origin.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use common::*;

async fn error_code<T, E>(r: Result<T, aws_sdk_s3::error::SdkError<E>>) -> (u16, String)
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::fmt::Debug,
    T: std::fmt::Debug,
{
    let e = r.expect_err("request should fail");
    let status = e.raw_response().map(|r| r.status().as_u16()).unwrap_or(0);
    let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&e).unwrap_or("").to_string();
    (status, code)
}

#[tokio::test]
async fn crud_list_copy_range_and_multipart_through_the_proxy() {
    let h = Harness::start().await;
    let c = h.client();
    c.create_bucket().bucket("bkt1").send().await.unwrap();
    assert!(h.origin().head_bucket().bucket("bkt1").send().await.is_ok(), "bucket made at origin");

    let body = b"hello, world".repeat(100);
    c.put_object()
        .bucket("bkt1")
        .key("dir/one.txt")
        .content_type("text/plain")
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap();
    c.put_object().bucket("bkt1").key("dir/sub/two.txt").body(ByteStream::from_static(b"2")).send().await.unwrap();
    c.put_object().bucket("bkt1").key("top.txt").body(ByteStream::from_static(b"t")).send().await.unwrap();
    assert_eq!(h.origin_get("bkt1", "dir/one.txt").await, body);

    let got = c.get_object().bucket("bkt1").key("dir/one.txt").send().await.unwrap();
    assert_eq!(got.content_length(), Some(body.len() as i64));
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), &body[..]);

    let head = c.head_object().bucket("bkt1").key("dir/one.txt").send().await.unwrap();
    assert_eq!(head.content_length(), Some(body.len() as i64), "HEAD keeps Content-Length");

    let l = c.list_objects_v2().bucket("bkt1").prefix("dir/").delimiter("/").send().await.unwrap();
    let keys: Vec<_> = l.contents().iter().filter_map(|o| o.key()).collect();
    let prefixes: Vec<_> = l.common_prefixes().iter().filter_map(|p| p.prefix()).collect();
    assert_eq!(keys, ["dir/one.txt"]);
    assert_eq!(prefixes, ["dir/sub/"]);

    let r = c.get_object().bucket("bkt1").key("dir/one.txt").range("bytes=7-11").send().await.unwrap();
    assert_eq!(r.content_range(), Some("bytes 7-11/1200"));
    assert_eq!(r.body.collect().await.unwrap().into_bytes().as_ref(), b"world");

    c.copy_object().bucket("bkt1").key("copy.txt").copy_source("bkt1/dir/one.txt").send().await.unwrap();
    assert_eq!(h.origin_get("bkt1", "copy.txt").await, body);

    // Three-part multipart upload (5 MiB minimum for all but the last part).
    let up = c.create_multipart_upload().bucket("bkt1").key("big.bin").send().await.unwrap();
    let id = up.upload_id().unwrap();
    let parts: Vec<Vec<u8>> = (0..3u8).map(|i| vec![b'a' + i; if i < 2 { 5 << 20 } else { 1234 }]).collect();
    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let r = c
            .upload_part()
            .bucket("bkt1")
            .key("big.bin")
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(p.clone()))
            .send()
            .await
            .unwrap();
        done.push(CompletedPart::builder().part_number(n).e_tag(r.e_tag().unwrap()).build());
    }
    c.complete_multipart_upload()
        .bucket("bkt1")
        .key("big.bin")
        .upload_id(id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(done)).build())
        .send()
        .await
        .unwrap();
    assert_eq!(h.origin_get("bkt1", "big.bin").await, parts.concat());

    c.delete_object().bucket("bkt1").key("top.txt").send().await.unwrap();
    assert!(!h.origin_has("bkt1", "top.txt").await, "deleted at origin");
}

#[tokio::test]
async fn awkward_keys_round_trip_and_land_under_the_same_name() {
    let h = Harness::start().await;
    let c = h.client();
    c.create_bucket().bucket("keys").send().await.unwrap();
    for key in ["a b", "a+b", "a=b", "a$b", "a~b", "100%", "é", "日本/語", "a/../b", "x//y", "sp  two"] {
        let body = format!("body of {key}");
        c.put_object()
            .bucket("keys")
            .key(key)
            .body(ByteStream::from(body.clone().into_bytes()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key:?}: {e:?}"));
        let got = c.get_object().bucket("keys").key(key).send().await.unwrap_or_else(|e| panic!("get {key:?}: {e:?}"));
        assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), body.as_bytes(), "{key}");
        assert_eq!(h.origin_get("keys", key).await, body.as_bytes(), "origin holds {key:?} under that exact name");
    }
}

#[tokio::test]
async fn presigned_get_and_put() {
    let h = Harness::start().await;
    let c = h.client();
    c.create_bucket().bucket("pre").send().await.unwrap();
    let cfg = PresigningConfig::expires_in(Duration::from_secs(300)).unwrap();

    let put = c.put_object().bucket("pre").key("up load.txt").presigned(cfg.clone()).await.unwrap();
    let http = reqwest::Client::new();
    let r = http.put(put.uri()).body("presigned body").send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(h.origin_get("pre", "up load.txt").await, b"presigned body");

    let get = c
        .get_object()
        .bucket("pre")
        .key("up load.txt")
        .response_content_type("text/x-test")
        .presigned(cfg)
        .await
        .unwrap();
    let r = http.get(get.uri()).header("range", "bytes=0-8").send().await.unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-type"], "text/x-test", "response-* parameters reach the origin");
    assert_eq!(r.text().await.unwrap(), "presigned");
}

#[tokio::test]
async fn wrong_secret_is_refused_and_nothing_is_stored() {
    let h = Harness::start().await;
    h.client().create_bucket().bucket("bkt").send().await.unwrap();
    let bad = h.client_with(CAK, "not-the-secret");
    let (status, code) =
        error_code(bad.put_object().bucket("bkt").key("k").body(ByteStream::from_static(b"x")).send().await).await;
    assert_eq!((status, code.as_str()), (403, "SignatureDoesNotMatch"));
    assert!(!h.origin_has("bkt", "k").await);

    // The error carries what the proxy computed from the client's own request.
    let at = SystemTime::now();
    let hs = sign_headers("GET", &h.proxy_addr.to_string(), "/bkt/k", &[], "UNSIGNED-PAYLOAD", (CAK, "wrong"), at);
    let mut head = "GET /b/k HTTP/1.1\r\nHost: ".to_string() + &h.proxy_addr.to_string() + "\r\n";
    for (k, v) in &hs {
        head += &format!("{k}: {v}\r\n");
    }
    head += "\r\n";
    let r = raw_exchange(h.proxy_addr, &head, b"").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("content-type").as_deref(), Some("application/xml"));
    let b = r.body_str();
    assert!(b.contains("<Code>SignatureDoesNotMatch</Code>"), "{b}");
    assert!(b.contains("<CanonicalRequest>GET&#10;/b/k&#10;"), "{b}");
    assert!(b.contains("<StringToSign>AWS4-HMAC-SHA256&#10;"), "{b}");
    assert!(b.contains("<RequestId>"), "{b}");
    assert!(!b.contains(CSK) && !b.contains(OSK), "no secret is echoed");
}

#[tokio::test]
async fn unknown_key_skew_expiry_and_unsigned_amz_header_each_get_their_error() {
    let h = Harness::start().await;
    h.client().create_bucket().bucket("bkt").send().await.unwrap();

    let (s, code) = error_code(h.client_with("OTHERKEY", CSK).list_objects_v2().bucket("bkt").send().await).await;
    assert_eq!((s, code.as_str()), (403, "InvalidAccessKeyId"));
    let (s, code) =
        error_code(h.client_with(&format!("{CAK}X"), CSK).list_objects_v2().bucket("bkt").send().await).await;
    assert_eq!((s, code.as_str()), (403, "InvalidAccessKeyId"), "a key with our key as prefix is unknown");

    // A proxy whose clock is 20 minutes ahead sees the SDK's request as skewed.
    let skewed = Harness::start_with(|_| {}, Some(Arc::new(OffsetClock(time::Duration::minutes(20))))).await;
    skewed.client().create_bucket().bucket("bkt").send().await.expect_err("skewed");
    let at = SystemTime::now();
    let hs = sign_headers("GET", &skewed.proxy_addr.to_string(), "/bkt", &[], "UNSIGNED-PAYLOAD", (CAK, CSK), at);
    let r = raw_get(skewed.proxy_addr, "/bkt", &hs, &[]).await;
    assert_eq!(r.status, 403);
    assert!(r.body_str().contains("<Code>RequestTimeTooSkewed</Code>"), "{}", r.body_str());

    // Expired presigned URL: signed 2 hours ago for 1 hour.
    let cfg = PresigningConfig::builder()
        .start_time(SystemTime::now() - Duration::from_secs(7200))
        .expires_in(Duration::from_secs(3600))
        .build()
        .unwrap();
    let url = h.client().get_object().bucket("bkt").key("k").presigned(cfg).await.unwrap();
    let r = reqwest::get(url.uri()).await.unwrap();
    assert_eq!(r.status(), 403);
    let t = r.text().await.unwrap();
    assert!(t.contains("<Code>AccessDenied</Code>") && t.contains("expired"), "{t}");

    // An x-amz-* header that is present but unsigned.
    let hs =
        sign_headers("GET", &h.proxy_addr.to_string(), "/bkt", &[], "UNSIGNED-PAYLOAD", (CAK, CSK), SystemTime::now());
    let r = raw_get(h.proxy_addr, "/bkt", &hs, &[("x-amz-meta-sneaky", "1")]).await;
    assert_eq!(r.status, 403);
    assert!(
        r.body_str().contains("<Code>AccessDenied</Code>") && r.body_str().contains("x-amz-meta-sneaky"),
        "{}",
        r.body_str()
    );

    // Anonymous.
    let r = raw_get(h.proxy_addr, "/bkt", &[], &[]).await;
    assert_eq!(r.status, 403);
    assert!(r.body_str().contains("<Code>AccessDenied</Code>"));

    // Malformed Authorization.
    let r = raw_get(h.proxy_addr, "/bkt", &[], &[("authorization", "AWS4-HMAC-SHA256 Credential=x")]).await;
    assert_eq!(r.status, 400);
    assert!(r.body_str().contains("<Code>AuthorizationHeaderMalformed</Code>"), "{}", r.body_str());

    // SigV4a is refused as the client's error, naming the algorithm.
    let r = raw_get(h.proxy_addr, "/bkt", &[], &[("authorization", "AWS4-ECDSA-P256-SHA256 Credential=x")]).await;
    assert_eq!(r.status, 400);
    assert!(r.body_str().contains("<Code>AuthorizationHeaderMalformed</Code>"));
    assert!(r.body_str().contains("AWS4-ECDSA-P256-SHA256"));
}

async fn raw_get(
    addr: std::net::SocketAddr,
    path: &str,
    signed: &[(String, String)],
    extra: &[(&str, &str)],
) -> RawResponse {
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in signed {
        head += &format!("{k}: {v}\r\n");
    }
    for (k, v) in extra {
        head += &format!("{k}: {v}\r\n");
    }
    head += "\r\n";
    raw_exchange(addr, &head, b"").await
}

/// A raw PUT head for `path`, signed with `(CAK, secret)` over `payload`
/// (the `x-amz-content-sha256` value), with Content-Length `len`.
fn signed_put_head(
    addr: std::net::SocketAddr,
    path: &str,
    payload: &str,
    secret: &str,
    len: usize,
    expect: bool,
) -> String {
    let hs = sign_headers("PUT", &addr.to_string(), path, &[], payload, (CAK, secret), SystemTime::now());
    let mut head = format!("PUT {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {len}\r\n");
    if expect {
        head += "Expect: 100-continue\r\n";
    }
    for (k, v) in &hs {
        head += &format!("{k}: {v}\r\n");
    }
    head + "\r\n"
}

#[tokio::test]
async fn expect_100_continue_upload_is_refused_before_any_body_is_sent() {
    use tokio::io::AsyncWriteExt;
    let h = Harness::start().await;
    h.client().create_bucket().bucket("bkt").send().await.unwrap();
    let head = signed_put_head(h.proxy_addr, "/bkt/k", "UNSIGNED-PAYLOAD", "wrong", 10 << 20, true);
    let mut s = tokio::net::TcpStream::connect(h.proxy_addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    // No body is written: the final answer must come without a 100 Continue.
    let mut buf = vec![0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), tokio::io::AsyncReadExt::read(&mut s, &mut buf))
        .await
        .unwrap()
        .unwrap();
    let first = String::from_utf8_lossy(&buf[..n]);
    assert!(first.starts_with("HTTP/1.1 403"), "got {first:?}");
    assert!(!h.origin_has("bkt", "k").await);
}

#[tokio::test]
async fn client_that_sends_its_body_without_expect_still_reads_the_error() {
    let h = Harness::start().await;
    h.client().create_bucket().bucket("bkt").send().await.unwrap();
    let body = vec![b'z'; 20 << 20];
    let head = signed_put_head(h.proxy_addr, "/bkt/k", "UNSIGNED-PAYLOAD", "wrong", body.len(), false);
    let r = raw_exchange(h.proxy_addr, &head, &body).await;
    assert_eq!(r.status, 403, "{}", r.head);
    assert!(r.body_str().contains("SignatureDoesNotMatch"));
}

#[tokio::test]
async fn wrong_payload_hash_is_refused_and_nothing_is_stored() {
    let h = Harness::start().await;
    h.client().create_bucket().bucket("bkt").send().await.unwrap();
    let body = vec![b'q'; 3 << 20];
    let claimed = sha256_hex(b"something else");
    let r =
        raw_exchange(h.proxy_addr, &signed_put_head(h.proxy_addr, "/bkt/k", &claimed, CSK, body.len(), false), &body)
            .await;
    assert_eq!(r.status, 400, "{}", r.body_str());
    assert!(r.body_str().contains("<Code>XAmzContentSHA256Mismatch</Code>"), "{}", r.body_str());
    assert!(!h.origin_has("bkt", "k").await, "nothing stored");

    // The right hash goes through.
    let good = sha256_hex(&body);
    let r = raw_exchange(h.proxy_addr, &signed_put_head(h.proxy_addr, "/bkt/k", &good, CSK, body.len(), false), &body)
        .await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(h.origin_get("bkt", "k").await, body);
}

#[tokio::test]
async fn client_disconnect_mid_upload_stores_nothing() {
    use tokio::io::AsyncWriteExt;
    let h = Harness::start().await;
    h.client().create_bucket().bucket("bkt").send().await.unwrap();
    let head = signed_put_head(h.proxy_addr, "/bkt/cut", "UNSIGNED-PAYLOAD", CSK, 8 << 20, false);
    let mut s = tokio::net::TcpStream::connect(h.proxy_addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&vec![b'x'; 1 << 20]).await.unwrap();
    s.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(s);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!h.origin_has("bkt", "cut").await, "a cut upload leaves no object");
}

#[tokio::test]
async fn healthz_ok_then_450_when_origin_stops_and_works_for_http10() {
    // Every check probes (tests/drain.rs tests the cache).
    let mut h = Harness::start_with(|v| set_var(v, "HEALTH_CACHE_MS", "0"), None).await;
    let r = reqwest::get(format!("{}/healthz", h.endpoint())).await.unwrap();
    assert_eq!(r.status(), 200);
    let j: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(j["status"], "ok");
    assert_eq!(j["origin_status"], 501, "s3s-fs answers HEAD / with 501, and it is up");

    // HAProxy's `option httpchk GET /healthz`: HTTP/1.0, no Host header.
    let r = raw_exchange(h.proxy_addr, "GET /healthz HTTP/1.0\r\n\r\n", b"").await;
    assert_eq!(r.status, 200, "{}", r.head);
    assert!(r.body_str().contains("\"status\":\"ok\""));
    let r = raw_exchange(h.proxy_addr, "HEAD /healthz HTTP/1.0\r\n\r\n", b"").await;
    assert_eq!(r.status, 200);

    // A signed request for /healthz is an S3 request for bucket `healthz`.
    let e = h.client().head_bucket().bucket("healthz").send().await.expect_err("no such bucket");
    assert_eq!(e.raw_response().unwrap().status().as_u16(), 404);

    h.stop_origin();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = reqwest::get(format!("{}/healthz", h.endpoint())).await.unwrap();
    assert_eq!(r.status().as_u16(), 450);
    let j: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(j["status"], "nok");
}

#[tokio::test]
async fn healthz_is_nok_when_the_origin_refuses_the_proxy_credentials() {
    let h = Harness::start_with(
        |v| v.iter_mut().filter(|(k, _)| k == "ORIGIN_SECRET_KEY").for_each(|(_, s)| *s = "wrong".into()),
        None,
    )
    .await;
    // s3s-fs answers HEAD / with 501 even before auth; probe a bucket instead.
    let h2 = Harness::start_with(
        |v| {
            v.push(("HEALTHCHECK_PATH".into(), "/somebucket".into()));
            v.iter_mut().filter(|(k, _)| k == "ORIGIN_SECRET_KEY").for_each(|(_, s)| *s = "wrong".into());
        },
        None,
    )
    .await;
    let r = reqwest::get(format!("{}/healthz", h2.endpoint())).await.unwrap();
    assert_eq!(r.status().as_u16(), 450, "{}", r.text().await.unwrap());
    drop(h);
}

#[tokio::test]
async fn origin_unreachable_is_502_and_silent_origin_is_504() {
    // Nothing listens on the origin port.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let (proxy, _stop) = start_proxy(base_vars(dead_addr), None).await;
    let c = s3_client(&format!("http://{proxy}"), CAK, CSK);
    let e = c.list_objects_v2().bucket("bkt").send().await.expect_err("no origin");
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(502));

    // An origin that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let mut vars = base_vars(silent_addr);
    vars.push(("ORIGIN_READ_TIMEOUT".into(), "1".into()));
    let (proxy, _stop2) = start_proxy(vars, None).await;
    let hs = sign_headers("GET", &proxy.to_string(), "/bkt", &[], "UNSIGNED-PAYLOAD", (CAK, CSK), SystemTime::now());
    let r = raw_get(proxy, "/bkt", &hs, &[]).await;
    assert_eq!(r.status, 504, "{}", r.body_str());
    assert!(r.body_str().contains("<Code>GatewayTimeout</Code>"));
}

#[tokio::test]
async fn host_header_never_chooses_the_origin() {
    let h = Harness::start().await;
    h.client().create_bucket().bucket("bkt").send().await.unwrap();
    // Signed for a different host: verification uses the Host sent, and the
    // request still goes to the configured origin.
    let evil = "169.254.169.254:8080";
    let hs = sign_headers("GET", evil, "/bkt", &[], "UNSIGNED-PAYLOAD", (CAK, CSK), SystemTime::now());
    let mut head = format!("GET /bkt HTTP/1.1\r\nHost: {evil}\r\nConnection: close\r\n");
    for (k, v) in &hs {
        if k != "host" {
            head += &format!("{k}: {v}\r\n");
        }
    }
    head += "\r\n";
    let r = raw_exchange(h.proxy_addr, &head, b"").await;
    assert_eq!(r.status, 200, "answered from the configured origin: {}", r.body_str());
    assert!(r.body_str().contains("<ListBucketResult"), "{}", r.body_str());
}

#[tokio::test]
async fn redirects_from_the_origin_go_back_unchanged() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://elsewhere.example/bkt/k\r\nContent-Length: 0\r\n\r\n")
                .await;
        }
    });
    let (proxy, _stop) = start_proxy(base_vars(addr), None).await;
    let hs = sign_headers("GET", &proxy.to_string(), "/bkt/k", &[], "UNSIGNED-PAYLOAD", (CAK, CSK), SystemTime::now());
    let r = raw_get(proxy, "/bkt/k", &hs, &[]).await;
    assert_eq!(r.status, 307);
    assert_eq!(r.header("location").as_deref(), Some("http://elsewhere.example/bkt/k"));
}

#[tokio::test]
async fn chunked_put_without_content_length_is_411() {
    let h = Harness::start().await;
    let hs = sign_headers(
        "PUT",
        &h.proxy_addr.to_string(),
        "/bkt/k",
        &[],
        "UNSIGNED-PAYLOAD",
        (CAK, CSK),
        SystemTime::now(),
    );
    let mut head =
        format!("PUT /bkt/k HTTP/1.1\r\nHost: {}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n", h.proxy_addr);
    for (k, v) in &hs {
        head += &format!("{k}: {v}\r\n");
    }
    let r = raw_exchange(h.proxy_addr, &(head + "\r\n"), b"5\r\nhello\r\n0\r\n\r\n").await;
    assert_eq!(r.status, 411, "{}", r.body_str());
    assert!(r.body_str().contains("<Code>MissingContentLength</Code>"));
}

//! CORS answered by the proxy (CORS_*, per bucket in ACCESS_FILE), and
//! requests without credentials (ANONYMOUS_ACCESS): refused by default,
//! forwarded unsigned with `forward`, never a bad signature downgraded. The
//! origin is s3s-fs behind a relay that records every byte it gets.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PAGE: &str = "http://page.test:5500";

fn upstream_len(relay: &Relay) -> usize {
    relay.upstream.lock().unwrap().len()
}

async fn put(h: &Harness, bucket: &str, key: &str, body: &'static [u8]) {
    let c = h.client();
    let _ = c.create_bucket().bucket(bucket).send().await;
    c.put_object().bucket(bucket).key(key).body(ByteStream::from_static(body)).send().await.unwrap();
}

#[tokio::test]
async fn preflights_are_answered_by_the_proxy_and_never_forwarded() {
    let (h, relay) = Harness::start_relayed(
        |v| {
            set_var(v, "CORS_ALLOWED_ORIGINS", &format!("{PAGE},https://other.test"));
            set_var(v, "CORS_ALLOWED_HEADERS", "content-type,x-amz-meta-note");
        },
        false,
    )
    .await;
    put(&h, "web", "a.txt", b"hello").await;
    let before = upstream_len(&relay);
    let http = reqwest::Client::new();
    let pre = |origin: &'static str, method: &'static str, headers: &'static str| {
        http.request(reqwest::Method::OPTIONS, format!("{}/web/a.txt", h.endpoint()))
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", headers)
            .send()
    };
    let ok = pre(PAGE, "PUT", "content-type").await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["access-control-allow-origin"], PAGE);
    assert!(ok.headers()["access-control-allow-methods"].to_str().unwrap().contains("PUT"));
    assert_eq!(ok.headers()["access-control-allow-headers"], "content-type");
    assert_eq!(ok.headers()["access-control-max-age"], "3600");

    for (origin, method, headers) in
        [("http://evil.test", "GET", ""), (PAGE, "PATCH", ""), (PAGE, "PUT", "x-amz-meta-secret")]
    {
        let r = pre(origin, method, headers).await.unwrap();
        assert_eq!(r.status(), 403, "{origin} {method} {headers}");
        let body = r.text().await.unwrap();
        assert!(body.contains("<Code>AccessForbidden</Code>") && body.contains("CORSResponse"), "{body}");
    }
    assert_eq!(upstream_len(&relay), before, "no preflight reached the origin");
}

#[tokio::test]
async fn every_response_to_an_allowed_origin_carries_the_cors_headers_errors_included() {
    let h = Harness::start_with(|v| set_var(v, "CORS_ALLOWED_ORIGINS", PAGE), None).await;
    put(&h, "web", "a.txt", b"hello").await;
    let http = reqwest::Client::new();
    // A presigned GET, as a page's fetch sends it.
    let host = h.proxy_addr.to_string();
    let target =
        presign("GET", &host, "/web/a.txt", &[], std::time::Duration::from_secs(300), std::time::SystemTime::now());
    let url = format!("{}{target}", h.endpoint());
    let r = http.get(&url).header("origin", PAGE).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], PAGE);
    let expose = r.headers()["access-control-expose-headers"].to_str().unwrap().to_owned();
    assert!(expose.contains("ETag") && expose.contains("x-amz-request-id"), "{expose}");
    assert!(r.headers().contains_key("etag"));
    // An error (the signature does not match the path) is readable by the page too.
    let bad = url.replace("/web/a.txt", "/web/b.txt");
    let r = http.get(&bad).header("origin", PAGE).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["access-control-allow-origin"], PAGE);
    // Another origin, or none: no CORS headers.
    let r = http.get(&url).header("origin", "http://evil.test").send().await.unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    let r = http.get(&url).send().await.unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn without_cors_or_anonymous_access_options_and_unsigned_requests_stay_refused() {
    let (h, relay) = Harness::start_relayed(|_| {}, false).await;
    put(&h, "web", "a.txt", b"hello").await;
    let before = upstream_len(&relay);
    let http = reqwest::Client::new();
    let r = http
        .request(reqwest::Method::OPTIONS, format!("{}/web/a.txt", h.endpoint()))
        .header("origin", PAGE)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    for (m, path) in [("GET", "/web/a.txt"), ("GET", "/web"), ("PUT", "/web/new.txt"), ("GET", "/")] {
        let r = http
            .request(m.parse().unwrap(), format!("{}{path}", h.endpoint()))
            .body(if m == "PUT" { "x" } else { "" })
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{m} {path}");
        assert!(r.text().await.unwrap().contains("Anonymous access is not allowed"));
    }
    assert_eq!(upstream_len(&relay), before, "nothing unsigned reached the origin");
    assert!(!h.origin_has("web", "new.txt").await);
}

#[tokio::test]
async fn anonymous_forward_sends_unsigned_requests_and_returns_the_origins_verdict() {
    let (h, relay) = Harness::start_relayed(|v| set_var(v, "ANONYMOUS_ACCESS", "forward"), false).await;
    put(&h, "web", "private.txt", b"private").await;
    let http = reqwest::Client::new();
    let before = relay.upstream.lock().unwrap().len();
    // s3s-fs refuses anonymous requests: its own 403 comes back.
    let r = http
        .get(format!("{}/web/private.txt", h.endpoint()))
        .header("x-amz-security-token", "a-token-that-must-not-travel")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("AccessDenied") && !body.contains("Anonymous access is not allowed through this proxy"),
        "{body}"
    );
    let up = String::from_utf8_lossy(&relay.upstream.lock().unwrap()[before..]).into_owned();
    assert!(up.starts_with("GET /web/private.txt HTTP/1.1\r\n"), "{up}");
    let lower = up.to_ascii_lowercase();
    assert!(!lower.contains("authorization:") && !lower.contains("x-amz-security-token"), "unsigned: {up}");
    assert!(lower.contains(&format!("host: {}", relay.addr)), "the origin's host: {up}");

    // A bad credential is verified, never downgraded: nothing forwarded.
    let before = upstream_len(&relay);
    for bad in ["AWS4-HMAC-SHA256 Credential=nobody", "AWS nobody:c2ln"] {
        let r =
            http.get(format!("{}/web/private.txt", h.endpoint())).header("authorization", bad).send().await.unwrap();
        assert!(r.status().is_client_error(), "{bad}: {}", r.status());
    }
    let r = http
        .get(format!("{}/web/private.txt?X-Amz-Credential=x&X-Amz-Signature=00", h.endpoint()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error());
    assert_eq!(upstream_len(&relay), before, "credentials are checked, never dropped");
}

#[tokio::test]
async fn an_anonymous_upload_with_expect_continue_gets_the_origins_verdict_before_its_body() {
    let (h, _relay) = Harness::start_relayed(|v| set_var(v, "ANONYMOUS_ACCESS", "forward"), false).await;
    put(&h, "web", "seed.txt", b"seed").await;
    let mut s = tokio::net::TcpStream::connect(h.proxy_addr).await.unwrap();
    let head = format!(
        "PUT /web/anon.bin HTTP/1.1\r\nHost: {}\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n",
        h.proxy_addr
    );
    s.write_all(head.as_bytes()).await.unwrap();
    // No body sent: the answer must come without it, and it is not a 100.
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(text.starts_with("HTTP/1.1 403"), "the origin's refusal, before any body: {text}");
    assert!(!text.contains("100 Continue"), "{text}");
    assert!(text.contains("AccessDenied"), "{text}");
    assert!(!h.origin_has("web", "anon.bin").await);
}

#[tokio::test]
async fn a_bucket_entry_allows_anonymous_access_for_its_buckets_only() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("access.toml");
    std::fs::write(
        &file,
        "[[buckets]]\nname = \"pub-*\"\nanonymous = \"forward\"\ncors = { allowed_origins = [\"http://page.test:5500\"] }\n",
    )
    .unwrap();
    let (h, relay) = Harness::start_relayed(|v| set_var(v, "ACCESS_FILE", file.to_str().unwrap()), false).await;
    put(&h, "pub-assets", "a.txt", b"a").await;
    put(&h, "private", "b.txt", b"b").await;
    let http = reqwest::Client::new();
    let before = upstream_len(&relay);
    let r = http.get(format!("{}/private/b.txt", h.endpoint())).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("Anonymous access is not allowed"));
    assert_eq!(upstream_len(&relay), before, "the env default (deny) for other buckets");
    let r = http.get(format!("{}/pub-assets/a.txt", h.endpoint())).header("origin", PAGE).send().await.unwrap();
    assert_eq!(r.status(), 403, "forwarded: s3s-fs's own refusal");
    assert!(upstream_len(&relay) > before, "forwarded to the origin");
    assert_eq!(r.headers()["access-control-allow-origin"], PAGE, "the bucket's own CORS");
    let r = http.get(format!("{}/private/b.txt", h.endpoint())).header("origin", PAGE).send().await.unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"), "no CORS for other buckets");
}

//! Signature V2 clients through the proxy (forwarded as SigV4) to s3s-fs.
//! The V2 signatures here come from a small signer written in the test from
//! the AWS documentation, independent of `src/sigv2.rs`.

mod common;

use common::v2::{http_date, sign as v2_sign};
use common::*;
use time::OffsetDateTime;

/// Sends a V2 header-signed request. `resource` is the raw path plus
/// sub-resources as they go into the string to sign.
async fn v2_request(
    h: &Harness,
    method: &str,
    path_and_query: &str,
    resource: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    secret: &str,
) -> RawResponse {
    let date = http_date(OffsetDateTime::now_utc());
    let sts = common::v2::header_string_to_sign(method, headers, &date, resource);
    let sig = v2_sign(secret, &sts);
    let mut head = format!(
        "{method} {path_and_query} HTTP/1.1\r\nHost: {}\r\nDate: {date}\r\nAuthorization: AWS {CAK}:{sig}\r\nContent-Length: {}\r\nConnection: close\r\n",
        h.proxy_addr,
        body.len()
    );
    for (k, v) in headers {
        head += &format!("{k}: {v}\r\n");
    }
    head += "\r\n";
    raw_exchange(h.proxy_addr, &head, body).await
}

#[tokio::test]
async fn v2_header_put_get_with_special_keys_subresources_and_response_params() {
    let h = Harness::start().await;
    h.client().create_bucket().bucket("v2bucket").send().await.unwrap();

    // Key "a b+c=é&.txt" as an SDK encodes it on the wire.
    let wire = "/v2bucket/a%20b%2Bc%3D%C3%A9%26.txt";
    let r = v2_request(
        &h,
        "PUT",
        wire,
        wire,
        &[("Content-Type", "text/plain"), ("x-amz-meta-color", "blue")],
        b"v2 body",
        CSK,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(h.origin_get("v2bucket", "a b+c=é&.txt").await, b"v2 body");
    let head = h.origin().head_object().bucket("v2bucket").key("a b+c=é&.txt").send().await.unwrap();
    assert_eq!(head.metadata().unwrap().get("color").map(String::as_str), Some("blue"));

    // GET with a response-* override, which is a sub-resource in the string to sign.
    let pq = format!("{wire}?response-content-type=application/x-v2");
    let r = v2_request(&h, "GET", &pq, &pq, &[], b"", CSK).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(r.body, b"v2 body");
    assert_eq!(r.header("content-type").as_deref(), Some("application/x-v2"));

    // ?uploads (CreateMultipartUpload) is a sub-resource with no value.
    let pq = "/v2bucket/multi?uploads";
    let r = v2_request(&h, "POST", pq, pq, &[], b"", CSK).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert!(r.body_str().contains("<UploadId>"), "{}", r.body_str());

    // A non-sub-resource parameter stays out of the string to sign but is forwarded.
    let r = v2_request(&h, "GET", "/v2bucket?prefix=a%20b", "/v2bucket", &[], b"", CSK).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert!(r.body_str().contains("<Key>a b+c=é&amp;.txt</Key>"), "{}", r.body_str());
}

#[tokio::test]
async fn v2_presigned_get_with_response_content_disposition() {
    let h = Harness::start().await;
    let c = h.client();
    c.create_bucket().bucket("v2pre").send().await.unwrap();
    c.put_object()
        .bucket("v2pre")
        .key("file name.txt")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"shared"))
        .send()
        .await
        .unwrap();
    let expires = OffsetDateTime::now_utc().unix_timestamp() + 600;
    let disp = "attachment; filename=\"x.txt\"";
    let sts = format!("GET\n\n\n{expires}\n/v2pre/file%20name.txt?response-content-disposition={disp}");
    let sig = v2_sign(CSK, &sts);
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    let url = format!(
        "{}/v2pre/file%20name.txt?AWSAccessKeyId={CAK}&Expires={expires}&Signature={}&response-content-disposition={}",
        h.endpoint(),
        enc(&sig),
        enc(disp)
    );
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-disposition"], disp);
    assert_eq!(r.text().await.unwrap(), "shared");

    // Expired.
    let past = OffsetDateTime::now_utc().unix_timestamp() - 10;
    let sig = v2_sign(CSK, &format!("GET\n\n\n{past}\n/v2pre/file%20name.txt"));
    let url =
        format!("{}/v2pre/file%20name.txt?AWSAccessKeyId={CAK}&Expires={past}&Signature={}", h.endpoint(), enc(&sig));
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status(), 403);
    let t = r.text().await.unwrap();
    assert!(t.contains("<Code>AccessDenied</Code>") && t.contains("expired"), "{t}");
}

#[tokio::test]
async fn v2_wrong_secret_and_unknown_key_get_their_errors_and_nothing_is_stored() {
    let h = Harness::start().await;
    h.client().create_bucket().bucket("v2neg").send().await.unwrap();
    let r = v2_request(&h, "PUT", "/v2neg/k", "/v2neg/k", &[], b"data", "wrong-secret").await;
    assert_eq!(r.status, 403);
    let b = r.body_str();
    assert!(b.contains("<Code>SignatureDoesNotMatch</Code>"), "{b}");
    assert!(b.contains("<StringToSign>PUT&#10;&#10;&#10;"), "carries the computed StringToSign: {b}");
    assert!(!h.origin_has("v2neg", "k").await);

    let date = http_date(OffsetDateTime::now_utc());
    let sig = v2_sign(CSK, &format!("GET\n\n\n{date}\n/v2neg"));
    let head = format!(
        "GET /v2neg HTTP/1.1\r\nHost: x\r\nDate: {date}\r\nAuthorization: AWS {CAK}EXTRA:{sig}\r\nConnection: close\r\n\r\n"
    );
    let r = raw_exchange(h.proxy_addr, &head, b"").await;
    assert_eq!(r.status, 403);
    assert!(r.body_str().contains("<Code>InvalidAccessKeyId</Code>"), "{}", r.body_str());

    // A Date 20 minutes old is skewed.
    let old = http_date(OffsetDateTime::now_utc() - time::Duration::minutes(20));
    let sig = v2_sign(CSK, &format!("GET\n\n\n{old}\n/v2neg"));
    let head = format!(
        "GET /v2neg HTTP/1.1\r\nHost: x\r\nDate: {old}\r\nAuthorization: AWS {CAK}:{sig}\r\nConnection: close\r\n\r\n"
    );
    let r = raw_exchange(h.proxy_addr, &head, b"").await;
    assert_eq!(r.status, 403);
    assert!(r.body_str().contains("<Code>RequestTimeTooSkewed</Code>"), "{}", r.body_str());
}

/// A V2 presigned URL for `GET /v2b/k` with `extra` query pairs (already
/// encoded) that the V2 string to sign does not cover (unless sub-resources).
fn v2_presigned(h: &Harness, expires: i64, resource_subs: &str, extra: &str) -> String {
    let sig = v2_sign(CSK, &format!("GET\n\n\n{expires}\n/v2b/k{resource_subs}"));
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    format!("{}/v2b/k?AWSAccessKeyId={CAK}&Expires={expires}&Signature={}{extra}", h.endpoint(), enc(&sig))
}

/// Hole 4: a V2 signature covers S3's sub-resources only; no other parameter
/// may ride along to be signed into the origin's SigV4 request.
#[tokio::test]
async fn v2_forwards_only_what_its_signature_covers() {
    let h = Harness::start().await;
    h.client().create_bucket().bucket("v2b").send().await.unwrap();
    h.client().put_object().bucket("v2b").key("k").body(b"v2".to_vec().into()).send().await.unwrap();
    let exp = OffsetDateTime::now_utc().unix_timestamp() + 300;
    let r = reqwest::get(v2_presigned(&h, exp, "", "")).await.unwrap();
    assert_eq!(r.status(), 200, "the plain URL works");
    // boto3 adds x-id unsigned; listing parameters are unsigned by design.
    let r = reqwest::get(v2_presigned(&h, exp, "", "&x-id=GetObject")).await.unwrap();
    assert_eq!(r.status(), 200, "x-id is allowed");
    for extra in [
        "&x-amz-acl=public-read",
        "&x-amz-meta-a=1",
        "&X-Amz-Security-Token=tok",
        "&session",
        "&metadataTable",
        "&unknown=1",
    ] {
        let r = reqwest::get(v2_presigned(&h, exp, "", extra)).await.unwrap();
        assert_eq!(r.status(), 400, "{extra}");
        let t = r.text().await.unwrap();
        assert!(t.contains("<Code>InvalidArgument</Code>"), "{extra}: {t}");
    }
    // Hole 8: a V2 URL valid until the year 9999 is refused; 7 days is the cap.
    let r = reqwest::get(v2_presigned(&h, 253_402_300_799, "", "")).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("<Code>AuthorizationQueryParametersError</Code>"));
    let r =
        reqwest::get(v2_presigned(&h, OffsetDateTime::now_utc().unix_timestamp() + 6 * 86400, "", "")).await.unwrap();
    assert_eq!(r.status(), 200, "6 days is fine");
    // A non-canonical Expires (leading zero) is refused, not read as the same number.
    let url = v2_presigned(&h, exp, "", "").replace(&format!("Expires={exp}"), &format!("Expires=0{exp}"));
    assert_eq!(reqwest::get(url).await.unwrap().status(), 403);
}

/// Hole 5: V2 signs one value of a header; a second one is refused, not forwarded.
#[tokio::test]
async fn v2_duplicate_signed_headers_are_refused() {
    let h = Harness::start().await;
    h.client().create_bucket().bucket("v2d").send().await.unwrap();
    for dup in [("Content-Type", "text/html"), ("x-amz-meta-a", "2"), ("Content-MD5", "dV+FwnI7s5OBxzeaYEFg2A==")] {
        let mut headers =
            vec![("Content-Type", "text/plain"), ("x-amz-meta-a", "1"), ("Content-MD5", "dV+FwnI7s5OBxzeaYEFg2A==")];
        headers.push(dup);
        let r = v2_request(&h, "PUT", "/v2d/k", "/v2d/k", &headers, b"good", CSK).await;
        assert_eq!(r.status, 400, "{dup:?}: {}", r.body_str());
        assert!(r.body_str().contains("<Code>InvalidArgument</Code>"), "{}", r.body_str());
    }
    assert!(!h.origin_has("v2d", "k").await);
}

/// A V2 Date that does not parse, or lies before 1970, is AccessDenied, as S3
/// answers; not RequestTimeTooSkewed.
#[tokio::test]
async fn v2_invalid_dates_are_access_denied() {
    let h = Harness::start().await;
    for date in ["not a date", "Wed, 31 Dec 1969 23:59:59 GMT", "Thu, 01 Jan 1970 00:00:00 +0100"] {
        let sig = v2_sign(CSK, &format!("GET\n\n\n{date}\n/v2x"));
        let head = format!(
            "GET /v2x HTTP/1.1\r\nHost: x\r\nDate: {date}\r\nAuthorization: AWS {CAK}:{sig}\r\nConnection: close\r\n\r\n"
        );
        let r = raw_exchange(h.proxy_addr, &head, b"").await;
        assert_eq!(r.status, 403, "{date}");
        let b = r.body_str();
        assert!(b.contains("<Code>AccessDenied</Code>") && b.contains("valid Date"), "{date}: {b}");
    }
}

/// Hole 2 for V2: a hex `x-amz-content-sha256` is among the `x-amz-*` headers
/// V2 signs, so the body is held to it.
#[tokio::test]
async fn v2_signed_body_hash_is_enforced() {
    let h = Harness::start().await;
    h.client().create_bucket().bucket("v2h").send().await.unwrap();
    let good = sha256_hex(b"good");
    let r = v2_request(&h, "PUT", "/v2h/k", "/v2h/k", &[("x-amz-content-sha256", &good)], b"evil", CSK).await;
    assert_eq!(r.status, 400, "{}", r.body_str());
    assert!(r.body_str().contains("<Code>XAmzContentSHA256Mismatch</Code>"), "{}", r.body_str());
    assert!(!h.origin_has("v2h", "k").await);
    let r = v2_request(&h, "PUT", "/v2h/k", "/v2h/k", &[("x-amz-content-sha256", &good)], b"good", CSK).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(h.origin_get("v2h", "k").await, b"good");
}

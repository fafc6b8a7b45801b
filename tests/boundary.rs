//! The proxy as a security boundary (issue 11): whatever it forwards is
//! signed with the origin's keys, so it must never sign what the client did
//! not, and never let one request cost unbounded work. Each test pins one
//! hole found by a red-team review; each failed against the release before
//! the fix. The origin is a strict, in-process s3s-fs.

mod common;

use std::time::{Duration, SystemTime};

use common::*;

const GOOD_MD5: &str = "dV+FwnI7s5OBxzeaYEFg2A=="; // base64(md5("good"))

async fn bucket(h: &Harness, b: &str) {
    h.client().create_bucket().bucket(b).send().await.unwrap();
}

fn code(r: &RawResponse) -> String {
    let b = r.body_str();
    b.split_once("<Code>").and_then(|(_, r)| r.split_once("</Code>")).map_or(String::new(), |(c, _)| c.to_string())
}

/// Hole 1: `Connection` must not unpin what the signer pinned.
#[tokio::test]
async fn connection_cannot_strip_a_signed_header() {
    let h = Harness::start().await;
    bucket(&h, "bkt").await;
    let host = h.proxy_addr.to_string();
    let now = SystemTime::now();

    // Header auth: Content-MD5 signed, then named in Connection.
    let mut hs =
        sign_headers("PUT", &host, "/bkt/md5", &[("content-md5", GOOD_MD5)], "UNSIGNED-PAYLOAD", (CAK, CSK), now);
    hs.extend(owned(&[("content-md5", GOOD_MD5), ("content-length", "4"), ("connection", "keep-alive, Content-MD5")]));
    let r = raw_exchange(h.proxy_addr, &head("PUT", "/bkt/md5", &host, &hs), b"evil").await;
    assert_eq!((r.status, code(&r).as_str()), (400, "InvalidArgument"), "{}", r.body_str());
    assert!(!h.origin_has("bkt", "md5").await, "nothing stored");

    // Presigned GET whose signer pinned a Range: the whole object must not come back.
    h.client().put_object().bucket("bkt").key("obj").body(b"0123456789".to_vec().into()).send().await.unwrap();
    let pq = presign("GET", &host, "/bkt/obj", &[("range", "bytes=0-1")], Duration::from_secs(60), now);
    let hs = owned(&[("range", "bytes=0-1"), ("connection", "range")]);
    let r = raw_exchange(h.proxy_addr, &head("GET", &pq, &host, &hs), b"").await;
    assert_eq!((r.status, code(&r).as_str()), (400, "InvalidArgument"), "{}", r.body_str());
    // The same without the Connection trick is the 2-byte range the signer allowed.
    let r = raw_exchange(h.proxy_addr, &head("GET", &pq, &host, &owned(&[("range", "bytes=0-1")])), b"").await;
    assert_eq!((r.status, r.body_str().as_str()), (206, "01"));

    // An unsigned header named in Connection is hop-by-hop: dropped, and the request works.
    let hs = owned(&[("x-custom", "hop"), ("connection", "x-custom")]);
    let r = raw_exchange(h.proxy_addr, &head("GET", &pq, &host, &[owned(&[("range", "bytes=0-1")]), hs].concat()), b"")
        .await;
    assert_eq!(r.status, 206, "{}", r.body_str());
}

/// Hole 2: a presigned URL whose signer signed a hex `x-amz-content-sha256`
/// is held to it while streaming.
#[tokio::test]
async fn presigned_signed_body_hash_is_enforced() {
    let h = Harness::start().await;
    bucket(&h, "bkt").await;
    let host = h.proxy_addr.to_string();
    let good = sha256_hex(b"good");
    // aws-sigv4 never signs this header in a presigned URL, so sign by hand.
    let pq = presign_by_hand("PUT", &host, "/bkt/k", &[("x-amz-content-sha256", &good)]);
    for (body, want) in [(&b"evil"[..], 400), (b"good", 200)] {
        let hs = owned(&[("x-amz-content-sha256", &good), ("content-length", "4")]);
        let r = raw_exchange(h.proxy_addr, &head("PUT", &pq, &host, &hs), body).await;
        assert_eq!(r.status, want, "{}", r.body_str());
        if want == 400 {
            assert_eq!(code(&r), "XAmzContentSHA256Mismatch");
            assert!(!h.origin_has("bkt", "k").await, "nothing stored");
        }
    }
    assert_eq!(h.origin_get("bkt", "k").await, b"good");
}

/// Hole 3: SignedHeaders that repeat or are unsorted are refused, and the
/// error body of a huge mismatching request stays small.
#[tokio::test]
async fn signed_headers_are_strict_and_errors_are_bounded() {
    let h = Harness::start().await;
    let host = h.proxy_addr.to_string();
    let date = amz_date(time::OffsetDateTime::now_utc());
    let sig = "0".repeat(64);
    let authz = |signed: &str| {
        format!(
            "AWS4-HMAC-SHA256 Credential={CAK}/{}/us-east-1/s3/aws4_request, SignedHeaders={signed}, Signature={sig}",
            &date[..8]
        )
    };
    let base = |signed: &str| {
        owned(&[("x-amz-date", &date), ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"), ("authorization", &authz(signed))])
    };
    for signed in [
        "host;host;x-amz-content-sha256;x-amz-date",
        "x-amz-date;host;x-amz-content-sha256",
        "host;x-amz-content-sha256;x-amz-date;x-absent",
    ] {
        let r = raw_exchange(h.proxy_addr, &head("GET", "/bkt/k", &host, &base(signed)), b"").await;
        assert_eq!((r.status, code(&r).as_str()), (400, "AuthorizationHeaderMalformed"), "{signed}: {}", r.body_str());
    }
    // 90 large signed headers and a wrong signature: 403, and a small answer.
    let mut hs = base("");
    let names: Vec<String> = (0..90).map(|i| format!("x-big-{i:02}")).collect();
    let mut signed: Vec<&str> = vec!["host", "x-amz-content-sha256", "x-amz-date"];
    signed.extend(names.iter().map(String::as_str));
    signed.sort_unstable();
    hs.pop();
    hs.push(("authorization".into(), authz(&signed.join(";"))));
    hs.extend(names.iter().map(|n| (n.clone(), "v".repeat(150))));
    let r = raw_exchange(h.proxy_addr, &head("GET", "/bkt/k", &host, &hs), b"").await;
    assert_eq!((r.status, code(&r).as_str()), (403, "SignatureDoesNotMatch"), "{}", r.body_str());
    assert!(r.body.len() < 48 << 10, "error body of {} bytes", r.body.len());
    assert!(r.body_str().contains("[truncated by the proxy"), "says it cut the echo");
}

/// Hole 7: `Content-Length: 0` and a signed non-empty body hash.
#[tokio::test]
async fn zero_length_with_a_nonempty_signed_hash_is_a_mismatch() {
    let h = Harness::start().await;
    bucket(&h, "bkt").await;
    let host = h.proxy_addr.to_string();
    let hash = sha256_hex(b"x");
    let mut hs = sign_headers("PUT", &host, "/bkt/z", &[("content-length", "0")], &hash, (CAK, CSK), SystemTime::now());
    hs.push(("content-length".into(), "0".into()));
    let r = raw_exchange(h.proxy_addr, &head("PUT", "/bkt/z", &host, &hs), b"").await;
    assert_eq!((r.status, code(&r).as_str()), (400, "XAmzContentSHA256Mismatch"), "{}", r.body_str());
    assert!(!h.origin_has("bkt", "z").await);
}

/// Hole 9: the `x-amz-*` parameters of a presigned URL reach the origin as
/// the signed headers S3 reads them as (evidence in docs/ARCHITECTURE.md).
#[tokio::test]
async fn presigned_amz_parameters_become_signed_headers() {
    let h = Harness::start().await;
    bucket(&h, "bkt").await;
    let host = h.proxy_addr.to_string();
    let now = SystemTime::now();
    let pq = presign("PUT", &host, "/bkt/meta?x-amz-meta-owner=alice", &[], Duration::from_secs(60), now);
    let r = raw_exchange(h.proxy_addr, &head("PUT", &pq, &host, &owned(&[("content-length", "4")])), b"data").await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    let o = h.origin().head_object().bucket("bkt").key("meta").send().await.unwrap();
    assert_eq!(o.metadata().and_then(|m| m.get("owner")).map(String::as_str), Some("alice"));

    // A checksum the signer pinned (the CRC32 of an empty body, as the JS
    // presigner bakes in) is checked by the origin: a body that differs fails.
    let pq = presign("PUT", &host, "/bkt/crc?x-amz-checksum-crc32=AAAAAA%3D%3D", &[], Duration::from_secs(60), now);
    let r = raw_exchange(h.proxy_addr, &head("PUT", &pq, &host, &owned(&[("content-length", "4")])), b"data").await;
    assert_eq!(r.status, 400, "the origin applied the signed checksum: {}", r.body_str());

    // Also sent as a header: ambiguous, refused before the origin.
    let hs = owned(&[("content-length", "4"), ("x-amz-meta-owner", "mallory")]);
    let pq = presign(
        "PUT",
        &host,
        "/bkt/amb?x-amz-meta-owner=alice",
        &[("x-amz-meta-owner", "mallory")],
        Duration::from_secs(60),
        now,
    );
    let r = raw_exchange(h.proxy_addr, &head("PUT", &pq, &host, &hs), b"data").await;
    assert_eq!((r.status, code(&r).as_str()), (400, "InvalidArgument"), "{}", r.body_str());
    assert!(!h.origin_has("bkt", "amb").await);
}

/// Hole 10: the origin's own auth errors never reach the client.
#[tokio::test]
async fn origin_auth_errors_are_replaced() {
    let h = Harness::start_with(
        |v| v.iter_mut().filter(|(k, _)| k == "ORIGIN_SECRET_KEY").for_each(|(_, s)| *s = "wrong-origin-secret".into()),
        None,
    )
    .await;
    let host = h.proxy_addr.to_string();
    let hs = sign_headers("GET", &host, "/bkt/k", &[], "UNSIGNED-PAYLOAD", (CAK, CSK), SystemTime::now());
    let r = raw_exchange(h.proxy_addr, &head("GET", "/bkt/k", &host, &hs), b"").await;
    assert_eq!((r.status, code(&r).as_str()), (502, "BadGateway"), "{}", r.body_str());
    assert_eq!(r.header("retry-after"), None, "a credentials problem is not worth a retry");
    let b = r.body_str();
    for leak in [OAK, "StringToSign", "CanonicalRequest", "SignatureDoesNotMatch"] {
        assert!(!b.contains(leak), "{leak} leaked: {b}");
    }
    // Other origin errors pass through unchanged.
    let ok = Harness::start().await;
    bucket(&ok, "nobucket").await;
    let host = ok.proxy_addr.to_string();
    let hs = sign_headers("GET", &host, "/nobucket/k", &[], "UNSIGNED-PAYLOAD", (CAK, CSK), SystemTime::now());
    let r = raw_exchange(ok.proxy_addr, &head("GET", "/nobucket/k", &host, &hs), b"").await;
    assert_eq!((r.status, code(&r).as_str()), (404, "NoSuchKey"), "{}", r.body_str());
}

/// Methods: only S3's, even correctly signed; and ambiguity is refused.
#[tokio::test]
async fn methods_and_ambiguity() {
    let h = Harness::start().await;
    bucket(&h, "bkt").await;
    let host = h.proxy_addr.to_string();
    let now = SystemTime::now();
    for m in ["TRACE", "PATCH", "PROPFIND", "OPTIONS"] {
        let hs = sign_headers(m, &host, "/bkt/k", &[], "UNSIGNED-PAYLOAD", (CAK, CSK), now);
        let r = raw_exchange(h.proxy_addr, &head(m, "/bkt/k", &host, &hs), b"").await;
        assert_eq!((r.status, code(&r).as_str()), (405, "MethodNotAllowed"), "{m}");
    }
    let hs = sign_headers("GET", &host, "/bkt", &[], "UNSIGNED-PAYLOAD", (CAK, CSK), now);
    let authz = hs.iter().find(|(k, _)| k == "authorization").unwrap().1.clone();
    let ok = raw_exchange(h.proxy_addr, &head("GET", "/bkt", &host, &hs), b"").await;
    assert_eq!(ok.status, 200, "{}", ok.body_str());
    for extra in [
        ("authorization", authz.as_str()),
        ("authorization", ""),
        ("authorization", "AWS CLIENTKEYEXAMPLE:abc="),
        ("x-amz-date", "20200101T000000Z"),
        ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
        ("host", "other.example"),
    ] {
        let mut two = hs.clone();
        two.push((extra.0.to_string(), extra.1.to_string()));
        let r = raw_exchange(h.proxy_addr, &head("GET", "/bkt", &host, &two), b"").await;
        assert_eq!((r.status, code(&r).as_str()), (400, "InvalidArgument"), "two {}: {}", extra.0, r.body_str());
    }
    // X-Amz-Expires with a sign: one spelling per number.
    let pq = presign("GET", &host, "/bkt", &[], Duration::from_secs(60), now)
        .replace("X-Amz-Expires=60", "X-Amz-Expires=%2B60");
    let r = raw_exchange(h.proxy_addr, &head("GET", &pq, &host, &[]), b"").await;
    assert_eq!((r.status, code(&r).as_str()), (400, "AuthorizationQueryParametersError"), "{}", r.body_str());
}

/// A SigV4 presigned URL written out from the AWS page (sigv4-query-string-auth),
/// for what aws-sigv4 will not sign: `headers` (sorted, lower case) are signed
/// besides `host`; the payload line is UNSIGNED-PAYLOAD.
fn presign_by_hand(method: &str, host: &str, path: &str, headers: &[(&str, &str)]) -> String {
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};
    fn mac(key: &[u8], msg: &str) -> Vec<u8> {
        let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
        m.update(msg.as_bytes());
        m.finalize().into_bytes().to_vec()
    }
    let now = time::OffsetDateTime::now_utc();
    let date = amz_date(now);
    let scope = format!("{}/us-east-1/s3/aws4_request", &date[..8]);
    let mut names: Vec<&str> = headers.iter().map(|(k, _)| *k).chain(["host"]).collect();
    names.sort_unstable();
    let signed = names.join(";");
    const S3: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    let enc = |s: &str| percent_encoding::utf8_percent_encode(s, S3).to_string();
    let mut q = [
        ("X-Amz-Algorithm".to_string(), "AWS4-HMAC-SHA256".to_string()),
        ("X-Amz-Credential".into(), enc(&format!("{CAK}/{scope}"))),
        ("X-Amz-Date".into(), date.clone()),
        ("X-Amz-Expires".into(), "60".into()),
        ("X-Amz-SignedHeaders".into(), enc(&signed)),
    ];
    q.sort();
    let query: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let query = query.join("&");
    let value = |n: &str| if n == "host" { host } else { headers.iter().find(|(k, _)| *k == n).unwrap().1 };
    let canon_headers: String = names.iter().map(|n| format!("{n}:{}\n", value(n))).collect();
    let creq = format!("{method}\n{path}\n{query}\n{canon_headers}\n{signed}\nUNSIGNED-PAYLOAD");
    let sts = format!("AWS4-HMAC-SHA256\n{date}\n{scope}\n{}", hex::encode(Sha256::digest(creq.as_bytes())));
    let mut key = mac(format!("AWS4{CSK}").as_bytes(), &date[..8]);
    for part in ["us-east-1", "s3", "aws4_request"] {
        key = mac(&key, part);
    }
    format!("{path}?{query}&X-Amz-Signature={}", hex::encode(mac(&key, &sts)))
}

/// `YYYYMMDDTHHMMSSZ`
fn amz_date(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

//! Vanity domains (issue 13): aws-sdk-s3 in its default, virtual-hosted
//! addressing against `http://s3.vanity.test:PORT`, every name resolved to
//! 127.0.0.1 by a resolver hook in the SDK's HTTP client (and in reqwest), so
//! no /etc/hosts entry is needed. Each result is checked at the origin with
//! the origin's own credentials, path-style. Where "the origin sees nothing"
//! matters, a [`Relay`] between the proxy and the origin records every byte.

mod common;

use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use common::v2;
use common::*;
use sha2::{Digest, Sha256};

const DOMAIN: &str = "s3.vanity.test";

fn vhd(v: &mut Vec<(String, String)>) {
    set_var(v, "VIRTUAL_HOST_DOMAINS", DOMAIN);
}

/// `http://s3.vanity.test:<proxy port>`.
fn endpoint(h: &Harness) -> String {
    format!("http://{DOMAIN}:{}", h.proxy_addr.port())
}

/// `<bucket>.s3.vanity.test:<proxy port>`.
fn vhost(h: &Harness, bucket: &str) -> String {
    format!("{bucket}.{DOMAIN}:{}", h.proxy_addr.port())
}

/// The SDK in its default addressing, toward the vanity endpoint.
fn vanity(h: &Harness) -> (aws_sdk_s3::Client, Uris) {
    loopback_client(&endpoint(h), (CAK, CSK), false)
}

fn presigning() -> PresigningConfig {
    PresigningConfig::expires_in(Duration::from_secs(300)).unwrap()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

async fn read_all(o: aws_sdk_s3::operation::get_object::GetObjectOutput) -> Vec<u8> {
    o.body.collect().await.unwrap().into_bytes().to_vec()
}

async fn origin_put(h: &Harness, bucket: &str, key: &str, body: &[u8]) {
    h.origin().put_object().bucket(bucket).key(key).body(ByteStream::from(body.to_vec())).send().await.unwrap();
}

async fn origin_bucket(h: &Harness, bucket: &str) -> bool {
    h.origin().head_bucket().bucket(bucket).send().await.is_ok()
}

/// A header-signed request (aws-sigv4) for `signed_host`, sent to the proxy
/// with `Host: sent_host` and the unsigned `extra` headers after the signed ones.
async fn signed_for(
    h: &Harness,
    method: &str,
    signed_host: &str,
    sent_host: &str,
    path: &str,
    body: &[u8],
    extra: &[(&str, &str)],
) -> RawResponse {
    let mut headers = sign_headers(method, signed_host, path, &[], &sha256_hex(body), (CAK, CSK), SystemTime::now());
    headers.extend(owned(extra));
    headers.push(("Content-Length".into(), body.len().to_string()));
    headers.push(("Connection".into(), "close".into()));
    raw_exchange(h.proxy_addr, &head(method, path, sent_host, &headers), body).await
}

/// As [`signed_for`], with the `covered` headers sent and covered by the signature.
async fn signed_covering(
    h: &Harness,
    method: &str,
    signed_host: &str,
    sent_host: &str,
    path: &str,
    covered: &[(&str, &str)],
) -> RawResponse {
    let mut headers = sign_headers(method, signed_host, path, covered, &sha256_hex(b""), (CAK, CSK), SystemTime::now());
    headers.extend(owned(covered));
    headers.push(("Connection".into(), "close".into()));
    raw_exchange(h.proxy_addr, &head(method, path, sent_host, &headers), b"").await
}

/// An error response with `status` and S3 XML `code`.
fn assert_error(r: &RawResponse, status: u16, code: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.body_str());
    assert!(r.body_str().contains(&format!("<Code>{code}</Code>")), "{what}: want {code}: {}", r.body_str());
}

fn upstream_len(relay: &Relay) -> usize {
    relay.upstream.lock().unwrap().len()
}

// ---------------------------------------------------------------------------
// 1. The SDK's default addressing on a vanity domain.

#[tokio::test]
async fn sdk_default_addressing_puts_the_bucket_in_the_host_and_acts_on_that_bucket() {
    let h = Harness::start_with(vhd, None).await;
    let (c, uris) = vanity(&h);

    c.create_bucket().bucket("bkt").send().await.expect("CreateBucket as PUT / on bkt.<domain>");
    assert!(origin_bucket(&h, "bkt").await, "bucket made at the origin");

    for (k, v) in [("dir/a.txt", "A"), ("dir/b.txt", "BB"), ("dir/sub/c.txt", "CCC"), ("top.txt", "TTTT")] {
        c.put_object()
            .bucket("bkt")
            .key(k)
            .content_type("text/plain")
            .metadata("color", "blue")
            .body(ByteStream::from(v.as_bytes().to_vec()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {k}: {e:?}"));
        assert_eq!(h.origin_get("bkt", k).await, v.as_bytes(), "origin holds bkt/{k}");
    }
    // Nothing landed in a bucket named after the key's first segment.
    assert!(!origin_bucket(&h, "dir").await && !origin_bucket(&h, "top.txt").await);

    let got = c.get_object().bucket("bkt").key("dir/b.txt").send().await.unwrap();
    assert_eq!(read_all(got).await, b"BB");

    let hd = c.head_object().bucket("bkt").key("dir/sub/c.txt").send().await.unwrap();
    assert_eq!(hd.content_length(), Some(3));
    assert_eq!(hd.content_type(), Some("text/plain"));
    assert_eq!(hd.metadata().unwrap().get("color").map(String::as_str), Some("blue"));

    let l = c.list_objects_v2().bucket("bkt").prefix("dir/").delimiter("/").send().await.unwrap();
    let keys: Vec<_> = l.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, ["dir/a.txt", "dir/b.txt"]);
    let prefixes: Vec<_> = l.common_prefixes().iter().filter_map(|p| p.prefix()).collect();
    assert_eq!(prefixes, ["dir/sub/"]);

    c.copy_object().bucket("bkt").key("copy.txt").copy_source("bkt/dir/a.txt").send().await.unwrap();
    assert_eq!(h.origin_get("bkt", "copy.txt").await, b"A", "copied at the origin");

    c.delete_object().bucket("bkt").key("dir/b.txt").send().await.unwrap();
    assert!(!h.origin_has("bkt", "dir/b.txt").await, "deleted at the origin");
    assert!(h.origin_has("bkt", "dir/a.txt").await, "and only that one");

    // Every request above went to bkt.<domain>: the SDK really addressed virtual-hosted.
    let bucket_base = format!("http://{}/", vhost(&h, "bkt"));
    let sent = uris.take();
    assert!(sent.len() >= 10 && sent.iter().all(|u| u.starts_with(&bucket_base)), "{sent:?}");

    let lb = c.list_buckets().send().await.expect("ListBuckets on the bare domain");
    let names: Vec<_> = lb.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["bkt"]);
    let sent = uris.take();
    let paths: Vec<_> = sent.iter().map(|u| u.split('?').next().unwrap()).collect();
    assert_eq!(paths, [format!("{}/", endpoint(&h))], "ListBuckets went to the bare domain");

    for k in ["dir/a.txt", "dir/sub/c.txt", "top.txt", "copy.txt"] {
        c.delete_object().bucket("bkt").key(k).send().await.unwrap();
    }
    c.delete_bucket().bucket("bkt").send().await.expect("DeleteBucket as DELETE / on bkt.<domain>");
    assert!(!origin_bucket(&h, "bkt").await, "bucket gone at the origin");
    assert!(uris.take().iter().all(|u| u.starts_with(&bucket_base)));
}

#[tokio::test]
async fn sdk_three_part_multipart_upload_virtual_hosted() {
    let h = Harness::start_with(vhd, None).await;
    let (c, uris) = vanity(&h);
    c.create_bucket().bucket("mpu").send().await.unwrap();
    let up = c.create_multipart_upload().bucket("mpu").key("big/file.bin").send().await.unwrap();
    let id = up.upload_id().unwrap();
    let parts = [pattern(5 << 20, 1), pattern(5 << 20, 2), pattern(1234, 3)];
    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let r = c
            .upload_part()
            .bucket("mpu")
            .key("big/file.bin")
            .upload_id(id)
            .part_number(n)
            .body(ByteStream::from(p.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("part {n}: {e:?}"));
        done.push(CompletedPart::builder().part_number(n).e_tag(r.e_tag().unwrap()).build());
    }
    c.complete_multipart_upload()
        .bucket("mpu")
        .key("big/file.bin")
        .upload_id(id)
        .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(done)).build())
        .send()
        .await
        .unwrap();
    assert_eq!(h.origin_get("mpu", "big/file.bin").await, parts.concat(), "the origin holds the three parts");
    let base = format!("http://{}/", vhost(&h, "mpu"));
    let sent = uris.take();
    assert!(sent.len() >= 6 && sent.iter().all(|u| u.starts_with(&base)), "{sent:?}");
}

#[tokio::test]
async fn sdk_presigned_get_and_put_virtual_hosted() {
    let h = Harness::start_with(vhd, None).await;
    let (c, _) = vanity(&h);
    c.create_bucket().bucket("pre").send().await.unwrap();
    let http = loopback_http();
    let base = format!("http://{}/", vhost(&h, "pre"));

    let put = c.put_object().bucket("pre").key("up load+é.txt").presigned(presigning()).await.unwrap();
    assert!(put.uri().starts_with(&base), "{}", put.uri());
    let r = http.put(put.uri()).body("presigned body").send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(h.origin_get("pre", "up load+é.txt").await, b"presigned body");

    let get = c
        .get_object()
        .bucket("pre")
        .key("up load+é.txt")
        .response_content_type("text/x-test")
        .presigned(presigning())
        .await
        .unwrap();
    assert!(get.uri().starts_with(&base), "{}", get.uri());
    let r = http.get(get.uri()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/x-test", "response-* parameters reach the origin");
    assert_eq!(r.text().await.unwrap(), "presigned body");

    // The same URL with the bucket moved into the path is another request.
    let moved = get.uri().replacen(&base, &format!("{}/pre/", endpoint(&h)), 1);
    let r = http.get(&moved).send().await.unwrap();
    assert_eq!(r.status(), 403, "a URL signed for the bucket's host does not work for the bare domain");
}

/// s3s-fs keeps objects as files, so at the origin `a/../b` and `b` are one
/// object: the relay shows the name each request reached the origin with.
#[tokio::test]
async fn sdk_awkward_keys_virtual_hosted_land_under_the_same_name() {
    let (h, relay) = Harness::start_relayed(vhd, false).await;
    let (c, uris) = vanity(&h);
    c.create_bucket().bucket("keys").send().await.unwrap();
    let keys = ["a b", "a+b", "a=b", "é", "a/../b", "x//y", "sp  two", "./dot", "100%"];
    for key in keys {
        let body = format!("body of {key}");
        c.put_object()
            .bucket("keys")
            .key(key)
            .body(ByteStream::from(body.clone().into_bytes()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key:?}: {e:?}"));
        let got = c.get_object().bucket("keys").key(key).send().await.unwrap_or_else(|e| panic!("get {key:?}: {e:?}"));
        assert_eq!(read_all(got).await, body.as_bytes(), "{key}");
        assert_eq!(h.origin_get("keys", key).await, body.as_bytes(), "origin holds {key:?}");
    }
    let reached: Vec<(String, String)> = seen_heads(&relay)
        .into_iter()
        .map(|hd| {
            let path = hd.target.split('?').next().unwrap().to_string();
            (hd.method, percent_encoding::percent_decode_str(&path).decode_utf8().unwrap().into_owned())
        })
        .collect();
    for key in keys {
        for m in ["PUT", "GET"] {
            let want = (m.to_string(), format!("/keys/{key}"));
            assert!(reached.contains(&want), "{m} {key:?} reached the origin as {want:?}: {reached:?}");
        }
    }
    let base = format!("http://{}/", vhost(&h, "keys"));
    assert!(uris.take().iter().all(|u| u.starts_with(&base)));
}

/// The Rust SDK sends a dotted bucket path-style (on the bare domain) even over
/// http; the same operations virtual-hosted are sent raw below.
#[tokio::test]
async fn dotted_bucket_through_the_sdk_and_virtual_hosted() {
    let h = Harness::start_with(vhd, None).await;
    let (c, _) = vanity(&h);
    let b = "my.dotted.bkt";
    c.create_bucket().bucket(b).send().await.unwrap();
    assert!(origin_bucket(&h, b).await);
    c.put_object().bucket(b).key("k/v.txt").body(ByteStream::from_static(b"dotted")).send().await.unwrap();
    assert_eq!(h.origin_get(b, "k/v.txt").await, b"dotted");
    let got = c.get_object().bucket(b).key("k/v.txt").send().await.unwrap();
    assert_eq!(read_all(got).await, b"dotted");
    let l = c.list_objects_v2().bucket(b).prefix("k/").send().await.unwrap();
    assert_eq!(l.contents().iter().filter_map(|o| o.key()).collect::<Vec<_>>(), ["k/v.txt"]);
    c.delete_object().bucket(b).key("k/v.txt").send().await.unwrap();
    c.delete_bucket().bucket(b).send().await.unwrap();
    assert!(!origin_bucket(&h, b).await);

    // Virtual-hosted: my.dotted.bkt.s3.vanity.test.
    let host = vhost(&h, b);
    let r = signed_for(&h, "PUT", &host, &host, "/", b"", &[]).await;
    assert_eq!(r.status, 200, "CreateBucket: {}", r.body_str());
    assert!(origin_bucket(&h, b).await);
    let r = signed_for(&h, "PUT", &host, &host, "/k/v%20w.txt", b"dotted vh", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(h.origin_get(b, "k/v w.txt").await, b"dotted vh");
    let r = signed_for(&h, "GET", &host, &host, "/k/v%20w.txt", b"", &[]).await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"dotted vh"[..]), "{}", r.body_str());
    let r = signed_for(&h, "GET", &host, &host, "/?list-type=2&prefix=k%2F", b"", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert!(r.body_str().contains("<Key>k/v w.txt</Key>"), "{}", r.body_str());
    let pq = presign("GET", &host, "/k/v%20w.txt", &[], Duration::from_secs(60), SystemTime::now());
    let r = loopback_http().get(format!("http://{host}{pq}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"dotted vh");
    let r = signed_for(&h, "DELETE", &host, &host, "/k/v%20w.txt", b"", &[]).await;
    assert_eq!(r.status, 204, "{}", r.body_str());
    assert!(!h.origin_has(b, "k/v w.txt").await);
    let r = signed_for(&h, "DELETE", &host, &host, "/", b"", &[]).await;
    assert_eq!(r.status, 204, "DeleteBucket: {}", r.body_str());
    assert!(!origin_bucket(&h, b).await);
}

/// aws-chunked with signed chunks, virtual-hosted: the seed signature covers
/// the bucket's host, and the chunks chain from it.
#[tokio::test]
async fn signed_aws_chunked_upload_virtual_hosted() {
    use hmac::{Hmac, Mac};
    let h = Harness::start_with(vhd, None).await;
    h.origin().create_bucket().bucket("chunky").send().await.unwrap();
    let host = vhost(&h, "chunky");
    let data = pattern(200_000, 7);
    let dlen = data.len().to_string();
    let signed = [("content-encoding", "aws-chunked"), ("x-amz-decoded-content-length", dlen.as_str())];
    let path = "/chunk%20ed.bin";
    let payload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
    let hs = sign_headers("PUT", &host, path, &signed, payload, (CAK, CSK), SystemTime::now());
    let date = hs.iter().find(|(k, _)| k == "x-amz-date").unwrap().1.clone();
    let mut prev =
        hs.iter().find(|(k, _)| k == "authorization").unwrap().1.rsplit("Signature=").next().unwrap().to_string();
    let mut key = format!("AWS4{CSK}").into_bytes();
    for part in [&date[..8], "us-east-1", "s3", "aws4_request"] {
        let mut m = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        m.update(part.as_bytes());
        key = m.finalize().into_bytes().to_vec();
    }
    let empty = hex::encode(Sha256::digest(b""));
    let mut body = Vec::new();
    for c in data.chunks(65_536).chain(std::iter::once(&[][..])) {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{date}\n{}/us-east-1/s3/aws4_request\n{prev}\n{empty}\n{}",
            &date[..8],
            hex::encode(Sha256::digest(c))
        );
        let mut m = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        m.update(sts.as_bytes());
        prev = hex::encode(m.finalize().into_bytes());
        body.extend_from_slice(format!("{:x};chunk-signature={prev}\r\n", c.len()).as_bytes());
        body.extend_from_slice(c);
        body.extend_from_slice(b"\r\n");
    }
    let mut headers = hs;
    headers.extend(owned(&signed));
    headers.push(("Content-Length".into(), body.len().to_string()));
    headers.push(("Connection".into(), "close".into()));
    let r = raw_exchange(h.proxy_addr, &head("PUT", path, &host, &headers), &body).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(h.origin_get("chunky", "chunk ed.bin").await, data, "the origin holds the decoded bytes");
}

/// Host names are case-insensitive: the domain matches in any case, and the
/// request is verified over the Host as the client sent (and signed) it.
#[tokio::test]
async fn domain_match_is_case_insensitive() {
    let h = Harness::start_with(vhd, None).await;
    h.origin().create_bucket().bucket("casey").send().await.unwrap();
    origin_put(&h, "casey", "k", b"case").await;
    let host = format!("casey.S3.Vanity.TEST:{}", h.proxy_addr.port());
    let r = signed_for(&h, "GET", &host, &host, "/k", b"", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(r.body, b"case");
}

// ---------------------------------------------------------------------------
// 2. The red-team case: the Host names the bucket, never the first path segment.

#[tokio::test]
async fn url_for_public_private_x_reads_public_never_bucket_private() {
    let h = Harness::start_with(vhd, None).await;
    for b in ["public", "private"] {
        h.origin().create_bucket().bucket(b).send().await.unwrap();
    }
    origin_put(&h, "public", "private/x", b"public's private/x").await;
    origin_put(&h, "private", "x", b"SECRET of bucket private").await;
    let host = vhost(&h, "public");
    let close = owned(&[("Connection", "close")]);

    // A URL presigned by an independent signer (aws-sigv4).
    let pq = presign("GET", &host, "/private/x", &[], Duration::from_secs(300), SystemTime::now());
    let r = raw_exchange(h.proxy_addr, &head("GET", &pq, &host, &close), b"").await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(r.body, b"public's private/x");

    // The SDK's own presigned URL, fetched through the resolver.
    let (c, _) = vanity(&h);
    let url = c.get_object().bucket("public").key("private/x").presigned(presigning()).await.unwrap();
    assert!(url.uri().starts_with(&format!("http://{host}/private/x?")), "{}", url.uri());
    let r = loopback_http().get(url.uri()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"public's private/x");

    // Header-signed, the same.
    let r = signed_for(&h, "GET", &host, &host, "/private/x", b"", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(r.body, b"public's private/x");

    // With public's object gone, the same URL is NoSuchKey, not private's x.
    h.origin().delete_object().bucket("public").key("private/x").send().await.unwrap();
    let r = raw_exchange(h.proxy_addr, &head("GET", &pq, &host, &close), b"").await;
    assert_error(&r, 404, "NoSuchKey", "public's private/x deleted");
    assert!(!r.body_str().contains("SECRET"), "{}", r.body_str());

    // A PUT presigned for public.<domain>/private/x writes public, never private's x.
    let pq = presign("PUT", &host, "/private/x", &[], Duration::from_secs(300), SystemTime::now());
    let mut hs = close.clone();
    hs.push(("Content-Length".into(), "9".into()));
    let r = raw_exchange(h.proxy_addr, &head("PUT", &pq, &host, &hs), b"overwrite").await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(h.origin_get("public", "private/x").await, b"overwrite");
    assert_eq!(h.origin_get("private", "x").await, b"SECRET of bucket private", "bucket private untouched");

    // A DELETE signed for public.<domain>/private/x deletes public's object only.
    let r = signed_for(&h, "DELETE", &host, &host, "/private/x", b"", &[]).await;
    assert_eq!(r.status, 204, "{}", r.body_str());
    assert!(!h.origin_has("public", "private/x").await);
    assert!(h.origin_has("private", "x").await, "bucket private untouched");
}

// ---------------------------------------------------------------------------
// 3. ORIGIN_ADDRESSING=virtual.

fn virtual_origin_vars(v: &mut Vec<(String, String)>) {
    vhd(v);
    set_var(v, "ORIGIN_ADDRESSING", "virtual");
}

#[tokio::test]
async fn virtual_origin_gets_the_bucket_in_its_host_and_only_the_key_in_the_path() {
    let (h, relay) = Harness::start_relayed(virtual_origin_vars, true).await;
    let origin_host = |b: &str| format!("{b}.localhost:{}", relay.addr.port());

    // A virtual-hosted client.
    let (c, _) = vanity(&h);
    c.create_bucket().bucket("vbkt").send().await.unwrap();
    assert!(origin_bucket(&h, "vbkt").await);
    for (k, v) in [("k/one.txt", "one"), ("k/sub/two.txt", "two"), ("three", "three")] {
        c.put_object().bucket("vbkt").key(k).body(ByteStream::from(v.as_bytes().to_vec())).send().await.unwrap();
        assert_eq!(h.origin_get("vbkt", k).await, v.as_bytes());
    }
    let got = c.get_object().bucket("vbkt").key("k/one.txt").send().await.unwrap();
    assert_eq!(read_all(got).await, b"one");
    let l = c.list_objects_v2().bucket("vbkt").prefix("k/").delimiter("/").send().await.unwrap();
    assert_eq!(l.contents().iter().filter_map(|o| o.key()).collect::<Vec<_>>(), ["k/one.txt"]);
    assert_eq!(l.common_prefixes().iter().filter_map(|p| p.prefix()).collect::<Vec<_>>(), ["k/sub/"]);

    let heads = seen_heads(&relay);
    assert!(heads.len() >= 6, "{heads:#?}");
    for hd in &heads {
        assert_eq!(hd.host().to_ascii_lowercase(), origin_host("vbkt"), "bucket in the origin Host: {hd:?}");
        assert!(!hd.target.starts_with("/vbkt"), "only the key in the path: {hd:?}");
    }
    let has = |m: &str, pred: &dyn Fn(&str) -> bool| heads.iter().any(|hd| hd.method == m && pred(&hd.target));
    assert!(has("PUT", &|t| t == "/"), "CreateBucket as PUT /: {heads:#?}");
    assert!(has("PUT", &|t| t == "/k/one.txt" || t.starts_with("/k/one.txt?")), "{heads:#?}");
    assert!(has("GET", &|t| t.starts_with("/k/one.txt")), "{heads:#?}");
    assert!(has("GET", &|t| t.starts_with("/?") && t.contains("list-type=2")), "ListObjectsV2 on /: {heads:#?}");
    let seen = heads.len();

    // A path-style client of the proxy: the origin still gets virtual-hosted requests.
    let p = h.client();
    p.put_object().bucket("vbkt").key("path style.txt").body(ByteStream::from_static(b"ps")).send().await.unwrap();
    assert_eq!(h.origin_get("vbkt", "path style.txt").await, b"ps");
    let got = p.get_object().bucket("vbkt").key("path style.txt").send().await.unwrap();
    assert_eq!(read_all(got).await, b"ps");
    let lb = p.list_buckets().send().await.expect("ListBuckets");
    assert_eq!(lb.buckets().iter().filter_map(|b| b.name()).collect::<Vec<_>>(), ["vbkt"]);
    p.create_bucket().bucket("my.dotted.bkt").send().await.unwrap();
    p.put_object().bucket("my.dotted.bkt").key("d").body(ByteStream::from_static(b"dot")).send().await.unwrap();
    assert_eq!(h.origin_get("my.dotted.bkt", "d").await, b"dot");

    let heads = seen_heads(&relay)[seen..].to_vec();
    let find = |m: &str, t: &str| heads.iter().find(|hd| hd.method == m && hd.target.split('?').next() == Some(t));
    let put = find("PUT", "/path%20style.txt").unwrap_or_else(|| panic!("{heads:#?}"));
    assert_eq!(put.host().to_ascii_lowercase(), origin_host("vbkt"));
    let get = find("GET", "/path%20style.txt").unwrap_or_else(|| panic!("{heads:#?}"));
    assert_eq!(get.host().to_ascii_lowercase(), origin_host("vbkt"));
    let lb = find("GET", "/").unwrap_or_else(|| panic!("ListBuckets: {heads:#?}"));
    assert_eq!(
        lb.host().to_ascii_lowercase(),
        format!("localhost:{}", relay.addr.port()),
        "ListBuckets on the bare host"
    );
    // Over http, a dotted bucket goes virtual-hosted too (only https sends it path-style).
    let cb = find("PUT", "/").unwrap_or_else(|| panic!("CreateBucket: {heads:#?}"));
    assert_eq!(cb.host().to_ascii_lowercase(), origin_host("my.dotted.bkt"));
    let pd = find("PUT", "/d").unwrap_or_else(|| panic!("{heads:#?}"));
    assert_eq!(pd.host().to_ascii_lowercase(), origin_host("my.dotted.bkt"));
    assert!(
        heads.iter().all(|hd| !hd.target.starts_with("/vbkt") && !hd.target.starts_with("/my.dotted")),
        "{heads:#?}"
    );
}

// ---------------------------------------------------------------------------
// 4. Bad bucket labels.

#[tokio::test]
async fn bad_bucket_labels_are_invalid_bucket_name_and_never_forwarded() {
    let (h, relay) = Harness::start_relayed(vhd, false).await;
    let port = h.proxy_addr.port();
    let long = "a".repeat(64);
    let labels =
        ["UPPER", "Bkt", "ab", "-bad", "bad-", "a..b", ".lead", "under_score", long.as_str(), "192.168.1.1", ""];
    for label in labels {
        let host = format!("{label}.{DOMAIN}:{port}");
        for (method, path) in [("GET", "/key"), ("PUT", "/"), ("GET", "/")] {
            let r = signed_for(&h, method, &host, &host, path, b"", &[]).await;
            assert_error(&r, 400, "InvalidBucketName", &format!("{method} {path} on {host}"));
        }
        // Presigned, the same.
        let pq = presign("GET", &host, "/key", &[], Duration::from_secs(60), SystemTime::now());
        let r = raw_exchange(h.proxy_addr, &head("GET", &pq, &host, &owned(&[("Connection", "close")])), b"").await;
        assert_error(&r, 400, "InvalidBucketName", &format!("presigned on {host}"));
    }
    assert_eq!(Relay::count(&relay.accepted), 0, "the origin saw nothing");
    assert_eq!(upstream_len(&relay), 0);

    // The relay is in the path: a valid label (63 characters) gets through.
    let ok = "a".repeat(63);
    h.origin().create_bucket().bucket(&ok).send().await.unwrap();
    let host = format!("{ok}.{DOMAIN}:{port}");
    let r = signed_for(&h, "GET", &host, &host, "/?list-type=2", b"", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert!(Relay::count(&relay.accepted) >= 1);
}

// ---------------------------------------------------------------------------
// 5. ALLOWED_HOSTS.

#[tokio::test]
async fn allowed_hosts_refuses_other_signed_hosts_before_forwarding() {
    let (h, relay) = Harness::start_relayed(
        |v| {
            vhd(v);
            set_var(v, "ALLOWED_HOSTS", &format!("{DOMAIN}:*,*.{DOMAIN}:*,*.{DOMAIN}"));
        },
        false,
    )
    .await;
    let port = h.proxy_addr.port();
    h.origin().create_bucket().bucket("allowed").send().await.unwrap();
    origin_put(&h, "allowed", "k", b"inside").await;

    // Signed for the proxy's own address, for a host elsewhere, and presigned for one.
    let ip = h.proxy_addr.to_string();
    let r = signed_for(&h, "GET", &ip, &ip, "/allowed/k", b"", &[]).await;
    assert_error(&r, 400, "InvalidRequest", "signed for 127.0.0.1:port");
    let other = format!("other.example:{port}");
    let r = signed_for(&h, "PUT", &other, &other, "/allowed/k", b"evil", &[]).await;
    assert_error(&r, 400, "InvalidRequest", "signed for other.example");
    let pq = presign("GET", &other, "/allowed/k", &[], Duration::from_secs(60), SystemTime::now());
    let r = raw_exchange(h.proxy_addr, &head("GET", &pq, &other, &owned(&[("Connection", "close")])), b"").await;
    assert_error(&r, 400, "InvalidRequest", "presigned for other.example");
    // A look-alike suffix is not under the domain.
    let evil = format!("allowed.evil{DOMAIN}:{port}");
    let r = signed_for(&h, "GET", &evil, &evil, "/k", b"", &[]).await;
    assert_error(&r, 400, "InvalidRequest", "signed for allowed.evils3.vanity.test");
    assert_eq!(Relay::count(&relay.accepted), 0, "the origin saw nothing");
    assert_eq!(h.origin_get("allowed", "k").await, b"inside");

    // /healthz is unaffected (whatever Host it is asked under).
    let r = raw_exchange(h.proxy_addr, &head("GET", "/healthz", &ip, &owned(&[("Connection", "close")])), b"").await;
    assert_eq!(r.status, 200, "{}", r.body_str());

    // Inside: the vanity client, virtual-hosted and on the bare domain.
    let (c, _) = vanity(&h);
    let got = c.get_object().bucket("allowed").key("k").send().await.unwrap();
    assert_eq!(read_all(got).await, b"inside");
    c.put_object().bucket("allowed").key("k2").body(ByteStream::from_static(b"in2")).send().await.unwrap();
    assert_eq!(h.origin_get("allowed", "k2").await, b"in2");
    assert!(c.list_buckets().send().await.is_ok(), "the bare domain matches {DOMAIN}:*");
    // `*.` matches more than one label (a dotted bucket), and a pattern
    // without a port matches a Host without one.
    h.origin().create_bucket().bucket("a.b.c").send().await.unwrap();
    origin_put(&h, "a.b.c", "k", b"dotted").await;
    let dotted = format!("a.b.c.{DOMAIN}:{port}");
    let r = signed_for(&h, "GET", &dotted, &dotted, "/k", b"", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(r.body, b"dotted");
    let portless = format!("allowed.{DOMAIN}");
    let r = signed_for(&h, "GET", &portless, &portless, "/k", b"", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(r.body, b"inside");
}

#[tokio::test]
async fn allowed_hosts_pattern_without_a_port_matches_only_a_host_without_one() {
    let (h, relay) = Harness::start_relayed(
        |v| {
            vhd(v);
            set_var(v, "ALLOWED_HOSTS", &format!("*.{},[::1]:*", DOMAIN.to_ascii_uppercase()));
        },
        false,
    )
    .await;
    h.origin().create_bucket().bucket("bkt").send().await.unwrap();
    origin_put(&h, "bkt", "k", b"v").await;
    let with_port = vhost(&h, "bkt");
    let r = signed_for(&h, "GET", &with_port, &with_port, "/k", b"", &[]).await;
    assert_error(&r, 400, "InvalidRequest", "a port the pattern does not allow");
    // `*.` needs at least one label: the bare domain is outside.
    let bare = DOMAIN.to_string();
    let r = signed_for(&h, "GET", &bare, &bare, "/bkt/k", b"", &[]).await;
    assert_error(&r, 400, "InvalidRequest", "the bare domain is not *.domain");
    let v6 = format!("[::2]:{}", h.proxy_addr.port());
    let r = signed_for(&h, "GET", &v6, &v6, "/bkt/k", b"", &[]).await;
    assert_error(&r, 400, "InvalidRequest", "[::2] is not [::1]");
    assert_eq!(Relay::count(&relay.accepted), 0, "the origin saw nothing");
    let v6 = format!("[::1]:{}", h.proxy_addr.port());
    let r = signed_for(&h, "GET", &v6, &v6, "/bkt/k", b"", &[]).await;
    assert_eq!(r.status, 200, "[::1]:* allows [::1]:port: {}", r.body_str());
    assert_eq!(r.body, b"v");
    // Case-insensitive, without a port: inside.
    let portless = format!("bkt.{DOMAIN}");
    let r = signed_for(&h, "GET", &portless, &portless, "/k", b"", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(r.body, b"v");
}

// ---------------------------------------------------------------------------
// 6. PUBLIC_HOST.

#[tokio::test]
async fn public_host_is_the_host_signatures_are_checked_against() {
    let h = Harness::start_with(|v| set_var(v, "PUBLIC_HOST", "cdn.example.com"), None).await;
    h.origin().create_bucket().bucket("pub").send().await.unwrap();
    let internal = "internal.svc:8080";

    // Signed for the public name, received with the CDN's rewritten Host.
    let r = signed_for(&h, "PUT", "cdn.example.com", internal, "/pub/k", b"via cdn", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(h.origin_get("pub", "k").await, b"via cdn");
    let pq = presign("GET", "cdn.example.com", "/pub/k", &[], Duration::from_secs(60), SystemTime::now());
    let r = raw_exchange(h.proxy_addr, &head("GET", &pq, internal, &owned(&[("Connection", "close")])), b"").await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(r.body, b"via cdn");

    // Signed for the Host the proxy received: not the public name, refused.
    let r = signed_for(&h, "PUT", internal, internal, "/pub/k2", b"direct", &[]).await;
    assert_error(&r, 403, "SignatureDoesNotMatch", "signed for the received Host");
    assert!(!h.origin_has("pub", "k2").await);
    let ip = h.proxy_addr.to_string();
    let r = signed_for(&h, "GET", &ip, &ip, "/pub/k", b"", &[]).await;
    assert_error(&r, 403, "SignatureDoesNotMatch", "signed for the proxy's address");
}

/// Bucket extraction uses the host signatures are checked against.
#[tokio::test]
async fn public_host_under_a_vanity_domain_names_the_bucket() {
    let h = Harness::start_with(
        |v| {
            vhd(v);
            set_var(v, "PUBLIC_HOST", &format!("pubb.{DOMAIN}:8443"));
        },
        None,
    )
    .await;
    h.origin().create_bucket().bucket("pubb").send().await.unwrap();
    let public = format!("pubb.{DOMAIN}:8443");
    let r = signed_for(&h, "PUT", &public, "internal.svc", "/obj", b"vh via cdn", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(h.origin_get("pubb", "obj").await, b"vh via cdn");
    let r = signed_for(&h, "GET", &public, "internal.svc", "/obj", b"", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(r.body, b"vh via cdn");
    // The Host received is a vanity host of another bucket: it neither names
    // the bucket nor is signed for.
    h.origin().create_bucket().bucket("other").send().await.unwrap();
    let received = vhost(&h, "other");
    let r = signed_for(&h, "PUT", &public, &received, "/obj2", b"x", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert!(h.origin_has("pubb", "obj2").await && !h.origin_has("other", "obj2").await);
    let r = signed_for(&h, "PUT", &received, &received, "/obj3", b"x", &[]).await;
    assert_error(&r, 403, "SignatureDoesNotMatch", "signed for the received vanity Host");
    assert!(!h.origin_has("other", "obj3").await && !h.origin_has("pubb", "obj3").await);
}

// ---------------------------------------------------------------------------
// 7. TRUSTED_PROXIES.

#[tokio::test]
async fn trusted_proxy_forwarded_host_names_the_signed_host_and_the_bucket() {
    let (h, relay) = Harness::start_relayed(
        |v| {
            vhd(v);
            set_var(v, "TRUSTED_PROXIES", "127.0.0.1/32");
        },
        false,
    )
    .await;
    h.origin().create_bucket().bucket("fwd").send().await.unwrap();
    let public = format!("fwd.{DOMAIN}:8443");
    let internal = "proxy.internal.svc:8080";

    let r = signed_for(&h, "PUT", &public, internal, "/k1", b"through xfh", &[("X-Forwarded-Host", &public)]).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(h.origin_get("fwd", "k1").await, b"through xfh");

    let fwd = format!("for=192.0.2.60;host=\"{public}\";proto=https");
    let r = signed_for(&h, "GET", &public, internal, "/k1", b"", &[("Forwarded", &fwd)]).await;
    assert_eq!(r.status, 200, "Forwarded: host=\"h:p\": {}", r.body_str());
    assert_eq!(r.body, b"through xfh");

    // The token form, without a port.
    let portless = format!("fwd.{DOMAIN}");
    let fwd = format!("host={portless}");
    let r = signed_for(&h, "PUT", &portless, internal, "/k2", b"token form", &[("Forwarded", &fwd)]).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(h.origin_get("fwd", "k2").await, b"token form");

    // A presigned URL, through the forwarded host.
    let pq = presign("GET", &public, "/k2", &[], Duration::from_secs(60), SystemTime::now());
    let hs = owned(&[("X-Forwarded-Host", &public), ("Connection", "close")]);
    let r = raw_exchange(h.proxy_addr, &head("GET", &pq, internal, &hs), b"").await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(r.body, b"token form");

    // Signed for the Host received while a forwarded host is present: refused.
    let r = signed_for(&h, "GET", internal, internal, "/fwd/k1", b"", &[("X-Forwarded-Host", &public)]).await;
    assert_error(&r, 403, "SignatureDoesNotMatch", "signed for the internal Host");

    // Signed (covered by the signature) or not, neither forwarding header
    // ever reaches the origin.
    let fwd_q = format!("host=\"{public}\"");
    let covered = [("X-Forwarded-Host", public.as_str()), ("Forwarded", fwd_q.as_str())];
    let r = signed_covering(&h, "GET", &public, internal, "/k1", &covered).await;
    assert_eq!(r.status, 200, "forwarding headers under the signature: {}", r.body_str());
    assert_eq!(r.body, b"through xfh");
    let heads = seen_heads(&relay);
    assert!(heads.len() >= 5, "{heads:#?}");
    for hd in &heads {
        assert!(hd.header("x-forwarded-host").is_none() && hd.header("forwarded").is_none(), "{hd:?}");
    }

    // Several values, or an invalid host: 400, nothing forwarded.
    let other = format!("evil.{DOMAIN}:8443");
    let both = format!("{public}, {other}");
    let two_in_forwarded = format!("host=\"{public}\", host=\"{other}\"");
    let two_in_element = format!("host=\"{public}\";host=\"{other}\"");
    let other_fwd = format!("host=\"{other}\"");
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("comma in X-Forwarded-Host", vec![("X-Forwarded-Host", both.as_str())]),
        (
            "two X-Forwarded-Host lines",
            vec![("X-Forwarded-Host", public.as_str()), ("X-Forwarded-Host", other.as_str())],
        ),
        ("two host= in Forwarded", vec![("Forwarded", two_in_forwarded.as_str())]),
        ("two host= in one Forwarded element", vec![("Forwarded", two_in_element.as_str())]),
        ("two Forwarded lines with host=", vec![("Forwarded", fwd.as_str()), ("Forwarded", other_fwd.as_str())]),
        (
            "X-Forwarded-Host and Forwarded disagree",
            vec![("X-Forwarded-Host", public.as_str()), ("Forwarded", other_fwd.as_str())],
        ),
        ("invalid port", vec![("X-Forwarded-Host", "fwd.s3.vanity.test:notaport")]),
        ("invalid host", vec![("X-Forwarded-Host", "fwd s3/vanity")]),
    ];
    for (what, extra) in cases {
        let before = upstream_len(&relay);
        let r = signed_for(&h, "PUT", &public, internal, "/k3", b"refused", &extra).await;
        assert_error(&r, 400, "InvalidArgument", what);
        assert_eq!(upstream_len(&relay), before, "{what}: nothing forwarded");
    }
    assert!(!h.origin_has("fwd", "k3").await);
}

#[tokio::test]
async fn untrusted_peer_forwarded_host_is_ignored() {
    let (h, relay) = Harness::start_relayed(
        |v| {
            vhd(v);
            set_var(v, "TRUSTED_PROXIES", "10.0.0.0/8");
        },
        false,
    )
    .await;
    for b in ["fwd", "victim"] {
        h.origin().create_bucket().bucket(b).send().await.unwrap();
    }
    origin_put(&h, "fwd", "k", b"fwd's k").await;
    origin_put(&h, "victim", "k", b"victim's k").await;
    let forged = vhost(&h, "victim");
    let real = h.proxy_addr.to_string();

    // Signed for the forged host: it is not the host used, so 403.
    let r = signed_for(&h, "GET", &forged, &real, "/k", b"", &[("X-Forwarded-Host", &forged)]).await;
    assert_error(&r, 403, "SignatureDoesNotMatch", "signed for a forged X-Forwarded-Host");
    let fwd = format!("host=\"{forged}\"");
    let r = signed_for(&h, "GET", &forged, &real, "/k", b"", &[("Forwarded", &fwd)]).await;
    assert_error(&r, 403, "SignatureDoesNotMatch", "signed for a forged Forwarded host");
    let r = signed_for(&h, "PUT", &forged, &real, "/k", b"overwrite", &[("X-Forwarded-Host", &forged)]).await;
    assert_error(&r, 403, "SignatureDoesNotMatch", "forged PUT");
    assert_eq!(h.origin_get("victim", "k").await, b"victim's k");

    // Signed for the real Host: works, path-style, the forged header ignored
    // (even a malformed one: ignored, not refused).
    let comma = format!("{forged}, other.example");
    for extra in
        [("X-Forwarded-Host", forged.as_str()), ("Forwarded", fwd.as_str()), ("X-Forwarded-Host", comma.as_str())]
    {
        let r = signed_for(&h, "GET", &real, &real, "/fwd/k", b"", &[extra]).await;
        assert_eq!(r.status, 200, "{extra:?}: {}", r.body_str());
        assert_eq!(r.body, b"fwd's k", "{extra:?}");
    }
    let fwd_q = format!("host=\"{forged}\"");
    let covered = [("X-Forwarded-Host", forged.as_str()), ("Forwarded", fwd_q.as_str())];
    let r = signed_covering(&h, "GET", &real, &real, "/fwd/k", &covered).await;
    assert_eq!(r.status, 200, "forwarding headers under the signature: {}", r.body_str());
    assert_eq!(r.body, b"fwd's k");
    // Ignored, and not passed on either, even when signed.
    let heads = seen_heads(&relay);
    assert!(heads.len() >= 4, "{heads:#?}");
    for hd in &heads {
        assert!(hd.header("x-forwarded-host").is_none() && hd.header("forwarded").is_none(), "{hd:?}");
    }
}

// ---------------------------------------------------------------------------
// 8. Path-style requests with every setting on.

#[tokio::test]
async fn path_style_keeps_working_with_every_setting_on() {
    let (h, _relay) = Harness::start_relayed(
        |v| {
            virtual_origin_vars(v);
            set_var(v, "ALLOWED_HOSTS", &format!("127.0.0.1:*,{DOMAIN}:*,*.{DOMAIN}:*"));
            set_var(v, "TRUSTED_PROXIES", "127.0.0.1/32");
        },
        true,
    )
    .await;
    // The SDK path-style at 127.0.0.1 and path-style at the bare domain.
    let (named, uris) = loopback_client(&endpoint(&h), (CAK, CSK), true);
    for (c, b) in [(h.client(), "ps-ip"), (named, "ps-name")] {
        c.create_bucket().bucket(b).send().await.unwrap();
        assert!(origin_bucket(&h, b).await, "{b}");
        for k in ["d/a b", "d/x+y", "top"] {
            c.put_object()
                .bucket(b)
                .key(k)
                .body(ByteStream::from(format!("{b}/{k}").into_bytes()))
                .send()
                .await
                .unwrap();
            assert_eq!(h.origin_get(b, k).await, format!("{b}/{k}").as_bytes());
        }
        let got = c.get_object().bucket(b).key("d/a b").send().await.unwrap();
        assert_eq!(read_all(got).await, format!("{b}/d/a b").as_bytes());
        let hd = c.head_object().bucket(b).key("top").send().await.unwrap();
        assert_eq!(hd.content_length(), Some(format!("{b}/top").len() as i64));
        let l = c.list_objects_v2().bucket(b).prefix("d/").delimiter("/").send().await.unwrap();
        assert_eq!(l.contents().iter().filter_map(|o| o.key()).collect::<Vec<_>>(), ["d/a b", "d/x+y"]);
        c.copy_object().bucket(b).key("copy").copy_source(format!("{b}/top")).send().await.unwrap();
        assert_eq!(h.origin_get(b, "copy").await, format!("{b}/top").as_bytes());

        let up = c.create_multipart_upload().bucket(b).key("mp").send().await.unwrap();
        let id = up.upload_id().unwrap();
        let parts = [pattern(5 << 20, 4), pattern(100, 5)];
        let mut done = Vec::new();
        for (i, p) in parts.iter().enumerate() {
            let n = i as i32 + 1;
            let r = c.upload_part().bucket(b).key("mp").upload_id(id).part_number(n);
            let r = r.body(ByteStream::from(p.clone())).send().await.unwrap();
            done.push(CompletedPart::builder().part_number(n).e_tag(r.e_tag().unwrap()).build());
        }
        let mpu = CompletedMultipartUpload::builder().set_parts(Some(done)).build();
        c.complete_multipart_upload().bucket(b).key("mp").upload_id(id).multipart_upload(mpu).send().await.unwrap();
        assert_eq!(h.origin_get(b, "mp").await, parts.concat());

        let http = loopback_http();
        let put = c.put_object().bucket(b).key("pre sign").presigned(presigning()).await.unwrap();
        let r = http.put(put.uri()).body("presigned").send().await.unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        assert_eq!(h.origin_get(b, "pre sign").await, b"presigned");
        let get = c.get_object().bucket(b).key("pre sign").presigned(presigning()).await.unwrap();
        assert_eq!(http.get(get.uri()).send().await.unwrap().text().await.unwrap(), "presigned");

        for k in ["d/a b", "d/x+y", "top", "copy", "mp", "pre sign"] {
            c.delete_object().bucket(b).key(k).send().await.unwrap();
        }
        c.delete_bucket().bucket(b).send().await.unwrap();
        assert!(!origin_bucket(&h, b).await, "{b}");
    }
    let base = format!("{}/ps-name", endpoint(&h));
    let sent = uris.take();
    assert!(!sent.is_empty() && sent.iter().all(|u| u.starts_with(&base)), "path-style at the bare domain: {sent:?}");
}

#[tokio::test]
async fn path_style_keeps_working_with_public_host_set() {
    let public = format!("{DOMAIN}:8443");
    let h = Harness::start_with(
        |v| {
            vhd(v);
            set_var(v, "PUBLIC_HOST", &public);
            set_var(v, "ALLOWED_HOSTS", &format!("{DOMAIN}:*,*.{DOMAIN}:*"));
            set_var(v, "TRUSTED_PROXIES", "127.0.0.1/32");
            set_var(v, "ORIGIN_ADDRESSING", "path");
        },
        None,
    )
    .await;
    let ip = h.proxy_addr.to_string();
    let r = signed_for(&h, "PUT", &public, &ip, "/psb", b"", &[]).await;
    assert_eq!(r.status, 200, "CreateBucket: {}", r.body_str());
    assert!(origin_bucket(&h, "psb").await);
    let r = signed_for(&h, "PUT", &public, &ip, "/psb/a%20b/c", b"path style", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(h.origin_get("psb", "a b/c").await, b"path style");
    let r = signed_for(&h, "GET", &public, &ip, "/psb/a%20b/c", b"", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(r.body, b"path style");
    let r = signed_for(&h, "GET", &public, &ip, "/psb?list-type=2&prefix=a%20", b"", &[]).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert!(r.body_str().contains("<Key>a b/c</Key>"), "{}", r.body_str());
}

// ---------------------------------------------------------------------------
// 9. SigV2, virtual-hosted: the resource is /bucket/key.

/// A V2 header-signed request with `Host: host`; `resource` is what the
/// string to sign ends with.
async fn v2_request(
    h: &Harness,
    method: &str,
    host: &str,
    path_and_query: &str,
    resource: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> RawResponse {
    let date = v2::now();
    let sts = v2::header_string_to_sign(method, headers, &date, resource);
    let mut all = owned(&[
        ("Date", &date),
        ("Authorization", &format!("AWS {CAK}:{}", v2::sign(CSK, &sts))),
        ("Content-Length", &body.len().to_string()),
        ("Connection", "close"),
    ]);
    all.extend(owned(headers));
    raw_exchange(h.proxy_addr, &head(method, path_and_query, host, &all), body).await
}

#[tokio::test]
async fn sigv2_header_and_presigned_virtual_hosted() {
    let h = Harness::start_with(vhd, None).await;
    let host = vhost(&h, "v2v");
    let wire = "/a%20b%2Bc%3D%C3%A9.txt";
    let key = "a b+c=é.txt";

    // CreateBucket: PUT / on the bucket's host, resource /bucket/.
    let r = v2_request(&h, "PUT", &host, "/", "/v2v/", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert!(origin_bucket(&h, "v2v").await);

    let headers = [("Content-Type", "text/plain"), ("x-amz-meta-color", "blue")];
    let r = v2_request(&h, "PUT", &host, wire, &format!("/v2v{wire}"), &headers, b"v2 body").await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(h.origin_get("v2v", key).await, b"v2 body");
    let hd = h.origin().head_object().bucket("v2v").key(key).send().await.unwrap();
    assert_eq!(hd.metadata().unwrap().get("color").map(String::as_str), Some("blue"));

    // A sub-resource goes into the resource after /bucket/key.
    let pq = format!("{wire}?response-content-type=application/x-v2");
    let r = v2_request(&h, "GET", &host, &pq, &format!("/v2v{pq}"), &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert_eq!(r.body, b"v2 body");
    assert_eq!(r.header("content-type").as_deref(), Some("application/x-v2"));

    // The bucket root: resource /bucket/, listing parameters not signed.
    let r = v2_request(&h, "GET", &host, "/?prefix=a%20b", "/v2v/", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert!(r.body_str().contains("<Key>a b+c=é.txt</Key>"), "{}", r.body_str());

    // Signed over the path alone (without the bucket): not what S3 signs.
    let r = v2_request(&h, "GET", &host, wire, wire, &[], b"").await;
    assert_error(&r, 403, "SignatureDoesNotMatch", "V2 resource without the bucket");

    // ListBuckets on the bare domain: resource /.
    let bare = format!("{DOMAIN}:{}", h.proxy_addr.port());
    let r = v2_request(&h, "GET", &bare, "/", "/", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    assert!(r.body_str().contains("<Name>v2v</Name>"), "{}", r.body_str());

    // Presigned GET, fetched through the resolver.
    let exp = v2::expires_in(300);
    let sig = v2::sign(CSK, &format!("GET\n\n\n{exp}\n/v2v{wire}"));
    let url = format!("http://{host}{wire}?AWSAccessKeyId={CAK}&Expires={exp}&Signature={}", v2::enc(&sig));
    let r = loopback_http().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"v2 body");

    // Presigned PUT.
    let sig = v2::sign(CSK, &format!("PUT\n\ntext/plain\n{exp}\n/v2v/up"));
    let url = format!("http://{host}/up?AWSAccessKeyId={CAK}&Expires={exp}&Signature={}", v2::enc(&sig));
    let r = loopback_http().put(&url).header("content-type", "text/plain").body("v2 up").send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(h.origin_get("v2v", "up").await, b"v2 up");

    // The red-team case for V2: /private/x on public's host is public's key.
    h.origin().create_bucket().bucket("private").send().await.unwrap();
    origin_put(&h, "private", "x", b"SECRET").await;
    origin_put(&h, "v2v", "private/x", b"v2v's private/x").await;
    let sig = v2::sign(CSK, &format!("GET\n\n\n{exp}\n/v2v/private/x"));
    let url = format!("http://{host}/private/x?AWSAccessKeyId={CAK}&Expires={exp}&Signature={}", v2::enc(&sig));
    let r = loopback_http().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"v2v's private/x");
}

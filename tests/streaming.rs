//! Every payload mode, through the proxy to s3s-fs (which verifies each mode
//! itself), plus the failure cases that must leave nothing at the origin.
//! The aws-chunked signer here is the test's own, written from the AWS docs.

mod common;

use std::time::SystemTime;

use base64::Engine as _;
use common::*;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

fn hmac_hex(key: &[u8], msg: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(msg.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

fn signing_key(secret: &str, date: &str) -> Vec<u8> {
    let mut k = format!("AWS4{secret}").into_bytes();
    for part in [date, "us-east-1", "s3", "aws4_request"] {
        let mut m = Hmac::<Sha256>::new_from_slice(&k).unwrap();
        m.update(part.as_bytes());
        k = m.finalize().into_bytes().to_vec();
    }
    k
}

pub struct Chain {
    key: Vec<u8>,
    date: String,
    scope: String,
    prev: String,
}

impl Chain {
    /// From the seed request's signed headers (aws-sigv4's output).
    pub fn from_seed(headers: &[(String, String)], secret: &str) -> Self {
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap();
        let date = get("x-amz-date");
        let auth = get("authorization");
        let prev = auth.rsplit("Signature=").next().unwrap().to_string();
        Self {
            key: signing_key(secret, &date[..8]),
            scope: format!("{}/us-east-1/s3/aws4_request", &date[..8]),
            date,
            prev,
        }
    }
    pub fn chunk(&mut self, data: &[u8]) -> String {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{}\n{}",
            self.date,
            self.scope,
            self.prev,
            hex::encode(Sha256::digest(b"")),
            hex::encode(Sha256::digest(data))
        );
        self.prev = hmac_hex(&self.key, &sts);
        self.prev.clone()
    }
    pub fn trailer(&mut self, canonical: &str) -> String {
        let sts = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            self.date,
            self.scope,
            self.prev,
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        self.prev = hmac_hex(&self.key, &sts);
        self.prev.clone()
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Signed,
    SignedTrailer,
    UnsignedTrailer,
}

fn checksum_sha256(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(data))
}

/// The whole request (head + aws-chunked body) for `data` in `mode`.
fn chunked_request(
    addr: std::net::SocketAddr,
    path: &str,
    data: &[u8],
    chunk: usize,
    mode: Mode,
    secret_for_sig: &str,
) -> (String, Vec<u8>) {
    let payload = match mode {
        Mode::Signed => "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        Mode::SignedTrailer => "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        Mode::UnsignedTrailer => "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    };
    let trailer_line = format!("x-amz-checksum-sha256:{}", checksum_sha256(data));
    let dlen = data.len().to_string();
    let mut signed: Vec<(&str, &str)> =
        vec![("content-encoding", "aws-chunked"), ("x-amz-decoded-content-length", &dlen)];
    if mode != Mode::Signed {
        signed.push(("x-amz-trailer", "x-amz-checksum-sha256"));
    }
    let hs = sign_headers("PUT", &addr.to_string(), path, &signed, payload, (CAK, secret_for_sig), SystemTime::now());
    let mut chain = Chain::from_seed(&hs, CSK);
    let mut body = Vec::new();
    for c in data.chunks(chunk).chain(std::iter::once(&[][..])) {
        match mode {
            Mode::UnsignedTrailer => body.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes()),
            Mode::Signed | Mode::SignedTrailer => {
                body.extend_from_slice(format!("{:x};chunk-signature={}\r\n", c.len(), chain.chunk(c)).as_bytes())
            }
        }
        if !c.is_empty() {
            body.extend_from_slice(c);
            body.extend_from_slice(b"\r\n");
        }
    }
    match mode {
        Mode::Signed => body.extend_from_slice(b"\r\n"),
        Mode::UnsignedTrailer => body.extend_from_slice(format!("{trailer_line}\r\n\r\n").as_bytes()),
        Mode::SignedTrailer => {
            let sig = chain.trailer(&format!("{trailer_line}\n"));
            body.extend_from_slice(format!("{trailer_line}\r\nx-amz-trailer-signature:{sig}\r\n\r\n").as_bytes());
        }
    }
    let mut head = format!("PUT {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in &hs {
        head += &format!("{k}: {v}\r\n");
    }
    head += &format!("content-encoding: aws-chunked\r\nx-amz-decoded-content-length: {dlen}\r\n");
    if mode != Mode::Signed {
        head += "x-amz-trailer: x-amz-checksum-sha256\r\n";
    }
    (head, body)
}

/// Sends head + body with Content-Length, or (unsigned trailer over "HTTPS"
/// style) inside `Transfer-Encoding: chunked`.
async fn send(addr: std::net::SocketAddr, head: String, body: &[u8], te_chunked: bool) -> RawResponse {
    if te_chunked {
        let mut framed = Vec::new();
        for c in body.chunks(10_000) {
            framed.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            framed.extend_from_slice(c);
            framed.extend_from_slice(b"\r\n");
        }
        framed.extend_from_slice(b"0\r\n\r\n");
        raw_exchange(addr, &(head + "Transfer-Encoding: chunked\r\n\r\n"), &framed).await
    } else {
        raw_exchange(addr, &(head + &format!("Content-Length: {}\r\n\r\n", body.len())), body).await
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

#[tokio::test]
async fn every_mode_uploads_and_reads_back_byte_identical() {
    let h = Harness::start().await;
    let c = h.client();
    c.create_bucket().bucket("modes").send().await.unwrap();
    let data = pattern(200_000);

    // 1. UNSIGNED-PAYLOAD and 2. hex sha256, Content-Length framed.
    for (key, payload) in [("m1", "UNSIGNED-PAYLOAD".to_string()), ("m2", sha256_hex(&data))] {
        let path = format!("/modes/{key}");
        let hs = sign_headers("PUT", &h.proxy_addr.to_string(), &path, &[], &payload, (CAK, CSK), SystemTime::now());
        let mut head = format!("PUT {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", h.proxy_addr);
        for (k, v) in &hs {
            head += &format!("{k}: {v}\r\n");
        }
        let r = send(h.proxy_addr, head, &data, false).await;
        assert_eq!(r.status, 200, "{key}: {}", r.body_str());
    }
    // 3. signed chunks, 4. signed chunks + signed trailer, 5. unsigned trailer (TE: chunked, no Content-Length).
    for (key, mode, te) in [
        ("m3", Mode::Signed, false),
        ("m4", Mode::SignedTrailer, false),
        ("m5", Mode::UnsignedTrailer, true),
        ("m5cl", Mode::UnsignedTrailer, false),
    ] {
        let path = format!("/modes/{key}");
        let (head, body) = chunked_request(h.proxy_addr, &path, &data, 65536, mode, CSK);
        let r = send(h.proxy_addr, head, &body, te).await;
        assert_eq!(r.status, 200, "{key}: {}", r.body_str());
    }
    for key in ["m1", "m2", "m3", "m4", "m5", "m5cl"] {
        assert_eq!(h.origin_get("modes", key).await, data, "{key} at origin");
        let got = c.get_object().bucket("modes").key(key).send().await.unwrap();
        assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), &data[..], "{key} through the proxy");
    }
}

#[tokio::test]
async fn tampered_chunk_trailer_and_short_body_fail_and_store_nothing() {
    let h = Harness::start().await;
    h.client().create_bucket().bucket("bad").send().await.unwrap();
    let data = pattern(300_000);

    // A flipped data byte in the second chunk.
    let (head, mut body) = chunked_request(h.proxy_addr, "/bad/chunk", &data, 65536, Mode::Signed, CSK);
    let second = find(&body[100..], b";chunk-signature=").unwrap() + 100;
    let pos = second + 200;
    body[pos] ^= 1;
    let r = send(h.proxy_addr, head, &body, false).await;
    assert_eq!(r.status, 403, "{}", r.body_str());
    assert!(r.body_str().contains("<Code>SignatureDoesNotMatch</Code>"), "{}", r.body_str());
    assert!(!h.origin_has("bad", "chunk").await);

    // A tampered trailer value (signed trailer mode).
    let (head, body) = chunked_request(h.proxy_addr, "/bad/trailer", &data, 65536, Mode::SignedTrailer, CSK);
    let t = find(&body, b"x-amz-checksum-sha256:").unwrap() + 22;
    let mut body = body;
    body[t] = if body[t] == b'A' { b'B' } else { b'A' };
    let r = send(h.proxy_addr, head, &body, false).await;
    assert!(r.status == 403, "{} {}", r.status, r.body_str());
    assert!(!h.origin_has("bad", "trailer").await);

    // A body shorter than x-amz-decoded-content-length says (framing intact).
    let (head, body) = chunked_request(h.proxy_addr, "/bad/short", &data, 65536, Mode::Signed, CSK);
    let head = head.replace(
        &format!("x-amz-decoded-content-length: {}", data.len()),
        &format!("x-amz-decoded-content-length: {}", data.len() + 1),
    );
    let r = send(h.proxy_addr, head, &body, false).await;
    assert!(r.status >= 400, "{}", r.body_str());
    assert!(!h.origin_has("bad", "short").await);

    // A chunk header longer than 4 KiB.
    let (head, _) = chunked_request(h.proxy_addr, "/bad/hdr", &data, 65536, Mode::Signed, CSK);
    let mut body = format!("10000;chunk-signature={}", "a".repeat(5000)).into_bytes();
    body.extend_from_slice(b"\r\n");
    let r = send(h.proxy_addr, head, &body, false).await;
    assert_eq!(r.status, 400, "{}", r.body_str());
    assert!(!h.origin_has("bad", "hdr").await);

    // Wrong hex payload hash (mode 2) is covered in tests/proxy.rs.
}

#[tokio::test]
async fn streaming_without_decoded_length_is_refused() {
    let h = Harness::start().await;
    let hs = sign_headers(
        "PUT",
        &h.proxy_addr.to_string(),
        "/x/y",
        &[],
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        (CAK, CSK),
        SystemTime::now(),
    );
    let mut head = format!("PUT /x/y HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: 0\r\n", h.proxy_addr);
    for (k, v) in &hs {
        head += &format!("{k}: {v}\r\n");
    }
    let r = raw_exchange(h.proxy_addr, &(head + "\r\n"), b"").await;
    assert_eq!(r.status, 411, "{}", r.body_str());
    assert!(r.body_str().contains("<Code>MissingContentLength</Code>"));
}

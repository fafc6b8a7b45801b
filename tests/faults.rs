//! Faults between the client, the proxy and the origin, with a real s3s-fs
//! origin behind a relay that counts connections, sees the proxy close them,
//! and stalls or cuts the origin's responses on request.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 253) as u8).collect()
}

/// An origin (the harness's s3s-fs) with `bucket/key` = `data` stored directly.
async fn origin_with(bucket: &str, key: &str, data: Vec<u8>) -> Harness {
    let origin = Harness::start().await;
    let o = origin.origin();
    o.create_bucket().bucket(bucket).send().await.unwrap();
    o.put_object().bucket(bucket).key(key).body(ByteStream::from(data)).send().await.unwrap();
    origin
}

/// Reads everything until EOF, a reset, or `limit`; says how it ended.
async fn read_to_end(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, &'static str) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return (out, "timeout"),
            Ok(Ok(0)) => return (out, "eof"),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => return (out, "reset"),
        }
    }
}

fn split_head(raw: &[u8]) -> (String, &[u8]) {
    let pos = find(raw, b"\r\n\r\n").expect("a response head");
    (String::from_utf8_lossy(&raw[..pos]).to_ascii_lowercase(), &raw[pos + 4..])
}

#[tokio::test]
async fn a_client_gone_mid_download_closes_the_origin_connection_and_the_next_request_gets_a_fresh_one() {
    // Large enough that socket buffers and hyper's cannot hold it all.
    let data = pattern(48 << 20);
    let origin = origin_with("big", "obj", data.clone()).await;
    let relay = Relay::start(origin.origin_addr, None).await;
    let (proxy, _stop) = start_proxy_to(relay.addr, |_| {}).await;

    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(signed_head(proxy, "GET", "/big/obj", &[], EMPTY_SHA256, None).as_bytes()).await.unwrap();
    let mut got = 0;
    let mut buf = vec![0u8; 64 << 10];
    while got < 256 << 10 {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "the download ended early");
        got += n;
    }
    drop(s); // unread data in its buffer: the client's kernel sends a reset

    assert!(
        eventually(Duration::from_secs(5), || Relay::count(&relay.closed_by_proxy) == 1).await,
        "the proxy closes the origin connection of a download nobody reads (accepted {}, closed {}, relayed {:?})",
        Relay::count(&relay.accepted),
        Relay::count(&relay.closed_by_proxy),
        relay.sent_down.lock().unwrap()
    );
    let relayed = relay.sent_down.lock().unwrap()[0];
    assert!(relayed < data.len(), "the origin connection was mid-body ({relayed} of {} bytes)", data.len());

    // The next request must not use the half-read connection: a new one, and
    // the whole object, correct.
    let c = s3_client(&format!("http://{proxy}"), CAK, CSK);
    let whole = c.get_object().bucket("big").key("obj").send().await.unwrap();
    assert!(whole.body.collect().await.unwrap().into_bytes() == data, "the next download is byte-identical");
    assert_eq!(Relay::count(&relay.accepted), 2, "a fresh origin connection for the next request");
}

/// The server half-closes (hyper's `half_close`, so that a client that
/// pipelines and then shuts down its sending side gets every answer): a
/// client's EOF alone cannot tell "gone" from "done sending". So a client gone
/// while the origin is silent is noticed when the proxy writes to it, and the
/// origin request is given up by ORIGIN_READ_TIMEOUT at the latest: bounded,
/// and never pooled.
#[tokio::test]
async fn a_client_gone_while_the_origin_is_silent_closes_the_origin_connection() {
    let origin = origin_with("quiet", "obj", b"late".to_vec()).await;
    let relay = Relay::start(origin.origin_addr, Some(("/quiet/", Fault::Stall))).await;
    let (proxy, _stop) = start_proxy_to(relay.addr, |c| c.read_timeout = Duration::from_millis(500)).await;

    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(signed_head(proxy, "GET", "/quiet/obj", &[], EMPTY_SHA256, None).as_bytes()).await.unwrap();
    assert!(eventually(Duration::from_secs(5), || Relay::count(&relay.stalled) == 1).await, "the origin answered");
    drop(s);
    assert!(
        eventually(Duration::from_secs(5), || Relay::count(&relay.closed_by_proxy) == 1).await,
        "the proxy gives up the origin request of a client that left"
    );
}

/// A GET whose origin response is cut after `after` body bytes: what the
/// client receives, and how its connection ended.
async fn cut_download(len: usize, after: usize, chunked: bool, reset: bool) -> (String, Vec<u8>, &'static str) {
    let origin = origin_with("cut", "obj", pattern(len)).await;
    let relay = Relay::start(origin.origin_addr, Some(("/cut/", Fault::Cut { after, chunked, reset }))).await;
    let (proxy, _stop) = start_proxy_to(relay.addr, |_| {}).await;
    let mut s = TcpStream::connect(proxy).await.unwrap();
    s.write_all(signed_head(proxy, "GET", "/cut/obj", &[], EMPTY_SHA256, None).as_bytes()).await.unwrap();
    let (raw, end) = read_to_end(&mut s, Duration::from_secs(10)).await;
    let (head, body) = split_head(&raw);
    (head, body.to_vec(), end)
}

#[tokio::test]
async fn an_origin_reset_mid_body_gives_the_client_a_truncated_response() {
    for reset in [true, false] {
        let (head, body, end) = cut_download(1 << 20, 100_000, false, reset).await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("content-length: 1048576"), "the declared length is kept: {head}");
        assert!(!head.contains("transfer-encoding"), "{head}");
        assert!(!body.is_empty() && body.len() < 1 << 20, "a short body ({} bytes)", body.len());
        assert_eq!(body, pattern(1 << 20)[..body.len()], "what arrived is the object's start");
        assert_ne!(end, "timeout", "the proxy closes the connection (reset: {reset})");
    }
}

/// Decodes a chunked body; says whether its terminating 0-chunk came.
fn dechunk(mut b: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    while let Some(eol) = find(b, b"\r\n") {
        let size_field = String::from_utf8_lossy(&b[..eol]);
        let size = usize::from_str_radix(size_field.split(';').next().unwrap().trim(), 16).expect("chunk size");
        if size == 0 {
            return (out, true);
        }
        let data = &b[eol + 2..];
        if data.len() < size {
            out.extend_from_slice(data);
            break;
        }
        out.extend_from_slice(&data[..size]);
        b = data.get(size + 2..).unwrap_or_default();
    }
    (out, false)
}

#[tokio::test]
async fn an_origin_reset_mid_chunked_body_never_ends_the_client_chunked_body() {
    // The same origin bytes, framed as chunked by the relay: the proxy then
    // forwards without a length, and only the last chunk could say "complete".
    for reset in [true, false] {
        let (head, body, end) = cut_download(1 << 20, 100_000, true, reset).await;
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
        let (data, terminated) = dechunk(&body);
        assert!(!terminated, "no terminating 0-chunk after an origin failure (reset: {reset})");
        assert!(!data.is_empty() && data.len() <= 100_000, "{} bytes", data.len());
        assert_eq!(data, pattern(1 << 20)[..data.len()]);
        assert_ne!(end, "timeout", "the proxy closes the connection");
    }
}

#[tokio::test]
async fn an_sdk_client_sees_an_error_not_a_short_object() {
    let origin = origin_with("cut", "obj", pattern(1 << 20)).await;
    let relay =
        Relay::start(origin.origin_addr, Some(("/cut/", Fault::Cut { after: 100_000, chunked: false, reset: true })))
            .await;
    let (proxy, _stop) = start_proxy_to(relay.addr, |_| {}).await;
    let c = s3_client(&format!("http://{proxy}"), CAK, CSK);
    let r = c.get_object().bucket("cut").key("obj").send().await.expect("the head arrives");
    assert!(r.body.collect().await.is_err(), "reading the cut body fails");
}

#[tokio::test]
async fn a_slow_origin_request_does_not_hold_up_others() {
    let origin = Harness::start().await;
    let o = origin.origin();
    for b in ["slow", "fast"] {
        o.create_bucket().bucket(b).send().await.unwrap();
    }
    o.put_object().bucket("slow").key("k").body(ByteStream::from_static(b"slow body")).send().await.unwrap();
    let relay = Relay::start(origin.origin_addr, Some(("/slow/", Fault::Stall))).await;
    let (proxy, _stop) = start_proxy_to(relay.addr, |_| {}).await;
    let endpoint = format!("http://{proxy}");

    let stuck = {
        let c = s3_client(&endpoint, CAK, CSK);
        tokio::spawn(async move {
            let r = c.get_object().bucket("slow").key("k").send().await?;
            Ok::<_, aws_sdk_s3::Error>(r.body.collect().await.unwrap().into_bytes().to_vec())
        })
    };
    assert!(eventually(Duration::from_secs(5), || Relay::count(&relay.stalled) == 1).await, "stuck at the origin");

    // 4 clients, 5 uploads and downloads each, while that request waits
    // (up to the 60 s read timeout).
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..4 {
        let c = s3_client(&endpoint, CAK, CSK);
        tasks.push(tokio::spawn(async move {
            for j in 0..5 {
                let key = format!("k{i}-{j}");
                let body = format!("body {i} {j}").into_bytes();
                c.put_object().bucket("fast").key(&key).body(ByteStream::from(body.clone())).send().await?;
                let got = c.get_object().bucket("fast").key(&key).send().await?;
                assert_eq!(got.body.collect().await.unwrap().into_bytes().to_vec(), body);
            }
            Ok::<_, aws_sdk_s3::Error>(())
        }));
    }
    // A generous bound for a loaded machine: far below the stuck one's 60 s.
    let all = tokio::time::timeout(Duration::from_secs(15), futures_util::future::join_all(tasks))
        .await
        .expect("40 requests complete within 15 s beside a stuck one");
    for t in all {
        t.unwrap().unwrap();
    }
    assert!(!stuck.is_finished(), "the slow request is still pending ({:?} later)", started.elapsed());

    relay.release();
    let body = tokio::time::timeout(Duration::from_secs(10), stuck).await.expect("released").unwrap().unwrap();
    assert_eq!(body, b"slow body", "once the origin answers, the stuck request completes");
}

/// The proxy with a short origin read timeout, through `relay`.
async fn quick_timeout_proxy(relay: &Relay) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    start_proxy_to(relay.addr, |c| c.read_timeout = Duration::from_millis(500)).await
}

#[tokio::test]
async fn a_silent_origin_gets_a_504_after_the_read_timeout_and_its_connection_is_dropped() {
    let origin = Harness::start().await;
    let o = origin.origin();
    for b in ["silent", "okay"] {
        o.create_bucket().bucket(b).send().await.unwrap();
    }
    o.put_object().bucket("okay").key("k").body(ByteStream::from_static(b"fine")).send().await.unwrap();
    let relay = Relay::start(origin.origin_addr, Some(("/silent/", Fault::Stall))).await;
    let (proxy, _stop) = quick_timeout_proxy(&relay).await;

    let started = Instant::now();
    let r = raw_exchange(proxy, &signed_head(proxy, "GET", "/silent/k", &[], EMPTY_SHA256, None), b"").await;
    let took = started.elapsed();
    assert_eq!(r.status, 504, "{}", r.body_str());
    assert!(r.body_str().contains("<Code>GatewayTimeout</Code>"), "{}", r.body_str());
    assert_eq!(r.header("retry-after").as_deref(), Some("1"), "retryable: {}", r.head);
    assert_eq!(r.header("content-type").as_deref(), Some("application/xml"));
    assert!(took >= Duration::from_millis(450) && took < Duration::from_secs(5), "{took:?}");
    assert_eq!(Relay::count(&relay.stalled), 1);
    assert!(
        eventually(Duration::from_secs(5), || Relay::count(&relay.closed_by_proxy) == 1).await,
        "the timed-out origin connection is closed, not pooled"
    );

    let c = s3_client(&format!("http://{proxy}"), CAK, CSK);
    let got = c.get_object().bucket("okay").key("k").send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"fine");
}

#[tokio::test]
async fn a_stalled_upload_body_gets_400_request_timeout_and_nothing_is_stored() {
    let origin = Harness::start().await;
    origin.origin().create_bucket().bucket("uploads").send().await.unwrap();
    let relay = Relay::start(origin.origin_addr, None).await;
    let (proxy, _stop) = quick_timeout_proxy(&relay).await;

    let full = pattern(1000);
    let sha = sha256_hex(&full);
    // aws-chunked with an unsigned trailer: the chunk codec sits in between.
    let checksum = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&full))
    };
    let mut framed = b"3e8\r\n".to_vec();
    framed.extend_from_slice(&full);
    framed.extend_from_slice(format!("\r\n0\r\nx-amz-checksum-sha256:{checksum}\r\n\r\n").as_bytes());
    let streaming = [
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "1000"),
        ("x-amz-trailer", "x-amz-checksum-sha256"),
    ];
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a [u8]);
    let cases: [Case; 4] = [
        ("unsigned", "UNSIGNED-PAYLOAD", &[], &full),
        ("sha256", &sha, &[], &full),
        ("expect", "UNSIGNED-PAYLOAD", &[("expect", "100-continue")], &full),
        ("streaming", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", &streaming, &framed),
    ];
    for (n, (name, payload, extra, body)) in cases.into_iter().enumerate() {
        let path = format!("/uploads/{name}");
        let mut s = TcpStream::connect(proxy).await.unwrap();
        let started = Instant::now();
        s.write_all(signed_head(proxy, "PUT", &path, extra, payload, Some(body.len())).as_bytes()).await.unwrap();
        s.write_all(&body[..100]).await.unwrap();
        // ... and nothing more, with the connection kept open.
        let r = read_response(&mut s).await;
        let took = started.elapsed();
        assert_eq!(r.status, 400, "{name}: {}", r.body_str());
        let xml = r.body_str();
        assert!(xml.contains("<Code>RequestTimeout</Code>"), "{name}: {xml}");
        assert!(
            xml.contains(
                "<Message>Your socket connection to the server was not read from or written to within the timeout period.</Message>"
            ),
            "{name}: {xml}"
        );
        assert!(took >= Duration::from_millis(450) && took < Duration::from_secs(5), "{name}: {took:?}");
        assert!(
            eventually(Duration::from_secs(5), || Relay::count(&relay.closed_by_proxy) == n + 1).await,
            "{name}: the origin request is aborted"
        );
        assert!(!origin.origin_has("uploads", name).await, "{name}: nothing stored");
    }
}

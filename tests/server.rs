//! The serving shape: origin connections are kept alive and reused, and the
//! multi-worker server (`server::serve`, what the binary runs) proxies and
//! shuts down gracefully.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use common::*;
use s3_resign_proxy::AppState;
use s3_resign_proxy::config::Config;
use tokio::net::TcpListener;

/// A TCP relay in front of `to` that counts the connections it accepts.
async fn counting_relay(to: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = l.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut out) = tokio::net::TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                }
            });
        }
    });
    (addr, count)
}

#[tokio::test]
async fn sequential_requests_reuse_one_origin_connection() {
    // The harness' own origin, reached through the relay.
    let origin = Harness::start().await;
    let (relay, connections) = counting_relay(origin.origin_addr).await;
    let h = Harness::start_with(
        |v| {
            v.retain(|(k, _)| k != "ORIGIN_DOMAIN");
            v.push(("ORIGIN_DOMAIN".into(), format!("http://{relay}")));
        },
        None,
    )
    .await;
    let c = h.client();
    c.create_bucket().bucket("reuse").send().await.unwrap();
    c.put_object().bucket("reuse").key("k").body(ByteStream::from_static(b"hello")).send().await.unwrap();
    c.put_object().bucket("reuse").key("empty").body(ByteStream::from_static(b"")).send().await.unwrap();
    for _ in 0..5 {
        let got = c.get_object().bucket("reuse").key("k").send().await.unwrap();
        assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"hello");
        // Bodiless responses (HEAD, an empty object) and an error from the
        // origin must hand the connection back too.
        c.head_object().bucket("reuse").key("k").send().await.unwrap();
        let empty = c.get_object().bucket("reuse").key("empty").send().await.unwrap();
        assert!(empty.body.collect().await.unwrap().into_bytes().is_empty());
        assert!(c.get_object().bucket("reuse").key("missing").send().await.is_err());
    }
    assert_eq!(connections.load(Ordering::SeqCst), 1, "one keep-alive connection to the origin for 23 requests");
}

#[test]
fn multi_worker_server_proxies_and_shuts_down_gracefully() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let origin = rt.block_on(Harness::start());
    let config = Config::from_vars(base_vars(origin.origin_addr)).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = s3_resign_proxy::Drain::new(Duration::ZERO, Duration::from_secs(30));
    let drain = stop.clone();
    let server = std::thread::spawn(move || {
        s3_resign_proxy::server::serve(listener, 2, move || AppState::new(config.clone()), drain)
    });
    rt.block_on(async {
        let c = s3_client(&format!("http://{addr}"), CAK, CSK);
        c.create_bucket().bucket("workers").send().await.unwrap();
        // Several connections at once, so both workers serve some.
        let mut tasks = Vec::new();
        for i in 0..8 {
            let c = s3_client(&format!("http://{addr}"), CAK, CSK);
            tasks.push(tokio::spawn(async move {
                let key = format!("k{i}");
                c.put_object().bucket("workers").key(&key).body(ByteStream::from(vec![i as u8; 1000])).send().await?;
                let got = c.get_object().bucket("workers").key(&key).send().await?;
                Ok::<_, aws_sdk_s3::Error>(got.body.collect().await.unwrap().into_bytes().to_vec())
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap().unwrap(), vec![i as u8; 1000]);
        }
        assert!(origin.origin_has("workers", "k7").await);
        // A wrong signature is still refused on this path.
        let bad = s3_client(&format!("http://{addr}"), CAK, "wrong");
        assert!(bad.get_object().bucket("workers").key("k0").send().await.is_err());
    });
    stop.start();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(server.join()));
    let joined = rx.recv_timeout(Duration::from_secs(20)).expect("server stops after shutdown");
    joined.expect("no panic").expect("serve returns Ok");
    assert!(std::net::TcpStream::connect(addr).is_err(), "the listener is closed");
}

/// A client that pipelines two requests and then shuts down its sending side
/// still gets both responses (hyper's half-close); an HTTP/2 prior-knowledge
/// client gets an HTTP/1.1 answer that says why, not a silent close.
#[tokio::test]
async fn pipelined_half_close_and_http2_preface() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = Harness::start().await;
    h.client().create_bucket().bucket("pipe").send().await.unwrap();
    let host = h.proxy_addr.to_string();
    let mut raw = String::new();
    for _ in 0..2 {
        let hs = sign_headers("GET", &host, "/pipe", &[], "UNSIGNED-PAYLOAD", (CAK, CSK), std::time::SystemTime::now());
        raw += &head("GET", "/pipe", &host, &hs);
    }
    let mut s = tokio::net::TcpStream::connect(h.proxy_addr).await.unwrap();
    s.write_all(raw.as_bytes()).await.unwrap();
    s.shutdown().await.unwrap(); // half-close: nothing more from us
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got)).await.expect("in time").unwrap();
    let text = String::from_utf8_lossy(&got);
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 2, "{text}");
    assert_eq!(text.matches("<ListBucketResult").count(), 2, "{text}");

    let mut s = tokio::net::TcpStream::connect(h.proxy_addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got)).await.expect("in time").unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
    assert!(text.contains("<Code>HttpVersionNotSupported</Code>"), "{text}");
}

//! Memory stays flat: 1 GiB up (hex payload hash, then signed aws-chunked)
//! and 1 GiB down through the proxy binary, whose peak RSS (VmHWM) is read
//! from /proc before and after. The proxy runs as its own process so that the
//! figure is the proxy's alone; the origin is s3s-fs, in this test process.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use common::*;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const GIB: usize = 1 << 30;
const BLOCK: usize = 1 << 20;

/// 1 MiB block `i` of the test object: four distinct blocks, made once
/// (a debug build is slow at per-byte loops), so no two neighbours match.
fn block(i: usize) -> &'static [u8] {
    static BLOCKS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    let blocks =
        BLOCKS.get_or_init(|| (0..4).map(|k| (0..BLOCK).map(|j| ((k * 31 + j * 7) % 253) as u8).collect()).collect());
    &blocks[i % 4]
}

fn vm_hwm_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines().find_map(|l| l.strip_prefix("VmHWM:")).unwrap().trim().trim_end_matches(" kB").trim().parse().unwrap()
}

struct Proxy(Child, SocketAddr);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn spawn_proxy(origin: SocketAddr) -> Proxy {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_s3-resign-proxy"));
    cmd.env_clear().env("RUST_LOG", "warn").env("PORT", port.to_string()).stdout(Stdio::null());
    for (k, v) in base_vars(origin) {
        if k != "PORT" {
            cmd.env(k, v);
        }
    }
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let proxy = Proxy(cmd.spawn().unwrap(), addr);
    for _ in 0..100 {
        if let Ok(r) = reqwest::get(format!("http://{addr}/healthz")).await
            && r.status() == 200
        {
            return proxy;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("proxy did not become healthy");
}

fn head_for(addr: SocketAddr, method: &str, path: &str, signed: &[(String, String)], extra: &str) -> String {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}");
    for (k, v) in signed {
        head += &format!("{k}: {v}\r\n");
    }
    head + "\r\n"
}

async fn finish(mut s: TcpStream) -> RawResponse {
    s.flush().await.unwrap();
    read_response(&mut s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_up_and_down_keeps_the_proxy_rss_flat() {
    let h = Harness::start().await;
    h.client().create_bucket().bucket("mem").send().await.unwrap();
    let proxy = spawn_proxy(h.origin_addr).await;
    let (pid, addr) = (proxy.0.id(), proxy.1);

    // Warm up: one small PUT and GET so pools and buffers exist.
    let small = block(0);
    let hs =
        sign_headers("PUT", &addr.to_string(), "/mem/warm", &[], &sha256_hex(small), (CAK, CSK), SystemTime::now());
    let r =
        raw_exchange(addr, &head_for(addr, "PUT", "/mem/warm", &hs, &format!("Content-Length: {BLOCK}\r\n")), small)
            .await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    let base = vm_hwm_kib(pid);

    // 1 GiB PUT with a hex payload hash (the proxy hashes while streaming).
    let mut hasher = Sha256::new();
    for i in 0..GIB / BLOCK {
        hasher.update(block(i));
    }
    let digest = hex::encode(hasher.finalize());
    let hs = sign_headers("PUT", &addr.to_string(), "/mem/big", &[], &digest, (CAK, CSK), SystemTime::now());
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head_for(addr, "PUT", "/mem/big", &hs, &format!("Content-Length: {GIB}\r\n")).as_bytes())
        .await
        .unwrap();
    for i in 0..GIB / BLOCK {
        s.write_all(block(i)).await.unwrap();
    }
    let r = finish(s).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    let after_put = vm_hwm_kib(pid);

    // 1 GiB GET, hashed as it arrives.
    let hs = sign_headers("GET", &addr.to_string(), "/mem/big", &[], "UNSIGNED-PAYLOAD", (CAK, CSK), SystemTime::now());
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head_for(addr, "GET", "/mem/big", &hs, "").as_bytes()).await.unwrap();
    let mut buf = vec![0u8; BLOCK];
    let mut head = Vec::new();
    let mut got = Sha256::new();
    let mut n_body = 0usize;
    loop {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        if n_body == 0 && find(&head, b"\r\n\r\n").is_none() {
            head.extend_from_slice(&buf[..n]);
            if let Some(p) = find(&head, b"\r\n\r\n") {
                got.update(&head[p + 4..]);
                n_body += head.len() - p - 4;
            }
            continue;
        }
        got.update(&buf[..n]);
        n_body += n;
    }
    assert!(
        String::from_utf8_lossy(&head).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head[..200.min(head.len())])
    );
    assert!(String::from_utf8_lossy(&head).to_ascii_lowercase().contains(&format!("content-length: {GIB}")));
    assert_eq!(n_body, GIB);
    assert_eq!(hex::encode(got.finalize()), digest, "GET returns the bytes that went up");
    let after_get = vm_hwm_kib(pid);

    eprintln!("proxy VmHWM: baseline {base} KiB, after 1 GiB PUT {after_put} KiB, after 1 GiB GET {after_get} KiB");
    assert!(after_get.saturating_sub(base) <= 16 * 1024, "peak RSS grew by {} KiB", after_get - base);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_signed_chunked_upload_keeps_the_proxy_rss_flat() {
    use hmac::{Hmac, Mac};
    let h = Harness::start().await;
    h.client().create_bucket().bucket("memchunk").send().await.unwrap();
    let proxy = spawn_proxy(h.origin_addr).await;
    let (pid, addr) = (proxy.0.id(), proxy.1);
    let _ = reqwest::get(format!("http://{addr}/healthz")).await;
    let base = vm_hwm_kib(pid);

    const CHUNK: usize = 64 << 10;
    let n_chunks = GIB / CHUNK;
    let wire_len: usize = n_chunks * (format!("{CHUNK:x}").len() + 17 + 64 + 2 + CHUNK + 2) + (1 + 17 + 64 + 2 + 2);
    let dlen = GIB.to_string();
    let signed = [("content-encoding", "aws-chunked"), ("x-amz-decoded-content-length", dlen.as_str())];
    let hs = sign_headers(
        "PUT",
        &addr.to_string(),
        "/memchunk/big",
        &signed,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        (CAK, CSK),
        SystemTime::now(),
    );
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
    let mut sign = |data: &[u8]| {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{date}\n{}/us-east-1/s3/aws4_request\n{prev}\n{empty}\n{}",
            &date[..8],
            hex::encode(Sha256::digest(data))
        );
        let mut m = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        m.update(sts.as_bytes());
        prev = hex::encode(m.finalize().into_bytes());
        prev.clone()
    };
    let mut s = TcpStream::connect(addr).await.unwrap();
    let extra = format!(
        "Content-Length: {wire_len}\r\ncontent-encoding: aws-chunked\r\nx-amz-decoded-content-length: {dlen}\r\n"
    );
    s.write_all(head_for(addr, "PUT", "/memchunk/big", &hs, &extra).as_bytes()).await.unwrap();
    let mut whole = Sha256::new();
    for i in 0..n_chunks {
        let b = &block(i / (BLOCK / CHUNK))[(i % (BLOCK / CHUNK)) * CHUNK..][..CHUNK];
        whole.update(b);
        let mut out = format!("{CHUNK:x};chunk-signature={}\r\n", sign(b)).into_bytes();
        out.extend_from_slice(b);
        out.extend_from_slice(b"\r\n");
        s.write_all(&out).await.unwrap();
    }
    s.write_all(format!("0;chunk-signature={}\r\n\r\n", sign(b"")).as_bytes()).await.unwrap();
    let r = finish(s).await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    let after = vm_hwm_kib(pid);

    // The origin holds exactly the decoded bytes.
    let on_disk = std::fs::read(h.origin_dir.path().join("memchunk/big")).map(|b| hex::encode(Sha256::digest(&b)));
    assert_eq!(on_disk.ok(), Some(hex::encode(whole.finalize())));
    eprintln!("proxy VmHWM: baseline {base} KiB, after 1 GiB signed-chunk PUT {after} KiB");
    assert!(after.saturating_sub(base) <= 16 * 1024, "peak RSS grew by {} KiB", after - base);
}

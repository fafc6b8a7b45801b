//! No secret, signature, signing key or session token in the proxy's logs,
//! at TRACE level for every crate. The proxy runs on its own thread, and only
//! that thread's events are captured (the SDK clients and the s3s-fs origin in
//! this process log too; in production they are not the proxy's process).
//! Relays on both sides record the wire, so every signature the clients and
//! the proxy actually sent becomes a needle. A planted leak proves the scanner
//! finds what it looks for.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine as _;
use common::*;
use hmac::{Hmac, Mac};
use s3_resign_proxy::config::Config;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

const PROXY_THREAD: &str = "proxy-under-test";
const SESSION_TOKEN: &str = "FQoGZXIvYXdzEXAMPLESESSIONTOKEN0123456789abcdef";
/// The origin secret of a second proxy that the origin refuses.
const WRONG_OSK: &str = "wrong-origin-secret-EXAMPLE";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Every event of every crate at TRACE, from the proxy's thread only, as the
/// binary formats them; `log` records too (`try_init` installs the bridge).
fn install_capture() -> Capture {
    use tracing_subscriber::prelude::*;
    let cap = Capture::default();
    let writer = cap.clone();
    let on_proxy_thread =
        tracing_subscriber::filter::filter_fn(|_| std::thread::current().name() == Some(PROXY_THREAD));
    tracing_subscriber::registry()
        .with(
            s3_resign_proxy::access_log::layer(s3_resign_proxy::access_log::LogFormat::Text, false, move || {
                writer.clone()
            })
            .with_filter(on_proxy_thread),
        )
        .try_init()
        .expect("the only subscriber in this test binary");
    cap
}

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// kDate, kRegion, kService and the signing key of `secret` on `date`.
fn derived_keys(secret: &str, date: &str) -> Vec<Vec<u8>> {
    let mut k = format!("AWS4{secret}").into_bytes();
    let mut out = Vec::new();
    for part in [date, "us-east-1", "s3", "aws4_request"] {
        k = hmac(&k, part.as_bytes());
        out.push(k.clone());
    }
    out
}

/// Values that follow `marker` (ASCII case-insensitive) up to a delimiter.
fn values_after(hay: &str, marker: &str) -> Vec<String> {
    let lower = hay.to_ascii_lowercase();
    let m = marker.to_ascii_lowercase();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = lower[from..].find(&m) {
        let start = from + i + m.len();
        let end = hay[start..].find([',', '&', '\r', '\n', ' ', ';', '"', '<']).map_or(hay.len(), |e| start + e);
        out.push(hay[start..end].to_string());
        from = end;
    }
    out
}

/// Signatures and tokens seen on the wire (as sent, and percent-decoded).
fn wire_needles(wire: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(wire);
    let mut out = Vec::new();
    for (what, marker) in [
        ("signature", "Signature="),
        ("chunk signature", "chunk-signature="),
        ("trailer signature", "x-amz-trailer-signature:"),
        ("session token", "x-amz-security-token:"),
        ("session token", "X-Amz-Security-Token="),
        ("SigV2 signature", &format!("AWS {CAK}:")),
    ] {
        for v in values_after(&text, marker) {
            let v = v.trim().to_string();
            let decoded = percent_encoding::percent_decode_str(&v).decode_utf8_lossy().into_owned();
            out.push((what.to_string(), decoded));
            out.push((what.to_string(), v));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The needles found in `log`; hex ones in either case.
fn leaks(log: &str, needles: &[(String, String)]) -> Vec<String> {
    let lower = log.to_ascii_lowercase();
    needles
        .iter()
        .filter(|(_, v)| {
            let hex = v.bytes().all(|b| b.is_ascii_hexdigit());
            if hex { lower.contains(&v.to_ascii_lowercase()) } else { log.contains(v.as_str()) }
        })
        .map(|(what, v)| format!("{what}: {v}"))
        .collect()
}

fn client(endpoint: &str, sk: &str, token: Option<&str>) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(CAK, sk, token.map(str::to_string), None, "test"))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

fn v2_sign(sts: &str) -> String {
    let mut m = Hmac::<sha1::Sha1>::new_from_slice(CSK.as_bytes()).unwrap();
    m.update(sts.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
}

/// A signed aws-chunked upload with a signed trailer (the streaming test's
/// chain, written from the AWS docs).
fn chunked_upload(addr: SocketAddr, path: &str, data: &[u8]) -> (String, Vec<u8>) {
    let trailer =
        format!("x-amz-checksum-sha256:{}", base64::engine::general_purpose::STANDARD.encode(Sha256::digest(data)));
    let dlen = data.len().to_string();
    let signed = [
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", dlen.as_str()),
        ("x-amz-trailer", "x-amz-checksum-sha256"),
    ];
    let hs = sign_headers(
        "PUT",
        &addr.to_string(),
        path,
        &signed,
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        (CAK, CSK),
        SystemTime::now(),
    );
    let get = |n: &str| hs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap();
    let date = get("x-amz-date");
    let key = derived_keys(CSK, &date[..8]).pop().unwrap();
    let scope = format!("{}/us-east-1/s3/aws4_request", &date[..8]);
    let mut prev = get("authorization").rsplit("Signature=").next().unwrap().to_string();
    let mut body = Vec::new();
    for c in data.chunks(4096).chain(std::iter::once(&[][..])) {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{date}\n{scope}\n{prev}\n{}\n{}",
            hex::encode(Sha256::digest(b"")),
            hex::encode(Sha256::digest(c))
        );
        prev = hex::encode(hmac(&key, sts.as_bytes()));
        body.extend_from_slice(format!("{:x};chunk-signature={prev}\r\n", c.len()).as_bytes());
        if !c.is_empty() {
            body.extend_from_slice(c);
            body.extend_from_slice(b"\r\n");
        }
    }
    let sts = format!(
        "AWS4-HMAC-SHA256-TRAILER\n{date}\n{scope}\n{prev}\n{}",
        hex::encode(Sha256::digest(format!("{trailer}\n").as_bytes()))
    );
    let sig = hex::encode(hmac(&key, sts.as_bytes()));
    body.extend_from_slice(format!("{trailer}\r\nx-amz-trailer-signature:{sig}\r\n\r\n").as_bytes());
    let mut head = format!("PUT {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in hs.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain(signed) {
        head += &format!("{k}: {v}\r\n");
    }
    head += &format!("Content-Length: {}\r\n\r\n", body.len());
    (head, body)
}

/// Starts the proxies on their own thread and runtime: one toward `origin`
/// with the right keys, one with a wrong origin secret. Logs `plant`'s
/// strings from that thread when asked, then stops.
fn proxy_thread(
    origin: SocketAddr,
) -> (SocketAddr, SocketAddr, tokio::sync::oneshot::Sender<Vec<String>>, std::thread::JoinHandle<()>) {
    let (addrs_tx, addrs_rx) = std::sync::mpsc::channel();
    let (plant_tx, plant_rx) = tokio::sync::oneshot::channel::<Vec<String>>();
    let thread = std::thread::Builder::new()
        .name(PROXY_THREAD.into())
        .spawn(move || {
            let rt =
                tokio::runtime::Builder::new_current_thread().enable_all().thread_name(PROXY_THREAD).build().unwrap();
            rt.block_on(async move {
                let (good, _s1) = start_proxy_to(origin, |_| {}).await;
                let mut vars = base_vars(origin);
                vars.retain(|(k, _)| k != "ORIGIN_SECRET_KEY");
                vars.push(("ORIGIN_SECRET_KEY".into(), WRONG_OSK.into()));
                let (wrong, _s2) = start_proxy_config(Config::from_vars(vars).unwrap()).await;
                addrs_tx.send((good, wrong)).unwrap();
                for p in plant_rx.await.unwrap_or_default() {
                    tracing::trace!(target: "s3_resign_proxy::planted", value = %p, "a planted leak");
                }
            });
        })
        .unwrap();
    let (good, wrong) = addrs_rx.recv().unwrap();
    (good, wrong, plant_tx, thread)
}

#[tokio::test]
async fn a_trace_level_session_logs_no_secret_signature_signing_key_or_session_token() {
    let cap = install_capture();
    let origin = Harness::start().await;
    // Proxy -> origin relay: what the proxy signed.
    let to_origin = Relay::start(origin.origin_addr, None).await;
    let (good, wrong, plant, thread) = proxy_thread(to_origin.addr);
    // Client -> proxy relays: what the clients signed (clients sign for the relay's host).
    let front = Relay::start(good, None).await;
    let front_wrong = Relay::start(wrong, None).await;
    let endpoint = format!("http://{}", front.addr);

    // Header-signed SDK requests.
    let c = client(&endpoint, CSK, None);
    c.create_bucket().bucket("logs").send().await.unwrap();
    c.put_object().bucket("logs").key("a.txt").body(ByteStream::from_static(b"log me not")).send().await.unwrap();
    let got = c.get_object().bucket("logs").key("a.txt").send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"log me not");
    c.list_objects_v2().bucket("logs").send().await.unwrap();
    c.head_object().bucket("logs").key("a.txt").send().await.unwrap();

    // With a session token.
    let t = client(&endpoint, CSK, Some(SESSION_TOKEN));
    t.put_object().bucket("logs").key("t.txt").body(ByteStream::from_static(b"token")).send().await.unwrap();
    t.get_object().bucket("logs").key("t.txt").send().await.unwrap();

    // Presigned GET and PUT (SigV4 query).
    let http = reqwest::Client::new();
    let cfg = || PresigningConfig::expires_in(Duration::from_secs(300)).unwrap();
    let url = c.get_object().bucket("logs").key("a.txt").presigned(cfg()).await.unwrap();
    let r = http.get(url.uri()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let put = c.put_object().bucket("logs").key("p.txt").presigned(cfg()).await.unwrap();
    let mut req = http.put(put.uri()).body("presigned body");
    for (k, v) in put.headers() {
        req = req.header(k, v);
    }
    assert_eq!(req.send().await.unwrap().status(), 200);
    let turl = t.get_object().bucket("logs").key("a.txt").presigned(cfg()).await.unwrap();
    assert!(turl.uri().contains("X-Amz-Security-Token="), "a presigned URL with a session token");
    let token_presigned_status = http.get(turl.uri()).send().await.unwrap().status();

    // A signed aws-chunked upload with a signed trailer.
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let (head, body) = chunked_upload(front.addr, "/logs/chunked.bin", &data);
    let r = raw_exchange(front.addr, &head, &body).await;
    assert_eq!(r.status, 200, "{}", r.body_str());

    // A body that does not match its signed hash; the health probe (signed
    // with the origin's keys).
    let claimed = sha256_hex(b"the signed body");
    let head = signed_head(front.addr, "PUT", "/logs/mismatch", &[], &claimed, Some(13));
    let r = raw_exchange(front.addr, &head, b"another body!").await;
    assert_eq!(r.status, 400, "{}", r.body_str());
    assert_eq!(http.get(format!("{endpoint}/healthz")).send().await.unwrap().status(), 200);

    // Failed signatures: header, presigned, chunk.
    let bad = client(&endpoint, "not-the-secret-key", None);
    assert!(bad.get_object().bucket("logs").key("a.txt").send().await.is_err());
    let bad_url = bad.get_object().bucket("logs").key("a.txt").presigned(cfg()).await.unwrap();
    assert_eq!(http.get(bad_url.uri()).send().await.unwrap().status(), 403);
    let (head, mut body) = chunked_upload(front.addr, "/logs/tampered.bin", &data);
    let at = find(&body, b";chunk-signature=").unwrap() + 17;
    body[at] = if body[at] == b'0' { b'1' } else { b'0' };
    let r = raw_exchange(front.addr, &head, &body).await;
    assert_eq!(r.status, 403, "{}", r.body_str());

    // SigV2: header and presigned.
    let date = OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc2822).unwrap();
    let sig = v2_sign(&format!("GET\n\n\n{date}\n/logs/a.txt"));
    let head = format!(
        "GET /logs/a.txt HTTP/1.1\r\nHost: {}\r\nDate: {date}\r\nAuthorization: AWS {CAK}:{sig}\r\nConnection: close\r\n\r\n",
        front.addr
    );
    let r = raw_exchange(front.addr, &head, b"").await;
    assert_eq!(r.status, 200, "{}", r.body_str());
    let expires = OffsetDateTime::now_utc().unix_timestamp() + 300;
    let sig = v2_sign(&format!("GET\n\n\n{expires}\n/logs/a.txt"));
    let sig = percent_encoding::utf8_percent_encode(&sig, percent_encoding::NON_ALPHANUMERIC).to_string();
    let r = http
        .get(format!("{endpoint}/logs/a.txt?AWSAccessKeyId={CAK}&Expires={expires}&Signature={sig}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A proxy whose origin secret is wrong: the origin refuses its signature.
    let w = client(&format!("http://{}", front_wrong.addr), CSK, None);
    assert!(w.get_object().bucket("logs").key("a.txt").send().await.is_err());

    // The needles: secrets, every signature and token on both wires, the
    // derived keys of each secret around today.
    let mut needles: Vec<(String, String)> = vec![
        ("client secret".into(), CSK.into()),
        ("origin secret".into(), OSK.into()),
        ("wrong origin secret".into(), WRONG_OSK.into()),
        ("session token".into(), SESSION_TOKEN.into()),
    ];
    for secret in [CSK, OSK, WRONG_OSK] {
        for day in [-1i64, 0, 1] {
            let d = OffsetDateTime::now_utc() + time::Duration::days(day);
            let date = format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day());
            for k in derived_keys(secret, &date) {
                needles.push(("derived key".into(), hex::encode(k)));
            }
        }
    }
    let client_side = [front.upstream.lock().unwrap().clone(), front_wrong.upstream.lock().unwrap().clone()].concat();
    let from_clients = wire_needles(&client_side);
    let from_proxy = wire_needles(&to_origin.upstream.lock().unwrap());
    let count = |v: &[(String, String)], what: &str| v.iter().filter(|(w, _)| w == what).count();
    // The session really exercised each kind (as sent and decoded: >= 2 each).
    assert!(count(&from_clients, "signature") >= 20, "{from_clients:?}");
    assert!(count(&from_clients, "chunk signature") >= 6, "{from_clients:?}");
    assert!(count(&from_clients, "trailer signature") >= 2, "{from_clients:?}");
    assert!(count(&from_clients, "session token") >= 1, "{from_clients:?}");
    assert!(count(&from_clients, "SigV2 signature") >= 1, "{from_clients:?}");
    assert!(count(&from_proxy, "signature") >= 10, "{from_proxy:?}");
    assert!(count(&from_proxy, "chunk signature") >= 3, "the proxy re-signed chunks: {from_proxy:?}");
    needles.extend(from_clients);
    needles.extend(from_proxy);
    needles.retain(|(_, v)| v.len() >= 16);
    needles.sort();
    needles.dedup();

    let log = cap.text();
    // The capture holds the proxy's own events at every level.
    assert!(
        log.contains("access_log: request ") && log.contains("rejected"),
        "nothing captured from the proxy:\n{log}"
    );
    let found = leaks(&log, &needles);
    assert!(found.is_empty(), "secrets in the proxy's TRACE logs: {found:#?}");
    eprintln!(
        "scanned {} bytes of TRACE logs ({} lines) for {} needles; presigned with a session token: {token_presigned_status}",
        log.len(),
        log.lines().count(),
        needles.len()
    );

    // The scanner finds a planted leak of each kind, logged by the proxy's thread.
    let pick = |what: &str| needles.iter().find(|(w, _)| w == what).unwrap().clone();
    // A SigV4 signature (hex), planted upper-cased: the scanner must match hex
    // in either case. "Signature=" also catches SigV2's base64 query signature,
    // whose case matters, so that one is never the planted value.
    let sigv4 = needles
        .iter()
        .find(|(w, v)| w == "signature" && v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap()
        .clone();
    let planted = [sigv4, pick("chunk signature"), pick("derived key"), pick("client secret"), pick("session token")];
    plant
        .send(vec![
            format!("Authorization: AWS4-HMAC-SHA256 Signature={}", planted[0].1.to_ascii_uppercase()),
            format!("chunk {}", planted[1].1),
            planted[2].1.clone(),
            format!("secret={}", planted[3].1),
            planted[4].1.clone(),
        ])
        .unwrap();
    thread.join().unwrap();
    let log = cap.text();
    for p in &planted {
        assert_eq!(leaks(&log, std::slice::from_ref(p)).len(), 1, "the scanner finds the planted {p:?}");
    }
}

//! In-process harness: a strict s3s-fs origin (origin credentials) and the
//! proxy (client credentials), both on port 0, plus clients for each.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use s3_resign_proxy::config::Config;
use s3_resign_proxy::{AppState, Clock};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const CAK: &str = "CLIENTKEYEXAMPLE";
pub const CSK: &str = "client/secret+key/EXAMPLE";
pub const OAK: &str = "ORIGINKEYEXAMPLE";
pub const OSK: &str = "origin-secret-key-EXAMPLE";

/// A clock that runs `offset` ahead of (or behind) real time.
pub struct OffsetClock(pub time::Duration);

impl Clock for OffsetClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.0
    }
}

pub struct Harness {
    pub origin_addr: SocketAddr,
    pub proxy_addr: SocketAddr,
    pub origin_dir: tempfile::TempDir,
    origin_task: Option<tokio::task::JoinHandle<()>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

pub fn base_vars(origin: SocketAddr) -> Vec<(String, String)> {
    [
        ("CLIENT_ACCESS_KEY", CAK.to_string()),
        ("CLIENT_SECRET_KEY", CSK.to_string()),
        ("ORIGIN_ACCESS_KEY", OAK.to_string()),
        ("ORIGIN_SECRET_KEY", OSK.to_string()),
        ("ORIGIN_DOMAIN", format!("http://{origin}")),
        ("HOST", "127.0.0.1".to_string()),
        ("PORT", "0".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(|_| {}, None).await
    }

    /// `tweak` edits the environment; `clock` replaces the proxy's clock.
    pub async fn start_with(tweak: impl FnOnce(&mut Vec<(String, String)>), clock: Option<Arc<dyn Clock>>) -> Self {
        let origin_dir = tempfile::tempdir().unwrap();
        let ol = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let origin_addr = ol.local_addr().unwrap();
        let root = origin_dir.path().to_owned();
        let origin_task = tokio::spawn(async move {
            let _ = s3_resign_proxy::demo::serve_origin(ol, &root, OAK, OSK).await;
        });
        let mut vars = base_vars(origin_addr);
        tweak(&mut vars);
        let (proxy_addr, shutdown) = start_proxy(vars, clock).await;
        Self { origin_addr, proxy_addr, origin_dir, origin_task: Some(origin_task), shutdown: Some(shutdown) }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.proxy_addr)
    }

    pub fn client(&self) -> aws_sdk_s3::Client {
        s3_client(&self.endpoint(), CAK, CSK)
    }

    pub fn client_with(&self, ak: &str, sk: &str) -> aws_sdk_s3::Client {
        s3_client(&self.endpoint(), ak, sk)
    }

    /// Straight to the origin with the origin credentials: the ground truth.
    pub fn origin(&self) -> aws_sdk_s3::Client {
        s3_client(&format!("http://{}", self.origin_addr), OAK, OSK)
    }

    pub fn stop_origin(&mut self) {
        if let Some(t) = self.origin_task.take() {
            t.abort();
        }
    }

    /// Does the origin hold `bucket/key`? Asks the origin directly.
    pub async fn origin_has(&self, bucket: &str, key: &str) -> bool {
        self.origin().head_object().bucket(bucket).key(key).send().await.is_ok()
    }

    pub async fn origin_get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let o = self.origin().get_object().bucket(bucket).key(key).send().await.expect("object at origin");
        o.body.collect().await.unwrap().into_bytes().to_vec()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
        self.stop_origin();
    }
}

pub async fn start_proxy(
    vars: Vec<(String, String)>,
    clock: Option<Arc<dyn Clock>>,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let config = Config::from_vars(vars).expect("valid config");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = match clock {
        Some(c) => AppState::with_clock(config, c),
        None => AppState::new(config),
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        s3_resign_proxy::run(listener, state, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (addr, tx)
}

pub fn s3_client(endpoint: &str, ak: &str, sk: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(ak, sk, None, None, "test"))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Signs a raw request with the aws-sigv4 crate (an independent signer).
/// `path_and_query` must already be percent-encoded as an SDK would send it.
#[allow(clippy::too_many_arguments)]
pub fn sign_headers(
    method: &str,
    host: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    payload_hash: &str,
    ak: &str,
    sk: &str,
    at: SystemTime,
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
        UriPathNormalizationMode, sign,
    };
    let identity = Credentials::new(ak, sk, None, None, "test").into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(at)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let mut all: Vec<(&str, &str)> = vec![("host", host)];
    all.extend_from_slice(headers);
    let uri = format!("http://{host}{path_and_query}");
    let req = SignableRequest::new(method, uri, all.into_iter(), SignableBody::Precomputed(payload_hash.to_string()))
        .unwrap();
    let (instr, _sig) = sign(req, &params).unwrap().into_parts();
    let (hs, _qs) = instr.into_parts();
    hs.into_iter().map(|h| (h.name().to_string(), h.value().to_string())).collect()
}

/// A raw HTTP/1.1 exchange: writes `head` (+ `body`), reads one response.
pub async fn raw_exchange(addr: SocketAddr, head: &str, body: &[u8]) -> RawResponse {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    if !body.is_empty() {
        // The peer may close early; what matters is the response we read.
        let _ = s.write_all(body).await;
    }
    read_response(&mut s).await
}

#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }
}

pub async fn read_response(s: &mut TcpStream) -> RawResponse {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let n = tokio::time::timeout_at(deadline, s.read(&mut tmp)).await.expect("response in time").unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..pos]).into_owned();
            let status: u16 = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            if status == 100 {
                buf.drain(..pos + 4);
                continue;
            }
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            while buf.len() < pos + 4 + len {
                let n = tokio::time::timeout_at(deadline, s.read(&mut tmp)).await.expect("body in time").unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&tmp[..n]);
            }
            let body = buf[pos + 4..(pos + 4 + len).min(buf.len())].to_vec();
            return RawResponse { status, head, body };
        }
    }
    RawResponse { status: 0, head: String::from_utf8_lossy(&buf).into_owned(), body: vec![] }
}

pub fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

pub fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// Presigns `method path_and_query` for `host` with the aws-sigv4 crate (an
/// independent signer): the query already in `path_and_query` and `headers`
/// are signed too. Returns the path and query to send.
pub fn presign(
    method: &str,
    host: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    expires: Duration,
    at: SystemTime,
) -> String {
    use aws_sigv4::http_request::{
        PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
        UriPathNormalizationMode, sign,
    };
    let identity = Credentials::new(CAK, CSK, None, None, "test").into();
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(expires);
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("s3")
        .time(at)
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let mut all: Vec<(&str, &str)> = vec![("host", host)];
    all.extend_from_slice(headers);
    let uri = format!("http://{host}{path_and_query}");
    let req = SignableRequest::new(method, uri, all.into_iter(), SignableBody::UnsignedPayload).unwrap();
    let (instr, _sig) = sign(req, &params).unwrap().into_parts();
    let (_hs, qs) = instr.into_parts();
    let mut out = path_and_query.to_string();
    for (k, v) in qs {
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(k);
        out.push('=');
        out.push_str(&percent_encoding::utf8_percent_encode(&v, percent_encoding::NON_ALPHANUMERIC).to_string());
    }
    out
}

/// A request head: `method target`, Host, then `headers` in order.
pub fn head(method: &str, target: &str, host: &str, headers: &[(String, String)]) -> String {
    let mut h = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n");
    for (k, v) in headers {
        h += &format!("{k}: {v}\r\n");
    }
    h + "\r\n"
}

/// Owned header pairs.
pub fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

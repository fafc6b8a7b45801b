//! Built-in HTTPS (TLS_CERT/TLS_KEY) with certificate reload, ORIGIN_CA_BUNDLE
//! toward an https origin, and ORIGIN_SESSION_TOKEN. Certificates come from a
//! test CA made with rcgen; the origin is s3s-fs, which checks every signature
//! (behind a TLS front made with the proxy's own acceptor, for https).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::primitives::ByteStream;
use common::*;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SerialNumber};
use rustls::pki_types::{CertificateDer, ServerName};
use s3_resign_proxy::config::Config;
use s3_resign_proxy::tls::{Reloaded, Tls};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;

// ------------------------------------------------------------------ logs

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

/// Everything the proxy logs in this test binary, at TRACE (the tests run
/// in parallel, so a test looks for its own marks in it).
fn logs() -> &'static Capture {
    static CAP: OnceLock<Capture> = OnceLock::new();
    CAP.get_or_init(|| {
        let cap = Capture::default();
        let writer = cap.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("s3_resign_proxy=trace"))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .try_init()
            .expect("the only subscriber in this test binary");
        cap
    })
}

fn log_text() -> String {
    String::from_utf8_lossy(&logs().0.lock().unwrap()).into_owned()
}

// ------------------------------------------------------------------ certificates

/// A test CA in a temporary directory, and the leaf certificates it signs
/// (for 127.0.0.1 and localhost).
struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl Pki {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { dir: tempfile::tempdir().unwrap(), ca }
    }

    fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    fn leaf(&self, cn: &str, serial: u64) -> Leaf {
        let mut params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.serial_number = Some(SerialNumber::from(serial));
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        Leaf { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().clone() }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `text` to `name` as renewal tools do: a new file renamed over the old.
    fn replace(&self, name: &str, text: &str) {
        let tmp = self.path(&format!(".{name}.tmp"));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.path(name)).unwrap();
    }

    /// Installs `leaf` as cert.pem and key.pem.
    fn install(&self, leaf: &Leaf) {
        self.replace("cert.pem", &leaf.cert_pem);
        self.replace("key.pem", &leaf.key_pem);
    }

    fn tls_vars(&self) -> [(String, String); 2] {
        [
            ("TLS_CERT".to_string(), self.path("cert.pem").display().to_string()),
            ("TLS_KEY".to_string(), self.path("key.pem").display().to_string()),
        ]
    }
}

fn client_config(ca_pem: &str, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

use rustls::pki_types::pem::PemObject as _;

/// A new TLS connection to `addr` (a fresh client configuration: no session
/// resumption), verified against `ca_pem`.
async fn connect(addr: SocketAddr, ca_pem: &str) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(client_config(ca_pem, &[b"http/1.1"]));
    connector.connect(ServerName::try_from("127.0.0.1").unwrap(), tcp).await
}

fn peer_leaf(s: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    s.get_ref().1.peer_certificates().expect("a server certificate")[0].clone().into_owned()
}

/// The certificate a new connection gets.
async fn served_leaf(addr: SocketAddr, ca_pem: &str) -> CertificateDer<'static> {
    peer_leaf(&connect(addr, ca_pem).await.expect("TLS handshake"))
}

/// Polls new connections until one gets `want` (up to 10 s).
async fn wait_for_leaf(addr: SocketAddr, ca_pem: &str, want: &CertificateDer<'_>) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if served_leaf(addr, ca_pem).await == *want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// `GET /healthz` on an open connection (kept alive): the status.
async fn healthz_on<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> u16 {
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut tmp)).await.expect("answer in time").unwrap();
        assert!(n > 0, "connection closed: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&tmp[..n]);
        let Some(end) = find(&buf, b"\r\n\r\n") else { continue };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
            .unwrap_or(0);
        if buf.len() >= end + 4 + len {
            assert_eq!(buf.len(), end + 4 + len, "one response");
            return head.split(' ').nth(1).unwrap().parse().unwrap();
        }
    }
}

/// The SDK over HTTPS, trusting only `ca_pem`.
fn https_client(endpoint: &str, ca_pem: &str) -> aws_sdk_s3::Client {
    use aws_smithy_http_client::tls::{Provider, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let trust = TrustStore::empty().with_pem_certificate(ca_pem.as_bytes());
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(TlsContext::builder().with_trust_store(trust).build().unwrap())
        .build_https();
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(CAK, CSK, None, None, "test"))
        .force_path_style(true)
        .http_client(http)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

fn data(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 11) as u8).collect()
}

async fn put_get(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, body: &[u8]) {
    s3.put_object().bucket(bucket).key(key).body(ByteStream::from(body.to_vec())).send().await.expect("put");
    let got = s3.get_object().bucket(bucket).key(key).send().await.expect("get");
    let got = got.body.collect().await.unwrap().into_bytes();
    assert!(got == body, "{key}: the object read back differs");
}

/// An s3s-fs origin (origin credentials) on 127.0.0.1, and its data directory.
async fn origin() -> (SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let root = dir.path().to_owned();
    tokio::spawn(async move {
        let _ = s3_resign_proxy::demo::serve_origin(l, &root, OAK, OSK).await;
    });
    (addr, dir)
}

/// The proxy toward `origin` with TLS_CERT/TLS_KEY from `pki`: its address,
/// its certificate store, and the sender that stops it.
async fn tls_proxy(origin: SocketAddr, pki: &Pki) -> (SocketAddr, Arc<Tls>, tokio::sync::oneshot::Sender<()>) {
    let mut vars = base_vars(origin);
    vars.extend(pki.tls_vars());
    let config = Config::from_vars(vars).expect("valid config");
    let tls = config.tls.clone().expect("TLS is on");
    let (addr, stop) = start_proxy_config(config).await;
    (addr, tls, stop)
}

// ------------------------------------------------------------------ built-in HTTPS

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_serves_the_sdk_and_a_renewed_certificate_reaches_new_connections_only() {
    logs();
    let pki = Pki::new("s3rp test CA one");
    let ca = pki.ca_pem();
    let (one, two, three) = (pki.leaf("proxy-one", 1), pki.leaf("proxy-two", 2), pki.leaf("proxy-three", 3));
    pki.install(&one);
    let (origin, _dir) = origin().await;
    let (addr, tls, _stop) = tls_proxy(origin, &pki).await;
    let _reloader = tls.watch().expect("watching the certificate files");
    let endpoint = format!("https://{addr}");

    let s3 = https_client(&endpoint, &ca);
    s3.create_bucket().bucket("tlsbkt").send().await.expect("create bucket over HTTPS");
    put_get(&s3, "tlsbkt", "one/3MiB.bin", &data(3 << 20, 1)).await;
    assert_eq!(served_leaf(addr, &ca).await, one.der);

    // A keep-alive connection opened before the renewal.
    let mut old = connect(addr, &ca).await.unwrap();
    assert_eq!(healthz_on(&mut old).await, 200);

    // Renewal by rename (certbot, cert-manager): picked up without a restart.
    pki.install(&two);
    assert!(wait_for_leaf(addr, &ca, &two.der).await, "a new connection never got the renewed certificate");
    assert_eq!(tls.fingerprint(), sha256_hex(&two.der));
    assert_eq!(healthz_on(&mut old).await, 200, "the old connection keeps working");
    assert_eq!(peer_leaf(&old), one.der, "and keeps its certificate");
    put_get(&https_client(&endpoint, &ca), "tlsbkt", "two/1MiB.bin", &data(1 << 20, 2)).await;

    // A half-written file is refused and the current certificate stays.
    std::fs::write(pki.path("cert.pem"), &two.cert_pem[..two.cert_pem.len() / 2]).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(served_leaf(addr, &ca).await, two.der, "a bad file must not replace the certificate");
    assert!(log_text().contains("TLS certificate reload failed; the current certificate stays"), "logged");
    assert_eq!(healthz_on(&mut old).await, 200);

    // Written in place (no rename): picked up too.
    std::fs::write(pki.path("cert.pem"), &three.cert_pem).unwrap();
    std::fs::write(pki.path("key.pem"), &three.key_pem).unwrap();
    assert!(wait_for_leaf(addr, &ca, &three.der).await, "an in-place rewrite was not picked up");
    put_get(&https_client(&endpoint, &ca), "tlsbkt", "three/1MiB.bin", &data(1 << 20, 3)).await;
}

/// What the SIGHUP handler runs ([`Tls::reload_and_log`]), called directly:
/// no watcher runs here, so only the call changes the certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_swaps_a_good_pair_and_keeps_the_old_one_on_bad_files() {
    logs();
    let pki = Pki::new("s3rp test CA two");
    let ca = pki.ca_pem();
    let (one, two, three) = (pki.leaf("reload-one", 11), pki.leaf("reload-two", 12), pki.leaf("reload-three", 13));
    pki.install(&one);
    let (origin, _dir) = origin().await;
    let (addr, tls, _stop) = tls_proxy(origin, &pki).await;
    assert_eq!(served_leaf(addr, &ca).await, one.der);

    pki.install(&two);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(served_leaf(addr, &ca).await, one.der, "nothing changes before the reload (no watcher here)");
    let fp_two = sha256_hex(&two.der);
    assert_eq!(tls.reload_and_log("SIGHUP"), Ok(Reloaded::Changed(fp_two.clone())));
    assert_eq!(served_leaf(addr, &ca).await, two.der);
    assert_eq!(tls.reload_and_log("SIGHUP"), Ok(Reloaded::Unchanged));

    let bad: [(&str, &str, &str, &str); 5] = [
        ("garbage", "not a certificate\n", &two.key_pem, "holds no PEM certificate"),
        ("cut short", &two.cert_pem[..two.cert_pem.len() / 2], &two.key_pem, "a section has no END line"),
        ("empty", "", &two.key_pem, "holds no PEM certificate"),
        ("a key that is not the certificate's", &three.cert_pem, &two.key_pem, "does not fit"),
        ("no key", &two.cert_pem, "", "holds no PEM private key"),
    ];
    for (what, cert, key, why) in bad {
        pki.replace("cert.pem", cert);
        pki.replace("key.pem", key);
        let e = tls.reload_and_log("SIGHUP").expect_err(what);
        assert!(e.0.contains(why), "{what}: {e}");
        assert!(!e.0.contains("PRIVATE KEY"), "{what}: no key material in the error: {e}");
        assert_eq!(served_leaf(addr, &ca).await, two.der, "{what}: the current certificate stays");
        assert_eq!(tls.fingerprint(), fp_two);
    }
    std::fs::remove_file(pki.path("cert.pem")).unwrap();
    assert!(tls.reload_and_log("SIGHUP").unwrap_err().0.starts_with("cannot read TLS_CERT "));
    assert_eq!(served_leaf(addr, &ca).await, two.der);

    pki.install(&three);
    assert!(matches!(tls.reload_and_log("SIGHUP"), Ok(Reloaded::Changed(_))));
    assert_eq!(served_leaf(addr, &ca).await, three.der);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_is_http1_only_and_plain_http_gets_no_answer() {
    let pki = Pki::new("s3rp test CA three");
    let ca = pki.ca_pem();
    pki.install(&pki.leaf("alpn", 21));
    let (origin, _dir) = origin().await;
    let (addr, _tls, _stop) = tls_proxy(origin, &pki).await;

    let s = connect(addr, &ca).await.unwrap();
    assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let h2 = tokio_rustls::TlsConnector::from(client_config(&ca, &[b"h2"]));
    let r = h2.connect(ServerName::try_from("127.0.0.1").unwrap(), tcp).await;
    assert!(r.is_err(), "an h2-only client must be refused in the handshake");
    // No ALPN at all: HTTP/1.1.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let none = tokio_rustls::TlsConnector::from(client_config(&ca, &[]));
    let mut s = none.connect(ServerName::try_from("127.0.0.1").unwrap(), tcp).await.unwrap();
    assert_eq!(healthz_on(&mut s).await, 200);

    // Plain HTTP to the TLS port: no HTTP answer, the connection just ends.
    let r = raw_exchange(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", b"").await;
    assert_eq!(r.status, 0, "plain HTTP on the TLS port: {:?}", r.head);
}

// ------------------------------------------------------------------ ORIGIN_CA_BUNDLE

/// An https front for `to`, with the proxy's own acceptor and `leaf`.
async fn tls_front(pki: &Pki, leaf: &Leaf, to: SocketAddr) -> SocketAddr {
    std::fs::write(pki.path("origin-cert.pem"), &leaf.cert_pem).unwrap();
    std::fs::write(pki.path("origin-key.pem"), &leaf.key_pem).unwrap();
    let tls = Tls::load(&pki.path("origin-cert.pem"), &pki.path("origin-key.pem")).unwrap();
    let acceptor = tls.acceptor();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut inbound) = acceptor.accept(tcp).await else { return };
                let Ok(mut outbound) = TcpStream::connect(to).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            });
        }
    });
    addr
}

fn write_file(p: &Path, text: &str) -> String {
    std::fs::write(p, text).unwrap();
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_origin_is_verified_against_origin_ca_bundle() {
    logs();
    let pki = Pki::new("s3rp test origin CA");
    let (plain, _dir) = origin().await;
    let front = tls_front(&pki, &pki.leaf("origin", 31), plain).await;
    let ca_file = write_file(&pki.path("origin-ca.pem"), &pki.ca_pem());
    let https_vars = |bundle: Option<&str>| {
        let mut v = base_vars(front);
        set_var(&mut v, "ORIGIN_DOMAIN", &format!("https://{front}"));
        if let Some(b) = bundle {
            set_var(&mut v, "ORIGIN_CA_BUNDLE", b);
        }
        v
    };

    // Trusting the test CA: the whole path works, health included.
    let (addr, _stop) = start_proxy_config(Config::from_vars(https_vars(Some(&ca_file))).unwrap()).await;
    let s3 = s3_client(&format!("http://{addr}"), CAK, CSK);
    s3.create_bucket().bucket("cabkt").send().await.expect("create bucket through an https origin");
    put_get(&s3, "cabkt", "k.bin", &data(2 << 20, 7)).await;
    let r = raw_exchange(addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", b"").await;
    assert_eq!(r.status, 200, "{}", r.body_str());

    // The system roots (no bundle), or a bundle of another CA: refused, 502.
    let other = Pki::new("s3rp unrelated CA");
    let other_file = write_file(&pki.path("other-ca.pem"), &other.ca_pem());
    for (what, bundle) in [("the system roots", None), ("ORIGIN_CA_BUNDLE", Some(other_file.as_str()))] {
        let (addr, _stop) = start_proxy_config(Config::from_vars(https_vars(bundle)).unwrap()).await;
        let head = signed_head(addr, "GET", "/cabkt/k.bin", &[], "UNSIGNED-PAYLOAD", None);
        let r = raw_exchange(addr, &head, b"").await;
        assert_eq!(r.status, 502, "{what}: {}", r.body_str());
        assert!(r.body_str().contains("<Code>BadGateway</Code>"), "{what}: {}", r.body_str());
        let line = format!("origin TLS certificate not trusted (a private CA needs ORIGIN_CA_BUNDLE) roots=\"{what}\"");
        let logged = log_text();
        assert!(
            logged.lines().any(|l| l.contains("origin TLS certificate not trusted") && l.contains(what)),
            "{what}: no log line like {line:?} in {}",
            logged.lines().filter(|l| l.contains("origin")).collect::<Vec<_>>().join("\n")
        );
        assert!(logged.contains("UnknownIssuer"), "the log names rustls' reason");
    }

    // A bundle that is not one is a configuration error at start.
    let not_pem = write_file(&pki.path("not-a-bundle.pem"), "hello\n");
    let e = Config::from_vars(https_vars(Some(&not_pem))).unwrap_err();
    assert!(e.0.contains("ORIGIN_CA_BUNDLE") && e.0.contains("not-a-bundle.pem"), "{e}");
    let e = Config::from_vars(https_vars(Some("/nonexistent/ca.pem"))).unwrap_err();
    assert!(e.0.starts_with("cannot read ORIGIN_CA_BUNDLE /nonexistent/ca.pem"), "{e}");
}

// ------------------------------------------------------------------ ORIGIN_SESSION_TOKEN

const ORIGIN_TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLEORIGINSESSIONTOKEN/abc+def=";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_session_token_is_sent_signed_and_verifies_at_s3s() {
    logs();
    let (h, relay) = Harness::start_relayed(|v| set_var(v, "ORIGIN_SESSION_TOKEN", ORIGIN_TOKEN), false).await;
    // The client signs with a session token of its own: it must not reach the origin.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(h.endpoint())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(CAK, CSK, Some("CLIENTSESSIONTOKEN".into()), None, "test"))
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket("tokbkt").send().await.expect("create bucket");
    put_get(&s3, "tokbkt", "obj.bin", &data(300 << 10, 9)).await;
    assert!(h.origin_has("tokbkt", "obj.bin").await, "s3s-fs stored it: the signature over the token verified");
    let r = raw_exchange(h.proxy_addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", b"").await;
    assert_eq!(r.status, 200, "the probe's signature verifies at s3s-fs too: {}", r.body_str());

    let heads = seen_heads(&relay);
    let methods: Vec<&str> = heads.iter().map(|s| s.method.as_str()).collect();
    for m in ["PUT", "GET", "HEAD"] {
        assert!(methods.contains(&m), "the relay saw a {m}: {methods:?}");
    }
    for s in &heads {
        let tokens: Vec<&str> = s
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("x-amz-security-token"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(tokens, [ORIGIN_TOKEN], "{} {}: the origin's token, once", s.method, s.target);
        let authz = s.header("authorization").unwrap_or("");
        let signed = authz.split("SignedHeaders=").nth(1).and_then(|r| r.split(',').next()).unwrap_or("");
        assert!(
            signed.split(';').any(|n| n == "x-amz-security-token"),
            "{} {}: not signed: {authz}",
            s.method,
            s.target
        );
    }
    let logged = log_text();
    assert!(!logged.is_empty(), "the capture works");
    assert!(!logged.contains("EXAMPLEORIGINSESSIONTOKEN"), "the origin session token is never logged");
}

// ------------------------------------------------------------------ the healthcheck subcommand over TLS

/// `s3-resign-proxy healthcheck` with TLS_CERT set (the container's HEALTHCHECK
/// with built-in TLS) speaks HTTPS to the proxy, pinned to that certificate:
/// it passes against the proxy serving it, and fails against one serving
/// another certificate, however trusted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_speaks_tls_pinned_to_tls_cert() {
    logs();
    let pki = Pki::new("s3rp test CA healthcheck");
    let (one, two) = (pki.leaf("proxy-one", 11), pki.leaf("proxy-two", 12));
    pki.install(&one);
    let (origin, _dir) = origin().await;
    let (addr, _tls, _stop) = tls_proxy(origin, &pki).await;
    let run = move |cert: PathBuf| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_s3-resign-proxy"))
            .env_clear()
            .arg("healthcheck")
            .env("PORT", addr.port().to_string())
            .env("TLS_CERT", cert)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let served = pki.path("cert.pem");
    let (code, out) = tokio::task::spawn_blocking(move || run(served)).await.unwrap();
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("healthy: 200"), "{out}");
    // Another certificate from the same CA is not the one served.
    let other = tempfile::tempdir().unwrap();
    let other_cert = other.path().join("cert.pem");
    std::fs::write(&other_cert, &two.cert_pem).unwrap();
    let (code, out) = tokio::task::spawn_blocking(move || run(other_cert)).await.unwrap();
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("not the one in TLS_CERT"), "{out}");
}

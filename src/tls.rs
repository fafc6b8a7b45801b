//! Built-in HTTPS (TLS_CERT, TLS_KEY) and the origin's trust roots
//! (ORIGIN_CA_BUNDLE).
//!
//! The server certificate sits behind a [`ResolvesServerCert`] that hands out
//! whatever [`CertifiedKey`] is current, so a reload swaps one `Arc`: each new
//! handshake sees the new certificate, connections already up keep theirs, and
//! every worker shares one [`ServerConfig`]. [`Tls::watch`] reloads on SIGHUP
//! and when the files change (debounced); a file that does not load (missing,
//! not PEM, a key that does not match the certificate) is logged and the
//! current certificate stays.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;

/// Why a certificate, key or CA bundle did not load. Names the file, never
/// its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError(pub String);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The proxy's server certificate, swappable.
#[derive(Debug)]
struct Current(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Current {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(PoisonError::into_inner).clone())
    }
}

/// What a reload found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reloaded {
    /// A new certificate is in use; its SHA-256 fingerprint.
    Changed(String),
    /// The files hold what is already in use.
    Unchanged,
}

/// The server side of built-in HTTPS: the files, the current certificate,
/// and the one rustls configuration every worker's acceptor uses.
pub struct Tls {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Arc<Current>,
    config: Arc<ServerConfig>,
    /// SHA-256 of the two files as last loaded: tells a change from a touch.
    loaded: Mutex<[u8; 32]>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("cert", &self.cert_path).field("key", &self.key_path).finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads TLS_CERT (the chain, leaf first) and TLS_KEY (PKCS#8, PKCS#1 or
    /// SEC1), both PEM.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let provider = provider();
        let (key, digest) = load_pair(cert_path, key_path, &provider)?;
        let current = Arc::new(Current(RwLock::new(Arc::new(key))));
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(format!("TLS setup: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(current.clone());
        // HTTP/1.1 only: a client that offers only h2 is refused in the
        // handshake; one that offers nothing gets HTTP/1.1.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tls = Self {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider,
            current,
            config: Arc::new(config),
            loaded: Mutex::new(digest),
        };
        tracing::info!(cert = %cert_path.display(), sha256 = %tls.fingerprint(), "TLS certificate loaded");
        Ok(tls)
    }

    /// An acceptor on the shared configuration (an `Arc` clone).
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.clone())
    }

    /// The SHA-256 fingerprint (hex) of the certificate new handshakes get.
    pub fn fingerprint(&self) -> String {
        let current = self.current.0.read().unwrap_or_else(PoisonError::into_inner).clone();
        current.cert.first().map(|c| hex::encode(Sha256::digest(c.as_ref()))).unwrap_or_default()
    }

    /// Reads both files again. On success the new certificate serves every
    /// handshake from now on; on an error nothing changes.
    pub fn reload(&self) -> Result<Reloaded, TlsError> {
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        let (key, digest) = load_pair(&self.cert_path, &self.key_path, &self.provider)?;
        if digest == *loaded {
            return Ok(Reloaded::Unchanged);
        }
        *self.current.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
        *loaded = digest;
        Ok(Reloaded::Changed(self.fingerprint()))
    }

    /// [`Tls::reload`], logged: what SIGHUP and a file change run.
    pub fn reload_and_log(&self, trigger: &str) -> Result<Reloaded, TlsError> {
        let r = self.reload();
        match &r {
            Ok(Reloaded::Changed(fp)) => tracing::info!(trigger, sha256 = %fp, "TLS certificate reloaded"),
            // A signal is an operator asking: answer at info. A file event
            // may be any file in the directory.
            Ok(Reloaded::Unchanged) if trigger == "SIGHUP" => {
                tracing::info!(trigger, "TLS certificate files unchanged")
            }
            Ok(Reloaded::Unchanged) => tracing::debug!(trigger, "TLS certificate files unchanged"),
            Err(e) => {
                tracing::error!(trigger, error = %e, "TLS certificate reload failed; the current certificate stays")
            }
        }
        r
    }

    /// Reloads on SIGHUP and when a file in TLS_CERT's or TLS_KEY's directory
    /// changes ([`crate::reload::watch`]), until the returned guard is dropped.
    pub fn watch(self: &Arc<Self>) -> io::Result<Reloader> {
        let tls = self.clone();
        let (reloader, dirs) =
            crate::reload::watch("s3rp-tls-reload", &[&self.cert_path, &self.key_path], move |trigger| {
                let _ = tls.reload_and_log(trigger);
            })?;
        tracing::info!(dirs = ?dirs, "TLS certificates reload on SIGHUP and on file changes");
        Ok(reloader)
    }
}

pub use crate::reload::Reloader;

fn read(var: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError(format!("cannot read {var} {}: {e}", path.display())))
}

/// The certificate chain and key, checked to belong together, and the digest
/// of both files.
fn load_pair(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<(CertifiedKey, [u8; 32]), TlsError> {
    let cert_pem = read("TLS_CERT", cert_path)?;
    let key_pem = read("TLS_KEY", key_path)?;
    let chain = certificates("TLS_CERT", cert_path, &cert_pem)?;
    // The PEM error is not shown: it could quote a line of the key file.
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| TlsError(format!("TLS_KEY {} holds no PEM private key", key_path.display())))?;
    let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        TlsError(format!("TLS_KEY {} does not fit TLS_CERT {}: {e}", key_path.display(), cert_path.display()))
    })?;
    let mut h = Sha256::new();
    h.update(&cert_pem);
    h.update([0]);
    h.update(&key_pem);
    Ok((certified, h.finalize().into()))
}

/// Every certificate in a PEM file; at least one.
fn certificates(var: &str, path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError(format!("{var} {} is not valid PEM: {}", path.display(), pem_problem(&e))))?;
    if certs.is_empty() {
        return Err(TlsError(format!("{var} {} holds no PEM certificate", path.display())));
    }
    Ok(certs)
}

/// What is wrong with a PEM file, in words (pki-types prints bytes as numbers).
fn pem_problem(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::MissingSectionEnd { .. } => "a section has no END line (a file cut short?)".into(),
        Error::IllegalSectionStart { .. } => "a BEGIN line is malformed".into(),
        Error::Base64Decode(_) => "a section is not valid base64".into(),
        other => other.to_string(),
    }
}

/// ORIGIN_CA_BUNDLE: the roots that origin certificates are verified against
/// instead of the system's.
pub fn load_ca_bundle(path: &Path) -> Result<RootCertStore, TlsError> {
    let pem = read("ORIGIN_CA_BUNDLE", path)?;
    let mut roots = RootCertStore::empty();
    for cert in certificates("ORIGIN_CA_BUNDLE", path, &pem)? {
        roots.add(cert).map_err(|e| {
            TlsError(format!("ORIGIN_CA_BUNDLE {} holds a certificate that is not a usable CA: {e}", path.display()))
        })?;
    }
    Ok(roots)
}

/// A client config for the `healthcheck` subcommand over the proxy's own TLS
/// listener: the server must present exactly the end-entity certificate in
/// `cert_path` (pinned, as the proxy serves it), whatever CA issued it and
/// whatever name it carries. Handshake signatures are still verified, so only
/// the holder of the key passes.
pub fn pinned_client_config(cert_path: &Path) -> Result<rustls::ClientConfig, TlsError> {
    let pem = read("TLS_CERT", cert_path)?;
    let leaf = certificates("TLS_CERT", cert_path, &pem)?.swap_remove(0);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(Pinned { leaf, algorithms: provider.signature_verification_algorithms });
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("TLS: {e}")))?
        .dangerous() // a custom verifier; it pins rather than skips
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

#[derive(Debug)]
struct Pinned {
    leaf: CertificateDer<'static>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.leaf.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("the server's certificate is not the one in TLS_CERT".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("s3rp-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (c, k) = (dir.join("none.pem"), dir.join("key.pem"));
        let e = Tls::load(&c, &k).unwrap_err();
        assert!(e.0.starts_with("cannot read TLS_CERT ") && e.0.contains("none.pem"), "{e}");
        std::fs::write(&c, "not pem").unwrap();
        std::fs::write(&k, "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n").unwrap();
        let e = Tls::load(&c, &k).unwrap_err();
        assert!(e.0.contains("TLS_CERT") && e.0.contains("no PEM certificate"), "{e}");
        let e = load_ca_bundle(&c).unwrap_err();
        assert!(e.0.contains("ORIGIN_CA_BUNDLE"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

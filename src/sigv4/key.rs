//! SigV4 signing-key derivation, cached per day and region.
//!
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html#derive-signing-key>

use std::sync::Mutex;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SigningKey([u8; 32]);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl SigningKey {
    pub fn derive(secret: &[u8], date: &str, region: &str, service: &str) -> Self {
        let mut k = Vec::with_capacity(4 + secret.len());
        k.extend_from_slice(b"AWS4");
        k.extend_from_slice(secret);
        let k = hmac_sha256(&k, date.as_bytes());
        let k = hmac_sha256(&k, region.as_bytes());
        let k = hmac_sha256(&k, service.as_bytes());
        Self(hmac_sha256(&k, b"aws4_request"))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn sign(&self, msg: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.0, msg)
    }

    pub fn sign_hex(&self, msg: &[u8]) -> String {
        hex::encode(self.sign(msg))
    }

    /// Constant-time check of a hex signature (any case) against `msg`.
    pub fn verify_hex(&self, msg: &[u8], provided: &str) -> bool {
        let mut want = [0u8; 32];
        if hex::decode_to_slice(provided, &mut want).is_err() {
            return false;
        }
        self.sign(msg).ct_eq(&want).into()
    }
}

/// Derives a key once per (date, region) instead of once per request.
/// Holds the secret; prints nothing of it.
pub struct KeyCache {
    secret: Vec<u8>,
    entries: Mutex<Vec<([u8; 8], String, SigningKey)>>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCache(<redacted>)")
    }
}

const CACHE_SIZE: usize = 16;

impl KeyCache {
    pub fn new(secret: &[u8]) -> Self {
        Self { secret: secret.to_vec(), entries: Mutex::new(Vec::with_capacity(CACHE_SIZE)) }
    }

    /// `date` is `YYYYMMDD`; the service is always `s3`.
    pub fn get(&self, date: &str, region: &str) -> SigningKey {
        let Ok(d) = <[u8; 8]>::try_from(date.as_bytes()) else {
            return SigningKey::derive(&self.secret, date, region, "s3");
        };
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, _, k)) = entries.iter().find(|(ed, er, _)| *ed == d && er == region) {
            return *k;
        }
        let k = SigningKey::derive(&self.secret, date, region, "s3");
        if entries.len() >= CACHE_SIZE {
            entries.remove(0);
        }
        entries.push((d, region.to_owned(), k));
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_the_documented_key() {
        // From the AWS docs' key-derivation example (secret "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        // 20120215, us-east-1, iam).
        let k = SigningKey::derive(b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam");
        assert_eq!(hex::encode(k.as_bytes()), "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
    }

    #[test]
    fn cache_returns_the_derived_key_and_verify_is_strict() {
        let c = KeyCache::new(b"secret");
        let a = c.get("20250101", "us-east-1");
        assert_eq!(a, SigningKey::derive(b"secret", "20250101", "us-east-1", "s3"));
        assert_eq!(c.get("20250101", "us-east-1"), a);
        assert_ne!(c.get("20250101", "eu-west-1"), a);
        let sig = a.sign_hex(b"msg");
        assert!(a.verify_hex(b"msg", &sig));
        assert!(a.verify_hex(b"msg", &sig.to_uppercase()));
        assert!(!a.verify_hex(b"msh", &sig));
        assert!(!a.verify_hex(b"msg", &sig[..63]));
    }
}

//! SigV4 signing-key derivation, cached per day and region.
//!
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html#derive-signing-key>

use std::sync::RwLock;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// Where a chain of aws-chunked signatures starts, on either side: the
/// signing key, the request's date and scope, and the seed signature (the
/// request's own). The verifier makes the client's; the re-signer the
/// origin's. `Debug` shows neither the key nor the signature.
///
/// <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html>
#[derive(Clone)]
pub struct ChunkSeed {
    pub signing_key: SigningKey,
    pub amz_date: super::AmzDate,
    /// `date/region/s3/aws4_request`
    pub scope: String,
    /// Lower-case hex.
    pub seed_signature: String,
}

impl std::fmt::Debug for ChunkSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkSeed")
            .field("amz_date", &self.amz_date)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
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

    /// A key known as bytes (test vectors, benchmarks).
    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self(key)
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

/// A signing key with the HMAC-SHA256 state already keyed (its inner and outer
/// pads absorbed): each signature clones that state rather than hashing the two
/// pad blocks again.
#[derive(Clone)]
pub struct PreparedKey {
    key: SigningKey,
    mac: HmacSha256,
}

impl std::fmt::Debug for PreparedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PreparedKey(<redacted>)")
    }
}

impl From<SigningKey> for PreparedKey {
    fn from(key: SigningKey) -> Self {
        let mac = HmacSha256::new_from_slice(&key.0).expect("HMAC takes any key length");
        Self { key, mac }
    }
}

impl PreparedKey {
    pub fn key(&self) -> SigningKey {
        self.key
    }

    /// HMAC-SHA256 of `msg`; the same as [`SigningKey::sign`].
    pub fn sign(&self, msg: &[u8]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(msg);
        mac.finalize().into_bytes().into()
    }

    /// Constant-time check of a hex signature (any case) against `msg`; the
    /// same as [`SigningKey::verify_hex`].
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
    entries: RwLock<Vec<([u8; 8], String, PreparedKey)>>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyCache(<redacted>)")
    }
}

const CACHE_SIZE: usize = 16;

impl KeyCache {
    pub fn new(secret: &[u8]) -> Self {
        // Empty until used: a keyring of 10,000 keys holds no derived keys it never needs.
        Self { secret: secret.to_vec(), entries: RwLock::new(Vec::new()) }
    }

    /// `date` is `YYYYMMDD`; the service is always `s3`.
    pub fn get(&self, date: &str, region: &str) -> SigningKey {
        self.prepared(date, region).key
    }

    /// [`KeyCache::get`], with the HMAC state keyed.
    pub fn prepared(&self, date: &str, region: &str) -> PreparedKey {
        self.with_prepared(date, region, PreparedKey::clone)
    }

    /// Runs `f` on the cached [`PreparedKey`] (without copying it out).
    pub fn with_prepared<R>(&self, date: &str, region: &str, f: impl FnOnce(&PreparedKey) -> R) -> R {
        let Ok(d) = <[u8; 8]>::try_from(date.as_bytes()) else {
            return f(&SigningKey::derive(&self.secret, date, region, "s3").into());
        };
        let found = |entries: &[([u8; 8], String, PreparedKey)]| {
            entries.iter().position(|(ed, er, _)| *ed == d && er == region)
        };
        {
            let entries = self.entries.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(i) = found(&entries) {
                return f(&entries[i].2);
            }
        }
        let mut entries = self.entries.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let k = match found(&entries) {
            Some(i) => entries[i].2.clone(),
            None => {
                let k = PreparedKey::from(SigningKey::derive(&self.secret, date, region, "s3"));
                if entries.len() >= CACHE_SIZE {
                    entries.remove(0);
                }
                entries.push((d, region.to_owned(), k.clone()));
                k
            }
        };
        drop(entries);
        f(&k)
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
        let p = c.prepared("20250101", "us-east-1");
        assert_eq!(p.key(), a);
        assert_eq!(c.with_prepared("20250101", "us-east-1", |p| p.key()), a);
        assert_eq!(c.with_prepared("20250102", "us-east-1", |p| p.key()), c.get("20250102", "us-east-1"));
        assert_eq!(p.sign(b"msg"), a.sign(b"msg"));
        assert!(p.verify_hex(b"msg", &sig) && p.verify_hex(b"msg", &sig.to_uppercase()));
        assert!(!p.verify_hex(b"msh", &sig) && !p.verify_hex(b"msg", &sig[..63]));
        assert_eq!(KeyCache::new(b"secret").prepared("2025010", "us-east-1").key(), c.get("2025010", "us-east-1"));
    }
}

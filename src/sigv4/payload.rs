//! The payload hash named by `x-amz-content-sha256` (or `X-Amz-Content-Sha256`).
//!
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>

/// Hex sha256 of the empty string.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// [`EMPTY_SHA256`] as bytes.
pub const EMPTY_SHA256_BYTES: [u8; 32] = {
    const fn nibble(c: u8) -> u8 {
        if c >= b'a' { c - b'a' + 10 } else { c - b'0' }
    }
    let hex = EMPTY_SHA256.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 {
        out[i] = nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]);
        i += 1;
    }
    out
};
pub const STREAMING_PAYLOAD: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
pub const STREAMING_PAYLOAD_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
pub const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
pub const STREAMING_ECDSA_PAYLOAD: &str = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD";
pub const STREAMING_ECDSA_PAYLOAD_TRAILER: &str = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadHash {
    Unsigned,
    /// 32 bytes, from 64 hex digits.
    Sha256([u8; 32]),
    /// aws-chunked with a signature per chunk.
    StreamingSigned,
    /// aws-chunked with signed chunks and a signed trailer.
    StreamingSignedTrailer,
    /// aws-chunked, unsigned chunks, unsigned trailer.
    StreamingUnsignedTrailer,
    /// SigV4a chunk signatures (ECDSA), with or without trailer.
    StreamingEcdsa,
}

impl PayloadHash {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            // The most common one (every GET), without decoding.
            EMPTY_SHA256 => Self::Sha256(EMPTY_SHA256_BYTES),
            UNSIGNED_PAYLOAD => Self::Unsigned,
            STREAMING_PAYLOAD => Self::StreamingSigned,
            STREAMING_PAYLOAD_TRAILER => Self::StreamingSignedTrailer,
            STREAMING_UNSIGNED_TRAILER => Self::StreamingUnsignedTrailer,
            STREAMING_ECDSA_PAYLOAD | STREAMING_ECDSA_PAYLOAD_TRAILER => Self::StreamingEcdsa,
            _ => {
                // 64 hex digits, either case.
                Self::Sha256(super::encode::unhex32(s.as_bytes())?)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_sha256_bytes() {
        use sha2::Digest;
        assert_eq!(EMPTY_SHA256_BYTES, <[u8; 32]>::from(sha2::Sha256::digest(b"")));
        assert_eq!(PayloadHash::parse(EMPTY_SHA256), Some(PayloadHash::Sha256(EMPTY_SHA256_BYTES)));
        assert_eq!(PayloadHash::parse(&EMPTY_SHA256.to_uppercase()), Some(PayloadHash::Sha256(EMPTY_SHA256_BYTES)));
        assert_eq!(PayloadHash::parse(&EMPTY_SHA256[1..]), None);
    }
}

//! The payload hash named by `x-amz-content-sha256` (or `X-Amz-Content-Sha256`):
//! the one home of the payload modes. Adding a mode is an edit here (its text
//! in [`PayloadHash::parse`] and [`PayloadHash::as_str`]) and, for an
//! aws-chunked one, in `chunked::Mode::of`.
//!
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html>

use super::encode::{hex32, unhex32};

/// Hex sha256 of the empty string.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
pub const STREAMING_PAYLOAD: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
pub const STREAMING_PAYLOAD_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
pub const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
pub const STREAMING_ECDSA_PAYLOAD: &str = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD";
pub const STREAMING_ECDSA_PAYLOAD_TRAILER: &str = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER";

/// A sha256 body hash: its bytes, and its lower-case hex (what is signed and sent on).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sha256Digest {
    bytes: [u8; 32],
    hex: [u8; 64],
}

impl Sha256Digest {
    /// The hash of the empty body.
    pub const EMPTY: Self = {
        const fn nibble(c: u8) -> u8 {
            if c >= b'a' { c - b'a' + 10 } else { c - b'0' }
        }
        let hex = EMPTY_SHA256.as_bytes();
        let mut bytes = [0u8; 32];
        let mut h = [0u8; 64];
        let mut i = 0;
        while i < 32 {
            bytes[i] = nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]);
            h[2 * i] = hex[2 * i];
            h[2 * i + 1] = hex[2 * i + 1];
            i += 1;
        }
        Self { bytes, hex: h }
    };

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self { bytes, hex: hex32(&bytes) }
    }

    pub fn bytes(&self) -> [u8; 32] {
        self.bytes
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.hex).expect("hex is ASCII")
    }
}

impl std::fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sha256Digest({})", self.as_str())
    }
}

/// A payload mode this proxy verifies and forwards. SigV4a streaming is not
/// one: [`PayloadHash::parse`] refuses it, so no later stage has to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadHash {
    Unsigned,
    Sha256(Sha256Digest),
    /// aws-chunked with a signature per chunk.
    StreamingSigned,
    /// aws-chunked with signed chunks and a signed trailer.
    StreamingSignedTrailer,
    /// aws-chunked, unsigned chunks, unsigned trailer.
    StreamingUnsignedTrailer,
}

/// Why an `x-amz-content-sha256` value is not a payload mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadError {
    /// SigV4a chunk signatures (ECDSA), with or without trailer: not supported.
    SigV4a,
    /// Neither a known mode nor 64 hex digits.
    Invalid,
}

impl PayloadHash {
    pub fn parse(s: &str) -> Result<Self, PayloadError> {
        Ok(match s {
            // The most common one (every GET), without decoding.
            EMPTY_SHA256 => Self::Sha256(Sha256Digest::EMPTY),
            UNSIGNED_PAYLOAD => Self::Unsigned,
            STREAMING_PAYLOAD => Self::StreamingSigned,
            STREAMING_PAYLOAD_TRAILER => Self::StreamingSignedTrailer,
            STREAMING_UNSIGNED_TRAILER => Self::StreamingUnsignedTrailer,
            STREAMING_ECDSA_PAYLOAD | STREAMING_ECDSA_PAYLOAD_TRAILER => return Err(PayloadError::SigV4a),
            // 64 hex digits, either case.
            _ => Self::Sha256(Sha256Digest::from_bytes(unhex32(s.as_bytes()).ok_or(PayloadError::Invalid)?)),
        })
    }

    /// The `x-amz-content-sha256` text for this mode (a hash as lower-case hex).
    pub fn as_str(&self) -> &str {
        match self {
            Self::Unsigned => UNSIGNED_PAYLOAD,
            Self::Sha256(d) => d.as_str(),
            Self::StreamingSigned => STREAMING_PAYLOAD,
            Self::StreamingSignedTrailer => STREAMING_PAYLOAD_TRAILER,
            Self::StreamingUnsignedTrailer => STREAMING_UNSIGNED_TRAILER,
        }
    }

    /// A fixed text (all but a hash), for a header value made without a copy.
    pub fn as_static_str(&self) -> Option<&'static str> {
        match self {
            Self::Unsigned => Some(UNSIGNED_PAYLOAD),
            Self::Sha256(d) if *d == Sha256Digest::EMPTY => Some(EMPTY_SHA256),
            Self::Sha256(_) => None,
            Self::StreamingSigned => Some(STREAMING_PAYLOAD),
            Self::StreamingSignedTrailer => Some(STREAMING_PAYLOAD_TRAILER),
            Self::StreamingUnsignedTrailer => Some(STREAMING_UNSIGNED_TRAILER),
        }
    }

    /// aws-chunked with chunk signatures (so with a chain to verify and re-sign).
    pub fn has_chunk_signatures(&self) -> bool {
        matches!(self, Self::StreamingSigned | Self::StreamingSignedTrailer)
    }

    /// A whole body in one piece (not aws-chunked).
    pub fn is_plain(&self) -> bool {
        matches!(self, Self::Unsigned | Self::Sha256(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_sha256_and_round_trips() {
        use sha2::Digest;
        let empty: [u8; 32] = sha2::Sha256::digest(b"").into();
        assert_eq!(Sha256Digest::EMPTY, Sha256Digest::from_bytes(empty));
        assert_eq!(PayloadHash::parse(EMPTY_SHA256), Ok(PayloadHash::Sha256(Sha256Digest::EMPTY)));
        let upper = PayloadHash::parse(&EMPTY_SHA256.to_uppercase()).unwrap();
        assert_eq!(upper, PayloadHash::Sha256(Sha256Digest::EMPTY));
        assert_eq!(upper.as_str(), EMPTY_SHA256, "sent on in lower case");
        assert_eq!(PayloadHash::parse(&EMPTY_SHA256[1..]), Err(PayloadError::Invalid));
        assert_eq!(PayloadHash::parse(STREAMING_ECDSA_PAYLOAD_TRAILER), Err(PayloadError::SigV4a));
        for text in
            [UNSIGNED_PAYLOAD, STREAMING_PAYLOAD, STREAMING_PAYLOAD_TRAILER, STREAMING_UNSIGNED_TRAILER, EMPTY_SHA256]
        {
            let p = PayloadHash::parse(text).unwrap();
            assert_eq!(p.as_str(), text);
            assert_eq!(p.as_static_str(), Some(text));
        }
    }
}

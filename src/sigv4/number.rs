//! Numbers read from a client, in one canonical form only.
//!
//! Rust's `str::parse` takes `+60` and `060`; S3 does not. Two spellings of
//! one number are an ambiguity (what the client signed and what a later hop
//! reads may differ), so everything a client sends as a number (Content-Length,
//! `x-amz-decoded-content-length`, `X-Amz-Expires`, SigV2 `Expires`, aws-chunked
//! sizes) goes through here: ASCII digits only, no sign, no leading zero (but
//! `0` itself), no overflow.

/// A canonical decimal `u64`.
pub fn parse_decimal(s: &[u8]) -> Option<u64> {
    match s {
        [] => None,
        [b'0'] => Some(0),
        [b'0', ..] => None,
        _ => s.iter().try_fold(0u64, |acc, &b| {
            let d = b.checked_sub(b'0').filter(|d| *d < 10)?;
            acc.checked_mul(10)?.checked_add(u64::from(d))
        }),
    }
}

/// A canonical hexadecimal `u64` (either case, as the aws-chunked size field).
pub fn parse_hex(s: &[u8]) -> Option<u64> {
    match s {
        [] => None,
        [b'0'] => Some(0),
        [b'0', ..] => None,
        _ => s.iter().try_fold(0u64, |acc, &b| {
            let d = (b as char).to_digit(16)?;
            acc.checked_mul(16)?.checked_add(u64::from(d))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_spelling_per_number() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"60"), Some(60));
        assert_eq!(parse_decimal(b"18446744073709551615"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b"+60",
            b"-1",
            b"060",
            b"00",
            b" 60",
            b"60 ",
            b"6_0",
            b"0x10",
            b"18446744073709551616",
            b"\xd9\xa1",
        ] {
            assert_eq!(parse_decimal(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_hex(b"10000"), Some(0x10000));
        assert_eq!(parse_hex(b"aF"), Some(0xaf));
        assert_eq!(parse_hex(b"0"), Some(0));
        for bad in [&b""[..], b"+1", b"01", b"0x1", b"g", b"10000000000000000"] {
            assert_eq!(parse_hex(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}

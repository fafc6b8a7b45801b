//! S3's URI encoding: decode once, encode once, never normalize.
//!
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html#create-canonical-request>

/// Is `b` one of RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`)?
#[inline]
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Appends `input` to `out`, percent-encoding every byte except the unreserved
/// ones (and `/` when `keep_slash`), with upper-case hex as SigV4 requires.
pub fn uri_encode_into(out: &mut String, input: &[u8], keep_slash: bool) {
    out.reserve(input.len());
    let keep = |b: u8| is_unreserved(b) || (keep_slash && b == b'/');
    let mut rest = input;
    while !rest.is_empty() {
        // Copy the longest run of bytes that stay as they are in one go.
        let run = rest.iter().position(|&b| !keep(b)).unwrap_or(rest.len());
        if run > 0 {
            // Only ASCII bytes are kept, so the run is valid UTF-8.
            out.push_str(std::str::from_utf8(&rest[..run]).expect("ASCII"));
            rest = &rest[run..];
            continue;
        }
        let b = rest[0];
        rest = &rest[1..];
        out.push('%');
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 0xf) as usize] as char);
    }
}

/// Percent-decodes `input` once. A `%` not followed by two hex digits is kept
/// literally (S3 does the same). With `plus_as_space`, `+` becomes a space, as
/// in query strings.
pub fn percent_decode(input: &str, plus_as_space: bool) -> std::borrow::Cow<'_, [u8]> {
    let bytes = input.as_bytes();
    if !bytes.iter().any(|&b| b == b'%' || (plus_as_space && b == b'+')) {
        return std::borrow::Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(if plus_as_space && b == b'+' { b' ' } else { b });
        i += 1;
    }
    std::borrow::Cow::Owned(out)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The canonical URI of an S3 request path: decoded once and encoded once,
/// keeping `/`. `.`, `..` and `//` are left exactly as they are.
pub fn canonical_uri(raw_path: &str) -> String {
    let mut out = String::with_capacity(raw_path.len() + 8);
    if raw_path.is_empty() {
        out.push('/');
        return out;
    }
    uri_encode_into(&mut out, &percent_decode(raw_path, false), true);
    out
}

/// Encodes a query key or value for the canonical query string (`/` encoded).
pub fn encode_query_component(decoded: &[u8]) -> String {
    let mut out = String::with_capacity(decoded.len());
    uri_encode_into(&mut out, decoded, false);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encodes_reserved_and_keeps_unreserved() {
        assert_eq!(canonical_uri("/b/a b+c=$~é"), "/b/a%20b%2Bc%3D%24~%C3%A9");
        assert_eq!(canonical_uri("/b/a%24b"), "/b/a%24b");
        assert_eq!(canonical_uri("/b/a$b"), "/b/a%24b");
        assert_eq!(canonical_uri("/b/a/../b//c/./"), "/b/a/../b//c/./");
        assert_eq!(canonical_uri("/b/%7e%2f"), "/b/~/");
        assert_eq!(canonical_uri(""), "/");
    }

    #[test]
    fn bad_percent_sequences_stay_literal() {
        assert_eq!(percent_decode("a%zz%4", false).as_ref(), b"a%zz%4");
        assert_eq!(percent_decode("%", false).as_ref(), b"%");
        assert_eq!(percent_decode("a+b%2B", true).as_ref(), b"a b+");
        assert_eq!(percent_decode("a+b", false).as_ref(), b"a+b");
    }

    proptest! {
        // Decode-once/encode-once is idempotent: canonicalizing a canonical path
        // gives it back, so the origin sees exactly the path we verified.
        #[test]
        fn canonical_uri_is_a_fixed_point(s in "/[ -~é日本]{0,40}") {
            let once = canonical_uri(&s);
            prop_assert_eq!(canonical_uri(&once), once.clone());
        }

        #[test]
        fn encode_then_decode_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let enc = encode_query_component(&bytes);
            prop_assert!(enc.bytes().all(|b| is_unreserved(b) || b == b'%' || b.is_ascii_hexdigit()));
            let dec = percent_decode(&enc, true);
            prop_assert_eq!(dec.as_ref(), &bytes[..]);
        }
    }
}

//! S3's URI encoding: decode once, encode once, never normalize.
//!
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html#create-canonical-request>

/// Is `b` one of RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`)?
#[inline]
fn is_unreserved(b: u8) -> bool {
    UNRESERVED[b as usize]
}

const UNRESERVED: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~');
        b += 1;
    }
    t
};

const HEX: &[u8; 16] = b"0123456789ABCDEF";

#[inline]
fn keeps(b: u8, keep_slash: bool) -> bool {
    is_unreserved(b) || (keep_slash && b == b'/')
}

/// Is `raw` (a path, or a query key or value) already in canonical form, that
/// is, would decoding it once and encoding it once give it back? True when
/// every byte is one that stays as it is, or a `%` with two upper-case hex
/// digits for a byte that must be encoded.
fn is_canonical(raw: &[u8], keep_slash: bool) -> bool {
    if all_kept(raw, keep_slash) {
        return true;
    }
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if keeps(b, keep_slash) {
            i += 1;
            continue;
        }
        if b != b'%' || i + 2 >= raw.len() {
            return false;
        }
        match (upper_hex_val(raw[i + 1]), upper_hex_val(raw[i + 2])) {
            (Some(h), Some(l)) if !keeps(h << 4 | l, keep_slash) => i += 3,
            _ => return false,
        }
    }
    true
}

/// Does every byte of `raw` stay as it is when encoded? Branch-free.
fn all_kept(raw: &[u8], keep_slash: bool) -> bool {
    let table = if keep_slash { &ENCODED_IN_PATH } else { &ENCODED_IN_QUERY };
    raw.iter().fold(0u8, |acc, &b| acc | table[b as usize]) == 0
}

/// 1 for the bytes that are percent-encoded in a path (all but unreserved and `/`).
const ENCODED_IN_PATH: [u8; 256] = encoded_table(true);
/// 1 for the bytes that are percent-encoded in a query key or value.
const ENCODED_IN_QUERY: [u8; 256] = encoded_table(false);

const fn encoded_table(keep_slash: bool) -> [u8; 256] {
    let mut t = [1u8; 256];
    let mut b = 0;
    while b < 256 {
        if UNRESERVED[b] || (keep_slash && b == b'/' as usize) {
            t[b] = 0;
        }
        b += 1;
    }
    t
}

fn upper_hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Appends `input` to `out`, percent-encoding every byte except the unreserved
/// ones (and `/` when `keep_slash`), with upper-case hex as SigV4 requires.
pub fn uri_encode_into(out: &mut String, input: &[u8], keep_slash: bool) {
    out.reserve(input.len());
    let mut rest = input;
    while !rest.is_empty() {
        // Copy the longest run of bytes that stay as they are in one go.
        let run = rest.iter().position(|&b| !keeps(b, keep_slash)).unwrap_or(rest.len());
        if run > 0 {
            // Only ASCII bytes are kept, so the run is valid UTF-8.
            out.push_str(std::str::from_utf8(&rest[..run]).expect("ASCII"));
            rest = &rest[run..];
            continue;
        }
        let b = rest[0];
        rest = &rest[1..];
        out.reserve(3);
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
    let special = |rest: &[u8]| if plus_as_space { find_either(rest, b'%', b'+') } else { find_byte(rest, b'%') };
    let Some(first) = special(bytes) else {
        return std::borrow::Cow::Borrowed(bytes);
    };
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..first]);
    // Bytes up to `i` are done; those from `i` on, up to the next '%' (or
    // '+'), are copied as they are.
    let mut i = first;
    loop {
        let rest = &bytes[i..];
        let Some(at) = special(rest) else {
            out.extend_from_slice(rest);
            break;
        };
        out.extend_from_slice(&rest[..at]);
        i += at;
        if bytes[i] == b'+' {
            out.push(b' ');
            i += 1;
        } else if i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(b'%');
            i += 1;
        }
    }
    std::borrow::Cow::Owned(out)
}

/// A query key or value as on the wire: decoded once (`+` as a space), and in
/// canonical form. Both borrow from `raw` when they can.
pub(crate) fn query_component(raw: &str) -> (std::borrow::Cow<'_, [u8]>, std::borrow::Cow<'_, str>) {
    if all_kept(raw.as_bytes(), false) {
        return (std::borrow::Cow::Borrowed(raw.as_bytes()), std::borrow::Cow::Borrowed(raw));
    }
    let decoded = percent_decode(raw, true);
    let canonical = canonical_query_component(raw, &decoded);
    (decoded, canonical)
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
    let mut out = String::new();
    canonical_uri_into(&mut out, raw_path);
    out
}

/// [`canonical_uri`], appended to `out`.
pub fn canonical_uri_into(out: &mut String, raw_path: &str) {
    if raw_path.is_empty() {
        out.push('/');
    } else if is_canonical(raw_path.as_bytes(), true) {
        out.push_str(raw_path);
    } else {
        uri_encode_into(out, &percent_decode(raw_path, false), true);
    }
}

/// Encodes a query key or value for the canonical query string (`/` encoded).
pub fn encode_query_component(decoded: &[u8]) -> String {
    let mut out = String::with_capacity(decoded.len());
    uri_encode_into(&mut out, decoded, false);
    out
}

/// The canonical form of a query key or value as it is on the wire (decoded
/// once, `+` as a space, then encoded): borrowed when `raw` is already canonical.
pub(crate) fn canonical_query_component<'a>(raw: &'a str, decoded: &[u8]) -> std::borrow::Cow<'a, str> {
    if is_canonical(raw.as_bytes(), false) {
        std::borrow::Cow::Borrowed(raw)
    } else {
        std::borrow::Cow::Owned(encode_query_component(decoded))
    }
}

/// `s.split(sep)` for an ASCII `sep`, without the general pattern machinery
/// (the strings split here are short).
pub(crate) fn split_byte(s: &str, sep: u8) -> SplitByte<'_> {
    debug_assert!(sep.is_ascii());
    SplitByte { rest: Some(s), sep }
}

#[derive(Debug, Clone)]
pub(crate) struct SplitByte<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> Iterator for SplitByte<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        let s = self.rest?;
        match find_byte(s.as_bytes(), self.sep) {
            Some(i) => {
                // `sep` is ASCII, so both sides are on char boundaries.
                self.rest = s.get(i + 1..);
                s.get(..i)
            }
            None => {
                self.rest = None;
                Some(s)
            }
        }
    }
}

/// The index of the first `needle` in `hay`, eight bytes at a time.
#[inline]
pub(crate) fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * u64::from(needle);
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let x = u64::from_le_bytes(chunk.try_into().expect("8 bytes")) ^ pattern;
        // The lowest set bit marks the first zero byte of `x` (a borrow only
        // makes false hits above a true one).
        let zero = x.wrapping_sub(LO) & !x & HI;
        if zero != 0 {
            return Some(base + (zero.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks.remainder().iter().position(|&b| b == needle).map(|i| base + i)
}

/// The index of the first `a` or `b` in `hay`, eight bytes at a time.
#[inline]
fn find_either(hay: &[u8], a: u8, b: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let zero = |x: u64| x.wrapping_sub(LO) & !x & HI;
    let (pa, pb) = (LO * u64::from(a), LO * u64::from(b));
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let x = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        // Each mask's lowest set bit is exact, so is that of their union.
        let hit = zero(x ^ pa) | zero(x ^ pb);
        if hit != 0 {
            return Some(base + (hit.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks.remainder().iter().position(|&c| c == a || c == b).map(|i| base + i)
}

const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

/// Lower-case hex of a SHA-256 or HMAC-SHA256 output.
#[inline]
pub(crate) fn hex32(bytes: &[u8; 32]) -> [u8; 64] {
    let mut out = [0u8; 64];
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX_LOWER[(b >> 4) as usize];
        pair[1] = HEX_LOWER[(b & 0xf) as usize];
    }
    out
}

/// 64 hex digits (either case) to 32 bytes, as `hex::decode_to_slice` into a
/// 32-byte buffer; `None` for any other input.
#[inline]
pub(crate) fn unhex32(s: &[u8]) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let (h, l) = (HEX_VALUE[pair[0] as usize], HEX_VALUE[pair[1] as usize]);
        bad |= (h | l) & 0x10;
        *o = h << 4 | (l & 0xf);
    }
    (bad == 0).then_some(out)
}

/// The value of a hex digit, or 0x10 for any other byte.
const HEX_VALUE: [u8; 256] = {
    let mut t = [0x10u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => 0x10,
        };
        b += 1;
    }
    t
};

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

        // The fast path (already canonical: copied as is) agrees with decode + encode.
        #[test]
        fn canonical_check_agrees_with_decode_encode(s in "[a-zA-Z0-9/%+ ~._fF2-]{0,24}", slash in any::<bool>()) {
            let mut slow = String::new();
            uri_encode_into(&mut slow, &percent_decode(&s, !slash), slash);
            prop_assert_eq!(is_canonical(s.as_bytes(), slash), slow == s);
            if !slash {
                prop_assert_eq!(canonical_query_component(&s, &percent_decode(&s, true)), slow);
            }
        }

        #[test]
        fn percent_decode_matches_a_simple_decoder(s in "[a-c%+0-9A-Fé]{0,24}", plus in any::<bool>()) {
            let b = s.as_bytes();
            let mut want = Vec::new();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' && i + 2 < b.len() && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit() {
                    want.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                    i += 3;
                } else {
                    want.push(if plus && b[i] == b'+' { b' ' } else { b[i] });
                    i += 1;
                }
            }
            let got = percent_decode(&s, plus);
            prop_assert_eq!(got.as_ref(), &want[..]);
            if !plus {
                let (dec, can) = query_component(&s);
                let plus_decoded = percent_decode(&s, true);
                prop_assert_eq!(dec.as_ref(), plus_decoded.as_ref());
                prop_assert_eq!(can, encode_query_component(&percent_decode(&s, true)));
            }
        }

        #[test]
        fn split_byte_is_split(s in "[a-c;é]{0,40}") {
            prop_assert_eq!(split_byte(&s, b';').collect::<Vec<_>>(), s.split(';').collect::<Vec<_>>());
        }

        #[test]
        fn find_either_is_position(hay in proptest::collection::vec(prop_oneof![Just(b'%'), Just(b'+'), any::<u8>()], 0..40)) {
            prop_assert_eq!(find_either(&hay, b'%', b'+'), hay.iter().position(|&b| b == b'%' || b == b'+'));
        }

        #[test]
        fn find_byte_is_position(hay in proptest::collection::vec(any::<u8>(), 0..40), needle in any::<u8>()) {
            prop_assert_eq!(find_byte(&hay, needle), hay.iter().position(|&b| b == needle));
        }

        #[test]
        fn hex_helpers_match_the_hex_crate(bytes in any::<[u8; 32]>(), noise in "[0-9a-fA-FxG ]{64}", upper in any::<bool>()) {
            let enc = hex32(&bytes);
            let want = hex::encode(bytes);
            prop_assert_eq!(&enc[..], want.as_bytes());
            let text = if upper { hex::encode_upper(bytes) } else { hex::encode(bytes) };
            prop_assert_eq!(unhex32(text.as_bytes()), Some(bytes));
            let mut want = [0u8; 32];
            let ok = hex::decode_to_slice(&noise, &mut want).is_ok();
            prop_assert_eq!(unhex32(noise.as_bytes()), ok.then_some(want));
            prop_assert_eq!(unhex32(&text.as_bytes()[..62]), None);
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

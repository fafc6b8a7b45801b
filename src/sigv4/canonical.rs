//! The canonical request and the string to sign, each a type you can print.
//!
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html>

use std::borrow::Cow;
use std::fmt;

use http::HeaderMap;
use sha2::{Digest, Sha256};

use super::auth::SignedHeaders;
use super::date::AmzDate;
use super::encode::{find_byte, hex32, query_component, split_byte};
use super::key::PreparedKey;
use super::scratch::{SmallVec, Text, into_string};

/// One query parameter: its wire form and its canonical (decoded, re-encoded) form.
#[derive(Debug, Clone)]
pub struct QueryParam<'a> {
    /// `k=v` (or `k`) exactly as on the wire.
    pub raw: &'a str,
    pub key: Cow<'a, [u8]>,
    pub value: Cow<'a, [u8]>,
    enc_key: Cow<'a, str>,
    enc_value: Cow<'a, str>,
}

impl QueryParam<'_> {
    pub fn value_str(&self) -> Option<&str> {
        match &self.value {
            // Not decoded, so the wire value: the end of `raw`, after the '='.
            Cow::Borrowed(v) => match self.raw.len().checked_sub(v.len()).and_then(|i| self.raw.get(i..)) {
                Some(s) if s.as_bytes() == *v => Some(s),
                _ => std::str::from_utf8(v).ok(),
            },
            Cow::Owned(v) => std::str::from_utf8(v).ok(),
        }
    }
}

/// A query string, parsed once, kept in canonical order: by encoded key, then
/// by encoded value.
#[derive(Debug, Clone, Default)]
pub struct Query<'a> {
    params: Vec<QueryParam<'a>>,
}

impl<'a> Query<'a> {
    pub fn parse(raw: &'a str) -> Self {
        if raw.is_empty() {
            return Self::default();
        }
        let mut params = Vec::with_capacity(8);
        params.extend(split_byte(raw, b'&').filter(|p| !p.is_empty()).map(|p| {
            let (k, v) = match find_byte(p.as_bytes(), b'=') {
                // '=' is ASCII: both sides are on char boundaries.
                Some(i) => (&p[..i], &p[i + 1..]),
                None => (p, ""),
            };
            let (key, enc_key) = query_component(k);
            let (value, enc_value) = query_component(v);
            QueryParam { raw: p, key, value, enc_key, enc_value }
        }));
        params.sort_by(|a, b| (&a.enc_key, &a.enc_value).cmp(&(&b.enc_key, &b.enc_value)));
        Self { params }
    }

    pub fn iter(&self) -> impl Iterator<Item = &QueryParam<'a>> {
        self.params.iter()
    }

    /// The first value of `name` (decoded), if it is UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|p| &*p.key == name.as_bytes()).and_then(QueryParam::value_str)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.params.iter().any(|p| &*p.key == name.as_bytes())
    }

    /// The canonical query string, leaving out the parameters `skip` names.
    pub fn canonical(&self, skip: impl Fn(&[u8]) -> bool) -> String {
        let kept = self.params.iter().filter(|p| !skip(&p.key));
        let mut out = String::with_capacity(kept.map(|p| p.enc_key.len() + p.enc_value.len() + 2).sum());
        self.push_canonical(&mut out, skip);
        out
    }

    /// [`Query::canonical`], appended to `out`.
    pub(crate) fn push_canonical(&self, out: &mut impl Text, skip: impl Fn(&[u8]) -> bool) {
        let mut first = true;
        for p in self.params.iter().filter(|p| !skip(&p.key)) {
            if !first {
                out.push_str("&");
            }
            first = false;
            out.push_str(&p.enc_key);
            out.push_str("=");
            out.push_str(&p.enc_value);
        }
    }

    /// The wire pairs, byte for byte, in canonical order, leaving out those
    /// `skip` names. Canonical order means an origin that sorts by key only
    /// (stable, as s3s does) computes the same canonical query as we do.
    pub fn forward(&self, skip: impl Fn(&[u8]) -> bool) -> String {
        let mut out = String::new();
        self.push_forward(&mut out, skip);
        out
    }

    /// [`Query::forward`], appended to `out`.
    pub(crate) fn push_forward(&self, out: &mut String, skip: impl Fn(&[u8]) -> bool) {
        let kept = || self.params.iter().filter(|p| !skip(&p.key));
        out.reserve(kept().map(|p| p.raw.len() + 1).sum());
        let mut first = true;
        for p in kept() {
            if !first {
                out.push('&');
            }
            first = false;
            out.push_str(p.raw);
        }
    }
}

/// Appends `value` trimmed, with inner runs of spaces and tabs collapsed to one space.
fn push_trimmed(out: &mut impl Text, value: &[u8]) {
    // Fast path: most values are ASCII with nothing to trim or collapse (no
    // tab, CR or LF, no space at either end, no two spaces in a row), and are
    // their own output.
    if is_plain(value) {
        out.push_ascii(value);
        return;
    }
    // Byte by byte, never through a lossy UTF-8 decode: two different byte
    // strings must never share one canonical form (S3 signs the bytes sent).
    let mut first = true;
    for word in value.split(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')).filter(|w| !w.is_empty()) {
        if !first {
            out.push_str(" ");
        }
        out.push_bytes(word);
        first = false;
    }
}

/// Is `value` its own trimmed form ([`push_trimmed`]), and ASCII? Checks that
/// every byte is printable ASCII or a space, with no space at either end and
/// no two in a row; eight bytes at a time. (Declining a value only costs the
/// slow path, which gives the same text.)
fn is_plain(value: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let (Some(&first), Some(&last)) = (value.first(), value.last()) else {
        return true;
    };
    if first == b' ' || last == b' ' {
        return false;
    }
    // Per 8 bytes: any byte outside 0x20..=0x7e, and the spaces (0x80 in each
    // space's byte, exactly). `prev` is the previous word's space mask.
    let check = |x: u64, prev: u64| -> (u64, u64) {
        let at_least_7f = (x.wrapping_add(LO) | x) & HI;
        let below_20 = x.wrapping_sub(LO * 0x20) & !x & HI;
        let s = x ^ (LO * 0x20);
        let spaces = !(((s & LOW7).wrapping_add(LOW7)) | s | LOW7);
        let double = spaces & ((spaces << 8) | (prev >> 56));
        (at_least_7f | below_20 | double, spaces)
    };
    let (mut bad, mut prev) = (0, 0);
    let mut chunks = value.chunks_exact(8);
    for chunk in &mut chunks {
        let (b, spaces) = check(u64::from_le_bytes(chunk.try_into().expect("8 bytes")), prev);
        bad |= b;
        prev = spaces;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        // Padded with a byte that passes.
        let mut word = [b'a'; 8];
        word[..rest.len()].copy_from_slice(rest);
        bad |= check(u64::from_le_bytes(word), prev).0;
    }
    bad == 0
}

/// A request's headers as `(name, value)` pairs, in the order `HeaderMap`
/// iterates them (all values of a name together, in the order received).
pub(crate) type HeaderPairs<'h> = SmallVec<(&'h str, &'h [u8]), 16>;

#[inline(always)]
pub(crate) fn header_pairs(headers: &HeaderMap) -> HeaderPairs<'_> {
    let mut pairs = HeaderPairs::new(("", b""));
    pairs.extend(headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())));
    pairs
}

/// Appends the canonical request's text to `text`; `canonical_query` writes
/// the canonical query.
///
/// `names` are those of `signed_headers`, split.
/// `fixed` gives the value of a signed header outright (used as is), instead
/// of looking it up in `pairs`, whose values are trimmed and joined with `,`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn push_canonical_request(
    text: &mut Vec<u8>,
    method: &str,
    canonical_uri: &str,
    canonical_query: impl FnOnce(&mut Vec<u8>),
    pairs: &[(&str, &[u8])],
    fixed: &[(&str, &str)],
    names: &[&str],
    signed_headers: &SignedHeaders<'_>,
    payload_hash: &str,
) {
    debug_assert!(names.iter().copied().eq(signed_headers.iter()));
    let signed = signed_headers.as_str();
    let values =
        pairs.iter().map(|(_, v)| v.len() + 1).sum::<usize>() + fixed.iter().map(|(_, v)| v.len()).sum::<usize>();
    text.reserve(method.len() + canonical_uri.len() + 2 * signed.len() + values + payload_hash.len() + 256);
    text.push_str(method);
    text.push(b'\n');
    text.push_str(canonical_uri);
    text.push(b'\n');
    canonical_query(text);
    text.push(b'\n');
    for &name in names {
        text.push_str(name);
        text.push(b':');
        if let Some((_, v)) = fixed.iter().find(|(n, _)| *n == name) {
            text.push_str(v);
        } else {
            let mut first = true;
            for (_, v) in pairs.iter().filter(|(n, _)| *n == name) {
                if !first {
                    text.push(b',');
                }
                push_trimmed(text, v);
                first = false;
            }
        }
        text.push(b'\n');
    }
    text.push(b'\n');
    text.push_str(signed);
    text.push(b'\n');
    text.push_str(payload_hash);
}

/// `METHOD\nURI\nQUERY\nHEADERS\n\nSIGNED_HEADERS\nPAYLOAD_HASH`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonicalRequest {
    text: String,
}

impl CanonicalRequest {
    /// `host` is used for the `host` entry when `headers` has none (HTTP/2, or
    /// the origin side where the proxy sets the host).
    pub fn new(
        method: &str,
        canonical_uri: &str,
        canonical_query: &str,
        headers: &HeaderMap,
        host: Option<&str>,
        signed_headers: &SignedHeaders<'_>,
        payload_hash: &str,
    ) -> Self {
        let fixed = host.map(|h| ("host", h));
        let mut text = Vec::new();
        push_canonical_request(
            &mut text,
            method,
            canonical_uri,
            |q| q.push_str(canonical_query),
            header_pairs(headers).as_slice(),
            fixed.as_slice(),
            signed_headers.names().as_slice(),
            signed_headers,
            payload_hash,
        );
        Self { text: into_string(text) }
    }

    /// For tests and fixtures: wrap an already-built canonical request.
    pub fn from_text(text: String) -> Self {
        Self { text }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for CanonicalRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The credential scope, `date/region/service/aws4_request`, in parts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scope<'a> {
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

impl Scope<'_> {
    pub fn text(self) -> String {
        let mut s = String::with_capacity(self.date.len() + self.region.len() + self.service.len() + 15);
        super::auth::push_scope(&mut s, self.date, self.region, self.service);
        s
    }
}

/// The signature of the canonical request in `text`: HMAC-SHA256, under
/// `key`, of the string to sign ([`StringToSign::new`]'s text), which is
/// assembled after it in `text` (and taken off again).
pub(crate) fn sign_canonical_request(
    key: &PreparedKey,
    date: &AmzDate,
    scope: Scope<'_>,
    text: &mut Vec<u8>,
) -> [u8; 32] {
    let hash_hex = hex32(&Sha256::digest(&text[..]).into());
    let start = text.len();
    text.reserve(17 + 17 + scope.date.len() + scope.region.len() + scope.service.len() + 15 + 64);
    text.extend_from_slice(b"AWS4-HMAC-SHA256\n");
    text.extend_from_slice(date.as_bytes());
    text.push(b'\n');
    text.extend_from_slice(scope.date.as_bytes());
    text.push(b'/');
    text.extend_from_slice(scope.region.as_bytes());
    text.push(b'/');
    text.extend_from_slice(scope.service.as_bytes());
    text.extend_from_slice(b"/aws4_request\n");
    text.extend_from_slice(&hash_hex);
    let mac = key.sign(&text[start..]);
    text.truncate(start);
    mac
}

/// `AWS4-HMAC-SHA256\nDATE\nSCOPE\nhex(sha256(canonical request))`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringToSign {
    text: String,
}

impl StringToSign {
    pub fn new(date: &AmzDate, scope: &str, creq: &CanonicalRequest) -> Self {
        let hash = Sha256::digest(creq.as_str().as_bytes());
        let mut hex_buf = [0u8; 64];
        hex::encode_to_slice(hash, &mut hex_buf).expect("64 hex digits for 32 bytes");
        let mut text = String::with_capacity(17 + 17 + scope.len() + 1 + 64);
        text.push_str(super::auth::ALGORITHM);
        text.push('\n');
        text.push_str(date.as_str());
        text.push('\n');
        text.push_str(scope);
        text.push('\n');
        text.push_str(std::str::from_utf8(&hex_buf).expect("hex is ASCII"));
        Self { text }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for StringToSign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn query_sorts_by_key_then_value_and_keeps_wire_form() {
        let q = Query::parse("b=2&a=2&a=1&lifecycle&x=%2F%2a&sp=a+b");
        assert_eq!(q.canonical(|_| false), "a=1&a=2&b=2&lifecycle=&sp=a%20b&x=%2F%2A");
        assert_eq!(q.forward(|_| false), "a=1&a=2&b=2&lifecycle&sp=a+b&x=%2F%2a");
        assert_eq!(q.forward(|k| k == b"a"), "b=2&lifecycle&sp=a+b&x=%2F%2a");
        assert_eq!(q.get("x"), Some("/*"));
    }

    #[test]
    fn header_values_are_trimmed_and_joined_in_order() {
        let mut h = HeaderMap::new();
        h.append("my-header1", "  value1  ".parse().unwrap());
        h.append("my-header1", "a   b   c".parse().unwrap());
        h.append("my-header2", "\"a   b   c\"".parse().unwrap());
        let sh = SignedHeaders::parse("host;my-header1;my-header2").unwrap();
        let c = CanonicalRequest::new("GET", "/", "", &h, Some("example.com"), &sh, "UNSIGNED-PAYLOAD");
        assert_eq!(
            c.as_str(),
            "GET\n/\n\nhost:example.com\nmy-header1:value1,a b c\nmy-header2:\"a b c\"\n\nhost;my-header1;my-header2\nUNSIGNED-PAYLOAD"
        );
    }

    #[test]
    fn signing_matches_the_string_to_sign() {
        let key = PreparedKey::from(crate::sigv4::SigningKey::derive(b"s", "20250101", "r", "s3"));
        let date = AmzDate::parse("20250101T000000Z").unwrap();
        for region in ["us-east-1", "r".repeat(300).as_str()] {
            let scope = Scope { date: "20250101", region, service: "s3" };
            let sts = StringToSign::new(&date, &scope.text(), &CanonicalRequest::from_text("GET\n/".into()));
            let mut text = b"GET\n/".to_vec();
            assert_eq!(sign_canonical_request(&key, &date, scope, &mut text), key.key().sign(sts.as_str().as_bytes()));
            assert_eq!(text, b"GET\n/");
        }
    }

    /// `is_plain` as it is specified, a byte at a time.
    fn is_plain_reference(v: &[u8]) -> bool {
        v.first() != Some(&b' ')
            && v.last() != Some(&b' ')
            && v.iter().all(|&b| (0x20..0x7f).contains(&b))
            && !v.windows(2).any(|w| w == b"  ")
    }

    #[test]
    fn non_utf8_values_are_signed_as_sent() {
        // Two byte strings that a lossy decode would both turn into U+FFFD.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        push_trimmed(&mut a, b" x\xe9 y ");
        push_trimmed(&mut b, b" x\xff y ");
        assert_eq!(a, b"x\xe9 y");
        assert_eq!(b, b"x\xff y");
        assert_ne!(a, "x\u{fffd} y".as_bytes());
    }

    #[test]
    fn is_plain_edges() {
        for v in [&b""[..], b"a", b"a b", b"a  b", b" a", b"a ", b"\x7f", b"\x1f", b"~", b"abcdefg h", b"abcdefg  h"] {
            assert_eq!(is_plain(v), is_plain_reference(v), "{v:?}");
        }
        let mut v = b"0123456 ".to_vec();
        v.extend_from_slice(b" 89");
        assert!(!is_plain(&v), "a double space across words");
    }

    proptest! {
        #[test]
        fn is_plain_matches_the_reference(v in proptest::collection::vec(prop_oneof![Just(b' '), Just(b'a'), Just(b'\t'), any::<u8>()], 0..40)) {
            prop_assert_eq!(is_plain(&v), is_plain_reference(&v));
        }

        // Trimming: no leading/trailing space, no double space, same words.
        #[test]
        fn trimming_collapses_whitespace(v in "[ a-z\t\r\n\x0cé]{0,30}") {
            let mut out = String::new();
            push_trimmed(&mut out, v.as_bytes());
            let mut bytes = Vec::new();
            push_trimmed(&mut bytes, v.as_bytes());
            prop_assert_eq!(bytes, out.as_bytes());
            prop_assert!(!out.starts_with(' ') && !out.ends_with(' ') && !out.contains("  "));
            let words: Vec<&str> = v.split([' ', '\t', '\r', '\n']).filter(|w| !w.is_empty()).collect();
            prop_assert_eq!(out, words.join(" "));
        }

        // Parsing the forwarded query again yields the same canonical query.
        #[test]
        fn forwarded_query_canonicalizes_identically(pairs in proptest::collection::vec(("[a-zA-Z0-9%+=/ -]{0,6}", "[a-zA-Z0-9%+=/ -]{0,6}"), 0..6)) {
            let raw: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", k.replace(['&', '='], ""), v.replace('&', ""))).collect();
            let raw = raw.join("&");
            let q = Query::parse(&raw);
            let fwd = q.forward(|_| false);
            prop_assert_eq!(Query::parse(&fwd).canonical(|_| false), q.canonical(|_| false));
        }
    }
}

//! The canonical request and the string to sign, each a type you can print.
//!
//! <https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html>

use std::borrow::Cow;
use std::fmt;

use http::HeaderMap;
use sha2::{Digest, Sha256};

use super::auth::SignedHeaders;
use super::date::AmzDate;
use super::encode::{encode_query_component, percent_decode};

/// One query parameter: its wire form and its canonical (decoded, re-encoded) form.
#[derive(Debug, Clone)]
pub struct QueryParam<'a> {
    /// `k=v` (or `k`) exactly as on the wire.
    pub raw: &'a str,
    pub key: Cow<'a, [u8]>,
    pub value: Cow<'a, [u8]>,
    enc_key: String,
    enc_value: String,
}

impl QueryParam<'_> {
    pub fn value_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
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
        let mut params: Vec<QueryParam<'a>> = raw
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                let key = percent_decode(k, true);
                let value = percent_decode(v, true);
                let enc_key = encode_query_component(&key);
                let enc_value = encode_query_component(&value);
                QueryParam { raw: p, key, value, enc_key, enc_value }
            })
            .collect();
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
        let mut out = String::with_capacity(self.params.iter().map(|p| p.enc_key.len() + p.enc_value.len() + 2).sum());
        for p in self.params.iter().filter(|p| !skip(&p.key)) {
            if !out.is_empty() {
                out.push('&');
            }
            out.push_str(&p.enc_key);
            out.push('=');
            out.push_str(&p.enc_value);
        }
        out
    }

    /// The wire pairs, byte for byte, in canonical order, leaving out those
    /// `skip` names. Canonical order means an origin that sorts by key only
    /// (stable, as s3s does) computes the same canonical query as we do.
    pub fn forward(&self, skip: impl Fn(&[u8]) -> bool) -> String {
        let mut out = String::new();
        for p in self.params.iter().filter(|p| !skip(&p.key)) {
            if !out.is_empty() {
                out.push('&');
            }
            out.push_str(p.raw);
        }
        out
    }
}

/// Appends `value` trimmed, with inner runs of spaces and tabs collapsed to one space.
fn push_trimmed(out: &mut String, value: &[u8]) {
    // Fast path: most values have nothing to trim or collapse.
    let plain = value.first().is_none_or(|b| !b.is_ascii_whitespace())
        && value.last().is_none_or(|b| !b.is_ascii_whitespace())
        && !value.iter().any(|&b| matches!(b, b'\t' | b'\r' | b'\n'))
        && !value.windows(2).any(|w| w == b"  ");
    if plain && let Ok(v) = std::str::from_utf8(value) {
        out.push_str(v);
        return;
    }
    let value = String::from_utf8_lossy(value);
    let mut first = true;
    for word in value.split([' ', '\t', '\r', '\n']).filter(|w| !w.is_empty()) {
        if !first {
            out.push(' ');
        }
        out.push_str(word);
        first = false;
    }
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
        let mut text = String::with_capacity(256 + canonical_uri.len() + canonical_query.len());
        text.push_str(method);
        text.push('\n');
        text.push_str(canonical_uri);
        text.push('\n');
        text.push_str(canonical_query);
        text.push('\n');
        for name in signed_headers.iter() {
            text.push_str(name);
            text.push(':');
            match (name, host) {
                ("host", Some(h)) => text.push_str(h),
                _ => {
                    let mut first = true;
                    for v in headers.get_all(name) {
                        if !first {
                            text.push(',');
                        }
                        push_trimmed(&mut text, v.as_bytes());
                        first = false;
                    }
                }
            }
            text.push('\n');
        }
        text.push('\n');
        text.push_str(signed_headers.as_str());
        text.push('\n');
        text.push_str(payload_hash);
        Self { text }
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

    proptest! {
        // Trimming: no leading/trailing space, no double space, same words.
        #[test]
        fn trimming_collapses_whitespace(v in "[ a-z\t]{0,30}") {
            let mut out = String::new();
            push_trimmed(&mut out, v.as_bytes());
            prop_assert!(!out.starts_with(' ') && !out.ends_with(' ') && !out.contains("  "));
            let words: Vec<&str> = v.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
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

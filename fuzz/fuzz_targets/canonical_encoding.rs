//! S3's URI encoding (`canonical_uri`, `encode`, `Query::canonical`) against
//! a plain reference written here from the SigV4 rules: percent-decode once
//! (`%` + two hex digits, either case; anything else literal; `+` is a space
//! in a query only), then encode every byte but `A-Za-z0-9-_.~` (and `/` in a
//! path) as `%XX` with upper-case hex. The fast paths must agree on every
//! input. Also the client numbers' one spelling (`sigv4::number`): what
//! parses prints back to the same text, and every number's print parses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s3_resign_proxy::sigv4::Query;
use s3_resign_proxy::sigv4::encode::{
    canonical_uri, canonical_uri_into, encode_query_component, percent_decode, uri_encode_into,
};
use s3_resign_proxy::sigv4::number::{parse_decimal, parse_hex};

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn ref_decode(s: &[u8], plus_as_space: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' if s.len() - i >= 3 && hex(s[i + 1]).is_some() && hex(s[i + 2]).is_some() => {
                out.push(hex(s[i + 1]).unwrap() * 16 + hex(s[i + 2]).unwrap());
                i += 3;
            }
            b'+' if plus_as_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn ref_encode(bytes: &[u8], keep_slash: bool) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            // Upper-case hex, written out (not `format!`, which is slow here).
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
    out
}

fn ref_canonical_uri(path: &str) -> String {
    if path.is_empty() { "/".to_owned() } else { ref_encode(&ref_decode(path.as_bytes(), false), true) }
}

fn ref_canonical_query(raw: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let enc = |s: &str| ref_encode(&ref_decode(s.as_bytes(), true), false);
            (enc(k), enc(v))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn check_numbers(data: &[u8]) {
    if let Some(n) = parse_decimal(data) {
        assert_eq!(n.to_string().as_bytes(), data, "decimal {n} accepted as {data:?}");
    }
    if let Some(n) = parse_hex(data) {
        assert_eq!(format!("{n:x}").as_bytes(), data.to_ascii_lowercase(), "hex {n:x} accepted as {data:?}");
    }
    let mut word = [0u8; 8];
    word[..data.len().min(8)].copy_from_slice(&data[..data.len().min(8)]);
    let n = u64::from_le_bytes(word);
    assert_eq!(parse_decimal(n.to_string().as_bytes()), Some(n));
    assert_eq!(parse_hex(format!("{n:x}").as_bytes()), Some(n));
    assert_eq!(parse_hex(format!("{n:X}").as_bytes()), Some(n));
}

fuzz_target!(|data: &[u8]| {
    check_numbers(data);
    // Byte-level functions see the raw bytes; the text ones a lossy copy.
    for keep_slash in [false, true] {
        let mut out = String::from("x");
        uri_encode_into(&mut out, data, keep_slash);
        assert_eq!(out[1..], ref_encode(data, keep_slash), "uri_encode_into {data:?} keep_slash={keep_slash}");
    }
    assert_eq!(encode_query_component(data), ref_encode(data, false));

    let s = String::from_utf8_lossy(data);
    for plus in [false, true] {
        assert_eq!(&*percent_decode(&s, plus), &ref_decode(s.as_bytes(), plus)[..], "percent_decode {s:?} {plus}");
    }

    let want = ref_canonical_uri(&s);
    let got = canonical_uri(&s);
    assert_eq!(got, want, "canonical_uri {s:?}");
    let mut appended = String::from("/prefix");
    canonical_uri_into(&mut appended, &s);
    assert_eq!(appended, format!("/prefix{want}"));
    // Decode-once/encode-once is a fixed point on its own output: the origin
    // computes the same canonical URI from the path we forward.
    assert_eq!(canonical_uri(&got), got, "canonical_uri not idempotent on {s:?}");

    let q = Query::parse(&s);
    assert_eq!(q.canonical(|_| false), ref_canonical_query(&s), "Query::canonical {s:?}");
});

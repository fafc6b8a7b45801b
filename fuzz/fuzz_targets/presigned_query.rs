//! `Query::parse` and `PresignedV4::parse` on arbitrary query strings: no
//! panic; the forwarded query (byte for byte pairs, canonical order) parses
//! back to the same canonical query and forwards to itself; a parsed
//! presigned URL printed back (values encoded) parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s3_resign_proxy::sigv4::auth::PRESIGNED_AUTH_PARAMS;
use s3_resign_proxy::sigv4::encode::encode_query_component;
use s3_resign_proxy::sigv4::{PresignedV4, Query};

fn is_auth(k: &[u8]) -> bool {
    PRESIGNED_AUTH_PARAMS.iter().any(|p| p.as_bytes() == k)
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let q = Query::parse(raw);
    for p in q.iter() {
        // Each pair is a piece of the input, and a value read as text is
        // the decoded value.
        let at = (p.raw.as_ptr() as usize).wrapping_sub(raw.as_ptr() as usize);
        assert!(!p.raw.is_empty() && raw.get(at..at + p.raw.len()) == Some(p.raw));
        if let Some(v) = p.value_str() {
            assert_eq!(v.as_bytes(), &*p.value);
        }
    }
    for name in PRESIGNED_AUTH_PARAMS {
        if let Some(v) = q.get(name) {
            assert!(q.contains(name));
            let first = q.iter().find(|p| &*p.key == name.as_bytes()).expect("get found it");
            assert_eq!(v.as_bytes(), &*first.value);
        }
    }

    // Forwarding keeps the canonical query, with or without the auth params.
    for skip in [(|_: &[u8]| false) as fn(&[u8]) -> bool, is_auth] {
        let fwd = q.forward(skip);
        let again = Query::parse(&fwd);
        assert_eq!(again.canonical(|_| false), q.canonical(skip), "forwarded {fwd:?} of {raw:?}");
        assert_eq!(again.forward(|_| false), fwd, "forwarding {fwd:?} again");
    }

    let Ok(pre) = PresignedV4::parse(|n| q.get(n)) else {
        return;
    };
    assert!((1..=604_800).contains(&pre.expires));
    // A number has one spelling (no sign, no leading zero).
    assert_eq!(q.get("X-Amz-Expires"), Some(&*pre.expires.to_string()), "{raw:?}");
    let c = &pre.credential;
    let cred = format!("{}/{}/{}/{}/aws4_request", c.access_key, c.date, c.region, c.service);
    let mut pairs = vec![
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".to_owned()),
        ("X-Amz-Credential", cred),
        ("X-Amz-Date", pre.date.as_str().to_owned()),
        ("X-Amz-Expires", pre.expires.to_string()),
        ("X-Amz-SignedHeaders", pre.signed_headers.as_str().to_owned()),
        ("X-Amz-Signature", pre.signature.to_owned()),
    ];
    if let Some(h) = pre.content_sha256 {
        pairs.push(("X-Amz-Content-Sha256", h.to_owned()));
    }
    let text: Vec<String> =
        pairs.iter().rev().map(|(k, v)| format!("{k}={}", encode_query_component(v.as_bytes()))).collect();
    let text = text.join("&");
    let q2 = Query::parse(&text);
    let again = PresignedV4::parse(|n| q2.get(n))
        .unwrap_or_else(|e| panic!("re-printed {text:?} of {raw:?} does not parse: {e}"));
    assert_eq!(again, pre, "re-printed {text:?} of {raw:?}");
});

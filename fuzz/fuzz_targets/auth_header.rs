//! `AuthorizationV4::parse`, `SignedHeaders::parse`, `Credential::parse` on
//! arbitrary text: no panic; whatever parses prints back (in either separator
//! style, components in any order) to a header that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s3_resign_proxy::sigv4::auth::MAX_SIGNED_HEADERS;
use s3_resign_proxy::sigv4::{AuthorizationV4, Credential, SignedHeaders};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(sh) = SignedHeaders::parse(s) {
        check_signed_headers(&sh);
    }
    if let Ok(c) = Credential::parse(s) {
        check_credential(&c);
    }
    let Ok(auth) = AuthorizationV4::parse(s) else {
        return;
    };
    check_credential(&auth.credential);
    check_signed_headers(&auth.signed_headers);
    assert!(auth.signature.len() == 64 && auth.signature.bytes().all(|b| b.is_ascii_hexdigit()));

    let cred = credential_text(&auth.credential);
    let (sh, sig) = (auth.signed_headers.as_str(), auth.signature);
    let parts = [format!("Credential={cred}"), format!("SignedHeaders={sh}"), format!("Signature={sig}")];
    // The SDKs' `, `, the S3 docs' `,`, and the components rotated: each must
    // give back the very same parts.
    for (sep, rot) in [(", ", 0), (",", 0), (", ", 1), (",\t", 2)] {
        let mut p = parts.clone();
        p.rotate_left(rot);
        let header = format!("AWS4-HMAC-SHA256 {}", p.join(sep));
        let again = AuthorizationV4::parse(&header)
            .unwrap_or_else(|e| panic!("re-printed header {header:?} of {s:?} does not parse: {e}"));
        assert_eq!(again, auth, "re-printed header {header:?} of {s:?}");
    }
});

fn credential_text(c: &Credential<'_>) -> String {
    format!("{}/{}/{}/{}/aws4_request", c.access_key, c.date, c.region, c.service)
}

fn check_credential(c: &Credential<'_>) {
    assert!(!c.access_key.is_empty() && !c.region.is_empty());
    assert!(c.date.len() == 8 && c.date.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(c.scope(), format!("{}/{}/{}/aws4_request", c.date, c.region, c.service));
    let text = credential_text(c);
    assert_eq!(Credential::parse(&text).as_ref(), Ok(c), "credential {text:?}");
}

fn check_signed_headers(sh: &SignedHeaders<'_>) {
    let s = sh.as_str();
    let names: Vec<&str> = sh.iter().collect();
    // What was accepted is what the grammar allows: non-empty lower-case
    // header names joined by ';', sorted, each once, at most
    // MAX_SIGNED_HEADERS (a repeat would sign a header's values again).
    assert_eq!(names.join(";"), s);
    assert!(names.windows(2).all(|w| w[0] < w[1]), "unsorted or repeated names accepted: {s:?}");
    assert!(names.len() <= MAX_SIGNED_HEADERS, "{} names accepted", names.len());
    for n in &names {
        assert!(!n.is_empty(), "empty name in {s:?}");
        assert!(n.bytes().all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase() && !b";,:=\"".contains(&b)), "{s:?}");
        assert!(sh.contains(n));
    }
    assert_eq!(SignedHeaders::parse(s), Ok(*sh));
}

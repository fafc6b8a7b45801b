//! The host policy (`addressing`): which host a request's signature covers
//! (Host, `X-Forwarded-Host`, `Forwarded: host=`, from a trusted peer or
//! not), the bucket a virtual-hosted host names, and the origin route.
//!
//! Properties: no panic; a bucket is only ever a valid S3 bucket name found
//! in front of a configured domain; an untrusted peer's forwarded headers
//! change nothing; the route's Host is a valid bucket label in front of the
//! origin's own authority, never anything else, and its path starts with `/`.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use s3_resign_proxy::addressing::{Addressing, AddressingSettings, OriginStyle, route, valid_bucket};
use s3_resign_proxy::config::Origin;

#[derive(Arbitrary, Debug)]
struct Input {
    host: Vec<u8>,
    x_forwarded_host: Vec<Vec<u8>>,
    forwarded: Vec<Vec<u8>>,
    path: String,
    trusted_peer: bool,
    virtual_origin: bool,
    https_origin: bool,
    allowed: bool,
}

const DOMAINS: [&str; 2] = ["s3.vanity.test", "vanity.test"];

fuzz_target!(|input: Input| {
    let scheme = if input.https_origin { http::uri::Scheme::HTTPS } else { http::uri::Scheme::HTTP };
    let origin = Origin::new(scheme, "origin.test:9000".parse().unwrap()).unwrap();
    let settings = AddressingSettings {
        virtual_host_domains: "s3.vanity.test, vanity.test",
        origin_addressing: if input.virtual_origin { "virtual" } else { "path" },
        allowed_hosts: if input.allowed { "*.s3.vanity.test:*, s3.vanity.test:*, 127.0.0.1:*" } else { "" },
        trusted_proxies: "127.0.0.0/8",
        ..Default::default()
    };
    let policy = Addressing::from_settings(&settings).unwrap();
    // Intake has already refused a Host that is not visible ASCII.
    if !input.host.iter().all(|b| (0x20..0x7f).contains(b)) {
        return;
    }
    let mut headers = http::HeaderMap::new();
    let mut add = |name: &'static str, v: &[u8]| {
        if let Ok(v) = http::HeaderValue::from_bytes(v) {
            headers.append(name, v);
        }
    };
    add("host", &input.host);
    input.x_forwarded_host.iter().for_each(|v| add("x-forwarded-host", v));
    input.forwarded.iter().for_each(|v| add("forwarded", v));
    let uri = http::Uri::from_static("/");
    let peer = if input.trusted_peer { "127.0.0.9" } else { "192.0.2.1" }.parse().ok();
    let Ok(signed) = policy.signed_host(peer, &uri, &headers) else { return };
    if !input.trusted_peer {
        // Untrusted: the Host header alone decides.
        assert_eq!(signed.host().map(str::as_bytes), headers.get("host").map(|h| h.as_bytes()));
    }
    if let Some(b) = signed.bucket() {
        assert!(valid_bucket(b), "{b:?}");
        let host = signed.host().unwrap().to_ascii_lowercase();
        let name = host.rsplit_once(':').map_or(host.as_str(), |(n, _)| n);
        let name = name.strip_suffix('.').unwrap_or(name);
        assert!(DOMAINS.iter().any(|d| name == format!("{b}.{d}")), "{host} -> {b}");
    }
    let path = if input.path.starts_with('/') { input.path.clone() } else { format!("/{}", input.path) };
    let style = if input.virtual_origin { OriginStyle::Virtual } else { OriginStyle::Path };
    let Ok(r) = route(style, &origin, signed.bucket(), &path) else { return };
    assert!(r.canonical_uri.starts_with('/'));
    if let Some((authority, value)) = &r.authority {
        assert_eq!(authority.as_str().as_bytes(), value.as_bytes());
        let label = authority.as_str().strip_suffix(".origin.test:9000").expect("the origin's authority");
        assert!(valid_bucket(label), "{label:?}");
        assert!(!(input.https_origin && label.contains('.')), "a dotted bucket over https");
    }
});

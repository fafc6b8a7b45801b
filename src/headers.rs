//! Header policy, in one place: which headers describe one connection
//! (hop-by-hop) and never cross the proxy in either direction, how the
//! `Connection` list is read, and which client headers never travel to the
//! origin. Both `resign` (toward the origin) and the handler (the origin's
//! response) use it; `verify` uses it to refuse a `Connection` header that
//! would drop a signed header.
//!
//! <https://www.rfc-editor.org/rfc/rfc9110#section-7.6.1>

use http::{HeaderMap, HeaderName, header};

/// Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection and
/// never cross the proxy, in either direction.
pub fn is_hop_by_hop(name: &str) -> bool {
    matches!(name, "connection" | "keep-alive" | "te" | "trailer" | "transfer-encoding" | "upgrade")
        || name.starts_with("proxy-")
}

/// Client headers that never travel to the origin: hop-by-hop ones, `Expect`
/// (the proxy answers 100-continue itself), the client's own `Host` and
/// authentication, its session token, which belongs to the client's
/// credentials, not the origin's, and the forwarded host (`X-Forwarded-Host`,
/// `Forwarded`), which describes the hop to the proxy: an origin that honours
/// it (for its own virtual hosting or signature check) would read a host
/// other than the one the proxy signed.
pub fn is_dropped(name: &str) -> bool {
    is_hop_by_hop(name)
        || is_added_by_cdn(name)
        || matches!(
            name,
            "host" | "authorization" | "expect" | "x-amz-security-token" | "x-forwarded-host" | "forwarded"
        )
}

/// An `x-amz-*` header that a CDN in front of the proxy adds after the client
/// signed: CloudFront's request id, `X-Amz-Cf-Id`. No client can sign it, so
/// it is neither required to be signed (SigV4) nor part of the SigV2 string
/// to sign, and it is not forwarded.
pub fn is_added_by_cdn(name: &str) -> bool {
    name == "x-amz-cf-id"
}

/// A signed header that may still not be forwarded: one that cannot cross a
/// hop by its nature. Every other signed header reaches the origin signed.
pub fn unforwardable_when_signed(name: &str) -> bool {
    is_hop_by_hop(name) || name == "expect"
}

/// The names listed in `Connection`, trimmed and non-empty, as sent (compare
/// them without regard to case): the one parser of that list. Allocates
/// nothing: it runs for every header of a request that has a `Connection`.
pub fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> + '_ {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

/// Is `name` (lower case) listed in `Connection`?
pub fn connection_lists(headers: &HeaderMap, name: &str) -> bool {
    connection_tokens(headers).any(|t| t.eq_ignore_ascii_case(name.as_bytes()))
}

/// Removes hop-by-hop headers, and those `Connection` names, from a message.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if headers.contains_key(header::CONNECTION) {
        let listed: Vec<HeaderName> =
            connection_tokens(headers).filter_map(|t| HeaderName::from_bytes(t).ok()).collect();
        for name in listed {
            headers.remove(name);
        }
    }
    // Usually there is none: look before collecting.
    if !headers.keys().any(|n| is_hop_by_hop(n.as_str())) {
        return;
    }
    let hop: Vec<HeaderName> = headers.keys().filter(|n| is_hop_by_hop(n.as_str())).cloned().collect();
    for name in hop {
        headers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_list_and_stripping() {
        let mut h = HeaderMap::new();
        h.append("connection", "keep-alive, X-Custom".parse().unwrap());
        h.append("connection", " ,close".parse().unwrap());
        h.insert("x-custom", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("proxy-authenticate", "x".parse().unwrap());
        h.insert("etag", "\"e\"".parse().unwrap());
        assert_eq!(connection_tokens(&h).collect::<Vec<_>>(), [&b"keep-alive"[..], b"X-Custom", b"close"]);
        assert!(connection_lists(&h, "x-custom") && !connection_lists(&h, "etag"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["etag"]);
        assert!(is_dropped("authorization") && is_dropped("te") && !is_dropped("range"));
        assert!(unforwardable_when_signed("transfer-encoding") && !unforwardable_when_signed("content-md5"));
    }
}

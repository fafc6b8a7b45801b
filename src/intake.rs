//! Request in: what is refused before any signature is looked at.
//!
//! Only S3's methods; the proxy's documented size limits, answered as S3 XML
//! (hyper's own limits are set above these, so they only catch bytes that are
//! not HTTP/1.1 at all); and ambiguity: two of a header that must be single, a
//! Host that is not a host, a number in a non-canonical form. An ambiguous
//! request is refused, never guessed: the proxy and the origin must not read
//! one request two ways.
//!
//! <https://www.rfc-editor.org/rfc/rfc9112#section-3.2> (Host)

use http::{HeaderMap, HeaderName, Method, header};

use crate::error::Error;
use crate::sigv4::number::parse_decimal;

/// The longest request target (path and query), in bytes.
pub const MAX_TARGET: usize = 8 << 10;
/// The largest header section (names, values, `: ` and CRLF), in bytes.
pub const MAX_HEADER_SECTION: usize = 16 << 10;
/// The most header fields a request may have.
pub const MAX_HEADERS: usize = 100;
/// The most query parameters a request may have.
pub const MAX_QUERY_PARAMS: usize = 1000;

/// Headers a request may carry once at most: each is read as one value by the
/// proxy or by the origin, so a second one is an ambiguity.
const SINGLE: [HeaderName; 17] = [
    header::HOST,
    header::AUTHORIZATION,
    header::CONTENT_LENGTH,
    header::CONTENT_TYPE,
    header::DATE,
    header::EXPECT,
    HeaderName::from_static("content-md5"),
    HeaderName::from_static("x-amz-date"),
    HeaderName::from_static("x-amz-content-sha256"),
    HeaderName::from_static("x-amz-decoded-content-length"),
    HeaderName::from_static("x-amz-security-token"),
    HeaderName::from_static("x-amz-trailer"),
    header::RANGE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
];

/// S3's methods. Anything else (CONNECT, TRACE, PATCH, a lower-case `get`)
/// is never forwarded, even when correctly signed.
pub fn check_method(method: &Method) -> Result<(), Error> {
    match *method {
        Method::GET | Method::HEAD | Method::PUT | Method::POST | Method::DELETE => Ok(()),
        _ => Err(Error::MethodNotAllowed("The specified method is not allowed against this resource.".into())),
    }
}

/// The method, limits, ambiguity and framing, in that order; all as received.
pub fn check(method: &Method, uri: &http::Uri, headers: &HeaderMap) -> Result<(), Error> {
    check_method(method)?;
    check_request(method, uri, headers)
}

/// Everything [`check`] does but the method (an unsigned `OPTIONS` that may
/// be forwarded to the origin's bucket CORS is held to the rest).
pub fn check_request(method: &Method, uri: &http::Uri, headers: &HeaderMap) -> Result<(), Error> {
    check_limits(uri, headers)?;
    check_target(uri)?;
    check_escapes(uri)?;
    check_framing(method, headers)?;
    check_single(headers)?;
    check_host(headers)?;
    check_numbers(headers)?;
    Ok(())
}

fn check_limits(uri: &http::Uri, headers: &HeaderMap) -> Result<(), Error> {
    let target = uri.path_and_query().map_or(uri.path().len(), |pq| pq.as_str().len());
    if target > MAX_TARGET {
        return Err(Error::UriTooLong);
    }
    if headers.len() > MAX_HEADERS {
        return Err(Error::RequestHeaderSectionTooLarge(
            format!("The request has more than {MAX_HEADERS} header fields.").into(),
        ));
    }
    let section: usize = headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    if section > MAX_HEADER_SECTION {
        return Err(Error::RequestHeaderSectionTooLarge(
            format!("Your request header section exceeds the maximum allowed size of {MAX_HEADER_SECTION} bytes.")
                .into(),
        ));
    }
    let params = uri.query().map_or(0, |q| q.split('&').filter(|p| !p.is_empty()).count());
    if params > MAX_QUERY_PARAMS {
        return Err(Error::InvalidArgument(
            format!("The request has more than {MAX_QUERY_PARAMS} query parameters.").into(),
        ));
    }
    Ok(())
}

/// Origin-form only (`/path?query`): an absolute-form target names a host of
/// its own, and the proxy does not act as an HTTP forward proxy.
fn check_target(uri: &http::Uri) -> Result<(), Error> {
    if uri.scheme().is_some() || uri.authority().is_some() || !uri.path().starts_with('/') {
        return Err(Error::InvalidArgument("The request target must be a path (origin-form).".into()));
    }
    Ok(())
}

/// Every `%` starts a two-hex-digit escape (a stray one would be read one
/// way by the proxy and maybe another by the origin), and the decoded path,
/// an S3 bucket and key, is UTF-8.
fn check_escapes(uri: &http::Uri) -> Result<(), Error> {
    let target = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str()).as_bytes();
    let mut rest = target;
    while let Some(i) = rest.iter().position(|&b| b == b'%') {
        match rest.get(i + 1..i + 3) {
            Some([a, b]) if a.is_ascii_hexdigit() && b.is_ascii_hexdigit() => rest = &rest[i + 3..],
            _ => return Err(Error::InvalidUri),
        }
    }
    let path = uri.path();
    if path.contains('%') && percent_encoding::percent_decode_str(path).decode_utf8().is_err() {
        return Err(Error::InvalidUri);
    }
    Ok(())
}

/// One framing per body (RFC 9112 §6.3): `Transfer-Encoding` is `chunked`
/// alone, and never together with `Content-Length` (request smuggling). hyper
/// already settles the two cases a header map can no longer show: with both,
/// it drops Content-Length, reads the chunked body and closes the connection
/// after it; two equal Content-Lengths it keeps as one (RFC 9110 §8.6), two
/// different ones it refuses. And no S3 GET, HEAD or DELETE has a body: one
/// that comes with a body is refused rather than forwarded.
fn check_framing(method: &Method, headers: &HeaderMap) -> Result<(), Error> {
    let bodiless = matches!(*method, Method::GET | Method::HEAD | Method::DELETE);
    let mut te = headers.get_all(header::TRANSFER_ENCODING).iter();
    let Some(first) = te.next() else {
        if bodiless && headers.get(header::CONTENT_LENGTH).is_some_and(|v| v.as_bytes() != b"0") {
            return Err(Error::InvalidRequest(format!("A {method} request carries no body.").into()));
        }
        return Ok(());
    };
    if bodiless {
        return Err(Error::InvalidRequest(format!("A {method} request carries no body.").into()));
    }
    if te.next().is_some() || !first.as_bytes().eq_ignore_ascii_case(b"chunked") {
        return Err(Error::InvalidRequest("Transfer-Encoding must be chunked, alone.".into()));
    }
    if headers.contains_key(header::CONTENT_LENGTH) {
        return Err(Error::InvalidRequest("A request may not carry both Content-Length and Transfer-Encoding.".into()));
    }
    Ok(())
}

fn check_single(headers: &HeaderMap) -> Result<(), Error> {
    // As many values as names: nothing is repeated (the common case, O(1)).
    if headers.len() == headers.keys_len() {
        return Ok(());
    }
    match SINGLE.iter().find(|n| headers.get_all(*n).iter().nth(1).is_some()) {
        Some(n) => Err(repeated(n.as_str())),
        None => Ok(()),
    }
}

pub(crate) fn repeated(name: &str) -> Error {
    Error::InvalidArgument(format!("The header {name} appears more than once; send it once.").into())
}

/// `Host` is `reg-name / IPv4 / [IPv6]` with an optional numeric port: no
/// userinfo, no path, nothing that a URL parser could read two ways.
fn check_host(headers: &HeaderMap) -> Result<(), Error> {
    let Some(host) = headers.get(header::HOST) else {
        return Err(Error::InvalidArgument("The request has no Host header.".into()));
    };
    if valid_host(host.as_bytes()) {
        Ok(())
    } else {
        Err(Error::InvalidArgument("The Host header is not a valid host[:port].".into()))
    }
}

pub(crate) fn valid_host(h: &[u8]) -> bool {
    let (name, port) = match h.first() {
        Some(b'[') => match h.iter().position(|&b| b == b']') {
            Some(end) => {
                let inside = &h[1..end];
                if inside.is_empty() || !inside.iter().all(|b| b.is_ascii_hexdigit() || b":.".contains(b)) {
                    return false;
                }
                (&h[..=end], &h[end + 1..])
            }
            None => return false,
        },
        _ => match h.iter().position(|&b| b == b':') {
            Some(i) => (&h[..i], &h[i..]),
            None => (h, &h[h.len()..]),
        },
    };
    let name_ok =
        !name.is_empty() && (name[0] == b'[' || name.iter().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(b)));
    let port_ok = match port {
        [] => true,
        [b':', digits @ ..] => parse_decimal(digits).is_some_and(|p| p <= 65535),
        _ => false,
    };
    name_ok && port_ok
}

/// Every number the client sends in a header, in its one canonical form.
fn check_numbers(headers: &HeaderMap) -> Result<(), Error> {
    for name in [header::CONTENT_LENGTH, HeaderName::from_static("x-amz-decoded-content-length")] {
        if let Some(v) = headers.get(&name)
            && parse_decimal(v.as_bytes()).is_none()
        {
            return Err(Error::InvalidArgument(
                format!("The {name} header must be a decimal number without sign or leading zeros.").into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(target: &str, headers: &[(&str, &str)]) -> Result<(), Error> {
        let uri: http::Uri = target.parse().unwrap();
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        check(&Method::PUT, &uri, &h)
    }

    #[test]
    fn methods() {
        for m in ["GET", "HEAD", "PUT", "POST", "DELETE"] {
            assert!(check_method(&m.parse().unwrap()).is_ok(), "{m}");
        }
        for m in ["CONNECT", "TRACE", "PATCH", "PROPFIND", "get", "OPTIONS", "X"] {
            let e = check_method(&m.parse().unwrap()).unwrap_err();
            assert_eq!(e.status_and_code().1, "MethodNotAllowed", "{m}");
        }
    }

    #[test]
    fn hosts() {
        for ok in ["s3.example.com", "127.0.0.1:8000", "[::1]:9000", "[::1]", "a_b.example", "h:0"] {
            assert!(valid_host(ok.as_bytes()), "{ok}");
        }
        for bad in ["", "u@h", "h/p", "h:x", "h:+80", "h:080", "h:65536", "h:", "[::1", "[zz]", "h h", "h?", ":80"] {
            assert!(!valid_host(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn ambiguity_and_limits() {
        let host = ("host", "h");
        assert!(req("/b/k", &[host]).is_ok());
        assert!(req("/b/k", &[host, ("x-amz-meta-a", "1"), ("x-amz-meta-a", "2")]).is_ok(), "not ours to refuse");
        for dup in ["authorization", "x-amz-date", "x-amz-content-sha256", "host", "content-length", "content-md5"] {
            let e = req("/b/k", &[host, (dup, "1"), (dup, "1")]).unwrap_err();
            assert!(e.to_string().contains(dup), "{dup}: {e}");
        }
        assert!(req("/b/k", &[]).is_err(), "no Host");
        assert!(req("http://other/b/k", &[host]).is_err(), "absolute-form");
        assert!(req("/b/k", &[host, ("content-length", "05")]).is_err());
        assert!(req("/b/k", &[host, ("x-amz-decoded-content-length", "+5")]).is_err());
        for bad in ["/b/%zz", "/b/%4", "/b/k?a=%", "/b/k?%g1=1"] {
            assert_eq!(req(bad, &[host]).unwrap_err(), Error::InvalidUri, "{bad}");
        }
        assert!(req("/b/%41%2f?x=%2B", &[host]).is_ok());
        for not_utf8 in ["/b/a%FF", "/b/a%C3%28", "/b/a%ED%A0%80", "/b/a%C0%AF"] {
            assert_eq!(req(not_utf8, &[host]).unwrap_err(), Error::InvalidUri, "{not_utf8}");
        }
        assert!(req("/b/%C3%A9", &[host]).is_ok(), "é");
        let uri: http::Uri = "/b/k".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "h".parse().unwrap());
        h.insert(header::CONTENT_LENGTH, "5".parse().unwrap());
        for (m, ok) in [(Method::GET, false), (Method::HEAD, false), (Method::DELETE, false), (Method::POST, true)] {
            assert_eq!(check(&m, &uri, &h).is_ok(), ok, "{m} with a body");
        }
        let te = ("transfer-encoding", "chunked");
        assert!(req("/b/k", &[host, te]).is_ok());
        assert!(req("/b/k", &[host, te, ("content-length", "5")]).is_err(), "CL and TE");
        assert!(req("/b/k", &[host, ("transfer-encoding", "gzip, chunked")]).is_err());
        assert!(req("/b/k", &[host, te, te]).is_err());
        let long = format!("/b/{}", "k".repeat(MAX_TARGET));
        assert_eq!(req(&long, &[host]).unwrap_err(), Error::UriTooLong);
        let many: Vec<(String, String)> = (0..MAX_HEADERS).map(|i| (format!("x-h{i}"), "v".into())).collect();
        let mut hs: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        hs.push(host);
        assert_eq!(req("/b/k", &hs).unwrap_err().status_and_code().1, "RequestHeaderSectionTooLarge");
        let big = "v".repeat(MAX_HEADER_SECTION);
        assert_eq!(
            req("/b/k", &[host, ("x-big", &big)]).unwrap_err().status_and_code().1,
            "RequestHeaderSectionTooLarge"
        );
        let q: Vec<String> = (0..=MAX_QUERY_PARAMS).map(|i| format!("p{i}")).collect();
        assert!(req(&format!("/b?{}", q.join("&")), &[host]).is_err());
    }
}

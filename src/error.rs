//! One error type for everything a client can be told, and one exhaustive
//! match from it to S3's status and code.
//!
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html>

use std::borrow::Cow;
use std::fmt::Write as _;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};

type Msg = Cow<'static, str>;

/// The one boxed error type, for body streams and the binary's entry points.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The client's signature is wrong. Carries what the proxy computed from the
    /// client's own request, as S3 does.
    SignatureDoesNotMatch {
        access_key: String,
        signature_provided: String,
        string_to_sign: String,
        canonical_request: Option<String>,
    },
    InvalidAccessKeyId(String),
    RequestTimeTooSkewed {
        request_time: String,
        server_time: String,
        max_skew_secs: u64,
    },
    AccessDenied(Msg),
    /// Some `x-amz-*` headers are present but unsigned (S3 answers AccessDenied).
    HeadersNotSigned(String),
    AuthorizationHeaderMalformed(Msg),
    AuthorizationQueryParametersError(Msg),
    InvalidArgument(Msg),
    InvalidRequest(Msg),
    MissingContentLength,
    XAmzContentSHA256Mismatch {
        client_computed: String,
        s3_computed: String,
    },
    /// The body ended before Content-Length (or the chunk framing) said it would.
    IncompleteBody(Msg),
    /// Malformed aws-chunked framing or a framing limit exceeded.
    InvalidChunkedBody(Msg),
    /// A chunk or trailer signature is wrong.
    ChunkSignatureDoesNotMatch(Msg),
    /// Not one of S3's methods (GET, HEAD, PUT, POST, DELETE).
    MethodNotAllowed(Msg),
    /// The header section is over the proxy's limits (size or count).
    RequestHeaderSectionTooLarge(Msg),
    /// The request target is over the proxy's limit.
    UriTooLong,
    /// A `%` in the path or query that is not followed by two hex digits.
    InvalidUri,
    /// Not HTTP/1.1 (an HTTP/2 prior-knowledge preface).
    HttpVersionNotSupported,
    OriginUnreachable(Msg),
    OriginTimeout(Msg),
    /// The origin refused the proxy's own signature or credentials. Its body
    /// (which may carry the origin key id and the proxy's canonical request)
    /// is logged at debug, never returned.
    OriginRefused(Msg),
    /// The client stopped sending its request body (S3's idle socket timeout).
    RequestTimeout,
    /// A bucket name taken from the Host (virtual-hosted style) that is not a
    /// valid S3 bucket name.
    InvalidBucketName(String),
    /// The signed host is not one ALLOWED_HOSTS lets this proxy serve.
    HostNotAllowed(String),
    /// A request body the proxy reads (DeleteObjects, for a key with rules)
    /// is not the XML S3 expects.
    MalformedXML(Msg),
    /// The body does not match its Content-MD5.
    BadDigest,
    /// A CORS preflight this proxy's CORS policy does not allow.
    CorsForbidden(Msg),
    /// A POST form's policy is not a valid policy document.
    InvalidPolicyDocument(Msg),
    /// A POST upload over its policy's content-length-range.
    EntityTooLarge,
    /// A POST upload under its policy's content-length-range.
    EntityTooSmall,
    /// A POST form upload whose body is not multipart/form-data.
    MalformedPOSTRequest(Msg),
    /// The fields before a POST form's file part are over 20 KiB.
    MaxPostPreDataLengthExceeded,
}

/// How much of a canonical request or string to sign an error body echoes:
/// the rest is cut, and the body says so. Bounds every error body.
pub const MAX_ECHO: usize = 4096;

impl Error {
    /// The one place that decides status and code. No wildcard: a new variant
    /// must be placed here by hand.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::SignatureDoesNotMatch { .. } => (StatusCode::FORBIDDEN, "SignatureDoesNotMatch"),
            Self::ChunkSignatureDoesNotMatch(_) => (StatusCode::FORBIDDEN, "SignatureDoesNotMatch"),
            Self::InvalidAccessKeyId(_) => (StatusCode::FORBIDDEN, "InvalidAccessKeyId"),
            Self::RequestTimeTooSkewed { .. } => (StatusCode::FORBIDDEN, "RequestTimeTooSkewed"),
            Self::AccessDenied(_) | Self::HeadersNotSigned(_) => (StatusCode::FORBIDDEN, "AccessDenied"),
            Self::AuthorizationHeaderMalformed(_) => (StatusCode::BAD_REQUEST, "AuthorizationHeaderMalformed"),
            Self::AuthorizationQueryParametersError(_) => {
                (StatusCode::BAD_REQUEST, "AuthorizationQueryParametersError")
            }
            Self::InvalidArgument(_) => (StatusCode::BAD_REQUEST, "InvalidArgument"),
            Self::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "InvalidRequest"),
            Self::MissingContentLength => (StatusCode::LENGTH_REQUIRED, "MissingContentLength"),
            Self::XAmzContentSHA256Mismatch { .. } => (StatusCode::BAD_REQUEST, "XAmzContentSHA256Mismatch"),
            Self::IncompleteBody(_) => (StatusCode::BAD_REQUEST, "IncompleteBody"),
            Self::InvalidChunkedBody(_) => (StatusCode::BAD_REQUEST, "InvalidRequest"),
            Self::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            Self::RequestHeaderSectionTooLarge(_) => (StatusCode::BAD_REQUEST, "RequestHeaderSectionTooLarge"),
            Self::UriTooLong => (StatusCode::URI_TOO_LONG, "RequestURITooLong"),
            Self::InvalidUri => (StatusCode::BAD_REQUEST, "InvalidURI"),
            // The client's input, so a 4xx (not 505).
            Self::HttpVersionNotSupported => (StatusCode::BAD_REQUEST, "HttpVersionNotSupported"),
            Self::OriginUnreachable(_) => (StatusCode::BAD_GATEWAY, "BadGateway"),
            Self::OriginTimeout(_) => (StatusCode::GATEWAY_TIMEOUT, "GatewayTimeout"),
            Self::OriginRefused(_) => (StatusCode::BAD_GATEWAY, "BadGateway"),
            Self::RequestTimeout => (StatusCode::BAD_REQUEST, "RequestTimeout"),
            Self::InvalidBucketName(_) => (StatusCode::BAD_REQUEST, "InvalidBucketName"),
            Self::HostNotAllowed(_) => (StatusCode::BAD_REQUEST, "InvalidRequest"),
            Self::MalformedXML(_) => (StatusCode::BAD_REQUEST, "MalformedXML"),
            Self::BadDigest => (StatusCode::BAD_REQUEST, "BadDigest"),
            Self::CorsForbidden(_) => (StatusCode::FORBIDDEN, "AccessForbidden"),
            Self::InvalidPolicyDocument(_) => (StatusCode::BAD_REQUEST, "InvalidPolicyDocument"),
            Self::EntityTooLarge => (StatusCode::BAD_REQUEST, "EntityTooLarge"),
            Self::EntityTooSmall => (StatusCode::BAD_REQUEST, "EntityTooSmall"),
            Self::MalformedPOSTRequest(_) => (StatusCode::BAD_REQUEST, "MalformedPOSTRequest"),
            Self::MaxPostPreDataLengthExceeded => (StatusCode::BAD_REQUEST, "MaxPostPreDataLengthExceeded"),
        }
    }

    pub fn message(&self) -> Cow<'_, str> {
        match self {
            Self::SignatureDoesNotMatch { .. } => {
                "The request signature we calculated does not match the signature you provided. Check your key and signing method.".into()
            }
            Self::InvalidAccessKeyId(_) => "The AWS Access Key Id you provided does not exist in our records.".into(),
            Self::RequestTimeTooSkewed { .. } => {
                "The difference between the request time and the current time is too large.".into()
            }
            Self::HeadersNotSigned(_) => "There were headers present in the request which were not signed".into(),
            Self::MissingContentLength => "You must provide the Content-Length HTTP header.".into(),
            Self::UriTooLong => "The request target is longer than this proxy's limit of 8 KiB.".into(),
            Self::InvalidUri => "Couldn't parse the specified URI.".into(),
            Self::HttpVersionNotSupported => "This endpoint speaks HTTP/1.1 only.".into(),
            Self::RequestTimeout => {
                "Your socket connection to the server was not read from or written to within the timeout period.".into()
            }
            Self::XAmzContentSHA256Mismatch { .. } => {
                "The provided 'x-amz-content-sha256' header does not match what was computed.".into()
            }
            Self::InvalidBucketName(_) => "The specified bucket is not valid.".into(),
            Self::HostNotAllowed(_) => "The request was signed for a host this endpoint does not serve.".into(),
            Self::BadDigest => "The Content-MD5 you specified did not match what we received.".into(),
            Self::EntityTooLarge => "Your proposed upload exceeds the maximum allowed size".into(),
            Self::EntityTooSmall => "Your proposed upload is smaller than the minimum allowed size".into(),
            Self::MaxPostPreDataLengthExceeded => {
                "Your POST request fields preceeding the upload file was too large.".into()
            }
            Self::AccessDenied(m)
            | Self::AuthorizationHeaderMalformed(m)
            | Self::AuthorizationQueryParametersError(m)
            | Self::InvalidArgument(m)
            | Self::InvalidRequest(m)
            | Self::IncompleteBody(m)
            | Self::InvalidChunkedBody(m)
            | Self::ChunkSignatureDoesNotMatch(m)
            | Self::MethodNotAllowed(m)
            | Self::RequestHeaderSectionTooLarge(m)
            | Self::OriginUnreachable(m)
            | Self::OriginTimeout(m)
            | Self::OriginRefused(m)
            | Self::MalformedXML(m)
            | Self::CorsForbidden(m)
            | Self::InvalidPolicyDocument(m)
            | Self::MalformedPOSTRequest(m) => Cow::Borrowed(m),
        }
    }

    /// Extra elements after `<Message>`, as S3 sends them.
    fn write_details(&self, out: &mut String) {
        match self {
            Self::SignatureDoesNotMatch { access_key, signature_provided, string_to_sign, canonical_request } => {
                element(out, "AWSAccessKeyId", access_key);
                let sts = truncated(string_to_sign);
                element(out, "StringToSign", &sts);
                element(out, "SignatureProvided", signature_provided);
                element(out, "StringToSignBytes", &spaced_hex(head(string_to_sign).as_bytes()));
                if let Some(c) = canonical_request {
                    element(out, "CanonicalRequest", &truncated(c));
                    element(out, "CanonicalRequestBytes", &spaced_hex(head(c).as_bytes()));
                }
            }
            Self::InvalidAccessKeyId(ak) => element(out, "AWSAccessKeyId", ak),
            Self::RequestTimeTooSkewed { request_time, server_time, max_skew_secs } => {
                element(out, "RequestTime", request_time);
                element(out, "ServerTime", server_time);
                element(out, "MaxAllowedSkewMilliseconds", &(max_skew_secs * 1000).to_string());
            }
            Self::HeadersNotSigned(h) => element(out, "HeadersNotSigned", h),
            Self::InvalidBucketName(b) => element(out, "BucketName", b),
            Self::HostNotAllowed(h) => element(out, "Host", h),
            Self::XAmzContentSHA256Mismatch { client_computed, s3_computed } => {
                element(out, "ClientComputedContentSHA256", client_computed);
                element(out, "S3ComputedContentSHA256", s3_computed);
            }
            Self::AccessDenied(_)
            | Self::AuthorizationHeaderMalformed(_)
            | Self::AuthorizationQueryParametersError(_)
            | Self::InvalidArgument(_)
            | Self::InvalidRequest(_)
            | Self::MissingContentLength
            | Self::IncompleteBody(_)
            | Self::InvalidChunkedBody(_)
            | Self::ChunkSignatureDoesNotMatch(_)
            | Self::MethodNotAllowed(_)
            | Self::RequestHeaderSectionTooLarge(_)
            | Self::UriTooLong
            | Self::InvalidUri
            | Self::HttpVersionNotSupported
            | Self::OriginUnreachable(_)
            | Self::OriginTimeout(_)
            | Self::OriginRefused(_)
            | Self::MalformedXML(_)
            | Self::BadDigest
            | Self::CorsForbidden(_)
            | Self::InvalidPolicyDocument(_)
            | Self::EntityTooLarge
            | Self::EntityTooSmall
            | Self::MalformedPOSTRequest(_)
            | Self::MaxPostPreDataLengthExceeded
            | Self::RequestTimeout => {}
        }
    }

    pub fn to_xml(&self, request_id: &str) -> String {
        let (_, code) = self.status_and_code();
        let mut out = String::with_capacity(256);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>");
        element(&mut out, "Code", code);
        element(&mut out, "Message", &self.message());
        self.write_details(&mut out);
        element(&mut out, "RequestId", request_id);
        out.push_str("</Error>");
        out
    }

    /// The S3 error response. A HEAD gets the status and headers only.
    pub fn into_response(self, request_id: &str, head: bool) -> Response {
        let (status, code) = self.status_and_code();
        let xml = self.to_xml(request_id);
        let mut resp = Response::new(if head { Body::empty() } else { Body::from(xml) });
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/xml"));
        if let Ok(v) = HeaderValue::from_str(request_id) {
            h.insert("x-amz-request-id", v);
        }
        h.insert("x-amz-error-code", HeaderValue::from_static(code));
        // An origin that is down or slow may be back in a moment (or another
        // instance's may be up): say when a retry makes sense. Not for
        // OriginRefused, which needs a configuration change.
        if matches!(self, Self::OriginUnreachable(_) | Self::OriginTimeout(_)) {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (status, code) = self.status_and_code();
        write!(f, "{} {code}: {}", status.as_u16(), self.message())
    }
}

impl std::error::Error for Error {}

impl From<&crate::chunked::ChunkError> for Error {
    fn from(e: &crate::chunked::ChunkError) -> Self {
        use crate::chunked::ChunkError as C;
        let msg = e.to_string();
        match e {
            C::BadChunkSignature { .. } | C::BadTrailerSignature | C::MissingTrailerSignature => {
                Self::ChunkSignatureDoesNotMatch(msg.into())
            }
            C::DecodedLengthMismatch { .. } | C::UnexpectedEof | C::Upstream(_) => Self::IncompleteBody(msg.into()),
            C::BadChunkHeader
            | C::BadChunkTerminator
            | C::ChunkTooLarge { .. }
            | C::HeaderLineTooLong
            | C::TrailerTooLarge
            | C::BadTrailer
            | C::TrailingData
            | C::MissingChain => Self::InvalidChunkedBody(msg.into()),
        }
    }
}

fn element(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, "<{name}>");
    escape_into(out, value);
    let _ = write!(out, "</{name}>");
}

/// XML-escapes text. Newlines are kept as `&#10;` so a canonical request
/// survives XML parsers that normalize whitespace.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            c if (c as u32) < 0x20 && c != '\t' => {
                let _ = write!(out, "&#{};", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// The first [`MAX_ECHO`] bytes of `s` (cut on a char boundary).
fn head(s: &str) -> &str {
    if s.len() <= MAX_ECHO {
        return s;
    }
    let mut end = MAX_ECHO;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// [`head`], saying so when it cut something.
fn truncated(s: &str) -> Cow<'_, str> {
    let h = head(s);
    if h.len() == s.len() {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(format!("{h}\n[truncated by the proxy: {} of {} bytes shown]", h.len(), s.len()))
    }
}

fn spaced_hex(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() * 3);
    for (i, byte) in b.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_has_code_message_details_and_is_escaped() {
        let e = Error::SignatureDoesNotMatch {
            access_key: "AK".into(),
            signature_provided: "ab".into(),
            string_to_sign: "AWS4-HMAC-SHA256\n<x>&".into(),
            canonical_request: Some("GET\n/".into()),
        };
        let x = e.to_xml("RID");
        assert!(x.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SignatureDoesNotMatch</Code><Message>"
        ));
        assert!(x.contains("<StringToSign>AWS4-HMAC-SHA256&#10;&lt;x&gt;&amp;</StringToSign>"));
        assert!(x.contains("<CanonicalRequest>GET&#10;/</CanonicalRequest>"));
        assert!(x.ends_with("<RequestId>RID</RequestId></Error>"));
        assert_eq!(e.status_and_code(), (StatusCode::FORBIDDEN, "SignatureDoesNotMatch"));
    }

    #[test]
    fn echoed_canonical_request_is_bounded() {
        let huge = "x".repeat(1 << 20);
        let e = Error::SignatureDoesNotMatch {
            access_key: "AK".into(),
            signature_provided: "ab".into(),
            string_to_sign: huge.clone(),
            canonical_request: Some(huge),
        };
        let x = e.to_xml("RID");
        assert!(x.len() < 8 * MAX_ECHO + 2048, "error body of {} bytes", x.len());
        assert!(x.contains(&format!("[truncated by the proxy: {MAX_ECHO} of {} bytes shown]", 1 << 20)));
    }
}

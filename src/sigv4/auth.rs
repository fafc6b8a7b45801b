//! Parsers for the two places a SigV4 signature travels: the `Authorization`
//! header and the presigned query. Both borrow from their input.
//!
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-auth-using-authorization-header.html>
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html>

use super::date::AmzDate;
use super::encode::split_byte;
use super::scratch::SmallVec;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// `AK/YYYYMMDD/region/service/aws4_request`
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credential<'a> {
    pub access_key: &'a str,
    pub date: &'a str,
    pub region: &'a str,
    pub service: &'a str,
}

impl<'a> Credential<'a> {
    pub fn parse(s: &'a str) -> Result<Self, &'static str> {
        let mut it = split_byte(s, b'/');
        let (Some(ak), Some(date), Some(region), Some(service), Some(term), None) =
            (it.next(), it.next(), it.next(), it.next(), it.next(), it.next())
        else {
            return Err("the Credential must have the form AccessKeyId/YYYYMMDD/region/s3/aws4_request");
        };
        if ak.is_empty() {
            return Err("the Credential has an empty access key");
        }
        if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return Err("the Credential's date must be YYYYMMDD");
        }
        if region.is_empty() {
            return Err("the Credential has an empty region");
        }
        if term != "aws4_request" {
            return Err("the Credential must end with aws4_request");
        }
        Ok(Self { access_key: ak, date, region, service })
    }

    /// `YYYYMMDD/region/service/aws4_request`
    pub fn scope(&self) -> String {
        let mut s = String::with_capacity(self.scope_len());
        self.push_scope(&mut s);
        s
    }

    pub(crate) fn scope_len(&self) -> usize {
        self.date.len() + self.region.len() + self.service.len() + 15
    }

    pub(crate) fn push_scope(&self, out: &mut String) {
        push_scope(out, self.date, self.region, self.service);
    }
}

/// Appends `date/region/service/aws4_request`.
pub(crate) fn push_scope(out: &mut String, date: &str, region: &str, service: &str) {
    for part in [date, "/", region, "/", service, "/aws4_request"] {
        out.push_str(part);
    }
}

/// A parsed `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationV4<'a> {
    pub credential: Credential<'a>,
    pub signed_headers: SignedHeaders<'a>,
    pub signature: &'a str,
}

impl<'a> AuthorizationV4<'a> {
    /// Components may be separated by `,` or `, ` (the S3 docs print the former,
    /// the SDKs send the latter).
    pub fn parse(header: &'a str) -> Result<Self, &'static str> {
        let rest = header
            .strip_prefix(ALGORITHM)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or("the authorization header must start with AWS4-HMAC-SHA256")?;
        let (mut cred, mut sh, mut sig) = (None, None, None);
        for part in split_byte(rest, b',') {
            let part = trim_sp_tab(part);
            let eq = super::encode::find_byte(part.as_bytes(), b'=').ok_or("an authorization component lacks '='")?;
            // '=' is ASCII: both sides are on char boundaries.
            let (k, v) = (&part[..eq], &part[eq + 1..]);
            let slot = match k {
                "Credential" => &mut cred,
                "SignedHeaders" => &mut sh,
                "Signature" => &mut sig,
                _ => return Err("the authorization header has an unknown component"),
            };
            if slot.replace(v).is_some() {
                return Err("the authorization header repeats a component");
            }
        }
        let credential = Credential::parse(cred.ok_or("the authorization header lacks Credential")?)?;
        let signed_headers = SignedHeaders::parse(sh.ok_or("the authorization header lacks SignedHeaders")?)?;
        let signature = check_signature(sig.ok_or("the authorization header lacks Signature")?)?;
        Ok(Self { credential, signed_headers, signature })
    }
}

/// `s.trim_matches([' ', '\t'])`
fn trim_sp_tab(s: &str) -> &str {
    let b = s.as_bytes();
    let start = b.iter().position(|&c| c != b' ' && c != b'\t').unwrap_or(b.len());
    let end = b.iter().rposition(|&c| c != b' ' && c != b'\t').map_or(start, |e| e + 1);
    // Both ends are next to ASCII bytes, so on char boundaries.
    s.get(start..end).unwrap_or("")
}

fn check_signature(s: &str) -> Result<&str, &'static str> {
    if super::encode::unhex32(s.as_bytes()).is_some() { Ok(s) } else { Err("the Signature must be 64 hex digits") }
}

const BAD_SIGNED_HEADERS: &str = "SignedHeaders must list lower-case header names separated by ';'";
const UNSORTED_SIGNED_HEADERS: &str = "SignedHeaders must be sorted, each name once";
const TOO_MANY_SIGNED_HEADERS: &str = "SignedHeaders lists more than 100 headers";

/// The most names a SignedHeaders list may hold: as many as a request may
/// have headers. Bounds the canonical request built from it.
pub const MAX_SIGNED_HEADERS: usize = 100;

/// The bytes of a lower-case header name (RFC 9110 `tchar`, without upper case).
const NAME_BYTE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_lowercase()
            || c.is_ascii_digit()
            || matches!(
                c,
                b'-' | b'_' | b'.' | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'^' | b'`' | b'|' | b'~'
            );
        b += 1;
    }
    t
};

/// The classes of [`LIST_BYTE_CLASS`]: a name byte is 0.
const BAD: u8 = 1;
const SEP: u8 = 2;

/// [`SEP`] for `;`, 0 for a [`NAME_BYTE`], [`BAD`] for any other byte.
const LIST_BYTE_CLASS: [u8; 256] = {
    let mut t = [BAD; 256];
    let mut b = 0;
    while b < 256 {
        if NAME_BYTE[b] {
            t[b] = 0;
        }
        b += 1;
    }
    t[b';' as usize] = SEP;
    t
};

/// `host;x-amz-content-sha256;x-amz-date`: lower-case names separated by `;`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedHeaders<'a>(&'a str);

impl<'a> SignedHeaders<'a> {
    pub fn parse(s: &'a str) -> Result<Self, &'static str> {
        if s.is_empty() {
            return Err("SignedHeaders is empty");
        }
        // Names are non-empty runs of name bytes, separated by single ';'.
        // With the class of a ';' before the first byte and after the last.
        let (mut bad, mut prev) = (0u8, SEP);
        for &b in s.as_bytes() {
            let class = LIST_BYTE_CLASS[b as usize];
            bad |= (class & BAD) | (class & prev & SEP);
            prev = class;
        }
        bad |= prev & SEP;
        if bad != 0 {
            return Err(BAD_SIGNED_HEADERS);
        }
        // S3 refuses a list that is not sorted or repeats a name: each repeat
        // would add all of that header's values to the canonical request again.
        let mut count = 0usize;
        let mut prev: Option<&str> = None;
        for name in split_byte(s, b';') {
            count += 1;
            if count > MAX_SIGNED_HEADERS {
                return Err(TOO_MANY_SIGNED_HEADERS);
            }
            if prev.is_some_and(|p| p >= name) {
                return Err(UNSORTED_SIGNED_HEADERS);
            }
            prev = Some(name);
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &'a str {
        self.0
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        split_byte(self.0, b';')
    }

    pub fn contains(&self, name: &str) -> bool {
        self.iter().any(|n| n == name)
    }

    /// Names known to be valid (lower-case header names, sorted or not),
    /// joined with `;`: not checked again.
    pub(crate) fn from_valid(s: &'a str) -> Self {
        debug_assert_eq!(Self::parse(s), Ok(Self(s)));
        Self(s)
    }

    /// The names, split once.
    #[inline(always)]
    pub(crate) fn names(&self) -> SmallVec<&'a str, 16> {
        let mut names = SmallVec::new("");
        names.extend(self.iter());
        names
    }
}

/// The decoded `X-Amz-*` parameters of a presigned URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedV4<'a> {
    pub credential: Credential<'a>,
    pub date: AmzDate,
    pub expires: u32,
    pub signed_headers: SignedHeaders<'a>,
    pub signature: &'a str,
    /// `X-Amz-Content-Sha256`, when the URL carries one.
    pub content_sha256: Option<&'a str>,
}

impl<'a> PresignedV4<'a> {
    /// `get(name)` returns the decoded value of a query parameter.
    pub fn parse(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, &'static str> {
        let alg = get("X-Amz-Algorithm").ok_or("X-Amz-Algorithm is missing")?;
        if alg != ALGORITHM {
            return Err("X-Amz-Algorithm must be AWS4-HMAC-SHA256");
        }
        let credential = Credential::parse(get("X-Amz-Credential").ok_or("X-Amz-Credential is missing")?)?;
        let date = AmzDate::parse(get("X-Amz-Date").ok_or("X-Amz-Date is missing")?)
            .ok_or("X-Amz-Date must have the form YYYYMMDDTHHMMSSZ")?;
        let expires = get("X-Amz-Expires").ok_or("X-Amz-Expires is missing")?;
        let expires: u32 = super::number::parse_decimal(expires.as_bytes())
            .filter(|e| (1..=604_800).contains(e))
            .map(|e| e as u32)
            .ok_or("X-Amz-Expires must be a number of seconds between 1 and 604800")?;
        let signed_headers = SignedHeaders::parse(get("X-Amz-SignedHeaders").ok_or("X-Amz-SignedHeaders is missing")?)?;
        let signature = check_signature(get("X-Amz-Signature").ok_or("X-Amz-Signature is missing")?)?;
        Ok(Self { credential, date, expires, signed_headers, signature, content_sha256: get("X-Amz-Content-Sha256") })
    }
}

/// Query parameters that carry a presigned URL's authentication; never forwarded.
pub const PRESIGNED_AUTH_PARAMS: [&str; 7] = [
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

    #[test]
    fn parses_with_and_without_spaces() {
        let a = AuthorizationV4::parse(H).unwrap();
        assert_eq!(a.credential.access_key, "AKIDEXAMPLE");
        assert_eq!(a.credential.region, "us-east-1");
        assert_eq!(a.credential.scope(), "20150830/us-east-1/s3/aws4_request");
        assert_eq!(a.signed_headers.as_str(), "host;x-amz-date");
        let compact = H.replace(", ", ",");
        let b = AuthorizationV4::parse(&compact).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn rejects_malformed_headers() {
        for bad in [
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/s3/aws4_request, SignedHeaders=host",
            "AWS4-HMAC-SHA256 Credential=AK/2015083/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/s3, SignedHeaders=host, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/s3/aws4_request, SignedHeaders=Host, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ] {
            assert!(AuthorizationV4::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signed_headers_syntax() {
        for ok in ["host", "host;x-amz-date", "a;b;c", "x-!#$%&'*+.^_`|~0", "a;a-b;b"] {
            let sh = SignedHeaders::parse(ok).unwrap();
            assert_eq!(sh.iter().collect::<Vec<_>>(), ok.split(';').collect::<Vec<_>>());
            assert_eq!(sh.names().as_slice(), ok.split(';').collect::<Vec<_>>());
        }
        for bad in ["", ";", "host;", ";host", "host;;x", "Host", "ho st", "a:b", "a,b", "é"] {
            assert!(SignedHeaders::parse(bad).is_err(), "{bad}");
        }
        // Unsorted or repeated: refused, as S3 does.
        for bad in ["x-amz-date;host", "host;host", "a;b;a", "b;a", "a;a"] {
            assert_eq!(SignedHeaders::parse(bad), Err(UNSORTED_SIGNED_HEADERS), "{bad}");
        }
        let many: Vec<String> = (0..=MAX_SIGNED_HEADERS).map(|i| format!("h{i:03}")).collect();
        assert_eq!(SignedHeaders::parse(&many.join(";")), Err(TOO_MANY_SIGNED_HEADERS));
        assert!(SignedHeaders::parse(&many[..MAX_SIGNED_HEADERS].join(";")).is_ok());
        assert_eq!(trim_sp_tab(" \t a b\t "), "a b");
        assert_eq!(trim_sp_tab(" \t "), "");
    }
}

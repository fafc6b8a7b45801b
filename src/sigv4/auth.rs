//! Parsers for the two places a SigV4 signature travels: the `Authorization`
//! header and the presigned query. Both borrow from their input.
//!
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-auth-using-authorization-header.html>
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-query-string-auth.html>

use super::date::AmzDate;

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
        let mut it = s.split('/');
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
        format!("{}/{}/{}/aws4_request", self.date, self.region, self.service)
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
        for part in rest.split(',') {
            let part = part.trim_matches(|c| c == ' ' || c == '\t');
            let (k, v) = part.split_once('=').ok_or("an authorization component lacks '='")?;
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

fn check_signature(s: &str) -> Result<&str, &'static str> {
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s)
    } else {
        Err("the Signature must be 64 hex digits")
    }
}

/// `host;x-amz-content-sha256;x-amz-date`: lower-case names separated by `;`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedHeaders<'a>(&'a str);

impl<'a> SignedHeaders<'a> {
    pub fn parse(s: &'a str) -> Result<Self, &'static str> {
        if s.is_empty() {
            return Err("SignedHeaders is empty");
        }
        for name in s.split(';') {
            let ok = !name.is_empty()
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || matches!(
                            b,
                            b'-' | b'_'
                                | b'.'
                                | b'!'
                                | b'#'
                                | b'$'
                                | b'%'
                                | b'&'
                                | b'\''
                                | b'*'
                                | b'+'
                                | b'^'
                                | b'`'
                                | b'|'
                                | b'~'
                        )
                });
            if !ok {
                return Err("SignedHeaders must list lower-case header names separated by ';'");
            }
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &'a str {
        self.0
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        self.0.split(';')
    }

    pub fn contains(&self, name: &str) -> bool {
        self.iter().any(|n| n == name)
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
        let expires: u32 = expires
            .parse()
            .ok()
            .filter(|e| (1..=604_800).contains(e))
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
}

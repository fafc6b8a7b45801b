//! POST policy (browser HTML form uploads), pure: no HTTP, no clock (`now`
//! is a parameter). Parses the base64 policy, checks its signature (SigV4:
//! hex HMAC-SHA256 of the base64 text with the derived key; SigV2: base64
//! HMAC-SHA1 with the secret), its expiration and every condition against the
//! form fields as S3 does, and builds the origin's own policy and signature.
//!
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html>
//! <https://docs.aws.amazon.com/AmazonS3/latest/userguide/HTTPPOSTForms.html>

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::Error;
use crate::sigv4::{AmzDate, Credential, KeyCache, auth::ALGORITHM};
use crate::verify::{ClientKeys, ClientSecret};

/// How long the origin's policy is valid.
pub const ORIGIN_POLICY_LIFETIME: time::Duration = time::Duration::minutes(15);

/// The form fields before the file part, as sent (names keep their case;
/// lookups ignore it, as S3's do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    /// Refuses a field given twice (in any case): which one S3 would read is
    /// not something a signature should depend on.
    pub fn new(fields: Vec<(String, String)>) -> Result<Self, Error> {
        for (i, (a, _)) in fields.iter().enumerate() {
            if fields[..i].iter().any(|(b, _)| a.eq_ignore_ascii_case(b)) {
                return Err(Error::InvalidArgument(format!("The form field \"{a}\" is given more than once.").into()));
            }
        }
        Ok(Self(fields))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

/// A parsed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub expiration: OffsetDateTime,
    pub conditions: Vec<Condition>,
}

/// One condition. Field names are lower case, without the `$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Eq { field: String, value: String },
    StartsWith { field: String, prefix: String },
    ContentLengthRange { min: u64, max: u64 },
}

impl Condition {
    /// As S3 prints it in "Policy Condition failed: …".
    fn describe(&self) -> String {
        let q = |s: &str| serde_json::Value::from(s).to_string();
        match self {
            Condition::Eq { field, value } => format!("[\"eq\", {}, {}]", q(&format!("${field}")), q(value)),
            Condition::StartsWith { field, prefix } => {
                format!("[\"starts-with\", {}, {}]", q(&format!("${field}")), q(prefix))
            }
            Condition::ContentLengthRange { min, max } => format!("[\"content-length-range\", {min}, {max}]"),
        }
    }
}

fn invalid_policy(msg: impl Into<String>) -> Error {
    Error::InvalidPolicyDocument(format!("Invalid Policy: {}", msg.into()).into())
}

fn violation(msg: impl std::fmt::Display) -> Error {
    Error::AccessDenied(format!("Invalid according to Policy: {msg}").into())
}

impl Policy {
    /// The base64 `policy` field → a policy, or 400 InvalidPolicyDocument.
    pub fn from_base64(b64: &str) -> Result<Self, Error> {
        let json = STANDARD.decode(b64.trim()).map_err(|_| invalid_policy("Invalid 'Policy' encoding."))?;
        Self::from_json(&json)
    }

    pub fn from_json(json: &[u8]) -> Result<Self, Error> {
        let doc: serde_json::Value = serde_json::from_slice(json).map_err(|_| invalid_policy("Invalid JSON."))?;
        let obj = doc.as_object().ok_or_else(|| invalid_policy("The policy is not a JSON object."))?;
        let expiration = match obj.get("expiration") {
            Some(serde_json::Value::String(s)) => OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
                invalid_policy("Invalid 'expiration' value: must be ISO 8601 (2007-12-01T12:00:00.000Z).")
            })?,
            Some(_) => return Err(invalid_policy("Invalid 'expiration' value: not a string.")),
            None => return Err(invalid_policy("Policy missing expiration.")),
        };
        let list = match obj.get("conditions") {
            Some(serde_json::Value::Array(list)) => list,
            Some(_) => return Err(invalid_policy("Invalid 'conditions' value: not a list.")),
            None => return Err(invalid_policy("Policy missing conditions.")),
        };
        let conditions = list.iter().map(parse_condition).collect::<Result<_, _>>()?;
        Ok(Self { expiration, conditions })
    }

    /// The tightest `content-length-range` (all of them hold), if any.
    pub fn content_length_range(&self) -> Option<(u64, u64)> {
        self.conditions.iter().fold(None, |acc, c| match (c, acc) {
            (Condition::ContentLengthRange { min, max }, None) => Some((*min, *max)),
            (Condition::ContentLengthRange { min, max }, Some((a, b))) => Some((a.max(*min), b.min(*max))),
            _ => acc,
        })
    }
}

fn parse_condition(c: &serde_json::Value) -> Result<Condition, Error> {
    use serde_json::Value;
    match c {
        Value::Object(m) => {
            if m.len() != 1 {
                return Err(invalid_policy(
                    "Invalid Simple-Condition: Simple-Conditions must have exactly one property specified.",
                ));
            }
            let (k, v) = m.iter().next().expect("one entry");
            let value =
                v.as_str().ok_or_else(|| invalid_policy("Invalid Simple-Condition: value must be a string."))?;
            Ok(Condition::Eq { field: k.to_ascii_lowercase(), value: value.to_owned() })
        }
        Value::Array(a) => {
            let op = a.first().and_then(Value::as_str).map(str::to_ascii_lowercase);
            match op.as_deref() {
                Some("content-length-range") => {
                    let n = |v: Option<&Value>| match v {
                        Some(Value::Number(n)) => n.as_u64(),
                        Some(Value::String(s)) => crate::sigv4::number::parse_decimal(s.as_bytes()),
                        _ => None,
                    };
                    match (a.len(), n(a.get(1)), n(a.get(2))) {
                        (3, Some(min), Some(max)) => Ok(Condition::ContentLengthRange { min, max }),
                        _ => Err(invalid_policy(
                            "Invalid content-length-range: it takes two non-negative integers, min and max.",
                        )),
                    }
                }
                Some(op @ ("eq" | "starts-with")) => {
                    let (Some(Value::String(f)), Some(Value::String(v)), 3) = (a.get(1), a.get(2), a.len()) else {
                        return Err(invalid_policy(format!(
                            "Invalid '{op}' condition: it takes [op, \"$field\", \"value\"]."
                        )));
                    };
                    let field = f
                        .strip_prefix('$')
                        .ok_or_else(|| {
                            invalid_policy(format!("Invalid '{op}' condition: the field must start with '$'."))
                        })?
                        .to_ascii_lowercase();
                    Ok(if op == "eq" {
                        Condition::Eq { field, value: v.clone() }
                    } else {
                        Condition::StartsWith { field, prefix: v.clone() }
                    })
                }
                _ => Err(invalid_policy("Invalid condition: unknown operation.")),
            }
        }
        _ => Err(invalid_policy("Invalid condition: neither an object nor a list.")),
    }
}

/// Fields that need no condition (S3's list; SigV2's own fields too).
pub fn is_exempt(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(n.as_str(), "x-amz-signature" | "signature" | "awsaccesskeyid" | "file" | "policy")
        || n.starts_with("x-ignore-")
}

/// How the form is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormAuth<'a> {
    V4 { credential: Credential<'a>, date: AmzDate, signature: &'a str, policy: &'a str },
    V2 { access_key: &'a str, signature: &'a str, policy: &'a str },
}

impl FormAuth<'_> {
    pub fn access_key(&self) -> &str {
        match self {
            FormAuth::V4 { credential, .. } => credential.access_key,
            FormAuth::V2 { access_key, .. } => access_key,
        }
    }
    pub fn policy(&self) -> &str {
        match self {
            FormAuth::V4 { policy, .. } | FormAuth::V2 { policy, .. } => policy,
        }
    }
}

/// Fields whose presence means the form claims a credential: such a form is
/// verified, never treated as anonymous.
const CREDENTIAL_FIELDS: [&str; 7] = [
    "policy",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-algorithm",
    "signature",
    "awsaccesskeyid",
    "x-amz-security-token",
];

fn must_contain(name: &str) -> Error {
    Error::InvalidArgument(
        format!("Bucket POST must contain a field named '{name}'.  If it is specified, please check the order of the fields.")
            .into(),
    )
}

/// The form's signature fields; None for a form that carries none (anonymous).
pub fn form_auth(f: &Fields) -> Result<Option<FormAuth<'_>>, Error> {
    if !CREDENTIAL_FIELDS.iter().any(|n| f.get(n).is_some()) {
        return Ok(None);
    }
    let need = |n: &'static str| f.get(n).ok_or_else(|| must_contain(n));
    if f.get("x-amz-signature").is_some() || f.get("x-amz-credential").is_some() || f.get("x-amz-algorithm").is_some() {
        let (algorithm, credential, date) = (need("x-amz-algorithm")?, need("x-amz-credential")?, need("x-amz-date")?);
        let (signature, policy) = (need("x-amz-signature")?, need("policy")?);
        if algorithm != ALGORITHM {
            return Err(Error::InvalidArgument("Only AWS4-HMAC-SHA256 is supported for x-amz-algorithm.".into()));
        }
        let credential = Credential::parse(credential)
            .map_err(|m| Error::InvalidArgument(format!("Invalid x-amz-credential: {m}.").into()))?;
        if credential.service != "s3" {
            return Err(Error::InvalidArgument("Invalid x-amz-credential: the service must be s3.".into()));
        }
        let date = AmzDate::parse(date)
            .ok_or_else(|| Error::InvalidArgument("Invalid x-amz-date: not YYYYMMDD'T'HHMMSS'Z'.".into()))?;
        if credential.date != date.date() {
            return Err(Error::InvalidArgument(
                "Invalid x-amz-credential: its date is not the date of x-amz-date.".into(),
            ));
        }
        return Ok(Some(FormAuth::V4 { credential, date, signature, policy }));
    }
    let (access_key, signature, policy) = (need("AWSAccessKeyId")?, need("signature")?, need("policy")?);
    Ok(Some(FormAuth::V2 { access_key, signature, policy }))
}

/// Checks the form's signature with the key's secrets (the current one,
/// then the previous one in its window), in constant time. Ok: the access
/// key that signed.
pub fn verify_signature(auth: &FormAuth<'_>, keys: &dyn ClientKeys, now: OffsetDateTime) -> Result<(), Error> {
    let ak = auth.access_key();
    let secrets = keys.secrets(ak, now).ok_or_else(|| Error::InvalidAccessKeyId(ak.to_owned()))?;
    let each = || std::iter::once(secrets.current).chain(secrets.previous);
    let policy = auth.policy().as_bytes();
    let ok = match *auth {
        FormAuth::V4 { credential, signature, .. } => each().any(|s: ClientSecret<'_>| {
            s.keys.with_prepared(credential.date, credential.region, |k| k.verify_hex(policy, signature))
        }),
        FormAuth::V2 { signature, .. } => {
            let provided = STANDARD.decode(signature.trim()).ok().filter(|p| p.len() == 20);
            each().any(|s| provided.as_ref().is_some_and(|p| bool::from(v2_signature(s.secret, policy).ct_eq(&p[..]))))
        }
    };
    if ok {
        Ok(())
    } else {
        Err(Error::SignatureDoesNotMatch {
            access_key: ak.to_owned(),
            signature_provided: match *auth {
                FormAuth::V4 { signature, .. } | FormAuth::V2 { signature, .. } => signature.to_owned(),
            },
            string_to_sign: auth.policy().to_owned(),
            canonical_request: None,
        })
    }
}

fn v2_signature(secret: &[u8], policy: &[u8]) -> [u8; 20] {
    let mut m = <Hmac<Sha1> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    m.update(policy);
    m.finalize().into_bytes().into()
}

/// The key the object is stored under: the `key` field with `${filename}`
/// replaced by the file part's file name.
pub fn object_key(f: &Fields, filename: Option<&str>) -> Result<String, Error> {
    let key = f.get("key").ok_or_else(|| must_contain("key"))?;
    let key = key.replace("${filename}", filename.unwrap_or(""));
    if key.is_empty() {
        return Err(Error::InvalidArgument("User key must have a length greater than 0.".into()));
    }
    Ok(key)
}

/// Expiration, every condition, and S3's rule that every field but the
/// exempt ones is named by a condition. `bucket` is the request's bucket;
/// `key` the object key (`${filename}` substituted). The file's length is
/// checked with [`check_length`] as it streams.
pub fn check(policy: &Policy, f: &Fields, bucket: &str, key: &str, now: OffsetDateTime) -> Result<(), Error> {
    if now >= policy.expiration {
        return Err(violation("Policy expired."));
    }
    if let Some(b) = f.get("bucket").filter(|b| *b != bucket) {
        return Err(violation(format!("The bucket field \"{b}\" is not the bucket the form is posted to.")));
    }
    let value = |field: &str| -> String {
        match field {
            "bucket" => bucket.to_owned(),
            "key" => key.to_owned(),
            _ => f.get(field).unwrap_or("").to_owned(),
        }
    };
    for c in &policy.conditions {
        let holds = match c {
            Condition::Eq { field, value: want } => value(field) == *want,
            Condition::StartsWith { field, prefix } if field == "content-type" => {
                // A list of types: each must match (S3's rule for Content-Type).
                value(field).split(',').all(|t| t.trim_start().starts_with(prefix.as_str()))
            }
            Condition::StartsWith { field, prefix } => value(field).starts_with(prefix.as_str()),
            Condition::ContentLengthRange { .. } => true,
        };
        if !holds {
            return Err(violation(format!("Policy Condition failed: {}", c.describe())));
        }
    }
    let named = |n: &str| {
        policy.conditions.iter().any(|c| match c {
            Condition::Eq { field, .. } | Condition::StartsWith { field, .. } => field.eq_ignore_ascii_case(n),
            Condition::ContentLengthRange { .. } => false,
        })
    };
    for (name, _) in f.iter() {
        if !is_exempt(name) && !named(name) {
            return Err(violation(format!("Extra input fields: {}", name.to_ascii_lowercase())));
        }
    }
    Ok(())
}

/// The file's length against `content-length-range` (inclusive). `done`:
/// the file has ended, so a short file is refused too.
pub fn check_length(range: Option<(u64, u64)>, len: u64, done: bool) -> Result<(), Error> {
    match range {
        Some((_, max)) if len > max => Err(Error::EntityTooLarge),
        Some((min, _)) if done && len < min => Err(Error::EntityTooSmall),
        _ => Ok(()),
    }
}

/// Fields the proxy replaces or drops rather than forwards.
fn is_replaced(name: &str) -> bool {
    is_exempt(name)
        || matches!(
            name,
            "key"
                | "bucket"
                | "x-amz-algorithm"
                | "x-amz-credential"
                | "x-amz-date"
                | "x-amz-security-token"
                | "success_action_status"
                | "success_action_redirect"
                | "redirect"
                | "submit"
        )
}

/// The origin's signing material.
pub struct OriginKey<'a> {
    pub access_key: &'a str,
    pub keys: &'a KeyCache,
    pub region: &'a str,
    /// The session token of temporary origin credentials.
    pub token: Option<&'a str>,
}

/// The fields toward the origin, in order: `key`, the client's other
/// fields (names in lower case) but the ones the proxy replaces,
/// `success_action_status` 201 (its XML body carries the ETag the client's
/// answer needs), the origin's credential fields, a new `policy` (expires
/// `now` + 15 min; an `eq` for every field sent) and its SigV4 signature.
pub fn origin_fields(
    f: &Fields,
    bucket: &str,
    key: &str,
    origin: &OriginKey<'_>,
    now: OffsetDateTime,
) -> Vec<(String, String)> {
    let date = AmzDate::from_datetime(now);
    let mut out: Vec<(String, String)> = vec![("key".into(), key.into())];
    for (n, v) in f.iter() {
        let n = n.to_ascii_lowercase();
        if !is_replaced(&n) {
            out.push((n, v.to_owned()));
        }
    }
    out.push(("success_action_status".into(), "201".into()));
    out.push(("x-amz-algorithm".into(), ALGORITHM.into()));
    let credential = format!("{}/{}/{}/s3/aws4_request", origin.access_key, date.date(), origin.region);
    out.push(("x-amz-credential".into(), credential));
    out.push(("x-amz-date".into(), date.as_str().into()));
    if let Some(t) = origin.token {
        out.push(("x-amz-security-token".into(), t.into()));
    }
    let mut conditions = vec![serde_json::json!({ "bucket": bucket })];
    conditions.extend(out.iter().map(|(n, v)| serde_json::json!(["eq", format!("${n}"), v])));
    let expiration = (now + ORIGIN_POLICY_LIFETIME).replace_nanosecond(0).unwrap_or(now);
    let expiration = expiration.format(&Rfc3339).unwrap_or_default();
    let policy = serde_json::json!({ "expiration": expiration, "conditions": conditions }).to_string();
    let policy = STANDARD.encode(policy);
    let signature = origin.keys.with_prepared(date.date(), origin.region, |k| hex::encode(k.sign(policy.as_bytes())));
    out.push(("policy".into(), policy));
    out.push(("x-amz-signature".into(), signature));
    out
}

#[cfg(test)]
mod tests;

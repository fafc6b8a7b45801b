//! Requests with no credentials at all (ANONYMOUS_ACCESS, or an ACCESS_FILE
//! bucket's `anonymous`).
//!
//! `deny` (the default) refuses them, as before. `forward` sends them to the
//! origin **unsigned**: no origin signature, no session token, so the origin
//! applies its own public ACLs, bucket policies and bucket CORS, and nobody
//! gains a right the origin does not give to everyone. A request that carries
//! any credential (an `Authorization` header, a SigV4 or SigV2 query
//! signature) is verified as always; a bad one is never downgraded to
//! anonymous. [`AnonymousRequest`] is the proof the forwarder requires for an
//! unsigned request, as `VerifiedRequest` is for a signed one.

use serde::Deserialize;

use crate::addressing::SignedHost;
use crate::config::ConfigError;
use crate::sigv4::encode::canonical_uri_into;

/// What becomes of a request with no credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnonymousAccess {
    /// Refused: 403 AccessDenied, nothing forwarded.
    #[default]
    Deny,
    /// Forwarded unsigned.
    Forward,
}

impl AnonymousAccess {
    /// `deny` (or nothing) or `forward`; `what` names the setting in errors.
    pub fn parse(text: &str, what: &str) -> Result<Self, ConfigError> {
        match text.trim() {
            "" | "deny" => Ok(Self::Deny),
            "forward" => Ok(Self::Forward),
            _ => Err(ConfigError(format!("invalid {what}: must be deny or forward"))),
        }
    }
}

/// A request with no credentials, admitted to go to the origin unsigned: its
/// path (canonical: decoded once, encoded once, as for a signed request), its
/// query as sent, and its bucket. Only [`admit`] makes one.
#[derive(Debug, Clone)]
pub struct AnonymousRequest {
    canonical_uri: String,
    query: String,
    bucket: Option<Box<str>>,
}

impl AnonymousRequest {
    pub fn canonical_uri(&self) -> &str {
        &self.canonical_uri
    }
    /// The query as the client sent it, forwarded byte for byte.
    pub fn query(&self) -> &str {
        &self.query
    }
    /// Forward no query (a preflight for a presigned URL carries that URL's).
    pub(crate) fn drop_query(&mut self) {
        self.query.clear();
    }
    /// The bucket of a virtual-hosted request (its signed host names it).
    pub fn host_bucket(&self) -> Option<&str> {
        self.bucket.as_deref()
    }
    /// The bucket the request names: its host's, else its path's first segment.
    pub fn bucket(&self) -> Option<&str> {
        self.bucket.as_deref().or_else(|| crate::addressing::path_bucket(&self.canonical_uri))
    }
}

/// What becomes of a request without credentials for `bucket`: its ACCESS_FILE
/// entry's `anonymous`, else ANONYMOUS_ACCESS (`default`).
pub fn policy_for(access: &crate::access::Access, default: AnonymousAccess, bucket: Option<&str>) -> AnonymousAccess {
    access.bucket_entry(bucket).and_then(|e| e.anonymous).unwrap_or(default)
}

/// Admits a request that has no credentials (the caller checked
/// `verify::has_auth`) for forwarding unsigned, when `policy` (given the
/// request's bucket) says so.
pub fn admit(
    uri: &http::Uri,
    host: &SignedHost<'_>,
    policy: impl FnOnce(Option<&str>) -> AnonymousAccess,
) -> Option<AnonymousRequest> {
    let mut canonical_uri = String::with_capacity(uri.path().len() + 8);
    canonical_uri_into(&mut canonical_uri, uri.path());
    let a = AnonymousRequest {
        canonical_uri,
        query: uri.query().unwrap_or("").to_owned(),
        bucket: host.bucket().map(Box::from),
    };
    (policy(a.bucket()) == AnonymousAccess::Forward).then_some(a)
}

//! Who may sign, what each key may do, and where each bucket lives: the
//! client keys, their rules, the origins and the bucket routes.
//!
//! CLIENT_ACCESS_KEY/CLIENT_SECRET_KEY and ORIGIN_* are the simple case: one
//! key with no rules, one origin. ACCESS_FILE (TOML) adds `[[origins]]`,
//! `[[buckets]]` (a name or glob → an origin) and `[[keys]]` (a secret, an
//! optional previous secret with its expiry, `allow`/`deny` rules; see
//! [`crate::authz`]); the env key and origin, when set, are one more entry each.
//!
//! The whole thing is one immutable [`Access`] snapshot behind an
//! [`AccessStore`]: a request takes the snapshot once, when it starts, and
//! keeps it to the end, so a reload (SIGHUP, the file changing) never changes
//! the rules under a request in flight. A file that does not load is refused
//! whole, with one log line naming the problem, and the snapshot stays.
//! Nothing here ever prints a secret: not the values, not the offending line
//! of a broken file.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::HeaderValue;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::addressing::OriginStyle;
use crate::authz::{RuleSpec, Rules};
use crate::config::{ConfigError, Origin, Secret, bad, parse_origin};
use crate::resign::Signer;
use crate::sigv4::KeyCache;
use crate::verify::{ClientKeys, ClientSecret, Secrets};

/// An origin: where requests for its buckets go, and the key they are signed with.
pub struct OriginEntry {
    /// `env` for ORIGIN_*, else the file's name.
    pub name: String,
    pub origin: Origin,
    pub style: OriginStyle,
    pub access_key: String,
    pub keys: KeyCache,
    pub region: String,
    /// The session token of temporary credentials, as a sensitive header value.
    pub token: Option<HeaderValue>,
    /// What `/healthz` probes (HEAD, signed).
    pub healthcheck_path: String,
}

impl fmt::Debug for OriginEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OriginEntry")
            .field("name", &self.name)
            .field("origin", &format_args!("{}://{}", self.origin.scheme(), self.origin.authority()))
            .field("style", &self.style)
            .field("access_key", &self.access_key)
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

impl OriginEntry {
    pub fn signer(&self) -> Signer<'_> {
        Signer {
            origin: &self.origin,
            style: self.style,
            access_key: &self.access_key,
            keys: &self.keys,
            region: &self.region,
            session_token: self.token.as_ref(),
        }
    }
}

/// A client key: its secret (and a previous one during a rotation), its rules.
pub struct ClientKey {
    secret: Secret,
    keys: KeyCache,
    previous: Option<PreviousSecret>,
    /// None: no rules, the key may do everything (the single-key case).
    rules: Option<Rules>,
}

struct PreviousSecret {
    secret: Secret,
    keys: KeyCache,
    /// Accepted until then (wall clock), refused after.
    expires: OffsetDateTime,
}

impl ClientKey {
    pub fn rules(&self) -> Option<&Rules> {
        self.rules.as_ref()
    }
}

/// One configuration: keys, origins, routes. Immutable; replaced whole.
pub struct Access {
    keys: HashMap<String, ClientKey>,
    origins: Vec<Arc<OriginEntry>>,
    /// Bucket entries, in file order: the first that matches decides.
    routes: Vec<BucketEntry>,
    default: usize,
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Access")
            .field("keys", &self.keys.len())
            .field("origins", &self.origins)
            .field("routes", &self.routes.len())
            .field("default", &self.origins[self.default].name)
            .finish()
    }
}

impl ClientKeys for Access {
    fn secrets(&self, access_key: &str, now: OffsetDateTime) -> Option<Secrets<'_>> {
        let k = self.keys.get(access_key)?;
        let previous = k
            .previous
            .as_ref()
            .filter(|p| now < p.expires)
            .map(|p| ClientSecret { secret: p.secret.expose().as_bytes(), keys: &p.keys });
        Some(Secrets { current: ClientSecret { secret: k.secret.expose().as_bytes(), keys: &k.keys }, previous })
    }
}

impl Access {
    pub fn key(&self, access_key: &str) -> Option<&ClientKey> {
        self.keys.get(access_key)
    }

    /// Every origin; the default one is [`Access::default_origin`].
    pub fn origins(&self) -> &[Arc<OriginEntry>] {
        &self.origins
    }

    pub fn default_origin(&self) -> &Arc<OriginEntry> {
        &self.origins[self.default]
    }

    /// The origin `bucket` lives on: the first route that matches, else the
    /// default origin (also for requests with no bucket).
    pub fn origin_for(&self, bucket: Option<&str>) -> &Arc<OriginEntry> {
        let i = self.bucket_entry(bucket).map_or(self.default, |e| e.origin);
        &self.origins[i]
    }

    /// The first `[[buckets]]` entry that matches `bucket`.
    pub fn bucket_entry(&self, bucket: Option<&str>) -> Option<&BucketEntry> {
        let b = bucket?;
        self.routes.iter().find(|e| e.glob.matches(b))
    }
}

/// A `[[buckets]]` entry: the buckets it matches, their origin, and their own
/// anonymous-access and CORS settings (None: the env's).
#[derive(Debug)]
pub struct BucketEntry {
    glob: Glob,
    origin: usize,
    pub anonymous: Option<crate::anonymous::AnonymousAccess>,
    pub cors: Option<Arc<crate::cors::CorsPolicy>>,
}

/// A bucket name or a glob (`*` any run of characters, `?` one).
#[derive(Debug, Clone)]
pub struct Glob(String);

impl Glob {
    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= 255
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.*?".contains(&b));
        if ok { Ok(Self(s.to_owned())) } else { Err(format!("bad bucket glob {s:?}: use a-z 0-9 . - and * ?")) }
    }

    pub fn matches(&self, name: &str) -> bool {
        glob_match(self.0.as_bytes(), name.as_bytes())
    }
}

/// Iterative wildcard match with one backtrack point: linear in practice,
/// never exponential.
fn glob_match(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == b'?' || c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// The env's key and origin (CLIENT_*, ORIGIN_*), validated by `Config`.
#[derive(Debug, Clone, Default)]
pub(crate) struct EnvAccess {
    pub(crate) client: Option<(String, Secret)>,
    pub(crate) origin: Option<EnvOrigin>,
}

#[derive(Debug, Clone)]
pub(crate) struct EnvOrigin {
    pub(crate) origin: Origin,
    pub(crate) style: OriginStyle,
    pub(crate) access_key: String,
    pub(crate) secret: Secret,
    pub(crate) region: String,
    pub(crate) token: Option<Secret>,
    pub(crate) healthcheck_path: String,
}

/// Why an access file was refused: one line naming the problem, never a
/// secret and never the text of the offending line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessError(pub String);

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AccessError {}

impl From<ConfigError> for AccessError {
    fn from(e: ConfigError) -> Self {
        Self(e.0)
    }
}

/// The current [`Access`], and how to build it again (a reload).
pub struct AccessStore {
    current: ArcSwap<Access>,
    file: Option<PathBuf>,
    env: EnvAccess,
    /// Where `*_env` names are looked up (the variables the config was made
    /// from), as secrets.
    vars: HashMap<String, Secret>,
    /// A reload is one at a time (SIGHUP and a file event may coincide).
    reloading: std::sync::Mutex<()>,
}

impl fmt::Debug for AccessStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessStore").field("file", &self.file).field("current", &*self.current.load()).finish()
    }
}

impl AccessStore {
    pub(crate) fn new(
        env: EnvAccess,
        file: Option<PathBuf>,
        vars: HashMap<String, Secret>,
    ) -> Result<Self, AccessError> {
        let access = build(&env, file.as_deref(), &vars)?;
        Ok(Self { current: ArcSwap::from_pointee(access), file, env, vars, reloading: Default::default() })
    }

    /// The configuration now: a request takes it once and keeps it.
    pub fn load(&self) -> Arc<Access> {
        self.current.load_full()
    }

    /// ACCESS_FILE, if set.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Reads ACCESS_FILE again. On success new requests use the new
    /// configuration; on an error nothing changes.
    pub fn reload(&self) -> Result<(), AccessError> {
        let _one = self.reloading.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let access = build(&self.env, self.file.as_deref(), &self.vars)?;
        self.current.store(Arc::new(access));
        Ok(())
    }

    /// [`AccessStore::reload`], logged: what SIGHUP and a file change run.
    pub fn reload_and_log(&self, trigger: &str) -> Result<(), AccessError> {
        let r = self.reload();
        match &r {
            Ok(()) => {
                let a = self.load();
                tracing::info!(trigger, keys = a.keys.len(), origins = a.origins.len(), "access file reloaded");
            }
            Err(e) => tracing::error!(trigger, error = %e, "access file refused; keeping the previous one"),
        }
        r
    }

    /// Reloads on SIGHUP and when ACCESS_FILE's directory changes, until the
    /// guard is dropped. None without ACCESS_FILE.
    pub fn watch(self: &Arc<Self>) -> std::io::Result<Option<crate::reload::Reloader>> {
        let Some(file) = self.file.clone() else { return Ok(None) };
        let store = self.clone();
        let (reloader, dirs) = crate::reload::watch("s3rp-access-reload", &[&file], move |trigger| {
            let _ = store.reload_and_log(trigger);
        })?;
        tracing::info!(dirs = ?dirs, "the access file reloads on SIGHUP and on file changes");
        Ok(Some(reloader))
    }
}

// The file, as TOML. Unknown fields are errors: a typo must not silently
// drop a rule.

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    origins: Vec<FileOrigin>,
    #[serde(default)]
    buckets: Vec<FileBucket>,
    #[serde(default)]
    keys: Vec<FileKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOrigin {
    name: String,
    domain: String,
    access_key: String,
    secret_key: Option<Secret>,
    secret_key_env: Option<String>,
    region: Option<String>,
    addressing: Option<String>,
    session_token: Option<Secret>,
    session_token_env: Option<String>,
    healthcheck_path: Option<String>,
    #[serde(default)]
    default: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileBucket {
    name: String,
    /// None: the default origin.
    origin: Option<String>,
    anonymous: Option<crate::anonymous::AnonymousAccess>,
    cors: Option<crate::cors::CorsSettings>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileKey {
    access_key: String,
    secret: Option<Secret>,
    secret_env: Option<String>,
    previous_secret: Option<Secret>,
    previous_secret_env: Option<String>,
    previous_secret_expires: Option<String>,
    #[serde(default)]
    allow: Vec<RuleSpec>,
    #[serde(default)]
    deny: Vec<RuleSpec>,
}

/// A TOML error as one line: the message and where, never the line's text.
/// Messages about a value's type or content may quote the value, which may be
/// a secret: those say only what kind of problem it is.
fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> AccessError {
    let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    let msg = e.message().lines().next().unwrap_or("").trim();
    let msg = if msg.starts_with("invalid type") || msg.starts_with("invalid value") || msg.contains('`') {
        // serde quotes the offending value (or key) in backticks.
        match msg.split_once(':') {
            Some((kind, _)) if !kind.contains('`') => kind.to_owned(),
            _ if msg.starts_with("unknown field")
                || msg.starts_with("missing field")
                || msg.starts_with("duplicate") =>
            {
                msg.to_owned()
            }
            _ => "invalid value".to_owned(),
        }
    } else {
        msg.to_owned()
    };
    let at = line.map(|l| format!(" at line {l}")).unwrap_or_default();
    AccessError(format!("ACCESS_FILE {}{at}: {msg}", path.display()))
}

/// A secret given inline or by the name of an environment variable.
fn lookup_secret(
    inline: Option<Secret>,
    env: Option<&str>,
    vars: &HashMap<String, Secret>,
    what: &str,
) -> Result<Option<Secret>, AccessError> {
    match (inline, env) {
        (Some(_), Some(_)) => Err(AccessError(format!("{what}: give the value or the _env variable, not both"))),
        (Some(s), None) if s.expose().is_empty() => Err(AccessError(format!("{what}: empty"))),
        (Some(s), None) => Ok(Some(s)),
        (None, Some(var)) => match vars.get(var).cloned().or_else(|| std::env::var(var).ok().map(Secret::new)) {
            Some(s) if !s.expose().is_empty() => Ok(Some(s)),
            Some(_) => Err(AccessError(format!("{what}: the variable {var} is empty"))),
            None => Err(AccessError(format!("{what}: the variable {var} is not set"))),
        },
        (None, None) => Ok(None),
    }
}

fn valid_access_key(k: &str) -> bool {
    !k.is_empty() && k.len() <= 128 && !k.chars().any(|c| c.is_whitespace() || c == '/' || c.is_control())
}

fn token_value(token: &Secret, what: &str) -> Result<HeaderValue, AccessError> {
    let t = token.expose();
    let mut v = HeaderValue::from_str(t)
        .ok()
        .filter(|_| !t.contains(char::is_whitespace))
        .ok_or_else(|| AccessError(format!("{what}: must be printable ASCII without spaces")))?;
    v.set_sensitive(true);
    Ok(v)
}

fn build(env: &EnvAccess, file: Option<&Path>, vars: &HashMap<String, Secret>) -> Result<Access, AccessError> {
    let parsed = match file {
        None => File::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| AccessError(format!("cannot read ACCESS_FILE {}: {e}", path.display())))?;
            toml::from_str::<File>(&text).map_err(|e| toml_error(path, &text, &e))?
        }
    };
    let mut origins: Vec<Arc<OriginEntry>> = Vec::new();
    let mut default = None;
    if let Some(o) = &env.origin {
        origins.push(Arc::new(OriginEntry {
            name: "env".into(),
            origin: o.origin.clone(),
            style: o.style,
            access_key: o.access_key.clone(),
            keys: KeyCache::new(o.secret.expose().as_bytes()),
            region: o.region.clone(),
            token: o.token.as_ref().map(|t| token_value(t, "ORIGIN_SESSION_TOKEN")).transpose()?,
            healthcheck_path: o.healthcheck_path.clone(),
        }));
        default = Some(0);
    }
    for o in parsed.origins {
        let what = format!("origin {:?}", o.name);
        if o.name.is_empty() || origins.iter().any(|e| e.name == o.name) {
            return Err(AccessError(format!("{what}: origin names must be non-empty and unique (env is ORIGIN_*)")));
        }
        let origin = parse_origin(&o.domain, "https", &format!("{what} domain"))?;
        let style = OriginStyle::parse(o.addressing.as_deref().unwrap_or(""), &format!("{what} addressing"))?
            .check(&origin, &format!("{what} addressing"))?;
        if !valid_access_key(&o.access_key) {
            return Err(bad(&format!("{what} access_key"), "must be non-empty, without spaces or '/'").into());
        }
        let secret = lookup_secret(o.secret_key, o.secret_key_env.as_deref(), vars, &format!("{what} secret_key"))?
            .ok_or_else(|| AccessError(format!("{what}: secret_key or secret_key_env is required")))?;
        let token =
            lookup_secret(o.session_token, o.session_token_env.as_deref(), vars, &format!("{what} session_token"))?;
        let region = o.region.unwrap_or_else(|| "us-east-1".into());
        if region.is_empty() || !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(bad(&format!("{what} region"), "must be a region name such as us-east-1").into());
        }
        let healthcheck_path = o.healthcheck_path.unwrap_or_else(|| "/".into());
        if !healthcheck_path.starts_with('/') || healthcheck_path.parse::<http::uri::PathAndQuery>().is_err() {
            return Err(bad(&format!("{what} healthcheck_path"), "must be a path starting with '/'").into());
        }
        if o.default {
            if let Some(d) = default {
                let other: &OriginEntry = &origins[d];
                return Err(AccessError(format!(
                    "{what}: default = true, but origin {:?} is already the default{}",
                    other.name,
                    if other.name == "env" { " (ORIGIN_DOMAIN is set)" } else { "" }
                )));
            }
            default = Some(origins.len());
        }
        origins.push(Arc::new(OriginEntry {
            token: token.as_ref().map(|t| token_value(t, &format!("{what} session_token"))).transpose()?,
            name: o.name,
            origin,
            style,
            access_key: o.access_key,
            keys: KeyCache::new(secret.expose().as_bytes()),
            region,
            healthcheck_path,
        }));
    }
    let default = match (default, origins.len()) {
        (Some(d), _) => d,
        (None, 1) => 0,
        (None, 0) => {
            return Err(AccessError(
                "no origin: set ORIGIN_DOMAIN (with ORIGIN_ACCESS_KEY, ORIGIN_SECRET_KEY) or add [[origins]] to ACCESS_FILE"
                    .into(),
            ));
        }
        (None, _) => return Err(AccessError("several origins: mark one with default = true".into())),
    };
    let mut routes = Vec::with_capacity(parsed.buckets.len());
    for b in parsed.buckets {
        let glob = Glob::parse(&b.name).map_err(|e| AccessError(format!("[[buckets]] {e}")))?;
        let origin = match &b.origin {
            None => default,
            Some(name) => origins
                .iter()
                .position(|o| o.name == *name)
                .ok_or_else(|| AccessError(format!("[[buckets]] {:?}: unknown origin {name:?}", b.name)))?,
        };
        let cors = match &b.cors {
            None => None,
            Some(c) => Some(Arc::new(
                crate::cors::CorsPolicy::from_settings(c, &format!("[[buckets]] {:?} cors", b.name))?
                    .ok_or_else(|| AccessError(format!("[[buckets]] {:?} cors: allowed_origins is empty", b.name)))?,
            )),
        };
        routes.push(BucketEntry { glob, origin, anonymous: b.anonymous, cors });
    }
    let mut keys = HashMap::with_capacity(parsed.keys.len() + 1);
    if let Some((ak, sk)) = &env.client {
        keys.insert(
            ak.clone(),
            ClientKey { secret: sk.clone(), keys: KeyCache::new(sk.expose().as_bytes()), previous: None, rules: None },
        );
    }
    for k in parsed.keys {
        let what = format!("key {:?}", k.access_key);
        if !valid_access_key(&k.access_key) {
            return Err(AccessError(format!("{what}: access_key must be non-empty, without spaces or '/'")));
        }
        if keys.contains_key(&k.access_key) {
            return Err(AccessError(format!("{what}: defined twice (CLIENT_ACCESS_KEY counts)")));
        }
        let sk = lookup_secret(k.secret, k.secret_env.as_deref(), vars, &format!("{what} secret"))?
            .ok_or_else(|| AccessError(format!("{what}: secret or secret_env is required")))?;
        let prev = lookup_secret(
            k.previous_secret,
            k.previous_secret_env.as_deref(),
            vars,
            &format!("{what} previous_secret"),
        )?;
        let previous = match (prev, k.previous_secret_expires) {
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => {
                return Err(AccessError(format!(
                    "{what}: previous_secret needs previous_secret_expires (RFC 3339), and the other way round"
                )));
            }
            (Some(p), Some(exp)) => {
                let expires =
                    OffsetDateTime::parse(&exp, &time::format_description::well_known::Rfc3339).map_err(|_| {
                        AccessError(format!(
                            "{what}: previous_secret_expires must be RFC 3339, such as 2026-12-31T00:00:00Z"
                        ))
                    })?;
                Some(PreviousSecret { keys: KeyCache::new(p.expose().as_bytes()), secret: p, expires })
            }
        };
        let rules = if k.allow.is_empty() && k.deny.is_empty() {
            None
        } else {
            Some(Rules::compile(&k.allow, &k.deny).map_err(|e| AccessError(format!("{what}: {e}")))?)
        };
        keys.insert(
            k.access_key,
            ClientKey { keys: KeyCache::new(sk.expose().as_bytes()), secret: sk, previous, rules },
        );
    }
    if keys.is_empty() {
        return Err(AccessError(
            "no client key: set CLIENT_ACCESS_KEY and CLIENT_SECRET_KEY or add [[keys]] to ACCESS_FILE".into(),
        ));
    }
    Ok(Access { keys, origins, routes, default })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[[origins]]
name = "a"
domain = "https://s3.backend-a.example"
access_key = "AKIAA"
secret_key_env = "SERVERA_SECRET_KEY"
region = "us-east-1"
addressing = "path"
default = true

[[origins]]
name = "b"
domain = "http://127.0.0.1:9002"
access_key = "AKIAB"
secret_key = "inline-origin-b-secret"
addressing = "path"

[[buckets]]
name = "photos*"
origin = "b"

[[keys]]
access_key = "PARTNER1"
secret_env = "PARTNER1_SECRET"
previous_secret_env = "PARTNER1_OLD"
previous_secret_expires = "2026-12-31T00:00:00Z"
allow = [ { bucket = "photos", prefix = "partner1/", actions = ["read", "write", "list"] } ]
deny  = [ { bucket = "photos", prefix = "partner1/private/", actions = ["read"] } ]
"#;

    fn vars() -> HashMap<String, Secret> {
        [
            ("SERVERA_SECRET_KEY", "origin-a-very-secret"),
            ("PARTNER1_SECRET", "p1-new-secret"),
            ("PARTNER1_OLD", "p1-old-secret"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Secret::new(v.to_owned())))
        .collect()
    }

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn the_issue_example_loads() {
        let (_d, path) = file(EXAMPLE);
        let a = build(&EnvAccess::default(), Some(&path), &vars()).unwrap();
        assert_eq!(a.origins().len(), 2);
        assert_eq!(a.default_origin().name, "a");
        assert_eq!(a.origin_for(Some("photos-2024")).name, "b");
        assert_eq!(a.origin_for(Some("logs")).name, "a");
        assert_eq!(a.origin_for(None).name, "a");
        assert!(a.key("PARTNER1").unwrap().rules().is_some());
        let before =
            OffsetDateTime::parse("2026-12-30T23:59:59Z", &time::format_description::well_known::Rfc3339).unwrap();
        let after =
            OffsetDateTime::parse("2026-12-31T00:00:00Z", &time::format_description::well_known::Rfc3339).unwrap();
        let s = a.secrets("PARTNER1", before).unwrap();
        assert_eq!(
            (s.current.secret, s.previous.map(|p| p.secret)),
            (&b"p1-new-secret"[..], Some(&b"p1-old-secret"[..]))
        );
        assert!(a.secrets("PARTNER1", after).unwrap().previous.is_none(), "refused from the expiry on");
        assert!(a.secrets("PARTNER", before).is_none() && a.secrets("PARTNER1X", before).is_none(), "whole keys only");
        let shown = format!("{a:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }

    #[test]
    fn the_deploy_example_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/access.example.toml");
        let vars = ["SERVERA_SECRET_KEY", "SERVERB_SECRET_KEY", "ADMIN_SECRET", "PARTNER1_SECRET", "LOGREADER_SECRET"]
            .into_iter()
            .map(|k| (k.to_owned(), Secret::new(format!("{k}-value"))))
            .collect();
        let a = build(&EnvAccess::default(), Some(&path), &vars).unwrap();
        assert_eq!((a.origins().len(), a.keys.len()), (2, 3));
        assert_eq!(a.origin_for(Some("photos")).name, "b");
        assert!(a.key("ADMIN").unwrap().rules().is_none() && a.key("LOGREADER").unwrap().rules().is_some());
    }

    #[test]
    fn bad_files_are_named_without_secrets() {
        let cases = [
            (EXAMPLE.replace("name = \"b\"", "name = \"a\""), "unique"),
            (EXAMPLE.replace("origin = \"b\"", "origin = \"c\""), "unknown origin \"c\""),
            (EXAMPLE.replace("PARTNER1_SECRET", "NOT_SET_ANYWHERE_42"), "NOT_SET_ANYWHERE_42 is not set"),
            (EXAMPLE.replace("photos*", "Photos["), "bad bucket glob"),
            (EXAMPLE.replace("\"list\"]", "\"list\", \"fly\"]"), "allow[0].actions: unknown action"),
            (EXAMPLE.replace("default = true", "default = true\nsecret_key_nev = 1"), "unknown field"),
            (EXAMPLE.replace("secret_key = \"inline-origin-b-secret\"", "secret_key = 12345678901234"), "line 15"),
            (
                EXAMPLE.replace("secret_key = \"inline-origin-b-secret\"", "secret_key = \"inline-origin-b-secret"),
                "line 15",
            ),
            (EXAMPLE.replace("2026-12-31T00:00:00Z", "tomorrow"), "RFC 3339"),
            (EXAMPLE.replace("default = true", ""), "default = true"),
        ];
        for (text, want) in cases {
            let (_d, path) = file(&text);
            let e = build(&EnvAccess::default(), Some(&path), &vars()).unwrap_err();
            assert!(e.0.contains(want), "{want}: {e}");
            for secret in
                ["inline-origin-b-secret", "12345678901234", "origin-a-very-secret", "p1-new-secret", "p1-old"]
            {
                assert!(!e.0.contains(secret), "{e}");
            }
        }
    }

    #[test]
    fn globs() {
        let g = |p: &str, s: &str| Glob::parse(p).unwrap().matches(s);
        assert!(g("photos", "photos") && !g("photos", "photos2") && !g("photos", "photo"));
        assert!(g("photos*", "photos") && g("photos*", "photos-2024") && !g("photos*", "my-photos"));
        assert!(g("*", "anything") && g("logs-*-eu", "logs-2024-eu") && !g("logs-*-eu", "logs-2024-us"));
        assert!(g("b?t", "bat") && !g("b?t", "bt") && g("*a*a*a*b", "aaaaaaaaaaaaaaaaaab"));
        assert!(!g("*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"), "no exponential blow-up, and no match");
        for bad in ["", "Photos", "a/b", "[ab]", "a b"] {
            assert!(Glob::parse(bad).is_err(), "{bad}");
        }
    }
}

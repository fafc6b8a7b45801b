//! The SigV4 core, pure: no HTTP server or client, no clock. Each stage is a
//! type that prints (`Display`) and is tested on its own.
//!
//! - [`auth`] — parsers for the `Authorization` header and the presigned query.
//! - [`date`] — `x-amz-date`.
//! - [`payload`] — the `x-amz-content-sha256` modes.
//! - [`number`] — numbers from a client, in their one canonical form.
//! - [`encode`] — S3 URI encoding (decode once, encode once, never normalize).
//! - [`canonical`] — [`CanonicalRequest`] and [`StringToSign`].
//! - [`key`] — signing-key derivation and its per-day cache (keys kept with
//!   their HMAC state ready).
//! - `scratch` — small buffers that keep the per-request path off the heap.
//!
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-authenticating-requests.html>

pub mod auth;
pub mod canonical;
pub mod date;
pub mod encode;
pub mod key;
pub mod number;
pub mod payload;
pub(crate) mod scratch;

pub use auth::{AuthorizationV4, Credential, PresignedV4, SignedHeaders};
pub use canonical::{CanonicalRequest, Query, QueryParam, StringToSign};
pub use date::AmzDate;
pub use encode::canonical_uri;
pub use key::{KeyCache, PreparedKey, SigningKey};
pub use payload::PayloadHash;

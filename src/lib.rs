//! # s3-resign-proxy
//!
//! Serves an S3 origin under a domain of your choice. Clients sign for the
//! proxy's host with the CLIENT credentials; the proxy verifies that signature,
//! signs the request again for ORIGIN_DOMAIN with the ORIGIN credentials, and
//! streams the request and the response through.
//!
//! ## Data flow
//!
//! ```text
//! request in ──► intake ──► address ──► verify ──► canonicalize ──► re-sign ──► forward ──► stream back
//!  server.rs    intake.rs  addressing.rs verify.rs  sigv4/          resign.rs  forward.rs   (body as is)
//!  handler.rs               SignedHost     └─ VerifiedRequest (proof) ─┘
//! ```
//!
//! 0. [`server`] runs one hyper service (`handler::serve`: `/healthz`, else
//!    the proxy) on one single-threaded runtime per core (the binary) or on the
//!    caller's (tests): the same path either way. With TLS_CERT/TLS_KEY each
//!    connection is wrapped in TLS first ([`tls`]: reloaded on SIGHUP and on
//!    file changes).
//! 1. [`intake::check`] refuses what is not an S3 method, over a limit, or
//!    ambiguous, before any signature is looked at.
//! 2. [`addressing::Addressing::signed_host`] finds the host the client
//!    signed (a trusted proxy's forwarded host, PUBLIC_HOST, or Host), checks
//!    it against ALLOWED_HOSTS, and the bucket it names (virtual-hosted style).
//! 3. [`verify::verify_for_host`] parses the `Authorization` header or the presigned
//!    query, checks key, date, skew/expiry and signature, and returns a
//!    [`verify::VerifiedRequest`]. No body byte has been read yet.
//! 4. [`resign::Signer::resign`] turns it into an origin request: the same
//!    path and query (the bucket placed as ORIGIN_ADDRESSING says), the client's signed headers (less hop-by-hop ones) plus
//!    `host`, `x-amz-date`, `x-amz-content-sha256`, signed with the origin key.
//! 5. [`forward::Forwarder::send`] streams the body (checking a hex payload
//!    hash or the aws-chunked signatures on the way) and the response back.
//!
//! [`headers`] is the header policy; [`state`] the per-worker state and the
//! injected clock; [`error`] the one error type. [`metrics`] (shared by all
//! workers) and [`access_log`] record every request when its response ends.
//! [`sigv4`] is the pure core: no HTTP stack, no clock.

pub mod access;
pub mod access_log;
pub mod addressing;
pub mod anonymous;
pub mod authorize;
pub mod authz;
pub mod chunked;
pub mod config;
pub mod cors;
#[cfg(feature = "demo")]
pub mod demo;
pub mod drain;
pub mod error;
pub mod forward;
pub mod handler;
pub mod headers;
pub mod intake;
pub mod metrics;
pub mod post_policy;
pub(crate) mod post_upload;
pub mod reload;
pub mod resign;
pub mod server;
pub mod sigv2;
pub mod sigv4;
pub mod state;
pub mod tls;
pub mod verify;

pub use drain::Drain;
pub use server::{run, serve, shutdown_signal};
pub use state::{AppState, Clock, SystemClock};

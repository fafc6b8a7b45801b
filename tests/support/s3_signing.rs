//! aws-sigv4 set up as S3 signs: single percent-encoding, no path
//! normalization, `x-amz-content-sha256` sent for header signatures; the
//! signature in headers or, presigned, in the query. One home for these
//! settings, included by path from the tests (`tests/common`), the criterion
//! benches and the load generator (`bench/loadgen`), so they cannot drift.
//!
//! <https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-authenticating-requests.html>
#![allow(dead_code)]

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignatureLocation, SigningParams, SigningSettings,
    UriPathNormalizationMode,
};
use aws_smithy_runtime_api::client::identity::Identity;

/// Where the signature goes.
#[derive(Debug, Clone, Copy)]
pub enum Location {
    /// `Authorization` header, with `x-amz-content-sha256`.
    Headers,
    /// A presigned URL valid for this long.
    Query(Duration),
}

/// The settings S3 expects.
pub fn s3_settings(location: Location) -> SigningSettings {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    match location {
        Location::Headers => settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256,
        Location::Query(expires) => {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(expires);
        }
    }
    settings
}

/// SigV4 parameters for S3 in `region`, signed at `at`.
pub fn s3_params<'a>(identity: &'a Identity, region: &'a str, at: SystemTime, location: Location) -> SigningParams<'a> {
    aws_sigv4::sign::v4::SigningParams::builder()
        .identity(identity)
        .region(region)
        .name("s3")
        .time(at)
        .settings(s3_settings(location))
        .build()
        .expect("complete SigV4 parameters")
        .into()
}

use super::*;
use crate::verify::SingleKey;
use serde_json::{Value, json};
use time::macros::datetime;

const AK: &str = "CLIENTKEY";
const SK: &[u8] = b"client/secret";
const NOW: OffsetDateTime = datetime!(2025-03-04 05:06:07 UTC);

fn fields(pairs: &[(&str, &str)]) -> Fields {
    Fields::new(pairs.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect()).unwrap()
}

fn b64(v: &Value) -> String {
    STANDARD.encode(v.to_string())
}

/// A SigV4 form as boto3's generate_presigned_post builds it: the caller's
/// fields and conditions, plus key, the credential fields and their conditions.
fn v4_form(key: &str, conditions: Vec<Value>, extra: &[(&str, &str)], expires: OffsetDateTime) -> Fields {
    let date = AmzDate::from_datetime(NOW);
    let cred = format!("{AK}/{}/us-east-1/s3/aws4_request", date.date());
    let mut conds = conditions;
    conds.push(json!({"x-amz-algorithm": ALGORITHM}));
    conds.push(json!({"x-amz-credential": cred}));
    conds.push(json!({"x-amz-date": date.as_str()}));
    let policy = b64(&json!({"expiration": expires.format(&Rfc3339).unwrap(), "conditions": conds}));
    let sig = KeyCache::new(SK).get(date.date(), "us-east-1").sign_hex(policy.as_bytes());
    let mut f: Vec<(String, String)> = vec![("key".into(), key.into())];
    f.extend(extra.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())));
    f.push(("x-amz-algorithm".into(), ALGORITHM.into()));
    f.push(("x-amz-credential".into(), cred));
    f.push(("x-amz-date".into(), date.as_str().into()));
    f.push(("policy".into(), policy));
    f.push(("x-amz-signature".into(), sig));
    Fields::new(f).unwrap()
}

fn later() -> OffsetDateTime {
    NOW + time::Duration::hours(1)
}

fn keys() -> KeyCache {
    KeyCache::new(SK)
}

fn verify(f: &Fields) -> Result<(), Error> {
    let k = keys();
    let auth = form_auth(f)?.expect("signed");
    verify_signature(&auth, &SingleKey { access_key: AK, secret: SK, keys: &k }, NOW)
}

/// Verify, then check against bucket `b` with `filename`.
fn run(f: &Fields, filename: Option<&str>) -> Result<String, Error> {
    verify(f)?;
    let key = object_key(f, filename)?;
    let policy = Policy::from_base64(form_auth(f)?.unwrap().policy())?;
    check(&policy, f, "b", &key, NOW)?;
    Ok(key)
}

fn code(r: Result<impl std::fmt::Debug, Error>) -> &'static str {
    r.expect_err("refused").status_and_code().1
}

fn msg(r: Result<impl std::fmt::Debug, Error>) -> String {
    r.expect_err("refused").message().into_owned()
}

// --- the AWS-published vector -------------------------------------------

fn aws_vector() -> Value {
    let text = include_str!("../../fixtures/post-policy/post-object-policy.json");
    serde_json::from_str(text).unwrap()
}

fn aws_fields(v: &Value) -> Fields {
    let pairs = v["request"]["form_fields"].as_array().unwrap();
    Fields::new(pairs.iter().map(|p| (p[0].as_str().unwrap().to_owned(), p[1].as_str().unwrap().to_owned())).collect())
        .unwrap()
}

#[test]
fn aws_vector_signature_verifies() {
    let v = aws_vector();
    let f = aws_fields(&v);
    let secret = v["credentials"]["secret_key"].as_str().unwrap().as_bytes();
    let k = KeyCache::new(secret);
    let keys = SingleKey { access_key: v["credentials"]["access_key"].as_str().unwrap(), secret, keys: &k };
    let auth = form_auth(&f).unwrap().unwrap();
    assert_eq!(auth.policy(), v["expected"]["string_to_sign"].as_str().unwrap());
    let FormAuth::V4 { signature, credential, .. } = auth else { panic!("V4") };
    assert_eq!(signature, v["expected"]["signature"].as_str().unwrap());
    assert_eq!(credential.region, "us-east-1");
    verify_signature(&auth, &keys, datetime!(2015-12-29 00:00 UTC)).unwrap();
    // The signature is over the base64 text: one byte more, and it fails.
    let mut bad: Vec<(String, String)> = f.iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
    bad.iter_mut().find(|(n, _)| n == "Policy").unwrap().1.push('=');
    let bad = Fields::new(bad).unwrap();
    assert_eq!(
        code(verify_signature(&form_auth(&bad).unwrap().unwrap(), &keys, datetime!(2015-12-29 00:00 UTC))),
        "SignatureDoesNotMatch"
    );
}

#[test]
fn aws_vector_policy_parses_and_its_conditions_hold() {
    let v = aws_vector();
    let f = aws_fields(&v);
    let p = Policy::from_base64(form_auth(&f).unwrap().unwrap().policy()).unwrap();
    assert_eq!(p.expiration, datetime!(2015-12-30 12:00 UTC));
    assert_eq!(p.conditions.len(), 11);
    assert_eq!(p.conditions[1], Condition::StartsWith { field: "key".into(), prefix: "user/user1/".into() });
    assert_eq!(p.conditions[4], Condition::StartsWith { field: "content-type".into(), prefix: "image/".into() });
    let key = object_key(&f, Some("photo.jpg")).unwrap();
    assert_eq!(key, "user/user1/photo.jpg");
    check(&p, &f, "sigv4examplebucket", &key, datetime!(2015-12-29 00:00 UTC)).unwrap();
    // Another bucket, and the day after expiration.
    assert!(msg(check(&p, &f, "other", &key, datetime!(2015-12-29 00:00 UTC))).contains("\"$bucket\""));
    assert_eq!(
        msg(check(&p, &f, "sigv4examplebucket", &key, datetime!(2015-12-30 12:00 UTC))),
        "Invalid according to Policy: Policy expired."
    );
}

// --- parsing ---------------------------------------------------------------

#[test]
fn parses_all_condition_forms() {
    let p = Policy::from_json(
        br#"{"expiration":"2030-01-01T00:00:00Z","conditions":[{"Bucket":"b"},["eq","$Key","k"],
            ["starts-with","$Content-Type","image/"],["content-length-range",1,"10"],["EQ","$x-amz-meta-a","v"]]}"#,
    )
    .unwrap();
    assert_eq!(
        p.conditions,
        vec![
            Condition::Eq { field: "bucket".into(), value: "b".into() },
            Condition::Eq { field: "key".into(), value: "k".into() },
            Condition::StartsWith { field: "content-type".into(), prefix: "image/".into() },
            Condition::ContentLengthRange { min: 1, max: 10 },
            Condition::Eq { field: "x-amz-meta-a".into(), value: "v".into() },
        ]
    );
    assert_eq!(p.content_length_range(), Some((1, 10)));
}

#[test]
fn expiration_with_and_without_fraction() {
    for (s, want) in [
        ("2030-01-01T00:00:00.000Z", datetime!(2030-01-01 00:00 UTC)),
        ("2030-01-01T00:00:01Z", datetime!(2030-01-01 00:00:01 UTC)),
    ] {
        let p = Policy::from_json(format!(r#"{{"expiration":"{s}","conditions":[]}}"#).as_bytes()).unwrap();
        assert_eq!(p.expiration, want, "{s}");
    }
}

#[test]
fn malformed_policies_are_invalid_policy_documents() {
    let cases: &[&[u8]] = &[
        b"not json",
        b"[]",
        br#"{"conditions":[]}"#,
        br#"{"expiration":"tomorrow","conditions":[]}"#,
        br#"{"expiration":12,"conditions":[]}"#,
        br#"{"expiration":"2030-01-01T00:00:00Z"}"#,
        br#"{"expiration":"2030-01-01T00:00:00Z","conditions":{}}"#,
        br#"{"expiration":"2030-01-01T00:00:00Z","conditions":[{"a":"1","b":"2"}]}"#,
        br#"{"expiration":"2030-01-01T00:00:00Z","conditions":[{}]}"#,
        br#"{"expiration":"2030-01-01T00:00:00Z","conditions":[{"a":1}]}"#,
        br#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["eq","key","v"]]}"#,
        br#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["eq","$key"]]}"#,
        br#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["eq","$key","v","w"]]}"#,
        br#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["starts-with","$key",1]]}"#,
        br#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["matches","$key","v"]]}"#,
        br#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["content-length-range",-1,5]]}"#,
        br#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["content-length-range",1]]}"#,
        br#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["content-length-range",1.5,5]]}"#,
        br#"{"expiration":"2030-01-01T00:00:00Z","conditions":["key"]}"#,
        br#"{"expiration":"2030-01-01T00:00:00Z","conditions":[[]]}"#,
    ];
    for c in cases {
        assert_eq!(code(Policy::from_json(c)), "InvalidPolicyDocument", "{}", String::from_utf8_lossy(c));
    }
    assert_eq!(code(Policy::from_base64("%%%not base64")), "InvalidPolicyDocument");
    assert_eq!(Error::InvalidPolicyDocument("x".into()).status_and_code().0, http::StatusCode::BAD_REQUEST);
}

#[test]
fn tightest_content_length_range_wins() {
    let p = Policy::from_json(
        br#"{"expiration":"2030-01-01T00:00:00Z","conditions":[["content-length-range",1,100],["content-length-range",5,50]]}"#,
    )
    .unwrap();
    assert_eq!(p.content_length_range(), Some((5, 50)));
    let none = Policy::from_json(br#"{"expiration":"2030-01-01T00:00:00Z","conditions":[]}"#).unwrap();
    assert_eq!(none.content_length_range(), None);
}

// --- SigV4 forms -------------------------------------------------------------

#[test]
fn boto3_style_v4_form_is_accepted() {
    let f = v4_form(
        "uploads/a.txt",
        vec![json!({"bucket": "b"}), json!(["starts-with", "$key", "uploads/"])],
        &[],
        later(),
    );
    assert_eq!(run(&f, Some("a.txt")).unwrap(), "uploads/a.txt");
}

#[test]
fn field_names_are_case_insensitive() {
    let f = v4_form(
        "k",
        vec![json!({"bucket": "b"}), json!({"key": "k"}), json!(["eq", "$Content-Type", "text/plain"])],
        &[("CONTENT-TYPE", "text/plain")],
        later(),
    );
    let upper = Fields::new(f.iter().map(|(n, v)| (n.to_ascii_uppercase(), v.to_owned())).collect()).unwrap();
    run(&upper, None).unwrap();
}

#[test]
fn filename_is_substituted_before_conditions() {
    let f = v4_form("user/${filename}", vec![json!(["eq", "$key", "user/cat.png"])], &[], later());
    assert_eq!(run(&f, Some("cat.png")).unwrap(), "user/cat.png");
    assert!(
        msg(run(&f, Some("dog.png")))
            .starts_with("Invalid according to Policy: Policy Condition failed: [\"eq\", \"$key\"")
    );
    let f = v4_form("${filename}", vec![json!(["starts-with", "$key", ""])], &[], later());
    assert_eq!(code(run(&f, Some(""))), "InvalidArgument", "an empty key");
}

#[test]
fn wrong_secret_and_tampered_fields_are_signature_mismatches() {
    let f = v4_form("k", vec![json!({"key": "k"})], &[], later());
    let k = KeyCache::new(b"another");
    let auth = form_auth(&f).unwrap().unwrap();
    let r = verify_signature(&auth, &SingleKey { access_key: AK, secret: b"another", keys: &k }, NOW);
    let Err(Error::SignatureDoesNotMatch { string_to_sign, .. }) = r else { panic!("{r:?}") };
    assert_eq!(string_to_sign, auth.policy(), "S3 echoes the policy as the string to sign");
    // A policy swapped for another (here: the same one re-encoded with an extra space).
    let mut v: Vec<(String, String)> = f.iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
    let p = v.iter_mut().find(|(n, _)| n == "policy").unwrap();
    let json = String::from_utf8(STANDARD.decode(&p.1).unwrap()).unwrap();
    p.1 = STANDARD.encode(format!("{json} "));
    assert_eq!(code(verify(&Fields::new(v).unwrap())), "SignatureDoesNotMatch");
}

#[test]
fn signature_in_upper_case_hex_is_accepted_and_garbage_is_not() {
    let f = v4_form("k", vec![json!({"key": "k"})], &[], later());
    let swap = |sig: &str| {
        Fields::new(
            f.iter()
                .map(|(n, v)| (n.to_owned(), if n == "x-amz-signature" { sig.to_owned() } else { v.to_owned() }))
                .collect(),
        )
        .unwrap()
    };
    let sig = f.get("x-amz-signature").unwrap().to_owned();
    verify(&swap(&sig.to_ascii_uppercase())).unwrap();
    for bad in ["", "zz", &sig[..62], &format!("{sig}00")] {
        assert_eq!(code(verify(&swap(bad))), "SignatureDoesNotMatch", "{bad}");
    }
}

#[test]
fn unknown_access_key_is_invalid_access_key_id() {
    let date = AmzDate::from_datetime(NOW);
    let f = fields(&[
        ("key", "k"),
        ("x-amz-algorithm", ALGORITHM),
        ("x-amz-credential", &format!("NOBODY/{}/us-east-1/s3/aws4_request", date.date())),
        ("x-amz-date", date.as_str()),
        ("policy", "e30="),
        ("x-amz-signature", "00"),
    ]);
    assert_eq!(code(verify(&f)), "InvalidAccessKeyId");
}

#[test]
fn incomplete_or_malformed_v4_fields_are_invalid_arguments() {
    let date = AmzDate::from_datetime(NOW);
    let cred = format!("{AK}/{}/us-east-1/s3/aws4_request", date.date());
    let all = [
        ("x-amz-algorithm", ALGORITHM.to_owned()),
        ("x-amz-credential", cred.clone()),
        ("x-amz-date", date.as_str().to_owned()),
        ("policy", "e30=".to_owned()),
        ("x-amz-signature", "00".to_owned()),
    ];
    for skip in 0..all.len() {
        let f: Vec<(&str, &str)> =
            all.iter().enumerate().filter(|(i, _)| *i != skip).map(|(_, (n, v))| (*n, v.as_str())).collect();
        let f = fields(&f);
        assert_eq!(code(form_auth(&f)), "InvalidArgument", "without {}", all[skip].0);
    }
    let with = |n: &str, v: &str| {
        let f: Vec<(&str, &str)> = all.iter().map(|(k, x)| (*k, if *k == n { v } else { x.as_str() })).collect();
        code(form_auth(&fields(&f)))
    };
    assert_eq!(with("x-amz-algorithm", "AWS4-HMAC-SHA1"), "InvalidArgument");
    assert_eq!(
        with("x-amz-credential", &format!("{AK}/{}/us-east-1/sts/aws4_request", date.date())),
        "InvalidArgument"
    );
    assert_eq!(with("x-amz-credential", &format!("{AK}/20000101/us-east-1/s3/aws4_request")), "InvalidArgument");
    assert_eq!(with("x-amz-credential", "garbage"), "InvalidArgument");
    assert_eq!(with("x-amz-date", "yesterday"), "InvalidArgument");
}

#[test]
fn a_form_without_credential_fields_is_anonymous_and_any_credential_field_is_not() {
    assert_eq!(form_auth(&fields(&[("key", "k"), ("Content-Type", "text/plain"), ("x-amz-date", "x")])).unwrap(), None);
    for n in CREDENTIAL_FIELDS {
        assert!(form_auth(&fields(&[("key", "k"), (n, "x")])).is_err(), "{n} alone must not pass as anonymous");
    }
}

#[test]
fn duplicate_fields_are_refused() {
    let r = Fields::new(vec![("key".into(), "a".into()), ("Key".into(), "b".into())]);
    assert_eq!(code(r), "InvalidArgument");
}

#[test]
fn missing_key_field_is_invalid_argument() {
    assert_eq!(code(object_key(&fields(&[("acl", "private")]), Some("f"))), "InvalidArgument");
}

// --- conditions --------------------------------------------------------------

#[test]
fn expired_policy_is_refused() {
    let f = v4_form("k", vec![json!({"key": "k"})], &[], NOW);
    assert_eq!(msg(run(&f, None)), "Invalid according to Policy: Policy expired.");
    let f = v4_form("k", vec![json!({"key": "k"})], &[], NOW - time::Duration::seconds(1));
    assert_eq!(code(run(&f, None)), "AccessDenied");
}

#[test]
fn bucket_condition_is_the_request_bucket() {
    let f = v4_form("k", vec![json!({"bucket": "other"}), json!({"key": "k"})], &[], later());
    assert_eq!(
        msg(run(&f, None)),
        "Invalid according to Policy: Policy Condition failed: [\"eq\", \"$bucket\", \"other\"]"
    );
    let f = v4_form("k", vec![json!(["starts-with", "$bucket", "b"]), json!({"key": "k"})], &[], later());
    run(&f, None).unwrap();
}

#[test]
fn a_bucket_field_must_name_the_request_bucket() {
    let f = v4_form(
        "k",
        vec![json!(["starts-with", "$bucket", ""]), json!({"key": "k"})],
        &[("bucket", "elsewhere")],
        later(),
    );
    assert_eq!(code(run(&f, None)), "AccessDenied");
    let f = v4_form("k", vec![json!({"bucket": "b"}), json!({"key": "k"})], &[("bucket", "b")], later());
    run(&f, None).unwrap();
}

#[test]
fn key_eq_and_starts_with() {
    let f = v4_form("a/b", vec![json!(["eq", "$key", "a/b"])], &[], later());
    run(&f, None).unwrap();
    let f = v4_form("a/bc", vec![json!(["eq", "$key", "a/b"])], &[], later());
    assert_eq!(code(run(&f, None)), "AccessDenied");
    let f = v4_form("x/a", vec![json!(["starts-with", "$key", "a/"])], &[], later());
    assert!(msg(run(&f, None)).contains("[\"starts-with\", \"$key\", \"a/\"]"));
}

#[test]
fn values_are_case_sensitive() {
    let f = v4_form("K", vec![json!({"key": "k"})], &[], later());
    assert_eq!(code(run(&f, None)), "AccessDenied");
}

#[test]
fn content_type_starts_with_checks_every_listed_type() {
    let cond = || vec![json!({"key": "k"}), json!(["starts-with", "$Content-Type", "image/"])];
    run(&v4_form("k", cond(), &[("Content-Type", "image/png")], later()), None).unwrap();
    run(&v4_form("k", cond(), &[("Content-Type", "image/png, image/jpeg")], later()), None).unwrap();
    assert_eq!(
        code(run(&v4_form("k", cond(), &[("Content-Type", "image/png, text/html")], later()), None)),
        "AccessDenied"
    );
    assert_eq!(code(run(&v4_form("k", cond(), &[("Content-Type", "text/plain")], later()), None)), "AccessDenied");
}

#[test]
fn meta_acl_and_success_fields_are_checked() {
    let cond = || {
        vec![
            json!({"key": "k"}),
            json!({"acl": "public-read"}),
            json!(["starts-with", "$x-amz-meta-owner", "team-"]),
            json!({"success_action_status": "201"}),
            json!(["starts-with", "$success_action_redirect", "https://app.example/"]),
        ]
    };
    let good = [
        ("acl", "public-read"),
        ("x-amz-meta-owner", "team-a"),
        ("success_action_status", "201"),
        ("success_action_redirect", "https://app.example/done"),
    ];
    run(&v4_form("k", cond(), &good, later()), None).unwrap();
    for (i, bad) in ["private", "bob", "200", "https://evil.example/"].iter().enumerate() {
        let mut f = good;
        f[i].1 = bad;
        assert_eq!(code(run(&v4_form("k", cond(), &f, later()), None)), "AccessDenied", "{}", good[i].0);
    }
}

#[test]
fn empty_starts_with_allows_any_value_and_a_missing_field() {
    let cond = || vec![json!({"key": "k"}), json!(["starts-with", "$x-amz-meta-tag", ""])];
    run(&v4_form("k", cond(), &[("x-amz-meta-tag", "anything")], later()), None).unwrap();
    run(&v4_form("k", cond(), &[], later()), None).unwrap();
}

#[test]
fn eq_on_a_missing_field_fails_unless_empty() {
    let f = v4_form("k", vec![json!({"key": "k"}), json!({"x-amz-meta-a": "v"})], &[], later());
    assert_eq!(code(run(&f, None)), "AccessDenied");
}

#[test]
fn every_field_must_be_named_by_a_condition() {
    let f = v4_form("k", vec![json!({"key": "k"})], &[("x-amz-meta-extra", "1")], later());
    assert_eq!(msg(run(&f, None)), "Invalid according to Policy: Extra input fields: x-amz-meta-extra");
    // The credential fields need their conditions too (boto3 adds them; here they are missing).
    let date = AmzDate::from_datetime(NOW);
    let cred = format!("{AK}/{}/us-east-1/s3/aws4_request", date.date());
    let policy = b64(&json!({"expiration": "2030-01-01T00:00:00Z", "conditions": [{"key": "k"}]}));
    let sig = keys().get(date.date(), "us-east-1").sign_hex(policy.as_bytes());
    let f = fields(&[
        ("key", "k"),
        ("x-amz-algorithm", ALGORITHM),
        ("x-amz-credential", &cred),
        ("x-amz-date", date.as_str()),
        ("policy", &policy),
        ("x-amz-signature", &sig),
    ]);
    assert_eq!(msg(run(&f, None)), "Invalid according to Policy: Extra input fields: x-amz-algorithm");
}

#[test]
fn exempt_fields_need_no_condition() {
    let f = v4_form("k", vec![json!({"key": "k"})], &[("x-ignore-tracking", "1"), ("X-Ignore-Other", "2")], later());
    run(&f, None).unwrap();
    for n in ["x-amz-signature", "Signature", "AWSAccessKeyId", "file", "Policy", "x-ignore-"] {
        assert!(is_exempt(n), "{n}");
    }
    for n in ["key", "submit", "acl", "x-amz-date", "bucket"] {
        assert!(!is_exempt(n), "{n}");
    }
}

#[test]
fn content_length_range_bounds() {
    let r = Some((10, 20));
    assert!(check_length(r, 10, true).is_ok() && check_length(r, 20, true).is_ok());
    assert_eq!(check_length(r, 21, false), Err(Error::EntityTooLarge), "over is known while streaming");
    assert_eq!(check_length(r, 5, false), Ok(()), "under is known only at the end");
    assert_eq!(check_length(r, 9, true), Err(Error::EntityTooSmall));
    assert!(check_length(None, u64::MAX, true).is_ok());
    assert_eq!(Error::EntityTooLarge.status_and_code(), (http::StatusCode::BAD_REQUEST, "EntityTooLarge"));
    assert_eq!(Error::EntityTooSmall.status_and_code(), (http::StatusCode::BAD_REQUEST, "EntityTooSmall"));
}

// --- SigV2 forms -------------------------------------------------------------

fn v2_form(conditions: Value, secret: &[u8]) -> Fields {
    let policy = b64(&json!({"expiration": "2030-01-01T00:00:00Z", "conditions": conditions}));
    let sig = STANDARD.encode(v2_signature(secret, policy.as_bytes()));
    fields(&[("key", "k"), ("AWSAccessKeyId", AK), ("Policy", &policy), ("Signature", &sig)])
}

#[test]
fn v2_form_verifies_and_checks() {
    let f = v2_form(json!([{"bucket": "b"}, ["starts-with", "$key", ""]]), SK);
    assert!(matches!(form_auth(&f).unwrap(), Some(FormAuth::V2 { .. })));
    assert_eq!(run(&f, None).unwrap(), "k");
}

#[test]
fn v2_signature_matches_an_independent_hmac_sha1() {
    // python3 -c "import hmac,hashlib,base64;print(base64.b64encode(hmac.new(b'client/secret',b'e30=',hashlib.sha1).digest()))"
    assert_eq!(STANDARD.encode(v2_signature(SK, b"e30=")), "b5uLkpWicWyX3Mb4cL96a3lFZ1k=");
}

#[test]
fn v2_wrong_secret_or_bad_base64_is_a_mismatch() {
    let f = v2_form(json!([["starts-with", "$key", ""]]), b"wrong");
    assert_eq!(code(verify(&f)), "SignatureDoesNotMatch");
    let f = fields(&[("key", "k"), ("AWSAccessKeyId", AK), ("policy", "e30="), ("signature", "!!!")]);
    assert_eq!(code(verify(&f)), "SignatureDoesNotMatch");
}

#[test]
fn v2_without_policy_or_signature_is_invalid_argument() {
    assert_eq!(
        code(form_auth(&fields(&[("key", "k"), ("AWSAccessKeyId", AK), ("signature", "x")]))),
        "InvalidArgument"
    );
    assert_eq!(
        code(form_auth(&fields(&[("key", "k"), ("AWSAccessKeyId", AK), ("policy", "e30=")]))),
        "InvalidArgument"
    );
}

#[test]
fn previous_secret_in_its_window_verifies() {
    struct Rotating {
        current: KeyCache,
        previous: KeyCache,
    }
    impl ClientKeys for Rotating {
        fn secrets(&self, ak: &str, _now: OffsetDateTime) -> Option<crate::verify::Secrets<'_>> {
            (ak == AK).then_some(crate::verify::Secrets {
                current: ClientSecret { secret: b"new", keys: &self.current },
                previous: Some(ClientSecret { secret: SK, keys: &self.previous }),
            })
        }
    }
    let keys = Rotating { current: KeyCache::new(b"new"), previous: KeyCache::new(SK) };
    let f = v4_form("k", vec![json!({"key": "k"})], &[], later());
    verify_signature(&form_auth(&f).unwrap().unwrap(), &keys, NOW).unwrap();
    let f = v2_form(json!([{"key": "k"}]), SK);
    verify_signature(&form_auth(&f).unwrap().unwrap(), &keys, NOW).unwrap();
}

// --- the origin's form -------------------------------------------------------

#[test]
fn origin_form_is_signed_with_the_origin_key_and_names_every_field() {
    let f = v4_form(
        "up/${filename}",
        vec![json!(["starts-with", "$key", "up/"]), json!(["starts-with", "$Content-Type", ""])],
        &[
            ("Content-Type", "text/plain"),
            ("success_action_redirect", "https://x/"),
            ("x-ignore-a", "1"),
            ("bucket", "b"),
        ],
        later(),
    );
    let okeys = KeyCache::new(b"origin-secret");
    let origin = OriginKey { access_key: "OAK", keys: &okeys, region: "eu-west-1", token: Some("TOKEN") };
    let out = origin_fields(&f, "b", "up/a.txt", &origin, NOW);
    let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "key",
            "content-type",
            "success_action_status",
            "x-amz-algorithm",
            "x-amz-credential",
            "x-amz-date",
            "x-amz-security-token",
            "policy",
            "x-amz-signature"
        ]
    );
    let get = |n: &str| out.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str()).unwrap();
    assert_eq!(get("key"), "up/a.txt");
    assert_eq!(get("x-amz-credential"), "OAK/20250304/eu-west-1/s3/aws4_request");
    assert_eq!(get("success_action_status"), "201");
    // The origin's signature checks out under the origin key, and nothing of the client's survives.
    let sig = okeys.get("20250304", "eu-west-1").sign_hex(get("policy").as_bytes());
    assert_eq!(get("x-amz-signature"), sig);
    assert!(!out.iter().any(|(_, v)| v == f.get("x-amz-signature").unwrap() || v == f.get("policy").unwrap()));
    // Its policy: expires in 15 minutes, and every forwarded field passes its own checks.
    let p = Policy::from_base64(get("policy")).unwrap();
    assert_eq!(p.expiration, NOW.replace_nanosecond(0).unwrap() + ORIGIN_POLICY_LIFETIME);
    let out_fields = Fields::new(out.clone()).unwrap();
    check(&p, &out_fields, "b", "up/a.txt", NOW).unwrap();
    assert_eq!(code(check(&p, &out_fields, "c", "up/a.txt", NOW)), "AccessDenied");
}

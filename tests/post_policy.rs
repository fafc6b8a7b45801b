//! Browser form (POST policy) uploads through the proxy to a real s3s-fs
//! origin: forms built as boto3's `generate_presigned_post` builds them (V4)
//! and SigV2 policies; each refusal is checked to store nothing at the origin.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::*;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};

const BUCKET: &str = "forms";

/// Form fields in order.
type Form = Vec<(String, String)>;

fn hmac256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// boto3's `generate_presigned_post(Bucket, Key, Fields, Conditions, ExpiresIn)`:
/// the caller's fields and conditions, plus bucket and key conditions (a
/// `starts-with` for a key ending in `${filename}`), the credential fields
/// and their conditions, the policy and its signature.
fn presigned_post(
    key: &str,
    fields: &[(&str, &str)],
    conditions: Vec<Value>,
    expires_in: i64,
    sk: &str,
) -> Vec<(String, String)> {
    let now = time::OffsetDateTime::now_utc();
    let date = now.format(time::macros::format_description!("[year][month][day]T[hour][minute][second]Z")).unwrap();
    let cred = format!("{CAK}/{}/us-east-1/s3/aws4_request", &date[..8]);
    let mut conds = conditions;
    conds.push(json!({"bucket": BUCKET}));
    match key.strip_suffix("${filename}") {
        Some(prefix) => conds.push(json!(["starts-with", "$key", prefix])),
        None => conds.push(json!({"key": key})),
    }
    conds.push(json!({"x-amz-algorithm": "AWS4-HMAC-SHA256"}));
    conds.push(json!({"x-amz-credential": cred}));
    conds.push(json!({"x-amz-date": date}));
    let exp = (now + time::Duration::seconds(expires_in))
        .format(time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"))
        .unwrap();
    let policy = STANDARD.encode(json!({"expiration": exp, "conditions": conds}).to_string());
    let mut k = hmac256(format!("AWS4{sk}").as_bytes(), &date.as_bytes()[..8]);
    for part in ["us-east-1", "s3", "aws4_request"] {
        k = hmac256(&k, part.as_bytes());
    }
    let sig = hex::encode(hmac256(&k, policy.as_bytes()));
    let mut out: Vec<(String, String)> = fields.iter().map(|(n, v)| ((*n).into(), (*v).into())).collect();
    out.push(("key".into(), key.into()));
    out.push(("x-amz-algorithm".into(), "AWS4-HMAC-SHA256".into()));
    out.push(("x-amz-credential".into(), cred));
    out.push(("x-amz-date".into(), date));
    out.push(("policy".into(), policy));
    out.push(("x-amz-signature".into(), sig));
    out
}

/// A SigV2 form: AWSAccessKeyId, policy, signature = base64(HMAC-SHA1(secret, policy)).
fn v2_post(key: &str, conditions: Value) -> Vec<(String, String)> {
    let exp = (time::OffsetDateTime::now_utc() + time::Duration::hours(1))
        .format(time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].000Z"))
        .unwrap();
    let policy = STANDARD.encode(json!({"expiration": exp, "conditions": conditions}).to_string());
    let mut m = Hmac::<sha1::Sha1>::new_from_slice(CSK.as_bytes()).unwrap();
    m.update(policy.as_bytes());
    let sig = STANDARD.encode(m.finalize().into_bytes());
    vec![
        ("key".into(), key.into()),
        ("AWSAccessKeyId".into(), CAK.into()),
        ("policy".into(), policy),
        ("signature".into(), sig),
    ]
}

fn md5_hex(b: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(b))
}

const BOUNDARY: &str = "----WebKitFormBoundary7MA4YWxkTrZu0gW";

/// The form's bytes before and after the file's content, as a browser sends them.
fn form_parts(fields: &[(String, String)], filename: &str) -> (Vec<u8>, Vec<u8>) {
    let mut head = Vec::new();
    for (n, v) in fields {
        head.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{n}\"\r\n\r\n{v}\r\n").as_bytes(),
        );
    }
    head.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
            .as_bytes(),
    );
    (head, format!("\r\n--{BOUNDARY}--\r\n").into_bytes())
}

fn form(fields: &[(String, String)], filename: &str, content: &[u8]) -> Vec<u8> {
    let (mut b, tail) = form_parts(fields, filename);
    b.extend_from_slice(content);
    b.extend_from_slice(&tail);
    b
}

async fn post(h: &Harness, body: impl Into<reqwest::Body>) -> reqwest::Response {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    client
        .post(format!("{}/{BUCKET}", h.endpoint()))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn setup() -> Harness {
    let h = Harness::start().await;
    h.origin().create_bucket().bucket(BUCKET).send().await.unwrap();
    h
}

/// Every file under the bucket's directory at the origin (s3s-fs keeps
/// objects as files there): the ground truth that nothing was stored.
fn stored(h: &Harness) -> Vec<String> {
    fn walk(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, base, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    let root = h.origin_dir.path().join(BUCKET);
    walk(&root, &root, &mut out);
    out
}

async fn s3_code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let code = text.split_once("<Code>").and_then(|(_, r)| r.split_once("</Code>")).map(|(c, _)| c.to_owned());
    (status, code.unwrap_or_else(|| format!("no code in {text:?}")))
}

#[tokio::test]
async fn v4_form_upload_answers_204_and_stores_the_file() {
    let h = setup().await;
    let f = presigned_post("docs/a.txt", &[], vec![], 3600, CSK);
    let r = post(&h, form(&f, "a.txt", b"hello form")).await;
    assert_eq!(r.status(), 204);
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", md5_hex(b"hello form")));
    assert_eq!(h.origin_get(BUCKET, "docs/a.txt").await, b"hello form");
}

#[tokio::test]
async fn filename_is_substituted_and_201_has_s3_xml() {
    let h = setup().await;
    let f = presigned_post(
        "user/${filename}",
        &[("success_action_status", "201"), ("Content-Type", "image/png"), ("x-amz-meta-owner", "team-a")],
        vec![
            json!({"success_action_status": "201"}),
            json!(["starts-with", "$Content-Type", "image/"]),
            json!(["starts-with", "$x-amz-meta-owner", "team-"]),
        ],
        3600,
        CSK,
    );
    let r = post(&h, form(&f, "cat.png", b"\x89PNG")).await;
    assert_eq!(r.status(), 201);
    let xml = r.text().await.unwrap();
    assert!(xml.contains("<Bucket>forms</Bucket><Key>user/cat.png</Key><ETag>&quot;"), "{xml}");
    assert_eq!(h.origin_get(BUCKET, "user/cat.png").await, b"\x89PNG");
    assert!(!h.origin_has(BUCKET, "user/${filename}").await);
    let head = h.origin().head_object().bucket(BUCKET).key("user/cat.png").send().await.unwrap();
    assert_eq!(head.content_type(), Some("image/png"));
    assert_eq!(head.metadata().unwrap().get("owner").map(String::as_str), Some("team-a"));
}

#[tokio::test]
async fn redirect_is_303_with_bucket_key_and_etag() {
    let h = setup().await;
    let url = "http://127.0.0.1:5500/done.html";
    let f = presigned_post(
        "r.txt",
        &[("success_action_redirect", url)],
        vec![json!({"success_action_redirect": url})],
        3600,
        CSK,
    );
    let r = post(&h, form(&f, "r.txt", b"x")).await;
    assert_eq!(r.status(), 303);
    let etag = format!("%22{}%22", md5_hex(b"x"));
    assert_eq!(r.headers()["location"], format!("{url}?bucket=forms&key=r.txt&etag={etag}").as_str());
    assert!(h.origin_has(BUCKET, "r.txt").await);
}

#[tokio::test]
async fn v2_policy_form_is_accepted() {
    let h = setup().await;
    let f = v2_post("v2/${filename}", json!([{"bucket": BUCKET}, ["starts-with", "$key", "v2/"]]));
    let r = post(&h, form(&f, "two.bin", b"sigv2")).await;
    assert_eq!(r.status(), 204);
    assert_eq!(h.origin_get(BUCKET, "v2/two.bin").await, b"sigv2");
}

#[tokio::test]
async fn each_violation_is_refused_and_stores_nothing() {
    let h = setup().await;
    let mut cases: Vec<(&str, Form, u16, &str)> = vec![
        ("wrong secret", presigned_post("k", &[], vec![], 3600, "not-the-secret"), 403, "SignatureDoesNotMatch"),
        ("expired", presigned_post("k", &[], vec![], -5, CSK), 403, "AccessDenied"),
        ("extra field", presigned_post("k", &[("x-amz-meta-extra", "1")], vec![], 3600, CSK), 403, "AccessDenied"),
        (
            "content type",
            presigned_post(
                "k",
                &[("Content-Type", "text/html")],
                vec![json!(["starts-with", "$Content-Type", "image/"])],
                3600,
                CSK,
            ),
            403,
            "AccessDenied",
        ),
        (
            "meta eq",
            presigned_post("k", &[("x-amz-meta-a", "2")], vec![json!({"x-amz-meta-a": "1"})], 3600, CSK),
            403,
            "AccessDenied",
        ),
        (
            "status",
            presigned_post(
                "k",
                &[("success_action_status", "200")],
                vec![json!({"success_action_status": "201"})],
                3600,
                CSK,
            ),
            403,
            "AccessDenied",
        ),
        ("anonymous", vec![("key".into(), "k".into())], 403, "AccessDenied"),
        ("v2 wrong bucket", v2_post("k", json!([{"bucket": "other"}, {"key": "k"}])), 403, "AccessDenied"),
    ];
    // The key outside its starts-with: the form's key is changed after signing boto3's policy for up/.
    let mut f = presigned_post("up/${filename}", &[], vec![], 3600, CSK);
    f.iter_mut().find(|(n, _)| n == "key").unwrap().1 = "other/${filename}".into();
    cases.push(("key prefix", f, 403, "AccessDenied"));
    // A signed policy that is not JSON.
    let mut f = v2_post("k", json!([]));
    let garbage = STANDARD.encode("{not json");
    let mut m = Hmac::<sha1::Sha1>::new_from_slice(CSK.as_bytes()).unwrap();
    m.update(garbage.as_bytes());
    f[2].1 = garbage;
    f[3].1 = STANDARD.encode(m.finalize().into_bytes());
    cases.push(("malformed", f, 400, "InvalidPolicyDocument"));
    for (what, f, status, code) in cases {
        let r = post(&h, form(&f, "f.txt", b"content")).await;
        assert_eq!(s3_code(r).await, (status, code.to_owned()), "{what}");
    }
    assert_eq!(stored(&h), Vec::<String>::new(), "nothing reached the bucket");
}

/// The file's content as a stream of `chunk`-byte pieces, `n` of them.
fn streamed(head: Vec<u8>, tail: Vec<u8>, chunk: usize, n: usize, byte: u8) -> reqwest::Body {
    let pieces = std::iter::once(head)
        .chain((0..n).map(move |i| vec![byte.wrapping_add(i as u8); chunk]))
        .chain(std::iter::once(tail));
    reqwest::Body::wrap_stream(futures_util::stream::iter(pieces.map(Ok::<_, std::io::Error>)))
}

#[tokio::test]
async fn content_length_range_is_enforced_while_streaming() {
    let h = setup().await;
    let cond = || vec![json!(["content-length-range", 10, 100_000])];
    // Over: 4 MiB against a 100 kB limit, refused without the rest.
    let f = presigned_post("big", &[], cond(), 3600, CSK);
    let (head, tail) = form_parts(&f, "big.bin");
    let r = post(&h, streamed(head, tail, 64 << 10, 64, 1)).await;
    assert_eq!(s3_code(r).await, (400, "EntityTooLarge".to_owned()));
    // Under: 5 bytes against a 10-byte minimum.
    let f = presigned_post("small", &[], cond(), 3600, CSK);
    let r = post(&h, form(&f, "s.bin", b"12345")).await;
    assert_eq!(s3_code(r).await, (400, "EntityTooSmall".to_owned()));
    assert_eq!(stored(&h), Vec::<String>::new());
    // In range, at both ends.
    for (key, len) in [("min", 10usize), ("max", 100_000)] {
        let f = presigned_post(key, &[], cond(), 3600, CSK);
        let r = post(&h, form(&f, "x", &vec![7u8; len])).await;
        assert_eq!(r.status(), 204, "{key}");
        assert_eq!(h.origin_get(BUCKET, key).await.len(), len);
    }
}

#[tokio::test]
async fn a_20_mb_file_streams_through() {
    let h = setup().await;
    let f = presigned_post("big/20mb.bin", &[], vec![json!(["content-length-range", 0, 50_000_000])], 3600, CSK);
    let (head, tail) = form_parts(&f, "20mb.bin");
    // 20 MB in 100 kB pieces, with bytes that vary per piece, and pieces that cross every boundary of the proxy's 32 KiB sends.
    let (chunk, n) = (100_000usize, 200usize);
    let r = post(&h, streamed(head, tail, chunk, n, 3)).await;
    assert_eq!(r.status(), 204);
    let got = h.origin_get(BUCKET, "big/20mb.bin").await;
    let want: Vec<u8> = (0..n).flat_map(|i| vec![3u8.wrapping_add(i as u8); chunk]).collect();
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the stored bytes are the sent bytes");
}

#[tokio::test]
async fn a_key_with_rules_needs_write_on_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("access.toml");
    std::fs::write(
        &file,
        format!(
            "[[keys]]\naccess_key = \"RULEDKEY\"\nsecret = \"ruled-secret\"\nallow = [ {{ bucket = \"{BUCKET}\", prefix = \"ok/\", actions = [\"write\"] }} ]\n"
        ),
    )
    .unwrap();
    let path = file.to_string_lossy().into_owned();
    let h = Harness::start_with(|v| v.push(("ACCESS_FILE".into(), path)), None).await;
    h.origin().create_bucket().bucket(BUCKET).send().await.unwrap();
    let ruled = |key: &str| presigned_post_for("RULEDKEY", "ruled-secret", key);
    let r = post(&h, form(&ruled("no/x.txt"), "x.txt", b"x")).await;
    assert_eq!(s3_code(r).await, (403, "AccessDenied".to_owned()));
    assert_eq!(stored(&h), Vec::<String>::new());
    let r = post(&h, form(&ruled("ok/x.txt"), "x.txt", b"x")).await;
    assert_eq!(r.status(), 204);
    assert!(h.origin_has(BUCKET, "ok/x.txt").await);
}

/// [`presigned_post`] for another key pair.
fn presigned_post_for(ak: &str, sk: &str, key: &str) -> Vec<(String, String)> {
    let f = presigned_post(key, &[], vec![], 3600, sk);
    let policy_json =
        String::from_utf8(STANDARD.decode(&f.iter().find(|(n, _)| n == "policy").unwrap().1).unwrap()).unwrap();
    let policy = STANDARD.encode(policy_json.replace(&format!("\"{CAK}/"), &format!("\"{ak}/")));
    let cred = f.iter().find(|(n, _)| n == "x-amz-credential").unwrap().1.replacen(CAK, ak, 1);
    let date = &cred.split('/').nth(1).unwrap().to_owned();
    let mut k = hmac256(format!("AWS4{sk}").as_bytes(), date.as_bytes());
    for part in ["us-east-1", "s3", "aws4_request"] {
        k = hmac256(&k, part.as_bytes());
    }
    let sig = hex::encode(hmac256(&k, policy.as_bytes()));
    f.into_iter()
        .map(|(n, v)| match n.as_str() {
            "x-amz-credential" => (n, cred.clone()),
            "policy" => (n, policy.clone()),
            "x-amz-signature" => (n, sig.clone()),
            _ => (n, v),
        })
        .collect()
}

/// A form with no credential is anonymous: refused by the proxy by default;
/// with ANONYMOUS_ACCESS=forward it goes to the origin unsigned, whose own
/// verdict comes back (s3s-fs refuses anonymous writes). Nothing is stored.
#[tokio::test]
async fn an_anonymous_form_is_refused_or_forwarded_unsigned() {
    let fields = vec![("key".to_owned(), "anon.txt".to_owned())];
    let h = setup().await;
    let r = post(&h, form(&fields, "anon.txt", b"anonymous")).await;
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert_eq!(status, 403);
    assert!(text.contains("Anonymous access is not allowed through this proxy"), "{text}");

    let h = Harness::start_with(|v| set_var(v, "ANONYMOUS_ACCESS", "forward"), None).await;
    h.origin().create_bucket().bucket(BUCKET).send().await.unwrap();
    let r = post(&h, form(&fields, "anon.txt", b"anonymous")).await;
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("AccessDenied") && !text.contains("through this proxy"), "the origin's own refusal: {text}");
    assert!(stored(&h).is_empty(), "{:?}", stored(&h));
}

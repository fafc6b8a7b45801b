//! SigV2: `StringToSign::new` over arbitrary request parts, and the parsers
//! `parse_authorization`, `parse_presigned`, `parse_http_date`.
//!
//! Properties: no panic; the string to sign is deterministic; its resource
//! ends with exactly the sub-resources of the query (a plain filter of
//! `SUB_RESOURCES` here), sorted by name, stable for repeats, and no other
//! parameter; a signature made over it verifies; whatever the parsers accept
//! prints back to text that parses to the same value.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use s3_resign_proxy::sigv2::{
    DateLine, SUB_RESOURCES, StringToSign, V2Request, parse_authorization, parse_http_date, parse_presigned, sign,
    verify,
};

#[derive(Arbitrary, Debug)]
enum Date {
    Headers,
    Header(String),
    Empty,
    Expires(i64),
}

#[derive(Arbitrary, Debug)]
struct Input {
    method: String,
    raw_path: String,
    /// Query names: mostly picked from `SUB_RESOURCES` (the index, modulo
    /// its length plus a few others), else the given text.
    query: Vec<(Option<u8>, String, String)>,
    headers: Vec<(String, String)>,
    date: Date,
    bucket: Option<String>,
    authorization: String,
    http_date: String,
    secret: Vec<u8>,
}

const OTHER_PARAMS: [&str; 4] = ["prefix", "AWSAccessKeyId", "Expires", "Signature"];

fn query_name(pick: Option<u8>, text: &str) -> String {
    match pick {
        Some(i) => {
            let i = usize::from(i) % (SUB_RESOURCES.len() + OTHER_PARAMS.len());
            SUB_RESOURCES.get(i).copied().unwrap_or_else(|| OTHER_PARAMS[i - SUB_RESOURCES.len()]).to_owned()
        }
        None => text.to_owned(),
    }
}

/// The resource's sub-resource section, from the rules: the sub-resources in
/// the query, sorted by name (stable), `?` then `&`, `name` or `name=value`.
fn ref_sub_resources(query: &[(String, String)]) -> (String, Vec<&str>) {
    let mut subs: Vec<&(String, String)> = query.iter().filter(|(k, _)| SUB_RESOURCES.contains(&k.as_str())).collect();
    subs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::new();
    for (i, (k, v)) in subs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        if !v.is_empty() {
            out.push('=');
            out.push_str(v);
        }
    }
    (out, subs.iter().map(|(k, _)| k.as_str()).collect())
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fuzz_target!(|input: Input| {
    assert!(SUB_RESOURCES.windows(2).all(|w| w[0] < w[1]), "SUB_RESOURCES must be sorted for binary_search");

    let query: Vec<(String, String)> = input.query.iter().map(|(p, k, v)| (query_name(*p, k), v.clone())).collect();
    let headers = input.headers;
    let date_line = match &input.date {
        Date::Headers => DateLine::for_headers(&headers),
        Date::Header(d) => DateLine::Header(d),
        Date::Empty => DateLine::Empty,
        Date::Expires(e) => DateLine::Expires(*e),
    };
    let req = V2Request {
        method: &input.method,
        raw_path: &input.raw_path,
        query: &query,
        headers: &headers,
        date_line,
        bucket: input.bucket.as_deref(),
    };
    let sts = StringToSign::new(&req);
    assert_eq!(StringToSign::new(&req), sts, "not deterministic");
    assert_eq!(sts.to_string(), sts.as_str());

    // Without a query, the string to sign is the same up to the resource's
    // sub-resource section, which is then exactly the reference's.
    let bare = StringToSign::new(&V2Request { query: &[], ..req });
    let (subs, names) = ref_sub_resources(&query);
    assert_eq!(sts.as_str(), format!("{}{subs}", bare.as_str()), "query {query:?}");
    assert!(names.windows(2).all(|w| w[0] <= w[1]));
    assert!(sts.as_str().starts_with(&format!("{}\n", input.method)));

    let sig = sign(&input.secret, &sts);
    assert!(verify(&input.secret, &sts, &sig));
    assert!(!verify(&input.secret, &bare, &sig) || bare == sts);

    if let Ok(a) = parse_authorization(&input.authorization) {
        assert_eq!(format!("AWS {}:{}", a.access_key, a.signature), input.authorization);
    }

    // The presigned parameters, read from the query as decoded pairs.
    if let Ok(Some(p)) = parse_presigned(&query) {
        assert!(p.expires >= 0 && !p.access_key.is_empty() && !p.signature.contains(' '));
        // A number has one spelling (no sign, no leading zero).
        let text = query.iter().find(|(k, _)| k == "Expires").map(|(_, v)| v.as_str());
        assert_eq!(text, Some(&*p.expires.to_string()));
        let printed = [
            ("Signature".to_owned(), p.signature.to_string()),
            ("Expires".to_owned(), p.expires.to_string()),
            ("AWSAccessKeyId".to_owned(), p.access_key.to_owned()),
        ];
        assert_eq!(parse_presigned(&printed), Ok(Some(p.clone())), "re-printed {printed:?}");
        let sts = StringToSign::new(&V2Request { date_line: DateLine::Expires(p.expires), ..req });
        assert!(sts.as_str().contains(&format!("\n{}\n", p.expires)));
    }

    for text in [&input.http_date, &input.authorization] {
        if let Some(t) = parse_http_date(text) {
            check_date_round_trip(t, text);
        }
    }
});

/// An accepted date printed back as RFC 1123 (GMT) and asctime parses to the
/// same instant (when its year has four digits, as both forms need).
fn check_date_round_trip(t: i64, text: &str) {
    let dt = time::OffsetDateTime::from_unix_timestamp(t).expect("an accepted date is in range");
    if !(0..=9999).contains(&dt.year()) {
        return;
    }
    let wd = WEEKDAYS[usize::from(dt.weekday().number_days_from_monday())];
    let mon = &format!("{:?}", dt.month())[..3];
    let (y, d, h, m, s) = (dt.year(), dt.day(), dt.hour(), dt.minute(), dt.second());
    for form in [
        format!("{wd}, {d:02} {mon} {y:04} {h:02}:{m:02}:{s:02} GMT"),
        format!("{wd}, {d:02} {mon} {y:04} {h:02}:{m:02}:{s:02} +0000"),
        format!("{wd} {mon} {d:>2} {h:02}:{m:02}:{s:02} {y:04}"),
    ] {
        assert_eq!(parse_http_date(&form), Some(t), "{form:?} (from {text:?})");
    }
}

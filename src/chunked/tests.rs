use super::Mode::{Signed, SignedTrailer, UnsignedTrailer};
use super::*;
use futures_util::stream;
use proptest::prelude::*;
use serde_json::Value;
use std::convert::Infallible;
use std::task::Waker;

/// Polls once: every input here is a `stream::iter`, which is always ready.
fn next<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    match Pin::new(s).poll_next(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(item) => item,
        Poll::Pending => panic!("pending"),
    }
}

const CHUNKED: &str = "put-object-chunked.json";
const TRAILER: &str = "put-object-chunked-trailer.json";

fn hmac(key: &[u8], msg: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(msg.as_bytes());
    mac.finalize().into_bytes().into()
}

/// SigV4 key derivation: kDate → kRegion → kService → kSigning.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date);
    hmac(&hmac(&hmac(&k, region), service), "aws4_request")
}

fn origin_chain() -> ChunkChain {
    let key = signing_key("origin/SECRET+key", "20240229", "eu-west-3", "s3");
    let seed = hex::encode(Sha256::digest(b"origin seed"));
    ChunkChain::new(key, "20240229T120000Z", "20240229/eu-west-3/s3/aws4_request", &seed)
}

type Trailers = Vec<(String, String)>;

/// A fixture: its JSON, the client chain, chunk sizes, data, trailers, mode and wire body.
struct Vector {
    json: Value,
    chain: ChunkChain,
    sizes: Vec<usize>,
    data: Vec<u8>,
    trailers: Option<Trailers>,
    mode: Mode,
    wire: Vec<u8>,
}

fn vector(name: &str) -> Vector {
    let path = format!("{}/fixtures/chunked/{name}", env!("CARGO_MANIFEST_DIR"));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let s = |p: &str| json.pointer(p).unwrap().as_str().unwrap().to_owned();
    let (date, region, service) = (s("/datetime"), s("/region"), s("/service"));
    let key = signing_key(&s("/credentials/secret_key"), &date[..8], &region, &service);
    let scope = format!("{}/{region}/{service}/aws4_request", &date[..8]);
    let chain = ChunkChain::new(key, &date, &scope, &s("/expected/seed_signature"));
    let body = &json["request"]["body_description"];
    let len = body["len"].as_u64().unwrap() as usize;
    let data = body["repeat"].as_str().unwrap().repeat(len).into_bytes();
    let sizes: Vec<usize> = serde_json::from_value(body["chunk_sizes"].clone()).unwrap();
    let trailers: Option<Trailers> = serde_json::from_value(body["trailers"].clone()).unwrap();
    let mode = if trailers.is_some() { Mode::SignedTrailer } else { Mode::Signed };
    let wire = encode(&sizes, &data, Some(&mut chain.clone()), trailers.as_deref(), false);
    Vector { json, chain, sizes, data, trailers, mode, wire }
}

/// Test-side encoder. `chain` None = unsigned chunks; `minio` = trailer lines end "\n", then "\r\n".
fn encode(
    sizes: &[usize],
    data: &[u8],
    mut chain: Option<&mut ChunkChain>,
    trailers: Option<&[(String, String)]>,
    minio: bool,
) -> Vec<u8> {
    let (mut w, mut pos) = (Vec::new(), 0);
    for &n in sizes {
        let d = &data[pos..pos + n];
        pos += n;
        let ext = chain.as_deref_mut().map(|c| format!(";chunk-signature={}", c.next_chunk_signature(d)));
        w.extend(format!("{n:x}{}\r\n", ext.unwrap_or_default()).bytes());
        if n > 0 {
            w.extend([d, b"\r\n"].concat());
        }
    }
    if let Some(trailers) = trailers {
        let eol = if minio { "\n" } else { "\r\n" };
        trailers.iter().for_each(|(k, v)| w.extend(format!("{k}:{v}{eol}").bytes()));
        if minio {
            w.extend(b"\r\n");
        }
        if let Some(c) = chain {
            let canonical: String = trailers.iter().map(|(k, v)| format!("{k}:{}\n", v.trim())).collect();
            let sig = c.trailer_signature(canonical.as_bytes());
            w.extend(format!("x-amz-trailer-signature:{sig}\r\n").bytes());
        }
    }
    w.extend(b"\r\n");
    w
}

/// Independent whole-buffer decoder: (data, chunk signatures, bytes after the 0-size chunk line).
fn decode_ref(wire: &[u8]) -> (Vec<u8>, Vec<String>, Vec<u8>) {
    let (mut data, mut sigs, mut i) = (Vec::new(), Vec::new(), 0);
    loop {
        let nl = i + wire[i..].windows(2).position(|w| w == b"\r\n").unwrap();
        let line = std::str::from_utf8(&wire[i..nl]).unwrap();
        let (size, sig) = line.split_once(";chunk-signature=").unwrap_or((line, ""));
        sigs.push(sig.to_owned());
        let size = usize::from_str_radix(size, 16).unwrap();
        i = nl + 2;
        if size == 0 {
            return (data, sigs, wire[i..].to_vec());
        }
        data.extend_from_slice(&wire[i..i + size]);
        assert_eq!(&wire[i + size..i + size + 2], b"\r\n");
        i += size + 2;
    }
}

/// The trailers the tests' requests declare in `x-amz-trailer`.
const DECLARED: [&str; 3] = ["x-amz-checksum-crc32", "x-amz-checksum-crc32c", "x-amz-meta-k"];

/// How to run the rewriter.
#[derive(Clone, Default)]
struct Cfg {
    mode: Mode,
    client: Option<ChunkChain>,
    origin: Option<ChunkChain>,
    decoded: Option<u64>,
    limits: Limits,
}

fn cfg(mode: Mode, client: Option<ChunkChain>, decoded: Option<u64>) -> Cfg {
    Cfg { mode, client, decoded, ..Cfg::default() }
}

fn cat(a: &[u8], b: &[u8]) -> Vec<u8> {
    [a, b].concat()
}

impl Cfg {
    /// As in production: client chain, origin chain, decoded length known.
    fn resign(v: &Vector) -> Cfg {
        let origin = Some(origin_chain());
        Cfg { origin, ..cfg(v.mode, Some(v.chain.clone()), Some(v.data.len() as u64)) }
    }

    /// Runs `wire` split at `cuts`; returns the output and the error, if any.
    fn run(&self, wire: &[u8], cuts: &[usize]) -> (Vec<u8>, Option<ChunkError>) {
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(wire.len())).collect();
        cuts.extend([0, wire.len()]);
        cuts.sort_unstable();
        let pieces = cuts.windows(2).map(|w| Ok::<_, Infallible>(Bytes::copy_from_slice(&wire[w[0]..w[1]])));
        let c = self.clone();
        let mut rw = AwsChunkedRewriter::new(stream::iter(pieces), c.mode, c.client, c.origin, c.decoded, c.limits)
            .with_declared_trailers(DECLARED.iter().map(|n| n.as_bytes().to_vec()).collect());
        let mut out = Vec::new();
        while let Some(item) = next(&mut rw) {
            match item {
                Ok(b) => out.extend_from_slice(&b),
                Err(e) => {
                    assert!(next(&mut rw).is_none(), "must end after an error");
                    return (out, Some(e));
                }
            }
        }
        (out, None)
    }

    fn ok(&self, wire: &[u8], cuts: &[usize]) -> Vec<u8> {
        let (out, err) = self.run(wire, cuts);
        assert!(err.is_none(), "unexpected error: {err:?}");
        out
    }
}

#[test]
fn vectors_reproduce() {
    for name in [CHUNKED, TRAILER] {
        let v = vector(name);
        let (exp, mut chain, mut pos) = (&v.json["expected"], v.chain.clone(), 0);
        for (i, &n) in v.sizes.iter().enumerate() {
            let d = &v.data[pos..pos + n];
            pos += n;
            let sts = chain.chunk_string_to_sign(d);
            assert_eq!(sts, exp["chunk_string_to_sign"][i].as_str().unwrap());
            let sig = chain.next_chunk_signature(d);
            assert_eq!(sig, exp["chunk_signatures"][i].as_str().unwrap());
        }
        if let Some(trailers) = &v.trailers {
            let canonical: String = trailers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
            assert_eq!(canonical, exp["canonical_trailer"].as_str().unwrap());
            let sts = chain.trailer_string_to_sign(canonical.as_bytes());
            assert_eq!(sts, exp["trailer_string_to_sign"].as_str().unwrap());
            let sig = chain.trailer_signature(canonical.as_bytes());
            assert_eq!(sig, exp["trailer_signature"].as_str().unwrap());
        }
        let wire_length = &v.json["request"]["body_description"]["wire_length"];
        assert_eq!(v.wire.len() as u64, wire_length.as_u64().unwrap());
        let sigs = serde_json::json!(decode_ref(&v.wire).1);
        assert_eq!(sigs, exp["chunk_signatures"]);
    }
}

#[test]
fn rewrite_vectors_to_origin_chain() {
    for name in [CHUNKED, TRAILER] {
        let v = vector(name);
        let out = Cfg::resign(&v).ok(&v.wire, &[]);
        assert_eq!(out.len(), v.wire.len(), "{name}: same length");
        assert_eq!(decode_ref(&out).0, v.data);
        let mut origin = origin_chain();
        let expected = encode(&v.sizes, &v.data, Some(&mut origin), v.trailers.as_deref(), false);
        assert_eq!(out, expected, "{name}: output is the origin-signed encoding");
        // The output verifies with the origin chain as "client" (verify-only passes it through)...
        let verify = cfg(v.mode, Some(origin_chain()), Some(v.data.len() as u64));
        assert_eq!(verify.ok(&out, &[]), out);
        // ... and not with the client's.
        let (_, err) = cfg(v.mode, Some(v.chain.clone()), None).run(&out, &[]);
        assert_eq!(format!("{err:?}"), "Some(BadChunkSignature { index: 0 })");
    }
}

#[test]
fn byte_by_byte_and_zero_copy() {
    let v = vector(TRAILER);
    let c = Cfg::resign(&v);
    let cuts: Vec<usize> = (1..v.wire.len()).collect();
    assert_eq!(c.ok(&v.wire, &cuts), c.ok(&v.wire, &[]));
    // A chunk that arrived in one read is emitted as a slice of that read.
    let input = Bytes::from(v.wire.clone());
    let inner = stream::iter([Ok::<_, Infallible>(input.clone())]);
    let mut rw = AwsChunkedRewriter::new(inner, c.mode, c.client, c.origin, None, c.limits)
        .with_declared_trailers(DECLARED.iter().map(|n| n.as_bytes().to_vec()).collect());
    let items: Vec<Bytes> = std::iter::from_fn(|| next(&mut rw)).map(Result::unwrap).collect();
    let data = items.iter().find(|b| b.len() == 65536).unwrap();
    assert_eq!(data.as_ptr(), input[88..].as_ptr());
}

/// Tampering yields an error, and nothing from the tampered chunk onwards is emitted.
#[test]
fn tampering_is_rejected_before_emission() {
    for name in [CHUNKED, TRAILER] {
        let v = vector(name);
        let c = Cfg::resign(&v);
        let good = c.ok(&v.wire, &[]);
        let chunk2 = 88 + 65536 + 2; // start of the 1024-byte chunk
        let last = chunk2 + 86 + 1024 + 2; // start of the 0-size chunk
        // (tampered byte, emitted bytes at most): data, signature, final chunk's signature.
        let mut cases = vec![(chunk2 + 600, chunk2), (chunk2 + 30, chunk2), (last + 20, last)];
        if v.mode == SignedTrailer {
            cases.extend([(last + 84 + 25, last), (v.wire.len() - 10, last)]); // value, signature
        }
        for (at, max) in cases {
            let mut bad = v.wire.clone();
            bad[at] = if bad[at] == b'0' { b'1' } else { b'0' };
            for cuts in [vec![], (1..67).map(|i| i * 1000).collect()] {
                let (out, err) = c.run(&bad, &cuts);
                let err = err.unwrap_or_else(|| panic!("{name}: tampered byte {at} accepted"));
                assert!(err.is_signature_mismatch(), "{name} @{at}: {err}");
                assert!(out.len() <= max, "{name} @{at}: {} bytes emitted", out.len());
                assert_eq!(out, good[..out.len()]);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn vector_splits_give_identical_output(
        trailer: bool,
        mut cuts in prop::collection::vec(0..66946usize, 0..16),
        near in prop::collection::vec((0..4usize, 0..96usize), 0..6),
    ) {
        let v = vector(if trailer { TRAILER } else { CHUNKED });
        let starts = [0, 65626, 66738, v.wire.len() - 128]; // chunk starts and the trailer
        cuts.extend(near.iter().map(|&(b, d)| starts[b] + d)); // inside headers and CRLFs
        let c = Cfg::resign(&v);
        prop_assert_eq!(c.ok(&v.wire, &cuts), c.ok(&v.wire, &[]));
    }

    #[test]
    fn synthetic_splits_all_modes(
        m in 0..3usize,
        minio: bool,
        cuts in prop::collection::vec(0..1000usize, 0..16),
    ) {
        let mode = [Signed, SignedTrailer, UnsignedTrailer][m];
        let data: Vec<u8> = (0..700u32).map(|i| (i * 7 % 251) as u8).collect();
        let t: [(String, String); 2] =
            [("x-amz-checksum-crc32".into(), "AAAAAA==".into()), ("x-amz-meta-k".into(), " v ".into())];
        let mut signer = origin_chain();
        let signing = (mode != UnsignedTrailer).then_some(&mut signer);
        let trailers = (mode != Signed).then_some(&t[..]);
        let wire = encode(&[1, 300, 17, 382, 0], &data, signing, trailers, minio);
        let origin = Some(ChunkChain { prev_signature: "0".repeat(64), ..origin_chain() });
        let c = Cfg { origin, ..cfg(mode, Some(origin_chain()), Some(700)) };
        let whole = c.ok(&wire, &[]);
        prop_assert_eq!(whole.len(), wire.len());
        if mode == UnsignedTrailer {
            prop_assert_eq!(&whole, &wire);
        }
        prop_assert_eq!(c.ok(&wire, &cuts), whole);
    }
}

#[test]
fn trailer_wire_forms() {
    let trailers: [(String, String); 2] =
        [("x-amz-checksum-crc32c".into(), "sOO8/Q==".into()), ("x-amz-meta-k".into(), "b".into())];
    for (mode, minio) in
        [(SignedTrailer, false), (SignedTrailer, true), (UnsignedTrailer, false), (UnsignedTrailer, true)]
    {
        let mut signer = origin_chain();
        let signing = (mode == SignedTrailer).then_some(&mut signer);
        let wire = encode(&[10, 0], &[b'x'; 10], signing, Some(&trailers), minio);
        let cfg = cfg(mode, Some(origin_chain()), Some(10));
        assert_eq!(cfg.ok(&wire, &[]), wire, "{mode:?} minio={minio}");
    }
    let wire = b"3\r\nabc\r\n0\r\n\r\n"; // no trailers at all
    assert_eq!(cfg(UnsignedTrailer, None, Some(3)).ok(wire, &[]), wire);
    // s3s's test form: "0;sig\r\n\r\n" + trailers without the final CRLF: 2 bytes shorter.
    let v = vector(TRAILER);
    let last = v.wire.len() - 124; // after the 0-size chunk line
    let s3s = [&v.wire[..last], b"\r\n", &v.wire[last..v.wire.len() - 4]].concat();
    assert_eq!(s3s.len(), 66944);
    let (out, err) = Cfg::resign(&v).run(&s3s, &[]);
    assert_eq!(format!("{err:?}"), "Some(MissingTrailerSignature)");
    assert_eq!(out.len(), last - 84, "the final section is never released");
}

#[test]
fn rejects_bad_framing_and_limits() {
    let v = vector(CHUNKED);
    let (w, last) = (&v.wire, v.wire.len() - 86); // `last`: start of the 0-size chunk
    let (s, u) = (cfg(Signed, Some(v.chain.clone()), None), cfg(UnsignedTrailer, None, None));
    let no_chain = cfg(Signed, None, None);
    let header = |size: &str| format!("{size};chunk-signature={}\r\n", "0".repeat(64)).into_bytes();
    let mut no_crlf = w.clone();
    no_crlf[88 + 65536] = b'\n';
    let cases: Vec<(&Cfg, Vec<u8>, &str)> = vec![
        (&s, vec![b'0'; 5000], "HeaderLineTooLong"), // rejected without waiting for a newline
        (&s, header("1000001"), "ChunkTooLarge { size: 16777217 }"), // 16 MiB + 1, no data
        (&s, header("1000000"), "UnexpectedEof"),    // exactly 16 MiB is fine
        (&u, b"ffffffffffffffffffff\r\n".to_vec(), "ChunkTooLarge"), // u64 overflow
        (&u, cat(b"0\r\nx-amz-meta-a:", &[b'v'; 17000]), "TrailerTooLarge"),
        (
            &u,
            [&b"0\r\nx-amz-meta-k:"[..], &[b'v'; 16000], b"\r\nx-amz-checksum-crc32:", &[b'v'; 1000], b"\r\n"].concat(),
            "TrailerTooLarge",
        ),
        (&u, b"0\r\nno-colon\r\n\r\n".to_vec(), "BadTrailer"),
        (&s, cat(&w[..w.len() - 2], b"x:y\r\n\r\n"), "BadTrailer"), // trailer in Signed mode
        (&s, no_crlf, "BadChunkTerminator"),
        (&s, cat(b"g", &w[5..]), "BadChunkHeader"),
        (&s, cat(b"10000;chunk-signaturE=", &w[22..]), "BadChunkHeader"),
        (&s, cat(b"10000 ", &w[5..]), "BadChunkHeader"),
        (&no_chain, w.clone(), "MissingChain"),
    ];
    let cuts = [1, 50, 88, 66000, last + 3, w.len() - 1];
    let eofs = cuts.iter().map(|&c| (&s, w[..c].to_vec(), "UnexpectedEof"));
    for (i, (c, wire, want)) in cases.into_iter().chain(eofs).enumerate() {
        let got = format!("{:?}", c.run(&wire, &[]).1.expect("an error"));
        assert!(got.starts_with(want), "case {i}: {got}, want {want}");
    }
    // Errors found at the end withhold the final section; length errors withhold the chunk.
    let (out, err) = s.run(&cat(w, b"x"), &[]);
    assert_eq!((out.len(), format!("{err:?}")), (last, "Some(TrailingData)".into()));
    // (The CRLF closing the last good chunk is held too: released only with a valid next header.)
    for (decoded, emitted) in [(66559, 65624), (66561, last - 2)] {
        let (out, err) = cfg(Signed, Some(v.chain.clone()), Some(decoded)).run(w, &[]);
        let want = format!("Some(DecodedLengthMismatch {{ expected: {decoded}, actual: 66560 }})");
        assert_eq!((out.len(), format!("{err:?}")), (emitted, want));
    }
}

#[test]
fn upstream_error_ends_stream() {
    let items = [Ok(Bytes::from_static(b"3\r\nab")), Err(std::io::Error::other("reset"))];
    let limits = Limits::default();
    let mut rw = AwsChunkedRewriter::new(stream::iter(items), UnsignedTrailer, None, None, None, limits);
    assert_eq!(next(&mut rw).unwrap().unwrap(), "3\r\n");
    assert_eq!(next(&mut rw).unwrap().unwrap(), "ab");
    let err = next(&mut rw).unwrap().unwrap_err();
    assert!(matches!(err, ChunkError::Upstream(_)) && err.source().is_some());
    assert_eq!(err.to_string(), "aws-chunked: upstream body error: reset");
    assert!(next(&mut rw).is_none());
    fn send_sync<T: Send + Sync + 'static>(_: &T) {}
    send_sync(&rw);
    send_sync(&err);
}

/// Never more than one chunk plus one header line is held, however the input is split.
#[test]
fn memory_stays_bounded() {
    let sizes: Vec<usize> = std::iter::repeat_n(1000, 64).chain([0]).collect();
    let wire = encode(&sizes, &[7; 64000], Some(&mut origin_chain()), None, false);
    let limits = Limits { max_chunk: 1000, ..Limits::default() };
    for piece in [wire.len(), 4096, 333, 1] {
        let pieces = wire.chunks(piece).map(|c| Ok::<_, Infallible>(Bytes::copy_from_slice(c)));
        let client = Some(origin_chain());
        let mut rw = AwsChunkedRewriter::new(stream::iter(pieces), Signed, client, None, None, limits);
        let mut total = 0;
        while let Some(b) = next(&mut rw) {
            total += b.unwrap().len();
            let held = rw.parser.buffered();
            assert!(held <= 1000 + 100, "{held} bytes held");
        }
        assert_eq!(total, wire.len());
    }
}

/// A signed body cut after a data chunk (no final 0-size chunk) never reaches
/// the origin whole: the CRLF closing the last chunk is held back.
#[test]
fn a_body_without_its_final_chunk_is_never_released_whole() {
    let data = [b'x'; 10];
    for mode in [Signed, SignedTrailer, UnsignedTrailer] {
        let mut signer = origin_chain();
        let signing = (mode != UnsignedTrailer).then_some(&mut signer);
        let full = encode(&[10, 0], &data, signing, None, false);
        let cut = full.len() - full.windows(3).rposition(|w| w == b"\r\n0").unwrap() - 2;
        let wire = &full[..full.len() - cut]; // ends with the data chunk's CRLF
        assert!(wire.ends_with(b"x\r\n"), "{mode:?}");
        let (out, err) = cfg(mode, Some(origin_chain()), None).run(wire, &[]);
        assert!(matches!(err, Some(ChunkError::UnexpectedEof)), "{mode:?}: {err:?}");
        assert_eq!(out.len(), wire.len() - 2, "{mode:?}: the last CRLF is held");
    }
}

#[test]
fn only_declared_trailers_once_each() {
    for mode in [SignedTrailer, UnsignedTrailer] {
        for t in [
            vec![("x-amz-checksum-sha256".to_string(), "AAAA".to_string())],
            vec![("x-amz-checksum-crc32".to_string(), "AAAAAA==".to_string()); 2],
        ] {
            let mut signer = origin_chain();
            let signing = (mode == SignedTrailer).then_some(&mut signer);
            let wire = encode(&[3, 0], b"abc", signing, Some(&t), false);
            let (_, err) = cfg(mode, Some(origin_chain()), Some(3)).run(&wire, &[]);
            assert!(matches!(err, Some(ChunkError::BadTrailer)), "{mode:?} {t:?}: {err:?}");
        }
    }
}

#[test]
fn chunk_sizes_have_one_spelling() {
    for wire in [&b"03\r\nabc\r\n0\r\n\r\n"[..], b"3\r\nabc\r\n00\r\n\r\n"] {
        let (_, err) = cfg(UnsignedTrailer, None, Some(3)).run(wire, &[]);
        assert!(matches!(err, Some(ChunkError::BadChunkHeader)), "{err:?}");
    }
}

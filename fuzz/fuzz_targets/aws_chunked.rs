//! `AwsChunkedRewriter` fed bytes split at fuzzer-chosen points.
//!
//! Input: byte 0 chooses the mode and flags, byte 1 the number of cuts (0 to
//! 16), then two bytes per cut, three bytes of limits, one byte of declared
//! trailer names (`x-amz-trailer`), and the rest is either the body as is or
//! (flag `VALID`) the recipe of a body that this target encodes and signs
//! with `ChunkChain` (optionally with one byte flipped; its trailers are
//! declared too unless bit 7 of the declared byte is set).
//!
//! Properties, for every input: no panic; the stream ends after an error and
//! never returns `Pending` on a ready input; bytes held inside the rewriter
//! stay within one chunk, two header lines and the trailer limit (plus the
//! current input piece); the output is never longer than the input, and as
//! long when accepted; the whole input and the same input split give the same
//! output and the same error. For accepted bodies of the recipe: the data is
//! what was encoded, and the re-signed output verifies on the origin's chain
//! to itself.
#![no_main]

use std::cell::Cell;
use std::convert::Infallible;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_util::stream::{self, Stream, StreamExt};
use libfuzzer_sys::fuzz_target;
use s3_resign_proxy::chunked::{AwsChunkedRewriter, ChunkChain, Limits, Mode};
use s3_resign_proxy::sigv4::SigningKey;

const VALID: u8 = 0x04;
const ORIGIN: u8 = 0x08;
const DECODED: u8 = 0x10;
const MINIO: u8 = 0x20;
const TAMPER: u8 = 0x40;

const DATE: &str = "20240229T120000Z";
const SCOPE: &str = "20240229/us-east-1/s3/aws4_request";

fn chain(key: u8, seed: &str) -> ChunkChain {
    ChunkChain {
        signing_key: SigningKey::from_bytes([key; 32]),
        amz_date: DATE.into(),
        scope: SCOPE.into(),
        prev_signature: seed.repeat(64),
    }
}

fn client_chain() -> ChunkChain {
    chain(0x11, "a")
}

fn origin_chain() -> ChunkChain {
    chain(0x22, "b")
}

const TRAILER_NAMES: [&[u8]; 5] =
    [b"x-amz-checksum-crc32", b"x-amz-checksum-sha256", b"x-amz-meta-a", b"X-Amz-Meta-B", b"x-amz-trailer-signature"];

/// Reads the fuzz input front to back; zeros once it runs out.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn take(&mut self, n: usize) -> &[u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
}

#[derive(Clone)]
struct Cfg {
    mode: Mode,
    declared: Vec<Vec<u8>>,
    client: Option<ChunkChain>,
    origin: Option<ChunkChain>,
    decoded: Option<u64>,
    limits: Limits,
}

struct Run {
    out: Vec<u8>,
    err: Option<String>,
}

/// Runs `wire` cut at `cuts` (sorted, within the body) through the rewriter.
fn run(cfg: &Cfg, wire: &[u8], cuts: &[usize]) -> Run {
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(wire.len());
    let pieces: Vec<Bytes> = bounds.windows(2).map(|w| Bytes::copy_from_slice(&wire[w[0]..w[1]])).collect();
    let largest = pieces.iter().map(Bytes::len).max().unwrap_or(0);
    let consumed = Rc::new(Cell::new(0usize));
    let seen = consumed.clone();
    let inner = stream::iter(pieces.into_iter().map(Ok::<_, Infallible>))
        .inspect(move |b| seen.set(seen.get() + b.as_ref().map_or(0, Bytes::len)));
    let c = cfg.clone();
    let mut rw = AwsChunkedRewriter::new(inner, c.mode, c.client, c.origin, c.decoded, c.limits)
        .with_declared_trailers(c.declared);
    let l = cfg.limits;
    let bound = l.max_chunk + 2 * l.max_header_line + l.max_trailer + largest + 4;
    let mut out = Vec::new();
    loop {
        match poll(&mut rw) {
            Some(Ok(b)) => {
                out.extend_from_slice(&b);
                let held = consumed.get() - out.len().min(consumed.get());
                assert!(held <= bound, "{held} bytes held, bound {bound} ({l:?}, largest piece {largest})");
            }
            Some(Err(e)) => {
                assert!(poll(&mut rw).is_none(), "the stream goes on after {e}");
                assert!(out.len() <= wire.len());
                return Run { out, err: Some(e.to_string()) };
            }
            None => {
                assert_eq!(out.len(), wire.len(), "accepted output of another length");
                return Run { out, err: None };
            }
        }
    }
}

fn poll<S: Stream + Unpin>(s: &mut S) -> Option<S::Item> {
    match Pin::new(s).poll_next(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(item) => item,
        Poll::Pending => panic!("Pending on an always-ready input"),
    }
}

fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// An aws-chunked body: `sizes` of `data`, signed on `chain` when given,
/// with `trailers` (signed when `chain` is given); `minio`: trailer lines
/// end with "\n", then "\r\n".
fn encode(
    sizes: &[usize],
    data: &[u8],
    mut chain: Option<&mut ChunkChain>,
    trailers: Option<&[(&[u8], Vec<u8>)]>,
    minio: bool,
) -> Vec<u8> {
    let (mut w, mut pos) = (Vec::new(), 0);
    for &n in sizes.iter().chain([&0]) {
        let d = &data[pos..pos + n];
        pos += n;
        w.extend(format!("{n:x}").bytes());
        if let Some(c) = chain.as_deref_mut() {
            w.extend(format!(";chunk-signature={}", c.next_chunk_signature(d)).bytes());
        }
        w.extend(b"\r\n");
        if n > 0 {
            w.extend([d, b"\r\n"].concat());
        }
    }
    if let Some(trailers) = trailers {
        let eol: &[u8] = if minio { b"\n" } else { b"\r\n" };
        let mut canonical = Vec::new();
        for (k, v) in trailers {
            w.extend([*k, b":", v, eol].concat());
            canonical.extend([&k.to_ascii_lowercase()[..], b":", trim(v), b"\n"].concat());
        }
        if minio {
            w.extend(b"\r\n");
        }
        if let Some(c) = chain {
            w.extend(format!("x-amz-trailer-signature:{}\r\n", c.trailer_signature(&canonical)).bytes());
        }
    }
    w.extend(b"\r\n");
    w
}

/// Plain whole-buffer decoder of an accepted body's data.
fn decode(wire: &[u8]) -> Vec<u8> {
    let (mut data, mut i) = (Vec::new(), 0);
    loop {
        let nl = i + wire[i..].windows(2).position(|w| w == b"\r\n").expect("a chunk line");
        let line = &wire[i..nl];
        let hex_end = line.iter().position(|b| !b.is_ascii_hexdigit()).unwrap_or(line.len());
        let size = usize::from_str_radix(std::str::from_utf8(&line[..hex_end]).unwrap(), 16).unwrap();
        i = nl + 2;
        if size == 0 {
            return data;
        }
        data.extend_from_slice(&wire[i..i + size]);
        i += size + 2;
    }
}

fuzz_target!(|input: &[u8]| {
    let mut r = Reader(input);
    let ctl = r.byte();
    let mode = [Mode::Signed, Mode::SignedTrailer, Mode::UnsignedTrailer][usize::from(ctl % 3)];
    let ncuts = usize::from(r.byte() % 17);
    let cuts: Vec<u16> = (0..ncuts).map(|_| r.u16()).collect();
    // Small limits, so that bodies of a few KiB reach them.
    let limits = Limits {
        max_chunk: 1 + usize::from(r.byte()) * 4,
        max_header_line: 16 + usize::from(r.byte()),
        max_trailer: usize::from(r.byte()) * 4,
    };
    let declared_mask = r.byte();
    let mut declared: Vec<Vec<u8>> = (TRAILER_NAMES.iter().enumerate())
        .filter(|(i, _)| declared_mask & (1 << i) != 0)
        .map(|(_, n)| n.to_ascii_lowercase())
        .collect();
    let signed = mode != Mode::UnsignedTrailer;
    let mut cfg = Cfg {
        mode,
        declared: Vec::new(),
        client: Some(client_chain()),
        origin: (ctl & ORIGIN != 0).then(origin_chain),
        decoded: None,
        limits,
    };

    let mut recipe = None;
    let wire = if ctl & VALID == 0 {
        if ctl & DECODED != 0 {
            cfg.decoded = Some(u64::from(r.u16()));
        }
        r.take(usize::MAX).to_vec()
    } else {
        let nchunks = usize::from(r.byte() % 8);
        let sizes: Vec<usize> = (0..nchunks).map(|_| 1 + usize::from(r.u16()) % limits.max_chunk).collect();
        let total: usize = sizes.iter().sum();
        let mut data = r.take(total).to_vec();
        data.resize(total, b'x');
        let trailers: Vec<(&[u8], Vec<u8>)> = (0..if mode == Mode::Signed { 0 } else { r.byte() % 4 })
            .map(|_| {
                let name = TRAILER_NAMES[usize::from(r.byte()) % TRAILER_NAMES.len()];
                let len = usize::from(r.byte() % 48);
                (name, r.take(len).to_vec())
            })
            .collect();
        if declared_mask & 0x80 == 0 {
            declared.extend(trailers.iter().map(|(n, _)| n.to_ascii_lowercase()));
        }
        let mut signer = client_chain();
        let trailers = (mode != Mode::Signed).then_some(&trailers[..]);
        let mut wire = encode(&sizes, &data, signed.then_some(&mut signer), trailers, ctl & MINIO != 0);
        if ctl & DECODED != 0 {
            cfg.decoded = Some(total as u64);
        }
        if ctl & TAMPER != 0 {
            let at = usize::from(r.u16()) % wire.len();
            wire[at] ^= r.byte() | 1;
        } else {
            recipe = Some(data);
        }
        wire
    };

    cfg.declared = declared;
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| usize::from(c) % (wire.len() + 1)).collect();
    cuts.sort_unstable();
    let whole = run(&cfg, &wire, &[]);
    let split = run(&cfg, &wire, &cuts);
    assert_eq!(split.err, whole.err, "error depends on the split {cuts:?}");
    assert!(split.out == whole.out, "output depends on the split {cuts:?}");
    // Byte by byte: the most split input there is (small bodies only, for speed).
    if wire.len() <= 512 {
        let all: Vec<usize> = (1..wire.len()).collect();
        let bytewise = run(&cfg, &wire, &all);
        assert_eq!(bytewise.err, whole.err, "error differs when fed byte by byte");
        assert!(bytewise.out == whole.out, "output differs when fed byte by byte");
    }

    if whole.err.is_some() {
        return;
    }
    if !signed || cfg.origin.is_none() {
        // Passed through: framing is only checked, signatures kept.
        assert!(whole.out == wire, "an accepted body was changed without an origin chain");
    }
    if let Some(data) = recipe {
        assert!(decode(&whole.out) == data, "accepted body's data differs from what was encoded");
        if signed && cfg.origin.is_some() {
            // The output is signed on the origin's chain: verify-only with it
            // as the client passes the output through unchanged.
            let verify = Cfg { client: Some(origin_chain()), origin: None, ..cfg.clone() };
            let again = run(&verify, &whole.out, &cuts);
            assert_eq!(again.err, None, "re-signed output does not verify on the origin chain");
            assert!(again.out == whole.out);
        }
    }
});

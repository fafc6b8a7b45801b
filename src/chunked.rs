//! Streaming verifier and re-signer for `aws-chunked` (SigV4 streaming) request bodies.
//!
//! [`AwsChunkedRewriter`] is a pure `Stream` adapter (no I/O, no clock). It parses the framing from
//! arbitrarily split input, verifies each chunk signature (and the trailer signature) on the client
//! chain, and re-emits the body with every 64-hex signature replaced by the origin chain's. All other
//! bytes are written back as received, so the output is exactly as long as the input.
//!
//! Trailer section (after the `0[;chunk-signature=…]\r\n` line): `name:value` lines, then (signed
//! trailer mode) `x-amz-trailer-signature:<64 hex>`. It ends at the first `\r\n\r\n` (counting the
//! 0-size chunk line's CRLF); other empty lines are skipped. That accepts both the AWS SDK form
//! (lines end `\r\n`, then `\r\n`) and the minio-go form (trailer lines end `\n`, then `\r\n`).
//!
//! Nothing bad is forwarded: in the signed modes a chunk is emitted only after its data, CRLF and
//! signature were checked. In all modes the final section (0-size chunk line, trailers, last CRLF) is
//! held until the input has ended cleanly, so the origin never sees a complete body unless the whole
//! input was valid. At most one chunk plus one line is buffered: input is parsed only once the
//! previous output was taken.

use std::collections::VecDeque;
use std::error::Error as StdError;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::stream::Stream;
use hmac::{Hmac, Mac};
use pin_project_lite::pin_project;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[cfg(test)]
mod tests;

type BoxError = Box<dyn StdError + Send + Sync>;

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const CHUNK_SIG_EXT: &[u8] = b";chunk-signature=";
const TRAILER_SIG_NAME: &[u8] = b"x-amz-trailer-signature";
const SIG_LEN: usize = 64;
const CRLF: &[u8] = b"\r\n";

/// One side's chunk-signature chain (SigV4 streaming). `Debug` redacts the key.
#[derive(Clone)]
pub struct ChunkChain {
    /// SigV4 signing key (`kSigning`).
    pub signing_key: [u8; 32],
    /// Request timestamp, e.g. `20130524T000000Z`.
    pub amz_date: String,
    /// Credential scope, e.g. `20130524/us-east-1/s3/aws4_request`.
    pub scope: String,
    /// Previous signature (hex); starts as the seed (the request's header signature).
    pub prev_signature: String,
}

impl fmt::Debug for ChunkChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkChain")
            .field("amz_date", &self.amz_date)
            .field("scope", &self.scope)
            .field("prev_signature", &self.prev_signature)
            .finish_non_exhaustive()
    }
}

impl ChunkChain {
    pub fn new(signing_key: [u8; 32], amz_date: &str, scope: &str, seed_signature: &str) -> Self {
        let (amz_date, scope, prev_signature) = (amz_date.into(), scope.into(), seed_signature.into());
        Self { signing_key, amz_date, scope, prev_signature }
    }

    /// `AWS4-HMAC-SHA256-PAYLOAD` string to sign for the next chunk (pure).
    pub fn chunk_string_to_sign(&self, data: &[u8]) -> String {
        self.chunk_string_to_sign_hashed(&hex::encode(Sha256::digest(data)))
    }

    /// As [`Self::chunk_string_to_sign`], from the chunk's hex sha256, so a
    /// chunk verified on one chain and re-signed on another is hashed once.
    fn chunk_string_to_sign_hashed(&self, hash: &str) -> String {
        let (date, scope, prev) = (&self.amz_date, &self.scope, &self.prev_signature);
        format!("AWS4-HMAC-SHA256-PAYLOAD\n{date}\n{scope}\n{prev}\n{EMPTY_SHA256}\n{hash}")
    }

    /// `AWS4-HMAC-SHA256-TRAILER` string to sign (pure); the canonical trailer is
    /// `lowercase-name:trimmed-value\n` per trailer line, in wire order.
    pub fn trailer_string_to_sign(&self, canonical_trailer: &[u8]) -> String {
        let (date, scope, prev) = (&self.amz_date, &self.scope, &self.prev_signature);
        let hash = hex::encode(Sha256::digest(canonical_trailer));
        format!("AWS4-HMAC-SHA256-TRAILER\n{date}\n{scope}\n{prev}\n{hash}")
    }

    /// Hex HMAC-SHA256 of `string_to_sign` under the signing key (pure).
    pub fn sign(&self, string_to_sign: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.signing_key).expect("any key");
        mac.update(string_to_sign.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Signature of the next chunk carrying `data` (empty for the final chunk); advances the chain.
    pub fn next_chunk_signature(&mut self, data: &[u8]) -> String {
        self.next_chunk_signature_hashed(&hex::encode(Sha256::digest(data)))
    }

    fn next_chunk_signature_hashed(&mut self, hash: &str) -> String {
        self.prev_signature = self.sign(&self.chunk_string_to_sign_hashed(hash));
        self.prev_signature.clone()
    }

    /// `x-amz-trailer-signature` value, chained on the final chunk's signature; advances the chain.
    pub fn trailer_signature(&mut self, canonical_trailer: &[u8]) -> String {
        self.prev_signature = self.sign(&self.trailer_string_to_sign(canonical_trailer));
        self.prev_signature.clone()
    }
}

/// Which aws-chunked variant the request uses (from `x-amz-content-sha256`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`
    #[default]
    Signed,
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`
    SignedTrailer,
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: passed through byte for byte, only parsed and checked.
    UnsignedTrailer,
}

/// Parser limits; `Default` is 16 MiB / 4 KiB / 16 KiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest chunk data size, checked from the header before any data is buffered.
    pub max_chunk: usize,
    /// Longest chunk header line, CRLF included.
    pub max_header_line: usize,
    /// Largest trailer section (every byte after the 0-size chunk line).
    pub max_trailer: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_chunk: 16 << 20, max_header_line: 4 << 10, max_trailer: 16 << 10 }
    }
}

/// Why an aws-chunked body was rejected. All but `Upstream` are the client's fault.
#[derive(Debug)]
pub enum ChunkError {
    BadChunkHeader,
    /// Chunk data not followed by CRLF.
    BadChunkTerminator,
    ChunkTooLarge {
        size: u64,
    },
    HeaderLineTooLong,
    TrailerTooLarge,
    BadTrailer,
    /// `index` counts chunks from 0; the final 0-size chunk is the last index.
    BadChunkSignature {
        index: u64,
    },
    BadTrailerSignature,
    MissingTrailerSignature,
    /// `actual` is the decoded length so far, including the chunk that went past `expected`.
    DecodedLengthMismatch {
        expected: u64,
        actual: u64,
    },
    UnexpectedEof,
    TrailingData,
    /// A signed mode was requested without the client's chain.
    MissingChain,
    Upstream(BoxError),
}

impl ChunkError {
    /// True for signature mismatches (S3: 403 `SignatureDoesNotMatch`); framing errors are 400s.
    pub fn is_signature_mismatch(&self) -> bool {
        matches!(self, Self::BadChunkSignature { .. } | Self::BadTrailerSignature)
    }
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("aws-chunked: ")?;
        match self {
            Self::BadChunkHeader => f.write_str("malformed chunk header line"),
            Self::BadChunkTerminator => f.write_str("chunk not terminated by CRLF"),
            Self::ChunkTooLarge { size } => write!(f, "chunk size {size} is over the limit"),
            Self::HeaderLineTooLong => f.write_str("chunk header line too long"),
            Self::TrailerTooLarge => f.write_str("trailer section too large"),
            Self::BadTrailer => f.write_str("malformed trailer line"),
            Self::BadChunkSignature { index } => write!(f, "chunk {index} signature mismatch"),
            Self::BadTrailerSignature => f.write_str("trailer signature mismatch"),
            Self::MissingTrailerSignature => f.write_str("no x-amz-trailer-signature"),
            Self::DecodedLengthMismatch { expected, actual } => {
                write!(f, "decoded length {actual} != x-amz-decoded-content-length {expected}")
            }
            Self::UnexpectedEof => f.write_str("body ended inside the framing"),
            Self::TrailingData => f.write_str("data after the end of the body"),
            Self::MissingChain => f.write_str("signed mode without the client's chain"),
            Self::Upstream(e) => write!(f, "upstream body error: {e}"),
        }
    }
}

impl StdError for ChunkError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Self::Upstream(e) => Some(&**e),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum State {
    #[default]
    Header,
    Data(usize),
    DataCrlf(usize),
    Trailer,
    Done,
}

#[derive(Default)]
struct Parser {
    mode: Mode,
    client: Option<ChunkChain>,
    origin: Option<ChunkChain>,
    decoded_length: Option<u64>,
    limits: Limits,
    state: State,
    /// Unparsed rest of the current input item.
    input: Bytes,
    /// A line split across input items.
    line: BytesMut,
    /// Signed modes: the current chunk's header line, its signature offset, its data.
    header: Bytes,
    sig_off: usize,
    data: BytesMut,
    whole: Bytes,
    index: u64,
    decoded: u64,
    /// The final section (0-size chunk line, trailers, last CRLF), released at end of input.
    tail: BytesMut,
    /// Length of the 0-size chunk line at the start of `tail`.
    tail_start: usize,
    prev_crlf: bool,
    canonical: Vec<u8>,
    trailer_sig_at: Option<usize>,
    out: VecDeque<Bytes>,
    pending_error: Option<ChunkError>,
    finished: bool,
    /// The CRLF after the last data chunk, released with the next chunk's
    /// header: a body cut after a data chunk (no final 0-size chunk) never
    /// reaches the origin whole.
    held_crlf: bool,
    /// Trailer names the client declared in `x-amz-trailer` (lower case).
    declared: Vec<Vec<u8>>,
    /// Trailer names seen so far (each once).
    seen_trailers: Vec<Vec<u8>>,
}

pin_project! {
    /// Verifies and re-signs an aws-chunked body; see the module docs.
    pub struct AwsChunkedRewriter<S> {
        #[pin]
        inner: S,
        parser: Parser,
    }
}

impl<S> AwsChunkedRewriter<S> {
    /// `client` is required in the signed modes; `origin: None` verifies only and keeps the
    /// client's signatures. Both are ignored in `UnsignedTrailer` mode. `decoded_length` is
    /// `x-amz-decoded-content-length`, when known.
    pub fn new(
        inner: S,
        mode: Mode,
        client: Option<ChunkChain>,
        origin: Option<ChunkChain>,
        decoded_length: Option<u64>,
        limits: Limits,
    ) -> Self {
        let missing = mode != Mode::UnsignedTrailer && client.is_none();
        let pending_error = missing.then_some(ChunkError::MissingChain);
        let p = Parser { mode, client, origin, decoded_length, limits, pending_error, ..Default::default() };
        Self { inner, parser: p }
    }

    /// The trailer names the client declared in `x-amz-trailer` (lower case);
    /// any other trailer is refused. Without this call, none is accepted.
    #[must_use]
    pub fn with_declared_trailers(mut self, names: Vec<Vec<u8>>) -> Self {
        self.parser.declared = names;
        self
    }
}

impl<S, E> Stream for AwsChunkedRewriter<S>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: Into<BoxError>,
{
    type Item = Result<Bytes, ChunkError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        let p: &mut Parser = this.parser;
        loop {
            if let Some(b) = p.out.pop_front() {
                return Poll::Ready(Some(Ok(b)));
            }
            if p.finished {
                return Poll::Ready(None);
            }
            // Parse only once the previous output was taken: memory stays bounded.
            let res = if let Some(e) = p.pending_error.take() {
                Err(e)
            } else if !p.input.is_empty() {
                p.step()
            } else {
                match ready!(this.inner.as_mut().poll_next(cx)) {
                    Some(Ok(b)) => {
                        p.input = b;
                        Ok(())
                    }
                    Some(Err(e)) => Err(ChunkError::Upstream(e.into())),
                    None => p.end_of_input(),
                }
            };
            if let Err(e) = res {
                *p = Parser::default(); // drop all buffers
                p.finished = true;
                return Poll::Ready(Some(Err(e)));
            }
        }
    }
}

fn trim_ws(mut s: &[u8]) -> (&[u8], usize) {
    let mut lead = 0;
    while let [b' ' | b'\t', rest @ ..] = s {
        (s, lead) = (rest, lead + 1);
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    (s, lead)
}

fn is_sig(s: &[u8]) -> bool {
    s.len() == SIG_LEN && s.iter().all(u8::is_ascii_hexdigit)
}

impl Parser {
    fn signed(&self) -> bool {
        self.mode != Mode::UnsignedTrailer
    }

    fn end_of_input(&mut self) -> Result<(), ChunkError> {
        if self.state != State::Done {
            return Err(ChunkError::UnexpectedEof);
        }
        self.finished = true;
        self.out.push_back(self.tail.split().freeze());
        Ok(())
    }

    /// Takes one line (through `\n`) from the input, or buffers a partial line and returns `None`.
    fn take_line(&mut self, max: usize, trailer: bool) -> Result<Option<Bytes>, ChunkError> {
        let found = self.input.iter().position(|&b| b == b'\n');
        // Without a newline, even one arriving as the next byte would make the line too long.
        if self.line.len() + found.unwrap_or(self.input.len()) + 1 > max {
            return Err(if trailer { ChunkError::TrailerTooLarge } else { ChunkError::HeaderLineTooLong });
        }
        let Some(i) = found else {
            self.line.extend_from_slice(&std::mem::take(&mut self.input));
            return Ok(None);
        };
        let part = self.input.split_to(i + 1);
        if self.line.is_empty() {
            return Ok(Some(part)); // the whole line in one read: no copy
        }
        self.line.extend_from_slice(&part);
        Ok(Some(self.line.split().freeze()))
    }

    /// Advances the state machine using the current (non-empty) input.
    fn step(&mut self) -> Result<(), ChunkError> {
        match self.state {
            State::Header => {
                if let Some(line) = self.take_line(self.limits.max_header_line, false)? {
                    self.on_header(line)?;
                }
            }
            State::Data(remaining) => {
                let n = remaining.min(self.input.len());
                if !self.signed() {
                    self.out.push_back(self.input.split_to(n));
                } else if self.data.is_empty() && n == remaining {
                    self.whole = self.input.split_to(n); // the whole chunk in one read: no copy
                } else {
                    self.data.reserve(remaining);
                    self.data.extend_from_slice(&self.input[..n]);
                    self.input.advance(n);
                    if n == remaining {
                        self.whole = self.data.split().freeze();
                    }
                }
                self.state = if n == remaining { State::DataCrlf(0) } else { State::Data(remaining - n) };
            }
            State::DataCrlf(mut got) => {
                while got < 2 && !self.input.is_empty() {
                    if self.input[0] != CRLF[got] {
                        return Err(ChunkError::BadChunkTerminator);
                    }
                    self.input.advance(1);
                    got += 1;
                }
                self.state = if got == 2 { self.finish_chunk()? } else { State::DataCrlf(got) };
            }
            State::Trailer => {
                let budget = self.limits.max_trailer + self.tail_start - self.tail.len();
                if let Some(line) = self.take_line(budget, true)? {
                    self.on_trailer_line(&line)?;
                }
            }
            State::Done => return Err(ChunkError::TrailingData),
        }
        Ok(())
    }

    fn on_header(&mut self, line: Bytes) -> Result<(), ChunkError> {
        let body = line.strip_suffix(CRLF).ok_or(ChunkError::BadChunkHeader)?;
        let hex_end = body.iter().position(|b| !b.is_ascii_hexdigit()).unwrap_or(body.len());
        // One spelling per size: no leading zeros (`0010` is refused).
        let size = crate::sigv4::number::parse_hex(&body[..hex_end]);
        if hex_end > 0 && size.is_none() && body[0] == b'0' {
            return Err(ChunkError::BadChunkHeader);
        }
        let size = size.unwrap_or(u64::MAX);
        let ext = &body[hex_end..];
        let ext_ok = if self.signed() {
            self.sig_off = hex_end + CHUNK_SIG_EXT.len();
            ext.strip_prefix(CHUNK_SIG_EXT).is_some_and(is_sig)
        } else {
            ext.is_empty() || (ext[0] == b';' && !ext.iter().any(|&b| b != b'\t' && b.is_ascii_control()))
        };
        if hex_end == 0 || !ext_ok {
            return Err(ChunkError::BadChunkHeader);
        }
        if size > self.limits.max_chunk as u64 {
            return Err(ChunkError::ChunkTooLarge { size });
        }
        // The header is valid: the previous chunk is complete.
        if std::mem::take(&mut self.held_crlf) {
            self.out.push_back(Bytes::from_static(CRLF));
        }
        self.decoded += size;
        if let Some(expected) = self.decoded_length
            && (self.decoded > expected || (size == 0 && self.decoded != expected))
        {
            return Err(ChunkError::DecodedLengthMismatch { expected, actual: self.decoded });
        }
        if size > 0 {
            self.state = State::Data(size as usize);
            if self.signed() {
                self.header = line;
            } else {
                self.out.push_back(line);
            }
            return Ok(());
        }
        // The final 0-size chunk: from here on everything is held in `tail` until end of input.
        let line = if self.signed() { self.resign_chunk(line, &[])? } else { line };
        self.tail.extend_from_slice(&line);
        self.tail_start = line.len();
        self.prev_crlf = true;
        self.state = State::Trailer;
        Ok(())
    }

    /// Verifies the signature in `line` on the client chain; returns the line re-signed.
    fn resign_chunk(&mut self, line: Bytes, data: &[u8]) -> Result<Bytes, ChunkError> {
        let client = self.client.as_mut().ok_or(ChunkError::MissingChain)?;
        let range = self.sig_off..self.sig_off + SIG_LEN;
        let hash = hex::encode(Sha256::digest(data));
        if !bool::from(client.next_chunk_signature_hashed(&hash).as_bytes().ct_eq(&line[range.clone()])) {
            return Err(ChunkError::BadChunkSignature { index: self.index });
        }
        self.index += 1;
        let Some(origin) = self.origin.as_mut() else {
            return Ok(line);
        };
        let mut out = BytesMut::from(&line[..]);
        out[range].copy_from_slice(origin.next_chunk_signature_hashed(&hash).as_bytes());
        Ok(out.freeze())
    }

    /// A data chunk and its CRLF are complete: emit it (signed modes: once verified).
    fn finish_chunk(&mut self) -> Result<State, ChunkError> {
        if self.signed() {
            let (header, data) = (std::mem::take(&mut self.header), std::mem::take(&mut self.whole));
            let header = self.resign_chunk(header, &data)?;
            self.out.extend([header, data]);
        }
        self.held_crlf = true;
        Ok(State::Header)
    }

    fn on_trailer_line(&mut self, line: &[u8]) -> Result<(), ChunkError> {
        let start = self.tail.len();
        self.tail.extend_from_slice(line);
        let (content, crlf) = match line.strip_suffix(CRLF) {
            Some(c) => (c, true),
            None => (&line[..line.len() - 1], false),
        };
        if content.is_empty() {
            return match (crlf, std::mem::replace(&mut self.prev_crlf, crlf)) {
                (true, true) => self.finish_trailers(),
                (false, true) => Err(ChunkError::BadTrailer), // a bare "\n" line after a CRLF line
                (_, false) => Ok(()),                         // minio-go: "name:value\n" then "\r\n"
            };
        }
        let colon = content.iter().position(|&b| b == b':').filter(|&i| i > 0);
        // No trailers in `Signed` mode, and nothing but the end after the trailer signature.
        let no_more = self.mode == Mode::Signed || self.trailer_sig_at.is_some();
        let Some(colon) = colon.filter(|_| !no_more) else {
            return Err(ChunkError::BadTrailer);
        };
        let (name, raw_value) = (&content[..colon], &content[colon + 1..]);
        let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
        if !name.iter().all(token) || raw_value.iter().any(|&b| b != b'\t' && b.is_ascii_control()) {
            return Err(ChunkError::BadTrailer);
        }
        let (value, lead) = trim_ws(raw_value);
        if self.mode == Mode::SignedTrailer && name.eq_ignore_ascii_case(TRAILER_SIG_NAME) {
            if !is_sig(value) {
                return Err(ChunkError::BadTrailerSignature);
            }
            self.trailer_sig_at = Some(start + colon + 1 + lead);
        } else {
            // Only a trailer the client declared (in the signed `x-amz-trailer`), once.
            let lower = name.to_ascii_lowercase();
            if !self.declared.contains(&lower) || self.seen_trailers.contains(&lower) {
                return Err(ChunkError::BadTrailer);
            }
            self.seen_trailers.push(lower);
        }
        if self.mode == Mode::SignedTrailer && !name.eq_ignore_ascii_case(TRAILER_SIG_NAME) {
            self.canonical.extend(name.iter().map(u8::to_ascii_lowercase));
            self.canonical.push(b':');
            self.canonical.extend_from_slice(value);
            self.canonical.push(b'\n');
        }
        self.prev_crlf = crlf;
        Ok(())
    }

    fn finish_trailers(&mut self) -> Result<(), ChunkError> {
        if self.mode == Mode::SignedTrailer {
            let at = self.trailer_sig_at.ok_or(ChunkError::MissingTrailerSignature)?;
            let client = self.client.as_mut().ok_or(ChunkError::MissingChain)?;
            let expected = client.trailer_signature(&self.canonical);
            if !bool::from(expected.as_bytes().ct_eq(&self.tail[at..at + SIG_LEN])) {
                return Err(ChunkError::BadTrailerSignature);
            }
            if let Some(origin) = self.origin.as_mut() {
                let sig = origin.trailer_signature(&self.canonical);
                self.tail[at..at + SIG_LEN].copy_from_slice(sig.as_bytes());
            }
        }
        self.state = State::Done;
        Ok(())
    }

    /// Bytes held by the rewriter itself (not counting the upstream's current input item).
    #[cfg(test)]
    fn buffered(&self) -> usize {
        let held = [self.line.len(), self.header.len(), self.data.len(), self.whole.len(), self.tail.len()];
        held.iter().sum::<usize>() + self.out.iter().map(Bytes::len).sum::<usize>()
    }
}

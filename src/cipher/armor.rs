//! ASCII armor for age v1 files (the C2SP age spec's "ASCII armor"), sans-IO.
//!
//! An armored file is the binary age file in strict PEM: the line
//! `-----BEGIN AGE ENCRYPTED FILE-----`, canonical padded standard base64
//! wrapped at exactly 64 columns (only the last line shorter, never empty),
//! the line `-----END AGE ENCRYPTED FILE-----`. Lines end in LF or CRLF; the
//! END line may end the input without one. No PEM headers, no checksum.
//! Whitespace is allowed before the BEGIN line (the decryptor's header limit
//! bounds it) and after the END line (at most [`MAX_TRAILING_WHITESPACE`]
//! bytes, as Go's `age` allows); anything else after the END line is an error.
//!
//! Why our own codec rather than `age::armor::ArmoredReader`: that reader
//! is `std::io`/`futures::io` only (our decryptor is sans-IO and the CLI is
//! on tokio), and it is not as strict as the CCTV vectors require: it
//! decides armored-or-not from the first 36 bytes alone, so whitespace
//! before the BEGIN line (`armor_whitespace_outside`, which age accepts) is
//! read as a broken binary header, and it accepts any amount of whitespace
//! after the END line.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::error::ArmorError;

/// The armor's first line.
pub(crate) const BEGIN_LINE: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
/// The armor's last line.
const END_LINE: &[u8] = b"-----END AGE ENCRYPTED FILE-----";
/// Base64 columns per full line.
const COLUMNS: usize = 64;
/// Binary bytes per full line.
const BYTES_PER_LINE: usize = COLUMNS / 4 * 3;
/// Longest valid line with its CRLF: anything longer is rejected without
/// waiting for its end.
const MAX_LINE: usize = COLUMNS + 2;
/// Text bytes taken per input call.
const TEXT_READ: usize = 4096;
/// Whitespace accepted after the END line.
pub(crate) const MAX_TRAILING_WHITESPACE: usize = 1024;

/// Whether `b` is whitespace that may surround an armored file.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DecodeState {
    /// Expecting the BEGIN line.
    Begin,
    /// Expecting a base64 line or the END line.
    Lines,
    /// A short line was seen: only the END line may follow.
    End,
    /// After the END line: only whitespace.
    Trailing { seen: usize },
}

/// Armored text in, the binary age file out.
#[derive(Debug)]
pub(crate) struct ArmorDecoder {
    state: DecodeState,
    /// Text not yet parsed: `text[..text_len]`, at most one partial line
    /// once everything complete has been parsed.
    text: Vec<u8>,
    text_len: usize,
    /// Decoded bytes of the current line not yet handed out.
    line: [u8; BYTES_PER_LINE],
    line_range: (usize, usize),
    /// 1-based number of the next line to parse (the BEGIN line is 1).
    line_no: usize,
    eof: bool,
}

impl ArmorDecoder {
    /// A decoder that starts with `text`, whose first line must be the
    /// BEGIN line (leading whitespace already skipped).
    pub(crate) fn new(text: &[u8]) -> Self {
        let mut buf = vec![0u8; text.len().max(TEXT_READ)];
        buf[..text.len()].copy_from_slice(text);
        ArmorDecoder {
            state: DecodeState::Begin,
            text: buf,
            text_len: text.len(),
            line: [0; BYTES_PER_LINE],
            line_range: (0, 0),
            line_no: 1,
            eof: false,
        }
    }

    /// Where the next text bytes go; follow with [`commit`](Self::commit).
    pub(crate) fn input_buffer(&mut self) -> &mut [u8] {
        if self.text.len() - self.text_len < TEXT_READ / 2 {
            self.text.resize(self.text_len + TEXT_READ, 0);
        }
        &mut self.text[self.text_len..]
    }

    /// Accounts for `n` bytes written into [`input_buffer`](Self::input_buffer).
    pub(crate) fn commit(&mut self, n: usize) {
        assert!(self.text_len + n <= self.text.len(), "committed too much");
        self.text_len += n;
    }

    /// Marks the end of the text: a last line without a newline counts.
    pub(crate) fn finish(&mut self) {
        self.eof = true;
    }

    /// Decodes into `out`; returns the bytes written (0: more text is
    /// needed, or the END line was reached).
    pub(crate) fn read(&mut self, out: &mut [u8]) -> Result<usize, ArmorError> {
        let mut written = 0;
        while written < out.len() {
            if self.line_range.0 == self.line_range.1 && !self.next_line()? {
                break;
            }
            let (start, end) = self.line_range;
            let n = (end - start).min(out.len() - written);
            out[written..written + n].copy_from_slice(&self.line[start..start + n]);
            self.line_range.0 += n;
            written += n;
        }
        Ok(written)
    }

    /// Whether the input was complete: the END line seen, only whitespace
    /// after it. Call after [`finish`](Self::finish) once [`read`](Self::read)
    /// returned 0 (which parsed all the text).
    pub(crate) fn check_complete(&self) -> Result<(), ArmorError> {
        match self.state {
            DecodeState::Trailing { .. } => Ok(()),
            _ => Err(ArmorError::MissingEndLine),
        }
    }

    /// Parses the next complete line; false when none is complete yet.
    fn next_line(&mut self) -> Result<bool, ArmorError> {
        loop {
            if let DecodeState::Trailing { seen } = self.state {
                let text = &self.text[..self.text_len];
                if text.iter().any(|&b| !is_space(b)) {
                    return Err(ArmorError::TrailingData);
                }
                let seen = seen + text.len();
                if seen > MAX_TRAILING_WHITESPACE {
                    return Err(ArmorError::TooMuchTrailingWhitespace);
                }
                self.state = DecodeState::Trailing { seen };
                self.text_len = 0;
                return Ok(false);
            }
            let pending = &self.text[..self.text_len];
            let (line_len, taken) = match pending.iter().position(|&b| b == b'\n') {
                Some(nl) => (nl, nl + 1),
                // Too long to be valid: parse it now, it fails.
                None if pending.len() > MAX_LINE || (self.eof && !pending.is_empty()) => {
                    (pending.len(), pending.len())
                }
                None => return Ok(false),
            };
            let line = &pending[..line_len];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let decoded = parse_line(&mut self.state, self.line_no, line, &mut self.line)?;
            self.text.copy_within(taken..self.text_len, 0);
            self.text_len -= taken;
            self.line_no += 1;
            if let Some(n) = decoded {
                self.line_range = (0, n);
                return Ok(true);
            }
        }
    }
}

/// Checks line `line_no` (without its line ending) against the decoder's
/// `state`; decodes a base64 line into `out` and returns its length.
fn parse_line(
    state: &mut DecodeState,
    line_no: usize,
    line: &[u8],
    out: &mut [u8; BYTES_PER_LINE],
) -> Result<Option<usize>, ArmorError> {
    match *state {
        DecodeState::Begin if line == BEGIN_LINE => {
            *state = DecodeState::Lines;
            Ok(None)
        }
        DecodeState::Begin => Err(ArmorError::BadBeginLine),
        DecodeState::Lines | DecodeState::End if line == END_LINE => {
            *state = DecodeState::Trailing { seen: 0 };
            Ok(None)
        }
        DecodeState::End => Err(ArmorError::ExpectedEndLine { line: line_no }),
        DecodeState::Lines => {
            if line.is_empty() {
                return Err(ArmorError::EmptyLine { line: line_no });
            }
            // Base64 has no `-`: a damaged or truncated END line.
            if line.starts_with(b"-") {
                return Err(ArmorError::BadEndLine { line: line_no });
            }
            if line.len() > COLUMNS {
                return Err(ArmorError::LineTooLong { line: line_no });
            }
            // The standard engine rejects missing padding and non-zero
            // trailing bits: only canonical base64 decodes.
            let n = STANDARD
                .decode_slice(line, out)
                .map_err(|_| ArmorError::InvalidBase64 { line: line_no })?;
            if n < BYTES_PER_LINE {
                *state = DecodeState::End;
            }
            Ok(Some(n))
        }
        DecodeState::Trailing { .. } => unreachable!("handled by next_line"),
    }
}

/// The binary age file in, armored text out.
#[derive(Debug)]
pub(crate) struct ArmorEncoder {
    text: Vec<u8>,
    taken: usize,
    partial: [u8; BYTES_PER_LINE],
    partial_len: usize,
    finished: bool,
}

impl ArmorEncoder {
    /// An encoder whose output starts with the BEGIN line.
    pub(crate) fn new() -> Self {
        let mut text = BEGIN_LINE.to_vec();
        text.push(b'\n');
        ArmorEncoder {
            text,
            taken: 0,
            partial: [0; BYTES_PER_LINE],
            partial_len: 0,
            finished: false,
        }
    }

    /// Encodes all of `data`.
    pub(crate) fn encode(&mut self, mut data: &[u8]) {
        assert!(!self.finished, "armor already finished");
        self.compact();
        while !data.is_empty() {
            let n = data.len().min(BYTES_PER_LINE - self.partial_len);
            self.partial[self.partial_len..self.partial_len + n].copy_from_slice(&data[..n]);
            self.partial_len += n;
            data = &data[n..];
            if self.partial_len == BYTES_PER_LINE {
                self.push_line();
            }
        }
    }

    /// Writes the last (short) line and the END line. Idempotent.
    pub(crate) fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.compact();
        if self.partial_len > 0 {
            self.push_line();
        }
        self.text.extend_from_slice(END_LINE);
        self.text.push(b'\n');
        self.finished = true;
    }

    /// Text ready to be sent.
    pub(crate) fn output(&self) -> &[u8] {
        &self.text[self.taken..]
    }

    /// Marks `n` bytes of [`output`](Self::output) as sent.
    pub(crate) fn consume(&mut self, n: usize) {
        assert!(n <= self.output().len(), "consumed more than available");
        self.taken += n;
    }

    fn compact(&mut self) {
        self.text.drain(..self.taken);
        self.taken = 0;
    }

    fn push_line(&mut self) {
        let mut line = [0u8; COLUMNS];
        let n = STANDARD
            .encode_slice(&self.partial[..self.partial_len], &mut line)
            .expect("48 bytes fit in 64 columns");
        self.text.extend_from_slice(&line[..n]);
        self.text.push(b'\n');
        self.partial_len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &[u8]) -> Result<Vec<u8>, ArmorError> {
        let mut dec = ArmorDecoder::new(&[]);
        let space = dec.input_buffer();
        assert!(space.len() >= text.len());
        space[..text.len()].copy_from_slice(text);
        dec.commit(text.len());
        dec.finish();
        let mut out = vec![0u8; 4096];
        let mut total = 0;
        loop {
            let n = dec.read(&mut out[total..])?;
            if n == 0 {
                break;
            }
            total += n;
        }
        dec.check_complete()?;
        out.truncate(total);
        Ok(out)
    }

    fn encode(data: &[u8]) -> Vec<u8> {
        let mut enc = ArmorEncoder::new();
        enc.encode(data);
        enc.finish();
        enc.output().to_vec()
    }

    #[test]
    fn round_trips_every_length_around_a_line() {
        for len in [0, 1, 2, 3, 47, 48, 49, 95, 96, 97, 1000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let text = encode(&data);
            assert!(text.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----\n"));
            assert!(text.ends_with(b"\n-----END AGE ENCRYPTED FILE-----\n"));
            for line in text.split(|&b| b == b'\n') {
                assert!(line.len() <= 64, "{len}: line of {}", line.len());
            }
            assert_eq!(decode(&text).unwrap(), data, "length {len}");
        }
    }

    #[test]
    fn names_each_armor_problem() {
        let good = encode(&[0x5a; 100]);
        let text = String::from_utf8(good.clone()).unwrap();
        let cases: Vec<(Vec<u8>, ArmorError)> = vec![
            (
                text.replace("BEGIN AGE", "BEGIN age").into_bytes(),
                ArmorError::BadBeginLine,
            ),
            (
                good[..good.len() - 10].to_vec(),
                ArmorError::ExpectedEndLine { line: 5 },
            ),
            (good[..good.len() - 33].to_vec(), ArmorError::MissingEndLine),
            (
                text.replacen('\n', "\n\n", 1).into_bytes(),
                ArmorError::EmptyLine { line: 2 },
            ),
            (
                text.replacen("Wl", "W*", 1).into_bytes(),
                ArmorError::InvalidBase64 { line: 2 },
            ),
            (format!("{text}x").into_bytes(), ArmorError::TrailingData),
            (
                format!("{text}{}", " ".repeat(MAX_TRAILING_WHITESPACE + 1)).into_bytes(),
                ArmorError::TooMuchTrailingWhitespace,
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                decode(&input),
                Err(expected.clone()),
                "{}",
                String::from_utf8_lossy(&input)
            );
        }
    }

    #[test]
    fn a_line_longer_than_64_columns_is_rejected() {
        let data = STANDARD.encode([1u8; 51]);
        let text = format!(
            "-----BEGIN AGE ENCRYPTED FILE-----\n{data}\n-----END AGE ENCRYPTED FILE-----\n"
        );
        assert_eq!(
            decode(text.as_bytes()),
            Err(ArmorError::LineTooLong { line: 2 })
        );
    }

    #[test]
    fn crlf_and_a_missing_final_newline_are_accepted() {
        let text = String::from_utf8(encode(b"hello")).unwrap();
        let crlf = text.replace('\n', "\r\n");
        assert_eq!(decode(crlf.as_bytes()).unwrap(), b"hello");
        assert_eq!(decode(text.trim_end().as_bytes()).unwrap(), b"hello");
        let spaced = format!("{text} \t\r\n");
        assert_eq!(decode(spaced.as_bytes()).unwrap(), b"hello");
    }

    /// The encryptor's armor through the decryptor, several chunks, fed in
    /// small pieces; without `accept_armor` armor stays unsupported.
    #[test]
    fn armored_files_round_trip_through_the_cipher() {
        use crate::cipher::{Decryptor, Encryptor, Error, Format, Unsupported};
        let id = age::x25519::Identity::generate();
        let plain: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut enc = Encryptor::with_recipients(Format::AgeV1, vec![Box::new(id.to_public())])
            .unwrap()
            .armored()
            .unwrap();
        let text = enc.encrypt_all(&plain).unwrap();
        assert!(text.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----\n"));
        assert!(text.is_ascii());

        let mut dec = Decryptor::with_identities(vec![Box::new(id.clone())]).accept_armor(true);
        let mut out = Vec::new();
        for piece in text.chunks(1000) {
            let mut piece = piece;
            while !piece.is_empty() {
                let n = dec.feed(piece).unwrap();
                piece = &piece[n..];
                out.extend_from_slice(dec.plaintext());
                dec.consume_plaintext(dec.plaintext().len());
            }
        }
        loop {
            dec.finish().unwrap();
            if dec.plaintext().is_empty() {
                break;
            }
            out.extend_from_slice(dec.plaintext());
            dec.consume_plaintext(dec.plaintext().len());
        }
        assert_eq!(out, plain);

        let refused = Decryptor::with_identities(vec![Box::new(id)]).decrypt_all(&text);
        assert_eq!(refused, Err(Error::Unsupported(Unsupported::Armor)));
        let age_rt = Encryptor::with_recipients(
            Format::AgeRt,
            vec![Box::new(age::x25519::Identity::generate().to_public())],
        )
        .unwrap()
        .armored();
        assert_eq!(
            age_rt.err(),
            Some(Error::Unsupported(Unsupported::ArmoredAgeRt))
        );
    }
}

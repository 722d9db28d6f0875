//! The status lines of a `PUT` response: the `[STATE:…]` / `[ERROR:…]`
//! line grammar, its encoder (the relay's) and its decoder (the client's).
//!
//! Sans-IO: [`StatusLine::encode`] gives the bytes of one line,
//! [`StatusLine::parse`] reads one line back. With the `client` feature,
//! [`StatusLineCodec`] is a [`tokio_util::codec::Decoder`] that splits a
//! response body into lines; the client's upload task wires it to the `PUT`
//! response body.
//!
//! ```
//! use zebrastream::protocol::StatusLine;
//!
//! let line = StatusLine::transfer_successful();
//! assert_eq!(line.encode(), "[STATE:TRANSFER_SUCCESSFUL]\n");
//! assert!(StatusLine::parse(&line.encode()).is_success());
//! ```

use std::fmt;

/// The state name the relay sends first, once the producer is paired.
pub const CONNECTED: &str = "CONNECTED";
/// The state name the relay sends last when the consumer received every byte.
pub const TRANSFER_SUCCESSFUL: &str = "TRANSFER_SUCCESSFUL";
/// The error name the relay sends when the consumer went away early.
pub const RECEIVER_PREMATURE_DISCONNECT: &str = "RECEIVER_PREMATURE_DISCONNECT";
/// The longest status line accepted (the known lines are under 50 bytes).
pub const MAX_STATUS_LINE: usize = 1024;

/// One line of the `PUT` response body.
///
/// State and error names are upper-case words (`[A-Z0-9_]`), as the known
/// ones above; a line built from anything else may not read back the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusLine {
    /// `[STATE:<name>]`: progress or, for `TRANSFER_SUCCESSFUL`, the final confirmation.
    State(String),
    /// `[ERROR:<name>]`: the relay reports a failure.
    Error(String),
    /// Any other line (kept for diagnostics, otherwise ignored like the official client does).
    Other(String),
}

impl StatusLine {
    /// `[STATE:CONNECTED]`: the producer is paired, bytes flow.
    pub fn connected() -> Self {
        StatusLine::State(CONNECTED.to_owned())
    }

    /// `[STATE:TRANSFER_SUCCESSFUL]`: the consumer received every byte.
    pub fn transfer_successful() -> Self {
        StatusLine::State(TRANSFER_SUCCESSFUL.to_owned())
    }

    /// `[ERROR:RECEIVER_PREMATURE_DISCONNECT]`: the consumer left before the end.
    pub fn receiver_premature_disconnect() -> Self {
        StatusLine::Error(RECEIVER_PREMATURE_DISCONNECT.to_owned())
    }

    /// Parses one line (without its line terminator; trailing whitespace is ignored).
    pub fn parse(line: &str) -> StatusLine {
        let line = line.trim_end();
        let tagged = |tag: &str| {
            line.strip_prefix(tag)
                .and_then(|rest| rest.strip_suffix(']'))
                .map(str::to_owned)
        };
        if let Some(name) = tagged("[STATE:") {
            StatusLine::State(name)
        } else if let Some(name) = tagged("[ERROR:") {
            StatusLine::Error(name)
        } else {
            StatusLine::Other(line.to_owned())
        }
    }

    /// The line as sent: its text and a `\n`.
    pub fn encode(&self) -> String {
        format!("{self}\n")
    }

    /// True for `[STATE:TRANSFER_SUCCESSFUL]`.
    pub fn is_success(&self) -> bool {
        matches!(self, StatusLine::State(name) if name == TRANSFER_SUCCESSFUL)
    }
}

impl fmt::Display for StatusLine {
    /// The line without its terminator.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusLine::State(name) => write!(f, "[STATE:{name}]"),
            StatusLine::Error(name) => write!(f, "[ERROR:{name}]"),
            StatusLine::Other(line) => f.write_str(line),
        }
    }
}

#[cfg(feature = "client")]
#[cfg_attr(docsrs, doc(cfg(feature = "client")))]
pub use codec::{StatusLineCodec, StatusLineError};

/// The tokio-util decoder of a status channel (the client's side).
#[cfg(feature = "client")]
mod codec {
    use bytes::{Buf, BytesMut};
    use tokio_util::codec::Decoder;

    use super::{StatusLine, MAX_STATUS_LINE};

    /// Errors of the [`StatusLineCodec`].
    #[derive(Debug, thiserror::Error)]
    pub enum StatusLineError {
        /// A line exceeded [`MAX_STATUS_LINE`] bytes.
        #[error("status line longer than {max} bytes")]
        TooLong {
            /// The limit.
            max: usize,
        },
        /// Reading the response body failed.
        #[error(transparent)]
        Io(#[from] std::io::Error),
    }

    /// Splits the status channel into [`StatusLine`]s (`\n` or `\r\n` terminated;
    /// a last line without terminator is also returned). Invalid UTF-8 is
    /// replaced, never fatal.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use tokio_util::codec::Decoder;
    /// use zebrastream::protocol::{StatusLine, StatusLineCodec};
    ///
    /// let mut codec = StatusLineCodec::default();
    /// let mut buf = BytesMut::from(&b"[STATE:CONNECTED]\r\n[STATE:TRANSFER_SUCC"[..]);
    /// assert_eq!(codec.decode(&mut buf).unwrap(), Some(StatusLine::State("CONNECTED".into())));
    /// assert_eq!(codec.decode(&mut buf).unwrap(), None); // needs more bytes
    /// buf.extend_from_slice(b"ESSFUL]\n");
    /// assert!(codec.decode(&mut buf).unwrap().unwrap().is_success());
    /// ```
    #[derive(Debug)]
    pub struct StatusLineCodec {
        max_len: usize,
        /// How far the current buffer was already searched for `\n`.
        searched: usize,
    }

    impl StatusLineCodec {
        /// A codec that rejects lines longer than `max_len` bytes.
        pub fn new(max_len: usize) -> Self {
            StatusLineCodec {
                max_len,
                searched: 0,
            }
        }

        fn take_line(&mut self, src: &mut BytesMut, len: usize, skip: usize) -> StatusLine {
            let line = src.split_to(len);
            src.advance(skip);
            self.searched = 0;
            StatusLine::parse(&String::from_utf8_lossy(&line))
        }
    }

    impl Default for StatusLineCodec {
        fn default() -> Self {
            Self::new(MAX_STATUS_LINE)
        }
    }

    impl Decoder for StatusLineCodec {
        type Item = StatusLine;
        type Error = StatusLineError;

        fn decode(&mut self, src: &mut BytesMut) -> Result<Option<StatusLine>, StatusLineError> {
            loop {
                let newline = src[self.searched..].iter().position(|b| *b == b'\n');
                match newline {
                    Some(offset) => {
                        let end = self.searched + offset;
                        if end > self.max_len + 1 {
                            return Err(StatusLineError::TooLong { max: self.max_len });
                        }
                        let line = self.take_line(src, end, 1);
                        // Blank lines (keep-alives) carry nothing.
                        if matches!(&line, StatusLine::Other(l) if l.is_empty()) {
                            continue;
                        }
                        return Ok(Some(line));
                    }
                    None => {
                        self.searched = src.len();
                        // +1 leaves room for a `\r` before the `\n`.
                        if src.len() > self.max_len + 1 {
                            return Err(StatusLineError::TooLong { max: self.max_len });
                        }
                        return Ok(None);
                    }
                }
            }
        }

        fn decode_eof(
            &mut self,
            src: &mut BytesMut,
        ) -> Result<Option<StatusLine>, StatusLineError> {
            if let Some(line) = self.decode(src)? {
                return Ok(Some(line));
            }
            if src.iter().all(u8::is_ascii_whitespace) {
                src.clear();
                return Ok(None);
            }
            let len = src.len();
            Ok(Some(self.take_line(src, len, 0)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_lines() {
        assert!(StatusLine::parse("[STATE:TRANSFER_SUCCESSFUL]\r").is_success());
        assert_eq!(
            StatusLine::parse("[ERROR:RECEIVER_PREMATURE_DISCONNECT]"),
            StatusLine::Error(RECEIVER_PREMATURE_DISCONNECT.into())
        );
        assert_eq!(
            StatusLine::parse("[STATE:CONNECTED]"),
            StatusLine::State("CONNECTED".into())
        );
        assert_eq!(
            StatusLine::parse("hello"),
            StatusLine::Other("hello".into())
        );
        assert!(!StatusLine::parse("[STATE:TRANSFER_SUCCESSFUL").is_success());
    }

    #[test]
    fn known_lines_encode_as_the_relay_sends_them() {
        assert_eq!(StatusLine::connected().encode(), "[STATE:CONNECTED]\n");
        assert_eq!(
            StatusLine::transfer_successful().encode(),
            "[STATE:TRANSFER_SUCCESSFUL]\n"
        );
        assert_eq!(
            StatusLine::receiver_premature_disconnect().encode(),
            "[ERROR:RECEIVER_PREMATURE_DISCONNECT]\n"
        );
        assert!(StatusLine::transfer_successful().is_success());
        assert!(!StatusLine::connected().is_success());
        assert!(!StatusLine::Error(TRANSFER_SUCCESSFUL.into()).is_success());
    }

    /// A state or error line with any well-formed name.
    fn named_line() -> impl proptest::strategy::Strategy<Value = StatusLine> {
        use proptest::prelude::*;
        (any::<bool>(), "[A-Z0-9_]{1,40}").prop_map(|(state, name)| {
            if state {
                StatusLine::State(name)
            } else {
                StatusLine::Error(name)
            }
        })
    }

    proptest::proptest! {
        /// Every line the encoder writes parses back to itself.
        #[test]
        fn encode_then_parse_is_the_same_line(line in named_line()) {
            proptest::prop_assert_eq!(StatusLine::parse(&line.encode()), line);
        }
    }

    #[cfg(feature = "client")]
    mod codec {
        use super::*;
        use bytes::BytesMut;
        use tokio_util::codec::Decoder;

        fn decode_all(chunks: &[&[u8]]) -> Result<Vec<StatusLine>, StatusLineError> {
            let mut codec = StatusLineCodec::new(64);
            let mut buf = BytesMut::new();
            let mut out = Vec::new();
            for chunk in chunks {
                buf.extend_from_slice(chunk);
                while let Some(line) = codec.decode(&mut buf)? {
                    out.push(line);
                }
            }
            while let Some(line) = codec.decode_eof(&mut buf)? {
                out.push(line);
            }
            Ok(out)
        }

        proptest::proptest! {
            /// The relay and the client agree: a status channel written with
            /// the relay's encoder, cut anywhere, reads back through the
            /// client's codec as the very same lines.
            #[test]
            fn the_codec_reads_what_the_encoder_wrote(
                lines in proptest::collection::vec(named_line(), 0..8),
                cut in 0usize..400,
            ) {
                let body: String = lines.iter().map(StatusLine::encode).collect();
                let cut = cut.min(body.len());
                let (head, tail) = body.as_bytes().split_at(cut);
                proptest::prop_assert_eq!(decode_all(&[head, tail]).unwrap(), lines);
            }
        }

        #[test]
        fn splits_lines_across_chunks() {
            let lines = decode_all(&[
                b"[STATE:CONN",
                b"ECTED]\r\n\n[STATE:TRANSFER_",
                b"SUCCESSFUL]\n",
            ])
            .unwrap();
            assert_eq!(
                lines,
                vec![
                    StatusLine::State("CONNECTED".into()),
                    StatusLine::State("TRANSFER_SUCCESSFUL".into())
                ]
            );
        }

        #[test]
        fn last_line_without_newline_is_returned() {
            let lines = decode_all(&[b"[STATE:A]\n[STATE:TRANSFER_SUCCESSFUL]"]).unwrap();
            assert!(lines.last().unwrap().is_success());
        }

        #[test]
        fn overlong_line_is_an_error() {
            let long = vec![b'x'; 100];
            assert!(matches!(
                decode_all(&[&long]),
                Err(StatusLineError::TooLong { max: 64 })
            ));
            let mut with_newline = long.clone();
            with_newline.push(b'\n');
            assert!(matches!(
                decode_all(&[&with_newline]),
                Err(StatusLineError::TooLong { .. })
            ));
        }

        proptest::proptest! {
            /// Decoding does not depend on where the body is split into chunks.
            #[test]
            fn chunk_boundaries_do_not_matter(
                lines in proptest::collection::vec("[A-Z_:\\[\\] ]{0,40}", 0..8),
                cuts in proptest::collection::vec(0usize..400, 0..6),
                crlf in proptest::bool::ANY,
            ) {
                let eol = if crlf { "\r\n" } else { "\n" };
                let text: String = lines.iter().map(|l| format!("{l}{eol}")).collect();
                let bytes = text.as_bytes();
                let whole = decode_all(&[bytes]).unwrap();
                let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
                cuts.sort_unstable();
                let mut pieces = Vec::new();
                let mut start = 0;
                for cut in cuts {
                    pieces.push(&bytes[start..cut]);
                    start = cut;
                }
                pieces.push(&bytes[start..]);
                proptest::prop_assert_eq!(decode_all(&pieces).unwrap(), whole);
            }
        }

        #[test]
        fn invalid_utf8_is_replaced() {
            let lines = decode_all(&[b"\xff[x\n"]).unwrap();
            assert_eq!(lines, vec![StatusLine::Other("\u{fffd}[x".into())]);
        }
    }
}

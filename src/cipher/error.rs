//! The cipher layer's error type.
//!
//! One enum, [`Error`], with sub-enums for the header ([`HeaderError`]), the
//! chunk framing ([`ProtocolError`]), features we do not implement
//! ([`Unsupported`]) and key material ([`KeyError`]). Nothing in here ever
//! carries secret material: messages name the problem, never a key or a
//! passphrase.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong while encrypting or decrypting a stream.
///
/// At the `std::io` / `tokio::io` boundary the adapters wrap it in an
/// [`io::Error`]; [`Error::from_io`] gets it back out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The header is malformed, names an unknown format, or its MAC is wrong.
    #[error("header error: {0}")]
    Header(#[from] HeaderError),
    /// No identity (passphrase or key) could unwrap the file key.
    #[error("no identity matched: wrong passphrase or key")]
    NoMatchingIdentity,
    /// A payload chunk failed authentication (tampered, reordered, or the wrong key).
    #[error("chunk {index} failed authentication")]
    ChunkAuthentication {
        /// Zero-based index of the chunk that failed.
        index: u64,
    },
    /// The input ended before the authenticated final chunk.
    #[error("stream truncated: input ended before the final chunk")]
    Truncated,
    /// The chunk framing is invalid (bad length, trailing data, ...).
    #[error("protocol error: {0}")]
    Protocol(#[from] ProtocolError),
    /// The ASCII armor around an age v1 file is malformed.
    #[error("invalid armor: {0}")]
    Armor(#[from] ArmorError),
    /// The stream or key uses a feature this implementation does not support.
    #[error("unsupported: {0}")]
    Unsupported(#[from] Unsupported),
    /// A recipient, identity or key file could not be parsed.
    #[error("key error: {0}")]
    Key(#[from] KeyError),
    /// An age plugin (`age-plugin-NAME`) is missing or failed.
    #[error("age plugin: {0}")]
    Plugin(#[from] PluginError),
    /// The encryptor could not be built from the given recipients.
    #[error("invalid recipients: {0}")]
    InvalidRecipients(&'static str),
    /// Two recipients declare different labels (age's rule: every recipient
    /// in a header has the same labels), other than scrypt and
    /// post-quantum next to classic, which [`Error::InvalidRecipients`]
    /// names.
    #[error(
        "incompatible recipients: one has the labels [{first}], another [{other}]; \
         age puts only recipients with the same labels in one header"
    )]
    IncompatibleLabels {
        /// The first recipient's labels, comma-separated.
        first: String,
        /// The differing recipient's labels.
        other: String,
    },
    /// Plaintext was written after `finish`.
    #[error("the stream is already finished")]
    Finished,
}

/// Header problems, found before any payload byte is released.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The first line is not a format identifier we know.
    #[error("unknown format identifier {0:?}")]
    UnknownIdentifier(String),
    /// The header violates the age header grammar.
    #[error("malformed header: {0}")]
    Malformed(&'static str),
    /// A base64 field is not canonical unpadded base64 wrapped at 64 columns.
    #[error("non-canonical base64 in {0}")]
    NonCanonicalBase64(&'static str),
    /// The header grew past the limit before its terminator line.
    #[error("header larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A recipient stanza we understand is malformed.
    #[error("invalid {tag} stanza")]
    InvalidStanza {
        /// The stanza type, e.g. `scrypt` or `X25519`.
        tag: String,
    },
    /// A `scrypt` stanza appears together with other stanzas (age forbids it).
    #[error("an scrypt stanza must be the only stanza")]
    ScryptNotAlone,
    /// The scrypt work factor exceeds the bound this decryptor accepts.
    #[error("scrypt work factor 2^{log_n} exceeds the accepted maximum 2^{max}")]
    ScryptWorkFactorTooHigh {
        /// The work factor in the stanza (log2 N).
        log_n: u8,
        /// The largest accepted work factor (log2 N).
        max: u8,
    },
    /// The header MAC does not verify: the header was modified.
    #[error("header MAC verification failed")]
    BadMac,
}

/// Framing problems in the payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// An age-rt length prefix outside `16..=65552`.
    #[error("chunk length {0} outside 16..=65552")]
    BadChunkLength(u32),
    /// Bytes follow the authenticated final chunk.
    #[error("trailing data after the final chunk")]
    TrailingData,
    /// (Strict age v1 only) the final chunk is empty although the payload is not.
    #[error("empty final chunk after a non-empty payload")]
    EmptyFinalChunk,
    /// The chunk counter would wrap (more than 2^64 chunks).
    #[error("chunk counter overflow")]
    CounterOverflow,
}

/// A feature this implementation recognises but does not implement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unsupported {
    /// A key of a type we cannot use, e.g. a passphrase-protected SSH key.
    #[error("key type {0}")]
    KeyType(String),
    /// ASCII-armored input to a decryptor that does not
    /// [accept armor](super::Decryptor::accept_armor).
    #[error("ASCII armor")]
    Armor,
    /// ASCII armor for age-rt: the armor is defined for age v1 files only.
    #[error("ASCII armor for age-rt (armor is defined for age v1 only)")]
    ArmoredAgeRt,
}

/// Violations of the age ASCII armor rules (C2SP age spec): what is wrong,
/// and on which line (the BEGIN line is line 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ArmorError {
    /// The first line is not exactly `-----BEGIN AGE ENCRYPTED FILE-----`.
    #[error("the first line is not `-----BEGIN AGE ENCRYPTED FILE-----`")]
    BadBeginLine,
    /// An empty line between the BEGIN and END lines.
    #[error("line {line} is empty")]
    EmptyLine {
        /// 1-based line number.
        line: usize,
    },
    /// A base64 line longer than 64 columns.
    #[error("line {line} is longer than 64 columns")]
    LineTooLong {
        /// 1-based line number.
        line: usize,
    },
    /// A line that is not canonical padded base64.
    #[error("line {line} is not canonical padded base64")]
    InvalidBase64 {
        /// 1-based line number.
        line: usize,
    },
    /// A line that starts like the END line (with `-`) but is not it.
    #[error("line {line} is not `-----END AGE ENCRYPTED FILE-----`")]
    BadEndLine {
        /// 1-based line number.
        line: usize,
    },
    /// A line after a short base64 line that is not the END line.
    #[error(
        "line {line} is not `-----END AGE ENCRYPTED FILE-----` although the line before \
         was shorter than 64 columns (only the last base64 line may be short)"
    )]
    ExpectedEndLine {
        /// 1-based line number.
        line: usize,
    },
    /// The input ended before the END line.
    #[error("the input ended before the line `-----END AGE ENCRYPTED FILE-----`")]
    MissingEndLine,
    /// Something other than whitespace after the END line.
    #[error("data after the END line")]
    TrailingData,
    /// More whitespace after the END line than age accepts.
    #[error("more than 1024 bytes of whitespace after the END line")]
    TooMuchTrailingWhitespace,
}

/// Recipient, identity and key-file problems. Never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A recipient string could not be parsed.
    #[error("invalid recipient{}: {reason}", location(.source_name, *.line))]
    InvalidRecipient {
        /// File the recipient came from, if any.
        source_name: Option<String>,
        /// 1-based line number within that file, if any.
        line: Option<usize>,
        /// What is wrong.
        reason: String,
    },
    /// An identity could not be parsed.
    #[error("invalid identity{}: {reason}", location(.source_name, *.line))]
    InvalidIdentity {
        /// File the identity came from, if any.
        source_name: Option<String>,
        /// 1-based line number within that file, if any.
        line: Option<usize>,
        /// What is wrong.
        reason: String,
    },
    /// A key file contains no recipient or identity.
    #[error("no keys found in {0}")]
    Empty(String),
    /// A key file could not be read.
    #[error("cannot read {path}: {kind}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error kind.
        kind: io::ErrorKind,
    },
    /// A passphrase-protected SSH key could not be decrypted.
    #[error("cannot decrypt the passphrase-protected key")]
    KeyDecryption,
}

/// What went wrong with an age plugin; each names the plugin's program.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// A key names a plugin whose program is not on `PATH`.
    #[error("{binary} was not found on PATH (install the plugin, or add its directory to PATH)")]
    NotFound {
        /// The program, `age-plugin-NAME`.
        binary: String,
    },
    /// The plugin could not encrypt to its recipients (it refused a
    /// recipient, failed, or died).
    #[error("{binary} could not encrypt to its recipient: {message}")]
    Wrap {
        /// The program, `age-plugin-NAME`.
        binary: String,
        /// What the plugin said.
        message: String,
    },
    /// The plugin found a stanza for its key but could not open it (a
    /// refused PIN or touch, a failure, or the plugin died).
    #[error("{binary} could not decrypt with its identity: {message}")]
    Unwrap {
        /// The program, `age-plugin-NAME`.
        binary: String,
        /// What the plugin said.
        message: String,
    },
    /// Any other plugin failure.
    #[error("{binary}: {message}")]
    Failed {
        /// The program, `age-plugin-NAME`.
        binary: String,
        /// What went wrong.
        message: String,
    },
}

/// Formats ` in FILE line N` for key errors.
fn location(source_name: &Option<String>, line: Option<usize>) -> String {
    match (source_name, line) {
        (Some(name), Some(line)) => format!(" in {name} line {line}"),
        (Some(name), None) => format!(" in {name}"),
        (None, Some(line)) => format!(" on line {line}"),
        (None, None) => String::new(),
    }
}

impl Error {
    /// Gets the typed cipher error back out of an [`io::Error`] produced by
    /// the adapters ([`DecryptingReader`](super::DecryptingReader),
    /// [`EncryptingWriter`](super::EncryptingWriter)).
    ///
    /// ```
    /// use zebrastream::cipher::Error;
    /// let io_err: std::io::Error = Error::Truncated.into();
    /// assert_eq!(io_err.kind(), std::io::ErrorKind::UnexpectedEof);
    /// assert_eq!(Error::from_io(&io_err), Some(&Error::Truncated));
    /// ```
    pub fn from_io(e: &io::Error) -> Option<&Error> {
        e.get_ref()?.downcast_ref::<Error>()
    }

    /// The [`io::ErrorKind`] this error maps to at the I/O boundary.
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            Error::Truncated => io::ErrorKind::UnexpectedEof,
            Error::Finished
            | Error::InvalidRecipients(_)
            | Error::IncompatibleLabels { .. }
            | Error::Key(_)
            | Error::Plugin(PluginError::NotFound { .. } | PluginError::Wrap { .. }) => {
                io::ErrorKind::InvalidInput
            }
            Error::Unsupported(_) => io::ErrorKind::Unsupported,
            _ => io::ErrorKind::InvalidData,
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        io::Error::new(e.io_kind(), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_round_trip_keeps_the_typed_error() {
        let e: io::Error = Error::ChunkAuthentication { index: 7 }.into();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            Error::from_io(&e),
            Some(&Error::ChunkAuthentication { index: 7 })
        );
        let other = io::Error::other("x");
        assert_eq!(Error::from_io(&other), None);
    }

    /// The I/O kinds callers of the adapters match on: misuse and bad keys
    /// are the caller's input, unsupported features are `Unsupported`.
    #[test]
    fn io_kinds_tell_input_data_and_unsupported_apart() {
        for (error, kind) in [
            (Error::Truncated, io::ErrorKind::UnexpectedEof),
            (Error::Finished, io::ErrorKind::InvalidInput),
            (
                Error::InvalidRecipients("none"),
                io::ErrorKind::InvalidInput,
            ),
            (
                Error::Key(KeyError::Empty("k".into())),
                io::ErrorKind::InvalidInput,
            ),
            (
                Error::Unsupported(Unsupported::Armor),
                io::ErrorKind::Unsupported,
            ),
            (Error::NoMatchingIdentity, io::ErrorKind::InvalidData),
        ] {
            assert_eq!(error.io_kind(), kind, "{error:?}");
        }
    }

    #[test]
    fn key_errors_name_file_and_line() {
        let e = KeyError::InvalidIdentity {
            source_name: Some("keys.txt".into()),
            line: Some(3),
            reason: "not an age identity".into(),
        };
        assert_eq!(
            e.to_string(),
            "invalid identity in keys.txt line 3: not an age identity"
        );
    }
}

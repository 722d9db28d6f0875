//! The client library's error type and its mapping to and from `std::io::Error`.

use std::io;
use std::time::Duration;

use crate::{api, cipher};

/// Everything a [`StreamWriter`](super::StreamWriter),
/// [`StreamReader`](super::StreamReader) or the helpers can fail with.
///
/// At the `AsyncRead`/`AsyncWrite` boundary every error travels inside an
/// [`io::Error`] with a fitting [`io::ErrorKind`]; get it back with
/// [`Error::from_io`]. Messages never contain tokens, passphrases or keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable (bad stream path, URL, content type, buffer size…).
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The relay refused the access token (HTTP 401 or 403).
    #[error("the relay refused the access token (HTTP {status}{})", .reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Auth {
        /// 401 or 403.
        status: u16,
        /// The relay's reason, if it gave one (see [`api::Error::Auth`]).
        reason: Option<String>,
    },
    /// The peer did not connect within the connect timeout.
    #[error("no peer connected within {0:?}")]
    ConnectTimeout(Duration),
    /// The Connect API or the start of the data exchange failed (network
    /// error, unexpected HTTP status, stream busy).
    #[error("could not connect: {0}")]
    Connect(#[source] api::Error),
    /// The peer went away before the end of the stream (the relay sent
    /// `[ERROR:RECEIVER_PREMATURE_DISCONNECT]`).
    #[error("the peer disconnected before the end of the stream")]
    PeerDisconnected,
    /// The stream ended before its end: no final authenticated chunk
    /// (encrypted) or no clean end of the HTTP body (plaintext). Data read so
    /// far is incomplete.
    #[error("the stream was cut off before its end (truncated)")]
    Truncated,
    /// The stream could not be decrypted: wrong passphrase or key (no
    /// matching identity), tampered or corrupt data, or not a stream of a
    /// supported format.
    #[error("decryption failed: {0}")]
    Decryption(#[source] cipher::Error),
    /// The encryption failed: it could not be set up (invalid or incompatible
    /// recipients), or the cipher refused the plaintext while writing.
    #[error("encryption failed: {0}")]
    Encryption(#[source] cipher::Error),
    /// The connection to the relay failed during the transfer.
    #[error("the connection to the relay was lost: {0}")]
    ConnectionLost(#[source] api::Error),
    /// The relay broke the protocol (no confirmation, unknown error line, over-long line…).
    #[error("protocol error: {0}")]
    Protocol(#[source] api::Error),
    /// Local I/O failed (the source of a push, the destination of a pull).
    #[error("I/O error: {0}")]
    Io(#[source] io::Error),
    /// The forward-secrecy exchange failed (no peer took part in time, or a
    /// message was refused); no data was sent or read. There is never a
    /// fallback to a transfer without a fresh key.
    #[error(transparent)]
    Exchange(#[from] crate::forward_secrecy::ExchangeError),
    /// [`Opening::Detect`](super::Opening::Detect) found a stream that is
    /// not encrypted. A relay can inject plaintext: accept it only by
    /// choosing [`Opening::Plain`](super::Opening::Plain).
    #[error("the stream is not encrypted")]
    NotEncrypted,
    /// [`Opening::Detect`](super::Opening::Detect) found an encrypted stream
    /// of this format; a key is needed to open it.
    #[error("the stream is encrypted ({0}) but no key was given")]
    KeyRequired(cipher::Format),
    /// A stream with resume on failed: no handshake or receipt, a resume
    /// that did not succeed in time or could not (the reader too far
    /// behind), or a refused control message.
    #[error(transparent)]
    Resume(#[from] super::ResumeError),
    /// The writer or reader was already shut down, or failed before.
    #[error("the stream is closed (after shutdown or an earlier error)")]
    Closed,
}

impl Error {
    /// The typed error inside an `io::Error` returned by a stream, if any.
    ///
    /// ```
    /// use zebrastream::client::Error;
    /// let io: std::io::Error = Error::Truncated.into();
    /// assert_eq!(io.kind(), std::io::ErrorKind::UnexpectedEof);
    /// assert!(matches!(Error::from_io(&io), Some(Error::Truncated)));
    /// ```
    pub fn from_io(error: &io::Error) -> Option<&Error> {
        error.get_ref()?.downcast_ref::<Error>()
    }

    /// The `io::ErrorKind` this error travels as.
    pub fn io_kind(&self) -> io::ErrorKind {
        use io::ErrorKind as K;
        match self {
            Error::InvalidConfig(_) => K::InvalidInput,
            Error::Auth { .. } => K::PermissionDenied,
            Error::ConnectTimeout(_) => K::TimedOut,
            Error::Connect(_) => K::ConnectionRefused,
            Error::PeerDisconnected | Error::Closed => K::BrokenPipe,
            Error::Truncated => K::UnexpectedEof,
            Error::ConnectionLost(_) => K::ConnectionAborted,
            Error::Protocol(_) | Error::Decryption(_) => K::InvalidData,
            Error::Encryption(_) => K::InvalidInput,
            Error::Exchange(crate::forward_secrecy::ExchangeError::Timeout { .. }) => K::TimedOut,
            Error::Exchange(_) | Error::NotEncrypted | Error::KeyRequired(_) => K::InvalidData,
            Error::Resume(
                super::ResumeError::NoHandshake(_)
                | super::ResumeError::NoReceipt(_)
                | super::ResumeError::ReceiptNotTaken(_)
                | super::ResumeError::TimedOut { .. },
            ) => K::TimedOut,
            Error::Resume(super::ResumeError::NeedsEncryption) => K::InvalidInput,
            Error::Resume(super::ResumeError::GaveUp { .. }) => K::BrokenPipe,
            Error::Resume(super::ResumeError::Behind { .. } | super::ResumeError::WriterGaveUp) => {
                K::UnexpectedEof
            }
            Error::Resume(_) => K::InvalidData,
            Error::Io(e) => e.kind(),
        }
    }

    /// Turns any `io::Error` coming out of the transport stack into the
    /// precise client error (unwrapping client, protocol and cipher errors).
    pub(crate) fn from_io_error(error: io::Error) -> Error {
        let Some(inner) = error.get_ref() else {
            return Error::Io(error);
        };
        if inner.is::<Error>() {
            return *error
                .into_inner()
                .and_then(|e| e.downcast::<Error>().ok())
                .expect("checked with is::<Error>()");
        }
        if inner.is::<api::Error>() {
            let api_error = error
                .into_inner()
                .and_then(|e| e.downcast::<api::Error>().ok())
                .expect("checked with is::<api::Error>()");
            return Error::from(*api_error);
        }
        if inner.is::<cipher::Error>() {
            let cipher_error = error
                .into_inner()
                .and_then(|e| e.downcast::<cipher::Error>().ok())
                .expect("checked with is::<cipher::Error>()");
            return Error::from(*cipher_error);
        }
        Error::Io(error)
    }
}

impl From<cipher::Error> for Error {
    /// A cipher error while reading: truncation is [`Error::Truncated`],
    /// everything else [`Error::Decryption`].
    fn from(error: cipher::Error) -> Error {
        match error {
            cipher::Error::Truncated => Error::Truncated,
            other => Error::Decryption(other),
        }
    }
}

impl From<api::Error> for Error {
    fn from(error: api::Error) -> Error {
        use api::Error as A;
        match error {
            A::Auth { status, reason, .. } => Error::Auth { status, reason },
            A::ConnectTimeout(after) => Error::ConnectTimeout(after),
            A::PeerDisconnected => Error::PeerDisconnected,
            A::BodyAborted {
                operation: api::Operation::Download,
                ..
            } => Error::Truncated,
            e @ (A::InvalidStreamPath { .. }
            | A::InvalidConnectUrl { .. }
            | A::InvalidTokenOrigin { .. }
            | A::InvalidContentType(_)) => Error::InvalidConfig(e.to_string()),
            e @ (A::BodyAborted { .. }
            | A::UploadClosed
            | A::TaskFailed { .. }
            | A::Network {
                operation: api::Operation::Upload,
                ..
            }) => Error::ConnectionLost(e),
            e @ (A::InvalidDataUrl { .. }
            | A::RelayReported(_)
            | A::Unconfirmed { .. }
            | A::PrematureConfirmation
            | A::StatusLineTooLong { .. }) => Error::Protocol(e),
            e => Error::Connect(e),
        }
    }
}

impl From<io::Error> for Error {
    /// Recovers the typed error from an `io::Error` returned by a stream
    /// (so `?` works on `read`/`write`/`shutdown` results); any other I/O
    /// error becomes [`Error::Io`].
    fn from(error: io::Error) -> Error {
        Error::from_io_error(error)
    }
}

impl From<Error> for io::Error {
    fn from(error: Error) -> io::Error {
        io::Error::new(error.io_kind(), error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_io_error() {
        let io: io::Error = Error::PeerDisconnected.into();
        assert_eq!(io.kind(), io::ErrorKind::BrokenPipe);
        assert!(matches!(Error::from_io_error(io), Error::PeerDisconnected));
    }

    #[test]
    fn api_errors_map_to_precise_variants() {
        assert!(matches!(
            Error::from(api::Error::Auth {
                operation: api::Operation::Connect,
                status: 403,
                reason: Some("access token does not grant Read access to this path".into()),
            }),
            Error::Auth { status: 403, reason: Some(r) } if r.contains("Read access")
        ));
        let aborted = api::Error::BodyAborted {
            operation: api::Operation::Download,
            source: io::Error::other("x"),
        };
        assert!(matches!(Error::from(aborted), Error::Truncated));
        // An api error wrapped in io::Error (as the download reports it) maps the same.
        let io = io::Error::new(
            io::ErrorKind::UnexpectedEof,
            api::Error::BodyAborted {
                operation: api::Operation::Download,
                source: io::Error::other("x"),
            },
        );
        assert!(matches!(Error::from_io_error(io), Error::Truncated));
        assert!(matches!(
            Error::from(api::Error::Unconfirmed { last_line: None }),
            Error::Protocol(_)
        ));
        assert!(matches!(
            Error::from(api::Error::UploadClosed),
            Error::ConnectionLost(_)
        ));
        assert!(matches!(
            Error::from(api::Error::Busy {
                operation: api::Operation::Upload
            }),
            Error::Connect(_)
        ));
        let io: io::Error = cipher::Error::Truncated.into();
        assert!(matches!(Error::from_io_error(io), Error::Truncated));
        let io: io::Error = cipher::Error::NoMatchingIdentity.into();
        assert!(matches!(
            Error::from_io_error(io),
            Error::Decryption(cipher::Error::NoMatchingIdentity)
        ));
        let plain = io::Error::other("disk full");
        assert!(matches!(Error::from_io_error(plain), Error::Io(_)));
    }
}

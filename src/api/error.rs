//! The protocol client's error type.

use std::time::Duration;

/// Which HTTP exchange of the protocol an error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// The Connect API call (`GET {connect_url}{path}?mode=…`).
    Connect,
    /// The Data API `PUT` (producer upload and its status lines).
    Upload,
    /// The Data API `GET` (consumer download).
    Download,
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Operation::Connect => "connect",
            Operation::Upload => "upload",
            Operation::Download => "download",
        })
    }
}

/// Everything that can go wrong in the Connect API and Data API exchanges.
///
/// Messages never contain the access token; data URLs are shown without their
/// query string (it may carry an `accesstoken=`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The stream path is not a `/`-rooted path the Connect API accepts.
    #[error("invalid stream path {path:?}: {reason}")]
    InvalidStreamPath {
        /// The rejected path.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The Connect API base URL is not an absolute `http(s)` URL.
    #[error("invalid connect URL {url:?}: {reason}")]
    InvalidConnectUrl {
        /// The rejected URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The Connect API answered with something that is not a usable data URL.
    #[error("the Connect API returned an invalid data URL: {reason}")]
    InvalidDataUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// A token origin is not `scheme://host[:port]`.
    #[error("invalid token origin {origin:?}: {reason}")]
    InvalidTokenOrigin {
        /// The rejected text.
        origin: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The Connect API named a data URL on an origin the token is not for
    /// (neither the connect URL's origin nor a listed token origin); nothing
    /// was sent to it.
    #[error("the relay answered with a data URL on {data_origin}, which is not the connect URL's origin {connect_origin} nor a listed token origin; refusing to send the access token or the stream there")]
    ForeignDataOrigin {
        /// The origin of the refused data URL.
        data_origin: String,
        /// The origin of the connect URL.
        connect_origin: String,
    },
    /// The Connect API of an `https` connect URL named a plain-`http` data
    /// URL; nothing was sent to it.
    #[error("the relay answered the https connect URL {connect_origin} with a plain-http data URL on {data_origin}; refusing to downgrade to http")]
    InsecureDataUrl {
        /// The origin of the refused data URL.
        data_origin: String,
        /// The origin of the connect URL.
        connect_origin: String,
    },
    /// The content type is not a valid HTTP header value.
    #[error("invalid content type {0:?}")]
    InvalidContentType(String),
    /// The HTTP client could not be set up (TLS backend, invalid header value).
    #[error("cannot build the HTTP client: {0}")]
    ClientSetup(#[source] reqwest::Error),
    /// The relay refused the access token (HTTP 401 or 403).
    #[error("{operation} rejected the access token (HTTP {status})")]
    Auth {
        /// The exchange that was refused.
        operation: Operation,
        /// 401 or 403.
        status: u16,
    },
    /// The peer did not show up within the connect timeout.
    #[error("no peer connected within {0:?}")]
    ConnectTimeout(Duration),
    /// The stream already has a producer (for an upload) or a consumer (for a download).
    #[error("{operation} refused: another peer of the same role holds the stream (HTTP 409)")]
    Busy {
        /// The exchange that was refused.
        operation: Operation,
    },
    /// The relay answered with an unexpected HTTP status.
    #[error("{operation} failed with HTTP {status}")]
    Status {
        /// The exchange that failed.
        operation: Operation,
        /// The HTTP status code.
        status: u16,
    },
    /// The relay could not be reached, or the connection failed before a
    /// response arrived (after `attempts` tries for the Connect API).
    #[error("{operation} failed after {attempts} attempt(s): {source}")]
    Network {
        /// The exchange that failed.
        operation: Operation,
        /// How many requests were sent.
        attempts: u32,
        /// The last transport error.
        #[source]
        source: reqwest::Error,
    },
    /// A response body (the data of a download, or the status lines of an
    /// upload) ended without its HTTP terminator: the relay or the peer died.
    #[error("the {operation} response was cut off before its end: {source}")]
    BodyAborted {
        /// The exchange whose response broke off.
        operation: Operation,
        /// What the HTTP client reported.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP client stopped taking upload bytes before the upload finished.
    #[error("the upload connection was closed before the upload finished")]
    UploadClosed,
    /// The relay reported that the consumer disconnected before the end
    /// (`[ERROR:RECEIVER_PREMATURE_DISCONNECT]`).
    #[error("the consumer disconnected before the end of the stream")]
    PeerDisconnected,
    /// The relay reported another error line (`[ERROR:<name>]`).
    #[error("the relay reported an error: [ERROR:{0}]")]
    RelayReported(String),
    /// The upload's status channel ended without `[STATE:TRANSFER_SUCCESSFUL]`
    /// as its last line.
    #[error("the relay did not confirm the transfer (last status line: {last_line:?})")]
    Unconfirmed {
        /// The last status line received, if any.
        last_line: Option<String>,
    },
    /// The relay confirmed the transfer before the producer finished it.
    #[error("the relay confirmed the transfer before the upload was finished")]
    PrematureConfirmation,
    /// A status line exceeded the maximum length.
    #[error("a status line from the relay is longer than {max} bytes")]
    StatusLineTooLong {
        /// The maximum accepted line length.
        max: usize,
    },
    /// An internal task of the protocol client stopped unexpectedly (panic or runtime shutdown).
    #[error("the {operation} task stopped unexpectedly")]
    TaskFailed {
        /// The exchange the task was running.
        operation: Operation,
    },
}

/// True when a rustls error is somewhere in the error's source chain.
fn is_tls_failure(error: &reqwest::Error) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = next {
        if e.is::<rustls::Error>() {
            return true;
        }
        // `io::Error::source` skips the error it wraps: look inside explicitly
        // (the TLS connector nests the rustls error in two io::Errors).
        next = match e.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    false
}

impl Error {
    /// True when retrying the Connect call may help (connection errors and
    /// 5xx). A TLS failure (untrusted or mismatched certificate) is not
    /// transient and is reported at once.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Network { source, .. } => {
                (source.is_connect() || source.is_request()) && !is_tls_failure(source)
            }
            Error::Status { status, .. } => (500..600).contains(status),
            _ => false,
        }
    }

    /// Maps an HTTP status that is not a success into the precise error.
    pub(crate) fn from_status(operation: Operation, status: reqwest::StatusCode) -> Error {
        match status.as_u16() {
            status @ (401 | 403) => Error::Auth { operation, status },
            409 => Error::Busy { operation },
            status => Error::Status { operation, status },
        }
    }

    /// Wraps a transport error of a request (no response received).
    pub(crate) fn network(operation: Operation, attempts: u32, source: reqwest::Error) -> Error {
        // The request URL may carry an `accesstoken=` query: never print it.
        Error::Network {
            operation,
            attempts,
            source: source.without_url(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping() {
        use reqwest::StatusCode as S;
        assert!(matches!(
            Error::from_status(Operation::Connect, S::UNAUTHORIZED),
            Error::Auth { status: 401, .. }
        ));
        assert!(matches!(
            Error::from_status(Operation::Upload, S::FORBIDDEN),
            Error::Auth { status: 403, .. }
        ));
        assert!(matches!(
            Error::from_status(Operation::Download, S::CONFLICT),
            Error::Busy {
                operation: Operation::Download
            }
        ));
        let e = Error::from_status(Operation::Connect, S::SERVICE_UNAVAILABLE);
        assert!(e.is_retryable());
        let e = Error::from_status(Operation::Connect, S::NOT_FOUND);
        assert!(!e.is_retryable());
        assert_eq!(e.to_string(), "connect failed with HTTP 404");
    }
}

//! The protocol client's error type.

use std::time::Duration;

use crate::protocol::{BaseUrlError, PathError};

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
    /// The stream path is not one the relay accepts
    /// ([`StreamPath::parse`](crate::protocol::StreamPath::parse) refuses it).
    #[error("invalid stream path {path:?}: {reason}")]
    InvalidStreamPath {
        /// The rejected path.
        path: String,
        /// What is wrong with it.
        #[source]
        reason: PathError,
    },
    /// The Connect API base URL is not an absolute `http(s)` URL without
    /// credentials, query or fragment.
    #[error("invalid connect URL {url:?}: {reason}")]
    InvalidConnectUrl {
        /// The rejected URL (`[REDACTED]` if it may hold credentials).
        url: String,
        /// What is wrong with it.
        #[source]
        reason: BaseUrlError,
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
    #[error("{operation} rejected the access token (HTTP {status}{})", .reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default())]
    Auth {
        /// The exchange that was refused.
        operation: Operation,
        /// 401 or 403.
        status: u16,
        /// The relay's reason (the first line of its answer, at most 200
        /// characters, printable ASCII only), if it gave one: e.g. that the
        /// token expired, or grants another access mode or path.
        reason: Option<String>,
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
    #[error("{operation} failed with HTTP {status}{}", shown_reason(.reason))]
    Status {
        /// The exchange that failed.
        operation: Operation,
        /// The HTTP status code.
        status: u16,
        /// The first line of the response body, as the relay's reason: at
        /// most 200 characters, anything but printable ASCII replaced by `?`
        /// (it is the relay's text, shown to a user).
        reason: Option<String>,
    },
    /// The relay could not be reached, or the connection failed before a
    /// response arrived (after `attempts` tries for the Connect API). The
    /// message names the URL (without its query) and the innermost cause
    /// (connection refused, DNS failure, TLS failure, …).
    #[error("{operation} request to {url} failed after {attempts} attempt(s): {}", transport_cause(.source))]
    Network {
        /// The exchange that failed.
        operation: Operation,
        /// The request URL without query, fragment or credentials (the query
        /// may carry an access token).
        url: String,
        /// How many requests were sent.
        attempts: u32,
        /// The last transport error.
        #[source]
        source: reqwest::Error,
    },
    /// No TCP connection to the relay could be made before the connect
    /// timeout ran out: its host did not answer the handshake (a firewall
    /// dropping packets, a host that is down). Reported instead of
    /// [`Error::ConnectTimeout`], which would blame a missing peer.
    #[error("{operation} request to {url}: no TCP connection to {address} within {}s (the host does not answer: a firewall dropping packets, or a host that is down)", .after.as_secs_f64())]
    NoConnection {
        /// The exchange that failed.
        operation: Operation,
        /// The request URL without query, fragment or credentials.
        url: String,
        /// The relay's `host:port`.
        address: String,
        /// The connect timeout that ran out.
        after: Duration,
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

/// The longest relay reason kept in [`Error::Status`], in characters.
pub(crate) const MAX_REASON_CHARS: usize = 200;

/// How long reading a refusal's reason may take: a relay that answers a
/// status and then stalls its body costs this, not a hang.
const REASON_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The error and its sources, outermost first. `io::Error::source` skips the
/// error it wraps, so an `io::Error` is looked into explicitly (the HTTP
/// client nests DNS, TCP and TLS errors in `io::Error`s).
fn error_chain<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error), |e| match e.downcast_ref::<std::io::Error>() {
        Some(io) => io
            .get_ref()
            .map(|inner| inner as &(dyn std::error::Error + 'static)),
        None => e.source(),
    })
}

/// True when a rustls error is somewhere in the error's source chain.
fn is_tls_failure(error: &reqwest::Error) -> bool {
    error_chain(error).any(|e| e.is::<rustls::Error>())
}

/// What a transport error comes down to: the messages of its source chain
/// below the HTTP client's own ("error sending request", which names no
/// cause), each kept only if it adds to the next (e.g. `dns error: failed to
/// lookup address information: Name or service not known`,
/// `tcp connect error: Connection refused (os error 111)`); a TLS failure
/// as `TLS error: …`.
fn transport_cause(error: &reqwest::Error) -> String {
    if let Some(tls) = error_chain(error).find_map(|e| e.downcast_ref::<rustls::Error>()) {
        return format!("TLS error: {tls}");
    }
    let messages: Vec<String> = error_chain(error).skip(1).map(|e| e.to_string()).collect();
    let mut kept: Vec<&str> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let repeated_below = messages[i + 1..]
            .iter()
            .any(|m| message.contains(m.as_str()));
        if !repeated_below && !message.is_empty() {
            kept.push(message);
        }
    }
    // Drop the generic wrappers above the first specific message.
    while kept.len() > 2 {
        kept.remove(0);
    }
    if kept.is_empty() {
        return error.to_string();
    }
    kept.join(": ")
}

fn shown_reason(reason: &Option<String>) -> String {
    match reason {
        Some(reason) => format!(" (the relay says: {reason:?})"),
        None => String::new(),
    }
}

/// The relay's reason for a refusal: the first non-empty line of `body`,
/// trimmed, at most [`MAX_REASON_CHARS`] characters, every character outside
/// printable ASCII replaced by `?` (no terminal escapes, no look-alikes).
pub(crate) fn reason_from_body(body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let mut reason: String = line
        .chars()
        .take(MAX_REASON_CHARS)
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect();
    if line.chars().nth(MAX_REASON_CHARS).is_some() {
        reason.push_str("...");
    }
    Some(reason)
}

/// Reads the start of a refusal's body (a few hundred bytes at most, for at
/// most [`REASON_READ_TIMEOUT`]) and returns its reason.
async fn read_reason(mut response: reqwest::Response) -> Option<String> {
    /// Enough for a first line of [`MAX_REASON_CHARS`] characters.
    const READ_LIMIT: usize = 4 * MAX_REASON_CHARS;
    let mut body = Vec::new();
    let read = async {
        while body.len() < READ_LIMIT && !body.contains(&b'\n') {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(REASON_READ_TIMEOUT, read).await;
    body.truncate(READ_LIMIT);
    reason_from_body(&body)
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
    pub(crate) fn from_status(
        operation: Operation,
        status: reqwest::StatusCode,
        reason: Option<String>,
    ) -> Error {
        match status.as_u16() {
            status @ (401 | 403) => Error::Auth {
                operation,
                status,
                reason,
            },
            409 => Error::Busy { operation },
            status => Error::Status {
                operation,
                status,
                reason,
            },
        }
    }

    /// Maps a response whose status is not a success into the precise
    /// error, with the relay's reason read from its body for
    /// [`Error::Status`].
    pub(crate) async fn from_response(operation: Operation, response: reqwest::Response) -> Error {
        let status = response.status();
        let reason = match status.as_u16() {
            409 => None,
            _ => read_reason(response).await,
        };
        Error::from_status(operation, status, reason)
    }

    /// Wraps a transport error of a request (no response received).
    pub(crate) fn network(operation: Operation, attempts: u32, source: reqwest::Error) -> Error {
        // The request URL may carry an `accesstoken=` query: never print it.
        let url = source.url().map_or_else(String::new, shown_url);
        Error::Network {
            operation,
            url,
            attempts,
            source: source.without_url(),
        }
    }

    /// True when a TLS handshake failed (untrusted or mismatched
    /// certificate, or TLS spoken to a port that serves plain HTTP).
    pub fn is_tls_failure(&self) -> bool {
        matches!(self, Error::Network { source, .. } if is_tls_failure(source))
    }

    /// True when the error means the relay was not reached at all (a
    /// transport error before any HTTP response: refused, DNS, TLS, …).
    pub fn is_unreachable(&self) -> bool {
        match self {
            Error::Network { source, .. } => source.is_connect(),
            Error::NoConnection { .. } => true,
            _ => false,
        }
    }
}

/// `url` without query, fragment or credentials (the query may carry an
/// access token), for messages.
pub(crate) fn shown_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping() {
        use reqwest::StatusCode as S;
        assert!(matches!(
            Error::from_status(Operation::Connect, S::UNAUTHORIZED, None),
            Error::Auth { status: 401, .. }
        ));
        assert!(matches!(
            Error::from_status(Operation::Upload, S::FORBIDDEN, None),
            Error::Auth { status: 403, .. }
        ));
        assert!(matches!(
            Error::from_status(Operation::Download, S::CONFLICT, None),
            Error::Busy {
                operation: Operation::Download
            }
        ));
        let e = Error::from_status(Operation::Connect, S::SERVICE_UNAVAILABLE, None);
        assert!(e.is_retryable());
        let e = Error::from_status(Operation::Connect, S::NOT_FOUND, None);
        assert!(!e.is_retryable());
        assert_eq!(e.to_string(), "connect failed with HTTP 404");
        let e = Error::from_status(Operation::Connect, S::NOT_FOUND, Some("no such API".into()));
        assert_eq!(
            e.to_string(),
            "connect failed with HTTP 404 (the relay says: \"no such API\")"
        );
    }

    /// A relay's reason is its text: one line, bounded, printable ASCII only.
    #[test]
    fn relay_reasons_are_bounded_and_printable() {
        assert_eq!(reason_from_body(b""), None);
        assert_eq!(reason_from_body(b" \r\n\n"), None);
        assert_eq!(
            reason_from_body(b"\n  stream path ends with '/'  \r\nsecond line"),
            Some("stream path ends with '/'".into())
        );
        assert_eq!(
            reason_from_body(b"\x1b[31mred\x07 \xe2\x80\xae"),
            Some("?[31mred? ?".into())
        );
        let long = "x".repeat(MAX_REASON_CHARS + 50);
        let reason = reason_from_body(long.as_bytes()).unwrap();
        assert_eq!(reason.len(), MAX_REASON_CHARS + 3);
        assert!(reason.ends_with("..."));
    }
}

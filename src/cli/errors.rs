//! One-line failures with meaningful exit codes for every error the
//! library layers report (client, cipher, plain I/O).

use std::io;

use zebrastream::cipher::{self, HeaderError};
use zebrastream::client::ResumeError;
use zebrastream::forward_secrecy::ExchangeError;
use zebrastream::{api, client};

use super::{ExitKind, Failure};

/// Which side of a transfer we are, for naming the peer in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `write`: the peer is the reader.
    Producer,
    /// `read`: the peer is the writer.
    Consumer,
}

impl Side {
    /// The other side: "reader" for the producer, "writer" for the consumer.
    pub fn peer(self) -> &'static str {
        match self {
            Side::Producer => "reader",
            Side::Consumer => "writer",
        }
    }
}

/// The failure for a cipher error; `subject` names the stream or file.
pub fn cipher_failure(subject: &str, error: &cipher::Error) -> Failure {
    use cipher::Error as E;
    let (kind, what) = match error {
        E::Truncated => (
            ExitKind::Truncated,
            String::from("truncated: the encrypted stream ended before its final chunk; the output is incomplete"),
        ),
        E::NoMatchingIdentity => (
            ExitKind::Decryption,
            String::from("wrong passphrase or key: no identity matched"),
        ),
        E::ChunkAuthentication { index } => (
            ExitKind::Decryption,
            format!("authentication failed at chunk {index}: the data was tampered with or corrupted; nothing after it was output"),
        ),
        // The first line is the sender's text (a relay's, maybe): never shown.
        E::Header(HeaderError::UnknownIdentifier(_)) => (
            ExitKind::Decryption,
            String::from("the input is not encrypted (no age-rt or age header; its first line is not shown); an unencrypted stream is accepted only by read --plain"),
        ),
        E::Header(HeaderError::ScryptWorkFactorTooHigh { log_n, max }) => (
            ExitKind::Decryption,
            format!("the passphrase stanza asks for scrypt work factor 2^{log_n}, above the accepted 2^{max} (each step doubles the memory and time a wrong guess costs: 2^20 is 1 GiB); if you trust the writer, raise the limit with --max-work-factor {log_n}"),
        ),
        E::Header(h) => (
            ExitKind::Decryption,
            format!("not a valid age-rt/age stream ({h}); was it sent unencrypted (--plain)?"),
        ),
        E::Protocol(p) => (ExitKind::Decryption, format!("invalid encrypted stream: {p}")),
        // Cut off before its END line: a truncated file, as for binary input.
        E::Armor(cipher::ArmorError::MissingEndLine) => (
            ExitKind::Truncated,
            String::from("truncated: the armored input ended before its line `-----END AGE ENCRYPTED FILE-----`; the output is incomplete"),
        ),
        E::Armor(a) => (ExitKind::Decryption, format!("invalid ASCII armor: {a}")),
        E::Unsupported(u) => (ExitKind::Decryption, format!("cannot decrypt: unsupported {u}")),
        E::Key(k) => (ExitKind::Usage, format!("{k}")),
        E::InvalidRecipients(why) => (ExitKind::Usage, format!("invalid recipients: {why}")),
        E::IncompatibleLabels { .. } => (ExitKind::Usage, error.to_string()),
        // A plugin that is missing or refuses a recipient: a key problem;
        // one that cannot open its stanza (refused PIN, died): decryption.
        E::Plugin(p @ cipher::PluginError::Unwrap { .. }) => (ExitKind::Decryption, p.to_string()),
        E::Plugin(p) => (ExitKind::Usage, p.to_string()),
        other => (ExitKind::Other, other.to_string()),
    };
    Failure::new(kind, format!("{subject}: {what}"))
}

/// The failure for a client error on stream `subject`.
pub fn client_failure(subject: &str, side: Side, error: &client::Error) -> Failure {
    use client::Error as E;
    let peer = side.peer();
    let (kind, what) = match error {
        E::Auth { status, reason } => (
            ExitKind::Auth,
            format!(
                "the relay refused the access token (HTTP {status}{}); set ZEBRASTREAM_ACCESS_TOKEN, 'access_token' in the config, or -a (a token is for read or for write, on a path)",
                reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default()
            ),
        ),
        E::ConnectTimeout(after) => (
            ExitKind::ConnectTimeout,
            format!(
                "no {peer} connected within {}s; start the {peer}, or raise -t/--connect-timeout",
                after.as_secs_f64()
            ),
        ),
        E::PeerDisconnected => (
            ExitKind::PeerDisconnected,
            format!("the {peer} disconnected before the end of the stream"),
        ),
        E::Truncated => (
            ExitKind::Truncated,
            String::from(
                "truncated: the stream was cut off before its end; the data received is incomplete",
            ),
        ),
        E::Decryption(e) | E::Encryption(e) => return cipher_failure(subject, e),
        E::InvalidConfig(why) => (ExitKind::Usage, why.clone()),
        E::Connect(api::Error::ForeignDataOrigin {
            data_origin,
            connect_origin,
        }) => (
            ExitKind::Other,
            format!("the relay at {connect_origin} answered with a data URL on {data_origin}; refusing to send the access token or the stream there (nothing was sent). If {data_origin} belongs to your relay, allow it with --token-origins {data_origin}"),
        ),
        E::Connect(api::Error::InsecureDataUrl {
            data_origin,
            connect_origin,
        }) => (
            ExitKind::Other,
            format!("the relay at {connect_origin} answered with a plain-http data URL on {data_origin}; refusing to downgrade from https (nothing was sent)"),
        ),
        E::Connect(e) if e.is_unreachable() => (ExitKind::Other, unreachable_relay(e)),
        E::Connect(e @ api::Error::Status { status, .. }) if (400..500).contains(status) => {
            (ExitKind::Other, refused_request(e, *status))
        }
        E::Io(e) => return io_failure(subject, side, copy_io(e)),
        E::Exchange(e) => return exchange_failure(subject, side, e),
        E::Resume(e) => return resume_failure(subject, side, e),
        E::NotEncrypted => (
            ExitKind::Decryption,
            String::from("the stream is not encrypted; use --plain to accept it (or 'plain: true' in the config)"),
        ),
        E::KeyRequired(format) => (
            ExitKind::Decryption,
            format!("the stream is encrypted ({format}) but no key was given; use -p/--passphrase-file/-i or ZEBRASTREAM_PASSPHRASE (or --plain to save the ciphertext as it is)"),
        ),
        other => (ExitKind::Other, other.to_string()),
    };
    Failure::new(kind, format!("{subject}: {what}"))
}

/// The failure for a failed forward-secrecy exchange, named for our side.
/// There is never a fallback: a timeout is exit 4 (and says that the other
/// side may not be using forward secrecy), a refused message exit 8, both
/// before any data is sent.
fn exchange_failure(subject: &str, side: Side, error: &ExchangeError) -> Failure {
    let peer = side.peer();
    let nothing_sent = match side {
        Side::Producer => "no data was sent",
        Side::Consumer => "no key was published",
    };
    match error {
        ExchangeError::Timeout { step, after } => Failure::new(
            ExitKind::ConnectTimeout,
            format!(
                "{subject}: forward secrecy: no {peer} took part in the key exchange ({step}) within {}s; the {peer} may not be using forward secrecy (the default with a ticket, --forward-secrecy with a passphrase: both sides must agree) or is not running; raise -t/--connect-timeout to wait longer",
                after.as_secs_f64()
            ),
        ),
        ExchangeError::Refused { step, reason } => Failure::new(
            ExitKind::Decryption,
            format!("{subject}: forward secrecy: refused {step}: {reason}; {nothing_sent}"),
        ),
        other => Failure::new(ExitKind::Other, format!("{subject}: {other}")),
    }
}

/// The failure for a stream with resume on. The exit codes are the usual
/// ones: a peer that does not take part is a missing peer (4), a resume that
/// could not happen leaves the reader's data incomplete (9) and the writer
/// without its reader (5), a refused control message is an authentication
/// failure (8).
fn resume_failure(subject: &str, side: Side, error: &ResumeError) -> Failure {
    let peer = side.peer();
    let incomplete = match side {
        Side::Producer => ExitKind::PeerDisconnected,
        Side::Consumer => ExitKind::Truncated,
    };
    let (kind, what) = match error {
        ResumeError::NeedsEncryption => (
            ExitKind::Usage,
            String::from("resume needs an encrypted stream: give a passphrase, keys or a ticket, or turn resume off (--no-resume)"),
        ),
        ResumeError::NoHandshake(_) | ResumeError::ReceiptNotTaken(_) => (
            ExitKind::ConnectTimeout,
            format!("{error}; resume must be on at both ends (--resume, the default with a ticket)"),
        ),
        ResumeError::NoReceipt(_) | ResumeError::GaveUp { .. } => {
            (ExitKind::PeerDisconnected, error.to_string())
        }
        ResumeError::WriterGaveUp => (incomplete, error.to_string()),
        ResumeError::Behind { .. } => (
            incomplete,
            format!("{error}; a larger --resume-buffer on the writer lets a reader fall further behind"),
        ),
        ResumeError::TimedOut { .. } => (
            incomplete,
            format!("the connection to the relay broke and the {peer} could not be reached again: {error}; raise --resume-timeout to wait longer"),
        ),
        ResumeError::Refused(_) => (ExitKind::Decryption, error.to_string()),
        other => (ExitKind::Other, other.to_string()),
    };
    Failure::new(kind, format!("{subject}: {what}"))
}

/// The relay was not reached (exit 1, as docs/cli.md lists it): the URL and
/// the cause are in `error`'s message; the hint says what to check.
fn unreachable_relay(error: &api::Error) -> String {
    let hint = if error.is_tls_failure() {
        "if that port serves plain HTTP, use an http:// connect URL (-U/--connect-url); if the relay's certificate is the problem, fix it there"
    } else {
        "is the relay running, and is the connect URL (-U/--connect-url, 'connect_url' in the config) right?"
    };
    format!("could not reach the relay: {error}; {hint}")
}

/// A 4xx answer: the relay's reason is in `error`'s message; a 404 is most
/// often a connect URL without its API prefix.
fn refused_request(error: &api::Error, status: u16) -> String {
    let hint = match status {
        404 => "; check the connect URL (-U/--connect-url, 'connect_url' in the config): it usually ends in /v0",
        _ => "",
    };
    format!("the relay refused the request: {error}{hint}")
}

/// The failure for an `io::Error` from a stream or a cipher adapter: the
/// typed error inside decides; anything else is exit 1.
pub fn io_failure(subject: &str, side: Side, error: io::Error) -> Failure {
    if let Some(e) = client::Error::from_io(&error) {
        return client_failure(subject, side, e);
    }
    if let Some(e) = cipher::Error::from_io(&error) {
        return cipher_failure(subject, e);
    }
    Failure::new(ExitKind::Other, format!("{subject}: {error}"))
}

/// `io::Error` is not `Clone`: a copy with the same kind, the typed cipher
/// error if there is one, and the message otherwise.
fn copy_io(e: &io::Error) -> io::Error {
    if let Some(inner) = cipher::Error::from_io(e) {
        return inner.clone().into();
    }
    io::Error::new(e.kind(), e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_error_class() {
        let s = "/trial";
        let c = |e: client::Error| client_failure(s, Side::Producer, &e).kind;
        assert_eq!(
            c(client::Error::Auth {
                status: 401,
                reason: None
            }),
            ExitKind::Auth
        );
        assert_eq!(
            c(client::Error::ConnectTimeout(
                std::time::Duration::from_secs(2)
            )),
            ExitKind::ConnectTimeout
        );
        assert_eq!(
            c(client::Error::PeerDisconnected),
            ExitKind::PeerDisconnected
        );
        assert_eq!(c(client::Error::Truncated), ExitKind::Truncated);
        assert_eq!(
            c(client::Error::Decryption(cipher::Error::NoMatchingIdentity)),
            ExitKind::Decryption
        );
        let k = |e: cipher::Error| cipher_failure(s, &e).kind;
        assert_eq!(k(cipher::Error::NoMatchingIdentity), ExitKind::Decryption);
        assert_eq!(
            k(cipher::Error::ChunkAuthentication { index: 3 }),
            ExitKind::Decryption
        );
        assert_eq!(k(cipher::Error::Truncated), ExitKind::Truncated);
        // Through io::Error, as the adapters deliver them.
        let io: io::Error = cipher::Error::Truncated.into();
        assert_eq!(io_failure(s, Side::Consumer, io).kind, ExitKind::Truncated);
        let io: io::Error = client::Error::PeerDisconnected.into();
        let f = io_failure(s, Side::Consumer, io);
        assert_eq!(f.kind, ExitKind::PeerDisconnected);
        assert!(
            f.message.starts_with("/trial: the writer disconnected"),
            "{}",
            f.message
        );
        let f = io_failure(s, Side::Consumer, io::Error::other("disk full"));
        assert_eq!(f.kind, ExitKind::Other);
    }
}

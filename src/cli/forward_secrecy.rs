//! The forward-secrecy exchange of `write`/`read`: which key it runs with,
//! and its failures as exit codes.
//!
//! It runs with a ticket unless `--no-forward-secrecy`, and with a
//! passphrase given `--forward-secrecy` on both sides. There is never a
//! fallback to a transfer without a fresh key: a timeout is exit 4 (and says
//! that the other side may not be using forward secrecy), a refused message
//! exit 8, before any data is sent.

use secrecy::SecretString;
use zebrastream::cipher::Format;
use zebrastream::client::{Config, Encryption};
use zebrastream::forward_secrecy::{ExchangeError, ExchangeKey};
use zebrastream::ticket::Ticket;

use super::errors::{client_failure, Side};
use super::progress::Progress;
use super::{ExitKind, Failure};

/// How the exchange is keyed.
pub enum ExchangeKeying<'a> {
    /// From the ticket's secret.
    Ticket(&'a Ticket),
    /// From a passphrase (scrypt, about half a second).
    Passphrase(&'a SecretString),
}

impl ExchangeKeying<'_> {
    /// The exchange key for the transfer on `stream_path`.
    pub fn key(&self, stream_path: &str) -> ExchangeKey {
        match self {
            ExchangeKeying::Ticket(ticket) => ticket.exchange_key(),
            ExchangeKeying::Passphrase(passphrase) => {
                ExchangeKey::from_passphrase(passphrase, stream_path)
            }
        }
    }
}

/// Writer side: the encryption to the reader's one-time key (in `format`).
pub async fn writer_encryption(
    key: &ExchangeKey,
    data: &Config,
    format: Format,
    progress: &Progress,
    subject: &str,
) -> Result<Encryption, Failure> {
    exchange_notice(Side::Producer, subject, data, progress);
    key.writer_encryption(data, format)
        .await
        .map_err(|e| exchange_failure(subject, Side::Producer, &e, progress))
}

/// Reader side: the decryption with a one-time key the writer now encrypts to.
pub async fn reader_encryption(
    key: &ExchangeKey,
    data: &Config,
    progress: &Progress,
    subject: &str,
) -> Result<Encryption, Failure> {
    exchange_notice(Side::Consumer, subject, data, progress);
    key.reader_encryption(data)
        .await
        .map_err(|e| exchange_failure(subject, Side::Consumer, &e, progress))
}

/// What `side` says while it waits for its peer's part of the exchange.
fn exchange_notice(side: Side, subject: &str, data: &Config, progress: &Progress) {
    let peer = format!("{} (key exchange)", side.peer());
    progress.waiting(super::waiting_notice(&peer, subject, data));
}

/// The failure for an exchange error, named for our side.
fn exchange_failure(
    subject: &str,
    side: Side,
    error: &ExchangeError,
    progress: &Progress,
) -> Failure {
    progress.clear();
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
            format!(
                "{subject}: forward secrecy: refused {step}: {reason}; {nothing_sent}"
            ),
        ),
        ExchangeError::Client(e) => client_failure(subject, side, e),
        other => Failure::new(ExitKind::Other, format!("{subject}: {other}")),
    }
}

/// The hint added to "no identity matched" on a fresh (`fresh`) or a ticket
/// read: what such a stream is, for the user to act on.
pub fn no_key_hint(fresh: bool) -> &'static str {
    if fresh {
        "the stream is not sealed to this transfer's one-time key: it is a replay of an earlier transfer or was not written through the key exchange"
    } else {
        "the stream carries no stanza this ticket opens: it was not written by a holder of this ticket (or is a replay of another ticket's stream)"
    }
}

/// A ticket transfer with `--no-forward-secrecy` waits on the data path while
/// a peer that runs the exchange waits on a side path: neither can see the
/// other, so a connect timeout says so.
pub fn explain_skipped_exchange(failure: Failure) -> Failure {
    if failure.kind != ExitKind::ConnectTimeout {
        return failure;
    }
    Failure::new(
        failure.kind,
        format!(
            "{}; with a ticket both sides must give --no-forward-secrecy, or neither (the other side may be waiting for the key exchange)",
            failure.message
        ),
    )
}

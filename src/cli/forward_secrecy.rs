//! What `write`/`read` say about the forward-secrecy exchange beyond its
//! errors (those are in [`super::errors`]).
//!
//! It runs with a ticket unless `--no-forward-secrecy`, and with a
//! passphrase given `--forward-secrecy` on both sides (the library runs it:
//! [`zebrastream::client::Sealing::Fresh`]).

use super::{ExitKind, Failure};

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

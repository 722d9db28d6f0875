//! The forward-secrecy exchange: a fresh key for every transfer.
//!
//! Before the data stream, the two sides run a short exchange on two side
//! paths of the transfer ([`crate::protocol::side_path`]):
//!
//! 1. the writer sends an **offer** with a fresh random nonce on
//!    `<path>/~fs-offer`;
//! 2. the reader makes a one-time identity (hybrid post-quantum: ML-KEM-768
//!    and X25519, as `age1pq1…` keys) and answers on `<path>/~fs-key` with a
//!    **key message**: its public key, bound to that nonce and sealed with a
//!    key derived for this exchange only;
//! 3. the writer checks that the key message answers its own offer (a
//!    recorded one from another session does not authenticate), then
//!    encrypts the data stream to the one-time key alone.
//!
//! So the reader contributes a fresh key to every transfer: a stream the relay
//! recorded earlier and replays later is sealed to an older key and fails to
//! decrypt, and a ticket or passphrase that leaks after the transfer opens
//! nothing the relay recorded (the one-time identity is gone). Both messages
//! are authenticated with the [`ExchangeKey`], which comes from a ticket
//! ([`Ticket::exchange_key`](crate::ticket::Ticket::exchange_key)) or a
//! passphrase ([`ExchangeKey::from_passphrase`]); the relay sees two small
//! opaque messages. docs/forward-secrecy.md is the full specification.
//!
//! This module is the exchange without I/O: the key, the messages and their
//! checks. The client runs it when a writer is given [`Sealing::Fresh`] and
//! the reader [`Opening::Fresh`] (a ticket's default, see
//! [`Ticket::sealing`](crate::ticket::Ticket::sealing)). Both sides must take
//! part and be online together. Every wait honours the configuration's
//! connect timeout; a side that waits in vain cannot tell whether the other
//! side is missing or not using forward secrecy (they wait on different
//! paths), and [`ExchangeError::Timeout`] says so.
//!
//! [`Sealing::Fresh`]: crate::client::Sealing::Fresh
//! [`Opening::Fresh`]: crate::client::Opening::Fresh
//!
//! ```no_run
//! # async fn run() -> Result<(), zebrastream::client::Error> {
//! use std::time::Duration;
//! use tokio::io::AsyncWriteExt;
//! use zebrastream::cipher::Format;
//! use zebrastream::client::{Config, Sealing, SecretString, StreamWriter};
//! use zebrastream::forward_secrecy::ExchangeKey;
//!
//! let passphrase = SecretString::from("correct horse battery staple");
//! let key = ExchangeKey::from_passphrase(&passphrase, "/team/feed");
//! let config = Config::builder("/team/feed")
//!     .connect_timeout(Duration::from_secs(60))
//!     .build()?;
//! let mut writer = StreamWriter::connect(&config, &Sealing::fresh(key, Format::AgeRt)).await?;
//! writer.write_all(b"fresh for this transfer only").await?;
//! writer.shutdown().await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::cipher::keys::HybridIdentity;
use crate::cipher::SCRYPT_WORK_FACTOR;

mod message;

use message::ExchangeSecret;
pub use message::{MessageError, MAX_KEY_MESSAGE};
pub(crate) use message::{Offer, OneTimeRecipient, OFFER_BYTES};

/// The side path (name after `~`) the writer's offer travels on.
pub const OFFER_SIDE_PATH: &str = "fs-offer";
/// The side path (name after `~`) the reader's key message travels on.
pub const KEY_SIDE_PATH: &str = "fs-key";

/// The scrypt salt prefix of a passphrase's exchange key (the stream path follows).
const PASSPHRASE_SALT: &[u8] = b"zebrastream fs exchange\0";

/// The step of the exchange that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeStep {
    /// The writer's offer (writer → reader, on `~fs-offer`).
    Offer,
    /// The reader's key message (reader → writer, on `~fs-key`).
    KeyMessage,
}

impl std::fmt::Display for ExchangeStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ExchangeStep::Offer => "the writer's offer",
            ExchangeStep::KeyMessage => "the reader's key message",
        })
    }
}

/// Why the exchange failed. There is never a fallback to a transfer
/// without a fresh key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// No peer took part in `step` within the connect timeout: it is not
    /// running, or it does not use forward secrecy.
    #[error("forward secrecy: no peer exchanged {step} within {}s; the other side may not be using forward secrecy (both sides must) or is not running", .after.as_secs_f64())]
    Timeout {
        /// The step that waited.
        step: ExchangeStep,
        /// The connect timeout.
        after: Duration,
    },
    /// A message of the exchange was refused; nothing was sent after it.
    #[error("forward secrecy: refused {step}: {reason}")]
    Refused {
        /// The message refused.
        step: ExchangeStep,
        /// What is wrong with it.
        reason: MessageError,
    },
}

/// The secret that authenticates the exchange: derived from a ticket (HKDF)
/// or from a passphrase (scrypt). Both sides need the same one.
pub struct ExchangeKey {
    secret: ExchangeSecret,
}

impl std::fmt::Debug for ExchangeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExchangeKey([REDACTED])")
    }
}

impl ExchangeKey {
    /// The exchange key of a passphrase for the stream at `stream_path`:
    /// scrypt (work factor 2^18, as our writer's streams) salted with the
    /// path, so it takes about half a second and is derived once per transfer.
    pub fn from_passphrase(passphrase: &SecretString, stream_path: &str) -> ExchangeKey {
        let mut salt = PASSPHRASE_SALT.to_vec();
        salt.extend_from_slice(stream_path.as_bytes());
        let params = scrypt::Params::new(SCRYPT_WORK_FACTOR, 8, 1, 32)
            .expect("constant scrypt parameters are valid");
        let mut secret = Zeroizing::new([0u8; 32]);
        scrypt::scrypt(
            passphrase.expose_secret().as_bytes(),
            &salt,
            &params,
            secret.as_mut(),
        )
        .expect("32 bytes is a valid scrypt output length");
        ExchangeKey { secret }
    }

    /// An exchange key from 32 secret bytes already derived for the exchange.
    pub(crate) fn from_derived(secret: ExchangeSecret) -> ExchangeKey {
        ExchangeKey { secret }
    }

    /// Writer side, step 1: a new offer and its bytes for the transfer on
    /// `path`.
    pub(crate) fn offer(&self, path: &str) -> (Offer, Vec<u8>) {
        let offer = Offer::generate();
        let bytes = offer.seal(&self.secret, path);
        (offer, bytes)
    }

    /// Writer side, step 2: checks the reader's key message against our
    /// `offer` and returns the one-time recipient to encrypt to.
    pub(crate) fn accept(
        &self,
        offer: &Offer,
        path: &str,
        key_message: &[u8],
    ) -> Result<OneTimeRecipient, ExchangeError> {
        offer
            .accept(&self.secret, path, key_message)
            .map_err(|reason| ExchangeError::Refused {
                step: ExchangeStep::KeyMessage,
                reason,
            })
    }

    /// Reader side: checks the writer's offer and answers it with a new
    /// one-time identity, hybrid post-quantum (so a recording stays closed
    /// to a quantum computer even if the ticket or passphrase leaks later);
    /// returns the identity and the key message's bytes.
    pub(crate) fn answer(
        &self,
        path: &str,
        offer: &[u8],
    ) -> Result<(HybridIdentity, Vec<u8>), ExchangeError> {
        let offer =
            Offer::open(&self.secret, path, offer).map_err(|reason| ExchangeError::Refused {
                step: ExchangeStep::Offer,
                reason,
            })?;
        let identity = HybridIdentity::generate();
        let recipient = OneTimeRecipient::Hybrid(Box::new(identity.to_public()));
        let message = offer.answer(&self.secret, path, &recipient);
        Ok((identity, message))
    }
}

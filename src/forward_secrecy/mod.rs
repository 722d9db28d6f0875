//! The forward-secrecy exchange: a fresh key for every transfer.
//!
//! Before the data stream, the two sides run a short exchange on two side
//! paths of the transfer ([`crate::protocol::side_path`]):
//!
//! 1. the writer sends an **offer** with a fresh random nonce on
//!    `<path>/~fs-offer`;
//! 2. the reader makes a one-time X25519 identity and answers on
//!    `<path>/~fs-key` with a **key message**: its public key, bound to that
//!    nonce and sealed with a key derived for this exchange only;
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
//! Both sides must take part and be online together. Every wait honours the
//! configuration's connect timeout; a side that waits in vain cannot tell
//! whether the other side is missing or not using forward secrecy (they wait
//! on different paths), and [`ExchangeError::Timeout`] says so.
//!
//! ```no_run
//! # async fn run() -> Result<(), zebrastream::forward_secrecy::ExchangeError> {
//! use std::time::Duration;
//! use secrecy::SecretString;
//! use tokio::io::AsyncWriteExt;
//! use zebrastream::client::{Config, Encryption};
//! use zebrastream::forward_secrecy::ExchangeKey;
//!
//! let passphrase = SecretString::from("correct horse battery staple");
//! let key = ExchangeKey::from_passphrase(&passphrase, "/team/feed");
//! let config = Config::builder("/team/feed")
//!     .encryption(Encryption::passphrase(passphrase))
//!     .connect_timeout(Duration::from_secs(60))
//!     .build()?;
//! let mut writer = key.connect_writer(&config).await?;
//! writer.write_all(b"fresh for this transfer only").await?;
//! writer.shutdown().await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

use crate::cipher::{Format, SCRYPT_WORK_FACTOR};
use crate::client::{self, Config, Encryption, StreamReader, StreamWriter};
use crate::protocol::side_path;

mod message;

use message::{ExchangeSecret, Offer, OFFER_BYTES};
pub use message::{MessageError, MAX_KEY_MESSAGE};

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
    /// The relay or the connection failed (authentication, network, …), or
    /// the data stream itself failed to connect.
    #[error(transparent)]
    Client(#[from] client::Error),
}

impl From<std::io::Error> for ExchangeError {
    /// An error of the data stream after the exchange (so `?` works on
    /// `write_all`/`read` of the writer or reader the exchange connected).
    fn from(error: std::io::Error) -> ExchangeError {
        ExchangeError::Client(client::Error::from(error))
    }
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

    /// Writer side: runs the exchange for the data stream `data` describes
    /// (its relay, path, token and connect timeout are used; its encryption
    /// is not) and returns the encryption to the reader's one-time key, in
    /// `format`.
    pub async fn writer_encryption(
        &self,
        data: &Config,
        format: Format,
    ) -> Result<Encryption, ExchangeError> {
        let path = data.stream_path();
        let offer = Offer::generate();
        send(
            &side_config(data, OFFER_SIDE_PATH),
            &offer.seal(&self.secret, path),
            ExchangeStep::Offer,
        )
        .await?;
        let answer = receive(
            &side_config(data, KEY_SIDE_PATH),
            MAX_KEY_MESSAGE,
            ExchangeStep::KeyMessage,
        )
        .await?;
        let recipient = offer
            .accept(&self.secret, path, &answer)
            .map_err(|reason| ExchangeError::Refused {
                step: ExchangeStep::KeyMessage,
                reason,
            })?;
        Ok(Encryption::recipients(vec![Box::new(recipient)], format))
    }

    /// Reader side: answers the writer's offer with a one-time key and
    /// returns the decryption setting that holds that key only. Use it for
    /// the one [`StreamReader`] of this transfer; dropping it drops the key.
    pub async fn reader_encryption(&self, data: &Config) -> Result<Encryption, ExchangeError> {
        let path = data.stream_path();
        let offer_bytes = receive(
            &side_config(data, OFFER_SIDE_PATH),
            OFFER_BYTES,
            ExchangeStep::Offer,
        )
        .await?;
        let offer = Offer::open(&self.secret, path, &offer_bytes).map_err(|reason| {
            ExchangeError::Refused {
                step: ExchangeStep::Offer,
                reason,
            }
        })?;
        let identity = age::x25519::Identity::generate();
        send(
            &side_config(data, KEY_SIDE_PATH),
            &offer.answer(&self.secret, path, &identity.to_public()),
            ExchangeStep::KeyMessage,
        )
        .await?;
        Ok(Encryption::identities(vec![Box::new(identity)]))
    }

    /// Runs the writer side of the exchange, then connects the data stream
    /// of `data` encrypted to the reader's one-time key (in the format of
    /// `data`'s encryption; age-rt if it has none).
    pub async fn connect_writer(&self, data: &Config) -> Result<StreamWriter, ExchangeError> {
        let format = match data.encryption() {
            Encryption::Passphrase { format, .. } | Encryption::Recipients { format, .. } => {
                *format
            }
            _ => Format::AgeRt,
        };
        let encryption = self.writer_encryption(data, format).await?;
        Ok(StreamWriter::connect(&with_encryption(data, encryption)).await?)
    }

    /// Runs the reader side of the exchange, then connects the data stream
    /// of `data`, which only the one-time key opens.
    pub async fn connect_reader(&self, data: &Config) -> Result<StreamReader, ExchangeError> {
        let encryption = self.reader_encryption(data).await?;
        Ok(StreamReader::connect(&with_encryption(data, encryption)).await?)
    }
}

/// `data` with another encryption.
fn with_encryption(data: &Config, encryption: Encryption) -> Config {
    let mut config = data.clone();
    config.encryption = encryption;
    config
}

/// The configuration of side path `name` of the transfer `data` describes:
/// same relay, token, timeout and retries; raw bytes (the messages carry
/// their own authentication).
fn side_config(data: &Config, name: &str) -> Config {
    let mut config = with_encryption(data, Encryption::Plain);
    config.stream_path = side_path(data.stream_path(), name);
    config.content_type = None;
    config
}

/// Runs one step of the exchange within the connect timeout: the wait for
/// the peer and the message itself, so a relay that stalls a message cannot
/// hold a side longer than a missing peer could.
async fn bounded<T>(
    config: &Config,
    step: ExchangeStep,
    work: impl std::future::Future<Output = Result<T, client::Error>>,
) -> Result<T, ExchangeError> {
    let result = match config.connect_timeout() {
        Some(after) => tokio::time::timeout(after, work)
            .await
            .map_err(|_| ExchangeError::Timeout { step, after })?,
        None => work.await,
    };
    result.map_err(|error| match error {
        client::Error::ConnectTimeout(after) => ExchangeError::Timeout { step, after },
        other => ExchangeError::Client(other),
    })
}

async fn send(config: &Config, message: &[u8], step: ExchangeStep) -> Result<(), ExchangeError> {
    bounded(config, step, async {
        let mut writer = StreamWriter::connect(config).await?;
        writer.write_all(message).await?;
        writer.shutdown().await?;
        Ok(())
    })
    .await
}

/// Reads a whole message of at most `limit` bytes (one more is read, so an
/// over-long message is seen as such).
async fn receive(
    config: &Config,
    limit: usize,
    step: ExchangeStep,
) -> Result<Vec<u8>, ExchangeError> {
    bounded(config, step, async {
        let reader = StreamReader::connect(config).await?;
        let mut message = Vec::with_capacity(limit.min(512));
        reader
            .take(limit as u64 + 1)
            .read_to_end(&mut message)
            .await?;
        Ok(message)
    })
    .await
}

//! Role-typed keys: [`Sealing`] says how a writer protects a stream,
//! [`Opening`] how a reader opens one. A key that cannot serve a role has no
//! way to be given to it (identities never reach a writer), and there is no
//! default: plaintext is a variant chosen by name on each side.

use std::sync::{Arc, Mutex};

use secrecy::SecretString;

use crate::cipher::{Decryptor, Encryptor, Format};
use crate::forward_secrecy::ExchangeKey;

use super::config::DEFAULT_READER_MAX_WORK_FACTOR;
use super::Error;

/// A recipient that can be shared between configurations and streams
/// (wraps any `age::Recipient`: X25519, SSH, ticket, …).
#[derive(Clone)]
pub struct SharedRecipient(Arc<Mutex<Box<dyn age::Recipient + Send>>>);

impl SharedRecipient {
    /// Wraps a recipient.
    pub fn new(recipient: Box<dyn age::Recipient + Send>) -> Self {
        SharedRecipient(Arc::new(Mutex::new(recipient)))
    }
}

impl std::fmt::Debug for SharedRecipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedRecipient")
    }
}

impl age::Recipient for SharedRecipient {
    fn wrap_file_key(
        &self,
        file_key: &age_core::format::FileKey,
    ) -> Result<
        (
            Vec<age_core::format::Stanza>,
            std::collections::HashSet<String>,
        ),
        age::EncryptError,
    > {
        // A poisoned lock only means another wrap panicked; the recipient is immutable.
        let recipient = self.0.lock().unwrap_or_else(|p| p.into_inner());
        recipient.wrap_file_key(file_key)
    }
}

/// An identity that can be shared between configurations and streams
/// (wraps any `age::Identity`).
#[derive(Clone)]
pub struct SharedIdentity(Arc<dyn age::Identity + Send + Sync>);

impl SharedIdentity {
    /// Wraps an identity.
    pub fn new(identity: Box<dyn age::Identity + Send + Sync>) -> Self {
        SharedIdentity(Arc::from(identity))
    }
}

impl std::fmt::Debug for SharedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedIdentity([REDACTED])")
    }
}

impl age::Identity for SharedIdentity {
    fn unwrap_stanza(
        &self,
        stanza: &age_core::format::Stanza,
    ) -> Option<Result<age_core::format::FileKey, age::DecryptError>> {
        self.0.unwrap_stanza(stanza)
    }

    fn unwrap_stanzas(
        &self,
        stanzas: &[age_core::format::Stanza],
    ) -> Option<Result<age_core::format::FileKey, age::DecryptError>> {
        self.0.unwrap_stanzas(stanzas)
    }
}

/// How a [`StreamWriter`](super::StreamWriter) protects the stream.
///
/// There is no default: plaintext is [`Sealing::Plain`], chosen by name. A
/// writer given a key never falls back to plaintext.
///
/// ```
/// use zebrastream::cipher::Format;
/// use zebrastream::client::{SecretString, Sealing};
///
/// let by_passphrase = Sealing::passphrase(SecretString::from("correct horse battery staple"));
/// assert_eq!(by_passphrase.format(), Some(Format::AgeRt));
/// assert!(!format!("{by_passphrase:?}").contains("horse"));
/// let partner = age::x25519::Identity::generate().to_public();
/// let to_partner = Sealing::recipients(vec![Box::new(partner)], Format::AgeV1);
/// assert!(to_partner.encryptor().unwrap().is_some());
/// assert!(Sealing::Plain.encryptor().unwrap().is_none());
/// ```
///
/// A reader's key does not fit a writer (nor the other way round):
///
/// ```compile_fail
/// # async fn f(config: zebrastream::client::Config) {
/// use zebrastream::client::{Opening, StreamWriter};
/// let key = age::x25519::Identity::generate();
/// let _ = StreamWriter::connect(&config, &Opening::identities(vec![Box::new(key)])).await;
/// # }
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum Sealing {
    /// No encryption: the relay sees the bytes as they are.
    Plain,
    /// A passphrase (scrypt, work factor 2^18).
    Passphrase {
        /// The passphrase.
        passphrase: SecretString,
        /// The format to produce.
        format: Format,
    },
    /// Public keys to encrypt to (X25519 `age1…`, SSH, tickets).
    Recipients {
        /// One or more recipients (not mixed with scrypt).
        recipients: Vec<SharedRecipient>,
        /// The format to produce.
        format: Format,
    },
    /// Forward secrecy: before the data stream, run the exchange keyed with
    /// `exchange` ([`crate::forward_secrecy`]) and encrypt to the one-time
    /// key the reader contributes to this transfer alone. The reader must
    /// use [`Opening::Fresh`] with the same exchange key.
    Fresh {
        /// The key that authenticates the exchange.
        exchange: Arc<ExchangeKey>,
        /// The format to produce.
        format: Format,
    },
}

impl std::fmt::Debug for Sealing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sealing::Plain => f.write_str("Plain"),
            Sealing::Passphrase { format, .. } => f
                .debug_struct("Passphrase")
                .field("passphrase", &"[REDACTED]")
                .field("format", format)
                .finish(),
            Sealing::Recipients { recipients, format } => f
                .debug_struct("Recipients")
                .field("count", &recipients.len())
                .field("format", format)
                .finish(),
            Sealing::Fresh { format, .. } => f
                .debug_struct("Fresh")
                .field("exchange", &"[REDACTED]")
                .field("format", format)
                .finish(),
        }
    }
}

impl Sealing {
    /// A passphrase, producing age-rt v0.2 (what the official client writes).
    pub fn passphrase(passphrase: SecretString) -> Self {
        Sealing::Passphrase {
            passphrase,
            format: Format::AgeRt,
        }
    }

    /// Recipients to encrypt to, in `format`.
    pub fn recipients(recipients: Vec<Box<dyn age::Recipient + Send>>, format: Format) -> Self {
        Sealing::Recipients {
            recipients: recipients.into_iter().map(SharedRecipient::new).collect(),
            format,
        }
    }

    /// Forward secrecy keyed with `exchange`, producing `format`.
    pub fn fresh(exchange: ExchangeKey, format: Format) -> Self {
        Sealing::Fresh {
            exchange: Arc::new(exchange),
            format,
        }
    }

    /// The format produced (`None` for plaintext).
    pub fn format(&self) -> Option<Format> {
        match self {
            Sealing::Plain => None,
            Sealing::Passphrase { format, .. }
            | Sealing::Recipients { format, .. }
            | Sealing::Fresh { format, .. } => Some(*format),
        }
    }

    /// The encryptor of this key (`None` for plaintext), for sealing without
    /// a relay (files, pipes: see [`EncryptingWriter`](crate::cipher::EncryptingWriter)). A
    /// passphrase runs scrypt here (about half a second). An invalid
    /// recipient set is [`Error::Encryption`]; [`Sealing::Fresh`] has no key
    /// before its exchange ([`Error::InvalidConfig`]: connect a
    /// [`StreamWriter`](super::StreamWriter) instead).
    pub fn encryptor(&self) -> Result<Option<Encryptor>, Error> {
        let built = match self {
            Sealing::Plain => Ok(None),
            Sealing::Passphrase { passphrase, format } => {
                Encryptor::with_passphrase(*format, passphrase.clone()).map(Some)
            }
            Sealing::Recipients { recipients, format } => Encryptor::with_recipients(
                *format,
                recipients
                    .iter()
                    .map(|r| Box::new(r.clone()) as Box<dyn age::Recipient + Send>)
                    .collect(),
            )
            .map(Some),
            Sealing::Fresh { .. } => {
                return Err(Error::InvalidConfig(
                    "forward secrecy has no key before its exchange: connect a StreamWriter".into(),
                ))
            }
        };
        built.map_err(Error::Encryption)
    }
}

/// How a [`StreamReader`](super::StreamReader) opens the stream.
///
/// Readers detect the format (age-rt or age v1). There is no default:
/// [`Opening::Plain`] accepts whatever the relay serves and must be chosen
/// by name; every other variant refuses an unencrypted stream before the
/// first byte reaches the caller.
///
/// ```
/// use zebrastream::client::{Opening, SecretString};
///
/// let by_passphrase = Opening::passphrase(SecretString::from("correct horse battery staple"));
/// assert!(!format!("{by_passphrase:?}").contains("horse"));
/// let key = age::x25519::Identity::generate();
/// let with_key = Opening::identities(vec![Box::new(key)]);
/// assert!(with_key.decryptor().unwrap().is_some());
/// assert!(Opening::Plain.decryptor().unwrap().is_none());
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum Opening {
    /// No decryption: the bytes are passed on as the relay serves them. Use
    /// it only where the relay is trusted with the content.
    Plain,
    /// A passphrase (scrypt).
    Passphrase {
        /// The passphrase.
        passphrase: SecretString,
        /// The largest scrypt work factor (log2 N) accepted (the writer, or a
        /// relay forging a stream, chooses it; 2^20 costs 1 GiB and seconds):
        /// a higher one fails before any scrypt work.
        max_work_factor: u8,
    },
    /// Private keys to decrypt with (X25519, SSH, tickets).
    Identities(Vec<SharedIdentity>),
    /// Forward secrecy: answer the writer's offer with a one-time key
    /// (exchange keyed with the given key) that alone opens the data stream;
    /// the writer uses [`Sealing::Fresh`].
    Fresh(Arc<ExchangeKey>),
    /// No key at hand: connect, tell what the stream is, and refuse it with
    /// [`Error::NotEncrypted`](super::Error::NotEncrypted) or
    /// [`Error::KeyRequired`](super::Error::KeyRequired) (for a tool that
    /// asks for a key only when one is needed).
    Detect,
}

impl std::fmt::Debug for Opening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Opening::Plain => f.write_str("Plain"),
            Opening::Passphrase {
                max_work_factor, ..
            } => f
                .debug_struct("Passphrase")
                .field("passphrase", &"[REDACTED]")
                .field("max_work_factor", max_work_factor)
                .finish(),
            Opening::Identities(ids) => write!(f, "Identities({} [REDACTED])", ids.len()),
            Opening::Fresh(_) => f.write_str("Fresh([REDACTED])"),
            Opening::Detect => f.write_str("Detect"),
        }
    }
}

impl Opening {
    /// A passphrase, accepting scrypt work factors up to
    /// [`DEFAULT_READER_MAX_WORK_FACTOR`](super::DEFAULT_READER_MAX_WORK_FACTOR)
    /// (2^18, what our writer and the official client use).
    pub fn passphrase(passphrase: SecretString) -> Self {
        Opening::Passphrase {
            passphrase,
            max_work_factor: DEFAULT_READER_MAX_WORK_FACTOR,
        }
    }

    /// Identities to decrypt with.
    pub fn identities(identities: Vec<Box<dyn age::Identity + Send + Sync>>) -> Self {
        Opening::Identities(identities.into_iter().map(SharedIdentity::new).collect())
    }

    /// Forward secrecy keyed with `exchange`.
    pub fn fresh(exchange: ExchangeKey) -> Self {
        Opening::Fresh(Arc::new(exchange))
    }

    /// The decryptor of this key (`None` for [`Opening::Plain`]), for opening
    /// without a relay (see [`DecryptingReader`](crate::cipher::DecryptingReader)). [`Opening::Fresh`]
    /// and [`Opening::Detect`] hold no key yet ([`Error::InvalidConfig`]:
    /// connect a [`StreamReader`](super::StreamReader) instead).
    pub fn decryptor(&self) -> Result<Option<Decryptor>, Error> {
        match self {
            Opening::Plain => Ok(None),
            Opening::Passphrase {
                passphrase,
                max_work_factor,
            } => Ok(Some(
                Decryptor::with_passphrase(passphrase.clone()).max_work_factor(*max_work_factor),
            )),
            Opening::Identities(identities) => Ok(Some(Decryptor::with_identities(
                identities
                    .iter()
                    .map(|i| Box::new(i.clone()) as Box<dyn age::Identity + Send + Sync>)
                    .collect(),
            ))),
            Opening::Fresh(_) => Err(Error::InvalidConfig(
                "forward secrecy has no key before its exchange: connect a StreamReader".into(),
            )),
            Opening::Detect => Err(Error::InvalidConfig(
                "Opening::Detect holds no key: it only tells what a stream is".into(),
            )),
        }
    }
}

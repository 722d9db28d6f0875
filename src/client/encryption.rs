//! [`Encryption`]: how a stream is protected end to end.

use std::sync::{Arc, Mutex};

use secrecy::SecretString;

use super::Error;
use crate::cipher::{Decryptor, Encryptor, Format};

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

/// How the payload is protected between producer and consumer.
///
/// A writer encrypts with [`Passphrase`](Encryption::Passphrase) or
/// [`Recipients`](Encryption::Recipients); a reader decrypts with
/// [`Passphrase`](Encryption::Passphrase) or
/// [`Identities`](Encryption::Identities) and detects age-rt or age v1 from
/// the stream. A setting that cannot serve the role (identities on a writer,
/// recipients on a reader) is an error at connect time: a writer never falls
/// back to plaintext.
///
/// ```
/// use secrecy::SecretString;
/// use zebrastream::client::Encryption;
/// use zebrastream::cipher::Format;
///
/// let e = Encryption::passphrase(SecretString::from("correct horse battery staple"));
/// assert!(e.is_encrypted());
/// assert!(!format!("{e:?}").contains("horse"));
/// let id = age::x25519::Identity::generate();
/// let to = Encryption::recipients(vec![Box::new(id.to_public())], Format::AgeV1);
/// let from = Encryption::identities(vec![Box::new(id)]);
/// # let _ = (to, from);
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum Encryption {
    /// No encryption: the relay sees the bytes as they are, and a reader
    /// passes on whatever the relay serves. Never a default: a
    /// [`Config`](super::Config) needs the choice made explicitly.
    Plain,
    /// A passphrase (scrypt, work factor 2^18): encrypts on a writer, decrypts on a reader.
    Passphrase {
        /// The passphrase.
        passphrase: SecretString,
        /// The format a writer produces (readers detect it).
        format: Format,
    },
    /// Public keys a writer encrypts to (X25519 `age1…`, SSH, tickets).
    Recipients {
        /// One or more recipients (not mixed with scrypt).
        recipients: Vec<SharedRecipient>,
        /// The format to produce.
        format: Format,
    },
    /// Private keys a reader decrypts with.
    Identities(Vec<SharedIdentity>),
}

impl std::fmt::Debug for Encryption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Encryption::Plain => f.write_str("Plain"),
            Encryption::Passphrase { format, .. } => f
                .debug_struct("Passphrase")
                .field("passphrase", &"[REDACTED]")
                .field("format", format)
                .finish(),
            Encryption::Recipients { recipients, format } => f
                .debug_struct("Recipients")
                .field("count", &recipients.len())
                .field("format", format)
                .finish(),
            Encryption::Identities(ids) => write!(f, "Identities({} [REDACTED])", ids.len()),
        }
    }
}

impl Encryption {
    /// A passphrase with the default format (age-rt v0.2).
    pub fn passphrase(passphrase: SecretString) -> Self {
        Encryption::Passphrase {
            passphrase,
            format: Format::AgeRt,
        }
    }

    /// Recipients to encrypt to, in `format`.
    pub fn recipients(recipients: Vec<Box<dyn age::Recipient + Send>>, format: Format) -> Self {
        Encryption::Recipients {
            recipients: recipients.into_iter().map(SharedRecipient::new).collect(),
            format,
        }
    }

    /// Identities to decrypt with.
    pub fn identities(identities: Vec<Box<dyn age::Identity + Send + Sync>>) -> Self {
        Encryption::Identities(identities.into_iter().map(SharedIdentity::new).collect())
    }

    /// True for every setting except [`Encryption::Plain`].
    pub fn is_encrypted(&self) -> bool {
        !matches!(self, Encryption::Plain)
    }

    /// The encryptor a writer uses (`None` for plaintext). Runs scrypt off the
    /// async worker threads.
    pub(crate) async fn encryptor(&self) -> Result<Option<Encryptor>, Error> {
        match self {
            Encryption::Plain => Ok(None),
            Encryption::Passphrase { passphrase, format } => {
                let (passphrase, format) = (passphrase.clone(), *format);
                // scrypt takes about half a second: keep it off the async workers.
                let encryptor = tokio::task::spawn_blocking(move || {
                    Encryptor::with_passphrase(format, passphrase)
                })
                .await
                .map_err(|_| Error::Closed)?;
                encryptor.map(Some).map_err(Error::Encryption)
            }
            Encryption::Recipients { recipients, format } => {
                let boxed = recipients
                    .iter()
                    .map(|r| Box::new(r.clone()) as Box<dyn age::Recipient + Send>)
                    .collect();
                Encryptor::with_recipients(*format, boxed)
                    .map(Some)
                    .map_err(Error::Encryption)
            }
            Encryption::Identities(_) => Err(Error::InvalidConfig(
                "identities can only decrypt: a writer needs a passphrase or recipients".into(),
            )),
        }
    }

    /// The decryptor a reader uses (`None` for plaintext), accepting scrypt
    /// work factors up to 2^`max_work_factor`.
    pub(crate) fn decryptor(&self, max_work_factor: u8) -> Result<Option<Decryptor>, Error> {
        match self {
            Encryption::Plain => Ok(None),
            Encryption::Passphrase { passphrase, .. } => Ok(Some(
                Decryptor::with_passphrase(passphrase.clone()).max_work_factor(max_work_factor),
            )),
            Encryption::Identities(identities) => Ok(Some(Decryptor::with_identities(
                identities
                    .iter()
                    .map(|i| Box::new(i.clone()) as Box<dyn age::Identity + Send + Sync>)
                    .collect(),
            ))),
            Encryption::Recipients { .. } => Err(Error::InvalidConfig(
                "recipients can only encrypt: a reader needs a passphrase or identities".into(),
            )),
        }
    }
}

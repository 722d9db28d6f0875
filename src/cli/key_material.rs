//! Turning a [`KeyPlan`] into cipher keys: prompting, reading passphrase,
//! recipients and identity files. All of it happens before any connection
//! is made, so a typo fails fast and nobody is kept waiting.

use secrecy::SecretString;
use zebrastream::cipher::keys::{self, BoxedIdentity, BoxedRecipient};
use zebrastream::cipher::{Decryptor, Encryptor, Format};
use zebrastream::client::Encryption;

use super::errors::cipher_failure;
use super::keys::KeyPlan;
use super::passphrase;
use super::Failure;

/// The key to encrypt with.
pub enum SealingKey {
    /// scrypt passphrase.
    Passphrase(SecretString),
    /// X25519 / SSH recipients.
    Recipients(Vec<BoxedRecipient>),
}

/// The key to decrypt with.
pub enum OpeningKey {
    /// scrypt passphrase.
    Passphrase(SecretString),
    /// X25519 / SSH identities.
    Identities(Vec<BoxedIdentity>),
}

/// What a reading command does about encryption.
pub enum OpeningPlan {
    /// Pass bytes through (`--plain`).
    Plain,
    /// No key and no terminal: refuse the stream, naming what it is.
    Detect,
    /// Decrypt with this key.
    Key(OpeningKey),
}

impl SealingKey {
    /// From the plan of a sealing command; `None` means plaintext (`--plain`).
    pub fn from_plan(plan: KeyPlan, subject: &str) -> Result<Option<SealingKey>, Failure> {
        Ok(Some(match plan {
            KeyPlan::Plain => return Ok(None),
            KeyPlan::Passphrase(source) => {
                SealingKey::Passphrase(passphrase::obtain(source, subject)?)
            }
            KeyPlan::Recipients { keys, files } => {
                let mut recipients = Vec::new();
                for key in &keys {
                    recipients
                        .push(keys::parse_recipient(key).map_err(|e| cipher_failure(subject, &e))?);
                }
                for file in &files {
                    recipients.extend(
                        keys::read_recipients_file(file)
                            .map_err(|e| cipher_failure(subject, &e))?,
                    );
                }
                SealingKey::Recipients(recipients)
            }
            KeyPlan::Identities(_) | KeyPlan::Detect => {
                return Err(Failure::usage(format!(
                "{subject}: identities decrypt; to encrypt give recipients (-r/-R) or a passphrase"
            )))
            }
        }))
    }

    /// An encryptor for `format` with this key.
    pub fn encryptor(self, format: Format, subject: &str) -> Result<Encryptor, Failure> {
        match self {
            SealingKey::Passphrase(p) => Encryptor::with_passphrase(format, p),
            SealingKey::Recipients(r) => Encryptor::with_recipients(format, r),
        }
        .map_err(|e| cipher_failure(subject, &e))
    }
}

impl OpeningKey {
    /// A decryptor with this key that accepts scrypt work factors up to
    /// 2^`max_work_factor`.
    pub fn decryptor(self, max_work_factor: u8) -> Decryptor {
        match self {
            OpeningKey::Passphrase(p) => Decryptor::with_passphrase(p),
            OpeningKey::Identities(ids) => Decryptor::with_identities(ids),
        }
        .max_work_factor(max_work_factor)
    }
}

impl OpeningPlan {
    /// From the plan of an opening command.
    pub fn from_plan(plan: KeyPlan, subject: &str) -> Result<OpeningPlan, Failure> {
        Ok(match plan {
            KeyPlan::Plain => OpeningPlan::Plain,
            KeyPlan::Detect => OpeningPlan::Detect,
            KeyPlan::Passphrase(source) => {
                OpeningPlan::Key(OpeningKey::Passphrase(passphrase::obtain(source, subject)?))
            }
            KeyPlan::Identities(files) => {
                let mut identities = Vec::new();
                for file in &files {
                    identities.extend(
                        keys::read_identity_file(file).map_err(|e| cipher_failure(subject, &e))?,
                    );
                }
                OpeningPlan::Key(OpeningKey::Identities(identities))
            }
            KeyPlan::Recipients { .. } => {
                return Err(Failure::usage(format!(
                    "{subject}: recipients encrypt; to decrypt give identities (-i) or a passphrase"
                )))
            }
        })
    }
}

/// The client library's setting for a writer: plaintext (`None`), a
/// passphrase or recipients, producing `format`.
pub fn client_sealing(key: Option<SealingKey>, format: Format) -> Encryption {
    match key {
        None => Encryption::Plain,
        Some(SealingKey::Passphrase(passphrase)) => Encryption::Passphrase { passphrase, format },
        Some(SealingKey::Recipients(recipients)) => Encryption::recipients(recipients, format),
    }
}

/// The client library's setting for a reader with a known key.
pub fn client_opening(key: OpeningKey) -> Encryption {
    match key {
        OpeningKey::Passphrase(passphrase) => Encryption::passphrase(passphrase),
        OpeningKey::Identities(identities) => Encryption::identities(identities),
    }
}

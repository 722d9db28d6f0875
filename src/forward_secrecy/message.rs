//! The two messages of the exchange and their key schedule, sans I/O.
//!
//! Byte layouts (docs/forward-secrecy.md has the whole protocol):
//!
//! ```text
//! offer       = version (1) | kind 0x01 (1) | nonce (32) | tag (16)             50 bytes
//! key message = version (1) | kind 0x02 (1) | salt (16)  | sealed(plaintext)    <= 4 KiB
//! plaintext   = nonce (32)  | key type (1) | age recipient (UTF-8 text)
//! key type    = 0x01 X25519 (`age1…`) | 0x02 hybrid ML-KEM-768 + X25519 (`age1pq1…`)
//! ```
//!
//! Every key is derived with HKDF-SHA256 from the exchange key `X` with a
//! label of its own, so neither message can open as the other, nor as a data
//! stream (whose keys come from other labels or the age header):
//!
//! - offer key = `HKDF(salt = nonce, ikm = X, info = "zebrastream fs offer" | 0 | version | kind | path)`;
//!   the tag is ChaCha20-Poly1305 over the empty plaintext (a MAC);
//! - key-message key = `HKDF(salt = nonce | salt, ikm = X, info = "zebrastream fs key" | 0 | version | kind | path)`,
//!   so a key message opens only for the offer whose nonce it answers, and
//!   each key seals one message (ChaCha20-Poly1305 with a zero nonce, as in age).

use std::str::FromStr;

use std::collections::HashSet;

use age_core::format::{FileKey, Stanza};
use age_core::primitives::{aead_decrypt, aead_encrypt, hkdf};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::cipher::keys::HybridRecipient;

/// The reader's one-time key, as the writer gets it from a key message:
/// hybrid post-quantum (what readers send), or X25519 (what readers sent
/// before the exchange went hybrid; still accepted).
#[derive(Debug, Clone)]
pub(crate) enum OneTimeRecipient {
    /// Key type 0x01.
    X25519(age::x25519::Recipient),
    /// Key type 0x02 (boxed: 1.6 KB of public key).
    Hybrid(Box<HybridRecipient>),
}

impl OneTimeRecipient {
    fn key_type(&self) -> u8 {
        match self {
            OneTimeRecipient::X25519(_) => KEY_TYPE_AGE_X25519,
            OneTimeRecipient::Hybrid(_) => KEY_TYPE_AGE_HYBRID,
        }
    }

    fn to_text(&self) -> String {
        match self {
            OneTimeRecipient::X25519(r) => r.to_string(),
            OneTimeRecipient::Hybrid(r) => r.to_string(),
        }
    }

    fn parse(key_type: u8, text: &str) -> Result<Self, MessageError> {
        match key_type {
            KEY_TYPE_AGE_X25519 => age::x25519::Recipient::from_str(text)
                .map(OneTimeRecipient::X25519)
                .map_err(|_| MessageError::Key),
            KEY_TYPE_AGE_HYBRID => HybridRecipient::from_str(text)
                .map(|r| OneTimeRecipient::Hybrid(Box::new(r)))
                .map_err(|_| MessageError::Key),
            other => Err(MessageError::KeyType(other)),
        }
    }
}

impl age::Recipient for OneTimeRecipient {
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        match self {
            OneTimeRecipient::X25519(r) => r.wrap_file_key(file_key),
            OneTimeRecipient::Hybrid(r) => r.wrap_file_key(file_key),
        }
    }
}

/// The exchange format version carried in every message's first byte.
pub(crate) const VERSION: u8 = 1;
/// The second byte of an offer.
const KIND_OFFER: u8 = 0x01;
/// The second byte of a key message.
const KIND_KEY: u8 = 0x02;
/// The key-type byte of an age X25519 recipient (`age1…`).
const KEY_TYPE_AGE_X25519: u8 = 0x01;
/// The key-type byte of a hybrid post-quantum recipient (`age1pq1…`): what
/// readers send since the exchange went hybrid.
const KEY_TYPE_AGE_HYBRID: u8 = 0x02;

const NONCE_BYTES: usize = 32;
const SALT_BYTES: usize = 16;
const TAG_BYTES: usize = 16;
const HEAD_BYTES: usize = 2;

/// The exact size of an offer.
pub(crate) const OFFER_BYTES: usize = HEAD_BYTES + NONCE_BYTES + TAG_BYTES;
/// The largest key message accepted: room for a hybrid post-quantum
/// recipient of about 2 KB and more.
pub const MAX_KEY_MESSAGE: usize = 4096;

const LABEL_OFFER: &[u8] = b"zebrastream fs offer";
const LABEL_KEY: &[u8] = b"zebrastream fs key";

/// Why a message of the exchange was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The first byte names an exchange version this build does not speak.
    #[error("unsupported exchange version {0} (this build speaks version {VERSION})")]
    Version(u8),
    /// The second byte names another message (e.g. an offer served where a
    /// key message belongs).
    #[error("it is not {expected} (message kind {found:#04x})")]
    Kind {
        /// The message that was expected.
        expected: &'static str,
        /// The kind byte found.
        found: u8,
    },
    /// Too short or too long for its kind.
    #[error("it has the wrong length ({0} bytes)")]
    Length(usize),
    /// The tag does not verify: made with another ticket or passphrase,
    /// altered, or (for a key message) an answer to another session's offer,
    /// i.e. a replay.
    #[error("it does not authenticate for this session: replayed from another session, altered, or made with another ticket or passphrase")]
    NotAuthentic,
    /// The key message authenticates but names another offer's nonce.
    #[error("it answers another session's offer (replayed)")]
    Unbound,
    /// A key type this build cannot encrypt to.
    #[error("unsupported key type {0:#04x}")]
    KeyType(u8),
    /// The key is not a valid age recipient of its key type.
    #[error("the key is not a valid age recipient of its key type")]
    Key,
}

/// The secret both sides share: 32 bytes from the ticket or the passphrase.
pub(crate) type ExchangeSecret = Zeroizing<[u8; 32]>;

/// The info string of a derived key: label, a zero byte, version, kind, path.
fn context(label: &[u8], kind: u8, path: &str) -> Vec<u8> {
    let mut info = Vec::with_capacity(label.len() + 3 + path.len());
    info.extend_from_slice(label);
    info.push(0);
    info.push(VERSION);
    info.push(kind);
    info.extend_from_slice(path.as_bytes());
    info
}

fn check_head(message: &[u8], kind: u8, expected: &'static str) -> Result<(), MessageError> {
    match message {
        [] => Err(MessageError::Length(0)),
        [version, ..] if *version != VERSION => Err(MessageError::Version(*version)),
        [_] => Err(MessageError::Length(1)),
        [_, found, ..] if *found != kind => Err(MessageError::Kind {
            expected,
            found: *found,
        }),
        _ => Ok(()),
    }
}

/// The writer's opening message: a fresh nonce, authenticated with the
/// exchange key (so a reader answers only ticket or passphrase holders).
#[derive(Debug)]
pub(crate) struct Offer {
    nonce: [u8; NONCE_BYTES],
}

impl Offer {
    /// A new offer with a fresh random nonce.
    pub(crate) fn generate() -> Offer {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        Offer { nonce }
    }

    fn offer_key(&self, secret: &ExchangeSecret, path: &str) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(hkdf(
            &self.nonce,
            &context(LABEL_OFFER, KIND_OFFER, path),
            secret.as_ref(),
        ))
    }

    /// The offer's bytes for the data stream at `path`.
    pub(crate) fn seal(&self, secret: &ExchangeSecret, path: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(OFFER_BYTES);
        out.extend_from_slice(&[VERSION, KIND_OFFER]);
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(&aead_encrypt(&self.offer_key(secret, path), &[]));
        out
    }

    /// Checks an offer received for the data stream at `path`.
    pub(crate) fn open(
        secret: &ExchangeSecret,
        path: &str,
        message: &[u8],
    ) -> Result<Offer, MessageError> {
        check_head(message, KIND_OFFER, "an offer")?;
        if message.len() != OFFER_BYTES {
            return Err(MessageError::Length(message.len()));
        }
        let mut nonce = [0u8; NONCE_BYTES];
        nonce.copy_from_slice(&message[HEAD_BYTES..HEAD_BYTES + NONCE_BYTES]);
        let offer = Offer { nonce };
        aead_decrypt(
            &offer.offer_key(secret, path),
            0,
            &message[HEAD_BYTES + NONCE_BYTES..],
        )
        .map_err(|_| MessageError::NotAuthentic)?;
        Ok(offer)
    }

    fn key_message_key(
        &self,
        secret: &ExchangeSecret,
        path: &str,
        salt: &[u8],
    ) -> Zeroizing<[u8; 32]> {
        let mut hkdf_salt = Vec::with_capacity(NONCE_BYTES + SALT_BYTES);
        hkdf_salt.extend_from_slice(&self.nonce);
        hkdf_salt.extend_from_slice(salt);
        Zeroizing::new(hkdf(
            &hkdf_salt,
            &context(LABEL_KEY, KIND_KEY, path),
            secret.as_ref(),
        ))
    }

    /// The reader's answer to this offer: `recipient`, bound to the nonce.
    pub(crate) fn answer(
        &self,
        secret: &ExchangeSecret,
        path: &str,
        recipient: &OneTimeRecipient,
    ) -> Vec<u8> {
        let mut salt = [0u8; SALT_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let text = recipient.to_text();
        let mut plaintext = Vec::with_capacity(NONCE_BYTES + 1 + text.len());
        plaintext.extend_from_slice(&self.nonce);
        plaintext.push(recipient.key_type());
        plaintext.extend_from_slice(text.as_bytes());
        let mut out = Vec::with_capacity(HEAD_BYTES + SALT_BYTES + plaintext.len() + TAG_BYTES);
        out.extend_from_slice(&[VERSION, KIND_KEY]);
        out.extend_from_slice(&salt);
        out.extend_from_slice(&aead_encrypt(
            &self.key_message_key(secret, path, &salt),
            &plaintext,
        ));
        out
    }

    /// Checks the reader's key message: it must answer this very offer.
    /// Returns the one-time recipient to encrypt the data stream to.
    pub(crate) fn accept(
        &self,
        secret: &ExchangeSecret,
        path: &str,
        message: &[u8],
    ) -> Result<OneTimeRecipient, MessageError> {
        check_head(message, KIND_KEY, "a key message")?;
        let min = HEAD_BYTES + SALT_BYTES + NONCE_BYTES + 1 + TAG_BYTES;
        if message.len() < min || message.len() > MAX_KEY_MESSAGE {
            return Err(MessageError::Length(message.len()));
        }
        let (salt, sealed) = message[HEAD_BYTES..].split_at(SALT_BYTES);
        let plaintext = aead_decrypt(
            &self.key_message_key(secret, path, salt),
            sealed.len() - TAG_BYTES,
            sealed,
        )
        .map_err(|_| MessageError::NotAuthentic)?;
        let (nonce, rest) = plaintext.split_at(NONCE_BYTES);
        if nonce != self.nonce {
            return Err(MessageError::Unbound);
        }
        match rest.split_first() {
            Some((&key_type, key)) => {
                let text = std::str::from_utf8(key).map_err(|_| MessageError::Key)?;
                OneTimeRecipient::parse(key_type, text)
            }
            None => Err(MessageError::Length(message.len())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> ExchangeSecret {
        Zeroizing::new([byte; 32])
    }

    const PATH: &str = "/team/abc";

    fn x25519() -> OneTimeRecipient {
        OneTimeRecipient::X25519(age::x25519::Identity::generate().to_public())
    }

    #[test]
    fn offer_and_answer_round_trip() {
        let x = secret(1);
        let offer = Offer::generate();
        let bytes = offer.seal(&x, PATH);
        assert_eq!(bytes.len(), OFFER_BYTES);
        assert_eq!(bytes[0], VERSION);
        let received = Offer::open(&x, PATH, &bytes).unwrap();
        // Both key types: hybrid (what readers send) and X25519 (older readers).
        let hybrid = crate::cipher::keys::HybridIdentity::generate().to_public();
        for recipient in [OneTimeRecipient::Hybrid(Box::new(hybrid)), x25519()] {
            let answer = received.answer(&x, PATH, &recipient);
            assert!(answer.len() <= MAX_KEY_MESSAGE);
            let accepted = offer.accept(&x, PATH, &answer).unwrap();
            assert_eq!(accepted.key_type(), recipient.key_type());
            assert_eq!(accepted.to_text(), recipient.to_text());
            // The one-time key never appears in clear.
            let text = recipient.to_text();
            assert!(!answer.windows(10).any(|w| w == &text.as_bytes()[8..18]));
        }
    }

    #[test]
    fn an_answer_to_another_offer_is_refused() {
        let x = secret(1);
        let monday = Offer::generate();
        let tuesday = Offer::generate();
        let answer = monday.answer(&x, PATH, &x25519());
        assert_eq!(
            tuesday.accept(&x, PATH, &answer).unwrap_err(),
            MessageError::NotAuthentic
        );
    }

    #[test]
    fn wrong_secret_path_or_tampering_is_refused() {
        let (x, y) = (secret(1), secret(2));
        let offer = Offer::generate();
        let bytes = offer.seal(&x, PATH);
        assert_eq!(
            Offer::open(&y, PATH, &bytes).unwrap_err(),
            MessageError::NotAuthentic
        );
        assert_eq!(
            Offer::open(&x, "/team/other", &bytes).unwrap_err(),
            MessageError::NotAuthentic
        );
        let answer = offer.answer(&x, PATH, &x25519());
        for i in 2..answer.len() {
            let mut bad = answer.clone();
            bad[i] ^= 0x01;
            assert_eq!(
                offer.accept(&x, PATH, &bad).unwrap_err(),
                MessageError::NotAuthentic,
                "flip at {i}"
            );
        }
        assert_eq!(
            offer.accept(&y, PATH, &answer).unwrap_err(),
            MessageError::NotAuthentic
        );
    }

    #[test]
    fn swapped_messages_versions_and_sizes_are_refused() {
        let x = secret(1);
        let offer = Offer::generate();
        let offer_bytes = offer.seal(&x, PATH);
        let answer = offer.answer(&x, PATH, &x25519());
        assert!(matches!(
            Offer::open(&x, PATH, &answer),
            Err(MessageError::Kind { .. })
        ));
        assert!(matches!(
            offer.accept(&x, PATH, &offer_bytes),
            Err(MessageError::Kind { .. })
        ));
        let mut future = answer.clone();
        future[0] = 2;
        assert_eq!(
            offer.accept(&x, PATH, &future).unwrap_err(),
            MessageError::Version(2)
        );
        assert_eq!(
            Offer::open(&x, PATH, &offer_bytes[..20]).unwrap_err(),
            MessageError::Length(20)
        );
        let mut long = answer.clone();
        long.resize(MAX_KEY_MESSAGE + 1, 0);
        assert_eq!(
            offer.accept(&x, PATH, &long).unwrap_err(),
            MessageError::Length(MAX_KEY_MESSAGE + 1)
        );
        assert_eq!(
            offer.accept(&x, PATH, &[]).unwrap_err(),
            MessageError::Length(0)
        );
        // A data stream (an age header) is no message of the exchange.
        let age_header = b"age-encryption.org/v1\n-> X25519 abc\n";
        assert!(matches!(
            Offer::open(&x, PATH, age_header),
            Err(MessageError::Version(b'a'))
        ));
    }

    #[test]
    fn a_key_message_of_the_maximum_size_is_accepted_in_principle() {
        // A future key of up to 4 KiB fits: the limit is on the whole message.
        let x = secret(1);
        let offer = Offer::generate();
        let mut salt = [0u8; SALT_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let mut plaintext = offer.nonce.to_vec();
        plaintext.push(0x7f);
        plaintext.resize(MAX_KEY_MESSAGE - HEAD_BYTES - SALT_BYTES - TAG_BYTES, b'k');
        let mut message = vec![VERSION, KIND_KEY];
        message.extend_from_slice(&salt);
        message.extend_from_slice(&aead_encrypt(
            &offer.key_message_key(&x, PATH, &salt),
            &plaintext,
        ));
        assert_eq!(message.len(), MAX_KEY_MESSAGE);
        // It authenticates and is bound; only the key type is unknown here.
        assert_eq!(
            offer.accept(&x, PATH, &message).unwrap_err(),
            MessageError::KeyType(0x7f)
        );
    }
}

//! age's hybrid post-quantum recipient type, `mlkem768x25519` (age v1.3,
//! the C2SP age spec): [`HybridRecipient`] (`age1pq1…`) and
//! [`HybridIdentity`] (`AGE-SECRET-KEY-PQ-1…`).
//!
//! The Rust `age` crate 0.12 and rage do not have this type yet, so it is
//! built here on age's public [`age::Recipient`] / [`age::Identity`] traits
//! and `age-core`'s HPKE helpers. Nothing in it is new cryptography:
//!
//! - the file key is wrapped with HPKE (RFC 9180) in base mode, KEM
//!   MLKEM768-X25519 (`0x647a`, [`kem`]), KDF HKDF-SHA256, AEAD
//!   ChaCha20-Poly1305, info `age-encryption.org/mlkem768x25519`, empty aad;
//! - the stanza is `-> mlkem768x25519 <base64 enc>` (1120 bytes of `enc`)
//!   with a 32-byte body (the 16-byte file key and its tag);
//! - an identity is the KEM's 32-byte seed in Bech32 with the HRP
//!   `AGE-SECRET-KEY-PQ-`; a recipient is the 1216-byte public key in Bech32
//!   with the HRP `age1pq` (no length limit, as age encodes it);
//! - the recipient carries the `postquantum` label, so the encryptor
//!   refuses to mix it with classic recipients (a classic stanza next to it
//!   would let a quantum attacker read the file).
//!
//! Every C2SP CCTV `hybrid*` vector runs against it (`tests/cipher_cctv.rs`).

mod kem;

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;

use age::secrecy::{ExposeSecret, SecretString};
use age_core::format::{FileKey, Stanza, FILE_KEY_BYTES};
use age_core::primitives::{bech32_decode, bech32_encode, hpke_open, hpke_seal};
use base64::{prelude::BASE64_STANDARD_NO_PAD, Engine};
use hpke::{Deserializable, HpkeError, Serializable};
use rand::{rngs::OsRng, RngCore};
use zeroize::Zeroizing;

use kem::MlKem768X25519;

/// The stanza type.
const STANZA_TAG: &str = "mlkem768x25519";
/// HPKE's `info`.
const HPKE_INFO: &[u8] = b"age-encryption.org/mlkem768x25519";
/// The label that keeps post-quantum recipients apart from classic ones.
pub(crate) const POSTQUANTUM_LABEL: &str = "postquantum";
const RECIPIENT_HRP: bech32::Hrp = bech32::Hrp::parse_unchecked("age1pq");
const IDENTITY_HRP: bech32::Hrp = bech32::Hrp::parse_unchecked("age-secret-key-pq-");
/// The wrapped file key: 16 bytes and the 16-byte Poly1305 tag.
const BODY_LEN: usize = FILE_KEY_BYTES + 16;

/// A hybrid post-quantum recipient (`age1pq1…`): ML-KEM-768 + X25519.
///
/// ```
/// use zebrastream::cipher::keys::{HybridIdentity, HybridRecipient};
/// let id = HybridIdentity::generate();
/// let r: HybridRecipient = id.to_public().to_string().parse().unwrap();
/// assert_eq!(r, id.to_public());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct HybridRecipient(kem::PublicKey);

/// A hybrid post-quantum identity (`AGE-SECRET-KEY-PQ-1…`): the 32-byte seed
/// of an ML-KEM-768 + X25519 key pair. Its secrets are wiped when dropped.
#[derive(Clone)]
pub struct HybridIdentity(kem::PrivateKey);

/// Why a key string is not a hybrid key (never quoting the key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseHybridKeyError {
    /// Not valid Bech32 (a typo, a truncated copy, or mixed case).
    InvalidEncoding,
    /// Valid Bech32, but not the `age1pq` / `AGE-SECRET-KEY-PQ-` prefix.
    WrongPrefix,
    /// The right prefix, but the key is not a valid ML-KEM-768 + X25519 key
    /// (wrong length, unreduced ML-KEM coefficients, or a low-order X25519
    /// point).
    InvalidKey,
}

impl fmt::Display for ParseHybridKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseHybridKeyError::InvalidEncoding => "invalid Bech32 encoding",
            ParseHybridKeyError::WrongPrefix => "wrong Bech32 prefix",
            ParseHybridKeyError::InvalidKey => "not a valid ML-KEM-768 + X25519 key",
        })
    }
}

impl std::error::Error for ParseHybridKeyError {}

/// Decodes a Bech32 key with the given HRP into `T`.
fn decode_key<T>(
    s: &str,
    hrp: bech32::Hrp,
    parse: impl FnOnce(&[u8]) -> Result<T, HpkeError>,
) -> Result<T, ParseHybridKeyError> {
    bech32_decode(
        s,
        |_| ParseHybridKeyError::InvalidEncoding,
        |found| {
            (found == hrp)
                .then_some(())
                .ok_or(ParseHybridKeyError::WrongPrefix)
        },
        |_, bytes| {
            let bytes = Zeroizing::new(bytes.collect::<Vec<u8>>());
            parse(&bytes).map_err(|_| ParseHybridKeyError::InvalidKey)
        },
    )
}

impl FromStr for HybridRecipient {
    type Err = ParseHybridKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode_key(s, RECIPIENT_HRP, kem::PublicKey::from_bytes).map(HybridRecipient)
    }
}

impl fmt::Display for HybridRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bech32_encode(RECIPIENT_HRP, &self.0.to_bytes()))
    }
}

impl fmt::Debug for HybridRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HybridRecipient({self})")
    }
}

impl age::Recipient for HybridRecipient {
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        // Cannot fail: the public key was validated when it was parsed.
        let (enc, body) = hpke_seal::<MlKem768X25519, _>(
            &self.0,
            HPKE_INFO,
            file_key.expose_secret(),
            &mut OsRng,
        );
        let stanza = Stanza {
            tag: STANZA_TAG.to_owned(),
            args: vec![BASE64_STANDARD_NO_PAD.encode(enc.to_bytes())],
            body,
        };
        Ok((vec![stanza], HashSet::from([POSTQUANTUM_LABEL.to_owned()])))
    }
}

impl HybridIdentity {
    /// Generates a new identity from the operating system's random source.
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new([0u8; kem::SEED_LEN]);
        OsRng.fill_bytes(&mut seed[..]);
        HybridIdentity(kem::PrivateKey::from_seed(&seed))
    }

    /// The recipient that encrypts to this identity.
    pub fn to_public(&self) -> HybridRecipient {
        HybridRecipient(self.0.public_key().clone())
    }

    /// The identity as `AGE-SECRET-KEY-PQ-1…` (what an identity file holds).
    pub fn to_string(&self) -> SecretString {
        let encoded = Zeroizing::new(bech32_encode(IDENTITY_HRP, self.0.seed()));
        SecretString::from(encoded.to_uppercase())
    }
}

impl FromStr for HybridIdentity {
    type Err = ParseHybridKeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode_key(s, IDENTITY_HRP, kem::PrivateKey::from_bytes).map(HybridIdentity)
    }
}

impl fmt::Debug for HybridIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HybridIdentity({})", self.to_public())
    }
}

impl age::Identity for HybridIdentity {
    /// `None` for other stanza types and for stanzas this key does not open;
    /// an `InvalidHeader` error for a malformed `mlkem768x25519` stanza
    /// (argument count, non-canonical base64, `enc` or body length) and for
    /// an X25519 share that gives the all-zero secret.
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        if stanza.tag != STANZA_TAG {
            return None;
        }
        let invalid = Some(Err(age::DecryptError::InvalidHeader));
        let [arg] = &stanza.args[..] else {
            return invalid;
        };
        // The standard engine refuses padding and non-zero trailing bits:
        // only the canonical encoding is accepted.
        let Ok(enc) = BASE64_STANDARD_NO_PAD.decode(arg) else {
            return invalid;
        };
        if enc.len() != kem::ENC_LEN || stanza.body.len() != BODY_LEN {
            return invalid;
        }
        let enc = kem::EncappedKey::from_bytes(&enc).expect("length checked");
        match hpke_open::<MlKem768X25519>(&enc, &self.0, HPKE_INFO, &stanza.body) {
            Ok(plain) => {
                let plain = Zeroizing::new(plain);
                Some(Ok(FileKey::init_with_mut(|k| k.copy_from_slice(&plain))))
            }
            // The all-zero X25519 secret: a malformed stanza.
            Err(HpkeError::DecapError) => invalid,
            // Not sealed to this key (ML-KEM rejects implicitly, so a wrong
            // key or a corrupted `enc` ends here): try the next identity.
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::{Identity, Recipient};

    fn wrap(r: &HybridRecipient) -> (FileKey, Stanza, HashSet<String>) {
        let key = FileKey::init_with_mut(|k| OsRng.fill_bytes(k));
        let (mut stanzas, labels) = r.wrap_file_key(&key).unwrap();
        (key, stanzas.remove(0), labels)
    }

    #[test]
    fn wraps_and_unwraps_with_the_postquantum_label() {
        let id = HybridIdentity::generate();
        let (key, stanza, labels) = wrap(&id.to_public());
        assert_eq!(labels, HashSet::from(["postquantum".to_owned()]));
        assert_eq!(stanza.tag, "mlkem768x25519");
        assert_eq!(stanza.args.len(), 1);
        assert_eq!(
            BASE64_STANDARD_NO_PAD
                .decode(&stanza.args[0])
                .unwrap()
                .len(),
            1120
        );
        assert_eq!(stanza.body.len(), 32);
        let got = id.unwrap_stanza(&stanza).unwrap().unwrap();
        assert_eq!(got.expose_secret(), key.expose_secret());
        // Another identity does not match; a malformed stanza is an error.
        assert!(HybridIdentity::generate().unwrap_stanza(&stanza).is_none());
        let mut args = stanza.args.clone();
        args.push("x".into());
        let two_args = Stanza {
            tag: stanza.tag.clone(),
            args,
            body: stanza.body.clone(),
        };
        assert!(matches!(
            id.unwrap_stanza(&two_args),
            Some(Err(age::DecryptError::InvalidHeader))
        ));
    }

    /// Both formats carry the stanza; two hybrid recipients may share a
    /// header, a classic one may not (age 1.3's rule), and the refusal names
    /// the cause; scrypt keeps its own message.
    #[test]
    fn encryptor_keeps_postquantum_recipients_apart_from_classic_ones() {
        use crate::cipher::{Decryptor, Encryptor, Error, Format};
        let (a, b) = (HybridIdentity::generate(), HybridIdentity::generate());
        for format in [Format::AgeV1, Format::AgeRt] {
            let recipients: Vec<Box<dyn Recipient + Send>> =
                vec![Box::new(a.to_public()), Box::new(b.to_public())];
            let wire = Encryptor::with_recipients(format, recipients)
                .unwrap()
                .encrypt_all(b"pq")
                .unwrap();
            for id in [&a, &b] {
                let mut dec = Decryptor::with_identities(vec![Box::new(id.clone())]);
                assert_eq!(dec.decrypt_all(&wire).unwrap(), b"pq");
            }
        }
        let classic = age::x25519::Identity::generate().to_public();
        for recipients in [
            vec![
                Box::new(a.to_public()) as Box<dyn Recipient + Send>,
                Box::new(classic.clone()),
            ],
            vec![Box::new(classic), Box::new(a.to_public())],
        ] {
            let err = Encryptor::with_recipients(Format::AgeV1, recipients).unwrap_err();
            assert!(
                matches!(err, Error::InvalidRecipients(m) if m.contains("can't mix post-quantum")),
                "{err}"
            );
        }
        let scrypt = age::scrypt::Recipient::new("pw".to_owned().into());
        let err = Encryptor::with_recipients(
            Format::AgeV1,
            vec![Box::new(a.to_public()), Box::new(scrypt)],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("scrypt cannot be combined"),
            "{err}"
        );
    }

    #[test]
    fn keys_round_trip_through_their_strings() {
        let id = HybridIdentity::generate();
        let text = id.to_string();
        assert!(text.expose_secret().starts_with("AGE-SECRET-KEY-PQ-1"));
        let back: HybridIdentity = text.expose_secret().parse().unwrap();
        assert_eq!(back.to_public(), id.to_public());
        let r = id.to_public().to_string();
        assert!(r.starts_with("age1pq1"));
        assert_eq!(r.parse::<HybridRecipient>().unwrap(), id.to_public());
    }

    #[test]
    fn parse_errors_name_the_problem() {
        let r = HybridIdentity::generate().to_public().to_string();
        assert_eq!(
            r[..r.len() - 1].parse::<HybridRecipient>(),
            Err(ParseHybridKeyError::InvalidEncoding)
        );
        let x25519 = "age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj";
        assert_eq!(
            x25519.parse::<HybridRecipient>(),
            Err(ParseHybridKeyError::WrongPrefix)
        );
        let short = bech32_encode(RECIPIENT_HRP, &[1; 32]);
        assert_eq!(
            short.parse::<HybridRecipient>(),
            Err(ParseHybridKeyError::InvalidKey)
        );
        let short_id = bech32_encode(IDENTITY_HRP, &[1; 31]).to_uppercase();
        assert_eq!(
            short_id.parse::<HybridIdentity>().err(),
            Some(ParseHybridKeyError::InvalidKey)
        );
    }
}

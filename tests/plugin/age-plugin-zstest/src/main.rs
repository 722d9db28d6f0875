//! `age-plugin-zstest`: a software stand-in for a hardware-key age plugin,
//! built and put on `PATH` by zebrastream's tests.
//!
//! - `age-plugin-zstest` (no arguments) generates a key and prints what
//!   `age-plugin-yubikey` prints: `# recipient: age1zstest1…` and the
//!   `AGE-PLUGIN-ZSTEST-1…` identity, plus `# tag recipient: age1tag1…` (the
//!   same P-256 key as an age 1.3 tag recipient) and `# tagpq recipient:
//!   age1tagpq1…` (the hybrid tag key whose seed is the same 32 bytes).
//! - `--age-plugin=recipient-v1`: wraps the file key to `age1zstest1…`
//!   recipients with HPKE DHKEM(P-256) (stanza `zstest <enc>`). The labels
//!   it declares come from `ZSTEST_LABELS` (comma-separated), so the tests
//!   can give it the `postquantum` label.
//! - `--age-plugin=identity-v1`: opens `zstest` stanzas and age 1.3's
//!   `p256tag` stanzas (C2SP age spec) addressed to its key, and
//!   `mlkem768p256tag` stanzas addressed to the hybrid tag key derived
//!   from the same 32 bytes (`src/tagpq.rs`). It shows the
//!   message "touch your zstest key" as a hardware key would; with
//!   `ZSTEST_PIN` set it asks for a PIN first and refuses a wrong or missing
//!   one.

mod tagpq;

use std::collections::{HashMap, HashSet};
use std::io;

use age_core::format::{FileKey, Stanza, FILE_KEY_BYTES};
use age_core::primitives::{hpke_open, hpke_seal};
use age_core::secrecy::ExposeSecret;
use age_plugin::identity::{self, IdentityPluginV1};
use age_plugin::recipient::{self, RecipientPluginV1};
use age_plugin::{print_new_identity, run_state_machine, Callbacks, PluginHandler};
use base64::{prelude::BASE64_STANDARD_NO_PAD, Engine};
use hpke::{Deserializable, Serializable};
use p256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use sha2::{Digest, Sha256};

type Kem = hpke::kem::DhP256HkdfSha256;

const PLUGIN_NAME: &str = "zstest";
const STANZA_TAG: &str = "zstest";
const HPKE_INFO: &[u8] = b"zebrastream test plugin zstest";
const P256TAG: &str = "p256tag";
const P256TAG_LABEL: &str = "age-encryption.org/p256tag";
const MLKEM768P256TAG: &str = "mlkem768p256tag";

/// A P-256 public key from its 33-byte compressed SEC1 form (what the
/// recipients carry), as HPKE's uncompressed form.
fn public_key(compressed: &[u8]) -> Option<<Kem as hpke::Kem>::PublicKey> {
    let point = p256::EncodedPoint::from_bytes(compressed).ok()?;
    if !point.is_compressed() {
        return None;
    }
    let key = p256::PublicKey::from_encoded_point(&point).into_option()?;
    <Kem as hpke::Kem>::PublicKey::from_bytes(key.to_encoded_point(false).as_bytes()).ok()
}

fn generate() {
    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let public = secret.public_key().to_encoded_point(true);
    print_new_identity(PLUGIN_NAME, &secret.to_bytes(), public.as_bytes());
    let tag = bech32_encode("age1tag", public.as_bytes());
    println!("# tag recipient: {tag}");
    let tagpq = tagpq::TagPqKey::from_seed(&secret.to_bytes()).recipient();
    println!("# tagpq recipient: {}", bech32_encode("age1tagpq", &tagpq));
}

/// Bech32 as age writes it.
fn bech32_encode(hrp: &str, data: &[u8]) -> String {
    age_core::primitives::bech32_encode(bech32::Hrp::parse(hrp).expect("valid HRP"), data)
}

struct Handler;

impl PluginHandler for Handler {
    type RecipientV1 = Wrapper;
    type IdentityV1 = Unwrapper;

    fn recipient_v1(self) -> io::Result<Wrapper> {
        Ok(Wrapper(Vec::new()))
    }

    fn identity_v1(self) -> io::Result<Unwrapper> {
        Ok(Unwrapper(Vec::new()))
    }
}

struct Wrapper(Vec<<Kem as hpke::Kem>::PublicKey>);

impl RecipientPluginV1 for Wrapper {
    fn add_recipient(
        &mut self,
        index: usize,
        plugin_name: &str,
        bytes: &[u8],
    ) -> Result<(), recipient::Error> {
        match public_key(bytes) {
            Some(key) if plugin_name == PLUGIN_NAME => {
                self.0.push(key);
                Ok(())
            }
            _ => Err(recipient::Error::Recipient {
                index,
                message: "not a valid zstest recipient (a compressed P-256 point)".into(),
            }),
        }
    }

    fn add_identity(
        &mut self,
        index: usize,
        _plugin_name: &str,
        _bytes: &[u8],
    ) -> Result<(), recipient::Error> {
        Err(recipient::Error::Identity {
            index,
            message: "encrypting to an identity is not supported".into(),
        })
    }

    fn labels(&mut self) -> HashSet<String> {
        std::env::var("ZSTEST_LABELS")
            .map(|s| {
                s.split(',')
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn wrap_file_keys(
        &mut self,
        file_keys: Vec<FileKey>,
        _callbacks: impl Callbacks<recipient::Error>,
    ) -> io::Result<Result<Vec<Vec<Stanza>>, Vec<recipient::Error>>> {
        let mut rng = rand::rngs::OsRng;
        Ok(Ok(file_keys
            .iter()
            .map(|file_key| {
                self.0
                    .iter()
                    .map(|key| {
                        let (enc, body) =
                            hpke_seal::<Kem, _>(key, HPKE_INFO, file_key.expose_secret(), &mut rng);
                        Stanza {
                            tag: STANZA_TAG.into(),
                            args: vec![BASE64_STANDARD_NO_PAD.encode(enc.to_bytes())],
                            body,
                        }
                    })
                    .collect()
            })
            .collect()))
    }
}

struct Key {
    secret: <Kem as hpke::Kem>::PrivateKey,
    /// The compressed public key (what `age1tag1…` carries).
    compressed: Vec<u8>,
    /// The hybrid tag key from the same 32 bytes.
    tagpq: tagpq::TagPqKey,
}

struct Unwrapper(Vec<Key>);

impl Unwrapper {
    /// Opens one stanza with one key: `None` if it is not for this key.
    fn open(key: &Key, stanza: &Stanza) -> Option<FileKey> {
        let (info, enc) = match (stanza.tag.as_str(), &stanza.args[..]) {
            (STANZA_TAG, [enc]) => (HPKE_INFO, BASE64_STANDARD_NO_PAD.decode(enc).ok()?),
            (P256TAG, [tag, enc]) => {
                let tag = BASE64_STANDARD_NO_PAD.decode(tag).ok()?;
                let enc = BASE64_STANDARD_NO_PAD.decode(enc).ok()?;
                // The spec's tag: HKDF-Extract(label, enc || SHA-256(pk)[..4])[..4].
                let mut ikm = enc.clone();
                ikm.extend_from_slice(&Sha256::digest(&key.compressed)[..4]);
                let (prk, _) = hkdf::Hkdf::<Sha256>::extract(Some(P256TAG_LABEL.as_bytes()), &ikm);
                if prk[..4] != tag[..] {
                    return None;
                }
                (P256TAG_LABEL.as_bytes(), enc)
            }
            (MLKEM768P256TAG, [tag, enc]) => {
                let tag = BASE64_STANDARD_NO_PAD.decode(tag).ok()?;
                let enc = BASE64_STANDARD_NO_PAD.decode(enc).ok()?;
                let plain = key.tagpq.open(&tag, &enc, &stanza.body)?;
                return (plain.len() == FILE_KEY_BYTES)
                    .then(|| FileKey::init_with_mut(|k| k.copy_from_slice(&plain)));
            }
            _ => return None,
        };
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&enc).ok()?;
        let plain = hpke_open::<Kem>(&enc, &key.secret, info, &stanza.body).ok()?;
        (plain.len() == FILE_KEY_BYTES)
            .then(|| FileKey::init_with_mut(|k| k.copy_from_slice(&plain)))
    }
}

impl IdentityPluginV1 for Unwrapper {
    fn add_identity(
        &mut self,
        index: usize,
        plugin_name: &str,
        bytes: &[u8],
    ) -> Result<(), identity::Error> {
        let secret = p256::SecretKey::from_slice(bytes).ok();
        match secret {
            Some(secret) if plugin_name == PLUGIN_NAME => {
                let compressed = secret
                    .public_key()
                    .to_encoded_point(true)
                    .as_bytes()
                    .to_vec();
                let secret = <Kem as hpke::Kem>::PrivateKey::from_bytes(&secret.to_bytes())
                    .expect("a valid scalar");
                let tagpq = tagpq::TagPqKey::from_seed(bytes);
                self.0.push(Key {
                    secret,
                    compressed,
                    tagpq,
                });
                Ok(())
            }
            _ => Err(identity::Error::Identity {
                index,
                message: "not a valid zstest identity".into(),
            }),
        }
    }

    fn unwrap_file_keys(
        &mut self,
        files: Vec<Vec<Stanza>>,
        mut callbacks: impl Callbacks<identity::Error>,
    ) -> io::Result<HashMap<usize, Result<FileKey, Vec<identity::Error>>>> {
        let mut keys = HashMap::new();
        for (file, stanzas) in files.iter().enumerate() {
            let found = self.0.iter().enumerate().find_map(|(index, key)| {
                stanzas
                    .iter()
                    .find_map(|s| Self::open(key, s))
                    .map(|file_key| (index, file_key))
            });
            let Some((index, file_key)) = found else {
                continue;
            };
            if let Ok(pin) = std::env::var("ZSTEST_PIN") {
                let refused = match callbacks.request_secret("Enter the zstest PIN")? {
                    Ok(given) if given.expose_secret() == pin => None,
                    Ok(_) => Some("wrong PIN"),
                    Err(_) => Some("a PIN is required and none was given"),
                };
                if let Some(why) = refused {
                    let error = identity::Error::Identity {
                        index,
                        message: why.into(),
                    };
                    keys.insert(file, Err(vec![error]));
                    continue;
                }
            }
            let _ = callbacks.message("touch your zstest key")?;
            keys.insert(file, Ok(file_key));
        }
        Ok(keys)
    }
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().find_map(|a| a.strip_prefix("--age-plugin=")) {
        Some(state_machine) => run_state_machine(state_machine, Handler),
        None if args.is_empty() => {
            generate();
            Ok(())
        }
        None => {
            eprintln!("usage: age-plugin-zstest [--age-plugin=STATE_MACHINE]");
            std::process::exit(2)
        }
    }
}

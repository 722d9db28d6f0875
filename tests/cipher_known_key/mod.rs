//! Streams whose payload key a test knows, built through the public API
//! only: a recipient that records the file key the encryptor drew (and
//! writes it into its stanza in the clear), the matching identity, and the
//! payload key derived as the age spec says from that file key and the
//! payload nonce after the header. The wipe tests look for that key in
//! freed memory. Test keys only: the stanza exposes the file key.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use age_core::format::{FileKey, Stanza};
use age_core::secrecy::ExposeSecret;
use zebrastream::cipher::{Decryptor, Encryptor, Format};

/// The stanza tag of [`Recorder`] and [`Opener`].
const TAG: &str = "zebrastream-test-plain-file-key";
/// Bytes of an age file key and of the payload nonce after the header.
const FILE_KEY_LEN: usize = 16;
const PAYLOAD_NONCE_LEN: usize = 16;

/// A recipient that records the file key and wraps it as plain bytes.
struct Recorder(Arc<Mutex<Option<[u8; FILE_KEY_LEN]>>>);

impl age::Recipient for Recorder {
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        *self.0.lock().unwrap() = Some(*file_key.expose_secret());
        let stanza = Stanza {
            tag: TAG.into(),
            args: Vec::new(),
            body: file_key.expose_secret().to_vec(),
        };
        Ok((vec![stanza], HashSet::new()))
    }
}

/// The identity that unwraps [`Recorder`]'s stanzas.
struct Opener;

impl age::Identity for Opener {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        let key: [u8; FILE_KEY_LEN] = stanza.body.as_slice().try_into().ok()?;
        (stanza.tag == TAG).then(|| Ok(FileKey::new(Box::new(key))))
    }
}

/// An encryptor and the payload key it seals with (leaked, so it can be a
/// `'static` needle). The encryptor's output still holds the whole preamble.
pub fn encryptor(format: Format) -> (Encryptor, &'static [u8; 32]) {
    let file_key = Arc::new(Mutex::new(None));
    let enc = Encryptor::with_recipients(format, vec![Box::new(Recorder(file_key.clone()))])
        .expect("one recipient is valid");
    let file_key = file_key
        .lock()
        .unwrap()
        .expect("the encryptor wrapped its file key");
    let preamble = enc.output();
    let nonce = &preamble[preamble.len() - PAYLOAD_NONCE_LEN..];
    let mut key = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(nonce), &file_key)
        .expand(b"payload", &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    (enc, Box::leak(Box::new(key)))
}

/// A decryptor for the streams of [`encryptor`].
pub fn decryptor() -> Decryptor {
    Decryptor::with_identities(vec![Box::new(Opener)])
}

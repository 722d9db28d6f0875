//! STREAM: ChaCha20-Poly1305 chunk sealing with a counter nonce and a final flag.
//!
//! Shared by age v1 and age-rt v0.2: chunk `i` is sealed under the payload key
//! with nonce `i` (11 bytes, big-endian) `||` flag (`0x01` on the final chunk,
//! `0x00` otherwise) and empty AAD. The two formats differ only in framing
//! (age-rt prefixes each chunk with a `u32` length; age v1 uses fixed 64 KiB
//! chunks), which lives in the encryptor and decryptor.
//!
//! [`ChunkSealer`] and [`ChunkOpener`] work in place on a caller-owned buffer
//! and refuse misuse: nothing can be sealed after the final chunk, and the
//! counter never wraps.

use age_core::format::FileKey;
use hkdf::Hkdf;
use secrecy::ExposeSecret;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::aead::{ChunkAead, DefaultAead, KEY_LEN, NONCE_LEN, TAG_LEN};
use super::error::{Error, ProtocolError};

/// Plaintext bytes in a full chunk (64 KiB).
pub(crate) const CHUNK_SIZE: usize = 64 * 1024;
/// Bytes of authentication tag per chunk.
pub(crate) const TAG_SIZE: usize = TAG_LEN;
/// Ciphertext bytes of a full chunk.
pub(crate) const ENCRYPTED_CHUNK_SIZE: usize = CHUNK_SIZE + TAG_SIZE;
/// Bytes of the random payload nonce that follows the header.
pub(crate) const PAYLOAD_NONCE_SIZE: usize = 16;

/// The per-chunk AEAD nonce: an 11-byte big-endian counter and a final flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Nonce {
    counter: u64,
    last: bool,
}

impl Nonce {
    /// The nonce of chunk `counter`.
    pub(crate) fn new(counter: u64, last: bool) -> Self {
        Nonce { counter, last }
    }

    /// The 12 bytes fed to ChaCha20-Poly1305.
    pub(crate) fn to_bytes(self) -> [u8; NONCE_LEN] {
        let mut n = [0u8; NONCE_LEN];
        // The counter field is 11 bytes; a u64 fills its low 8 bytes.
        n[3..11].copy_from_slice(&self.counter.to_be_bytes());
        n[11] = u8::from(self.last);
        n
    }
}

/// The payload key, zeroized on drop.
pub(crate) type PayloadKey = Zeroizing<[u8; KEY_LEN]>;

/// `HKDF-SHA256(ikm = file key, salt = payload nonce, info = "payload")`.
pub(crate) fn payload_key(file_key: &FileKey, nonce: &[u8; PAYLOAD_NONCE_SIZE]) -> PayloadKey {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    Hkdf::<Sha256>::new(Some(nonce), file_key.expose_secret())
        .expand(b"payload", key.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    key
}

/// A secret both ends of one stream share and nobody else has: derived
/// from the file key and the payload nonce like the payload key, under a
/// label of its own, so it is never the payload key and shares no nonce
/// with it. The client's resume messages are authenticated with keys
/// derived from it (see `crate::resume`). Zeroized on drop.
pub(crate) type ExporterSecret = Zeroizing<[u8; 32]>;

/// `HKDF-SHA256(ikm = file key, salt = payload nonce, info = "zebrastream exporter")`.
pub(crate) fn exporter_secret(
    file_key: &FileKey,
    nonce: &[u8; PAYLOAD_NONCE_SIZE],
) -> ExporterSecret {
    let mut secret = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(nonce), file_key.expose_secret())
        .expand(b"zebrastream exporter", secret.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    secret
}

/// Seals chunks in order: chunk 0, 1, 2, ... and then exactly one final chunk.
pub(crate) struct ChunkSealer<A: ChunkAead = DefaultAead> {
    /// Boxed: moving the sealer (and the encryptor holding it) moves a
    /// pointer, not the key, so the one copy the backend wipes on drop is
    /// the only one that lives as long as the stream.
    aead: Box<A>,
    counter: u64,
    finished: bool,
}

impl<A: ChunkAead> ChunkSealer<A> {
    /// A sealer for a fresh payload key.
    ///
    /// # Security
    /// A key must never be used for two streams: it is derived from a fresh
    /// random file key and payload nonce per stream.
    pub(crate) fn new(key: &[u8; KEY_LEN]) -> Self {
        ChunkSealer {
            aead: Box::new(A::new(key)),
            counter: 0,
            finished: false,
        }
    }

    /// Seals `chunk[..len - 16]` in place and writes the tag into the last 16 bytes.
    ///
    /// # Panics
    /// If `chunk` is shorter than a tag or longer than [`ENCRYPTED_CHUNK_SIZE`].
    pub(crate) fn seal(&mut self, chunk: &mut [u8], last: bool) -> Result<(), Error> {
        assert!((TAG_SIZE..=ENCRYPTED_CHUNK_SIZE).contains(&chunk.len()));
        if self.finished {
            return Err(Error::Finished);
        }
        let (plain, tag_out) = chunk.split_at_mut(chunk.len() - TAG_SIZE);
        let tag = self
            .aead
            .seal_in_place(&Nonce::new(self.counter, last).to_bytes(), b"", plain);
        tag_out.copy_from_slice(&tag);
        self.finished = last;
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or(Error::Protocol(ProtocolError::CounterOverflow))?;
        Ok(())
    }

    /// Whether the final chunk has been sealed.
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }
}

/// Opens chunks in order and tracks the chunk index for error messages.
pub(crate) struct ChunkOpener<A: ChunkAead = DefaultAead> {
    /// Boxed, like [`ChunkSealer`]'s.
    aead: Box<A>,
    counter: u64,
    finished: bool,
}

impl<A: ChunkAead> ChunkOpener<A> {
    /// An opener for a payload key.
    pub(crate) fn new(key: &[u8; KEY_LEN]) -> Self {
        ChunkOpener {
            aead: Box::new(A::new(key)),
            counter: 0,
            finished: false,
        }
    }

    /// Index of the next chunk to open.
    pub(crate) fn index(&self) -> u64 {
        self.counter
    }

    /// Whether the final chunk has been opened.
    #[cfg(test)]
    pub(crate) fn is_finished(&self) -> bool {
        self.finished
    }

    /// Authenticates and decrypts `chunk` (ciphertext then tag) in place with
    /// the given final flag; returns the plaintext length.
    ///
    /// On failure the buffer contents are unspecified.
    pub(crate) fn open(&mut self, chunk: &mut [u8], last: bool) -> Result<usize, Error> {
        let plain_len = self.try_open(chunk, last)?;
        self.advance(last)?;
        Ok(plain_len)
    }

    /// Opens a chunk that may or may not be final (age-rt's dual-flag rule):
    /// tries the non-final nonce first, then the final one. `backup` keeps
    /// the ciphertext for the second attempt when the backend clobbers the
    /// buffer on failure (ring); it must then be at least as long as `chunk`
    /// (it may be empty for backends that preserve it). Returns the plaintext
    /// length and whether the chunk was final.
    pub(crate) fn open_either(
        &mut self,
        chunk: &mut [u8],
        backup: &mut [u8],
    ) -> Result<(usize, bool), Error> {
        if !A::OPEN_PRESERVES_ON_FAILURE {
            backup[..chunk.len()].copy_from_slice(chunk);
        }
        if let Ok(n) = self.try_open(chunk, false) {
            self.advance(false)?;
            return Ok((n, false));
        }
        if !A::OPEN_PRESERVES_ON_FAILURE {
            chunk.copy_from_slice(&backup[..chunk.len()]);
        }
        let n = self.try_open(chunk, true)?;
        self.advance(true)?;
        Ok((n, true))
    }

    fn try_open(&mut self, chunk: &mut [u8], last: bool) -> Result<usize, Error> {
        let auth_failure = Error::ChunkAuthentication {
            index: self.counter,
        };
        if self.finished || chunk.len() < TAG_SIZE || chunk.len() > ENCRYPTED_CHUNK_SIZE {
            return Err(auth_failure);
        }
        let (ct, tag) = chunk.split_at_mut(chunk.len() - TAG_SIZE);
        let tag: &[u8; TAG_SIZE] = (&*tag).try_into().expect("split at TAG_SIZE");
        self.aead
            .open_in_place(&Nonce::new(self.counter, last).to_bytes(), b"", ct, tag)
            .map_err(|_| auth_failure)?;
        Ok(ct.len())
    }

    fn advance(&mut self, last: bool) -> Result<(), Error> {
        self.finished = last;
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or(Error::Protocol(ProtocolError::CounterOverflow))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_layout() {
        let n = Nonce::new(0x0102, true).to_bytes();
        assert_eq!(n, [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 1]);
        assert_eq!(Nonce::new(0, false).to_bytes(), [0; 12]);
    }

    fn seal_open_and_dual_flag<A: ChunkAead>() {
        let key = [3u8; 32];
        let mut sealer = ChunkSealer::<A>::new(&key);
        let mut opener = ChunkOpener::<A>::new(&key);
        let mut c0 = b"hello-----------------".to_vec();
        let mut c1 = b"world-----------------".to_vec();
        sealer.seal(&mut c0, false).unwrap();
        sealer.seal(&mut c1, true).unwrap();
        assert_eq!(sealer.seal(&mut [0u8; 16], false), Err(Error::Finished));
        // The backup may be empty when the backend keeps the ciphertext.
        let backup_len = if A::OPEN_PRESERVES_ON_FAILURE {
            0
        } else {
            ENCRYPTED_CHUNK_SIZE
        };
        let mut backup = vec![0u8; backup_len];
        assert_eq!(opener.open_either(&mut c0, &mut backup), Ok((6, false)));
        assert_eq!(&c0[..5], b"hello");
        assert_eq!(opener.open_either(&mut c1, &mut backup), Ok((6, true)));
        assert_eq!(&c1[..5], b"world");
        assert!(opener.is_finished());
    }

    #[cfg(feature = "openssl")]
    #[test]
    fn openssl_seal_open_and_dual_flag() {
        seal_open_and_dual_flag::<crate::cipher::aead::OpenSslAead>();
    }

    #[cfg(feature = "ring")]
    #[test]
    fn ring_seal_open_and_dual_flag() {
        seal_open_and_dual_flag::<crate::cipher::aead::RingAead>();
    }

    #[cfg(feature = "rustcrypto")]
    #[test]
    fn rustcrypto_seal_open_and_dual_flag() {
        seal_open_and_dual_flag::<crate::cipher::aead::RustCryptoAead>();
    }

    const KEY: [u8; KEY_LEN] = [5u8; KEY_LEN];

    /// Seals chunks of `(plaintext length, final)` in order with a fresh
    /// sealer under [`KEY`]; each chunk holds its index as plaintext bytes.
    fn sealed(chunks: &[(usize, bool)]) -> Vec<Vec<u8>> {
        let mut sealer: ChunkSealer = ChunkSealer::new(&KEY);
        let sealed = chunks
            .iter()
            .enumerate()
            .map(|(i, &(len, last))| {
                let mut chunk = vec![i as u8; len + TAG_SIZE];
                sealer.seal(&mut chunk, last).unwrap();
                chunk
            })
            .collect();
        assert_eq!(sealer.is_finished(), chunks.last().is_some_and(|c| c.1));
        sealed
    }

    #[test]
    fn empty_and_full_chunks_open_and_the_index_advances() {
        let mut chunks = sealed(&[(CHUNK_SIZE, false), (0, true)]);
        let mut opener: ChunkOpener = ChunkOpener::new(&KEY);
        assert_eq!(opener.index(), 0);
        assert_eq!(opener.open(&mut chunks[0], false), Ok(CHUNK_SIZE));
        assert_eq!(opener.index(), 1);
        assert!(!opener.is_finished());
        assert_eq!(opener.open(&mut chunks[1], true), Ok(0));
        assert_eq!(opener.index(), 2);
        assert!(opener.is_finished());
    }

    /// `ChunkOpener` is public: a buffer that cannot be a sealed chunk is an
    /// authentication failure, never a panic or an oversized AEAD call.
    #[test]
    fn impossible_chunk_lengths_fail_without_panicking() {
        for len in [0, TAG_SIZE - 1, ENCRYPTED_CHUNK_SIZE + 1] {
            let mut opener: ChunkOpener = ChunkOpener::new(&KEY);
            let fail = Err(Error::ChunkAuthentication { index: 0 });
            assert_eq!(opener.open(&mut vec![0u8; len], false), fail, "{len}");
            let mut backup = vec![0u8; ENCRYPTED_CHUNK_SIZE + 1];
            assert_eq!(
                opener.open_either(&mut vec![0u8; len], &mut backup),
                fail.map(|n| (n, false)),
                "{len}"
            );
        }
    }

    /// After the final chunk nothing opens, not even a chunk that is valid
    /// under the same key at the next index (the sealer never makes one,
    /// but the opener must not rely on that).
    #[test]
    fn nothing_opens_after_the_final_chunk() {
        let mut finals = sealed(&[(3, true)]);
        let mut more = sealed(&[(3, false), (3, false)]);
        let mut opener: ChunkOpener = ChunkOpener::new(&KEY);
        assert_eq!(opener.open(&mut finals[0], true), Ok(3));
        assert_eq!(
            opener.open(&mut more[1], false),
            Err(Error::ChunkAuthentication { index: 1 })
        );
    }

    #[test]
    fn wrong_order_fails_with_index() {
        let key = [4u8; 32];
        let mut sealer: ChunkSealer = ChunkSealer::new(&key);
        let mut c0 = vec![0u8; 20];
        let mut c1 = vec![0u8; 20];
        sealer.seal(&mut c0, false).unwrap();
        sealer.seal(&mut c1, false).unwrap();
        let mut opener: ChunkOpener = ChunkOpener::new(&key);
        assert_eq!(
            opener.open(&mut c1, false),
            Err(Error::ChunkAuthentication { index: 0 })
        );
    }
}

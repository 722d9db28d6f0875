//! The ChaCha20-Poly1305 backend, behind one small trait.
//!
//! Two implementations: [`RingAead`] (feature `ring`, the default, fastest on
//! x86_64) and [`RustCryptoAead`] (feature `rustcrypto`, pure Rust).
//! [`DefaultAead`] is `ring` when that feature is on. Both work in place on a
//! caller-owned buffer with a detached 16-byte tag, so the chunk code never
//! allocates.

#[cfg(not(any(feature = "ring", feature = "rustcrypto")))]
compile_error!("enable at least one AEAD backend feature: `ring` or `rustcrypto`");

/// Key length of ChaCha20-Poly1305.
pub const KEY_LEN: usize = 32;
/// Nonce length of ChaCha20-Poly1305 (IETF variant).
pub const NONCE_LEN: usize = 12;
/// Length of the Poly1305 authentication tag.
pub const TAG_LEN: usize = 16;

/// The AEAD rejected a ciphertext (wrong key, nonce, AAD or tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AeadFailure;

/// ChaCha20-Poly1305 with in-place operation and a detached tag.
pub trait ChunkAead: Sized + Send + Sync + Unpin {
    /// Short name of the backend, for benchmarks and diagnostics.
    const NAME: &'static str;

    /// Whether a failed [`open_in_place`](Self::open_in_place) leaves the
    /// ciphertext intact (RustCrypto checks the tag first; ring decrypts
    /// and then zeroes). When false, a retry needs a copy.
    const OPEN_PRESERVES_ON_FAILURE: bool;

    /// Builds the cipher for one key.
    fn new(key: &[u8; KEY_LEN]) -> Self;

    /// Encrypts `buf` in place and returns the tag.
    fn seal_in_place(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN];

    /// Verifies `tag` and decrypts `buf` in place.
    ///
    /// On failure the contents of `buf` are unspecified (ring zeroes them).
    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadFailure>;
}

/// The backend the encryptor and decryptor use.
#[cfg(feature = "ring")]
pub type DefaultAead = RingAead;
/// The backend the encryptor and decryptor use.
#[cfg(all(feature = "rustcrypto", not(feature = "ring")))]
pub type DefaultAead = RustCryptoAead;

/// `ring`'s ChaCha20-Poly1305.
#[cfg(feature = "ring")]
pub struct RingAead(ring::aead::LessSafeKey);

#[cfg(feature = "ring")]
impl ChunkAead for RingAead {
    const NAME: &'static str = "ring";
    const OPEN_PRESERVES_ON_FAILURE: bool = false;

    fn new(key: &[u8; KEY_LEN]) -> Self {
        let unbound = ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, key)
            .expect("a 32-byte key is valid for ChaCha20-Poly1305");
        RingAead(ring::aead::LessSafeKey::new(unbound))
    }

    fn seal_in_place(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
        let tag = self
            .0
            .seal_in_place_separate_tag(
                ring::aead::Nonce::assume_unique_for_key(*nonce),
                ring::aead::Aad::from(aad),
                buf,
            )
            // ring only fails for inputs longer than ChaCha20's 256 GiB block-counter limit.
            .expect("chunk far below ChaCha20's length limit");
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadFailure> {
        let tag = ring::aead::Tag::from(*tag);
        self.0
            .open_in_place_separate_tag(
                ring::aead::Nonce::assume_unique_for_key(*nonce),
                ring::aead::Aad::from(aad),
                tag,
                buf,
                0..,
            )
            .map(|_| ())
            .map_err(|_| AeadFailure)
    }
}

/// RustCrypto's pure-Rust `chacha20poly1305`.
#[cfg(feature = "rustcrypto")]
pub struct RustCryptoAead(chacha20poly1305::ChaCha20Poly1305);

#[cfg(feature = "rustcrypto")]
impl ChunkAead for RustCryptoAead {
    const NAME: &'static str = "rustcrypto";
    const OPEN_PRESERVES_ON_FAILURE: bool = true;

    fn new(key: &[u8; KEY_LEN]) -> Self {
        use chacha20poly1305::KeyInit;
        RustCryptoAead(chacha20poly1305::ChaCha20Poly1305::new(key.into()))
    }

    fn seal_in_place(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
        use chacha20poly1305::AeadInPlace;
        self.0
            .encrypt_in_place_detached(nonce.into(), aad, buf)
            .expect("chunk far below ChaCha20's length limit")
            .into()
    }

    fn open_in_place(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadFailure> {
        use chacha20poly1305::AeadInPlace;
        self.0
            .decrypt_in_place_detached(nonce.into(), aad, buf, tag.into())
            .map_err(|_| AeadFailure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<A: ChunkAead>() {
        let aead = A::new(&[7u8; KEY_LEN]);
        let nonce = [1u8; NONCE_LEN];
        let mut buf = *b"attack at dawn";
        let tag = aead.seal_in_place(&nonce, b"", &mut buf);
        assert_ne!(&buf, b"attack at dawn");
        let mut bad = buf;
        aead.open_in_place(&nonce, b"", &mut buf, &tag).unwrap();
        assert_eq!(&buf, b"attack at dawn");
        bad[0] ^= 1;
        assert_eq!(
            aead.open_in_place(&nonce, b"", &mut bad, &tag),
            Err(AeadFailure)
        );
    }

    #[cfg(feature = "ring")]
    #[test]
    fn ring_round_trip() {
        round_trip::<RingAead>();
    }

    #[cfg(feature = "rustcrypto")]
    #[test]
    fn rustcrypto_round_trip() {
        round_trip::<RustCryptoAead>();
    }
}

//! The ChaCha20-Poly1305 backend, behind one small trait.
//!
//! Three implementations:
//! - `OpenSslAead` (feature `openssl`, on by default): the system
//!   OpenSSL's EVP ChaCha20-Poly1305, whose AVX-512 code runs at 3.4 GB/s
//!   on this project's benchmark machine, 1.8× ring (`docs/performance.md`);
//! - `RingAead` (feature `ring`, also on by default; rustls needs it
//!   anyway): BoringSSL's assembly, no system library needed;
//! - `RustCryptoAead` (feature `rustcrypto`): pure Rust.
//!
//! [`DefaultAead`] combines OpenSSL and ring through [`SizeSplitAead`]
//! when both are compiled in (ring is faster below 2 KiB), else it is the
//! first of these that is. To build
//! without a system OpenSSL, turn default features off and enable `ring`.
//! All work in place on a caller-owned buffer with a detached 16-byte tag,
//! so the chunk code never allocates.

#[cfg(not(any(feature = "openssl", feature = "ring", feature = "rustcrypto")))]
compile_error!("enable at least one AEAD backend feature: `openssl`, `ring` or `rustcrypto`");

/// Key length of ChaCha20-Poly1305.
pub(crate) const KEY_LEN: usize = 32;
/// Nonce length of ChaCha20-Poly1305 (IETF variant).
pub(crate) const NONCE_LEN: usize = 12;
/// Length of the Poly1305 authentication tag.
pub(crate) const TAG_LEN: usize = 16;

/// The AEAD rejected a ciphertext (wrong key, nonce, AAD or tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AeadFailure;

/// ChaCha20-Poly1305 with in-place operation and a detached tag.
///
/// The methods take `&mut self` so a backend can keep one reusable cipher
/// context per key (OpenSSL's `EVP_CIPHER_CTX`). Each implementation's
/// round trip is a unit test below, and each passes the Wycheproof vectors
/// (`wycheproof.rs`).
pub(crate) trait ChunkAead: Sized + Send + Sync + Unpin {
    /// Whether a failed [`open_in_place`](Self::open_in_place) leaves the
    /// ciphertext intact (RustCrypto checks the tag first; ring decrypts
    /// and then zeroes). When false, a retry needs a copy.
    const OPEN_PRESERVES_ON_FAILURE: bool;

    /// Builds the cipher for one key.
    fn new(key: &[u8; KEY_LEN]) -> Self;

    /// Encrypts `buf` in place and returns the tag.
    fn seal_in_place(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> [u8; TAG_LEN];

    /// Verifies `tag` and decrypts `buf` in place.
    ///
    /// On failure the contents of `buf` are unspecified (ring zeroes them).
    fn open_in_place(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadFailure>;
}

/// The backend the encryptor and decryptor use: ring for short buffers,
/// OpenSSL for long ones (see [`SizeSplitAead`]).
#[cfg(all(feature = "openssl", feature = "ring"))]
pub(crate) type DefaultAead = SizeSplitAead<RingAead, OpenSslAead>;
/// The backend the encryptor and decryptor use.
#[cfg(all(feature = "openssl", not(feature = "ring")))]
pub(crate) type DefaultAead = OpenSslAead;
/// The backend the encryptor and decryptor use.
#[cfg(all(feature = "ring", not(feature = "openssl")))]
pub(crate) type DefaultAead = RingAead;
/// The backend the encryptor and decryptor use.
#[cfg(all(
    feature = "rustcrypto",
    not(any(feature = "openssl", feature = "ring"))
))]
pub(crate) type DefaultAead = RustCryptoAead;

/// Buffers longer than this go to the large-buffer backend of a
/// [`SizeSplitAead`]. Measured crossover of ring and OpenSSL here: ring is
/// faster up to 2 KiB (OpenSSL's EVP dispatch costs ≈ 0.5 µs per call),
/// OpenSSL from 4 KiB on (1.8× ring at 64 KiB).
// Used only when both OpenSSL and ring are compiled in (the unit tests
// check the split in every build).
#[cfg_attr(not(all(feature = "openssl", feature = "ring")), allow(dead_code))]
pub(crate) const SIZE_SPLIT_THRESHOLD: usize = 2048;

/// Two backends of the same cipher, chosen per call by buffer length: `S`
/// for buffers of up to [`SIZE_SPLIT_THRESHOLD`] bytes, `L` above.
///
/// Both compute the same ChaCha20-Poly1305, so a chunk sealed by one opens
/// with the other; this only picks the faster code for each size.
#[cfg_attr(not(all(feature = "openssl", feature = "ring")), allow(dead_code))]
pub(crate) struct SizeSplitAead<S, L> {
    small: S,
    large: L,
}

impl<S: ChunkAead, L: ChunkAead> ChunkAead for SizeSplitAead<S, L> {
    const OPEN_PRESERVES_ON_FAILURE: bool =
        S::OPEN_PRESERVES_ON_FAILURE && L::OPEN_PRESERVES_ON_FAILURE;

    fn new(key: &[u8; KEY_LEN]) -> Self {
        SizeSplitAead {
            small: S::new(key),
            large: L::new(key),
        }
    }

    fn seal_in_place(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> [u8; TAG_LEN] {
        if buf.len() > SIZE_SPLIT_THRESHOLD {
            self.large.seal_in_place(nonce, aad, buf)
        } else {
            self.small.seal_in_place(nonce, aad, buf)
        }
    }

    fn open_in_place(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadFailure> {
        if buf.len() > SIZE_SPLIT_THRESHOLD {
            self.large.open_in_place(nonce, aad, buf, tag)
        } else {
            self.small.open_in_place(nonce, aad, buf, tag)
        }
    }
}

/// OpenSSL's EVP ChaCha20-Poly1305, one cipher context per key.
///
/// The key is set once; each call only sets the nonce, which resets the
/// context's Poly1305 state. Dropping it frees the context with
/// `EVP_CIPHER_CTX_free`, which cleanses the key: `EVP_CIPHER_CTX_reset`
/// calls the cipher's `freectx`, and OpenSSL 3's
/// `chacha20_poly1305_freectx`
/// (`providers/implementations/ciphers/cipher_chacha20_poly1305.c`) ends
/// in `OPENSSL_clear_free(ctx, sizeof(*ctx))`, which wipes the ChaCha20 key
/// words and the Poly1305 state together (OpenSSL 1.1's
/// `chacha20_poly1305_cleanup` does the same with `OPENSSL_cleanse`);
/// `tests/cipher_wipe_openssl.rs` checks it against the linked OpenSSL.
#[cfg(feature = "openssl")]
pub(crate) struct OpenSslAead(openssl::cipher_ctx::CipherCtx);

#[cfg(feature = "openssl")]
impl OpenSslAead {
    /// Runs one AEAD pass over `buf`: sets the nonce, feeds `aad`, and
    /// transforms `buf` in place. The caller finishes with the tag.
    fn pass(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: Option<&[u8; TAG_LEN]>,
    ) -> Result<(), openssl::error::ErrorStack> {
        let ctx = &mut self.0;
        match tag {
            None => ctx.encrypt_init(None, None, Some(nonce))?,
            Some(tag) => {
                ctx.decrypt_init(None, None, Some(nonce))?;
                ctx.set_tag(tag)?;
            }
        }
        if !aad.is_empty() {
            ctx.cipher_update(aad, None)?;
        }
        let len = buf.len();
        // A stream cipher: output length equals input length, in place.
        let written = ctx.cipher_update_inplace(buf, len)?;
        debug_assert_eq!(written, len);
        // Encrypting computes the tag here; decrypting checks it here.
        ctx.cipher_final(&mut [])?;
        Ok(())
    }
}

#[cfg(feature = "openssl")]
impl ChunkAead for OpenSslAead {
    // Decryption runs before the tag check, so a failure leaves garbage
    // plaintext, which `open_in_place` zeroes.
    const OPEN_PRESERVES_ON_FAILURE: bool = false;

    fn new(key: &[u8; KEY_LEN]) -> Self {
        let mut ctx = openssl::cipher_ctx::CipherCtx::new().expect("OpenSSL allocates a context");
        ctx.encrypt_init(
            Some(openssl::cipher::Cipher::chacha20_poly1305()),
            Some(key),
            None,
        )
        .expect("OpenSSL provides ChaCha20-Poly1305");
        OpenSslAead(ctx)
    }

    fn seal_in_place(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> [u8; TAG_LEN] {
        self.pass(nonce, aad, buf, None)
            .expect("ChaCha20-Poly1305 encryption cannot fail for a chunk-sized input");
        let mut tag = [0u8; TAG_LEN];
        self.0
            .tag(&mut tag)
            .expect("the tag is available after encryption");
        tag
    }

    fn open_in_place(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadFailure> {
        self.pass(nonce, aad, buf, Some(tag)).map_err(|_| {
            // Never leave unauthenticated plaintext behind.
            buf.fill(0);
            AeadFailure
        })
    }
}

/// `ring`'s ChaCha20-Poly1305.
///
/// ring's key types never wipe themselves (`LessSafeKey` has no `Drop`:
/// its ChaCha20 key is a plain `[u32; 8]` inside it). Dropping a `RingAead`
/// overwrites that storage in place; copies that moves left behind before
/// it reached its final place are out of reach.
#[cfg(feature = "ring")]
pub(crate) struct RingAead(ring::aead::LessSafeKey);

#[cfg(feature = "ring")]
impl RingAead {
    /// Overwrites the payload key ring holds. This crate forbids `unsafe`,
    /// so instead of writing zero bytes over ring's private fields it
    /// assigns a new key over the old one and keeps the compiler from
    /// dropping that store as dead (`zeroize::optimization_barrier`,
    /// zeroize's documented pattern for third-party types). ring's key is an
    /// enum over its algorithms' keys; the new key is AES-256-GCM's, made
    /// from zeros, because that variant (AES key schedule and GCM table)
    /// fills the storage: it overwrites the ChaCha20 key and also the stale
    /// key bytes that building the key can leave in the enum's unused bytes
    /// (`tests/cipher_wipe.rs` found such a copy when only a ChaCha20 zero
    /// key was assigned). Called on drop; once per stream, never per chunk.
    fn wipe(&mut self) {
        let zero = ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &[0; KEY_LEN])
            .expect("a 32-byte key is valid for AES-256-GCM");
        self.0 = ring::aead::LessSafeKey::new(zero);
        zeroize::optimization_barrier(&self.0);
    }
}

#[cfg(feature = "ring")]
impl Drop for RingAead {
    fn drop(&mut self) {
        self.wipe();
    }
}

#[cfg(feature = "ring")]
impl ChunkAead for RingAead {
    const OPEN_PRESERVES_ON_FAILURE: bool = false;

    fn new(key: &[u8; KEY_LEN]) -> Self {
        let unbound = ring::aead::UnboundKey::new(&ring::aead::CHACHA20_POLY1305, key)
            .expect("a 32-byte key is valid for ChaCha20-Poly1305");
        RingAead(ring::aead::LessSafeKey::new(unbound))
    }

    fn seal_in_place(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> [u8; TAG_LEN] {
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
        &mut self,
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

/// RustCrypto's pure-Rust `chacha20poly1305`, which zeroizes its key on
/// drop.
///
/// [`DefaultAead`] only when neither OpenSSL nor ring is compiled in; with
/// them it is built for the unit tests alone (each backend compiled in is
/// checked against Wycheproof).
#[cfg(feature = "rustcrypto")]
#[cfg_attr(any(feature = "openssl", feature = "ring"), allow(dead_code))]
pub(crate) struct RustCryptoAead(chacha20poly1305::ChaCha20Poly1305);

#[cfg(feature = "rustcrypto")]
impl ChunkAead for RustCryptoAead {
    const OPEN_PRESERVES_ON_FAILURE: bool = true;

    fn new(key: &[u8; KEY_LEN]) -> Self {
        use chacha20poly1305::KeyInit;
        RustCryptoAead(chacha20poly1305::ChaCha20Poly1305::new(key.into()))
    }

    fn seal_in_place(
        &mut self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        buf: &mut [u8],
    ) -> [u8; TAG_LEN] {
        use chacha20poly1305::AeadInPlace;
        self.0
            .encrypt_in_place_detached(nonce.into(), aad, buf)
            .expect("chunk far below ChaCha20's length limit")
            .into()
    }

    fn open_in_place(
        &mut self,
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
mod wycheproof;

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<A: ChunkAead>() {
        let mut aead = A::new(&[7u8; KEY_LEN]);
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

    #[cfg(feature = "openssl")]
    #[test]
    fn openssl_round_trip() {
        round_trip::<OpenSslAead>();
    }

    #[test]
    fn default_round_trip() {
        round_trip::<DefaultAead>();
    }

    /// A stand-in backend that records which side of a split got a call.
    struct Recorder<const LARGE: bool>;

    thread_local! {
        static ROUTED: std::cell::RefCell<Vec<(bool, usize)>> = const { std::cell::RefCell::new(Vec::new()) };
    }

    impl<const LARGE: bool> ChunkAead for Recorder<LARGE> {
        // Differs per side, so the split's combination of the two is visible.
        const OPEN_PRESERVES_ON_FAILURE: bool = LARGE;

        fn new(_key: &[u8; KEY_LEN]) -> Self {
            Recorder
        }

        fn seal_in_place(
            &mut self,
            _: &[u8; NONCE_LEN],
            _: &[u8],
            buf: &mut [u8],
        ) -> [u8; TAG_LEN] {
            ROUTED.with(|r| r.borrow_mut().push((LARGE, buf.len())));
            [0; TAG_LEN]
        }

        fn open_in_place(
            &mut self,
            _: &[u8; NONCE_LEN],
            _: &[u8],
            buf: &mut [u8],
            _: &[u8; TAG_LEN],
        ) -> Result<(), AeadFailure> {
            ROUTED.with(|r| r.borrow_mut().push((LARGE, buf.len())));
            Ok(())
        }
    }

    /// Up to the threshold the small-buffer backend works, above it the
    /// large-buffer one, for sealing and opening alike; the split preserves
    /// a failed open's buffer only if both sides do.
    #[test]
    fn size_split_routes_by_length_and_combines_the_preserve_flag() {
        let mut split = SizeSplitAead::<Recorder<false>, Recorder<true>>::new(&[0; KEY_LEN]);
        let lens = [0, 1, SIZE_SPLIT_THRESHOLD, SIZE_SPLIT_THRESHOLD + 1, 65536];
        for len in lens {
            let mut buf = vec![0u8; len];
            split.seal_in_place(&[0; NONCE_LEN], b"", &mut buf);
            split
                .open_in_place(&[0; NONCE_LEN], b"", &mut buf, &[0; TAG_LEN])
                .unwrap();
        }
        let routed = ROUTED.with(|r| r.take());
        let want: Vec<(bool, usize)> = lens
            .iter()
            .flat_map(|&len| [(len > SIZE_SPLIT_THRESHOLD, len); 2])
            .collect();
        assert_eq!(routed, want);
        let preserves = [
            SizeSplitAead::<Recorder<false>, Recorder<true>>::OPEN_PRESERVES_ON_FAILURE,
            SizeSplitAead::<Recorder<true>, Recorder<false>>::OPEN_PRESERVES_ON_FAILURE,
            SizeSplitAead::<Recorder<true>, Recorder<true>>::OPEN_PRESERVES_ON_FAILURE,
        ];
        assert_eq!(
            preserves,
            [false, false, true],
            "only if both sides preserve"
        );
    }

    /// Either side of the threshold, the split backend's output is the same
    /// cipher: what it seals, a single backend opens, and the other way round.
    #[cfg(all(feature = "openssl", feature = "ring"))]
    #[test]
    fn size_split_agrees_with_each_backend_at_the_threshold() {
        let key = [3u8; KEY_LEN];
        let mut split = DefaultAead::new(&key);
        let mut ring = RingAead::new(&key);
        let mut openssl = OpenSslAead::new(&key);
        for len in [
            SIZE_SPLIT_THRESHOLD - 1,
            SIZE_SPLIT_THRESHOLD,
            SIZE_SPLIT_THRESHOLD + 1,
        ] {
            let nonce = [len as u8; NONCE_LEN];
            let plain = vec![0x5a; len];
            let mut a = plain.clone();
            let tag = split.seal_in_place(&nonce, b"", &mut a);
            let mut b = plain.clone();
            assert_eq!(ring.seal_in_place(&nonce, b"", &mut b), tag);
            assert_eq!(a, b);
            let mut c = a.clone();
            openssl.open_in_place(&nonce, b"", &mut c, &tag).unwrap();
            assert_eq!(c, plain);
            split.open_in_place(&nonce, b"", &mut a, &tag).unwrap();
            assert_eq!(a, plain);
        }
    }

    /// One OpenSSL context reused across nonces, seals and opens must agree
    /// with ring byte for byte, including after a failed open.
    #[cfg(all(feature = "openssl", feature = "ring"))]
    #[test]
    fn openssl_context_reuse_matches_ring() {
        let key = [9u8; KEY_LEN];
        let mut ours = OpenSslAead::new(&key);
        let mut reference = RingAead::new(&key);
        for (i, len) in [0usize, 1, 63, 64, 65, 1000, 65536].into_iter().enumerate() {
            let nonce = [i as u8; NONCE_LEN];
            let aad: &[u8] = if i % 2 == 0 { b"" } else { b"header" };
            let plain: Vec<u8> = (0..len).map(|b| (b * 7 + i) as u8).collect();
            let mut a = plain.clone();
            let mut b = plain.clone();
            let tag_a = ours.seal_in_place(&nonce, aad, &mut a);
            let tag_b = reference.seal_in_place(&nonce, aad, &mut b);
            assert_eq!((&a, tag_a), (&b, tag_b), "seal of {len} bytes");
            let mut wrong = tag_a;
            wrong[15] ^= 1;
            let mut c = a.clone();
            assert_eq!(
                ours.open_in_place(&nonce, aad, &mut c, &wrong),
                Err(AeadFailure)
            );
            assert!(c.iter().all(|&x| x == 0), "failed open leaves zeroes");
            ours.open_in_place(&nonce, aad, &mut a, &tag_a).unwrap();
            assert_eq!(a, plain, "open of {len} bytes after a failure");
        }
    }

    /// The wipe that runs on drop replaces the payload key ring holds with
    /// AES-256-GCM's all-zero key (the variant that fills ring's key storage).
    #[cfg(feature = "ring")]
    #[test]
    fn ring_wipe_overwrites_the_key_with_an_aes_zero_key() {
        let mut aead = RingAead::new(&[7; KEY_LEN]);
        assert_eq!(aead.0.algorithm(), &ring::aead::CHACHA20_POLY1305);
        aead.wipe();
        assert_eq!(aead.0.algorithm(), &ring::aead::AES_256_GCM);
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

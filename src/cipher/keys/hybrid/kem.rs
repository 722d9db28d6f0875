//! The MLKEM768-X25519 KEM (HPKE KEM id `0x647a`, a.k.a. X-Wing) as an
//! [`hpke::Kem`], for the `mlkem768x25519` stanza.
//!
//! Why this glue is written here: `hpke` 0.12 (the version age 0.12 uses)
//! has no hybrid KEM, and the RustCrypto `x-wing` 0.1.1 crate is built on
//! `ml-kem` 0.3, `x25519-dalek` 3 and `sha3` 0.12 (second copies of crates
//! age already pulls in), speaks another `rand_core`, and accepts an
//! all-zero X25519 share by default. This module composes the maintained
//! primitives already in our tree (`ml-kem` 0.2, `x25519-dalek` 2, `sha3`
//! 0.10) exactly as age 0.12's own `MLKEM768-P256` KEM does, with X-Wing's
//! parameters:
//!
//! - a private key is a 32-byte seed; `SHAKE256(seed, 96)` gives the ML-KEM
//!   `d ‖ z` (64 bytes) and the X25519 secret (32 bytes);
//! - public key = ML-KEM-768 encapsulation key (1184) ‖ X25519 point (32);
//!   ciphertext = ML-KEM-768 ciphertext (1088) ‖ X25519 share (32);
//! - shared secret = `SHA3-256(ss_M ‖ ss_X ‖ ct_X ‖ pk_X ‖ "\.//^\")`;
//! - an all-zero X25519 shared secret is refused (`HpkeError::DecapError`),
//!   as Go's age does (CCTV `hybrid_low_order`, `hybrid_identity`).

use hpke::generic_array::typenum::{Sum, U1024, U192, U32, U96};
use hpke::{kem::SharedSecret, Deserializable, HpkeError, Serializable};
use ml_kem::kem::{Decapsulate, Encapsulate};
use ml_kem::{Ciphertext, EncodedSizeUser, KemCore, MlKem768};
use rand::{CryptoRng, RngCore};
use sha3::digest::{ExtendableOutput, Update, XofReader};
use sha3::{Digest, Sha3_256, Shake256};
use zeroize::{Zeroize, Zeroizing};

/// X-Wing's combiner label, `\.//^\`.
const LABEL: &[u8] = b"\\.//^\\";
const MLKEM_EK_LEN: usize = 1184;
const MLKEM_CT_LEN: usize = 1088;
const X25519_LEN: usize = 32;
/// The private key: a 32-byte seed.
pub(crate) const SEED_LEN: usize = 32;
/// The public key's length: 1184 + 32 bytes.
pub(crate) const PUBLIC_KEY_LEN: usize = MLKEM_EK_LEN + X25519_LEN;
/// The encapsulated key's length (the stanza's argument): 1088 + 32 bytes.
pub(crate) const ENC_LEN: usize = MLKEM_CT_LEN + X25519_LEN;

type DecapsulationKey = <MlKem768 as KemCore>::DecapsulationKey;
type EncapsulationKey = <MlKem768 as KemCore>::EncapsulationKey;

/// A decapsulation key: the seed and what it expands to. The ML-KEM key and
/// the X25519 secret zeroize themselves on drop (`ml-kem`'s and
/// `x25519-dalek`'s `zeroize` features), the seed is `Zeroizing`.
#[derive(Clone)]
pub(crate) struct PrivateKey {
    seed: Zeroizing<[u8; SEED_LEN]>,
    dk_m: DecapsulationKey,
    sk_x: x25519_dalek::StaticSecret,
    pk: PublicKey,
}

impl PrivateKey {
    /// Expands a seed into the key pair.
    pub(crate) fn from_seed(seed: &[u8; SEED_LEN]) -> Self {
        let mut expanded = Zeroizing::new([0u8; 96]);
        Shake256::default()
            .chain(seed)
            .finalize_xof()
            .read(&mut expanded[..]);
        let mut d = Zeroizing::new([0u8; 32]);
        let mut z = Zeroizing::new([0u8; 32]);
        let mut x = [0u8; 32];
        d.copy_from_slice(&expanded[..32]);
        z.copy_from_slice(&expanded[32..64]);
        x.copy_from_slice(&expanded[64..]);
        let (dk_m, ek_m) = MlKem768::generate_deterministic(&(*d).into(), &(*z).into());
        // `StaticSecret::from` copies the bytes; wipe ours.
        let sk_x = x25519_dalek::StaticSecret::from(x);
        x.zeroize();
        let pk = PublicKey {
            ek_m,
            pk_x: x25519_dalek::PublicKey::from(&sk_x),
        };
        PrivateKey {
            seed: Zeroizing::new(*seed),
            dk_m,
            sk_x,
            pk,
        }
    }

    /// The seed (the identity's encoding).
    pub(crate) fn seed(&self) -> &[u8; SEED_LEN] {
        &self.seed
    }

    /// The public key.
    pub(crate) fn public_key(&self) -> &PublicKey {
        &self.pk
    }
}

/// Two private keys are equal when their public keys are (which compares
/// no secret bytes, so it needs no constant-time comparison).
impl PartialEq for PrivateKey {
    fn eq(&self, other: &Self) -> bool {
        self.pk == other.pk
    }
}
impl Eq for PrivateKey {}

impl Serializable for PrivateKey {
    type OutputSize = U32;

    fn write_exact(&self, buf: &mut [u8]) {
        buf.copy_from_slice(&self.seed[..]);
    }
}

impl Deserializable for PrivateKey {
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        let seed: &[u8; SEED_LEN] = encoded
            .try_into()
            .map_err(|_| HpkeError::IncorrectInputLength(SEED_LEN, encoded.len()))?;
        Ok(Self::from_seed(seed))
    }
}

/// An encapsulation key (the recipient).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PublicKey {
    ek_m: EncapsulationKey,
    pk_x: x25519_dalek::PublicKey,
}

impl Eq for PublicKey {}

impl Serializable for PublicKey {
    type OutputSize = Sum<U1024, U192>;

    fn write_exact(&self, buf: &mut [u8]) {
        buf[..MLKEM_EK_LEN].copy_from_slice(&self.ek_m.as_bytes());
        buf[MLKEM_EK_LEN..].copy_from_slice(self.pk_x.as_bytes());
    }
}

impl Deserializable for PublicKey {
    /// Accepts only what an honest key generator produces: an ML-KEM key
    /// whose coefficients are reduced (FIPS 203's modulus check: decoding
    /// reduces them, so a re-encoding that differs means the input was
    /// not), and an X25519 point that is not of low order (it would give
    /// the all-zero shared secret the recipient refuses; Go's age fails at
    /// encryption, we at parsing).
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        if encoded.len() != PUBLIC_KEY_LEN {
            return Err(HpkeError::IncorrectInputLength(
                PUBLIC_KEY_LEN,
                encoded.len(),
            ));
        }
        let (m, x) = encoded.split_at(MLKEM_EK_LEN);
        let ek_m = EncapsulationKey::from_bytes(m.try_into().expect("length checked"));
        if ek_m.as_bytes().as_slice() != m {
            return Err(HpkeError::ValidationError);
        }
        let pk_x = x25519_dalek::PublicKey::from(<[u8; 32]>::try_from(x).expect("length checked"));
        // A clamped scalar is a multiple of the cofactor: its product with a
        // point is the identity exactly when the point has low order.
        let probe = x25519_dalek::StaticSecret::from([1u8; 32]);
        if !probe.diffie_hellman(&pk_x).was_contributory() {
            return Err(HpkeError::ValidationError);
        }
        Ok(PublicKey { ek_m, pk_x })
    }
}

/// The encapsulated key (`enc`): ML-KEM ciphertext and X25519 share.
#[derive(Clone)]
pub(crate) struct EncappedKey {
    ct_m: Ciphertext<MlKem768>,
    ct_x: [u8; X25519_LEN],
}

impl Serializable for EncappedKey {
    type OutputSize = Sum<U1024, U96>;

    fn write_exact(&self, buf: &mut [u8]) {
        buf[..MLKEM_CT_LEN].copy_from_slice(&self.ct_m);
        buf[MLKEM_CT_LEN..].copy_from_slice(&self.ct_x);
    }
}

impl Deserializable for EncappedKey {
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        if encoded.len() != ENC_LEN {
            return Err(HpkeError::IncorrectInputLength(ENC_LEN, encoded.len()));
        }
        let (m, x) = encoded.split_at(MLKEM_CT_LEN);
        Ok(EncappedKey {
            ct_m: Ciphertext::<MlKem768>::try_from(m).expect("length checked"),
            ct_x: x.try_into().expect("length checked"),
        })
    }
}

/// The KEM: MLKEM768-X25519 (X-Wing), HPKE KEM id `0x647a`.
pub(crate) struct MlKem768X25519;

impl hpke::Kem for MlKem768X25519 {
    type PublicKey = PublicKey;
    type PrivateKey = PrivateKey;
    type EncappedKey = EncappedKey;
    type NSecret = U32;
    const KEM_ID: u16 = 0x647a;

    fn sk_to_pk(sk: &PrivateKey) -> PublicKey {
        sk.pk.clone()
    }

    /// hpke calls this only from `gen_keypair`, which we do not use (an
    /// identity is a random seed, [`PrivateKey::from_seed`]); it hashes
    /// the input keying material down to a seed with SHAKE256.
    fn derive_keypair(ikm: &[u8]) -> (PrivateKey, PublicKey) {
        let mut seed = Zeroizing::new([0u8; SEED_LEN]);
        Shake256::default()
            .chain(ikm)
            .chain(b"HPKE-v1KEM")
            .chain(Self::KEM_ID.to_be_bytes())
            .chain(b"DeriveKeyPair")
            .finalize_xof()
            .read(&mut seed[..]);
        let sk = PrivateKey::from_seed(&seed);
        let pk = sk.pk.clone();
        (sk, pk)
    }

    fn decap(
        sk: &PrivateKey,
        pk_sender_id: Option<&PublicKey>,
        enc: &EncappedKey,
    ) -> Result<SharedSecret<Self>, HpkeError> {
        // Base mode only (age uses no sender authentication).
        if pk_sender_id.is_some() {
            return Err(HpkeError::DecapError);
        }
        let ss_m: Zeroizing<[u8; 32]> = Zeroizing::new(
            sk.dk_m
                .decapsulate(&enc.ct_m)
                .map_err(|()| HpkeError::DecapError)?
                .into(),
        );
        let ss_x = sk
            .sk_x
            .diffie_hellman(&x25519_dalek::PublicKey::from(enc.ct_x));
        if !ss_x.was_contributory() {
            return Err(HpkeError::DecapError);
        }
        Ok(combine(
            &ss_m[..],
            ss_x.as_bytes(),
            &enc.ct_x,
            sk.pk.pk_x.as_bytes(),
        ))
    }

    fn encap<R: CryptoRng + RngCore>(
        pk: &PublicKey,
        sender_id_keypair: Option<(&PrivateKey, &PublicKey)>,
        rng: &mut R,
    ) -> Result<(SharedSecret<Self>, EncappedKey), HpkeError> {
        if sender_id_keypair.is_some() {
            return Err(HpkeError::EncapError);
        }
        let (ct_m, ss_m) = pk
            .ek_m
            .encapsulate(rng)
            .map_err(|()| HpkeError::EncapError)?;
        let ss_m: Zeroizing<[u8; 32]> = Zeroizing::new(ss_m.into());
        let ek_x = x25519_dalek::EphemeralSecret::random_from_rng(&mut *rng);
        let ct_x = x25519_dalek::PublicKey::from(&ek_x).to_bytes();
        let ss_x = ek_x.diffie_hellman(&pk.pk_x);
        // `PublicKey::from_bytes` refused low-order points, so this cannot
        // happen with a parsed key; checked anyway, never assumed.
        if !ss_x.was_contributory() {
            return Err(HpkeError::EncapError);
        }
        let ss = combine(&ss_m[..], ss_x.as_bytes(), &ct_x, pk.pk_x.as_bytes());
        Ok((ss, EncappedKey { ct_m, ct_x }))
    }
}

/// X-Wing's combiner.
fn combine(ss_m: &[u8], ss_x: &[u8], ct_x: &[u8], pk_x: &[u8]) -> SharedSecret<MlKem768X25519> {
    let digest = Sha3_256::new()
        .chain_update(ss_m)
        .chain_update(ss_x)
        .chain_update(ct_x)
        .chain_update(pk_x)
        .chain_update(LABEL)
        .finalize();
    let mut ss = SharedSecret::default();
    ss.0.copy_from_slice(&digest);
    ss
}

#[cfg(test)]
mod tests {
    use super::*;
    use hpke::generic_array::typenum::Unsigned;
    use hpke::Kem;

    #[test]
    fn sizes_match_the_spec() {
        assert_eq!(<PublicKey as Serializable>::OutputSize::USIZE, 1216);
        assert_eq!(<EncappedKey as Serializable>::OutputSize::USIZE, 1120);
    }

    #[test]
    fn encap_and_decap_agree_and_keys_round_trip() {
        let sk = PrivateKey::from_seed(&[7; 32]);
        let pk = PublicKey::from_bytes(&sk.public_key().to_bytes()).unwrap();
        assert_eq!(&pk, sk.public_key());
        let (ss, enc) = MlKem768X25519::encap(&pk, None, &mut rand::rngs::OsRng).unwrap();
        let enc = EncappedKey::from_bytes(&enc.to_bytes()).unwrap();
        let ss2 = MlKem768X25519::decap(&sk, None, &enc).unwrap();
        assert_eq!(ss.0, ss2.0);
    }

    #[test]
    fn bad_public_keys_are_refused() {
        let good = PrivateKey::from_seed(&[7; 32]).public_key().to_bytes();
        // The X25519 part is a low-order point (here: 0, the identity).
        let mut low_order = good;
        low_order[MLKEM_EK_LEN..].fill(0);
        assert_eq!(
            PublicKey::from_bytes(&low_order),
            Err(HpkeError::ValidationError)
        );
        // An ML-KEM coefficient that is not reduced mod q (0xFFF > 3329).
        let mut unreduced = good;
        unreduced[0] = 0xFF;
        unreduced[1] |= 0x0F;
        assert_eq!(
            PublicKey::from_bytes(&unreduced),
            Err(HpkeError::ValidationError)
        );
        assert_eq!(
            PublicKey::from_bytes(&good[1..]),
            Err(HpkeError::IncorrectInputLength(1216, 1215))
        );
    }
}

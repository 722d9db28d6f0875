//! age 1.3's hybrid tag stanza, `mlkem768p256tag` (C2SP age spec), opened
//! from scratch: the MLKEM768-P256 hybrid KEM and RFC 9180 HPKE base mode
//! (KEM 0x0050, HKDF-SHA256, ChaCha20-Poly1305) written out here rather
//! than taken from the `age` crate, so the test suite checks encryptors
//! (ours through the `age` crate, typage) against a second reading of the
//! spec.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::ChaCha20Poly1305;
use hkdf::Hkdf;
use ml_kem::kem::Decapsulate;
use ml_kem::{EncodedSizeUser, KemCore, MlKem768};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use sha2::{Digest, Sha256};
use sha3::digest::{ExtendableOutput, Update, XofReader};
use sha3::{Sha3_256, Shake256};

/// HPKE's `info` and the stanza tag's salt.
pub(crate) const LABEL: &str = "age-encryption.org/mlkem768p256tag";
/// The KEM's own label in its shared-secret combiner.
const KEM_LABEL: &[u8] = b"MLKEM768-P256";
/// ML-KEM-768 ciphertext and an uncompressed P-256 point.
const CT_PQ_LEN: usize = 1088;
const POINT_LEN: usize = 65;
/// HPKE suite: KEM MLKEM768-P256, KDF HKDF-SHA256, AEAD ChaCha20-Poly1305.
const SUITE_ID: &[u8] = b"HPKE\x00\x50\x00\x01\x00\x03";

/// A hybrid tag key from a 32-byte seed.
pub(crate) struct TagPqKey {
    dk_pq: <MlKem768 as KemCore>::DecapsulationKey,
    ek_pq: Vec<u8>,
    dk_t: p256::SecretKey,
    /// The P-256 public key, uncompressed.
    ek_t: Vec<u8>,
}

impl TagPqKey {
    /// SHAKE256(seed) gives ML-KEM's `d ‖ z` (64 bytes), then 128 bytes
    /// from which the first of four 32-byte candidates that is a valid
    /// P-256 scalar is taken.
    pub(crate) fn from_seed(seed: &[u8]) -> Self {
        let mut xof = Shake256::default();
        xof.update(seed);
        let mut xof = xof.finalize_xof();
        let (mut d, mut z, mut t) = ([0u8; 32], [0u8; 32], [0u8; 128]);
        xof.read(&mut d);
        xof.read(&mut z);
        xof.read(&mut t);
        let (dk_pq, ek_pq) = MlKem768::generate_deterministic(&d.into(), &z.into());
        let dk_t = t
            .chunks_exact(32)
            .find_map(|c| p256::SecretKey::from_slice(c).ok())
            .expect("four invalid scalars in a row: probability 2^-128");
        let ek_t = dk_t
            .public_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec();
        TagPqKey {
            dk_pq,
            ek_pq: ek_pq.as_bytes().to_vec(),
            dk_t,
            ek_t,
        }
    }

    /// The `age1tagpq1…` recipient's bytes: ML-KEM-768's encapsulation key
    /// and the uncompressed P-256 point.
    pub(crate) fn recipient(&self) -> Vec<u8> {
        [&self.ek_pq[..], &self.ek_t[..]].concat()
    }

    /// The file key of a `mlkem768p256tag` stanza for this key, or `None`.
    pub(crate) fn open(&self, tag: &[u8], enc: &[u8], body: &[u8]) -> Option<Vec<u8>> {
        if enc.len() != CT_PQ_LEN + POINT_LEN {
            return None;
        }
        // The tag: HKDF-Extract(label, enc ‖ SHA-256(P-256 key)[..4])[..4].
        let ikm = [enc, &Sha256::digest(&self.ek_t)[..4]].concat();
        let (prk, _) = Hkdf::<Sha256>::extract(Some(LABEL.as_bytes()), &ikm);
        if prk[..4] != *tag {
            return None;
        }
        let (ct_pq, ct_t) = enc.split_at(CT_PQ_LEN);
        let ss_pq = self.dk_pq.decapsulate(ct_pq.try_into().ok()?).ok()?;
        let point = p256::PublicKey::from_sec1_bytes(ct_t).ok()?;
        let ss_t = p256::ecdh::diffie_hellman(self.dk_t.to_nonzero_scalar(), point.as_affine());
        let mut h = Sha3_256::default();
        for part in [
            &ss_pq[..],
            &ss_t.raw_secret_bytes()[..],
            ct_t,
            &self.ek_t,
            KEM_LABEL,
        ] {
            sha3::Digest::update(&mut h, part);
        }
        let shared_secret = sha3::Digest::finalize(h);
        // RFC 9180 key schedule, base mode, empty PSK.
        let psk_id_hash = labeled_extract(b"", b"psk_id_hash", b"");
        let info_hash = labeled_extract(b"", b"info_hash", LABEL.as_bytes());
        let context = [&[0u8][..], &psk_id_hash, &info_hash].concat();
        let secret = labeled_extract(&shared_secret, b"secret", b"");
        let key = labeled_expand(&secret, b"key", &context, 32);
        let nonce = labeled_expand(&secret, b"base_nonce", &context, 12);
        let aead = ChaCha20Poly1305::new_from_slice(&key).ok()?;
        aead.decrypt(nonce.as_slice().into(), body).ok()
    }
}

fn labeled_extract(salt: &[u8], label: &[u8], ikm: &[u8]) -> Vec<u8> {
    let labeled = [b"HPKE-v1", SUITE_ID, label, ikm].concat();
    Hkdf::<Sha256>::extract(Some(salt), &labeled).0.to_vec()
}

fn labeled_expand(prk: &[u8], label: &[u8], info: &[u8], len: u16) -> Vec<u8> {
    let labeled = [&len.to_be_bytes()[..], b"HPKE-v1", SUITE_ID, label, info].concat();
    let mut out = vec![0; usize::from(len)];
    Hkdf::<Sha256>::from_prk(prk)
        .expect("a SHA-256 PRK")
        .expand(&labeled, &mut out)
        .expect("a short output");
    out
}

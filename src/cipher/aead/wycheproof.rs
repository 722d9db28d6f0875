//! Every AEAD backend compiled in (OpenSSL and ring by default, RustCrypto
//! with `--features rustcrypto`) against all 325 Wycheproof
//! ChaCha20-Poly1305 cases in `../shared/wycheproof/chacha20_poly1305_test.json`.
//!
//! Valid cases must seal to exactly the expected ciphertext and tag and open
//! back; invalid cases must fail to open. Cases with a nonce that is not 96
//! bits are invalid by construction: our backend trait only takes
//! `[u8; 12]`, so the conversion itself rejects them.

use super::{ChunkAead, NONCE_LEN, TAG_LEN};

struct Case {
    id: u64,
    key: Vec<u8>,
    iv: Vec<u8>,
    aad: Vec<u8>,
    msg: Vec<u8>,
    ct: Vec<u8>,
    tag: Vec<u8>,
    valid: bool,
}

fn cases() -> Vec<Case> {
    // `../shared` beside the checkout, or `ZS_TEST_SHARED` (as the
    // integration tests find it).
    let shared = std::env::var_os("ZS_TEST_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let path = shared.join("wycheproof/chacha20_poly1305_test.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let hex = |v: &serde_json::Value| hex::decode(v.as_str().unwrap()).unwrap();
    let mut out = Vec::new();
    for group in json["testGroups"].as_array().unwrap() {
        for t in group["tests"].as_array().unwrap() {
            out.push(Case {
                id: t["tcId"].as_u64().unwrap(),
                key: hex(&t["key"]),
                iv: hex(&t["iv"]),
                aad: hex(&t["aad"]),
                msg: hex(&t["msg"]),
                ct: hex(&t["ct"]),
                tag: hex(&t["tag"]),
                valid: t["result"] == "valid",
            });
        }
    }
    assert_eq!(out.len(), 325, "expected all 325 Wycheproof cases");
    out
}

/// Runs every case; returns (valid passed, invalid rejected).
fn check<A: ChunkAead>(name: &str) -> (usize, usize) {
    let (mut valid, mut invalid) = (0, 0);
    for c in cases() {
        let key: [u8; 32] = c.key.as_slice().try_into().expect("all keys are 256-bit");
        let Ok(nonce) = <[u8; NONCE_LEN]>::try_from(c.iv.as_slice()) else {
            assert!(
                !c.valid,
                "tc {}: valid case with a {}-byte nonce",
                c.id,
                c.iv.len()
            );
            invalid += 1;
            continue;
        };
        let mut aead = A::new(&key);
        let tag: [u8; TAG_LEN] = c.tag.as_slice().try_into().expect("all tags are 128-bit");
        let mut buf = c.ct.clone();
        let opened = aead.open_in_place(&nonce, &c.aad, &mut buf, &tag);
        if c.valid {
            assert!(
                opened.is_ok(),
                "tc {}: {} rejected a valid case",
                c.id,
                name
            );
            assert_eq!(buf, c.msg, "tc {}: wrong plaintext", c.id);
            let mut sealed = c.msg.clone();
            let got_tag = aead.seal_in_place(&nonce, &c.aad, &mut sealed);
            assert_eq!(sealed, c.ct, "tc {}: wrong ciphertext", c.id);
            assert_eq!(got_tag, tag, "tc {}: wrong tag", c.id);
            valid += 1;
        } else {
            assert!(
                opened.is_err(),
                "tc {}: {} accepted an invalid case",
                c.id,
                name
            );
            invalid += 1;
        }
    }
    (valid, invalid)
}

#[cfg(feature = "ring")]
#[test]
fn ring_passes_all_wycheproof_cases() {
    assert_eq!(check::<super::RingAead>("ring"), (256, 69));
}

#[cfg(feature = "rustcrypto")]
#[test]
fn rustcrypto_passes_all_wycheproof_cases() {
    assert_eq!(check::<super::RustCryptoAead>("rustcrypto"), (256, 69));
}

#[cfg(feature = "openssl")]
#[test]
fn openssl_passes_all_wycheproof_cases() {
    assert_eq!(check::<super::OpenSslAead>("openssl"), (256, 69));
}

#[test]
fn default_backend_passes_all_wycheproof_cases() {
    assert_eq!(check::<super::DefaultAead>("default"), (256, 69));
}

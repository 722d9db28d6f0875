//! Secrets are wiped before their memory goes back to the allocator.
//!
//! This test binary installs a global allocator that, while a test thread
//! has armed it with a needle, inspects every block that thread frees and
//! counts the blocks that still hold the needle. Each test drops a cipher
//! object that held a known secret (pending plaintext, opened plaintext, the
//! payload key the AEAD backend holds) and requires that no freed block held
//! it, and that the blocks it expected were indeed freed while armed (so a
//! test cannot pass by inspecting nothing).
//!
//! OpenSSL allocates with its own `malloc`, out of this allocator's sight;
//! its context is cleansed by `EVP_CIPHER_CTX_free` (`cipher_wipe_openssl.rs`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use zebrastream::cipher::{Decryptor, Encryptor, Format};

mod cipher_known_key;
use cipher_known_key as known_key;

/// Plaintext bytes in a full chunk: the encryptor's and decryptor's buffer.
const CHUNK_SIZE: usize = 64 * 1024;

/// The system allocator, plus the inspection of freed blocks.
struct Inspecting;

thread_local! {
    /// The secret the current thread looks for, while armed.
    static NEEDLE: Cell<Option<&'static [u8]>> = const { Cell::new(None) };
    /// Freed blocks that still held the needle.
    static HITS: Cell<usize> = const { Cell::new(0) };
    /// Size of the largest block freed while armed.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to `System` unchanged; `dealloc` only
// reads the block it is handed (valid for `layout.size()` bytes) before
// freeing it, and touches only const-initialised thread-locals (no
// allocation).
unsafe impl GlobalAlloc for Inspecting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // `try_with`: thread-locals are gone while a thread exits.
        let _ = NEEDLE.try_with(|needle| {
            let Some(needle) = needle.get() else { return };
            // SAFETY: `ptr` is a live block of `layout.size()` bytes until
            // `System.dealloc` below.
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            if block.windows(needle.len()).any(|w| w == needle) {
                HITS.with(|h| h.set(h.get() + 1));
            }
            LARGEST.with(|l| l.set(l.get().max(layout.size())));
        });
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Inspecting = Inspecting;

/// Runs `drop_it` armed with `needle`; returns how many freed blocks still
/// held it and the size of the largest block freed.
fn freed_while(needle: &'static [u8], drop_it: impl FnOnce()) -> (usize, usize) {
    HITS.with(|h| h.set(0));
    LARGEST.with(|l| l.set(0));
    NEEDLE.with(|n| n.set(Some(needle)));
    drop_it();
    NEEDLE.with(|n| n.set(None));
    (HITS.with(Cell::get), LARGEST.with(Cell::get))
}

/// A plaintext marker no random ciphertext or key will contain.
const SECRET: &[u8] = b"wipe-test: this plaintext must not outlive its cipher";

fn x25519() -> (age::x25519::Identity, Encryptor) {
    let id = age::x25519::Identity::generate();
    let enc = Encryptor::with_recipients(Format::AgeRt, vec![Box::new(id.to_public())]).unwrap();
    (id, enc)
}

/// An encryptor dropped with unsealed plaintext (an abandoned stream):
/// its chunk buffer is zeroed before it is freed.
#[test]
fn an_encryptor_dropped_mid_chunk_frees_no_plaintext() {
    let (_, mut enc) = x25519();
    assert_eq!(enc.write(SECRET).unwrap(), SECRET.len());
    let (hits, largest) = freed_while(SECRET, move || drop(enc));
    assert!(largest >= CHUNK_SIZE, "the chunk buffer was freed");
    assert_eq!(hits, 0, "a freed block still held the pending plaintext");
}

/// A decryptor opens chunks in place: after the plaintext was taken, its
/// buffer still held it until the decryptor was dropped.
#[test]
fn a_dropped_decryptor_frees_no_plaintext() {
    let (id, mut enc) = x25519();
    let wire = enc.encrypt_all(SECRET).unwrap();
    let mut dec = Decryptor::with_identities(vec![Box::new(id)]);
    let mut out = vec![0u8; 4096];
    let mut got = Vec::new();
    let mut input = &wire[..];
    while !input.is_empty() {
        let n = dec.feed(input).unwrap();
        input = &input[n..];
        let m = dec.read_plaintext(&mut out);
        got.extend_from_slice(&out[..m]);
    }
    dec.finish().unwrap();
    assert_eq!(got, SECRET);
    out.fill(0);
    got.fill(0);
    let (hits, largest) = freed_while(SECRET, move || drop(dec));
    assert!(largest >= CHUNK_SIZE, "the chunk buffer was freed");
    assert_eq!(hits, 0, "a freed block still held the opened plaintext");
}

/// The payload key lives in the AEAD backend, and ring's key type never
/// wipes itself: a dropped encryptor or decryptor frees no copy of the key,
/// whichever backend the features chose. (By default ring seals and opens
/// chunks of up to 2 KiB and OpenSSL the longer ones; OpenSSL allocates out
/// of this allocator's sight, see `cipher_wipe_openssl.rs`.)
#[test]
fn dropped_encryptors_and_decryptors_free_no_payload_key() {
    for format in [Format::AgeRt, Format::AgeV1] {
        let (mut enc, key) = known_key::encryptor(format);
        let wire = enc.encrypt_all(SECRET).unwrap();
        let mut dec = known_key::decryptor();
        assert_eq!(dec.decrypt_all(&wire).unwrap(), SECRET, "{format}");
        for (what, (hits, largest)) in [
            ("encryptor", freed_while(key, move || drop(enc))),
            ("decryptor", freed_while(key, move || drop(dec))),
        ] {
            assert!(
                largest >= CHUNK_SIZE,
                "{format} {what}: its buffers were freed"
            );
            assert_eq!(hits, 0, "{format}: a dropped {what} freed the payload key");
        }
    }
}

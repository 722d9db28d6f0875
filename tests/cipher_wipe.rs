//! Secrets are wiped before their memory goes back to the allocator.
//!
//! This test binary installs a global allocator that, while a test thread
//! has armed it with a needle, inspects every block that thread frees and
//! counts the blocks that still hold the needle. Each test drops a cipher
//! object that held a known secret (pending plaintext, opened plaintext, a
//! payload key in ring's key type) and requires that no freed block held
//! it, and that the blocks it expected were indeed freed while armed (so a
//! test cannot pass by inspecting nothing).
//!
//! OpenSSL allocates with its own `malloc`, out of this allocator's sight;
//! its context is cleansed by `EVP_CIPHER_CTX_free` (see `OpenSslAead`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use zebrastream::cipher::aead::KEY_LEN;
use zebrastream::cipher::stream::{ChunkOpener, ChunkSealer, CHUNK_SIZE, TAG_SIZE};
use zebrastream::cipher::{Decryptor, Encryptor, Format};

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
/// A payload key as distinctive as the marker.
const KEY: &[u8; KEY_LEN] = b"wipe-test: 32-byte payload key!!";

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

/// ring keeps the payload key in its own key type, which never wipes
/// itself; our sealer and opener overwrite it on drop, for ring alone and
/// for the default backend (ring for small chunks, OpenSSL for large ones).
#[cfg(feature = "ring")]
#[test]
fn dropped_sealers_and_openers_free_no_payload_key() {
    use zebrastream::cipher::aead::{ChunkAead, DefaultAead, RingAead};

    fn check<A: ChunkAead + 'static>() {
        let mut sealer = ChunkSealer::<A>::new(KEY);
        let mut chunk = [7u8; 100 + TAG_SIZE];
        sealer.seal(&mut chunk, true).unwrap();
        let mut opener = ChunkOpener::<A>::new(KEY);
        assert_eq!(opener.open(&mut chunk, true), Ok(100));
        for (what, (hits, largest)) in [
            ("sealer", freed_while(KEY, move || drop(sealer))),
            ("opener", freed_while(KEY, move || drop(opener))),
        ] {
            // The backend lives in its own heap block (one copy of the key,
            // however often the sealer or opener moves).
            assert!(largest >= std::mem::size_of::<A>(), "{what}: backend freed");
            assert_eq!(hits, 0, "{}: a dropped {what} freed the key", A::NAME);
        }
    }
    check::<RingAead>();
    check::<DefaultAead>();
}

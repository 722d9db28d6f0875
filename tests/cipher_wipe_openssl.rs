//! OpenSSL cleanses its cipher context when the OpenSSL backend is dropped
//! (`EVP_CIPHER_CTX_free` → `freectx` → `OPENSSL_clear_free`), checked
//! against the system OpenSSL this crate links.
//!
//! OpenSSL allocates with its own `malloc`, which `CRYPTO_set_mem_functions`
//! can replace, but only before its first allocation in the process: so
//! this binary holds this one test. The hooks prefix every block with its
//! size, and the free hook, while armed, inspects the block for the key.
#![cfg(feature = "openssl")]

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

use zebrastream::cipher::Format;

mod cipher_known_key;
use cipher_known_key as known_key;

/// ChaCha20-Poly1305's key length.
const KEY_LEN: usize = 32;
/// The key the free hook looks for: the test's payload key (random, so no
/// other OpenSSL data contains it).
static KEY: OnceLock<[u8; KEY_LEN]> = OnceLock::new();

/// Bytes in front of each block: its size (keeps 16-byte alignment).
const HEADER: usize = 16;

static ARMED: AtomicBool = AtomicBool::new(false);
static HITS: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

extern "C" {
    // OpenSSL 1.1.0 and later (crypto.h).
    fn CRYPTO_set_mem_functions(
        malloc_fn: unsafe extern "C" fn(usize, *const c_char, c_int) -> *mut c_void,
        realloc_fn: unsafe extern "C" fn(*mut c_void, usize, *const c_char, c_int) -> *mut c_void,
        free_fn: unsafe extern "C" fn(*mut c_void, *const c_char, c_int),
    ) -> c_int;
    fn CRYPTO_malloc(num: usize, file: *const c_char, line: c_int) -> *mut c_void;
    fn CRYPTO_free(ptr: *mut c_void, file: *const c_char, line: c_int);
}

/// The block's size and where libc's allocation starts.
unsafe fn header(ptr: *mut c_void) -> (usize, *mut c_void) {
    let base = unsafe { ptr.cast::<u8>().sub(HEADER) };
    (unsafe { base.cast::<usize>().read() }, base.cast())
}

unsafe extern "C" fn hooked_malloc(num: usize, _: *const c_char, _: c_int) -> *mut c_void {
    let base = unsafe { libc::malloc(num + HEADER) };
    if base.is_null() {
        return base;
    }
    unsafe {
        base.cast::<usize>().write(num);
        base.cast::<u8>().add(HEADER).cast()
    }
}

unsafe extern "C" fn hooked_free(ptr: *mut c_void, _: *const c_char, _: c_int) {
    if ptr.is_null() {
        return;
    }
    let (size, base) = unsafe { header(ptr) };
    if ARMED.load(Ordering::SeqCst) {
        // SAFETY: `ptr` is a live block of `size` bytes until freed below.
        let block = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), size) };
        let key = KEY.get().expect("armed only with a key");
        if block.windows(KEY_LEN).any(|w| w == key) {
            HITS.fetch_add(1, Ordering::SeqCst);
        }
        LARGEST.fetch_max(size, Ordering::SeqCst);
    }
    unsafe { libc::free(base) }
}

unsafe extern "C" fn hooked_realloc(
    ptr: *mut c_void,
    num: usize,
    file: *const c_char,
    line: c_int,
) -> *mut c_void {
    if ptr.is_null() {
        return unsafe { hooked_malloc(num, file, line) };
    }
    let new = unsafe { hooked_malloc(num, file, line) };
    if !new.is_null() {
        let (size, _) = unsafe { header(ptr) };
        unsafe { std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), new.cast::<u8>(), size.min(num)) };
        unsafe { hooked_free(ptr, file, line) };
    }
    new
}

/// The default backend with `openssl` on holds an OpenSSL cipher context
/// (alone, or beside ring for small chunks): a dropped encryptor or
/// decryptor leaves no payload key in the memory OpenSSL frees.
#[test]
fn a_dropped_openssl_backend_leaves_no_key_in_freed_memory() {
    // SAFETY: the hooks keep malloc/realloc/free semantics; installed
    // before OpenSSL allocates anything (nothing else in this binary runs).
    let installed = unsafe { CRYPTO_set_mem_functions(hooked_malloc, hooked_realloc, hooked_free) };
    assert_eq!(installed, 1, "OpenSSL allocated before the hooks were set");

    let (mut enc, key) = known_key::encryptor(Format::AgeRt);
    KEY.set(*key).unwrap();
    let key = KEY.get().unwrap();

    // Control: a block OpenSSL frees without cleansing shows the key.
    unsafe {
        let block = CRYPTO_malloc(64, std::ptr::null(), 0);
        std::ptr::copy_nonoverlapping(key.as_ptr(), block.cast::<u8>().add(8), KEY_LEN);
        ARMED.store(true, Ordering::SeqCst);
        CRYPTO_free(block, std::ptr::null(), 0);
        ARMED.store(false, Ordering::SeqCst);
    }
    assert_eq!(
        HITS.swap(0, Ordering::SeqCst),
        1,
        "the free hook sees freed blocks"
    );
    LARGEST.store(0, Ordering::SeqCst);

    // Long enough that the default split backend seals with OpenSSL.
    let secret = vec![7u8; 16 * 1024];
    let wire = enc.encrypt_all(&secret).unwrap();
    let mut dec = known_key::decryptor();
    assert_eq!(dec.decrypt_all(&wire).unwrap(), secret);

    for (what, drop_it) in [
        (
            "encryptor",
            Box::new(move || drop(enc)) as Box<dyn FnOnce()>,
        ),
        ("decryptor", Box::new(move || drop(dec))),
    ] {
        LARGEST.store(0, Ordering::SeqCst);
        ARMED.store(true, Ordering::SeqCst);
        drop_it();
        ARMED.store(false, Ordering::SeqCst);
        // The provider context (ChaCha20 key words, Poly1305 state) is a
        // few hundred bytes: it was freed while armed, and held no key.
        assert!(
            LARGEST.load(Ordering::SeqCst) >= 2 * KEY_LEN,
            "{what}: no context freed"
        );
        assert_eq!(
            HITS.load(Ordering::SeqCst),
            0,
            "{what}: OpenSSL freed the key uncleansed"
        );
    }
}

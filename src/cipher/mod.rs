//! Layer 1: the sans-IO stream cipher (age-rt v0.2 and age v1).
//!
//! - [`Encryptor`] / [`Decryptor`]: state machines, bytes in and bytes out,
//!   no I/O (in the spirit of rustls' core and tokio-util's codecs).
//! - [`EncryptingWriter`] / [`DecryptingReader`]: thin `std::io` adapters
//!   over them, and `tokio::io` ones with the `tokio` feature (which
//!   `client` turns on).
//! - [`keys`]: recipients and identities from strings and files.
//!
//! # ChaCha20-Poly1305 backend
//!
//! The crate's features choose the code that seals and opens chunks, at
//! build time; nothing in the API names it, and every choice writes and
//! reads the same bytes:
//!
//! | features | backend |
//! |---|---|
//! | `openssl` and `ring` (the defaults) | ring for chunks up to 2 KiB, the system OpenSSL above (its AVX-512 code is 1.8× ring on 64 KiB chunks, `docs/performance.md`) |
//! | `openssl` alone | the system OpenSSL |
//! | `ring` alone | ring (no system library) |
//! | `rustcrypto` alone | RustCrypto's pure-Rust `chacha20poly1305` |
//!
//! `openssl` or `ring` wins over `rustcrypto` when both are on. A build
//! without a system OpenSSL turns the default features off and enables
//! `ring` (and `client`, `relay` or `cli` as needed). A build with none of
//! the three fails with a message that names them.
//!
//! Formats ([`Format`]): **age-rt v0.2** (length-prefixed chunks of up to
//! 64 KiB, flushable, what the official Python client writes) and **age v1**
//! (fixed 64 KiB chunks, readable by `age`/`rage`). The decryptor detects
//! which from the header.
//!
//! Security contract: plaintext is released only after its chunk
//! authenticated, and the header MAC is checked before any payload byte;
//! a stream is complete only when the final chunk authenticated, otherwise
//! [`Error::Truncated`]. File keys, payload keys and passphrases live in
//! zeroizing types and are never printed; the encryptor's and decryptor's
//! plaintext buffers and the AEAD backends' copies of the payload key are
//! wiped when they are dropped (ring's by us: ring does not; see
//! SECURITY.md, "Secrets handling").
//!
//! ```
//! use secrecy::SecretString;
//! use zebrastream::cipher::{Decryptor, Encryptor, Format, Error};
//! # fn main() -> Result<(), Error> {
//! let id = age::x25519::Identity::generate();
//! let mut enc = Encryptor::with_recipients(Format::AgeV1, vec![Box::new(id.to_public())])?;
//! let wire = enc.encrypt_all(b"some bytes")?;
//! let plain = Decryptor::with_identities(vec![Box::new(id)]).decrypt_all(&wire)?;
//! assert_eq!(plain, b"some bytes");
//!
//! // A stream cut short is never reported as complete.
//! let id = age::x25519::Identity::generate();
//! let mut enc = Encryptor::with_recipients(Format::AgeRt, vec![Box::new(id.to_public())])?;
//! let wire = enc.encrypt_all(b"some bytes")?;
//! let cut = Decryptor::with_identities(vec![Box::new(id)]).decrypt_all(&wire[..wire.len() - 1]);
//! assert_eq!(cut, Err(Error::Truncated));
//! # let _ = SecretString::from("unused");
//! # Ok(()) }
//! ```

// Lints the module's own items; the crate-wide `#![warn(unreachable_pub)]`
// makes this one redundant.
#![warn(unreachable_pub)]

mod aead;
mod armor;
mod buffer;
mod decryptor;
mod encryptor;
mod error;
mod format;
mod io;
pub mod keys;
mod stream;

/// The fuzz targets' entry points: only in builds for `fuzz/` (cargo-fuzz
/// passes `--cfg fuzzing`) and for this crate's unit tests, which replay the
/// committed corpus through them.
#[cfg(any(fuzzing, test))]
pub mod fuzzing;

pub use decryptor::{Decryptor, DEFAULT_MAX_WORK_FACTOR};
pub use encryptor::Encryptor;
#[cfg(feature = "client")]
pub(crate) use encryptor::{SCRYPT_WORK_FACTOR, SYMMETRIC_LABEL};
pub use error::{
    ArmorError, Error, HeaderError, KeyError, PluginError, ProtocolError, Unsupported,
};
pub use format::{Format, UnknownFormat};
pub use io::{DecryptingReader, EncryptingWriter};
#[cfg(feature = "client")]
pub(crate) use stream::{ExporterSecret, TAG_SIZE};

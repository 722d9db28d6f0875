//! [`PlaintextBuffer`]: the heap buffer the encryptor and decryptor keep
//! plaintext in, zeroed when dropped.

use std::ops::{Deref, DerefMut};

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A fixed-length heap buffer that is zeroed when dropped.
///
/// The encryptor fills one with plaintext before sealing a chunk in place,
/// the decryptor opens chunks in place in one; without this, the last
/// chunk's plaintext would stay in freed memory. The wipe runs once, on
/// drop (a 64 KiB `memset` behind an optimization barrier), never per chunk.
pub(crate) struct PlaintextBuffer(Box<[u8]>);

impl PlaintextBuffer {
    /// A zero-filled buffer of `len` bytes.
    pub(crate) fn zeroed(len: usize) -> Self {
        PlaintextBuffer(vec![0u8; len].into_boxed_slice())
    }
}

impl Deref for PlaintextBuffer {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl DerefMut for PlaintextBuffer {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl Zeroize for PlaintextBuffer {
    fn zeroize(&mut self) {
        // The slice impl is one bulk fill plus a barrier (`Box<[u8]>`'s own
        // impl writes byte by byte).
        self.0[..].zeroize();
    }
}

impl Drop for PlaintextBuffer {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for PlaintextBuffer {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroize_clears_every_byte_and_keeps_the_length() {
        let mut buf = PlaintextBuffer::zeroed(70_000);
        buf.fill(0xa5);
        buf.zeroize();
        assert_eq!(buf.len(), 70_000);
        assert!(buf.iter().all(|&b| b == 0));
    }
}

//! A pseudo-random, seeded byte pattern that producers send and consumers
//! check byte for byte (cheaper than hashing: one `memcmp` per read).

use serde::{Deserialize, Serialize};

use super::now_ns;

/// The pattern repeats with this period (a prime, so a lost or repeated
/// power-of-two-sized chunk shifts it and is caught).
const PERIOD: usize = 65_521;
/// The largest slice [`Pattern::slice`] hands out.
pub const MAX_SLICE: usize = 1 << 20;

/// Stream bytes: `byte(offset) = BLOCK[(offset + shift) % PERIOD]`, where
/// `BLOCK` is one fixed pseudo-random period shared by all streams and
/// `shift` depends on the seed, so streams differ without each holding a
/// block of its own (a thousand streams run in one process).
#[derive(Debug, Clone, Copy)]
pub struct Pattern {
    shift: u64,
}

/// One period followed by its first [`MAX_SLICE`] bytes again, so any slice
/// of up to `MAX_SLICE` bytes is contiguous.
fn block() -> &'static [u8] {
    static BLOCK: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BLOCK.get_or_init(|| {
        // xorshift64*.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let period: Vec<u8> = (0..PERIOD)
            .map(|_| {
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
            })
            .collect();
        period
            .iter()
            .cycle()
            .take(PERIOD + MAX_SLICE)
            .copied()
            .collect()
    })
}

impl Pattern {
    /// The pattern for `seed` (e.g. a stream's index).
    pub fn new(seed: u64) -> Pattern {
        Pattern {
            shift: seed.wrapping_mul(7_919) % PERIOD as u64,
        }
    }

    /// The `len` stream bytes at `offset` (`len` ≤ [`MAX_SLICE`]).
    pub fn slice(&self, offset: u64, len: usize) -> &'static [u8] {
        assert!(len <= MAX_SLICE, "slice of {len} bytes");
        let start = ((offset + self.shift) % PERIOD as u64) as usize;
        &block()[start..start + len]
    }

    /// Writes `bytes` stream bytes to `out` in `write_size` pieces (blocking).
    pub fn write_to(&self, out: &mut impl std::io::Write, bytes: u64, write_size: usize) {
        let mut offset = 0;
        while offset < bytes {
            let n = (bytes - offset).min(write_size as u64) as usize;
            out.write_all(self.slice(offset, n)).expect("write");
            offset += n as u64;
        }
    }
}

/// What a consumer received.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Delivery {
    /// Bytes received.
    pub bytes: u64,
    /// Every byte matched the pattern.
    pub exact: bool,
    /// When the first byte arrived ([`now_ns`]).
    pub first_byte_ns: u64,
    /// When the end of the stream arrived ([`now_ns`]).
    pub end_ns: u64,
}

impl Delivery {
    /// Throughput from the first byte to the end, in MB/s (10⁶ bytes).
    pub fn mb_per_s(&self) -> f64 {
        let ns = self.end_ns.saturating_sub(self.first_byte_ns).max(1);
        self.bytes as f64 * 1e3 / ns as f64
    }
}

/// Checks received bytes against a [`Pattern`] and times them.
pub struct Verifier {
    pattern: Pattern,
    delivery: Delivery,
}

impl Verifier {
    /// A verifier for the pattern of `seed`.
    pub fn new(seed: u64) -> Verifier {
        Verifier {
            pattern: Pattern::new(seed),
            delivery: Delivery {
                exact: true,
                ..Delivery::default()
            },
        }
    }

    /// Checks the next received bytes.
    pub fn push(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let d = &mut self.delivery;
        if d.bytes == 0 {
            d.first_byte_ns = now_ns();
        }
        for piece in data.chunks(MAX_SLICE) {
            d.exact &= self.pattern.slice(d.bytes, piece.len()) == piece;
            d.bytes += piece.len() as u64;
        }
    }

    /// The end of the stream: stamps and returns the delivery.
    pub fn finish(mut self) -> Delivery {
        self.delivery.end_ns = now_ns();
        self.delivery
    }

    /// Reads `input` to its end (blocking), checking everything.
    pub fn read_from(mut self, input: &mut impl std::io::Read) -> Delivery {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match input.read(&mut buf) {
                Ok(0) => return self.finish(),
                Ok(n) => self.push(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("read: {e}"),
            }
        }
    }
}

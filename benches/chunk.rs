//! Chunk throughput: seal+frame (the `Encryptor`) and open+frame (the
//! `Decryptor`) per chunk size, next to the raw AEAD call on a buffer of
//! the same size, so the framing overhead shows as a ratio.
//!
//! The AEAD backends are private to the crate (its features choose one, see
//! `zebrastream::cipher`): this bench compiles their module
//! (`src/cipher/aead/`) into itself to call each backend raw. The framed
//! rows measure the public `Encryptor`/`Decryptor`, so they use the backend
//! the features chose (`default`); to measure another one framed, build
//! with it alone:
//!
//! `cargo bench --bench chunk` (raw: size-split, openssl, ring; framed: size-split),
//! `cargo bench --bench chunk --features rustcrypto` (raw also rustcrypto),
//! `cargo bench --bench chunk --no-default-features --features ring` (framed: ring).
//!
//! After the criterion groups, the binary prints an interleaved
//! comparison: raw and framed alternate in short batches and the fastest
//! batch of each counts, which cancels the drift of a shared, loaded
//! machine that separate criterion runs suffer from.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use zebrastream::cipher::{Decryptor, Encryptor, Format};

/// The crate's private AEAD backends, compiled into this bench (see above).
#[path = "../src/cipher/aead/mod.rs"]
#[allow(dead_code)]
mod aead;

use aead::{ChunkAead, DefaultAead, NONCE_LEN, TAG_LEN};

/// The backend the features chose, as the framed rows name it.
const DEFAULT: &str = if cfg!(all(feature = "openssl", feature = "ring")) {
    "size-split"
} else if cfg!(feature = "openssl") {
    "openssl"
} else if cfg!(feature = "ring") {
    "ring"
} else {
    "rustcrypto"
};

const SIZES: [usize; 3] = [1024, 16 * 1024, 64 * 1024];
/// Plaintext per pre-encrypted stream used by the open benchmark.
const STREAM_BYTES: usize = 4 * 1024 * 1024;
const NONCE: [u8; NONCE_LEN] = [0; NONCE_LEN];

/// One measured operation on one chunk, repeatable `n` times.
trait Workload {
    /// Most operations one `run` may do (open: the chunks of one stream).
    fn capacity(&self) -> u64 {
        u64::MAX
    }
    /// Untimed preparation for `n` operations.
    fn prepare(&mut self, _n: u64) {}
    /// `n` operations, timed.
    fn run(&mut self, n: u64);
}

struct RawSeal<A> {
    aead: A,
    buf: Vec<u8>,
}

impl<A: ChunkAead> Workload for RawSeal<A> {
    fn run(&mut self, n: u64) {
        for _ in 0..n {
            black_box(self.aead.seal_in_place(&NONCE, b"", &mut self.buf));
        }
    }
}

/// Produces one chunk's worth of plaintext in the encryptor's buffer (the
/// zero-copy input path; like the raw call, the plaintext is not
/// regenerated) and flushes it as one age-rt chunk.
struct FramedSeal {
    enc: Encryptor,
    size: usize,
}

impl Workload for FramedSeal {
    fn run(&mut self, n: u64) {
        for _ in 0..n {
            let space = self.enc.input_buffer().len();
            assert!(space >= self.size);
            self.enc.commit_input(self.size);
            self.enc.flush();
            let out = self.enc.output().len();
            black_box(self.enc.output());
            self.enc.consume(out);
        }
    }
}

/// Copies a fresh ciphertext into the buffer and opens it in place (a
/// decryptor must also move incoming bytes into its buffer).
struct RawOpen<A> {
    aead: A,
    sealed: Vec<u8>,
    tag: [u8; TAG_LEN],
    buf: Vec<u8>,
}

impl<A: ChunkAead> Workload for RawOpen<A> {
    fn run(&mut self, n: u64) {
        for _ in 0..n {
            self.buf.copy_from_slice(&self.sealed);
            self.aead
                .open_in_place(&NONCE, b"", &mut self.buf, &self.tag)
                .unwrap();
            black_box(&self.buf);
        }
    }
}

/// Reads a pre-encrypted age-rt stream into the decryptor's buffer, chunk
/// by chunk, taking the plaintext.
struct FramedOpen {
    wire: Vec<u8>,
    preamble: usize,
    chunks: u64,
    identity: age::x25519::Identity,
    dec: Option<Decryptor>,
    pos: usize,
    left: u64,
}

impl Workload for FramedOpen {
    fn capacity(&self) -> u64 {
        self.chunks
    }

    fn prepare(&mut self, n: u64) {
        if self.dec.is_none() || self.left < n {
            // A fresh decryptor; the header is not part of the measurement.
            let mut dec = Decryptor::with_identities(vec![Box::new(self.identity.clone())]);
            assert_eq!(
                dec.feed(&self.wire[..self.preamble]).unwrap(),
                self.preamble
            );
            self.dec = Some(dec);
            self.pos = self.preamble;
            self.left = self.chunks;
        }
    }

    fn run(&mut self, n: u64) {
        let dec = self.dec.as_mut().expect("prepared");
        for _ in 0..n {
            while dec.plaintext().is_empty() {
                let space = dec.input_buffer();
                let k = space.len().min(self.wire.len() - self.pos);
                space[..k].copy_from_slice(&self.wire[self.pos..self.pos + k]);
                dec.commit_input(k).unwrap();
                self.pos += k;
            }
            black_box(dec.plaintext());
            let k = dec.plaintext().len();
            dec.consume_plaintext(k);
        }
        self.left -= n;
    }
}

/// An age-rt stream of `STREAM_BYTES` in chunks of `size`: (wire, preamble length, chunks).
fn stream(size: usize, recipient: &age::x25519::Recipient) -> (Vec<u8>, usize, u64) {
    let mut enc =
        Encryptor::with_recipients(Format::AgeRt, vec![Box::new(recipient.clone())]).unwrap();
    let mut wire = Vec::with_capacity(STREAM_BYTES + STREAM_BYTES / size * 20 + 512);
    let preamble = enc.output().len();
    wire.extend_from_slice(enc.output());
    enc.consume(preamble);
    let data = vec![0x42u8; size];
    let chunks = (STREAM_BYTES / size) as u64;
    for _ in 0..chunks {
        let mut rest = &data[..];
        while !rest.is_empty() {
            let k = enc.write(rest).unwrap();
            rest = &rest[k..];
            wire.extend_from_slice(enc.output());
            enc.consume(enc.output().len());
        }
        enc.flush();
        wire.extend_from_slice(enc.output());
        enc.consume(enc.output().len());
    }
    // One chunk of look-ahead stays unread, so every measured chunk has bytes after it.
    (wire, preamble, chunks - 1)
}

/// The raw seal and open workloads for one backend and chunk size.
fn raw<A: ChunkAead + 'static>(size: usize) -> [(&'static str, Box<dyn Workload>); 2] {
    let aead = || A::new(&[7u8; 32]);
    let mut sealed = vec![0x42u8; size];
    let tag = aead().seal_in_place(&NONCE, b"", &mut sealed);
    [
        (
            "seal",
            Box::new(RawSeal {
                aead: aead(),
                buf: vec![0x42u8; size],
            }),
        ),
        (
            "open",
            Box::new(RawOpen {
                aead: aead(),
                sealed,
                tag,
                buf: vec![0u8; size],
            }),
        ),
    ]
}

/// The framed seal and open workloads (the default backend) for one chunk size.
fn framed(size: usize) -> [(&'static str, Box<dyn Workload>); 2] {
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public();
    let mut enc =
        Encryptor::with_recipients(Format::AgeRt, vec![Box::new(recipient.clone())]).unwrap();
    enc.consume(enc.output().len());
    let (wire, preamble, chunks) = stream(size, &recipient);
    [
        ("seal", Box::new(FramedSeal { enc, size })),
        (
            "open",
            Box::new(FramedOpen {
                wire,
                preamble,
                chunks,
                identity,
                dec: None,
                pos: 0,
                left: 0,
            }),
        ),
    ]
}

/// Times `iters` operations, splitting at the workload's capacity.
fn timed(w: &mut dyn Workload, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(w.capacity());
        w.prepare(n);
        let start = Instant::now();
        w.run(n);
        total += start.elapsed();
        left -= n;
    }
    total
}

/// One criterion group per operation and backend: `<op>/<backend>/<kind>`.
fn criterion_group(
    c: &mut Criterion,
    backend: &str,
    kind: &str,
    size: usize,
    ops: [(&str, Box<dyn Workload>); 2],
) {
    for (op, mut w) in ops {
        let mut group = c.benchmark_group(format!("{op}/{backend}"));
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(BenchmarkId::new(kind, size), |b| {
            b.iter_custom(|iters| timed(w.as_mut(), iters))
        });
        group.finish();
    }
}

/// Fastest per-operation time of `rounds` batches, raw and framed alternating.
fn interleaved(raw: &mut dyn Workload, framed: &mut dyn Workload, size: usize) -> (f64, f64) {
    // About 2 ms per batch.
    let batch = ((2_000_000 / (size as u64 / 2).max(1)).max(1)).min(framed.capacity());
    let (mut best_raw, mut best_framed) = (f64::MAX, f64::MAX);
    for _ in 0..60 {
        best_raw = best_raw.min(timed(raw, batch).as_secs_f64() / batch as f64);
        best_framed = best_framed.min(timed(framed, batch).as_secs_f64() / batch as f64);
    }
    (best_raw, best_framed)
}

/// The default backend raw against the public, framed encryptor and decryptor.
fn print_interleaved() {
    for size in SIZES {
        let raws = raw::<DefaultAead>(size);
        let frameds = framed(size);
        for ((op, mut raw), (_, mut framed)) in raws.into_iter().zip(frameds) {
            let (r, f) = interleaved(raw.as_mut(), framed.as_mut(), size);
            let mib = |t: f64| size as f64 / t / (1024.0 * 1024.0);
            println!(
                "| {op} | {DEFAULT} | {} KiB | {:.0} MiB/s | {:.0} MiB/s | {:.1}% |",
                size / 1024,
                mib(r),
                mib(f),
                r / f * 100.0
            );
        }
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    for size in SIZES {
        criterion_group(&mut c, DEFAULT, "framed", size, framed(size));
        #[cfg(all(feature = "openssl", feature = "ring"))]
        criterion_group(
            &mut c,
            "size-split",
            "raw_aead",
            size,
            raw::<DefaultAead>(size),
        );
        #[cfg(feature = "openssl")]
        criterion_group(
            &mut c,
            "openssl",
            "raw_aead",
            size,
            raw::<aead::OpenSslAead>(size),
        );
        #[cfg(feature = "ring")]
        criterion_group(
            &mut c,
            "ring",
            "raw_aead",
            size,
            raw::<aead::RingAead>(size),
        );
        #[cfg(feature = "rustcrypto")]
        criterion_group(
            &mut c,
            "rustcrypto",
            "raw_aead",
            size,
            raw::<aead::RustCryptoAead>(size),
        );
    }
    c.final_summary();

    // Only under `cargo bench` (criterion's `--bench` flag), not in test mode.
    if std::env::args().any(|a| a == "--bench") {
        println!("\nInterleaved (best of 60 batches each): op | backend | chunk | raw AEAD | framed | framed/raw");
        print_interleaved();
    }
}

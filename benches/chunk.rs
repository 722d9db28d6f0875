//! Chunk throughput: seal+frame (the `Encryptor`) and open+frame (the
//! `Decryptor`) per chunk size, for each AEAD backend compiled in, next to
//! the raw AEAD call on a buffer of the same size, so the framing overhead
//! shows as a ratio.
//!
//! `cargo bench --bench chunk` (ring only) or
//! `cargo bench --bench chunk --features rustcrypto` (both backends).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use zebrastream::cipher::aead::{ChunkAead, NONCE_LEN, TAG_LEN};
use zebrastream::cipher::{Decryptor, Encryptor, Format};

const SIZES: [usize; 3] = [1024, 16 * 1024, 64 * 1024];
/// Plaintext per pre-encrypted stream used by the open benchmark.
const STREAM_BYTES: usize = 4 * 1024 * 1024;

fn recipient_pair() -> (age::x25519::Identity, age::x25519::Recipient) {
    let id = age::x25519::Identity::generate();
    let r = id.to_public();
    (id, r)
}

/// Writes `data` and flushes it as one age-rt chunk; drops the ciphertext.
fn seal_framed<A: ChunkAead>(enc: &mut Encryptor<A>, data: &[u8]) {
    let mut rest = data;
    while !rest.is_empty() {
        let n = enc.write(rest).unwrap();
        rest = &rest[n..];
        let out = enc.output().len();
        black_box(enc.output());
        enc.consume(out);
    }
    enc.flush();
    let out = enc.output().len();
    black_box(enc.output());
    enc.consume(out);
}

/// An age-rt stream of `STREAM_BYTES` in chunks of `size`: (wire, preamble length).
fn stream(size: usize, recipient: &age::x25519::Recipient) -> (Vec<u8>, usize) {
    let mut enc =
        Encryptor::with_recipients(Format::AgeRt, vec![Box::new(recipient.clone())]).unwrap();
    let mut wire = Vec::with_capacity(STREAM_BYTES + STREAM_BYTES / size * 20 + 512);
    // The preamble is emitted before the first chunk.
    let preamble = enc.output().len();
    wire.extend_from_slice(enc.output());
    enc.consume(preamble);
    let data = vec![0x42u8; size];
    for _ in 0..STREAM_BYTES / size {
        let mut rest = &data[..];
        while !rest.is_empty() {
            let n = enc.write(rest).unwrap();
            rest = &rest[n..];
            wire.extend_from_slice(enc.output());
            enc.consume(enc.output().len());
        }
        enc.flush();
        wire.extend_from_slice(enc.output());
        enc.consume(enc.output().len());
    }
    (wire, preamble)
}

fn bench_backend<A: ChunkAead>(c: &mut Criterion) {
    let (identity, recipient) = recipient_pair();
    let nonce = [0u8; NONCE_LEN];
    let aead = A::new(&[7u8; 32]);

    let mut seal = c.benchmark_group(format!("seal/{}", A::NAME));
    for size in SIZES {
        seal.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0x42u8; size];
        seal.bench_with_input(BenchmarkId::new("raw_aead", size), &size, |b, _| {
            b.iter(|| black_box(aead.seal_in_place(&nonce, b"", &mut buf)))
        });
        let data = vec![0x42u8; size];
        let mut enc = Encryptor::<A>::with_recipients_and_backend(
            Format::AgeRt,
            vec![Box::new(recipient.clone())],
        )
        .unwrap();
        enc.consume(enc.output().len());
        seal.bench_with_input(BenchmarkId::new("framed", size), &size, |b, _| {
            b.iter(|| seal_framed(&mut enc, &data))
        });
    }
    seal.finish();

    let mut open = c.benchmark_group(format!("open/{}", A::NAME));
    for size in SIZES {
        open.throughput(Throughput::Bytes(size as u64));
        // Raw: copy a fresh ciphertext into the buffer, then open it in place
        // (a decryptor must also move incoming bytes into its buffer).
        let mut sealed = vec![0x42u8; size];
        let tag: [u8; TAG_LEN] = aead.seal_in_place(&nonce, b"", &mut sealed);
        let mut buf = vec![0u8; size];
        open.bench_with_input(BenchmarkId::new("raw_aead", size), &size, |b, _| {
            b.iter(|| {
                buf.copy_from_slice(&sealed);
                aead.open_in_place(&nonce, b"", &mut buf, &tag).unwrap();
                black_box(&buf);
            })
        });

        let (wire, preamble) = stream(size, &recipient);
        open.bench_with_input(BenchmarkId::new("framed", size), &size, |b, _| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0;
                while done < iters {
                    // A fresh decryptor per stream; the header is not timed.
                    let mut dec = Decryptor::<A>::with_identities_and_backend(vec![Box::new(
                        identity.clone(),
                    )]);
                    let mut pos = dec.feed(&wire[..preamble]).unwrap();
                    assert_eq!(pos, preamble);
                    let start = Instant::now();
                    while done < iters && pos < wire.len() {
                        // Read into the decryptor's buffer until a chunk is released.
                        while dec.plaintext().is_empty() && pos < wire.len() {
                            let space = dec.input_buffer();
                            let n = space.len().min(wire.len() - pos);
                            space[..n].copy_from_slice(&wire[pos..pos + n]);
                            dec.commit_input(n).unwrap();
                            pos += n;
                        }
                        black_box(dec.plaintext());
                        let n = dec.plaintext().len();
                        dec.consume_plaintext(n);
                        done += 1;
                    }
                    total += start.elapsed();
                }
                total
            })
        });
    }
    open.finish();
}

fn benches(c: &mut Criterion) {
    #[cfg(feature = "ring")]
    bench_backend::<zebrastream::cipher::aead::RingAead>(c);
    #[cfg(feature = "rustcrypto")]
    bench_backend::<zebrastream::cipher::aead::RustCryptoAead>(c);
}

criterion_group!(chunk, benches);
criterion_main!(chunk);

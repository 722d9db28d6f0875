//! Property tests of the sans-IO encryptor and decryptor (X25519 keys, so
//! no scrypt cost).
//!
//! - random data × random write sizes × random flush points × random feed
//!   sizes round-trips, in both formats;
//! - every sampled single-bit flip, truncation at every offset class, chunk
//!   reorder, chunk duplication and trailing garbage is rejected, and the
//!   plaintext released before the error is a prefix of the original that
//!   never extends past the last chunk that authenticated.

use proptest::prelude::*;
use zebrastream::cipher::{Decryptor, Encryptor, Error, Format, ProtocolError};

fn identity() -> age::x25519::Identity {
    // Deterministic per test run is not needed: any key works.
    age::x25519::Identity::generate()
}

/// Encrypts `data` with writes of the given sizes and a flush after the
/// writes whose flag is set.
fn encrypt(
    format: Format,
    id: &age::x25519::Identity,
    data: &[u8],
    writes: &[(usize, bool)],
) -> Vec<u8> {
    let mut enc = Encryptor::with_recipients(format, vec![Box::new(id.to_public())]).unwrap();
    let mut wire = Vec::new();
    let mut rest = data;
    let drain = |enc: &mut Encryptor, wire: &mut Vec<u8>| {
        wire.extend_from_slice(enc.output());
        enc.consume(enc.output().len());
    };
    for &(size, flush) in writes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let mut piece = &rest[..size.min(rest.len())];
        rest = &rest[piece.len()..];
        while !piece.is_empty() {
            let n = enc.write(piece).unwrap();
            piece = &piece[n..];
            drain(&mut enc, &mut wire);
        }
        if flush {
            enc.flush();
            drain(&mut enc, &mut wire);
        }
    }
    enc.finish();
    while !enc.is_done() {
        drain(&mut enc, &mut wire);
    }
    wire
}

/// Decrypts feeding pieces of the given sizes; returns what was released and the result.
fn decrypt(
    id: &age::x25519::Identity,
    wire: &[u8],
    feeds: &[usize],
) -> (Vec<u8>, Result<(), Error>) {
    let mut dec = Decryptor::with_identities(vec![Box::new(id.clone())]);
    let mut out = Vec::new();
    let mut rest = wire;
    let result = (|| {
        for &size in feeds.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let mut piece = &rest[..size.min(rest.len())];
            rest = &rest[piece.len()..];
            while !piece.is_empty() {
                let n = dec.feed(piece)?;
                piece = &piece[n..];
                out.extend_from_slice(dec.plaintext());
                dec.consume_plaintext(dec.plaintext().len());
            }
        }
        loop {
            dec.finish()?;
            if dec.plaintext().is_empty() {
                return Ok(());
            }
            out.extend_from_slice(dec.plaintext());
            dec.consume_plaintext(dec.plaintext().len());
        }
    })();
    (out, result)
}

/// Where the payload starts (after the header and the 16-byte nonce).
fn payload_start(wire: &[u8]) -> usize {
    let mac = wire.windows(4).position(|w| w == b"\n---").unwrap() + 1;
    mac + wire[mac..].iter().position(|&b| b == b'\n').unwrap() + 1 + 16
}

/// age-rt frames as (offset, length including the prefix).
fn frames(wire: &[u8]) -> Vec<(usize, usize)> {
    let mut at = payload_start(wire);
    let mut out = Vec::new();
    while at < wire.len() {
        let len = u32::from_be_bytes(wire[at..at + 4].try_into().unwrap()) as usize + 4;
        out.push((at, len));
        at += len;
    }
    out
}

/// Plaintext bytes in the frames before `offset` (age-rt): the most a
/// decryptor may release when the byte at `offset` is bad.
fn authenticated_before(wire: &[u8], offset: usize) -> usize {
    frames(wire)
        .iter()
        .take_while(|(at, len)| at + len <= offset)
        .map(|(_, len)| len - 4 - 16)
        .sum()
}

fn format_strategy() -> impl Strategy<Value = Format> {
    prop_oneof![Just(Format::AgeRt), Just(Format::AgeV1)]
}

fn writes_strategy() -> impl Strategy<Value = Vec<(usize, bool)>> {
    prop::collection::vec((1usize..70_000, any::<bool>()), 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn round_trips(
        format in format_strategy(),
        len in prop_oneof![0usize..300, 65_530usize..65_540, 0usize..200_000],
        seed in any::<u8>(),
        writes in writes_strategy(),
        // Small pieces too: a header line split across pieces must be reassembled.
        feeds in prop::collection::vec(prop_oneof![1usize..300, 1usize..80_000], 1..6),
    ) {
        let id = identity();
        let data: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(seed | 1)).collect();
        let wire = encrypt(format, &id, &data, &writes);
        let (out, result) = decrypt(&id, &wire, &feeds);
        prop_assert_eq!(result, Ok(()));
        prop_assert!(out == data);
    }

    #[test]
    fn bit_flips_are_rejected(
        format in format_strategy(),
        len in 0usize..140_000,
        writes in writes_strategy(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 8),
    ) {
        let id = identity();
        let data = vec![0x5a; len];
        let wire = encrypt(format, &id, &data, &writes);
        for (index, bit) in flips {
            let at = index.index(wire.len());
            let mut bad = wire.clone();
            bad[at] ^= 1 << bit;
            let (out, result) = decrypt(&id, &bad, &[100_000]);
            prop_assert!(result.is_err(), "flip at {} accepted", at);
            prop_assert!(data.starts_with(&out));
            if format == Format::AgeRt {
                prop_assert!(out.len() <= authenticated_before(&wire, at));
            } else {
                // age v1: whole 64 KiB chunks before the damaged one.
                let start = payload_start(&wire);
                let chunks_before = at.saturating_sub(start) / 65552;
                prop_assert!(out.len() <= chunks_before * 65536);
            }
        }
    }

    #[test]
    fn truncation_is_rejected(
        format in format_strategy(),
        len in 0usize..140_000,
        writes in writes_strategy(),
        cut in any::<prop::sample::Index>(),
    ) {
        let id = identity();
        let data = vec![0xa5; len];
        let wire = encrypt(format, &id, &data, &writes);
        // Offset classes: inside the header, at its end, inside the nonce,
        // at every frame boundary, and one random offset.
        let start = payload_start(&wire);
        let mut cuts = vec![0, 1, start - 17, start - 16, start - 8, start, cut.index(wire.len())];
        if format == Format::AgeRt {
            cuts.extend(frames(&wire).iter().flat_map(|(at, len)| [*at, at + 2, at + len - 1]));
        } else {
            cuts.extend((start..wire.len()).step_by(65552).flat_map(|at| [at, at + 1]));
        }
        for cut in cuts.into_iter().filter(|&c| c < wire.len()) {
            let (out, result) = decrypt(&id, &wire[..cut], &[100_000]);
            prop_assert!(result.is_err(), "cut at {} accepted", cut);
            prop_assert!(data.starts_with(&out));
            if format == Format::AgeRt {
                prop_assert_eq!(result, Err(Error::Truncated), "cut at {}", cut);
                // Only whole chunks before the cut were released.
                prop_assert!(out.len() <= authenticated_before(&wire, cut));
            }
        }
    }

    #[test]
    fn reorder_duplicate_and_trailing_garbage_are_rejected(
        len in prop_oneof![1usize..100_000, Just(65536), Just(131072)],
        writes in writes_strategy(),
        garbage in prop::collection::vec(any::<u8>(), 1..40),
        pick in any::<prop::sample::Index>(),
    ) {
        let id = identity();
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let wire = encrypt(Format::AgeRt, &id, &data, &writes);
        let fr = frames(&wire);
        let start = payload_start(&wire);
        let frame = |i: usize| &wire[fr[i].0..fr[i].0 + fr[i].1];

        // Duplicate one frame.
        let i = pick.index(fr.len());
        let mut dup = wire[..start].to_vec();
        for j in 0..fr.len() {
            dup.extend_from_slice(frame(j));
            if j == i {
                dup.extend_from_slice(frame(j));
            }
        }
        let (out, result) = decrypt(&id, &dup, &[100_000]);
        prop_assert!(result.is_err());
        prop_assert!(data.starts_with(&out));

        // Swap two adjacent frames.
        if fr.len() >= 2 {
            let i = pick.index(fr.len() - 1);
            let mut swapped = wire[..start].to_vec();
            for j in 0..fr.len() {
                let k = if j == i { i + 1 } else if j == i + 1 { i } else { j };
                swapped.extend_from_slice(frame(k));
            }
            let (out, result) = decrypt(&id, &swapped, &[100_000]);
            prop_assert_eq!(result, Err(Error::ChunkAuthentication { index: i as u64 }));
            prop_assert!(out.len() <= authenticated_before(&wire, fr[i].0));
        }

        // Trailing garbage after the final chunk, in one feed and in separate feeds.
        let mut trailing = wire.clone();
        trailing.extend_from_slice(&garbage);
        let (out, result) = decrypt(&id, &trailing, &[wire.len(), garbage.len()]);
        prop_assert_eq!(result, Err(Error::Protocol(ProtocolError::TrailingData)));
        // The final chunk authenticated, so everything was released, but
        // the stream as a whole is an error.
        prop_assert!(out == data);
        // In one buffer: a full-size final chunk followed by bytes is opened
        // only as non-final (no backup copy on the bulk path), so it fails
        // as an authentication error; any other final chunk as trailing data.
        let (out, result) = decrypt(&id, &trailing, &[trailing.len()]);
        if fr.last().unwrap().1 == 4 + 65552 {
            prop_assert_eq!(result, Err(Error::ChunkAuthentication { index: fr.len() as u64 - 1 }));
            prop_assert!(data.starts_with(&out));
        } else {
            prop_assert_eq!(result, Err(Error::Protocol(ProtocolError::TrailingData)));
            prop_assert!(out == data);
        }
    }
}

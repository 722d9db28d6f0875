//! Cost per recipient kind: header bytes per stanza, and the time to wrap
//! the file key (`Encryptor::with_recipients`: X25519 DH or ML-KEM-768 +
//! X25519 encapsulation, HPKE/HKDF, header MAC) and to unwrap it
//! (`Decryptor` on an empty stream: decapsulation, header MAC, one empty
//! chunk). A timed loop, median of `ROUNDS` runs; numbers go to
//! docs/performance.md ("Recipients").
//!
//! `cargo bench --bench recipients`

use std::hint::black_box;
use std::time::{Duration, Instant};

use age::{Identity, Recipient};
use zebrastream::cipher::keys::HybridIdentity;
use zebrastream::cipher::{Decryptor, Encryptor, Format};

const ROUNDS: usize = 300;

type Recipients = Vec<Box<dyn Recipient + Send>>;
type Identities = Vec<Box<dyn Identity + Send + Sync>>;

/// A recipient kind: `n` recipients and the first one's identity.
struct Kind {
    name: &'static str,
    recipients: fn(usize) -> (Recipients, Identities),
}

fn x25519(n: usize) -> (Recipients, Identities) {
    let ids: Vec<_> = (0..n).map(|_| age::x25519::Identity::generate()).collect();
    let r = ids.iter().map(|i| Box::new(i.to_public()) as _).collect();
    (r, vec![Box::new(ids[0].clone())])
}

fn hybrid(n: usize) -> (Recipients, Identities) {
    let ids: Vec<_> = (0..n).map(|_| HybridIdentity::generate()).collect();
    let r = ids.iter().map(|i| Box::new(i.to_public()) as _).collect();
    (r, vec![Box::new(ids[0].clone())])
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not run us.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let kinds = [
        Kind {
            name: "X25519",
            recipients: x25519,
        },
        Kind {
            name: "mlkem768x25519",
            recipients: hybrid,
        },
    ];
    println!("| recipient | header, 1 recipient | each further | wrap (encrypt setup) | unwrap (decrypt) |");
    println!("|---|---|---|---|---|");
    for kind in &kinds {
        // Header = file − 16-byte nonce − 16-byte empty final chunk.
        let header = |n: usize| {
            let (r, _) = (kind.recipients)(n);
            let wire = Encryptor::with_recipients(Format::AgeV1, r)
                .unwrap()
                .encrypt_all(b"")
                .unwrap();
            wire.len() - 32
        };
        let (one, two) = (header(1), header(2));
        let mut wrap = Vec::with_capacity(ROUNDS);
        let mut unwrap = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let (r, ids) = (kind.recipients)(1);
            let start = Instant::now();
            let mut enc = black_box(Encryptor::with_recipients(Format::AgeV1, r).unwrap());
            wrap.push(start.elapsed());
            let wire = enc.encrypt_all(b"").unwrap();
            let start = Instant::now();
            let plain = black_box(Decryptor::with_identities(ids).decrypt_all(&wire).unwrap());
            unwrap.push(start.elapsed());
            assert!(plain.is_empty());
        }
        println!(
            "| {} | {one} B | {} B | {:.1} µs | {:.1} µs |",
            kind.name,
            two - one,
            median(wrap).as_secs_f64() * 1e6,
            median(unwrap).as_secs_f64() * 1e6,
        );
    }
}

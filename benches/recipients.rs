//! Cost per recipient kind: header bytes per stanza, and the time to wrap
//! the file key (`Encryptor::with_recipients`: X25519 DH or ML-KEM-768 +
//! X25519 encapsulation, HPKE/HKDF, header MAC) and to unwrap it
//! (`Decryptor` on an empty stream: decapsulation, header MAC, one empty
//! chunk). A timed loop, median of `ROUNDS` runs; numbers go to
//! docs/performance.md ("Recipients"). Tag recipients (`age1tag1…`,
//! `age1tagpq1…`) are encrypt-only here: their identities live in hardware,
//! behind a plugin.
//!
//! `cargo bench --bench recipients`

use std::hint::black_box;
use std::time::{Duration, Instant};

use age::{Identity, Recipient};
use zebrastream::cipher::keys::{self, HybridIdentity};
use zebrastream::cipher::{Decryptor, Encryptor, Format};

const ROUNDS: usize = 300;

type Recipients = Vec<Box<dyn Recipient + Send>>;
type Identities = Vec<Box<dyn Identity + Send + Sync>>;

/// A recipient kind: `n` recipients and the first one's identity (none for
/// tag recipients: hardware).
struct Kind {
    name: &'static str,
    recipients: fn(usize) -> (Recipients, Option<Identities>),
}

fn x25519(n: usize) -> (Recipients, Option<Identities>) {
    let ids: Vec<_> = (0..n).map(|_| age::x25519::Identity::generate()).collect();
    let r = ids.iter().map(|i| Box::new(i.to_public()) as _).collect();
    (r, Some(vec![Box::new(ids[0].clone())]))
}

fn hybrid(n: usize) -> (Recipients, Option<Identities>) {
    let ids: Vec<_> = (0..n).map(|_| HybridIdentity::generate()).collect();
    let r = ids.iter().map(|i| Box::new(i.to_public()) as _).collect();
    (r, Some(vec![Box::new(ids[0].clone())]))
}

/// `n` times one public tag recipient: `age1tag1…` (age's test key) or
/// `age1tagpq1…` (tests/data/tagpq-recipient.txt).
fn tag_recipients(tag: &str, n: usize) -> (Recipients, Option<Identities>) {
    let r = (0..n)
        .map(|_| keys::parse_recipient(tag).unwrap())
        .collect();
    (r, None)
}

fn tag(n: usize) -> (Recipients, Option<Identities>) {
    tag_recipients(
        "age1tag1qt8lw0ual6avlwmwatk888yqnmdamm7xfd0wak53ut6elz5c4swx2yqdj4e",
        n,
    )
}

fn tagpq(n: usize) -> (Recipients, Option<Identities>) {
    let text = include_str!("../tests/data/tagpq-recipient.txt");
    let line = text.lines().find(|l| !l.starts_with('#')).unwrap();
    tag_recipients(line, n)
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
        Kind {
            name: "p256tag",
            recipients: tag,
        },
        Kind {
            name: "mlkem768p256tag",
            recipients: tagpq,
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
            let Some(ids) = ids else { continue };
            let start = Instant::now();
            let plain = black_box(Decryptor::with_identities(ids).decrypt_all(&wire).unwrap());
            unwrap.push(start.elapsed());
            assert!(plain.is_empty());
        }
        let unwrap = match unwrap.is_empty() {
            true => String::from("(hardware, via its plugin)"),
            false => format!("{:.1} µs", median(unwrap).as_secs_f64() * 1e6),
        };
        println!(
            "| {} | {one} B | {} B | {:.1} µs | {unwrap} |",
            kind.name,
            two - one,
            median(wrap).as_secs_f64() * 1e6,
        );
    }
}

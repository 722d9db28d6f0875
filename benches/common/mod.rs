//! Code shared by the bench binaries (`transfer`, `relay`, `suite`): size
//! knobs, child-process measurement, relay processes, a verifiable byte
//! pattern and our client as a child process.
#![allow(dead_code)]

pub mod case;
pub mod client;
pub mod pattern;
pub mod process;
pub mod server;

use std::time::{SystemTime, UNIX_EPOCH};

/// One mebibyte.
pub const MIB: u64 = 1 << 20;

/// The environment variable `name` as a number, or `default`.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// True under `cargo bench` (which passes `--bench`); false under
/// `cargo test --bench …`, where the benches run a small smoke size.
pub fn benching() -> bool {
    std::env::args().any(|a| a == "--bench")
}

/// Plays the child role named by `ZS_BENCH_ROLE` (our relay, or one of the
/// producers and consumers of [`client`]) if there is one, and returns
/// whether it did: a bench's `main` returns then.
pub fn play_child_role() -> bool {
    let Ok(role) = std::env::var("ZS_BENCH_ROLE") else {
        return false;
    };
    if role == server::RELAY_ROLE {
        server::serve_relay();
    } else {
        assert!(client::play(&role), "unknown role {role}");
    }
    true
}

/// Wall-clock nanoseconds since the Unix epoch: a timestamp that parent and
/// child processes on the same machine can compare.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

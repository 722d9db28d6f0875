//! Loopback transfer benchmark (a bench binary, `harness = false`).
//!
//! Measures, in one run on the same machine:
//! - a raw copy through a `socat` TCP forwarder (the baseline);
//! - our client through our relay, plaintext;
//! - our client through our relay, encrypted (age-rt, X25519 recipient);
//! - the peak RSS of the producer and consumer processes while streaming a
//!   larger encrypted transfer.
//!
//! Producer, consumer and relay each run in their own process (this binary
//! re-executed with `ZS_BENCH_ROLE`), so their memory and CPU time are
//! measured separately (see `common::case`). The three throughput cases run
//! interleaved for `ZS_BENCH_ROUNDS` rounds (default 3) and the best round
//! is reported, since other load on the machine only ever slows a round
//! down; CPU seconds per GiB are reported too, as they hardly depend on that
//! load. Sizes: `ZS_BENCH_MIB` (default 1024) and `ZS_BENCH_RSS_MIB`
//! (default 4096). Our clients run on each runtime of `ZS_BENCH_RUNTIME`
//! (comma-separated, default `current,multi`), in the same interleaved
//! rounds: `current` is a current-thread tokio runtime, as the CLI uses;
//! `multi` is `#[tokio::main]`'s default (multi-thread, one worker per core,
//! the stream driven by `block_on`); `multi-spawn` the same with the stream
//! in a spawned task. The ratios of each runtime to the first are printed.
//! The paced sweep and the memory run use the first runtime.
//! `benches/suite` measures all of this and more in one run.
//!
//! ```text
//! cargo bench --bench transfer
//! ZS_BENCH_MIB=256 ZS_BENCH_RSS_MIB=512 cargo bench --bench transfer
//! ZS_BENCH_RUNTIME=current,multi-spawn cargo bench --bench transfer
//! ZS_BENCH_LINKS=500,1000 ZS_BENCH_LINK_MIB=256 cargo bench --bench transfer
//! ```
//!
//! The paced sweep (`ZS_BENCH_LINKS`, default 250, 500, 750 and 1000 MB/s)
//! holds the producer to a link speed, as if it sat behind a network link:
//! encrypted against plain where the link, not the CPU, is the limit.

mod common;

use common::case::{best_of, run, Case, Endpoint, Forwarder, Outcome, WRITE};
use common::client::{ClientRuntime, RUNTIME_ENV};
use common::server::Kind;
use common::{env_u64, MIB};

fn print_run(run: &Outcome) {
    let [p, r, c] = run.cpu_per_gib();
    println!(
        "{:<34} {:>8.1} MiB/s   CPU s/GiB: {p:5.2} + {r:5.2} + {c:5.2} = {:5.2}",
        run.name,
        run.mb_per_s * 1e6 / MIB as f64,
        p + r + c
    );
}

/// Producers paced to a link speed (`ZS_BENCH_LINKS`, MB/s, comma-separated;
/// `ZS_BENCH_LINK_MIB` per run): does encryption keep up with plaintext
/// when the link, not the CPU, is the limit?
fn paced_sweep(
    case: &dyn Fn(&str, Forwarder, &Endpoint, u64) -> Case,
    ours: &Forwarder,
    plain: &Endpoint,
    encrypted: &Endpoint,
    rounds: u64,
) {
    let links = std::env::var("ZS_BENCH_LINKS").unwrap_or_else(|_| {
        String::from(if common::benching() {
            "250,500,750,1000"
        } else {
            "50"
        })
    });
    let mib = env_u64(
        "ZS_BENCH_LINK_MIB",
        if common::benching() { 512 } else { 4 },
    );
    let links: Vec<u64> = links
        .split(',')
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    if links.is_empty() {
        return;
    }
    println!(
        "producer paced to a link speed, {mib} MiB per run: link | plain | age-rt | age-rt / plain"
    );
    for link in links {
        let cases = [
            case(
                "paced plain",
                ours.clone(),
                &plain.clone().paced(link),
                mib * MIB,
            ),
            case(
                "paced age-rt",
                ours.clone(),
                &encrypted.clone().paced(link),
                mib * MIB,
            ),
        ];
        let runs = best_of(&cases, rounds, &format!("paced-{link}"));
        let (p, e) = (runs[0].mb_per_s, runs[1].mb_per_s);
        println!(
            "| {link} MB/s | {p:.0} MB/s | {e:.0} MB/s | {:.1} % |",
            100.0 * e / p
        );
    }
}

fn main() {
    if common::play_child_role() {
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then only smoke-test.
    let (mib, rss_mib, rounds) = if common::benching() {
        (
            env_u64("ZS_BENCH_MIB", 1024),
            env_u64("ZS_BENCH_RSS_MIB", 4096),
            env_u64("ZS_BENCH_ROUNDS", 3).max(1),
        )
    } else {
        (4, 4, 1)
    };
    let runtimes: Vec<ClientRuntime> = std::env::var(RUNTIME_ENV)
        .unwrap_or_else(|_| "current,multi".into())
        .split(',')
        .map(ClientRuntime::parse)
        .collect();
    let first = runtimes[0];
    let encrypted = Endpoint::age_rt(WRITE).on(first);
    let case = |name: &str, forwarder: Forwarder, endpoint: &Endpoint, bytes: u64| Case {
        name: name.into(),
        forwarder,
        producer: endpoint.clone(),
        consumer: endpoint.clone(),
        bytes,
    };
    let ours = Forwarder::Relay(Kind::Ours);
    let mut cases = Vec::new();
    let socat = common::process::have_tool("socat");
    if socat {
        let name = "socat forwarder (raw copy)";
        cases.push(case(name, Forwarder::Socat, &Endpoint::Tcp, mib * MIB));
    }
    let plain = Endpoint::plain(WRITE).on(first);
    let plain_name = |r: ClientRuntime| format!("zebrastream plain [{}]", r.name());
    let encrypted_name = |r: ClientRuntime| format!("zebrastream age-rt [{}]", r.name());
    for &runtime in &runtimes {
        for (name, endpoint) in [
            (plain_name(runtime), &plain),
            (encrypted_name(runtime), &encrypted),
        ] {
            let endpoint = endpoint.clone().on(runtime);
            cases.push(case(&name, ours.clone(), &endpoint, mib * MIB));
        }
    }

    println!(
        "transfer benchmark: {mib} MiB per run, best of {rounds} interleaved rounds, loopback"
    );
    let runs = best_of(&cases, rounds, "transfer");
    println!("CPU columns: producer + forwarder (socat or relay) + consumer");
    runs.iter().for_each(print_run);
    let outcome = |name: &str| runs.iter().find(|r| r.name == name).unwrap();
    let plain_rate = outcome(&plain_name(first)).mb_per_s;
    let encrypted_rate = outcome(&encrypted_name(first)).mb_per_s;
    if socat {
        println!(
            "encrypted / socat: {:5.1} %",
            100.0 * encrypted_rate / outcome("socat forwarder (raw copy)").mb_per_s
        );
    }
    println!(
        "encrypted / plain: {:5.1} %",
        100.0 * encrypted_rate / plain_rate
    );
    for &runtime in &runtimes[1..] {
        for name in [plain_name, encrypted_name] {
            let (base, this) = (outcome(&name(first)), outcome(&name(runtime)));
            let cpu = |o: &Outcome| o.cpu_per_gib().iter().sum::<f64>();
            println!(
                "{} / {}: throughput {:.2}, CPU s/GiB {:.2}",
                this.name,
                base.name,
                this.mb_per_s / base.mb_per_s,
                cpu(this) / cpu(base)
            );
        }
    }
    paced_sweep(&case, &ours, &plain, &encrypted, rounds);
    let memory = case("memory", ours, &encrypted, rss_mib * MIB);
    let memory = run(&memory, "/bench/rss");
    println!(
        "memory, {rss_mib} MiB encrypted at {:.1} MiB/s: producer peak RSS {:.1} MiB, consumer peak RSS {:.1} MiB",
        memory.mb_per_s * 1e6 / MIB as f64,
        memory.producer.rss_mib(),
        memory.consumer.rss_mib()
    );
}

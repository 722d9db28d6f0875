//! `zs-bench`: the whole performance picture in one run, on loopback
//! (`cargo bench --bench suite`, or `scripts/bench.sh`, which also installs
//! the reference relay). It measures, each producer and consumer in its
//! own process, every transfer checked byte for byte:
//!
//! 1. a raw TCP copy through a `socat` forwarder (the baseline);
//! 2. our relay with our client, plaintext and age-rt encrypted;
//! 3. our relay with `curl` as producer and consumer;
//! 4. the official Python client (`zebrastream-io` 0.5.4) through our relay,
//!    plaintext and encrypted (passphrase, age-rt);
//! 5. npm `piping-server` 1.12.9 with `curl` (the reference HTTP relay);
//!
//! then flush-to-deliver latency (small flushed writes), throughput vs
//! write size and vs concurrent streams (with the relay's peak RSS). It
//! prints a table, writes all figures as JSON (`$ZS_BENCH_JSON`, default
//! `$CARGO_TARGET_DIR/zs-bench.json`) and, with `ZS_BENCH_PLOTS=<dir>`,
//! two SVG plots into that directory.
//!
//! Sizes (MiB unless noted): `ZS_BENCH_MIB` (1024) per transfer,
//! `ZS_BENCH_PY_MIB` (64) for the Python client, `ZS_BENCH_ROUNDS` (3:
//! transfers, write sizes and stream counts are each the best of that many
//! interleaved runs, since other load only slows a run down),
//! `ZS_BENCH_FLUSHES` (1000 messages), `ZS_BENCH_SWEEP_MIB` (256) per
//! write-size point, `ZS_BENCH_STREAMS_MIB` (1024, split over the streams
//! of each point, at least 1 MiB each) and `ZS_BENCH_STREAMS`
//! (`1,10,100,1000`). Without `--bench` (i.e. under `cargo test --bench
//! suite`) everything runs at a smoke size.

#[path = "../common/mod.rs"]
mod common;
mod latency;
mod plot;
mod report;
#[path = "../../tests/support/mod.rs"]
mod support;
mod swarm;

use std::path::PathBuf;

use common::case::{best_of, Case, Endpoint, Forwarder, WRITE};
use common::server::{piping_server_path, Kind};
use common::{env_u64, MIB};
use report::{ChunkPoint, Suite};

/// The sizes of one run.
struct Sizes {
    bytes: u64,
    python_bytes: u64,
    rounds: u64,
    flushes: usize,
    sweep_bytes: u64,
    streams_bytes: u64,
    streams: Vec<usize>,
}

impl Sizes {
    fn from_env() -> Sizes {
        let bench = common::benching();
        let pick =
            |name: &str, full: u64, smoke: u64| env_u64(name, if bench { full } else { smoke });
        let streams = std::env::var("ZS_BENCH_STREAMS")
            .unwrap_or_else(|_| if bench { "1,10,100,1000" } else { "1,10,50" }.into());
        Sizes {
            bytes: pick("ZS_BENCH_MIB", 1024, 8) * MIB,
            python_bytes: pick("ZS_BENCH_PY_MIB", 64, 1) * MIB,
            rounds: pick("ZS_BENCH_ROUNDS", 3, 1),
            flushes: pick("ZS_BENCH_FLUSHES", 1000, 50) as usize,
            sweep_bytes: pick("ZS_BENCH_SWEEP_MIB", 256, 4) * MIB,
            streams_bytes: pick("ZS_BENCH_STREAMS_MIB", 1024, 16) * MIB,
            streams: streams
                .split(',')
                .filter_map(|s| s.trim().parse().ok())
                .collect(),
        }
    }
}

fn main() {
    if std::env::var("ZS_BENCH_ROLE").as_deref() == Ok(swarm::ROLE) {
        return swarm::play();
    }
    if common::play_child_role() {
        return;
    }
    common::process::raise_fd_limit();
    let sizes = Sizes::from_env();
    let mut suite = Suite::new();
    println!(
        "zs-bench: {} MiB per transfer ({} MiB Python), best of {} rounds, loopback",
        sizes.bytes / MIB,
        sizes.python_bytes / MIB,
        sizes.rounds
    );

    let cases = cases(&sizes);
    eprintln!("== transfers");
    suite.cases = best_of(&cases, sizes.rounds, "suite");

    eprintln!("== flush-to-deliver latency");
    suite.latency = vec![
        latency::measure(sizes.flushes, false),
        latency::measure(sizes.flushes, true),
    ];

    eprintln!("== throughput vs write size");
    suite.chunk_sizes = chunk_sweep(&sizes);

    eprintln!("== throughput vs concurrent streams");
    for &streams in &sizes.streams {
        let per_stream = (sizes.streams_bytes / streams as u64).max(MIB);
        let point = (0..sizes.rounds.max(1))
            .map(|_| swarm::measure(streams, per_stream))
            .max_by(|a, b| a.mb_per_s.total_cmp(&b.mb_per_s))
            .expect("at least one round");
        eprintln!(
            "  {streams:>5} streams: {:8.1} MB/s, relay peak RSS {:.1} MiB",
            point.mb_per_s,
            point.relay.rss_mib()
        );
        suite.streams.push(point);
    }

    suite.print();
    suite.write_json();
    if let Some(dir) = std::env::var_os("ZS_BENCH_PLOTS") {
        suite.plot(&PathBuf::from(dir));
    }
}

/// The transfer cases 1–5 (those whose tools are missing are skipped with a note).
fn cases(sizes: &Sizes) -> Vec<Case> {
    let encrypted = Endpoint::age_rt(WRITE);
    let case = |name: &str, forwarder: Forwarder, producer: &Endpoint, consumer: &Endpoint| Case {
        name: name.into(),
        forwarder,
        producer: producer.clone(),
        consumer: consumer.clone(),
        bytes: sizes.bytes,
    };
    let ours = Forwarder::Relay(Kind::Ours);
    let mut cases = Vec::new();
    if common::process::have_tool("socat") {
        cases.push(case(
            report::SOCAT,
            Forwarder::Socat,
            &Endpoint::Tcp,
            &Endpoint::Tcp,
        ));
    }
    cases.push(case(
        report::PLAIN,
        ours.clone(),
        &Endpoint::plain(WRITE),
        &Endpoint::plain(WRITE),
    ));
    cases.push(case(report::AGE_RT, ours.clone(), &encrypted, &encrypted));
    let curl = common::process::have_tool("curl");
    if curl {
        cases.push(case(
            report::CURL,
            ours.clone(),
            &Endpoint::Curl,
            &Endpoint::Curl,
        ));
    }
    if let Some(cli) = support::py_cli() {
        for (name, passphrase) in [
            (report::PY_PLAIN, None),
            (report::PY_AGE_RT, Some("bench passphrase".to_string())),
        ] {
            let python = Endpoint::Python {
                cli: cli.clone(),
                passphrase,
            };
            let mut python_case = case(name, ours.clone(), &python, &python);
            python_case.bytes = sizes.python_bytes;
            cases.push(python_case);
        }
    }
    match piping_server_path() {
        Some(path) if curl => cases.push(case(
            report::PIPING,
            Forwarder::Relay(Kind::Piping(path)),
            &Endpoint::Curl,
            &Endpoint::Curl,
        )),
        _ => println!("note: piping-server not found (run scripts/bench.sh), its case is skipped"),
    }
    cases
}

/// Our client through our relay with writes of 1 KiB … 256 KiB, plain and
/// age-rt, best of the rounds like the transfer cases.
fn chunk_sweep(sizes: &Sizes) -> Vec<ChunkPoint> {
    let mut points = Vec::new();
    let mut cases = Vec::new();
    for write_kib in [1usize, 4, 16, 64, 256] {
        for encrypted in [false, true] {
            let endpoint = if encrypted {
                Endpoint::age_rt(write_kib * 1024)
            } else {
                Endpoint::plain(write_kib * 1024)
            };
            let mode = if encrypted { "age-rt" } else { "plain" };
            cases.push(Case {
                name: format!("{write_kib} KiB writes, {mode}"),
                forwarder: Forwarder::Relay(Kind::Ours),
                producer: endpoint.clone(),
                consumer: endpoint,
                bytes: sizes.sweep_bytes,
            });
            points.push((write_kib, encrypted));
        }
    }
    let outcomes = best_of(&cases, sizes.rounds, "sweep");
    points
        .into_iter()
        .zip(outcomes)
        .map(|((write_kib, encrypted), outcome)| ChunkPoint {
            write_kib,
            encrypted,
            outcome,
        })
        .collect()
}

//! Scale-out bench: 1, 2 and 3 relay nodes behind nginx running
//! `deploy/nginx.conf`, on loopback. For each node count it reports:
//!
//! - aggregate throughput of `ZS_BENCH_PAIRS` concurrent plain transfers of
//!   `ZS_BENCH_MIB` MiB each, producer → nginx → node → nginx → consumer;
//! - Connect latency p50/p99: how long a producer's Connect call takes to
//!   return when its consumer is already waiting (`ZS_BENCH_CONNECTS` samples).
//!
//! `cargo bench --bench scaleout` (needs nginx: `scripts/setup.sh` installs it).
//! Without `--bench` (e.g. `cargo test --benches`) it runs a tiny smoke size.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::balancer::{free_port, start_balancer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zebrastream::client::{Config, Opening, Sealing, StreamReader, StreamWriter};
use zebrastream::relay::{Relay, RelayConfig};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(connect_url: &str, path: &str) -> Config {
    Config::builder(path)
        .connect_url(connect_url)
        .no_access_token()
        .build()
        .expect("config")
}

/// One transfer of `bytes` on `path`; returns when both sides finished.
async fn transfer(connect_url: String, path: String, bytes: u64) {
    let wc = config(&connect_url, &path);
    let rc = config(&connect_url, &path);
    let producer = tokio::spawn(async move {
        let block = vec![0x5au8; 256 * 1024];
        let mut w = StreamWriter::connect(&wc, &Sealing::Plain)
            .await
            .expect("writer");
        let mut left = bytes;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            w.write_all(&block[..n]).await.expect("write");
            left -= n as u64;
        }
        w.shutdown().await.expect("shutdown");
    });
    let mut r = StreamReader::connect(&rc, &Opening::Plain)
        .await
        .expect("reader");
    let mut buf = vec![0u8; 256 * 1024];
    let mut got = 0u64;
    loop {
        let n = r.read(&mut buf).await.expect("read");
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    producer.await.expect("producer");
    assert_eq!(got, bytes, "{path}: byte count");
}

/// Producer Connect latency with the consumer already waiting on the path.
async fn connect_latency(connect_url: String, path: String) -> Duration {
    let rc = config(&connect_url, &path);
    let reader = tokio::spawn(async move {
        let mut r = StreamReader::connect(&rc, &Opening::Plain)
            .await
            .expect("reader");
        let mut sink = Vec::new();
        r.read_to_end(&mut sink).await.expect("read");
    });
    // Let the consumer's Connect wait reach the relay first.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let started = Instant::now();
    let mut w = StreamWriter::connect(&config(&connect_url, &path), &Sealing::Plain)
        .await
        .expect("writer");
    let latency = started.elapsed();
    w.write_all(b"x").await.expect("write");
    w.shutdown().await.expect("shutdown");
    reader.await.expect("reader task");
    latency
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let pairs = env_or("ZS_BENCH_PAIRS", if full { 8 } else { 2 });
    let mib = env_or("ZS_BENCH_MIB", if full { 128 } else { 1 });
    let connects = env_or("ZS_BENCH_CONNECTS", if full { 200 } else { 5 });
    let Some(nginx) = support::balancer::nginx() else {
        eprintln!("scaleout bench: nginx not found (run scripts/setup.sh)");
        return;
    };
    println!("| nodes | pairs × size | aggregate throughput | Connect p50 | Connect p99 |");
    println!("|---:|---|---:|---:|---:|");
    // 0 nodes: one relay without the balancer, the baseline nginx is measured against.
    for nodes in 0..=3 {
        let port = free_port();
        let public = format!("http://127.0.0.1:{port}");
        let mut handles = Vec::new();
        for _ in 0..nodes.max(1) {
            let config = match nodes {
                0 => RelayConfig::open_loopback(),
                // Behind nginx, as deploy/ sets it up: nginx is a trusted proxy.
                _ => RelayConfig::open_loopback()
                    .trusted_proxy(std::net::Ipv4Addr::LOCALHOST.into())
                    .public_url(public.clone()),
            };
            handles.push(Relay::bind(config).await.expect("relay"));
        }
        let addrs: Vec<_> = handles.iter().map(|h| h.local_addr()).collect();
        let balancer = match nodes {
            0 => None,
            _ => Some(start_balancer(&nginx, port, &addrs).await),
        };
        let connect_url = match &balancer {
            Some(balancer) => format!("{}/v0", balancer.url),
            None => handles[0].connect_url(),
        };
        let label = match nodes {
            0 => "1 (direct, no nginx)".to_owned(),
            n => n.to_string(),
        };

        let bytes = mib * 1024 * 1024;
        let started = Instant::now();
        let runs: Vec<_> = (0..pairs)
            .map(|i| {
                tokio::spawn(transfer(
                    connect_url.clone(),
                    format!("/bench/{nodes}/t{i}"),
                    bytes,
                ))
            })
            .collect();
        for run in runs {
            run.await.expect("transfer");
        }
        let secs = started.elapsed().as_secs_f64();
        let throughput = (pairs * bytes) as f64 / secs / 1e6;

        let mut latencies = Vec::new();
        for i in 0..connects {
            latencies
                .push(connect_latency(connect_url.clone(), format!("/bench/{nodes}/c{i}")).await);
        }
        latencies.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "| {label} | {pairs} × {mib} MiB | {throughput:.0} MB/s | {:.2} ms | {:.2} ms |",
            ms(percentile(&latencies, 0.50)),
            ms(percentile(&latencies, 0.99))
        );
        drop(balancer);
        for h in handles {
            h.shutdown().await;
        }
    }
}

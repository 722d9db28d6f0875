//! Relay benchmark (a bench binary: `cargo bench --bench relay`, or
//! `scripts/bench-relay.sh`, which also installs the reference relay).
//!
//! Compares our relay with npm `piping-server` (the reference HTTP relay)
//! and a raw `socat` forwarder, each in its own process:
//!
//! 1. throughput: one `curl` chunked PUT → relay → `curl` GET of
//!    `ZS_BENCH_BYTES` (default 1 GiB), best of `ZS_BENCH_ROUNDS` (3),
//!    relays alternating; curl is fed from and drained into pipes by this
//!    process (see `common::case`); a `socat` forwarder between a raw TCP
//!    sender and sink (no HTTP) is the plain-TCP baseline;
//! 2. memory: relay RSS growth with `ZS_BENCH_WAITERS` (1000) consumers,
//!    then as many producers, then (ours only) Connect waiters waiting, per
//!    waiter;
//! 3. memory: peak relay RSS growth during `ZS_BENCH_STREAMS` (100)
//!    concurrent transfers of `ZS_BENCH_STREAM_BYTES` (100 MiB) each, per stream.
//!
//! `ZS_BENCH_ONLY` (a comma-separated subset of `throughput,waiters,streams`)
//! runs only those parts.
//!
//! `PIPING_SERVER` names the piping-server executable (default:
//! `$CARGO_TARGET_DIR/bench-tools/node_modules/.bin/piping-server`); a
//! missing one, or a missing `curl`/`socat`, is skipped with a note.

mod common;

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use common::case::{best_of, Case, Endpoint, Forwarder};
use common::process::{have_tool, rss_kib};
use common::server::{piping_server_path, Kind, Server};
use common::{env_u64, MIB};

fn main() {
    if common::play_child_role() {
        return;
    }
    // `cargo bench` measures; `cargo test --benches` (CI) runs every part
    // once at smoke size, to keep it working.
    let full = common::benching();
    let bytes = env_u64("ZS_BENCH_BYTES", if full { 1024 } else { 16 } * MIB);
    let rounds = env_u64("ZS_BENCH_ROUNDS", if full { 3 } else { 1 });
    let waiters = env_u64("ZS_BENCH_WAITERS", if full { 1000 } else { 50 }) as usize;
    let streams = env_u64("ZS_BENCH_STREAMS", if full { 100 } else { 4 }) as usize;
    let stream_bytes = env_u64("ZS_BENCH_STREAM_BYTES", if full { 100 } else { 4 } * MIB);
    let only = std::env::var("ZS_BENCH_ONLY").ok();
    let part = |name: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|p| p == name))
    };

    let mut kinds = vec![Kind::Ours];
    if let Some(p) = piping_server_path() {
        kinds.push(Kind::Piping(p));
    } else {
        println!("note: piping-server not found (run scripts/bench-relay.sh), its part is skipped");
    }

    let mut cases = Vec::new();
    if part("throughput") {
        println!(
            "== throughput: {} MiB, one curl PUT -> relay -> curl GET, best of {rounds}",
            bytes / MIB
        );
        if have_tool("curl") {
            cases.extend(kinds.iter().map(|kind| Case {
                name: kind.name(),
                forwarder: Forwarder::Relay(kind.clone()),
                producer: Endpoint::Curl,
                consumer: Endpoint::Curl,
                bytes,
            }));
        }
    }
    if part("throughput") && have_tool("socat") {
        cases.push(Case {
            name: "socat forwarder (raw TCP)".into(),
            forwarder: Forwarder::Socat,
            producer: Endpoint::Tcp,
            consumer: Endpoint::Tcp,
            bytes,
        });
    }
    for run in best_of(&cases, rounds, "relay") {
        println!(
            "  best: {:<34} {:6.3} GB/s, relay peak RSS {:.1} MiB",
            run.name,
            run.mb_per_s / 1e3,
            run.relay.rss_mib()
        );
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for waiting in [Waiting::Consumers, Waiting::Producers, Waiting::Connect] {
        if !part("waiters") {
            break;
        }
        println!("== memory: {waiters} waiting {}", waiting.name());
        for kind in &kinds {
            if waiting == Waiting::Connect && !matches!(kind, Kind::Ours) {
                continue; // piping-server has no Connect API
            }
            let server = Server::start(kind);
            let (before, after) = runtime.block_on(waiting_rss(&server, waiters, waiting));
            println!(
                "  {:<34} RSS {:6} KiB -> {:6} KiB: {:5.2} KiB per waiter",
                kind.name(),
                before,
                after,
                (after.saturating_sub(before)) as f64 / waiters as f64
            );
        }
    }
    if part("streams") {
        println!(
            "== memory: {streams} concurrent transfers of {} MiB each",
            stream_bytes / MIB
        );
    }
    for kind in kinds.iter().filter(|_| part("streams")) {
        let server = Server::start(kind);
        let (before, peak, secs) = runtime.block_on(concurrent_rss(&server, streams, stream_bytes));
        println!(
            "  {:<34} RSS {:6} KiB -> peak {:6} KiB: {:6.1} KiB per active stream ({:.2} GB/s total)",
            kind.name(),
            before,
            peak,
            (peak.saturating_sub(before)) as f64 / streams as f64,
            (streams as u64 * stream_bytes) as f64 / secs / 1e9
        );
    }
}

async fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.set_nodelay(true).unwrap();
    s
}

async fn send_get(port: u16, path: &str) -> TcpStream {
    let mut s = connect(port).await;
    let head = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s
}

/// A small transfer so both relays have their steady-state allocations.
async fn warm_up(server: &Server) {
    let path = format!("{}/warm", server.prefix);
    let mut get = send_get(server.port, &path).await;
    // Read while the upload runs: a relay may not buffer it all.
    let reader = tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = get.read_to_end(&mut sink).await;
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    put_chunked(server.port, &path, 4 * MIB).await;
    reader.await.unwrap();
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

/// Which requests wait in the memory measurement.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// Raw `GET`s.
    Consumers,
    /// Raw chunked `PUT`s that already sent a first 1 KiB chunk.
    Producers,
    /// Connect-API `GET /v0/<path>?mode=await-reader` (our relay only).
    Connect,
}

impl Waiting {
    fn name(self) -> &'static str {
        match self {
            Waiting::Consumers => "consumers (GET)",
            Waiting::Producers => "producers (chunked PUT, 1 KiB sent)",
            Waiting::Connect => "Connect waiters (GET /v0/...?mode=await-reader)",
        }
    }
}

/// RSS before and after `n` requests of one kind wait on distinct paths.
async fn waiting_rss(server: &Server, n: usize, waiting: Waiting) -> (u64, u64) {
    warm_up(server).await;
    settle().await;
    let before = server.rss_kib();
    let mut sockets = Vec::with_capacity(n);
    for i in 0..n {
        let path = format!("{}/wait/{i}", server.prefix);
        let socket = match waiting {
            Waiting::Consumers => send_get(server.port, &path).await,
            Waiting::Producers => {
                let mut s = connect(server.port).await;
                let head = format!(
                    "PUT {path} HTTP/1.1\r\nHost: bench\r\nTransfer-Encoding: chunked\r\n\r\n"
                );
                s.write_all(head.as_bytes()).await.unwrap();
                s.write_all(format!("400\r\n{}\r\n", "x".repeat(1024)).as_bytes())
                    .await
                    .unwrap();
                s
            }
            Waiting::Connect => {
                send_get(server.port, &format!("/v0/wait/{i}?mode=await-reader")).await
            }
        };
        sockets.push(socket);
    }
    settle().await;
    let after = server.rss_kib();
    drop(sockets);
    (before, after)
}

/// A chunked PUT of `bytes` zeros in 64 KiB chunks; reads the response to its end.
async fn put_chunked(port: u16, path: &str, bytes: u64) {
    let mut s = connect(port).await;
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: bench\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    // Read the status lines concurrently (full duplex).
    let reader = tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = rd.read_to_end(&mut sink).await;
    });
    let chunk = vec![0u8; 64 * 1024];
    let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
    framed.extend_from_slice(&chunk);
    framed.extend_from_slice(b"\r\n");
    let mut left = bytes;
    while left >= chunk.len() as u64 {
        wr.write_all(&framed).await.unwrap();
        left -= chunk.len() as u64;
    }
    if left > 0 {
        wr.write_all(format!("{left:x}\r\n").as_bytes())
            .await
            .unwrap();
        wr.write_all(&chunk[..left as usize]).await.unwrap();
        wr.write_all(b"\r\n").await.unwrap();
    }
    wr.write_all(b"0\r\n\r\n").await.unwrap();
    reader.await.unwrap();
}

/// RSS before, peak RSS during `n` concurrent transfers, and their wall time.
async fn concurrent_rss(server: &Server, n: usize, bytes: u64) -> (u64, u64, f64) {
    warm_up(server).await;
    settle().await;
    let before = server.rss_kib();
    let pid = server.pid();
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = tokio::spawn({
        let sampling = sampling.clone();
        async move {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            peak
        }
    });
    let start = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..n {
        let (port, path) = (server.port, format!("{}/many/{i}", server.prefix));
        tasks.push(tokio::spawn(async move {
            let mut get = send_get(port, &path).await;
            let consumer = tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut total = 0u64;
                loop {
                    match get.read(&mut buf).await {
                        Ok(0) | Err(_) => break total,
                        Ok(k) => total += k as u64,
                    }
                }
            });
            tokio::time::sleep(Duration::from_millis(200)).await;
            put_chunked(port, &path, bytes).await;
            let received = consumer.await.unwrap();
            assert!(
                received >= bytes,
                "stream {i}: only {received} of {bytes} bytes"
            );
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.await.unwrap();
    (before, peak, secs)
}

//! Resume (issue #18), measured in one run:
//!
//! 1. **Cost**: `ZS_BENCH_MIB` MiB (default 512) age-rt streams through an
//!    in-process relay on loopback, writer and reader on current-thread
//!    runtimes of their own, with resume off and on in interleaved rounds
//!    (`ZS_BENCH_ROUNDS`, default 5): median wall time, process CPU per GiB,
//!    and the on/off ratios.
//! 2. **Recovery**: the same transfer through a loopback "link" (a proxy
//!    that can stop forwarding every connection, old and new, as a link
//!    that goes down does), taken down for `ZS_BENCH_OUTAGE_MS` (default
//!    4000, above the 1 s stall timeout used here) `ZS_BENCH_OUTAGES`
//!    times (default 9): the time from the link coming back to the next
//!    plaintext byte at the reader, p50 and max.
//!
//! `cargo bench --bench resume`; `cargo test --benches` runs it once at
//! smoke size. The real network path (veth between namespaces, TCP's own
//! back-off) is measured by `tests/net_path.rs`, which prints the same
//! recovery time for its outages.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zebrastream::cipher::Format;
use zebrastream::client::{Config, Opening, Resume, Sealing, StreamReader, StreamWriter};
use zebrastream::relay::{Relay, RelayConfig};

const MIB: u64 = 1024 * 1024;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// User + system CPU time of this process so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the
    // 12th, stime the 13th of what follows ") ".
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// A loopback link to the relay: forwards every connection until taken
/// down, then forwards nothing (no error, no reset) until brought up.
struct Link {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
}

impl Link {
    async fn start(upstream: SocketAddr) -> Link {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let state = up.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let up = state.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::join!(forward(cr, sw, up.clone()), forward(sr, cw, up));
                });
            }
        });
        Link { addr, up }
    }

    fn set(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
    }
}

async fn forward(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    up: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while !up.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        while !up.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

fn config(base: &str, path: &str, resume: bool) -> Config {
    let builder = Config::builder(path)
        .connect_url(format!("{base}/v0"))
        .connect_timeout(Duration::from_secs(30));
    if resume {
        builder.resume(
            Resume::default()
                .with_stall_timeout(Duration::from_secs(1))
                .with_buffer(64 << 20),
        )
    } else {
        builder
    }
    .build()
    .unwrap()
}

/// Runs one transfer of `bytes` with writer and reader on threads of their
/// own; `on_read` sees the running total after every read.
fn transfer(
    writer_base: &str,
    reader_base: &str,
    path: &str,
    resume: bool,
    bytes: u64,
    on_read: impl Fn(u64) + Send + 'static,
) {
    let id = age::x25519::Identity::generate();
    let sealing = Sealing::recipients(vec![Box::new(id.to_public())], Format::AgeRt);
    let opening = Opening::identities(vec![Box::new(id)]);
    let (wc, rc) = (
        config(writer_base, path, resume),
        config(reader_base, path, resume),
    );
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let writer = std::thread::spawn(move || {
        runtime().block_on(async {
            let mut w = StreamWriter::connect(&wc, &sealing).await.unwrap();
            let block = vec![0x5au8; 256 * 1024];
            let mut left = bytes;
            while left > 0 {
                let n = left.min(block.len() as u64) as usize;
                w.write_all(&block[..n]).await.unwrap();
                left -= n as u64;
            }
            w.shutdown().await.unwrap();
        })
    });
    let reader = std::thread::spawn(move || {
        runtime().block_on(async {
            let mut r = StreamReader::connect(&rc, &opening).await.unwrap();
            let mut buf = vec![0u8; 256 * 1024];
            let mut total = 0u64;
            loop {
                let n = r.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                total += n as u64;
                on_read(total);
            }
            assert_eq!(total, bytes);
            r.confirm().await.unwrap();
        })
    });
    writer.join().unwrap();
    reader.join().unwrap();
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

fn main() {
    // `ZS_TRACE=zebrastream=debug` logs the clients and the relay to stderr.
    if std::env::var_os("ZS_TRACE").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("ZS_TRACE"))
            .with_writer(std::io::stderr)
            .init();
    }
    let full = std::env::args().any(|a| a == "--bench");
    let bytes = env_u64("ZS_BENCH_MIB", if full { 512 } else { 8 }) * MIB;
    let rounds = env_u64("ZS_BENCH_ROUNDS", if full { 5 } else { 1 });
    let outages = env_u64("ZS_BENCH_OUTAGES", if full { 9 } else { 1 });
    let outage = Duration::from_millis(env_u64("ZS_BENCH_OUTAGE_MS", 4000));

    let relay_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let relay = relay_rt
        .block_on(Relay::bind(RelayConfig::open_loopback()))
        .unwrap();
    let base = format!("http://{}", relay.local_addr());

    // 1. Cost: off and on, interleaved.
    let mut wall = [Vec::new(), Vec::new()];
    let mut cpu = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for (i, resume) in [false, true].into_iter().enumerate() {
            let (started, cpu_before) = (Instant::now(), cpu_time());
            let path = format!("/bench/cost-{round}-{resume}");
            transfer(&base, &base, &path, resume, bytes, |_| {});
            let gib = bytes as f64 / (1u64 << 30) as f64;
            wall[i].push(bytes as f64 / started.elapsed().as_secs_f64() / 1e6);
            cpu[i].push((cpu_time() - cpu_before).as_secs_f64() / gib);
        }
    }
    let (off, on) = (median(wall[0].clone()), median(wall[1].clone()));
    let (cpu_off, cpu_on) = (median(cpu[0].clone()), median(cpu[1].clone()));
    println!(
        "resume cost, {} MiB age-rt, median of {rounds} interleaved rounds: off {off:.0} MB/s, \
         on {on:.0} MB/s (on/off {:.3}); CPU off {cpu_off:.2} s/GiB, on {cpu_on:.2} s/GiB \
         (on/off {:.3})",
        bytes / MIB,
        on / off,
        cpu_on / cpu_off
    );

    // 2. Recovery: the link down for `outage`, then up; time to the next byte.
    let link = relay_rt.block_on(Link::start(relay.local_addr()));
    let link_base = format!("http://{}", link.addr);
    let link = Arc::new(link);
    let mut recoveries = Vec::new();
    for n in 0..outages {
        let received = Arc::new(AtomicU64::new(0));
        let last_byte_at = Arc::new(Mutex::new(Instant::now()));
        let (seen, at) = (received.clone(), last_byte_at.clone());
        let path = format!("/bench/recovery-{n}");
        let run_base = link_base.clone();
        let total = bytes.max(64 * MIB);
        let run = std::thread::spawn(move || {
            transfer(&run_base, &run_base, &path, true, total, move |t| {
                seen.store(t, Ordering::SeqCst);
                *at.lock().unwrap() = Instant::now();
            })
        });
        // Down once a quarter has arrived, then up after the outage.
        while received.load(Ordering::SeqCst) < total / 4 {
            std::thread::sleep(Duration::from_millis(1));
        }
        link.set(false);
        std::thread::sleep(outage);
        let before = received.load(Ordering::SeqCst);
        let back = Instant::now();
        link.set(true);
        while received.load(Ordering::SeqCst) == before {
            std::thread::sleep(Duration::from_millis(1));
        }
        let flowing = *last_byte_at.lock().unwrap();
        recoveries.push(flowing.saturating_duration_since(back).as_secs_f64());
        run.join().unwrap();
    }
    let p50 = median(recoveries.clone());
    let max = recoveries.iter().cloned().fold(0.0, f64::max);
    println!(
        "resume recovery, {} outages of {} ms (stall timeout 1 s): link back to bytes flowing \
         p50 {:.0} ms, max {:.0} ms ({:?})",
        outages,
        outage.as_millis(),
        p50 * 1e3,
        max * 1e3,
        recoveries
            .iter()
            .map(|s| (s * 1e3).round() as u64)
            .collect::<Vec<_>>()
    );
    relay.abort();
}

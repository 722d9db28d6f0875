//! Loopback transfer benchmark (a bench binary, `harness = false`).
//!
//! Measures, in one run on the same machine:
//! - a raw copy through a `socat` TCP forwarder (the baseline);
//! - our client through our relay, plaintext;
//! - our client through our relay, encrypted (age-rt, X25519 recipient);
//! - the peak RSS of the producer and consumer processes while streaming a
//!   larger encrypted transfer.
//!
//! Producer and consumer run as child processes (this binary re-executed with
//! `ZS_BENCH_ROLE`), so their memory and CPU time are measured without the
//! relay's. The three throughput cases run interleaved for `ZS_BENCH_ROUNDS`
//! rounds (default 3) and the best round is reported, since other load on
//! the machine only ever slows a round down; CPU seconds per GiB are
//! reported too, as they hardly depend on that load. Sizes: `ZS_BENCH_MIB`
//! (default 1024) and `ZS_BENCH_RSS_MIB` (default 4096).
//!
//! ```text
//! cargo bench --bench transfer
//! ZS_BENCH_MIB=256 ZS_BENCH_RSS_MIB=512 cargo bench --bench transfer
//! ```

use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zebrastream::client::{Config, Encryption, StreamReader, StreamWriter};
use zebrastream::relay::{Relay, RelayConfig};

const MIB: u64 = 1024 * 1024;
const WRITE_SIZE: usize = 64 * 1024;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| u64::from_str(&v).ok())
        .unwrap_or(default)
}

/// The peak resident set size of this process, in KiB (Linux).
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// User + system CPU seconds of process `pid` ("self" for this one), from `/proc`.
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name may contain spaces: fields start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after the name.
    let ticks: u64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|v| v.parse::<u64>().ok()).sum())
        .unwrap_or(0);
    ticks as f64 / CLOCK_TICKS_PER_SECOND
}

/// `sysconf(_SC_CLK_TCK)` is 100 on every Linux configuration in practice.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

fn child_config() -> Config {
    let var = |name: &str| std::env::var(name).expect(name);
    let mut builder = Config::builder(var("ZS_BENCH_PATH"))
        .connect_url(var("ZS_BENCH_URL"))
        .no_access_token();
    if let Ok(key) = std::env::var("ZS_BENCH_KEY") {
        let identity = age::x25519::Identity::from_str(&key).expect("identity");
        builder = builder.encryption(match var("ZS_BENCH_ROLE").as_str() {
            "produce" => Encryption::recipients(
                vec![Box::new(identity.to_public())],
                zebrastream::cipher::Format::AgeRt,
            ),
            _ => Encryption::identities(vec![Box::new(identity)]),
        });
    }
    builder.build().expect("config")
}

/// Child process: produce or consume `ZS_BENCH_BYTES`, print
/// `<bytes> <transfer seconds> <peak RSS KiB> <CPU seconds>`.
fn child(role: &str) {
    let bytes = env_u64("ZS_BENCH_BYTES", 0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let config = child_config();
    let (moved, took) = runtime.block_on(async {
        match role {
            "produce" => {
                let mut writer = StreamWriter::connect(&config).await.expect("connect");
                let started = Instant::now();
                let block = vec![0x5au8; WRITE_SIZE];
                let mut left = bytes;
                while left > 0 {
                    let n = left.min(WRITE_SIZE as u64) as usize;
                    writer.write_all(&block[..n]).await.expect("write");
                    left -= n as u64;
                }
                writer.shutdown().await.expect("shutdown");
                (writer.bytes_written(), started.elapsed())
            }
            _ => {
                let mut reader = StreamReader::connect(&config).await.expect("connect");
                let started = Instant::now();
                let mut buf = vec![0u8; WRITE_SIZE];
                loop {
                    if reader.read(&mut buf).await.expect("read") == 0 {
                        break;
                    }
                }
                (reader.bytes_read(), started.elapsed())
            }
        }
    });
    assert_eq!(moved, bytes, "{role}: moved {moved} of {bytes} bytes");
    println!(
        "{moved} {} {} {}",
        took.as_secs_f64(),
        peak_rss_kib(),
        cpu_seconds("self")
    );
}

struct ChildReport {
    seconds: f64,
    rss_kib: u64,
    cpu: f64,
}

fn spawn_role(
    role: &str,
    url: &str,
    path: &str,
    bytes: u64,
    key: Option<&str>,
) -> std::process::Child {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env("ZS_BENCH_ROLE", role)
        .env("ZS_BENCH_URL", url)
        .env("ZS_BENCH_PATH", path)
        .env("ZS_BENCH_BYTES", bytes.to_string())
        .env_remove("ZEBRASTREAM_ACCESS_TOKEN")
        .stdout(Stdio::piped());
    match key {
        Some(key) => command.env("ZS_BENCH_KEY", key),
        None => command.env_remove("ZS_BENCH_KEY"),
    };
    command.spawn().expect("spawn child")
}

fn wait_report(child: std::process::Child) -> ChildReport {
    let output = child.wait_with_output().expect("child");
    assert!(output.status.success(), "child failed: {:?}", output.status);
    let text = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<&str> = text.split_whitespace().collect();
    ChildReport {
        seconds: fields[1].parse().unwrap(),
        rss_kib: fields[2].parse().unwrap(),
        cpu: fields[3].parse().unwrap(),
    }
}

/// One measured transfer.
struct Run {
    mib_per_s: f64,
    /// CPU seconds per GiB: producer (or writer), relay (or socat), consumer (or sink).
    cpu_per_gib: [f64; 3],
    rss_kib: [u64; 2],
}

/// One client transfer through the relay (which runs in this process).
fn client_run(url: &str, path: &str, bytes: u64, key: Option<&str>) -> Run {
    let relay_cpu_before = cpu_seconds("self");
    let consumer = spawn_role("consume", url, path, bytes, key);
    let producer = spawn_role("produce", url, path, bytes, key);
    let p = wait_report(producer);
    let c = wait_report(consumer);
    let relay_cpu = cpu_seconds("self") - relay_cpu_before;
    let gib = bytes as f64 / (1024.0 * MIB as f64);
    Run {
        mib_per_s: (bytes / MIB) as f64 / p.seconds.max(c.seconds),
        cpu_per_gib: [p.cpu / gib, relay_cpu / gib, c.cpu / gib],
        rss_kib: [p.rss_kib, c.rss_kib],
    }
}

/// A raw copy through `socat`, or None when socat is missing. The writer and
/// the sink run in this process; their CPU time is the "producer" column.
async fn socat_run(bytes: u64) -> Option<Run> {
    let sink = tokio::net::TcpListener::bind("127.0.0.1:0").await.ok()?;
    let sink_addr = sink.local_addr().ok()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let mut socat = tokio::process::Command::new("socat")
        .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr"))
        .arg(format!("TCP:{sink_addr}"))
        .kill_on_drop(true)
        .spawn()
        .ok()?;
    let mut upstream = loop {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(stream) => break stream,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let receiver = tokio::spawn(async move {
        let (mut socket, _) = sink.accept().await.unwrap();
        let mut buf = vec![0u8; WRITE_SIZE];
        let mut total = 0u64;
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            if n == 0 {
                return total;
            }
            total += n as u64;
        }
    });
    let socat_pid = socat.id()?.to_string();
    let own_cpu_before = cpu_seconds("self");
    let started = Instant::now();
    let block = vec![0x5au8; WRITE_SIZE];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(WRITE_SIZE as u64) as usize;
        upstream.write_all(&block[..n]).await.ok()?;
        left -= n as u64;
    }
    upstream.shutdown().await.ok()?;
    let received = receiver.await.ok()?;
    let seconds = started.elapsed().as_secs_f64();
    let socat_cpu = cpu_seconds(&socat_pid);
    let own_cpu = cpu_seconds("self") - own_cpu_before;
    let _ = socat.kill().await;
    assert_eq!(received, bytes);
    let gib = bytes as f64 / (1024.0 * MIB as f64);
    Some(Run {
        mib_per_s: (bytes / MIB) as f64 / seconds,
        cpu_per_gib: [own_cpu / gib, socat_cpu / gib, 0.0],
        rss_kib: [0, 0],
    })
}

fn best(runs: &[Run]) -> &Run {
    runs.iter()
        .max_by(|a, b| a.mib_per_s.total_cmp(&b.mib_per_s))
        .expect("at least one round")
}

fn print_run(name: &str, run: &Run) {
    let [p, r, c] = run.cpu_per_gib;
    println!(
        "{name:<28} {:>8.1} MiB/s   CPU s/GiB: {p:5.2} + {r:5.2} + {c:5.2} = {:5.2}",
        run.mib_per_s,
        p + r + c
    );
}

fn main() {
    if let Ok(role) = std::env::var("ZS_BENCH_ROLE") {
        return child(&role);
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then only smoke-test.
    let benching = std::env::args().any(|a| a == "--bench");
    let (mib, rss_mib, rounds) = if benching {
        (
            env_u64("ZS_BENCH_MIB", 1024),
            env_u64("ZS_BENCH_RSS_MIB", 4096),
            env_u64("ZS_BENCH_ROUNDS", 3).max(1),
        )
    } else {
        (4, 4, 1)
    };
    let bytes = mib * MIB;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let relay = runtime
        .block_on(Relay::bind(RelayConfig::open_loopback()))
        .expect("relay");
    let url = relay.connect_url();
    let identity = age::x25519::Identity::generate();
    let key = identity.to_string();
    let key = key.expose_secret();

    println!(
        "transfer benchmark: {mib} MiB per run, best of {rounds} interleaved rounds, loopback"
    );
    let (mut socat, mut plain, mut encrypted) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        socat.extend(runtime.block_on(socat_run(bytes)));
        plain.push(client_run(
            &url,
            &format!("/bench/plain/{round}"),
            bytes,
            None,
        ));
        encrypted.push(client_run(
            &url,
            &format!("/bench/age-rt/{round}"),
            bytes,
            Some(key),
        ));
    }
    println!("CPU columns: writer/producer + forwarder (socat or relay) + consumer");
    let socat = (!socat.is_empty()).then(|| best(&socat));
    match socat {
        Some(run) => print_run("socat forwarder (raw copy)", run),
        None => println!("socat forwarder: skipped (socat not found)"),
    }
    let (plain, encrypted) = (best(&plain), best(&encrypted));
    print_run("zebrastream plain", plain);
    print_run("zebrastream age-rt (X25519)", encrypted);
    if let Some(socat) = socat {
        println!(
            "encrypted / socat: {:5.1} %",
            100.0 * encrypted.mib_per_s / socat.mib_per_s
        );
    }
    println!(
        "encrypted / plain: {:5.1} %",
        100.0 * encrypted.mib_per_s / plain.mib_per_s
    );
    let run = client_run(&url, "/bench/rss", rss_mib * MIB, Some(key));
    println!(
        "memory, {rss_mib} MiB encrypted at {:.1} MiB/s: producer peak RSS {:.1} MiB, consumer peak RSS {:.1} MiB",
        run.mib_per_s,
        run.rss_kib[0] as f64 / 1024.0,
        run.rss_kib[1] as f64 / 1024.0
    );
    runtime.block_on(relay.shutdown());
}

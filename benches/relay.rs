//! Relay benchmark (a bench binary: `cargo bench --bench relay`, or
//! `scripts/bench-relay.sh`, which also installs the reference relay).
//!
//! Compares our relay with npm `piping-server` (the reference HTTP relay)
//! and a raw `socat` forwarder, each in its own process:
//!
//! 1. throughput: one `curl` chunked PUT → relay → `curl` GET of
//!    `ZS_BENCH_BYTES` (default 1 GiB) zeros, best of `ZS_BENCH_ROUNDS` (3),
//!    relays alternating; socat (`-u -b 131072 TCP-LISTEN TCP-LISTEN`) is
//!    driven by `socat` clients (raw bytes, no HTTP): the plain-TCP baseline;
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

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const MIB: u64 = 1 << 20;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::var("ZS_BENCH_ROLE").as_deref() == Ok("relay") {
        run_relay_child();
        return;
    }
    let bytes = env_u64("ZS_BENCH_BYTES", 1024 * MIB);
    let rounds = env_u64("ZS_BENCH_ROUNDS", 3);
    let waiters = env_u64("ZS_BENCH_WAITERS", 1000) as usize;
    let streams = env_u64("ZS_BENCH_STREAMS", 100) as usize;
    let stream_bytes = env_u64("ZS_BENCH_STREAM_BYTES", 100 * MIB);
    let only = std::env::var("ZS_BENCH_ONLY").ok();
    let part = |name: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|p| p == name))
    };

    let piping = piping_server_path();
    let have = |tool: &str| {
        let ok = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !ok {
            println!("note: {tool} not found, its part is skipped");
        }
        ok
    };
    let (curl, socat) = (have("curl"), have("socat"));
    let mut kinds = vec![Kind::Ours];
    if let Some(p) = &piping {
        kinds.push(Kind::Piping(p.clone()));
    } else {
        println!("note: piping-server not found (run scripts/bench-relay.sh), its part is skipped");
    }

    if part("throughput") {
        println!(
            "== throughput: {} MiB, one curl PUT -> relay -> curl GET, best of {rounds}",
            bytes / MIB
        );
    }
    let mut best: Vec<(String, f64)> = Vec::new();
    for round in 0..if part("throughput") { rounds } else { 0 } {
        let mut contenders: Vec<(String, Option<f64>)> = Vec::new();
        if curl {
            for kind in &kinds {
                let server = Server::start(kind.clone());
                contenders.push((kind.name(), Some(curl_transfer(&server, bytes, round))));
            }
        }
        if socat {
            contenders.push((
                "socat forwarder (socat clients)".into(),
                Some(socat_transfer(bytes)),
            ));
        }
        for (name, secs) in contenders.into_iter().filter_map(|(n, s)| Some((n, s?))) {
            let rate = bytes as f64 / secs / 1e9;
            println!(
                "  round {}: {name:<34} {secs:7.3} s  {rate:6.3} GB/s",
                round + 1
            );
            match best.iter_mut().find(|(n, _)| *n == name) {
                Some((_, r)) => *r = r.max(rate),
                None => best.push((name, rate)),
            }
        }
    }
    for (name, rate) in &best {
        println!("  best: {name:<34} {rate:6.3} GB/s");
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
            let server = Server::start(kind.clone());
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
        let server = Server::start(kind.clone());
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

/// The relay alone in this process: prints its port, serves until stdin closes.
fn run_relay_child() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let relay =
            zebrastream::relay::Relay::bind(zebrastream::relay::RelayConfig::open_loopback())
                .await
                .expect("bind");
        println!("{}", relay.local_addr().port());
        // Serve until the parent closes our stdin.
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await;
        relay.abort();
    });
}

fn piping_server_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PIPING_SERVER") {
        return Some(PathBuf::from(p));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let p = target.join("bench-tools/node_modules/.bin/piping-server");
    p.exists().then_some(p)
}

#[derive(Clone)]
enum Kind {
    Ours,
    Piping(PathBuf),
}

impl Kind {
    fn name(&self) -> String {
        match self {
            Kind::Ours => "zebrastream relay".into(),
            Kind::Piping(_) => "piping-server 1.12.9 (node)".into(),
        }
    }
}

/// A relay running in its own process.
struct Server {
    child: Child,
    port: u16,
    /// URL path prefix of the data API.
    prefix: &'static str,
    _stdout: Option<ChildStdout>,
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    fn start(kind: Kind) -> Server {
        match kind {
            Kind::Ours => {
                let mut child = Command::new(std::env::current_exe().unwrap())
                    .env("ZS_BENCH_ROLE", "relay")
                    .env("RUST_LOG", "error")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("start relay child");
                let mut stdout = BufReader::new(child.stdout.take().unwrap());
                let mut line = String::new();
                stdout.read_line(&mut line).unwrap();
                let port = line.trim().parse().expect("relay child prints its port");
                Server {
                    child,
                    port,
                    prefix: "/data",
                    _stdout: Some(stdout.into_inner()),
                }
            }
            Kind::Piping(bin) => {
                let port = free_port();
                let child = Command::new(bin)
                    .args(["--host", "127.0.0.1", "--http-port", &port.to_string()])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start piping-server");
                let server = Server {
                    child,
                    port,
                    prefix: "",
                    _stdout: None,
                };
                wait_listening(port);
                server
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}{path}", self.port, self.prefix)
    }

    fn rss_kib(&self) -> u64 {
        rss_kib(self.child.id())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_listening(port: u16) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nothing listens on port {port}");
}

/// Resident set size of a process, from /proc (Linux).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn shell(cmd: &str) -> Child {
    Command::new("sh")
        .args(["-c", cmd])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn sh")
}

/// Seconds for one curl → relay → curl transfer of `bytes` zeros.
fn curl_transfer(server: &Server, bytes: u64, round: u64) -> f64 {
    let url = server.url(&format!("/bench/{round}"));
    let get = shell(&format!(
        "curl -sS --fail -o /dev/null -w '%{{size_download}}' '{url}'"
    ));
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let put = shell(&format!(
        "head -c {bytes} /dev/zero | curl -sS --fail -T - -H 'Transfer-Encoding: chunked' \
         --expect100-timeout 60 -o /dev/null '{url}'"
    ));
    let got = get.wait_with_output().unwrap();
    let elapsed = start.elapsed().as_secs_f64();
    let put = put.wait_with_output().unwrap();
    assert!(put.status.success() && got.status.success(), "curl failed");
    assert_eq!(
        String::from_utf8_lossy(&got.stdout),
        bytes.to_string(),
        "byte count"
    );
    elapsed
}

/// Seconds for `bytes` through `socat -u TCP-LISTEN TCP-LISTEN` with socat clients.
fn socat_transfer(bytes: u64) -> f64 {
    let (p1, p2) = (free_port(), free_port());
    let mut forwarder = Command::new("socat")
        .args([
            "-u",
            "-b",
            "131072",
            &format!("TCP-LISTEN:{p1},bind=127.0.0.1,reuseaddr"),
            &format!("TCP-LISTEN:{p2},bind=127.0.0.1,reuseaddr"),
        ])
        .spawn()
        .expect("socat");
    // No probing connection: socat would forward it. The clients retry until
    // each listener is up (the second one opens after the first accept).
    let retry = "retry=200,interval=0.02";
    let start = Instant::now();
    let put = shell(&format!(
        "head -c {bytes} /dev/zero | socat -u -b 131072 - TCP:127.0.0.1:{p1},{retry}"
    ));
    let get = shell(&format!(
        "socat -u -b 131072 TCP:127.0.0.1:{p2},{retry} - | wc -c"
    ));
    let got = get.wait_with_output().unwrap();
    let elapsed = start.elapsed().as_secs_f64();
    put.wait_with_output().unwrap();
    let _ = forwarder.wait();
    assert_eq!(
        String::from_utf8_lossy(&got.stdout).trim(),
        bytes.to_string()
    );
    elapsed
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
    let pid = server.child.id();
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

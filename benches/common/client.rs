//! The producer and consumer roles a bench binary plays when re-executed as
//! a child process (`ZS_BENCH_ROLE`): our client through a relay, or a raw
//! TCP sender and sink (for the socat baseline). Producers send the
//! [`Pattern`], consumers check it; both print one JSON report line.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zebrastream::client::{Config, Opening, Sealing, StreamReader, StreamWriter};

use super::env_u64;
use super::now_ns;
use super::pattern::{Delivery, Pattern, Verifier};

/// Producer with our client.
pub const PRODUCE: &str = "produce";
/// Consumer with our client.
pub const CONSUME: &str = "consume";
/// Raw TCP sender (connects to `ZS_BENCH_PORT`).
pub const TCP_PRODUCE: &str = "tcp-produce";
/// Raw TCP sink (listens, prints its port on the first line).
pub const TCP_CONSUME: &str = "tcp-consume";

/// What a producer reports.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Sent {
    /// Bytes sent.
    pub bytes: u64,
    /// When sending started (after connecting), [`now_ns`].
    pub start_ns: u64,
    /// When the producer finished (the relay confirmed delivery), [`now_ns`].
    pub end_ns: u64,
}

/// Parameters of a child role, passed through the environment.
#[derive(Debug, Clone, Default)]
pub struct RoleArgs {
    /// Connect-API URL (our client) — or empty for raw TCP.
    pub url: String,
    /// Stream path (our client).
    pub path: String,
    /// Bytes to send (producers; consumers check the total in the parent).
    pub bytes: u64,
    /// An age X25519 identity: encrypt to its recipient / decrypt with it.
    pub key: Option<String>,
    /// Size of each write (producers).
    pub write_size: usize,
    /// Pattern seed.
    pub seed: u64,
    /// TCP port to send to (raw TCP producer).
    pub port: u16,
    /// Pace of a producer of ours in MB/s (10⁶ B/s), as if behind a link
    /// of that speed; 0 sends as fast as it can.
    pub pace_mb_s: u64,
    /// The tokio runtime our client runs on.
    pub runtime: ClientRuntime,
}

impl RoleArgs {
    /// Spawns this bench binary as `role` with these arguments, stdout piped.
    pub fn spawn(&self, role: &str) -> Child {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .env("ZS_BENCH_ROLE", role)
            .env("ZS_BENCH_URL", &self.url)
            .env("ZS_BENCH_PATH", &self.path)
            .env("ZS_BENCH_BYTES", self.bytes.to_string())
            .env("ZS_BENCH_WRITE", self.write_size.to_string())
            .env("ZS_BENCH_SEED", self.seed.to_string())
            .env("ZS_BENCH_PORT", self.port.to_string())
            .env("ZS_BENCH_PACE", self.pace_mb_s.to_string())
            .env(RUNTIME_ENV, self.runtime.name())
            .env_remove("ZEBRASTREAM_ACCESS_TOKEN")
            .stdout(Stdio::piped());
        match &self.key {
            Some(key) => command.env("ZS_BENCH_KEY", key),
            None => command.env_remove("ZS_BENCH_KEY"),
        };
        command.spawn().expect("spawn child")
    }

    fn from_env() -> RoleArgs {
        RoleArgs {
            url: std::env::var("ZS_BENCH_URL").unwrap_or_default(),
            path: std::env::var("ZS_BENCH_PATH").unwrap_or_default(),
            bytes: env_u64("ZS_BENCH_BYTES", 0),
            key: std::env::var("ZS_BENCH_KEY").ok(),
            write_size: env_u64("ZS_BENCH_WRITE", 64 * 1024) as usize,
            seed: env_u64("ZS_BENCH_SEED", 0),
            port: env_u64("ZS_BENCH_PORT", 0) as u16,
            pace_mb_s: env_u64("ZS_BENCH_PACE", 0),
            runtime: ClientRuntime::from_env(),
        }
    }
}

/// One end of a benchmark transfer: the configuration and the keys.
pub struct Endpoint {
    /// Where the stream is.
    pub config: Config,
    /// How a producer seals it.
    pub sealing: Sealing,
    /// How a consumer opens it.
    pub opening: Opening,
}

/// Our client's settings for stream `path` at Connect-API `url`:
/// plaintext, or with `key` (an age X25519 identity string) encrypting to
/// its recipient (age-rt) as a producer and decrypting with it as a consumer.
pub fn config(url: &str, path: &str, key: Option<&str>) -> Endpoint {
    let (sealing, opening) = match key {
        None => (Sealing::Plain, Opening::Plain),
        Some(key) => {
            let identity = age::x25519::Identity::from_str(key).expect("identity");
            (
                Sealing::recipients(
                    vec![Box::new(identity.to_public())],
                    zebrastream::cipher::Format::AgeRt,
                ),
                Opening::identities(vec![Box::new(identity)]),
            )
        }
    };
    let config = Config::builder(path)
        .connect_url(url)
        .build()
        .expect("config");
    Endpoint {
        config,
        sealing,
        opening,
    }
}

/// A fresh age X25519 identity, as its `AGE-SECRET-KEY-…` string.
pub fn new_key() -> String {
    use secrecy::ExposeSecret;
    age::x25519::Identity::generate()
        .to_string()
        .expose_secret()
        .to_string()
}

/// The environment variable naming a client role's runtime (see
/// [`ClientRuntime::parse`]); the transfer bench takes a comma-separated
/// list of them.
pub const RUNTIME_ENV: &str = "ZS_BENCH_RUNTIME";

/// The tokio runtime a client role runs on, to measure what the runtime
/// flavor costs a single stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientRuntime {
    /// `current` (default): one thread, as the CLI's `read` and `write`.
    #[default]
    CurrentThread,
    /// `multi`: `#[tokio::main]`'s default runtime (multi-thread, one worker
    /// per core), the stream driven by `block_on` on the main thread.
    MultiBlockOn,
    /// `multi-spawn`: a multi-thread runtime, the stream in a spawned task.
    MultiSpawned,
}

impl ClientRuntime {
    /// The runtime named `name` (`current`, `multi` or `multi-spawn`).
    pub fn parse(name: &str) -> ClientRuntime {
        match name.trim() {
            "current" => ClientRuntime::CurrentThread,
            "multi" => ClientRuntime::MultiBlockOn,
            "multi-spawn" => ClientRuntime::MultiSpawned,
            other => panic!("{RUNTIME_ENV}={other}: expected current, multi or multi-spawn"),
        }
    }

    /// Its name, as [`parse`](Self::parse) takes it.
    pub fn name(self) -> &'static str {
        match self {
            ClientRuntime::CurrentThread => "current",
            ClientRuntime::MultiBlockOn => "multi",
            ClientRuntime::MultiSpawned => "multi-spawn",
        }
    }

    fn from_env() -> ClientRuntime {
        std::env::var(RUNTIME_ENV)
            .map(|name| ClientRuntime::parse(&name))
            .unwrap_or_default()
    }

    fn run<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = T> + Send + 'static,
    ) -> T {
        let mut builder = match self {
            ClientRuntime::CurrentThread => tokio::runtime::Builder::new_current_thread(),
            _ => tokio::runtime::Builder::new_multi_thread(),
        };
        let runtime = builder.enable_all().build().unwrap();
        match self {
            ClientRuntime::MultiSpawned => {
                runtime.block_on(async { tokio::spawn(work).await.unwrap() })
            }
            _ => runtime.block_on(work),
        }
    }
}

/// Plays `role` if it is one of this module's; returns false otherwise.
pub fn play(role: &str) -> bool {
    let args = RoleArgs::from_env();
    let report = match role {
        PRODUCE | CONSUME => {
            let runtime = ClientRuntime::from_env();
            let config = config(&args.url, &args.path, args.key.as_deref());
            if role == PRODUCE {
                let (seed, bytes, write_size) = (args.seed, args.bytes, args.write_size);
                let pace = args.pace_mb_s;
                let sent =
                    runtime.run(async move { send(&config, seed, bytes, write_size, pace).await });
                serde_json::to_string(&sent)
            } else {
                let seed = args.seed;
                serde_json::to_string(&runtime.run(async move { receive(&config, seed).await }))
            }
        }
        TCP_PRODUCE => serde_json::to_string(&tcp_produce(&args)),
        TCP_CONSUME => serde_json::to_string(&tcp_consume(&args)),
        _ => return false,
    };
    println!("{}", report.unwrap());
    true
}

/// Connects a `StreamWriter` with `config` and sends `bytes` of the
/// pattern of `seed`, `write_size` bytes per write, at most `pace_mb_s`
/// MB/s on average (0: unpaced).
pub async fn send(
    end: &Endpoint,
    seed: u64,
    bytes: u64,
    write_size: usize,
    pace_mb_s: u64,
) -> Sent {
    let mut writer = StreamWriter::connect(&end.config, &end.sealing)
        .await
        .expect("connect");
    let pattern = Pattern::new(seed);
    let start_ns = now_ns();
    let started = tokio::time::Instant::now();
    let mut offset = 0;
    while offset < bytes {
        if pace_mb_s > 0 {
            // Never ahead of the link: wait until `offset` bytes are due.
            let due = Duration::from_secs_f64(offset as f64 / (pace_mb_s as f64 * 1e6));
            tokio::time::sleep_until(started + due).await;
        }
        let n = (bytes - offset).min(write_size as u64) as usize;
        writer
            .write_all(pattern.slice(offset, n))
            .await
            .expect("write");
        offset += n as u64;
    }
    writer.shutdown().await.expect("shutdown");
    Sent {
        bytes: writer.bytes_written(),
        start_ns,
        end_ns: now_ns(),
    }
}

/// Connects a `StreamReader` with `config` and checks what arrives against
/// the pattern of `seed`.
pub async fn receive(end: &Endpoint, seed: u64) -> Delivery {
    let mut reader = StreamReader::connect(&end.config, &end.opening)
        .await
        .expect("connect");
    let mut verifier = Verifier::new(seed);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf).await.expect("read") {
            0 => return verifier.finish(),
            n => verifier.push(&buf[..n]),
        }
    }
}

fn tcp_produce(args: &RoleArgs) -> Sent {
    let mut socket = loop {
        match TcpStream::connect(("127.0.0.1", args.port)) {
            Ok(socket) => break socket,
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let start_ns = now_ns();
    Pattern::new(args.seed).write_to(&mut socket, args.bytes, args.write_size);
    socket
        .shutdown(std::net::Shutdown::Write)
        .expect("shutdown");
    Sent {
        bytes: args.bytes,
        start_ns,
        end_ns: now_ns(),
    }
}

fn tcp_consume(args: &RoleArgs) -> Delivery {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    println!("{}", listener.local_addr().unwrap().port());
    std::io::stdout().flush().unwrap();
    let (mut socket, _) = listener.accept().expect("accept");
    Verifier::new(args.seed).read_from(&mut socket)
}

/// The stdout of a role child: its first line (e.g. a port), then its report.
pub struct Reports(BufReader<ChildStdout>);

impl Reports {
    /// Takes `child`'s stdout.
    pub fn of(child: &mut Child) -> Reports {
        Reports(BufReader::new(child.stdout.take().expect("piped stdout")))
    }

    /// The next line, parsed (a port, or a JSON report).
    pub fn next<T: serde::de::DeserializeOwned>(&mut self) -> T {
        let mut line = String::new();
        self.0.read_line(&mut line).expect("child output");
        serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("child printed {line:?}: {e}"))
    }
}

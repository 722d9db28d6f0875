//! Relays under test, each in its own process so that its CPU time and
//! memory are measured alone: ours (the bench binary re-executed with
//! `ZS_BENCH_ROLE=relay`) or npm `piping-server`.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use super::process::{rss_kib, wait_with_usage, Usage};

/// The role name that makes a bench binary serve as [`Kind::Ours`].
pub const RELAY_ROLE: &str = "relay";

/// Which relay.
#[derive(Clone, Debug)]
pub enum Kind {
    /// Our relay (open, loopback).
    Ours,
    /// npm `piping-server`, at this executable.
    Piping(PathBuf),
}

impl Kind {
    /// A display name.
    pub fn name(&self) -> String {
        match self {
            Kind::Ours => "zebrastream relay".into(),
            Kind::Piping(_) => "piping-server 1.12.9 (node)".into(),
        }
    }
}

/// A relay running in its own process; killed when dropped.
pub struct Server {
    child: Option<Child>,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// URL path prefix of the data API (`/data` for ours, none for piping-server).
    pub prefix: &'static str,
    _stdout: Option<ChildStdout>,
}

/// A free loopback port (racy, but fine on a bench machine).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on `port` (at most 5 s).
pub fn wait_listening(port: u16) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nothing listens on port {port}");
}

impl Server {
    /// Starts a relay of `kind` and waits until it listens.
    pub fn start(kind: &Kind) -> Server {
        match kind {
            Kind::Ours => {
                let mut child = Command::new(std::env::current_exe().unwrap())
                    .env("ZS_BENCH_ROLE", RELAY_ROLE)
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
                    child: Some(child),
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
                wait_listening(port);
                Server {
                    child: Some(child),
                    port,
                    prefix: "",
                    _stdout: None,
                }
            }
        }
    }

    /// The data-API URL of stream `path` (for curl and raw HTTP clients).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}{path}", self.port, self.prefix)
    }

    /// The Connect-API URL (for ZebraStream clients; ours only).
    pub fn connect_url(&self) -> String {
        format!("http://127.0.0.1:{}/v0", self.port)
    }

    /// The relay's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Its current RSS, KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    /// Stops the relay and returns what it used over its whole life.
    pub fn finish(mut self) -> Usage {
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        wait_with_usage(child).1
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The body of [`RELAY_ROLE`]: our relay alone in this process; prints its
/// port, serves until stdin closes or the process is killed.
pub fn serve_relay() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Thousands of waiters and streams from 127.0.0.1: above the
        // per-address defaults (connections and stream quota).
        let config = zebrastream::relay::RelayConfig::open_loopback()
            .max_connections_per_ip(1 << 20)
            .stream_quota(1 << 20);
        let relay = zebrastream::relay::Relay::bind(config).await.expect("bind");
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

/// The piping-server executable: `$PIPING_SERVER`, or where
/// `scripts/bench-relay.sh` installs it (`$CARGO_TARGET_DIR/bench-tools`).
pub fn piping_server_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PIPING_SERVER") {
        return Some(PathBuf::from(p));
    }
    let p = target_dir().join("bench-tools/node_modules/.bin/piping-server");
    p.exists().then_some(p)
}

/// `$CARGO_TARGET_DIR`, or `target` in the crate.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

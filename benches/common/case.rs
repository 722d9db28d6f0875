//! One measured transfer: a producer and a consumer, each its own process,
//! through a forwarder (a relay process or `socat`). The consumer starts
//! first; the transfer is checked byte for byte.
//!
//! Figures: throughput from the consumer's first byte to its end (MB/s,
//! 10⁶ bytes); time to first byte from the producer's spawn to the
//! consumer's first byte (so it includes the producer's start-up and, for a
//! passphrase, its key derivation); CPU seconds and peak RSS of producer,
//! consumer and forwarder (`wait4`).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

use super::client::{
    ClientRuntime, Reports, RoleArgs, Sent, CONSUME, PRODUCE, TCP_CONSUME, TCP_PRODUCE,
};
use super::now_ns;
use super::pattern::{Delivery, Pattern, Verifier};
use super::process::{wait_ok, widen_pipe, Usage};
use super::server::{Kind, Server};

/// Size of the pieces written to the pipes of external clients.
const PIPE_WRITE: usize = 256 * 1024;
/// Bytes per write of the producers we run in the transfer cases (our
/// client, the raw TCP sender).
pub const WRITE: usize = 64 * 1024;

/// What carries the bytes from producer to consumer.
#[derive(Clone, Debug)]
pub enum Forwarder {
    /// An HTTP relay (ours or piping-server) in its own process.
    Relay(Kind),
    /// `socat TCP-LISTEN:… TCP:…`: a raw TCP copy, the baseline.
    Socat,
}

/// A producer or consumer program.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// Our client (the bench binary re-executed), optionally encrypting to
    /// an age X25519 identity (age-rt), writing `write_size` bytes at a time.
    Ours {
        /// The identity, as its `AGE-SECRET-KEY-…` string.
        key: Option<String>,
        /// Bytes per write (producer).
        write_size: usize,
        /// A producer's pace in MB/s (0: as fast as it can).
        pace_mb_s: u64,
        /// The tokio runtime the client runs on.
        runtime: ClientRuntime,
    },
    /// A raw TCP sender or sink (the bench binary re-executed; socat only).
    Tcp,
    /// `curl` on the data API: a producer uploads a file in RAM (tmpfs)
    /// holding the pattern, a consumer is drained into a pipe and checked.
    Curl,
    /// The official Python CLI (`zebrastream-io`), through a pipe,
    /// optionally with a passphrase (age-rt).
    Python {
        /// The CLI (by its venv path).
        cli: PathBuf,
        /// The passphrase, if encrypted.
        passphrase: Option<String>,
    },
}

impl Endpoint {
    /// Our client, plaintext.
    pub fn plain(write_size: usize) -> Endpoint {
        Endpoint::Ours {
            key: None,
            write_size,
            pace_mb_s: 0,
            runtime: ClientRuntime::default(),
        }
    }

    /// Our client, age-rt encrypted to a fresh X25519 identity.
    pub fn age_rt(write_size: usize) -> Endpoint {
        Endpoint::Ours {
            key: Some(super::client::new_key()),
            write_size,
            pace_mb_s: 0,
            runtime: ClientRuntime::default(),
        }
    }

    /// This endpoint, sending at most `mb_s` MB/s when it is a producer of
    /// ours (as if behind a link of that speed).
    pub fn paced(mut self, mb_s: u64) -> Endpoint {
        if let Endpoint::Ours { pace_mb_s, .. } = &mut self {
            *pace_mb_s = mb_s;
        }
        self
    }

    /// This endpoint, on `runtime` when it is our client.
    pub fn on(mut self, runtime: ClientRuntime) -> Endpoint {
        if let Endpoint::Ours { runtime: r, .. } = &mut self {
            *r = runtime;
        }
        self
    }

    /// How long a consumer of this kind needs before it waits at the relay.
    fn start_up(&self) -> Duration {
        match self {
            Endpoint::Python { .. } => Duration::from_millis(1500),
            _ => Duration::from_millis(300),
        }
    }
}

/// One transfer to measure.
#[derive(Clone, Debug)]
pub struct Case {
    /// Display name.
    pub name: String,
    /// Through what.
    pub forwarder: Forwarder,
    /// Who sends.
    pub producer: Endpoint,
    /// Who receives.
    pub consumer: Endpoint,
    /// How many bytes.
    pub bytes: u64,
}

/// The figures of one transfer.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The case's name.
    pub name: String,
    /// Bytes transferred (checked).
    pub bytes: u64,
    /// Throughput, MB/s (10⁶ bytes per second).
    pub mb_per_s: f64,
    /// Time to first byte, ms.
    pub ttfb_ms: f64,
    /// The producer process.
    pub producer: Usage,
    /// The consumer process.
    pub consumer: Usage,
    /// The relay or socat process.
    pub relay: Usage,
}

impl Outcome {
    /// CPU seconds per GiB of producer, relay and consumer.
    pub fn cpu_per_gib(&self) -> [f64; 3] {
        let gib = self.bytes as f64 / (1u64 << 30) as f64;
        [self.producer, self.relay, self.consumer].map(|u| u.cpu_s / gib)
    }
}

/// Where the clients go.
struct Target {
    /// Connect-API URL (our relay).
    connect_url: String,
    /// Stream path.
    path: String,
    /// Data-API URL of the stream (curl).
    data_url: String,
    /// TCP port (socat).
    port: u16,
}

/// A started producer or consumer.
struct Running {
    child: Child,
    /// Our own child's report lines.
    reports: Option<Reports>,
    /// The thread feeding an external producer's stdin.
    feeder: Option<JoinHandle<()>>,
    /// The thread draining and checking an external consumer's stdout.
    drain: Option<JoinHandle<Delivery>>,
    /// Keeps the Python client's empty HOME alive.
    _home: Option<tempfile::TempDir>,
}

/// The pattern of `seed` as a file in RAM (`/dev/shm` when there is one),
/// for a curl producer to upload: curl then reads the page cache instead of a
/// pipe this process must feed, so the harness takes less of the CPU the
/// relays compete for. Written before the clock starts; deleted on drop.
fn upload_file(seed: u64, bytes: u64) -> tempfile::NamedTempFile {
    let shm = std::path::Path::new("/dev/shm");
    let mut file = if shm.is_dir() {
        tempfile::NamedTempFile::new_in(shm)
    } else {
        tempfile::NamedTempFile::new()
    }
    .expect("upload file");
    Pattern::new(seed).write_to(&mut file, bytes, PIPE_WRITE);
    file.flush().expect("upload file");
    file
}

/// The seed of the pattern sent on `target`.
fn seed_of(target: &Target, bytes: u64) -> u64 {
    bytes ^ target.path.len() as u64
}

impl Running {
    /// Starts `endpoint`; a curl producer uploads `upload` (see [`upload_file`]).
    fn spawn(
        endpoint: &Endpoint,
        producer: bool,
        target: &Target,
        bytes: u64,
        upload: Option<&std::path::Path>,
    ) -> Running {
        let seed = seed_of(target, bytes);
        let mut home = None;
        let mut command = match endpoint {
            Endpoint::Ours {
                key,
                write_size,
                pace_mb_s,
                runtime,
            } => {
                let args = RoleArgs {
                    url: target.connect_url.clone(),
                    path: target.path.clone(),
                    bytes,
                    key: key.clone(),
                    write_size: *write_size,
                    seed,
                    port: 0,
                    pace_mb_s: *pace_mb_s,
                    runtime: *runtime,
                };
                return Running::own(args.spawn(if producer { PRODUCE } else { CONSUME }));
            }
            Endpoint::Tcp => {
                let args = RoleArgs {
                    bytes,
                    write_size: WRITE,
                    seed,
                    port: target.port,
                    ..RoleArgs::default()
                };
                return Running::own(args.spawn(if producer { TCP_PRODUCE } else { TCP_CONSUME }));
            }
            Endpoint::Curl => {
                let mut command = Command::new("curl");
                command.args(["-sS", "--fail"]);
                if producer {
                    let file = upload.expect("a curl producer uploads a file");
                    command.arg("-T").arg(file);
                    command.args(["-H", "Transfer-Encoding: chunked"]);
                    command.args(["--expect100-timeout", "60", "-o", "/dev/null"]);
                }
                command.arg(&target.data_url);
                command
            }
            Endpoint::Python { cli, passphrase } => {
                let dir = tempfile::tempdir().expect("temp HOME");
                let mut command = Command::new(cli);
                command
                    .arg(if producer { "write" } else { "read" })
                    .args(["-U", &target.connect_url, "-s", &target.path, "-t", "60"])
                    .env("HOME", dir.path())
                    .env("ZEBRASTREAM_ACCESS_TOKEN", "bench")
                    .env_remove("ZEBRASTREAM_PASSPHRASE")
                    .env_remove("ZEBRASTREAM_STREAM_PATH")
                    .env_remove("ZEBRASTREAM_CONNECT_URL");
                if let Some(p) = passphrase {
                    command.args(["-p", p]);
                    if producer {
                        command.args(["--encryption-mode", "age-rt"]);
                    }
                }
                home = Some(dir);
                command
            }
        };
        let mut child = command
            .stdin(if producer && upload.is_none() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(if producer {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .spawn()
            .expect("spawn client");
        let (mut feeder, mut drain) = (None, None);
        if let Some(mut stdin) = child.stdin.take() {
            widen_pipe(&stdin);
            feeder = Some(std::thread::spawn(move || {
                Pattern::new(seed).write_to(&mut stdin, bytes, PIPE_WRITE);
                stdin.flush().expect("flush");
            }));
        } else if !producer {
            let mut stdout = child.stdout.take().unwrap();
            widen_pipe(&stdout);
            drain = Some(std::thread::spawn(move || {
                Verifier::new(seed).read_from(&mut stdout)
            }));
        }
        Running {
            child,
            reports: None,
            feeder,
            drain,
            _home: home,
        }
    }

    fn own(mut child: Child) -> Running {
        Running {
            reports: Some(Reports::of(&mut child)),
            child,
            feeder: None,
            drain: None,
            _home: None,
        }
    }

    /// Waits for a producer to finish.
    fn finish_producer(mut self) -> Usage {
        if let Some(feeder) = self.feeder.take() {
            feeder.join().expect("feeding the producer");
        }
        if let Some(reports) = &mut self.reports {
            let _: Sent = reports.next();
        }
        wait_ok(self.child, "producer")
    }

    /// Waits for a consumer to finish.
    fn finish_consumer(mut self) -> (Delivery, Usage) {
        let delivery = match (self.drain.take(), &mut self.reports) {
            (Some(drain), _) => drain.join().expect("draining the consumer"),
            (None, Some(reports)) => reports.next(),
            (None, None) => unreachable!("a consumer reports or is drained"),
        };
        (delivery, wait_ok(self.child, "consumer"))
    }
}

/// Runs `case` once on stream `path` (distinct per run).
pub fn run(case: &Case, path: &str) -> Outcome {
    let mut target = Target {
        connect_url: String::new(),
        path: path.to_string(),
        data_url: String::new(),
        port: 0,
    };
    let (consumer, forwarder): (Running, Box<dyn FnOnce() -> Usage>) = match &case.forwarder {
        Forwarder::Relay(kind) => {
            let server = Server::start(kind);
            target.connect_url = server.connect_url();
            target.data_url = server.url(path);
            let consumer = Running::spawn(&case.consumer, false, &target, case.bytes, None);
            std::thread::sleep(case.consumer.start_up());
            (consumer, Box::new(move || server.finish()))
        }
        Forwarder::Socat => {
            let mut consumer = Running::spawn(&case.consumer, false, &target, case.bytes, None);
            let sink: u16 = consumer.reports.as_mut().expect("a TCP sink").next();
            target.port = super::server::free_port();
            let socat = Command::new("socat")
                .arg(format!(
                    "TCP-LISTEN:{},bind=127.0.0.1,reuseaddr",
                    target.port
                ))
                .arg(format!("TCP:127.0.0.1:{sink}"))
                .spawn()
                .expect("socat");
            (consumer, Box::new(move || wait_ok(socat, "socat")))
        }
    };
    let upload = matches!(case.producer, Endpoint::Curl)
        .then(|| upload_file(seed_of(&target, case.bytes), case.bytes));
    let spawned_ns = now_ns();
    let upload_path = upload.as_ref().map(|f| f.path());
    let producer = Running::spawn(&case.producer, true, &target, case.bytes, upload_path);
    let producer = producer.finish_producer();
    let (delivery, consumer) = consumer.finish_consumer();
    let relay = forwarder();
    assert_eq!(delivery.bytes, case.bytes, "{}: byte count", case.name);
    assert!(delivery.exact, "{}: bytes differ", case.name);
    Outcome {
        name: case.name.clone(),
        bytes: case.bytes,
        mb_per_s: delivery.mb_per_s(),
        ttfb_ms: delivery.first_byte_ns.saturating_sub(spawned_ns) as f64 / 1e6,
        producer,
        consumer,
        relay,
    }
}

/// Runs every case `rounds` times, interleaved (other load on the machine
/// only slows a round down), and keeps each case's fastest round.
pub fn best_of(cases: &[Case], rounds: u64, tag: &str) -> Vec<Outcome> {
    let mut best: Vec<Option<Outcome>> = vec![None; cases.len()];
    for round in 0..rounds.max(1) {
        for (i, case) in cases.iter().enumerate() {
            let outcome = run(case, &format!("/bench/{tag}/{i}/{round}"));
            eprintln!(
                "  round {}: {:<40} {:8.1} MB/s",
                round + 1,
                case.name,
                outcome.mb_per_s
            );
            if best[i]
                .as_ref()
                .is_none_or(|b| outcome.mb_per_s > b.mb_per_s)
            {
                best[i] = Some(outcome);
            }
        }
    }
    best.into_iter().map(Option::unwrap).collect()
}

//! Helpers for the CLI tests: the built binary, run in a sandbox whose HOME
//! is a temp dir and whose environment holds no `ZEBRASTREAM_*` variables.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The `zebrastream` binary cargo built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_zebrastream"))
}

/// A temp HOME and a clean environment for running CLIs.
pub struct Sandbox {
    pub home: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            home: tempfile::tempdir().expect("temp home"),
        }
    }

    /// `$HOME`.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// `~/.config/zebrastream`.
    pub fn config_dir(&self) -> PathBuf {
        self.home().join(".config/zebrastream")
    }

    /// Writes `~/.config/zebrastream/config.yaml`.
    pub fn write_global_config(&self, yaml: &str) {
        std::fs::create_dir_all(self.config_dir()).unwrap();
        std::fs::write(self.config_dir().join("config.yaml"), yaml).unwrap();
    }

    /// Writes `~/.config/zebrastream/streams/NAME.yaml`.
    pub fn write_named_config(&self, name: &str, yaml: &str) {
        let dir = self.config_dir().join("streams");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.yaml")), yaml).unwrap();
    }

    /// A file in the sandbox.
    pub fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.home().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Applies the sandbox environment to a command: only PATH, HOME and
    /// an XDG_CONFIG_DIRS that points nowhere (so /etc/xdg is not read).
    pub fn apply(&self, cmd: &mut std::process::Command) {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("XDG_CONFIG_DIRS", self.home().join("no-xdg"))
            .current_dir(self.home());
    }

    /// Our binary in the sandbox.
    pub fn zs(&self) -> assert_cmd::Command {
        let mut cmd = std::process::Command::new(bin());
        self.apply(&mut cmd);
        assert_cmd::Command::from_std(cmd)
    }
}

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use zebrastream::relay::{Presence, Relay, RelayConfig, RelayHandle};

/// How long any child process may run before the test kills it and fails.
pub const DEADLINE: Duration = Duration::from_secs(90);

/// Deterministic test data (xorshift bytes).
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// An in-process relay on a free loopback port, on its own runtime.
pub struct TestRelay {
    rt: tokio::runtime::Runtime,
    handle: Option<RelayHandle>,
    /// `http://127.0.0.1:PORT/v0`
    pub connect_url: String,
}

impl TestRelay {
    /// An open relay (no tokens).
    pub fn open() -> TestRelay {
        TestRelay::with(RelayConfig::open_loopback())
    }

    /// A relay with the given settings.
    pub fn with(config: RelayConfig) -> TestRelay {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let handle = rt.block_on(Relay::bind(config)).expect("relay binds");
        let connect_url = handle.connect_url();
        TestRelay {
            rt,
            handle: Some(handle),
            connect_url,
        }
    }

    /// Waits (at most [`DEADLINE`]) until `path`'s consumer has sent its
    /// Data-API request (waiting for its producer, or paired with it).
    pub fn until_consumer_requested(&self, path: &str) {
        let handle = self.handle.as_ref().unwrap();
        let start = Instant::now();
        while !matches!(
            handle.stream_status(path).consumer,
            Presence::Waiting | Presence::Transferring
        ) {
            assert!(start.elapsed() < DEADLINE, "{path}: no consumer request");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.abort();
        }
        let _ = &self.rt;
    }
}

/// A finished child process.
#[derive(Debug)]
pub struct Finished {
    /// The exit code (None: killed by a signal).
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Finished {
    /// Asserts the exit code, showing stderr if it differs.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit; stderr:\n{}",
            self.stderr
        );
        self
    }
}

/// A running child with its output collected in background threads.
pub struct Proc {
    child: Child,
    stdout: Option<JoinHandle<Vec<u8>>>,
    stderr: Option<JoinHandle<Vec<u8>>>,
    feeder: Option<JoinHandle<()>>,
}

fn collect<R: Read + Send + 'static>(mut r: R) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

impl Proc {
    /// Starts `cmd`, feeding `stdin` (then EOF) if given, else an empty stdin.
    pub fn spawn(cmd: Command, stdin: Option<Vec<u8>>) -> Proc {
        Proc::spawn_with(
            cmd,
            move |mut input| {
                if let Some(bytes) = stdin {
                    // The child may exit early (that is what some tests check).
                    let _ = input.write_all(&bytes);
                }
            },
            |mut out| {
                let mut buf = Vec::new();
                let _ = out.read_to_end(&mut buf);
                buf
            },
        )
    }

    /// Starts `cmd` with `feed` writing its stdin (EOF when it returns) and
    /// `drain` reading its stdout (what it returns is
    /// [`Finished::stdout`]), each on a thread of its own: for streams too
    /// big to hold in memory or on disk.
    pub fn spawn_with(
        mut cmd: Command,
        feed: impl FnOnce(ChildStdin) + Send + 'static,
        drain: impl FnOnce(ChildStdout) -> Vec<u8> + Send + 'static,
    ) -> Proc {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        let input = child.stdin.take().unwrap();
        let feeder = std::thread::spawn(move || feed(input));
        let output = child.stdout.take().unwrap();
        let stdout = std::thread::spawn(move || drain(output));
        let stderr = collect(child.stderr.take().unwrap());
        Proc {
            child,
            stdout: Some(stdout),
            stderr: Some(stderr),
            feeder: Some(feeder),
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Kills the child now.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
    }

    /// Waits (at most [`DEADLINE`]) and returns the exit code and output.
    pub fn finish(mut self) -> Finished {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > DEADLINE {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let err = self.stderr.take().unwrap().join().unwrap();
                panic!("process hung; stderr:\n{}", String::from_utf8_lossy(&err));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = self.feeder.take().unwrap().join();
        Finished {
            code: status.code(),
            stdout: self.stdout.take().unwrap().join().unwrap(),
            stderr: String::from_utf8_lossy(&self.stderr.take().unwrap().join().unwrap())
                .into_owned(),
        }
    }
}

impl Sandbox {
    /// Our binary in the sandbox, as a std command.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin());
        self.apply(&mut cmd);
        cmd.args(args);
        cmd
    }

    /// Starts our binary with `args`, feeding `stdin`.
    pub fn spawn(&self, args: &[&str], stdin: Option<Vec<u8>>) -> Proc {
        Proc::spawn(self.cmd(args), stdin)
    }

    /// Starts `script` in bash as a user types it (`zebrastream` found on
    /// `PATH`, real pipes and redirections), with `pipefail` so the exit
    /// status is zebrastream's, not that of a `cat` after it.
    pub fn shell(&self, script: &str) -> Proc {
        let mut cmd = Command::new("bash");
        self.apply(&mut cmd);
        let bin_dir = bin().parent().unwrap().to_owned();
        let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )))
        .unwrap();
        cmd.env("PATH", path)
            .args(["-c", &format!("set -eo pipefail; {script}")]);
        Proc::spawn(cmd, None)
    }

    /// `zebrastream ticket new` for the relay at `connect_url` (paths under
    /// `/hospital`), saved as `name` in the sandbox's home.
    pub fn new_ticket(&self, connect_url: &str, name: &str) -> PathBuf {
        let path = self.home().join(name);
        let args = [
            "ticket",
            "new",
            "--relay",
            connect_url,
            "--path",
            "/hospital",
            "-o",
        ];
        self.spawn(&[&args[..], &[path.to_str().unwrap()]].concat(), None)
            .finish()
            .expect_code(0);
        path
    }

    /// Runs a writer and a reader concurrently through `relay` on `path`;
    /// the connect URL and a timeout are added to both argument lists.
    pub fn transfer(
        &self,
        relay: &TestRelay,
        path: &str,
        write_args: &[&str],
        read_args: &[&str],
        stdin: &[u8],
    ) -> (Finished, Finished) {
        let (writer, reader) = self.start_transfer(relay, path, write_args, read_args, stdin);
        let w = writer.finish();
        let r = reader.finish();
        (w, r)
    }

    /// [`Sandbox::transfer`]'s two processes, started: (writer, reader).
    pub fn start_transfer(
        &self,
        relay: &TestRelay,
        path: &str,
        write_args: &[&str],
        read_args: &[&str],
        stdin: &[u8],
    ) -> (Proc, Proc) {
        let common = ["-U", relay.connect_url.as_str(), "-t", "30", "-s", path];
        let mut w: Vec<&str> = vec!["write"];
        w.extend_from_slice(&common);
        w.extend_from_slice(write_args);
        let mut r: Vec<&str> = vec!["read"];
        r.extend_from_slice(&common);
        r.extend_from_slice(read_args);
        let reader = self.spawn(&r, None);
        let writer = self.spawn(&w, Some(stdin.to_vec()));
        (writer, reader)
    }

    /// A transfer whose producer command (`sh -c script`) fails: the script
    /// runs only once the reader's data request reached the relay. A writer
    /// that broke off before that would leave its reader waiting for
    /// another writer (docs/relay.md, "Abort propagation"), which is not
    /// what these tests are about. Returns (writer, reader), finished.
    pub fn transfer_failing_producer(
        &self,
        relay: &TestRelay,
        path: &str,
        key_args: &[&str],
        script: &str,
    ) -> (Finished, Finished) {
        let go = self.home().join(format!("go-{}", path.replace('/', "_")));
        let gated = format!(
            "while [ ! -e {} ]; do sleep 0.02; done; {script}",
            go.display()
        );
        let write_args = [key_args, &["--", "sh", "-c", gated.as_str()]].concat();
        let (writer, reader) = self.start_transfer(relay, path, &write_args, key_args, b"");
        relay.until_consumer_requested(path);
        std::fs::write(&go, b"").unwrap();
        (writer.finish(), reader.finish())
    }
}

/// A loopback HTTP server that answers every request with one fixed status
/// and body: by default `404 Not Found` with an empty body, a wrong connect
/// URL, which fails at once (no retries) with exit code 1.
pub struct NotARelay {
    /// `http://127.0.0.1:PORT/v0`
    pub url: String,
}

impl NotARelay {
    pub fn start() -> NotARelay {
        NotARelay::answering("404 Not Found", b"")
    }

    /// Answers every request with `HTTP/1.1 {status}` (e.g. `"400 Bad
    /// Request"`) and `body`.
    pub fn answering(status: &str, body: &[u8]) -> NotARelay {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v0", listener.local_addr().unwrap());
        let mut response = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        response.extend_from_slice(body);
        let response = std::sync::Arc::new(response);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let response = response.clone();
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let _ = stream.write_all(&response);
                });
            }
        });
        NotARelay { url }
    }
}

/// `zebrastream relay --open` as a separate process on a free port.
pub struct RelayProcess {
    child: Child,
    /// The connect URL it printed.
    pub connect_url: String,
}

impl RelayProcess {
    /// Starts the relay and waits until it prints its connect URL.
    pub fn start(sb: &Sandbox) -> RelayProcess {
        RelayProcess::spawn(sb.cmd(&["relay", "--open", "--listen", "127.0.0.1:0"]))
    }

    /// Starts `cmd` (a `zebrastream relay` command line, possibly wrapped,
    /// e.g. to run in a network namespace) and waits until it prints its
    /// connect URL.
    pub fn spawn(mut cmd: Command) -> RelayProcess {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn zebrastream relay");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if let Some(rest) = line.split("connect URL ").nth(1) {
                    let _ = tx.send(rest.trim_end_matches(')').to_owned());
                }
            }
        });
        let connect_url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("zebrastream relay printed its connect URL");
        RelayProcess { child, connect_url }
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

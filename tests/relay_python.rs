//! The official Python client (`zebrastream-io` 0.5.4) against our relay,
//! through its CLI and its Python API: both arrival orders, plaintext and
//! passphrase-encrypted (age-rt and age), 0 B / 1 B / 10 MiB, timeouts, a
//! wrong token, and either side killed mid-stream.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};
use zebrastream::relay::{
    CaptureTap, Presence, Relay, RelayAuth, RelayConfig, RelayHandle, StreamStatus,
};

struct Py {
    cli: PathBuf,
    python: PathBuf,
    /// Empty HOME, so no user config of the official CLI leaks in.
    home: tempfile::TempDir,
}

impl Py {
    fn find() -> Option<Py> {
        Some(Py {
            cli: support::py_cli()?,
            python: support::python()?,
            home: tempfile::tempdir().unwrap(),
        })
    }

    fn env(&self, cmd: &mut Command, token: &str) {
        cmd.env("HOME", self.home.path())
            .env("ZEBRASTREAM_ACCESS_TOKEN", token)
            .env_remove("ZEBRASTREAM_PASSPHRASE")
            .env_remove("ZEBRASTREAM_STREAM_PATH")
            .env_remove("ZEBRASTREAM_CONNECT_URL")
            .kill_on_drop(true)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
    }

    /// `zebrastream <args…>` (the official CLI) with `token` in the environment.
    fn cli(&self, token: &str, args: &[&str]) -> Child {
        let mut cmd = Command::new(&self.cli);
        cmd.args(args);
        self.env(&mut cmd, token);
        cmd.spawn().expect("spawn the official CLI")
    }

    /// `python zs_api.py <args…>` (the official Python API).
    fn api(&self, args: &[&str]) -> Child {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/relay_py/zs_api.py");
        let mut cmd = Command::new(&self.python);
        cmd.arg(script).args(args);
        self.env(&mut cmd, "test-token");
        cmd.spawn().expect("spawn python")
    }
}

/// Feeds `input` to the child's stdin, closes it, and collects the output.
async fn finish(mut child: Child, input: Vec<u8>) -> Output {
    let mut stdin = child.stdin.take().unwrap();
    let feeder = tokio::spawn(async move {
        // The child may exit early (that is what some tests check).
        let _ = stdin.write_all(&input).await;
    });
    let out = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("client finished within 120 s")
        .unwrap();
    feeder.await.unwrap();
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Waits until `cond` holds for the stream (bounded: 30 s).
async fn until(relay: &RelayHandle, path: &str, cond: impl Fn(StreamStatus) -> bool) {
    for _ in 0..600 {
        if cond(relay.stream_status(path)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{path}: state {:?} never reached",
        relay.stream_status(path)
    );
}

fn arrived(p: Presence) -> bool {
    p != Presence::Absent
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

async fn open_relay() -> (RelayHandle, Arc<CaptureTap>) {
    let capture = Arc::new(CaptureTap::new(16 << 20));
    let relay = Relay::bind(RelayConfig::open_loopback().tap(capture.clone()))
        .await
        .unwrap();
    (relay, capture)
}

#[derive(Clone, Copy, PartialEq)]
enum First {
    Producer,
    Consumer,
}

/// One CLI transfer: `write` and `read` with the given extra flags, in the given order.
async fn cli_transfer(
    py: &Py,
    relay: &RelayHandle,
    path: &str,
    data: &[u8],
    first: First,
    write_flags: &[&str],
    read_flags: &[&str],
) -> (Output, Output) {
    let url = relay.connect_url();
    let write_args = [&["write", "-U", &url, "-s", path][..], write_flags].concat();
    let read_args = [&["read", "-U", &url, "-s", path][..], read_flags].concat();
    let (writer, reader) = if first == First::Producer {
        let w = py.cli("test-token", &write_args);
        until(relay, path, |s| arrived(s.producer)).await;
        (w, py.cli("test-token", &read_args))
    } else {
        let r = py.cli("test-token", &read_args);
        until(relay, path, |s| arrived(s.consumer)).await;
        (py.cli("test-token", &write_args), r)
    };
    let (w, r) = tokio::join!(finish(writer, data.to_vec()), finish(reader, Vec::new()));
    (w, r)
}

fn assert_ok(out: &Output, who: &str) {
    assert!(
        out.status.success(),
        "{who} failed: {:?}\n{}",
        out.status,
        stderr(out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_plaintext_sizes_in_both_orders() {
    let Some(py) = Py::find() else { return };
    let (relay, capture) = open_relay().await;
    let cases = [
        ("/py/plain/zero", 0, First::Producer),
        ("/py/plain/one", 1, First::Consumer),
        ("/py/plain/big-pf", 10 << 20, First::Producer),
        ("/py/plain/big-cf", 10 << 20, First::Consumer),
    ];
    for (path, len, first) in cases {
        let data = pattern(len);
        let (w, r) = cli_transfer(&py, &relay, path, &data, first, &[], &[]).await;
        assert_ok(&w, "writer");
        assert_ok(&r, "reader");
        assert_eq!(r.stdout.len(), data.len(), "{path}");
        assert!(r.stdout == data, "{path}: bytes differ");
        assert_eq!(capture.total_len(path), len as u64);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_passphrase_age_rt_and_age_relay_sees_only_ciphertext() {
    let Some(py) = Py::find() else { return };
    let (relay, capture) = open_relay().await;
    let marker = b"PLAINTEXT-MARKER-";
    let data: Vec<u8> = marker.iter().copied().cycle().take(300_000).collect();
    for (path, mode, first) in [
        ("/py/enc/age-rt", "age-rt", First::Producer),
        ("/py/enc/age", "age", First::Consumer),
    ] {
        let (w, r) = cli_transfer(
            &py,
            &relay,
            path,
            &data,
            first,
            &["-p", "correct horse", "--encryption-mode", mode],
            &["-p", "correct horse"],
        )
        .await;
        assert_ok(&w, "writer");
        assert_ok(&r, "reader");
        assert!(r.stdout == data, "{path}: decrypted bytes differ");
        let seen = capture.bytes(path);
        assert!(
            seen.len() > data.len(),
            "{path}: ciphertext is longer than the plaintext"
        );
        assert!(
            !seen.windows(marker.len()).any(|w| w == marker),
            "{path}: the relay saw plaintext"
        );
        let expected_id: &[u8] = if mode == "age" {
            b"age-encryption.org/v1\n"
        } else {
            b"github.com/parsimonit/age-rt-encryption/v0.2\n"
        };
        assert!(seen.starts_with(expected_id), "{path}: unexpected header");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_connect_timeout_fails_cleanly() {
    let Some(py) = Py::find() else { return };
    let (relay, _) = open_relay().await;
    let url = relay.connect_url();
    let started = std::time::Instant::now();
    let out = finish(
        py.cli(
            "test-token",
            &[
                "-l",
                "debug",
                "read",
                "-U",
                &url,
                "-s",
                "/py/alone",
                "-t",
                "1",
            ],
        ),
        Vec::new(),
    )
    .await;
    // protocol.md §5.5: a connect timeout exits 1 (not the declared 4); the
    // 0.5.4 CLI then reports "EOF not received", its debug log says why.
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("timed out after 1 seconds"),
        "{}",
        stderr(&out)
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    // The relay forgot the waiter once the client left.
    until(&relay, "/py/alone", |s| s == StreamStatus::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_tokens_file_accepts_the_right_tokens_and_refuses_a_wrong_one() {
    let Some(py) = Py::find() else { return };
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        "[[tokens]]\ntoken = \"w-secret\"\nmode = \"write\"\npath = \"/team\"\nrecursive = true\n\n\
         [[tokens]]\ntoken = \"r-secret\"\nmode = \"read\"\npath = \"/team/feed\"\n",
    )
    .unwrap();
    let relay = Relay::bind(RelayConfig::open_loopback().auth(RelayAuth::TokensFile(tokens)))
        .await
        .unwrap();
    let url = relay.connect_url();

    let out = finish(
        py.cli("wrong-token", &["write", "-U", &url, "-s", "/team/feed"]),
        b"data".to_vec(),
    )
    .await;
    // protocol.md §5.5: a server 401 exits 1 with this message.
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("Authentication failed with status 401 for stream '/team/feed'"),
        "{}",
        stderr(&out)
    );
    // A read token cannot write: 403.
    let out = finish(
        py.cli("r-secret", &["write", "-U", &url, "-s", "/team/feed"]),
        b"data".to_vec(),
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("status 403"), "{}", stderr(&out));

    let writer = py.cli("w-secret", &["write", "-U", &url, "-s", "/team/feed"]);
    until(&relay, "/team/feed", |s| arrived(s.producer)).await;
    let reader = py.cli("r-secret", &["read", "-U", &url, "-s", "/team/feed"]);
    let (w, r) = tokio::join!(
        finish(writer, b"authorized".to_vec()),
        finish(reader, vec![])
    );
    assert_ok(&w, "writer");
    assert_ok(&r, "reader");
    assert_eq!(r.stdout, b"authorized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_killed_mid_stream_fails_the_python_consumer() {
    let Some(py) = Py::find() else { return };
    let (relay, capture) = open_relay().await;
    let url = relay.connect_url();
    let path = "/py/kill/producer";
    let reader = py.cli("test-token", &["read", "-U", &url, "-s", path]);
    until(&relay, path, |s| arrived(s.consumer)).await;
    let mut writer = py.cli("test-token", &["write", "-U", &url, "-s", path]);
    let mut stdin = writer.stdin.take().unwrap();
    // More than one 64 KiB read, and the stream stays open.
    stdin.write_all(&pattern(200_000)).await.unwrap();
    for _ in 0..600 {
        if capture.total_len(path) >= 65_536 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(capture.total_len(path) >= 65_536, "data never flowed");
    writer.kill().await.unwrap();
    let out = finish(reader, Vec::new()).await;
    assert!(
        !out.status.success(),
        "consumer exited 0 with {} bytes after the producer was killed",
        out.stdout.len()
    );
    drop(stdin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_killed_mid_stream_is_reported_to_the_python_producer() {
    let Some(py) = Py::find() else { return };
    let (relay, capture) = open_relay().await;
    let url = relay.connect_url();
    let path = "/py/kill/consumer";
    let mut reader = py.cli("test-token", &["read", "-U", &url, "-s", path]);
    until(&relay, path, |s| arrived(s.consumer)).await;
    let writer = py.api(&["write-until-error", &url, path]);
    for _ in 0..600 {
        if capture.total_len(path) >= 200_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    reader.kill().await.unwrap();
    let out = finish(writer, Vec::new()).await;
    let report = String::from_utf8_lossy(&out.stdout);
    // The client raises PeerDisconnectedError only on
    // [ERROR:RECEIVER_PREMATURE_DISCONNECT]; the sync API wraps it.
    assert!(
        report.contains("BrokenPipeError") && report.contains("PeerDisconnectedError"),
        "{report}\n{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_api_transfers_plaintext_and_age_rt() {
    let Some(py) = Py::find() else { return };
    let (relay, _) = open_relay().await;
    let url = relay.connect_url();
    for (path, pass, mode, first) in [
        ("/py/api/plain", "", "", First::Consumer),
        ("/py/api/age-rt", "correct horse", "age-rt", First::Producer),
    ] {
        let data = pattern(1 << 20);
        let (writer, reader) = if first == First::Producer {
            let w = py.api(&["write", &url, path, pass, mode]);
            until(&relay, path, |s| arrived(s.producer)).await;
            (w, py.api(&["read", &url, path, pass]))
        } else {
            let r = py.api(&["read", &url, path, pass]);
            until(&relay, path, |s| arrived(s.consumer)).await;
            (py.api(&["write", &url, path, pass, mode]), r)
        };
        let (w, r) = tokio::join!(finish(writer, data.clone()), finish(reader, vec![]));
        assert_ok(&w, "API writer");
        assert_ok(&r, "API reader");
        assert!(r.stdout == data, "{path}: bytes differ");
    }
}

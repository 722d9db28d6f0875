//! Interop with the official Python client (`zebrastream-io` 0.5.4) through
//! our relay, both directions: our writer → Python reader and Python writer →
//! our reader, plaintext, age-rt and age, compared byte for byte.
//!
//! Skipped (with a message) when the Python venv is missing, except under CI.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use secrecy::SecretString;
use tokio::io::AsyncWriteExt;
use zebrastream::cipher::Format;
use zebrastream::client::{self, Config, Opening, Sealing, StreamWriter};
use zebrastream::relay::{Presence, Relay, RelayConfig, RelayHandle};

/// Runs the official client's file API: `write SRC` streams a file, `read DST` stores the stream.
const PY_SCRIPT: &str = r#"
import sys
import zebrastream.io.file as zf
role, url, path, file_name, mode, passphrase = sys.argv[1:7]
kw = dict(stream_path=path, connect_api_url=url, connect_timeout=60)
if mode != "plain":
    kw["passphrase"] = passphrase
if role == "write":
    if mode != "plain":
        kw["encryption_mode"] = mode
    with open(file_name, "rb") as src, zf.open("wb", **kw) as out:
        while True:
            block = src.read(65536)
            if not block:
                break
            out.write(block)
else:
    with zf.open("rb", **kw) as inp, open(file_name, "wb") as dst:
        while True:
            block = inp.read(65536)
            if not block:
                break
            dst.write(block)
"#;

const PASSPHRASE: &str = "interop passphrase 5e0d";

/// Deterministic payload of `len` bytes.
fn payload(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}

fn python_side(
    python: &Path,
    relay: &RelayHandle,
    role: &str,
    path: &str,
    file: &Path,
    mode: &str,
) -> tokio::process::Child {
    tokio::process::Command::new(python)
        .arg("-c")
        .arg(PY_SCRIPT)
        .arg(role)
        .arg(relay.connect_url())
        .arg(path)
        .arg(file)
        .arg(mode)
        .arg(PASSPHRASE)
        .env_remove("ZEBRASTREAM_ACCESS_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start python")
}

/// Our client's configuration and keys (writer's, reader's) for `mode`.
fn our_config(relay: &RelayHandle, path: &str, mode: &str) -> (Config, Sealing, Opening) {
    let format = match mode {
        "plain" => None,
        "age-rt" => Some(Format::AgeRt),
        _ => Some(Format::AgeV1),
    };
    let config = Config::builder(path)
        .connect_url(relay.connect_url())
        .connect_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let passphrase = || SecretString::from(PASSPHRASE);
    let keys = match format {
        Some(format) => (
            Sealing::Passphrase {
                passphrase: passphrase(),
                format,
            },
            Opening::passphrase(passphrase()),
        ),
        None => (Sealing::Plain, Opening::Plain),
    };
    (config, keys.0, keys.1)
}

async fn check_python_exit(child: tokio::process::Child, what: &str) {
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("python finished in time")
        .unwrap();
    assert!(
        output.status.success(),
        "{what}: python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Our writer → the Python reader.
async fn ours_to_python(mode: &str, len: usize) {
    let Some(python) = support::python() else {
        return;
    };
    let relay = Relay::bind(RelayConfig::open_loopback()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    let data = payload(len);
    std::fs::write(&src, &data).unwrap();
    let path = format!("/interop/ours-to-py/{mode}");
    let reader = python_side(&python, &relay, "read", &path, &dst, mode);
    let (config, sealing, _) = our_config(&relay, &path, mode);
    let report = client::push_file(&config, &sealing, &src)
        .await
        .unwrap_or_else(|e| panic!("{mode}: our writer: {e}"));
    assert_eq!(report.bytes, len as u64);
    check_python_exit(reader, mode).await;
    assert!(
        std::fs::read(&dst).unwrap() == data,
        "{mode}: payload differs"
    );
}

/// The Python writer → our reader.
async fn python_to_ours(mode: &str, len: usize) {
    let Some(python) = support::python() else {
        return;
    };
    let relay = Relay::bind(RelayConfig::open_loopback()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("src"), dir.path().join("dst"));
    let data = payload(len);
    std::fs::write(&src, &data).unwrap();
    let path = format!("/interop/py-to-ours/{mode}");
    let writer = python_side(&python, &relay, "write", &path, &src, mode);
    let (config, _, opening) = our_config(&relay, &path, mode);
    let report = client::pull_file(&config, &opening, &dst)
        .await
        .unwrap_or_else(|e| panic!("{mode}: our reader: {e}"));
    assert_eq!(report.bytes, len as u64);
    check_python_exit(writer, mode).await;
    assert!(
        std::fs::read(&dst).unwrap() == data,
        "{mode}: payload differs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_ours_to_python() {
    ours_to_python("plain", 300_001).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_python_to_ours() {
    python_to_ours("plain", 300_001).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn age_rt_ours_to_python() {
    ours_to_python("age-rt", 200_001).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn age_rt_python_to_ours() {
    python_to_ours("age-rt", 200_001).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn age_ours_to_python() {
    ours_to_python("age", 200_001).await;
}

/// A multiple of 64 KiB: the official writer ends it with an empty final
/// chunk (which age forbids), and we must still read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn age_python_to_ours_with_empty_final_chunk() {
    python_to_ours("age", 131_072).await;
}

/// Our writer dropped mid-stream: the official reader fails (no exit 0 with a
/// short file), plaintext and age-rt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_writer_fails_the_python_reader() {
    let Some(python) = support::python() else {
        return;
    };
    for mode in ["plain", "age-rt"] {
        let relay = Relay::bind(RelayConfig::open_loopback()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let dst = dir.path().join("dst");
        let path = format!("/interop/dropped/{mode}");
        let reader = python_side(&python, &relay, "read", &path, &dst, mode);
        let (config, sealing, _) = our_config(&relay, &path, mode);
        let mut writer = StreamWriter::connect(&config, &sealing).await.unwrap();
        writer.write_all(&payload(100_000)).await.unwrap();
        writer.flush().await.unwrap();
        // Drop only once the reader's GET is paired: a producer that vanishes
        // before that frees the path, and the reader then (rightly) waits for
        // the next producer (`relay_waiters.rs` tests that case).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while relay.stream_status(&path).consumer != Presence::Transferring {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{mode}: the reader never paired"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(writer);
        let output = tokio::time::timeout(Duration::from_secs(120), reader.wait_with_output())
            .await
            .expect("python finished in time")
            .unwrap();
        assert!(
            !output.status.success(),
            "{mode}: the Python reader accepted a cut-off stream"
        );
    }
}

//! The service example (`examples/gateway.rs`, plain hyper) as a user runs
//! it: its own handlers and server loop, reached with `curl` over real
//! sockets, in front of our relay. A request body streams into a
//! `StreamWriter`, a `StreamReader` streams out as a response body; a
//! failure on either side is an HTTP failure, never a clean short answer.

#![cfg(feature = "relay")]

#[allow(dead_code)]
#[path = "../examples/gateway.rs"]
mod gateway;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use gateway::Gateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use zebrastream::client::{Config, Opening, Sealing, SecretString, StreamWriter};
use zebrastream::relay::{CaptureTap, Presence, Relay, RelayConfig, RelayHandle};

const PASSPHRASE: &str = "gateway test passphrase";

/// A relay (recording what it forwards) and the gateway in front of it;
/// returns the gateway's base URL.
async fn start() -> (RelayHandle, Arc<CaptureTap>, String) {
    let tap = Arc::new(CaptureTap::new(16 << 20));
    let relay = Relay::bind(RelayConfig::open_loopback().tap(tap.clone()))
        .await
        .unwrap();
    let passphrase = || SecretString::from(PASSPHRASE);
    let gateway = Arc::new(Gateway {
        relay: Config::builder("/gateway")
            .connect_url(relay.connect_url())
            .build()
            .unwrap(),
        sealing: Sealing::passphrase(passphrase()),
        opening: Opening::passphrase(passphrase()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(gateway::serve(listener, gateway));
    (relay, tap, base)
}

fn curl() -> Command {
    let mut command = Command::new("curl");
    command
        .args(["--silent", "--show-error", "--fail", "--max-time", "60"])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

fn data(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// Waits until the relay runs a transfer on `path` (both sides paired).
async fn wait_until_transferring(relay: &RelayHandle, path: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while relay.stream_status(path).producer != Presence::Transferring {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never paired"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn require_curl() -> bool {
    let found = std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_ok();
    if !found && std::env::var_os("CI").is_some() {
        panic!("curl is required under CI=true");
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_put_and_get_stream_through_the_gateway_encrypted() {
    if !require_curl() {
        return;
    }
    let (relay, tap, base) = start().await;
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (dir.path().join("in.bin"), dir.path().join("out.bin"));
    let payload = data(5 << 20);
    std::fs::write(&src, &payload).unwrap();
    let url = format!("{base}/gateway/report");

    let get = curl().arg("-o").arg(&dst).arg(&url).output();
    let put = curl().arg("-T").arg(&src).arg(&url).output();
    let (get, put) = tokio::join!(get, put);
    let (get, put) = (get.unwrap(), put.unwrap());
    assert!(
        put.status.success(),
        "PUT: {}",
        String::from_utf8_lossy(&put.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&put.stdout),
        format!("/gateway/report: delivered {} bytes\n", payload.len())
    );
    assert!(
        get.status.success(),
        "GET: {}",
        String::from_utf8_lossy(&get.stderr)
    );
    assert!(std::fs::read(&dst).unwrap() == payload, "payload differs");
    // The relay forwarded ciphertext only.
    let wire = tap.bytes("/gateway/report");
    assert!(wire.starts_with(b"github.com/parsimonit/age-rt-encryption/v0.2\n-> scrypt "));
    assert!(!wire.windows(64).any(|w| w == &payload[1000..1064]));
    relay.shutdown().await;
}

/// A producer whose stream breaks off: the gateway's GET response is
/// aborted, so curl fails (no exit 0 with a short file).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_cut_at_the_source_fails_the_get() {
    if !require_curl() {
        return;
    }
    let (relay, _tap, base) = start().await;
    let path = "/gateway/cut";
    let get = tokio::spawn(curl().arg(format!("{base}{path}")).output());
    let config = Config::builder(path)
        .connect_url(relay.connect_url())
        .build()
        .unwrap();
    let sealing = Sealing::passphrase(SecretString::from(PASSPHRASE));
    let mut writer = StreamWriter::connect(&config, &sealing).await.unwrap();
    writer.write_all(&data(300_000)).await.unwrap();
    writer.flush().await.unwrap();
    wait_until_transferring(&relay, path).await;
    writer.abort();
    let get = get.await.unwrap().unwrap();
    // What was flushed may have come through (authenticated), but the
    // response did not end cleanly: curl fails.
    assert!(!get.status.success(), "curl exit 0 on a cut stream");
    assert!(get.stdout.len() <= 300_000);
    assert!(
        data(300_000).starts_with(&get.stdout),
        "served bytes differ"
    );
    relay.shutdown().await;
}

/// A client whose upload breaks off mid-body: the gateway aborts the upload,
/// the consumer's GET fails, and the PUT never reports delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_that_breaks_off_is_not_delivered() {
    if !require_curl() {
        return;
    }
    let (relay, _tap, base) = start().await;
    let path = "/gateway/broken-put";
    let get = tokio::spawn(curl().arg(format!("{base}{path}")).output());
    let addr = base.trim_start_matches("http://").to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!("PUT {path} HTTP/1.1\r\nhost: {addr}\r\ntransfer-encoding: chunked\r\n\r\n");
    tcp.write_all(head.as_bytes()).await.unwrap();
    let chunk = data(100_000);
    tcp.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
        .await
        .unwrap();
    tcp.write_all(&chunk).await.unwrap();
    tcp.write_all(b"\r\n").await.unwrap();
    // Break off only once the gateway's upload is paired with the consumer
    // (before that, hyper drops a handler whose request broke off, and the
    // consumer rightly keeps waiting for a producer).
    wait_until_transferring(&relay, path).await;
    // Gone without the terminating chunk.
    tcp.shutdown().await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), tcp.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(!answer.contains("201"), "{answer}");
    let get = get.await.unwrap().unwrap();
    assert!(!get.status.success(), "the consumer got exit 0");
    relay.shutdown().await;
}

/// The wrong key at the relay's end (a stream sealed with another
/// passphrase): the GET fails, and no byte of it is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_the_gateway_cannot_open_serves_nothing() {
    if !require_curl() {
        return;
    }
    let (relay, _tap, base) = start().await;
    let path = "/gateway/foreign";
    let get = tokio::spawn(curl().arg(format!("{base}{path}")).output());
    let config = Config::builder(path)
        .connect_url(relay.connect_url())
        .build()
        .unwrap();
    let sealing = Sealing::passphrase(SecretString::from("another passphrase"));
    let mut writer = StreamWriter::connect(&config, &sealing).await.unwrap();
    writer.write_all(b"not for this gateway").await.unwrap();
    let _ = writer.shutdown().await;
    let get = get.await.unwrap().unwrap();
    assert!(!get.status.success(), "curl exit 0");
    assert!(get.stdout.is_empty(), "{:?}", get.stdout);
    relay.shutdown().await;
}

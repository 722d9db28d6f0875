//! `curl` as producer (`--upload-file - -H 'Transfer-Encoding: chunked'`,
//! which sends `Expect: 100-continue`) and as consumer, against our relay.

mod support;

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use support::{ERROR_RECEIVER_PREMATURE_DISCONNECT, STATE_TRANSFER_SUCCESSFUL};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};
use zebrastream::relay::{CaptureTap, Presence, Relay, RelayConfig, RelayHandle, StreamStatus};

fn curl(bin: &PathBuf, args: &[&str]) -> Child {
    Command::new(bin)
        .args(["--silent", "--show-error", "--http1.1"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn curl")
}

/// A chunked upload from stdin. A stalled `100 Continue` would make curl
/// wait 60 s and the test time out, so this also checks that it is sent.
fn producer(bin: &PathBuf, url: &str) -> Child {
    curl(
        bin,
        &[
            "--upload-file",
            "-",
            "-H",
            "Transfer-Encoding: chunked",
            "-H",
            "Content-Type: application/x-test",
            "--expect100-timeout",
            "60",
            url,
        ],
    )
}

fn consumer(bin: &PathBuf, url: &str) -> Child {
    curl(bin, &["--no-buffer", "--fail", url])
}

/// Feeds `input` to stdin (unless the test took stdin over), closes it, and waits.
async fn finish(mut child: Child, input: Vec<u8>) -> Output {
    let stdin = child.stdin.take();
    let feeder = tokio::spawn(async move {
        if let Some(mut stdin) = stdin {
            let _ = stdin.write_all(&input).await;
        }
    });
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("curl finished within 30 s")
        .unwrap();
    feeder.await.unwrap();
    out
}

async fn until(relay: &RelayHandle, path: &str, cond: impl Fn(StreamStatus) -> bool) {
    for _ in 0..600 {
        if cond(relay.stream_status(path)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "{path}: state {:?} never reached",
        relay.stream_status(path)
    );
}

async fn relay() -> (RelayHandle, Arc<CaptureTap>) {
    let capture = Arc::new(CaptureTap::new(1 << 20));
    let relay = Relay::bind(RelayConfig::open_loopback().tap(capture.clone()))
        .await
        .unwrap();
    (relay, capture)
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 256) as u8).collect()
}

fn status_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn curl_to_curl_in_both_orders() {
    let Some(bin) = support::tool("curl") else {
        return;
    };
    let (relay, _) = relay().await;
    let payload = data(2 << 20);

    let url = relay.data_url("/curl/consumer-first");
    let get = consumer(&bin, &url);
    until(&relay, "/curl/consumer-first", |s| {
        s.consumer == Presence::Waiting
    })
    .await;
    let (put, got) = tokio::join!(
        finish(producer(&bin, &url), payload.clone()),
        finish(get, vec![])
    );
    assert!(put.status.success() && got.status.success());
    assert!(got.stdout == payload);
    assert_eq!(
        status_lines(&put).last().unwrap(),
        STATE_TRANSFER_SUCCESSFUL
    );

    let url = relay.data_url("/curl/producer-first");
    let mut put = producer(&bin, &url);
    let mut stdin = put.stdin.take().unwrap();
    stdin.write_all(&payload[..1000]).await.unwrap();
    until(&relay, "/curl/producer-first", |s| {
        s.producer == Presence::Waiting
    })
    .await;
    let get = tokio::spawn(finish(consumer(&bin, &url), vec![]));
    stdin.write_all(&payload[1000..]).await.unwrap();
    drop(stdin);
    let put = finish(put, vec![]).await;
    let got = get.await.unwrap();
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert!(got.stdout == payload);
    assert_eq!(
        status_lines(&put).last().unwrap(),
        STATE_TRANSFER_SUCCESSFUL
    );
}

#[tokio::test]
async fn curl_consumer_sees_the_producer_content_type() {
    let Some(bin) = support::tool("curl") else {
        return;
    };
    let (relay, _) = relay().await;
    let url = relay.data_url("/curl/headers");
    let get = curl(&bin, &["--no-buffer", "--fail", "--dump-header", "-", &url]);
    until(&relay, "/curl/headers", |s| s.consumer == Presence::Waiting).await;
    let (_, got) = tokio::join!(
        finish(producer(&bin, &url), b"x".to_vec()),
        finish(get, vec![])
    );
    let text = String::from_utf8_lossy(&got.stdout).to_ascii_lowercase();
    assert!(text.contains("content-type: application/x-test"), "{text}");
    assert!(text.contains("transfer-encoding: chunked"), "{text}");
}

#[tokio::test]
async fn curl_pair_through_the_connect_api_like_the_bash_producer() {
    let Some(bin) = support::tool("curl") else {
        return;
    };
    let (relay, _) = relay().await;
    let connect = format!("{}/curl/connect", relay.connect_url());
    let bearer = "Authorization: Bearer anything";
    let waiter = curl(
        &bin,
        &[
            "--fail",
            "--no-buffer",
            "-H",
            bearer,
            &format!("{connect}?mode=await-reader"),
        ],
    );
    until(&relay, "/curl/connect", |s| {
        s.producer == Presence::Connecting
    })
    .await;
    let other = finish(
        curl(
            &bin,
            &[
                "--fail",
                "-H",
                bearer,
                &format!("{connect}?mode=await-writer"),
            ],
        ),
        vec![],
    )
    .await;
    let first = finish(waiter, vec![]).await;
    let url = String::from_utf8(first.stdout).unwrap().trim().to_owned();
    assert_eq!(url, relay.data_url("/curl/connect"));
    assert_eq!(String::from_utf8(other.stdout).unwrap().trim(), url);
    let get = consumer(&bin, &url);
    let (put, got) = tokio::join!(
        finish(producer(&bin, &url), b"via connect".to_vec()),
        finish(get, vec![])
    );
    assert_eq!(got.stdout, b"via connect");
    assert_eq!(
        status_lines(&put).last().unwrap(),
        STATE_TRANSFER_SUCCESSFUL
    );
}

#[tokio::test]
async fn killed_curl_producer_makes_curl_consumer_fail() {
    let Some(bin) = support::tool("curl") else {
        return;
    };
    let (relay, capture) = relay().await;
    let url = relay.data_url("/curl/kill-producer");
    let get = consumer(&bin, &url);
    until(&relay, "/curl/kill-producer", |s| {
        s.consumer == Presence::Waiting
    })
    .await;
    let mut put = producer(&bin, &url);
    let mut stdin = put.stdin.take().unwrap();
    stdin.write_all(&data(100_000)).await.unwrap();
    for _ in 0..500 {
        if capture.total_len("/curl/kill-producer") >= 100_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    put.kill().await.unwrap();
    let got = finish(get, vec![]).await;
    // 18: "transfer closed with outstanding read data remaining".
    assert_eq!(
        got.status.code(),
        Some(18),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    drop(stdin);
}

#[tokio::test]
async fn killed_curl_consumer_is_reported_on_the_producer_status_lines() {
    let Some(bin) = support::tool("curl") else {
        return;
    };
    let (relay, capture) = relay().await;
    let url = relay.data_url("/curl/kill-consumer");
    let mut get = consumer(&bin, &url);
    until(&relay, "/curl/kill-consumer", |s| {
        s.consumer == Presence::Waiting
    })
    .await;
    let mut put = producer(&bin, &url);
    let mut stdin = put.stdin.take().unwrap();
    stdin.write_all(&data(50_000)).await.unwrap();
    for _ in 0..500 {
        if capture.total_len("/curl/kill-consumer") >= 50_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    get.kill().await.unwrap();
    // Keep the upload going until curl stops taking input.
    for _ in 0..500 {
        if stdin.write_all(&data(16_384)).await.is_err() {
            break;
        }
        if relay.stream_status("/curl/kill-consumer").producer == Presence::Absent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(stdin);
    let put = finish(put, vec![]).await;
    let lines = status_lines(&put);
    assert!(
        lines
            .iter()
            .any(|l| l == ERROR_RECEIVER_PREMATURE_DISCONNECT),
        "{lines:?}"
    );
    assert!(
        !lines.iter().any(|l| l == STATE_TRANSFER_SUCCESSFUL),
        "{lines:?}"
    );
}

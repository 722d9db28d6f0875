//! `GET /metrics`: the relay's counters in the Prometheus text format track
//! waiting requests, transfers, forwarded bytes and refused requests. They
//! are served on their own listener (`metrics_listen`), never on the public
//! one: they tell stream sizes to the byte.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zebrastream::client::{Config, Opening, Sealing, StreamReader, StreamWriter};
use zebrastream::relay::{Relay, RelayConfig, RelayHandle};

fn with_metrics() -> RelayConfig {
    RelayConfig::open_loopback().metrics_listen("127.0.0.1:0".parse().unwrap())
}

async fn metric(relay: &RelayHandle, line_prefix: &str) -> i64 {
    let addr = relay.metrics_addr().expect("a metrics listener");
    let url = format!("http://{addr}/metrics");
    let resp = reqwest::get(url).await.unwrap();
    assert!(resp.status().is_success());
    let ctype = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ctype.starts_with("text/plain; version=0.0.4"), "{ctype}");
    let text = resp.text().await.unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(line_prefix)
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0)
}

fn config(relay: &RelayHandle, path: &str) -> Config {
    Config::builder(path)
        .connect_url(relay.connect_url())
        .no_access_token()
        .build()
        .unwrap()
}

#[tokio::test]
async fn metrics_count_waiters_transfers_bytes_and_refusals() {
    let relay = Relay::bind(with_metrics()).await.unwrap();
    assert_eq!(metric(&relay, "zebrastream_waiting_requests ").await, 0);

    // A consumer waits: the gauge shows it; a second consumer on the same path is refused (409).
    let data_url = relay.data_url("/m/busy");
    let first = tokio::spawn(reqwest::get(data_url.clone()));
    let mut waited = 0;
    while metric(&relay, "zebrastream_waiting_requests ").await < 1 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += 1;
        assert!(waited < 500, "the parked consumer never showed as waiting");
    }
    let second = reqwest::get(data_url).await.unwrap();
    assert_eq!(second.status(), 409);
    assert_eq!(
        metric(&relay, "zebrastream_responses_total{code=\"409\"} ").await,
        1
    );
    first.abort();

    // A full transfer: counted as delivered, its bytes as forwarded.
    let payload = vec![7u8; 300_000];
    let wc = config(&relay, "/m/t");
    let rc = config(&relay, "/m/t");
    let producer = tokio::spawn(async move {
        let mut w = StreamWriter::connect(&wc, &Sealing::Plain).await.unwrap();
        w.write_all(&payload).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut r = StreamReader::connect(&rc, &Opening::Plain).await.unwrap();
    let mut got = Vec::new();
    r.read_to_end(&mut got).await.unwrap();
    producer.await.unwrap();
    assert_eq!(got.len(), 300_000);
    assert_eq!(
        metric(
            &relay,
            "zebrastream_transfers_total{outcome=\"delivered\"} "
        )
        .await,
        1
    );
    assert_eq!(
        metric(&relay, "zebrastream_forwarded_bytes_total ").await,
        300_000
    );
    assert_eq!(metric(&relay, "zebrastream_active_transfers ").await, 0);
    relay.shutdown().await;
}

/// The attack: anyone who reaches the relay reads `/metrics` and learns the
/// size of every transfer. The public listener has no `/metrics` (404), with
/// or without a metrics listener; that listener serves them and nothing else.
#[tokio::test]
async fn metrics_are_not_on_the_public_listener() {
    for config in [RelayConfig::open_loopback(), with_metrics()] {
        let relay = Relay::bind(config).await.unwrap();
        let public = format!("http://{}/metrics", relay.local_addr());
        let resp = reqwest::get(&public).await.unwrap();
        assert_eq!(resp.status(), 404, "public /metrics");
        let body = resp.text().await.unwrap();
        assert!(!body.contains("zebrastream_"), "{body}");
        if let Some(addr) = relay.metrics_addr() {
            assert_ne!(addr, relay.local_addr());
            let served = reqwest::get(format!("http://{addr}/metrics"))
                .await
                .unwrap();
            assert_eq!(served.status(), 200);
            assert!(served
                .text()
                .await
                .unwrap()
                .contains("zebrastream_forwarded_bytes_total"));
            let api = reqwest::get(format!("http://{addr}/data/x")).await.unwrap();
            assert_eq!(api.status(), 404, "the metrics listener serves no API");
        }
        relay.shutdown().await;
    }
}

//! Relay semantics in the spirit of piping-server-check, driven over real
//! HTTP/1.1 with reqwest and raw sockets against an in-process relay.

mod support;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use support::{ERROR_RECEIVER_PREMATURE_DISCONNECT, STATE_TRANSFER_SUCCESSFUL};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use zebrastream::relay::{CaptureTap, ForwardTap, Relay, RelayConfig, RelayHandle, TapVerdict};

type Chunks = mpsc::Sender<Result<Bytes, io::Error>>;

async fn relay() -> RelayHandle {
    // A hundred pairs at once from 127.0.0.1: above the per-address defaults.
    let config = RelayConfig::open_loopback()
        .max_connections_per_ip(4096)
        .stream_quota(4096);
    Relay::bind(config).await.expect("bind relay")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .http1_only()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// Starts a streaming PUT; returns the chunk sender and the response task.
fn put_stream(url: String) -> (Chunks, JoinHandle<reqwest::Result<reqwest::Response>>) {
    let (tx, rx) = mpsc::channel(4);
    let body = reqwest::Body::wrap_stream(ReceiverStream::new(rx));
    let task = tokio::spawn(async move { client().put(url).body(body).send().await });
    (tx, task)
}

/// A whole PUT: returns the status lines.
async fn put_all(url: String, data: Vec<u8>) -> Vec<String> {
    let resp = client().put(url).body(data).send().await.expect("put");
    assert_eq!(resp.status(), 200);
    lines(resp.text().await.expect("status body"))
}

fn lines(text: String) -> Vec<String> {
    text.lines().map(str::to_owned).collect()
}

/// A whole GET: status, and body or the error that ended it.
async fn get_all(url: String) -> (u16, Result<Vec<u8>, reqwest::Error>) {
    let resp = client().get(url).send().await.expect("get");
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => body.extend_from_slice(&c),
            Err(e) => return (status, Err(e)),
        }
    }
    (status, Ok(body))
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Retries `f` until it returns `Some`, for state the relay updates right
/// after a client disconnects (bounded: 5 s).
async fn eventually<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..100 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not reached within 5 s");
}

#[tokio::test]
async fn producer_first_then_consumer() {
    let relay = relay().await;
    let url = relay.data_url("/order/pf");
    let data = pattern(300_000, 1);
    let producer = tokio::spawn(put_all(url.clone(), data.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, body) = get_all(url).await;
    assert_eq!(status, 200);
    assert_eq!(body.unwrap(), data);
    let status_lines = producer.await.unwrap();
    assert_eq!(
        status_lines.last().map(String::as_str),
        Some(STATE_TRANSFER_SUCCESSFUL)
    );
}

#[tokio::test]
async fn consumer_first_then_producer_with_content_type() {
    let relay = relay().await;
    let url = relay.data_url("/order/cf");
    let consumer = tokio::spawn({
        let url = url.clone();
        async move {
            let resp = client().get(url).send().await.unwrap();
            let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
            (ct, resp.bytes().await.unwrap())
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let resp = client()
        .put(&url)
        .header("content-type", "text/csv")
        .body("a,b\n1,2\n")
        .send()
        .await
        .unwrap();
    let status_lines = lines(resp.text().await.unwrap());
    let (ct, body) = consumer.await.unwrap();
    assert_eq!(ct, "text/csv");
    assert_eq!(&body[..], b"a,b\n1,2\n");
    assert_eq!(status_lines.last().unwrap(), STATE_TRANSFER_SUCCESSFUL);
}

#[tokio::test]
async fn empty_and_one_byte_transfers() {
    let relay = relay().await;
    for (path, data) in [("/size/zero", vec![]), ("/size/one", vec![42u8])] {
        let url = relay.data_url(path);
        let producer = tokio::spawn(put_all(url.clone(), data.clone()));
        let (status, body) = get_all(url).await;
        assert_eq!(status, 200);
        assert_eq!(body.unwrap(), data);
        assert_eq!(
            producer.await.unwrap().last().unwrap(),
            STATE_TRANSFER_SUCCESSFUL
        );
    }
}

#[tokio::test]
async fn second_producer_and_consumer_are_refused_with_409() {
    let relay = relay().await;
    let url = relay.data_url("/busy");
    // A waiting producer: a second one is refused.
    let (tx, first) = put_stream(url.clone());
    tx.send(Ok(Bytes::from_static(b"first"))).await.unwrap();
    let second = eventually(|| async {
        let r = client().put(&url).body("second").send().await.unwrap();
        (r.status() == 409).then_some(r)
    })
    .await;
    assert!(second
        .text()
        .await
        .unwrap()
        .contains("producer is already connected"));
    // Pair it; during the transfer a second consumer is refused too.
    let resp = client().get(&url).send().await.unwrap();
    let mut stream = resp.bytes_stream();
    assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"first");
    let other = client().get(&url).send().await.unwrap();
    assert_eq!(other.status(), 409);
    assert!(other
        .text()
        .await
        .unwrap()
        .contains("consumer is already connected"));
    let again = client().put(&url).body("third").send().await.unwrap();
    assert_eq!(again.status(), 409);
    drop(tx);
    assert!(
        stream.next().await.is_none(),
        "clean end after the upload ended"
    );
    let status = first.await.unwrap().unwrap().text().await.unwrap();
    assert!(status.ends_with(&format!("{STATE_TRANSFER_SUCCESSFUL}\n")));
}

#[tokio::test]
async fn path_is_reusable_after_a_transfer() {
    let relay = relay().await;
    let url = relay.data_url("/reuse");
    for round in 0..3u8 {
        let data = pattern(1000, round);
        let producer = tokio::spawn(put_all(url.clone(), data.clone()));
        let (_, body) = get_all(url.clone()).await;
        assert_eq!(body.unwrap(), data, "round {round}");
        assert_eq!(
            producer.await.unwrap().last().unwrap(),
            STATE_TRANSFER_SUCCESSFUL
        );
    }
}

#[tokio::test]
async fn sender_cancel_while_waiting_frees_the_path() {
    let relay = relay().await;
    let url = relay.data_url("/cancel/sender");
    let (tx, first) = put_stream(url.clone());
    tx.send(Ok(Bytes::from_static(b"x"))).await.unwrap();
    eventually(|| async {
        let r = client().put(&url).body("probe").send().await.unwrap();
        (r.status() == 409).then_some(())
    })
    .await;
    first.abort();
    drop(tx);
    // A new sender is accepted once the relay noticed the first one left.
    let data = pattern(5000, 7);
    let consumer = tokio::spawn(get_all(url.clone()));
    let status_lines = eventually(|| {
        let (url, data) = (url.clone(), data.clone());
        async move {
            let r = client().put(url).body(data).send().await.unwrap();
            (r.status() == 200).then_some(r)
        }
    })
    .await
    .text()
    .await
    .unwrap();
    assert!(status_lines.ends_with(&format!("{STATE_TRANSFER_SUCCESSFUL}\n")));
    assert_eq!(consumer.await.unwrap().1.unwrap(), data);
}

#[tokio::test]
async fn receiver_cancel_while_waiting_then_a_new_pair_works() {
    let relay = relay().await;
    let url = relay.data_url("/cancel/receiver");
    let waiting = tokio::spawn(get_all(url.clone()));
    tokio::time::sleep(Duration::from_millis(100)).await;
    waiting.abort();
    let _ = waiting.await;
    let consumer = eventually(|| {
        let url = url.clone();
        async move {
            let r = client()
                .get(url)
                .timeout(Duration::from_millis(300))
                .send()
                .await;
            // 409 while the old consumer is still registered; a timeout means
            // this one is now the waiting consumer: drop it and wait properly.
            match r {
                Ok(r) if r.status() == 409 => None,
                _ => Some(()),
            }
        }
    });
    consumer.await;
    let data = pattern(777, 3);
    let consumer = eventually(|| {
        let url = url.clone();
        async move {
            // The probe above may still be registered for a moment.
            let probe = client()
                .get(url.clone())
                .timeout(Duration::from_millis(50))
                .send()
                .await;
            match probe {
                Ok(r) if r.status() == 409 => None,
                _ => Some(tokio::spawn(get_all(url))),
            }
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let status_lines = put_all(url, data.clone()).await;
    assert_eq!(consumer.await.unwrap().1.unwrap(), data);
    assert_eq!(status_lines.last().unwrap(), STATE_TRANSFER_SUCCESSFUL);
}

#[tokio::test]
async fn bytes_stream_through_one_at_a_time() {
    let relay = relay().await;
    let url = relay.data_url("/byte-by-byte");
    let (tx, producer) = put_stream(url.clone());
    let resp = client().get(&url).send().await.unwrap();
    let mut stream = resp.bytes_stream();
    for i in 0..32u8 {
        tx.send(Ok(Bytes::from(vec![i]))).await.unwrap();
        // The byte must arrive before the next one is even written.
        let got = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("byte forwarded without waiting for more")
            .unwrap()
            .unwrap();
        assert_eq!(&got[..], &[i]);
    }
    drop(tx);
    assert!(stream.next().await.is_none());
    let status = producer.await.unwrap().unwrap().text().await.unwrap();
    assert!(status.ends_with(&format!("{STATE_TRANSFER_SUCCESSFUL}\n")));
}

#[tokio::test]
async fn producer_dying_aborts_the_consumer_response() {
    let relay = relay().await;
    let addr = relay.local_addr();
    let url = relay.data_url("/die/producer");
    let consumer = tokio::spawn(get_all(url));
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A raw producer that sends two chunks and then closes without the terminator.
    let mut sock = TcpStream::connect(addr).await.unwrap();
    sock.write_all(
        b"PUT /data/die/producer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n",
    )
    .await
    .unwrap();
    let mut head = [0u8; 12];
    sock.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    drop(sock);
    let (status, body) = consumer.await.unwrap();
    assert_eq!(status, 200);
    let err = body.expect_err("a producer crash must never look like a clean end");
    assert!(err.is_decode() || err.is_body(), "{err:?}");
}

#[tokio::test]
async fn consumer_leaving_is_reported_to_the_producer() {
    let relay = relay().await;
    let url = relay.data_url("/die/consumer");
    let (tx, producer) = put_stream(url.clone());
    let resp = client().get(&url).send().await.unwrap();
    let mut stream = resp.bytes_stream();
    tx.send(Ok(Bytes::from_static(b"part one"))).await.unwrap();
    assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"part one");
    drop(stream);
    // Keep writing until the relay notices; the status channel says why.
    let status = producer_status_after_peer_left(&tx, producer).await;
    assert!(
        status
            .lines()
            .any(|l| l == ERROR_RECEIVER_PREMATURE_DISCONNECT),
        "{status:?}"
    );
    assert!(!status.contains(STATE_TRANSFER_SUCCESSFUL));
}

async fn producer_status_after_peer_left(
    tx: &Chunks,
    producer: JoinHandle<reqwest::Result<reqwest::Response>>,
) -> String {
    let resp = producer.await.unwrap().unwrap();
    let reader = tokio::spawn(async move { resp.text().await.unwrap_or_default() });
    for _ in 0..200 {
        if reader.is_finished() || tx.send(Ok(Bytes::from_static(b"more"))).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    reader.await.unwrap()
}

#[tokio::test]
async fn connect_pairs_in_both_orders_and_answers_the_data_url() {
    let relay = relay().await;
    let connect = relay.connect_url();
    for (first, second, path) in [
        ("await-reader", "await-writer", "/connect/a"),
        ("await-writer", "await-reader", "/connect/b"),
    ] {
        let waiter = tokio::spawn(client().get(format!("{connect}{path}?mode={first}")).send());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiter.is_finished(), "the first side waits");
        let other = client()
            .get(format!("{connect}{path}?mode={second}&timeout=5"))
            .send()
            .await
            .unwrap();
        assert_eq!(other.status(), 200);
        assert!(other.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        assert_eq!(other.text().await.unwrap().trim(), relay.data_url(path));
        let first = waiter.await.unwrap().unwrap();
        assert_eq!(first.status(), 200);
        assert_eq!(first.text().await.unwrap().trim(), relay.data_url(path));
    }
}

#[tokio::test]
async fn connect_is_answered_by_a_waiting_data_request_and_times_out_cleanly() {
    let relay = relay().await;
    let connect = relay.connect_url();
    let consumer = tokio::spawn(get_all(relay.data_url("/connect/data")));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = client()
        .get(format!("{connect}/connect/data?mode=await-reader"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    put_all(relay.data_url("/connect/data"), b"hi".to_vec()).await;
    assert_eq!(consumer.await.unwrap().1.unwrap(), b"hi");

    let r = client()
        .get(format!(
            "{connect}/connect/lonely?mode=await-writer&timeout=0.2"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    assert!(r.text().await.unwrap().contains("no producer arrived"));
    let r = client()
        .get(format!("{connect}/connect/x?mode=sideways"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = client()
        .get(format!(
            "{connect}/connect/x?mode=await-reader&redirect=true&timeout=0"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504, "redirect only once paired");
}

/// Sends one raw request line (no URL normalisation on the way) and returns the status code.
async fn raw_status(relay: &RelayHandle, method: &str, target: &str) -> u16 {
    let mut sock = TcpStream::connect(relay.local_addr()).await.unwrap();
    let head = format!("{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    sock.write_all(head.as_bytes()).await.unwrap();
    let mut status = [0u8; 12];
    sock.read_exact(&mut status).await.unwrap();
    std::str::from_utf8(&status[9..12])
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn odd_paths_methods_and_health() {
    let relay = relay().await;
    for bad in [
        "/data/a/../b",
        "/data/a//b",
        "/data/",
        "/data/a/",
        "/data/a%20b",
        "/data/%2e%2e/etc",
        "/v0/a/./b?mode=await-reader",
    ] {
        assert_eq!(raw_status(&relay, "GET", bad).await, 400, "{bad}");
    }
    assert_eq!(raw_status(&relay, "DELETE", "/data/x").await, 405);
    assert_eq!(
        raw_status(&relay, "PUT", "/v0/x?mode=await-reader").await,
        405
    );
    assert_eq!(raw_status(&relay, "GET", "/elsewhere").await, 404);
    assert_eq!(raw_status(&relay, "GET", "/healthz").await, 200);
}

#[tokio::test]
async fn hundred_simultaneous_pairs_are_byte_exact() {
    let relay = relay().await;
    let mut tasks = Vec::new();
    for i in 0..100u32 {
        let url = relay.data_url(&format!("/many/{i}"));
        let data = pattern(20_000 + i as usize * 97, i as u8);
        tasks.push(tokio::spawn(async move {
            let producer = tokio::spawn(put_all(url.clone(), data.clone()));
            let (_, body) = get_all(url).await;
            assert_eq!(body.unwrap(), data, "pair {i}");
            assert_eq!(
                producer.await.unwrap().last().unwrap(),
                STATE_TRANSFER_SUCCESSFUL
            );
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn capture_tap_sees_exactly_the_forwarded_bytes() {
    let capture = Arc::new(CaptureTap::new(1 << 20));
    let relay = Relay::bind(RelayConfig::open_loopback().tap(capture.clone()))
        .await
        .unwrap();
    let url = relay.data_url("/tapped");
    let data = pattern(100_000, 9);
    let producer = tokio::spawn(put_all(url.clone(), data.clone()));
    assert_eq!(get_all(url).await.1.unwrap(), data);
    producer.await.unwrap();
    assert_eq!(capture.bytes("/tapped"), data);
}

/// A malicious relay: forwards the first `keep` bytes, then ends the stream cleanly.
struct TailDropper {
    keep: usize,
    seen: std::sync::Mutex<usize>,
}

impl ForwardTap for TailDropper {
    fn forward(&self, _path: &str, chunk: &mut BytesMut) -> TapVerdict {
        let mut seen = self.seen.lock().unwrap();
        if *seen >= self.keep {
            return TapVerdict::EndStream;
        }
        chunk.truncate(self.keep - *seen);
        *seen += chunk.len();
        TapVerdict::Forward
    }
}

#[tokio::test]
async fn tap_can_cut_the_stream_cleanly_like_a_malicious_relay() {
    let tap = Arc::new(TailDropper {
        keep: 10,
        seen: Default::default(),
    });
    let relay = Relay::bind(RelayConfig::open_loopback().tap(tap))
        .await
        .unwrap();
    let url = relay.data_url("/evil");
    let (tx, producer) = put_stream(url.clone());
    let consumer = tokio::spawn(get_all(url));
    for _ in 0..4 {
        tx.send(Ok(Bytes::from(vec![7u8; 8]))).await.unwrap();
    }
    drop(tx);
    let (_, body) = consumer.await.unwrap();
    assert_eq!(
        body.unwrap(),
        vec![7u8; 10],
        "clean, short end: only crypto can tell"
    );
    let status = producer.await.unwrap().unwrap().text().await.unwrap();
    assert!(status.ends_with(&format!("{STATE_TRANSFER_SUCCESSFUL}\n")));
}

#[tokio::test]
async fn abort_kills_both_sides_mid_stream() {
    let relay = relay().await;
    let url = relay.data_url("/killed");
    let (tx, producer) = put_stream(url.clone());
    let resp = client().get(&url).send().await.unwrap();
    let mut stream = resp.bytes_stream();
    tx.send(Ok(Bytes::from_static(b"before"))).await.unwrap();
    assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"before");
    relay.abort();
    let end = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .unwrap();
    assert!(
        matches!(end, Some(Err(_))),
        "consumer must see an error, got {end:?}"
    );
    let status = match producer.await.unwrap() {
        Ok(resp) => resp.text().await,
        Err(e) => Err(e),
    };
    if let Ok(text) = status {
        panic!("producer saw a clean status body: {text:?}");
    }
}

#[tokio::test]
async fn graceful_shutdown_finishes_transfers_and_releases_waiters() {
    let relay = relay().await;
    let url = relay.data_url("/graceful/transfer");
    let waiter = tokio::spawn(get_all(relay.data_url("/graceful/waiter")));
    let (tx, producer) = put_stream(url.clone());
    let resp = client().get(&url).send().await.unwrap();
    let mut stream = resp.bytes_stream();
    tx.send(Ok(Bytes::from_static(b"one "))).await.unwrap();
    assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"one ");
    tokio::time::sleep(Duration::from_millis(50)).await;
    let shutdown = tokio::spawn(relay.shutdown());
    let (status, _) = waiter.await.unwrap();
    assert_eq!(status, 503, "a waiter gets a clean error");
    tx.send(Ok(Bytes::from_static(b"two"))).await.unwrap();
    drop(tx);
    let mut rest = Vec::new();
    while let Some(chunk) = stream.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(rest, b"two");
    let status = producer.await.unwrap().unwrap().text().await.unwrap();
    assert!(status.ends_with(&format!("{STATE_TRANSFER_SUCCESSFUL}\n")));
    tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("shutdown completes once the transfer is done")
        .unwrap();
}

#[tokio::test]
async fn post_uploads_and_connect_redirect_on_request() {
    let relay = relay().await;
    let url = relay.data_url("/post");
    let consumer = tokio::spawn(get_all(url.clone()));
    let resp = client().post(&url).body("posted").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp
        .text()
        .await
        .unwrap()
        .ends_with(&format!("{STATE_TRANSFER_SUCCESSFUL}\n")));
    assert_eq!(consumer.await.unwrap().1.unwrap(), b"posted");

    // redirect=true: 307 to the data URL instead of the URL as text.
    let no_follow = reqwest::Client::builder()
        .http1_only()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let waiter = tokio::spawn(
        client()
            .get(format!("{}/redir?mode=await-writer", relay.connect_url()))
            .send(),
    );
    let r = no_follow
        .get(format!(
            "{}/redir?mode=await-reader&redirect=true",
            relay.connect_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 307);
    assert_eq!(
        r.headers()["location"].to_str().unwrap(),
        relay.data_url("/redir")
    );
    assert_eq!(waiter.await.unwrap().unwrap().status(), 200);
}

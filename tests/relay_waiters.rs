//! Requests that wait for their peer on plain HTTP/1.1 are parked before
//! hyper serves their connection (`relay::parking`). These tests drive
//! parked waiters of every kind over raw sockets and check that they pair,
//! answer and keep their connection exactly like requests hyper read.

mod support;

use std::time::Duration;

use support::STATE_TRANSFER_SUCCESSFUL;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use zebrastream::relay::{Presence, Relay, RelayConfig, RelayHandle, StreamStatus};

async fn relay() -> RelayHandle {
    // Hundreds of waiters from 127.0.0.1: above the per-address defaults.
    let config = RelayConfig::open_loopback()
        .max_connections_per_ip(4096)
        .stream_quota(4096);
    Relay::bind(config).await.expect("bind relay")
}

fn pattern(len: usize, seed: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + seed * 7) as u8).collect()
}

async fn raw(relay: &RelayHandle, head: &str) -> TcpStream {
    let mut sock = TcpStream::connect(relay.local_addr()).await.unwrap();
    sock.write_all(head.as_bytes()).await.unwrap();
    sock
}

fn chunk(data: &[u8]) -> Vec<u8> {
    let mut framed = format!("{:x}\r\n", data.len()).into_bytes();
    framed.extend_from_slice(data);
    framed.extend_from_slice(b"\r\n");
    framed
}

/// Reads one response whose body is chunked: (status, head, de-chunked body).
async fn read_chunked_response(sock: &mut TcpStream) -> (u16, String, Vec<u8>) {
    let mut bytes = Vec::new();
    let head_end = loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let mut buf = [0u8; 4096];
        let n = sock.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection ended inside the response head");
        bytes.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8(bytes[..head_end].to_vec()).unwrap();
    let status = head[9..12].parse().unwrap();
    let mut rest = bytes[head_end..].to_vec();
    let mut body = Vec::new();
    loop {
        // One chunk: size line, data, CRLF; the zero chunk ends the body.
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            let mut buf = [0u8; 65536];
            let n = sock.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection ended inside the chunked body");
            rest.extend_from_slice(&buf[..n]);
            continue;
        };
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16).unwrap();
        let need = line_end + 2 + size + 2;
        while rest.len() < need {
            let mut buf = [0u8; 65536];
            let n = sock.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection ended inside a chunk");
            rest.extend_from_slice(&buf[..n]);
        }
        if size == 0 {
            return (status, head, body);
        }
        body.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
        rest.drain(..need);
    }
}

/// Reads a response to the end of the connection: (status, whole text).
async fn read_to_close(sock: &mut TcpStream) -> (u16, String) {
    let mut bytes = Vec::new();
    sock.read_to_end(&mut bytes).await.unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

async fn eventually(relay: &RelayHandle, path: &str, want: impl Fn(StreamStatus) -> bool) {
    for _ in 0..200 {
        if want(relay.stream_status(path)) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{path}: status stayed {:?}", relay.stream_status(path));
}

#[tokio::test]
async fn many_parked_waiters_of_every_kind_pair_byte_exact() {
    const N: usize = 60;
    let relay = relay().await;
    let connect = |path: &str, mode: &str| {
        format!(
            "GET /v0{path}?mode={mode} HTTP/1.1\r\nHost: relay.test\r\nConnection: close\r\n\r\n"
        )
    };
    let put = |path: &str| {
        format!("PUT /data{path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    };
    let get =
        |path: &str| format!("GET /data{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");

    // Park N consumers, N producers (each with its first chunk already sent)
    // and N Connect waiters, all on distinct paths.
    let mut consumers = Vec::new();
    let mut producers = Vec::new();
    let mut waiters = Vec::new();
    for i in 0..N {
        consumers.push(raw(&relay, &get(&format!("/c/{i}"))).await);
        let mut producer = raw(&relay, &put(&format!("/p/{i}"))).await;
        producer.write_all(&chunk(&pattern(1000, i))).await.unwrap();
        producers.push(producer);
        waiters.push(raw(&relay, &connect(&format!("/w/{i}"), "await-reader")).await);
    }
    for i in 0..N {
        eventually(&relay, &format!("/c/{i}"), |s| {
            s.consumer == Presence::Waiting
        })
        .await;
        eventually(&relay, &format!("/p/{i}"), |s| {
            s.producer == Presence::Waiting
        })
        .await;
        eventually(&relay, &format!("/w/{i}"), |s| {
            s.producer == Presence::Connecting
        })
        .await;
    }

    let mut tasks = JoinSet::new();
    for (i, mut consumer) in consumers.into_iter().enumerate() {
        // A producer arrives for each parked consumer.
        let mut producer = raw(&relay, &put(&format!("/c/{i}"))).await;
        tasks.spawn(async move {
            let data = pattern(5000 + i, i);
            producer.write_all(&chunk(&data[..100])).await.unwrap();
            producer.write_all(&chunk(&data[100..])).await.unwrap();
            producer.write_all(b"0\r\n\r\n").await.unwrap();
            let (status, head, body) = read_chunked_response(&mut consumer).await;
            assert_eq!(status, 200, "{head}");
            assert!(head.contains("application/octet-stream"), "{head}");
            assert_eq!(body, data, "consumer {i}");
            let (status, text) = read_to_close(&mut producer).await;
            assert_eq!(status, 200);
            assert!(text.contains(STATE_TRANSFER_SUCCESSFUL), "{text}");
        });
    }
    for (i, mut producer) in producers.into_iter().enumerate() {
        // A consumer arrives for each parked producer.
        let mut consumer = raw(&relay, &get(&format!("/p/{i}"))).await;
        tasks.spawn(async move {
            let rest = pattern(3000, i + 1);
            producer.write_all(&chunk(&rest)).await.unwrap();
            producer.write_all(b"0\r\n\r\n").await.unwrap();
            let (status, _, body) = read_chunked_response(&mut consumer).await;
            assert_eq!(status, 200);
            let mut want = pattern(1000, i);
            want.extend_from_slice(&rest);
            assert_eq!(body, want, "producer {i}");
            let (status, text) = read_to_close(&mut producer).await;
            assert_eq!(status, 200);
            assert!(text.contains(STATE_TRANSFER_SUCCESSFUL), "{text}");
        });
    }
    for (i, mut waiter) in waiters.into_iter().enumerate() {
        // The opposite Connect waiter answers both.
        let mut other = raw(&relay, &connect(&format!("/w/{i}"), "await-writer")).await;
        tasks.spawn(async move {
            let url = format!("http://relay.test/data/w/{i}");
            for sock in [&mut waiter, &mut other] {
                let (status, text) = read_to_close(sock).await;
                assert_eq!(status, 200, "{text}");
                assert!(text.ends_with(&format!("\r\n\r\n{url}\n")), "{text}");
            }
        });
    }
    // A parked socket whose unread bytes hyper could not see would hang here.
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
    })
    .await
    .expect("every pair finishes");
    for i in 0..N {
        for path in [format!("/c/{i}"), format!("/p/{i}"), format!("/w/{i}")] {
            eventually(&relay, &path, |s| s == StreamStatus::default()).await;
        }
    }
}

#[tokio::test]
async fn a_parked_producer_that_vanishes_after_sending_frees_its_path() {
    let relay = relay().await;
    // Its body bytes stay unread in the kernel and its FIN comes after them,
    // so the relay notices it at once as long as they fit in the relay's
    // socket receive window (beyond that, only the data wait frees the path).
    for sent in [0usize, 32 * 1024] {
        let path = format!("/vanish/{sent}");
        let mut producer = raw(
            &relay,
            &format!("PUT /data{path} HTTP/1.1\r\nHost: x\r\nContent-Length: 9999999\r\n\r\n"),
        )
        .await;
        producer.write_all(&vec![7u8; sent]).await.unwrap();
        eventually(&relay, &path, |s| s.producer == Presence::Waiting).await;
        drop(producer);
        eventually(&relay, &path, |s| s == StreamStatus::default()).await;
    }
    // A Connect waiter and a consumer that vanish are withdrawn too.
    let waiter = raw(
        &relay,
        "GET /v0/vanish/w?mode=await-writer HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    let consumer = raw(&relay, "GET /data/vanish/c HTTP/1.1\r\nHost: x\r\n\r\n").await;
    eventually(&relay, "/vanish/w", |s| s.consumer == Presence::Connecting).await;
    eventually(&relay, "/vanish/c", |s| s.consumer == Presence::Waiting).await;
    drop((waiter, consumer));
    eventually(&relay, "/vanish/w", |s| s == StreamStatus::default()).await;
    eventually(&relay, "/vanish/c", |s| s == StreamStatus::default()).await;
}

/// A producer that sends a little and breaks off at once, into a consumer
/// that waits: the consumer gets its response, those bytes and an abort.
/// Never a wait for another producer, never a closed connection without a
/// response (the CLI's reader said "could not connect" then), never a clean
/// end. The producer's FIN is there before the relay reads its head, so
/// "paired" and "the client left" are ready at once; each went either way
/// before, so 20 rounds.
#[tokio::test]
async fn a_producer_that_breaks_off_at_once_reaches_its_waiting_consumer_cut_off() {
    let relay = relay().await;
    for round in 0..20 {
        let path = format!("/cut-at-once/{round}");
        let mut consumer = raw(
            &relay,
            &format!("GET /data{path} HTTP/1.1\r\nHost: x\r\n\r\n"),
        )
        .await;
        eventually(&relay, &path, |s| s.consumer == Presence::Waiting).await;
        let mut upload =
            format!("PUT /data{path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
                .into_bytes();
        upload.extend_from_slice(&chunk(b"partial\n"));
        let mut producer = raw(&relay, "").await;
        producer.write_all(&upload).await.unwrap();
        producer.shutdown().await.unwrap();
        let (status, text) =
            tokio::time::timeout(Duration::from_secs(10), read_to_close(&mut consumer))
                .await
                .unwrap_or_else(|_| panic!("{path}: the consumer still waits after 10 s"));
        assert_eq!(status, 200, "{path}: {text:?}");
        assert!(text.contains("partial\n"), "{path}: {text:?}");
        assert!(
            !text.ends_with("0\r\n\r\n"),
            "{path}: a cut-off upload ended cleanly"
        );
    }
}

#[tokio::test]
async fn a_parked_request_keeps_its_connection_alive_and_its_head_may_come_in_pieces() {
    let relay = relay().await;
    let mut consumer = TcpStream::connect(relay.local_addr()).await.unwrap();
    for piece in ["GET /data/pie", "ces HTTP/1.1\r\nHo", "st: x\r\n", "\r\n"] {
        consumer.write_all(piece.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eventually(&relay, "/pieces", |s| s.consumer == Presence::Waiting).await;
    let mut producer = raw(
        &relay,
        "PUT /data/pieces HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    )
    .await;
    let (status, _, body) = read_chunked_response(&mut consumer).await;
    assert_eq!((status, body.as_slice()), (200, &b"hello"[..]));
    let (status, text) = read_to_close(&mut producer).await;
    assert_eq!(status, 200);
    assert!(text.contains(STATE_TRANSFER_SUCCESSFUL), "{text}");
    // The same connection serves a next request (keep-alive).
    consumer
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (status, text) = read_to_close(&mut consumer).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.ends_with("\r\n\r\nok\n"), "{text}");
}

#[tokio::test]
async fn a_parked_producer_gets_100_continue_only_once_paired() {
    let relay = relay().await;
    let mut producer = raw(
        &relay,
        "PUT /data/expect HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
         Expect: 100-continue\r\nConnection: close\r\n\r\n",
    )
    .await;
    eventually(&relay, "/expect", |s| s.producer == Presence::Waiting).await;
    let mut early = [0u8; 64];
    let waited = tokio::time::timeout(Duration::from_millis(300), producer.read(&mut early)).await;
    assert!(waited.is_err(), "nothing is sent while the producer waits");

    let mut consumer = raw(
        &relay,
        "GET /data/expect HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    let mut interim = Vec::new();
    while !interim.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(producer.read(&mut byte).await.unwrap(), 1);
        interim.push(byte[0]);
    }
    assert_eq!(interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    producer.write_all(&chunk(b"payload")).await.unwrap();
    producer.write_all(b"0\r\n\r\n").await.unwrap();
    let (status, _, body) = read_chunked_response(&mut consumer).await;
    assert_eq!((status, body.as_slice()), (200, &b"payload"[..]));
    let (status, text) = read_to_close(&mut producer).await;
    assert_eq!(status, 200);
    assert!(text.contains(STATE_TRANSFER_SUCCESSFUL), "{text}");
}

#[tokio::test]
async fn parked_answers_409_504_and_503_come_from_hyper_as_before() {
    let config = RelayConfig::open_loopback().data_wait(Duration::from_millis(300));
    let relay = Relay::bind(config).await.unwrap();
    let get = "GET /data/refused HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut first = raw(&relay, get).await;
    eventually(&relay, "/refused", |s| s.consumer == Presence::Waiting).await;
    let (status, text) = read_to_close(&mut raw(&relay, get).await).await;
    assert_eq!(status, 409, "{text}");
    let (status, text) = read_to_close(&mut first).await;
    assert_eq!(status, 504, "{text}");
    assert!(text.contains("no producer arrived"), "{text}");

    let mut waiter = raw(
        &relay,
        "GET /v0/closing?mode=await-reader HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    eventually(&relay, "/closing", |s| s.producer == Presence::Connecting).await;
    let shutdown = tokio::spawn(relay.shutdown());
    let (status, text) = read_to_close(&mut waiter).await;
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("shutting down"), "{text}");
    tokio::time::timeout(Duration::from_secs(10), shutdown)
        .await
        .expect("shutdown completes")
        .unwrap();
}

/// A parked producer sends more than the relay's socket receive window,
/// then vanishes without its chunked terminator. Whether the relay has seen
/// it go (its FIN got through) or not (the FIN is stuck behind unread bytes),
/// a consumer arriving later must never get a clean end of the vanished
/// producer's bytes, and must not wait for the data timeout: it either pairs
/// with the dead upload and sees it break off at once, or waits for the next
/// producer and gets exactly that one's bytes.
#[tokio::test]
async fn a_vanished_producer_with_a_large_unsent_body_never_reaches_a_consumer_as_complete() {
    let relay = relay().await;
    for sent in [100_000usize, 1_000_000] {
        let path = format!("/vanished-big/{sent}");
        let put =
            format!("PUT /data{path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
        let mut producer = raw(&relay, &put).await;
        // The relay reads a parked producer's body only up to its read-ahead,
        // so the rest may stay in our send buffer.
        let body = chunk(&pattern(sent, 1));
        let _ = tokio::time::timeout(Duration::from_millis(500), producer.write_all(&body)).await;
        eventually(&relay, &path, |s| s.producer == Presence::Waiting).await;
        drop(producer);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let noticed = relay.stream_status(&path) == StreamStatus::default();

        let mut consumer = raw(
            &relay,
            &format!("GET /data{path} HTTP/1.1\r\nHost: x\r\n\r\n"),
        )
        .await;
        if noticed {
            eventually(&relay, &path, |s| s.consumer == Presence::Waiting).await;
            let mut next = raw(&relay, &put).await;
            let fresh = pattern(5000, 2);
            next.write_all(&chunk(&fresh)).await.unwrap();
            next.write_all(b"0\r\n\r\n").await.unwrap();
            let (status, _, got) = tokio::time::timeout(
                Duration::from_secs(10),
                read_chunked_response(&mut consumer),
            )
            .await
            .expect("the consumer gets the next producer's stream");
            assert_eq!(status, 200);
            assert_eq!(got, fresh, "{path}: only the next producer's bytes");
        } else {
            let (status, text) =
                tokio::time::timeout(Duration::from_secs(10), read_to_close(&mut consumer))
                    .await
                    .unwrap_or_else(|_| {
                        panic!("{path}: paired with a dead upload, still open after 10 s")
                    });
            assert_eq!(status, 200, "{path}: paired");
            assert!(
                !text.ends_with("0\r\n\r\n"),
                "{path}: a cut-off upload ended cleanly"
            );
        }
    }
}

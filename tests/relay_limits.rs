//! Access control over HTTP (tokens file) and the relay's limits: stream
//! count, data wait, header size.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zebrastream::relay::{Relay, RelayAuth, RelayConfig, RelayHandle};

fn client() -> reqwest::Client {
    reqwest::Client::builder().http1_only().build().unwrap()
}

async fn relay_with_tokens(dir: &tempfile::TempDir) -> RelayHandle {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let file = dir.path().join("tokens.yaml");
    std::fs::write(
        &file,
        format!(
            "tokens:\n\
             - {{ token: writer, mode: write, path: /lab, recursive: true }}\n\
             - {{ token: reader, mode: read, path: /lab/run-1 }}\n\
             - {{ token: stale, mode: read, path: /lab/run-1, expires: {} }}\n",
            now - 10
        ),
    )
    .unwrap();
    Relay::bind(
        RelayConfig::open_loopback()
            .auth(RelayAuth::TokensFile(file))
            .connect_wait(Duration::from_millis(200), Duration::from_secs(5))
            .data_wait(Duration::from_millis(200)),
    )
    .await
    .unwrap()
}

/// Status of a GET with an optional bearer token.
async fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let mut req = client().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn tokens_gate_every_api_by_mode_path_and_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay_with_tokens(&dir).await;
    let data = relay.data_url("/lab/run-1");
    let connect = format!("{}/lab/run-1", relay.connect_url());

    assert_eq!(get(&data, None).await.0, 401, "missing token");
    assert_eq!(get(&data, Some("guess")).await.0, 401, "unknown token");
    let (status, body) = get(&data, Some("stale")).await;
    assert_eq!((status, body.trim()), (401, "access token expired"));
    assert_eq!(
        get(&data, Some("writer")).await.0,
        403,
        "a write token cannot read"
    );
    assert_eq!(
        get(&relay.data_url("/lab/run-2"), Some("reader")).await.0,
        403,
        "non-recursive read token covers one path"
    );
    // Allowed: the wait expires (no producer) with 504, past authorization.
    assert_eq!(get(&data, Some("reader")).await.0, 504);
    assert_eq!(
        get(&format!("{data}?accesstoken=reader"), None).await.0,
        504
    );

    // Connect: await-writer is the consumer (read), await-reader the producer (write).
    assert_eq!(
        get(&format!("{connect}?mode=await-writer"), Some("writer"))
            .await
            .0,
        403
    );
    assert_eq!(
        get(&format!("{connect}?mode=await-reader"), Some("reader"))
            .await
            .0,
        403
    );
    assert_eq!(
        get(&format!("{connect}?mode=await-reader"), Some("writer"))
            .await
            .0,
        504
    );

    let put = client()
        .put(relay.data_url("/lab/deep/er/path"))
        .bearer_auth("reader")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 403);
    let put = client()
        .put(relay.data_url("/labs"))
        .bearer_auth("writer")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.status(),
        403,
        "recursive is a segment prefix, not a string prefix"
    );
    let resp = client().get(&data).send().await.unwrap();
    assert!(resp.headers().contains_key("www-authenticate"));
}

#[tokio::test]
async fn full_relay_refuses_new_paths_with_503() {
    let relay = Relay::bind(RelayConfig::open_loopback().max_streams(1))
        .await
        .unwrap();
    let waiting = tokio::spawn(client().get(relay.data_url("/one")).send());
    for _ in 0..200 {
        if relay.stream_status("/one").consumer != Default::default() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, body) = get(&relay.data_url("/two"), None).await;
    assert_eq!(status, 503);
    assert!(body.contains("stream limit"));
    waiting.abort();
}

#[tokio::test]
async fn oversized_request_head_is_refused() {
    let relay = Relay::bind(RelayConfig::open_loopback()).await.unwrap();
    let mut sock = TcpStream::connect(relay.local_addr()).await.unwrap();
    let head = format!(
        "GET /data/x HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    // The relay may close before reading it all; only its answer matters.
    let _ = sock.write_all(head.as_bytes()).await;
    let mut answer = Vec::new();
    let _ = sock.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "no request is served: {answer:?}"
    );
    assert_eq!(relay.stream_status("/x"), Default::default());
}

/// Writes `request` on a fresh connection and returns everything the relay
/// answers until it closes (the relay may close before reading it all).
async fn raw_exchange(relay: SocketAddr, request: &[u8]) -> String {
    let mut sock = TcpStream::connect(relay).await.unwrap();
    let _ = sock.write_all(request).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut answer));
    let _ = read.await.expect("the relay answers bad input at once");
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status code of a raw answer (0: closed without an answer).
fn status_of(answer: &str) -> u16 {
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .map_or(0, |code| code.parse().unwrap())
}

/// A slowloris sender: one byte of a request head every 250 ms. Returns how
/// long the relay let it dribble before it closed the connection.
async fn slowloris(relay: SocketAddr) -> Duration {
    let started = std::time::Instant::now();
    let mut sock = TcpStream::connect(relay).await.unwrap();
    let head = b"GET /data/lab/slow HTTP/1.1\r\nHost: x\r\nX-Drip: ".iter();
    let mut byte = [0u8; 1];
    for &b in head.chain(std::iter::repeat(&b'a')) {
        if sock.write_all(&[b]).await.is_err() {
            break;
        }
        // The relay closing (or answering 408) makes the socket readable.
        let read = tokio::time::timeout(Duration::from_millis(250), sock.read(&mut byte));
        if read.await.is_ok() || started.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    started.elapsed()
}

/// Malformed HTTP, huge heads, a million-segment path, slowloris senders,
/// wrong tokens and a second producer or consumer on a busy path: each gets a
/// clear 4xx (or, for a head too large to read, a closed connection), while a
/// transfer on the same relay carries on byte-exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_without_disturbing_a_running_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let relay = relay_with_tokens(&dir).await;
    let addr = relay.local_addr();
    let url = relay.data_url("/lab/run-1");

    // The canary: 96 chunks of 16 KiB, 30 ms apart, consumer first.
    let payload: Vec<u8> = (0..96 * 16 * 1024u32).map(|i| (i % 251) as u8).collect();
    let consumer = tokio::spawn(client().get(&url).bearer_auth("reader").send());
    let (chunks, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let body = reqwest::Body::wrap_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let producer = tokio::spawn(client().put(&url).bearer_auth("writer").body(body).send());
    let feed = {
        let payload = payload.clone();
        tokio::spawn(async move {
            for piece in payload.chunks(16 * 1024) {
                chunks.send(Ok(piece.to_vec())).await.unwrap();
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        })
    };
    let drips: Vec<_> = (0..20).map(|_| tokio::spawn(slowloris(addr))).collect();
    // Wait until the canary is flowing before throwing bad input at the relay.
    for _ in 0..200 {
        if relay.stream_status("/lab/run-1").producer != Default::default()
            && relay.stream_status("/lab/run-1").consumer != Default::default()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let garbage = raw_exchange(addr, b"\x00\x01\x02 not http at all\r\n\r\n").await;
    assert_eq!(status_of(&garbage), 400, "garbage: {garbage:?}");
    let bad_version = raw_exchange(addr, b"GET /data/lab/x HTTP/7.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status_of(&bad_version), 400, "{bad_version:?}");
    let bad_chunk = raw_exchange(
        addr,
        b"PUT /data/lab/y HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer writer\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    )
    .await;
    assert!(!bad_chunk.contains("TRANSFER_SUCCESSFUL"), "{bad_chunk:?}");
    let huge_head = format!(
        "GET /data/lab/x HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(200 * 1024)
    );
    let answer = raw_exchange(addr, huge_head.as_bytes()).await;
    assert!(matches!(status_of(&answer), 0 | 431), "{answer:?}");
    // A million segments (2 MB of path): too large to read as a head.
    let million = format!(
        "GET /data{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "/a".repeat(1_000_000)
    );
    let answer = raw_exchange(addr, million.as_bytes()).await;
    assert!(
        matches!(status_of(&answer), 0 | 414 | 431),
        "million segments"
    );
    // Ten thousand segments fit in a head; the path rules refuse them.
    let many = format!(
        "GET /data{} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "/a".repeat(10_000)
    );
    let answer = raw_exchange(addr, many.as_bytes()).await;
    assert_eq!(status_of(&answer), 400, "ten thousand segments");
    assert!(answer.contains("longer than"), "{answer:?}");

    // Tokens: unknown, expired, wrong mode; and a busy path for both roles.
    assert_eq!(get(&url, Some("guess")).await.0, 401);
    assert!(matches!(get(&url, Some("stale")).await.0, 401 | 403));
    let wrong_mode = client().put(&url).bearer_auth("reader").body("x").send();
    assert_eq!(wrong_mode.await.unwrap().status(), 403);
    let second_producer = client().put(&url).bearer_auth("writer").body("x").send();
    let second_producer = second_producer.await.unwrap();
    assert_eq!(second_producer.status(), 409);
    assert!(second_producer.text().await.unwrap().contains("producer"));
    let (status, body) = get(&url, Some("reader")).await;
    assert_eq!(status, 409);
    assert!(body.contains("consumer"), "{body}");

    // The canary finished untouched.
    feed.await.unwrap();
    let got = consumer.await.unwrap().unwrap().bytes().await.unwrap();
    assert!(
        got == payload,
        "canary: {} of {} bytes",
        got.len(),
        payload.len()
    );
    let lines = producer.await.unwrap().unwrap().text().await.unwrap();
    assert_eq!(lines.lines().last(), Some("[STATE:TRANSFER_SUCCESSFUL]"));

    // Slowloris senders are cut off after the header timeout.
    for drip in drips {
        let lasted = drip.await.unwrap();
        assert!(
            lasted < Duration::from_secs(45),
            "a slowloris sender was let dribble for {lasted:?}"
        );
    }
}

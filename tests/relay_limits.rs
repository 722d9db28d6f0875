//! Access control over HTTP (tokens file) and the relay's limits: stream
//! count, data wait, header size.

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

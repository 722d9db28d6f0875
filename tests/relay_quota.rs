//! The per-token stream quota: one token holder cannot take every stream the
//! relay has (`--max-streams` is global). Tenant A fills its quota with
//! waiting requests; A's next stream gets `429` with the reason, while
//! tenant B still transfers; A's side paths (`<path>/~name`) count with
//! their transfer. On an open relay the quota is per client address.

use std::net::IpAddr;
use std::time::Duration;

use zebrastream::protocol::side_path;
use zebrastream::relay::{Presence, Relay, RelayAuth, RelayConfig, RelayHandle};

fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .http1_only()
        .local_address(source.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// Parks a consumer of `token` on `path` and waits until it shows as waiting.
async fn park_consumer(
    relay: &RelayHandle,
    client: &reqwest::Client,
    path: &str,
    token: Option<&str>,
) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
    let mut get = client.get(relay.data_url(path));
    if let Some(token) = token {
        get = get.bearer_auth(token);
    }
    let waiting = tokio::spawn(get.send());
    for _ in 0..500 {
        if relay.stream_status(path).consumer == Presence::Waiting {
            return waiting;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("consumer on {path} never waited");
}

async fn status_of(req: reqwest::RequestBuilder) -> (u16, String) {
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// A full transfer with `token` (consumer first); returns the bytes read.
async fn transfer(relay: &RelayHandle, path: &str, token: &str) -> Vec<u8> {
    let client = client_from("127.0.0.1");
    let get = park_consumer(relay, &client, path, Some(token)).await;
    let put = client
        .put(relay.data_url(path))
        .bearer_auth(token)
        .body("tenant data")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let got = get.await.unwrap().unwrap();
    assert_eq!(got.status(), 200);
    got.bytes().await.unwrap().to_vec()
}

/// The attack from the issue: `--max-streams 5`, and one tenant parks
/// waiters until the relay is full. Now its quota (3, set in the tokens
/// file) stops it first: its 4th stream gets 429, tenant B transfers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenant_cannot_lock_out_another() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        "[[tokens]]\ntoken = \"tenant-a\"\nmode = \"read\"\npath = \"/a\"\nrecursive = true\nmax_streams = 3\n\
         [[tokens]]\ntoken = \"tenant-a\"\nmode = \"write\"\npath = \"/a\"\nrecursive = true\n\
         [[tokens]]\ntoken = \"tenant-b\"\nmode = \"read\"\npath = \"/b\"\nrecursive = true\n\
         [[tokens]]\ntoken = \"tenant-b\"\nmode = \"write\"\npath = \"/b\"\nrecursive = true\n",
    )
    .unwrap();
    let relay = Relay::bind(
        RelayConfig::open_loopback()
            .auth(RelayAuth::TokensFile(tokens))
            .max_streams(5)
            .data_wait(Duration::from_secs(30)),
    )
    .await
    .unwrap();
    let client = client_from("127.0.0.1");
    let mut held = Vec::new();
    for i in 0..3 {
        held.push(park_consumer(&relay, &client, &format!("/a/{i}"), Some("tenant-a")).await);
    }
    // A's side paths count with their transfer: no extra slot.
    let offer = side_path("/a/0", "fs-offer");
    held.push(park_consumer(&relay, &client, &offer, Some("tenant-a")).await);
    // A's 4th transfer: refused with the reason, over Data and Connect alike.
    let (status, body) =
        status_of(client.get(relay.data_url("/a/3")).bearer_auth("tenant-a")).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body.contains("stream quota") && body.contains("access token already holds 3"),
        "{body}"
    );
    let connect = format!("{}/a/3?mode=await-reader&timeout=1", relay.connect_url());
    let (status, _) = status_of(client.get(connect).bearer_auth("tenant-a")).await;
    assert_eq!(status, 429);
    // A producer joining one of A's own transfers is not a new stream.
    let joined = client
        .put(relay.data_url("/a/1"))
        .bearer_auth("tenant-a")
        .body("to a waiting consumer")
        .send()
        .await
        .unwrap();
    assert_eq!(joined.status(), 200);
    let first = held
        .remove(1)
        .await
        .unwrap()
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&first[..], b"to a waiting consumer");

    // Tenant B is not locked out.
    assert_eq!(transfer(&relay, "/b/x", "tenant-b").await, b"tenant data");

    // A freed slot is A's again.
    for _ in 0..500 {
        let (status, _) = status_of(
            client
                .get(format!(
                    "{}/a/3?mode=await-reader&timeout=0",
                    relay.connect_url()
                ))
                .bearer_auth("tenant-a"),
        )
        .await;
        if status == 504 {
            break;
        }
        assert_eq!(status, 429);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for waiting in held {
        waiting.abort();
    }
}

/// The relay-wide default applies to tokens without `max_streams`.
#[tokio::test]
async fn the_relay_default_quota_applies_to_every_token() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.yaml");
    std::fs::write(
        &tokens,
        "tokens:\n  - { token: t, mode: read, path: /q, recursive: true }\n",
    )
    .unwrap();
    let relay = Relay::bind(
        RelayConfig::open_loopback()
            .auth(RelayAuth::TokensFile(tokens))
            .data_wait(Duration::from_secs(10))
            .stream_quota(2),
    )
    .await
    .unwrap();
    let client = client_from("127.0.0.1");
    let _one = park_consumer(&relay, &client, "/q/1", Some("t")).await;
    let _two = park_consumer(&relay, &client, "/q/2", Some("t")).await;
    let (status, body) = status_of(client.get(relay.data_url("/q/3")).bearer_auth("t")).await;
    assert_eq!((status, body.contains("holds 2")), (429, true), "{body}");
    // Refusals come first: a wrong token is 401, not 429.
    let (status, _) = status_of(client.get(relay.data_url("/q/3")).bearer_auth("nope")).await;
    assert_eq!(status, 401);
}

/// On an open relay the quota is per client address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_relay_counts_by_client_address() {
    let config = RelayConfig::open_loopback()
        .data_wait(Duration::from_secs(10))
        .stream_quota(2);
    let relay = Relay::bind(config).await.unwrap();
    let attacker = client_from("127.0.0.2");
    let _one = park_consumer(&relay, &attacker, "/o/1", None).await;
    let _two = park_consumer(&relay, &attacker, "/o/2", None).await;
    let (status, body) = status_of(attacker.get(relay.data_url("/o/3"))).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("client address already holds 2"), "{body}");

    // Another address is served.
    let other = client_from("127.0.0.1");
    let get = park_consumer(&relay, &other, "/o/3", None).await;
    let put = other.put(relay.data_url("/o/3")).body("ok").send().await;
    assert_eq!(put.unwrap().status(), 200);
    let got = get.await.unwrap().unwrap().bytes().await.unwrap();
    assert_eq!(&got[..], b"ok");
}

/// Behind a trusted proxy the client is the proxy's last `X-Forwarded-For`
/// entry; an untrusted peer's `X-Forwarded-For` is ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_names_the_client() {
    let relay = Relay::bind(
        RelayConfig::open_loopback()
            .data_wait(Duration::from_secs(10))
            .stream_quota(1)
            .trusted_proxy("127.0.0.3".parse().unwrap()),
    )
    .await
    .unwrap();
    let proxy = client_from("127.0.0.3");
    let via = |path: &str, client_ip: &str| {
        proxy
            .get(relay.data_url(path))
            .header("x-forwarded-for", format!("6.6.6.6, {client_ip}"))
    };
    let _held = tokio::spawn(via("/p/1", "192.0.2.1").send());
    for _ in 0..500 {
        if relay.stream_status("/p/1").consumer == Presence::Waiting {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status_of(via("/p/2", "192.0.2.1")).await.0, 429);
    let other = tokio::spawn(via("/p/3", "192.0.2.2").send());
    for _ in 0..500 {
        if relay.stream_status("/p/3").consumer == Presence::Waiting {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(relay.stream_status("/p/3").consumer, Presence::Waiting);
    other.abort();

    // Not trusted: its header is ignored, its own address counts.
    let direct = client_from("127.0.0.4");
    let spoof = |path: &str, ip: &str| {
        direct
            .get(relay.data_url(path))
            .header("x-forwarded-for", ip.to_owned())
    };
    let _mine = tokio::spawn(spoof("/p/4", "192.0.2.7").send());
    for _ in 0..500 {
        if relay.stream_status("/p/4").consumer == Presence::Waiting {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status_of(spoof("/p/5", "192.0.2.8")).await.0, 429);
}

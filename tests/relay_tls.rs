//! HTTPS (rustls, h2 and HTTP/1.1 by ALPN), h2c with prior knowledge, and
//! setup errors of `Relay::bind`.

mod support;

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use zebrastream::relay::{Error, Presence, Relay, RelayAuth, RelayConfig, RelayHandle};

/// A self-signed certificate for localhost/127.0.0.1, made with the openssl CLI.
fn self_signed(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let openssl = support::tool("openssl")?;
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new(openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl failed");
    Some((cert, key))
}

fn https_client(cert: &Path, h1_only: bool) -> reqwest::Client {
    let pem = std::fs::read(cert).unwrap();
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .pool_max_idle_per_host(0);
    if h1_only {
        builder = builder.http1_only();
    }
    builder.build().unwrap()
}

async fn until_consumer_waits(relay: &RelayHandle, path: &str) {
    for _ in 0..500 {
        if relay.stream_status(path).consumer == Presence::Waiting {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("consumer never waited on {path}");
}

/// Consumer first, then a producer; returns (consumer body, producer status text, versions).
async fn transfer(
    client: &reqwest::Client,
    relay: &RelayHandle,
    path: &str,
    data: Vec<u8>,
) -> (Vec<u8>, String, http::Version, http::Version) {
    let url = relay.data_url(path);
    let get = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move {
            let resp = client.get(url).send().await.unwrap();
            let version = resp.version();
            (resp.bytes().await.unwrap().to_vec(), version)
        }
    });
    until_consumer_waits(relay, path).await;
    let resp = client.put(&url).body(data).send().await.unwrap();
    let put_version = resp.version();
    let status = resp.text().await.unwrap();
    let (body, get_version) = get.await.unwrap();
    (body, status, put_version, get_version)
}

#[tokio::test]
async fn https_with_h2_and_http1_and_https_data_urls() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, key)) = self_signed(dir.path()) else {
        return;
    };
    let relay = Relay::bind(RelayConfig::open_loopback().tls(&cert, &key))
        .await
        .unwrap();
    assert!(relay.connect_url().starts_with("https://127.0.0.1:"));
    let data: Vec<u8> = (0..500_000u32).map(|i| (i % 253) as u8).collect();

    let h2 = https_client(&cert, false);
    let (body, status, put_v, get_v) = transfer(&h2, &relay, "/tls/h2", data.clone()).await;
    assert_eq!(
        (put_v, get_v),
        (http::Version::HTTP_2, http::Version::HTTP_2)
    );
    assert!(body == data);
    assert!(
        status.ends_with("[STATE:TRANSFER_SUCCESSFUL]\n"),
        "{status}"
    );

    let h1 = https_client(&cert, true);
    let (body, status, put_v, _) = transfer(&h1, &relay, "/tls/h1", data.clone()).await;
    assert_eq!(put_v, http::Version::HTTP_11);
    assert!(body == data);
    assert!(status.ends_with("[STATE:TRANSFER_SUCCESSFUL]\n"));

    // Connect answers an https data URL built from the request's authority.
    let waiter = tokio::spawn({
        let (h1, url) = (
            h1.clone(),
            format!("{}/tls/c?mode=await-reader", relay.connect_url()),
        );
        async move { h1.get(url).send().await.unwrap().text().await.unwrap() }
    });
    let other = h1
        .get(format!("{}/tls/c?mode=await-writer", relay.connect_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(other.trim(), relay.data_url("/tls/c"));
    assert_eq!(waiter.await.unwrap().trim(), relay.data_url("/tls/c"));
}

#[tokio::test]
async fn h2c_prior_knowledge_streams_and_propagates_a_producer_abort() {
    let relay = Relay::bind(RelayConfig::open_loopback()).await.unwrap();
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let (body, status, put_v, get_v) =
        transfer(&client, &relay, "/h2c/ok", b"over h2c".to_vec()).await;
    assert_eq!(
        (put_v, get_v),
        (http::Version::HTTP_2, http::Version::HTTP_2)
    );
    assert_eq!(body, b"over h2c");
    assert!(status.ends_with("[STATE:TRANSFER_SUCCESSFUL]\n"));

    // The producer's body fails half-way: the consumer's stream is reset.
    let url = relay.data_url("/h2c/abort");
    let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(4);
    let put = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move {
            client
                .put(url)
                .body(reqwest::Body::wrap_stream(ReceiverStream::new(rx)))
                .send()
                .await
        }
    });
    let resp = client.get(&url).send().await.unwrap();
    let mut stream = resp.bytes_stream();
    tx.send(Ok(Bytes::from_static(b"partial"))).await.unwrap();
    assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"partial");
    tx.send(Err(io::Error::other("producer crashed")))
        .await
        .unwrap();
    let mut saw_error = false;
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => assert!(chunk.is_empty(), "no data after the abort"),
            Err(_) => {
                saw_error = true;
                break;
            }
        }
    }
    assert!(
        saw_error,
        "an aborted upload must not end the consumer cleanly"
    );
    let _ = put.await;
}

#[tokio::test]
async fn bind_reports_setup_errors_precisely() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let err = Relay::bind(RelayConfig::open_loopback().tls(&missing, &missing))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TlsFile { .. }), "{err}");
    assert!(err.to_string().contains("missing.pem"));

    let err = Relay::bind(RelayConfig::open_loopback().tls_cert(&missing))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TlsIncomplete {
                given: "certificate"
            }
        ),
        "{err}"
    );

    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not pem\n").unwrap();
    let err = Relay::bind(RelayConfig::open_loopback().tls(&empty, &empty))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TlsMissing {
                what: "certificate",
                ..
            }
        ),
        "{err}"
    );

    let tokens = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        "[[tokens]]\ntoken = \"t\"\nmode = \"admin\"\npath = \"/a\"\n",
    )
    .unwrap();
    let err = Relay::bind(RelayConfig::open_loopback().auth(RelayAuth::TokensFile(tokens)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TokensParse { .. }), "{err}");
    // The line and field, never a value from the file (a token may sit anywhere).
    assert!(
        err.to_string().contains("line 3") && err.to_string().contains("`mode`"),
        "{err}"
    );
    assert!(!err.to_string().contains("admin"), "{err}");

    let first = Relay::bind(RelayConfig::open_loopback()).await.unwrap();
    let err = Relay::bind(RelayConfig::open_loopback().listen(first.local_addr()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Bind { .. }), "{err}");
}

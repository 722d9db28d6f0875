//! Hostile clients against the connection limits of the real `zebrastream
//! relay` binary: one address opens more idle HTTP/1.1, h2c and TLS
//! connections than its per-address limit allows. The relay refuses the
//! excess at once, keeps its descriptor count bounded, keeps serving other
//! addresses, closes the idle ones at the head deadline, and then serves the
//! attacking address again. Idle h2 and keep-alive connections are closed
//! after the idle timeout.
//!
//! The attacker connects from 127.0.0.2 (all of 127/8 is local on Linux);
//! legitimate clients use the default 127.0.0.1.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const BIN: &str = env!("CARGO_BIN_EXE_zebrastream");
const CERT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/client_tls_test_cert.pem"
);
const KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/client_tls_test_key.pem"
);
const ATTACKER: &str = "127.0.0.2";
/// The per-address limit the tests set.
const LIMIT: usize = 20;
/// The h2 client preface and an empty SETTINGS frame.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// The relay binary as a child process.
struct RelayBin {
    child: Child,
    addr: SocketAddr,
    scheme: &'static str,
}

impl RelayBin {
    fn start(extra: &[&str]) -> RelayBin {
        let mut child = Command::new(BIN)
            .args(["relay", "--open", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn zebrastream relay");
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let addr = loop {
            let mut line = String::new();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "relay exited early"
            );
            if let Some(rest) = line.split("relay listening on ").nth(1) {
                break rest.split(' ').next().unwrap().parse().unwrap();
            }
        };
        // Keep draining its stderr so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in stderr.lines() {});
        let scheme = if extra.contains(&"--tls-cert") {
            "https"
        } else {
            "http"
        };
        RelayBin {
            child,
            addr,
            scheme,
        }
    }

    /// Open file descriptors of the relay process.
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }

    fn url(&self, path: &str) -> String {
        format!("{}://{}/data{path}", self.scheme, self.addr)
    }
}

impl Drop for RelayBin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP connection to `relay` from `source`.
async fn connect_from(source: &str, relay: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(source.parse().unwrap(), 0))
        .unwrap();
    socket.connect(relay).await.unwrap()
}

/// Whether the relay closed (or reset) `stream` within `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 256];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // h2 SETTINGS, a GOAWAY: keep reading until the close.
            Ok(Ok(_)) => {}
        }
    }
}

/// How many of `streams` the relay closes within `within` (all watched at once).
async fn count_closed(streams: &mut [TcpStream], within: Duration) -> usize {
    let watches = streams.iter_mut().map(|s| closed_within(s, within));
    futures_util::future::join_all(watches)
        .await
        .into_iter()
        .filter(|closed| *closed)
        .count()
}

/// Waits until the relay's descriptor count settles at or below `bound`;
/// returns the last count seen.
async fn settled_fds(relay: &RelayBin, bound: usize) -> usize {
    let mut fds = relay.fds();
    for _ in 0..100 {
        if fds <= bound {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        fds = relay.fds();
    }
    fds
}

fn https_roots() -> rustls::RootCertStore {
    let pem = std::fs::read(CERT).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.unwrap()).unwrap();
    }
    roots
}

/// A client for legitimate transfers from `source`.
fn client(relay: &RelayBin, source: &str) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(30));
    if relay.scheme == "https" {
        let pem = std::fs::read(CERT).unwrap();
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}

/// A whole transfer (consumer GET, producer PUT) from `source`; panics
/// unless the consumer gets every byte and the producer the success line.
async fn transfer(relay: &RelayBin, source: &str, path: &str) {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let client = client(relay, source);
    let url = relay.url(path);
    let get = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move { client.get(url).send().await?.bytes().await }
    });
    let status = client
        .put(&url)
        .body(data.clone())
        .send()
        .await
        .expect("the producer is served")
        .text()
        .await
        .unwrap();
    let got = get.await.unwrap().expect("the consumer is served");
    assert!(got[..] == data[..], "{} of {} bytes", got.len(), data.len());
    assert!(
        status.ends_with("[STATE:TRANSFER_SUCCESSFUL]\n"),
        "{status}"
    );
}

/// Opens `n` connections from the attacker that each send one of `firsts`
/// in turn (maybe nothing) and then nothing more, so that the ones the
/// relay admits are of every kind.
async fn idle_connections(relay: SocketAddr, n: usize, firsts: &[&[u8]]) -> Vec<TcpStream> {
    let mut streams = Vec::with_capacity(n);
    for first in firsts.iter().cycle().take(n) {
        let mut stream = connect_from(ATTACKER, relay).await;
        // A refused connection may already be closed: only the count matters.
        let _ = stream.write_all(first).await;
        streams.push(stream);
    }
    streams
}

/// TLS connections from the attacker that complete the handshake (h2 by
/// ALPN) and then send nothing. Refused ones fail their handshake.
async fn idle_tls_sessions(relay: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(https_roots())
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let mut sessions = Vec::new();
    let mut streams = Vec::new();
    for _ in 0..n {
        let stream = connect_from(ATTACKER, relay).await;
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        // A refused connection fails its handshake: only admitted ones are kept.
        let handshake =
            tokio::time::timeout(Duration::from_secs(5), connector.connect(name, stream));
        if let Ok(Ok(session)) = handshake.await {
            sessions.push(session);
        }
    }
    // Keep the sessions' sockets; what TLS sends from here on is not read.
    for session in sessions {
        let (tcp, _) = session.into_inner();
        streams.push(tcp);
    }
    streams
}

/// The attack on a plain relay: idle HTTP/1.1 heads, h2c prefaces and
/// silent sockets, three times the per-address limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http1_and_h2c_floods_from_one_address_are_bounded() {
    let limit = LIMIT.to_string();
    let relay = RelayBin::start(&["--max-connections-per-ip", &limit, "--head-timeout", "8"]);
    let baseline = relay.fds();
    let kinds: [&[u8]; 3] = [b"GET /data/a HTTP/1.1\r\nHost: x\r\n", H2_PREFACE, b""];
    let mut attack = idle_connections(relay.addr, 3 * LIMIT, &kinds).await;
    let fds = settled_fds(&relay, baseline + LIMIT + 4).await;
    assert!(
        fds <= baseline + LIMIT + 4,
        "{} attack connections: relay holds {fds} descriptors (baseline {baseline}, limit {LIMIT})",
        attack.len()
    );
    // The excess was closed at once, long before the head deadline.
    let refused = count_closed(&mut attack, Duration::from_secs(3)).await;
    assert!(refused >= 2 * LIMIT, "only {refused} connections refused");
    let mut more = connect_from(ATTACKER, relay.addr).await;
    let _ = more
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert!(
        closed_within(&mut more, Duration::from_secs(3)).await,
        "the attacker's next connection is refused"
    );

    // Everyone else is served meanwhile.
    transfer(&relay, "127.0.0.1", "/legit/during").await;

    // At the head deadline the held ones are closed; the address is served again.
    let held = count_closed(&mut attack, Duration::from_secs(30)).await;
    assert_eq!(held, attack.len(), "every idle connection is closed");
    transfer(&relay, ATTACKER, "/legit/after").await;
    let fds = settled_fds(&relay, baseline + 4).await;
    assert!(
        fds <= baseline + 4,
        "{fds} descriptors after (baseline {baseline})"
    );
}

/// The same over TLS: sockets that never start a handshake, half a
/// ClientHello, and finished h2 handshakes that never send a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tls_floods_from_one_address_are_bounded() {
    let limit = LIMIT.to_string();
    let relay = RelayBin::start(&[
        "--max-connections-per-ip",
        &limit,
        "--head-timeout",
        "8",
        "--tls-cert",
        CERT,
        "--tls-key",
        KEY,
    ]);
    let baseline = relay.fds();
    // Finished h2 handshakes first (admitted), then silent sockets and the
    // first bytes of a TLS record header and ClientHello.
    let mut attack = idle_tls_sessions(relay.addr, LIMIT / 2).await;
    let kinds: [&[u8]; 2] = [b"", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"];
    attack.extend(idle_connections(relay.addr, 2 * LIMIT, &kinds).await);
    let fds = settled_fds(&relay, baseline + LIMIT + 4).await;
    assert!(
        fds <= baseline + LIMIT + 4,
        "{} attack connections: relay holds {fds} descriptors (baseline {baseline}, limit {LIMIT})",
        attack.len()
    );
    transfer(&relay, "127.0.0.1", "/legit/during").await;
    let held = count_closed(&mut attack, Duration::from_secs(30)).await;
    assert_eq!(held, attack.len(), "every idle connection is closed");
    transfer(&relay, ATTACKER, "/legit/after").await;
}

/// With short deadlines set by flags: a partial HTTP/1.1 head, an h2c
/// preface without a request, a silent socket and a TLS-less socket are
/// closed at the head deadline; an h2c connection and an HTTP/1.1 keep-alive
/// connection that served a request are closed after the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_at_the_head_deadline_and_idle_timeout() {
    let relay = RelayBin::start(&["--head-timeout", "2", "--idle-timeout", "3"]);
    let started = Instant::now();
    let kinds: [&[u8]; 3] = [b"GET /data/a HTTP/1.1\r\n", H2_PREFACE, b""];
    let mut silent = idle_connections(relay.addr, 3, &kinds).await;
    assert_eq!(
        count_closed(&mut silent, Duration::from_secs(20)).await,
        3,
        "closed at the head deadline"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "not before the deadline"
    );

    // HTTP/1.1 keep-alive: one request, then nothing.
    let mut keep_alive = TcpStream::connect(relay.addr).await.unwrap();
    keep_alive
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 12];
    keep_alive.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");

    // h2c by prior knowledge: one request, then nothing.
    let io = hyper_util::rt::TokioIo::new(TcpStream::connect(relay.addr).await.unwrap());
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .unwrap();
    let h2 = tokio::spawn(connection);
    let request = http::Request::get(format!("http://{}/healthz", relay.addr))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    drop(response);
    let idle_since = Instant::now();

    assert!(
        closed_within(&mut keep_alive, Duration::from_secs(20)).await,
        "idle keep-alive connection closed"
    );
    tokio::time::timeout(Duration::from_secs(20), h2)
        .await
        .expect("idle h2 connection closed by the relay")
        .unwrap()
        .expect("closed cleanly (GOAWAY)");
    assert!(
        idle_since.elapsed() >= Duration::from_secs(2),
        "not before the idle timeout"
    );
}

//! Scale-out: three relay nodes behind nginx running the recipe in
//! `deploy/nginx.conf` (consistent hashing on the stream path), on loopback.
//!
//! - 300 stream pairs on distinct paths, random arrival order, byte-exact,
//!   through Connect waiters (our client) and direct Data-API requests;
//! - one node killed mid-run: its streams end with errors on both sides
//!   (never a short success), the other streams complete, and new pairs after
//!   the kill succeed on the remaining nodes;
//! - the official Python client through the balancer;
//! - bulk transfers (tens of MiB, producer first) do not stall: nginx stops
//!   forwarding a request body once the response head has passed, so the
//!   relay answers proxied uploads only when they ended;
//! - TLS terminated at the balancer (the recipe's `listen … ssl`), plain
//!   HTTP to the nodes, encrypted and plain streams through it.

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use rand::{Rng, SeedableRng};
use support::balancer::{reserve_port, start_balancer_with, Balancer, TlsFiles};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zebrastream::cipher::Format;
use zebrastream::client::{Config, Error, Opening, Sealing, StreamReader, StreamWriter};
use zebrastream::relay::{CaptureTap, Relay, RelayConfig, RelayHandle, UploadResponse};

const NODES: usize = 3;

struct Cluster {
    nodes: Vec<Option<RelayHandle>>,
    taps: Vec<Arc<CaptureTap>>,
    balancer: Balancer,
}

impl Cluster {
    async fn start(nginx: &Path) -> Cluster {
        Cluster::start_with(nginx, UploadResponse::Auto, None).await
    }

    async fn start_with(
        nginx: &Path,
        upload_response: UploadResponse,
        tls: Option<TlsFiles<'_>>,
    ) -> Cluster {
        // Held while the nodes bind, so none of them can take the balancer's port.
        let reserved = reserve_port();
        let port = reserved.local_addr().unwrap().port();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let public = format!("{scheme}://127.0.0.1:{port}");
        let mut nodes = Vec::new();
        let mut taps = Vec::new();
        for _ in 0..NODES {
            // The tap only records which node carried which path (1 byte each).
            let tap = Arc::new(CaptureTap::new(1));
            // As deploy/ sets it up: nginx is a trusted proxy. Its clients
            // (300 pairs, all from 127.0.0.1) share one address: raise the quota.
            let config = RelayConfig::open_loopback()
                .trusted_proxy(std::net::Ipv4Addr::LOCALHOST.into())
                .stream_quota(4096)
                .public_url(public.clone())
                .data_wait(Duration::from_secs(5))
                .upload_response(upload_response)
                .tap(tap.clone());
            nodes.push(Some(Relay::bind(config).await.unwrap()));
            taps.push(tap);
        }
        let addrs: Vec<SocketAddr> = nodes
            .iter()
            .map(|n| n.as_ref().unwrap().local_addr())
            .collect();
        drop(reserved);
        let balancer = start_balancer_with(nginx, port, &addrs, tls).await;
        Cluster {
            nodes,
            taps,
            balancer,
        }
    }

    fn connect_url(&self) -> String {
        format!("{}/v0", self.balancer.url)
    }

    /// Which node forwarded bytes for `path`, if any.
    fn node_of(&self, path: &str) -> Option<usize> {
        (0..NODES).find(|&i| self.taps[i].total_len(path) > 0)
    }
}

fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut data = vec![0; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill(&mut data[..]);
    data
}

fn config(cluster_url: &str, path: &str) -> Config {
    Config::builder(path)
        .connect_url(cluster_url)
        .no_access_token()
        .build()
        .unwrap()
}

/// Producer through the Connect API with our client; `pace` slows it down.
async fn produce(config: Config, data: Arc<Vec<u8>>, pace: Option<Duration>) -> Result<(), Error> {
    produce_sealed(config, Sealing::Plain, data, pace).await
}

/// [`produce`] with a key.
async fn produce_sealed(
    config: Config,
    sealing: Sealing,
    data: Arc<Vec<u8>>,
    pace: Option<Duration>,
) -> Result<(), Error> {
    let mut w = StreamWriter::connect(&config, &sealing).await?;
    for piece in data.chunks(32 * 1024) {
        w.write_all(piece).await?;
        if let Some(pause) = pace {
            w.flush().await?;
            tokio::time::sleep(pause).await;
        }
    }
    w.shutdown().await?;
    Ok(())
}

async fn consume(config: Config) -> Result<Vec<u8>, Error> {
    consume_opened(config, Opening::Plain).await
}

/// [`consume`] with a key.
async fn consume_opened(config: Config, opening: Opening) -> Result<Vec<u8>, Error> {
    let mut r = StreamReader::connect(&config, &opening).await?;
    let mut got = Vec::new();
    r.read_to_end(&mut got).await?;
    Ok(got)
}

/// Producer straight on the Data API (no Connect), as curl or a browser would.
async fn produce_direct(url: String, data: Arc<Vec<u8>>) -> Result<(), String> {
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(16 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let resp = reqwest::Client::new()
        .put(url)
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| e.to_string())?;
    let last = text.lines().last().unwrap_or_default();
    if status.is_success() && last == "[STATE:TRANSFER_SUCCESSFUL]" {
        Ok(())
    } else {
        Err(format!("{status}: {text}"))
    }
}

async fn consume_direct(url: String) -> Result<Vec<u8>, String> {
    let resp = reqwest::Client::new()
        .get(url)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(resp.status().to_string());
    }
    let mut body = resp.bytes_stream();
    let mut got = Vec::new();
    while let Some(chunk) = body.next().await {
        got.extend_from_slice(&chunk.map_err(|e| e.to_string())?);
    }
    Ok(got)
}

/// One pair on `path`, arrival order and API chosen by `seed`.
async fn run_pair(
    connect_url: String,
    data_base: String,
    path: String,
    seed: u64,
) -> Result<(), String> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let data = Arc::new(payload(seed, rng.gen_range(0..150_000)));
    let producer_delay = Duration::from_millis(rng.gen_range(0..40));
    let consumer_delay = Duration::from_millis(rng.gen_range(0..40));
    let direct = seed % 3 == 0;
    let (p, c) = if direct {
        let url = format!("{data_base}/data{path}");
        let d = data.clone();
        let u = url.clone();
        let p = tokio::spawn(async move {
            tokio::time::sleep(producer_delay).await;
            produce_direct(u, d).await
        });
        let c = tokio::spawn(async move {
            tokio::time::sleep(consumer_delay).await;
            consume_direct(url).await
        });
        (p, c)
    } else {
        let d = data.clone();
        let pc = config(&connect_url, &path);
        let cc = config(&connect_url, &path);
        let p = tokio::spawn(async move {
            tokio::time::sleep(producer_delay).await;
            produce(pc, d, None).await.map_err(|e| e.to_string())
        });
        let c = tokio::spawn(async move {
            tokio::time::sleep(consumer_delay).await;
            consume(cc).await.map_err(|e| e.to_string())
        });
        (p, c)
    };
    let produced = p.await.unwrap();
    let consumed = c.await.unwrap();
    produced.map_err(|e| format!("{path} producer: {e}"))?;
    let got = consumed.map_err(|e| format!("{path} consumer: {e}"))?;
    if got != *data {
        return Err(format!(
            "{path}: {} bytes received, {} sent",
            got.len(),
            data.len()
        ));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_behind_nginx_carry_300_pairs_and_survive_a_node_kill() {
    let Some(nginx) = support::balancer::nginx() else {
        return;
    };
    let mut cluster = Cluster::start(&nginx).await;
    let connect_url = cluster.connect_url();
    let base = cluster.balancer.url.clone();

    // Phase 1: 300 pairs, distinct paths, random order, both APIs.
    let pairs: Vec<_> = (0..300u64)
        .map(|i| {
            tokio::spawn(run_pair(
                connect_url.clone(),
                base.clone(),
                format!("/scale/p{i}"),
                i,
            ))
        })
        .collect();
    let mut failures = Vec::new();
    for p in pairs {
        if let Err(e) = p.await.unwrap() {
            failures.push(e);
        }
    }
    assert!(
        failures.is_empty(),
        "{} of 300 pairs failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let mut per_node = [0usize; NODES];
    for i in 0..300 {
        if let Some(n) = cluster.node_of(&format!("/scale/p{i}")) {
            per_node[n] += 1;
        }
    }
    assert!(
        per_node.iter().all(|&n| n > 30),
        "paths spread over the nodes: {per_node:?}"
    );

    // Phase 2: 45 slow pairs (80 paced 32 KiB writes each) streaming when node 1 is killed.
    let mut live = Vec::new();
    for i in 0..45u64 {
        let path = format!("/kill/p{i}");
        let data = Arc::new(payload(1000 + i, 80 * 32 * 1024));
        let p = tokio::spawn(produce(
            config(&connect_url, &path),
            data.clone(),
            Some(Duration::from_millis(40)),
        ));
        let c = tokio::spawn(consume(config(&connect_url, &path)));
        live.push((path, data, p, c));
    }
    // Kill node 1 once every stream is flowing (each has forwarded bytes).
    let started = std::time::Instant::now();
    while !live
        .iter()
        .all(|(path, ..)| cluster.node_of(path).is_some())
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "streams did not start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let victim = 1;
    // Streams already complete when the node dies are not on it any more.
    let complete: Vec<bool> = live
        .iter()
        .map(|(path, data, ..)| cluster.taps[victim].total_len(path) == data.len() as u64)
        .collect();
    cluster.nodes[victim].take().unwrap().abort();
    let (mut survived, mut killed) = (0, 0);
    for ((path, data, p, c), complete) in live.into_iter().zip(complete) {
        let produced = p.await.unwrap();
        let consumed = c.await.unwrap();
        let node = cluster.node_of(&path).expect("every stream had started");
        if node == victim && !complete {
            killed += 1;
            assert!(
                produced.is_err(),
                "{path}: producer on the killed node reported success"
            );
            if let Ok(got) = consumed {
                panic!(
                    "{path}: consumer on the killed node got a success with {} of {} bytes",
                    got.len(),
                    data.len()
                );
            }
        } else {
            survived += 1;
            produced.unwrap_or_else(|e| panic!("{path} (node {node}) producer: {e}"));
            let got = consumed.unwrap_or_else(|e| panic!("{path} (node {node}) consumer: {e}"));
            assert_eq!(got.len(), data.len(), "{path}");
            assert!(got == *data, "{path}: bytes differ");
        }
    }
    assert!(
        killed > 0 && survived > 0,
        "killed {killed}, survived {survived}"
    );

    // Phase 3: new pairs after the kill all succeed on the remaining nodes.
    let after: Vec<_> = (0..60u64)
        .map(|i| {
            tokio::spawn(run_pair(
                connect_url.clone(),
                base.clone(),
                format!("/after/p{i}"),
                5000 + i,
            ))
        })
        .collect();
    for p in after {
        p.await.unwrap().unwrap();
    }
    for i in 0..60 {
        assert_ne!(cluster.node_of(&format!("/after/p{i}")), Some(victim));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_python_client_works_through_the_balancer() {
    let Some(nginx) = support::balancer::nginx() else {
        return;
    };
    let Some(py_cli) = support::py_cli() else {
        return;
    };
    let cluster = Cluster::start(&nginx).await;
    let connect_url = cluster.connect_url();
    for i in 0..6u64 {
        let path = format!("/py/p{i}");
        let data = payload(9000 + i, 50_000 + i as usize * 1000);
        // Python writes, we read (3 pairs); we write, Python reads (3 pairs).
        if i % 2 == 0 {
            let mut child = tokio::process::Command::new(&py_cli)
                .args(["write", "-s", &path, "-U", &connect_url])
                .env("ZEBRASTREAM_ACCESS_TOKEN", "x")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let input = data.clone();
            tokio::spawn(async move {
                stdin.write_all(&input).await.unwrap();
            });
            let got = consume(config(&connect_url, &path)).await.unwrap();
            let out = child.wait_with_output().await.unwrap();
            assert!(
                out.status.success(),
                "python writer: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(got == data, "{path}: python→rust bytes differ");
        } else {
            let child = tokio::process::Command::new(&py_cli)
                .args(["read", "-s", &path, "-U", &connect_url])
                .env("ZEBRASTREAM_ACCESS_TOKEN", "x")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            produce(config(&connect_url, &path), Arc::new(data.clone()), None)
                .await
                .unwrap();
            let out = child.wait_with_output().await.unwrap();
            assert!(
                out.status.success(),
                "python reader: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.stdout == data, "{path}: rust→python bytes differ");
        }
    }
}

/// The producer arrives first and sends tens of MiB: before the relay held
/// proxied upload responses back, nginx stopped forwarding the body a few MB
/// after the relay's `[STATE:CONNECTED]` passed, and both sides hung.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_uploads_through_nginx_do_not_stall() {
    let Some(nginx) = support::balancer::nginx() else {
        return;
    };
    let cluster = Cluster::start(&nginx).await;
    let connect_url = cluster.connect_url();
    let data = Arc::new(payload(4242, 40 << 20));
    for direct in [true, false] {
        let path = format!("/bulk/direct-{direct}");
        let producer = {
            let data = data.clone();
            let url = format!("{}/data{path}", cluster.balancer.url);
            let config = config(&connect_url, &path);
            tokio::spawn(async move {
                if direct {
                    produce_direct(url, data).await
                } else {
                    produce(config, data, None).await.map_err(|e| e.to_string())
                }
            })
        };
        // Let the producer park (and fill its socket buffers) first.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let consumed = tokio::time::timeout(Duration::from_secs(120), async {
            if direct {
                consume_direct(format!("{}/data{path}", cluster.balancer.url)).await
            } else {
                consume(config(&connect_url, &path))
                    .await
                    .map_err(|e| e.to_string())
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{path}: consumer stalled"));
        let got = consumed.unwrap_or_else(|e| panic!("{path} consumer: {e}"));
        assert!(
            got == *data,
            "{path}: {} of {} bytes",
            got.len(),
            data.len()
        );
        tokio::time::timeout(Duration::from_secs(30), producer)
            .await
            .unwrap_or_else(|_| panic!("{path}: producer stalled"))
            .unwrap()
            .unwrap_or_else(|e| panic!("{path} producer: {e}"));
    }
}

/// The recipe's TLS termination: clients speak HTTPS to nginx, nginx plain
/// HTTP to the nodes, and the data URLs the nodes hand out are `https://`
/// URLs of the balancer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_terminated_at_the_balancer() {
    let Some(nginx) = support::balancer::nginx() else {
        return;
    };
    let data_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let (cert, key) = (
        data_dir.join("client_tls_test_cert.pem"),
        data_dir.join("client_tls_test_key.pem"),
    );
    let tls = TlsFiles {
        cert: &cert,
        key: &key,
    };
    let cluster = Cluster::start_with(&nginx, UploadResponse::Auto, Some(tls)).await;
    assert!(cluster.balancer.url.starts_with("https://"));
    let connect_url = cluster.connect_url();
    let pem = std::fs::read(&cert).unwrap();
    let trusted = |path: &str| {
        Config::builder(path)
            .connect_url(&connect_url)
            .no_access_token()
            .add_root_certificate_pem(&pem)
            .unwrap()
    };
    for (i, encrypted) in [(0u64, true), (1, false)] {
        let path = format!("/tls/s{i}");
        let (sealing, opening) = if encrypted {
            let identity = age::x25519::Identity::generate();
            (
                Sealing::recipients(vec![Box::new(identity.to_public())], Format::AgeRt),
                Opening::identities(vec![Box::new(identity)]),
            )
        } else {
            (Sealing::Plain, Opening::Plain)
        };
        let data = Arc::new(payload(700 + i, 6 << 20));
        let producer = tokio::spawn(produce_sealed(
            trusted(&path).build().unwrap(),
            sealing,
            data.clone(),
            None,
        ));
        let got = consume_opened(trusted(&path).build().unwrap(), opening)
            .await
            .unwrap();
        producer.await.unwrap().unwrap();
        assert!(
            got == *data,
            "{path}: {} of {} bytes",
            got.len(),
            data.len()
        );
        let node = cluster.node_of(&path).expect("a node carried it");
        assert!(cluster.taps[node].total_len(&path) > 0);
    }
}

//! Many concurrent stream pairs through one relay: our client, plaintext,
//! every stream checked byte for byte against its own pattern. All pairs
//! run in one child process (`ZS_BENCH_ROLE=swarm`), the relay in another,
//! so the relay's peak RSS is its own.

use std::process::{Command, Stdio};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::common::case::WRITE;
use crate::common::client::{config, receive, send, Reports};
use crate::common::env_u64;
use crate::common::process::{wait_ok, Usage};
use crate::common::server::{Kind, Server};

/// The role name of the child that runs the pairs.
pub const ROLE: &str = "swarm";

/// What the swarm child reports.
#[derive(Debug, Serialize, Deserialize)]
struct SwarmReport {
    /// Seconds from the first connect to the last stream's end.
    seconds: f64,
    /// Streams whose bytes all matched.
    exact: usize,
}

/// The figures for one number of concurrent streams.
#[derive(Debug, Clone, Serialize)]
pub struct StreamsPoint {
    /// Concurrent stream pairs.
    pub streams: usize,
    /// Bytes per stream.
    pub bytes_per_stream: u64,
    /// Aggregate throughput, MB/s (including connecting).
    pub mb_per_s: f64,
    /// The relay process.
    pub relay: Usage,
    /// The process holding all clients.
    pub clients: Usage,
}

/// Runs `streams` concurrent pairs of `bytes` each through a fresh relay.
pub fn measure(streams: usize, bytes: u64) -> StreamsPoint {
    let server = Server::start(&Kind::Ours);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("ZS_BENCH_ROLE", ROLE)
        .env("ZS_BENCH_URL", server.connect_url())
        .env("ZS_BENCH_STREAMS", streams.to_string())
        .env("ZS_BENCH_BYTES", bytes.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn swarm");
    let report: SwarmReport = Reports::of(&mut child).next();
    let clients = wait_ok(child, "swarm");
    let relay = server.finish();
    assert_eq!(report.exact, streams, "streams not byte-exact");
    StreamsPoint {
        streams,
        bytes_per_stream: bytes,
        mb_per_s: (streams as u64 * bytes) as f64 / report.seconds / 1e6,
        relay,
        clients,
    }
}

/// The body of [`ROLE`]: runs the pairs, prints a [`SwarmReport`].
pub fn play() {
    let url = std::env::var("ZS_BENCH_URL").expect("ZS_BENCH_URL");
    let streams = env_u64("ZS_BENCH_STREAMS", 1) as usize;
    let bytes = env_u64("ZS_BENCH_BYTES", 0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let report = runtime.block_on(async move {
        let started = Instant::now();
        let pairs: Vec<_> = (0..streams)
            .map(|i| tokio::spawn(pair(url.clone(), i as u64, bytes)))
            .collect();
        let mut exact = 0;
        for pair in pairs {
            exact += usize::from(pair.await.expect("pair"));
        }
        SwarmReport {
            seconds: started.elapsed().as_secs_f64(),
            exact,
        }
    });
    println!("{}", serde_json::to_string(&report).unwrap());
}

/// One producer and one consumer on stream `index`; true if byte-exact.
async fn pair(url: String, index: u64, bytes: u64) -> bool {
    let path = format!("/bench/swarm/{index}");
    let writer_end = config(&url, &path, None);
    let producer = tokio::spawn(async move { send(&writer_end, index, bytes, WRITE, 0).await });
    let delivery = receive(&config(&url, &path, None), index).await;
    producer.await.expect("producer");
    delivery.exact && delivery.bytes == bytes
}

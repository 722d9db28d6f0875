//! Flush-to-deliver latency: small writes, each followed by `flush()`, from
//! our `StreamWriter` through our relay (its own process) to our
//! `StreamReader`, both in this process so they share one clock.
//!
//! Each message carries its send time (nanoseconds since a common start);
//! the reader takes the difference on arrival and acknowledges it, and the
//! writer sends the next message only then, so no message queues behind
//! another: the figure is the latency of one flushed write.

use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zebrastream::client::{StreamReader, StreamWriter};

use crate::common::client::{config, new_key};
use crate::common::server::{Kind, Server};

/// Bytes per message (the first 8 carry the send time).
const MESSAGE: usize = 100;

/// Latency percentiles of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Display name.
    pub name: String,
    /// Messages sent.
    pub messages: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
}

/// Sends `messages` flushed writes, plaintext or encrypted (age-rt, X25519).
pub fn measure(messages: usize, encrypted: bool) -> Latency {
    let server = Server::start(&Kind::Ours);
    let key = encrypted.then(new_key);
    let url = server.connect_url();
    let writer_end = config(&url, "/bench/latency", key.as_deref());
    let reader_end = config(&url, "/bench/latency", key.as_deref());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut samples = runtime.block_on(async move {
        let epoch = Instant::now();
        let (ack, mut acked) = tokio::sync::mpsc::channel::<()>(1);
        let reader = tokio::spawn(async move {
            let mut reader = StreamReader::connect(&reader_end.config, &reader_end.opening)
                .await
                .expect("reader");
            let mut samples = Vec::with_capacity(messages);
            let mut message = [0u8; MESSAGE];
            for _ in 0..messages {
                reader.read_exact(&mut message).await.expect("read");
                let arrived = epoch.elapsed();
                let sent = u64::from_le_bytes(message[..8].try_into().unwrap());
                samples.push(arrived - Duration::from_nanos(sent));
                let _ = ack.send(()).await;
            }
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest).await.expect("end");
            assert!(rest.is_empty(), "bytes after the last message");
            samples
        });
        let mut writer = StreamWriter::connect(&writer_end.config, &writer_end.sealing)
            .await
            .expect("writer");
        let mut message = [0x5au8; MESSAGE];
        for _ in 0..messages {
            let sent = epoch.elapsed().as_nanos() as u64;
            message[..8].copy_from_slice(&sent.to_le_bytes());
            writer.write_all(&message).await.expect("write");
            writer.flush().await.expect("flush");
            acked.recv().await.expect("acknowledged");
        }
        writer.shutdown().await.expect("shutdown");
        reader.await.unwrap()
    });
    server.finish();
    samples.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let at = |q: f64| ms(samples[((samples.len() - 1) as f64 * q).round() as usize]);
    Latency {
        name: if encrypted {
            "age-rt (X25519)"
        } else {
            "plain"
        }
        .into(),
        messages,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
        max_ms: ms(*samples.last().unwrap()),
    }
}

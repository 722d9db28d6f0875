//! `zebrastream demo`: an end-to-end encrypted transfer through an
//! in-process relay on a free loopback port, with proof that the relay only
//! ever saw ciphertext. Needs no configuration and no network.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::BytesMut;
use clap::Args;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use zebrastream::cipher::Format;
use zebrastream::client::{self, StreamReader, StreamWriter};
use zebrastream::relay::{ForwardTap, Relay, RelayConfig, TapVerdict};

use super::errors::{client_failure, io_failure, Side};
use super::size::parse_size;
use super::{CmdResult, ExitKind, Failure};

/// Starts every 64 KiB block of the generated dataset, so a relay that saw
/// any plaintext would see this.
const MARKER: &[u8; 32] = b"ZEBRASTREAM-DEMO-PLAINTEXT-BLOCK";
/// Size of one generated block (one age chunk).
const BLOCK: usize = 64 * 1024;
/// The stream path the demo uses.
const DEMO_PATH: &str = "/demo/dataset";

/// Arguments of `zebrastream demo`.
#[derive(Debug, Args)]
#[command(after_help = "\
Starts a relay on a free 127.0.0.1 port, generates an age X25519 key pair,
pushes SIZE bytes encrypted from one task and pulls, decrypts and verifies
them (SHA-256) in another, while a tap on the relay checks every forwarded
byte for the plaintext's block marker.

Examples:
  cargo run --release -- demo
  zebrastream demo --size 1GiB --format age")]
pub struct DemoArgs {
    /// How much data to transfer (e.g. 64MiB, 1GiB, 500MB, 12345)
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    size: u64,
    /// Payload format: age-rt (default) or age
    #[arg(long, value_name = "FORMAT", default_value = "age-rt", value_parser = parse_format)]
    format: Format,
}

fn parse_format(text: &str) -> Result<Format, String> {
    text.parse::<Format>().map_err(|e| e.to_string())
}

/// Watches every chunk the relay forwards: counts bytes and looks for the
/// plaintext marker, also across chunk boundaries.
#[derive(Default)]
struct PlaintextScan {
    forwarded: AtomicU64,
    marker_seen: AtomicBool,
    /// The last `MARKER.len() - 1` bytes of the previous chunk.
    tail: Mutex<Vec<u8>>,
}

impl PlaintextScan {
    fn scan(&self, chunk: &[u8]) {
        let mut tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        let keep = MARKER.len() - 1;
        // The boundary region: old tail + the start of this chunk.
        let mut boundary = tail.clone();
        boundary.extend_from_slice(&chunk[..chunk.len().min(keep)]);
        if contains_marker(&boundary) || contains_marker(chunk) {
            self.marker_seen.store(true, Ordering::Relaxed);
        }
        let mut joined = std::mem::take(&mut *tail);
        joined.extend_from_slice(&chunk[chunk.len().saturating_sub(keep)..]);
        *tail = joined[joined.len().saturating_sub(keep)..].to_vec();
    }
}

impl ForwardTap for PlaintextScan {
    fn forward(&self, _path: &str, chunk: &mut BytesMut) -> TapVerdict {
        self.forwarded
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        self.scan(chunk);
        TapVerdict::Forward
    }
}

/// True if `haystack` contains [`MARKER`].
fn contains_marker(haystack: &[u8]) -> bool {
    let mut rest = haystack;
    while let Some(at) = rest.iter().position(|&b| b == MARKER[0]) {
        if rest[at..].starts_with(MARKER) {
            return true;
        }
        rest = &rest[at + 1..];
    }
    false
}

/// Fills `block` with the demo data of block number `index`: the marker,
/// the index, then xorshift noise (cheap, and incompressible enough).
fn fill_block(block: &mut [u8], index: u64) {
    let mut state = index.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for word in block.chunks_mut(8) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let bytes = state.to_le_bytes();
        word.copy_from_slice(&bytes[..word.len()]);
    }
    let head = MARKER.len().min(block.len());
    block[..head].copy_from_slice(&MARKER[..head]);
    if block.len() >= MARKER.len() + 8 {
        block[MARKER.len()..MARKER.len() + 8].copy_from_slice(&index.to_le_bytes());
    }
}

/// Runs the demo.
pub fn run(args: DemoArgs) -> CmdResult {
    super::block_on(super::Runtime::MultiThread, demo(args.size, args.format))
}

async fn demo(size: u64, format: Format) -> CmdResult {
    let scan = Arc::new(PlaintextScan::default());
    let relay = Relay::bind(RelayConfig::open_loopback().tap(scan.clone()))
        .await
        .map_err(|e| {
            Failure::new(
                ExitKind::Other,
                format!("demo: cannot start the relay: {e}"),
            )
        })?;
    let connect_url = relay.connect_url();
    println!("relay     in-process on {connect_url} (loopback only)");

    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public();
    println!("key       fresh age X25519 key pair; payload format {format}");
    let sealing = client::Sealing::recipients(vec![Box::new(recipient)], format);
    let opening = client::Opening::identities(vec![Box::new(identity)]);
    let config = client::Config::builder(DEMO_PATH)
        .connect_url(connect_url.clone())
        .build()
        .map_err(|e| client_failure(DEMO_PATH, Side::Producer, &e))?;
    let producer_config = config.clone();

    let started = Instant::now();
    let producer = tokio::spawn(async move { produce(&producer_config, &sealing, size).await });
    let consumer = tokio::spawn(async move { consume(&config, &opening).await });
    let joined = |r: Result<Result<_, Failure>, tokio::task::JoinError>| {
        r.map_err(|e| Failure::new(ExitKind::Other, format!("demo: task failed: {e}")))?
    };
    let (sent, sent_hash) = joined(producer.await)?;
    let (received, received_hash) = joined(consumer.await)?;
    let elapsed = started.elapsed();
    relay.shutdown().await;

    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let forwarded = scan.forwarded.load(Ordering::Relaxed);
    println!(
        "sent      {sent} bytes ({:.1} MiB) of generated data, encrypted",
        mib(sent)
    );
    println!(
        "received  {received} bytes, decrypted; SHA-256 {}",
        to_hex(&received_hash)
    );
    println!(
        "relay     forwarded {forwarded} bytes ({:.1} MiB); plaintext block marker seen: {}",
        mib(forwarded),
        if scan.marker_seen.load(Ordering::Relaxed) {
            "YES"
        } else {
            "never"
        }
    );
    println!(
        "time      {:.2} s, {:.0} MiB/s end to end (encrypt + relay + decrypt + verify)",
        elapsed.as_secs_f64(),
        mib(sent) / elapsed.as_secs_f64().max(1e-9)
    );
    if sent != received || sent_hash != received_hash {
        return Err(Failure::new(
            ExitKind::Other,
            "demo: FAILED: the received data differs from the data sent",
        ));
    }
    if scan.marker_seen.load(Ordering::Relaxed) {
        return Err(Failure::new(
            ExitKind::Other,
            "demo: FAILED: the relay saw plaintext",
        ));
    }
    println!("ok        data verified; the relay saw only ciphertext");
    Ok(())
}

/// Pushes `size` generated bytes; returns the count and their SHA-256.
async fn produce(
    config: &client::Config,
    sealing: &client::Sealing,
    size: u64,
) -> Result<(u64, [u8; 32]), Failure> {
    let fail = |e| io_failure(DEMO_PATH, Side::Producer, e);
    let mut writer = StreamWriter::connect(config, sealing)
        .await
        .map_err(|e| client_failure(DEMO_PATH, Side::Producer, &e))?;
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; BLOCK];
    let mut sent = 0u64;
    let mut index = 0u64;
    while sent < size {
        let n = (size - sent).min(BLOCK as u64) as usize;
        fill_block(&mut block[..n], index);
        hasher.update(&block[..n]);
        writer.write_all(&block[..n]).await.map_err(fail)?;
        sent += n as u64;
        index += 1;
    }
    writer.shutdown().await.map_err(fail)?;
    Ok((sent, hasher.finalize().into()))
}

/// Pulls the stream to its end; returns the count and the SHA-256.
async fn consume(
    config: &client::Config,
    opening: &client::Opening,
) -> Result<(u64, [u8; 32]), Failure> {
    let fail = |e| io_failure(DEMO_PATH, Side::Consumer, e);
    let mut reader = StreamReader::connect(config, opening)
        .await
        .map_err(|e| client_failure(DEMO_PATH, Side::Consumer, &e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BLOCK];
    let mut received = 0u64;
    loop {
        let n = reader.read(&mut buf).await.map_err(fail)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        received += n as u64;
    }
    Ok((received, hasher.finalize().into()))
}

fn to_hex(hash: &[u8; 32]) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_found_across_chunk_boundaries() {
        let scan = PlaintextScan::default();
        let mut data = [0u8; 100];
        data[40..72].copy_from_slice(MARKER);
        scan.scan(&data[..50]);
        assert!(!scan.marker_seen.load(Ordering::Relaxed));
        scan.scan(&data[50..]);
        assert!(scan.marker_seen.load(Ordering::Relaxed));

        let clean = PlaintextScan::default();
        for piece in vec![7u8; 1000].chunks(3) {
            clean.scan(piece);
        }
        assert!(!clean.marker_seen.load(Ordering::Relaxed));
    }

    #[test]
    fn generated_blocks_carry_the_marker() {
        let mut block = vec![0u8; BLOCK];
        fill_block(&mut block, 5);
        assert!(contains_marker(&block));
        let mut other = vec![0u8; BLOCK];
        fill_block(&mut other, 6);
        assert_ne!(block[40..], other[40..]);
        let mut short = vec![0u8; 10];
        fill_block(&mut short, 0);
        assert_eq!(&short[..], &MARKER[..10]);
    }
}

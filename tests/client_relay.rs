//! The client library against our in-process relay: plain and encrypted
//! transfers in both arrival orders, flush latency, auto-flush, and every
//! failure mode (bad token, timeout, either peer or the relay dying), which
//! must surface as typed errors and never as a short success.

mod support;

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use zebrastream::cipher::{self, Format};
use zebrastream::client::{
    self, blocking, AutoFlush, Config, ConfigBuilder, Error, Opening, Sealing, StreamReader,
    StreamWriter,
};
use zebrastream::relay::{CaptureTap, Relay, RelayAuth, RelayConfig, RelayHandle};

/// A deterministic test payload: byte `i` is `BLOCK[i % BLOCK.len()]`, with a
/// prime block length so chunk boundaries never line up with it.
struct Pattern {
    block: Vec<u8>,
}

impl Pattern {
    fn new() -> Pattern {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let block = (0..65_521)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        Pattern { block }
    }

    /// The `len` bytes starting at stream offset `offset`.
    fn slice(&self, offset: u64, len: usize) -> Vec<u8> {
        let n = self.block.len();
        let mut out = Vec::with_capacity(len);
        let mut pos = (offset % n as u64) as usize;
        while out.len() < len {
            let take = (n - pos).min(len - out.len());
            out.extend_from_slice(&self.block[pos..pos + take]);
            pos = 0;
        }
        out
    }
}

async fn relay_with_tap() -> (RelayHandle, Arc<CaptureTap>) {
    let tap = Arc::new(CaptureTap::new(1 << 20));
    let relay = Relay::bind(RelayConfig::open_loopback().tap(tap.clone()))
        .await
        .expect("relay binds");
    (relay, tap)
}

async fn relay() -> RelayHandle {
    relay_with_tap().await.0
}

fn config(relay: &RelayHandle, path: &str) -> ConfigBuilder {
    Config::builder(path)
        .connect_url(relay.connect_url())
        .connect_timeout(Duration::from_secs(20))
}

/// A writer's settings in these tests: its configuration and its key.
type Writing = (ConfigBuilder, Sealing);
/// A reader's settings in these tests: its configuration and its key.
type Reading = (ConfigBuilder, Opening);

/// A plaintext writer on `path`.
fn writing(relay: &RelayHandle, path: &str) -> Writing {
    (config(relay, path), Sealing::Plain)
}

/// A plaintext reader on `path`.
fn reading(relay: &RelayHandle, path: &str) -> Reading {
    (config(relay, path), Opening::Plain)
}

/// Writes `size` pattern bytes in 64 KiB writes, then shuts down.
async fn produce((config, sealing): (Config, Sealing), size: u64) -> Result<u64, Error> {
    let pattern = Pattern::new();
    let mut writer = StreamWriter::connect(&config, &sealing).await?;
    let mut offset = 0;
    while offset < size {
        let len = (size - offset).min(64 * 1024) as usize;
        writer
            .write_all(&pattern.slice(offset, len))
            .await
            .map_err(into_client)?;
        offset += len as u64;
    }
    writer.shutdown().await.map_err(into_client)?;
    Ok(writer.bytes_written())
}

/// Reads to EOF, checking every byte against the pattern; returns the length.
async fn consume((config, opening): (Config, Opening)) -> Result<u64, Error> {
    let pattern = Pattern::new();
    let mut reader = StreamReader::connect(&config, &opening).await?;
    let mut buf = vec![0u8; 100_000];
    let mut offset = 0u64;
    loop {
        let n = reader.read(&mut buf).await.map_err(into_client)?;
        if n == 0 {
            return Ok(offset);
        }
        assert_eq!(
            buf[..n],
            pattern.slice(offset, n)[..],
            "payload differs at offset {offset}"
        );
        offset += n as u64;
    }
}

fn into_client(e: std::io::Error) -> Error {
    match Error::from_io(&e) {
        Some(_) => *e
            .into_inner()
            .unwrap()
            .downcast::<Error>()
            .expect("a client error"),
        None => Error::Io(e),
    }
}

/// Runs one transfer; `writer_first` decides who calls the Connect API first.
async fn transfer(
    relay: &RelayHandle,
    path: &str,
    writer: Writing,
    reader: Reading,
    size: u64,
    writer_first: bool,
) {
    let _ = relay;
    let (wc, rc) = (
        (writer.0.build().unwrap(), writer.1),
        (reader.0.build().unwrap(), reader.1),
    );
    let (first, second): (tokio::task::JoinHandle<Result<u64, Error>>, _) = if writer_first {
        let w = tokio::spawn(produce(wc, size));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = tokio::spawn(consume(rc));
        (w, r)
    } else {
        let r = tokio::spawn(consume(rc));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let w = tokio::spawn(produce(wc, size));
        (r, w)
    };
    let a = first
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let b = second
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!((a, b), (size, size), "{path}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_small_sizes_both_orders() {
    let relay = relay().await;
    for (i, size) in [0u64, 1, 65_536, 200_001].into_iter().enumerate() {
        for writer_first in [true, false] {
            let path = format!("/plain/{i}-{writer_first}");
            transfer(
                &relay,
                &path,
                writing(&relay, &path),
                reading(&relay, &path),
                size,
                writer_first,
            )
            .await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_100_mib() {
    let relay = relay().await;
    let path = "/plain/big";
    transfer(
        &relay,
        path,
        writing(&relay, path),
        reading(&relay, path),
        100 << 20,
        true,
    )
    .await;
}

/// Each flushed message is readable at the consumer before the next write:
/// the writer waits for the consumer's acknowledgement after each flush.
async fn flush_latency(writer: Writing, reader: Reading, flush: bool) {
    let (wc, rc) = (writer.0.build().unwrap(), reader.0.build().unwrap());
    let (sealing, opening) = (writer.1, reader.1);
    let (ack_tx, mut ack_rx) = mpsc::channel::<usize>(1);
    let consumer = tokio::spawn(async move {
        let mut reader = StreamReader::connect(&rc, &opening).await.unwrap();
        for i in 0..5usize {
            let expected = format!("message {i}\n");
            let mut got = vec![0u8; expected.len()];
            reader.read_exact(&mut got).await.unwrap();
            assert_eq!(got, expected.as_bytes());
            ack_tx.send(i).await.unwrap();
        }
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    });
    let mut writer = StreamWriter::connect(&wc, &sealing).await.unwrap();
    for i in 0..5usize {
        writer
            .write_all(format!("message {i}\n").as_bytes())
            .await
            .unwrap();
        if flush {
            writer.flush().await.unwrap();
        }
        // Without the flush (or auto-flush) reaching the relay, no ack comes.
        let acked = tokio::time::timeout(Duration::from_secs(10), ack_rx.recv())
            .await
            .expect("the consumer did not receive the flushed message");
        assert_eq!(acked, Some(i));
    }
    writer.shutdown().await.unwrap();
    consumer.await.unwrap();
}

#[tokio::test]
async fn plain_flush_reaches_the_consumer() {
    let relay = relay().await;
    let path = "/plain/flush";
    flush_latency(writing(&relay, path), reading(&relay, path), true).await;
}

#[tokio::test]
async fn plain_auto_flush_every_write_and_after_delay() {
    let relay = relay().await;
    let path = "/plain/auto-every";
    flush_latency(
        (
            config(&relay, path).auto_flush(AutoFlush::EveryWrite),
            Sealing::Plain,
        ),
        reading(&relay, path),
        false,
    )
    .await;
    let path = "/plain/auto-after";
    flush_latency(
        (
            config(&relay, path).auto_flush(AutoFlush::After(Duration::from_millis(50))),
            Sealing::Plain,
        ),
        reading(&relay, path),
        false,
    )
    .await;
}

#[tokio::test]
async fn connect_timeout_without_peer() {
    let relay = relay().await;
    let c = config(&relay, "/nobody")
        .connect_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = StreamWriter::connect(&c, &Sealing::Plain)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ConnectTimeout(_)), "{err:?}");
    let err = StreamReader::connect(&c, &Opening::Plain)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ConnectTimeout(_)), "{err:?}");
}

#[tokio::test]
async fn wrong_token_is_an_auth_error() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        "[[tokens]]\ntoken = \"write-secret\"\nmode = \"write\"\npath = \"/auth\"\nrecursive = true\n",
    )
    .unwrap();
    let relay = Relay::bind(RelayConfig::open_loopback().auth(RelayAuth::TokensFile(tokens)))
        .await
        .unwrap();
    let base = |token: &str| {
        Config::builder("/auth/s")
            .connect_url(relay.connect_url())
            .access_token(SecretString::from(token))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    };
    let err = StreamWriter::connect(&base("wrong"), &Sealing::Plain)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Auth { status: 401, .. }), "{err:?}");
    // A write token does not allow reading.
    let err = StreamReader::connect(&base("write-secret"), &Opening::Plain)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Auth { status: 403, .. }), "{err:?}");
    let no_token = Config::builder("/auth/s")
        .connect_url(relay.connect_url())
        .no_access_token()
        .build()
        .unwrap();
    let err = StreamWriter::connect(&no_token, &Sealing::Plain)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Auth { status: 401, .. }), "{err:?}");
}

/// Starts a transfer, lets `bytes` through, and returns both ends.
async fn paired(
    relay: &RelayHandle,
    path: &str,
    w: Writing,
    r: Reading,
) -> (StreamWriter, StreamReader) {
    let _ = relay;
    let (wc, rc) = (w.0.build().unwrap(), r.0.build().unwrap());
    let opening = r.1;
    let reader = tokio::spawn(async move { StreamReader::connect(&rc, &opening).await });
    let writer = StreamWriter::connect(&wc, &w.1)
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    (writer, reader.await.unwrap().unwrap())
}

async fn read_until_error(reader: &mut StreamReader) -> Result<u64, Error> {
    let mut buf = vec![0u8; 65536];
    let mut total = 0;
    loop {
        match reader.read(&mut buf).await {
            Ok(0) => return Ok(total),
            Ok(n) => total += n as u64,
            Err(e) => return Err(into_client(e)),
        }
    }
}

#[tokio::test]
async fn producer_dropped_mid_stream_plain_is_an_error() {
    let relay = relay().await;
    let path = "/plain/drop-producer";
    let (mut writer, mut reader) =
        paired(&relay, path, writing(&relay, path), reading(&relay, path)).await;
    writer.write_all(&[7u8; 100_000]).await.unwrap();
    writer.flush().await.unwrap();
    drop(writer);
    let err = read_until_error(&mut reader).await.unwrap_err();
    assert!(matches!(err, Error::Truncated), "{err:?}");
}

/// The log lines of this thread's `tracing` events while it lives.
struct CapturedLog {
    lines: Arc<std::sync::Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl CapturedLog {
    fn install() -> CapturedLog {
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .with_writer(move || Capture(sink.clone()))
            .finish();
        CapturedLog {
            lines,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.lines.lock().unwrap()).into_owned()
    }
}

struct Capture(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A writer dropped without `shutdown()`: the consumer gets `Truncated`, and
/// the producer, which got no error, a warning that the stream was
/// abandoned. `abort()` ends a stream on purpose: the same for the consumer,
/// no warning.
#[tokio::test]
async fn a_dropped_writer_warns_that_the_stream_was_abandoned() {
    let log = CapturedLog::install();
    let relay = relay().await;
    for (path, on_purpose) in [("/plain/abandoned", false), ("/plain/aborted", true)] {
        let (mut writer, mut reader) =
            paired(&relay, path, writing(&relay, path), reading(&relay, path)).await;
        writer.write_all(b"partial").await.unwrap();
        writer.flush().await.unwrap();
        if on_purpose {
            writer.abort();
        } else {
            drop(writer);
        }
        let err = read_until_error(&mut reader).await.unwrap_err();
        assert!(matches!(err, Error::Truncated), "{path}: {err:?}");
        let warning = log
            .text()
            .lines()
            .find(|l| l.contains(path) && l.contains("WARN"))
            .map(str::to_owned);
        if on_purpose {
            assert_eq!(warning, None, "{path}");
        } else {
            let warning = warning.unwrap_or_else(|| panic!("no warning in:\n{}", log.text()));
            assert!(
                warning.contains("dropped without shutdown() after 7 bytes")
                    && warning.contains("abandoned"),
                "{warning}"
            );
        }
    }
}

/// Delivers 5 bytes, drops the reader, then keeps writing until the relay's
/// report arrives: the error the producer gets (shutdown must not succeed).
async fn drop_consumer_mid_stream(mut writer: StreamWriter, mut reader: StreamReader) -> Error {
    writer.write_all(b"hello").await.unwrap();
    writer.flush().await.unwrap();
    let mut five = [0u8; 5];
    reader.read_exact(&mut five).await.unwrap();
    drop(reader);
    let chunk = vec![1u8; 64 * 1024];
    for _ in 0..10_000 {
        if let Err(e) = writer.write_all(&chunk).await {
            return into_client(e);
        }
    }
    into_client(writer.shutdown().await.unwrap_err())
}

#[tokio::test]
async fn consumer_dropped_gives_peer_disconnected() {
    let relay = relay().await;
    let path = "/plain/drop-consumer";
    let (writer, reader) = paired(&relay, path, writing(&relay, path), reading(&relay, path)).await;
    let err = drop_consumer_mid_stream(writer, reader).await;
    // The producer streams at full speed over HTTP/1.1: the relay keeps
    // reading (and discarding) the upload for a moment after its error line
    // (`CONSUMER_GONE_LINGER`), so no TCP reset destroys the line and the
    // producer learns why, not just that its connection broke.
    assert!(matches!(err, Error::PeerDisconnected), "{err:?}");
}

#[tokio::test]
async fn consumer_gone_before_shutdown_fails_the_shutdown() {
    let relay = relay().await;
    let path = "/plain/gone-before-shutdown";
    let (mut writer, reader) =
        paired(&relay, path, writing(&relay, path), reading(&relay, path)).await;
    writer.write_all(b"x").await.unwrap();
    drop(reader);
    let err = into_client(writer.shutdown().await.unwrap_err());
    assert!(matches!(err, Error::PeerDisconnected), "{err:?}");
}

#[tokio::test]
async fn relay_killed_mid_stream_fails_both_sides() {
    for encrypted in [false, true] {
        let relay = relay().await;
        let path = "/kill";
        let (w, r) = if encrypted {
            let (to, from, _) = x25519(Format::AgeRt);
            ((config(&relay, path), to), (config(&relay, path), from))
        } else {
            (writing(&relay, path), reading(&relay, path))
        };
        let (mut writer, mut reader) = paired(&relay, path, w, r).await;
        writer.write_all(&[3u8; 200_000]).await.unwrap();
        writer.flush().await.unwrap();
        let mut some = vec![0u8; 1000];
        reader.read_exact(&mut some).await.unwrap();
        relay.abort();
        let read = read_until_error(&mut reader).await;
        assert!(
            matches!(read, Err(Error::Truncated)),
            "encrypted={encrypted}: {read:?}"
        );
        let write = async {
            writer.write_all(&[3u8; 100_000]).await?;
            writer.shutdown().await
        }
        .await;
        let err = into_client(write.unwrap_err());
        assert!(
            matches!(err, Error::ConnectionLost(_) | Error::Protocol(_)),
            "encrypted={encrypted}: {err:?}"
        );
    }
}

#[tokio::test]
async fn writer_and_reader_are_closed_after_use() {
    let relay = relay().await;
    let path = "/plain/closed";
    let (mut writer, mut reader) =
        paired(&relay, path, writing(&relay, path), reading(&relay, path)).await;
    writer.write_all(b"abc").await.unwrap();
    writer.shutdown().await.unwrap();
    let err = writer.write_all(b"more").await.unwrap_err();
    assert!(
        matches!(Error::from_io(&err), Some(Error::Closed)),
        "{err:?}"
    );
    let mut got = Vec::new();
    reader.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"abc");
}

#[tokio::test]
async fn second_writer_on_a_busy_stream_is_refused() {
    let relay = relay().await;
    let path = "/plain/busy";
    let (mut writer, mut reader) =
        paired(&relay, path, writing(&relay, path), reading(&relay, path)).await;
    let err = StreamWriter::connect(
        &config(&relay, path)
            .connect_timeout(Duration::from_millis(500))
            .build()
            .unwrap(),
        &Sealing::Plain,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, Error::Connect(_) | Error::ConnectTimeout(_)),
        "{err:?}"
    );
    writer.write_all(b"ok").await.unwrap();
    writer.shutdown().await.unwrap();
    let mut got = Vec::new();
    reader.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_and_pull_files() {
    let relay = relay().await;
    let path = "/plain/files";
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("in.bin");
    let dst = dir.path().join("out.bin");
    let data = Pattern::new().slice(0, 300_000);
    std::fs::write(&src, &data).unwrap();
    let wc = config(&relay, path).build().unwrap();
    let rc = config(&relay, path).build().unwrap();
    let dst2 = dst.clone();
    let pull = tokio::spawn(async move { client::pull_file(&rc, &Opening::Plain, &dst2).await });
    let pushed = client::push_file(&wc, &Sealing::Plain, &src).await.unwrap();
    let pulled = pull.await.unwrap().unwrap();
    assert_eq!((pushed.bytes, pulled.bytes), (300_000, 300_000));
    assert_eq!(std::fs::read(&dst).unwrap(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_file_keeps_nothing_of_a_truncated_stream() {
    let relay = relay().await;
    let path = "/plain/files-truncated";
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("out.bin");
    let rc = config(&relay, path).build().unwrap();
    let dst2 = dst.clone();
    let pull = tokio::spawn(async move { client::pull_file(&rc, &Opening::Plain, &dst2).await });
    let mut writer = StreamWriter::connect(&config(&relay, path).build().unwrap(), &Sealing::Plain)
        .await
        .unwrap();
    writer.write_all(&[9u8; 10_000]).await.unwrap();
    writer.flush().await.unwrap();
    drop(writer);
    let err = pull.await.unwrap().unwrap_err();
    // Truncated, or (if the writer was gone before the download started) a
    // failed connect: either way an error, and no file is kept.
    assert!(
        matches!(err, Error::Truncated | Error::Connect(_)),
        "{err:?}"
    );
    assert!(!dst.exists());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "temp file left behind"
    );
}

#[test]
fn blocking_writer_and_reader() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let relay = runtime.block_on(relay());
    let path = "/plain/blocking";
    let wc = config(&relay, path).build().unwrap();
    let rc = config(&relay, path).build().unwrap();
    let consumer = std::thread::spawn(move || {
        use std::io::Read;
        let mut reader = blocking::Reader::connect(&rc, &Opening::Plain).unwrap();
        let mut got = Vec::new();
        reader.read_to_end(&mut got).unwrap();
        got
    });
    use std::io::Write;
    let mut writer = blocking::Writer::connect(&wc, &Sealing::Plain).unwrap();
    writer.write_all(b"blocking hello").unwrap();
    writer.flush().unwrap();
    let report = writer.finish().unwrap();
    assert_eq!(report.bytes, 14);
    assert_eq!(consumer.join().unwrap(), b"blocking hello");
}

// ---------------------------------------------------------------- encrypted

/// A writer/reader pair of X25519 settings (no scrypt: fast).
fn x25519(format: Format) -> (Sealing, Opening, age::x25519::Identity) {
    let identity = age::x25519::Identity::generate();
    (
        Sealing::recipients(vec![Box::new(identity.to_public())], format),
        Opening::identities(vec![Box::new(identity.clone())]),
        identity,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_sizes_both_orders_both_formats() {
    let relay = relay().await;
    for format in [Format::AgeRt, Format::AgeV1] {
        for (i, size) in [0u64, 1, 65_536, 200_001].into_iter().enumerate() {
            for writer_first in [true, false] {
                let (to, from, _) = x25519(format);
                let path = format!("/enc/{format}/{i}-{writer_first}");
                transfer(
                    &relay,
                    &path,
                    (config(&relay, &path), to),
                    (config(&relay, &path), from),
                    size,
                    writer_first,
                )
                .await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_100_mib() {
    let relay = relay().await;
    let (to, from, _) = x25519(Format::AgeRt);
    let path = "/enc/big";
    transfer(
        &relay,
        path,
        (config(&relay, path), to),
        (config(&relay, path), from),
        100 << 20,
        false,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passphrase_round_trip_and_wrong_passphrase() {
    let relay = relay().await;
    let right = || SecretString::from("correct horse battery staple");
    let path = "/enc/pass";
    transfer(
        &relay,
        path,
        (config(&relay, path), Sealing::passphrase(right())),
        (config(&relay, path), Opening::passphrase(right())),
        100_000,
        true,
    )
    .await;

    let path = "/enc/wrong-pass";
    let wc = (
        config(&relay, path).build().unwrap(),
        Sealing::passphrase(right()),
    );
    let rc = (
        config(&relay, path).build().unwrap(),
        Opening::passphrase(SecretString::from("wrong")),
    );
    let producer = tokio::spawn(produce(wc, 100_000));
    let err = consume(rc).await.unwrap_err();
    assert!(
        matches!(err, Error::Decryption(cipher::Error::NoMatchingIdentity)),
        "{err:?}"
    );
    // The producer may still be confirmed: the relay delivered every byte,
    // and `[STATE:TRANSFER_SUCCESSFUL]` does not say the consumer could
    // decrypt them (docs/protocol.md §3.4).
    let _ = producer.await.unwrap();
}

#[tokio::test]
async fn wrong_identity_is_a_decryption_error() {
    let relay = relay().await;
    let (to, _, _) = x25519(Format::AgeRt);
    let (_, other, _) = x25519(Format::AgeRt);
    let path = "/enc/wrong-key";
    let producer = tokio::spawn(produce((config(&relay, path).build().unwrap(), to), 10));
    let err = consume((config(&relay, path).build().unwrap(), other))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Decryption(_)), "{err:?}");
    let _ = producer.await;
}

#[tokio::test]
async fn encrypted_flush_and_auto_flush_reach_the_consumer() {
    let relay = relay().await;
    let (to, from, _) = x25519(Format::AgeRt);
    let path = "/enc/flush";
    flush_latency(
        (config(&relay, path), to.clone()),
        (config(&relay, path), from.clone()),
        true,
    )
    .await;
    let path = "/enc/auto-flush";
    flush_latency(
        (
            config(&relay, path).auto_flush(AutoFlush::After(Duration::from_millis(50))),
            to,
        ),
        (config(&relay, path), from),
        false,
    )
    .await;
}

#[tokio::test]
async fn producer_dropped_mid_stream_encrypted_is_truncated() {
    let relay = relay().await;
    let (to, from, _) = x25519(Format::AgeRt);
    let path = "/enc/drop-producer";
    let (mut writer, mut reader) = paired(
        &relay,
        path,
        (config(&relay, path), to),
        (config(&relay, path), from),
    )
    .await;
    writer.write_all(&[7u8; 100_000]).await.unwrap();
    writer.flush().await.unwrap();
    let mut first = vec![0u8; 100_000];
    reader.read_exact(&mut first).await.unwrap();
    drop(writer);
    let err = read_until_error(&mut reader).await.unwrap_err();
    assert!(matches!(err, Error::Truncated), "{err:?}");
}

const MARKER: &[u8; 32] = b"ZEBRA-MARKER-0123456789abcdef!!!";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Sends `payload` with the given settings and returns what the relay forwarded.
async fn captured_transfer(w: Sealing, r: Opening, payload: Vec<u8>, path: &str) -> Vec<u8> {
    let (relay, tap) = relay_with_tap().await;
    let (mut writer, mut reader) = paired(
        &relay,
        path,
        (config(&relay, path), w),
        (config(&relay, path), r),
    )
    .await;
    let expected = payload.clone();
    let consumer = tokio::spawn(async move {
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.unwrap();
        got
    });
    writer.write_all(&payload).await.unwrap();
    writer.shutdown().await.unwrap();
    assert_eq!(consumer.await.unwrap(), expected);
    tap.bytes(path)
}

/// Recovers the file key from an X25519 stanza in a captured header.
fn file_key_from_header(wire: &[u8], identity: &age::x25519::Identity) -> Vec<u8> {
    use age::Identity as _;
    use base64::Engine as _;
    use secrecy::ExposeSecret as _;
    let text = String::from_utf8_lossy(&wire[..wire.len().min(2048)]).into_owned();
    let mut lines = text.split('\n');
    let args = lines
        .by_ref()
        .find_map(|l| l.strip_prefix("-> X25519 "))
        .expect("an X25519 stanza");
    let mut body = Vec::new();
    for line in lines {
        body.extend(
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(line)
                .unwrap(),
        );
        if line.len() < 64 {
            break;
        }
    }
    let stanza = age_core::format::Stanza {
        tag: "X25519".into(),
        args: vec![args.to_owned()],
        body,
    };
    let key = identity
        .unwrap_stanza(&stanza)
        .expect("ours")
        .expect("unwraps");
    key.expose_secret().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_sees_only_ciphertext() {
    let mut payload = Pattern::new().slice(0, 300_000);
    for offset in [0usize, 70_000, 150_001, 299_968] {
        payload[offset..offset + 32].copy_from_slice(MARKER);
    }
    // Sanity: a plaintext transfer does show the marker to the relay.
    let plain = captured_transfer(
        Sealing::Plain,
        Opening::Plain,
        payload.clone(),
        "/tap/plain",
    )
    .await;
    assert!(contains(&plain, MARKER));

    for format in [Format::AgeRt, Format::AgeV1] {
        let (to, from, identity) = x25519(format);
        let wire =
            captured_transfer(to, from, payload.clone(), &format!("/tap/x25519-{format}")).await;
        assert!(
            wire.len() > payload.len(),
            "the relay forwarded {} bytes",
            wire.len()
        );
        assert!(
            !contains(&wire, MARKER),
            "{format}: plaintext marker visible to the relay"
        );
        let file_key = file_key_from_header(&wire, &identity);
        assert_eq!(file_key.len(), 16);
        assert!(
            !contains(&wire, &file_key),
            "{format}: file key visible to the relay"
        );
    }

    let passphrase = "tap-test passphrase 8f1c2e";
    let pass = || SecretString::from(passphrase);
    let wire = captured_transfer(
        Sealing::passphrase(pass()),
        Opening::passphrase(pass()),
        payload.clone(),
        "/tap/passphrase",
    )
    .await;
    assert!(!contains(&wire, MARKER));
    assert!(!contains(&wire, passphrase.as_bytes()));
    assert!(wire.starts_with(b"github.com/parsimonit/age-rt-encryption/v0.2\n-> scrypt "));
}

/// A flush abandoned half-way (its future dropped), more writes, then a
/// shutdown: every byte arrives, in order.
#[tokio::test]
async fn abandoned_flush_keeps_bytes_in_order() {
    let relay = relay().await;
    for auto_flush in [AutoFlush::Never, AutoFlush::EveryWrite] {
        let path = format!("/plain/abandoned-flush-{auto_flush:?}");
        let (mut writer, mut reader) = paired(
            &relay,
            &path,
            (config(&relay, &path).auto_flush(auto_flush), Sealing::Plain),
            reading(&relay, &path),
        )
        .await;
        writer.write_all(b"one ").await.unwrap();
        // A zero timeout polls the flush once and then drops it, unfinished.
        let _ = tokio::time::timeout(Duration::ZERO, writer.flush()).await;
        writer.write_all(b"two ").await.unwrap();
        writer.write_all(b"three").await.unwrap();
        writer.shutdown().await.unwrap();
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"one two three", "{auto_flush:?}");
    }
}

// ---------------------------------------------------------------- TLS

const TEST_CERT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/client_tls_test_cert.pem"
);
const TEST_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/client_tls_test_key.pem"
);

/// Over HTTPS with a private root certificate; without it, the certificate
/// error is reported at once (not retried until the timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_relay_with_private_root() {
    let relay = Relay::bind(RelayConfig::open_loopback().tls(TEST_CERT, TEST_KEY))
        .await
        .unwrap();
    assert!(relay.connect_url().starts_with("https://"));
    let pem = std::fs::read(TEST_CERT).unwrap();
    let trusted = |path: &str| config(&relay, path).add_root_certificate_pem(&pem).unwrap();
    let path = "/tls/plain";
    transfer(
        &relay,
        path,
        (trusted(path), Sealing::Plain),
        (trusted(path), Opening::Plain),
        300_000,
        true,
    )
    .await;
    let (to, from, _) = x25519(Format::AgeRt);
    let path = "/tls/encrypted";
    transfer(
        &relay,
        path,
        (trusted(path), to),
        (trusted(path), from),
        300_000,
        false,
    )
    .await;

    let untrusted = config(&relay, "/tls/untrusted")
        .connect_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let err = StreamWriter::connect(&untrusted, &Sealing::Plain)
        .await
        .unwrap_err();
    // One attempt only: retrying cannot fix a certificate.
    assert!(
        matches!(
            err,
            Error::Connect(zebrastream::api::Error::Network { attempts: 1, .. })
        ),
        "{err:?}"
    );
}

/// Over HTTPS (HTTP/2 by ALPN) the failure semantics are the same: a dropped
/// producer is `Truncated` at the consumer, a dropped consumer is
/// `PeerDisconnected` at the producer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_peer_failures() {
    let relay = Relay::bind(RelayConfig::open_loopback().tls(TEST_CERT, TEST_KEY))
        .await
        .unwrap();
    let pem = std::fs::read(TEST_CERT).unwrap();
    let trusted = |path: &str| config(&relay, path).add_root_certificate_pem(&pem).unwrap();

    let (to, from, _) = x25519(Format::AgeRt);
    let path = "/tls/drop-producer";
    let (mut writer, mut reader) =
        paired(&relay, path, (trusted(path), to), (trusted(path), from)).await;
    writer.write_all(&[1u8; 70_000]).await.unwrap();
    writer.flush().await.unwrap();
    drop(writer);
    let err = read_until_error(&mut reader).await.unwrap_err();
    assert!(matches!(err, Error::Truncated), "{err:?}");

    let path = "/tls/drop-consumer";
    let (writer, reader) = paired(
        &relay,
        path,
        (trusted(path), Sealing::Plain),
        (trusted(path), Opening::Plain),
    )
    .await;
    let err = drop_consumer_mid_stream(writer, reader).await;
    assert!(matches!(err, Error::PeerDisconnected), "{err:?}");
}

/// Dropping a blocking writer without `finish` aborts the upload too.
#[test]
fn blocking_writer_dropped_is_truncated_at_the_reader() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let relay = runtime.block_on(relay());
    let path = "/plain/blocking-drop";
    let wc = config(&relay, path).build().unwrap();
    let rc = config(&relay, path).build().unwrap();
    let (connected_tx, connected_rx) = std::sync::mpsc::channel();
    let consumer = std::thread::spawn(move || {
        use std::io::Read;
        let mut reader = blocking::Reader::connect(&rc, &Opening::Plain).unwrap();
        connected_tx.send(()).unwrap();
        let mut got = Vec::new();
        let err = reader.read_to_end(&mut got).unwrap_err();
        (got.len(), into_client(err))
    });
    use std::io::Write;
    let mut writer = blocking::Writer::connect(&wc, &Sealing::Plain).unwrap();
    writer.write_all(&[5u8; 10_000]).unwrap();
    writer.flush().unwrap();
    // Drop only once the reader's download is under way (else it fails to connect instead).
    connected_rx.recv().unwrap();
    drop(writer);
    let (received, err) = consumer.join().unwrap();
    assert!(received <= 10_000);
    assert!(matches!(err, Error::Truncated), "{err:?}");
}

/// The writer's content type reaches the reader (the relay forwards it).
#[tokio::test]
async fn content_type_is_forwarded() {
    let relay = relay().await;
    let path = "/plain/content-type";
    let (mut writer, mut reader) = paired(
        &relay,
        path,
        (
            config(&relay, path).content_type("text/csv; charset=utf-8"),
            Sealing::Plain,
        ),
        reading(&relay, path),
    )
    .await;
    assert_eq!(reader.content_type(), Some("text/csv; charset=utf-8"));
    writer.write_all(b"a,b\n").await.unwrap();
    writer.shutdown().await.unwrap();
    let mut got = Vec::new();
    reader.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"a,b\n");
}

/// A consumer that does not read stalls the producer after a bounded amount
/// (client queues, relay, TCP buffers): nothing buffers without limit. Once
/// it reads, everything arrives intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_applies_backpressure() {
    let relay = relay().await;
    let (to, from, _) = x25519(Format::AgeRt);
    let path = "/enc/backpressure";
    let (mut writer, reader) = paired(
        &relay,
        path,
        (config(&relay, path), to),
        (config(&relay, path), from),
    )
    .await;
    const LIMIT: u64 = 64 << 20;
    let pattern = Pattern::new();
    let mut written = 0u64;
    while written < LIMIT {
        let chunk = pattern.slice(written, 64 * 1024);
        // A write that makes no progress for a second: the pipe is full.
        match tokio::time::timeout(Duration::from_secs(1), writer.write_all(&chunk)).await {
            Ok(result) => result.unwrap(),
            Err(_) => break,
        }
        written += chunk.len() as u64;
    }
    assert!(
        written < LIMIT,
        "the producer wrote {written} bytes without the consumer reading"
    );
    // The interrupted write may have queued part of its chunk: finish the
    // stream at a known length by sending the rest of the pattern from there.
    let sent = writer.bytes_written();
    let consumer = tokio::spawn(async move {
        let mut reader = reader;
        let pattern = Pattern::new();
        let mut buf = vec![0u8; 65536];
        let mut offset = 0u64;
        loop {
            let n = reader.read(&mut buf).await.unwrap();
            if n == 0 {
                return offset;
            }
            assert_eq!(buf[..n], pattern.slice(offset, n)[..]);
            offset += n as u64;
        }
    });
    writer
        .write_all(&pattern.slice(sent, 100_000))
        .await
        .unwrap();
    writer.shutdown().await.unwrap();
    assert_eq!(consumer.await.unwrap(), sent + 100_000);
}

/// `Opening::Detect` (no key at hand) names what the stream is and refuses
/// it: plaintext a relay could have injected, or an encrypted stream of a
/// given format that needs a key. Nothing is returned to read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detect_names_what_the_stream_is_and_refuses_it() {
    let relay = relay().await;
    let (to_rt, _, _) = x25519(Format::AgeRt);
    let (to_v1, _, _) = x25519(Format::AgeV1);
    for (i, sealing) in [Sealing::Plain, to_rt, to_v1].into_iter().enumerate() {
        let path = format!("/detect/{i}");
        let expected = sealing.format();
        let wc = config(&relay, &path).build().unwrap();
        let producer = tokio::spawn(async move {
            let mut w = StreamWriter::connect(&wc, &sealing).await?;
            w.write_all(&[0x42; 100_000]).await?;
            w.shutdown().await?;
            Ok::<_, Error>(())
        });
        let rc = config(&relay, &path).build().unwrap();
        let err = StreamReader::connect(&rc, &Opening::Detect)
            .await
            .expect_err("a keyless reader refuses the stream");
        match (expected, &err) {
            (None, Error::NotEncrypted) => {}
            (Some(format), Error::KeyRequired(found)) => assert_eq!(*found, format),
            other => panic!("{other:?}"),
        }
        let _ = producer.await;
    }
}

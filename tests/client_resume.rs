//! Resume through the library against our relay, with a TCP proxy that
//! breaks a connection once (reset or stall): the stream goes on, byte for
//! byte, and the writer's success waits for the reader's receipt. Also the
//! refusals: no handshake, no receipt taker, resume without encryption;
//! and the replay buffer as the writer's window.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::fault_proxy::{Fault, FaultProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zebrastream::cipher::Format;
use zebrastream::client::{
    Config, Error, Opening, Resume, ResumeError, Sealing, StreamReader, StreamWriter,
};
use zebrastream::relay::{Relay, RelayConfig, RelayHandle};

async fn relay() -> RelayHandle {
    Relay::bind(RelayConfig::open_loopback()).await.unwrap()
}

fn payload(len: usize, seed: u8) -> Arc<Vec<u8>> {
    Arc::new(
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
            .collect(),
    )
}

fn fast_resume() -> Resume {
    Resume::default()
        .with_stall_timeout(Duration::from_secs(1))
        .with_resume_timeout(Duration::from_secs(15))
}

fn config(base: &str, path: &str, resume: Option<Resume>) -> Config {
    let builder = Config::builder(path)
        .connect_url(format!("{base}/v0"))
        .connect_timeout(Duration::from_secs(10));
    match resume {
        Some(resume) => builder.resume(resume),
        None => builder,
    }
    .build()
    .unwrap()
}

fn keys(format: Format) -> (Sealing, Opening) {
    let id = age::x25519::Identity::generate();
    (
        Sealing::recipients(vec![Box::new(id.to_public())], format),
        Opening::identities(vec![Box::new(id)]),
    )
}

/// What a transfer came to on each side.
struct Ends {
    written: Result<(), Error>,
    read: Result<Vec<u8>, Error>,
    confirmed: Option<Result<(), Error>>,
    resumes: u32,
}

/// Writes `data` in 16 KiB pieces on one side and reads it to the end and
/// confirms on the other.
async fn transfer(writer: Config, reader: Config, format: Format, data: Arc<Vec<u8>>) -> Ends {
    let (sealing, opening) = keys(format);
    let sent = data.clone();
    let producer = tokio::spawn(async move {
        let mut w = StreamWriter::connect(&writer, &sealing).await?;
        for piece in sent.chunks(16 * 1024) {
            w.write_all(piece).await?;
        }
        w.shutdown().await?;
        Ok::<_, Error>(())
    });
    let consumer = tokio::spawn(async move {
        let mut r = StreamReader::connect(&reader, &opening).await?;
        let mut got = Vec::new();
        let read = r.read_to_end(&mut got).await.map(|_| got).map_err(|e| {
            Error::from_io(&e)
                .map(|e| format!("{e:?}"))
                .unwrap_or(e.to_string())
        });
        let confirmed = match &read {
            Ok(_) => Some(r.confirm().await),
            Err(_) => None,
        };
        Ok::<_, Error>((read, confirmed, r.resumes()))
    });
    let written = tokio::time::timeout(Duration::from_secs(60), producer)
        .await
        .expect("the writer hung")
        .unwrap();
    let (read, confirmed, resumes) = tokio::time::timeout(Duration::from_secs(60), consumer)
        .await
        .expect("the reader hung")
        .unwrap()
        .expect("the reader connected");
    Ends {
        written,
        read: read.map_err(|e| Error::Io(std::io::Error::other(e))),
        confirmed,
        resumes,
    }
}

fn assert_complete(ends: &Ends, data: &[u8]) {
    let got = match &ends.read {
        Ok(got) => got,
        Err(error) => panic!("the reader failed: {error}"),
    };
    assert!(
        got.as_slice() == data,
        "{} of {} bytes",
        got.len(),
        data.len()
    );
    assert!(
        matches!(ends.confirmed, Some(Ok(()))),
        "{:?}",
        ends.confirmed
    );
    assert!(ends.written.is_ok(), "{:?}", ends.written);
}

/// Which side's connections go through the fault proxy.
#[derive(Debug, Clone, Copy)]
enum Through {
    Writer,
    Reader,
}

/// A transfer of `len` bytes with resume on, `fault` hitting once on
/// `side`'s connections: the stream completes byte-exact after a resume
/// (or, with `resumed` false, a first leg started over).
async fn completes_through(fault: Fault, side: Through, format: Format, len: usize, resumed: bool) {
    let relay = relay().await;
    let direct = format!("http://{}", relay.local_addr());
    let proxy = FaultProxy::start_once(relay.local_addr(), fault).await;
    let (writer, reader) = match side {
        Through::Writer => (proxy.http_base(), direct),
        Through::Reader => (direct, proxy.http_base()),
    };
    let path = "/resume/through-proxy";
    let data = payload(len, len as u8);
    let ends = transfer(
        config(&writer, path, Some(fast_resume())),
        config(&reader, path, Some(fast_resume())),
        format,
        data.clone(),
    )
    .await;
    assert_eq!(proxy.faults(), 1, "{fault:?}");
    assert_complete(&ends, &data);
    if resumed {
        assert!(
            ends.resumes >= 1,
            "{fault:?} {format:?}: no resume happened"
        );
    }
}

/// The consumer's connection is reset once in the middle: it resumes at
/// the first chunk it has not authenticated; both formats.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_consumer_connection_resumes() {
    for format in [Format::AgeRt, Format::AgeV1] {
        let fault = Fault::ResetDownstreamAfter(3 << 20);
        completes_through(fault, Through::Reader, format, 8 << 20, true).await;
    }
}

/// The producer's connection is reset once: the relay aborts the
/// consumer's download, which resumes; the producer re-sends from its
/// buffer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_producer_connection_resumes() {
    let fault = Fault::ResetUpstreamAfter(2 << 20);
    completes_through(fault, Through::Writer, Format::AgeRt, 6 << 20, true).await;
}

/// A connection that stops moving without any error (a link down): the
/// reader notices after the stall timeout and resumes on a new leg.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_connection_resumes_after_the_stall_timeout() {
    let fault = Fault::StallUpstream {
        after: 1 << 20,
        millis: 20_000,
    };
    completes_through(fault, Through::Writer, Format::AgeRt, 4 << 20, true).await;
}

/// The replay buffer bounds what is in flight: the writer waits for the
/// reader's acknowledgements, so a reader whose connection stalls with
/// far more than the buffer sent after its last chunk (256 KiB through,
/// the rest of 8 MiB pushed at it, a 128 KiB buffer) still finds every
/// chunk it needs (without acknowledgements it was 8 MiB behind and both
/// sides failed with "cannot resume").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_buffer_bounds_what_is_in_flight_so_a_stalled_reader_resumes() {
    let relay = relay().await;
    let direct = format!("http://{}", relay.local_addr());
    let proxy = FaultProxy::start_once(
        relay.local_addr(),
        Fault::StallDownstream {
            after: 256 << 10,
            millis: 30_000,
        },
    )
    .await;
    let path = "/resume/window";
    let data = payload(8 << 20, 5);
    let small = fast_resume().with_buffer(128 << 10);
    let ends = transfer(
        config(&direct, path, Some(small)),
        config(&proxy.http_base(), path, Some(small)),
        Format::AgeRt,
        data.clone(),
    )
    .await;
    assert_complete(&ends, &data);
    assert_eq!(proxy.faults(), 1);
    assert!(ends.resumes >= 1, "{}", ends.resumes);
}

/// A writer with resume on whose reader does not take part fails within
/// the connect timeout, saying why; the reader (no resume) got the whole
/// stream, as it would from any writer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_whose_reader_has_no_resume_fails_with_the_reason() {
    let relay = relay().await;
    let direct = format!("http://{}", relay.local_addr());
    let path = "/resume/no-handshake";
    let data = payload(200_000, 1);
    let mut writer = config(&direct, path, Some(fast_resume()));
    writer = Config::builder(path)
        .connect_url(writer.connect_url())
        .connect_timeout(Duration::from_secs(3))
        .resume(fast_resume())
        .build()
        .unwrap();
    let ends = transfer(
        writer,
        config(&direct, path, None),
        Format::AgeRt,
        data.clone(),
    )
    .await;
    assert!(ends.read.unwrap().as_slice() == data.as_slice());
    let error = ends.written.expect_err("no handshake, no success");
    assert!(
        matches!(error, Error::Resume(ResumeError::NoHandshake(_))),
        "{error:?}"
    );
    assert!(error.to_string().contains("resume handshake"), "{error}");
}

/// A reader with resume on whose writer does not take part gets the whole
/// stream, but its confirm fails: nobody takes the receipt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_whose_writer_has_no_resume_cannot_confirm() {
    let relay = relay().await;
    let direct = format!("http://{}", relay.local_addr());
    let path = "/resume/no-receipt-taker";
    let data = payload(200_000, 2);
    let short = fast_resume().with_resume_timeout(Duration::from_secs(3));
    let ends = transfer(
        config(&direct, path, None),
        config(&direct, path, Some(short)),
        Format::AgeRt,
        data.clone(),
    )
    .await;
    assert!(ends.written.is_ok());
    assert!(ends.read.unwrap().as_slice() == data.as_slice());
    assert!(
        matches!(
            ends.confirmed,
            Some(Err(Error::Resume(ResumeError::ReceiptNotTaken(_))))
        ),
        "{:?}",
        ends.confirmed
    );
}

/// Resume authenticates every step with the stream's keys: a plaintext
/// stream with resume on is refused on both sides before connecting.
#[tokio::test]
async fn resume_without_encryption_is_refused() {
    let relay = relay().await;
    let direct = format!("http://{}", relay.local_addr());
    let config = config(&direct, "/resume/plain", Some(Resume::default()));
    let w = StreamWriter::connect(&config, &Sealing::Plain).await;
    assert!(matches!(
        w,
        Err(Error::Resume(ResumeError::NeedsEncryption))
    ));
    let r = StreamReader::connect(&config, &Opening::Plain).await;
    assert!(matches!(
        r,
        Err(Error::Resume(ResumeError::NeedsEncryption))
    ));
}

/// The writer sent the whole (small) stream and ended its body before the
/// reader's connection broke: it serves the resume while it waits for the
/// receipt, and the reader's request arrives together with its handshake
/// (a regression: the handshake used to make the writer give the leg up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_sent_whole_before_the_break_resumes_while_the_writer_waits() {
    let fault = Fault::ResetDownstreamAfter(48_609);
    completes_through(fault, Through::Reader, Format::AgeRt, 139_230, true).await;
}

/// A connection that breaks before the reader has the header (the Connect
/// call's answer, the `PUT` or `GET` head, the header itself): nothing authenticates
/// a resume request yet, so the first leg starts over from the header on
/// the transfer's own path, on both sides, and the stream completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_broken_before_the_header_starts_the_first_leg_over() {
    let faults = [
        (Through::Writer, Fault::ResetUpstreamAfter(300)),
        (Through::Writer, Fault::ResetUpstreamAfter(700)),
        (Through::Writer, Fault::ResetUpstreamAfter(1_500)),
        (Through::Reader, Fault::ResetDownstreamAfter(300)),
        (Through::Reader, Fault::ResetDownstreamAfter(700)),
        // The relay delivered the whole stream to a reader connection that
        // broke before the reader had the header.
        (
            Through::Reader,
            Fault::SwallowDownstreamAfter {
                after: 300,
                millis: 500,
            },
        ),
        // Inside the Connect call's answer (head and data URL).
        (Through::Writer, Fault::ResetDownstreamAfter(150)),
        (Through::Reader, Fault::ResetDownstreamAfter(150)),
        (Through::Writer, Fault::ResetDownstreamAfter(60)),
        (Through::Reader, Fault::ResetDownstreamAfter(60)),
    ];
    for (side, fault) in faults {
        completes_through(fault, side, Format::AgeRt, 300_000, false).await;
    }
}

/// How a reader ends after reading the whole stream.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Ending {
    /// Commits for three resume timeouts, then confirms.
    SlowCommit,
    /// Commits for three resume timeouts, then is dropped (which gives
    /// the stream up).
    Dropped,
    /// Gives the stream up at once (its output failed).
    Abandoned,
}

/// A reader that commits for longer than the resume timeout after the
/// last byte keeps the writer waiting (it repeats its last acknowledgement
/// meanwhile), and the writer succeeds on its receipt; a reader dropped
/// without a receipt, or one that gives the stream up, fails it at once,
/// saying so. (A reader that dies without a word: `cli_resume`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_commit_keeps_the_writer_waiting_and_a_dropped_reader_does_not() {
    let relay = relay().await;
    let direct = format!("http://{}", relay.local_addr());
    let short = fast_resume().with_resume_timeout(Duration::from_secs(3));
    for ending in [Ending::SlowCommit, Ending::Dropped, Ending::Abandoned] {
        let commits = ending == Ending::SlowCommit;
        let path = format!("/resume/commit-{ending:?}");
        let (wc, rc) = (
            config(&direct, &path, Some(short)),
            config(&direct, &path, Some(short)),
        );
        let data = payload(500_000, 12);
        let (sealing, opening) = keys(Format::AgeRt);
        let sent = data.clone();
        let writer = tokio::spawn(async move {
            let mut w = StreamWriter::connect(&wc, &sealing).await?;
            w.write_all(&sent).await?;
            w.shutdown().await?;
            Ok::<_, Error>(())
        });
        let mut r = StreamReader::connect(&rc, &opening).await.unwrap();
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        assert!(got == *data);
        let ended = match ending {
            Ending::Abandoned => {
                r.abandon().await;
                tokio::time::Instant::now()
            }
            _ => {
                // Committing: three resume timeouts.
                tokio::time::sleep(Duration::from_secs(9)).await;
                if commits {
                    r.confirm().await.unwrap();
                } else {
                    drop(r);
                }
                tokio::time::Instant::now()
            }
        };
        let written = tokio::time::timeout(Duration::from_secs(30), writer)
            .await
            .expect("the writer hung")
            .unwrap();
        match (ending, written) {
            (Ending::SlowCommit, Ok(())) => {}
            (
                Ending::Dropped | Ending::Abandoned,
                Err(Error::Resume(ResumeError::GaveUp { output: true })),
            ) => {
                // At once, not after the 3 s resume timeout.
                assert!(
                    ended.elapsed() < Duration::from_secs(2),
                    "{:?}",
                    ended.elapsed()
                );
            }
            (ending, other) => panic!("{ending:?}: {other:?}"),
        }
    }
}

/// The one-call helpers and the blocking API take part too: `pull_file`
/// sends the receipt once the file is in place (else `push` would fail
/// with no receipt), and the blocking reader's `confirm` does the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_pull_file_and_the_blocking_api_send_the_receipt() {
    use zebrastream::client::{blocking, pull_file, push};
    let relay = relay().await;
    let base = format!("http://{}", relay.local_addr());
    let data = payload(1 << 20, 44);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pulled.bin");
    let (sealing, opening) = keys(Format::AgeRt);
    let (wc, rc) = (
        config(&base, "/resume/helpers", Some(fast_resume())),
        config(&base, "/resume/helpers", Some(fast_resume())),
    );
    let sent = data.clone();
    let writer = tokio::spawn(async move { push(&wc, &sealing, &sent[..]).await });
    let target = out.clone();
    let reader = tokio::spawn(async move { pull_file(&rc, &opening, &target).await });
    let limit = Duration::from_secs(30);
    let pushed = tokio::time::timeout(limit, writer).await.unwrap().unwrap();
    let pulled = tokio::time::timeout(limit, reader).await.unwrap().unwrap();
    assert_eq!(pushed.unwrap().bytes, data.len() as u64);
    assert_eq!(pulled.unwrap().bytes, data.len() as u64);
    assert!(std::fs::read(&out).unwrap() == *data);

    let (sealing, opening) = keys(Format::AgeRt);
    let (wc, rc) = (
        config(&base, "/resume/blocking", Some(fast_resume())),
        config(&base, "/resume/blocking", Some(fast_resume())),
    );
    let sent = data.clone();
    let ends = tokio::task::spawn_blocking(move || {
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            let mut w = blocking::Writer::connect(&wc, &sealing)?;
            w.write_all(&sent).map_err(Error::Io)?;
            w.finish()
        });
        let mut r = blocking::Reader::connect(&rc, &opening).unwrap();
        let mut got = Vec::new();
        std::io::Read::read_to_end(&mut r, &mut got).unwrap();
        r.confirm().unwrap();
        (writer.join().unwrap(), got)
    })
    .await
    .unwrap();
    assert_eq!(ends.0.unwrap().bytes, data.len() as u64);
    assert!(ends.1 == *data);
}

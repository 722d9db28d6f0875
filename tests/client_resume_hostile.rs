//! A hostile relay against resume (a forwarding tap that rewrites what it
//! forwards): it cuts the first leg off cleanly to force a resume, then
//! resumes at a wrong offset, repeats a chunk, splices in another stream's
//! chunks or answer, or hands the writer another stream's receipt or
//! acknowledgements. Every
//! time the reader fails authentication or the writer refuses the message:
//! never wrong bytes, never a false success.

mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zebrastream::cipher::Format;
use zebrastream::client::resume::DEFAULT_RESUME_BUFFER;
use zebrastream::client::{
    Config, Error, Opening, Resume, ResumeError, Sealing, StreamReader, StreamWriter,
};
use zebrastream::relay::{ForwardTap, Relay, RelayConfig, TapVerdict};

/// The resumed leg's first message (46 bytes), then full age-rt frames.
const PREFIX: u64 = 46;
const FRAME: u64 = 4 + 65_536 + 16;

#[derive(Debug, Clone)]
enum Attack {
    /// Only the cut: the stream resumes and completes (the control case).
    None,
    /// The resumed leg skips its first chunk (a wrong offset).
    DropFirstChunk,
    /// The resumed leg repeats its first chunk.
    RepeatFirstChunk,
    /// The resumed leg carries this other stream's bytes after its prefix.
    SpliceFrom(String),
    /// The resumed leg's first message is this other stream's.
    PrefixFrom(String),
    /// The receipt the reader sends is replaced by this other stream's.
    ReceiptFrom(String),
    /// Every acknowledgement after the handshake is replaced by this other
    /// stream's last one (all its chunks authenticated): a writer that
    /// took it would drop chunks the reader has not got yet.
    AcksFrom(String),
}

/// The hostile relay: records every path's bytes, ends the data stream of
/// `victim` cleanly after `cut` bytes (a resume follows), and attacks.
struct HostileResume {
    victim: String,
    cut: u64,
    attack: Attack,
    seen: Mutex<HashMap<String, Vec<u8>>>,
}

impl HostileResume {
    fn recorded(&self, prefix: &str, marker: &str) -> Vec<u8> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .find(|(path, _)| path.starts_with(prefix) && path.contains(marker))
            .map(|(_, bytes)| bytes.clone())
            .unwrap_or_else(|| panic!("nothing recorded on {prefix}…{marker}: {:?}", seen.keys()))
    }
}

impl ForwardTap for HostileResume {
    fn forward(&self, path: &str, chunk: &mut BytesMut) -> TapVerdict {
        let before = {
            let mut seen = self.seen.lock().unwrap();
            let bytes = seen.entry(path.to_owned()).or_default();
            let before = bytes.len() as u64;
            bytes.extend_from_slice(chunk);
            before
        };
        let after = before + chunk.len() as u64;
        // Every data stream (not a side path) is cut once, the donor too:
        // it then has a resumed leg and a receipt on record.
        let data_stream = !path.contains("/~");
        if data_stream && after > self.cut && before <= self.cut {
            return TapVerdict::EndStream;
        }
        let on_leg = path.starts_with(&self.victim) && path.contains("/~leg1-");
        match &self.attack {
            Attack::DropFirstChunk if on_leg => {
                // Remove leg bytes [PREFIX, PREFIX + FRAME) from this piece.
                let (from, to) = (PREFIX.max(before), (PREFIX + FRAME).min(after));
                if from < to {
                    let (a, b) = ((from - before) as usize, (to - before) as usize);
                    let tail = chunk.split_off(b);
                    chunk.truncate(a);
                    chunk.extend_from_slice(&tail);
                }
            }
            Attack::RepeatFirstChunk if on_leg => {
                let end = PREFIX + FRAME;
                if before < end && after >= end {
                    let seen = self.seen.lock().unwrap();
                    let frame = seen[path][PREFIX as usize..end as usize].to_vec();
                    let at = (end - before) as usize;
                    let tail = chunk.split_off(at);
                    chunk.extend_from_slice(&frame);
                    chunk.extend_from_slice(&tail);
                }
            }
            Attack::SpliceFrom(other) if on_leg => {
                let foreign = self.seen.lock().unwrap()[other.as_str()].clone();
                for (i, byte) in chunk.iter_mut().enumerate() {
                    let at = before + i as u64;
                    if at >= PREFIX {
                        *byte = foreign[(at - PREFIX) as usize % foreign.len()];
                    }
                }
            }
            Attack::PrefixFrom(other) if on_leg && before < PREFIX => {
                let foreign = self.recorded(other, "/~leg1-");
                for (i, byte) in chunk
                    .iter_mut()
                    .enumerate()
                    .take((PREFIX - before) as usize)
                {
                    *byte = foreign[before as usize + i];
                }
            }
            Attack::AcksFrom(other)
                if path.starts_with(&self.victim) && path.contains("/~ack0-") =>
            {
                let donor = self.recorded(other, "/~ack0-");
                let last = &donor[donor.len() - PREFIX as usize..];
                for (i, byte) in chunk.iter_mut().enumerate() {
                    let at = before + i as u64;
                    if at >= PREFIX {
                        *byte = last[(at % PREFIX) as usize];
                    }
                }
            }
            Attack::ReceiptFrom(other)
                if path.starts_with(&self.victim) && path.contains("/~ctl-receipt-") =>
            {
                let foreign = self.recorded(other, "/~ctl-receipt-");
                chunk.clear();
                chunk.extend_from_slice(&foreign[before as usize..after as usize]);
            }
            _ => {}
        }
        TapVerdict::Forward
    }
}

fn config(base: &str, path: &str, buffer: usize) -> Config {
    Config::builder(path)
        .connect_url(format!("{base}/v0"))
        .connect_timeout(Duration::from_secs(10))
        .resume(
            Resume::default()
                .with_buffer(buffer)
                .with_stall_timeout(Duration::from_secs(1))
                .with_resume_timeout(Duration::from_secs(4)),
        )
        .build()
        .unwrap()
}

/// Runs one transfer of `len` bytes on `path`; returns the writer's result,
/// and the reader's bytes or error (after its confirm).
async fn transfer(
    base: &str,
    path: &str,
    len: usize,
    buffer: usize,
) -> (Result<(), Error>, Result<Vec<u8>, String>) {
    let id = age::x25519::Identity::generate();
    let sealing = Sealing::recipients(vec![Box::new(id.to_public())], Format::AgeRt);
    let opening = Opening::identities(vec![Box::new(id)]);
    let data: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
    let (wc, rc) = (config(base, path, buffer), config(base, path, buffer));
    let writer = tokio::spawn(async move {
        let mut w = StreamWriter::connect(&wc, &sealing).await?;
        w.write_all(&data).await?;
        w.shutdown().await?;
        Ok::<_, Error>(())
    });
    let reader = tokio::spawn(async move {
        let mut r = StreamReader::connect(&rc, &opening)
            .await
            .map_err(|e| format!("{e:?}"))?;
        let mut got = Vec::new();
        r.read_to_end(&mut got)
            .await
            .map_err(|e| match Error::from_io(&e) {
                Some(e) => format!("{e:?}"),
                None => format!("{e:?}"),
            })?;
        r.confirm().await.map_err(|e| format!("{e:?}"))?;
        Ok::<_, String>(got)
    });
    let limit = Duration::from_secs(60);
    let w = tokio::time::timeout(limit, writer)
        .await
        .expect("writer hung")
        .unwrap();
    let r = tokio::time::timeout(limit, reader)
        .await
        .expect("reader hung")
        .unwrap();
    (w, r)
}

const LEN: usize = 3 << 20;
const CUT: u64 = 1 << 20;

async fn attacked(
    victim: &str,
    attack: Attack,
    before: Option<&str>,
) -> (Result<(), Error>, Result<Vec<u8>, String>) {
    attacked_with_buffer(victim, attack, before, DEFAULT_RESUME_BUFFER).await
}

/// [`attacked`], with the victim's replay buffer of `buffer` bytes.
async fn attacked_with_buffer(
    victim: &str,
    attack: Attack,
    before: Option<&str>,
    buffer: usize,
) -> (Result<(), Error>, Result<Vec<u8>, String>) {
    let tap = Arc::new(HostileResume {
        victim: victim.to_owned(),
        cut: CUT,
        attack,
        seen: Mutex::new(HashMap::new()),
    });
    let relay = Relay::bind(RelayConfig::open_loopback().tap(tap.clone()))
        .await
        .unwrap();
    let base = format!("http://{}", relay.local_addr());
    if let Some(other) = before {
        // The stream whose bytes the relay will splice in: it was cut too, so
        // it has a resumed leg and a receipt on record (and with a small
        // buffer, acknowledgements on leg 0: the writer waited for them).
        let (w, r) = transfer(&base, other, LEN, buffer).await;
        assert!(w.is_ok() && r.is_ok(), "{w:?}");
    }
    transfer(&base, victim, LEN, buffer).await
}

fn assert_authentication_failure(result: &Result<Vec<u8>, String>) {
    match result {
        Err(e) if e.starts_with("Decryption(") || e.starts_with("Resume(Refused(") => {}
        Err(other) => panic!("expected an authentication failure, got {other}"),
        Ok(got) => panic!("the reader returned {} bytes", got.len()),
    }
}

/// The control case: a clean cut is resumed and the stream completes, so
/// the attacks below fail because of what they change, not the cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_cut_of_the_first_leg_is_resumed() {
    let (w, r) = attacked("/hostile/control", Attack::None, None).await;
    assert_eq!(r.unwrap().len(), LEN);
    w.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_at_a_wrong_offset_fails_authentication() {
    let (w, r) = attacked("/hostile/drop", Attack::DropFirstChunk, None).await;
    assert_authentication_failure(&r);
    assert!(w.is_err(), "the writer must not succeed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_chunk_fails_authentication() {
    let (w, r) = attacked("/hostile/repeat", Attack::RepeatFirstChunk, None).await;
    assert_authentication_failure(&r);
    assert!(w.is_err(), "the writer must not succeed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_streams_chunks_spliced_into_a_leg_fail_authentication() {
    let (w, r) = attacked(
        "/hostile/splice",
        Attack::SpliceFrom("/hostile/donor".into()),
        Some("/hostile/donor"),
    )
    .await;
    assert_authentication_failure(&r);
    assert!(w.is_err(), "the writer must not succeed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_streams_leg_answer_is_refused() {
    let (w, r) = attacked(
        "/hostile/prefix",
        Attack::PrefixFrom("/hostile/donor".into()),
        Some("/hostile/donor"),
    )
    .await;
    match &r {
        Err(why) => {
            assert!(why.starts_with("Resume(Refused("), "{why}");
            assert!(why.contains("does not authenticate"), "{why}");
        }
        Ok(got) => panic!("the reader returned {} bytes", got.len()),
    }
    assert!(w.is_err(), "the writer must not succeed");
}

/// The reader sends its genuine receipt; the relay swaps in the receipt of
/// an earlier stream. The writer refuses it and, with no valid receipt,
/// fails naming the refusal: it never reports success on a replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_receipt_is_refused_and_the_writer_does_not_succeed() {
    let (w, r) = attacked(
        "/hostile/receipt",
        Attack::ReceiptFrom("/hostile/donor".into()),
        Some("/hostile/donor"),
    )
    .await;
    assert_eq!(r.unwrap().len(), LEN);
    match w {
        Err(Error::Resume(ResumeError::Refused(why))) => {
            assert!(why.contains("does not authenticate"), "{why}");
            assert!(why.contains("no receipt"), "{why}");
        }
        other => panic!("{other:?}"),
    }
}

/// The relay hands the writer another stream's acknowledgement of its
/// whole stream in place of the reader's (a 256 KiB buffer, so they
/// matter): the writer refuses them (they do not authenticate) and keeps
/// its chunks, stopping at a full buffer until the reader stalls and
/// resumes; taken, they would have released every chunk and the resume
/// after the cut would fail "behind" (checked with the tag check removed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_streams_acknowledgements_release_nothing() {
    let (w, r) = attacked_with_buffer(
        "/hostile/acks",
        Attack::AcksFrom("/hostile/donor".into()),
        Some("/hostile/donor"),
        256 << 10,
    )
    .await;
    assert_eq!(r.unwrap().len(), LEN);
    w.unwrap();
}

//! The reader's side of resume: a decrypting `AsyncRead` over the legs of
//! one data stream. It decides when to resume (the connection failed, ended
//! before the final chunk, or delivered nothing for the stall timeout),
//! asks the writer for the next leg at the first chunk it has not
//! authenticated, and keeps its decryptor (and so its chunk counter) across
//! legs. It also acknowledges the chunks it authenticated (on a stream of
//! its own per leg, the first of which opens with the handshake), so the
//! writer can free its replay buffer, and on
//! [`confirm`](ResumingReader::confirm) sends the receipt.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{Instant, Sleep};

use super::control::{ControlKey, GiveUpReason, Message, MESSAGE_LEN};
use super::{
    attempt, human_size, pause_after, send_until, Resume, ResumeError, ACK_PAUSE, ATTEMPT,
    ATTEMPT_MARGIN, RETRY_PAUSE,
};
use crate::api::Download;
use crate::cipher::{Decryptor, Format};
use crate::client::side_channel::side_config;
use crate::client::{Config, Error, Opening};
use crate::protocol::ConnectMode;

type LegFuture = Pin<Box<dyn Future<Output = Result<Download, Error>> + Send>>;

/// A decrypting reader over the legs of one stream.
pub(crate) struct ResumingReader {
    config: Config,
    options: Resume,
    /// Makes a fresh decryptor when the first leg starts over.
    opening: Opening,
    decryptor: Decryptor,
    /// The current leg's body (`None` while a resume runs).
    source: Option<Download>,
    resuming: Option<LegFuture>,
    stall: Pin<Box<Sleep>>,
    key: Option<Arc<ControlKey>>,
    /// The current leg's acknowledgement stream.
    acks: Option<Acks>,
    leg: u32,
    /// Plaintext bytes handed to the application.
    delivered: u64,
    /// When the current outage began (for the log line of the resume).
    broken_at: Option<Instant>,
    /// Until when the first leg may start over (set at its first break
    /// before the header: nothing authenticates a resume request yet).
    restart_deadline: Option<Instant>,
    /// The leg under way is the first one, started over from the header.
    restarting: bool,
    resumes: u32,
}

impl Drop for ResumingReader {
    /// A reader dropped before its receipt gives the stream up, so the
    /// writer fails at once (sent in the background, if a runtime is there
    /// to run it; else the writer finds out by its resume timeout).
    fn drop(&mut self) {
        let reason = self.give_up_reason();
        let Some(acks) = self.acks.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(acks.give_up(reason));
        }
    }
}

/// Where the reader stands, as its acknowledgements say it.
#[derive(Debug, Clone, Copy, Default)]
struct Position {
    /// The first chunk not authenticated yet.
    next_chunk: u64,
    /// Plaintext bytes authenticated.
    plaintext: u64,
    /// The reader gives the stream up (its last message).
    give_up: Option<GiveUpReason>,
}

/// The task sending one leg's acknowledgements, and what it sends: the
/// newest [`Position`] only. Dropped, it stops the task.
struct Acks {
    progress: watch::Sender<Position>,
    task: Option<JoinHandle<()>>,
}

impl Acks {
    /// Starts acknowledging leg `leg` (with the handshake first on leg 0).
    fn start(config: &Config, key: &Arc<ControlKey>, leg: u32, from: Position) -> Acks {
        let (progress, watching) = watch::channel(from);
        // Well within the writer's wait for a sign of life (its resume
        // timeout, the same as ours unless the two ends set it apart).
        let timeout = config.resume.map(|r| r.resume_timeout).unwrap_or(ATTEMPT);
        let keepalive = ATTEMPT.min(timeout / 4);
        let task = tokio::spawn(send_acks(
            config.clone(),
            key.clone(),
            leg,
            keepalive,
            watching,
        ));
        Acks {
            progress,
            task: Some(task),
        }
    }

    /// Lets the task send the last acknowledgement and end its stream.
    fn finish(mut self) {
        self.task = None;
    }

    /// Tells the writer the reader gives the stream up, waiting (a little)
    /// until the message is out.
    async fn give_up(mut self, reason: GiveUpReason) {
        self.progress
            .send_modify(|position| position.give_up = Some(reason));
        if let Some(task) = self.task.as_mut() {
            let _ = tokio::time::timeout(ATTEMPT + ATTEMPT_MARGIN, task).await;
        }
    }
}

impl Drop for Acks {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl ResumingReader {
    /// Reads leg 0 (`download`, on the transfer's own path) with `decryptor`.
    pub(crate) fn new(
        config: &Config,
        options: Resume,
        opening: &Opening,
        decryptor: Decryptor,
        download: Download,
    ) -> ResumingReader {
        ResumingReader {
            config: config.clone(),
            options,
            opening: opening.clone(),
            decryptor,
            source: Some(download),
            resuming: None,
            stall: Box::pin(tokio::time::sleep(options.stall_timeout)),
            key: None,
            acks: None,
            leg: 0,
            delivered: 0,
            broken_at: None,
            restart_deadline: None,
            restarting: false,
            resumes: 0,
        }
    }

    /// How many times the stream resumed.
    pub(crate) fn resumes(&self) -> u32 {
        self.resumes
    }

    /// Sends the receipt: the final chunk authenticated and the application
    /// committed what it read. Retried until the writer takes it or the
    /// resume timeout ends.
    pub(crate) async fn confirm(&mut self) -> Result<(), Error> {
        if !self.decryptor.is_done() || !self.decryptor.plaintext().is_empty() {
            return Err(Error::InvalidConfig(
                "confirm() before the whole stream was read: read to the end first".into(),
            ));
        }
        let key = self.key.clone().expect("a finished stream had its header");
        let receipt = key.seal(&Message::Receipt {
            final_chunk: self.decryptor.chunks_opened() - 1,
            total: self.delivered,
        });
        let path = key.receipt_path();
        let timeout = self.options.resume_timeout;
        let sent = send_until(&self.config, path, &receipt, Instant::now() + timeout).await;
        // The acknowledgements kept the writer waiting until now.
        if let Some(acks) = self.acks.take() {
            acks.finish();
        }
        match sent {
            Ok(()) => Ok(()),
            Err(_) => Err(Error::Resume(ResumeError::ReceiptNotTaken(timeout))),
        }
    }

    /// Tells the writer this stream will not be committed (no receipt
    /// follows), so it fails at once: the output failed if the whole
    /// stream was read, else the stream could not be read. Without an
    /// acknowledgement stream under way (mid-resume) the writer finds out
    /// by its resume timeout instead.
    pub(crate) async fn abandon(&mut self) {
        let reason = self.give_up_reason();
        if let Some(acks) = self.acks.take() {
            acks.give_up(reason).await;
        }
    }

    /// Why the reader gives the stream up: the output failed if the whole
    /// stream was read, else the stream could not be read.
    fn give_up_reason(&self) -> GiveUpReason {
        if self.decryptor.is_done() {
            GiveUpReason::Output
        } else {
            GiveUpReason::Stream
        }
    }

    /// After input was taken: once the header is open, derives the control
    /// key and starts leg 0's acknowledgements with the handshake (the
    /// writer waits for it); then acknowledges each authenticated chunk.
    fn after_input(&mut self) {
        if self.key.is_none() {
            let Some(exporter) = self.decryptor.exporter_secret() else {
                return;
            };
            let key = Arc::new(ControlKey::new(exporter, self.config.stream_path()));
            self.acks = Some(Acks::start(&self.config, &key, 0, Position::default()));
            self.key = Some(key);
        }
        if let Some(acks) = &self.acks {
            let next_chunk = self.decryptor.chunks_opened();
            let plaintext = self.delivered + self.decryptor.plaintext().len() as u64;
            acks.progress.send_if_modified(|sent| {
                let newer = next_chunk > sent.next_chunk;
                if newer {
                    sent.next_chunk = next_chunk;
                    sent.plaintext = plaintext;
                }
                newer
            });
        }
    }

    /// The current leg broke for `why`: start a resume, or fail if the
    /// stream cannot resume yet (before its header, nothing authenticates
    /// a request).
    fn break_leg(&mut self, why: String) -> Result<(), Error> {
        let Some(key) = self.key.clone() else {
            // Before the header: the first leg starts over from the start,
            // on the transfer's own path, with a fresh decryptor (nothing
            // was released yet); the writer does the same.
            let deadline = *self
                .restart_deadline
                .get_or_insert_with(|| Instant::now() + self.options.resume_timeout);
            tracing::warn!(
                "{}: connection lost before the header ({why}); starting over",
                self.config.stream_path()
            );
            self.source = None;
            self.acks = None;
            self.restarting = true;
            self.resuming = Some(Box::pin(reconnect_first_leg(
                self.config.clone(),
                deadline,
                why,
            )));
            return Ok(());
        };
        self.source = None;
        self.acks = None;
        let next_chunk = self.decryptor.chunks_opened();
        let plaintext = self.delivered + self.decryptor.plaintext().len() as u64;
        self.decryptor.drop_partial_input();
        self.leg += 1;
        self.broken_at.get_or_insert_with(Instant::now);
        tracing::warn!(
            "{}: connection lost at {} ({why}); resuming on leg {} at chunk {next_chunk}",
            self.config.stream_path(),
            human_size(plaintext),
            self.leg
        );
        let request = Message::Resume {
            leg: self.leg,
            next_chunk,
            plaintext,
        };
        self.resuming = Some(Box::pin(resume(
            self.config.clone(),
            key,
            request,
            self.options.resume_timeout,
            why,
        )));
        Ok(())
    }

    fn reset_stall(&mut self) {
        let at = Instant::now() + self.options.stall_timeout;
        self.stall.as_mut().reset(at);
    }

    /// Polls for more input: from the current leg, or the resume under way.
    /// `Ready(Ok(()))` means the decryptor may have progressed.
    fn poll_input(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if let Some(resuming) = self.resuming.as_mut() {
            let download = ready!(resuming.as_mut().poll(cx))?;
            self.resuming = None;
            self.source = Some(download);
            self.resumes += 1;
            if std::mem::take(&mut self.restarting) {
                self.decryptor = self
                    .opening
                    .decryptor()?
                    .ok_or(Error::Resume(ResumeError::NeedsEncryption))?;
            } else if let Some(key) = &self.key {
                let from = Position {
                    next_chunk: self.decryptor.chunks_opened(),
                    plaintext: self.delivered + self.decryptor.plaintext().len() as u64,
                    give_up: None,
                };
                self.acks = Some(Acks::start(&self.config, key, self.leg, from));
            }
            let outage = self
                .broken_at
                .take()
                .map(|at| at.elapsed())
                .unwrap_or_default();
            tracing::warn!(
                "{}: resumed on leg {} after {:.1} s",
                self.config.stream_path(),
                self.leg,
                outage.as_secs_f64()
            );
            self.reset_stall();
        }
        let source = self.source.as_mut().expect("a leg or a resume");
        let space = self.decryptor.input_buffer();
        if space.is_empty() {
            // Nothing is wanted (the caller checked for plaintext and the end).
            return Poll::Ready(Ok(()));
        }
        let mut buf = ReadBuf::new(space);
        match Pin::new(source).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len();
                if n > 0 {
                    self.decryptor.commit_input(n).map_err(Error::from)?;
                    self.reset_stall();
                    self.after_input();
                    return Poll::Ready(Ok(()));
                }
                // A clean end. age v1 marks its final chunk only by the
                // end of the input; age-rt's final chunk is explicit, so an
                // end before it is a break.
                if self.decryptor.format() == Some(Format::AgeV1) {
                    self.decryptor.finish().map_err(Error::from)?;
                    return Poll::Ready(Ok(()));
                }
                self.break_leg("the connection ended before the final chunk".into())?;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => {
                let error = Error::from_io_error(error);
                if matches!(error, Error::Decryption(_)) {
                    return Poll::Ready(Err(error));
                }
                self.break_leg(error.to_string())?;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                ready!(self.stall.as_mut().poll(cx));
                let stalled = format!(
                    "nothing received for {:.0} s",
                    self.options.stall_timeout.as_secs_f64()
                );
                self.break_leg(stalled)?;
                Poll::Ready(Ok(()))
            }
        }
    }
}

impl AsyncRead for ResumingReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let plaintext = this.decryptor.plaintext();
            if !plaintext.is_empty() {
                let n = plaintext.len().min(buf.remaining());
                buf.put_slice(&plaintext[..n]);
                this.decryptor.consume_plaintext(n);
                this.delivered += n as u64;
                return Poll::Ready(Ok(()));
            }
            if this.decryptor.is_done() {
                return Poll::Ready(Ok(()));
            }
            ready!(this.poll_input(cx)).map_err(io::Error::from)?;
        }
    }
}

/// Sends leg `leg`'s acknowledgements: the newest `progress` as a message
/// on one long stream (at most one per [`ACK_PAUSE`], and the last one
/// again after `keepalive` without news: the reader's sign of life while
/// the application reads slowly or commits its output), opened again
/// after an error (each attempt waits up to [`ATTEMPT`] for the writer).
/// Leg 0's stream opens with the handshake. Ends the stream once
/// `progress` is dropped, after the last acknowledgement, or after the
/// reader gave the stream up ([`Message::GiveUp`]).
async fn send_acks(
    data: Config,
    key: Arc<ControlKey>,
    leg: u32,
    keepalive: Duration,
    mut progress: watch::Receiver<Position>,
) {
    let path = key.ack_path(leg);
    let Ok(config) = side_config(&data, path.clone()) else {
        return;
    };
    let api = config.api_client();
    loop {
        let opened = attempt(&path, async {
            let url = api
                .connect(&path, ConnectMode::AwaitReader, Some(ATTEMPT))
                .await?;
            Ok(api.upload(&url, None)?)
        });
        let Some(mut upload) = opened.await else {
            continue;
        };
        let seal = |message: Message| Bytes::copy_from_slice(&key.seal(&message));
        if leg == 0 && upload.sink.send(seal(Message::Hello)).await.is_err() {
            continue;
        }
        // A new stream starts with where the reader stands.
        progress.mark_changed();
        loop {
            let ended = match tokio::time::timeout(keepalive, progress.changed()).await {
                Ok(changed) => changed.is_err(),
                Err(_) => false,
            };
            let position = *progress.borrow_and_update();
            let message = match position.give_up {
                Some(reason) => Message::GiveUp { leg, reason },
                None => Message::Ack {
                    leg,
                    next_chunk: position.next_chunk,
                    plaintext: position.plaintext,
                },
            };
            if upload.sink.send(seal(message)).await.is_err() {
                break;
            }
            if ended || position.give_up.is_some() {
                let _ = upload.sink.finish().await;
                let _ = tokio::time::timeout(ATTEMPT, upload.status).await;
                return;
            }
            tokio::time::sleep(ACK_PAUSE).await;
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// Connects the first leg again (the transfer's own path), retried until
/// `deadline`: used when it broke before the header, or when the writer's
/// upload never reached the relay.
pub(crate) async fn reconnect_first_leg(
    config: Config,
    deadline: Instant,
    why: String,
) -> Result<Download, Error> {
    let timeout = config.resume.map(|r| r.resume_timeout).unwrap_or_default();
    let api = config.api_client();
    let mut last_error = why.clone();
    while Instant::now() < deadline {
        let attempt = tokio::time::timeout(ATTEMPT + ATTEMPT_MARGIN, async {
            let url = api
                .connect(
                    config.stream_path(),
                    ConnectMode::AwaitWriter,
                    Some(ATTEMPT),
                )
                .await?;
            Ok::<_, Error>(api.download(&url).await?)
        })
        .await;
        match attempt {
            Ok(Ok(download)) => return Ok(download),
            Ok(Err(error)) => {
                last_error = error.to_string();
                pause_after(&error).await;
            }
            Err(_) => {}
        }
    }
    Err(Error::Resume(ResumeError::TimedOut {
        after: timeout,
        cause: format!("{why}; then: {last_error}"),
    }))
}

/// Asks the writer for leg `request.leg` and returns its body, after its
/// first message (the writer's answer) was checked: the leg starts exactly
/// at the chunk asked for. Both steps are retried in turn until the resume
/// timeout: the request may be lost with a dying connection, and the
/// writer may already wait on the leg.
async fn resume(
    data: Config,
    key: Arc<ControlKey>,
    request: Message,
    timeout: Duration,
    why: String,
) -> Result<Download, Error> {
    let Message::Resume {
        leg, next_chunk, ..
    } = request
    else {
        unreachable!("called with a resume request");
    };
    let deadline = Instant::now() + timeout;
    let sealed = key.seal(&request);
    let leg_path = key.leg_path(leg);
    // The request and the leg run side by side: the request is sent until
    // the writer took it once (a request lost with a dying connection is
    // sent again), while the leg is connected attempt after attempt, so a
    // link that comes back finds both under way.
    let (sender, request_path) = (data.clone(), key.resume_path(leg));
    let send_request = async move {
        // A request never taken shows as the leg's timeout.
        let _ = send_until(&sender, request_path, &sealed, deadline).await;
    };
    let first_error = why.clone();
    let open_leg = async move {
        let mut last_error = first_error;
        while Instant::now() < deadline {
            let opened = tokio::time::timeout(ATTEMPT + ATTEMPT_MARGIN, async {
                let api = data.api_client();
                let url = api
                    .connect(&leg_path, ConnectMode::AwaitWriter, Some(ATTEMPT))
                    .await?;
                let mut download = api.download(&url).await?;
                let mut first = [0u8; MESSAGE_LEN];
                download
                    .read_exact(&mut first)
                    .await
                    .map_err(Error::from_io_error)?;
                Ok::<_, Error>((download, first))
            })
            .await;
            match opened {
                Ok(Ok(opened)) => return Ok(opened),
                Ok(Err(error)) => {
                    pause_after(&error).await;
                    last_error = error.to_string();
                }
                Err(_) => {}
            }
        }
        Err(last_error)
    };
    tokio::pin!(send_request, open_leg);
    let mut requested = false;
    let opened = loop {
        tokio::select! {
            () = &mut send_request, if !requested => requested = true,
            opened = &mut open_leg => break opened,
        }
    };
    let last_error = match opened {
        Ok((download, first)) => return answered_leg(&key, leg, next_chunk, &first, download),
        Err(last_error) => last_error,
    };
    Err(Error::Resume(ResumeError::TimedOut {
        after: timeout,
        cause: if last_error == why {
            why
        } else {
            format!("{why}; then: {last_error}")
        },
    }))
}

/// The leg's body, if its first message is this stream's answer for leg
/// `leg` starting at chunk `next_chunk`.
fn answered_leg(
    key: &ControlKey,
    leg: u32,
    next_chunk: u64,
    first: &[u8],
    download: Download,
) -> Result<Download, Error> {
    match key.open(first) {
        Ok(Message::Accept {
            leg: answered,
            first_chunk,
        }) if answered == leg && first_chunk == next_chunk => Ok(download),
        Ok(Message::Behind {
            leg: answered,
            behind,
            held,
            ..
        }) if answered == leg => Err(Error::Resume(ResumeError::Behind { behind, held })),
        Ok(Message::GiveUp { leg: answered, .. }) if answered == leg => {
            Err(Error::Resume(ResumeError::WriterGaveUp))
        }
        Ok(other) => Err(Error::Resume(ResumeError::Refused(format!(
            "leg {leg} should start at chunk {next_chunk}, the writer's message says {other:?}"
        )))),
        Err(error) => Err(Error::Resume(ResumeError::Refused(format!(
            "leg {leg}: {error}"
        )))),
    }
}

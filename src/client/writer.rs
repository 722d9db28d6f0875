//! [`StreamWriter`]: the producer end, a `tokio::io::AsyncWrite`.
//!
//! The writer hands bytes to a background task (the "pump") through a bounded
//! queue. The pump owns the whole pipeline: the sans-IO encryptor (if any)
//! and the upload body's sender, so every HTTP chunk is one sealed chunk
//! (encrypted) or up to `write_buffer_size` bytes (plaintext), with no copy
//! beyond the cipher's. It applies the auto-flush policy with its own timer,
//! and watches the relay's status lines, so a delayed flush happens even
//! while the application is not polling the writer.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWrite;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::PollSender;

use super::resume::producer::{self, Legs};
use super::{exchange, AutoFlush, Config, Error, Resume, ResumeError, Sealing};
use crate::api::{self, Upload, UploadSink, UploadStatus};
use crate::cipher::Encryptor;
use crate::protocol::ConnectMode;

/// The largest piece of data handed to the pump in one command. Without
/// auto-flush, writes are gathered up to this size first: one hand-over (a
/// cross-thread wake-up) per 256 KiB instead of one per write.
const MAX_COMMAND_BYTES: usize = 256 * 1024;
/// Commands queued between the application and the pump (bounds memory to
/// `(COMMAND_QUEUE + 1) × MAX_COMMAND_BYTES`).
const COMMAND_QUEUE: usize = 4;
/// How long to wait for the relay's explanation after the upload body closed.
const STATUS_GRACE: Duration = Duration::from_secs(5);

/// The `tracing` target of the warning that a writer was dropped unfinished
/// (an application that aborts on purpose and says so itself, like the CLI,
/// can filter it out).
pub(crate) const ABANDONED_LOG_TARGET: &str = "zebrastream::client::abandoned";

/// How long [`StreamWriter::abandon`] waits for the reader to be told.
const ABANDON_WAIT: std::time::Duration = std::time::Duration::from_secs(6);

#[derive(Debug)]
enum Command {
    Data(Bytes),
    Flush(oneshot::Sender<()>),
    Finish(oneshot::Sender<()>),
    /// Ends the stream on purpose, telling a resuming reader so first.
    Abandon(oneshot::Sender<()>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Flush,
    Finish,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// `shutdown()` completed: the relay confirmed the transfer.
    Finished,
    /// An error was returned; every further call fails with [`Error::Closed`].
    Failed,
}

/// The producer end of a stream: an [`AsyncWrite`] whose bytes reach the
/// consumer through the relay.
///
/// - `write` queues bytes (bounded: it waits when the relay or the consumer
///   is slow). Without auto-flush, writes are gathered into 256 KiB pieces
///   before they are handed to the background task.
/// - `flush` returns once every byte written so far was handed to the HTTP
///   connection as an HTTP chunk (plaintext) or an authenticated chunk
///   (encrypted, age-rt; age v1 has no partial chunks, so there a flush
///   cannot make a partial 64 KiB chunk readable).
/// - `shutdown` finishes the stream and returns only after the relay sent
///   `[STATE:TRANSFER_SUCCESSFUL]`, i.e. it delivered every byte to the
///   consumer's connection (not a proof that the consumer decrypted or
///   processed them).
///   Any other end is an error ([`Error::PeerDisconnected`],
///   [`Error::ConnectionLost`], [`Error::Protocol`]).
/// - Dropping the writer without a successful `shutdown` aborts the upload:
///   the consumer sees an error, never a short stream. Unless an error was
///   returned before, a `tracing` warning says the stream was abandoned
///   (a forgotten `shutdown` would otherwise lose the stream in silence);
///   [`abort`](Self::abort) ends it on purpose, without the warning.
///
/// ```no_run
/// # async fn demo() -> Result<(), zebrastream::client::Error> {
/// use tokio::io::AsyncWriteExt;
/// use zebrastream::client::{Config, Sealing, SecretString, StreamWriter};
///
/// let config = Config::builder("/userspace/demo")
///     .connect_url("http://127.0.0.1:8080/v0")
///     .build()?;
/// let sealing = Sealing::passphrase(SecretString::from("correct horse battery staple"));
/// let mut writer = StreamWriter::connect(&config, &sealing).await?;
/// writer.write_all(b"hello, consumer\n").await?;
/// writer.shutdown().await?; // resolves once the relay confirmed the transfer
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct StreamWriter {
    commands: PollSender<Command>,
    /// Bytes gathered for the next data command (only with `AutoFlush::Never`).
    gathered: BytesMut,
    /// Whether writes are gathered (no auto-flush: nothing is due before a flush).
    gather: bool,
    pump: Option<JoinHandle<Result<(), Error>>>,
    pending: Option<(Pending, oneshot::Receiver<()>)>,
    state: State,
    bytes: u64,
    /// For the warning when the writer is dropped unfinished.
    stream_path: String,
}

impl StreamWriter {
    /// Waits for a consumer through the Connect API (`mode=await-reader`),
    /// then starts the upload, protected as `sealing` says. Returns once both
    /// sides are paired and the `PUT` is under way. With
    /// [`Sealing::Fresh`] the forward-secrecy exchange runs first; a refused
    /// or missing answer is [`Error::Exchange`] and no data is sent.
    pub async fn connect(config: &Config, sealing: &Sealing) -> Result<StreamWriter, Error> {
        let exchanged;
        let sealing = match sealing {
            Sealing::Fresh { exchange, format } => {
                exchanged = exchange::seal(exchange, config, *format).await?;
                &exchanged
            }
            other => other,
        };
        let api = config.api_client();
        // Set the cipher up first (scrypt takes a while), so the consumer does
        // not wait for it after pairing; a writer asked to encrypt never
        // falls back to plaintext.
        let encryptor = match sealing {
            Sealing::Passphrase { .. } => {
                let sealing = sealing.clone();
                // scrypt takes about half a second: keep it off the async workers.
                tokio::task::spawn_blocking(move || sealing.encryptor())
                    .await
                    .map_err(|_| Error::Closed)??
            }
            other => other.encryptor()?,
        };
        if config.resume.is_some() && encryptor.is_none() {
            return Err(Error::Resume(ResumeError::NeedsEncryption));
        }
        // Since the first cut-off answer: the resume timeout counts from the
        // break, not from the start of the wait for the reader.
        let mut broken_since = None;
        let data_url = loop {
            let connected = api
                .connect(
                    &config.stream_path,
                    ConnectMode::AwaitReader,
                    config.connect_timeout,
                )
                .await;
            match (connected, config.resume) {
                (Ok(data_url), _) => break data_url,
                // With resume, a Connect answer cut off on its way is asked
                // again (the reader starts over too).
                (Err(error), Some(resume))
                    if super::resume::cut_off_answer(&error)
                        && broken_since
                            .get_or_insert_with(tokio::time::Instant::now)
                            .elapsed()
                            < resume.resume_timeout() =>
                {
                    tracing::debug!("{}: {error}; connecting again", config.stream_path);
                }
                (Err(error), _) => return Err(error.into()),
            }
        };
        let upload = api.upload(&data_url, config.content_type.as_deref())?;
        Ok(Self::start(
            encryptor,
            upload,
            config.resume.map(|resume| (config, resume)),
            config.auto_flush,
            config.write_buffer_size,
            &config.stream_path,
        ))
    }

    /// Starts the pump on a started `upload`: it seals with `encryptor` (or
    /// sends plaintext in HTTP chunks of up to `chunk_size` bytes, at least 1:
    /// [`Config`] checks it) and flushes by `auto_flush`. With `resume` (and
    /// an encryptor), `upload` is the stream's first leg.
    pub(crate) fn start(
        encryptor: Option<Encryptor>,
        upload: Upload,
        resume: Option<(&Config, Resume)>,
        auto_flush: AutoFlush,
        chunk_size: usize,
        stream_path: &str,
    ) -> StreamWriter {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let outlet = match (resume, &encryptor) {
            (Some((config, resume)), Some(encryptor)) => {
                Outlet::Legs(Box::new(Legs::start(config, resume, encryptor, upload)))
            }
            _ => Outlet::Single {
                body: upload.sink,
                status: upload.status,
            },
        };
        let pump = Pump {
            encryptor: encryptor.map(Box::new),
            chunk_size,
            pending: BytesMut::new(),
            outlet,
            commands: rx,
            auto_flush,
        };
        StreamWriter {
            commands: PollSender::new(tx),
            gathered: BytesMut::new(),
            gather: auto_flush == AutoFlush::Never,
            pump: Some(tokio::spawn(pump.run())),
            pending: None,
            state: State::Open,
            bytes: 0,
            stream_path: stream_path.to_owned(),
        }
    }

    /// Plaintext bytes accepted so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    /// Ends the stream on purpose without finishing it (the producer of the
    /// data failed, say): the upload is aborted, so the consumer gets an
    /// error, never a short stream. The same as dropping the writer, minus
    /// the warning that it was abandoned. Does nothing after a successful
    /// `shutdown`.
    pub fn abort(mut self) {
        if self.state == State::Open {
            self.state = State::Failed;
        }
    }

    /// Like [`abort`](Self::abort), and with resume on, the reader is told
    /// first (it asks to resume the aborted stream and gets an
    /// authenticated "given up" instead), so it fails at once with
    /// [`ResumeError::WriterGaveUp`](super::ResumeError::WriterGaveUp)
    /// instead of trying to resume for its resume timeout. Waits a few
    /// seconds at most.
    ///
    /// ```no_run
    /// # async fn demo(mut writer: zebrastream::client::StreamWriter) {
    /// // The export that feeds the stream failed:
    /// writer.abandon().await;
    /// # }
    /// ```
    pub async fn abandon(mut self) {
        if self.state == State::Open {
            let (ack_tx, ack_rx) = oneshot::channel();
            let mut ack_tx = Some(ack_tx);
            // Through the writer's own slot: it may hold the channel's
            // capacity reserved.
            let sent = std::future::poll_fn(|cx| {
                ready!(self.poll_slot(cx))?;
                let ack = ack_tx.take().expect("sent once");
                self.send_reserved(cx, Command::Abandon(ack))
            });
            if let Ok(Ok(())) = tokio::time::timeout(ABANDON_WAIT, sent).await {
                let _ = tokio::time::timeout(ABANDON_WAIT, ack_rx).await;
            }
        }
        self.abort();
    }

    fn check_open(&self) -> io::Result<()> {
        match self.state {
            State::Open => Ok(()),
            State::Finished | State::Failed => Err(Error::Closed.into()),
        }
    }

    /// The pump stopped: collect its error and mark the writer failed.
    fn poll_pump_error(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let Some(pump) = self.pump.as_mut() else {
            self.state = State::Failed;
            return Poll::Ready(Error::Closed.into());
        };
        let result = ready!(Pin::new(pump).poll(cx));
        self.pump = None;
        self.state = State::Failed;
        let error = match result {
            Ok(Err(error)) => error,
            // The pump only ends cleanly after confirming a finish.
            Ok(Ok(())) => Error::Closed,
            Err(_) => Error::ConnectionLost(api::Error::TaskFailed {
                operation: api::Operation::Upload,
            }),
        };
        Poll::Ready(error.into())
    }

    /// Reserves a slot in the command queue, or reports why the pump stopped.
    fn poll_slot(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match ready!(self.commands.poll_reserve(cx)) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(_) => self.poll_pump_error(cx).map(Err),
        }
    }

    /// Sends `command` into the slot reserved by [`Self::poll_slot`].
    fn send_reserved(&mut self, cx: &mut Context<'_>, command: Command) -> Poll<io::Result<()>> {
        match self.commands.send_item(command) {
            Ok(()) => Poll::Ready(Ok(())),
            Err(_) => self.poll_pump_error(cx).map(Err),
        }
    }

    /// Hands the gathered bytes (if any) to the pump.
    fn poll_send_gathered(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.gathered.is_empty() {
            return Poll::Ready(Ok(()));
        }
        ready!(self.poll_slot(cx))?;
        let data = self.gathered.split().freeze();
        self.send_reserved(cx, Command::Data(data))
    }

    /// Sends a flush or finish request (once) and waits for its acknowledgement.
    fn poll_request(&mut self, cx: &mut Context<'_>, kind: Pending) -> Poll<io::Result<()>> {
        loop {
            if let Some((pending_kind, ack)) = self.pending.as_mut() {
                let pending_kind = *pending_kind;
                let acked = ready!(Pin::new(ack).poll(cx));
                self.pending = None;
                if acked.is_err() {
                    return self.poll_pump_error(cx).map(Err);
                }
                if pending_kind == kind {
                    return Poll::Ready(Ok(()));
                }
                // A different request (a flush before a shutdown) completed: send ours.
                continue;
            }
            // Bytes written before the request go out before it.
            ready!(self.poll_send_gathered(cx))?;
            ready!(self.poll_slot(cx))?;
            let (ack_tx, ack_rx) = oneshot::channel();
            let command = match kind {
                Pending::Flush => Command::Flush(ack_tx),
                Pending::Finish => Command::Finish(ack_tx),
            };
            ready!(self.send_reserved(cx, command))?;
            self.pending = Some((kind, ack_rx));
        }
    }
}

impl AsyncWrite for StreamWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check_open()?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.gather {
            // The pump stopped (e.g. the consumer left): report it now rather
            // than after another 256 KiB were gathered.
            let pump_gone = this.commands.get_ref().is_none_or(|tx| tx.is_closed());
            if pump_gone {
                return this.poll_pump_error(cx).map(Err);
            }
            if this.gathered.len() >= MAX_COMMAND_BYTES {
                ready!(this.poll_send_gathered(cx))?;
            }
            if this.gathered.capacity() == 0 {
                this.gathered.reserve(MAX_COMMAND_BYTES);
            }
            let n = buf.len().min(MAX_COMMAND_BYTES - this.gathered.len());
            this.gathered.extend_from_slice(&buf[..n]);
            this.bytes += n as u64;
            return Poll::Ready(Ok(n));
        }
        ready!(this.poll_slot(cx))?;
        let n = buf.len().min(MAX_COMMAND_BYTES);
        ready!(this.send_reserved(cx, Command::Data(Bytes::copy_from_slice(&buf[..n]))))?;
        this.bytes += n as u64;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        this.check_open()?;
        this.poll_request(cx, Pending::Flush)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.state == State::Finished {
            return Poll::Ready(Ok(()));
        }
        this.check_open()?;
        ready!(this.poll_request(cx, Pending::Finish))?;
        this.state = State::Finished;
        Poll::Ready(Ok(()))
    }
}

impl Drop for StreamWriter {
    fn drop(&mut self) {
        if self.state == State::Open {
            // No error was returned and `shutdown` was not called: the
            // producer would never learn that the stream is lost.
            tracing::warn!(
                target: ABANDONED_LOG_TARGET,
                "{}: the stream writer was dropped without shutdown() after {} bytes: \
                 the upload is abandoned and the consumer gets an error (truncated stream); \
                 call shutdown() to finish the stream, or abort() to end it on purpose",
                self.stream_path,
                self.bytes
            );
        }
        if self.state != State::Finished {
            if let Some(pump) = self.pump.take() {
                // Dropping the pump drops the upload body without its end
                // marker, which aborts the HTTP body: the consumer sees an error.
                pump.abort();
            }
        }
    }
}

/// Where the pump's HTTP chunks go: one upload body, or (resume on) the
/// legs of the stream.
enum Outlet {
    Single {
        body: UploadSink,
        status: UploadStatus,
    },
    Legs(Box<Legs>),
}

/// What the pump must react to between the application's commands.
enum OutletEvent {
    /// The relay ended the single upload early.
    Ended(Result<(), api::Error>),
    Legs(producer::Event),
}

impl Outlet {
    /// Waits for an event (cancel-safe).
    async fn next_event(&mut self) -> OutletEvent {
        match self {
            Outlet::Single { status, .. } => OutletEvent::Ended(status.await),
            Outlet::Legs(legs) => OutletEvent::Legs(legs.next_event().await),
        }
    }

    async fn handle(&mut self, event: OutletEvent) -> Result<(), Error> {
        match (self, event) {
            (Outlet::Legs(legs), OutletEvent::Legs(event)) => legs.handle(event).await,
            (_, OutletEvent::Ended(outcome)) => Err(early_end(outcome)),
            (Outlet::Single { .. }, OutletEvent::Legs(_)) => unreachable!("no legs"),
        }
    }
}

/// What happened while the pump waited on the upload body.
enum Step {
    Done,
    BodyFailed(api::Error),
    StatusEnded(Result<(), api::Error>),
}

/// Runs `op` on the body while watching the upload status, so that a relay
/// error ends the wait at once.
async fn alongside_status<F>(status: &mut UploadStatus, op: F) -> Step
where
    F: Future<Output = Result<(), api::Error>>,
{
    tokio::select! {
        result = op => match result {
            Ok(()) => Step::Done,
            Err(e) => Step::BodyFailed(e),
        },
        outcome = status => Step::StatusEnded(outcome),
    }
}

/// The background task that owns the pipeline: the cipher and the upload
/// body.
///
/// Encrypted, each HTTP chunk is one output of the encryptor: the header
/// (its own chunk, sent as soon as the upload starts, so the consumer
/// unwraps the file key while the first chunk fills), then one sealed chunk
/// each. Plaintext, chunks of `chunk_size` bytes are cut from the pieces
/// handed over without a copy; a smaller remainder waits in `pending` for
/// more bytes or a flush.
struct Pump {
    encryptor: Option<Box<Encryptor>>,
    /// Largest plaintext HTTP chunk (at least 1).
    chunk_size: usize,
    /// Plaintext not sent yet (less than `chunk_size`).
    pending: BytesMut,
    outlet: Outlet,
    commands: mpsc::Receiver<Command>,
    auto_flush: AutoFlush,
}

impl Pump {
    async fn run(mut self) -> Result<(), Error> {
        // The header, if any, goes out at once.
        self.send_framed().await?;
        let mut flush_at: Option<Instant> = None;
        loop {
            let command = tokio::select! {
                event = self.outlet.next_event() => {
                    self.outlet.handle(event).await?;
                    continue;
                }
                _ = sleep_until(flush_at), if flush_at.is_some() => {
                    flush_at = None;
                    self.flush().await?;
                    continue;
                }
                command = self.commands.recv() => command,
            };
            match command {
                // The writer was dropped without shutdown: returning drops the
                // body sender, which aborts the upload body.
                None => return Err(Error::Closed),
                Some(Command::Data(bytes)) => {
                    self.write(bytes).await?;
                    match self.auto_flush {
                        AutoFlush::Never => {}
                        AutoFlush::EveryWrite => self.flush().await?,
                        AutoFlush::After(delay) => {
                            flush_at.get_or_insert_with(|| Instant::now() + delay);
                        }
                    }
                }
                Some(Command::Flush(ack)) => {
                    self.flush().await?;
                    flush_at = None;
                    // The writer may have stopped waiting; nothing to report then.
                    let _ = ack.send(());
                }
                Some(Command::Finish(ack)) => {
                    self.finish().await?;
                    let _ = ack.send(());
                    return Ok(());
                }
                Some(Command::Abandon(ack)) => {
                    if let Outlet::Legs(legs) = &mut self.outlet {
                        legs.give_up().await;
                    }
                    let _ = ack.send(());
                    return Err(Error::Closed);
                }
            }
        }
    }

    /// Frames `bytes` and sends every complete chunk.
    async fn write(&mut self, mut bytes: Bytes) -> Result<(), Error> {
        if self.encryptor.is_some() {
            let mut data = &bytes[..];
            while !data.is_empty() {
                let encryptor = self.encryptor.as_mut().expect("checked above");
                let n = encryptor.write(data).map_err(Error::Encryption)?;
                data = &data[n..];
                self.send_framed().await?;
            }
            return Ok(());
        }
        if !self.pending.is_empty() {
            let n = bytes.len().min(self.chunk_size - self.pending.len());
            self.pending.extend_from_slice(&bytes.split_to(n));
            if self.pending.len() < self.chunk_size {
                return Ok(());
            }
            self.send_framed().await?;
        }
        while bytes.len() >= self.chunk_size {
            self.send(bytes.split_to(self.chunk_size)).await?;
        }
        self.pending.extend_from_slice(&bytes);
        Ok(())
    }

    /// Sends what is framed but not sent yet: the encryptor's output (each
    /// piece one HTTP chunk) or the pending plaintext.
    async fn send_framed(&mut self) -> Result<(), Error> {
        loop {
            let (chunk, preamble) = match self.encryptor.as_mut() {
                Some(encryptor) => {
                    let preamble = encryptor.output_is_preamble();
                    let chunk = Bytes::copy_from_slice(encryptor.output());
                    encryptor.consume(chunk.len());
                    (chunk, preamble)
                }
                None => (self.pending.split().freeze(), false),
            };
            if chunk.is_empty() {
                return Ok(());
            }
            match &mut self.outlet {
                Outlet::Legs(legs) if preamble => legs.send_preamble(chunk).await?,
                Outlet::Legs(legs) => legs.send_chunk(chunk).await?,
                Outlet::Single { .. } => self.send(chunk).await?,
            }
        }
    }

    /// Sends `chunk` on the single upload.
    async fn send(&mut self, chunk: Bytes) -> Result<(), Error> {
        let Outlet::Single { body, status } = &mut self.outlet else {
            unreachable!("plaintext chunks only go to a single upload");
        };
        let step = alongside_status(status, body.send(chunk)).await;
        self.interpret(step).await
    }

    /// Makes every byte so far readable: seals the partial chunk (age-rt) or
    /// sends the pending plaintext, and waits until the HTTP client took it.
    async fn flush(&mut self) -> Result<(), Error> {
        if let Some(encryptor) = self.encryptor.as_mut() {
            encryptor.flush();
        }
        self.send_framed().await?;
        let (body, status) = match &mut self.outlet {
            Outlet::Legs(legs) => return legs.flush().await,
            Outlet::Single { body, status } => (body, status),
        };
        let step = alongside_status(status, body.flush()).await;
        self.interpret(step).await
    }

    /// Seals the final chunk, ends the body and waits for the relay's confirmation.
    async fn finish(&mut self) -> Result<(), Error> {
        if let Some(encryptor) = self.encryptor.as_mut() {
            encryptor.finish();
        }
        self.send_framed().await?;
        let (body, status) = match &mut self.outlet {
            Outlet::Legs(legs) => {
                let resumes = legs.finish().await?;
                tracing::debug!("the reader's receipt arrived after {resumes} resumes");
                return Ok(());
            }
            Outlet::Single { body, status } => (body, status),
        };
        let step = alongside_status(status, body.finish()).await;
        match step {
            Step::Done => status.await.map_err(Error::from),
            // Confirmed while the last bytes were being handed over.
            Step::StatusEnded(Ok(())) => Ok(()),
            other => self.interpret(other).await,
        }
    }

    /// Turns a body step into the writer's result. A failed body is usually
    /// the symptom of something the relay reports on the status channel
    /// (e.g. the consumer left), so that report wins if it arrives.
    async fn interpret(&mut self, step: Step) -> Result<(), Error> {
        match step {
            Step::Done => Ok(()),
            Step::StatusEnded(outcome) => Err(early_end(outcome)),
            Step::BodyFailed(body_error) => {
                let Outlet::Single { status, .. } = &mut self.outlet else {
                    unreachable!("body steps come from a single upload");
                };
                match tokio::time::timeout(STATUS_GRACE, status).await {
                    Ok(Err(relay_error)) => Err(Error::from(relay_error)),
                    _ => Err(Error::from(body_error)),
                }
            }
        }
    }
}

/// The relay ended the upload before the writer finished it.
fn early_end(outcome: Result<(), api::Error>) -> Error {
    match outcome {
        Err(error) => Error::from(error),
        // The status task only reports success after the body ended, which the
        // pump has not done yet: a relay that confirms early is broken.
        Ok(()) => Error::Protocol(api::Error::PrematureConfirmation),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use http_body_util::BodyExt;
    use hyper::body::Frame;
    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::api::test_server::{respond, serve, streaming};
    use crate::cipher::{Decryptor, Format};
    use crate::client::Sealing;

    /// How the scripted data endpoint answers the `PUT`.
    #[derive(Clone, Copy)]
    enum Script {
        /// Sends these lines at once, before reading the body.
        LinesAtOnce(&'static str),
        /// Reads the whole body, then sends these lines.
        LinesAfterBody(&'static str),
        /// Answers with this status.
        Status(u16),
    }

    async fn writer_against(script: Script) -> StreamWriter {
        let (base, _server) = serve(move |req| async move {
            if req.method() == hyper::Method::GET {
                return respond(200, "/data/s\n");
            }
            match script {
                Script::Status(status) => respond(status, "no"),
                Script::LinesAtOnce(lines) => {
                    let (tx, response) = streaming(200);
                    tokio::spawn(async move {
                        let _ = tx.send(Ok(Frame::data(Bytes::from(lines)))).await;
                        // Keep reading so the client's writes do not fail first.
                        let _ = req.into_body().collect().await;
                    });
                    response
                }
                Script::LinesAfterBody(lines) => {
                    let (tx, response) = streaming(200);
                    tokio::spawn(async move {
                        if req.into_body().collect().await.is_ok() {
                            let _ = tx.send(Ok(Frame::data(Bytes::from(lines)))).await;
                        }
                    });
                    response
                }
            }
        })
        .await;
        std::mem::forget(_server);
        StreamWriter::connect(&config_at(&base), &Sealing::Plain)
            .await
            .unwrap()
    }

    /// A writer's configuration for stream `/s` at the test relay `base`.
    fn config_at(base: &str) -> Config {
        Config::builder("/s")
            .connect_url(format!("{base}/v0"))
            .build()
            .unwrap()
    }

    /// Writes a little, then shuts down; returns the first error.
    async fn run(mut writer: StreamWriter) -> Error {
        let result = async {
            for _ in 0..50 {
                writer.write_all(b"data").await?;
                writer.flush().await?;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            writer.shutdown().await
        }
        .await;
        Error::from(result.expect_err("the writer must fail"))
    }

    #[tokio::test]
    async fn early_confirmation_is_a_protocol_error() {
        let writer = writer_against(Script::LinesAtOnce("[STATE:TRANSFER_SUCCESSFUL]\n")).await;
        let err = run(writer).await;
        assert!(
            matches!(err, Error::Protocol(api::Error::PrematureConfirmation)),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn unknown_error_line_is_a_protocol_error() {
        let writer = writer_against(Script::LinesAtOnce("[ERROR:QUOTA_EXCEEDED]\n")).await;
        let err = run(writer).await;
        assert!(
            matches!(&err, Error::Protocol(api::Error::RelayReported(name)) if name == "QUOTA_EXCEEDED"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn missing_confirmation_fails_the_shutdown() {
        let mut writer = writer_against(Script::LinesAfterBody("[STATE:CONNECTED]\n")).await;
        writer.write_all(b"data").await.unwrap();
        let err = Error::from(writer.shutdown().await.unwrap_err());
        assert!(
            matches!(
                &err,
                Error::Protocol(api::Error::Unconfirmed { last_line: Some(l) }) if l == "[STATE:CONNECTED]"
            ),
            "{err:?}"
        );
        // Failed once, closed for good.
        let again = Error::from(writer.write_all(b"x").await.unwrap_err());
        assert!(matches!(again, Error::Closed), "{again:?}");
    }

    #[tokio::test]
    async fn refused_upload_is_reported() {
        let writer = writer_against(Script::Status(500)).await;
        let err = run(writer).await;
        assert!(
            matches!(err, Error::Connect(api::Error::Status { status: 500, .. })),
            "{err:?}"
        );
        let writer = writer_against(Script::Status(403)).await;
        let err = run(writer).await;
        assert!(matches!(err, Error::Auth { status: 403, .. }), "{err:?}");
    }

    /// A relay that speaks raw HTTP/1.1 and records the size of every chunk
    /// of the `PUT` body as it is on the wire (a hyper server may split a
    /// chunk into several frames). Answers the Connect call with `/data/s`
    /// and the upload with `[STATE:TRANSFER_SUCCESSFUL]` after its end.
    async fn chunk_recorder() -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let chunks = Arc::new(Mutex::new(Vec::new()));
        let recorded = chunks.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let chunks = recorded.clone();
                tokio::spawn(async move {
                    let mut socket = BufReader::new(socket);
                    let mut line = String::new();
                    loop {
                        let mut head = Vec::new();
                        loop {
                            line.clear();
                            if socket.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            if line == "\r\n" {
                                break;
                            }
                            head.push(line.clone());
                        }
                        let answer = if head[0].starts_with("PUT ") {
                            loop {
                                line.clear();
                                socket.read_line(&mut line).await.unwrap();
                                let size = usize::from_str_radix(line.trim_end(), 16).unwrap();
                                let mut chunk = vec![0u8; size + 2];
                                socket.read_exact(&mut chunk).await.unwrap();
                                if size == 0 {
                                    break;
                                }
                                chunk.truncate(size);
                                chunks.lock().unwrap().push(chunk);
                            }
                            "[STATE:TRANSFER_SUCCESSFUL]\n"
                        } else {
                            "/data/s\n"
                        };
                        let response = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{answer}",
                            answer.len()
                        );
                        socket
                            .get_mut()
                            .write_all(response.as_bytes())
                            .await
                            .unwrap();
                    }
                });
            }
        });
        (base, chunks)
    }

    /// Writes 200,000 bytes at once, flushes, writes 10 more and shuts
    /// down; returns the plaintext and the recorded HTTP chunks.
    async fn chunks_of(sealing: Sealing) -> (Vec<u8>, Vec<Vec<u8>>) {
        let (base, chunks) = chunk_recorder().await;
        let plaintext: Vec<u8> = (0..200_010u32).map(|i| (i % 251) as u8).collect();
        let mut writer = StreamWriter::connect(&config_at(&base), &sealing)
            .await
            .unwrap();
        writer.write_all(&plaintext[..200_000]).await.unwrap();
        writer.flush().await.unwrap();
        writer.write_all(&plaintext[200_000..]).await.unwrap();
        writer.shutdown().await.unwrap();
        let chunks = chunks.lock().unwrap().clone();
        (plaintext, chunks)
    }

    #[tokio::test]
    async fn every_http_chunk_is_one_sealed_chunk() {
        let identity = age::x25519::Identity::generate();
        let sealing = Sealing::recipients(vec![Box::new(identity.to_public())], Format::AgeRt);
        let (plaintext, chunks) = chunks_of(sealing).await;
        let sizes: Vec<usize> = chunks.iter().map(Vec::len).collect();
        // The header alone, three full chunks (4-byte length, 64 KiB, 16-byte
        // tag), the flushed partial chunk (200,000 - 3 × 65,536 = 3,392
        // bytes), the final chunk of 10 bytes.
        let identifier = crate::cipher::Format::AgeRt.identifier().as_bytes();
        assert!(chunks[0].starts_with(identifier), "{sizes:?}");
        assert_eq!(sizes[1..], [65_556, 65_556, 65_556, 3_412, 30], "{sizes:?}");
        let wire = chunks.concat();
        let decrypted = Decryptor::with_identities(vec![Box::new(identity)])
            .decrypt_all(&wire)
            .unwrap();
        assert_eq!(decrypted, plaintext);
    }

    #[tokio::test]
    async fn plaintext_http_chunks_are_up_to_the_write_buffer_size() {
        let (plaintext, chunks) = chunks_of(Sealing::Plain).await;
        let sizes: Vec<usize> = chunks.iter().map(Vec::len).collect();
        assert_eq!(sizes, [65_536, 65_536, 65_536, 3_392, 10]);
        assert_eq!(chunks.concat(), plaintext);
    }

    #[tokio::test]
    async fn a_cipher_error_while_writing_is_an_encryption_error() {
        let (base, _chunks) = chunk_recorder().await;
        let config = config_at(&base);
        let api = config.api_client();
        let data_url = url::Url::parse(&format!("{base}/data/s")).unwrap();
        let upload = api.upload(&data_url, None).unwrap();
        // An encryptor that already ended its stream refuses more plaintext.
        let identity = age::x25519::Identity::generate();
        let mut encryptor =
            Encryptor::with_recipients(Format::AgeRt, vec![Box::new(identity.to_public())])
                .unwrap();
        encryptor.finish();
        let mut writer = StreamWriter::start(
            Some(encryptor),
            upload,
            None,
            AutoFlush::Never,
            crate::client::DEFAULT_WRITE_BUFFER_SIZE,
            "/s",
        );
        writer.write_all(b"more").await.unwrap();
        let err = Error::from(writer.flush().await.unwrap_err());
        assert!(
            matches!(err, Error::Encryption(crate::cipher::Error::Finished)),
            "{err:?}"
        );
        assert_eq!(
            Error::Encryption(crate::cipher::Error::Finished).io_kind(),
            io::ErrorKind::InvalidInput
        );
    }
}

//! The Data API upload: a `PUT` whose chunked body is fed through a bounded
//! channel while its response (the status lines) is read concurrently.
//!
//! [`UploadSink`] is the body side: every [`Bytes`] sent becomes exactly one
//! HTTP chunk (no re-buffering, so a caller that frames its data, like the
//! writer's sealed chunks, keeps its frames). [`UploadStatus`] is the
//! response side (a future that resolves when the relay confirmed the
//! transfer or reported an error). The body ends cleanly only after
//! [`UploadSink::finish`]; dropping the sink without it aborts the body (no
//! chunked terminator), so the relay and the consumer see an incomplete
//! upload.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use futures_util::{Stream, StreamExt, TryStreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::codec::FramedRead;

use super::{Error, Operation};
use crate::protocol::{
    StatusLine, StatusLineCodec, StatusLineError, RECEIVER_PREMATURE_DISCONNECT,
};

/// How many body chunks may wait between the sink and the HTTP client.
/// With 64 KiB chunks (the writer's default, or one sealed chunk) this
/// bounds the queue to about 256 KiB.
const BODY_QUEUE_FRAMES: usize = 4;

/// One item of the body channel.
#[derive(Debug)]
enum BodyFrame {
    Data(Bytes),
    /// The producer finished: end the body with the chunked terminator.
    End,
}

/// State shared between the sink and the body stream the HTTP client polls.
#[derive(Debug, Default)]
struct Progress {
    /// Frames the HTTP client has taken from the channel.
    taken: AtomicU64,
    /// The HTTP client dropped the body (connection closed or request failed).
    closed: AtomicBool,
    /// The body ended with its terminator (an `End` frame was taken).
    finished: AtomicBool,
    /// The sink task waiting in `poll_flush`.
    waker: AtomicWaker,
}

/// The request body as the HTTP client sees it.
struct UploadBody {
    frames: mpsc::Receiver<BodyFrame>,
    progress: Arc<Progress>,
    done: bool,
}

impl Stream for UploadBody {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let item = match ready!(self.frames.poll_recv(cx)) {
            Some(BodyFrame::Data(bytes)) => {
                self.mark_taken();
                Some(Ok(bytes))
            }
            Some(BodyFrame::End) => {
                self.done = true;
                self.progress.finished.store(true, Ordering::Release);
                self.mark_taken();
                None
            }
            None => {
                // The sink went away without `End`: an `Err` makes the HTTP
                // client abort the body instead of terminating it cleanly.
                self.done = true;
                Some(Err(io::Error::new(
                    io::ErrorKind::ConnectionAborted,
                    "upload aborted by the producer",
                )))
            }
        };
        Poll::Ready(item)
    }
}

impl UploadBody {
    fn mark_taken(&self) {
        self.progress.taken.fetch_add(1, Ordering::AcqRel);
        self.progress.waker.wake();
    }
}

impl Drop for UploadBody {
    fn drop(&mut self) {
        self.progress.closed.store(true, Ordering::Release);
        self.progress.waker.wake();
    }
}

/// The body of an upload: each [`send`](Self::send) queues one HTTP chunk
/// of the `PUT` body.
///
/// - `send` waits while the bounded queue to the HTTP client is full
///   (backpressure).
/// - `flush` resolves once the HTTP client has taken every chunk sent so far.
/// - `finish` ends the body with its terminator.
///
/// Dropping the sink before `finish` completed aborts the body.
#[derive(Debug)]
pub struct UploadSink {
    frames: mpsc::Sender<BodyFrame>,
    /// Frames handed to the channel.
    sent: u64,
    progress: Arc<Progress>,
    ended: bool,
}

impl UploadSink {
    /// Queues `chunk` as one HTTP chunk of the body (an empty one is skipped:
    /// on the wire it would end the body). Fails with
    /// [`Error::UploadClosed`] once the request is gone or after `finish`.
    pub async fn send(&mut self, chunk: Bytes) -> Result<(), Error> {
        if self.ended {
            return Err(Error::UploadClosed);
        }
        if chunk.is_empty() {
            return Ok(());
        }
        self.push(BodyFrame::Data(chunk)).await
    }

    /// Resolves once the HTTP client has taken every chunk sent so far (they
    /// are on their way to the socket).
    pub async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_taken(cx)).await
    }

    /// Ends the body with the chunked terminator and resolves once the HTTP
    /// client has taken it. Idempotent.
    pub async fn finish(&mut self) -> Result<(), Error> {
        if !self.ended {
            self.push(BodyFrame::End).await?;
            self.ended = true;
        }
        self.flush().await
    }

    async fn push(&mut self, frame: BodyFrame) -> Result<(), Error> {
        self.frames
            .send(frame)
            .await
            .map_err(|_| Error::UploadClosed)?;
        self.sent += 1;
        Ok(())
    }

    /// Ready once the HTTP client has taken every frame sent so far.
    fn poll_taken(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let check = |p: &Progress| {
            if p.taken.load(Ordering::Acquire) >= self.sent {
                Some(Ok(()))
            } else if p.closed.load(Ordering::Acquire) {
                Some(Err(Error::UploadClosed))
            } else {
                None
            }
        };
        if let Some(result) = check(&self.progress) {
            return Poll::Ready(result);
        }
        self.progress.waker.register(cx.waker());
        // Re-check: the body may have advanced between the check and the registration.
        match check(&self.progress) {
            Some(result) => Poll::Ready(result),
            None => Poll::Pending,
        }
    }
}

/// The response side of an upload: resolves to `Ok(())` only when the relay
/// sent `[STATE:TRANSFER_SUCCESSFUL]` as the last line of a cleanly ended
/// response, after the body was finished.
///
/// Dropping it does not stop the upload.
#[derive(Debug)]
pub struct UploadStatus {
    task: JoinHandle<Result<(), Error>>,
}

impl Future for UploadStatus {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match ready!(Pin::new(&mut self.task).poll(cx)) {
            Ok(result) => Poll::Ready(result),
            Err(_) => Poll::Ready(Err(Error::TaskFailed {
                operation: Operation::Upload,
            })),
        }
    }
}

/// A started Data API upload, split into its body and its status.
#[derive(Debug)]
pub struct Upload {
    /// Where the bytes go.
    pub sink: UploadSink,
    /// What the relay says about them.
    pub status: UploadStatus,
}

impl Upload {
    /// Starts the `PUT` in a background task (needs a Tokio runtime).
    pub(crate) fn start(request: reqwest::RequestBuilder) -> Upload {
        let (tx, rx) = mpsc::channel(BODY_QUEUE_FRAMES);
        let progress = Arc::new(Progress::default());
        let body = UploadBody {
            frames: rx,
            progress: progress.clone(),
            done: false,
        };
        let request = request.body(reqwest::Body::wrap_stream(body));
        let task = tokio::spawn(watch_status(request, progress.clone()));
        Upload {
            sink: UploadSink {
                frames: tx,
                sent: 0,
                progress,
                ended: false,
            },
            status: UploadStatus { task },
        }
    }
}

/// Sends the request and reads the status lines until the response ends.
async fn watch_status(
    request: reqwest::RequestBuilder,
    progress: Arc<Progress>,
) -> Result<(), Error> {
    let op = Operation::Upload;
    let response = request.send().await.map_err(|e| Error::network(op, 1, e))?;
    if !response.status().is_success() {
        return Err(Error::from_response(op, response).await);
    }
    let body = response
        .bytes_stream()
        .map_err(|e| io::Error::other(e.without_url()));
    let mut lines = FramedRead::new(
        tokio_util::io::StreamReader::new(body),
        StatusLineCodec::default(),
    );
    let mut last = None;
    while let Some(line) = lines.next().await {
        let line = line.map_err(|e| match e {
            StatusLineError::TooLong { max } => Error::StatusLineTooLong { max },
            StatusLineError::Io(source) => Error::BodyAborted {
                operation: op,
                source,
            },
        })?;
        tracing::debug!(%line, "relay status");
        // The body's end marker is taken before the terminator goes on the
        // wire, so a relay that saw the whole upload always finds it set.
        if line.is_success() && !progress.finished.load(Ordering::Acquire) {
            return Err(Error::PrematureConfirmation);
        }
        if let StatusLine::Error(name) = &line {
            // An error line is authoritative, whatever follows.
            return Err(if name == RECEIVER_PREMATURE_DISCONNECT {
                Error::PeerDisconnected
            } else {
                Error::RelayReported(name.clone())
            });
        }
        last = Some(line);
    }
    match last {
        Some(line) if line.is_success() => Ok(()),
        other => Err(Error::Unconfirmed {
            last_line: other.map(|l| l.to_string()),
        }),
    }
}

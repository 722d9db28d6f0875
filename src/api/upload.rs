//! The Data API upload: a `PUT` whose chunked body is fed through a bounded
//! channel while its response (the status lines) is read concurrently.
//!
//! [`UploadSink`] is the body side (an [`AsyncWrite`]); [`UploadStatus`] is
//! the response side (a future that resolves when the relay confirmed the
//! transfer or reported an error). The body ends cleanly only after
//! [`AsyncWriteExt::shutdown`](tokio::io::AsyncWriteExt::shutdown) on the sink;
//! dropping the sink without it aborts the body (no chunked terminator), so
//! the relay and the consumer see an incomplete upload.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::task::AtomicWaker;
use futures_util::{Stream, StreamExt, TryStreamExt};
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::codec::FramedRead;
use tokio_util::sync::PollSender;

use super::{Error, Operation};
use crate::protocol::{
    StatusLine, StatusLineCodec, StatusLineError, RECEIVER_PREMATURE_DISCONNECT,
};

/// How many body frames may wait between the sink and the HTTP client.
/// With the default 64 KiB frames this bounds the queue to 256 KiB.
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

/// The writing side of an upload: bytes written here become HTTP chunks of the
/// `PUT` body (up to `buffer_size` bytes each).
///
/// - `poll_write` buffers up to `buffer_size` bytes (with `buffer_size == 0`
///   every write is sent at once as its own chunk) and waits when the bounded
///   queue to the HTTP client is full (backpressure).
/// - `poll_flush` sends the buffer and resolves once the HTTP client has taken
///   every chunk written so far.
/// - `poll_shutdown` flushes and ends the body with its terminator.
///
/// Dropping the sink before `poll_shutdown` completed aborts the body.
#[derive(Debug)]
pub struct UploadSink {
    frames: PollSender<BodyFrame>,
    buf: BytesMut,
    buffer_size: usize,
    /// Frames handed to the channel.
    sent: u64,
    progress: Arc<Progress>,
    ended: bool,
}

fn closed_error() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, Error::UploadClosed)
}

impl UploadSink {
    fn poll_send(&mut self, cx: &mut Context<'_>, frame: BodyFrame) -> Poll<io::Result<()>> {
        ready!(self.frames.poll_reserve(cx)).map_err(|_| closed_error())?;
        self.frames.send_item(frame).map_err(|_| closed_error())?;
        self.sent += 1;
        Poll::Ready(Ok(()))
    }

    fn poll_send_buffer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.buf.is_empty() {
            return Poll::Ready(Ok(()));
        }
        ready!(self.frames.poll_reserve(cx)).map_err(|_| closed_error())?;
        let chunk = std::mem::replace(&mut self.buf, BytesMut::with_capacity(self.buffer_size));
        self.frames
            .send_item(BodyFrame::Data(chunk.freeze()))
            .map_err(|_| closed_error())?;
        self.sent += 1;
        Poll::Ready(Ok(()))
    }

    /// Waits until the HTTP client has taken every frame sent so far.
    fn poll_taken(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let check = |p: &Progress| {
            if p.taken.load(Ordering::Acquire) >= self.sent {
                Some(Ok(()))
            } else if p.closed.load(Ordering::Acquire) {
                Some(Err(closed_error()))
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

impl AsyncWrite for UploadSink {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(Err(closed_error()));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.buffer_size == 0 {
            ready!(this.poll_send(cx, BodyFrame::Data(Bytes::copy_from_slice(data))))?;
            return Poll::Ready(Ok(data.len()));
        }
        if this.buf.len() >= this.buffer_size {
            ready!(this.poll_send_buffer(cx))?;
        }
        let n = (this.buffer_size - this.buf.len()).min(data.len());
        this.buf.extend_from_slice(&data[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_buffer(cx))?;
        this.poll_taken(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.ended {
            ready!(this.poll_send_buffer(cx))?;
            ready!(this.poll_send(cx, BodyFrame::End))?;
            this.ended = true;
            this.frames.close();
        }
        this.poll_taken(cx)
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
    pub(crate) fn start(request: reqwest::RequestBuilder, buffer_size: usize) -> Upload {
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
                frames: PollSender::new(tx),
                buf: BytesMut::with_capacity(buffer_size),
                buffer_size,
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

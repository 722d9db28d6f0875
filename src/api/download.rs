//! The Data API download: the `GET` response body as an [`AsyncRead`] that
//! reads from the network on demand.
//!
//! On a multi-thread runtime the body is read ahead by a task of its own
//! ([`Prefetch`], at most [`PREFETCH_BYTES`]): the HTTP connection hands each
//! chunk to a task on a worker thread (usually the same one, no wake-up
//! across threads), and the reader, which may run on another thread (a
//! `block_on` caller), takes the chunks from a queue. A thread is woken only
//! when the reader waits on an empty queue, or when the queue drained to half
//! its budget while the read-ahead waited: not twice per chunk, as when the
//! reader polls the connection's body itself from another thread. On a
//! current-thread runtime every hand-over stays on one thread anyway, and the
//! reader polls the body directly.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll, Waker};

use bytes::{Buf, Bytes};
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::task::JoinHandle;

use super::{Error, Operation};

type BodyStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// How many body bytes a [`Prefetch`] holds at most before the reader takes them.
const PREFETCH_BYTES: usize = 512 * 1024;

/// Where a [`Download`] takes its body chunks from.
enum Source {
    /// The response body, polled by the reader.
    Direct(BodyStream),
    /// A read-ahead task on a worker thread.
    Prefetched(Prefetch),
}

/// True inside a multi-thread tokio runtime (where a hand-over between
/// tasks may wake another thread, and `block_in_place` is allowed).
pub(crate) fn on_multi_thread_runtime() -> bool {
    Handle::try_current().is_ok_and(|handle| handle.runtime_flavor() == RuntimeFlavor::MultiThread)
}

impl Source {
    fn new(body: BodyStream) -> Source {
        if on_multi_thread_runtime() {
            Source::Prefetched(Prefetch::start(body))
        } else {
            Source::Direct(body)
        }
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<reqwest::Result<Bytes>>> {
        match self {
            Source::Direct(body) => body.as_mut().poll_next(cx),
            Source::Prefetched(prefetch) => prefetch.poll_next(cx),
        }
    }
}

/// How the body ended, as the read-ahead task saw it.
enum End {
    Clean,
    Broken(reqwest::Error),
}

/// The queue between the read-ahead task and the reader.
#[derive(Default)]
struct Queue {
    chunks: VecDeque<Bytes>,
    /// Bytes in `chunks`.
    bytes: usize,
    /// Set once the body ended; taken by the reader after the last chunk.
    end: Option<End>,
    /// The reader, waiting on an empty queue.
    reader: Option<Waker>,
    /// The read-ahead task, waiting for room.
    prefetcher: Option<Waker>,
}

/// A task that reads the body ahead into a bounded [`Queue`]; aborted (which
/// drops the body, so the connection is closed) when the download is dropped.
struct Prefetch {
    queue: Arc<Mutex<Queue>>,
    task: JoinHandle<()>,
}

fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    // The queue stays consistent whatever panicked while holding it.
    queue
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Prefetch {
    fn start(body: BodyStream) -> Prefetch {
        let queue = Arc::new(Mutex::new(Queue::default()));
        let task = tokio::spawn(Self::run(body, queue.clone()));
        Prefetch { queue, task }
    }

    async fn run(mut body: BodyStream, queue: Arc<Mutex<Queue>>) {
        loop {
            poll_fn(|cx| {
                let mut q = lock(&queue);
                if q.bytes < PREFETCH_BYTES {
                    return Poll::Ready(());
                }
                q.prefetcher = Some(cx.waker().clone());
                Poll::Pending
            })
            .await;
            let item = body.next().await;
            let ended = !matches!(item, Some(Ok(_)));
            let reader = {
                let mut q = lock(&queue);
                match item {
                    Some(Ok(chunk)) => {
                        q.bytes += chunk.len();
                        q.chunks.push_back(chunk);
                    }
                    Some(Err(e)) => q.end = Some(End::Broken(e)),
                    None => q.end = Some(End::Clean),
                }
                q.reader.take()
            };
            if let Some(reader) = reader {
                reader.wake();
            }
            if ended {
                return;
            }
        }
    }

    /// The next chunk, `None` at the clean end, or the error that broke it off.
    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<reqwest::Result<Bytes>>> {
        let mut q = lock(&self.queue);
        if let Some(chunk) = q.chunks.pop_front() {
            q.bytes -= chunk.len();
            // Let the read-ahead go on only once half the budget is free:
            // one wake-up per 256 KiB rather than one per chunk.
            let prefetcher = if q.bytes <= PREFETCH_BYTES / 2 {
                q.prefetcher.take()
            } else {
                None
            };
            drop(q);
            if let Some(prefetcher) = prefetcher {
                prefetcher.wake();
            }
            return Poll::Ready(Some(Ok(chunk)));
        }
        match q.end.take() {
            Some(End::Clean) => Poll::Ready(None),
            Some(End::Broken(e)) => Poll::Ready(Some(Err(e))),
            None => {
                q.reader = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The body of a Data API `GET`.
///
/// Reads return EOF only when the HTTP body ended cleanly (chunked terminator
/// or full `Content-Length`). A body that breaks off (the producer died and
/// the relay aborted the response, or the connection dropped) is an
/// `UnexpectedEof` error carrying [`Error::BodyAborted`]. The network is read
/// only as fast as the caller reads: at most one HTTP chunk is held at a
/// time, or on a multi-thread runtime at most 512 KiB read ahead.
pub struct Download {
    body: Source,
    chunk: Bytes,
    done: bool,
    /// The body broke off: every further read fails too.
    aborted: bool,
    content_type: Option<String>,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download")
            .field("buffered", &self.chunk.len())
            .field("done", &self.done)
            .field("content_type", &self.content_type)
            .finish()
    }
}

impl Download {
    /// Wraps a successful response.
    pub(crate) fn new(response: reqwest::Response) -> Download {
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Download {
            body: Source::new(Box::pin(response.bytes_stream())),
            chunk: Bytes::new(),
            done: false,
            aborted: false,
            content_type,
        }
    }

    /// The `Content-Type` the producer sent (forwarded by the relay), if any.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }
}

impl AsyncRead for Download {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.aborted {
            return Poll::Ready(Err(aborted(io::Error::other(
                "the download already broke off",
            ))));
        }
        while self.chunk.is_empty() && !self.done {
            match ready!(self.body.poll_next(cx)) {
                // Empty chunks (h2 end-of-stream frames) carry nothing.
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => {
                    // Any body error means the stream is incomplete; only
                    // `None` is a clean end.
                    self.aborted = true;
                    return Poll::Ready(Err(aborted(io::Error::other(e.without_url()))));
                }
                None => self.done = true,
            }
        }
        let n = self.chunk.len().min(buf.remaining());
        buf.put_slice(&self.chunk[..n]);
        self.chunk.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// The error a broken-off download reads as.
fn aborted(source: io::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        Error::BodyAborted {
            operation: Operation::Download,
            source,
        },
    )
}

//! The Data API download: the `GET` response body as an [`AsyncRead`] that
//! reads from the network on demand.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::Stream;
use tokio::io::{AsyncRead, ReadBuf};

use super::{Error, Operation};

type BodyStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// The body of a Data API `GET`.
///
/// Reads return EOF only when the HTTP body ended cleanly (chunked terminator
/// or full `Content-Length`). A body that breaks off (the producer died and
/// the relay aborted the response, or the connection dropped) is an
/// `UnexpectedEof` error carrying [`Error::BodyAborted`]. At most one HTTP
/// chunk is held at a time: the network is read only when the caller reads.
pub struct Download {
    body: BodyStream,
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
            body: Box::pin(response.bytes_stream()),
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
            match ready!(self.body.as_mut().poll_next(cx)) {
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

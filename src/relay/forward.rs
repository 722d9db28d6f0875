//! The two response bodies of a transfer.
//!
//! - [`ForwardBody`] is the consumer's `GET` response body. It polls the
//!   producer's request body directly (no copy, no extra queue), so the
//!   consumer's TCP window is the producer's: a slow consumer slows the
//!   producer, and at most one read buffer per side is in flight. It ends
//!   cleanly only when the upload ended cleanly, and aborts (no chunked
//!   terminator / `RST_STREAM`) when the upload failed.
//! - [`StatusLines`] is the producer's `PUT` response body: status lines
//!   ([`StatusLine::encode`]), ending with `[STATE:TRANSFER_SUCCESSFUL]` only
//!   once the consumer's body ended cleanly.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::oneshot;

use super::hub::PairLease;
use super::metrics::TransferEnd;
use super::path::StreamPath;
use super::tap::{ForwardTap, TapVerdict};
use crate::protocol::StatusLine;

/// The error type of the relay's response bodies.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long the rest of an upload is still read (and discarded) after its
/// consumer left, while `[ERROR:RECEIVER_PREMATURE_DISCONNECT]` goes out.
///
/// Closing a connection whose request body is still arriving makes the
/// kernel send a reset, which can destroy the status line before the producer
/// reads it; reading on for a moment lets the producer see the line and stop.
pub(crate) const CONSUMER_GONE_LINGER: Duration = Duration::from_secs(2);

/// How a transfer ended, as the producer's status lines report it.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Upload terminated cleanly and every byte went into the consumer's
    /// response, which was ended cleanly.
    Delivered { bytes: u64 },
    /// The consumer's response was dropped before the end. `drained` fires
    /// once the rest of the upload was read or [`CONSUMER_GONE_LINGER`] passed.
    ConsumerGone {
        bytes: u64,
        drained: oneshot::Receiver<()>,
    },
    /// The upload broke off (no terminator, reset, timeout).
    ProducerFailed { bytes: u64 },
}

/// A producer's request body, held while the producer waits for a consumer.
pub(crate) struct Upload {
    body: Incoming,
    /// Chunks read ahead while waiting (see [`Upload::watch`]).
    stash: VecDeque<Bytes>,
    /// Bytes in `stash`.
    stashed: usize,
    ended: bool,
}

/// Most bytes read ahead from a producer that waits for its consumer.
pub(crate) const WAITING_READ_AHEAD: usize = 64 * 1024;

impl Upload {
    pub(crate) fn new(body: Incoming) -> Self {
        Upload {
            body,
            stash: VecDeque::new(),
            stashed: 0,
            ended: false,
        }
    }

    /// Reads ahead up to [`WAITING_READ_AHEAD`] bytes, and resolves only if
    /// the upload fails.
    ///
    /// HTTP/1.1 notices a vanished client only while the request body is being
    /// read, so a producer that waits inside hyper (TLS, h2, or a later
    /// request of a keep-alive connection; a first request on plain HTTP/1.1
    /// waits in `parking`, which watches the socket instead) is watched this
    /// way (and its path freed) instead of blocking the path until the wait
    /// times out. Past the
    /// read-ahead limit nothing more is read: backpressure holds the rest,
    /// and only the wait timeout notices a producer that vanishes then.
    /// Reading also sends `100 Continue` to a client that asked for it.
    pub(crate) async fn watch(&mut self) -> hyper::Error {
        if let Err(e) = self.read_ahead(WAITING_READ_AHEAD).await {
            return e;
        }
        std::future::pending().await
    }

    /// Reads chunks into the stash until it holds `limit` bytes or the upload
    /// ended. Cancel-safe: a chunk is either stashed or still in hyper.
    async fn read_ahead(&mut self, limit: usize) -> Result<(), hyper::Error> {
        while self.stashed < limit && !self.ended {
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            self.stashed += data.len();
                            self.stash.push_back(data);
                        }
                    }
                }
                None => self.ended = true,
                Some(Err(e)) => return Err(e),
            }
        }
        Ok(())
    }

    /// The next non-empty data chunk; `None` at a clean end. Trailers and
    /// empty frames (h2 sends an empty END_STREAM frame) are skipped.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, hyper::Error>>> {
        if let Some(stashed) = self.stash.pop_front() {
            self.stashed -= stashed.len();
            return Poll::Ready(Some(Ok(stashed)));
        }
        loop {
            if self.ended {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut self.body).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => return Poll::Ready(Some(Ok(data))),
                    _ => continue,
                },
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => self.ended = true,
            }
        }
    }

    /// Reads the rest of the upload and throws it away; Ok at a clean end.
    async fn drain(mut self) -> Result<u64, hyper::Error> {
        let mut bytes = 0u64;
        while let Some(chunk) = std::future::poll_fn(|cx| self.poll_chunk(cx)).await {
            bytes += chunk?.len() as u64;
        }
        Ok(bytes)
    }
}

/// The consumer's response body: the producer's upload, chunk by chunk.
pub(crate) struct ForwardBody {
    upload: Option<Upload>,
    path: StreamPath,
    tap: Option<Arc<dyn ForwardTap>>,
    lease: Option<PairLease>,
    report: Option<oneshot::Sender<Outcome>>,
    /// Fired once the upload yields its first chunk, its end or an error.
    flowing: Option<oneshot::Sender<()>>,
    forwarded: u64,
    /// The upload's error, held back for one poll (see [`ForwardBody::poll_frame`]).
    broken: Option<hyper::Error>,
}

impl ForwardBody {
    pub(crate) fn new(
        upload: Upload,
        path: StreamPath,
        tap: Option<Arc<dyn ForwardTap>>,
        lease: PairLease,
        report: oneshot::Sender<Outcome>,
        flowing: oneshot::Sender<()>,
    ) -> Self {
        ForwardBody {
            upload: Some(upload),
            path,
            tap,
            lease: Some(lease),
            report: Some(report),
            flowing: Some(flowing),
            forwarded: 0,
            broken: None,
        }
    }

    /// Undoes a meeting that was never delivered (the consumer left in
    /// between): frees the pair and gives the upload back, untouched.
    pub(crate) fn into_upload(mut self) -> Upload {
        self.report = None;
        self.flowing = None;
        self.lease = None;
        self.upload
            .take()
            .expect("an undelivered body still holds its upload")
    }

    /// Ends the transfer: frees the path first (so the same pair can start
    /// again on it at once), then tells the producer side.
    fn finish(&mut self, outcome: Outcome) {
        self.upload = None;
        if let Some(lease) = self.lease.take() {
            lease.ended(match outcome {
                Outcome::Delivered { .. } => TransferEnd::Delivered,
                Outcome::ConsumerGone { .. } => TransferEnd::ConsumerGone,
                Outcome::ProducerFailed { .. } => TransferEnd::ProducerFailed,
            });
        }
        if let Some(report) = self.report.take() {
            let _ = report.send(outcome);
        }
    }

    /// Ends the transfer as failed by its producer, after what was forwarded.
    fn producer_failed(&mut self) {
        let bytes = self.forwarded;
        self.finish(Outcome::ProducerFailed { bytes });
    }

    /// [`TapVerdict::EndStream`]: end the consumer's body cleanly, drain the
    /// upload in the background and report success to the producer.
    fn cut(&mut self) {
        if let Some(lease) = self.lease.take() {
            lease.ended(TransferEnd::EndedByTap);
        }
        let (Some(upload), Some(report)) = (self.upload.take(), self.report.take()) else {
            return;
        };
        let sent = self.forwarded;
        tokio::spawn(async move {
            let outcome = match upload.drain().await {
                Ok(_) => Outcome::Delivered { bytes: sent },
                Err(_) => Outcome::ProducerFailed { bytes: sent },
            };
            let _ = report.send(outcome);
        });
    }
}

impl Body for ForwardBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(e) = this.broken.take() {
            this.producer_failed();
            // An Err frame makes hyper abort the response: no chunked
            // terminator on HTTP/1.1, RST_STREAM on h2.
            return Poll::Ready(Some(Err(Box::new(e))));
        }
        loop {
            let Some(upload) = this.upload.as_mut() else {
                return Poll::Ready(None);
            };
            let next = ready!(upload.poll_chunk(cx));
            if let Some(flowing) = this.flowing.take() {
                let _ = flowing.send(());
            }
            let data = match next {
                Some(Ok(data)) => data,
                Some(Err(e)) => {
                    // Abort one poll later. hyper's HTTP/1.1 connection
                    // buffers the response head and the chunks it was given
                    // until the body is pending, and an error drops that
                    // buffer unsent: a producer that broke off at once would
                    // leave its consumer with a closed connection and no
                    // response ("could not connect") instead of a stream that
                    // broke off. Pending lets hyper flush first.
                    this.broken = Some(e);
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                None => {
                    let bytes = this.forwarded;
                    this.finish(Outcome::Delivered { bytes });
                    return Poll::Ready(None);
                }
            };
            let data = match &this.tap {
                None => data,
                Some(tap) => {
                    let mut chunk = BytesMut::from(data);
                    match tap.forward(this.path.as_str(), &mut chunk) {
                        TapVerdict::Forward => chunk.freeze(),
                        TapVerdict::EndStream => {
                            this.cut();
                            return Poll::Ready(None);
                        }
                    }
                }
            };
            if data.is_empty() {
                continue;
            }
            this.forwarded += data.len() as u64;
            if let Some(lease) = &this.lease {
                lease.forwarded(data.len());
            }
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
    }

    fn is_end_stream(&self) -> bool {
        self.upload.is_none()
    }
}

impl Drop for ForwardBody {
    fn drop(&mut self) {
        if self.report.is_none() {
            return;
        }
        if self.broken.take().is_some() {
            // Dropped with the upload's error held back: the producer failed.
            self.producer_failed();
            return;
        }
        // Dropped before its end: the consumer's connection went away.
        let (done, drained) = oneshot::channel();
        if let (Some(upload), Ok(runtime)) =
            (self.upload.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(async move {
                let _ = tokio::time::timeout(CONSUMER_GONE_LINGER, upload.drain()).await;
                let _ = done.send(());
            });
        }
        // Without a runtime `done` is dropped here, which ends the linger at once.
        let bytes = self.forwarded;
        self.finish(Outcome::ConsumerGone { bytes, drained });
    }
}

enum StatusState {
    Greeting(oneshot::Receiver<Outcome>),
    Awaiting(oneshot::Receiver<Outcome>),
    /// The error line went out; the response ends once the upload is drained.
    Lingering(oneshot::Receiver<()>),
    Done,
}

/// The producer's response body: `[STATE:CONNECTED]`, then one final line.
pub(crate) struct StatusLines {
    state: StatusState,
}

impl StatusLines {
    pub(crate) fn new(outcome: oneshot::Receiver<Outcome>) -> Self {
        StatusLines {
            state: StatusState::Greeting(outcome),
        }
    }

    /// Status lines for a transfer that has already ended (`Err`: it ended
    /// without an outcome), all ready at once.
    pub(crate) fn settled(outcome: Result<Outcome, oneshot::error::RecvError>) -> Self {
        let (report, known) = oneshot::channel();
        if let Ok(outcome) = outcome {
            let _ = report.send(outcome);
        }
        StatusLines::new(known)
    }
}

fn line(status: StatusLine) -> Frame<Bytes> {
    Frame::data(Bytes::from(status.encode()))
}

impl Body for StatusLines {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        match std::mem::replace(&mut this.state, StatusState::Done) {
            StatusState::Greeting(rx) => {
                this.state = StatusState::Awaiting(rx);
                Poll::Ready(Some(Ok(line(StatusLine::connected()))))
            }
            StatusState::Awaiting(mut rx) => match Pin::new(&mut rx).poll(cx) {
                Poll::Pending => {
                    this.state = StatusState::Awaiting(rx);
                    Poll::Pending
                }
                Poll::Ready(Ok(Outcome::Delivered { bytes })) => {
                    tracing::info!(bytes, "transfer complete");
                    Poll::Ready(Some(Ok(line(StatusLine::transfer_successful()))))
                }
                Poll::Ready(Ok(Outcome::ConsumerGone { bytes, drained })) => {
                    tracing::info!(bytes, "consumer left before the end");
                    this.state = StatusState::Lingering(drained);
                    Poll::Ready(Some(Ok(line(StatusLine::receiver_premature_disconnect()))))
                }
                Poll::Ready(Ok(Outcome::ProducerFailed { bytes })) => {
                    tracing::info!(bytes, "upload broke off; consumer aborted");
                    Poll::Ready(Some(Err("upload ended without its terminator".into())))
                }
                Poll::Ready(Err(_)) => {
                    Poll::Ready(Some(Err("transfer ended without an outcome".into())))
                }
            },
            StatusState::Lingering(mut drained) => match Pin::new(&mut drained).poll(cx) {
                Poll::Pending => {
                    this.state = StatusState::Lingering(drained);
                    Poll::Pending
                }
                Poll::Ready(_) => Poll::Ready(None),
            },
            StatusState::Done => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.state, StatusState::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines of the producer's status body for a transfer that ended
    /// with `outcome`, read back with the client's decoder.
    async fn status_lines(outcome: Outcome) -> Vec<StatusLine> {
        let (report, known) = oneshot::channel();
        report.send(outcome).unwrap();
        let body = StatusLines::new(known).collect().await.unwrap().to_bytes();
        let text = std::str::from_utf8(&body).unwrap();
        assert!(text.ends_with('\n'), "{text:?}");
        text.lines().map(StatusLine::parse).collect()
    }

    #[tokio::test]
    async fn the_status_body_reads_as_the_client_expects() {
        let delivered = status_lines(Outcome::Delivered { bytes: 5 }).await;
        assert_eq!(
            delivered,
            [StatusLine::connected(), StatusLine::transfer_successful()]
        );
        assert!(delivered.last().unwrap().is_success());

        // The rest of the upload was drained: the body ends after the line.
        let (drain, drained) = oneshot::channel();
        drain.send(()).unwrap();
        let gone = status_lines(Outcome::ConsumerGone { bytes: 5, drained }).await;
        assert_eq!(
            gone,
            [
                StatusLine::connected(),
                StatusLine::receiver_premature_disconnect()
            ]
        );
    }
}

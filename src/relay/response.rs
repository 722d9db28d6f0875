//! The relay's response types and the small answers every handler shares.
//!
//! Below the handlers ([`super::connect`], [`super::data`]) and the router
//! ([`super::service`]): it imports none of them.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};

use super::forward::BoxError;

/// Every response body the relay sends.
pub(crate) type RelayBody = http_body_util::combinators::BoxBody<Bytes, BoxError>;
/// Every response the relay sends.
pub(crate) type RelayResponse = Response<RelayBody>;

/// A body that keeps `held` (a quota slot, an open request) alive until the
/// body is dropped: for a transfer, until its last byte went out.
pub(crate) struct Holding<B, G> {
    body: B,
    _held: G,
}

impl<B, G> Holding<B, G> {
    pub(crate) fn new(body: B, held: G) -> Self {
        Holding { body, _held: held }
    }
}

impl<B: Body + Unpin, G: Unpin> Body for Holding<B, G> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A one-line `text/plain` answer (errors name the problem; never a token).
pub(crate) fn text(status: StatusCode, message: impl std::fmt::Display) -> RelayResponse {
    let mut response = Response::new(boxed(Full::new(Bytes::from(format!("{message}\n")))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Boxes a body into [`RelayBody`] (spelled out: `.boxed()` is ambiguous with
/// `futures_util::StreamExt` in scope).
pub(crate) fn boxed<B>(body: B) -> RelayBody
where
    B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    BodyExt::boxed(BodyExt::map_err(body, Into::into))
}

/// `405` with the methods the path takes (`allow`, also the `Allow` header).
pub(crate) fn method_not_allowed(allow: &'static str) -> RelayResponse {
    let mut response = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed; use {allow}"),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// `503`: the relay tracks its maximum number of streams.
pub(crate) fn stream_limit() -> RelayResponse {
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "relay is at its stream limit; retry later",
    )
}

/// `503`: the relay is shutting down and takes no new waiters.
pub(crate) fn shutting_down() -> RelayResponse {
    text(StatusCode::SERVICE_UNAVAILABLE, "relay is shutting down")
}

/// `504`: no `peer` (`"producer"`, `"consumer"`) came within `wait`.
pub(crate) fn timed_out(peer: &str, wait: Duration) -> RelayResponse {
    text(
        StatusCode::GATEWAY_TIMEOUT,
        format!("no {peer} arrived within {} s", wait.as_secs_f64()),
    )
}

//! Request routing, authorization and the small answers shared by the handlers.
//!
//! | request | handler |
//! |---|---|
//! | `GET /healthz` | `200 ok` |
//! | `GET /v0/<path>?mode=…` | Connect API ([`super::connect`]) |
//! | `PUT`/`POST /data/<path>` | producer ([`super::data`]) |
//! | `GET /data/<path>` | consumer ([`super::data`]) |
//!
//! `GET /metrics` is served only on the metrics listener ([`route_metrics`]).
//!
//! The three waiting kinds are admitted here, once: token (401/403), then
//! the stream quota (429, [`super::quota`]); the quota slot is then held
//! until the response body is dropped. They may have waited already, before
//! hyper took the connection ([`super::parking`]); their handlers then only
//! answer.

use std::convert::Infallible;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use super::connections::ClientKey;
use super::forward::BoxError;
use super::hub::{Gate, Hub};
use super::parking::Parked;
use super::path::{PathError, StreamPath};
use super::quota::{Holder, QuotaSlot};
use super::rendezvous::ConnectMode;
use super::tokens::{Access, Denied};

/// Every response body the relay sends.
pub(crate) type RelayBody = http_body_util::combinators::BoxBody<Bytes, BoxError>;
/// Every response the relay sends.
pub(crate) type RelayResponse = Response<RelayBody>;

/// URL prefix of the Connect API.
pub const CONNECT_PREFIX: &str = "/v0";
/// URL prefix of the Data API.
pub const DATA_PREFIX: &str = "/data";
/// Health check path.
pub const HEALTH_PATH: &str = "/healthz";
/// Prometheus metrics path (on the metrics listener only).
pub const METRICS_PATH: &str = "/metrics";

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

/// Where a request goes, by method and path alone.
pub(crate) enum Target {
    /// `GET`/`HEAD /healthz`.
    Health,
    /// `GET /v0/<path>`: a Connect waiter.
    Connect(StreamPath),
    /// `PUT`/`POST /data/<path>`: a producer.
    Produce(StreamPath),
    /// `GET /data/<path>`: a consumer.
    Consume(StreamPath),
    /// An API path that is not a valid stream path.
    BadPath(PathError),
    /// A known path with a method it does not take (the `Allow` value).
    WrongMethod(&'static str),
    /// Anything else.
    NotFound,
}

impl Target {
    /// Routes `req` (shared by [`route`] and the parking of waiting requests
    /// before hyper, so both always agree).
    pub(crate) fn of<B>(req: &Request<B>) -> Target {
        let path = req.uri().path();
        let method = req.method();
        if path == HEALTH_PATH {
            match *method {
                Method::GET | Method::HEAD => Target::Health,
                _ => Target::WrongMethod("GET"),
            }
        } else if let Some(rest) = api_rest(path, CONNECT_PREFIX) {
            match StreamPath::parse(rest) {
                Err(e) => Target::BadPath(e),
                Ok(stream) if method == Method::GET => Target::Connect(stream),
                Ok(_) => Target::WrongMethod("GET"),
            }
        } else if let Some(rest) = api_rest(path, DATA_PREFIX) {
            match StreamPath::parse(rest) {
                Err(e) => Target::BadPath(e),
                Ok(stream) => match *method {
                    Method::PUT | Method::POST => Target::Produce(stream),
                    Method::GET => Target::Consume(stream),
                    _ => Target::WrongMethod("GET, PUT, POST"),
                },
            }
        } else {
            Target::NotFound
        }
    }

    /// The path and access of a request that waits or transfers (Connect
    /// with a valid mode, producer, consumer): what [`admit`] checks.
    pub(crate) fn waiting<B>(&self, req: &Request<B>) -> Option<(&StreamPath, Access)> {
        match self {
            Target::Connect(path) => {
                let mode = ConnectMode::from_query(query_param(req, "mode")?.as_str())?;
                Some((path, super::connect::access_for(mode.role())))
            }
            Target::Produce(path) => Some((path, Access::Write)),
            Target::Consume(path) => Some((path, Access::Read)),
            _ => None,
        }
    }
}

/// The hyper service of the public listener: routes one request from
/// `peer`. `parked` is the end of the wait this request already went through
/// before hyper took its connection (see [`super::parking`]), with its quota
/// slot; it is dropped if the request is not the waiter it belongs to. Each
/// handler future is boxed so that an idle connection carries only the small
/// routing future, not the largest handler's state.
pub(crate) async fn route(
    hub: Arc<Hub>,
    req: Request<Incoming>,
    parked: Option<Parked>,
    peer: IpAddr,
) -> Result<RelayResponse, Infallible> {
    let counters = Arc::clone(&hub);
    let target = Target::of(&req);
    let (waited, slot) = match parked {
        Some(Parked { waited, slot }) => (Some(waited), Some(slot)),
        None => (None, None),
    };
    let slot = match (target.waiting(&req), slot) {
        (None, _) => None,
        (Some(_), Some(slot)) => Some(slot),
        (Some((path, access)), None) => match admit(&hub, &req, path, access, peer) {
            Ok(slot) => Some(slot),
            Err(refused) => {
                counters.metrics.responded(refused.status());
                return Ok(*refused);
            }
        },
    };
    let response = match (target, waited) {
        (Target::Health, _) => text(StatusCode::OK, "ok"),
        (Target::Connect(stream), waited) => {
            let waited = waited.and_then(|w| w.into_connect());
            Box::pin(super::connect::handle(hub, stream, req, waited)).await
        }
        (Target::Produce(stream), waited) => {
            let waited = waited.and_then(|w| w.into_producer());
            Box::pin(super::data::produce(hub, stream, req, waited)).await
        }
        (Target::Consume(stream), waited) => {
            let waited = waited.and_then(|w| w.into_consumer());
            Box::pin(super::data::consume(hub, stream, req, waited)).await
        }
        (Target::BadPath(e), _) => text(StatusCode::BAD_REQUEST, e),
        (Target::WrongMethod(allow), _) => method_not_allowed(allow),
        (Target::NotFound, _) => text(
            StatusCode::NOT_FOUND,
            format!("not found: use {CONNECT_PREFIX}/<stream path> or {DATA_PREFIX}/<stream path>"),
        ),
    };
    counters.metrics.responded(response.status());
    Ok(match slot {
        Some(slot) => response.map(|body| boxed(Holding::new(body, slot))),
        None => response,
    })
}

/// The hyper service of the metrics listener: `GET /metrics` and
/// `GET /healthz`, nothing else.
pub(crate) async fn route_metrics(
    hub: Arc<Hub>,
    req: Request<Incoming>,
) -> Result<RelayResponse, Infallible> {
    let response = match (req.uri().path(), req.method()) {
        (METRICS_PATH, &Method::GET) => metrics_response(&hub),
        (HEALTH_PATH, &Method::GET | &Method::HEAD) => text(StatusCode::OK, "ok"),
        (METRICS_PATH | HEALTH_PATH, _) => method_not_allowed("GET"),
        _ => text(
            StatusCode::NOT_FOUND,
            format!("not found: this listener serves {METRICS_PATH} and {HEALTH_PATH}"),
        ),
    };
    Ok(response)
}

/// `GET /metrics`: counts only (no paths, tokens or payload).
fn metrics_response(hub: &Hub) -> RelayResponse {
    let text = hub.metrics.render(hub.connections.open());
    let mut response = Response::new(boxed(Full::new(Bytes::from(text))));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// `"/v0/a/b"` with prefix `"/v0"` gives `"/a/b"`; a different first segment gives `None`.
fn api_rest<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

fn method_not_allowed(allow: &'static str) -> RelayResponse {
    let mut response = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method not allowed; use {allow}"),
    );
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

/// The value of query parameter `name`, percent-decoded.
pub(crate) fn query_param<B>(req: &Request<B>, name: &str) -> Option<String> {
    let query = req.uri().query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The bearer token: `Authorization: Bearer <token>`, else `?accesstoken=`.
fn bearer_token<B>(req: &Request<B>) -> Option<String> {
    let from_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        })
        .filter(|t| !t.is_empty());
    from_header.or_else(|| query_param(req, "accesstoken"))
}

/// The client a request comes from: its peer address, or, when the peer is
/// a trusted proxy, the last `X-Forwarded-For` entry (the address that proxy
/// saw; earlier entries are the client's own word).
pub(crate) fn client_of<B>(hub: &Hub, req: &Request<B>, peer: IpAddr) -> IpAddr {
    if !hub.connections.is_trusted(peer) {
        return peer;
    }
    req.headers()
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|last| last.trim().parse().ok())
        .unwrap_or(peer)
}

/// Admits a request that waits or transfers on `path` with `access`: checks
/// its token (401, 403), then takes a slot of its holder's stream quota
/// (429): the token's, or on an open relay the client address's.
pub(crate) fn admit<B>(
    hub: &Hub,
    req: &Request<B>,
    path: &StreamPath,
    access: Access,
    peer: IpAddr,
) -> Result<QuotaSlot, Box<RelayResponse>> {
    let default = hub.settings.stream_quota;
    let (holder, limit) = match &hub.gate {
        Gate::Open => {
            let client = ClientKey::of(client_of(hub, req, peer));
            (Holder::Client(client), default)
        }
        Gate::Tokens(store) => {
            let token = bearer_token(req);
            match store.grant(token.as_deref(), path, access, SystemTime::now()) {
                Ok(grant) => (
                    Holder::Token(grant.digest),
                    grant.max_streams.unwrap_or(default),
                ),
                Err(denied) => return Err(Box::new(refused(path, denied, access))),
            }
        }
    };
    hub.quota.take(holder, path, limit).map_err(|over| {
        tracing::info!(path = %path, limit = over.limit, "request over its stream quota");
        Box::new(text(StatusCode::TOO_MANY_REQUESTS, over))
    })
}

/// The answer to a request whose token was refused (401 or 403).
fn refused(path: &StreamPath, denied: Denied, access: Access) -> RelayResponse {
    tracing::info!(path = %path, reason = %denied, "request refused");
    let mut response = text(denied.status(), denied);
    if denied != Denied::Forbidden(access) {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"zebrastream\""),
        );
    }
    response
}

/// `<base>/data/<path>`: `base` is the configured public URL, else
/// `http(s)://<Host>` of the request.
pub(crate) fn data_url<B>(hub: &Hub, req: &Request<B>, path: &StreamPath) -> Option<String> {
    let base = match &hub.settings.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => {
            let authority = match req.uri().authority() {
                Some(a) => a.clone(),
                None => req
                    .headers()
                    .get(header::HOST)?
                    .to_str()
                    .ok()?
                    .parse::<http::uri::Authority>()
                    .ok()?,
            };
            let scheme = if hub.settings.tls { "https" } else { "http" };
            format!("{scheme}://{authority}")
        }
    };
    Some(format!("{base}{DATA_PREFIX}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_prefix_split() {
        assert_eq!(api_rest("/v0/a/b", "/v0"), Some("/a/b"));
        assert_eq!(api_rest("/v0", "/v0"), Some(""));
        assert_eq!(api_rest("/v00/a", "/v0"), None);
        assert_eq!(api_rest("/data/a", "/v0"), None);
    }

    #[test]
    fn bearer_from_header_or_query() {
        let req = Request::builder()
            .uri("/v0/a?mode=await-reader")
            .header("authorization", "bearer  abc ")
            .body(())
            .unwrap();
        assert_eq!(bearer_token(&req).as_deref(), Some("abc"));
        let req = Request::builder()
            .uri("/v0/a?accesstoken=x%2By")
            .body(())
            .unwrap();
        assert_eq!(bearer_token(&req).as_deref(), Some("x+y"));
        let req = Request::builder().uri("/v0/a").body(()).unwrap();
        assert_eq!(bearer_token(&req), None);
    }
}

//! Request routing: the router on top, the handlers below it.
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
//! The three waiting kinds are admitted here, once ([`super::admission`]):
//! token (401/403), then the stream quota (429, [`super::quota`]); the quota
//! slot is then held until the response body is dropped. They may have
//! waited already, before hyper took the connection ([`super::parking`]);
//! their handlers then only answer.
//!
//! Nothing below imports this module: the handlers build their answers with
//! [`super::response`] and route with [`super::target`].

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use super::admission::admit;
use super::hub::Hub;
use super::parking::Parked;
use super::response::{boxed, method_not_allowed, text, Holding, RelayResponse};
use super::target::{Target, HEALTH_PATH};
use crate::protocol::{CONNECT_PREFIX, DATA_PREFIX};

/// Prometheus metrics path (on the metrics listener only).
pub const METRICS_PATH: &str = "/metrics";

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

//! The Data API: producer `PUT`/`POST` and consumer `GET` on `/data/<path>`.
//!
//! Whichever arrives first waits (at most the configured data wait); the
//! second pairs with it. The producer's response streams status lines while
//! its body is forwarded straight into the consumer's response.

use std::sync::Arc;

use http::{header, HeaderName, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::sync::oneshot;

use super::connect::access_for;
use super::forward::{ForwardBody, StatusLines, Upload};
use super::hub::{Hub, Meeting};
use super::path::StreamPath;
use super::rendezvous::{Arrival, Role};
use super::service::{boxed, refusal, text, RelayResponse};

/// Producer headers passed on to the consumer. Nothing else passes: in
/// particular not `Content-Length` or `Content-Encoding` (the consumer's
/// response is always chunked and never re-encoded).
pub const FORWARDED_HEADERS: [HeaderName; 2] = [header::CONTENT_TYPE, header::CONTENT_DISPOSITION];

/// How often pairing is retried when the other side vanished mid-handshake.
const PAIRING_ATTEMPTS: usize = 4;

fn busy(role: Role) -> RelayResponse {
    let message = match role {
        Role::Producer => "a producer is already connected to this path",
        Role::Consumer => "a consumer is already connected to this path",
    };
    text(StatusCode::CONFLICT, message)
}

fn full() -> RelayResponse {
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "relay is at its stream limit; retry later",
    )
}

fn shutting_down() -> RelayResponse {
    text(StatusCode::SERVICE_UNAVAILABLE, "relay is shutting down")
}

fn timed_out(hub: &Hub, role: Role) -> RelayResponse {
    let other = match role {
        Role::Producer => "consumer",
        Role::Consumer => "producer",
    };
    text(
        StatusCode::GATEWAY_TIMEOUT,
        format!(
            "no {other} arrived within {} s",
            hub.settings.data_wait.as_secs_f64()
        ),
    )
}

/// `PUT`/`POST /data/<path>`: the producer.
pub(crate) async fn produce(
    hub: Arc<Hub>,
    path: StreamPath,
    req: Request<Incoming>,
) -> RelayResponse {
    if let Some(refused) = refusal(&hub, &req, &path, access_for(Role::Producer)) {
        return refused;
    }
    let headers: Vec<(HeaderName, HeaderValue)> = FORWARDED_HEADERS
        .iter()
        .filter_map(|name| Some((name.clone(), req.headers().get(name)?.clone())))
        .collect();
    let after_upload = hub.settings.upload_response.defers(req.headers());
    let mut upload = Upload::new(req.into_body());
    for _ in 0..PAIRING_ATTEMPTS {
        let (inbox, delivered) = oneshot::channel();
        let arrival = hub.table().arrive_producer(&path, inbox);
        let (consumer, lease) = match arrival {
            Arrival::Busy(_) => return busy(Role::Producer),
            Arrival::Full(_) => return full(),
            Arrival::Paired { theirs, .. } => (theirs, hub.lease(&path)),
            Arrival::Waiting { ticket, wake } => {
                if let Some(waiter) = wake {
                    let _ = waiter.send(());
                }
                let _guard = hub.wait_guard(&path, ticket);
                tokio::select! {
                    got = delivered => match got {
                        Ok(pair) => pair,
                        // The consumer took our inbox and vanished: its lease
                        // freed the pair, so start over.
                        Err(_) => continue,
                    },
                    error = upload.watch() => {
                        tracing::debug!(path = %path, %error, "producer left while waiting");
                        return text(StatusCode::BAD_REQUEST, "upload broke off while waiting for a consumer");
                    }
                    _ = tokio::time::sleep(hub.settings.data_wait) => return timed_out(&hub, Role::Producer),
                    _ = hub.shutting_down() => return shutting_down(),
                }
            }
        };
        let (report, outcome) = oneshot::channel();
        let (flowing, started) = oneshot::channel();
        let body = ForwardBody::new(
            upload,
            path.clone(),
            hub.tap.clone(),
            lease,
            report,
            flowing,
        );
        let meeting = Meeting {
            headers: headers.clone(),
            body,
        };
        match consumer.send(meeting) {
            Ok(()) => {
                // The consumer's connection now reads the upload. Answer the
                // producer only once bytes flow: reading the body sends
                // `100 Continue`, which hyper can do only before the final
                // response head (curl would otherwise first wait out its
                // expect timeout). An Err means the body is gone already;
                // the status lines then tell how.
                tokio::select! {
                    _ = started => {}
                    _ = hub.shutting_down() => {}
                }
                tracing::info!(path = %path, "transfer started");
                let lines = if after_upload {
                    // Behind a proxy that stops forwarding the body once the
                    // response started (nginx): answer when the transfer ended.
                    StatusLines::settled(outcome.await)
                } else {
                    StatusLines::new(outcome)
                };
                let mut response = Response::new(boxed(lines));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                return response;
            }
            // The consumer left between pairing and delivery: dropping the
            // lease (inside the body) frees the pair; try again.
            Err(meeting) => upload = meeting.body.into_upload(),
        }
    }
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "could not pair: consumers kept leaving; retry",
    )
}

/// `GET /data/<path>`: the consumer.
pub(crate) async fn consume(
    hub: Arc<Hub>,
    path: StreamPath,
    req: Request<Incoming>,
) -> RelayResponse {
    if let Some(refused) = refusal(&hub, &req, &path, access_for(Role::Consumer)) {
        return refused;
    }
    drop(req);
    for _ in 0..PAIRING_ATTEMPTS {
        let (inbox, meeting) = oneshot::channel();
        let arrival = hub.table().arrive_consumer(&path, inbox);
        let meeting = match arrival {
            Arrival::Busy(_) => return busy(Role::Consumer),
            Arrival::Full(_) => return full(),
            Arrival::Paired { theirs, mine } => {
                // The producer is parked: hand it our inbox, then wait for
                // its body (it answers at once unless it is gone).
                if theirs.send((mine, hub.lease(&path))).is_err() {
                    continue;
                }
                tokio::select! {
                    got = meeting => got,
                    _ = hub.shutting_down() => return shutting_down(),
                }
            }
            Arrival::Waiting { ticket, wake } => {
                if let Some(waiter) = wake {
                    let _ = waiter.send(());
                }
                let _guard = hub.wait_guard(&path, ticket);
                tokio::select! {
                    got = meeting => got,
                    _ = tokio::time::sleep(hub.settings.data_wait) => return timed_out(&hub, Role::Consumer),
                    _ = hub.shutting_down() => return shutting_down(),
                }
            }
        };
        // Err: the producer vanished between pairing and delivery; start over.
        if let Ok(Meeting { headers, body }) = meeting {
            let mut response = Response::new(boxed(body));
            let out = response.headers_mut();
            out.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            for (name, value) in headers {
                out.insert(name, value);
            }
            out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            out.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            return response;
        }
    }
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        "could not pair: producers kept leaving; retry",
    )
}

//! The Data API: producer `PUT`/`POST` and consumer `GET` on `/data/<path>`.
//!
//! Whichever arrives first waits (at most the configured data wait); the
//! second pairs with it. The producer's response streams status lines while
//! its body is forwarded straight into the consumer's response.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;

use http::{header, HeaderName, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio::sync::oneshot;

use super::forward::{ForwardBody, StatusLines, Upload};
use super::hub::{ConsumerInbox, Hub, Meeting, PairLease};
use super::path::StreamPath;
use super::rendezvous::{Arrival, Role};
use super::response::{boxed, shutting_down, stream_limit, text, timed_out, RelayResponse};

/// Producer headers passed on to the consumer. Nothing else passes: in
/// particular not `Content-Length` or `Content-Encoding` (the consumer's
/// response is always chunked and never re-encoded).
pub(crate) const FORWARDED_HEADERS: [HeaderName; 2] =
    [header::CONTENT_TYPE, header::CONTENT_DISPOSITION];

/// How often pairing is retried when the other side vanished mid-handshake.
const PAIRING_ATTEMPTS: usize = 4;

fn busy(role: Role) -> RelayResponse {
    let message = format!("a {} is already connected to this path", role.name());
    text(StatusCode::CONFLICT, message)
}

/// How a producer's wait ended: paired with a consumer (its inbox and the
/// pair's lease), or the answer to send instead (409, 503, 504, …).
pub(crate) type ProducerPairing = Result<(ConsumerInbox, PairLease), RelayResponse>;
/// How a consumer's wait ended: its producer's [`Meeting`], or the answer to
/// send instead.
pub(crate) type ConsumerPairing = Result<Meeting, RelayResponse>;

/// Enters the producer into the table and waits (at most the data wait) for
/// a consumer. `broke` resolves if the upload fails meanwhile (on HTTP/1.1
/// before hyper, the parking code watches the socket instead and passes a
/// future that never resolves).
pub(crate) async fn wait_for_consumer<F>(
    hub: &Arc<Hub>,
    path: &StreamPath,
    broke: F,
) -> ProducerPairing
where
    F: Future<Output = hyper::Error>,
{
    let mut broke = pin!(broke);
    for _ in 0..PAIRING_ATTEMPTS {
        let (inbox, delivered) = oneshot::channel();
        let arrival = hub.table().arrive_producer(path, inbox);
        match arrival {
            Arrival::Busy(_) => return Err(busy(Role::Producer)),
            Arrival::Full(_) => return Err(stream_limit()),
            Arrival::Paired { theirs, .. } => return Ok((theirs, hub.lease(path))),
            Arrival::Waiting { waiter, wake } => {
                if let Some(waiter) = wake {
                    let _ = waiter.send(());
                }
                let _guard = hub.wait_guard(path, waiter);
                tokio::select! {
                    // A consumer that paired wins over a break-off noticed at
                    // the same moment: it then sees the upload break off
                    // instead of waiting on for another producer.
                    biased;
                    got = delivered => match got {
                        Ok(pair) => return Ok(pair),
                        // The consumer took our inbox and vanished: its lease
                        // freed the pair, so start over.
                        Err(_) => continue,
                    },
                    error = &mut broke => {
                        tracing::debug!(path = %path, %error, "producer left while waiting");
                        return Err(text(StatusCode::BAD_REQUEST, "upload broke off while waiting for a consumer"));
                    }
                    _ = tokio::time::sleep(hub.settings.data_wait) => return Err(timed_out(Role::Consumer.name(), hub.settings.data_wait)),
                    _ = hub.shutting_down() => return Err(shutting_down()),
                }
            }
        }
    }
    Err(could_not_pair(Role::Producer))
}

/// `PUT`/`POST /data/<path>`: the producer, admitted. `parked` is the end
/// of a wait that already ran before hyper took the connection.
pub(crate) async fn produce(
    hub: Arc<Hub>,
    path: StreamPath,
    req: Request<Incoming>,
    parked: Option<ProducerPairing>,
) -> RelayResponse {
    let headers: Vec<(HeaderName, HeaderValue)> = FORWARDED_HEADERS
        .iter()
        .filter_map(|name| Some((name.clone(), req.headers().get(name)?.clone())))
        .collect();
    let after_upload = hub.settings.upload_response.defers(req.headers());
    let mut upload = Upload::new(req.into_body());
    let mut parked = parked;
    for _ in 0..PAIRING_ATTEMPTS {
        let pairing = match parked.take() {
            Some(pairing) => pairing,
            None => wait_for_consumer(&hub, &path, upload.watch()).await,
        };
        let (consumer, lease) = match pairing {
            Ok(pair) => pair,
            Err(answer) => return answer,
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
    could_not_pair(Role::Producer)
}

/// Enters the consumer into the table and waits (at most the data wait) for
/// its producer's [`Meeting`].
pub(crate) async fn wait_for_producer(hub: &Arc<Hub>, path: &StreamPath) -> ConsumerPairing {
    for _ in 0..PAIRING_ATTEMPTS {
        let (inbox, meeting) = oneshot::channel();
        let arrival = hub.table().arrive_consumer(path, inbox);
        let meeting = match arrival {
            Arrival::Busy(_) => return Err(busy(Role::Consumer)),
            Arrival::Full(_) => return Err(stream_limit()),
            Arrival::Paired { theirs, mine } => {
                // The producer is parked: hand it our inbox, then wait for
                // its body (it answers at once unless it is gone).
                if theirs.send((mine, hub.lease(path))).is_err() {
                    continue;
                }
                tokio::select! {
                    got = meeting => got,
                    _ = hub.shutting_down() => return Err(shutting_down()),
                }
            }
            Arrival::Waiting { waiter, wake } => {
                if let Some(waiter) = wake {
                    let _ = waiter.send(());
                }
                let _guard = hub.wait_guard(path, waiter);
                tokio::select! {
                    got = meeting => got,
                    _ = tokio::time::sleep(hub.settings.data_wait) => return Err(timed_out(Role::Producer.name(), hub.settings.data_wait)),
                    _ = hub.shutting_down() => return Err(shutting_down()),
                }
            }
        };
        // Err: the producer vanished between pairing and delivery; start over.
        if let Ok(meeting) = meeting {
            return Ok(meeting);
        }
    }
    Err(could_not_pair(Role::Consumer))
}

/// `GET /data/<path>`: the consumer, admitted. `parked` is the end of a
/// wait that already ran before hyper took the connection.
pub(crate) async fn consume(
    hub: Arc<Hub>,
    path: StreamPath,
    req: Request<Incoming>,
    parked: Option<ConsumerPairing>,
) -> RelayResponse {
    drop(req);
    let pairing = match parked {
        Some(pairing) => pairing,
        None => wait_for_producer(&hub, &path).await,
    };
    let Meeting { headers, body } = match pairing {
        Ok(meeting) => meeting,
        Err(answer) => return answer,
    };
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
    response
}

fn could_not_pair(role: Role) -> RelayResponse {
    let message = format!(
        "could not pair: {}s kept leaving; retry",
        role.other().name()
    );
    text(StatusCode::SERVICE_UNAVAILABLE, message)
}

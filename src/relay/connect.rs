//! The Connect API: `GET /v0/<path>?mode=await-reader|await-writer[&timeout=N][&redirect=true]`.
//!
//! Holds the request until the other side is present, then answers
//! `200 text/plain` with the data URL (or `307` to it when `redirect=true`).
//! When the wait expires: `504 Gateway Timeout`.

use std::sync::Arc;
use std::time::Duration;

use http::{header, HeaderValue, Request, StatusCode};
use hyper::body::Incoming;
use tokio::sync::oneshot;

use super::hub::Hub;
use super::path::StreamPath;
use super::rendezvous::{ConnectArrival, Role};
use super::response::{shutting_down, stream_limit, text, timed_out, RelayResponse};
use crate::protocol::{self, ConnectMode, ConnectQuery};

/// How long a waiter waits: the requested time (default: `default`),
/// capped at `max`.
fn wait_for(requested: Option<Duration>, default: Duration, max: Duration) -> Duration {
    requested.map_or(default, |wait| wait.min(max))
}

/// The data URL of `path` for `req`: under the configured public URL, else
/// under `http(s)://<Host>` of the request.
fn data_url<B>(hub: &Hub, req: &Request<B>, path: &StreamPath) -> Option<String> {
    let base = match &hub.settings.public_url {
        Some(url) => url.clone(),
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
    Some(protocol::data_url(&base, path.as_str()))
}

/// A Connect request, checked and ready to wait.
pub(crate) struct ConnectPlan {
    mode: ConnectMode,
    wait: Duration,
    url: String,
    redirect: bool,
}

/// How a Connect waiter's wait ended: the peer is present (`Ok`), or the
/// answer to send instead (409, 503, 504).
pub(crate) type ConnectOutcome = Result<(), RelayResponse>;

/// Checks a Connect request (mode, timeout, Host) in that order; `Err` is
/// the answer to a bad one. Its token was checked when it was admitted
/// ([`super::admission::admit`]).
pub(crate) fn plan<B>(
    hub: &Hub,
    path: &StreamPath,
    req: &Request<B>,
) -> Result<ConnectPlan, Box<RelayResponse>> {
    let query = ConnectQuery::decode(req.uri().query().unwrap_or(""))
        .map_err(|bad| Box::new(text(StatusCode::BAD_REQUEST, bad)))?;
    let settings = &hub.settings;
    let wait = wait_for(
        query.timeout,
        settings.connect_wait_default,
        settings.connect_wait_max,
    );
    let Some(url) = data_url(hub, req, path) else {
        return Err(Box::new(text(
            StatusCode::BAD_REQUEST,
            "request has no usable Host header",
        )));
    };
    Ok(ConnectPlan {
        mode: query.mode,
        wait,
        url,
        redirect: query.redirect,
    })
}

/// Enters the waiter into the table and waits until the other side is
/// present (or the plan's wait expires).
pub(crate) async fn wait_for_peer(
    hub: &Arc<Hub>,
    path: &StreamPath,
    plan: &ConnectPlan,
) -> ConnectOutcome {
    let (mode, wait) = (plan.mode, plan.wait);
    let (waker, woken) = oneshot::channel();
    let arrival = hub.table().await_peer(path, mode, waker);
    match arrival {
        ConnectArrival::Ready { wake } => {
            if let Some(other) = wake {
                let _ = other.send(());
            }
            Ok(())
        }
        ConnectArrival::Busy(_) => Err(text(
            StatusCode::CONFLICT,
            format!(
                "another {} is already waiting on this path",
                Role::from(mode).name()
            ),
        )),
        ConnectArrival::Full(_) => Err(stream_limit()),
        ConnectArrival::Waiting(waiter) => {
            let _guard = hub.wait_guard(path, waiter);
            tokio::select! {
                result = woken => result.map_err(|_| shutting_down()),
                _ = tokio::time::sleep(wait) => Err(timed_out(Role::from(mode).other().name(), wait)),
                _ = hub.shutting_down() => Err(shutting_down()),
            }
        }
    }
}

/// `GET /v0/<path>?mode=…`, admitted. `parked` is the end of a wait that
/// already ran before hyper took the connection.
pub(crate) async fn handle(
    hub: Arc<Hub>,
    path: StreamPath,
    req: Request<Incoming>,
    parked: Option<ConnectOutcome>,
) -> RelayResponse {
    let plan = match plan(&hub, &path, &req) {
        Ok(plan) => plan,
        Err(answer) => return *answer,
    };
    drop(req);
    let outcome = match parked {
        Some(outcome) => outcome,
        None => wait_for_peer(&hub, &path, &plan).await,
    };
    if let Err(answer) = outcome {
        return answer;
    }
    tracing::debug!(path = %path, mode = ?plan.mode, "connect answered");
    if plan.redirect {
        let mut response = text(StatusCode::TEMPORARY_REDIRECT, &plan.url);
        if let Ok(location) = HeaderValue::from_str(&plan.url) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        response
    } else {
        text(StatusCode::OK, plan.url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_parameter() {
        let (d, m) = (Duration::from_secs(30), Duration::from_secs(100));
        assert_eq!(wait_for(None, d, m), d);
        let three = Duration::from_secs(3);
        assert_eq!(wait_for(Some(three), d, m), three);
        let long = Some(Duration::from_secs(9999));
        assert_eq!(wait_for(long, d, m), m, "capped at the maximum");
        assert_eq!(wait_for(Some(Duration::MAX), d, m), m);
    }
}

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
use super::rendezvous::{ConnectArrival, ConnectMode, Role};
use super::service::{data_url, query_param, text, RelayResponse};
use super::tokens::Access;

/// The Data-API access a role needs.
pub(crate) fn access_for(role: Role) -> Access {
    match role {
        Role::Producer => Access::Write,
        Role::Consumer => Access::Read,
    }
}

/// Parses `timeout=N` (seconds, fractions allowed) and caps it.
fn wait_for(requested: Option<&str>, default: Duration, max: Duration) -> Result<Duration, String> {
    let Some(raw) = requested else {
        return Ok(default);
    };
    let secs: f64 = raw
        .trim()
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| format!("timeout must be a number of seconds, got {raw:?}"))?;
    Ok(Duration::from_secs_f64(secs.min(max.as_secs_f64())))
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
/// ([`super::service::admit`]).
pub(crate) fn plan<B>(
    hub: &Hub,
    path: &StreamPath,
    req: &Request<B>,
) -> Result<ConnectPlan, Box<RelayResponse>> {
    let mode = match query_param(req, "mode")
        .as_deref()
        .map(ConnectMode::from_query)
    {
        Some(Some(mode)) => mode,
        Some(None) | None => {
            return Err(Box::new(text(
                StatusCode::BAD_REQUEST,
                "mode must be await-reader (producer) or await-writer (consumer)",
            )))
        }
    };
    let settings = &hub.settings;
    let wait = wait_for(
        query_param(req, "timeout").as_deref(),
        settings.connect_wait_default,
        settings.connect_wait_max,
    )
    .map_err(|message| Box::new(text(StatusCode::BAD_REQUEST, message)))?;
    let Some(url) = data_url(hub, req, path) else {
        return Err(Box::new(text(
            StatusCode::BAD_REQUEST,
            "request has no usable Host header",
        )));
    };
    let redirect = query_param(req, "redirect").is_some_and(|v| v == "true" || v == "1");
    Ok(ConnectPlan {
        mode,
        wait,
        url,
        redirect,
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
                peer_name(mode)
            ),
        )),
        ConnectArrival::Full(_) => Err(text(
            StatusCode::SERVICE_UNAVAILABLE,
            "relay is at its stream limit; retry later",
        )),
        ConnectArrival::Waiting(waiter) => {
            let _guard = hub.wait_guard(path, waiter);
            tokio::select! {
                result = woken => match result {
                    Ok(()) => Ok(()),
                    Err(_) => Err(text(StatusCode::SERVICE_UNAVAILABLE, "relay is shutting down")),
                },
                _ = tokio::time::sleep(wait) => Err(text(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("no {} arrived within {} s", other_name(mode), wait.as_secs_f64()),
                )),
                _ = hub.shutting_down() => {
                    Err(text(StatusCode::SERVICE_UNAVAILABLE, "relay is shutting down"))
                }
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

fn peer_name(mode: ConnectMode) -> &'static str {
    match mode {
        ConnectMode::AwaitReader => "producer",
        ConnectMode::AwaitWriter => "consumer",
    }
}

fn other_name(mode: ConnectMode) -> &'static str {
    match mode {
        ConnectMode::AwaitReader => "consumer",
        ConnectMode::AwaitWriter => "producer",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_parameter() {
        let (d, m) = (Duration::from_secs(30), Duration::from_secs(100));
        assert_eq!(wait_for(None, d, m), Ok(d));
        assert_eq!(wait_for(Some("3"), d, m), Ok(Duration::from_secs(3)));
        assert_eq!(wait_for(Some("0.5"), d, m), Ok(Duration::from_millis(500)));
        assert_eq!(wait_for(Some("9999"), d, m), Ok(m), "capped at the maximum");
        assert!(wait_for(Some("-1"), d, m).unwrap_err().contains("seconds"));
        assert!(wait_for(Some("soon"), d, m).is_err());
    }
}

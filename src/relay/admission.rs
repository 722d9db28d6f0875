//! Admission of a request that waits or transfers: its token (401, 403),
//! then a slot of its holder's stream quota (429, [`super::quota`]).

use std::net::IpAddr;
use std::time::SystemTime;

use http::{header, HeaderValue, Request, StatusCode};

use super::connections::ClientKey;
use super::hub::{Gate, Hub};
use super::path::StreamPath;
use super::quota::{Holder, QuotaSlot};
use super::response::{text, RelayResponse};
use super::tokens::{Access, Denied};
use crate::protocol::{query_value, ACCESS_TOKEN_PARAM};

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
    from_header.or_else(|| query_value(req.uri().query()?, ACCESS_TOKEN_PARAM))
}

/// The client a request comes from: its peer address, or, when the peer is
/// a trusted proxy, the last `X-Forwarded-For` entry (the address that proxy
/// saw; earlier entries are the client's own word).
fn client_of<B>(hub: &Hub, req: &Request<B>, peer: IpAddr) -> IpAddr {
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

#[cfg(test)]
mod tests {
    use super::*;

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

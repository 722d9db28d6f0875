//! Where a request goes, by method and path alone: shared by the router
//! ([`super::service`]) and the parking of waiting requests before hyper
//! ([`super::parking`]), so both always agree.

use http::{Method, Request};

use super::path::{PathError, StreamPath};
use super::rendezvous::Role;
use super::tokens::Access;
use crate::protocol::{strip_api_prefix, ConnectQuery, CONNECT_PREFIX, DATA_PREFIX};

/// Health check path.
pub const HEALTH_PATH: &str = "/healthz";

/// Where a request goes.
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
    /// Routes `req`.
    pub(crate) fn of<B>(req: &Request<B>) -> Target {
        let path = req.uri().path();
        let method = req.method();
        if path == HEALTH_PATH {
            match *method {
                Method::GET | Method::HEAD => Target::Health,
                _ => Target::WrongMethod("GET"),
            }
        } else if let Some(rest) = strip_api_prefix(path, CONNECT_PREFIX) {
            match StreamPath::parse(rest) {
                Err(e) => Target::BadPath(e),
                Ok(stream) if method == Method::GET => Target::Connect(stream),
                Ok(_) => Target::WrongMethod("GET"),
            }
        } else if let Some(rest) = strip_api_prefix(path, DATA_PREFIX) {
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
    /// with a valid query, producer, consumer): what
    /// [`admit`](super::admission::admit) checks. A Connect request with a
    /// bad query is not one: its handler answers `400` at once.
    pub(crate) fn waiting<B>(&self, req: &Request<B>) -> Option<(&StreamPath, Access)> {
        match self {
            Target::Connect(path) => {
                let query = ConnectQuery::decode(req.uri().query().unwrap_or("")).ok()?;
                Some((path, Access::of(Role::from(query.mode))))
            }
            Target::Produce(path) => Some((path, Access::of(Role::Producer))),
            Target::Consume(path) => Some((path, Access::of(Role::Consumer))),
            _ => None,
        }
    }
}

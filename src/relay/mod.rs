//! Layer 4: a relay serving the ZebraStream Connect API and Data API.
//!
//! A producer streams bytes with `PUT /data/<path>` (chunked), a consumer
//! reads them with `GET /data/<path>`, and `GET /v0/<path>?mode=…` (the
//! Connect API) lets whichever side comes first wait for the other. The relay
//! forwards opaque bytes as they arrive, with backpressure end to end; it
//! never stores them and never needs a key. Full protocol notes, status codes
//! and the tokens-file format: `docs/relay.md`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), zebrastream::relay::Error> {
//! use zebrastream::relay::{Relay, RelayConfig};
//!
//! let relay = Relay::bind(RelayConfig::open_loopback()).await?;
//! println!("connect URL: {}", relay.connect_url()); // http://127.0.0.1:PORT/v0
//! println!("data URL:    {}", relay.data_url("/demo")); // http://127.0.0.1:PORT/data/demo
//! relay.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Inside, from the top: `server` accepts connections, `service` routes
//! requests to the handlers `connect`/`data`, which answer through
//! `response` (below them; nothing below imports the router).
//! `target` says where a request goes and `admission` checks its token and
//! quota. `rendezvous` pairs requests (a plain state machine, no I/O),
//! `forward` holds the streaming bodies, `connections` caps connections (in
//! all and per client address), `idle` closes those that do nothing,
//! `quota` caps the streams of one token, `head`/`parking`/`replay` park
//! waiting HTTP/1.1 requests before hyper serves them (a waiter then costs a
//! few KiB, not hyper's per-connection buffers), [`tap`] lets tests watch
//! the bytes. The wire forms (paths, the Connect query, status lines) are
//! [`crate::protocol`]'s, shared with the client.

mod admission;
mod config;
mod connect;
mod connections;
mod data;
mod error;
mod forward;
mod head;
mod hub;
mod idle;
mod metrics;
mod parking;
mod quota;
// The validator moved to the protocol layer (the client uses it too); the
// relay's modules keep reaching it as `super::path`.
use crate::protocol::path;
mod rendezvous;
mod replay;
mod response;
mod server;
mod service;
pub mod tap;
mod target;
mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{
    RelayAuth, RelayConfig, UploadResponse, DEFAULT_CONNECT_WAIT, DEFAULT_CONNECT_WAIT_MAX,
    DEFAULT_DATA_WAIT, DEFAULT_HEAD_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_CONNECTIONS_PER_IP, DEFAULT_MAX_STREAMS, DEFAULT_STREAM_QUOTA,
};
pub use error::Error;
pub use rendezvous::{Presence, StreamStatus};
pub use service::METRICS_PATH;
pub use tap::{CaptureTap, ForwardTap, TapVerdict};
pub use target::HEALTH_PATH;
pub use tokens::{Access, Denied, TokenStore};

use crate::protocol::{self, StreamPath};
use hub::{ConnectionSettings, Gate, Hub, Settings};
use server::Site;

/// The relay server. Start one with [`Relay::bind`].
#[derive(Debug)]
pub struct Relay;

impl Relay {
    /// Binds the listen address, loads the tokens file and TLS files, and
    /// spawns the server on the current tokio runtime.
    ///
    /// Returns once the socket is listening. With [`RelayAuth::Open`] a
    /// warning is logged: anyone who can reach the port can use it.
    pub async fn bind(config: RelayConfig) -> Result<RelayHandle, Error> {
        config.validate()?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(server::tls_acceptor(cert, key)?),
            (Some(_), None) => {
                return Err(Error::TlsIncomplete {
                    given: "certificate",
                })
            }
            (None, Some(_)) => return Err(Error::TlsIncomplete { given: "key" }),
            (None, None) => None,
        };
        let gate = match &config.auth {
            RelayAuth::Open => {
                tracing::warn!(
                    "relay is open (no authentication): anyone who reaches {} can read and write every stream",
                    config.listen
                );
                Gate::Open
            }
            RelayAuth::TokensFile(path) => {
                let store = TokenStore::load(path)?;
                tracing::info!(entries = store.len(), "tokens file loaded");
                Gate::Tokens(store)
            }
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
        let metrics = match config.metrics_listen {
            Some(addr) => {
                let bind_error = |source| Error::Bind { addr, source };
                let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
                let local = listener.local_addr().map_err(bind_error)?;
                tracing::info!(%local, "metrics listening (GET {METRICS_PATH})");
                Some((listener, local))
            }
            None => None,
        };
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let settings = Settings {
            public_url: config.public_url.clone(),
            connect_wait_default: config.connect_wait_default,
            connect_wait_max: config.connect_wait_max,
            data_wait: config.data_wait,
            upload_response: config.upload_response,
            tls: tls.is_some(),
            head_timeout: config.head_timeout,
            idle_timeout: config.idle_timeout,
            stream_quota: config.stream_quota,
        };
        let connections = ConnectionSettings {
            max: config.max_connections,
            max_per_client: config.max_connections_per_ip,
            trusted_proxies: config.trusted_proxies.clone(),
        };
        let hub = Arc::new(Hub::new(
            config.max_streams,
            gate,
            settings,
            &connections,
            config.tap.clone(),
            shutdown_rx.clone(),
        ));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base_url = match &config.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("{scheme}://{local_addr}"),
        };
        tracing::info!(%local_addr, %base_url, "relay listening");
        let metrics_addr = metrics.as_ref().map(|(_, addr)| *addr);
        let public = server::accept_loop(
            listener,
            Arc::clone(&hub),
            tls,
            Site::Public,
            shutdown_rx.clone(),
        );
        let metrics = metrics.map(|(listener, _)| {
            server::accept_loop(listener, Arc::clone(&hub), None, Site::Metrics, shutdown_rx)
        });
        // One task for both listeners: aborting it drops every connection.
        let task = tokio::spawn(async move {
            match metrics {
                Some(metrics) => drop(tokio::join!(public, metrics)),
                None => public.await,
            }
        });
        Ok(RelayHandle {
            hub,
            local_addr,
            metrics_addr,
            base_url,
            shutdown: shutdown_tx,
            task: Some(task),
        })
    }
}

/// A running relay. Dropping the handle kills the relay like [`RelayHandle::abort`].
#[derive(Debug)]
pub struct RelayHandle {
    hub: Arc<Hub>,
    local_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    base_url: String,
    shutdown: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl RelayHandle {
    /// The address the relay listens on (with the real port when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the metrics listener (`GET /metrics`), if one was
    /// configured with [`RelayConfig::metrics_listen`].
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The base URL: the public URL if configured, else `http(s)://<local addr>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// What clients pass as their connect URL, e.g. `http://127.0.0.1:PORT/v0`
    /// (the official client appends the stream path and `?mode=…`).
    pub fn connect_url(&self) -> String {
        protocol::connect_url(&self.base_url)
    }

    /// The Data-API URL of a stream path (`/a/b` or `a/b`), e.g.
    /// `http://127.0.0.1:PORT/data/a/b`.
    pub fn data_url(&self, path: &str) -> String {
        protocol::data_url(&self.base_url, path)
    }

    /// Who is waiting or transferring on a stream path (`/a/b`), e.g. to
    /// show a dashboard or to order clients in a test. An invalid path reads
    /// as nobody there.
    pub fn stream_status(&self, path: &str) -> StreamStatus {
        match StreamPath::parse(path) {
            Ok(path) => self.hub.table().status(&path),
            Err(_) => StreamStatus::default(),
        }
    }

    /// Graceful shutdown: stops accepting connections, answers every waiting
    /// request with `503 relay is shutting down`, lets running transfers
    /// finish, and returns when the last connection has closed.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Kills the relay at once: the listener and every connection are dropped
    /// mid-flight. Consumers see an aborted response (never a clean end) and
    /// producers a broken connection, as if the relay process had died.
    pub fn abort(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        if let Some(task) = self.task.take() {
            // Wakes waiters first, so none of them is left parked.
            let _ = self.shutdown.send(true);
            task.abort();
        }
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.kill();
    }
}

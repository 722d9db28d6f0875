//! Accepting connections: TCP (+ optional TLS), HTTP/1.1 and h2/h2c on one
//! port, connection limits, the head deadline and idle timeout, graceful
//! shutdown, and the hard kill.
//!
//! Every accepted connection first takes a seat under the connection limits
//! ([`super::connections`]; over a limit it is closed at once). From accept
//! on, it has one deadline to deliver its first complete request head,
//! whatever the protocol: the TLS handshake, the h2 preface and settings,
//! and the head itself all count against it. Once hyper serves it, a
//! connection with no open request is closed after the idle timeout
//! ([`super::idle`]).
//!
//! On plain TCP the first request head is read before hyper
//! ([`super::head`]) so that a request waiting for its peer is parked
//! cheaply ([`super::parking`]); TLS connections go to hyper directly (the
//! TLS session's own buffers dwarf what parking would save).

use std::convert::Infallible;
use std::net::IpAddr;
use std::path::Path;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::Request;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::connections::ConnectionSlot;
use super::error::Error;
use super::head;
use super::hub::Hub;
use super::idle::{Activity, Quiet};
use super::parking::{self, Parked, Parking, Waiter};
use super::replay::Replay;
use super::response::Holding;
use super::service::{route, route_metrics};

/// Largest HTTP/1.1 read buffer per connection: bounds request heads and the
/// size of each chunk read from a producer (and so the bytes in flight).
pub(crate) const HTTP1_MAX_BUF: usize = 64 * 1024;
/// h2 flow-control window per stream: bounds the bytes of one upload that
/// may sit in the relay's receive buffers (and, as the send-buffer cap, in
/// its send buffers).
pub(crate) const H2_STREAM_WINDOW: u32 = 256 * 1024;
/// h2 flow-control window per connection (shared by its streams).
pub(crate) const H2_CONNECTION_WINDOW: u32 = 1024 * 1024;
/// Largest request header list accepted over h2.
pub(crate) const H2_MAX_HEADER_LIST: u32 = 16 * 1024;

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Site {
    /// The public listener: the Connect and Data APIs, under the connection limits.
    Public,
    /// The metrics listener (`--metrics-listen`): `/metrics` and
    /// `/healthz`, plain HTTP, outside the public connection limits so that
    /// a flood on the public port does not blind monitoring.
    Metrics,
}

/// What a connection brings from accept: who it is, its seat, and the
/// deadline for its first request head.
struct Accepted {
    peer: IpAddr,
    head_deadline: Instant,
    _seat: Option<ConnectionSlot>,
}

/// Loads a PEM certificate chain and private key into a TLS acceptor
/// offering h2 and HTTP/1.1 by ALPN.
pub(crate) fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, Error> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| Error::TlsFile {
            path: path.to_owned(),
            source,
        })
    };
    let cert_pem = read(cert)?;
    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| Error::TlsFile {
            path: cert.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(Error::TlsMissing {
            path: cert.to_owned(),
            what: "certificate",
        });
    }
    let key_pem = read(key)?;
    let key_der = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|source| Error::TlsFile {
            path: key.to_owned(),
            source,
        })?
        .ok_or_else(|| Error::TlsMissing {
            path: key.to_owned(),
            what: "private key",
        })?;
    let provider = tls_provider();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::Tls)?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(Error::Tls)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The TLS provider: the process default when the application installed one
/// (`CryptoProvider::install_default`), else *ring*.
fn tls_provider() -> Arc<rustls::crypto::CryptoProvider> {
    if let Some(installed) = rustls::crypto::CryptoProvider::get_default() {
        return Arc::clone(installed);
    }
    // rustls 0.23.48 deprecates the ring provider for lacking post-quantum
    // key exchange, and has no other way to ask for it. The provider that
    // has it, aws-lc-rs, carries the OpenSSL licence, which deny.toml does
    // not allow; so ring it is, until a permissively licensed one does.
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The hyper connection builders, shared by every connection.
pub(crate) struct Builders {
    /// HTTP/1.1 or h2 (prior knowledge, or by ALPN under TLS).
    auto: auto::Builder<TokioExecutor>,
    /// HTTP/1.1 only: for connections whose first head was read already.
    http1: auto::Builder<TokioExecutor>,
}

impl Builders {
    fn new(head_timeout: Duration) -> Self {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(head_timeout)
            .max_buf_size(HTTP1_MAX_BUF);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(H2_MAX_HEADER_LIST)
            .initial_stream_window_size(H2_STREAM_WINDOW)
            .initial_connection_window_size(H2_CONNECTION_WINDOW)
            .max_send_buf_size(H2_STREAM_WINDOW as usize)
            .keep_alive_interval(Duration::from_secs(30));
        Builders {
            http1: builder.clone().http1_only(),
            auto: builder,
        }
    }
}

/// Accepts connections on the `site` listener until `shutdown` turns true,
/// then waits for the open connections to finish (graceful). Aborting this
/// task drops every connection at once (the hard kill).
pub(crate) async fn accept_loop(
    listener: TcpListener,
    hub: Arc<Hub>,
    tls: Option<TlsAcceptor>,
    site: Site,
    mut shutdown: watch::Receiver<bool>,
) {
    let builders = Arc::new(Builders::new(hub.settings.head_timeout));
    // Owning every connection task here means that aborting this task
    // aborts them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let seat = match site {
                        Site::Public => match hub.connections.admit(peer.ip()) {
                            Ok(seat) => Some(seat),
                            Err(why) => {
                                // Closed at once: no task, no buffers.
                                tracing::debug!(%peer, limit = why.label(), "connection refused");
                                hub.metrics.refused(why);
                                continue;
                            }
                        },
                        Site::Metrics => None,
                    };
                    tracing::trace!(%peer, "connection accepted");
                    let accepted = Accepted {
                        peer: peer.ip(),
                        head_deadline: Instant::now() + hub.settings.head_timeout,
                        _seat: seat,
                    };
                    // Small status lines and h2 response heads must not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    let (builders, hub) = (Arc::clone(&builders), Arc::clone(&hub));
                    match (site, tls.clone()) {
                        (Site::Metrics, _) => {
                            connections.spawn(async move {
                                let io = TokioIo::new(stream);
                                let deadline = Some(accepted.head_deadline);
                                serve(&builders.auto, io, hub, Site::Metrics, &accepted, None, deadline).await;
                            })
                        }
                        (Site::Public, None) => connections.spawn(serve_plain(builders, stream, hub, accepted)),
                        (Site::Public, Some(acceptor)) => connections.spawn(serve_tls(builders, stream, hub, acceptor, accepted)),
                    };
                }
                Err(error) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = async { drop(shutdown.wait_for(|down| *down).await) } => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    // Every connection sees the same shutdown signal (through the hub) and
    // closes after its current request.
    tracing::info!(
        ?site,
        "shutting down: no new connections; waiting for transfers to finish"
    );
    while connections.join_next().await.is_some() {}
}

/// How reading the first head of a plain connection ended.
enum FirstBytes {
    /// A complete HTTP/1.x head.
    Head(Box<Request<()>>),
    /// Something else (h2 preface, odd or long head, end, shutdown): hyper
    /// decides, as if it had read the bytes itself.
    ForHyper,
    /// No complete head before the head deadline.
    TimedOut,
}

/// A plain-TCP connection: its first request head is read here, and a
/// request that waits for its peer is parked ([`super::parking`]) before
/// hyper serves the connection. The task itself then holds little more
/// than the socket (hyper's part is boxed).
async fn serve_plain(
    builders: Arc<Builders>,
    mut stream: TcpStream,
    hub: Arc<Hub>,
    accepted: Accepted,
) {
    let mut head = Vec::new();
    let deadline = accepted.head_deadline;
    let first = tokio::select! {
        read = tokio::time::timeout_at(deadline, head::read(&mut stream, &mut head)) => match read {
            Ok(Some(req)) => FirstBytes::Head(req),
            Ok(None) => FirstBytes::ForHyper,
            Err(_) => FirstBytes::TimedOut,
        },
        // An idle connection must not hold up a graceful shutdown.
        _ = hub.shutting_down() => FirstBytes::ForHyper,
    };
    let (builder, parked, deadline) = match first {
        FirstBytes::Head(req) => {
            let waiter = Waiter::admit(&hub, &req, accepted.peer);
            drop(req);
            let parked = match waiter {
                None => None,
                Some(waiter) => {
                    head.shrink_to_fit();
                    match parking::park(&hub, waiter, stream).await {
                        Parking::Gone => return,
                        Parking::Done { socket, parked } => {
                            stream = socket;
                            Some(*parked)
                        }
                    }
                }
            };
            // The head is here: the deadline is met.
            (&builders.http1, parked, None)
        }
        // hyper reads the rest (an h2 preface, a long head) by the same deadline.
        FirstBytes::ForHyper => (&builders.auto, None, Some(deadline)),
        // Like hyper's own header timeout, which closes without an answer.
        FirstBytes::TimedOut => {
            tracing::debug!("no complete request head in time; closing");
            hub.metrics.closed_quiet(Quiet::NoRequest);
            return;
        }
    };
    let io = TokioIo::new(Replay::new(stream, head));
    Box::pin(serve(
        builder,
        io,
        hub,
        Site::Public,
        &accepted,
        parked,
        deadline,
    ))
    .await;
}

/// A TLS connection: the handshake and the first request head share the
/// head deadline.
async fn serve_tls(
    builders: Arc<Builders>,
    stream: TcpStream,
    hub: Arc<Hub>,
    acceptor: TlsAcceptor,
    accepted: Accepted,
) {
    let deadline = accepted.head_deadline;
    let tls_stream = match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(error)) => {
            tracing::debug!(%error, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!("TLS handshake not done by the head deadline; closing");
            hub.metrics.closed_quiet(Quiet::NoRequest);
            return;
        }
    };
    let io = TokioIo::new(tls_stream);
    Box::pin(serve(
        &builders.auto,
        io,
        hub,
        Site::Public,
        &accepted,
        None,
        Some(deadline),
    ))
    .await;
}

/// Serves a connection with hyper until it closes, until it does nothing
/// (no request head by `head_deadline`, or no open request for the idle
/// timeout), or, once a graceful shutdown began, after its current request.
/// `parked` goes to the first request's handler.
async fn serve<I>(
    builder: &auto::Builder<TokioExecutor>,
    io: TokioIo<I>,
    hub: Arc<Hub>,
    site: Site,
    accepted: &Accepted,
    parked: Option<Parked>,
    head_deadline: Option<Instant>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    let service = {
        let (activity, hub, peer) = (Arc::clone(&activity), Arc::clone(&hub), accepted.peer);
        let parked = Mutex::new(parked);
        service_fn(move |req| {
            let open = activity.open();
            let parked = parked.lock().unwrap_or_else(|e| e.into_inner()).take();
            let hub = Arc::clone(&hub);
            async move {
                let response = match site {
                    Site::Public => route(hub, req, parked, peer).await,
                    Site::Metrics => route_metrics(hub, req).await,
                };
                // The request stays open until its response body is dropped.
                Ok::<_, Infallible>(response?.map(|body| Holding::new(body, open)))
            }
        })
    };
    let idle_timeout = hub.settings.idle_timeout;
    let mut conn = pin!(builder.serve_connection(io, service));
    // `biased`: hyper is polled before the shutdown is looked at, so it
    // has read a replayed head before a graceful shutdown could close the
    // connection as one that never sent anything.
    let result = tokio::select! {
        biased;
        result = conn.as_mut() => result,
        () = hub.shutting_down() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
        quiet = activity.quiet(head_deadline, idle_timeout) => {
            tracing::debug!(reason = quiet.label(), "connection does nothing; closing");
            hub.metrics.closed_quiet(quiet);
            if quiet == Quiet::NoRequest {
                return;
            }
            // h2: GOAWAY, then close; HTTP/1.1: close between requests.
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(hub.settings.head_timeout, conn).await {
                Ok(result) => result,
                Err(_) => return,
            }
        }
    };
    if let Err(error) = result {
        // Aborted transfers end connections with errors by design.
        tracing::debug!(%error, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::hub::{ConnectionSettings, Gate, Settings};

    fn hub() -> (Arc<Hub>, watch::Sender<bool>) {
        let (tx, shutdown) = watch::channel(false);
        let settings = Settings {
            public_url: None,
            connect_wait_default: Duration::from_secs(1),
            connect_wait_max: Duration::from_secs(1),
            data_wait: Duration::from_secs(1),
            upload_response: crate::relay::UploadResponse::Auto,
            tls: false,
            head_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            stream_quota: 1,
        };
        let connections = ConnectionSettings {
            max: 10,
            max_per_client: 10,
            trusted_proxies: Vec::new(),
        };
        let hub = Arc::new(Hub::new(
            10,
            Gate::Open,
            settings,
            &connections,
            None,
            shutdown,
        ));
        (hub, tx)
    }

    /// What a parked request costs is mostly its connection task, whose
    /// size is the size of [`serve_plain`]'s future (hyper's part is boxed):
    /// it must stay a small fraction of hyper's ≈ 30 KiB per connection.
    #[tokio::test]
    async fn a_plain_connection_task_is_small() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        let (hub, _shutdown) = hub();
        let accepted = Accepted {
            peer: peer.ip(),
            head_deadline: Instant::now(),
            _seat: Some(hub.connections.admit(peer.ip()).unwrap()),
        };
        let task = serve_plain(
            Arc::new(Builders::new(Duration::from_secs(1))),
            stream,
            hub,
            accepted,
        );
        let size = std::mem::size_of_val(&task);
        assert!(size <= 2048, "connection task of {size} bytes");
        drop((task, client));
    }
}

//! Accepting connections: TCP (+ optional TLS), HTTP/1.1 and h2/h2c on one
//! port, graceful shutdown, and the hard kill.
//!
//! On plain TCP the first request head is read before hyper
//! ([`super::head`]) so that a request waiting for its peer is parked
//! cheaply ([`super::parking`]); TLS connections go to hyper directly (the
//! TLS session's own buffers dwarf what parking would save).

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
use tokio_rustls::TlsAcceptor;

use super::error::Error;
use super::head;
use super::hub::Hub;
use super::parking::{self, Parking, Waited, Waiter};
use super::replay::Replay;
use super::service::route;

/// Largest HTTP/1.1 read buffer per connection: bounds request heads and the
/// size of each chunk read from a producer (and so the bytes in flight).
pub const HTTP1_MAX_BUF: usize = 64 * 1024;
/// h2 flow-control window per stream: bounds the bytes of one upload that
/// may sit in the relay's receive buffers (and, as the send-buffer cap, in
/// its send buffers).
pub const H2_STREAM_WINDOW: u32 = 256 * 1024;
/// h2 flow-control window per connection (shared by its streams).
pub const H2_CONNECTION_WINDOW: u32 = 1024 * 1024;
/// Largest request header list accepted over h2.
pub const H2_MAX_HEADER_LIST: u32 = 16 * 1024;
/// Time allowed to send a complete request head.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed for a TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
    fn new() -> Self {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
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

/// Accepts connections until `shutdown` turns true, then waits for the open
/// connections to finish (graceful). Aborting this task drops every
/// connection at once (the hard kill).
pub(crate) async fn accept_loop(
    listener: TcpListener,
    hub: Arc<Hub>,
    tls: Option<TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let builders = Arc::new(Builders::new());
    // Owning every connection task here means that aborting this task
    // aborts them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::trace!(%peer, "connection accepted");
                    // Small status lines and h2 response heads must not wait for Nagle.
                    let _ = stream.set_nodelay(true);
                    let (builders, hub) = (Arc::clone(&builders), Arc::clone(&hub));
                    match tls.clone() {
                        None => connections.spawn(serve_plain(builders, stream, hub)),
                        Some(acceptor) => connections.spawn(serve_tls(builders, stream, hub, acceptor)),
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
    tracing::info!("shutting down: no new connections; waiting for transfers to finish");
    while connections.join_next().await.is_some() {}
}

/// How reading the first head of a plain connection ended.
enum FirstBytes {
    /// A complete HTTP/1.x head.
    Head(Box<Request<()>>),
    /// Something else (h2 preface, odd or long head, end, shutdown): hyper
    /// decides, as if it had read the bytes itself.
    ForHyper,
    /// No complete head within [`HEADER_READ_TIMEOUT`].
    TimedOut,
}

/// A plain-TCP connection: its first request head is read here, and a
/// request that waits for its peer is parked ([`super::parking`]) before
/// hyper serves the connection. The task itself then holds little more
/// than the socket (hyper's part is boxed).
async fn serve_plain(builders: Arc<Builders>, mut stream: TcpStream, hub: Arc<Hub>) {
    let mut head = Vec::new();
    let first = tokio::select! {
        read = tokio::time::timeout(HEADER_READ_TIMEOUT, head::read(&mut stream, &mut head)) => match read {
            Ok(Some(req)) => FirstBytes::Head(req),
            Ok(None) => FirstBytes::ForHyper,
            Err(_) => FirstBytes::TimedOut,
        },
        // An idle connection must not hold up a graceful shutdown.
        _ = hub.shutting_down() => FirstBytes::ForHyper,
    };
    let (builder, parked) = match first {
        FirstBytes::Head(req) => {
            let waiter = Waiter::admit(&hub, &req);
            drop(req);
            let parked = match waiter {
                None => None,
                Some(waiter) => {
                    head.shrink_to_fit();
                    match parking::park(&hub, waiter, stream).await {
                        Parking::Gone => return,
                        Parking::Done { socket, waited } => {
                            stream = socket;
                            Some(*waited)
                        }
                    }
                }
            };
            (&builders.http1, parked)
        }
        FirstBytes::ForHyper => (&builders.auto, None),
        // Like hyper's own header timeout, which closes without an answer.
        FirstBytes::TimedOut => {
            tracing::debug!("no complete request head in time; closing");
            return;
        }
    };
    let io = Replay::new(stream, head);
    Box::pin(serve(builder, io, hub, parked)).await;
}

async fn serve_tls(
    builders: Arc<Builders>,
    stream: TcpStream,
    hub: Arc<Hub>,
    acceptor: TlsAcceptor,
) {
    let tls_stream =
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(s)) => s,
            Ok(Err(error)) => {
                tracing::debug!(%error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!("TLS handshake timed out");
                return;
            }
        };
    Box::pin(serve(&builders.auto, tls_stream, hub, None)).await;
}

/// Serves a connection with hyper until it closes, or, once a graceful
/// shutdown began, after its current request. `parked` goes to the first
/// request's handler.
async fn serve<I>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    hub: Arc<Hub>,
    parked: Option<Waited>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let parked = Mutex::new(parked);
    let routes = Arc::clone(&hub);
    let service = service_fn(move |req| {
        let parked = parked.lock().unwrap_or_else(|e| e.into_inner()).take();
        route(Arc::clone(&routes), req, parked)
    });
    let mut conn = pin!(builder.serve_connection(TokioIo::new(io), service));
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
    };
    if let Err(error) = result {
        // Aborted transfers end connections with errors by design.
        tracing::debug!(%error, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::hub::{Gate, Settings};

    fn hub() -> (Arc<Hub>, watch::Sender<bool>) {
        let (tx, shutdown) = watch::channel(false);
        let settings = Settings {
            public_url: None,
            connect_wait_default: Duration::from_secs(1),
            connect_wait_max: Duration::from_secs(1),
            data_wait: Duration::from_secs(1),
            upload_response: crate::relay::UploadResponse::Auto,
            tls: false,
        };
        let hub = Arc::new(Hub::new(10, Gate::Open, settings, None, shutdown));
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
        let (stream, _) = listener.accept().await.unwrap();
        let (hub, _shutdown) = hub();
        let task = serve_plain(Arc::new(Builders::new()), stream, hub);
        let size = std::mem::size_of_val(&task);
        assert!(size <= 2048, "connection task of {size} bytes");
        drop((task, client));
    }
}

//! Accepting connections: TCP (+ optional TLS), HTTP/1.1 and h2/h2c on one
//! port, graceful shutdown, and the hard kill.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::error::Error;
use super::hub::Hub;
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
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(Error::Tls)?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(Error::Tls)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn http_builder() -> auto::Builder<TokioExecutor> {
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
    builder
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
    let builder = http_builder();
    let graceful = GracefulShutdown::new();
    // Owning every connection task here means that aborting this task
    // aborts them all.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::trace!(%peer, "connection accepted");
                    let watcher = graceful.watcher();
                    let (builder, hub, tls) = (builder.clone(), Arc::clone(&hub), tls.clone());
                    connections.spawn(async move {
                        serve_connection(builder, stream, hub, tls, watcher).await;
                    });
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
    tracing::info!("shutting down: no new connections; waiting for transfers to finish");
    graceful.shutdown().await;
    while connections.join_next().await.is_some() {}
}

async fn serve_connection(
    builder: auto::Builder<TokioExecutor>,
    stream: TcpStream,
    hub: Arc<Hub>,
    tls: Option<TlsAcceptor>,
    watcher: hyper_util::server::graceful::Watcher,
) {
    // Small status lines and h2 response heads must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req| route(Arc::clone(&hub), req));
    let result = match tls {
        None => {
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            watcher.watch(conn.into_owned()).await
        }
        Some(acceptor) => {
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
            let conn = builder.serve_connection(TokioIo::new(tls_stream), service);
            watcher.watch(conn.into_owned()).await
        }
    };
    if let Err(error) = result {
        // Aborted transfers end connections with errors by design.
        tracing::debug!(%error, "connection ended with an error");
    }
}

//! A TCP proxy under the test's control, for fault injection between a client
//! and the relay: reset a connection after N bytes in either direction, stall
//! it, or slow it down.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the proxy does to each connection it forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward faithfully.
    None,
    /// Reset both sockets (RST, no FIN) once this many bytes went client→server.
    ResetUpstreamAfter(u64),
    /// Reset both sockets once this many bytes went server→client.
    ResetDownstreamAfter(u64),
    /// Stop forwarding (both ways) for `millis` once `after` bytes went client→server.
    StallUpstream { after: u64, millis: u64 },
    /// Forward at most this many bytes per second in each direction.
    Throttle { bytes_per_sec: u64 },
}

/// A running proxy; dropping it stops accepting (open connections run on).
pub struct FaultProxy {
    addr: SocketAddr,
    accept: JoinHandle<()>,
    connections: Arc<AtomicU64>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr, fault: Fault) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicU64::new(0));
        let counter = connections.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        pipe_pair(client, server, fault).await;
                    }
                });
            }
        });
        FaultProxy {
            addr,
            accept,
            connections,
        }
    }

    /// The address clients should connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` for building URLs.
    pub fn http_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many connections were accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn pipe_pair(client: TcpStream, server: TcpStream, fault: Fault) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    if matches!(
        fault,
        Fault::ResetUpstreamAfter(_) | Fault::ResetDownstreamAfter(_)
    ) {
        // Linger 0: closing the sockets sends RST, as a crashed peer's kernel would.
        let _ = client.set_zero_linger();
        let _ = server.set_zero_linger();
    }
    let (reset_tx, reset_rx) = tokio::sync::watch::channel(false);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    tokio::join!(
        pump(cr, sw, Direction::Up, fault, &reset_tx, reset_rx.clone()),
        pump(sr, cw, Direction::Down, fault, &reset_tx, reset_rx),
    );
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Up,
    Down,
}

/// Copies one direction until EOF, an error, or a reset (then both pumps stop
/// and the sockets close with RST).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    dir: Direction,
    fault: Fault,
    reset: &tokio::sync::watch::Sender<bool>,
    mut reset_rx: tokio::sync::watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut total: u64 = 0;
    let mut stalled = false;
    loop {
        let n = tokio::select! {
            r = from.read(&mut buf) => match r { Ok(0) | Err(_) => break, Ok(n) => n },
            _ = reset_rx.wait_for(|r| *r) => { to.forget(); return }, // no FIN: RST on close
        };
        let mut chunk = &buf[..n];
        let limit = match (fault, dir) {
            (Fault::ResetUpstreamAfter(at), Direction::Up)
            | (Fault::ResetDownstreamAfter(at), Direction::Down) => Some(at),
            _ => None,
        };
        if let Some(at) = limit {
            if total + chunk.len() as u64 >= at {
                let keep = (at - total) as usize;
                let _ = to.write_all(&chunk[..keep]).await;
                let _ = to.flush().await;
                let _ = reset.send(true);
                to.forget(); // dropping a write half sends FIN; a crash sends only RST
                return;
            }
        }
        if let (Fault::StallUpstream { after, millis }, Direction::Up) = (fault, dir) {
            if !stalled && total + chunk.len() as u64 >= after {
                stalled = true;
                tokio::time::sleep(Duration::from_millis(millis)).await;
            }
        }
        if let Fault::Throttle { bytes_per_sec } = fault {
            while !chunk.is_empty() {
                let step = chunk.len().min((bytes_per_sec / 10).max(1) as usize);
                if to.write_all(&chunk[..step]).await.is_err() {
                    return;
                }
                chunk = &chunk[step..];
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        } else if to.write_all(chunk).await.is_err() {
            break;
        }
        total += n as u64;
    }
    let _ = to.shutdown().await;
}

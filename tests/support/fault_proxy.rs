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
    /// Once `after` bytes went server→client, forward nothing more to the
    /// client but keep reading the server's bytes for `millis`, then reset
    /// both sockets: the server sees its whole answer taken (a relay
    /// reports the transfer delivered) while the client lost it.
    SwallowDownstreamAfter { after: u64, millis: u64 },
    /// Stop forwarding (both ways) for `millis` once `after` bytes went client→server.
    StallUpstream { after: u64, millis: u64 },
    /// Stop forwarding server→client for `millis` once `after` bytes went that way.
    StallDownstream { after: u64, millis: u64 },
    /// Forward at most this many bytes per second in each direction.
    Throttle { bytes_per_sec: u64 },
}

/// A running proxy; dropping it stops accepting (open connections run on).
pub struct FaultProxy {
    addr: SocketAddr,
    accept: JoinHandle<()>,
    connections: Arc<AtomicU64>,
    fired: Arc<AtomicU64>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards every connection to
    /// `upstream`, applying `fault` to each.
    pub async fn start(upstream: SocketAddr, fault: Fault) -> FaultProxy {
        Self::start_with(upstream, fault, u64::MAX).await
    }

    /// Like [`start`](Self::start), but the fault hits only once: the
    /// first connection on which it triggers; every later trigger point is
    /// passed through faithfully (a connection that breaks once and a
    /// reconnect that works, as resume expects).
    pub async fn start_once(upstream: SocketAddr, fault: Fault) -> FaultProxy {
        Self::start_with(upstream, fault, 1).await
    }

    async fn start_with(upstream: SocketAddr, fault: Fault, budget: u64) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicU64::new(0));
        let fired = Arc::new(AtomicU64::new(0));
        let counter = connections.clone();
        let shots = Shots {
            fired: fired.clone(),
            budget,
        };
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::Relaxed);
                let shots = shots.clone();
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        pipe_pair(client, server, fault, shots).await;
                    }
                });
            }
        });
        FaultProxy {
            addr,
            accept,
            connections,
            fired,
        }
    }

    /// How many times the fault triggered.
    pub fn faults(&self) -> u64 {
        self.fired.load(Ordering::Relaxed)
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

/// How many times a fault may still trigger, shared by every connection.
#[derive(Clone)]
struct Shots {
    fired: Arc<AtomicU64>,
    budget: u64,
}

impl Shots {
    /// Takes one shot if any is left.
    fn take(&self) -> bool {
        self.fired
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.budget).then_some(n + 1)
            })
            .is_ok()
    }
}

async fn pipe_pair(client: TcpStream, server: TcpStream, fault: Fault, shots: Shots) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    if matches!(
        fault,
        Fault::ResetUpstreamAfter(_)
            | Fault::ResetDownstreamAfter(_)
            | Fault::SwallowDownstreamAfter { .. }
    ) {
        // Linger 0: closing the sockets sends RST, as a crashed peer's kernel would.
        let _ = client.set_zero_linger();
        let _ = server.set_zero_linger();
    }
    let (reset_tx, reset_rx) = tokio::sync::watch::channel(false);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    tokio::join!(
        pump(
            cr,
            sw,
            Direction::Up,
            fault,
            &shots,
            &reset_tx,
            reset_rx.clone()
        ),
        pump(sr, cw, Direction::Down, fault, &shots, &reset_tx, reset_rx),
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
    mut fault: Fault,
    shots: &Shots,
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
            | (Fault::ResetDownstreamAfter(at), Direction::Down)
            | (Fault::SwallowDownstreamAfter { after: at, .. }, Direction::Down) => Some(at),
            _ => None,
        };
        if let Some(at) = limit {
            if total + chunk.len() as u64 >= at && !shots.take() {
                // The fault already hit elsewhere: forward from now on.
                fault = Fault::None;
            } else if total + chunk.len() as u64 >= at {
                let keep = (at - total) as usize;
                let _ = to.write_all(&chunk[..keep]).await;
                let _ = to.flush().await;
                if let Fault::SwallowDownstreamAfter { millis, .. } = fault {
                    let swallow = async { while let Ok(1..) = from.read(&mut buf).await {} };
                    let _ = tokio::time::timeout(Duration::from_millis(millis), swallow).await;
                }
                let _ = reset.send(true);
                to.forget(); // dropping a write half sends FIN; a crash sends only RST
                return;
            }
        }
        if let (Fault::StallUpstream { after, millis }, Direction::Up)
        | (Fault::StallDownstream { after, millis }, Direction::Down) = (fault, dir)
        {
            if !stalled && total + chunk.len() as u64 >= after {
                stalled = true;
                if shots.take() {
                    tokio::time::sleep(Duration::from_millis(millis)).await;
                }
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

//! Requests that wait for their peer, parked before hyper serves their
//! connection.
//!
//! A consumer `GET /data/<path>`, a producer `PUT`/`POST /data/<path>` or a
//! Connect waiter `GET /v0/<path>?mode=…` whose head [`super::head`] read
//! waits here holding only its socket, its head bytes and the wait's own
//! state (table entry, timer, channel): ≈ 2.5 KiB in all, where a hyper
//! connection costs ≈ 30 KiB of buffers and state. When the wait is over
//! (paired, refused, expired, or shutting down), hyper gets the connection
//! with the head replayed, and the request's handler answers with the
//! outcome ([`Waited`]) instead of waiting again. So every answer, header and
//! keep-alive decision is still hyper's and the handlers'.
//!
//! While parked, the socket is watched for the client going away (FIN or
//! reset), which withdraws the request at once. A producer's body bytes stay
//! unread in the kernel meanwhile (no `100 Continue` is sent before it is
//! paired); its FIN comes after them, so one that vanishes is noticed at once
//! as long as what it sent fits in the socket's receive window, and
//! otherwise only when the data wait expires.

use std::io;
use std::net::IpAddr;
use std::sync::Arc;

use http::Request;
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::admission::admit;
use super::connect::{self, ConnectOutcome, ConnectPlan};
use super::data::{self, ConsumerPairing, ProducerPairing};
use super::hub::Hub;
use super::path::StreamPath;
use super::quota::QuotaSlot;
use super::target::Target;

/// The end of a wait that ran before hyper took the connection, for the
/// handler of that same request.
pub(crate) enum Waited {
    /// A producer's pairing (or its refusal).
    Producer(ProducerPairing),
    /// A consumer's meeting (or its refusal).
    Consumer(ConsumerPairing),
    /// A Connect waiter's outcome.
    Connect(ConnectOutcome),
}

impl Waited {
    /// The producer's pairing, if this wait was a producer's.
    pub(crate) fn into_producer(self) -> Option<ProducerPairing> {
        match self {
            Waited::Producer(pairing) => Some(pairing),
            _ => None,
        }
    }

    /// The consumer's meeting, if this wait was a consumer's.
    pub(crate) fn into_consumer(self) -> Option<ConsumerPairing> {
        match self {
            Waited::Consumer(pairing) => Some(pairing),
            _ => None,
        }
    }

    /// The Connect outcome, if this wait was a Connect waiter's.
    pub(crate) fn into_connect(self) -> Option<ConnectOutcome> {
        match self {
            Waited::Connect(outcome) => Some(outcome),
            _ => None,
        }
    }
}

/// A parked request's wait and its quota slot, for its handler.
pub(crate) struct Parked {
    /// How the wait ended.
    pub(crate) waited: Waited,
    /// The request's share of its holder's stream quota.
    pub(crate) slot: QuotaSlot,
}

/// A request that waits for its peer, admitted and ready to park.
pub(crate) struct Waiter {
    path: StreamPath,
    kind: Kind,
    slot: QuotaSlot,
}

enum Kind {
    Producer,
    Consumer,
    Connect(ConnectPlan),
}

impl Waiter {
    /// `Some` if `head`, from `peer`, is a request that waits: a Data
    /// `GET`/`PUT`/`POST` or a Connect `GET` on a valid path, admitted (token
    /// and quota; for Connect, valid parameters). Anything else, including a
    /// request that is refused at once, is left to the handlers, which
    /// answer it.
    pub(crate) fn admit(hub: &Hub, head: &Request<()>, peer: IpAddr) -> Option<Waiter> {
        let target = Target::of(head);
        let (path, access) = target.waiting(head)?;
        let slot = admit(hub, head, path, access, peer).ok()?;
        let (path, kind) = match target {
            Target::Produce(path) => (path, Kind::Producer),
            Target::Consume(path) => (path, Kind::Consumer),
            Target::Connect(path) => {
                let plan = connect::plan(hub, &path, head).ok()?;
                (path, Kind::Connect(plan))
            }
            _ => return None,
        };
        Some(Waiter { path, kind, slot })
    }
}

/// What became of a parked request.
pub(crate) enum Parking {
    /// The wait is over: serve the request on `socket` with this outcome.
    Done {
        /// The connection, ready for hyper.
        socket: TcpStream,
        /// The end of the wait, for the request's handler.
        parked: Box<Parked>,
    },
    /// The client went away while waiting; its request was withdrawn.
    Gone,
}

/// Runs the wait of `waiter`, whose client is at the other end of `socket`.
pub(crate) async fn park(hub: &Arc<Hub>, waiter: Waiter, socket: TcpStream) -> Parking {
    let Waiter { path, kind, slot } = waiter;
    let wait = async {
        match kind {
            Kind::Producer => {
                Waited::Producer(data::wait_for_consumer(hub, &path, std::future::pending()).await)
            }
            Kind::Consumer => Waited::Consumer(data::wait_for_producer(hub, &path).await),
            Kind::Connect(plan) => Waited::Connect(connect::wait_for_peer(hub, &path, &plan).await),
        }
    };
    let waited = tokio::select! {
        // A wait that ended goes first, even when the client left as well: a
        // producer that sent a little and closed at once, into a consumer
        // already waiting, is ready both ways, and dropping the pair would
        // send the consumer back to wait for another producer instead of
        // showing it the stream that broke off.
        biased;
        waited = wait => waited,
        () = client_gone(&socket) => {
            tracing::debug!(path = %path, "client left while waiting");
            return Parking::Gone;
        }
    };
    match unpark(socket) {
        Ok(socket) => Parking::Done {
            socket,
            parked: Box::new(Parked { waited, slot }),
        },
        Err(error) => {
            tracing::debug!(path = %path, %error, "could not take a parked connection back");
            Parking::Gone
        }
    }
}

/// Resolves once the peer closed or reset the connection.
///
/// Bytes that arrive meanwhile (a producer's body, a pipelined request) are
/// left in the kernel for hyper. To wait for the *next* event without
/// reading them, the socket's readiness is cleared by hand, so the runtime
/// would not report them as readable any more: [`unpark`] fixes that.
async fn client_gone(socket: &TcpStream) {
    loop {
        match socket.ready(Interest::READABLE).await {
            Ok(ready) if !ready.is_read_closed() => {
                let _ = socket.try_io(Interest::READABLE, || {
                    Err::<(), _>(io::Error::from(io::ErrorKind::WouldBlock))
                });
            }
            _ => return,
        }
    }
}

/// Registers a parked socket afresh with the runtime, which then reads its
/// readiness anew (unread bytes are readable again).
fn unpark(socket: TcpStream) -> io::Result<TcpStream> {
    TcpStream::from_std(socket.into_std()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio::time::timeout;

    #[tokio::test]
    async fn watching_leaves_bytes_unread_and_unpark_makes_them_readable() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (socket, _) = listener.accept().await.unwrap();
        client.write_all(b"body bytes").await.unwrap();
        let watched = timeout(Duration::from_millis(200), client_gone(&socket)).await;
        assert!(watched.is_err(), "arriving bytes are not a close");

        let mut socket = unpark(socket).unwrap();
        let mut buf = [0u8; 10];
        timeout(Duration::from_secs(5), socket.read_exact(&mut buf))
            .await
            .expect("the unread bytes are readable again")
            .unwrap();
        assert_eq!(&buf, b"body bytes");

        client.write_all(b"more").await.unwrap();
        drop(client);
        timeout(Duration::from_secs(5), client_gone(&socket))
            .await
            .expect("a close behind unread bytes is noticed");
    }
}

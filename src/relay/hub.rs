//! Shared relay state: the pairing table plus settings, and the guards that
//! keep the table right when a request ends in any way (answer, timeout,
//! client gone, task dropped).

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use tokio::sync::{oneshot, watch};

use super::connections::ConnectionLimits;
use super::forward::ForwardBody;
use super::metrics::{Metrics, TransferEnd};
use super::path::StreamPath;
use super::quota::StreamQuota;
use super::rendezvous::{Rendezvous, WaiterId};
use super::tap::ForwardTap;
use super::tokens::TokenStore;

/// What a producer hands its consumer: headers to pass on and the body to stream.
pub(crate) struct Meeting {
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    pub(crate) body: ForwardBody,
}

/// A consumer's inbox: where its producer delivers the [`Meeting`].
pub(crate) type ConsumerInbox = oneshot::Sender<Meeting>;
/// A waiting producer's inbox: where a consumer that arrives later delivers
/// its own inbox, plus the lease on the pair it just formed.
pub(crate) type ProducerInbox = oneshot::Sender<(ConsumerInbox, PairLease)>;
/// Wakes a parked Connect waiter.
pub(crate) type ConnectWaker = oneshot::Sender<()>;

pub(crate) type Table = Rendezvous<ProducerInbox, ConsumerInbox, ConnectWaker>;

/// Who may do what.
pub(crate) enum Gate {
    Open,
    Tokens(TokenStore),
}

/// Settings the handlers need at request time.
pub(crate) struct Settings {
    pub(crate) public_url: Option<String>,
    pub(crate) connect_wait_default: Duration,
    pub(crate) connect_wait_max: Duration,
    pub(crate) data_wait: Duration,
    pub(crate) upload_response: super::UploadResponse,
    pub(crate) tls: bool,
    /// From accept to the first complete request head, for every protocol.
    pub(crate) head_timeout: Duration,
    /// A connection with no open request is closed after this long.
    pub(crate) idle_timeout: Duration,
    /// Streams a token (or, open, a client address) may hold by default.
    pub(crate) stream_quota: usize,
}

/// Connection limits (see [`ConnectionLimits`]).
pub(crate) struct ConnectionSettings {
    pub(crate) max: usize,
    pub(crate) max_per_client: usize,
    pub(crate) trusted_proxies: Vec<IpAddr>,
}

pub(crate) struct Hub {
    table: Mutex<Table>,
    pub(crate) gate: Gate,
    pub(crate) settings: Settings,
    pub(crate) tap: Option<Arc<dyn ForwardTap>>,
    pub(crate) metrics: Metrics,
    pub(crate) connections: Arc<ConnectionLimits>,
    pub(crate) quota: Arc<StreamQuota>,
    shutdown: watch::Receiver<bool>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens and live offers are not for printing.
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

impl Hub {
    pub(crate) fn new(
        max_streams: usize,
        gate: Gate,
        settings: Settings,
        connections: &ConnectionSettings,
        tap: Option<Arc<dyn ForwardTap>>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Hub {
            table: Mutex::new(Rendezvous::new(max_streams)),
            gate,
            settings,
            tap,
            metrics: Metrics::default(),
            connections: Arc::new(ConnectionLimits::new(
                connections.max,
                connections.max_per_client,
                &connections.trusted_proxies,
            )),
            quota: Arc::default(),
            shutdown,
        }
    }

    /// The pairing table. Critical sections are a few map operations and
    /// never await; a panic inside one cannot corrupt it, so a poisoned lock
    /// is taken over.
    pub(crate) fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves once a graceful shutdown has begun.
    pub(crate) async fn shutting_down(&self) {
        let mut rx = self.shutdown.clone();
        // An Err means the relay handle is gone: treat that as shutdown too.
        let _ = rx.wait_for(|down| *down).await;
    }

    /// Takes responsibility for freeing both seats of the pair just formed on `path`.
    pub(crate) fn lease(self: &Arc<Self>, path: &StreamPath) -> PairLease {
        self.metrics.active(1);
        PairLease {
            hub: Arc::clone(self),
            path: path.clone(),
        }
    }

    /// Withdraws `waiter` from the table when dropped (a no-op once it was paired).
    pub(crate) fn wait_guard(self: &Arc<Self>, path: &StreamPath, waiter: WaiterId) -> WaitGuard {
        self.metrics.waiting(1);
        WaitGuard {
            hub: Arc::clone(self),
            path: path.clone(),
            waiter,
        }
    }
}

/// Frees the producer and consumer seats of one transfer when dropped.
pub(crate) struct PairLease {
    hub: Arc<Hub>,
    path: StreamPath,
}

impl PairLease {
    /// Counts bytes forwarded on this transfer.
    pub(crate) fn forwarded(&self, bytes: usize) {
        self.hub.metrics.forwarded(bytes);
    }

    /// Counts how this transfer ended.
    pub(crate) fn ended(&self, end: TransferEnd) {
        self.hub.metrics.transfer_ended(end);
    }
}

impl Drop for PairLease {
    fn drop(&mut self) {
        self.hub.table().release_pair(&self.path);
        self.hub.metrics.active(-1);
    }
}

/// Removes a parked request from the table when its handler ends.
pub(crate) struct WaitGuard {
    hub: Arc<Hub>,
    path: StreamPath,
    waiter: WaiterId,
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        self.hub.table().withdraw(&self.path, self.waiter);
        self.hub.metrics.waiting(-1);
    }
}

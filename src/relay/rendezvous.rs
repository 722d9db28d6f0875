//! The pairing logic: a plain state machine per stream path, no I/O.
//!
//! Each path has two *seats* (producer, consumer) for Data-API requests and
//! two *waiter* slots for Connect-API requests (one per mode). The HTTP
//! handlers call the methods below under a lock and act on the answers; the
//! machine itself never waits, so every rule is unit-tested here without
//! sockets (in the spirit of rustls' sans-IO core).
//!
//! Rules:
//! - A Data request of one role pairs with a *waiting* Data request of the
//!   other role; both seats then stay busy until [`Rendezvous::release_pair`].
//! - A second request of a role whose seat is waiting or busy is refused
//!   ([`Arrival::Busy`], HTTP 409). The same holds for a second Connect waiter
//!   of the same mode.
//! - A Connect waiter is answered as soon as the opposite side is *present*:
//!   an opposite Connect waiter or a waiting Data request of the opposite role.
//! - An empty path is forgotten, so the table only holds live paths.

use std::collections::HashMap;

use super::path::StreamPath;
use crate::protocol::ConnectMode;

/// The Data-API role of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// `PUT`/`POST`: sends the bytes.
    Producer,
    /// `GET`: receives the bytes.
    Consumer,
}

impl Role {
    /// The role's name in answers: `"producer"` or `"consumer"`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Producer => "producer",
            Role::Consumer => "consumer",
        }
    }

    /// The role this one pairs with.
    pub(crate) fn other(self) -> Role {
        match self {
            Role::Producer => Role::Consumer,
            Role::Consumer => Role::Producer,
        }
    }
}

impl From<ConnectMode> for Role {
    /// The Data-API role of the caller using `mode`.
    fn from(mode: ConnectMode) -> Role {
        match mode {
            ConnectMode::AwaitReader => Role::Producer,
            ConnectMode::AwaitWriter => Role::Consumer,
        }
    }
}

/// Identifies one waiting request so that only it can withdraw itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaiterId(u64);

enum Seat<T> {
    Empty,
    Waiting(WaiterId, T),
    Busy,
}

impl<T> Seat<T> {
    fn is_empty(&self) -> bool {
        matches!(self, Seat::Empty)
    }
}

struct PathState<P, C, W> {
    producer: Seat<P>,
    consumer: Seat<C>,
    await_reader: Option<(WaiterId, W)>,
    await_writer: Option<(WaiterId, W)>,
}

impl<P, C, W> PathState<P, C, W> {
    fn new() -> Self {
        PathState {
            producer: Seat::Empty,
            consumer: Seat::Empty,
            await_reader: None,
            await_writer: None,
        }
    }

    fn is_idle(&self) -> bool {
        self.producer.is_empty()
            && self.consumer.is_empty()
            && self.await_reader.is_none()
            && self.await_writer.is_none()
    }
}

/// What happened to a Data-API request entering the table.
#[derive(Debug)]
pub(crate) enum Arrival<Mine, Theirs, W> {
    /// The other role was waiting: here is its offer (and ours back). Both
    /// seats are now busy until [`Rendezvous::release_pair`].
    Paired { theirs: Theirs, mine: Mine },
    /// Nobody to pair with yet: the offer is parked under `waiter`. `wake` is
    /// the opposite Connect waiter, if any, to be told that we are present.
    Waiting { waiter: WaiterId, wake: Option<W> },
    /// This role is already taken on this path (waiting or transferring).
    Busy(Mine),
    /// The relay already tracks its maximum number of streams.
    Full(Mine),
}

/// What happened to a Connect-API waiter entering the table.
#[derive(Debug)]
pub(crate) enum ConnectArrival<W> {
    /// The other side is present: answer now, and wake `wake` if set (the
    /// opposite Connect waiter, which is removed from the table).
    Ready { wake: Option<W> },
    /// Parked under `waiter` until woken.
    Waiting(WaiterId),
    /// A Connect waiter of the same mode is already parked.
    Busy(W),
    /// The relay already tracks its maximum number of streams.
    Full(W),
}

/// Where one side of a stream stands, as reported by [`StreamStatus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Presence {
    /// Nobody of this side is here.
    #[default]
    Absent,
    /// A Connect-API waiter of this side is parked.
    Connecting,
    /// A Data-API request of this side waits for its peer.
    Waiting,
    /// A transfer is running.
    Transferring,
}

/// A snapshot of one stream path: who is waiting or transferring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamStatus {
    /// The producer side (`PUT`/`POST`, `mode=await-reader`).
    pub producer: Presence,
    /// The consumer side (`GET`, `mode=await-writer`).
    pub consumer: Presence,
}

fn presence<T, W>(seat: &Seat<T>, waiter: &Option<(WaiterId, W)>) -> Presence {
    match seat {
        Seat::Busy => Presence::Transferring,
        Seat::Waiting(..) => Presence::Waiting,
        Seat::Empty if waiter.is_some() => Presence::Connecting,
        Seat::Empty => Presence::Absent,
    }
}

/// The pairing table: every live path and who is waiting or transferring.
///
/// `P` is what a waiting producer leaves for its consumer, `C` what a
/// waiting consumer leaves for its producer, `W` how a Connect waiter is woken.
pub(crate) struct Rendezvous<P, C, W> {
    paths: HashMap<StreamPath, PathState<P, C, W>>,
    next_waiter_id: u64,
    max_paths: usize,
}

impl<P, C, W> Rendezvous<P, C, W> {
    /// An empty table that tracks at most `max_paths` paths at once.
    pub(crate) fn new(max_paths: usize) -> Self {
        Rendezvous {
            paths: HashMap::new(),
            next_waiter_id: 0,
            max_paths,
        }
    }

    /// Number of paths with at least one waiter or transfer.
    #[cfg(test)]
    pub(crate) fn live_paths(&self) -> usize {
        self.paths.len()
    }

    /// Who is on `path` right now.
    pub(crate) fn status(&self, path: &StreamPath) -> StreamStatus {
        self.paths
            .get(path)
            .map(|state| StreamStatus {
                producer: presence(&state.producer, &state.await_reader),
                consumer: presence(&state.consumer, &state.await_writer),
            })
            .unwrap_or_default()
    }

    fn waiter_id(&mut self) -> WaiterId {
        self.next_waiter_id += 1;
        WaiterId(self.next_waiter_id)
    }

    /// The state of `path`, created if there is room.
    fn entry(&mut self, path: &StreamPath) -> Option<&mut PathState<P, C, W>> {
        if !self.paths.contains_key(path) {
            if self.paths.len() >= self.max_paths {
                return None;
            }
            self.paths.insert(path.clone(), PathState::new());
        }
        self.paths.get_mut(path)
    }

    fn forget_if_idle(&mut self, path: &StreamPath) {
        if self.paths.get(path).is_some_and(PathState::is_idle) {
            self.paths.remove(path);
        }
    }

    /// A producer (`PUT`) arrives on `path` carrying `offer`.
    pub(crate) fn arrive_producer(&mut self, path: &StreamPath, offer: P) -> Arrival<P, C, W> {
        let waiter = self.waiter_id();
        let Some(state) = self.entry(path) else {
            return Arrival::Full(offer);
        };
        if !state.producer.is_empty() {
            return Arrival::Busy(offer);
        }
        if let Seat::Waiting(..) = state.consumer {
            let Seat::Waiting(_, theirs) = std::mem::replace(&mut state.consumer, Seat::Busy)
            else {
                unreachable!("matched just above")
            };
            state.producer = Seat::Busy;
            return Arrival::Paired {
                theirs,
                mine: offer,
            };
        }
        state.producer = Seat::Waiting(waiter, offer);
        let wake = state.await_writer.take().map(|(_, w)| w);
        Arrival::Waiting { waiter, wake }
    }

    /// A consumer (`GET`) arrives on `path` carrying `offer`.
    pub(crate) fn arrive_consumer(&mut self, path: &StreamPath, offer: C) -> Arrival<C, P, W> {
        let waiter = self.waiter_id();
        let Some(state) = self.entry(path) else {
            return Arrival::Full(offer);
        };
        if !state.consumer.is_empty() {
            return Arrival::Busy(offer);
        }
        if let Seat::Waiting(..) = state.producer {
            let Seat::Waiting(_, theirs) = std::mem::replace(&mut state.producer, Seat::Busy)
            else {
                unreachable!("matched just above")
            };
            state.consumer = Seat::Busy;
            return Arrival::Paired {
                theirs,
                mine: offer,
            };
        }
        state.consumer = Seat::Waiting(waiter, offer);
        let wake = state.await_reader.take().map(|(_, w)| w);
        Arrival::Waiting { waiter, wake }
    }

    /// A Connect waiter arrives on `path` in `mode`, to be woken through `waker`.
    pub(crate) fn await_peer(
        &mut self,
        path: &StreamPath,
        mode: ConnectMode,
        waker: W,
    ) -> ConnectArrival<W> {
        let waiter = self.waiter_id();
        let Some(state) = self.entry(path) else {
            return ConnectArrival::Full(waker);
        };
        let (mine, theirs, peer_seat_waiting) = match mode {
            ConnectMode::AwaitReader => (
                &mut state.await_reader,
                &mut state.await_writer,
                matches!(state.consumer, Seat::Waiting(..)),
            ),
            ConnectMode::AwaitWriter => (
                &mut state.await_writer,
                &mut state.await_reader,
                matches!(state.producer, Seat::Waiting(..)),
            ),
        };
        if mine.is_some() {
            return ConnectArrival::Busy(waker);
        }
        if let Some((_, wake)) = theirs.take() {
            // Two Connect waiters of opposite modes meet: both are answered.
            let answer = ConnectArrival::Ready { wake: Some(wake) };
            self.forget_if_idle(path);
            return answer;
        }
        if peer_seat_waiting {
            return ConnectArrival::Ready { wake: None };
        }
        *mine = Some((waiter, waker));
        ConnectArrival::Waiting(waiter)
    }

    /// A waiting request (Data or Connect) gives up: timeout, shutdown, or its
    /// client went away. Does nothing if `waiter` is no longer parked (it was
    /// paired or woken in the meantime).
    pub(crate) fn withdraw(&mut self, path: &StreamPath, waiter: WaiterId) {
        let Some(state) = self.paths.get_mut(path) else {
            return;
        };
        if matches!(state.producer, Seat::Waiting(t, _) if t == waiter) {
            state.producer = Seat::Empty;
        }
        if matches!(state.consumer, Seat::Waiting(t, _) if t == waiter) {
            state.consumer = Seat::Empty;
        }
        for slot in [&mut state.await_reader, &mut state.await_writer] {
            if matches!(slot, Some((t, _)) if *t == waiter) {
                *slot = None;
            }
        }
        self.forget_if_idle(path);
    }

    /// A transfer on `path` is over (finished, failed, or never started):
    /// both seats are free again.
    pub(crate) fn release_pair(&mut self, path: &StreamPath) {
        if let Some(state) = self.paths.get_mut(path) {
            if matches!(state.producer, Seat::Busy) {
                state.producer = Seat::Empty;
            }
            if matches!(state.consumer, Seat::Busy) {
                state.consumer = Seat::Empty;
            }
        }
        self.forget_if_idle(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Table = Rendezvous<&'static str, &'static str, &'static str>;

    fn p(s: &str) -> StreamPath {
        StreamPath::parse(s).unwrap()
    }

    #[test]
    fn producer_first_then_consumer_pairs() {
        let mut t = Table::new(10);
        assert!(matches!(
            t.arrive_producer(&p("/s"), "prod"),
            Arrival::Waiting { wake: None, .. }
        ));
        match t.arrive_consumer(&p("/s"), "cons") {
            Arrival::Paired { theirs, mine } => assert_eq!((theirs, mine), ("prod", "cons")),
            other => panic!("expected a pair, got {other:?}"),
        }
        // Both roles are busy during the transfer.
        assert!(matches!(
            t.arrive_producer(&p("/s"), "p2"),
            Arrival::Busy("p2")
        ));
        assert!(matches!(
            t.arrive_consumer(&p("/s"), "c2"),
            Arrival::Busy("c2")
        ));
        t.release_pair(&p("/s"));
        assert_eq!(t.live_paths(), 0, "an idle path is forgotten");
    }

    #[test]
    fn consumer_first_then_producer_pairs() {
        let mut t = Table::new(10);
        assert!(matches!(
            t.arrive_consumer(&p("/s"), "cons"),
            Arrival::Waiting { .. }
        ));
        match t.arrive_producer(&p("/s"), "prod") {
            Arrival::Paired { theirs, mine } => assert_eq!((theirs, mine), ("cons", "prod")),
            other => panic!("expected a pair, got {other:?}"),
        }
    }

    #[test]
    fn second_waiting_producer_is_busy_and_first_can_withdraw() {
        let mut t = Table::new(10);
        let Arrival::Waiting { waiter, .. } = t.arrive_producer(&p("/s"), "one") else {
            panic!("first producer should wait");
        };
        assert!(matches!(
            t.arrive_producer(&p("/s"), "two"),
            Arrival::Busy("two")
        ));
        t.withdraw(&p("/s"), waiter);
        assert_eq!(t.live_paths(), 0);
        assert!(matches!(
            t.arrive_producer(&p("/s"), "three"),
            Arrival::Waiting { .. }
        ));
    }

    #[test]
    fn stale_withdraw_after_pairing_changes_nothing() {
        let mut t = Table::new(10);
        let Arrival::Waiting { waiter, .. } = t.arrive_producer(&p("/s"), "prod") else {
            panic!()
        };
        assert!(matches!(
            t.arrive_consumer(&p("/s"), "cons"),
            Arrival::Paired { .. }
        ));
        t.withdraw(&p("/s"), waiter);
        assert!(matches!(
            t.arrive_producer(&p("/s"), "p2"),
            Arrival::Busy(_)
        ));
    }

    #[test]
    fn paths_are_independent() {
        let mut t = Table::new(10);
        assert!(matches!(
            t.arrive_producer(&p("/a"), "a"),
            Arrival::Waiting { .. }
        ));
        assert!(matches!(
            t.arrive_consumer(&p("/b"), "b"),
            Arrival::Waiting { .. }
        ));
        assert_eq!(t.live_paths(), 2);
    }

    #[test]
    fn connect_waiters_of_opposite_modes_meet() {
        let mut t = Table::new(10);
        assert!(matches!(
            t.await_peer(&p("/s"), ConnectMode::AwaitReader, "w-prod"),
            ConnectArrival::Waiting(_)
        ));
        assert!(matches!(
            t.await_peer(&p("/s"), ConnectMode::AwaitReader, "again"),
            ConnectArrival::Busy("again")
        ));
        assert!(matches!(
            t.await_peer(&p("/s"), ConnectMode::AwaitWriter, "w-cons"),
            ConnectArrival::Ready {
                wake: Some("w-prod")
            }
        ));
        assert_eq!(t.live_paths(), 0);
    }

    #[test]
    fn connect_waiter_is_answered_by_a_waiting_data_request() {
        let mut t = Table::new(10);
        assert!(matches!(
            t.arrive_consumer(&p("/s"), "get"),
            Arrival::Waiting { .. }
        ));
        assert!(matches!(
            t.await_peer(&p("/s"), ConnectMode::AwaitReader, "w"),
            ConnectArrival::Ready { wake: None }
        ));
        // A waiter of the same side as the waiting request still waits.
        assert!(matches!(
            t.await_peer(&p("/s"), ConnectMode::AwaitWriter, "w2"),
            ConnectArrival::Waiting(_)
        ));
    }

    #[test]
    fn data_arrival_wakes_the_opposite_connect_waiter() {
        let mut t = Table::new(10);
        assert!(matches!(
            t.await_peer(&p("/s"), ConnectMode::AwaitWriter, "consumer-waiter"),
            ConnectArrival::Waiting(_)
        ));
        assert!(matches!(
            t.arrive_producer(&p("/s"), "put"),
            Arrival::Waiting {
                wake: Some("consumer-waiter"),
                ..
            }
        ));
    }

    #[test]
    fn busy_transfer_does_not_answer_connect_waiters() {
        let mut t = Table::new(10);
        t.arrive_producer(&p("/s"), "put");
        t.arrive_consumer(&p("/s"), "get");
        assert!(matches!(
            t.await_peer(&p("/s"), ConnectMode::AwaitWriter, "w"),
            ConnectArrival::Waiting(_)
        ));
    }

    #[test]
    fn full_table_refuses_new_paths_only() {
        let mut t = Table::new(1);
        assert!(matches!(
            t.arrive_producer(&p("/a"), "a"),
            Arrival::Waiting { .. }
        ));
        assert!(matches!(
            t.arrive_producer(&p("/b"), "b"),
            Arrival::Full("b")
        ));
        assert!(matches!(
            t.await_peer(&p("/b"), ConnectMode::AwaitReader, "w"),
            ConnectArrival::Full("w")
        ));
        assert!(matches!(
            t.arrive_consumer(&p("/a"), "a2"),
            Arrival::Paired { .. }
        ));
    }

    #[test]
    fn status_reports_each_side() {
        let mut t = Table::new(10);
        assert_eq!(t.status(&p("/s")), StreamStatus::default());
        t.await_peer(&p("/s"), ConnectMode::AwaitWriter, "w");
        t.arrive_producer(&p("/s"), "put");
        assert_eq!(t.status(&p("/s")).producer, Presence::Waiting);
        assert_eq!(
            t.status(&p("/s")).consumer,
            Presence::Absent,
            "the waiter was woken"
        );
        t.arrive_consumer(&p("/s"), "get");
        let both = t.status(&p("/s"));
        assert_eq!(
            (both.producer, both.consumer),
            (Presence::Transferring, Presence::Transferring)
        );
        t.await_peer(&p("/t"), ConnectMode::AwaitReader, "w");
        assert_eq!(t.status(&p("/t")).producer, Presence::Connecting);
    }

    #[test]
    fn connect_waiter_withdraws() {
        let mut t = Table::new(10);
        let ConnectArrival::Waiting(waiter) = t.await_peer(&p("/s"), ConnectMode::AwaitReader, "w")
        else {
            panic!()
        };
        t.withdraw(&p("/s"), waiter);
        assert_eq!(t.live_paths(), 0);
    }
}

//! When a connection that hyper serves has nothing to do.
//!
//! Every request (an HTTP/1.1 request or an h2 stream) holds an
//! [`OpenRequest`] from the moment hyper hands it to the service until its
//! response body is dropped. [`Activity::quiet`] resolves when the
//! connection should close for doing nothing:
//! - no request at all before the head deadline (counted from accept, so a
//!   TLS handshake, an h2 preface or a slow HTTP/1.1 head all spend the same
//!   time; see `server.rs`), or
//! - no open request for the idle timeout (an idle h2 connection, an idle
//!   HTTP/1.1 keep-alive connection).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// Why a connection was found doing nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Quiet {
    /// No complete request head arrived before the head deadline.
    NoRequest,
    /// No request was open for the idle timeout.
    Idle,
}

impl Quiet {
    /// The label in `zebrastream_closed_connections_total`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Quiet::NoRequest => "no_request_head",
            Quiet::Idle => "idle",
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct State {
    /// Requests open now.
    open: usize,
    /// Requests seen so far.
    seen: u64,
}

/// The requests of one connection.
pub(crate) struct Activity {
    state: watch::Sender<State>,
}

impl Activity {
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            state: watch::Sender::new(State::default()),
        })
    }

    /// A request arrived; it is open until the returned guard drops.
    pub(crate) fn open(self: &Arc<Self>) -> OpenRequest {
        self.state.send_modify(|s| {
            s.open += 1;
            s.seen += 1;
        });
        OpenRequest(Arc::clone(self))
    }

    /// Resolves when the connection should close: no request by `deadline`
    /// (`None`: its first request head was read already), or later no open
    /// request for `idle`.
    pub(crate) async fn quiet(&self, deadline: Option<Instant>, idle: Duration) -> Quiet {
        let mut state = self.state.subscribe();
        if let Some(deadline) = deadline {
            let first = tokio::time::timeout_at(deadline, state.wait_for(|s| s.seen > 0));
            if first.await.is_err() {
                return Quiet::NoRequest;
            }
        }
        loop {
            // The sender lives as long as `self`: these never fail.
            let seen = match state.wait_for(|s| s.open == 0).await {
                Ok(s) => s.seen,
                Err(_) => return Quiet::Idle,
            };
            let busy = state.wait_for(|s| s.open > 0 || s.seen != seen);
            if tokio::time::timeout(idle, busy).await.is_err() {
                return Quiet::Idle;
            }
        }
    }
}

/// One open request of a connection (see [`Activity::open`]).
pub(crate) struct OpenRequest(Arc<Activity>);

impl Drop for OpenRequest {
    fn drop(&mut self) {
        self.0.state.send_modify(|s| s.open -= 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_request_before_the_deadline() {
        let activity = Activity::new();
        let deadline = Instant::now() + Duration::from_millis(200);
        let quiet = activity.quiet(Some(deadline), Duration::from_secs(60));
        assert_eq!(quiet.await, Quiet::NoRequest);
        assert!(Instant::now() >= deadline);
    }

    #[tokio::test]
    async fn idle_counts_from_the_last_open_request() {
        let ms = Duration::from_millis;
        let activity = Activity::new();
        let start = Instant::now();
        let request = activity.open();
        let quiet = tokio::spawn({
            let activity = Arc::clone(&activity);
            async move {
                let end = activity.quiet(Some(start + ms(100)), ms(300)).await;
                (end, Instant::now())
            }
        });
        // A request open longer than the idle timeout keeps the connection;
        // a short one restarts the timer.
        tokio::time::sleep(ms(500)).await;
        drop(request);
        tokio::time::sleep(ms(150)).await;
        drop(activity.open());
        let (end, at) = quiet.await.unwrap();
        assert_eq!(end, Quiet::Idle);
        assert!(at - start >= ms(950), "closed after {:?}", at - start);
    }
}

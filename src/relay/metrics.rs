//! Counters the relay exports at `GET /metrics` (on the metrics listener
//! only, `--metrics-listen`) in the Prometheus text format: what is waiting,
//! what is flowing, how much went through, how each transfer and each
//! request ended, and the connections held, refused and closed for idling.
//! Counts only: no paths, tokens or payload bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;

use http::StatusCode;

use super::connections::Refused;
use super::idle::Quiet;

/// How a transfer ended, as counted in `zebrastream_transfers_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TransferEnd {
    /// Every byte reached the consumer and both sides ended cleanly.
    Delivered,
    /// The consumer went away before the end.
    ConsumerGone,
    /// The producer's upload broke off; the consumer was aborted.
    ProducerFailed,
    /// A tap ended the consumer's response early (tests and audits).
    EndedByTap,
}

impl TransferEnd {
    fn label(self) -> &'static str {
        match self {
            TransferEnd::Delivered => "delivered",
            TransferEnd::ConsumerGone => "consumer_gone",
            TransferEnd::ProducerFailed => "producer_failed",
            TransferEnd::EndedByTap => "ended_by_tap",
        }
    }
}

/// The relay's counters; every update is one atomic operation (or a short,
/// non-awaiting lock for the per-status map).
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    waiting: AtomicI64,
    active: AtomicI64,
    forwarded_bytes: AtomicU64,
    transfers: Mutex<BTreeMap<TransferEnd, u64>>,
    responses: Mutex<BTreeMap<u16, u64>>,
    /// Refused connections by [`Refused::label`].
    refused: Mutex<BTreeMap<&'static str, u64>>,
    /// Connections closed for doing nothing, by [`Quiet::label`].
    quiet: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// A request started (+1) or stopped (-1) waiting for its peer.
    pub(crate) fn waiting(&self, delta: i64) {
        self.waiting.fetch_add(delta, Ordering::Relaxed);
    }

    /// A transfer started (+1) or ended (-1).
    pub(crate) fn active(&self, delta: i64) {
        self.active.fetch_add(delta, Ordering::Relaxed);
    }

    /// Bytes forwarded from a producer to its consumer.
    pub(crate) fn forwarded(&self, bytes: usize) {
        self.forwarded_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A transfer ended.
    pub(crate) fn transfer_ended(&self, end: TransferEnd) {
        *lock(&self.transfers).entry(end).or_default() += 1;
    }

    /// A response was sent with `status`.
    pub(crate) fn responded(&self, status: StatusCode) {
        *lock(&self.responses).entry(status.as_u16()).or_default() += 1;
    }

    /// A connection was refused (over a connection limit).
    pub(crate) fn refused(&self, why: Refused) {
        *lock(&self.refused).entry(why.label()).or_default() += 1;
    }

    /// A connection was closed for doing nothing.
    pub(crate) fn closed_quiet(&self, why: Quiet) {
        *lock(&self.quiet).entry(why.label()).or_default() += 1;
    }

    /// The exposition text (Prometheus text format 0.0.4), with
    /// `open_connections` the connections held now.
    pub(crate) fn render(&self, open_connections: usize) -> String {
        let mut out = String::with_capacity(1024);
        let gauge = |out: &mut String, name: &str, help: &str, value: i64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        };
        gauge(
            &mut out,
            "zebrastream_waiting_requests",
            "Connect waiters and unpaired Data-API requests waiting for their peer.",
            self.waiting.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "zebrastream_active_transfers",
            "Paired transfers in progress.",
            self.active.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            out,
            "# HELP zebrastream_forwarded_bytes_total Payload bytes forwarded from producers to consumers.\n# TYPE zebrastream_forwarded_bytes_total counter\nzebrastream_forwarded_bytes_total {}",
            self.forwarded_bytes.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP zebrastream_transfers_total Transfers by how they ended.\n# TYPE zebrastream_transfers_total counter"
        );
        let transfers = lock(&self.transfers);
        for end in [
            TransferEnd::Delivered,
            TransferEnd::ConsumerGone,
            TransferEnd::ProducerFailed,
            TransferEnd::EndedByTap,
        ] {
            let count = transfers.get(&end).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "zebrastream_transfers_total{{outcome=\"{}\"}} {count}",
                end.label()
            );
        }
        drop(transfers);
        let _ = writeln!(
            out,
            "# HELP zebrastream_responses_total Responses by HTTP status (4xx/5xx name refused requests: 400 bad path, 401/403 token, 409 busy, 503 limit or shutdown).\n# TYPE zebrastream_responses_total counter"
        );
        for (status, count) in lock(&self.responses).iter() {
            let _ = writeln!(
                out,
                "zebrastream_responses_total{{code=\"{status}\"}} {count}"
            );
        }
        gauge(
            &mut out,
            "zebrastream_open_connections",
            "Client connections held (public listener).",
            i64::try_from(open_connections).unwrap_or(i64::MAX),
        );
        let labelled = |out: &mut String,
                        name: &str,
                        help: &str,
                        label: &str,
                        labels: &[&str],
                        counts: &BTreeMap<&'static str, u64>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for value in labels {
                let count = counts.get(value).copied().unwrap_or(0);
                let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {count}");
            }
        };
        labelled(
            &mut out,
            "zebrastream_refused_connections_total",
            "Connections closed at once, over the total or the per-client connection limit.",
            "limit",
            &[Refused::Total.label(), Refused::PerClient.label()],
            &lock(&self.refused),
        );
        labelled(
            &mut out,
            "zebrastream_quiet_connections_total",
            "Connections closed for doing nothing: no request head before the head timeout, or no open request for the idle timeout.",
            "reason",
            &[Quiet::NoRequest.label(), Quiet::Idle.label()],
            &lock(&self.quiet),
        );
        out
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Counters stay meaningful after a panic elsewhere: take the lock over.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_current_values() {
        let m = Metrics::default();
        m.waiting(2);
        m.waiting(-1);
        m.active(1);
        m.forwarded(1000);
        m.transfer_ended(TransferEnd::Delivered);
        m.transfer_ended(TransferEnd::ProducerFailed);
        m.responded(StatusCode::CONFLICT);
        m.responded(StatusCode::CONFLICT);
        m.refused(Refused::PerClient);
        m.closed_quiet(Quiet::Idle);
        m.closed_quiet(Quiet::Idle);
        let text = m.render(7);
        for line in [
            "zebrastream_waiting_requests 1",
            "zebrastream_active_transfers 1",
            "zebrastream_forwarded_bytes_total 1000",
            "zebrastream_transfers_total{outcome=\"delivered\"} 1",
            "zebrastream_transfers_total{outcome=\"producer_failed\"} 1",
            "zebrastream_transfers_total{outcome=\"consumer_gone\"} 0",
            "zebrastream_responses_total{code=\"409\"} 2",
            "zebrastream_open_connections 7",
            "zebrastream_refused_connections_total{limit=\"per_client\"} 1",
            "zebrastream_refused_connections_total{limit=\"total\"} 0",
            "zebrastream_quiet_connections_total{reason=\"idle\"} 2",
            "zebrastream_quiet_connections_total{reason=\"no_request_head\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }
}

//! How many connections the relay holds: at most `max` in all and at most
//! `max_per_client` from one client address, so that one address cannot take
//! the relay's file descriptors and memory from everyone else.
//!
//! A client address is an IPv4 address, or an IPv6 address's /64 prefix (one
//! host usually holds a whole /64); an IPv4-mapped IPv6 address counts as its
//! IPv4 address. Trusted proxies (a balancer in front of the relay) are
//! exempt from the per-client limit, as every client reaches the relay
//! through them; they still count towards the total.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};

/// A client address as the limits count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey(IpAddr);

impl ClientKey {
    /// The key of `ip`: itself for IPv4 (also when IPv4-mapped), its /64 for IPv6.
    pub(crate) fn of(ip: IpAddr) -> ClientKey {
        match ip {
            IpAddr::V4(v4) => ClientKey(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientKey(IpAddr::V4(v4)),
                None => {
                    let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                    ClientKey(IpAddr::V6(Ipv6Addr::from(prefix)))
                }
            },
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The relay holds its maximum number of connections.
    Total,
    /// This client address holds its maximum number of connections.
    PerClient,
}

impl Refused {
    /// The label in `zebrastream_refused_connections_total`.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Refused::Total => "total",
            Refused::PerClient => "per_client",
        }
    }
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_client: HashMap<ClientKey, usize>,
}

/// The connection limits and the current counts.
pub(crate) struct ConnectionLimits {
    max: usize,
    max_per_client: usize,
    trusted: Vec<ClientKey>,
    counts: Mutex<Counts>,
}

impl ConnectionLimits {
    pub(crate) fn new(max: usize, max_per_client: usize, trusted: &[IpAddr]) -> Self {
        ConnectionLimits {
            max,
            max_per_client,
            trusted: trusted.iter().copied().map(ClientKey::of).collect(),
            counts: Mutex::default(),
        }
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        // A few integer operations: a panic inside cannot leave them half done.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `ip` is one of the trusted proxies.
    pub(crate) fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.contains(&ClientKey::of(ip))
    }

    /// Takes a seat for a connection from `peer`, freed when the slot drops.
    pub(crate) fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<ConnectionSlot, Refused> {
        let key = ClientKey::of(peer);
        let exempt = self.trusted.contains(&key);
        let mut counts = self.counts();
        if counts.total >= self.max {
            return Err(Refused::Total);
        }
        let client = if exempt {
            None
        } else {
            let held = counts.per_client.entry(key).or_default();
            if *held >= self.max_per_client {
                return Err(Refused::PerClient);
            }
            *held += 1;
            Some(key)
        };
        counts.total += 1;
        Ok(ConnectionSlot {
            limits: Arc::clone(self),
            client,
        })
    }

    /// Connections held right now.
    pub(crate) fn open(&self) -> usize {
        self.counts().total
    }
}

/// One admitted connection; dropping it frees its seat.
pub(crate) struct ConnectionSlot {
    limits: Arc<ConnectionLimits>,
    /// The client whose count it is in (`None`: a trusted proxy).
    client: Option<ClientKey>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self.limits.counts();
        counts.total -= 1;
        if let Some(key) = self.client {
            if let Some(held) = counts.per_client.get_mut(&key) {
                *held -= 1;
                if *held == 0 {
                    counts.per_client.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_client_and_total_limits_free_on_drop() {
        let limits = Arc::new(ConnectionLimits::new(4, 2, &[ip("10.0.0.9")]));
        let a1 = limits.admit(ip("10.0.0.1")).unwrap();
        let _a2 = limits.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(limits.admit(ip("10.0.0.1")).err(), Some(Refused::PerClient));
        let _b = limits.admit(ip("10.0.0.2")).unwrap();
        drop(a1);
        let _a3 = limits.admit(ip("10.0.0.1")).unwrap();
        // The proxy is exempt per client, not from the total.
        let _p = limits.admit(ip("10.0.0.9")).unwrap();
        assert_eq!(limits.open(), 4);
        assert_eq!(limits.admit(ip("10.0.0.9")).err(), Some(Refused::Total));
        assert_eq!(limits.admit(ip("10.0.0.3")).err(), Some(Refused::Total));
    }

    #[test]
    fn one_ipv6_64_is_one_client_and_mapped_v4_is_v4() {
        let limits = Arc::new(ConnectionLimits::new(100, 1, &[]));
        let _a = limits.admit(ip("2001:db8:1:2::1")).unwrap();
        assert_eq!(
            limits.admit(ip("2001:db8:1:2:ffff::7")).err(),
            Some(Refused::PerClient)
        );
        let _b = limits.admit(ip("2001:db8:1:3::1")).unwrap();
        let _c = limits.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(
            limits.admit(ip("::ffff:192.0.2.1")).err(),
            Some(Refused::PerClient)
        );
        assert!(ConnectionLimits::new(1, 1, &[ip("::ffff:127.0.0.1")]).is_trusted(ip("127.0.0.1")));
    }
}

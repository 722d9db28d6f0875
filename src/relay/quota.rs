//! The stream quota: how many streams (waiting or transferring) one token
//! may hold at once, or on an open relay one client address, so that one
//! tenant cannot take every stream the relay has (`--max-streams`).
//!
//! The unit is a *transfer*: a stream path together with its side paths
//! ([`crate::protocol::transfer_path`]), so a forward-secrecy exchange on
//! `<path>/~fs-…` costs no extra slot, and a producer and a consumer of one
//! transfer that present the same token hold one slot between them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::connections::ClientKey;
use super::path::StreamPath;

/// Who holds a stream: the token that opened it, or on an open relay the
/// client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Holder {
    /// A token, by its SHA-256 digest.
    Token([u8; 32]),
    /// A client address (open relay).
    Client(ClientKey),
}

/// A refused request: the holder has its `limit` transfers already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OverQuota {
    pub(crate) holder: Holder,
    pub(crate) limit: usize,
}

impl std::fmt::Display for OverQuota {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = match self.holder {
            Holder::Token(_) => "this access token",
            Holder::Client(_) => "this client address",
        };
        write!(
            f,
            "stream quota reached: {who} already holds {} streams (waiting or transferring); retry when one ends",
            self.limit
        )
    }
}

/// The transfers each holder holds, with how many requests hold each.
#[derive(Default)]
pub(crate) struct StreamQuota {
    held: Mutex<HashMap<Holder, HashMap<String, usize>>>,
}

impl StreamQuota {
    fn held(&self) -> MutexGuard<'_, HashMap<Holder, HashMap<String, usize>>> {
        // Map updates only: a panic inside cannot leave them half done.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a slot for `holder` on the transfer of `path`, unless the holder
    /// holds `limit` other transfers already. A transfer it holds already
    /// costs nothing more.
    pub(crate) fn take(
        self: &Arc<Self>,
        holder: Holder,
        path: &StreamPath,
        limit: usize,
    ) -> Result<QuotaSlot, OverQuota> {
        let transfer = crate::protocol::transfer_path(path.as_str());
        let mut held = self.held();
        let transfers = held.entry(holder).or_default();
        if let Some(requests) = transfers.get_mut(transfer) {
            *requests += 1;
        } else if transfers.len() < limit {
            transfers.insert(transfer.to_owned(), 1);
        } else {
            if transfers.is_empty() {
                held.remove(&holder);
            }
            return Err(OverQuota { holder, limit });
        }
        Ok(QuotaSlot {
            quota: Arc::clone(self),
            holder,
            transfer: transfer.to_owned(),
        })
    }

    /// Transfers `holder` holds now.
    #[cfg(test)]
    fn count(&self, holder: Holder) -> usize {
        self.held().get(&holder).map_or(0, HashMap::len)
    }
}

/// One request's share of its holder's quota, freed when dropped.
pub(crate) struct QuotaSlot {
    quota: Arc<StreamQuota>,
    holder: Holder,
    transfer: String,
}

impl Drop for QuotaSlot {
    fn drop(&mut self) {
        let mut held = self.quota.held();
        if let Some(transfers) = held.get_mut(&self.holder) {
            if let Some(requests) = transfers.get_mut(&self.transfer) {
                *requests -= 1;
                if *requests == 0 {
                    transfers.remove(&self.transfer);
                }
            }
            if transfers.is_empty() {
                held.remove(&self.holder);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> StreamPath {
        StreamPath::parse(s).unwrap()
    }

    #[test]
    fn a_holder_gets_its_limit_of_transfers_side_paths_included() {
        let quota = Arc::new(StreamQuota::default());
        let a = Holder::Token([1; 32]);
        let b = Holder::Token([2; 32]);
        let first = quota.take(a, &p("/t/one"), 2).unwrap();
        let side = quota.take(a, &p("/t/one/~fs-offer"), 2).unwrap();
        let same = quota.take(a, &p("/t/one"), 2).unwrap();
        assert_eq!(
            quota.count(a),
            1,
            "side paths and both ends are one transfer"
        );
        let _second = quota.take(a, &p("/t/two"), 2).unwrap();
        let refused = quota.take(a, &p("/t/three"), 2).err().unwrap();
        assert_eq!(refused.limit, 2);
        assert!(refused.to_string().contains("access token already holds 2"));
        let _other = quota.take(b, &p("/t/three"), 2).unwrap();
        drop((first, side));
        assert!(quota.take(a, &p("/t/three"), 2).is_err(), "still held once");
        drop(same);
        let _third = quota.take(a, &p("/t/three"), 2).unwrap();
    }

    #[test]
    fn released_holders_are_forgotten() {
        let quota = Arc::new(StreamQuota::default());
        let a = Holder::Client(ClientKey::of("10.0.0.1".parse().unwrap()));
        assert!(quota.take(a, &p("/x"), 0).is_err());
        drop(quota.take(a, &p("/x"), 1).unwrap());
        assert!(quota.held().is_empty());
    }
}

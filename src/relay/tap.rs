//! Forwarding taps: look at (or tamper with) every chunk the relay forwards.
//!
//! A tap exists for tests, audits and demos: it proves the relay only ever saw
//! ciphertext ([`CaptureTap`]), and it can play a *malicious relay* that
//! flips bits or drops the tail of a stream, so clients can show they detect
//! it. It is public API, not a test-only hook.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::BytesMut;

/// What the relay does after a tap has seen a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapVerdict {
    /// Forward the (possibly altered) chunk and carry on.
    Forward,
    /// Drop this chunk and end the consumer's response *cleanly* now, as a
    /// malicious relay cutting off the tail would. The rest of the upload is
    /// read and discarded, and the producer is still told the transfer
    /// succeeded (that is the lie a malicious relay would tell).
    EndStream,
}

/// Called on every chunk forwarded from a producer to its consumer.
///
/// `path` is the stream path (e.g. `/team/stream`). `chunk` may be inspected
/// or modified in place (length changes are allowed). Calls for one stream
/// come in order from one task; calls for different streams may be
/// concurrent. Keep it fast: it runs on the forwarding path.
///
/// ```
/// use std::sync::Arc;
/// use bytes::BytesMut;
/// use zebrastream::relay::{ForwardTap, RelayConfig, TapVerdict};
///
/// /// A malicious relay that flips one bit of every chunk.
/// struct BitFlipper;
/// impl ForwardTap for BitFlipper {
///     fn forward(&self, _path: &str, chunk: &mut BytesMut) -> TapVerdict {
///         if let Some(b) = chunk.first_mut() {
///             *b ^= 1;
///         }
///         TapVerdict::Forward
///     }
/// }
/// let config = RelayConfig::open_loopback().tap(Arc::new(BitFlipper));
/// # let _ = config;
/// ```
pub trait ForwardTap: Send + Sync + 'static {
    /// Sees one chunk on its way to the consumer; returns what to do next.
    fn forward(&self, path: &str, chunk: &mut BytesMut) -> TapVerdict;
}

/// A tap that records the bytes forwarded on each path (up to a limit).
///
/// ```
/// use std::sync::Arc;
/// use zebrastream::relay::{CaptureTap, RelayConfig};
///
/// let capture = Arc::new(CaptureTap::new(1 << 20));
/// let config = RelayConfig::open_loopback().tap(capture.clone());
/// // ... run a transfer on /demo through a relay bound with `config` ...
/// assert!(capture.bytes("/demo").is_empty());
/// # let _ = config;
/// ```
#[derive(Debug)]
pub struct CaptureTap {
    limit: usize,
    seen: Mutex<HashMap<String, Capture>>,
}

#[derive(Debug, Default)]
struct Capture {
    bytes: Vec<u8>,
    /// Bytes forwarded but not kept because the limit was reached.
    dropped: u64,
}

impl CaptureTap {
    /// Records at most `limit_bytes` per path; later bytes are counted but not kept.
    pub fn new(limit_bytes: usize) -> Self {
        CaptureTap {
            limit: limit_bytes,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// The bytes forwarded on `path` so far (across every transfer on it),
    /// up to the limit. Empty when nothing was forwarded.
    pub fn bytes(&self, path: &str) -> Vec<u8> {
        self.lock()
            .get(path)
            .map(|c| c.bytes.clone())
            .unwrap_or_default()
    }

    /// Total number of bytes forwarded on `path`, including those past the limit.
    pub fn total_len(&self, path: &str) -> u64 {
        self.lock()
            .get(path)
            .map_or(0, |c| c.bytes.len() as u64 + c.dropped)
    }

    /// Forgets everything recorded for `path`.
    pub fn clear(&self, path: &str) {
        self.lock().remove(path);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Capture>> {
        // A panic in another tap call cannot leave the map inconsistent: keep going.
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ForwardTap for CaptureTap {
    fn forward(&self, path: &str, chunk: &mut BytesMut) -> TapVerdict {
        let mut seen = self.lock();
        let capture = seen.entry(path.to_owned()).or_default();
        let room = self.limit.saturating_sub(capture.bytes.len());
        let kept = room.min(chunk.len());
        capture.bytes.extend_from_slice(&chunk[..kept]);
        capture.dropped += (chunk.len() - kept) as u64;
        TapVerdict::Forward
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_bytes_per_path_up_to_the_limit() {
        let tap = CaptureTap::new(5);
        let mut a = BytesMut::from(&b"abc"[..]);
        assert_eq!(tap.forward("/a", &mut a), TapVerdict::Forward);
        let mut more = BytesMut::from(&b"defg"[..]);
        tap.forward("/a", &mut more);
        tap.forward("/b", &mut BytesMut::from(&b"x"[..]));
        assert_eq!(tap.bytes("/a"), b"abcde");
        assert_eq!(tap.total_len("/a"), 7);
        assert_eq!(tap.bytes("/b"), b"x");
        assert!(tap.bytes("/c").is_empty());
        assert_eq!(&more[..], b"defg", "capturing never alters the chunk");
        tap.clear("/a");
        assert!(tap.bytes("/a").is_empty());
    }
}

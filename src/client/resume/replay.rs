//! The producer's replay buffer: the sealed chunks the reader has not
//! acknowledged yet, exactly as they went on the wire, indexed by chunk
//! counter, so a resumed leg re-sends the same bytes (nothing is ever
//! sealed twice under one nonce).
//!
//! The buffer is also the writer's window: a chunk leaves it only once the
//! reader acknowledged it, and the writer waits for room, so whatever is
//! in flight (socket buffers, the relay) can always be sent again and a
//! reader is never further behind than the buffer holds.

use std::collections::VecDeque;

use bytes::Bytes;

/// Sealed chunks `first..first + frames.len()`, with their plaintext sizes,
/// up to `capacity` wire bytes (or one chunk, if larger); chunks below the
/// reader's acknowledgement are dropped.
#[derive(Debug)]
pub(crate) struct ReplayBuffer {
    frames: VecDeque<(Bytes, u64)>,
    first: u64,
    held: usize,
    capacity: usize,
    /// Plaintext bytes of every chunk sealed so far, dropped ones included.
    plaintext_total: u64,
}

/// Where a resume at chunk `k` stands against the buffer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReplayFrom {
    /// Chunk `k` is held (or is the next one to be sealed).
    Held,
    /// Chunk `k` was dropped: the reader is `behind` plaintext bytes back;
    /// the buffer holds `held` wire bytes from chunk `oldest` on.
    Behind { behind: u64, held: u64, oldest: u64 },
    /// Chunk `k` was never sealed: the request is not from our reader.
    Ahead { next: u64 },
}

impl ReplayBuffer {
    /// An empty buffer keeping up to `capacity` wire bytes.
    pub(crate) fn new(capacity: usize) -> ReplayBuffer {
        ReplayBuffer {
            frames: VecDeque::new(),
            first: 0,
            held: 0,
            capacity,
            plaintext_total: 0,
        }
    }

    /// The index the next pushed chunk gets.
    pub(crate) fn next_index(&self) -> u64 {
        self.first + self.frames.len() as u64
    }

    /// Plaintext bytes of every chunk pushed so far.
    pub(crate) fn plaintext_total(&self) -> u64 {
        self.plaintext_total
    }

    /// Whether a chunk of `len` wire bytes fits (an empty buffer takes any).
    pub(crate) fn has_room(&self, len: usize) -> bool {
        self.frames.is_empty() || self.held + len <= self.capacity
    }

    /// Adds the next sealed chunk (`plaintext` bytes of data in it); the
    /// caller waited for [`has_room`](Self::has_room).
    pub(crate) fn push(&mut self, frame: Bytes, plaintext: u64) {
        self.held += frame.len();
        self.plaintext_total += plaintext;
        self.frames.push_back((frame, plaintext));
    }

    /// The reader authenticated every chunk below `next_chunk`: they are
    /// never sent again. Returns the wire bytes released.
    pub(crate) fn acknowledge(&mut self, next_chunk: u64) -> usize {
        let mut released = 0;
        while self.first < next_chunk {
            let Some((dropped, _)) = self.frames.pop_front() else {
                break;
            };
            released += dropped.len();
            self.first += 1;
        }
        self.held -= released;
        released
    }

    /// The chunk at `index`, if held.
    pub(crate) fn get(&self, index: u64) -> Option<Bytes> {
        let offset = index.checked_sub(self.first)?;
        self.frames
            .get(usize::try_from(offset).ok()?)
            .map(|(frame, _)| frame.clone())
    }

    /// Whether a leg can start at chunk `k` for a reader that authenticated
    /// `plaintext` bytes.
    pub(crate) fn replay_from(&self, k: u64, plaintext: u64) -> ReplayFrom {
        if k > self.next_index() {
            return ReplayFrom::Ahead {
                next: self.next_index(),
            };
        }
        if k >= self.first {
            return ReplayFrom::Held;
        }
        ReplayFrom::Behind {
            behind: self.plaintext_total.saturating_sub(plaintext),
            held: self.held as u64,
            oldest: self.first,
        }
    }

    /// Wire bytes of the chunks from `k` on (what a leg starting there re-sends).
    pub(crate) fn bytes_from(&self, k: u64) -> u64 {
        let skip = k.saturating_sub(self.first) as usize;
        self.frames
            .iter()
            .skip(skip)
            .map(|(frame, _)| frame.len() as u64)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize) -> Bytes {
        Bytes::from(vec![n as u8; n])
    }

    /// Chunks stay until acknowledged; room is what the unacknowledged
    /// chunks leave of the capacity.
    #[test]
    fn chunks_leave_only_once_acknowledged() {
        let mut buffer = ReplayBuffer::new(100);
        for _ in 0..3 {
            assert!(buffer.has_room(30));
            buffer.push(frame(30), 14);
        }
        assert!(!buffer.has_room(30), "90 of 100 bytes held");
        assert!(buffer.has_room(10));
        assert_eq!(buffer.acknowledge(2), 60);
        assert!(buffer.has_room(70));
        buffer.push(frame(30), 14);
        buffer.push(frame(30), 14);
        // Chunks 2, 3, 4 held.
        assert_eq!(buffer.next_index(), 5);
        assert_eq!(buffer.get(1), None);
        assert_eq!(buffer.get(2).unwrap().len(), 30);
        assert_eq!(buffer.get(5), None);
        assert_eq!(buffer.replay_from(2, 28), ReplayFrom::Held);
        assert_eq!(buffer.replay_from(5, 70), ReplayFrom::Held);
        assert_eq!(buffer.bytes_from(3), 60);
        assert_eq!(
            buffer.replay_from(1, 14),
            ReplayFrom::Behind {
                behind: 70 - 14,
                held: 90,
                oldest: 2
            }
        );
        assert_eq!(buffer.replay_from(6, 0), ReplayFrom::Ahead { next: 5 });
        assert_eq!(buffer.plaintext_total(), 70);
        // An old or repeated acknowledgement releases nothing; one past the
        // end releases what is held.
        assert_eq!(buffer.acknowledge(1), 0);
        assert_eq!(buffer.acknowledge(9), 90);
        assert_eq!(buffer.next_index(), 5);
    }

    #[test]
    fn an_empty_buffer_takes_a_chunk_larger_than_the_capacity() {
        let mut buffer = ReplayBuffer::new(10);
        assert!(buffer.has_room(30));
        buffer.push(frame(30), 14);
        assert!(!buffer.has_room(1));
        buffer.acknowledge(1);
        buffer.push(frame(40), 24);
        assert_eq!(buffer.get(0), None);
        assert_eq!(buffer.get(1).unwrap().len(), 40);
        assert_eq!(buffer.replay_from(1, 14), ReplayFrom::Held);
    }
}

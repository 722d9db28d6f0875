//! The resume control messages, without I/O: the key they are authenticated
//! with, the side paths they travel on, and their encoding.
//!
//! Every message is 46 bytes: `version (1) | kind (1) | leg (u32) | three
//! u64 fields | tag (16)`, `tag` = HMAC-SHA256(control key, everything
//! before it) truncated to 16 bytes. The control key is derived from the
//! stream's exporter secret (file key and payload nonce, see
//! `cipher::stream::exporter_secret`) and the transfer's path, so only the
//! two ends of this stream can make or check one, and a message of another
//! stream (another file key or nonce) or another path never verifies.

use data_encoding::BASE32_NOPAD;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::cipher::ExporterSecret;
use crate::protocol::side_path;

/// The message format's version byte.
const VERSION: u8 = 1;
/// Bytes of the authentication tag.
const TAG_LEN: usize = 16;
/// Bytes of every message.
pub(crate) const MESSAGE_LEN: usize = 2 + 4 + 3 * 8 + TAG_LEN;
/// Characters of the unguessable part of a leg's or a message's path.
const PATH_TAG_CHARS: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// The key every control message of one stream is authenticated with.
pub(crate) struct ControlKey {
    key: Zeroizing<[u8; 32]>,
    transfer: String,
}

impl std::fmt::Debug for ControlKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlKey")
            .field("transfer", &self.transfer)
            .finish_non_exhaustive()
    }
}

/// What a message says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Message {
    /// Reader → writer, first on leg 0's acknowledgement stream, once the
    /// reader opened the header: it takes part in resume and will send a
    /// receipt.
    Hello,
    /// Reader → writer, on leg `leg`'s acknowledgement stream: chunks below
    /// `next_chunk` are authenticated (`plaintext` bytes), so the writer
    /// may drop them from its replay buffer.
    Ack {
        leg: u32,
        next_chunk: u64,
        plaintext: u64,
    },
    /// Reader → writer: it lost the previous leg; the writer should start
    /// leg `leg` at chunk `next_chunk` (the first the reader has not
    /// authenticated; `plaintext` bytes authenticated so far).
    Resume {
        leg: u32,
        next_chunk: u64,
        plaintext: u64,
    },
    /// Writer → reader, first on leg `leg`: the chunks from `first_chunk` on follow.
    Accept { leg: u32, first_chunk: u64 },
    /// Writer → reader, first and only on leg `leg`: the reader is `behind`
    /// plaintext bytes back, further than the `held` bytes the replay
    /// buffer holds (its oldest chunk is `oldest_chunk`).
    Behind {
        leg: u32,
        behind: u64,
        held: u64,
        oldest_chunk: u64,
    },
    /// Reader → writer: the final chunk (index `final_chunk`) authenticated
    /// and the output of `total` plaintext bytes is committed.
    Receipt { final_chunk: u64, total: u64 },
    /// Reader → writer, last on leg `leg`'s acknowledgement stream: the
    /// reader gives the stream up and will send no receipt, for `reason`.
    GiveUp { leg: u32, reason: GiveUpReason },
}

/// Why a reader gave a stream up ([`Message::GiveUp`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GiveUpReason {
    /// The stream arrived but the output could not be committed (a
    /// consumer command failed, a file could not be written).
    Output,
    /// The reader could not read the stream (it failed authentication,
    /// broke, or the reader stopped).
    Stream,
}

impl GiveUpReason {
    fn code(self) -> u64 {
        match self {
            GiveUpReason::Output => 1,
            GiveUpReason::Stream => 2,
        }
    }

    fn from_code(code: u64) -> Option<GiveUpReason> {
        match code {
            1 => Some(GiveUpReason::Output),
            2 => Some(GiveUpReason::Stream),
            _ => None,
        }
    }
}

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MessageError {
    /// Not [`MESSAGE_LEN`] bytes.
    #[error("a control message of {0} bytes (expected {MESSAGE_LEN})")]
    Length(usize),
    /// The tag does not verify: forged, damaged, or of another stream.
    #[error("a control message that does not authenticate (forged, or of another stream)")]
    Forged,
    /// An unknown version or kind.
    #[error("a control message of an unknown kind ({0})")]
    Kind(u8),
}

impl Message {
    fn kind(&self) -> u8 {
        match self {
            Message::Hello => 1,
            Message::Resume { .. } => 2,
            Message::Accept { .. } => 3,
            Message::Behind { .. } => 4,
            Message::Receipt { .. } => 5,
            Message::Ack { .. } => 6,
            Message::GiveUp { .. } => 7,
        }
    }

    fn fields(&self) -> (u32, [u64; 3]) {
        match *self {
            Message::Hello => (0, [0; 3]),
            Message::Resume {
                leg,
                next_chunk,
                plaintext,
            }
            | Message::Ack {
                leg,
                next_chunk,
                plaintext,
            } => (leg, [next_chunk, plaintext, 0]),
            Message::Accept { leg, first_chunk } => (leg, [first_chunk, 0, 0]),
            Message::Behind {
                leg,
                behind,
                held,
                oldest_chunk,
            } => (leg, [behind, held, oldest_chunk]),
            Message::Receipt { final_chunk, total } => (0, [final_chunk, total, 0]),
            Message::GiveUp { leg, reason } => (leg, [reason.code(), 0, 0]),
        }
    }
}

impl ControlKey {
    /// The control key of the transfer on `transfer` (its stream path)
    /// whose exporter secret is `exporter`.
    pub(crate) fn new(exporter: &ExporterSecret, transfer: &str) -> ControlKey {
        let mut info = b"zebrastream resume\x00".to_vec();
        info.extend_from_slice(transfer.as_bytes());
        let mut key = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::from_prk(exporter.as_ref())
            .expect("32 bytes is a valid HKDF-SHA256 PRK")
            .expand(&info, key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        ControlKey {
            key,
            transfer: transfer.to_owned(),
        }
    }

    fn mac(&self) -> HmacSha256 {
        <HmacSha256 as Mac>::new_from_slice(self.key.as_ref()).expect("HMAC takes any key length")
    }

    /// An unguessable tag for the side path `name`.
    fn path_tag(&self, name: &str) -> String {
        let mut mac = self.mac();
        mac.update(b"path\x00");
        mac.update(name.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut tag = BASE32_NOPAD.encode(&digest).to_ascii_lowercase();
        tag.truncate(PATH_TAG_CHARS);
        tag
    }

    /// The side path of an unguessable name: `P/~<name>-<tag>`.
    fn tagged_path(&self, name: &str) -> String {
        side_path(&self.transfer, &format!("{name}-{}", self.path_tag(name)))
    }

    /// Where leg `leg` (at least 1) of the data stream runs.
    pub(crate) fn leg_path(&self, leg: u32) -> String {
        self.tagged_path(&format!("leg{leg}"))
    }

    /// Where the reader's acknowledgements of leg `leg` go (one long
    /// stream per leg; leg 0's starts with [`Message::Hello`]).
    pub(crate) fn ack_path(&self, leg: u32) -> String {
        self.tagged_path(&format!("ack{leg}"))
    }

    /// Where the reader's [`Message::Resume`] for leg `leg` goes.
    pub(crate) fn resume_path(&self, leg: u32) -> String {
        self.tagged_path(&format!("ctl-r{leg}"))
    }

    /// Where the reader's [`Message::Receipt`] goes.
    pub(crate) fn receipt_path(&self) -> String {
        self.tagged_path("ctl-receipt")
    }

    /// Encodes and authenticates `message`.
    pub(crate) fn seal(&self, message: &Message) -> [u8; MESSAGE_LEN] {
        let mut out = [0u8; MESSAGE_LEN];
        let (leg, fields) = message.fields();
        out[0] = VERSION;
        out[1] = message.kind();
        out[2..6].copy_from_slice(&leg.to_be_bytes());
        for (i, field) in fields.iter().enumerate() {
            out[6 + 8 * i..14 + 8 * i].copy_from_slice(&field.to_be_bytes());
        }
        let body = MESSAGE_LEN - TAG_LEN;
        let mut mac = self.mac();
        mac.update(&out[..body]);
        out[body..].copy_from_slice(&mac.finalize().into_bytes()[..TAG_LEN]);
        out
    }

    /// Checks and decodes a message (the tag first, in constant time).
    pub(crate) fn open(&self, bytes: &[u8]) -> Result<Message, MessageError> {
        if bytes.len() != MESSAGE_LEN {
            return Err(MessageError::Length(bytes.len()));
        }
        let body = MESSAGE_LEN - TAG_LEN;
        let mut mac = self.mac();
        mac.update(&bytes[..body]);
        mac.verify_truncated_left(&bytes[body..])
            .map_err(|_| MessageError::Forged)?;
        if bytes[0] != VERSION {
            return Err(MessageError::Kind(bytes[0]));
        }
        let leg = u32::from_be_bytes(bytes[2..6].try_into().expect("4 bytes"));
        let field = |i: usize| {
            u64::from_be_bytes(bytes[6 + 8 * i..14 + 8 * i].try_into().expect("8 bytes"))
        };
        Ok(match bytes[1] {
            1 => Message::Hello,
            2 => Message::Resume {
                leg,
                next_chunk: field(0),
                plaintext: field(1),
            },
            3 => Message::Accept {
                leg,
                first_chunk: field(0),
            },
            4 => Message::Behind {
                leg,
                behind: field(0),
                held: field(1),
                oldest_chunk: field(2),
            },
            5 => Message::Receipt {
                final_chunk: field(0),
                total: field(1),
            },
            6 => Message::Ack {
                leg,
                next_chunk: field(0),
                plaintext: field(1),
            },
            7 => Message::GiveUp {
                leg,
                reason: GiveUpReason::from_code(field(0)).ok_or(MessageError::Kind(7))?,
            },
            other => return Err(MessageError::Kind(other)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: u8, path: &str) -> ControlKey {
        ControlKey::new(&Zeroizing::new([secret; 32]), path)
    }

    fn all_messages() -> Vec<Message> {
        vec![
            Message::Hello,
            Message::Resume {
                leg: 3,
                next_chunk: 17,
                plaintext: 17 << 16,
            },
            Message::Accept {
                leg: 3,
                first_chunk: 17,
            },
            Message::Behind {
                leg: 2,
                behind: 1 << 30,
                held: 16 << 20,
                oldest_chunk: 9,
            },
            Message::Receipt {
                final_chunk: 99,
                total: 6_000_000,
            },
            Message::Ack {
                leg: 4,
                next_chunk: 250,
                plaintext: 250 << 16,
            },
            Message::GiveUp {
                leg: 2,
                reason: GiveUpReason::Output,
            },
            Message::GiveUp {
                leg: 0,
                reason: GiveUpReason::Stream,
            },
        ]
    }

    #[test]
    fn messages_round_trip() {
        let k = key(1, "/a/b");
        for message in all_messages() {
            assert_eq!(k.open(&k.seal(&message)), Ok(message));
        }
    }

    /// Another stream's key (another exporter secret) or another path's
    /// opens nothing, and a flipped bit anywhere is a forgery.
    #[test]
    fn other_streams_and_damage_do_not_authenticate() {
        let k = key(1, "/a/b");
        for message in all_messages() {
            let sealed = k.seal(&message);
            assert_eq!(key(2, "/a/b").open(&sealed), Err(MessageError::Forged));
            assert_eq!(key(1, "/a/c").open(&sealed), Err(MessageError::Forged));
            for bit in 0..MESSAGE_LEN * 8 {
                let mut damaged = sealed;
                damaged[bit / 8] ^= 1 << (bit % 8);
                assert_eq!(k.open(&damaged), Err(MessageError::Forged), "bit {bit}");
            }
            assert_eq!(
                k.open(&sealed[..MESSAGE_LEN - 1]),
                Err(MessageError::Length(MESSAGE_LEN - 1))
            );
        }
    }

    /// Paths: side paths of the transfer, valid stream paths, different per
    /// name and per stream, so a token holder without the key cannot guess
    /// one.
    #[test]
    fn paths_are_side_paths_that_depend_on_the_key() {
        let k = key(1, "/hospital/trial-42");
        let paths = [
            k.leg_path(1),
            k.leg_path(2),
            k.ack_path(0),
            k.ack_path(1),
            k.resume_path(1),
            k.resume_path(2),
            k.receipt_path(),
        ];
        for path in &paths {
            assert!(path.starts_with("/hospital/trial-42/~"), "{path}");
            crate::protocol::StreamPath::parse(path).unwrap();
            assert_eq!(crate::protocol::transfer_path(path), "/hospital/trial-42");
        }
        let unique: std::collections::HashSet<_> = paths.iter().collect();
        assert_eq!(unique.len(), paths.len());
        assert_ne!(key(2, "/hospital/trial-42").leg_path(1), k.leg_path(1));
    }
}

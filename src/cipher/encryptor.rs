//! The sans-IO encryptor: plaintext in, header and sealed chunks out.

use std::collections::HashSet;
use std::fmt;

use age_core::format::{FileKey, Stanza};
use rand::rngs::OsRng;
use rand::RngCore;
use secrecy::SecretString;
use zeroize::Zeroize;

use super::aead::DefaultAead;
use super::armor::ArmorEncoder;
use super::buffer::PlaintextBuffer;
use super::error::{Error, Unsupported};
use super::format::{write_header, Format};
use super::stream::{
    exporter_secret, payload_key, ChunkSealer, ExporterSecret, CHUNK_SIZE, PAYLOAD_NONCE_SIZE,
    TAG_SIZE,
};

/// scrypt work factor (log2 N) written for passphrases: what age and the
/// Python client use, and the only one the Python decoder accepts.
pub(crate) const SCRYPT_WORK_FACTOR: u8 = 18;

/// The label of a recipient whose stanza is symmetric and keyed by a
/// 256-bit secret (the ticket's `zs-ticket`): quantum-safe, so our
/// encryptor lets it join recipients of any labels, classic or
/// `postquantum` (not scrypt, which must stay alone). age's own encryptor
/// does not know it: there it combines only with itself.
pub(crate) const SYMMETRIC_LABEL: &str = "zebrastream.io/symmetric";

/// Bytes reserved in front of the chunk for the age-rt length prefix.
const LEN_PREFIX: usize = 4;

/// What `flush`/`finish` asked for, carried out as soon as the pending
/// output has been taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    None,
    Flush,
    Finish,
}

/// Encrypts one stream, sans-IO (like rustls' connection core): give it
/// plaintext with [`write`](Self::write), take ciphertext from
/// [`output`](Self::output) and [`consume`](Self::consume) it.
///
/// Chunks are sealed in place in one reused buffer; at most one chunk (plus
/// the header, at first) is pending. While output is pending, `write` takes
/// nothing (returns 0): that is the backpressure.
///
/// You MUST call [`finish`](Self::finish) and drain the output, or the
/// stream is truncated and every decryptor rejects it.
///
/// ```
/// use zebrastream::cipher::{Decryptor, Encryptor, Format};
/// # fn main() -> Result<(), zebrastream::cipher::Error> {
/// let identity = age::x25519::Identity::generate();
/// let mut enc = Encryptor::with_recipients(Format::AgeRt, vec![Box::new(identity.to_public())])?;
/// let mut wire = Vec::new();
/// let mut data: &[u8] = b"hello";
/// while !data.is_empty() {
///     let n = enc.write(data)?;
///     data = &data[n..];
///     wire.extend_from_slice(enc.output());
///     enc.consume(enc.output().len());
/// }
/// enc.finish();
/// while !enc.output().is_empty() {
///     wire.extend_from_slice(enc.output());
///     enc.consume(enc.output().len());
/// }
///
/// let mut dec = Decryptor::with_identities(vec![Box::new(identity)]);
/// let plain = dec.decrypt_all(&wire)?;
/// assert_eq!(plain, b"hello");
/// # Ok(()) }
/// ```
pub struct Encryptor {
    /// The stream's exporter secret (see [`exporter_secret`]).
    exporter: ExporterSecret,
    format: Format,
    /// Header and payload nonce; sent before the first chunk.
    preamble: Vec<u8>,
    preamble_taken: usize,
    sealer: ChunkSealer<DefaultAead>,
    /// `[len prefix (4)] [plaintext (<= 64 KiB)] [tag (16)]`, sealed in
    /// place; zeroed on drop (an unsealed tail is plaintext).
    chunk: PlaintextBuffer,
    /// Plaintext bytes pending in `chunk[LEN_PREFIX..]`.
    fill: usize,
    /// Sealed frame `chunk[sealed.0..sealed.1]`, taken up to `sealed.0 + taken`.
    sealed: Option<(usize, usize)>,
    taken: usize,
    /// One plaintext byte accepted while a full chunk was being sealed: it
    /// proves the sealed chunk was not the last, and starts the next chunk.
    carry: Option<u8>,
    request: Request,
    /// With [`armored`](Self::armored): the ciphertext is moved into this
    /// encoder as soon as it is produced, and its text is the output.
    armor: Option<ArmorEncoder>,
}

impl Encryptor {
    /// An encryptor for a passphrase (scrypt, work factor 2^18).
    ///
    /// Takes about half a second (scrypt).
    pub fn with_passphrase(format: Format, passphrase: SecretString) -> Result<Self, Error> {
        Self::with_scrypt(format, passphrase, SCRYPT_WORK_FACTOR)
    }

    /// Like [`with_passphrase`](Self::with_passphrase) with a chosen scrypt
    /// work factor, to keep tests fast. Test builds only.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn with_passphrase_work_factor(
        format: Format,
        passphrase: SecretString,
        log_n: u8,
    ) -> Result<Self, Error> {
        Self::with_scrypt(format, passphrase, log_n)
    }

    fn with_scrypt(format: Format, passphrase: SecretString, log_n: u8) -> Result<Self, Error> {
        let mut recipient = age::scrypt::Recipient::new(passphrase);
        recipient.set_work_factor(log_n);
        Self::with_recipients(format, vec![Box::new(recipient)])
    }

    /// An encryptor for one or more recipients (`age1…` X25519, SSH keys,
    /// scrypt, or any other `age::Recipient`).
    ///
    /// Fails if the list is empty or mixes recipients that age forbids to
    /// combine (scrypt must be alone).
    pub fn with_recipients(
        format: Format,
        recipients: Vec<Box<dyn age::Recipient + Send>>,
    ) -> Result<Self, Error> {
        if recipients.is_empty() {
            return Err(Error::InvalidRecipients("no recipients"));
        }
        let file_key = FileKey::init_with_mut(|k| OsRng.fill_bytes(k));
        let mut stanzas: Vec<Stanza> = Vec::new();
        let mut labels: Option<HashSet<String>> = None;
        for recipient in &recipients {
            let (mut s, l) = recipient.wrap_file_key(&file_key).map_err(|e| {
                match &e {
                    age::EncryptError::Io(io) => super::keys::plugin_error(io).map(Error::from),
                    _ => None,
                }
                .unwrap_or(Error::InvalidRecipients(
                    "a recipient could not wrap the file key",
                ))
            })?;
            stanzas.append(&mut s);
            // age's rule: recipients must agree on their labels (this keeps
            // scrypt, which has a unique label, alone). A symmetric stanza
            // (the ticket's) is quantum-safe: it joins any labels.
            if l.len() == 1 && l.contains(SYMMETRIC_LABEL) {
                continue;
            }
            match &labels {
                Some(prev) if *prev != l => {
                    let scrypt = stanzas.iter().any(|s| s.tag == "scrypt");
                    return Err(incompatible_labels(prev, &l, scrypt));
                }
                _ => labels = Some(l),
            }
        }
        if recipients.len() > 1 && stanzas.iter().any(|s| s.tag == "scrypt") {
            return Err(incompatible_labels(&HashSet::new(), &HashSet::new(), true));
        }
        let mut preamble = write_header(format, &stanzas, &file_key);
        let mut nonce = [0u8; PAYLOAD_NONCE_SIZE];
        OsRng.fill_bytes(&mut nonce);
        preamble.extend_from_slice(&nonce);
        let key = payload_key(&file_key, &nonce);
        Ok(Encryptor {
            exporter: exporter_secret(&file_key, &nonce),
            format,
            preamble,
            preamble_taken: 0,
            sealer: ChunkSealer::new(&key),
            chunk: PlaintextBuffer::zeroed(LEN_PREFIX + CHUNK_SIZE + TAG_SIZE),
            fill: 0,
            sealed: None,
            taken: 0,
            carry: None,
            request: Request::None,
            armor: None,
        })
    }

    /// Writes the age v1 file in ASCII armor (`-----BEGIN AGE ENCRYPTED
    /// FILE-----`, base64 at 64 columns, the END line), as `age -a` does.
    /// Call it before taking any output. Fails with
    /// [`Unsupported::ArmoredAgeRt`] for age-rt: the armor is defined for
    /// age v1 files, and age-rt's flushes would be lost in it (a partial
    /// base64 line cannot be decoded before its end).
    pub fn armored(mut self) -> Result<Self, Error> {
        if self.format != Format::AgeV1 {
            return Err(Unsupported::ArmoredAgeRt.into());
        }
        assert_eq!(self.preamble_taken, 0, "armored() after output was taken");
        self.armor = Some(ArmorEncoder::new());
        self.encode_armor();
        Ok(self)
    }

    /// The format being written.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Takes plaintext; returns how many bytes were taken.
    ///
    /// Returns 0 (for non-empty input) while sealed output is pending: take
    /// it with [`output`](Self::output) / [`consume`](Self::consume) first.
    /// Fails with [`Error::Finished`] after [`finish`](Self::finish).
    pub fn write(&mut self, data: &[u8]) -> Result<usize, Error> {
        if self.request == Request::Finish || self.sealer.is_finished() {
            return Err(Error::Finished);
        }
        if data.is_empty() || self.output_pending() {
            return Ok(0);
        }
        if self.fill == CHUNK_SIZE {
            // A full chunk and more data: the chunk is not the last one.
            self.seal(false)?;
            self.carry = Some(data[0]);
            self.encode_armor();
            return Ok(1);
        }
        let n = data.len().min(CHUNK_SIZE - self.fill);
        self.chunk[LEN_PREFIX + self.fill..][..n].copy_from_slice(&data[..n]);
        self.fill += n;
        Ok(n)
    }

    /// Free space in the pending chunk, to produce plaintext in place
    /// (e.g. `read` into it) without the copy [`write`](Self::write) makes;
    /// follow with [`commit_input`](Self::commit_input). Empty while output
    /// is pending, after `finish`, or when the chunk is full: then
    /// [`flush`](Self::flush) (age-rt), `write` the next bytes, or `finish`.
    pub fn input_buffer(&mut self) -> &mut [u8] {
        if self.output_pending() || self.request == Request::Finish || self.sealer.is_finished() {
            return &mut [];
        }
        &mut self.chunk[LEN_PREFIX + self.fill..LEN_PREFIX + CHUNK_SIZE]
    }

    /// Accepts `n` plaintext bytes written at the start of the last
    /// [`input_buffer`](Self::input_buffer).
    ///
    /// # Panics
    /// If `n` exceeds that buffer's length.
    pub fn commit_input(&mut self, n: usize) {
        assert!(
            n <= self.input_buffer().len(),
            "committed more than the input buffer"
        );
        self.fill += n;
    }

    /// Makes everything written so far decryptable at once: age-rt seals the
    /// pending plaintext as a non-final chunk; age v1 has fixed chunks, so
    /// this does nothing there. Takes effect once pending output is taken.
    pub fn flush(&mut self) {
        if self.format == Format::AgeRt && self.request == Request::None {
            self.request = Request::Flush;
        }
        self.settle();
        self.encode_armor();
    }

    /// Ends the stream: the pending plaintext becomes the final chunk (empty
    /// when nothing is pending in age-rt). Idempotent. Take the remaining
    /// [`output`](Self::output) until [`is_done`](Self::is_done).
    pub fn finish(&mut self) {
        self.request = Request::Finish;
        self.settle();
        self.encode_armor();
    }

    /// Ciphertext ready to send (empty when there is none).
    pub fn output(&self) -> &[u8] {
        match &self.armor {
            Some(armor) => armor.output(),
            None => self.binary_output(),
        }
    }

    /// The binary ciphertext ready (moved into the armor when armored).
    fn binary_output(&self) -> &[u8] {
        if self.preamble_taken < self.preamble.len() {
            return &self.preamble[self.preamble_taken..];
        }
        match self.sealed {
            Some((start, end)) => &self.chunk[start + self.taken..end],
            None => &[],
        }
    }

    /// Marks `n` bytes of [`output`](Self::output) as sent.
    ///
    /// # Panics
    /// If `n` exceeds `output().len()`.
    pub fn consume(&mut self, n: usize) {
        assert!(
            n <= self.output().len(),
            "consumed more output than available"
        );
        if let Some(armor) = &mut self.armor {
            armor.consume(n);
            return;
        }
        self.consume_binary(n);
    }

    /// Whether output is waiting to be taken (new plaintext waits for it).
    fn output_pending(&self) -> bool {
        self.sealed.is_some() || self.armor.as_ref().is_some_and(|a| !a.output().is_empty())
    }

    /// Moves all binary output into the armor encoder, and ends the armor
    /// after the final chunk. Does nothing when not armored.
    fn encode_armor(&mut self) {
        let Some(mut armor) = self.armor.take() else {
            return;
        };
        loop {
            let out = self.binary_output();
            if out.is_empty() {
                break;
            }
            let n = out.len();
            armor.encode(out);
            self.consume_binary(n);
        }
        if self.sealer.is_finished() {
            armor.finish();
        }
        self.armor = Some(armor);
    }

    fn consume_binary(&mut self, n: usize) {
        if self.preamble_taken < self.preamble.len() {
            self.preamble_taken += n;
            return;
        }
        if let Some((start, end)) = self.sealed {
            self.taken += n;
            if start + self.taken == end {
                self.sealed = None;
                self.taken = 0;
                self.settle();
            }
        }
    }

    /// Encrypts a complete plaintext held in memory and finishes the stream
    /// (convenience for small inputs and tests; streams should use the
    /// incremental API or [`EncryptingWriter`](super::EncryptingWriter)).
    pub fn encrypt_all(&mut self, mut plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(plaintext.len() + 256);
        loop {
            let n = self.write(plaintext)?;
            plaintext = &plaintext[n..];
            out.extend_from_slice(self.output());
            self.consume(self.output().len());
            if plaintext.is_empty() {
                break;
            }
        }
        self.finish();
        while !self.output().is_empty() {
            out.extend_from_slice(self.output());
            self.consume(self.output().len());
        }
        Ok(out)
    }

    /// The stream's exporter secret, which only its readers can derive too.
    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    pub(crate) fn exporter_secret(&self) -> &ExporterSecret {
        &self.exporter
    }

    /// Whether [`output`](Self::output) is (the rest of) the header and
    /// payload nonce rather than a sealed chunk.
    #[cfg_attr(not(feature = "client"), allow(dead_code))]
    pub(crate) fn output_is_preamble(&self) -> bool {
        self.armor.is_none() && self.preamble_taken < self.preamble.len()
    }

    /// Whether the final chunk is sealed and all output has been taken.
    pub fn is_done(&self) -> bool {
        self.sealer.is_finished() && self.output().is_empty()
    }

    /// Carries out a pending flush/finish once the chunk buffer is free.
    fn settle(&mut self) {
        if self.sealed.is_some() {
            return;
        }
        if let Some(b) = self.carry.take() {
            self.chunk[LEN_PREFIX] = b;
            self.fill = 1;
        }
        let result = match self.request {
            Request::Finish if !self.sealer.is_finished() => self.seal(true),
            Request::Flush if self.fill > 0 => self.seal(false),
            _ => Ok(()),
        };
        if self.request == Request::Flush {
            self.request = Request::None;
        }
        // Sealing only fails on counter overflow after 2^64 chunks.
        result.expect("chunk counter overflow");
    }

    /// Seals the pending plaintext in place and frames it for the format.
    fn seal(&mut self, last: bool) -> Result<(), Error> {
        let sealed_len = self.fill + TAG_SIZE;
        self.sealer
            .seal(&mut self.chunk[LEN_PREFIX..LEN_PREFIX + sealed_len], last)?;
        let start = match self.format {
            Format::AgeRt => {
                let len = u32::try_from(sealed_len).expect("chunk fits in u32");
                self.chunk[..LEN_PREFIX].copy_from_slice(&len.to_be_bytes());
                0
            }
            Format::AgeV1 => LEN_PREFIX,
        };
        self.sealed = Some((start, LEN_PREFIX + sealed_len));
        self.taken = 0;
        self.fill = 0;
        Ok(())
    }
}

/// Names why two recipients' labels differ, as age 1.3 does: a hybrid
/// post-quantum recipient (label `postquantum`) next to a classic one (no
/// label) would leave the file readable by breaking the classic one; scrypt
/// has a unique label; other differences are plugins' own labels, named.
fn incompatible_labels(a: &HashSet<String>, b: &HashSet<String>, scrypt: bool) -> Error {
    let pq_or_classic = |l: &HashSet<String>| {
        l.iter()
            .all(|label| label == super::keys::POSTQUANTUM_LABEL)
    };
    if scrypt {
        Error::InvalidRecipients(
            "incompatible recipients (scrypt cannot be combined with other recipients)",
        )
    } else if pq_or_classic(a) && pq_or_classic(b) {
        Error::InvalidRecipients(
            "incompatible recipients: can't mix post-quantum (age1pq1…, age1tagpq1…, or a \
             plugin's with the postquantum label) and classic recipients, or the file would \
             be vulnerable to quantum computers",
        )
    } else {
        let sorted = |l: &HashSet<String>| {
            let mut l: Vec<_> = l.iter().cloned().collect();
            l.sort();
            l.join(", ")
        };
        Error::IncompatibleLabels {
            first: sorted(a),
            other: sorted(b),
        }
    }
}

impl Drop for Encryptor {
    fn drop(&mut self) {
        // The chunk buffer wipes itself; the carried byte is plaintext too.
        self.carry.zeroize();
    }
}

impl fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material or plaintext.
        f.debug_struct("Encryptor")
            .field("format", &self.format)
            .field("pending_plaintext", &self.fill)
            .field("finished", &self.sealer.is_finished())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cipher::keys::HybridIdentity;
    use std::collections::HashSet;

    /// A recipient with the given labels and a dummy stanza.
    struct Labelled(&'static [&'static str]);

    impl age::Recipient for Labelled {
        fn wrap_file_key(
            &self,
            _: &FileKey,
        ) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
            let stanza = Stanza {
                tag: "labelled".into(),
                args: Vec::new(),
                body: vec![0; 32],
            };
            Ok((vec![stanza], self.0.iter().map(|l| l.to_string()).collect()))
        }
    }

    fn encrypt(recipients: Vec<Box<dyn age::Recipient + Send>>) -> Result<Encryptor, Error> {
        Encryptor::with_recipients(Format::AgeRt, recipients)
    }

    /// The symmetric label joins classic and post-quantum recipients, but
    /// scrypt stays alone; other labels are named.
    #[test]
    fn a_symmetric_recipient_joins_any_labels_but_not_scrypt() {
        let symmetric = || Box::new(Labelled(&[SYMMETRIC_LABEL]));
        let pq = HybridIdentity::generate().to_public();
        let classic = age::x25519::Identity::generate().to_public();
        assert!(encrypt(vec![symmetric(), Box::new(pq.clone())]).is_ok());
        assert!(encrypt(vec![Box::new(classic.clone()), symmetric()]).is_ok());
        assert!(encrypt(vec![symmetric(), symmetric()]).is_ok());
        let mut scrypt = age::scrypt::Recipient::new("pw".to_owned().into());
        scrypt.set_work_factor(4);
        let err = encrypt(vec![symmetric(), Box::new(scrypt)]).err().unwrap();
        assert!(
            err.to_string().contains("scrypt cannot be combined"),
            "{err}"
        );
        let err = encrypt(vec![Box::new(Labelled(&["b", "a"])), Box::new(pq)])
            .err()
            .unwrap();
        assert_eq!(
            err,
            Error::IncompatibleLabels {
                first: "a, b".into(),
                other: "postquantum".into()
            }
        );
    }
}

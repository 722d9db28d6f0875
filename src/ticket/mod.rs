//! Tickets: one copy-pasteable string that addresses a stream and carries its key.
//!
//! A ticket (`zs1…`) holds the relay's connect URL, a stream path prefix, a
//! 256-bit random secret `S` and, optionally, an access token. Both sides
//! derive from `S`, with HKDF-SHA256 and distinct labels:
//!
//! - the **path secret**: an unguessable last path segment, the only thing the
//!   relay ever sees of `S` ([`Ticket::stream_path`]);
//! - the **stream key**: never sent anywhere; it wraps the stream's file key in
//!   a `zs-ticket` recipient stanza ([`TicketRecipient`], [`TicketIdentity`]).
//!
//! So a ticket stream is an ordinary age-rt (or age v1) stream with one more
//! stanza type, and a ticket combines with X25519 recipients. HKDF is one-way:
//! the relay operator, who learns the path secret, cannot derive the key.
//!
//! **Fresh by default.** [`Ticket::sealing`] and [`Ticket::opening`] (and
//! [`Ticket::connect_writer`] / [`Ticket::connect_reader`], which use them)
//! run the forward-secrecy exchange ([`crate::forward_secrecy`]) first: the
//! stream is encrypted to a one-time key the reader contributes to this
//! transfer, so a stream the relay recorded earlier and replays fails to
//! decrypt, and a ticket that leaks after the transfer reveals nothing. This
//! is what the CLI does by default. [`Ticket::static_sealing`] /
//! [`Ticket::static_opening`] use the ticket's own key (no exchange, what
//! `--no-forward-secrecy` does): a relay can replay an earlier stream of the
//! same ticket and the reader accepts it.
//!
//! ```
//! use zebrastream::ticket::Ticket;
//!
//! let ticket = Ticket::generate("http://127.0.0.1:8080/v0", "/hospital/trial-42").unwrap();
//! let text = ticket.to_secret_string();
//! let parsed: Ticket = Ticket::parse(secrecy::ExposeSecret::expose_secret(&text)).unwrap();
//! assert_eq!(parsed.stream_path(), ticket.stream_path());
//! assert!(parsed.stream_path().starts_with("/hospital/trial-42/"));
//! ```

use std::collections::HashSet;
use std::fmt;

use age::{DecryptError, EncryptError};
use age_core::format::{FileKey, Stanza, FILE_KEY_BYTES};
use age_core::primitives::{aead_decrypt, aead_encrypt, hkdf};
use base64::Engine;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

mod forward_secrecy;

use crate::cipher::Format;
use crate::client::{Config, ConfigBuilder, Opening, Sealing};

/// Human-readable prefix of every ticket string; the `1` is the format version.
pub const TICKET_PREFIX: &str = "zs1";
/// The recipient stanza tag a ticket wraps the file key in.
pub const STANZA_TAG: &str = "zs-ticket";

const FORMAT_VERSION: u8 = 1;
const SECRET_BYTES: usize = 32;
const CHECKSUM_BYTES: usize = 4;
const PATH_SECRET_BYTES: usize = 20;
const STANZA_SALT_BYTES: usize = 16;
const MAX_TOKEN_BYTES: usize = 4096;
const LABEL_PATH: &[u8] = b"zebrastream path";
const LABEL_EXCHANGE: &[u8] = b"zebrastream fs exchange";
const LABEL_KEY: &[u8] = b"zebrastream key";
const LABEL_WRAP: &[u8] = b"zebrastream ticket wrap";

/// Lower-case, unpadded base32 (RFC 4648 "extended hex" alphabet): safe to
/// paste into shells, URLs and chat without quoting or case confusion.
const TEXT_ENCODING: data_encoding::Encoding = data_encoding::BASE32_DNSSEC;

/// Why a ticket string or ticket parameters were rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TicketError {
    /// The string does not start with `zs1`.
    #[error("not a zebrastream ticket: it must start with `{TICKET_PREFIX}`")]
    MissingPrefix,
    /// The text after the prefix is not valid base32.
    #[error("ticket is damaged: invalid character or length in its base32 text")]
    Encoding,
    /// The checksum does not match: a typo or a truncated copy.
    #[error("ticket is damaged: checksum mismatch (was it copied completely?)")]
    Checksum,
    /// A ticket of a newer format version.
    #[error("ticket format version {0} is not supported by this version of zebrastream")]
    UnsupportedVersion(u8),
    /// A field is cut short or not UTF-8.
    #[error("ticket is damaged: field `{0}` is malformed")]
    Field(&'static str),
    /// The connect URL is not an `http://` or `https://` URL.
    #[error("invalid connect URL in ticket: {0}")]
    ConnectUrl(String),
    /// The path prefix is not `/` or a stream path the relay accepts
    /// ([`StreamPath`](crate::protocol::StreamPath)'s rules; one trailing `/`
    /// is tolerated here and dropped).
    #[error("invalid stream path prefix `{prefix}`: {reason}")]
    PathPrefix {
        /// The rejected prefix.
        prefix: String,
        /// What is wrong with it.
        reason: crate::protocol::PathError,
    },
    /// A field is longer than a ticket can carry.
    #[error("ticket field `{0}` is too long")]
    TooLong(&'static str),
}

/// A parsed ticket. Its secret never leaves memory except through
/// [`Ticket::to_secret_string`]; `Debug` shows only the connect URL and path.
pub struct Ticket {
    connect_url: String,
    path_prefix: String,
    secret: SecretBox<[u8; SECRET_BYTES]>,
    access_token: Option<SecretString>,
}

impl Ticket {
    /// A new ticket with a fresh random secret for streams under `path_prefix`
    /// on the relay whose Connect API is at `connect_url`.
    pub fn generate(connect_url: &str, path_prefix: &str) -> Result<Self, TicketError> {
        let secret = SecretBox::new(Box::new({
            let mut s = [0u8; SECRET_BYTES];
            rand::rngs::OsRng.fill_bytes(&mut s);
            s
        }));
        Self::from_parts(connect_url, path_prefix, secret, None)
    }

    /// Attaches an access token, so the ticket alone authorises its holder.
    pub fn with_access_token(mut self, token: SecretString) -> Result<Self, TicketError> {
        if token.expose_secret().len() > MAX_TOKEN_BYTES {
            return Err(TicketError::TooLong("access token"));
        }
        self.access_token = Some(token);
        Ok(self)
    }

    fn from_parts(
        connect_url: &str,
        path_prefix: &str,
        secret: SecretBox<[u8; SECRET_BYTES]>,
        access_token: Option<SecretString>,
    ) -> Result<Self, TicketError> {
        validate_connect_url(connect_url)?;
        validate_path_prefix(path_prefix)?;
        Ok(Ticket {
            connect_url: connect_url.to_owned(),
            path_prefix: canonical_prefix(path_prefix),
            secret,
            access_token,
        })
    }

    /// The relay's Connect API URL, e.g. `https://connect.zebrastream.io/v0`.
    pub fn connect_url(&self) -> &str {
        &self.connect_url
    }

    /// The path prefix the stream lives under (without a trailing `/`, except
    /// the root, which is `/`).
    pub fn path_prefix(&self) -> &str {
        &self.path_prefix
    }

    /// The access token carried by the ticket, if any.
    pub fn access_token(&self) -> Option<&SecretString> {
        self.access_token.as_ref()
    }

    /// The full stream path: the prefix plus the path secret, an unguessable
    /// segment derived one-way from the ticket secret. This is all the relay
    /// ever learns of the secret.
    pub fn stream_path(&self) -> String {
        self.derived_path(LABEL_PATH)
    }

    /// The prefix plus an unguessable segment derived from the secret with `label`.
    fn derived_path(&self, label: &[u8]) -> String {
        let derived = Zeroizing::new(hkdf(&[], label, self.secret.expose_secret()));
        format!(
            "{}/{}",
            self.path_prefix.trim_end_matches('/'),
            TEXT_ENCODING.encode(&derived[..PATH_SECRET_BYTES])
        )
    }

    fn stream_key(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(hkdf(&[], LABEL_KEY, self.secret.expose_secret()))
    }

    /// The recipient that wraps a stream's file key for holders of this ticket.
    pub fn recipient(&self) -> TicketRecipient {
        TicketRecipient {
            stream_key: self.stream_key(),
        }
    }

    /// The identity that unwraps file keys wrapped by [`Ticket::recipient`].
    pub fn identity(&self) -> TicketIdentity {
        TicketIdentity {
            stream_key: self.stream_key(),
        }
    }

    /// The configuration of this ticket's transfers: its relay, stream path
    /// and token, ready for other settings (a connect timeout, say). Give it
    /// to [`Ticket::connect_writer`] / [`Ticket::connect_reader`], or to
    /// [`StreamWriter::connect`](crate::client::StreamWriter::connect) with
    /// one of the ticket's [`Sealing`]s.
    ///
    /// ```
    /// # use zebrastream::ticket::Ticket;
    /// let ticket = Ticket::generate("http://127.0.0.1:8080/v0", "/exports").unwrap();
    /// let config = ticket.config().build().unwrap();
    /// assert_eq!(config.stream_path(), ticket.stream_path());
    /// assert_eq!(config.connect_url(), "http://127.0.0.1:8080/v0");
    /// ```
    pub fn config(&self) -> ConfigBuilder {
        let builder = Config::builder(self.stream_path()).connect_url(self.connect_url.clone());
        match &self.access_token {
            Some(token) => builder.access_token(token.clone()),
            None => builder,
        }
    }

    /// The writer's key for a fresh transfer (the default): the
    /// forward-secrecy exchange keyed with this ticket, then the stream
    /// sealed in `format` to the one-time key the reader contributes. The
    /// reader uses [`Ticket::opening`].
    pub fn sealing(&self, format: Format) -> Sealing {
        Sealing::fresh(self.exchange_key(), format)
    }

    /// The reader's key for a fresh transfer (the default; see
    /// [`Ticket::sealing`]).
    pub fn opening(&self) -> Opening {
        Opening::fresh(self.exchange_key())
    }

    /// The writer's key without forward secrecy: the ticket's static key
    /// plus `extra` recipients (X25519, SSH). The reader may connect later
    /// than with the exchange, but a relay can replay an earlier stream of
    /// the ticket and the reader accepts it.
    pub fn static_sealing(
        &self,
        extra: Vec<Box<dyn age::Recipient + Send>>,
        format: Format,
    ) -> Sealing {
        let mut recipients: Vec<Box<dyn age::Recipient + Send>> = vec![Box::new(self.recipient())];
        recipients.extend(extra);
        Sealing::recipients(recipients, format)
    }

    /// The reader's key without forward secrecy: the ticket identity alone.
    /// The stream must carry this ticket's stanza and that stanza must
    /// unwrap the file key, whatever other recipients it names. (A stream
    /// sealed only to some X25519 key of the reader's was not written by a
    /// ticket holder and is refused.)
    pub fn static_opening(&self) -> Opening {
        Opening::identities(vec![Box::new(self.identity())])
    }

    /// The ticket as text (`zs1…`). It is a secret: whoever holds it can read
    /// and (with a write token) write the stream.
    pub fn to_secret_string(&self) -> SecretString {
        let mut payload = Zeroizing::new(Vec::with_capacity(128));
        payload.push(FORMAT_VERSION);
        payload.extend_from_slice(self.secret.expose_secret());
        push_field(&mut payload, self.connect_url.as_bytes());
        push_field(&mut payload, self.path_prefix.as_bytes());
        let token = self
            .access_token
            .as_ref()
            .map(|t| t.expose_secret().as_bytes())
            .unwrap_or_default();
        push_field(&mut payload, token);
        let checksum = Sha256::digest(payload.as_slice());
        payload.extend_from_slice(&checksum[..CHECKSUM_BYTES]);
        let mut text = String::with_capacity(TICKET_PREFIX.len() + payload.len() * 8 / 5 + 1);
        text.push_str(TICKET_PREFIX);
        TEXT_ENCODING.encode_append(&payload, &mut text);
        SecretString::from(text)
    }

    /// Parses a ticket string. Surrounding whitespace is ignored; anything
    /// else that is off (prefix, characters, checksum, fields) is an error
    /// that names the problem without echoing the secret.
    pub fn parse(text: &str) -> Result<Self, TicketError> {
        let body = text
            .trim()
            .strip_prefix(TICKET_PREFIX)
            .ok_or(TicketError::MissingPrefix)?;
        let raw = Zeroizing::new(
            TEXT_ENCODING
                .decode(body.as_bytes())
                .map_err(|_| TicketError::Encoding)?,
        );
        if raw.len() < 1 + SECRET_BYTES + CHECKSUM_BYTES {
            return Err(TicketError::Field("secret"));
        }
        let (payload, checksum) = raw.split_at(raw.len() - CHECKSUM_BYTES);
        if Sha256::digest(payload)[..CHECKSUM_BYTES] != *checksum {
            return Err(TicketError::Checksum);
        }
        if payload[0] != FORMAT_VERSION {
            return Err(TicketError::UnsupportedVersion(payload[0]));
        }
        let mut secret = [0u8; SECRET_BYTES];
        secret.copy_from_slice(&payload[1..1 + SECRET_BYTES]);
        let secret = SecretBox::new(Box::new(secret));
        let mut rest = &payload[1 + SECRET_BYTES..];
        let url = take_str(&mut rest, "connect URL")?;
        let prefix = take_str(&mut rest, "path prefix")?;
        let token = take_str(&mut rest, "access token")?;
        if !rest.is_empty() {
            return Err(TicketError::Field("trailing bytes"));
        }
        let token = (!token.is_empty()).then(|| SecretString::from(token.to_owned()));
        Self::from_parts(url, prefix, secret, token)
    }
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("connect_url", &self.connect_url)
            .field("path_prefix", &self.path_prefix)
            .field("secret", &"[REDACTED]")
            .field(
                "access_token",
                &self.access_token.as_ref().map(|_| "[REDACTED]"),
            )
            .finish()
    }
}

impl std::str::FromStr for Ticket {
    type Err = TicketError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ticket::parse(s)
    }
}

/// Appends a length-prefixed (u16 big-endian) field.
fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    // Every field was length-checked when the ticket was built (all < 4 KiB).
    let len = u16::try_from(field.len()).expect("ticket fields are length-checked");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field);
}

fn take_str<'a>(rest: &mut &'a [u8], name: &'static str) -> Result<&'a str, TicketError> {
    if rest.len() < 2 {
        return Err(TicketError::Field(name));
    }
    let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
    let field = rest.get(2..2 + len).ok_or(TicketError::Field(name))?;
    *rest = &rest[2 + len..];
    std::str::from_utf8(field).map_err(|_| TicketError::Field(name))
}

fn validate_connect_url(url: &str) -> Result<(), TicketError> {
    if url.len() > 2048 {
        return Err(TicketError::TooLong("connect URL"));
    }
    let parsed = url::Url::parse(url).map_err(|e| TicketError::ConnectUrl(e.to_string()))?;
    match parsed.scheme() {
        "http" | "https" if parsed.host().is_some() => Ok(()),
        _ => Err(TicketError::ConnectUrl(format!(
            "`{url}` is not an http(s) URL with a host"
        ))),
    }
}

/// `prefix` without its trailing `/`; the root stays `/` (an empty prefix
/// would not survive the ticket's own validation when it is parsed back).
fn canonical_prefix(prefix: &str) -> String {
    match prefix.trim_end_matches('/') {
        "" => String::from("/"),
        trimmed => trimmed.to_owned(),
    }
}

/// Room a prefix leaves for what a ticket appends: `/` and the 32-character
/// path secret, then a side path's `/~name` (see [`crate::protocol`]).
const PREFIX_HEADROOM: usize = 64;

/// A prefix is `/` (streams at the root) or, after dropping one trailing `/`,
/// a stream path by the one validator that clients and the relay share, short
/// enough that the derived paths stay valid.
fn validate_path_prefix(prefix: &str) -> Result<(), TicketError> {
    if prefix.len() > crate::protocol::MAX_PATH_LEN - PREFIX_HEADROOM {
        return Err(TicketError::TooLong("path prefix"));
    }
    let canonical = canonical_prefix(prefix);
    if canonical == "/" && prefix.starts_with('/') {
        return Ok(());
    }
    crate::protocol::StreamPath::parse(&canonical)
        .map(|_| ())
        .map_err(|reason| TicketError::PathPrefix {
            prefix: prefix.to_owned(),
            reason,
        })
}

fn wrap_key(stream_key: &[u8; 32], salt: &[u8]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(hkdf(salt, LABEL_WRAP, stream_key))
}

/// Wraps a file key into a `-> zs-ticket <salt>` stanza for ticket holders.
///
/// The stanza is symmetric (HKDF and ChaCha20-Poly1305 under the ticket's
/// 256-bit secret), so it is quantum-safe: its label tells our
/// [`Encryptor`](crate::cipher::Encryptor) that it combines with X25519, SSH
/// and plugin recipients and with post-quantum ones (`age1pq1…`, label
/// `postquantum`) alike; as in age, not with a passphrase, whose scrypt
/// stanza must stand alone. (age's own encryptor does not know the label:
/// there the ticket's recipient combines only with itself.)
pub struct TicketRecipient {
    stream_key: Zeroizing<[u8; 32]>,
}

impl age::Recipient for TicketRecipient {
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> Result<(Vec<Stanza>, HashSet<String>), EncryptError> {
        let mut salt = [0u8; STANZA_SALT_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let key = wrap_key(&self.stream_key, &salt);
        let body = aead_encrypt(&key, file_key.expose_secret());
        let stanza = Stanza {
            tag: STANZA_TAG.to_owned(),
            args: vec![base64::engine::general_purpose::STANDARD_NO_PAD.encode(salt)],
            body,
        };
        Ok((
            vec![stanza],
            HashSet::from([crate::cipher::SYMMETRIC_LABEL.to_owned()]),
        ))
    }
}

impl fmt::Debug for TicketRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TicketRecipient([REDACTED])")
    }
}

/// Unwraps the file key from a `zs-ticket` stanza made with the same ticket.
pub struct TicketIdentity {
    stream_key: Zeroizing<[u8; 32]>,
}

impl age::Identity for TicketIdentity {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, DecryptError>> {
        if stanza.tag != STANZA_TAG {
            return None;
        }
        // A stanza of our type that is malformed is a header error, not a mismatch.
        let salt = match stanza.args.as_slice() {
            [salt] => match base64::engine::general_purpose::STANDARD_NO_PAD.decode(salt) {
                Ok(s) if s.len() == STANZA_SALT_BYTES => s,
                _ => return Some(Err(DecryptError::InvalidHeader)),
            },
            _ => return Some(Err(DecryptError::InvalidHeader)),
        };
        if stanza.body.len() != FILE_KEY_BYTES + 16 {
            return Some(Err(DecryptError::InvalidHeader));
        }
        let key = wrap_key(&self.stream_key, &salt);
        // A failing tag means "another ticket's stanza": not ours, keep looking.
        let plain = aead_decrypt(&key, FILE_KEY_BYTES, &stanza.body).ok()?;
        let plain = Zeroizing::new(plain);
        Some(Ok(FileKey::init_with_mut(|k| k.copy_from_slice(&plain))))
    }
}

impl fmt::Debug for TicketIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TicketIdentity([REDACTED])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::{Identity, Recipient};

    fn ticket() -> Ticket {
        Ticket::generate("https://relay.example:8443/v0", "/hospital/trial-42").unwrap()
    }

    #[test]
    fn round_trips_through_text() {
        let t = ticket()
            .with_access_token(SecretString::from("tok-123".to_owned()))
            .unwrap();
        let text = t.to_secret_string();
        assert!(text.expose_secret().starts_with("zs1"));
        let back = Ticket::parse(&format!("  {}\n", text.expose_secret())).unwrap();
        assert_eq!(back.connect_url(), "https://relay.example:8443/v0");
        assert_eq!(back.path_prefix(), "/hospital/trial-42");
        assert_eq!(back.stream_path(), t.stream_path());
        assert_eq!(back.access_token().unwrap().expose_secret(), "tok-123");
        assert_eq!(back.secret.expose_secret(), t.secret.expose_secret());
    }

    #[test]
    fn a_root_prefix_round_trips_and_makes_a_valid_stream_path() {
        for root in ["/", "//"] {
            let t = Ticket::generate("http://127.0.0.1:8080/v0", root).unwrap();
            assert_eq!(t.path_prefix(), "/");
            let back = Ticket::parse(t.to_secret_string().expose_secret()).unwrap();
            assert_eq!(back.path_prefix(), "/");
            assert_eq!(back.stream_path(), t.stream_path());
            let path = t.stream_path();
            assert!(path.starts_with('/') && !path.starts_with("//"), "{path}");
            assert_eq!(path.matches('/').count(), 1, "{path}");
        }
    }

    #[test]
    fn stream_path_is_unguessable_and_distinct_per_ticket() {
        let (a, b) = (ticket(), ticket());
        assert_ne!(a.stream_path(), b.stream_path());
        let segment = a.stream_path().rsplit('/').next().unwrap().to_owned();
        assert_eq!(segment.len(), 32); // 160 bits in base32
        assert!(!a
            .stream_path()
            .contains(&TEXT_ENCODING.encode(a.secret.expose_secret())));
    }

    #[test]
    fn every_single_character_change_is_detected() {
        let text = ticket().to_secret_string().expose_secret().to_owned();
        for i in TICKET_PREFIX.len()..text.len() {
            let mut bytes = text.clone().into_bytes();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let changed = String::from_utf8(bytes).unwrap();
            assert!(Ticket::parse(&changed).is_err(), "change at {i} accepted");
        }
        assert_eq!(
            Ticket::parse(&text[..text.len() - 8]).unwrap_err(), // 8 chars = 5 whole bytes
            TicketError::Checksum
        );
        assert_eq!(
            Ticket::parse("zs2abc").unwrap_err(),
            TicketError::MissingPrefix
        );
        assert_eq!(Ticket::parse("zs1!!").unwrap_err(), TicketError::Encoding);
    }

    #[test]
    fn rejects_bad_urls_and_paths() {
        assert!(matches!(
            Ticket::generate("ftp://x/v0", "/a"),
            Err(TicketError::ConnectUrl(_))
        ));
        for p in ["a/b", "/a//b", "/a/../b", "/a/./b", "/a b"] {
            assert!(
                matches!(
                    Ticket::generate("http://x/v0", p),
                    Err(TicketError::PathPrefix { .. })
                ),
                "{p}"
            );
        }
        assert_eq!(
            Ticket::generate("http://x/v0", "/")
                .unwrap()
                .stream_path()
                .len(),
            33
        );
    }

    #[test]
    fn stanza_round_trip_and_wrong_ticket_does_not_match() {
        let t = ticket();
        let file_key = FileKey::init_with_mut(|k| k.copy_from_slice(&[7u8; 16]));
        let (stanzas, labels) = t.recipient().wrap_file_key(&file_key).unwrap();
        assert_eq!(
            labels,
            HashSet::from(["zebrastream.io/symmetric".to_owned()])
        );
        assert_eq!(stanzas[0].tag, STANZA_TAG);
        let got = t.identity().unwrap_stanzas(&stanzas).unwrap().unwrap();
        assert_eq!(got.expose_secret(), &[7u8; 16]);
        assert!(ticket().identity().unwrap_stanzas(&stanzas).is_none());
    }

    #[test]
    fn malformed_stanza_is_a_header_error() {
        let t = ticket();
        let bad = Stanza {
            tag: STANZA_TAG.into(),
            args: vec!["short".into()],
            body: vec![0; 32],
        };
        assert!(matches!(
            t.identity().unwrap_stanza(&bad),
            Some(Err(DecryptError::InvalidHeader))
        ));
    }

    #[test]
    fn ticket_streams_decrypt_only_with_the_same_ticket_and_combine_with_x25519() {
        use crate::cipher::{Decryptor, Encryptor, Error, Format};
        let t = ticket();
        let x25519 = age::x25519::Identity::generate();
        for format in [Format::AgeRt, Format::AgeV1] {
            let recipients: Vec<Box<dyn age::Recipient + Send>> =
                vec![Box::new(t.recipient()), Box::new(x25519.to_public())];
            let sealed = Encryptor::with_recipients(format, recipients)
                .unwrap()
                .encrypt_all(b"ticket payload")
                .unwrap();
            let header = String::from_utf8_lossy(&sealed[..200]);
            assert!(header.contains("-> zs-ticket "), "{header}");
            let by_ticket = Decryptor::with_identities(vec![Box::new(t.identity())])
                .decrypt_all(&sealed)
                .unwrap();
            assert_eq!(by_ticket, b"ticket payload");
            let by_x25519 = Decryptor::with_identities(vec![Box::new(x25519.clone())])
                .decrypt_all(&sealed)
                .unwrap();
            assert_eq!(by_x25519, b"ticket payload");
            let other = Decryptor::with_identities(vec![Box::new(ticket().identity())])
                .decrypt_all(&sealed);
            assert!(matches!(other, Err(Error::NoMatchingIdentity)), "{other:?}");
        }
    }

    #[test]
    fn debug_never_shows_secrets() {
        let t = ticket()
            .with_access_token(SecretString::from("tok-123".to_owned()))
            .unwrap();
        let dbg = format!("{t:?} {:?} {:?}", t.recipient(), t.identity());
        assert!(dbg.contains("[REDACTED]"));
        assert!(!dbg.contains("tok-123"));
        let secret_text = TEXT_ENCODING.encode(t.secret.expose_secret());
        assert!(!dbg.contains(&secret_text[..10]));
    }
}

//! The header: format identifiers, the age header grammar (parser and
//! writer) and the header MAC.
//!
//! Both formats share age v1's header grammar; only the first line differs:
//!
//! ```text
//! <identifier>\n
//! -> <type> <arg>...\n          (one or more recipient stanzas)
//! <base64 body, 64 columns, last line shorter than 64 (maybe empty)>\n
//! --- <base64 HMAC-SHA256 of everything up to and including "---">\n
//! ```
//!
//! The parser is strict: canonical unpadded base64, no CR, no empty
//! arguments, a bounded size.

use std::fmt;
use std::str::FromStr;

use age_core::format::{FileKey, Stanza};
use base64::prelude::{Engine, BASE64_STANDARD_NO_PAD};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::error::HeaderError;

/// First header line of age-rt v0.2.
pub(crate) const AGE_RT_IDENTIFIER: &str = "github.com/parsimonit/age-rt-encryption/v0.2";
/// First header line of age v1.
pub(crate) const AGE_V1_IDENTIFIER: &str = "age-encryption.org/v1";
/// Largest header the decryptor buffers before giving up (64 KiB: room for
/// hundreds of X25519 recipients; the Python decoder stops at 4 KiB).
pub(crate) const MAX_HEADER_LEN: usize = 64 * 1024;

const STANZA_PREFIX: &[u8] = b"-> ";
const MAC_PREFIX: &[u8] = b"---";
const MAC_LEN: usize = 32;
const ENCODED_MAC_LEN: usize = 43;
const BODY_COLUMNS: usize = 64;

/// The two payload formats.
///
/// ```
/// use zebrastream::cipher::Format;
/// assert_eq!(Format::default(), Format::AgeRt);
/// assert_eq!("age".parse::<Format>().unwrap(), Format::AgeV1);
/// assert_eq!(Format::AgeRt.to_string(), "age-rt");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// age-rt v0.2: length-prefixed chunks of 0..=64 KiB, flushable. What
    /// the official Python client 0.5.4 writes by default.
    #[default]
    AgeRt,
    /// Standard age v1: fixed 64 KiB chunks; readable by `age`, `rage` and
    /// browser decryptors.
    AgeV1,
}

impl Format {
    /// The header's first line for this format.
    pub fn identifier(self) -> &'static str {
        match self {
            Format::AgeRt => AGE_RT_IDENTIFIER,
            Format::AgeV1 => AGE_V1_IDENTIFIER,
        }
    }

    /// The format a header identifier line names, if any.
    pub fn from_identifier(line: &[u8]) -> Option<Format> {
        [Format::AgeRt, Format::AgeV1]
            .into_iter()
            .find(|f| f.identifier().as_bytes() == line)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::AgeRt => "age-rt",
            Format::AgeV1 => "age",
        })
    }
}

/// A format name that is neither `age-rt` nor `age`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format {0:?} (expected \"age-rt\" or \"age\")")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "age-rt" => Ok(Format::AgeRt),
            "age" => Ok(Format::AgeV1),
            other => Err(UnknownFormat(other.to_owned())),
        }
    }
}

/// A parsed header, MAC not yet verified.
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) stanzas: Vec<Stanza>,
    mac: [u8; MAC_LEN],
    /// The MAC covers `bytes[..mac_covered]` (up to and including `---`).
    mac_covered: usize,
}

/// Checks a completed first line; used by the decryptor to fail early.
pub(crate) fn check_identifier(line: &[u8]) -> Result<Format, HeaderError> {
    Format::from_identifier(line).ok_or_else(|| {
        HeaderError::UnknownIdentifier(String::from_utf8_lossy(line).chars().take(80).collect())
    })
}

/// Whether a header line (without its newline) is the MAC line that ends the header.
pub(crate) fn is_terminator(line: &[u8]) -> bool {
    line.starts_with(MAC_PREFIX)
}

/// Parses a complete header (`bytes` ends with the MAC line's newline).
pub(crate) fn parse_header(bytes: &[u8]) -> Result<Header, HeaderError> {
    let malformed = HeaderError::Malformed;
    let body = bytes
        .strip_suffix(b"\n")
        .ok_or(malformed("missing final newline"))?;
    let mut lines = body.split(|&b| b == b'\n').peekable();
    let format = check_identifier(lines.next().ok_or(malformed("empty header"))?)?;

    let mut stanzas = Vec::new();
    let mut offset = format.identifier().len() + 1;
    loop {
        let line = lines.next().ok_or(malformed("missing MAC line"))?;
        if is_terminator(line) {
            if lines.next().is_some() {
                return Err(malformed("data after the MAC line"));
            }
            let mac = parse_mac_line(line)?;
            return Ok(Header {
                stanzas,
                mac,
                mac_covered: offset + MAC_PREFIX.len(),
            });
        }
        let args_line = line.strip_prefix(STANZA_PREFIX).ok_or(malformed(
            "expected a stanza (\"-> \") or the MAC line (\"--- \")",
        ))?;
        offset += line.len() + 1;
        let mut args = parse_args(args_line)?;
        let tag = args.remove(0);
        // Body: full 64-column lines, then one shorter (possibly empty) line.
        let mut encoded = Vec::new();
        loop {
            let body_line = lines
                .next()
                .ok_or(malformed("stanza body not terminated"))?;
            offset += body_line.len() + 1;
            if body_line.len() > BODY_COLUMNS {
                return Err(HeaderError::NonCanonicalBase64(
                    "stanza body (line too long)",
                ));
            }
            encoded.extend_from_slice(body_line);
            if body_line.len() < BODY_COLUMNS {
                break;
            }
        }
        let body = decode_base64(&encoded).ok_or(HeaderError::NonCanonicalBase64("stanza body"))?;
        stanzas.push(Stanza { tag, args, body });
    }
}

fn parse_args(line: &[u8]) -> Result<Vec<String>, HeaderError> {
    line.split(|&b| b == b' ')
        .map(|arg| {
            // age "arbitrary strings": one or more printable ASCII characters.
            if arg.is_empty() || !arg.iter().all(|b| (33..=126).contains(b)) {
                Err(HeaderError::Malformed("invalid stanza argument"))
            } else {
                Ok(String::from_utf8(arg.to_vec()).expect("printable ASCII"))
            }
        })
        .collect()
}

fn parse_mac_line(line: &[u8]) -> Result<[u8; MAC_LEN], HeaderError> {
    let encoded = line
        .strip_prefix(b"--- ")
        .ok_or(HeaderError::Malformed("MAC line must start with \"--- \""))?;
    if encoded.len() != ENCODED_MAC_LEN {
        return Err(HeaderError::Malformed("MAC must be 43 base64 characters"));
    }
    let mac = decode_base64(encoded).ok_or(HeaderError::NonCanonicalBase64("header MAC"))?;
    mac.try_into()
        .map_err(|_| HeaderError::Malformed("MAC must be 32 bytes"))
}

/// Canonical unpadded standard base64 (no padding, no trailing bits, no whitespace).
fn decode_base64(encoded: &[u8]) -> Option<Vec<u8>> {
    BASE64_STANDARD_NO_PAD.decode(encoded).ok()
}

/// `HMAC-SHA256` keyed with `HKDF-SHA256(ikm = file key, salt = empty, info = "header")`.
fn header_mac(file_key: &FileKey) -> Hmac<Sha256> {
    let mut key = Zeroizing::new([0u8; 32]);
    Hkdf::<Sha256>::new(Some(&[]), file_key.expose_secret())
        .expand(b"header", key.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    Hmac::<Sha256>::new_from_slice(key.as_ref()).expect("HMAC takes any key length")
}

impl Header {
    /// Verifies the MAC over the original header bytes in constant time.
    pub(crate) fn verify_mac(&self, bytes: &[u8], file_key: &FileKey) -> Result<(), HeaderError> {
        let mut mac = header_mac(file_key);
        mac.update(&bytes[..self.mac_covered]);
        mac.verify_slice(&self.mac).map_err(|_| HeaderError::BadMac)
    }
}

/// Serializes a header with its MAC.
pub(crate) fn write_header(format: Format, stanzas: &[Stanza], file_key: &FileKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(format.identifier().as_bytes());
    out.push(b'\n');
    for stanza in stanzas {
        out.extend_from_slice(STANZA_PREFIX);
        out.extend_from_slice(stanza.tag.as_bytes());
        for arg in &stanza.args {
            out.push(b' ');
            out.extend_from_slice(arg.as_bytes());
        }
        out.push(b'\n');
        let encoded = BASE64_STANDARD_NO_PAD.encode(&stanza.body);
        let mut rest = encoded.as_bytes();
        // Always end with a short line, even an empty one, as age requires.
        loop {
            let (line, tail) = rest.split_at(rest.len().min(BODY_COLUMNS));
            out.extend_from_slice(line);
            out.push(b'\n');
            if line.len() < BODY_COLUMNS {
                break;
            }
            rest = tail;
        }
    }
    out.extend_from_slice(MAC_PREFIX);
    let mut mac = header_mac(file_key);
    mac.update(&out);
    let tag = mac.finalize().into_bytes();
    out.push(b' ');
    out.extend_from_slice(BASE64_STANDARD_NO_PAD.encode(tag).as_bytes());
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FileKey {
        FileKey::new(Box::new([9u8; 16]))
    }

    fn stanza(tag: &str, body_len: usize) -> Stanza {
        Stanza {
            tag: tag.into(),
            args: vec!["arg1".into(), "arg2".into()],
            body: vec![0xab; body_len],
        }
    }

    #[test]
    fn write_then_parse_round_trips_all_body_lengths() {
        for body_len in [0, 1, 32, 47, 48, 49, 96, 200] {
            let stanzas = vec![stanza("X25519", body_len), stanza("other", 3)];
            let bytes = write_header(Format::AgeV1, &stanzas, &key());
            let header = parse_header(&bytes).unwrap();
            assert_eq!(header.stanzas, stanzas);
            header.verify_mac(&bytes, &key()).unwrap();
            let other = FileKey::new(Box::new([1u8; 16]));
            assert_eq!(header.verify_mac(&bytes, &other), Err(HeaderError::BadMac));
        }
    }

    /// The names the CLI's `--format` takes and prints.
    #[test]
    fn format_names_print_and_parse() {
        for (format, name) in [(Format::AgeRt, "age-rt"), (Format::AgeV1, "age")] {
            assert_eq!(format.to_string(), name);
            assert_eq!(name.parse::<Format>(), Ok(format));
        }
        assert_eq!(
            "age-v1".parse::<Format>(),
            Err(UnknownFormat("age-v1".into()))
        );
    }

    #[test]
    fn rejects_unknown_identifier_and_bad_grammar() {
        assert!(matches!(
            parse_header(b"age-encryption.org/v2\n--- x\n"),
            Err(HeaderError::UnknownIdentifier(_))
        ));
        let good = write_header(Format::AgeRt, &[stanza("scrypt", 32)], &key());
        let text = String::from_utf8(good.clone()).unwrap();
        for bad in [
            text.replace("arg1 arg2", "arg1  arg2"),
            text.replace("\n---", "\r\n---"),
            text.replace("--- ", "---  "),
            text.replace("-> ", "->  "),
        ] {
            assert!(parse_header(bad.as_bytes()).is_err(), "{bad}");
        }
        // A padded body is not canonical.
        let padded = text.replacen("\n", "=\n", 3).replacen("=\n", "\n", 2);
        assert!(parse_header(padded.as_bytes()).is_err());
    }
}

//! Recipients and identities from strings and files, for the CLI and
//! library users: `age1…` X25519 recipients, `age1pq1…` hybrid
//! post-quantum recipients ([`HybridRecipient`]), age 1.3's tag recipients
//! (`age1tag1…`, `age1tagpq1…`, for hardware keys), `ssh-ed25519`/`ssh-rsa`
//! public keys, age plugin recipients (`age1<name>1…`), `AGE-SECRET-KEY-1…`,
//! `AGE-SECRET-KEY-PQ-1…` and `AGE-PLUGIN-<NAME>-1…` identities (one per
//! line, as `age-keygen` and plugins write them) and unencrypted OpenSSH
//! private keys.
//!
//! Plugin keys need the program `age-plugin-<name>` on `PATH`: it is looked
//! up when the key is parsed ([`PluginError::NotFound`](super::PluginError)
//! otherwise). The `*_with` functions take the [`age::Callbacks`] through
//! which a plugin shows messages and asks for a PIN; the others use
//! [`age::NoCallbacks`] (messages dropped, requests refused).
//!
//! Errors name the file and line, never the key material.
//!
//! ```
//! use zebrastream::cipher::keys;
//! let id = keys::parse_identities(
//!     b"# created: 2024-01-01\nAGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX\n",
//!     "key.txt",
//! ).unwrap();
//! assert_eq!(id.len(), 1);
//! let r = keys::parse_recipient("age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj");
//! assert!(r.is_ok());
//! ```

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use super::error::{Error, KeyError, Unsupported};

mod hybrid;
mod plugin;

pub(crate) use hybrid::POSTQUANTUM_LABEL;
pub use hybrid::{HybridIdentity, HybridRecipient, ParseHybridKeyError};
pub(crate) use plugin::plugin_error;
use plugin::{PluginIdentity, PluginRecipient};

/// A recipient the encryptor can wrap the file key for.
pub type BoxedRecipient = Box<dyn age::Recipient + Send>;
/// An identity the decryptor can unwrap the file key with.
pub type BoxedIdentity = Box<dyn age::Identity + Send + Sync>;

/// Parses one recipient: `age1…` (X25519), `age1pq1…` (hybrid post-quantum,
/// [`HybridRecipient`]), `age1tag1…`/`age1tagpq1…` (tag), `ssh-ed25519 …`,
/// `ssh-rsa …`, or `age1<name>1…` (plugin, [`age::NoCallbacks`]).
pub fn parse_recipient(s: &str) -> Result<BoxedRecipient, Error> {
    parse_recipient_with(s, age::NoCallbacks)
}

/// [`parse_recipient`], with `ui` for a plugin's messages and requests.
pub fn parse_recipient_with(s: &str, ui: impl age::Callbacks) -> Result<BoxedRecipient, Error> {
    match recipient_at(s.trim(), None, None)? {
        Parsed::Key(key) => Ok(key),
        Parsed::Plugin(r) => {
            let name = r.plugin().to_owned();
            Ok(Box::new(PluginRecipient::new(&name, &[r], ui)?))
        }
    }
}

/// Parses a recipients file's text: one recipient per line, blank lines and
/// `#` comments ignored. `source_name` names the file in errors.
pub fn parse_recipients(text: &str, source_name: &str) -> Result<Vec<BoxedRecipient>, Error> {
    parse_recipients_with(text, source_name, age::NoCallbacks)
}

fn parse_recipients_with(
    text: &str,
    source_name: &str,
    ui: impl age::Callbacks,
) -> Result<Vec<BoxedRecipient>, Error> {
    let mut recipients = Vec::new();
    let mut plugins: BTreeMap<String, Vec<age::plugin::Recipient>> = BTreeMap::new();
    for (n, line) in key_lines(text) {
        match recipient_at(line, Some(source_name), Some(n))? {
            Parsed::Key(key) => recipients.push(key),
            Parsed::Plugin(r) => plugins.entry(r.plugin().to_owned()).or_default().push(r),
        }
    }
    for (name, group) in plugins {
        recipients.push(Box::new(PluginRecipient::new(&name, &group, ui.clone())?));
    }
    if recipients.is_empty() {
        return Err(KeyError::Empty(source_name.to_owned()).into());
    }
    Ok(recipients)
}

/// Reads a recipients file (see [`parse_recipients`]).
pub fn read_recipients_file(path: &Path) -> Result<Vec<BoxedRecipient>, Error> {
    read_recipients_file_with(path, age::NoCallbacks)
}

/// [`read_recipients_file`], with `ui` for the plugins' messages and requests.
pub fn read_recipients_file_with(
    path: &Path,
    ui: impl age::Callbacks,
) -> Result<Vec<BoxedRecipient>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| io_error(path, &e))?;
    parse_recipients_with(&text, &path.display().to_string(), ui)
}

/// Parses one identity: `AGE-SECRET-KEY-1…`, `AGE-SECRET-KEY-PQ-1…` or
/// `AGE-PLUGIN-<NAME>-1…` (plugin, [`age::NoCallbacks`]).
pub fn parse_identity(s: &str) -> Result<BoxedIdentity, Error> {
    let s = s.trim();
    if s.starts_with("AGE-PLUGIN-") {
        let mut plugin = parse_identities_with(s.as_bytes(), None, age::NoCallbacks)?;
        return Ok(plugin.remove(0));
    }
    identity_at(s, None, None)
}

/// Parses an identity file's bytes: an unencrypted OpenSSH/PEM private key,
/// or `AGE-SECRET-KEY-1…`, `AGE-SECRET-KEY-PQ-1…` and `AGE-PLUGIN-…` lines
/// with blank lines and `#` comments (what `age-keygen` and plugins write).
/// `source_name` names the file in errors.
pub fn parse_identities(data: &[u8], source_name: &str) -> Result<Vec<BoxedIdentity>, Error> {
    parse_identities_with(data, Some(source_name), age::NoCallbacks)
}

/// Identities from `data`; `source_name` is `None` for a single key given
/// as a string. One [`PluginIdentity`] per plugin holds its identities.
fn parse_identities_with(
    data: &[u8],
    source_name: Option<&str>,
    ui: impl age::Callbacks,
) -> Result<Vec<BoxedIdentity>, Error> {
    let source = source_name.map(str::to_owned);
    let text = std::str::from_utf8(data).map_err(|_| KeyError::InvalidIdentity {
        source_name: source.clone(),
        line: None,
        reason: "not UTF-8 text".into(),
    })?;
    if text.trim_start().starts_with("-----BEGIN") {
        return ssh_identity(data, source_name.unwrap_or("the key")).map(|id| vec![id]);
    }
    let line_of = |n| source_name.map(|_| n);
    let mut identities = Vec::new();
    let mut plugins: BTreeMap<String, Vec<age::plugin::Identity>> = BTreeMap::new();
    for (n, line) in key_lines(text) {
        if line.starts_with("AGE-PLUGIN-") {
            let id =
                age::plugin::Identity::from_str(line).map_err(|e| KeyError::InvalidIdentity {
                    source_name: source.clone(),
                    line: line_of(n),
                    reason: format!("not a valid AGE-PLUGIN-…-1… plugin identity ({e})"),
                })?;
            plugins.entry(id.plugin().to_owned()).or_default().push(id);
        } else {
            identities.push(identity_at(line, source_name, line_of(n))?);
        }
    }
    for (name, group) in plugins {
        identities.push(Box::new(PluginIdentity::new(&name, &group, ui.clone())?));
    }
    if identities.is_empty() {
        return Err(KeyError::Empty(source_name.unwrap_or("the key").to_owned()).into());
    }
    Ok(identities)
}

/// Reads an identity file (see [`parse_identities`]).
pub fn read_identity_file(path: &Path) -> Result<Vec<BoxedIdentity>, Error> {
    read_identity_file_with(path, age::NoCallbacks)
}

/// [`read_identity_file`], with `ui` for the plugins' messages and requests.
pub fn read_identity_file_with(
    path: &Path,
    ui: impl age::Callbacks,
) -> Result<Vec<BoxedIdentity>, Error> {
    let data = std::fs::read(path).map_err(|e| io_error(path, &e))?;
    parse_identities_with(&data, Some(&path.display().to_string()), ui)
}

/// The numbered lines of a key file that hold keys (not blank, not `#`).
fn key_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
}

fn io_error(path: &Path, e: &std::io::Error) -> Error {
    KeyError::Io {
        path: path.to_owned(),
        kind: e.kind(),
    }
    .into()
}

/// A parsed recipient line: a key we wrap for ourselves, or one for a plugin
/// (grouped per plugin before the plugin is looked up).
enum Parsed {
    Key(BoxedRecipient),
    Plugin(age::plugin::Recipient),
}

fn recipient_at(s: &str, source: Option<&str>, line: Option<usize>) -> Result<Parsed, Error> {
    let invalid = |reason: &str| -> Error {
        KeyError::InvalidRecipient {
            source_name: source.map(str::to_owned),
            line,
            reason: reason.to_owned(),
        }
        .into()
    };
    let key = |r: BoxedRecipient| Ok(Parsed::Key(r));
    if s.starts_with("ssh-") {
        return match age::ssh::Recipient::from_str(s) {
            Ok(r) => key(Box::new(r)),
            Err(age::ssh::ParseRecipientKeyError::Unsupported(t)) => {
                Err(Unsupported::KeyType(format!("SSH key type {t}")).into())
            }
            Err(_) => Err(invalid("not a valid SSH public key")),
        };
    }
    // The Bech32 HRP (up to the last `1`) says the type; age1pq, age1tag and
    // age1tagpq would otherwise read as plugins named pq, tag and tagpq.
    let hrp = s.rfind('1').map_or("", |i| &s[..i]);
    match hrp {
        "age1pq" => match HybridRecipient::from_str(s) {
            Ok(r) => key(Box::new(r)),
            Err(e) => Err(invalid(&format!(
                "not a valid age1pq1… hybrid recipient ({e})"
            ))),
        },
        "age1tag" => match age::tag::Recipient::from_str(s) {
            Ok(r) => key(Box::new(r)),
            Err(e) => Err(invalid(&format!(
                "not a valid age1tag1… tag recipient ({e})"
            ))),
        },
        "age1tagpq" => match age::tagpq::Recipient::from_str(s) {
            Ok(r) => key(Box::new(r)),
            Err(e) => Err(invalid(&format!(
                "not a valid age1tagpq1… hybrid tag recipient ({e})"
            ))),
        },
        "age" => match age::x25519::Recipient::from_str(s) {
            Ok(r) => key(Box::new(r)),
            Err(_) => Err(invalid("not a valid age1… X25519 recipient")),
        },
        _ if s.starts_with("age1") => match age::plugin::Recipient::from_str(s) {
            Ok(r) => Ok(Parsed::Plugin(r)),
            Err(e) => Err(invalid(&format!(
                "not a valid age1… X25519 or age1<plugin>1… plugin recipient ({e})"
            ))),
        },
        _ => Err(invalid("expected an age1… or ssh-… public key")),
    }
}

fn identity_at(s: &str, source: Option<&str>, line: Option<usize>) -> Result<BoxedIdentity, Error> {
    if s.starts_with("AGE-SECRET-KEY-PQ-1") {
        return HybridIdentity::from_str(s)
            .map(|id| Box::new(id) as BoxedIdentity)
            .map_err(|e| {
                KeyError::InvalidIdentity {
                    source_name: source.map(str::to_owned),
                    line,
                    reason: format!("not a valid AGE-SECRET-KEY-PQ-1… hybrid identity ({e})"),
                }
                .into()
            });
    }
    age::x25519::Identity::from_str(s)
        .map(|id| Box::new(id) as BoxedIdentity)
        .map_err(|_| {
            KeyError::InvalidIdentity {
                source_name: source.map(str::to_owned),
                line,
                reason: "expected an AGE-SECRET-KEY-1… identity".into(),
            }
            .into()
        })
}

fn ssh_identity(data: &[u8], source_name: &str) -> Result<BoxedIdentity, Error> {
    let invalid = |reason: &str| -> Error {
        KeyError::InvalidIdentity {
            source_name: Some(source_name.to_owned()),
            line: None,
            reason: reason.to_owned(),
        }
        .into()
    };
    match age::ssh::Identity::from_buffer(data, Some(source_name.to_owned())) {
        Ok(id @ age::ssh::Identity::Unencrypted(_)) => Ok(Box::new(id)),
        Ok(age::ssh::Identity::Encrypted(_)) => {
            Err(Unsupported::KeyType("passphrase-protected SSH private key".into()).into())
        }
        Ok(age::ssh::Identity::Unsupported(_)) => {
            Err(Unsupported::KeyType("this kind of SSH private key".into()).into())
        }
        Err(_) => Err(invalid("not a valid SSH private key")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_file_errors_name_the_line() {
        let text =
            "# comment\n\nage1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj\nbogus\n";
        let err = parse_recipients(text, "r.txt").err().unwrap();
        assert_eq!(
            err.to_string(),
            "key error: invalid recipient in r.txt line 4: expected an age1… or ssh-… public key"
        );
        assert!(matches!(
            parse_recipients("# only comments\n", "e.txt")
                .err()
                .unwrap(),
            Error::Key(KeyError::Empty(_))
        ));
    }

    #[test]
    fn identity_errors_do_not_leak_the_key() {
        let secret = "AGE-SECRET-KEY-1NOTAREALKEYNOTAREALKEYNOTAREALKEY";
        let err = parse_identities(secret.as_bytes(), "id.txt").err().unwrap();
        assert!(!err.to_string().contains("NOTAREALKEY"));
        assert!(err.to_string().contains("id.txt line 1"));
        let err = parse_identities(b"AGE-SECRET-KEY-PQ-1NOTAREALKEY", "pq.txt")
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "key error: invalid identity in pq.txt line 1: not a valid AGE-SECRET-KEY-PQ-1… \
             hybrid identity (invalid Bech32 encoding)"
        );
    }

    /// The file readers parse what they read and name a missing file.
    #[test]
    fn key_files_are_read_and_parsed() {
        use age::secrecy::ExposeSecret;
        let id = age::x25519::Identity::generate();
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let ids = write("id.txt", format!("{}\n", id.to_string().expose_secret()));
        let recipients = write("r.txt", format!("{}\n{}\n", id.to_public(), id.to_public()));
        assert_eq!(read_identity_file(&ids).unwrap().len(), 1);
        assert_eq!(read_recipients_file(&recipients).unwrap().len(), 2);
        let missing = dir.path().join("missing");
        for err in [
            read_identity_file(&missing).err().unwrap(),
            read_recipients_file(&missing).err().unwrap(),
        ] {
            assert!(matches!(
                err,
                Error::Key(KeyError::Io { ref path, kind: std::io::ErrorKind::NotFound }) if *path == missing
            ));
        }
    }

    #[test]
    fn generated_identity_round_trips() {
        use age::secrecy::ExposeSecret;
        let id = age::x25519::Identity::generate();
        let text = format!(
            "# public key: {}\n{}\n",
            id.to_public(),
            id.to_string().expose_secret()
        );
        assert_eq!(parse_identities(text.as_bytes(), "k").unwrap().len(), 1);
        assert!(parse_recipient(&id.to_public().to_string()).is_ok());
    }
}

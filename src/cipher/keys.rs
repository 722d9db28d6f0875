//! Recipients and identities from strings and files, for the CLI and
//! library users: `age1…` X25519 recipients, `age1pq1…` hybrid
//! post-quantum recipients ([`HybridRecipient`]), `ssh-ed25519`/`ssh-rsa`
//! public keys, `AGE-SECRET-KEY-1…` and `AGE-SECRET-KEY-PQ-1…` identities
//! (one per line, as `age-keygen` writes them) and unencrypted OpenSSH
//! private keys.
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

use std::path::Path;
use std::str::FromStr;

use super::error::{Error, KeyError, Unsupported};

mod hybrid;

pub(crate) use hybrid::POSTQUANTUM_LABEL;
pub use hybrid::{HybridIdentity, HybridRecipient, ParseHybridKeyError};

/// A recipient the encryptor can wrap the file key for.
pub type BoxedRecipient = Box<dyn age::Recipient + Send>;
/// An identity the decryptor can unwrap the file key with.
pub type BoxedIdentity = Box<dyn age::Identity + Send + Sync>;

/// Parses one recipient: `age1…` (X25519), `age1pq1…` (hybrid post-quantum,
/// [`HybridRecipient`]), `ssh-ed25519 …` or `ssh-rsa …`.
pub fn parse_recipient(s: &str) -> Result<BoxedRecipient, Error> {
    recipient_at(s.trim(), None, None)
}

/// Parses a recipients file's text: one recipient per line, blank lines and
/// `#` comments ignored. `source_name` names the file in errors.
pub fn parse_recipients(text: &str, source_name: &str) -> Result<Vec<BoxedRecipient>, Error> {
    let recipients = text
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(n, line)| recipient_at(line, Some(source_name), Some(n)))
        .collect::<Result<Vec<_>, _>>()?;
    if recipients.is_empty() {
        return Err(KeyError::Empty(source_name.to_owned()).into());
    }
    Ok(recipients)
}

/// Reads a recipients file (see [`parse_recipients`]).
pub fn read_recipients_file(path: &Path) -> Result<Vec<BoxedRecipient>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| io_error(path, &e))?;
    parse_recipients(&text, &path.display().to_string())
}

/// Parses one identity: `AGE-SECRET-KEY-1…`.
pub fn parse_identity(s: &str) -> Result<BoxedIdentity, Error> {
    identity_at(s.trim(), None, None)
}

/// Parses an identity file's bytes: an unencrypted OpenSSH/PEM private key,
/// or `AGE-SECRET-KEY-1…` lines with blank lines and `#` comments (what
/// `age-keygen` writes). `source_name` names the file in errors.
pub fn parse_identities(data: &[u8], source_name: &str) -> Result<Vec<BoxedIdentity>, Error> {
    let text = std::str::from_utf8(data).map_err(|_| KeyError::InvalidIdentity {
        source_name: Some(source_name.to_owned()),
        line: None,
        reason: "not UTF-8 text".into(),
    })?;
    if text.trim_start().starts_with("-----BEGIN") {
        return ssh_identity(data, source_name).map(|id| vec![id]);
    }
    let identities = text
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(n, line)| identity_at(line, Some(source_name), Some(n)))
        .collect::<Result<Vec<_>, _>>()?;
    if identities.is_empty() {
        return Err(KeyError::Empty(source_name.to_owned()).into());
    }
    Ok(identities)
}

/// Reads an identity file (see [`parse_identities`]).
pub fn read_identity_file(path: &Path) -> Result<Vec<BoxedIdentity>, Error> {
    let data = std::fs::read(path).map_err(|e| io_error(path, &e))?;
    parse_identities(&data, &path.display().to_string())
}

fn io_error(path: &Path, e: &std::io::Error) -> Error {
    KeyError::Io {
        path: path.to_owned(),
        kind: e.kind(),
    }
    .into()
}

fn recipient_at(
    s: &str,
    source: Option<&str>,
    line: Option<usize>,
) -> Result<BoxedRecipient, Error> {
    let invalid = |reason: &str| -> Error {
        KeyError::InvalidRecipient {
            source_name: source.map(str::to_owned),
            line,
            reason: reason.to_owned(),
        }
        .into()
    };
    if s.starts_with("ssh-") {
        return match age::ssh::Recipient::from_str(s) {
            Ok(r) => Ok(Box::new(r)),
            Err(age::ssh::ParseRecipientKeyError::Unsupported(t)) => {
                Err(Unsupported::KeyType(format!("SSH key type {t}")).into())
            }
            Err(_) => Err(invalid("not a valid SSH public key")),
        };
    }
    if s.starts_with("age1pq1") {
        return match HybridRecipient::from_str(s) {
            Ok(r) => Ok(Box::new(r)),
            Err(e) => Err(invalid(&format!(
                "not a valid age1pq1… hybrid recipient ({e})"
            ))),
        };
    }
    if let Some(rest) = s.strip_prefix("age1") {
        if let Ok(r) = age::x25519::Recipient::from_str(s) {
            return Ok(Box::new(r));
        }
        // Bech32 recipients of other types: age1tag1…, age1tagpq1…, plugins.
        if let Some(kind) = ["tag1", "tagpq1"].iter().find(|p| rest.starts_with(**p)) {
            return Err(Unsupported::KeyType(format!("recipient type age1{kind}…")).into());
        }
        return Err(invalid("not a valid age1… X25519 recipient"));
    }
    Err(invalid("expected an age1… or ssh-… public key"))
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
    if s.starts_with("AGE-PLUGIN-") {
        return Err(Unsupported::KeyType("age plugin identity".into()).into());
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

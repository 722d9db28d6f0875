//! Access tokens: the tokens file and the per-request authorization check.
//!
//! A tokens file lists entries (TOML `[[tokens]]` tables or a YAML `tokens:`
//! list), each granting **one** access mode on one path:
//!
//! ```toml
//! [[tokens]]
//! token_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//! mode = "write"            # or "read"
//! path = "/team/stream"
//! recursive = false         # true: also every path below /team/stream/
//! expires = 1893456000      # UNIX seconds; omit for no expiry
//!
//! [[tokens]]
//! token = "plain-secret"    # the token itself instead of its SHA-256
//! mode = "read"
//! path = "/team"
//! recursive = true
//! ```
//!
//! The relay keeps only SHA-256 digests and compares them in constant time.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use super::error::Error;
use super::path::StreamPath;

/// What a token allows: reading or writing, never both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Consumer side: Data-API `GET`, Connect `mode=await-writer`.
    Read,
    /// Producer side: Data-API `PUT`/`POST`, Connect `mode=await-reader`.
    Write,
}

/// Why a request was refused; each maps to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No `Authorization: Bearer` header (or `accesstoken` parameter): 401.
    #[error("missing access token")]
    Missing,
    /// The token is not in the tokens file: 401.
    #[error("unknown access token")]
    Unknown,
    /// Every entry for this token has expired: 401.
    #[error("access token expired")]
    Expired,
    /// The token is valid but not for this path or this access mode: 403.
    #[error("access token does not grant {0:?} access to this path")]
    Forbidden(Access),
}

impl Denied {
    /// The HTTP status this refusal is answered with.
    pub fn status(self) -> http::StatusCode {
        match self {
            Denied::Forbidden(_) => http::StatusCode::FORBIDDEN,
            _ => http::StatusCode::UNAUTHORIZED,
        }
    }
}

/// One line of the tokens file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    token: Option<String>,
    token_sha256: Option<String>,
    mode: Access,
    path: String,
    #[serde(default)]
    recursive: bool,
    expires: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    tokens: Vec<RawEntry>,
}

struct Entry {
    digest: [u8; 32],
    access: Access,
    path: StreamPath,
    recursive: bool,
    /// UNIX seconds after which the entry no longer counts.
    expires: Option<u64>,
}

/// The parsed tokens file: SHA-256 digests of tokens with what each grants.
pub struct TokenStore {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenStore({} entries, [REDACTED])", self.entries.len())
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenStore {
    /// Reads a tokens file: YAML when it ends in `.yaml`/`.yml`, TOML otherwise.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::TokensFile {
            path: path.to_owned(),
            source,
        })?;
        let yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        );
        Self::parse(&text, yaml).map_err(|reason| Error::TokensParse {
            path: path.to_owned(),
            reason,
        })
    }

    /// Parses tokens-file text (`yaml` selects YAML, else TOML). The error
    /// names the entry and the problem, never a token.
    pub fn parse(text: &str, yaml: bool) -> Result<Self, String> {
        let raw: RawFile = if yaml {
            serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?
        } else {
            toml::from_str(text).map_err(|e| e.message().to_owned())?
        };
        let entries = raw
            .tokens
            .into_iter()
            .enumerate()
            .map(|(i, entry)| Self::entry(entry).map_err(|e| format!("entry {}: {e}", i + 1)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TokenStore { entries })
    }

    fn entry(mut raw: RawEntry) -> Result<Entry, String> {
        let digest = match (raw.token.as_mut(), raw.token_sha256.as_deref()) {
            (Some(token), None) => {
                if token.is_empty() {
                    return Err("token is empty".into());
                }
                let d = digest(token);
                token.zeroize();
                d
            }
            (None, Some(hex)) => decode_sha256(hex)?,
            (Some(token), Some(_)) => {
                token.zeroize();
                return Err("give either token or token_sha256, not both".into());
            }
            (None, None) => return Err("needs token or token_sha256".into()),
        };
        // A trailing '/' on a token path means the same as without it.
        let trimmed = match raw.path.strip_suffix('/') {
            Some(t) if !t.is_empty() => t,
            _ => raw.path.as_str(),
        };
        let path = StreamPath::parse(trimmed).map_err(|e| format!("path {:?}: {e}", raw.path))?;
        Ok(Entry {
            digest,
            access: raw.mode,
            path,
            recursive: raw.recursive,
            expires: raw.expires,
        })
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file had no entries (then every request is refused).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether `token` may use `path` with `access` at time `now`.
    ///
    /// Every entry is compared (constant-time digest comparison, no early
    /// exit), so timing does not reveal which entry matched.
    pub fn authorize(
        &self,
        token: Option<&str>,
        path: &StreamPath,
        access: Access,
        now: SystemTime,
    ) -> Result<(), Denied> {
        let token = token.ok_or(Denied::Missing)?;
        let presented = digest(token);
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let (mut known, mut live, mut granted) = (false, false, false);
        for entry in &self.entries {
            let same: bool = entry.digest.ct_eq(&presented).into();
            let unexpired = entry.expires.is_none_or(|t| now < t);
            let covers = if entry.recursive {
                path.is_within(&entry.path)
            } else {
                *path == entry.path
            };
            known |= same;
            live |= same && unexpired;
            granted |= same && unexpired && covers && entry.access == access;
        }
        match (granted, live, known) {
            (true, _, _) => Ok(()),
            (false, true, _) => Err(Denied::Forbidden(access)),
            (false, false, true) => Err(Denied::Expired),
            (false, false, false) => Err(Denied::Unknown),
        }
    }
}

fn decode_sha256(hex: &str) -> Result<[u8; 32], String> {
    let bytes = data_encoding::HEXLOWER_PERMISSIVE
        .decode(hex.trim().as_bytes())
        .map_err(|_| "token_sha256 is not hexadecimal".to_string())?;
    bytes
        .try_into()
        .map_err(|_| "token_sha256 must be 64 hex digits (32 bytes)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const TOML: &str = r#"
[[tokens]]
token = "w-exact"
mode = "write"
path = "/team/stream"

[[tokens]]
token_sha256 = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"
mode = "read"
path = "/team/"
recursive = true

[[tokens]]
token = "old"
mode = "read"
path = "/team/stream"
expires = 1000
"#;

    fn p(s: &str) -> StreamPath {
        StreamPath::parse(s).unwrap()
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn modes_paths_and_expiry() {
        let store = TokenStore::parse(TOML, false).unwrap();
        assert_eq!(store.len(), 3);
        let now = at(2000);
        let s = p("/team/stream");
        assert_eq!(
            store.authorize(Some("w-exact"), &s, Access::Write, now),
            Ok(())
        );
        assert_eq!(
            store.authorize(Some("w-exact"), &s, Access::Read, now),
            Err(Denied::Forbidden(Access::Read)),
            "a write token cannot read"
        );
        assert_eq!(
            store.authorize(Some("w-exact"), &p("/team/stream/sub"), Access::Write, now),
            Err(Denied::Forbidden(Access::Write)),
            "non-recursive means exactly this path"
        );
        // "test" hashes to the upper-case digest above: recursive read on /team.
        assert_eq!(
            store.authorize(Some("test"), &p("/team/a/b"), Access::Read, now),
            Ok(())
        );
        assert_eq!(
            store.authorize(Some("test"), &p("/team"), Access::Read, now),
            Ok(())
        );
        assert_eq!(
            store.authorize(Some("test"), &p("/teamx"), Access::Read, now),
            Err(Denied::Forbidden(Access::Read)),
            "recursive is a segment prefix"
        );
        assert_eq!(
            store.authorize(Some("old"), &s, Access::Read, at(999)),
            Ok(())
        );
        assert_eq!(
            store.authorize(Some("old"), &s, Access::Read, now),
            Err(Denied::Expired)
        );
        assert_eq!(
            store.authorize(Some("nope"), &s, Access::Read, now),
            Err(Denied::Unknown)
        );
        assert_eq!(
            store.authorize(None, &s, Access::Read, now),
            Err(Denied::Missing)
        );
        assert_eq!(Denied::Expired.status(), 401);
        assert_eq!(Denied::Forbidden(Access::Read).status(), 403);
    }

    #[test]
    fn yaml_form() {
        let yaml =
            "tokens:\n  - token: abc\n    mode: read\n    path: /x\n    expires: 99999999999\n";
        let store = TokenStore::parse(yaml, true).unwrap();
        assert_eq!(
            store.authorize(Some("abc"), &p("/x"), Access::Read, at(5)),
            Ok(())
        );
    }

    #[test]
    fn bad_entries_are_named_without_the_token() {
        let err = TokenStore::parse(
            "[[tokens]]\ntoken = \"s3cret\"\nmode = \"both\"\npath = \"/a\"\n",
            false,
        )
        .err()
        .unwrap();
        assert!(!err.contains("s3cret"), "{err}");
        let err = TokenStore::parse(
            "[[tokens]]\ntoken = \"s3cret\"\nmode = \"read\"\npath = \"/a/../b\"\n",
            false,
        )
        .err()
        .unwrap();
        assert!(
            err.contains("entry 1") && err.contains("'..'") && !err.contains("s3cret"),
            "{err}"
        );
        let err = TokenStore::parse(
            "[[tokens]]\ntoken_sha256 = \"abcd\"\nmode = \"read\"\npath = \"/a\"\n",
            false,
        )
        .err()
        .unwrap();
        assert!(err.contains("64 hex digits"), "{err}");
        let err = TokenStore::parse("[[tokens]]\nmode = \"read\"\npath = \"/a\"\n", false)
            .err()
            .unwrap();
        assert!(err.contains("needs token"), "{err}");
    }

    #[test]
    fn debug_redacts() {
        let store = TokenStore::parse(TOML, false).unwrap();
        let dbg = format!("{store:?}");
        assert!(dbg.contains("[REDACTED]") && !dbg.contains("w-exact"));
    }
}

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
//! max_streams = 20          # streams this token may hold at once (default: the relay's quota)
//!
//! [[tokens]]
//! token = "plain-secret"    # the token itself instead of its SHA-256
//! mode = "read"
//! path = "/team"
//! recursive = true
//! ```
//!
//! The relay keeps only SHA-256 digests and compares them in constant time.
//! An error in the file names the line and field, never a value from it.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use super::error::Error;
use super::path::StreamPath;
use super::rendezvous::Role;

/// What a token allows: reading or writing, never both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Consumer side: Data-API `GET`, Connect `mode=await-writer`.
    Read,
    /// Producer side: Data-API `PUT`/`POST`, Connect `mode=await-reader`.
    Write,
}

impl Access {
    /// The access a request of `role` needs.
    pub(crate) fn of(role: Role) -> Access {
        match role {
            Role::Producer => Access::Write,
            Role::Consumer => Access::Read,
        }
    }
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
    max_streams: Option<usize>,
}

/// The fields of an entry, the only words from the file an error may quote.
const FIELDS: [&str; 7] = [
    "token",
    "token_sha256",
    "mode",
    "path",
    "recursive",
    "expires",
    "max_streams",
];

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
    /// The token's stream quota as this entry sets it.
    max_streams: Option<usize>,
}

/// What an accepted token is: who holds the streams it opens, and how many
/// it may hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grant {
    /// The token's SHA-256 digest: streams are counted per token.
    pub(crate) digest: [u8; 32],
    /// The largest `max_streams` of the token's entries, if any sets one.
    pub(crate) max_streams: Option<usize>,
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
    /// names the line or entry, the field and the problem, never a value
    /// from the file (a token may sit in the wrong place).
    pub fn parse(text: &str, yaml: bool) -> Result<Self, String> {
        let raw: RawFile = if yaml {
            serde_yaml_ng::from_str(text).map_err(|e| yaml_error(&e))?
        } else {
            toml::from_str(text).map_err(|e| toml_error(text, &e))?
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
        if raw.max_streams == Some(0) {
            return Err("max_streams must be at least 1".into());
        }
        Ok(Entry {
            digest,
            access: raw.mode,
            path,
            recursive: raw.recursive,
            expires: raw.expires,
            max_streams: raw.max_streams,
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
        self.grant(token, path, access, now).map(drop)
    }

    /// Like [`TokenStore::authorize`], and tells who the accepted token is
    /// (for the per-token stream quota).
    pub(crate) fn grant(
        &self,
        token: Option<&str>,
        path: &StreamPath,
        access: Access,
        now: SystemTime,
    ) -> Result<Grant, Denied> {
        let token = token.ok_or(Denied::Missing)?;
        let presented = digest(token);
        let now = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let (mut known, mut live, mut granted) = (false, false, false);
        let mut max_streams = None;
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
            if same {
                max_streams = max_streams.max(entry.max_streams);
            }
        }
        match (granted, live, known) {
            (true, _, _) => Ok(Grant {
                digest: presented,
                max_streams,
            }),
            (false, true, _) => Err(Denied::Forbidden(access)),
            (false, false, true) => Err(Denied::Expired),
            (false, false, false) => Err(Denied::Unknown),
        }
    }
}

/// A TOML error as `line N, field F: problem`, without the file's values.
fn toml_error(text: &str, error: &toml::de::Error) -> String {
    let problem = redact(error.message());
    let Some(span) = error.span() else {
        return problem;
    };
    let start = span.start.min(text.len());
    let line_no = text[..start].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("");
    let field = line
        .split_once('=')
        .map(|(key, _)| key.trim())
        .filter(|key| FIELDS.contains(key));
    match field {
        Some(field) => format!("line {line_no}, field `{field}`: {problem}"),
        None => format!("line {line_no}: {problem}"),
    }
}

/// A YAML error (its text already names the entry, field and line), without
/// the file's values.
fn yaml_error(error: &serde_yaml_ng::Error) -> String {
    redact(&error.to_string())
}

/// Removes every quoted value from a parser message: serde and the parsers
/// quote what they found in `backticks` or "double quotes", and that may be a
/// token in the wrong place. Quoted words that are field names or access
/// modes stay (`expected one of `read`, `write``).
fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(open) = rest.find(['`', '"']) {
        let quote = &rest[open..open + 1];
        let Some(len) = rest[open + 1..].find(quote) else {
            break;
        };
        let quoted = &rest[open + 1..open + 1 + len];
        let keep = FIELDS.contains(&quoted) || matches!(quoted, "read" | "write" | "tokens");
        if keep {
            out.push_str(&rest[..open + len + 2]);
        } else {
            out.push_str(rest[..open].trim_end_matches(' '));
        }
        rest = &rest[open + len + 2..];
    }
    out.push_str(rest);
    out
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
    fn parser_errors_name_line_and_field_but_no_value() {
        let err = TokenStore::parse(
            "[[tokens]]\ntoken = 987654321987\nmode = \"read\"\npath = \"/a\"\n",
            false,
        )
        .err()
        .unwrap();
        assert!(!err.contains("987654321987"), "{err}");
        assert!(
            err.contains("line 2") && err.contains("`token`") && err.contains("invalid type"),
            "{err}"
        );
        let err = TokenStore::parse(
            "[[tokens]]\ntoken = \"a\"\nmode = \"s3cret-in-mode\"\npath = \"/a\"\n",
            false,
        )
        .err()
        .unwrap();
        assert!(!err.contains("s3cret"), "{err}");
        assert!(err.contains("`read`") && err.contains("line 3"), "{err}");
        let err = TokenStore::parse(
            "tokens:\n  - token: 987654321987\n    mode: read\n    path: /a\n    s3cret-key: 1\n",
            true,
        )
        .err()
        .unwrap();
        assert!(
            !err.contains("987654321987") && !err.contains("s3cret"),
            "{err}"
        );
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn redact_keeps_field_names_and_modes_only() {
        assert_eq!(
            redact("unknown variant `both`, expected `read` or `write`"),
            "unknown variant, expected `read` or `write`"
        );
        assert_eq!(
            redact("invalid type: string \"x y\", expected u64"),
            "invalid type: string, expected u64"
        );
        assert_eq!(redact("missing field `mode`"), "missing field `mode`");
        assert_eq!(redact("odd ` quote"), "odd ` quote");
    }

    #[test]
    fn a_token_quota_is_the_largest_of_its_entries() {
        let store = TokenStore::parse(
            "[[tokens]]\ntoken = \"t\"\nmode = \"read\"\npath = \"/a\"\nmax_streams = 3\n\
             [[tokens]]\ntoken = \"t\"\nmode = \"write\"\npath = \"/a\"\nmax_streams = 5\n\
             [[tokens]]\ntoken = \"u\"\nmode = \"read\"\npath = \"/a\"\n",
            false,
        )
        .unwrap();
        let grant = |t| store.grant(Some(t), &p("/a"), Access::Read, at(1)).unwrap();
        assert_eq!(grant("t").max_streams, Some(5));
        assert_eq!(grant("t").digest, digest("t"));
        assert_eq!(grant("u").max_streams, None);
        let err = TokenStore::parse(
            "[[tokens]]\ntoken = \"t\"\nmode = \"read\"\npath = \"/a\"\nmax_streams = 0\n",
            false,
        )
        .err()
        .unwrap();
        assert!(
            err.contains("entry 1") && err.contains("at least 1"),
            "{err}"
        );
    }

    #[test]
    fn debug_redacts() {
        let store = TokenStore::parse(TOML, false).unwrap();
        let dbg = format!("{store:?}");
        assert!(dbg.contains("[REDACTED]") && !dbg.contains("w-exact"));
    }
}

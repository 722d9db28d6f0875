//! Which key a command uses, and the rule that keeps plaintext from leaking.
//!
//! The rule (also in docs/cli.md):
//! 1. Key flags on the command line (`-p`, `--passphrase-file`,
//!    `--passphrase-env`, `-r`, `-R`, `-i`) replace every key from the
//!    config and environment.
//! 2. `--plain` is the explicit opt-out. It cannot be combined with a key
//!    flag (usage error); it overrides keys from the config/environment.
//! 3. Without key flags, the config/environment keys apply
//!    (`ZEBRASTREAM_PASSPHRASE`, `passphrase`, `passphrase_file`,
//!    `recipient`, `recipients_file`, `identity`, `plain: true`). Two
//!    different kinds at once (say a passphrase and a recipient, or
//!    `plain: true` and a passphrase) are a usage error, never a guess.
//! 4. Nothing at all: every command prompts for a passphrase when it can
//!    talk to a terminal (stderr is a TTY), `read` too, before it connects.
//!    Otherwise `write`/`encrypt`/`decrypt` refuse (exit 2): `write` never
//!    sends plaintext by default. `read` without a terminal connects and
//!    refuses (exit 8) whatever arrives: an unencrypted stream ("use --plain
//!    to accept it"; a relay could inject it) as well as an encrypted one
//!    (no key). Plaintext is accepted only with `--plain` or `plain: true`.
//! 5. A passphrase cannot be mixed with recipients (age allows scrypt only
//!    alone), nor with identities on read. Empty passphrases are refused.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

use zebrastream::cipher::{self, Format};
use zebrastream::client::{Opening, Sealing};
use zebrastream::forward_secrecy::ExchangeKey;
use zebrastream::ticket::Ticket;

use super::config::{Config, Origin};
use super::errors::cipher_failure;
use super::passphrase;
use super::plugin_ui::PluginUi;
use super::{ExitKind, Failure};

/// The command that needs a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `zebrastream write`: encrypts, sends.
    Write,
    /// `zebrastream read`: receives, decrypts.
    Read,
    /// `zebrastream encrypt`.
    Encrypt,
    /// `zebrastream decrypt`.
    Decrypt,
}

impl Role {
    /// True for the roles that seal (and so take recipients, not identities).
    fn seals(self) -> bool {
        matches!(self, Role::Write | Role::Encrypt)
    }

    /// The key flags of this command, for messages.
    fn key_flags(self) -> &'static str {
        match self {
            Role::Write => "-p/--passphrase-file/-r/-R",
            Role::Read => "-p/--passphrase-file/-i",
            Role::Encrypt => "-r/-R/--passphrase-file/--passphrase-env",
            Role::Decrypt => "-i/--passphrase-file/--passphrase-env",
        }
    }
}

/// The key-related flags of one command line.
#[derive(Default)]
pub struct KeyFlags {
    /// `-p/--passphrase` (in argv: warned about).
    pub passphrase: Option<SecretString>,
    /// `--passphrase-env VAR`.
    pub passphrase_env: Option<String>,
    /// `--passphrase-file FILE`.
    pub passphrase_file: Option<PathBuf>,
    /// `-r/--recipient` (sealing roles).
    pub recipients: Vec<String>,
    /// `-R/--recipients-file` (sealing roles).
    pub recipients_files: Vec<PathBuf>,
    /// `-i/--identity` (opening roles).
    pub identities: Vec<PathBuf>,
    /// `--plain`.
    pub plain: bool,
}

// Hand-written: the passphrase must never reach a log line.
impl std::fmt::Debug for KeyFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyFlags")
            .field(
                "passphrase",
                &self.passphrase.as_ref().map(|_| "[REDACTED]"),
            )
            .field("passphrase_env", &self.passphrase_env)
            .field("passphrase_file", &self.passphrase_file)
            .field("recipients", &self.recipients)
            .field("recipients_files", &self.recipients_files)
            .field("identities", &self.identities)
            .field("plain", &self.plain)
            .finish()
    }
}

/// Where the passphrase comes from.
pub enum PassphraseSource {
    /// Already known: from `-p`, `--passphrase-env`, `ZEBRASTREAM_PASSPHRASE`
    /// or the config. `origin` names the source for messages.
    Given {
        /// The passphrase (never empty).
        secret: SecretString,
        /// Where it came from.
        origin: String,
    },
    /// The first line of a file.
    File(PathBuf),
    /// Ask on the terminal; `confirm` asks twice (when sealing).
    Prompt {
        /// Ask a second time and compare.
        confirm: bool,
    },
}

impl std::fmt::Debug for PassphraseSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PassphraseSource::Given { origin, .. } => write!(f, "Given([REDACTED] from {origin})"),
            PassphraseSource::File(p) => write!(f, "File({})", p.display()),
            PassphraseSource::Prompt { confirm } => write!(f, "Prompt {{ confirm: {confirm} }}"),
        }
    }
}

/// The key a command will use.
#[derive(Debug)]
pub enum KeyPlan {
    /// No encryption (only `write`/`read`, by `--plain` or `plain: true`).
    Plain,
    /// A passphrase (scrypt).
    Passphrase(PassphraseSource),
    /// X25519/SSH recipients (sealing): strings and recipients files.
    Recipients {
        /// `age1…` or SSH public keys.
        keys: Vec<String>,
        /// Files with one recipient per line.
        files: Vec<PathBuf>,
    },
    /// Identity files (opening).
    Identities(Vec<PathBuf>),
    /// `read` without any key and without a terminal to ask on: the stream
    /// is refused (exit 8) with a message that says whether it is encrypted.
    Detect,
}

/// Key settings found in the config/environment.
struct ConfigKeys {
    passphrase: Option<(SecretString, Origin)>,
    passphrase_file: Option<(String, Origin)>,
    recipients: Option<(Vec<String>, Origin)>,
    recipients_files: Option<(Vec<String>, Origin)>,
    identities: Option<(Vec<String>, Origin)>,
    plain: Option<Origin>,
}

impl ConfigKeys {
    fn read(config: &Config, role: Role) -> Result<ConfigKeys, Failure> {
        let usage = |e: super::config::ConfigError| Failure::usage(e.to_string());
        let sealing = role.seals();
        Ok(ConfigKeys {
            passphrase: config
                .secret("passphrase")
                .map_err(usage)?
                .map(|s| (s.value, s.origin)),
            passphrase_file: config
                .string("passphrase_file")
                .map_err(usage)?
                .map(|s| (s.value, s.origin)),
            recipients: if sealing {
                config
                    .strings("recipient")
                    .map_err(usage)?
                    .map(|s| (s.value, s.origin))
            } else {
                None
            },
            recipients_files: if sealing {
                config
                    .strings("recipients_file")
                    .map_err(usage)?
                    .map(|s| (s.value, s.origin))
            } else {
                None
            },
            identities: if sealing {
                None
            } else {
                config
                    .strings("identity")
                    .map_err(usage)?
                    .map(|s| (s.value, s.origin))
            },
            plain: match role {
                Role::Write | Role::Read => config
                    .flag("plain")
                    .map_err(usage)?
                    .filter(|s| s.value)
                    .map(|s| s.origin),
                Role::Encrypt | Role::Decrypt => None,
            },
        })
    }

    /// Each kind of key present, named with its origin, for conflict messages.
    fn present(&self) -> Vec<String> {
        let mut kinds = Vec::new();
        if let Some((_, o)) = &self.passphrase {
            kinds.push(format!("'passphrase' from {o}"));
        }
        if let Some((_, o)) = &self.passphrase_file {
            kinds.push(format!("'passphrase_file' from {o}"));
        }
        let recipient_origin = self.recipients.as_ref().map(|(_, o)| o);
        if let Some(o) = recipient_origin.or(self.recipients_files.as_ref().map(|(_, o)| o)) {
            kinds.push(format!("recipients from {o}"));
        }
        if let Some((_, o)) = &self.identities {
            kinds.push(format!("'identity' from {o}"));
        }
        if let Some(o) = &self.plain {
            kinds.push(format!("'plain: true' from {o}"));
        }
        kinds
    }
}

/// Decides which key `role` uses. `subject` names the stream or file for
/// messages; `can_prompt` says whether a terminal is there to ask.
pub fn plan(
    role: Role,
    flags: KeyFlags,
    config: &Config,
    can_prompt: bool,
    subject: &str,
) -> Result<KeyPlan, Failure> {
    let explicit_kinds = explicit_kinds(role, &flags);
    if flags.plain {
        if !explicit_kinds.is_empty() {
            return Err(Failure::usage(format!(
                "{subject}: --plain contradicts {}; choose encryption or --plain, not both",
                explicit_kinds.join(" and ")
            )));
        }
        let ignored = ConfigKeys::read(config, role)?.present();
        if !ignored.is_empty() {
            tracing::info!("--plain: not using {}", ignored.join(", "));
        }
        return Ok(KeyPlan::Plain);
    }
    if !explicit_kinds.is_empty() {
        return plan_from_flags(role, flags, config, explicit_kinds, subject);
    }
    let keys = ConfigKeys::read(config, role)?;
    let present = keys.present();
    if present.len() > 1 {
        return Err(Failure::usage(format!(
            "{subject}: the config sets {}; keep only one key setting, or choose with {}",
            present.join(" and "),
            role.key_flags()
        )));
    }
    if keys.plain.is_some() {
        return Ok(KeyPlan::Plain);
    }
    if let Some((secret, origin)) = keys.passphrase {
        return given(secret, origin.to_string(), subject);
    }
    if let Some((file, origin)) = keys.passphrase_file {
        tracing::debug!("passphrase file from {origin}");
        return Ok(KeyPlan::Passphrase(PassphraseSource::File(PathBuf::from(
            file,
        ))));
    }
    if keys.recipients.is_some() || keys.recipients_files.is_some() {
        return Ok(KeyPlan::Recipients {
            keys: keys.recipients.map(|(v, _)| v).unwrap_or_default(),
            files: keys
                .recipients_files
                .map(|(v, _)| v.into_iter().map(PathBuf::from).collect())
                .unwrap_or_default(),
        });
    }
    if let Some((files, _)) = keys.identities {
        return Ok(KeyPlan::Identities(
            files.into_iter().map(PathBuf::from).collect(),
        ));
    }
    no_key(role, can_prompt, subject)
}

/// The key decision when a ticket addresses and keys the stream: the ticket
/// is the key. A passphrase or `--plain` contradicts the ticket. With
/// forward secrecy (the default) only the reader's one-time key opens the
/// stream, so `-r`/`-R`/`-i` need `--no-forward-secrecy`; then `-r`/`-R`
/// add recipients on `write`, and on `read` the ticket's stanza must still
/// open the stream (`-i` cannot stand in for the ticket).
pub fn plan_with_ticket(
    role: Role,
    flags: KeyFlags,
    forward_secrecy: bool,
    subject: &str,
) -> Result<KeyPlan, Failure> {
    if flags.plain {
        return Err(Failure::usage(format!(
            "{subject}: --plain contradicts the ticket, which always encrypts"
        )));
    }
    let kinds = explicit_kinds(role, &flags);
    if kinds.iter().any(|k| k.contains("passphrase")) {
        return Err(Failure::usage(format!(
            "{subject}: a ticket cannot be combined with a passphrase (the ticket is the key); add -r/-i keys with --no-forward-secrecy instead"
        )));
    }
    if forward_secrecy && !kinds.is_empty() {
        return Err(Failure::usage(format!(
            "{subject}: {} beside a ticket require --no-forward-secrecy: with forward secrecy (the default for tickets) only the reader's one-time key opens the stream",
            kinds.join(" and ")
        )));
    }
    Ok(if role.seals() {
        KeyPlan::Recipients {
            keys: flags.recipients,
            files: flags.recipients_files,
        }
    } else {
        KeyPlan::Identities(flags.identities)
    })
}

/// The key decision for `--forward-secrecy` without a ticket: the exchange
/// is keyed from a passphrase, so `plan` must have found one (a `read`
/// without any key asks for it on a terminal).
pub fn plan_with_passphrase_exchange(plan: KeyPlan, subject: &str) -> Result<KeyPlan, Failure> {
    match plan {
        // A `read` without any key on a terminal already plans a prompt.
        KeyPlan::Passphrase(source) => Ok(KeyPlan::Passphrase(source)),
        _ => Err(Failure::usage(format!(
            "{subject}: --forward-secrecy needs a ticket or a passphrase (-p/--passphrase-file/ZEBRASTREAM_PASSPHRASE), the same on both sides; it keys the exchange of a fresh one-time key"
        ))),
    }
}

/// The kinds of key given by flags, for messages (`-p`, `-r/-R`, …).
fn explicit_kinds(role: Role, flags: &KeyFlags) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    if flags.passphrase.is_some() {
        kinds.push("-p/--passphrase");
    }
    if flags.passphrase_env.is_some() {
        kinds.push("--passphrase-env");
    }
    if flags.passphrase_file.is_some() {
        kinds.push("--passphrase-file");
    }
    if role.seals() && (!flags.recipients.is_empty() || !flags.recipients_files.is_empty()) {
        kinds.push("-r/-R recipients");
    }
    if !role.seals() && !flags.identities.is_empty() {
        kinds.push("-i identities");
    }
    kinds
}

fn plan_from_flags(
    role: Role,
    flags: KeyFlags,
    config: &Config,
    kinds: Vec<&'static str>,
    subject: &str,
) -> Result<KeyPlan, Failure> {
    if kinds.len() > 1 {
        let why = if role.seals() {
            "a passphrase cannot be combined with recipients (age allows a passphrase only alone), and only one passphrase source may be given"
        } else {
            "give either a passphrase or identities, from one source"
        };
        return Err(Failure::usage(format!(
            "{subject}: {} given together; {why}",
            kinds.join(" and ")
        )));
    }
    let overridden = ConfigKeys::read(config, role)?.present();
    if !overridden.is_empty() {
        tracing::debug!("key flags override {}", overridden.join(", "));
    }
    if let Some(secret) = flags.passphrase {
        return given(secret, String::from("--passphrase"), subject);
    }
    if let Some(var) = flags.passphrase_env {
        let secret = match std::env::var(&var) {
            Ok(value) => SecretString::from(value),
            Err(std::env::VarError::NotPresent) => {
                return Err(Failure::usage(format!(
                    "{subject}: --passphrase-env {var}: the variable is not set"
                )))
            }
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(Failure::usage(format!(
                    "{subject}: --passphrase-env {var}: the value is not valid UTF-8"
                )))
            }
        };
        return given(secret, format!("environment variable {var}"), subject);
    }
    if let Some(file) = flags.passphrase_file {
        return Ok(KeyPlan::Passphrase(PassphraseSource::File(file)));
    }
    if role.seals() {
        Ok(KeyPlan::Recipients {
            keys: flags.recipients,
            files: flags.recipients_files,
        })
    } else {
        Ok(KeyPlan::Identities(flags.identities))
    }
}

/// A known passphrase, refused when empty (an empty passphrase is no key).
fn given(secret: SecretString, origin: String, subject: &str) -> Result<KeyPlan, Failure> {
    if secret.expose_secret().is_empty() {
        return Err(Failure::usage(format!(
            "{subject}: the passphrase from {origin} is empty; give a real passphrase or --plain"
        )));
    }
    Ok(KeyPlan::Passphrase(PassphraseSource::Given {
        secret,
        origin,
    }))
}

/// What happens when nothing supplies a key.
fn no_key(role: Role, can_prompt: bool, subject: &str) -> Result<KeyPlan, Failure> {
    match role {
        _ if can_prompt => Ok(KeyPlan::Passphrase(PassphraseSource::Prompt {
            confirm: role.seals(),
        })),
        Role::Write => Err(Failure::new(
            ExitKind::Usage,
            format!(
                "{subject}: refusing to send plaintext: no key given. Use {}, set ZEBRASTREAM_PASSPHRASE, or pass --plain to send unencrypted",
                role.key_flags()
            ),
        )),
        Role::Read => Ok(KeyPlan::Detect),
        Role::Encrypt | Role::Decrypt => Err(Failure::usage(format!(
            "{subject}: no key given and no terminal to prompt on. Use {} or set ZEBRASTREAM_PASSPHRASE",
            role.key_flags()
        ))),
    }
}

/// How a plan's key reaches the library: the transfer it keys (for the
/// ticket and the forward-secrecy exchange) and how names read in messages.
pub struct Resolution<'a> {
    /// The ticket that addresses and keys the stream, if any.
    pub ticket: Option<&'a Ticket>,
    /// Run the forward-secrecy exchange (keyed by the ticket or the passphrase).
    pub fresh: bool,
    /// The stream path (salts a passphrase's exchange key) or file, for messages.
    pub subject: &'a str,
}

impl Resolution<'_> {
    /// Keys outside a transfer (`encrypt`/`decrypt`): no ticket, no exchange.
    pub fn offline(subject: &str) -> Resolution<'_> {
        Resolution {
            ticket: None,
            fresh: false,
            subject,
        }
    }
}

impl KeyPlan {
    /// The writer's key in the library's terms, in `format`. Prompts and key
    /// files are read here, before anything connects, so a typo fails fast.
    pub fn sealing(self, format: Format, on: &Resolution<'_>) -> Result<Sealing, Failure> {
        let subject = on.subject;
        if let Some(ticket) = on.ticket {
            return Ok(match (on.fresh, self) {
                (true, _) => ticket.sealing(format),
                (false, KeyPlan::Recipients { keys, files }) => {
                    ticket.static_sealing(read_recipients(&keys, &files, subject)?, format)
                }
                (false, _) => ticket.static_sealing(Vec::new(), format),
            });
        }
        Ok(match self {
            KeyPlan::Plain => Sealing::Plain,
            KeyPlan::Passphrase(source) => {
                let passphrase = passphrase::obtain(source, subject)?;
                match on.fresh {
                    true => {
                        Sealing::fresh(ExchangeKey::from_passphrase(&passphrase, subject), format)
                    }
                    false => Sealing::Passphrase { passphrase, format },
                }
            }
            KeyPlan::Recipients { keys, files } => {
                Sealing::recipients(read_recipients(&keys, &files, subject)?, format)
            }
            KeyPlan::Identities(_) | KeyPlan::Detect => {
                return Err(Failure::usage(format!(
                "{subject}: identities decrypt; to encrypt give recipients (-r/-R) or a passphrase"
            )))
            }
        })
    }

    /// The reader's key in the library's terms; a passphrase accepts scrypt
    /// work factors up to 2^`max_work_factor`.
    pub fn opening(self, max_work_factor: u8, on: &Resolution<'_>) -> Result<Opening, Failure> {
        let subject = on.subject;
        if let Some(ticket) = on.ticket {
            if matches!(&self, KeyPlan::Identities(extra) if !extra.is_empty()) {
                tracing::warn!(
                    "{subject}: -i is not used with a ticket: the ticket's stanza must open the stream"
                );
            }
            return Ok(match on.fresh {
                true => ticket.opening(),
                false => ticket.static_opening(),
            });
        }
        Ok(match self {
            KeyPlan::Plain => Opening::Plain,
            KeyPlan::Detect => Opening::Detect,
            KeyPlan::Passphrase(source) => {
                let passphrase = passphrase::obtain(source, subject)?;
                match on.fresh {
                    true => Opening::fresh(ExchangeKey::from_passphrase(&passphrase, subject)),
                    false => Opening::Passphrase {
                        passphrase,
                        max_work_factor,
                    },
                }
            }
            KeyPlan::Identities(files) => {
                let mut identities = Vec::new();
                for file in &files {
                    identities.extend(
                        cipher::keys::read_identity_file_with(file, PluginUi)
                            .map_err(|e| cipher_failure(subject, &e))?,
                    );
                }
                Opening::identities(identities)
            }
            KeyPlan::Recipients { .. } => {
                return Err(Failure::usage(format!(
                    "{subject}: recipients encrypt; to decrypt give identities (-i) or a passphrase"
                )))
            }
        })
    }
}

/// Parses `-r` keys and reads `-R` files.
fn read_recipients(
    keys: &[String],
    files: &[PathBuf],
    subject: &str,
) -> Result<Vec<cipher::keys::BoxedRecipient>, Failure> {
    let mut recipients = Vec::new();
    for key in keys {
        recipients.push(
            cipher::keys::parse_recipient_with(key, PluginUi)
                .map_err(|e| cipher_failure(subject, &e))?,
        );
    }
    for file in files {
        recipients.extend(
            cipher::keys::read_recipients_file_with(file, PluginUi)
                .map_err(|e| cipher_failure(subject, &e))?,
        );
    }
    Ok(recipients)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> Config {
        Config::from_yaml_layers(&[("test.yaml", yaml)])
    }

    fn secret(s: &str) -> Option<SecretString> {
        Some(SecretString::from(s.to_owned()))
    }

    #[test]
    fn write_without_any_key_refuses_or_prompts() {
        let err = plan(Role::Write, KeyFlags::default(), &cfg(""), false, "/s").unwrap_err();
        assert_eq!(err.kind, ExitKind::Usage);
        assert!(
            err.message.contains("refusing to send plaintext"),
            "{}",
            err.message
        );
        assert!(err.message.contains("/s"));
        let p = plan(Role::Write, KeyFlags::default(), &cfg(""), true, "/s").unwrap();
        assert!(matches!(
            p,
            KeyPlan::Passphrase(PassphraseSource::Prompt { confirm: true })
        ));
    }

    #[test]
    fn read_without_any_key_prompts_first_or_refuses_what_arrives() {
        let p = plan(Role::Read, KeyFlags::default(), &cfg(""), false, "/s").unwrap();
        assert!(matches!(p, KeyPlan::Detect));
        // On a terminal the passphrase is asked before connecting, once.
        let p = plan(Role::Read, KeyFlags::default(), &cfg(""), true, "/s").unwrap();
        assert!(matches!(
            p,
            KeyPlan::Passphrase(PassphraseSource::Prompt { confirm: false })
        ));
        // Plaintext only when chosen.
        let flags = KeyFlags {
            plain: true,
            ..KeyFlags::default()
        };
        assert!(matches!(
            plan(Role::Read, flags, &cfg(""), true, "/s").unwrap(),
            KeyPlan::Plain
        ));
        assert!(matches!(
            plan(
                Role::Read,
                KeyFlags::default(),
                &cfg("plain: true\n"),
                true,
                "/s"
            )
            .unwrap(),
            KeyPlan::Plain
        ));
    }

    #[test]
    fn config_key_encrypts_unless_plain_flag() {
        let c = cfg("passphrase: hunter2\n");
        let p = plan(Role::Write, KeyFlags::default(), &c, false, "/s").unwrap();
        match p {
            KeyPlan::Passphrase(PassphraseSource::Given { secret, origin }) => {
                assert_eq!(secret.expose_secret(), "hunter2");
                assert!(origin.contains("test.yaml"));
            }
            other => panic!("{other:?}"),
        }
        let flags = KeyFlags {
            plain: true,
            ..KeyFlags::default()
        };
        assert!(matches!(
            plan(Role::Write, flags, &c, false, "/s").unwrap(),
            KeyPlan::Plain
        ));
    }

    #[test]
    fn plain_with_key_flag_is_a_contradiction() {
        let flags = KeyFlags {
            plain: true,
            recipients: vec![String::from("age1x")],
            ..KeyFlags::default()
        };
        let err = plan(Role::Write, flags, &cfg(""), false, "/s").unwrap_err();
        assert_eq!(err.kind, ExitKind::Usage);
        assert!(err.message.contains("--plain contradicts"));
    }

    #[test]
    fn flags_replace_config_keys() {
        let c = cfg("passphrase: from-config\n");
        let flags = KeyFlags {
            recipients: vec![String::from("age1abc")],
            ..KeyFlags::default()
        };
        match plan(Role::Write, flags, &c, false, "/s").unwrap() {
            KeyPlan::Recipients { keys, files } => {
                assert_eq!(keys, ["age1abc"]);
                assert!(files.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mixing_passphrase_and_recipients_is_refused() {
        let flags = KeyFlags {
            passphrase: secret("pw"),
            recipients: vec![String::from("age1abc")],
            ..KeyFlags::default()
        };
        let err = plan(Role::Write, flags, &cfg(""), false, "/s").unwrap_err();
        assert!(
            err.message.contains("cannot be combined"),
            "{}",
            err.message
        );
        let c = cfg("passphrase: pw\nrecipient: age1abc\n");
        let err = plan(Role::Write, KeyFlags::default(), &c, false, "/s").unwrap_err();
        assert!(err.message.contains("keep only one"), "{}", err.message);
        // The same config is fine for read: recipients only matter when sealing.
        assert!(matches!(
            plan(Role::Read, KeyFlags::default(), &c, false, "/s").unwrap(),
            KeyPlan::Passphrase(_)
        ));
    }

    #[test]
    fn config_plain_with_config_key_is_refused() {
        let c = cfg("plain: true\npassphrase: pw\n");
        let err = plan(Role::Write, KeyFlags::default(), &c, false, "/s").unwrap_err();
        assert!(err.message.contains("'plain: true'"), "{}", err.message);
        let c = cfg("plain: yes\n");
        assert!(matches!(
            plan(Role::Write, KeyFlags::default(), &c, false, "/s").unwrap(),
            KeyPlan::Plain
        ));
        // `plain: false` is the same as no setting.
        let c = cfg("plain: false\n");
        assert!(plan(Role::Write, KeyFlags::default(), &c, false, "/s").is_err());
    }

    #[test]
    fn empty_passphrase_is_refused() {
        let flags = KeyFlags {
            passphrase: secret(""),
            ..KeyFlags::default()
        };
        let err = plan(Role::Write, flags, &cfg(""), false, "/s").unwrap_err();
        assert!(err.message.contains("empty"));
        let c = cfg("passphrase: ''\n");
        assert!(plan(Role::Read, KeyFlags::default(), &c, false, "/s").is_err());
    }

    #[test]
    fn identities_from_config_on_read() {
        let c = cfg("identity: [a.key, b.key]\n");
        match plan(Role::Read, KeyFlags::default(), &c, false, "/s").unwrap() {
            KeyPlan::Identities(files) => {
                assert_eq!(files, [PathBuf::from("a.key"), PathBuf::from("b.key")])
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn decrypt_prompts_without_confirmation() {
        let p = plan(Role::Decrypt, KeyFlags::default(), &cfg(""), true, "in.age").unwrap();
        assert!(matches!(
            p,
            KeyPlan::Passphrase(PassphraseSource::Prompt { confirm: false })
        ));
        let err = plan(Role::Encrypt, KeyFlags::default(), &cfg(""), false, "in").unwrap_err();
        assert!(err.message.contains("no terminal"));
    }

    #[test]
    fn ticket_keys_need_no_forward_secrecy_and_passphrase_exchange_needs_a_passphrase() {
        let with_identity = || KeyFlags {
            identities: vec![PathBuf::from("k")],
            ..KeyFlags::default()
        };
        let err = plan_with_ticket(Role::Read, with_identity(), true, "/s").unwrap_err();
        assert_eq!(err.kind, ExitKind::Usage);
        assert!(
            err.message.contains("--no-forward-secrecy"),
            "{}",
            err.message
        );
        assert!(matches!(
            plan_with_ticket(Role::Read, with_identity(), false, "/s").unwrap(),
            KeyPlan::Identities(_)
        ));
        let given = plan(
            Role::Write,
            KeyFlags {
                passphrase: secret("pw"),
                ..KeyFlags::default()
            },
            &cfg(""),
            false,
            "/s",
        )
        .unwrap();
        assert!(matches!(
            plan_with_passphrase_exchange(given, "/s").unwrap(),
            KeyPlan::Passphrase(PassphraseSource::Given { .. })
        ));
        let prompt = KeyPlan::Passphrase(PassphraseSource::Prompt { confirm: false });
        assert!(matches!(
            plan_with_passphrase_exchange(prompt, "/s").unwrap(),
            KeyPlan::Passphrase(PassphraseSource::Prompt { confirm: false })
        ));
        for no_passphrase in [
            KeyPlan::Detect,
            KeyPlan::Plain,
            KeyPlan::Identities(Vec::new()),
        ] {
            let err = plan_with_passphrase_exchange(no_passphrase, "/s").unwrap_err();
            assert_eq!(err.kind, ExitKind::Usage);
            assert!(err.message.contains("needs a ticket or a passphrase"));
        }
    }
}

//! age plugins (C2SP age-plugin): `age1<name>1…` recipients and
//! `AGE-PLUGIN-<NAME>-1…` identities, served by the program
//! `age-plugin-<name>` on `PATH` (hardware keys: YubiKey, TPM, Secure
//! Enclave).
//!
//! The protocol is the `age` crate's (`age::plugin`); this module is the
//! glue into our header code: it finds the plugin when the key is parsed (so
//! a missing plugin fails before anything is read or sent), runs it once per
//! key file and plugin, and turns what the plugin reports into
//! [`PluginError`]s that name the plugin. A plugin only wraps and unwraps
//! the 16-byte file key into stanzas, so it works for age v1 and age-rt
//! alike. The labels a plugin declares (`postquantum`, …) join the
//! encryptor's mixing rules like any recipient's.
//!
//! A plugin may talk to the user: messages ("touch your key") and requests
//! (a PIN) go through the [`age::Callbacks`] the caller gives; the plain
//! functions in [`keys`](super) use [`age::NoCallbacks`], which drops
//! messages and refuses requests.

use std::collections::HashSet;

use age::plugin::{IdentityPluginV1, RecipientPluginV1, ResolveError};
use age_core::format::{FileKey, Stanza};

use crate::cipher::error::PluginError;

/// The program that serves the plugin `name`.
fn binary(name: &str) -> String {
    format!("age-plugin-{name}")
}

/// Finds a plugin; a missing one is [`PluginError::NotFound`].
fn resolved<T>(name: &str, found: Result<T, ResolveError>) -> Result<T, PluginError> {
    found.map_err(|e| match e {
        ResolveError::MissingPlugin { binary_name } => PluginError::NotFound {
            binary: binary_name,
        },
        // Cannot happen: the name came from a parsed key.
        other => PluginError::Failed {
            binary: binary(name),
            message: other.to_string(),
        },
    })
}

/// What `binary` reported, on one line: without age's Unicode isolation
/// marks, its "'age-plugin-x' couldn't use …:" prefix (our error names the
/// plugin) and its advice to rerun with `AGEDEBUG` (which prints key
/// material).
fn one_line(binary: &str, error: &dyn std::fmt::Display) -> String {
    let text = error.to_string().replace(['\u{2068}', '\u{2069}'], "");
    let quoted = format!("'{binary}'");
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains("AGEDEBUG") && !l.starts_with("Warning:"))
        .map(|l| match l.strip_prefix(&quoted) {
            Some(rest) => rest.split_once(": ").map_or(rest.trim(), |(_, m)| m),
            None => l,
        })
        .collect();
    lines.join("; ")
}

/// Carries our typed error through age's traits, whose errors we cannot
/// build (age does not export its plugin error type): the encryptor and the
/// decryptor take it back out with [`plugin_error`].
fn carried(error: PluginError) -> std::io::Error {
    std::io::Error::other(error)
}

/// The [`PluginError`] a [`PluginRecipient`] or [`PluginIdentity`] reported.
pub(crate) fn plugin_error(error: &std::io::Error) -> Option<PluginError> {
    error.get_ref()?.downcast_ref::<PluginError>().cloned()
}

/// A recipient served by a plugin (`age1<name>1…`); one plugin run wraps
/// the file key for all its recipients.
pub(crate) struct PluginRecipient<C: age::Callbacks> {
    inner: RecipientPluginV1<C>,
    binary: String,
}

impl<C: age::Callbacks> PluginRecipient<C> {
    /// The recipients of plugin `name`, or [`PluginError::NotFound`].
    pub(crate) fn new(
        name: &str,
        recipients: &[age::plugin::Recipient],
        ui: C,
    ) -> Result<Self, PluginError> {
        let inner = resolved(name, RecipientPluginV1::new(name, recipients, &[], ui))?;
        Ok(PluginRecipient {
            inner,
            binary: binary(name),
        })
    }
}

impl<C: age::Callbacks> age::Recipient for PluginRecipient<C> {
    fn wrap_file_key(
        &self,
        file_key: &FileKey,
    ) -> Result<(Vec<Stanza>, HashSet<String>), age::EncryptError> {
        self.inner.wrap_file_key(file_key).map_err(|e| {
            age::EncryptError::Io(carried(PluginError::Wrap {
                binary: self.binary.clone(),
                message: one_line(&self.binary, &e),
            }))
        })
    }
}

/// The identities of one plugin from one key file; one plugin run tries
/// them all on all the header's stanzas.
pub(crate) struct PluginIdentity<C: age::Callbacks> {
    inner: IdentityPluginV1<C>,
    binary: String,
}

impl<C: age::Callbacks> PluginIdentity<C> {
    /// The identities of plugin `name`, or [`PluginError::NotFound`].
    pub(crate) fn new(
        name: &str,
        identities: &[age::plugin::Identity],
        ui: C,
    ) -> Result<Self, PluginError> {
        let inner = resolved(name, IdentityPluginV1::new(name, identities, ui))?;
        Ok(PluginIdentity {
            inner,
            binary: binary(name),
        })
    }
}

impl<C: age::Callbacks> age::Identity for PluginIdentity<C> {
    fn unwrap_stanza(&self, stanza: &Stanza) -> Option<Result<FileKey, age::DecryptError>> {
        self.unwrap_stanzas(std::slice::from_ref(stanza))
    }

    /// `None` when the plugin finds no stanza for its keys.
    fn unwrap_stanzas(&self, stanzas: &[Stanza]) -> Option<Result<FileKey, age::DecryptError>> {
        let result = age::Identity::unwrap_stanzas(&self.inner, stanzas)?;
        Some(result.map_err(|e| {
            age::DecryptError::Io(carried(PluginError::Unwrap {
                binary: self.binary.clone(),
                message: one_line(&self.binary, &e),
            }))
        }))
    }
}

//! Configuration resolution compatible with the Python CLI (`zebrastream-io`
//! 0.5.4, which uses confuse): the same files, keys, env vars and order.
//!
//! Highest first: command-line flag (applied by the caller) > `ZEBRASTREAM_*`
//! environment variables > the file given with `-f/--config-file` or named
//! with `-n/--config-name` (`<config dir>/streams/NAME.yaml`) > the global
//! `<config dir>/config.yaml`. Environment values are typed like YAML 1.1
//! plain scalars (`"9"` is 9, `""`/`"null"` unset the key); see [`scalar`].
//! When `-f` or `-n` is used the merged config must carry `mode`, equal to
//! the subcommand ([`Config::check_mode`]).

mod location;
mod scalar;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

pub use location::{config_dir, named_config_path, Environment, GLOBAL_FILE};
pub use scalar::{resolve_plain_scalar, yaml11_bool, ConfigValue};

/// The environment variable prefix confuse maps onto config keys.
pub const ENV_PREFIX: &str = "ZEBRASTREAM_";
/// confuse's separator for nested keys in variable names.
const ENV_NEST_SEPARATOR: &str = "__";
/// The keys that hold secrets. Their values are read only as [`SecretString`]s
/// ([`Config::secret`]), and their `ZEBRASTREAM_*` variables never reach a
/// producer or consumer command ([`is_secret_env_var`]).
pub const SECRET_KEYS: &[&str] = &["access_token", "passphrase", "ticket"];

/// The config key a `ZEBRASTREAM_*` variable sets (`ZEBRASTREAM_Access_Token`
/// sets `access_token`; `ZEBRASTREAM_A__B` the top key `a`), as confuse maps
/// names; `None` for other variables.
fn env_key(name: &str) -> Option<String> {
    let key = name.strip_prefix(ENV_PREFIX)?.to_lowercase();
    Some(match key.split_once(ENV_NEST_SEPARATOR) {
        Some((top, _)) => top.to_owned(),
        None => key,
    })
}

/// True for an environment variable that sets one of the [`SECRET_KEYS`].
pub fn is_secret_env_var(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .and_then(env_key)
        .is_some_and(|key| SECRET_KEYS.contains(&key.as_str()))
}
/// Config files are small; anything larger is not a config file.
const MAX_CONFIG_FILE_BYTES: u64 = 1 << 20;

/// Which config file the user selected on top of the global one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSelection {
    /// Neither `-f` nor `-n`: only the global file and the environment.
    GlobalOnly,
    /// `-f/--config-file PATH` (wins over `-n`, as in the Python CLI).
    File(PathBuf),
    /// `-n/--config-name NAME`: `<config dir>/streams/NAME.yaml`.
    Name(String),
}

impl ConfigSelection {
    /// From the global flags: `-f` wins over `-n`.
    pub fn from_flags(file: Option<PathBuf>, name: Option<String>) -> Self {
        match (file, name) {
            (Some(file), _) => ConfigSelection::File(file),
            (None, Some(name)) => ConfigSelection::Name(name),
            (None, None) => ConfigSelection::GlobalOnly,
        }
    }

    /// How the user named this selection, for messages (`--config-name trial`).
    fn flag_text(&self) -> String {
        match self {
            ConfigSelection::GlobalOnly => String::from("the global config"),
            ConfigSelection::File(p) => format!("--config-file {}", p.display()),
            ConfigSelection::Name(n) => format!("--config-name {n}"),
        }
    }
}

/// Where a config value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A `ZEBRASTREAM_*` environment variable (its name).
    Env(String),
    /// A YAML file (its path, `~` for the home directory).
    File(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Env(var) => write!(f, "environment variable {var}"),
            Origin::File(path) => write!(f, "config file {path}"),
        }
    }
}

/// A resolved value and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting<T> {
    /// The value.
    pub value: T,
    /// Its source.
    pub origin: Origin,
}

/// Why the configuration could not be loaded or a key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `$HOME` is unset, so `~/.config` cannot be found.
    #[error(
        "HOME is not set, so ~/.config/zebrastream cannot be found; set HOME or ZEBRASTREAMDIR"
    )]
    NoHome,
    /// `$ZEBRASTREAMDIR` points at a file.
    #[error("{var} must be a directory, but {} is a file", path.display())]
    DirIsFile {
        /// The variable name.
        var: String,
        /// Where it points.
        path: PathBuf,
    },
    /// `-n` with a name that is not a plain file name.
    #[error("config name {0:?} is not valid: use a plain name like 'trial-42' (the file is streams/NAME.yaml)")]
    BadName(String),
    /// `-f PATH` does not exist.
    #[error("config file not found: {0}")]
    FileNotFound(String),
    /// `-n NAME` has no file.
    #[error("config '{name}' not found; expected it at {path}")]
    NamedNotFound {
        /// The name given.
        name: String,
        /// Where it was looked for.
        path: String,
    },
    /// A config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A config file is not valid YAML or not a mapping.
    #[error("config file {path} is not a YAML mapping of keys: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What the parser said.
        message: String,
    },
    /// A `ZEBRASTREAM_*` variable is not valid UTF-8.
    #[error("environment variable {0} is not valid UTF-8")]
    NotUnicode(String),
    /// A key holds a value of the wrong type.
    #[error("config key '{key}' from {origin} must be {expected}, not {found}")]
    WrongType {
        /// The key.
        key: String,
        /// Its source.
        origin: Origin,
        /// What it must be.
        expected: &'static str,
        /// What it is.
        found: &'static str,
    },
    /// A key's value has the right type but is not allowed.
    #[error("config key '{key}' from {origin}: {message}")]
    Invalid {
        /// The key.
        key: String,
        /// Its source.
        origin: Origin,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// `-f`/`-n` used, but no `mode` key.
    #[error("Config ({selection}) is missing required 'mode' field. Add 'mode: {mode}' to the config file.")]
    ModeMissing {
        /// How the config was selected.
        selection: String,
        /// The subcommand.
        mode: String,
    },
    /// `mode` does not match the subcommand.
    #[error("Subcommand '{mode}' conflicts with config mode '{config_mode}'. Use 'zebrastream {config_mode}' to match the config.")]
    ModeMismatch {
        /// The subcommand.
        mode: String,
        /// The config's `mode`.
        config_mode: String,
    },
}

/// One value in one layer; environment values keep their text.
#[derive(Clone)]
struct Entry {
    value: ConfigValue,
    /// The variable's text, for environment values (so a passphrase `0123`
    /// stays `0123` instead of becoming the octal integer 83).
    raw: Option<String>,
    origin: Origin,
}

// Values may be tokens or passphrases: never print them.
impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[REDACTED] from {}", self.origin)
    }
}

/// One source of keys (the environment, or one file).
#[derive(Debug, Clone)]
struct Layer {
    entries: BTreeMap<String, Entry>,
}

/// The merged configuration: layers, highest priority first.
#[derive(Debug, Clone, Default)]
pub struct Config {
    layers: Vec<Layer>,
}

impl Config {
    /// Loads the global file, the selected file and the environment.
    pub fn load(selection: &ConfigSelection, env: &Environment) -> Result<Config, ConfigError> {
        let mut layers = Vec::new();
        layers.push(env_layer(env)?);
        match selection {
            ConfigSelection::GlobalOnly => {}
            ConfigSelection::File(path) => {
                let path = env.expand_path(path)?;
                if !path.is_file() {
                    return Err(ConfigError::FileNotFound(env.display_path(&path)));
                }
                layers.push(file_layer(&path, env)?);
            }
            ConfigSelection::Name(name) => {
                let path = named_config_path(env, name)?;
                if !path.is_file() {
                    return Err(ConfigError::NamedNotFound {
                        name: name.clone(),
                        path: env.display_path(&path),
                    });
                }
                layers.push(file_layer(&path, env)?);
            }
        }
        let global = config_dir(env)?.join(GLOBAL_FILE);
        if global.is_file() {
            layers.push(file_layer(&global, env)?);
        }
        Ok(Config { layers })
    }

    /// Only the `ZEBRASTREAM_*` environment variables, no files (for
    /// `encrypt`/`decrypt`, which read `ZEBRASTREAM_PASSPHRASE`).
    pub fn from_environment(env: &Environment) -> Result<Config, ConfigError> {
        Ok(Config {
            layers: vec![env_layer(env)?],
        })
    }

    /// A config from YAML texts, highest first (for tests).
    #[cfg(test)]
    pub fn from_yaml_layers(layers: &[(&str, &str)]) -> Config {
        Config {
            layers: layers
                .iter()
                .map(|(name, text)| Layer {
                    entries: yaml_entries(text, name).unwrap(),
                })
                .collect(),
        }
    }

    /// When `-f`/`-n` is used, `mode` must be present and equal `mode`
    /// (`write` or `read`), as in the Python CLI.
    pub fn check_mode(&self, selection: &ConfigSelection, mode: &str) -> Result<(), ConfigError> {
        if *selection == ConfigSelection::GlobalOnly {
            return Ok(());
        }
        match self.string("mode")? {
            None => Err(ConfigError::ModeMissing {
                selection: selection.flag_text(),
                mode: mode.to_owned(),
            }),
            Some(s) if s.value == mode => Ok(()),
            Some(s) => Err(ConfigError::ModeMismatch {
                mode: mode.to_owned(),
                config_mode: s.value,
            }),
        }
    }

    /// The highest-priority entry for `key`; `None` if absent or unset by a null.
    fn lookup(&self, key: &str) -> Option<(&Entry, &Origin)> {
        let entry = self.layers.iter().find_map(|l| l.entries.get(key))?;
        if entry.value == ConfigValue::Null {
            return None;
        }
        Some((entry, &entry.origin))
    }

    /// A text key (`stream_path`, `connect_url`, …). Environment values are
    /// taken as typed; file values must be YAML strings.
    pub fn string(&self, key: &str) -> Result<Option<Setting<String>>, ConfigError> {
        let Some((entry, origin)) = self.lookup(key) else {
            return Ok(None);
        };
        let value = match (&entry.raw, &entry.value) {
            (Some(raw), _) => raw.clone(),
            (None, ConfigValue::Str(s)) => s.clone(),
            (None, other) => return Err(wrong_type(key, origin, "a string (quote it)", other)),
        };
        Ok(Some(Setting {
            value,
            origin: origin.clone(),
        }))
    }

    /// A secret text key (`access_token`, `passphrase`): like [`Config::string`],
    /// but the value goes straight into a zeroizing [`SecretString`].
    pub fn secret(&self, key: &str) -> Result<Option<Setting<SecretString>>, ConfigError> {
        debug_assert!(SECRET_KEYS.contains(&key), "{key} is not in SECRET_KEYS");
        Ok(self.string(key)?.map(|s| Setting {
            value: SecretString::from(s.value),
            origin: s.origin,
        }))
    }

    /// A key that holds one string or a list of strings (`recipient`, `identity`).
    pub fn strings(&self, key: &str) -> Result<Option<Setting<Vec<String>>>, ConfigError> {
        let Some((entry, origin)) = self.lookup(key) else {
            return Ok(None);
        };
        let value = match (&entry.raw, &entry.value) {
            (Some(raw), _) => vec![raw.clone()],
            (None, ConfigValue::Str(s)) => vec![s.clone()],
            (None, ConfigValue::List(items)) => items
                .iter()
                .map(|item| match item {
                    ConfigValue::Str(s) => Ok(s.clone()),
                    other => Err(wrong_type(key, origin, "a list of strings", other)),
                })
                .collect::<Result<_, _>>()?,
            (None, other) => {
                return Err(wrong_type(
                    key,
                    origin,
                    "a string or a list of strings",
                    other,
                ))
            }
        };
        Ok(Some(Setting {
            value,
            origin: origin.clone(),
        }))
    }

    /// A boolean key (`unbuffered_input`, `plain`): YAML booleans in the
    /// YAML 1.1 spellings (`true`, `yes`, `on`, …) or 0/1.
    pub fn flag(&self, key: &str) -> Result<Option<Setting<bool>>, ConfigError> {
        let Some((entry, origin)) = self.lookup(key) else {
            return Ok(None);
        };
        let value = match &entry.value {
            ConfigValue::Bool(b) => *b,
            ConfigValue::Int(0) => false,
            ConfigValue::Int(1) => true,
            ConfigValue::Str(s) if yaml11_bool(s).is_some() => yaml11_bool(s).unwrap_or_default(),
            other => return Err(wrong_type(key, origin, "true or false", other)),
        };
        Ok(Some(Setting {
            value,
            origin: origin.clone(),
        }))
    }

    /// A non-negative number of seconds (`connect_timeout`, `auto_flush_delay`).
    pub fn seconds(&self, key: &str) -> Result<Option<Setting<f64>>, ConfigError> {
        let Some((entry, origin)) = self.lookup(key) else {
            return Ok(None);
        };
        let value = match &entry.value {
            ConfigValue::Int(i) => *i as f64,
            ConfigValue::Float(f) => *f,
            other => return Err(wrong_type(key, origin, "a number of seconds", other)),
        };
        if !value.is_finite() || value < 0.0 {
            return Err(ConfigError::Invalid {
                key: key.to_owned(),
                origin: origin.clone(),
                message: format!("{value} is not a non-negative number of seconds"),
            });
        }
        Ok(Some(Setting {
            value,
            origin: origin.clone(),
        }))
    }
}

fn wrong_type(
    key: &str,
    origin: &Origin,
    expected: &'static str,
    found: &ConfigValue,
) -> ConfigError {
    ConfigError::WrongType {
        key: key.to_owned(),
        origin: origin.clone(),
        expected,
        found: found.kind(),
    }
}

/// The `ZEBRASTREAM_*` layer, as confuse's `set_env()` builds it.
fn env_layer(env: &Environment) -> Result<Layer, ConfigError> {
    let mut entries = BTreeMap::new();
    for (name, value) in env.vars_with_prefix(ENV_PREFIX) {
        let text = value
            .to_str()
            .ok_or_else(|| ConfigError::NotUnicode(name.to_owned()))?;
        let Some(key) = env_key(name) else { continue };
        let origin = Origin::Env(name.to_owned());
        // `ZEBRASTREAM_A__B` sets the nested key `a.b`: no key of ours is
        // nested, so the top key just becomes a mapping (a type error if used).
        let entry = if name[ENV_PREFIX.len()..].contains(ENV_NEST_SEPARATOR) {
            Entry {
                value: ConfigValue::Mapping,
                raw: None,
                origin,
            }
        } else {
            let value = resolve_plain_scalar(text);
            let raw = (value != ConfigValue::Null).then(|| text.to_owned());
            Entry { value, raw, origin }
        };
        if !key.is_empty() {
            entries.insert(key, entry);
        }
    }
    Ok(Layer { entries })
}

/// Reads and parses one YAML config file.
fn file_layer(path: &Path, env: &Environment) -> Result<Layer, ConfigError> {
    use std::io::Read;
    let shown = env.display_path(path);
    let read_err = |source| ConfigError::Read {
        path: shown.clone(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut text = String::new();
    file.take(MAX_CONFIG_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    if text.len() as u64 > MAX_CONFIG_FILE_BYTES {
        return Err(ConfigError::Parse {
            path: shown,
            message: format!("larger than {MAX_CONFIG_FILE_BYTES} bytes"),
        });
    }
    Ok(Layer {
        entries: yaml_entries(&text, &shown)?,
    })
}

/// The top-level keys of a YAML mapping document (an empty document has none).
fn yaml_entries(text: &str, path: &str) -> Result<BTreeMap<String, Entry>, ConfigError> {
    let path = path.to_owned();
    let doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
    let mapping = match doc {
        serde_yaml_ng::Value::Null => return Ok(BTreeMap::new()),
        serde_yaml_ng::Value::Mapping(m) => m,
        _ => {
            return Err(ConfigError::Parse {
                path,
                message: String::from("the top level must be a mapping like 'stream_path: /a/b'"),
            })
        }
    };
    Ok(mapping
        .into_iter()
        .filter_map(|(k, v)| {
            // Non-string keys cannot name any setting; skip them like unknown keys.
            let key = k.as_str()?.to_owned();
            Some((
                key,
                Entry {
                    value: from_yaml(v),
                    raw: None,
                    origin: Origin::File(path.clone()),
                },
            ))
        })
        .collect())
}

/// Converts a parsed YAML value.
fn from_yaml(value: serde_yaml_ng::Value) -> ConfigValue {
    use serde_yaml_ng::Value;
    match value {
        Value::Null => ConfigValue::Null,
        Value::Bool(b) => ConfigValue::Bool(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => ConfigValue::Int(i),
            None => ConfigValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => ConfigValue::Str(s),
        Value::Sequence(items) => ConfigValue::List(items.into_iter().map(from_yaml).collect()),
        Value::Mapping(_) => ConfigValue::Mapping,
        Value::Tagged(tagged) => from_yaml(tagged.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn secret_variables_in_every_spelling() {
        for name in [
            "ZEBRASTREAM_PASSPHRASE",
            "ZEBRASTREAM_TICKET",
            "ZEBRASTREAM_ACCESS_TOKEN",
            "ZEBRASTREAM_Access_Token",
            "ZEBRASTREAM_PASSPHRASE__X",
        ] {
            assert!(is_secret_env_var(OsStr::new(name)), "{name}");
        }
        for name in [
            "ZEBRASTREAM_STREAM_PATH",
            "ZEBRASTREAM_PASSPHRASE_FILE",
            "PASSPHRASE",
            "zebrastream_passphrase",
            "ZEBRASTREAM_",
        ] {
            assert!(!is_secret_env_var(OsStr::new(name)), "{name}");
        }
    }
}

//! Where the config files live, found exactly as confuse (the Python CLI's
//! config library) finds them, so both CLIs read the same files.
//!
//! confuse's `config_dir()` for app `zebrastream` on Unix:
//! 1. `$ZEBRASTREAMDIR`, if set;
//! 2. else the first of `~/.config`, `$XDG_CONFIG_HOME`, each entry of
//!    `$XDG_CONFIG_DIRS` (default `/etc/xdg`), `/etc` whose
//!    `zebrastream/config.yaml` is a file;
//! 3. else `~/.config/zebrastream`.
//!
//! The global config is `<dir>/config.yaml`; named configs are
//! `<dir>/streams/NAME.yaml`.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::ConfigError;

/// The global config file name inside the config directory.
pub const GLOBAL_FILE: &str = "config.yaml";
/// confuse's application name: the directory name and the env prefix.
const APP: &str = "zebrastream";

/// The process environment the config is resolved from: a snapshot, so
/// resolution is a pure function that tests can drive with their own values.
#[derive(Clone, Default)]
pub struct Environment {
    vars: HashMap<String, OsString>,
    cwd: PathBuf,
}

// Hand-written so a snapshot that holds tokens and passphrases never prints them.
impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment")
            .field("vars", &"[REDACTED]")
            .field("cwd", &self.cwd)
            .finish()
    }
}

impl Environment {
    /// A snapshot of this process's environment and working directory.
    pub fn from_process() -> Self {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| k.into_string().ok().map(|k| (k, v)))
            .collect();
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        Environment { vars, cwd }
    }

    /// An environment made of the given variables (for tests).
    #[cfg(test)]
    pub fn from_pairs<'a>(cwd: &Path, pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Environment {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), OsString::from(v)))
                .collect(),
            cwd: cwd.to_owned(),
        }
    }

    /// The value of `name`, if set.
    pub fn var_os(&self, name: &str) -> Option<&OsString> {
        self.vars.get(name)
    }

    /// Every `(name, value)` whose name starts with `prefix`, sorted by name.
    pub fn vars_with_prefix(&self, prefix: &str) -> Vec<(&str, &OsString)> {
        let mut found: Vec<_> = self
            .vars
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v))
            .collect();
        found.sort_by(|a, b| a.0.cmp(b.0));
        found
    }

    /// `os.path.abspath(os.path.expanduser(path))`: `~` becomes `$HOME`, and a
    /// relative path is joined to the working directory.
    pub fn expand_path(&self, path: &Path) -> Result<PathBuf, ConfigError> {
        let expanded = match path.strip_prefix("~") {
            Ok(rest) => self.home()?.join(rest),
            Err(_) => path.to_owned(),
        };
        Ok(if expanded.is_absolute() {
            expanded
        } else {
            self.cwd.join(expanded)
        })
    }

    /// `$HOME`.
    pub fn home(&self) -> Result<PathBuf, ConfigError> {
        self.var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .ok_or(ConfigError::NoHome)
    }

    /// The text the user sees for `path`: `$HOME` shown as `~`.
    pub fn display_path(&self, path: &Path) -> String {
        if let Ok(home) = self.home() {
            if let Ok(rest) = path.strip_prefix(&home) {
                return Path::new("~").join(rest).display().to_string();
            }
        }
        path.display().to_string()
    }
}

/// The zebrastream config directory, as confuse's `config_dir()` finds it.
pub fn config_dir(env: &Environment) -> Result<PathBuf, ConfigError> {
    let override_var = format!("{}DIR", APP.to_uppercase());
    if let Some(dir) = env.var_os(&override_var) {
        let dir = env.expand_path(Path::new(dir))?;
        if dir.is_file() {
            return Err(ConfigError::DirIsFile {
                var: override_var,
                path: dir,
            });
        }
        return Ok(dir);
    }
    let mut candidates: Vec<PathBuf> = vec![env.expand_path(Path::new("~/.config"))?];
    if let Some(xdg_home) = env.var_os("XDG_CONFIG_HOME") {
        candidates.push(env.expand_path(Path::new(xdg_home))?);
    }
    match env.var_os("XDG_CONFIG_DIRS") {
        Some(dirs) => {
            for dir in std::env::split_paths(dirs) {
                candidates.push(env.expand_path(&dir)?);
            }
        }
        None => candidates.push(PathBuf::from("/etc/xdg")),
    }
    candidates.push(PathBuf::from("/etc"));
    let mut seen = Vec::new();
    for candidate in candidates {
        if seen.contains(&candidate) {
            continue;
        }
        let app_dir = candidate.join(APP);
        if app_dir.join(GLOBAL_FILE).is_file() {
            return Ok(app_dir);
        }
        seen.push(candidate);
    }
    // No global config anywhere: the first candidate (`~/.config`) is the fallback.
    Ok(seen[0].join(APP))
}

/// The file a named config (`-n NAME`) lives in.
pub fn named_config_path(env: &Environment, name: &str) -> Result<PathBuf, ConfigError> {
    if name.is_empty() || name.contains('/') {
        return Err(ConfigError::BadName(name.to_owned()));
    }
    Ok(config_dir(env)?
        .join("streams")
        .join(format!("{name}.yaml")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "{}\n").unwrap();
    }

    #[test]
    fn falls_back_to_home_dot_config() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path().to_str().unwrap();
        let env = Environment::from_pairs(home.path(), [("HOME", h), ("XDG_CONFIG_DIRS", h)]);
        assert_eq!(
            config_dir(&env).unwrap(),
            home.path().join(".config/zebrastream")
        );
        assert_eq!(
            named_config_path(&env, "trial").unwrap(),
            home.path().join(".config/zebrastream/streams/trial.yaml")
        );
    }

    #[test]
    fn xdg_config_home_used_when_it_holds_the_global_file() {
        let home = tempfile::tempdir().unwrap();
        let xdg = home.path().join("xdg");
        touch(&xdg.join("zebrastream/config.yaml"));
        let env = Environment::from_pairs(
            home.path(),
            [
                ("HOME", home.path().to_str().unwrap()),
                ("XDG_CONFIG_HOME", xdg.to_str().unwrap()),
                ("XDG_CONFIG_DIRS", "/nonexistent"),
            ],
        );
        assert_eq!(config_dir(&env).unwrap(), xdg.join("zebrastream"));
        // ~/.config wins over XDG_CONFIG_HOME when both hold one, as in confuse.
        touch(&home.path().join(".config/zebrastream/config.yaml"));
        assert_eq!(
            config_dir(&env).unwrap(),
            home.path().join(".config/zebrastream")
        );
    }

    #[test]
    fn zebrastreamdir_overrides() {
        let home = tempfile::tempdir().unwrap();
        let env = Environment::from_pairs(
            home.path(),
            [
                ("HOME", home.path().to_str().unwrap()),
                ("ZEBRASTREAMDIR", "~/cfg"),
            ],
        );
        assert_eq!(config_dir(&env).unwrap(), home.path().join("cfg"));
    }

    #[test]
    fn bad_names_and_missing_home() {
        let env = Environment::from_pairs(Path::new("/"), []);
        assert!(matches!(config_dir(&env), Err(ConfigError::NoHome)));
        let home = tempfile::tempdir().unwrap();
        let env = Environment::from_pairs(home.path(), [("HOME", home.path().to_str().unwrap())]);
        assert!(matches!(
            named_config_path(&env, "../x"),
            Err(ConfigError::BadName(_))
        ));
    }

    #[test]
    fn display_uses_tilde() {
        let env = Environment::from_pairs(Path::new("/"), [("HOME", "/home/u")]);
        assert_eq!(
            env.display_path(Path::new("/home/u/.config/x")),
            "~/.config/x"
        );
        assert_eq!(env.display_path(Path::new("/etc/x")), "/etc/x");
    }
}

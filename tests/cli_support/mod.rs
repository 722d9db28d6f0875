//! Helpers for the CLI tests: the built binary, run in a sandbox whose HOME
//! is a temp dir and whose environment holds no `ZEBRASTREAM_*` variables.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The `zebrastream` binary cargo built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_zebrastream"))
}

/// A temp HOME and a clean environment for running CLIs.
pub struct Sandbox {
    pub home: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            home: tempfile::tempdir().expect("temp home"),
        }
    }

    /// `$HOME`.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// `~/.config/zebrastream`.
    pub fn config_dir(&self) -> PathBuf {
        self.home().join(".config/zebrastream")
    }

    /// Writes `~/.config/zebrastream/config.yaml`.
    pub fn write_global_config(&self, yaml: &str) {
        std::fs::create_dir_all(self.config_dir()).unwrap();
        std::fs::write(self.config_dir().join("config.yaml"), yaml).unwrap();
    }

    /// Writes `~/.config/zebrastream/streams/NAME.yaml`.
    pub fn write_named_config(&self, name: &str, yaml: &str) {
        let dir = self.config_dir().join("streams");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.yaml")), yaml).unwrap();
    }

    /// A file in the sandbox.
    pub fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.home().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    /// Applies the sandbox environment to a command: only PATH, HOME and
    /// an XDG_CONFIG_DIRS that points nowhere (so /etc/xdg is not read).
    pub fn apply(&self, cmd: &mut std::process::Command) {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home())
            .env("XDG_CONFIG_DIRS", self.home().join("no-xdg"))
            .current_dir(self.home());
    }

    /// Our binary in the sandbox.
    pub fn zs(&self) -> assert_cmd::Command {
        let mut cmd = std::process::Command::new(bin());
        self.apply(&mut cmd);
        assert_cmd::Command::from_std(cmd)
    }
}

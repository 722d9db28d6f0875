//! How an age plugin talks to the user: its messages ("touch your key") go
//! to stderr; its requests (a PIN, a confirmation) are asked on the
//! terminal like our passphrase prompt, and refused, with a note on stderr
//! that says why, when there is no terminal to ask on (see
//! [`passphrase::can_prompt`]). A refused request makes the plugin fail, and
//! its error names it.

use std::io::{BufRead, Write};

use secrecy::SecretString;

use super::passphrase;

/// [`age::Callbacks`] for plugins run by the CLI.
#[derive(Clone, Copy, Debug)]
pub struct PluginUi;

impl PluginUi {
    /// True when a request can be asked; otherwise says on stderr that
    /// `what` is refused.
    fn can_ask(what: &str) -> bool {
        let can = passphrase::can_prompt();
        if !can {
            eprintln!(
                "zebrastream: an age plugin asks: {what}; refused: no terminal to answer on (stderr is not a terminal or there is no /dev/tty)"
            );
        }
        can
    }

    /// One line typed on the terminal after `question`.
    fn ask_line(question: &str) -> Option<String> {
        let tty = std::fs::File::open("/dev/tty").ok()?;
        eprint!("{question} ");
        std::io::stderr().flush().ok()?;
        let mut line = String::new();
        std::io::BufReader::new(tty).read_line(&mut line).ok()?;
        Some(line.trim_end_matches(['\r', '\n']).to_owned())
    }
}

impl age::Callbacks for PluginUi {
    fn display_message(&self, message: &str) {
        eprintln!("{message}");
    }

    fn confirm(&self, message: &str, yes_string: &str, no_string: Option<&str>) -> Option<bool> {
        if !Self::can_ask(message) {
            return None;
        }
        let no = no_string.unwrap_or("no");
        let answer = Self::ask_line(&format!("{message} [{yes_string}/{no}]"))?;
        Some(answer.eq_ignore_ascii_case(yes_string))
    }

    fn request_public_string(&self, description: &str) -> Option<String> {
        Self::can_ask(description)
            .then(|| Self::ask_line(&format!("{description}:")))
            .flatten()
    }

    fn request_passphrase(&self, description: &str) -> Option<SecretString> {
        if !Self::can_ask(description) {
            return None;
        }
        rpassword::prompt_password(format!("{description}: "))
            .ok()
            .map(SecretString::from)
    }
}

//! Getting a passphrase: from a known value, a file, or a terminal prompt
//! (no echo; asked twice when encrypting).

use std::io::{IsTerminal, Read};
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::keys::PassphraseSource;
use super::{ExitKind, Failure};

/// A passphrase file larger than this is not a passphrase file.
const MAX_PASSPHRASE_FILE_BYTES: u64 = 64 * 1024;

/// True when a passphrase prompt can be shown: stderr is a terminal (so the
/// user sees the question) and the controlling terminal can be opened.
pub fn can_prompt() -> bool {
    std::io::stderr().is_terminal() && std::fs::File::open("/dev/tty").is_ok()
}

/// Produces the passphrase. `subject` names the stream or file in prompts and errors.
pub fn obtain(source: PassphraseSource, subject: &str) -> Result<SecretString, Failure> {
    match source {
        PassphraseSource::Given { secret, .. } => Ok(secret),
        PassphraseSource::File(path) => read_file(&path, subject),
        PassphraseSource::Prompt { confirm } => prompt(subject, confirm),
    }
}

/// The first line of `path` (without its line ending); empty is refused.
fn read_file(path: &Path, subject: &str) -> Result<SecretString, Failure> {
    let fail = |why: String| {
        Failure::usage(format!(
            "{subject}: passphrase file {}: {why}",
            path.display()
        ))
    };
    let file = std::fs::File::open(path).map_err(|e| fail(e.to_string()))?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_PASSPHRASE_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > MAX_PASSPHRASE_FILE_BYTES {
        return Err(fail(format!(
            "larger than {MAX_PASSPHRASE_FILE_BYTES} bytes"
        )));
    }
    let text = std::str::from_utf8(&bytes).map_err(|_| fail(String::from("not valid UTF-8")))?;
    let line = text.split('\n').next().unwrap_or_default();
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return Err(fail(String::from("the first line is empty")));
    }
    Ok(SecretString::from(line.to_owned()))
}

/// Asks on the terminal without echo; `confirm` asks again and compares.
fn prompt(subject: &str, confirm: bool) -> Result<SecretString, Failure> {
    let ask = |question: String| -> Result<SecretString, Failure> {
        rpassword::prompt_password(question)
            .map(SecretString::from)
            .map_err(|e| {
                Failure::usage(format!(
                    "{subject}: cannot read a passphrase from the terminal ({e}); use --passphrase-file or ZEBRASTREAM_PASSPHRASE"
                ))
            })
    };
    let first = ask(format!("Passphrase for {subject}: "))?;
    if first.expose_secret().is_empty() {
        return Err(Failure::usage(format!(
            "{subject}: empty passphrase; type a passphrase (or use --plain for an unencrypted stream)"
        )));
    }
    if confirm {
        let second = ask(String::from("Confirm passphrase: "))?;
        if first.expose_secret() != second.expose_secret() {
            return Err(Failure::new(
                ExitKind::Usage,
                format!("{subject}: the passphrases did not match"),
            ));
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_first_line_without_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pw");
        std::fs::write(&p, "correct horse\r\nsecond line\n").unwrap();
        let s = obtain(PassphraseSource::File(p.clone()), "/s").unwrap();
        assert_eq!(s.expose_secret(), "correct horse");
        std::fs::write(&p, "\nx").unwrap();
        let err = obtain(PassphraseSource::File(p), "/s").unwrap_err();
        assert!(err.message.contains("first line is empty"));
        let err = obtain(PassphraseSource::File(dir.path().join("none")), "/s").unwrap_err();
        assert!(err.message.contains("passphrase file"));
        assert_eq!(err.kind, ExitKind::Usage);
    }
}

//! Interop with the `age` (Debian, Go) and `rage` command-line tools in age
//! v1 format: our output decrypts with theirs, theirs decrypts with ours,
//! for X25519 keys (identity files written by `age-keygen`, recipients
//! files) and passphrases (those CLIs read a passphrase only from a TTY, so
//! they run under a pty via `expectrl`).

mod support;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use secrecy::SecretString;
use zebrastream::cipher::{keys, DecryptingReader, Decryptor, EncryptingWriter, Encryptor, Format};

const PASSPHRASE: &str = "interop passphrase 42";

fn sample(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Lengths that hit age v1's edge cases: empty, one byte, exactly one full
/// chunk (no empty final chunk in standard age), more than two chunks.
const LENGTHS: [usize; 4] = [0, 1, 65536, 150_000];

fn our_encrypt(enc: Encryptor, data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut w = EncryptingWriter::new(Vec::new(), enc);
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

fn our_decrypt(dec: Decryptor, wire: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    DecryptingReader::new(wire, dec)
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("we failed to decrypt: {e}"));
    out
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The tools we test against: (`age` or `rage`, its keygen).
fn tools() -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for (tool, keygen) in [("age", "age-keygen"), ("rage", "rage-keygen")] {
        if let (Some(t), Some(k)) = (support::tool(tool), support::tool(keygen)) {
            out.push((t, k));
        }
    }
    out
}

#[test]
fn x25519_both_ways() {
    for (tool, keygen) in tools() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("key.txt");
        run(Command::new(&keygen).arg("-o").arg(&key_file));
        // The recipient from the keygen's comment line, as a recipients file.
        let key_text = std::fs::read_to_string(&key_file).unwrap();
        let public = key_text
            .lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .expect("public key comment");
        let recipients_file = dir.path().join("recipients.txt");
        std::fs::write(
            &recipients_file,
            format!("# for {}\n{public}\n", tool.display()),
        )
        .unwrap();

        for len in LENGTHS {
            let data = sample(len);
            // Ours → theirs.
            let recipients = keys::read_recipients_file(&recipients_file).unwrap();
            let wire = our_encrypt(
                Encryptor::with_recipients(Format::AgeV1, recipients).unwrap(),
                &data,
            );
            let enc_path = dir.path().join("ours.age");
            std::fs::write(&enc_path, &wire).unwrap();
            let plain = run(Command::new(&tool)
                .arg("-d")
                .arg("-i")
                .arg(&key_file)
                .arg(&enc_path));
            assert!(
                plain == data,
                "{} decrypted different bytes ({len})",
                tool.display()
            );

            // Theirs → ours.
            let in_path = dir.path().join("plain.bin");
            std::fs::write(&in_path, &data).unwrap();
            let wire = run(Command::new(&tool).arg("-r").arg(public).arg(&in_path));
            let identities = keys::read_identity_file(&key_file).unwrap();
            let got = our_decrypt(
                Decryptor::with_identities(identities).strict_age_v1(true),
                &wire,
            );
            assert!(
                got == data,
                "we decrypted different bytes from {} ({len})",
                tool.display()
            );
        }
    }
}

/// Runs `tool args…` under a pty, answering every passphrase prompt.
fn with_passphrase_prompts(tool: &Path, args: &[&Path]) {
    let mut cmd = Command::new(tool);
    cmd.args(args);
    // rage prefers a pinentry program (a curses dialog here); pointing it at
    // a missing one makes it fall back to its plain TTY prompt.
    cmd.env("PINENTRY_PROGRAM", "/nonexistent/pinentry");
    let mut session = expectrl::Session::spawn(cmd).expect("spawn under a pty");
    session.set_expect_timeout(Some(Duration::from_secs(60)));
    let mut prompts = 0;
    loop {
        match session.expect(expectrl::Regex("(?i)passphrase[^:]*:")) {
            Ok(found) if !found.is_empty() => {
                session.send_line(PASSPHRASE).unwrap();
                prompts += 1;
            }
            _ => break,
        }
    }
    assert!(
        prompts > 0,
        "{} never asked for a passphrase",
        tool.display()
    );
    // Wait for the tool to exit.
    let _ = session.expect(expectrl::Eof);
}

#[test]
fn passphrase_both_ways() {
    for (tool, _) in tools() {
        let dir = tempfile::tempdir().unwrap();
        let data = sample(70_000);

        // Ours → theirs.
        let enc =
            Encryptor::with_passphrase(Format::AgeV1, SecretString::from(PASSPHRASE)).unwrap();
        let ours = dir.path().join("ours.age");
        std::fs::write(&ours, our_encrypt(enc, &data)).unwrap();
        let out = dir.path().join("ours.out");
        with_passphrase_prompts(&tool, &[Path::new("-d"), Path::new("-o"), &out, &ours]);
        assert!(
            std::fs::read(&out).unwrap() == data,
            "{} decrypted different bytes",
            tool.display()
        );

        // Theirs → ours. rage picks its work factor by timing (about one
        // second here), so allow up to 2^22 for this known source.
        let plain = dir.path().join("plain.bin");
        std::fs::write(&plain, &data).unwrap();
        let theirs = dir.path().join("theirs.age");
        with_passphrase_prompts(&tool, &[Path::new("-p"), Path::new("-o"), &theirs, &plain]);
        let wire = std::fs::read(&theirs).unwrap();
        let dec = Decryptor::with_passphrase(SecretString::from(PASSPHRASE)).max_work_factor(22);
        assert!(
            our_decrypt(dec, &wire) == data,
            "we decrypted different bytes from {}",
            tool.display()
        );
    }
}

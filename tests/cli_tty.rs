//! Behaviour on a real terminal (a pseudo-terminal via expectrl): the
//! passphrase prompt (typed, confirmed, mismatched, never echoed) and the
//! progress display (present on a TTY, absent in a pipe).

mod cli_support;
mod support;

use std::time::Duration;

use cli_support::{data, Proc, Sandbox, TestRelay};
use expectrl::{Eof, Regex, Session, WaitStatus};
use support::hostile_relay::HostileRelay;

/// Starts our binary on a pseudo-terminal.
fn on_tty(sb: &Sandbox, args: &[&str]) -> Session {
    let mut cmd = sb.cmd(args);
    cmd.env("TERM", "xterm");
    let mut session = Session::spawn(cmd).expect("spawn on a pty");
    session.set_expect_timeout(Some(Duration::from_secs(60)));
    session
}

/// Everything the session printed until `needle`, as text.
fn until(session: &mut Session, needle: &str) -> String {
    let found = session
        .expect(needle)
        .unwrap_or_else(|e| panic!("did not see {needle:?}: {e}"));
    String::from_utf8_lossy(found.before()).into_owned() + needle
}

/// Everything printed until a match of the regular expression `pattern`.
fn until_match(session: &mut Session, pattern: &str) -> String {
    let found = session
        .expect(Regex(pattern))
        .unwrap_or_else(|e| panic!("did not see /{pattern}/: {e}"));
    let matched: Vec<u8> = found.matches().flat_map(|m| m.to_vec()).collect();
    String::from_utf8_lossy(found.before()).into_owned() + &String::from_utf8_lossy(&matched)
}

/// Everything printed until the end (expectrl hands the rest over as the match).
fn until_eof(session: &mut Session) -> String {
    let found = session.expect(Eof).expect("EOF");
    let matched: Vec<u8> = found.matches().flat_map(|m| m.to_vec()).collect();
    String::from_utf8_lossy(found.before()).into_owned() + &String::from_utf8_lossy(&matched)
}

fn exit_code(session: &Session) -> i32 {
    match session.get_process().wait().expect("wait") {
        WaitStatus::Exited(_, code) => code,
        other => panic!("not exited normally: {other:?}"),
    }
}

#[test]
fn typed_passphrase_is_confirmed_and_never_echoed() {
    let sb = Sandbox::new();
    let plain = data(50_000, 31);
    sb.file("in.bin", &plain);
    let mut s = on_tty(&sb, &["encrypt", "-o", "out.age", "in.bin"]);
    let mut seen = until(&mut s, "Passphrase for in.bin: ");
    s.send_line("typed secret 42").unwrap();
    seen += &until(&mut s, "Confirm passphrase: ");
    s.send_line("typed secret 42").unwrap();
    // The progress line (stderr is a terminal) comes after the second answer.
    seen += &until_match(&mut s, r"encrypted [0-9.]+ KiB");
    seen += &until_eof(&mut s);
    assert_eq!(exit_code(&s), 0, "{seen}");
    assert!(
        !seen.contains("typed secret"),
        "the passphrase was echoed: {seen:?}"
    );

    // The typed passphrase is the key: decrypt with it from the environment.
    let mut cmd = sb.cmd(&["decrypt", "out.age"]);
    cmd.env("ZEBRASTREAM_PASSPHRASE", "typed secret 42");
    let out = Proc::spawn(cmd, None).finish();
    out.expect_code(0);
    assert_eq!(out.stdout, plain);
}

#[test]
fn decrypt_asks_once_and_a_wrong_answer_is_exit_8() {
    let sb = Sandbox::new();
    let plain = data(20_000, 35);
    let mut cmd = sb.cmd(&["encrypt", "-o", "c.age"]);
    cmd.env("ZEBRASTREAM_PASSPHRASE", "right");
    let out = Proc::spawn(cmd, Some(plain.clone())).finish();
    out.expect_code(0);
    // The right passphrase, asked once (no confirmation when decrypting).
    let mut s = on_tty(&sb, &["decrypt", "-o", "p.bin", "c.age"]);
    until(&mut s, "Passphrase for c.age: ");
    s.send_line("right").unwrap();
    until_match(&mut s, r"decrypted [0-9.]+ KiB");
    until_eof(&mut s);
    assert_eq!(exit_code(&s), 0);
    assert_eq!(std::fs::read(sb.home().join("p.bin")).unwrap(), plain);
    // A wrong one.
    let mut s = on_tty(&sb, &["decrypt", "-o", "q.bin", "c.age"]);
    until(&mut s, "Passphrase for c.age: ");
    s.send_line("wrong").unwrap();
    until(&mut s, "wrong passphrase or key");
    assert_eq!(exit_code(&s), 8);
    assert!(!sb.home().join("q.bin").exists());
}

#[test]
fn mismatched_confirmation_fails_and_writes_nothing() {
    let sb = Sandbox::new();
    sb.file("in.bin", b"data");
    let mut s = on_tty(&sb, &["encrypt", "-o", "out.age", "in.bin"]);
    until(&mut s, "Passphrase for in.bin: ");
    s.send_line("first").unwrap();
    until(&mut s, "Confirm passphrase: ");
    s.send_line("second").unwrap();
    until(&mut s, "did not match");
    assert_eq!(exit_code(&s), 2);
    assert!(!sb.home().join("out.age").exists());
}
#[test]
fn write_prompts_on_a_terminal_and_shows_progress_there() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let payload = data(300_000, 32);
    let input = sb.file("in.bin", &payload);
    let url = relay.connect_url.as_str();
    let mut s = on_tty(
        &sb,
        &[
            "write",
            "-U",
            url,
            "-t",
            "60",
            "-s",
            "/t/tty",
            input.to_str().unwrap(),
        ],
    );
    until(&mut s, "Passphrase for /t/tty: ");
    s.send_line("tty pass").unwrap();
    until(&mut s, "Confirm passphrase: ");
    s.send_line("tty pass").unwrap();
    // Nobody reads yet: the spinner says so.
    until(&mut s, "waiting for a reader");
    let mut reader = sb.cmd(&["read", "-U", url, "-t", "60", "-s", "/t/tty"]);
    reader.env("ZEBRASTREAM_PASSPHRASE", "tty pass");
    let r = Proc::spawn(reader, None).finish();
    r.expect_code(0);
    assert_eq!(r.stdout, payload);
    // The final progress line: bytes sent, rate, elapsed.
    let rest = until_match(
        &mut s,
        r"sent 29[0-9.]+ KiB \([0-9.]+ [KMG]?i?B/s\) in 00:00:[0-9]{2}",
    );
    until_eof(&mut s);
    assert_eq!(exit_code(&s), 0, "{rest}");
}

#[test]
fn no_progress_or_prompt_in_a_pipe() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let payload = data(300_000, 33);
    let (w, r) = sb.transfer(&relay, "/t/pipe", &["--plain"], &["--plain"], &payload);
    w.expect_code(0);
    r.expect_code(0);
    // No spinner, no prompt: at most the one-line notice of a wait.
    for (side, stderr) in [("write", &w.stderr), ("read", &r.stderr)] {
        assert!(
            stderr
                .lines()
                .all(|l| l.starts_with("/t/pipe: waiting for a ")),
            "stderr of {side} in a pipe: {stderr}"
        );
        assert!(stderr.lines().count() <= 1, "stderr of {side}: {stderr}");
    }
}

#[test]
fn read_without_a_key_asks_for_the_passphrase_before_connecting() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let payload = data(200_000, 34);
    let url = relay.connect_url.as_str();
    let mut s = on_tty(
        &sb,
        &[
            "read",
            "-U",
            url,
            "-t",
            "60",
            "-s",
            "/t/ttyread",
            "-o",
            "out.bin",
        ],
    );
    // The passphrase is asked first (once, no confirmation), then the reader waits.
    let before = until(&mut s, "Passphrase for /t/ttyread: ");
    assert!(
        !before.contains("waiting"),
        "connected before asking: {before:?}"
    );
    s.send_line("asked first").unwrap();
    until(&mut s, "waiting for a writer");
    let mut writer = sb.cmd(&["write", "-U", url, "-t", "60", "-s", "/t/ttyread"]);
    writer.env("ZEBRASTREAM_PASSPHRASE", "asked first");
    let writer = Proc::spawn(writer, Some(payload.clone()));
    let rest = until_match(&mut s, r"received 19[0-9.]+ KiB");
    assert!(!rest.contains("asked first"), "echoed: {rest:?}");
    until_eof(&mut s);
    assert_eq!(exit_code(&s), 0, "{rest}");
    writer.finish().expect_code(0);
    assert_eq!(std::fs::read(sb.home().join("out.bin")).unwrap(), payload);
}

/// The attack: the user meant to type the passphrase at the prompt, and the
/// relay serves plaintext of its own. Nothing is asked of the relay before
/// the passphrase is typed, and the injected text is refused (exit 8).
#[test]
fn read_on_a_terminal_never_shows_injected_plaintext() {
    let sb = Sandbox::new();
    let relay = HostileRelay::start();
    relay.serve("/t/inject", b"INJECTED pay 100 EUR to mallory".to_vec());
    let url = relay.connect_url();
    let mut s = on_tty(&sb, &["read", "-U", &url, "-t", "60", "-s", "/t/inject"]);
    until(&mut s, "Passphrase for /t/inject: ");
    assert!(
        relay.seen().is_empty(),
        "connected before asking: {:?}",
        relay.seen()
    );
    s.send_line("typed passphrase").unwrap();
    let rest = until_eof(&mut s);
    assert_eq!(exit_code(&s), 8, "{rest}");
    assert!(!rest.contains("INJECTED"), "plaintext shown: {rest:?}");
    assert!(rest.contains("--plain"), "{rest}");
}

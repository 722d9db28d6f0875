//! Behaviour on a real terminal (a pseudo-terminal via expectrl): the
//! passphrase prompt (typed, confirmed, mismatched, never echoed) and the
//! progress display (present on a TTY, absent in a pipe).

mod cli_support;

use std::time::Duration;

use cli_support::{data, Proc, Sandbox, TestRelay};
use expectrl::{Eof, Session, WaitStatus};

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

fn until_eof(session: &mut Session) -> String {
    let found = session.expect(Eof).expect("EOF");
    String::from_utf8_lossy(found.before()).into_owned()
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
fn mismatched_confirmation_fails_and_writes_nothing() {
    let sb = Sandbox::new();
    sb.file("in.bin", b"data");
    let mut s = on_tty(&sb, &["encrypt", "-o", "out.age", "in.bin"]);
    until(&mut s, "Passphrase for in.bin: ");
    s.send_line("first").unwrap();
    until(&mut s, "Confirm passphrase: ");
    s.send_line("second").unwrap();
    let rest = until_eof(&mut s);
    assert_eq!(exit_code(&s), 2);
    assert!(rest.contains("did not match"), "{rest}");
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
    until(&mut s, "waiting for reader");
    let mut reader = sb.cmd(&["read", "-U", url, "-t", "60", "-s", "/t/tty"]);
    reader.env("ZEBRASTREAM_PASSPHRASE", "tty pass");
    let r = Proc::spawn(reader, None).finish();
    let rest = until_eof(&mut s);
    assert_eq!(exit_code(&s), 0, "{rest}");
    r.expect_code(0);
    assert_eq!(r.stdout, payload);
    // The final progress line: bytes sent.
    assert!(rest.contains("sent"), "{rest:?}");
    assert!(rest.contains("KiB") || rest.contains("MiB"), "{rest:?}");
}

#[test]
fn no_progress_or_prompt_in_a_pipe() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let payload = data(300_000, 33);
    let (w, r) = sb.transfer(&relay, "/t/pipe", &["--plain"], &["--plain"], &payload);
    w.expect_code(0);
    r.expect_code(0);
    assert_eq!(w.stderr, "", "stderr of write in a pipe");
    assert_eq!(r.stderr, "", "stderr of read in a pipe");
}

#[test]
fn write_prompts_on_a_terminal_and_shows_progress_there() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let payload = data(300_000, 32);
    let input = sb.file("in.bin", &payload);
    let url = relay.connect_url.as_str();
    let mut s = on_tty(
        &sb,
        &["write", "-U", url, "-t", "60", "-s", "/t/tty", input.to_str().unwrap()],
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

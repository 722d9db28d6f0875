//! write → read through a relay with the built binary: plaintext,
//! passphrase (age-rt and age v1), X25519 recipients, files in and out.

mod cli_support;
mod support;

use cli_support::{data, Sandbox, TestRelay};

#[test]
fn plaintext_with_explicit_plain_on_both_sides() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let payload = data(300_000, 1);
    let (w, r) = sb.transfer(&relay, "/t/plain", &["--plain"], &["--plain"], &payload);
    w.expect_code(0);
    r.expect_code(0);
    assert_eq!(r.stdout, payload);
}

#[test]
fn read_takes_plaintext_only_with_plain() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let payload = b"just text\n".to_vec();
    let (w, r) = sb.transfer(&relay, "/t/detect", &["--plain"], &["--plain"], &payload);
    w.expect_code(0);
    r.expect_code(0);
    assert_eq!(r.stdout, payload);
    // Without a key (and no terminal to ask on) the same stream is refused.
    let (_, r) = sb.transfer(&relay, "/t/detect2", &["--plain"], &[], &payload);
    r.expect_code(8);
    assert!(
        r.stderr
            .contains("the stream is not encrypted; use --plain to accept it"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());
}

#[test]
fn passphrase_file_age_rt_and_age_v1() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let pw = sb.file("pw.txt", b"correct horse battery staple\n");
    let pw = pw.to_str().unwrap();
    let payload = data(200_000, 2);
    for (i, mode) in ["age-rt", "age"].iter().enumerate() {
        let path = format!("/t/pass/{i}");
        let (w, r) = sb.transfer(
            &relay,
            &path,
            &["--passphrase-file", pw, "--encryption-mode", mode],
            &["--passphrase-file", pw],
            &payload,
        );
        w.expect_code(0);
        r.expect_code(0);
        assert_eq!(r.stdout, payload, "mode {mode}");
    }
}

#[test]
fn passphrase_from_the_environment() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let payload = data(10_000, 3);
    let common = ["-U", relay.connect_url.as_str(), "-t", "30", "-s", "/t/env"];
    let mut reader = sb.cmd(&[&["read"][..], &common].concat());
    reader.env("ZEBRASTREAM_PASSPHRASE", "from the env");
    let mut writer = sb.cmd(&[&["write"][..], &common].concat());
    writer.env("ZEBRASTREAM_PASSPHRASE", "from the env");
    let reader = cli_support::Proc::spawn(reader, None);
    let writer = cli_support::Proc::spawn(writer, Some(payload.clone()));
    writer.finish().expect_code(0);
    let r = reader.finish();
    r.expect_code(0);
    assert_eq!(r.stdout, payload);
}

#[test]
fn x25519_recipient_and_identity_file_with_files_in_and_out() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let out = sb.zs().args(["keygen", "-o", "id.txt"]).assert().success();
    let recipient = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let payload = data(500_000, 4);
    let input = sb.file("input.bin", &payload);
    let output = sb.home().join("received.bin");
    let (w, r) = sb.transfer(
        &relay,
        "/t/x25519",
        &["-r", recipient.trim(), input.to_str().unwrap()],
        &["-i", "id.txt", "-o", output.to_str().unwrap()],
        b"",
    );
    w.expect_code(0);
    r.expect_code(0);
    assert!(r.stdout.is_empty());
    assert_eq!(std::fs::read(&output).unwrap(), payload);
}

#[test]
fn producer_and_consumer_commands_on_both_sides() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let out = sb.home().join("consumed.txt");
    let consumer = format!("cat > {}", out.display());
    let (w, r) = sb.transfer(
        &relay,
        "/t/commands",
        &["--plain", "--", "sh", "-c", "seq 1 20000"],
        &["--plain", "--", "sh", "-c", &consumer],
        b"",
    );
    w.expect_code(0);
    r.expect_code(0);
    let expected: String = (1..=20000).map(|i| format!("{i}\n")).collect();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), expected);
}

#[test]
fn unbuffered_flags_and_auto_flush_still_deliver_everything() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let payload = data(150_000, 5);
    let (w, r) = sb.transfer(
        &relay,
        "/t/unbuffered",
        &["-p", "pw", "-u", "-d", "0"],
        &["-p", "pw", "-u"],
        &payload,
    );
    w.expect_code(0);
    r.expect_code(0);
    assert_eq!(r.stdout, payload);
    // The Python CLI's argv warning, on both sides.
    for stderr in [&w.stderr, &r.stderr] {
        assert!(
            stderr.contains("[WARNING] Using --passphrase is insecure on shared systems. Use ZEBRASTREAM_PASSPHRASE environment variable or config file instead."),
            "{stderr}"
        );
    }
}

#[test]
fn through_the_zebrastream_relay_command_plaintext_passphrase_and_x25519() {
    let sb = Sandbox::new();
    let relay = cli_support::RelayProcess::start(&sb);
    let url = relay.connect_url.as_str();
    let out = sb.zs().args(["keygen", "-o", "id.txt"]).assert().success();
    let recipient = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let payload = data(400_000, 6);
    let cases: [(&str, Vec<&str>, Vec<&str>); 3] = [
        ("/t/cmd/plain", vec!["--plain"], vec!["--plain"]),
        ("/t/cmd/pass", vec!["-p=relay pw"], vec!["-p=relay pw"]),
        (
            "/t/cmd/x25519",
            vec!["-r", recipient.trim()],
            vec!["-i", "id.txt"],
        ),
    ];
    for (path, wkeys, rkeys) in cases {
        let common = ["-U", url, "-t", "30", "-s", path];
        let reader = sb.spawn(&[&["read"][..], &common, &rkeys].concat(), None);
        let writer = sb.spawn(
            &[&["write"][..], &common, &wkeys].concat(),
            Some(payload.clone()),
        );
        writer.finish().expect_code(0);
        let r = reader.finish();
        r.expect_code(0);
        assert_eq!(r.stdout, payload, "{path}");
    }
}

/// `write --format age|age-rt` is `--encryption-mode` under the name
/// `encrypt` uses: the relay sees the chosen format's header line.
#[test]
fn write_format_is_another_name_for_encryption_mode() {
    let sb = Sandbox::new();
    let relay = support::hostile_relay::HostileRelay::start();
    let recipient = age::x25519::Identity::generate().to_public().to_string();
    for (format, first_line) in [
        ("age", "age-encryption.org/v1\n"),
        ("age-rt", "github.com/parsimonit/age-rt-encryption/v0.2\n"),
    ] {
        let path = format!("/t/format/{format}");
        sb.spawn(
            &[
                "write",
                "-U",
                &relay.connect_url(),
                "-t",
                "30",
                "-s",
                &path,
                "-r",
                &recipient,
                "--format",
                format,
            ],
            Some(b"some rows\n".to_vec()),
        )
        .finish()
        .expect_code(0);
        let body = relay.wait_recorded(&path);
        assert!(
            body.starts_with(first_line.as_bytes()),
            "--format {format}: {:?}",
            String::from_utf8_lossy(&body[..40.min(body.len())])
        );
    }
}

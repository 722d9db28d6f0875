//! `zebrastream ticket new/show` and `write`/`read --ticket`: one string
//! addresses the stream and carries its key; by default the stream is
//! sealed to the reader's one-time key (forward secrecy), with
//! `--no-forward-secrecy` to the ticket.

mod cli_support;

use std::sync::Arc;

use cli_support::{data, Sandbox, TestRelay};
use zebrastream::relay::{CaptureTap, RelayConfig};

/// The stream path `ticket show` names for the ticket in file `t`.
fn shown_stream_path(sb: &Sandbox, t: &str) -> String {
    let shown = sb
        .spawn(&["ticket", "show", "--ticket-file", t], None)
        .finish();
    shown.expect_code(0);
    String::from_utf8(shown.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("stream path:"))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn ticket_file_on_both_sides_transfers_fresh_by_default() {
    let sb = Sandbox::new();
    let tap = Arc::new(CaptureTap::new(1 << 20));
    let relay = TestRelay::with(RelayConfig::open_loopback().tap(tap.clone()));
    let ticket = sb.new_ticket(&relay.connect_url, "t.txt");
    let text = std::fs::read_to_string(&ticket).unwrap();
    assert!(text.starts_with("zs1"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&ticket).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let t = ticket.to_str().unwrap();
    let payload = data(300_000, 7);
    let reader = sb.spawn(&["read", "--ticket-file", t, "-t", "30"], None);
    let writer = sb.spawn(
        &["write", "--ticket-file", t, "-t", "30"],
        Some(payload.clone()),
    );
    let (w, r) = (writer.finish(), reader.finish());
    w.expect_code(0);
    r.expect_code(0);
    assert_eq!(r.stdout, payload);

    // `ticket show` names the path the relay saw; what it saw is ciphertext.
    let shown = sb
        .spawn(&["ticket", "show", "--ticket-file", t], None)
        .finish();
    shown.expect_code(0);
    let shown = String::from_utf8(shown.stdout).unwrap();
    assert!(
        !shown.contains(text.trim()),
        "show must not print the secret"
    );
    let path = shown
        .lines()
        .find_map(|l| l.strip_prefix("stream path:"))
        .unwrap()
        .trim()
        .to_owned();
    assert!(path.starts_with("/hospital/"));
    // No flags: the key exchange ran on the side paths `ticket show` names,
    // and the data is sealed to the reader's one-time key, not the ticket.
    let exchange = shown
        .lines()
        .find_map(|l| l.strip_prefix("key exchange:"))
        .unwrap();
    assert!(
        exchange.contains(&format!("{path}/~fs-offer")),
        "{exchange}"
    );
    assert!(exchange.contains(&format!("{path}/~fs-key")), "{exchange}");
    assert_eq!(tap.bytes(&format!("{path}/~fs-offer")).len(), 50);
    assert!(!tap.bytes(&format!("{path}/~fs-key")).is_empty());
    let seen = tap.bytes(&path);
    // Sealed to the reader's one-time key, hybrid post-quantum.
    assert!(seen.starts_with(b"github.com/parsimonit/age-rt-encryption/v0.2\n-> mlkem768x25519 "));
    assert!(!seen.windows(64).any(|w| w == &payload[1000..1064]));
}

#[test]
fn no_forward_secrecy_on_both_sides_seals_to_the_ticket() {
    let sb = Sandbox::new();
    let tap = Arc::new(CaptureTap::new(1 << 20));
    let relay = TestRelay::with(RelayConfig::open_loopback().tap(tap.clone()));
    let ticket = sb.new_ticket(&relay.connect_url, "t.txt");
    let t = ticket.to_str().unwrap();
    let payload = data(100_000, 5);
    let no_fs = "--no-forward-secrecy";
    let reader = sb.spawn(&["read", "--ticket-file", t, no_fs, "-t", "30"], None);
    let writer = sb.spawn(
        &["write", "--ticket-file", t, no_fs, "-t", "30"],
        Some(payload.clone()),
    );
    let (w, r) = (writer.finish(), reader.finish());
    w.expect_code(0);
    r.expect_code(0);
    assert_eq!(r.stdout, payload);
    let path = shown_stream_path(&sb, t);
    let seen = tap.bytes(&path);
    assert!(seen.starts_with(b"github.com/parsimonit/age-rt-encryption/v0.2\n-> zs-ticket "));
    assert!(tap.bytes(&format!("{path}/~fs-offer")).is_empty());
}

#[test]
fn ticket_from_the_environment_with_the_compatible_forward_secrecy_flag() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let ticket = sb.new_ticket(&relay.connect_url, "t.txt");
    let text = std::fs::read_to_string(&ticket).unwrap();
    let payload = data(100_000, 8);
    let mut reader = sb.cmd(&["read", "--forward-secrecy", "-t", "30"]);
    reader.env("ZEBRASTREAM_TICKET", text.trim());
    let mut writer = sb.cmd(&["write", "--forward-secrecy", "-t", "30"]);
    writer.env("ZEBRASTREAM_TICKET", text.trim());
    let reader = cli_support::Proc::spawn(reader, None);
    let writer = cli_support::Proc::spawn(writer, Some(payload.clone()));
    let (w, r) = (writer.finish(), reader.finish());
    w.expect_code(0);
    r.expect_code(0);
    assert_eq!(r.stdout, payload);
}

#[test]
fn ticket_misuse_is_a_usage_error_that_never_echoes_the_secret() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let ticket = sb.new_ticket(&relay.connect_url, "t.txt");
    let text = std::fs::read_to_string(&ticket).unwrap();
    let t = ticket.to_str().unwrap();
    for args in [
        vec!["write", "--ticket-file", t, "--plain"],
        vec!["write", "--ticket-file", t, "-p", "pw"],
        vec!["write", "--ticket-file", t, "-s", "/other"],
        vec!["write", "--forward-secrecy", "-s", "/x", "--plain"],
    ] {
        let out = sb.spawn(&args, Some(Vec::new())).finish();
        out.expect_code(2);
        assert!(!out.stderr.contains(text.trim()), "{}", out.stderr);
    }
    // A damaged ticket (one character changed) is refused by its checksum.
    let mut damaged = text.trim().to_owned().into_bytes();
    let i = damaged.len() - 5;
    damaged[i] = if damaged[i] == b'a' { b'b' } else { b'a' };
    let damaged = String::from_utf8(damaged).unwrap();
    let out = sb
        .spawn(&["read", "--ticket", &damaged, "-t", "5"], None)
        .finish();
    out.expect_code(2);
    assert!(out.stderr.contains("ticket"), "{}", out.stderr);
    assert!(!out.stderr.contains(&damaged), "{}", out.stderr);
}

#[test]
fn ticket_writer_with_an_extra_x25519_recipient_without_forward_secrecy() {
    let sb = Sandbox::new();
    let tap = Arc::new(CaptureTap::new(1 << 20));
    let relay = TestRelay::with(RelayConfig::open_loopback().tap(tap.clone()));
    let ticket = sb.new_ticket(&relay.connect_url, "t.txt");
    let t = ticket.to_str().unwrap();
    let key = sb.home().join("partner.key");
    let keygen = sb
        .spawn(&["keygen", "-o", key.to_str().unwrap()], None)
        .finish();
    keygen.expect_code(0);
    let recipient = String::from_utf8(keygen.stdout).unwrap().trim().to_owned();
    let payload = data(50_000, 9);
    let no_fs = "--no-forward-secrecy";
    // The reader may name its identity too; the ticket's stanza opens the stream.
    let reader = sb.spawn(
        &[
            "read",
            "--ticket-file",
            t,
            no_fs,
            "-i",
            key.to_str().unwrap(),
            "-t",
            "30",
        ],
        None,
    );
    let writer = sb.spawn(
        &[
            "write",
            "--ticket-file",
            t,
            no_fs,
            "-r",
            &recipient,
            "-t",
            "30",
        ],
        Some(payload.clone()),
    );
    let (w, r) = (writer.finish(), reader.finish());
    w.expect_code(0);
    r.expect_code(0);
    assert_eq!(r.stdout, payload);
    // The extra recipient opens the recorded stream with its identity alone.
    let path = shown_stream_path(&sb, t);
    let recorded = sb.file("recorded.age", &tap.bytes(&path));
    let decrypted = sb
        .spawn(
            &[
                "decrypt",
                "-i",
                key.to_str().unwrap(),
                recorded.to_str().unwrap(),
            ],
            None,
        )
        .finish();
    decrypted.expect_code(0);
    assert_eq!(decrypted.stdout, payload);
}

/// `ticket new` with nothing but `--relay` (default `--path /`), then
/// `write`/`read` with nothing but `--ticket-file`: the defaults work end to end.
#[test]
fn a_ticket_made_with_defaults_works_with_defaults() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let path = sb.home().join("default.txt");
    sb.spawn(
        &[
            "ticket",
            "new",
            "--relay",
            &relay.connect_url,
            "-o",
            path.to_str().unwrap(),
        ],
        None,
    )
    .finish()
    .expect_code(0);
    let t = path.to_str().unwrap();
    let shown = sb
        .spawn(&["ticket", "show", "--ticket-file", t], None)
        .finish();
    shown.expect_code(0);
    let payload = data(100_000, 16);
    let reader = sb.spawn(&["read", "--ticket-file", t], None);
    let writer = sb.spawn(&["write", "--ticket-file", t], Some(payload.clone()));
    let (w, r) = (writer.finish(), reader.finish());
    w.expect_code(0);
    r.expect_code(0);
    assert_eq!(r.stdout, payload);
}

/// The README's ticket lines as a shell runs them: `ticket new --relay URL
/// --path /hospital -o t.txt`, then `write --ticket-file t.txt` fed by a shell
/// pipe and `read --ticket-file t.txt` into a pipe, with no other flag (every
/// default: forward secrecy, no time limit, the ticket's relay).
#[test]
fn the_readme_ticket_lines_through_shell_pipes() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let shell = |script: &str| sb.shell(script);
    let payload = data(500_000, 17);
    std::fs::write(sb.home().join("export.tar"), &payload).unwrap();
    shell(&format!(
        "zebrastream ticket new --relay {} --path /hospital -o t.txt",
        relay.connect_url
    ))
    .finish()
    .expect_code(0);
    let reader = shell("zebrastream read --ticket-file t.txt | cat > received.tar");
    let writer = shell("cat export.tar | zebrastream write --ticket-file t.txt");
    let (w, r) = (writer.finish(), reader.finish());
    w.expect_code(0);
    r.expect_code(0);
    assert_eq!(
        std::fs::read(sb.home().join("received.tar")).unwrap(),
        payload
    );
}

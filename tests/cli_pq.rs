//! Hybrid post-quantum keys with the built binary: `keygen --pq`, `encrypt
//! -r age1pq1…` / `-R`, `decrypt -i`, `write -r` / `read -i` through a
//! relay, and age 1.3's refusal to mix post-quantum and classic recipients.

mod cli_support;
mod support;

use cli_support::{data, Finished, Proc, Sandbox, TestRelay};

fn run(sb: &Sandbox, args: &[&str], stdin: Option<Vec<u8>>) -> Finished {
    Proc::spawn(sb.cmd(args), stdin).finish()
}

/// `keygen [--pq] -o FILE`: the recipient printed on stdout.
fn keygen(sb: &Sandbox, extra: &[&str], file: &str) -> String {
    let out = sb
        .zs()
        .args(["keygen", "-o", file])
        .args(extra)
        .assert()
        .success();
    String::from_utf8(out.get_output().stdout.clone())
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn keygen_pq_writes_a_hybrid_identity_file_like_age_keygen() {
    let sb = Sandbox::new();
    let recipient = keygen(&sb, &["--pq"], "id.txt");
    // 1216 bytes of key in Bech32: age 1.3's 1,959 characters.
    assert!(recipient.starts_with("age1pq1"), "{recipient}");
    assert_eq!(recipient.len(), 1959);
    let file = std::fs::read_to_string(sb.home().join("id.txt")).unwrap();
    let lines: Vec<&str> = file.lines().collect();
    assert!(lines[0].starts_with("# created: "), "{file}");
    assert_eq!(lines[1], format!("# public key: {recipient}"));
    assert!(lines[2].starts_with("AGE-SECRET-KEY-PQ-1"), "{file}");
    assert_eq!(lines.len(), 3);
    // To stdout: the identity file, the recipient on stderr.
    let out = sb.zs().args(["keygen", "--pq"]).assert().success();
    let out = out.get_output();
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(text.contains("\nAGE-SECRET-KEY-PQ-1"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("Public key: age1pq1"));
}

#[test]
fn encrypt_to_a_hybrid_recipient_and_decrypt_with_its_identity_in_both_formats() {
    let sb = Sandbox::new();
    let recipient = keygen(&sb, &["--pq"], "id.txt");
    let second = keygen(&sb, &["--pq"], "second.txt");
    sb.file(
        "recipients.txt",
        format!("# two post-quantum recipients\n{recipient}\n{second}\n").as_bytes(),
    );
    let plain = data(200_000, 71);
    for format in ["age-rt", "age"] {
        for keys in [
            &["-r", recipient.as_str()][..],
            &["-R", "recipients.txt"][..],
        ] {
            let args = [&["encrypt", "--format", format][..], keys].concat();
            let c = run(&sb, &args, Some(plain.clone()));
            c.expect_code(0);
            // One stanza is about 1.6 KB of header.
            let stanzas = c
                .stdout
                .windows(17)
                .filter(|w| w == b"-> mlkem768x25519")
                .count();
            let expected = if keys[0] == "-R" { 2 } else { 1 };
            assert_eq!(stanzas, expected, "{format} {keys:?}");
            for id in ["id.txt", "second.txt"] {
                if keys[0] == "-r" && id == "second.txt" {
                    continue;
                }
                let p = run(&sb, &["decrypt", "-i", id], Some(c.stdout.clone()));
                p.expect_code(0);
                assert_eq!(p.stdout, plain, "{format} {keys:?} {id}");
            }
        }
    }
    // A classic identity does not open a post-quantum file: exit 8.
    keygen(&sb, &[], "classic.txt");
    let c = run(&sb, &["encrypt", "-r", &recipient], Some(plain));
    c.expect_code(0);
    let wrong = run(&sb, &["decrypt", "-i", "classic.txt"], Some(c.stdout));
    wrong.expect_code(8);
    assert!(
        wrong.stderr.contains("no identity matched"),
        "{}",
        wrong.stderr
    );
}

/// age 1.3 refuses a header with a post-quantum and a classic recipient (a
/// quantum attacker would read the file through the classic stanza); so do
/// we, naming the cause, and nothing is written.
#[test]
fn mixing_hybrid_and_classic_recipients_is_refused_naming_the_cause() {
    let sb = Sandbox::new();
    let pq = keygen(&sb, &["--pq"], "pq.txt");
    let classic = keygen(&sb, &[], "classic.txt");
    for order in [[&pq, &classic], [&classic, &pq]] {
        let out = run(
            &sb,
            &["encrypt", "-r", order[0], "-r", order[1], "-o", "out.age"],
            Some(b"secret".to_vec()),
        );
        out.expect_code(2);
        assert!(
            out.stderr
                .contains("can't mix post-quantum (age1pq1…, age1tagpq1…"),
            "{}",
            out.stderr
        );
        assert!(!sb.home().join("out.age").exists());
    }
    // A damaged recipient names the key type and the problem.
    let out = run(
        &sb,
        &["encrypt", "-r", &pq[..pq.len() - 1]],
        Some(b"secret".to_vec()),
    );
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("not a valid age1pq1… hybrid recipient (invalid Bech32 encoding)"),
        "{}",
        out.stderr
    );
}

#[test]
fn write_and_read_through_a_relay_with_a_hybrid_key() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let recipient = keygen(&sb, &["--pq"], "id.txt");
    let payload = data(300_000, 72);
    for format in ["age-rt", "age"] {
        let path = format!("/t/pq-{format}");
        let (w, r) = sb.transfer(
            &relay,
            &path,
            &["--format", format, "-r", &recipient],
            &["-i", "id.txt"],
            &payload,
        );
        w.expect_code(0);
        r.expect_code(0);
        assert_eq!(r.stdout, payload, "{format}");
    }
}

/// A ticket's stanza is symmetric (quantum-safe), so `write --ticket
/// --no-forward-secrecy` adds hybrid recipients as it adds X25519 ones; the
/// hybrid recipient opens the recorded stream alone. Hybrid and X25519
/// together beside the ticket are refused for what they are (not with the
/// scrypt message), and a passphrase beside a ticket keeps its own reason.
#[test]
fn a_ticket_combines_with_hybrid_recipients_and_refusals_name_the_real_cause() {
    use std::sync::Arc;
    use zebrastream::relay::{CaptureTap, RelayConfig};
    let sb = Sandbox::new();
    let tap = Arc::new(CaptureTap::new(1 << 20));
    let relay = TestRelay::with(RelayConfig::open_loopback().tap(tap.clone()));
    let new = run(
        &sb,
        &[
            "ticket",
            "new",
            "--relay",
            &relay.connect_url,
            "--path",
            "/pq",
            "-o",
            "t.txt",
        ],
        None,
    );
    new.expect_code(0);
    let pq = keygen(&sb, &["--pq"], "pq.txt");
    let classic = keygen(&sb, &[], "classic.txt");
    let payload = data(80_000, 23);
    let ticket = ["--ticket-file", "t.txt", "--no-forward-secrecy", "-t", "30"];
    let reader = sb.spawn(&[&["read"][..], &ticket].concat(), None);
    let writer = sb.spawn(
        &[&["write"][..], &ticket, &["-r", &pq]].concat(),
        Some(payload.clone()),
    );
    let (w, r) = (writer.finish(), reader.finish());
    w.expect_code(0);
    r.expect_code(0);
    assert!(r.stdout == payload, "the ticket holder reads the stream");
    let shown = run(&sb, &["ticket", "show", "--ticket-file", "t.txt"], None);
    let text = String::from_utf8(shown.stdout).unwrap();
    let path = text
        .lines()
        .find_map(|l| l.strip_prefix("stream path:"))
        .unwrap()
        .trim();
    let recorded = tap.bytes(path);
    assert_eq!(
        recorded
            .windows(17)
            .filter(|w| w == b"-> mlkem768x25519")
            .count(),
        1
    );
    let d = run(&sb, &["decrypt", "-i", "pq.txt"], Some(recorded));
    d.expect_code(0);
    assert!(
        d.stdout == payload,
        "the hybrid recipient opens the recording"
    );
    // Hybrid and classic beside the ticket: the post-quantum rule, named.
    let mixed = run(
        &sb,
        &[&["write"][..], &ticket, &["-r", &pq, "-r", &classic]].concat(),
        Some(b"x".to_vec()),
    );
    mixed.expect_code(2);
    assert!(
        mixed.stderr.contains("can't mix post-quantum"),
        "{}",
        mixed.stderr
    );
    assert!(!mixed.stderr.contains("scrypt"), "{}", mixed.stderr);
    sb.file("pw.txt", b"a passphrase\n");
    let with_passphrase = run(
        &sb,
        &[&["write"][..], &ticket, &["--passphrase-file", "pw.txt"]].concat(),
        Some(b"x".to_vec()),
    );
    with_passphrase.expect_code(2);
    assert!(
        with_passphrase
            .stderr
            .contains("a ticket cannot be combined with a passphrase"),
        "{}",
        with_passphrase.stderr
    );
}

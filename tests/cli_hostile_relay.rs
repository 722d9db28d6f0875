//! The CLI against a hostile relay (issue 15, items 1, 4, 9 and 12): each
//! test performs the attack with the real binary and
//! `tests/support/hostile_relay.rs`, and checks what the user gets.
//!
//! - plaintext injected into a `read` that has no key (or the wrong kind);
//! - a Connect answer that points the client, and its token, at another origin;
//! - a producer/consumer command that would see our secrets in its environment;
//! - an scrypt work factor chosen to make every passphrase attempt expensive.

mod cli_support;
mod support;

use cli_support::{Finished, Proc, Sandbox};
use secrecy::SecretString;
use support::hostile_relay::HostileRelay;
use zebrastream::cipher::{Encryptor, Format};

const INJECTED: &[u8] = b"pay 100 EUR to mallory\n";

/// Runs `zebrastream read -U <relay> -t 30 -s <path> ARGS…` with `env` added.
fn read(
    sb: &Sandbox,
    relay: &HostileRelay,
    path: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Finished {
    let url = relay.connect_url();
    let mut all = vec!["read", "-U", url.as_str(), "-t", "30", "-s", path];
    all.extend_from_slice(args);
    let mut cmd = sb.cmd(&all);
    cmd.envs(env.iter().copied());
    Proc::spawn(cmd, None).finish()
}

// ---- item 1: plaintext downgrade -------------------------------------------

#[test]
fn read_without_a_key_refuses_an_injected_plaintext_stream() {
    let sb = Sandbox::new();
    let relay = HostileRelay::start();
    relay.serve("/h/inject", INJECTED.to_vec());

    // stdout: exit 8, the reason, not one byte.
    let r = read(&sb, &relay, "/h/inject", &[], &[]);
    r.expect_code(8);
    assert!(
        r.stderr
            .contains("the stream is not encrypted; use --plain to accept it"),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout.is_empty(),
        "plaintext reached stdout: {:?}",
        r.stdout
    );

    // -o: no file appears.
    let r = read(&sb, &relay, "/h/inject", &["-o", "out.txt"], &[]);
    r.expect_code(8);
    assert!(!sb.home().join("out.txt").exists(), "-o file was created");

    // -- CMD: the consumer never sees a byte (it is not even started).
    let r = read(
        &sb,
        &relay,
        "/h/inject",
        &["--", "sh", "-c", "cat > consumed.txt"],
        &[],
    );
    r.expect_code(8);
    let consumed = std::fs::read(sb.home().join("consumed.txt")).unwrap_or_default();
    assert!(consumed.is_empty(), "the consumer got {consumed:?}");
}

#[test]
fn read_with_a_key_refuses_plaintext_before_the_consumer_gets_a_byte() {
    let sb = Sandbox::new();
    let relay = HostileRelay::start();
    relay.serve("/h/inject-key", INJECTED.to_vec());
    let r = read(
        &sb,
        &relay,
        "/h/inject-key",
        &["--", "sh", "-c", "cat > consumed.txt"],
        &[("ZEBRASTREAM_PASSPHRASE", "the real one")],
    );
    r.expect_code(8);
    assert!(r.stderr.contains("--plain"), "{}", r.stderr);
    // The relay's text is not even echoed in the error.
    assert!(!r.stderr.contains("mallory"), "{}", r.stderr);
    let consumed = std::fs::read(sb.home().join("consumed.txt")).unwrap_or_default();
    assert!(consumed.is_empty(), "the consumer got {consumed:?}");
}

#[test]
fn plaintext_is_accepted_only_when_chosen() {
    let sb = Sandbox::new();
    let relay = HostileRelay::start();
    relay.serve("/h/plain", INJECTED.to_vec());
    let r = read(&sb, &relay, "/h/plain", &["--plain"], &[]);
    r.expect_code(0);
    assert_eq!(r.stdout, INJECTED);
    // The same choice from the config.
    sb.write_global_config("plain: true\n");
    let r = read(&sb, &relay, "/h/plain", &[], &[]);
    r.expect_code(0);
    assert_eq!(r.stdout, INJECTED);
}

// ---- item 4: the token goes only to the connect URL's origin ---------------

const TOKEN: &str = "s3cret-token";

/// The Connect answer of `relay` points at `elsewhere` (another port).
fn redirected() -> (HostileRelay, HostileRelay) {
    let relay = HostileRelay::start();
    let elsewhere = HostileRelay::start();
    relay.answer_connect_with(Some(format!("{}/data/h/away", elsewhere.origin())));
    elsewhere.serve("/h/away", INJECTED.to_vec());
    (relay, elsewhere)
}

#[test]
fn a_data_url_on_another_origin_is_refused_before_anything_is_sent() {
    let sb = Sandbox::new();
    let (relay, elsewhere) = redirected();
    let token = [("ZEBRASTREAM_ACCESS_TOKEN", TOKEN)];

    let r = read(&sb, &relay, "/h/away", &["--plain"], &token);
    r.expect_code(1);
    for needle in [
        elsewhere.origin(),
        relay.origin(),
        String::from("--token-origins"),
    ] {
        assert!(r.stderr.contains(&needle), "no {needle:?} in {}", r.stderr);
    }
    assert!(r.stdout.is_empty());

    // The writer too: not one request, so neither the token nor the stream.
    let mut cmd = sb.cmd(&[
        "write",
        "--plain",
        "-U",
        &relay.connect_url(),
        "-t",
        "30",
        "-s",
        "/h/away",
    ]);
    cmd.env("ZEBRASTREAM_ACCESS_TOKEN", TOKEN);
    let w = Proc::spawn(cmd, Some(b"secret payload".to_vec())).finish();
    w.expect_code(1);
    assert!(w.stderr.contains("--token-origins"), "{}", w.stderr);

    assert!(
        elsewhere.seen().is_empty(),
        "the foreign origin saw {:?}",
        elsewhere.seen()
    );
    // The relay itself got the Connect calls, with the token (it is ours).
    assert!(relay
        .seen()
        .iter()
        .all(|s| s.authorization.as_deref() == Some("Bearer s3cret-token")));
}

#[test]
fn a_listed_token_origin_is_trusted() {
    let sb = Sandbox::new();
    let (relay, elsewhere) = redirected();
    let listed = elsewhere.origin();
    let token = [("ZEBRASTREAM_ACCESS_TOKEN", TOKEN)];
    let r = read(
        &sb,
        &relay,
        "/h/away",
        &["--plain", "--token-origins", &listed],
        &token,
    );
    r.expect_code(0);
    assert_eq!(r.stdout, INJECTED);
    let seen = elsewhere.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].method, "GET");
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some("Bearer s3cret-token")
    );

    // The same from the environment, in a comma list.
    let env = [
        ("ZEBRASTREAM_ACCESS_TOKEN", TOKEN),
        (
            "ZEBRASTREAM_TOKEN_ORIGINS",
            &*format!("https://unrelated.example,{listed}"),
        ),
    ];
    let r = read(&sb, &relay, "/h/away", &["--plain"], &env);
    r.expect_code(0);
    assert_eq!(r.stdout, INJECTED);
}

// ---- item 9: secrets stay out of the producer's and consumer's environment --

/// The variables (and values) a child must never see.
const SECRETS: &[(&str, &str)] = &[
    ("ZEBRASTREAM_PASSPHRASE", "passphrase-value-1"),
    ("ZEBRASTREAM_ACCESS_TOKEN", "token-value-2"),
    ("ZEBRASTREAM_Access_Token", "mixed-case-value-3"),
];

fn assert_no_secrets(env_output: &str) {
    for (name, value) in SECRETS {
        assert!(
            !env_output.contains(value),
            "{name} reached the child:\n{env_output}"
        );
    }
    assert!(
        env_output.contains("UNRELATED_VARIABLE=passes"),
        "an ordinary variable was dropped:\n{env_output}"
    );
}

#[test]
fn a_producer_command_does_not_see_our_secrets() {
    let sb = Sandbox::new();
    let relay = HostileRelay::start();
    let mut cmd = sb.cmd(&[
        "write",
        "--plain",
        "-U",
        &relay.connect_url(),
        "-t",
        "30",
        "-s",
        "/h/env",
        "--",
        "env",
    ]);
    cmd.envs(SECRETS.iter().copied())
        .env("UNRELATED_VARIABLE", "passes");
    Proc::spawn(cmd, None).finish().expect_code(0);
    // The relay recorded what the producer printed: its environment.
    let body = relay.wait_recorded("/h/env");
    assert_no_secrets(&String::from_utf8_lossy(&body));
}

#[test]
fn a_consumer_command_does_not_see_our_secrets_nor_either_side_the_ticket() {
    let sb = Sandbox::new();
    let relay = HostileRelay::start();
    relay.serve("/h/env", INJECTED.to_vec());
    // The consumer's stdout is ours: it prints its environment there.
    let r = read(
        &sb,
        &relay,
        "/h/env",
        &["--plain", "--", "sh", "-c", "cat >/dev/null; env"],
        &[SECRETS, &[("UNRELATED_VARIABLE", "passes")]].concat(),
    );
    r.expect_code(0);
    assert_no_secrets(&String::from_utf8_lossy(&r.stdout));

    // A ticket in the environment of both sides, through the relay as a
    // store-and-forward relay: the producer prints its environment into the
    // stream, the consumer passes it on and then prints its own.
    let t = sb.spawn(
        &[
            "ticket",
            "new",
            "--relay",
            &relay.connect_url(),
            "--path",
            "/h",
            "-o",
            "t.txt",
        ],
        None,
    );
    t.finish().expect_code(0);
    let ticket = std::fs::read_to_string(sb.home().join("t.txt")).unwrap();
    let ticket = ticket.lines().next().unwrap().to_owned();
    let side = |args: &[&str]| {
        let mut cmd = sb.cmd(args);
        cmd.env("ZEBRASTREAM_TICKET", &ticket)
            .env("UNRELATED_VARIABLE", "passes");
        Proc::spawn(cmd, None)
    };
    let writer = side(&["write", "-t", "30", "--", "env"]);
    let reader = side(&["read", "-t", "30", "--", "sh", "-c", "cat; env"]);
    writer.finish().expect_code(0);
    let r = reader.finish();
    r.expect_code(0);
    let printed = String::from_utf8_lossy(&r.stdout);
    assert_eq!(
        printed.matches("UNRELATED_VARIABLE=passes").count(),
        2,
        "both children ran: {printed}"
    );
    assert!(!printed.contains(&ticket), "the ticket reached a child");
}

// ---- item 12: a costly scrypt work factor --------------------------------------

const PASSPHRASE: &str = "work factor test";

/// A passphrase stream with scrypt work factor 2^`log_n` (built through the
/// public API: an `age` scrypt recipient with its work factor set).
fn costly_stream(log_n: u8, plaintext: &[u8]) -> Vec<u8> {
    let mut recipient = age::scrypt::Recipient::new(SecretString::from(PASSPHRASE));
    recipient.set_work_factor(log_n);
    Encryptor::with_recipients(Format::AgeRt, vec![Box::new(recipient)])
        .unwrap()
        .encrypt_all(plaintext)
        .unwrap()
}

#[test]
fn read_refuses_a_work_factor_above_2_18_unless_raised() {
    let sb = Sandbox::new();
    let relay = HostileRelay::start();
    let stream = costly_stream(19, INJECTED);
    relay.serve("/h/scrypt", stream.clone());
    let key = [("ZEBRASTREAM_PASSPHRASE", PASSPHRASE)];

    let r = read(&sb, &relay, "/h/scrypt", &[], &key);
    r.expect_code(8);
    assert!(
        r.stderr.contains("2^19") && r.stderr.contains("--max-work-factor 19"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty());

    let r = read(&sb, &relay, "/h/scrypt", &["--max-work-factor", "19"], &key);
    r.expect_code(0);
    assert_eq!(r.stdout, INJECTED);

    // decrypt (files) keeps the cipher's limit, 2^20: the same stream opens.
    let file = sb.file("in.age", &stream);
    let mut cmd = sb.cmd(&["decrypt", file.to_str().unwrap()]);
    cmd.env("ZEBRASTREAM_PASSPHRASE", PASSPHRASE);
    let d = Proc::spawn(cmd, None).finish();
    d.expect_code(0);
    assert_eq!(d.stdout, INJECTED);
    // …and its flag lowers (or raises) it, named in the error.
    let mut cmd = sb.cmd(&["decrypt", "--max-work-factor", "18", file.to_str().unwrap()]);
    cmd.env("ZEBRASTREAM_PASSPHRASE", PASSPHRASE);
    let d = Proc::spawn(cmd, None).finish();
    d.expect_code(8);
    assert!(d.stderr.contains("--max-work-factor 19"), "{}", d.stderr);
}

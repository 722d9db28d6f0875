//! Attacks on ticket and forward-secret transfers through the real binary:
//! a hostile relay (tests/support/hostile_relay.rs) records Monday's
//! transfer and replays it, replays the key exchange into a later session,
//! serves exchange messages where data belongs, swaps or drops them; a
//! stranger without the ticket writes to the reader's X25519 key; one side
//! skips forward secrecy. Every one must fail with the right exit code.

mod cli_support;
mod support;

use std::time::{Duration, Instant};

use cli_support::{data, Finished, Sandbox, TestRelay};
use support::hostile_relay::HostileRelay;
use zebrastream::forward_secrecy::{KEY_SIDE_PATH, OFFER_SIDE_PATH};
use zebrastream::protocol::side_path;

/// A ticket for `connect_url` under `/bank`, written to the sandbox.
fn new_ticket(sb: &Sandbox, connect_url: &str) -> (String, String) {
    let path = sb.home().join("t.txt");
    sb.spawn(
        &[
            "ticket",
            "new",
            "--relay",
            connect_url,
            "--path",
            "/bank",
            "-o",
            path.to_str().unwrap(),
        ],
        None,
    )
    .finish()
    .expect_code(0);
    let shown = sb
        .spawn(
            &["ticket", "show", "--ticket-file", path.to_str().unwrap()],
            None,
        )
        .finish();
    shown.expect_code(0);
    let stream_path = String::from_utf8(shown.stdout)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("stream path:"))
        .unwrap()
        .trim()
        .to_owned();
    (path.to_str().unwrap().to_owned(), stream_path)
}

/// Writer and reader with the ticket and `extra` flags, concurrently.
fn ticket_transfer(
    sb: &Sandbox,
    ticket: &str,
    extra: &[&str],
    payload: &[u8],
) -> (Finished, Finished) {
    let mut r = vec!["read", "--ticket-file", ticket, "-t", "30"];
    r.extend_from_slice(extra);
    let mut w = vec!["write", "--ticket-file", ticket, "-t", "30"];
    w.extend_from_slice(extra);
    let reader = sb.spawn(&r, None);
    let writer = sb.spawn(&w, Some(payload.to_vec()));
    (writer.finish(), reader.finish())
}

fn as_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn data_puts(relay: &HostileRelay, stream_path: &str) -> usize {
    let target = format!("/data{stream_path}");
    relay
        .seen()
        .iter()
        .filter(|s| s.method == "PUT" && s.uri == target)
        .count()
}

#[test]
fn mondays_stream_replayed_to_tuesdays_reader_fails_with_exit_8() {
    let sb = Sandbox::new();
    let relay = HostileRelay::start();
    let (ticket, _) = new_ticket(&sb, &relay.connect_url());
    let monday = b"monday: pay 100 EUR to alice\n".to_vec();
    let (w, r) = ticket_transfer(&sb, &ticket, &[], &monday);
    w.expect_code(0);
    r.expect_code(0);
    assert_eq!(r.stdout, monday);

    // Tuesday: no writer; the relay replays Monday's offer and data stream.
    let tuesday = sb
        .spawn(&["read", "--ticket-file", &ticket, "-t", "20"], None)
        .finish();
    tuesday.expect_code(8);
    assert!(tuesday.stdout.is_empty(), "nothing of the replay is output");
    assert!(tuesday.stderr.contains("replay"), "{}", tuesday.stderr);
}

#[test]
fn a_replayed_key_message_makes_the_writer_stop_before_sending_data() {
    let sb = Sandbox::new();
    let relay = HostileRelay::start();
    let (ticket, stream_path) = new_ticket(&sb, &relay.connect_url());
    let (w, r) = ticket_transfer(&sb, &ticket, &[], b"monday\n");
    w.expect_code(0);
    r.expect_code(0);
    assert_eq!(data_puts(&relay, &stream_path), 1);

    // Tuesday: a writer alone; the relay answers its offer with Monday's key message.
    let tuesday = sb
        .spawn(
            &["write", "--ticket-file", &ticket, "-t", "20"],
            Some(b"tuesday: pay 900 EUR to alice\n".to_vec()),
        )
        .finish();
    tuesday.expect_code(8);
    assert!(
        tuesday.stderr.contains("refused the reader's key message"),
        "{}",
        tuesday.stderr
    );
    assert!(
        tuesday.stderr.contains("no data was sent"),
        "{}",
        tuesday.stderr
    );
    assert_eq!(data_puts(&relay, &stream_path), 1, "no data PUT on Tuesday");
}

#[test]
fn exchange_messages_served_as_data_or_swapped_are_refused() {
    let sb = Sandbox::new();
    let relay = HostileRelay::start();
    let (ticket, stream_path) = new_ticket(&sb, &relay.connect_url());
    let (w, r) = ticket_transfer(&sb, &ticket, &[], b"monday\n");
    w.expect_code(0);
    r.expect_code(0);
    let offer_path = side_path(&stream_path, OFFER_SIDE_PATH);
    let key_path = side_path(&stream_path, KEY_SIDE_PATH);
    let offer = relay.recorded(&offer_path).pop().unwrap();
    let key_message = relay.recorded(&key_path).pop().unwrap();

    // On the data path, to a plain ticket reader: never output as data.
    for message in [&offer, &key_message] {
        relay.serve(&stream_path, message.clone());
        let out = sb
            .spawn(
                &[
                    "read",
                    "--ticket-file",
                    &ticket,
                    "--no-forward-secrecy",
                    "-t",
                    "20",
                ],
                None,
            )
            .finish();
        out.expect_code(8);
        assert!(out.stdout.is_empty());
    }

    // Swapped: the key message as the offer (the reader publishes no key) …
    relay.serve(&offer_path, key_message);
    let keys_before = relay.recorded(&key_path).len();
    let out = sb
        .spawn(&["read", "--ticket-file", &ticket, "-t", "20"], None)
        .finish();
    out.expect_code(8);
    assert!(
        out.stderr.contains("refused the writer's offer"),
        "{}",
        out.stderr
    );
    assert_eq!(relay.recorded(&key_path).len(), keys_before);

    // … and the offer as the key message (the writer sends no data).
    relay.serve(&key_path, offer);
    let puts = data_puts(&relay, &stream_path);
    let out = sb
        .spawn(
            &["write", "--ticket-file", &ticket, "-t", "20"],
            Some(b"x".to_vec()),
        )
        .finish();
    out.expect_code(8);
    assert!(
        out.stderr.contains("refused the reader's key message"),
        "{}",
        out.stderr
    );
    assert_eq!(data_puts(&relay, &stream_path), puts);
}

#[test]
fn a_dropped_key_message_times_out_within_t_and_sends_nothing() {
    let sb = Sandbox::new();
    let relay = HostileRelay::start();
    let (ticket, stream_path) = new_ticket(&sb, &relay.connect_url());
    // The relay takes the offer and never delivers an answer.
    let started = Instant::now();
    let out = sb
        .spawn(
            &["write", "--ticket-file", &ticket, "-t", "2"],
            Some(b"x".to_vec()),
        )
        .finish();
    out.expect_code(4);
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
    assert!(
        out.stderr.contains("may not be using forward secrecy"),
        "{}",
        out.stderr
    );
    assert_eq!(data_puts(&relay, &stream_path), 0);
}

#[test]
fn ticket_reader_with_identity_refuses_a_stream_sealed_only_to_that_identity() {
    let sb = Sandbox::new();
    let relay = HostileRelay::start();
    let (ticket, stream_path) = new_ticket(&sb, &relay.connect_url());
    let key = sb.home().join("reader.key");
    let keygen = sb
        .spawn(&["keygen", "-o", key.to_str().unwrap()], None)
        .finish();
    keygen.expect_code(0);
    let recipient = String::from_utf8(keygen.stdout).unwrap().trim().to_owned();

    // A stranger without the ticket writes to the ticket's path (the relay
    // knows it) for the reader's public key.
    let forged = sb
        .spawn(
            &[
                "write",
                "-U",
                &relay.connect_url(),
                "-s",
                &stream_path,
                "-r",
                &recipient,
                "-t",
                "20",
            ],
            Some(b"pay 100 EUR to mallory\n".to_vec()),
        )
        .finish();
    forged.expect_code(0);
    let out = sb
        .spawn(
            &[
                "read",
                "--ticket-file",
                &ticket,
                "--no-forward-secrecy",
                "-i",
                key.to_str().unwrap(),
                "-t",
                "20",
            ],
            None,
        )
        .finish();
    out.expect_code(8);
    assert!(out.stdout.is_empty());
    assert!(
        out.stderr.contains("no stanza this ticket opens"),
        "{}",
        out.stderr
    );
}

#[test]
fn one_side_without_forward_secrecy_times_out_within_t_with_a_hint() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let (ticket, _) = new_ticket(&sb, &relay.connect_url);
    let started = Instant::now();
    let reader = sb.spawn(&["read", "--ticket-file", &ticket, "-t", "3"], None);
    let writer = sb.spawn(
        &[
            "write",
            "--ticket-file",
            &ticket,
            "--no-forward-secrecy",
            "-t",
            "3",
        ],
        Some(b"x".to_vec()),
    );
    let (w, r) = (writer.finish(), reader.finish());
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
    r.expect_code(4);
    assert!(
        r.stderr.contains("may not be using forward secrecy"),
        "{}",
        r.stderr
    );
    w.expect_code(4);
    assert!(
        w.stderr.contains("--no-forward-secrecy, or neither"),
        "{}",
        w.stderr
    );

    // The other way round, with a passphrase: only the writer opts in.
    let started = Instant::now();
    let common = [
        "-U",
        relay.connect_url.as_str(),
        "-s",
        "/bank/pw",
        "-t",
        "3",
        "-p",
        "pw",
    ];
    let mut r_args = vec!["read"];
    r_args.extend_from_slice(&common);
    let mut w_args = vec!["write", "--forward-secrecy"];
    w_args.extend_from_slice(&common);
    let reader = sb.spawn(&r_args, None);
    let writer = sb.spawn(&w_args, Some(b"x".to_vec()));
    let (w, r) = (writer.finish(), reader.finish());
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "{:?}",
        started.elapsed()
    );
    w.expect_code(4);
    assert!(
        w.stderr.contains("may not be using forward secrecy"),
        "{}",
        w.stderr
    );
    r.expect_code(4);
}

#[test]
fn passphrase_forward_secrecy_works_between_our_clients_and_defeats_replay() {
    let sb = Sandbox::new();
    let relay = HostileRelay::start();
    let payload = data(70_000, 3);
    let common = [
        "-U",
        &relay.connect_url(),
        "-s",
        "/team/fresh",
        "-t",
        "30",
        "-p",
        "pw",
    ]
    .map(str::to_owned);
    let args = |first: &str| {
        let mut v = vec![first.to_owned(), "--forward-secrecy".to_owned()];
        v.extend(common.iter().cloned());
        v
    };
    let (r_args, w_args) = (args("read"), args("write"));
    let reader = sb.spawn(&as_refs(&r_args), None);
    let writer = sb.spawn(&as_refs(&w_args), Some(payload.clone()));
    let (w, r) = (writer.finish(), reader.finish());
    w.expect_code(0);
    r.expect_code(0);
    assert_eq!(r.stdout, payload);
    let recorded = relay.recorded("/team/fresh").pop().unwrap();
    assert!(
        !String::from_utf8_lossy(&recorded[..200]).contains("scrypt"),
        "sealed to the one-time key, not the passphrase"
    );

    // The relay replays it: the next fresh reader refuses it.
    let replayed = sb.spawn(&as_refs(&r_args), None).finish();
    replayed.expect_code(8);
    assert!(replayed.stdout.is_empty());
}

#[test]
fn ticket_keys_beside_forward_secrecy_are_a_usage_error() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let (ticket, _) = new_ticket(&sb, &relay.connect_url);
    let key = sb.file("x.key", b"");
    for args in [
        vec![
            "read",
            "--ticket-file",
            &ticket,
            "-i",
            key.to_str().unwrap(),
        ],
        vec!["write", "--ticket-file", &ticket, "-r", "age1qqqq"],
        vec![
            "write",
            "--ticket-file",
            &ticket,
            "--forward-secrecy",
            "-r",
            "age1qqqq",
        ],
    ] {
        let out = sb.spawn(&args, Some(Vec::new())).finish();
        out.expect_code(2);
        assert!(
            out.stderr.contains("--no-forward-secrecy"),
            "{}",
            out.stderr
        );
    }
    for args in [
        vec!["write", "-s", "/x", "--forward-secrecy", "-r", "age1qqqq"],
        vec!["read", "-s", "/x", "--forward-secrecy"],
        vec![
            "write",
            "--ticket-file",
            &ticket,
            "--forward-secrecy",
            "--no-forward-secrecy",
        ],
    ] {
        let out = sb.spawn(&args, Some(Vec::new())).finish();
        out.expect_code(2);
    }
}

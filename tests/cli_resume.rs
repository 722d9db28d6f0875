//! Resume through the real binary: `write` and `read` with their defaults
//! (a ticket turns resume on), real pipes, a consumer command, and a TCP
//! proxy that breaks the reader's or the writer's connection once. The
//! writer's exit 0 means the reader committed the stream: a consumer
//! command that fails after reading everything makes the writer fail too.

mod cli_support;
mod support;

use cli_support::{data, Finished, Sandbox, TestRelay};
use support::fault_proxy::{Fault, FaultProxy};

const PASSPHRASE: &str = "resume over a broken link";

/// A fault proxy in front of the test relay, on a runtime of its own.
struct Proxy {
    rt: tokio::runtime::Runtime,
    proxy: Option<FaultProxy>,
    connect_url: String,
}

impl Proxy {
    fn once(relay: &TestRelay, fault: Fault) -> Proxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let upstream = relay
            .connect_url
            .trim_start_matches("http://")
            .trim_end_matches("/v0")
            .parse()
            .unwrap();
        let proxy = rt.block_on(FaultProxy::start_once(upstream, fault));
        let connect_url = format!("{}/v0", proxy.http_base());
        Proxy {
            rt,
            proxy: Some(proxy),
            connect_url,
        }
    }

    fn faults(&self) -> u64 {
        self.proxy.as_ref().unwrap().faults()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _guard = self.rt.enter();
        self.proxy.take();
    }
}

fn assert_resumed(side: &Finished) {
    assert!(
        side.stderr.contains("resumed on leg"),
        "no resume was logged:\n{}",
        side.stderr
    );
}

/// Tickets on both sides, nothing else: resume is on by default. The
/// reader's connection is reset after 3 MiB; stdin of unknown length
/// arrives byte for byte on stdout, both exit 0, both log the resume.
#[test]
fn a_ticket_transfer_resumes_after_the_readers_connection_is_reset() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let proxy = Proxy::once(&relay, Fault::ResetDownstreamAfter(3 << 20));
    let t = sb.new_ticket(&relay.connect_url, "t.txt");
    let t = t.to_str().unwrap();
    let payload = data(12 << 20, 18);
    let reader = sb.spawn(
        &[
            "read",
            "--ticket-file",
            t,
            "-U",
            &proxy.connect_url,
            "--stall-timeout",
            "2",
        ],
        None,
    );
    let writer = sb.spawn(&["write", "--ticket-file", t], Some(payload.clone()));
    let w = writer.finish();
    let r = reader.finish();
    r.expect_code(0);
    w.expect_code(0);
    assert_eq!(proxy.faults(), 1);
    assert!(
        r.stdout == payload,
        "{} of {} bytes",
        r.stdout.len(),
        payload.len()
    );
    assert_resumed(&r);
    assert_resumed(&w);
}

/// A passphrase with `--resume` on both sides, the writer's connection
/// stalls (no error, no bytes: a link down) after 1 MiB: the reader
/// resumes after the stall timeout into a consumer command, whose output
/// is complete; the writer exits 0 only after the receipt.
#[test]
fn a_stalled_writer_connection_resumes_into_a_consumer_command() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let proxy = Proxy::once(
        &relay,
        Fault::StallUpstream {
            after: 1 << 20,
            millis: 30_000,
        },
    );
    let out = sb.home().join("out.bin");
    let payload = data(6 << 20, 19);
    let common = [
        "-s",
        "/resume/stall",
        "-p",
        PASSPHRASE,
        "--resume",
        "-t",
        "30",
    ];
    let reader = sb.spawn(
        &[
            &["read", "-U", &relay.connect_url, "--stall-timeout", "2"][..],
            &common,
            &["--", "sh", "-c", &format!("cat > {}", out.display())],
        ]
        .concat(),
        None,
    );
    let writer = sb.spawn(
        &[&["write", "-U", &proxy.connect_url][..], &common].concat(),
        Some(payload.clone()),
    );
    let w = writer.finish();
    let r = reader.finish();
    r.expect_code(0);
    w.expect_code(0);
    assert_eq!(proxy.faults(), 1);
    assert!(std::fs::read(&out).unwrap() == payload);
    assert_resumed(&r);
}

/// End-to-end delivery: the consumer command reads the whole stream, then
/// fails. Without resume the relay's confirmation makes the writer exit 0;
/// with resume the reader gives the stream up and the writer fails at once
/// (well within its 30 s resume timeout), naming the cause.
#[test]
fn the_writer_fails_when_the_consumer_command_fails_after_reading_everything() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let payload = data(300_000, 20);
    let failing = ["--", "sh", "-c", "cat > /dev/null; exit 3"];
    // Today's behaviour without resume, for contrast.
    let (w, r) = sb.transfer(
        &relay,
        "/resume/off",
        &["-p", PASSPHRASE],
        &[&["-p", PASSPHRASE][..], &failing].concat(),
        &payload,
    );
    r.expect_code(7);
    w.expect_code(0);
    let with_resume = ["-p", PASSPHRASE, "--resume", "--resume-timeout", "30"];
    let started = std::time::Instant::now();
    let (w, r) = sb.transfer(
        &relay,
        "/resume/on",
        &with_resume,
        &[&with_resume[..], &failing].concat(),
        &payload,
    );
    r.expect_code(7);
    w.expect_code(5);
    assert!(
        w.stderr.contains("the reader gave the stream up") && w.stderr.contains("output failed"),
        "{}",
        w.stderr
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the writer waited out its resume timeout"
    );
}

/// The shell pipeline as a user types it (`producer | zebrastream write`,
/// `zebrastream read | consumer`, with `pipefail`), tickets and defaults,
/// the reader's connection reset after 5 MiB of a 24 MB stream from
/// `/dev/urandom` of unknown length: it resumes, both pipelines exit 0, and
/// the consumer's digest is the producer's.
#[test]
fn a_shell_pipeline_resumes_after_a_reset() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let proxy = Proxy::once(&relay, Fault::ResetDownstreamAfter(5 << 20));
    let t = sb.new_ticket(&relay.connect_url, "t.txt");
    let (t, home) = (t.to_str().unwrap(), sb.home().display().to_string());
    let reader = sb.shell(&format!(
        "zebrastream read --ticket-file {t} -U {} --stall-timeout 2 \
         | sha256sum | cut -d' ' -f1 > {home}/received.sha",
        proxy.connect_url
    ));
    let writer = sb.shell(&format!(
        "head -c 24000000 /dev/urandom | tee {home}/sent.bin | zebrastream write --ticket-file {t}"
    ));
    let (w, r) = (writer.finish(), reader.finish());
    w.expect_code(0);
    r.expect_code(0);
    assert_eq!(proxy.faults(), 1);
    assert_resumed(&r);
    assert_resumed(&w);
    let sent = std::process::Command::new("sha256sum")
        .arg(sb.home().join("sent.bin"))
        .output()
        .unwrap();
    let sent = String::from_utf8(sent.stdout).unwrap();
    let received = std::fs::read_to_string(sb.home().join("received.sha")).unwrap();
    assert_eq!(sent.split(' ').next().unwrap(), received.trim());
}

/// The producer command fails mid-stream: the writer gives the stream up
/// (exit 6) and, with resume, tells the reader, which fails at once as
/// truncated (exit 9, "the writer gave the stream up") instead of trying
/// to resume for its 30 s resume timeout; its consumer command's output is
/// never committed.
#[test]
fn a_failing_producer_command_fails_the_reader_at_once() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let out = sb.home().join("never.bin");
    let args = ["-p", PASSPHRASE, "--resume", "--resume-timeout", "30"];
    let started = std::time::Instant::now();
    let (w, r) = sb.transfer(
        &relay,
        "/resume/producer-fails",
        &[
            &args[..],
            &["--", "sh", "-c", "head -c 3000000 /dev/urandom; exit 3"],
        ]
        .concat(),
        &[&args[..], &["-o", out.to_str().unwrap()]].concat(),
        b"",
    );
    w.expect_code(6);
    r.expect_code(9);
    assert!(
        r.stderr.contains("the writer gave the stream up"),
        "{}",
        r.stderr
    );
    assert!(!out.exists(), "an incomplete stream was committed");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the reader tried to resume for {:?}",
        started.elapsed()
    );
}

/// A consumer command that takes longer to commit than the resume timeout
/// after its last byte (a `psql` restore building its indexes): the reader
/// keeps telling the writer it is alive, so the writer waits and exits 0
/// once the command succeeded, with the output complete.
#[test]
fn a_slow_commit_keeps_the_writer_waiting_for_the_receipt() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let payload = data(300_000, 22);
    let out = sb.home().join("committed.bin");
    let commit = format!("cat > {}.part; sleep 7; mv {0}.part {0}", out.display());
    let args = ["-p", PASSPHRASE, "--resume", "--resume-timeout", "2"];
    let started = std::time::Instant::now();
    let (w, r) = sb.transfer(
        &relay,
        "/resume/slow-commit",
        &args,
        &[&args[..], &["--", "sh", "-c", commit.as_str()]].concat(),
        &payload,
    );
    r.expect_code(0);
    w.expect_code(0);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(7),
        "the writer did not wait for the commit"
    );
    assert!(std::fs::read(&out).unwrap() == payload);
}

/// A reader killed (SIGKILL) while its consumer command still commits:
/// no receipt and no word from it, so the writer fails with "no receipt"
/// within its resume timeout of the reader's last sign of life.
#[test]
fn a_killed_reader_fails_the_writer_within_the_resume_timeout() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let payload = data(300_000, 23);
    let args = ["-p", PASSPHRASE, "--resume", "--resume-timeout", "3"];
    let common = [
        "-U",
        relay.connect_url.as_str(),
        "-t",
        "30",
        "-s",
        "/resume/killed",
    ];
    let mut read_args = vec!["read"];
    read_args.extend_from_slice(&common);
    read_args.extend_from_slice(&args);
    read_args.extend_from_slice(&["--", "sh", "-c", "cat > /dev/null; sleep 20"]);
    let mut reader = sb.spawn(&read_args, None);
    let mut write_args = vec!["write"];
    write_args.extend_from_slice(&common);
    write_args.extend_from_slice(&args);
    let writer = sb.spawn(&write_args, Some(payload));
    // The stream is through long before; the consumer still "commits".
    std::thread::sleep(std::time::Duration::from_secs(5));
    reader.kill();
    let killed = std::time::Instant::now();
    let w = writer.finish();
    w.expect_code(5);
    assert!(
        w.stderr.contains("no receipt from the reader"),
        "{}",
        w.stderr
    );
    assert!(
        killed.elapsed() < std::time::Duration::from_secs(15),
        "{:?} after the kill",
        killed.elapsed()
    );
}

/// `-o FILE` with resume: the receipt follows the rename, so when the
/// writer exits 0 the file is in place and complete.
#[test]
fn the_receipt_follows_the_output_file_into_place() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let payload = data(2 << 20, 21);
    let out = sb.home().join("received.bin");
    let args = ["-p", PASSPHRASE, "--resume"];
    let (w, r) = sb.transfer(
        &relay,
        "/resume/file",
        &args,
        &[&args[..], &["-o", out.to_str().unwrap()]].concat(),
        &payload,
    );
    r.expect_code(0);
    w.expect_code(0);
    assert!(std::fs::read(&out).unwrap() == payload);
}

/// Resume on one side only: the writer fails within -t naming the cause;
/// `--resume` with `--plain` is refused before connecting.
#[test]
fn resume_on_one_side_only_or_without_encryption_is_refused_with_the_reason() {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let payload = data(100_000, 22);
    let common = [
        "-U",
        &relay.connect_url,
        "-s",
        "/resume/one-side",
        "-p",
        PASSPHRASE,
        "-t",
        "3",
    ];
    let reader = sb.spawn(&[&["read"][..], &common].concat(), None);
    let writer = sb.spawn(
        &[&["write", "--resume"][..], &common].concat(),
        Some(payload.clone()),
    );
    let (w, r) = (writer.finish(), reader.finish());
    r.expect_code(0);
    assert!(r.stdout == payload);
    w.expect_code(4);
    assert!(w.stderr.contains("resume handshake"), "{}", w.stderr);
    assert!(w.stderr.contains("both ends"), "{}", w.stderr);
    let plain = sb
        .spawn(
            &[
                "write",
                "-U",
                &relay.connect_url,
                "-s",
                "/resume/plain",
                "--plain",
                "--resume",
            ],
            Some(b"x".to_vec()),
        )
        .finish();
    plain.expect_code(2);
    assert!(
        plain.stderr.contains("resume needs an encrypted stream"),
        "{}",
        plain.stderr
    );
}

/// The relay process is killed mid-stream and started again on the same
/// port: both sides reconnect (the relay refuses connections meanwhile)
/// and the stream completes byte for byte.
#[test]
fn the_relay_killed_and_restarted_on_the_same_port_mid_stream_resumes() {
    use cli_support::RelayProcess;
    let sb = Sandbox::new();
    let mut relay = RelayProcess::start(&sb);
    let url = relay.connect_url.clone();
    let listen = url
        .trim_start_matches("http://")
        .trim_end_matches("/v0")
        .to_owned();
    let out = sb.home().join("restart.bin");
    let payload = data(48 << 20, 23);
    let common = [
        "-U",
        url.as_str(),
        "-s",
        "/resume/restart",
        "-p",
        PASSPHRASE,
        "--resume",
        "--stall-timeout",
        "2",
        "-t",
        "30",
    ];
    let reader = sb.spawn(
        &[&["read"][..], &common, &["-o", out.to_str().unwrap()]].concat(),
        None,
    );
    // A producer command that yields 1 MiB every 50 ms, so the kill hits
    // mid-stream.
    let input = sb.file("restart.in", &payload);
    let producer = format!(
        "for i in $(seq 0 47); do dd if={} bs=1M skip=$i count=1 status=none; sleep 0.05; done",
        input.display()
    );
    let writer = sb.spawn(
        &[&["write"][..], &common, &["--", "sh", "-c", &producer]].concat(),
        None,
    );
    let part = || {
        std::fs::read_dir(sb.home())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
            .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
            .sum::<u64>()
    };
    let started = std::time::Instant::now();
    while part() < 8 << 20 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(60),
            "no progress"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    drop(relay);
    std::thread::sleep(std::time::Duration::from_secs(1));
    relay = RelayProcess::spawn(sb.cmd(&["relay", "--open", "--listen", &listen]));
    assert_eq!(relay.connect_url, url, "restarted on the same port");
    let (w, r) = (writer.finish(), reader.finish());
    r.expect_code(0);
    w.expect_code(0);
    assert!(std::fs::read(&out).unwrap() == payload);
    assert_resumed(&r);
    assert_resumed(&w);
}

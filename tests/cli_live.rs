//! `read` is live: every authenticated chunk reaches its stdout (or its
//! `-- CMD` child) while the writer is still running, not at the end.
//! Driven through the real binary with stdout a pipe, as in
//! `zebrastream read … | grep`.

mod cli_support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

use cli_support::{Sandbox, TestRelay};

/// How long a line may take to arrive: generous, this is about arrival, not speed.
const ARRIVAL: Duration = Duration::from_secs(30);

struct Live {
    writer: Child,
    reader: Child,
    lines: Receiver<String>,
}

impl Live {
    /// A reader (stdout piped to us, line by line) and a writer whose stdin we feed.
    fn start(sb: &Sandbox, relay: &TestRelay, path: &str, write: &[&str], read: &[&str]) -> Live {
        let common = ["-U", relay.connect_url.as_str(), "-t", "30", "-s", path];
        let mut r = sb.cmd(&[&["read"][..], &common, read].concat());
        r.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut reader = r.spawn().unwrap();
        let mut w = sb.cmd(&[&["write", "-d", "0"][..], &common, write].concat());
        w.stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let writer = w.spawn().unwrap();
        let (tx, lines) = channel();
        let stdout = reader.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Live {
            writer,
            reader,
            lines,
        }
    }

    /// Writes `line` to the writer and asserts the reader printed it while
    /// the writer is still running.
    fn line_arrives_live(&mut self, line: &str) {
        let stdin = self.writer.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
        let got = self
            .lines
            .recv_timeout(ARRIVAL)
            .unwrap_or_else(|_| panic!("`{line}` did not reach read's stdout within {ARRIVAL:?}"));
        assert_eq!(got, line);
        assert!(
            self.writer.try_wait().unwrap().is_none(),
            "the writer must still be running: the line arrived live, not at the end"
        );
    }

    /// Ends the writer's input; both exit 0.
    fn finish(mut self) {
        drop(self.writer.stdin.take());
        assert_eq!(self.writer.wait().unwrap().code(), Some(0), "writer");
        assert_eq!(self.reader.wait().unwrap().code(), Some(0), "reader");
        assert!(self.lines.recv_timeout(ARRIVAL).is_err(), "no extra output");
    }
}

fn ticks(write: &[&str], read: &[&str], path: &str) {
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let mut live = Live::start(&sb, &relay, path, write, read);
    for i in 1..=3 {
        live.line_arrives_live(&format!("tick {i}"));
    }
    live.finish();
}

#[test]
fn plain_read_prints_each_line_while_the_writer_runs() {
    ticks(&["--plain"], &["--plain"], "/live/plain");
}

#[test]
fn passphrase_read_prints_each_authenticated_chunk_while_the_writer_runs() {
    let pass = ["-p", "live test passphrase"];
    ticks(&pass, &pass, "/live/pass");
}

#[test]
fn unbuffered_read_is_live_too() {
    ticks(&["--plain"], &["--plain", "-u"], "/live/unbuffered");
}

#[test]
fn consumer_command_gets_each_line_while_the_writer_runs() {
    // `-- cat`: the child's stdout is the reader's, so a line there proves the
    // child received it.
    ticks(&["--plain"], &["--plain", "--", "cat"], "/live/child");
}

//! ASCII armor with the built binary: `encrypt -a` is read by `age` and
//! `rage`, their `-a` output by our `decrypt`; a damaged armor fails with
//! exit 8, a message that names the problem, and no output file.

mod cli_support;
mod support;

use cli_support::{data, Proc, Sandbox};

const BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----\n";

fn run(sb: &Sandbox, args: &[&str]) -> cli_support::Finished {
    Proc::spawn(sb.cmd(args), None).finish()
}

/// A keygen'd identity file `id.txt`; returns its recipient.
fn keygen(sb: &Sandbox) -> String {
    let out = sb.zs().args(["keygen", "-o", "id.txt"]).assert().success();
    String::from_utf8(out.get_output().stdout.clone())
        .unwrap()
        .trim()
        .to_owned()
}

/// `encrypt -a` of `plain.bin` to `recipient`, into `out`.
fn encrypt_armored(sb: &Sandbox, recipient: &str, out: &str) {
    run(
        sb,
        &["encrypt", "-a", "-r", recipient, "-o", out, "plain.bin"],
    )
    .expect_code(0);
}

/// Runs `age` or `rage` in the sandbox; it must succeed.
fn run_tool(sb: &Sandbox, tool: &std::path::Path, args: &[&str]) -> cli_support::Finished {
    let mut cmd = std::process::Command::new(tool);
    sb.apply(&mut cmd);
    cmd.args(args);
    let out = Proc::spawn(cmd, None).finish();
    out.expect_code(0);
    out
}

#[test]
fn age_and_rage_read_our_armor_and_we_read_theirs() {
    let sb = Sandbox::new();
    let recipient = keygen(&sb);
    // Empty, one short line, several chunks.
    for len in [0, 5, 200_000] {
        let plain = data(len, 45);
        sb.file("plain.bin", &plain);
        // -a alone selects the age format.
        encrypt_armored(&sb, &recipient, "ours.age");
        let text = std::fs::read(sb.home().join("ours.age")).unwrap();
        assert!(text.starts_with(BEGIN.as_bytes()), "{len}");
        assert!(text.ends_with(b"\n-----END AGE ENCRYPTED FILE-----\n"));
        assert!(text.is_ascii());
        // Our own decrypt detects it.
        let out = run(&sb, &["decrypt", "-i", "id.txt", "ours.age"]);
        out.expect_code(0);
        assert_eq!(out.stdout, plain, "decrypt ours, {len} bytes");
        for tool in ["age", "rage"] {
            let Some(path) = support::tool(tool) else {
                continue;
            };
            let out = run_tool(&sb, &path, &["-d", "-i", "id.txt", "ours.age"]);
            assert_eq!(out.stdout, plain, "{tool} -d, {len} bytes");
            let args = ["-a", "-r", &recipient, "-o", "theirs.age", "plain.bin"];
            run_tool(&sb, &path, &args);
            let theirs = std::fs::read(sb.home().join("theirs.age")).unwrap();
            assert!(theirs.starts_with(BEGIN.as_bytes()), "{tool} -a");
            let out = run(&sb, &["decrypt", "-i", "id.txt", "theirs.age"]);
            out.expect_code(0);
            assert_eq!(out.stdout, plain, "decrypt {tool} -a, {len} bytes");
        }
    }
}

#[test]
fn armor_is_refused_for_age_rt() {
    let sb = Sandbox::new();
    let recipient = keygen(&sb);
    sb.file("plain.bin", b"x");
    let out = run(
        &sb,
        &[
            "encrypt",
            "-a",
            "--format",
            "age-rt",
            "-r",
            &recipient,
            "-o",
            "c.age",
            "plain.bin",
        ],
    );
    out.expect_code(2);
    assert!(out.stderr.contains("age v1"), "{}", out.stderr);
    assert!(!sb.home().join("c.age").exists());
}

#[test]
fn damaged_armor_fails_with_exit_8_or_9_and_names_the_problem() {
    let sb = Sandbox::new();
    let recipient = keygen(&sb);
    sb.file("plain.bin", &data(1000, 46));
    encrypt_armored(&sb, &recipient, "good.age");
    let good = std::fs::read_to_string(sb.home().join("good.age")).unwrap();
    let mut lines: Vec<String> = good.lines().map(str::to_owned).collect();
    let last = lines.len() - 1;

    let mut bad_char = lines.clone();
    bad_char[2].replace_range(10..11, "*");
    let mut cut_end = lines.clone();
    cut_end[last].truncate(20);
    let mut joined = lines.clone();
    let second = joined.remove(3);
    joined[2].push_str(&second);
    let mut split = lines.clone();
    let tail = split[2].split_off(32);
    split.insert(3, tail);
    let mut trailing = lines.clone();
    trailing.push("garbage".into());
    lines.truncate(last);

    let cases = [
        (bad_char, "line 3 is not canonical padded base64"),
        (cut_end, "is not `-----END AGE ENCRYPTED FILE-----`"),
        (joined, "line 3 is longer than 64 columns"),
        (
            split,
            "line 4 is not `-----END AGE ENCRYPTED FILE-----` although the line before was shorter",
        ),
        (trailing, "data after the END line"),
    ];
    for (damaged, message) in cases {
        sb.file("bad.age", (damaged.join("\n") + "\n").as_bytes());
        let out = run(
            &sb,
            &["decrypt", "-i", "id.txt", "-o", "out.bin", "bad.age"],
        );
        out.expect_code(8);
        assert!(
            out.stderr.contains("invalid ASCII armor") && out.stderr.contains(message),
            "want {message:?}, got: {}",
            out.stderr
        );
        assert!(!sb.home().join("out.bin").exists(), "{message}");
    }
    // Cut off before the END line: a truncated file, exit 9 as for binary input.
    sb.file("cut.age", (lines.join("\n") + "\n").as_bytes());
    let out = run(
        &sb,
        &["decrypt", "-i", "id.txt", "-o", "out.bin", "cut.age"],
    );
    out.expect_code(9);
    assert!(
        out.stderr.contains("truncated") && out.stderr.contains("END AGE ENCRYPTED FILE"),
        "{}",
        out.stderr
    );
    assert!(!sb.home().join("out.bin").exists());
}

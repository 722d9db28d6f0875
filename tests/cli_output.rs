//! `-o PATH` through the built binary: what PATH names decides how it is
//! written. A regular file (or a new path) is replaced by rename and keeps
//! its mode and owner; a device or FIFO is written in place and stays what
//! it is; a symlink stays a link and its target gets the bytes; `-` is
//! stdout. (These tests run as root, as CI does: `mknod` and `chown` need it.)

mod cli_support;

use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use cli_support::{data, Finished, Proc, Sandbox, TestRelay};

/// A sandbox with an X25519 identity (`id.txt`) and `plain` encrypted to
/// it as `c.age`.
fn encrypted(plain: &[u8]) -> Sandbox {
    let sb = Sandbox::new();
    let out = sb.zs().args(["keygen", "-o", "id.txt"]).assert().success();
    let recipient = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    sb.file("plain.bin", plain);
    sb.zs()
        .args([
            "encrypt",
            "-r",
            recipient.trim(),
            "-o",
            "c.age",
            "plain.bin",
        ])
        .assert()
        .success();
    sb
}

fn decrypt_to(sb: &Sandbox, output: &Path, input: &str) -> Finished {
    let out = output.to_str().unwrap();
    Proc::spawn(sb.cmd(&["decrypt", "-i", "id.txt", "-o", out, input]), None).finish()
}

/// Runs a shell command that must succeed (mknod, mkfifo, chown...).
fn sh(script: &str, dir: &Path) {
    let status = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "`{script}` failed (these tests run as root)"
    );
}

fn assert_char_device_1_3(path: &Path) {
    let meta = std::fs::symlink_metadata(path).unwrap();
    assert!(
        meta.file_type().is_char_device(),
        "{} is no longer a character device",
        path.display()
    );
    assert_eq!(meta.rdev(), libc::makedev(1, 3), "still the null device");
}

/// `decrypt -o DEV` and `read -o DEV` write through a character device
/// (a private /dev/null) and leave it a character device, also when the
/// stream fails; before, the device was replaced by a regular 0600 file.
#[test]
fn a_character_device_is_written_in_place_and_stays_a_device() {
    let plain = data(200_000, 61);
    let sb = encrypted(&plain);
    sh("mknod null c 1 3", sb.home());
    let null = sb.home().join("null");

    decrypt_to(&sb, &null, "c.age").expect_code(0);
    assert_char_device_1_3(&null);

    // A truncated stream fails (exit 9) and the device is still a device.
    let cipher = std::fs::read(sb.home().join("c.age")).unwrap();
    sb.file("cut.age", &cipher[..cipher.len() - 100]);
    decrypt_to(&sb, &null, "cut.age").expect_code(9);
    assert_char_device_1_3(&null);

    // Through a relay: `read -o` takes the same path.
    let relay = TestRelay::open();
    let (w, r) = sb.transfer(
        &relay,
        "/out/dev",
        &["--plain"],
        &["--plain", "-o", null.to_str().unwrap()],
        &plain,
    );
    w.expect_code(0);
    r.expect_code(0);
    assert_char_device_1_3(&null);
    let leftovers: Vec<PathBuf> = std::fs::read_dir(sb.home())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".zebrastream-"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

/// A FIFO is written in place: its reader gets every byte, and it is still
/// a FIFO afterwards.
#[test]
fn a_fifo_feeds_its_reader_and_stays_a_fifo() {
    let plain = data(300_000, 62);
    let sb = encrypted(&plain);
    sh("mkfifo pipe", sb.home());
    let fifo = sb.home().join("pipe");
    // The reader: opening a FIFO for reading waits for a writer.
    let (tx, rx) = std::sync::mpsc::channel();
    let path = fifo.clone();
    std::thread::spawn(move || tx.send(std::fs::read(path).unwrap()));

    decrypt_to(&sb, &fifo, "c.age").expect_code(0);
    let meta = std::fs::symlink_metadata(&fifo).unwrap();
    assert!(meta.file_type().is_fifo(), "the FIFO was replaced");
    let got = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the FIFO's reader got its end of file");
    assert_eq!(got, plain);
}

/// Whether a thread of process `pid` waits in the kernel to open a FIFO.
fn waits_in_fifo_open(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        // The kernel function a FIFO open sleeps in (fs/pipe.c).
        std::fs::read_to_string(task.path().join("wchan"))
            .is_ok_and(|w| ["wait_for_partner", "fifo_open"].contains(&w.trim()))
    })
}

/// Opening a FIFO with no reader waits, as a shell redirection does, but
/// Ctrl-C still stops it (exit 130), and the FIFO is left alone.
#[test]
fn ctrl_c_stops_the_wait_for_a_fifo_reader() {
    let sb = encrypted(&data(1000, 66));
    sh("mkfifo pipe", sb.home());
    let decrypt = sb.spawn(&["decrypt", "-i", "id.txt", "-o", "pipe", "c.age"], None);
    let started = std::time::Instant::now();
    while !waits_in_fifo_open(decrypt.id()) {
        assert!(
            started.elapsed().as_secs() < 30,
            "never waited for the FIFO's reader"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    sh(&format!("kill -INT {}", decrypt.id()), sb.home());
    let out = decrypt.finish();
    out.expect_code(130);
    let meta = std::fs::symlink_metadata(sb.home().join("pipe")).unwrap();
    assert!(meta.file_type().is_fifo(), "the FIFO was replaced");
}

/// A symlink stays a link; its target gets the bytes and keeps its mode. A
/// dangling link makes its target appear.
#[test]
fn a_symlink_stays_a_link_and_its_target_is_replaced() {
    let plain = data(100_000, 63);
    let sb = encrypted(&plain);
    let home = sb.home();
    std::fs::create_dir(home.join("real")).unwrap();
    let target = sb.file("real/target.bin", b"old contents");
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink("real/target.bin", home.join("link")).unwrap();
    std::os::unix::fs::symlink("link", home.join("link2")).unwrap();

    decrypt_to(&sb, &home.join("link2"), "c.age").expect_code(0);
    for link in ["link", "link2"] {
        let meta = std::fs::symlink_metadata(home.join(link)).unwrap();
        assert!(meta.file_type().is_symlink(), "{link} is no longer a link");
    }
    assert_eq!(
        std::fs::read_link(home.join("link")).unwrap(),
        Path::new("real/target.bin")
    );
    assert_eq!(std::fs::read(&target).unwrap(), plain);
    let mode = std::fs::metadata(&target).unwrap().mode() & 0o7777;
    assert_eq!(mode, 0o640, "the target kept its mode");

    std::os::unix::fs::symlink("real/new.bin", home.join("dangling")).unwrap();
    decrypt_to(&sb, &home.join("dangling"), "c.age").expect_code(0);
    assert!(std::fs::symlink_metadata(home.join("dangling"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(home.join("real/new.bin")).unwrap(), plain);
}

/// Replacing an existing regular file keeps its mode (0644) and its owner
/// (before: a root-owned 0600 temp file took its place); a failed stream
/// leaves it untouched.
#[test]
fn a_replaced_regular_file_keeps_its_mode_and_owner() {
    let plain = data(100_000, 64);
    let sb = encrypted(&plain);
    let existing = sb.file("existing.bin", b"previous contents");
    std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o644)).unwrap();
    sh("chown 4242:4343 existing.bin", sb.home());

    decrypt_to(&sb, &existing, "c.age").expect_code(0);
    assert_eq!(std::fs::read(&existing).unwrap(), plain);
    let meta = std::fs::metadata(&existing).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o644, "mode kept");
    assert_eq!((meta.uid(), meta.gid()), (4242, 4343), "owner kept");

    let cipher = std::fs::read(sb.home().join("c.age")).unwrap();
    sb.file("cut.age", &cipher[..cipher.len() - 100]);
    decrypt_to(&sb, &existing, "cut.age").expect_code(9);
    assert_eq!(
        std::fs::read(&existing).unwrap(),
        plain,
        "untouched on failure"
    );

    // A new path is created (0600: it may hold decrypted data).
    let fresh = sb.home().join("fresh.bin");
    decrypt_to(&sb, &fresh, "c.age").expect_code(0);
    assert_eq!(std::fs::read(&fresh).unwrap(), plain);
    assert_eq!(std::fs::metadata(&fresh).unwrap().mode() & 0o7777, 0o600);
}

/// `-o -` is stdout, for `decrypt` and `read`; `./-` is a file named `-`.
#[test]
fn dash_is_stdout() {
    let plain = data(50_000, 65);
    let sb = encrypted(&plain);
    let out = decrypt_to(&sb, Path::new("-"), "c.age");
    out.expect_code(0);
    assert_eq!(out.stdout, plain);
    assert!(!sb.home().join("-").exists());

    let out = decrypt_to(&sb, Path::new("./-"), "c.age");
    out.expect_code(0);
    assert!(out.stdout.is_empty());
    assert_eq!(std::fs::read(sb.home().join("-")).unwrap(), plain);

    let relay = TestRelay::open();
    let (w, r) = sb.transfer(
        &relay,
        "/out/dash",
        &["--plain"],
        &["--plain", "-o", "-"],
        &plain,
    );
    w.expect_code(0);
    r.expect_code(0);
    assert_eq!(r.stdout, plain);
}

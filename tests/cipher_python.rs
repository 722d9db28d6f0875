//! Interop with the official Python `age-rt` 0.2.2 (the library
//! zebrastream-io 0.5.4 uses), both ways, through the venv's Python and
//! `tests/data/agert_interop.py`.
//!
//! Python encodes → we decode: many chunkings (empty non-final chunks, a
//! 65,536-byte final chunk, empty streams, > 256 chunks) and age v1 mode
//! including its empty final chunk after a full chunk. We encode → Python
//! decodes, the same shapes. Wrong passphrase and tampering are rejected on
//! both sides. scrypt runs at work factor 18 (what Python accepts), so the
//! number of streams is kept small.

mod support;

use std::io::Read;
use std::path::Path;
use std::process::Command;

use secrecy::SecretString;
use zebrastream::cipher::{
    DecryptingReader, Decryptor, EncryptingWriter, Encryptor, Error, Format,
};

const PASSPHRASE: &str = "correct horse battery staple";

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/agert_interop.py")
}

fn run_python(python: &Path, args: &[&str], passphrase: &str) {
    let status = Command::new(python)
        .arg(script())
        .args(args)
        .env("ZS_PASSPHRASE", passphrase)
        .status()
        .expect("run python");
    assert!(status.success(), "python helper failed: {args:?}");
}

/// Length of the header (through the MAC line's newline).
fn header_len(wire: &[u8]) -> usize {
    let mac = wire.windows(4).position(|w| w == b"\n---").unwrap() + 1;
    mac + wire[mac..].iter().position(|&b| b == b'\n').unwrap() + 1
}

/// Decrypts with the blocking adapter, feeding the reader in odd-sized reads.
fn rust_decrypt(wire: &[u8], passphrase: &str) -> Result<Vec<u8>, Error> {
    let dec = Decryptor::with_passphrase(SecretString::from(passphrase.to_owned()));
    let mut reader = DecryptingReader::new(wire, dec);
    let mut out = Vec::new();
    let mut buf = [0u8; 7777];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => {
                return Err(Error::from_io(&e)
                    .unwrap_or_else(|| panic!("untyped: {e}"))
                    .clone())
            }
        }
    }
}

#[test]
fn python_encodes_rust_decodes() {
    let Some(python) = support::python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cases = serde_json::json!([
        {"name": "rt_empty", "format": "age-rt", "chunks": [], "final": null},
        {"name": "rt_small", "format": "age-rt", "chunks": [5], "final": null},
        {"name": "rt_empty_nonfinal", "format": "age-rt", "chunks": [0, 0, 3, 0], "final": null},
        {"name": "rt_full_final", "format": "age-rt", "chunks": [100], "final": 65536},
        {"name": "rt_300_chunks", "format": "age-rt", "chunks": vec![7; 300], "final": 9},
        {"name": "rt_full_chunks", "format": "age-rt", "chunks": [65536, 65536, 1], "final": null},
        {"name": "rt_mixed", "format": "age-rt", "chunks": [1, 65535, 0, 4096, 65536], "final": 17},
        {"name": "age_empty", "format": "age", "chunks": [], "final": null},
        {"name": "age_full", "format": "age", "chunks": [65536], "final": null},
        {"name": "age_multi", "format": "age", "chunks": [200000], "final": null},
        {"name": "age_two_full", "format": "age", "chunks": [131072], "final": null},
    ]);
    std::fs::write(dir.path().join("cases.json"), cases.to_string()).unwrap();
    run_python(
        &python,
        &["encode", dir.path().to_str().unwrap()],
        PASSPHRASE,
    );

    for case in cases.as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let plain = std::fs::read(dir.path().join(format!("{name}.plain"))).unwrap();
        let wire = std::fs::read(dir.path().join(format!("{name}.enc"))).unwrap();
        let got = rust_decrypt(&wire, PASSPHRASE).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(got == plain, "{name}: plaintext differs");
    }

    // The deviation: 65,536 bytes in age mode end with an empty final chunk.
    let age_full = std::fs::read(dir.path().join("age_full.enc")).unwrap();
    assert_eq!(age_full.len(), header_len(&age_full) + 16 + 65552 + 16);

    // Tampering with the last byte of the final chunk's tag.
    let mut tampered = std::fs::read(dir.path().join("rt_small.enc")).unwrap();
    *tampered.last_mut().unwrap() ^= 1;
    assert_eq!(
        rust_decrypt(&tampered, PASSPHRASE),
        Err(Error::ChunkAuthentication { index: 1 })
    );
    // A cut stream is truncated, never complete.
    let small = std::fs::read(dir.path().join("rt_small.enc")).unwrap();
    assert_eq!(
        rust_decrypt(&small[..small.len() - 20], PASSPHRASE),
        Err(Error::Truncated)
    );
    // The wrong passphrase.
    assert_eq!(
        rust_decrypt(&small, "wrong"),
        Err(Error::NoMatchingIdentity)
    );
}

/// One stream we write: a format and a list of operations.
enum Op {
    Write(usize),
    Flush,
}

async fn rust_encrypt(format: Format, ops: &[Op], passphrase: &str) -> (Vec<u8>, Vec<u8>) {
    use tokio::io::AsyncWriteExt;
    let enc =
        Encryptor::with_passphrase(format, SecretString::from(passphrase.to_owned())).unwrap();
    let mut writer = EncryptingWriter::new(Vec::new(), enc);
    let mut plain = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Write(n) => {
                let data: Vec<u8> = (0..*n).map(|j| (i * 31 + j * 7) as u8).collect();
                writer.write_all(&data).await.unwrap();
                plain.extend_from_slice(&data);
            }
            Op::Flush => writer.flush().await.unwrap(),
        }
    }
    writer.shutdown().await.unwrap();
    (writer.into_inner(), plain)
}

#[tokio::test]
async fn rust_encodes_python_decodes() {
    let Some(python) = support::python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let many_flushes: Vec<Op> = (0..300).flat_map(|_| [Op::Write(3), Op::Flush]).collect();
    let cases: Vec<(&str, Format, Vec<Op>)> = vec![
        ("r_rt_empty", Format::AgeRt, vec![]),
        (
            "r_rt_flushes",
            Format::AgeRt,
            vec![
                Op::Write(5),
                Op::Flush,
                Op::Flush,
                Op::Write(70000),
                Op::Flush,
                Op::Write(3),
            ],
        ),
        ("r_rt_300", Format::AgeRt, many_flushes),
        ("r_rt_full_final", Format::AgeRt, vec![Op::Write(65536)]),
        ("r_age_empty", Format::AgeV1, vec![]),
        ("r_age_full", Format::AgeV1, vec![Op::Write(65536)]),
        (
            "r_age_multi",
            Format::AgeV1,
            vec![Op::Write(100000), Op::Flush, Op::Write(100000)],
        ),
    ];
    let mut names = Vec::new();
    let mut plains = Vec::new();
    for (name, format, ops) in &cases {
        let (wire, plain) = rust_encrypt(*format, ops, PASSPHRASE).await;
        std::fs::write(dir.path().join(format!("{name}.enc")), &wire).unwrap();
        names.push(name.to_string());
        plains.push(plain);
        if *name == "r_rt_flushes" {
            let mut tampered = wire.clone();
            let mid = tampered.len() - 40;
            tampered[mid] ^= 0x80;
            std::fs::write(dir.path().join("r_tampered.enc"), &tampered).unwrap();
        }
        if *name == "r_rt_full_final" {
            // Exactly one chunk: a 65,536-byte final chunk, no empty chunk after it.
            let payload = &wire[header_len(&wire) + 16..];
            assert_eq!(payload.len(), 4 + 65552);
            assert_eq!(payload[..4], 65552u32.to_be_bytes());
        }
    }
    let (wrong, _) = rust_encrypt(Format::AgeRt, &[Op::Write(10)], "another passphrase").await;
    std::fs::write(dir.path().join("r_wrong.enc"), &wrong).unwrap();

    let mut args = vec![
        "decode".to_string(),
        dir.path().to_str().unwrap().to_string(),
    ];
    args.extend(names.iter().cloned());
    args.push("r_tampered".into());
    args.push("r_wrong".into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_python(&python, &args, PASSPHRASE);

    for (name, plain) in names.iter().zip(&plains) {
        let err = dir.path().join(format!("{name}.err"));
        assert!(
            !err.exists(),
            "{name}: python failed: {}",
            std::fs::read_to_string(err).unwrap()
        );
        let got = std::fs::read(dir.path().join(format!("{name}.out"))).unwrap();
        assert!(&got == plain, "{name}: python decoded different bytes");
    }
    for name in ["r_tampered", "r_wrong"] {
        let err = std::fs::read_to_string(dir.path().join(format!("{name}.err")))
            .unwrap_or_else(|_| panic!("{name}: python accepted a bad stream"));
        assert_eq!(err, "ChunkAuthenticationError", "{name}");
        assert!(!dir.path().join(format!("{name}.out")).exists());
    }
}

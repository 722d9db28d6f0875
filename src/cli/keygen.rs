//! `zebrastream keygen`: generate an age X25519 identity (or with `--pq` a
//! hybrid post-quantum ML-KEM-768 + X25519 one, as `age-keygen -pq` does),
//! in the file format `age-keygen` writes, and print its recipient.

use std::io::Write;
use std::path::PathBuf;

use age::secrecy::ExposeSecret;
use clap::Args;

use super::{CmdResult, ExitKind, Failure};

/// Arguments of `zebrastream keygen`.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  zebrastream keygen -o partner.key      # prints age1… (give it to the producer)
  zebrastream keygen --pq -o partner.key # post-quantum: prints age1pq1… (1,959 characters)
  zebrastream write -s /trial-42 -r age1… < data.csv
  zebrastream read -s /trial-42 -i partner.key > data.csv")]
pub struct KeygenArgs {
    /// Write the identity to FILE (created with mode 0600; never overwritten)
    /// instead of stdout; the recipient is then printed on stdout
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// Generate a hybrid post-quantum key (ML-KEM-768 + X25519, age 1.3's
    /// `age1pq1…` recipient and `AGE-SECRET-KEY-PQ-1…` identity): a stream
    /// recorded today stays unreadable to a future quantum computer. All
    /// recipients of one stream must then be post-quantum
    #[arg(long = "pq")]
    pq: bool,
}

/// Generates a key and writes it out.
pub fn run(args: KeygenArgs) -> CmdResult {
    let (recipient, secret) = if args.pq {
        let identity = zebrastream::cipher::keys::HybridIdentity::generate();
        (identity.to_public().to_string(), identity.to_string())
    } else {
        let identity = age::x25519::Identity::generate();
        (identity.to_public().to_string(), identity.to_string())
    };
    let text = zeroize::Zeroizing::new(format!(
        "# created: {}\n# public key: {recipient}\n{}\n",
        rfc3339_now(),
        secret.expose_secret()
    ));
    match args.output {
        Some(path) => {
            write_new_private_file(&path, text.as_bytes())?;
            super::output::write_stdout_all(format!("{recipient}\n").as_bytes())
        }
        None => {
            super::output::write_stdout_all(text.as_bytes())?;
            // As age-keygen does: the recipient on stderr when the key goes to stdout.
            eprintln!("Public key: {recipient}");
            Ok(())
        }
    }
}

/// Creates `path` with mode 0600 and writes `bytes`; refuses to replace a file.
pub fn write_new_private_file(path: &std::path::Path, bytes: &[u8]) -> CmdResult {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            Failure::new(
                ExitKind::Usage,
                format!(
                    "{} already exists; refusing to overwrite a key file (choose another -o FILE)",
                    path.display()
                ),
            )
        } else {
            Failure::new(
                ExitKind::Other,
                format!("cannot create {}: {e}", path.display()),
            )
        }
    })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| {
            Failure::new(
                ExitKind::Other,
                format!("cannot write {}: {e}", path.display()),
            )
        })
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ` (age-keygen's `# created:` line).
fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339_utc(secs)
}

/// Formats seconds since the Unix epoch as an RFC 3339 UTC timestamp.
fn rfc3339_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_798_545_600 + 3_723), "2026-12-29T13:02:03Z");
    }

    #[test]
    fn key_file_is_private_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.txt");
        write_new_private_file(&path, b"secret\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let err = write_new_private_file(&path, b"other\n").unwrap_err();
        assert_eq!(err.kind, ExitKind::Usage);
        assert_eq!(std::fs::read(&path).unwrap(), b"secret\n");
    }
}

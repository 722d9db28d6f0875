//! `pg_dump` → zebrastream → `psql` with a real PostgreSQL server, in the
//! form the README shows first:
//!
//! ```sh
//! zebrastream write … -- pg_dump db
//! zebrastream read  … -- psql --single-transaction -v ON_ERROR_STOP=1 db
//! ```
//!
//! A complete transfer restores a database whose `pg_dump` is byte-identical
//! to the source's; a producer killed mid-dump commits nothing (write exits
//! 6, read 9, the target database stays empty).
//!
//! `scripts/setup.sh` installs PostgreSQL from Debian. The test starts its
//! own throw-away cluster (as the `postgres` user when run as root, since
//! `initdb` refuses root) on a Unix socket in a temp dir: no TCP port, no
//! system service.

mod cli_support;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cli_support::{Sandbox, TestRelay};

/// The directory with `initdb`, `pg_ctl`, `pg_dump`, `psql`, `pgbench`: the
/// newest `/usr/lib/postgresql/N/bin`. None (skip) when PostgreSQL is not
/// installed; a failure under `CI=true`.
fn pg_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => Some(bin),
        None if support::in_ci() => {
            panic!("PostgreSQL not found in /usr/lib/postgresql (run ./scripts/setup.sh)")
        }
        None => {
            eprintln!("SKIP: PostgreSQL not found in /usr/lib/postgresql (run ./scripts/setup.sh)");
            None
        }
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// A throw-away PostgreSQL cluster listening only on a Unix socket.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start(bin: PathBuf) -> Cluster {
        let dir = tempfile::Builder::new()
            .prefix("zs-pg-")
            .tempdir_in("/tmp")
            .unwrap();
        if is_root() {
            // The server runs as `postgres`: it needs the directory.
            let status = Command::new("chown")
                .args(["postgres:postgres", dir.path().to_str().unwrap()])
                .status()
                .unwrap();
            assert!(status.success(), "chown postgres");
        }
        let cluster = Cluster { bin, dir };
        let data = cluster.dir.path().join("data");
        cluster.as_server(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        let options = format!(
            "-k {} -c listen_addresses='' -c fsync=off -c synchronous_commit=off",
            cluster.dir.path().display()
        );
        let log = cluster.dir.path().join("server.log");
        cluster.as_server(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "start",
            ],
        );
        cluster
    }

    /// Runs a server program (as `postgres` when we are root); it must succeed.
    fn as_server(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let out = cmd.args(args).stdin(Stdio::null()).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Points a client command (`psql`, `pg_dump`, or our binary whose child
    /// runs them) at this cluster.
    fn client_env(&self, cmd: &mut Command) {
        cmd.env("PGHOST", self.dir.path())
            .env("PGPORT", "5432")
            .env("PGUSER", "postgres")
            .env("PATH", self.path_with_bin());
    }

    fn path_with_bin(&self) -> String {
        format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// A client program of the cluster; must succeed; returns its stdout.
    fn client(&self, program: &str, args: &[&str]) -> Vec<u8> {
        let mut cmd = Command::new(self.bin.join(program));
        self.client_env(&mut cmd);
        let out = cmd.args(args).stdin(Stdio::null()).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn sql(&self, db: &str, query: &str) -> String {
        let out = self.client(
            "psql",
            &["-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", query, db],
        );
        String::from_utf8(out).unwrap().trim().to_owned()
    }

    /// `pg_dump db`, for comparing: without the `\restrict KEY` /
    /// `\unrestrict KEY` lines, whose key is random on every run (PostgreSQL
    /// 15.14 and later).
    fn dump(&self, db: &str) -> Vec<u8> {
        let dump = self.client("pg_dump", &[db]);
        dump.split_inclusive(|&b| b == b'\n')
            .filter(|line| !line.starts_with(b"\\restrict ") && !line.starts_with(b"\\unrestrict "))
            .flatten()
            .copied()
            .collect()
    }

    /// A source database: pgbench at scale 1 (100,000 accounts) plus a table
    /// with Unicode, bytea and jsonb.
    fn create_source(&self, db: &str) {
        self.client("createdb", &[db]);
        self.client("pgbench", &["-i", "-s", "1", "-q", db]);
        self.sql(
            db,
            "CREATE TABLE extra (id int PRIMARY KEY, name text, blob bytea, doc jsonb);
             INSERT INTO extra
             SELECT i, 'Zürich ✓ 東京 ' || i, sha256(i::text::bytea) || '\\x00ff'::bytea,
                    jsonb_build_object('i', i, 'tags', jsonb_build_array('α', 'β', i % 7))
             FROM generate_series(1, 3000) AS i;",
        );
    }

    fn public_tables(&self, db: &str) -> u64 {
        self.sql(
            db,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
        )
        .parse()
        .unwrap()
    }

    /// Waits until a `COPY` into `db` is in progress (the restore is under way).
    fn wait_for_copy(&self, db: &str) {
        let query = format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND query ILIKE 'COPY %'"
        );
        let start = Instant::now();
        while self.sql("postgres", &query) == "0" {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no COPY into {db} started within 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let path = self.bin.join("pg_ctl");
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let _ = cmd
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn zs(sb: &Sandbox, cluster: &Cluster, args: &[&str]) -> Command {
    let mut cmd = sb.cmd(args);
    cluster.client_env(&mut cmd);
    cmd
}

fn common<'a>(relay: &'a TestRelay, path: &'a str, key: &'a Path) -> Vec<&'a str> {
    vec![
        "-U",
        relay.connect_url.as_str(),
        "-t",
        "60",
        "-s",
        path,
        "--passphrase-file",
        key.to_str().unwrap(),
    ]
}

const RESTORE: [&str; 5] = [
    "psql",
    "--single-transaction",
    "-v",
    "ON_ERROR_STOP=1",
    "-q",
];

#[test]
fn documented_form_restores_a_byte_identical_database_and_commits_nothing_when_the_dump_dies() {
    let Some(bin) = pg_bin() else { return };
    let cluster = Cluster::start(bin);
    cluster.create_source("src");
    let sb = Sandbox::new();
    let relay = TestRelay::open();
    let key = sb.file("key.txt", b"hospital to partner, pg test\n");

    // 1. The complete transfer: the restored database dumps byte-identical.
    cluster.client("createdb", &["full"]);
    let c = common(&relay, "/pg/full", &key);
    let read = zs(
        &sb,
        &cluster,
        &[&["read"][..], &c, &["--"], &RESTORE, &["full"]].concat(),
    );
    let write = zs(
        &sb,
        &cluster,
        &[&["write"][..], &c, &["--", "pg_dump", "src"]].concat(),
    );
    let reader = cli_support::Proc::spawn(read, None);
    let writer = cli_support::Proc::spawn(write, None);
    let (w, r) = (writer.finish(), reader.finish());
    w.expect_code(0);
    r.expect_code(0);
    let source_dump = cluster.dump("src");
    assert!(source_dump.len() > 5_000_000, "a dump of some size");
    let restored_dump = cluster.dump("full");
    if restored_dump != source_dump {
        let _ = std::fs::write("/tmp/zs-pg-source.sql", &source_dump);
        let _ = std::fs::write("/tmp/zs-pg-restored.sql", &restored_dump);
    }
    assert!(
        restored_dump == source_dump,
        "the restored database dumps byte-identical to the source (both dumps left in /tmp/zs-pg-*.sql)"
    );
    assert_eq!(
        cluster.sql("full", "SELECT count(*) FROM pgbench_accounts"),
        "100000"
    );

    // 2. The producer dies mid-dump: 4 MB of a ~13 MB dump went out, then the
    //    producer is killed. Nothing may be committed.
    cluster.client("createdb", &["cut"]);
    let pid_file = sb.home().join("producer.pid");
    let producer = format!(
        "echo $$ > {}; pg_dump src | head -c 4000000; exec sleep 600",
        pid_file.display()
    );
    let c = common(&relay, "/pg/cut", &key);
    let read = zs(
        &sb,
        &cluster,
        &[&["read"][..], &c, &["--"], &RESTORE, &["cut"]].concat(),
    );
    let write = zs(
        &sb,
        &cluster,
        &[&["write"][..], &c, &["--", "sh", "-c", &producer]].concat(),
    );
    let reader = cli_support::Proc::spawn(read, None);
    let writer = cli_support::Proc::spawn(write, None);
    cluster.wait_for_copy("cut");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let status = Command::new("kill")
        .args(["-KILL", pid.trim()])
        .status()
        .unwrap();
    assert!(status.success());
    let (w, r) = (writer.finish(), reader.finish());
    w.expect_code(6);
    r.expect_code(9);
    assert_eq!(
        cluster.public_tables("cut"),
        0,
        "a restore cut short must commit nothing"
    );
}

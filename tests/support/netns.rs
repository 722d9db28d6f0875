//! A real network path for tests: two network namespaces joined by a veth
//! pair, with faults a test can switch on and off (link down, a rate limit,
//! random packet loss).
//!
//! ```text
//!   namespace A                         namespace B
//!   zs0 10.77.X.1/30  <---- veth ---->  zs0 10.77.X.2/30
//!   (tbf, nft loss)                     (tbf, nft loss)
//! ```
//!
//! Everything lives inside the two namespaces: the veth pair is created in A
//! with its peer directly in B, so the host's interfaces, addresses and
//! routes are never touched, and the same interface name can be used by
//! every path. Namespace names are unique per path (`zsnet-PID-N-a`/`-b`),
//! as is the /30 subnet (`10.77.X.0/30`, X from the pid and a counter; since
//! the namespaces are isolated, a clash would be harmless anyway). Dropping
//! the [`NetPath`] (also while a test panics) kills what still runs inside
//! its namespaces and deletes them, which deletes the veth pair too.
//!
//! The tools are iproute2 (`ip netns`, `ip link`, `tc ... tbf`) and nftables
//! (a `numgen random` drop rule); the kernel's `netem` is not needed. All of
//! it needs root: [`available`] says whether the path can be built, and
//! panics under `CI=true` instead of letting the tests skip.
//!
//! The commands it runs, for reuse by hand (`$A`, `$B` the namespaces):
//!
//! ```text
//! ip netns add $A; ip netns add $B
//! ip -n $A link add zs0 type veth peer name zs0 netns $B
//! ip -n $A addr add 10.77.X.1/30 dev zs0; ip -n $B addr add 10.77.X.2/30 dev zs0
//! ip -n $A link set zs0 gso_max_size 1500 up; ip -n $B link set zs0 gso_max_size 1500 up   # and lo up
//! ip netns exec $B CMD...                                        # run_in
//! ip -n $B link set zs0 down / up                                # link_down / link_up
//! tc -n $A qdisc replace dev zs0 root tbf rate Nbps burst B latency 50ms   # rate_limit (both ends)
//! nft -f - <<< 'table netdev zsfault { chain loss { type filter hook ingress
//!     device "zs0" priority 0; policy accept; numgen random mod 100 < P counter drop; } }'
//!                                                                # drop_randomly (both ends)
//! ip netns pids $A | xargs kill -9; ip netns del $A              # drop
//! ```
#![allow(dead_code)]

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use super::in_ci;

/// The veth end's name in both namespaces.
const DEVICE: &str = "zs0";
/// The nftables table the loss rule lives in.
const FAULT_TABLE: &str = "zsfault";
/// The prefix of every namespace a [`NetPath`] creates.
const NAMESPACE_PREFIX: &str = "zsnet-";

/// One end of a [`NetPath`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Namespace A, address `10.77.X.1`.
    A,
    /// Namespace B, address `10.77.X.2`.
    B,
}

/// Both ends, for the methods that take a set of sides.
pub const BOTH: [Side; 2] = [Side::A, Side::B];

/// True when this process may build a [`NetPath`]: it runs as root and `ip`,
/// `tc` and `nft` work (checked once, by creating and deleting a namespace).
/// Otherwise prints why and returns false (the test skips), except under
/// `CI=true`, where it panics.
pub fn available() -> bool {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    match CHECKED.get_or_init(check) {
        Ok(()) => true,
        Err(why) if in_ci() => panic!("network-path tests cannot run: {why}"),
        Err(why) => {
            eprintln!("SKIP: network-path tests need root, iproute2 and nftables: {why}");
            false
        }
    }
}

fn check() -> Result<(), String> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(str::to_owned))
        })
        .ok_or("cannot read the effective uid from /proc/self/status")?;
    if uid != "0" {
        return Err(format!("not root (euid {uid})"));
    }
    for (tool, arg) in [("tc", "-V"), ("nft", "--version")] {
        Command::new(tool)
            .arg(arg)
            .output()
            .map_err(|e| format!("`{tool}` not runnable: {e} (run ./scripts/setup.sh)"))?;
    }
    remove_orphans();
    let probe = format!("{NAMESPACE_PREFIX}{}-probe", std::process::id());
    run(Command::new("ip").args(["netns", "add", &probe]))?;
    let _ = run(Command::new("ip").args(["netns", "del", &probe]));
    Ok(())
}

/// Deletes the namespaces of earlier test runs that were killed before their
/// `Drop` ran (their pid, in the name, no longer exists).
fn remove_orphans() {
    let Ok(list) = run(Command::new("ip").args(["netns", "list"])) else {
        return;
    };
    for name in list.lines().filter_map(|l| l.split_whitespace().next()) {
        let Some(pid) = name
            .strip_prefix(NAMESPACE_PREFIX)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !std::path::Path::new("/proc").join(pid).exists() {
            kill_all_in(name);
            let _ = run(Command::new("ip").args(["netns", "del", name]));
        }
    }
}

/// Runs a command to completion; its stdout, or an error with its stderr.
fn run(cmd: &mut Command) -> Result<String, String> {
    let out: Output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs a setup command; a failure is a test failure.
fn must(cmd: &mut Command) -> String {
    run(cmd).unwrap_or_else(|e| panic!("network path: {e}"))
}

/// `kill -9` every process still running inside namespace `name`.
fn kill_all_in(name: &str) {
    let Ok(pids) = run(Command::new("ip").args(["netns", "pids", name])) else {
        return;
    };
    for pid in pids.split_whitespace() {
        let _ = run(Command::new("kill").args(["-9", pid]));
    }
}

/// Two network namespaces joined by a veth pair, with switchable faults.
/// See the module documentation for the layout and the commands.
pub struct NetPath {
    namespaces: [String; 2],
    subnet: u8,
}

impl NetPath {
    /// Creates the namespaces, the veth pair and the addresses, and brings
    /// the link up. Call [`available`] first. Segmentation offload is capped
    /// at one MTU so that every packet on the link is a wire-sized one: the
    /// rate limit and the loss rule then act on real packets, not on 64 KiB
    /// super-packets.
    pub fn new() -> NetPath {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let path = NetPath {
            namespaces: [
                format!("{NAMESPACE_PREFIX}{pid}-{n}-a"),
                format!("{NAMESPACE_PREFIX}{pid}-{n}-b"),
            ],
            subnet: (pid.wrapping_mul(31).wrapping_add(n) % 256) as u8,
        };
        // From here on, Drop removes whatever was created.
        for ns in &path.namespaces {
            must(Command::new("ip").args(["netns", "add", ns]));
        }
        let [a, b] = &path.namespaces;
        must(Command::new("ip").args([
            "-n", a, "link", "add", DEVICE, "type", "veth", "peer", "name", DEVICE, "netns", b,
        ]));
        for side in BOTH {
            let ns = path.namespace(side);
            let cidr = format!("{}/30", path.addr(side));
            must(Command::new("ip").args(["-n", ns, "addr", "add", &cidr, "dev", DEVICE]));
            must(Command::new("ip").args(["-n", ns, "link", "set", "lo", "up"]));
            must(Command::new("ip").args([
                "-n",
                ns,
                "link",
                "set",
                DEVICE,
                "gso_max_size",
                "1500",
                "up",
            ]));
        }
        path
    }

    /// The namespace's name (for `ip netns exec NAME`).
    pub fn namespace(&self, side: Side) -> &str {
        &self.namespaces[side as usize]
    }

    /// The side's address on the veth link.
    pub fn addr(&self, side: Side) -> Ipv4Addr {
        Ipv4Addr::new(10, 77, self.subnet, side as u8 + 1)
    }

    /// `cmd`, to be run inside `side`'s namespace (`ip netns exec`). The
    /// program runs with the arguments, the working directory and only the
    /// environment variables `cmd` sets explicitly (plus `PATH` if `cmd`
    /// sets none): like `Sandbox::apply`, nothing of the test's own
    /// environment leaks in. `ip netns exec` execs the program, so the
    /// child's pid is the program's.
    pub fn run_in(&self, side: Side, cmd: &Command) -> Command {
        let mut wrapped = Command::new("ip");
        wrapped
            .args(["netns", "exec", self.namespace(side)])
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .env_clear();
        if cmd.get_envs().all(|(k, _)| k != "PATH") {
            wrapped.env("PATH", std::env::var_os("PATH").unwrap_or_default());
        }
        for (key, value) in cmd.get_envs() {
            match value {
                Some(v) => wrapped.env(key, v),
                None => wrapped.env_remove(key),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            wrapped.current_dir(dir);
        }
        wrapped
    }

    /// Takes the link down at `sides` (`ip link set zs0 down`): the end goes
    /// down and its route with it, the other end loses its carrier. Open TCP
    /// connections stay open; their packets go nowhere until [`link_up`].
    ///
    /// [`link_up`]: NetPath::link_up
    pub fn link_down(&self, sides: &[Side]) {
        self.set_link(sides, "down");
    }

    /// Brings the link back up at `sides` (the address routes return).
    pub fn link_up(&self, sides: &[Side]) {
        self.set_link(sides, "up");
    }

    fn set_link(&self, sides: &[Side], state: &str) {
        for &side in sides {
            must(Command::new("ip").args([
                "-n",
                self.namespace(side),
                "link",
                "set",
                DEVICE,
                state,
            ]));
        }
    }

    /// Limits what each end sends to `bytes_per_sec` (a token bucket,
    /// `tc qdisc replace ... tbf`, at both ends, so both directions).
    pub fn rate_limit(&self, bytes_per_sec: u64) {
        let rate = format!("{bytes_per_sec}bps");
        // At least one timer tick's worth of tokens (HZ may be 100), and
        // at least a few packets.
        let burst = (bytes_per_sec / 50).max(64 * 1024).to_string();
        for side in BOTH {
            must(Command::new("tc").args([
                "-n",
                self.namespace(side),
                "qdisc",
                "replace",
                "dev",
                DEVICE,
                "root",
                "tbf",
                "rate",
                &rate,
                "burst",
                &burst,
                "latency",
                "50ms",
            ]));
        }
    }

    /// Drops `percent` % of the packets each end receives, at random (an
    /// nftables `numgen random mod 100 < N` rule with a counter on the
    /// ingress hook of both ends, so both directions lose packets). A second
    /// call replaces the rule.
    pub fn drop_randomly(&self, percent: u8) {
        assert!(
            percent <= 100,
            "a loss rate is at most 100 %, not {percent}"
        );
        // Declare (a no-op if it exists), delete, define: one atomic script.
        let script = format!(
            "table netdev {FAULT_TABLE}\n\
             delete table netdev {FAULT_TABLE}\n\
             table netdev {FAULT_TABLE} {{\n\
             \tchain loss {{\n\
             \t\ttype filter hook ingress device \"{DEVICE}\" priority 0; policy accept;\n\
             \t\tnumgen random mod 100 < {percent} counter drop\n\
             \t}}\n\
             }}\n"
        );
        for side in BOTH {
            let ns = self.namespace(side);
            let mut nft = Command::new("ip");
            nft.args(["netns", "exec", ns, "nft", "-f", "-"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = nft.spawn().expect("spawn nft");
            child
                .stdin
                .take()
                .unwrap()
                .write_all(script.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "network path: nft in {ns} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// The packets the loss rule has matched (and so dropped) so far, at both
    /// ends together (its counters in `nft list ruleset`); 0 without a loss
    /// rule.
    pub fn dropped_packets(&self) -> u64 {
        BOTH.iter()
            .map(|&side| {
                let rules = must(Command::new("ip").args([
                    "netns",
                    "exec",
                    self.namespace(side),
                    "nft",
                    "list",
                    "ruleset",
                ]));
                counted_packets(&rules)
            })
            .sum()
    }

    /// TCP segments retransmitted so far in `side`'s namespace (`RetransSegs`
    /// of its `/proc/net/snmp`): evidence that packets were really lost, where
    /// the loss rule's counter only counts the packets it matched.
    pub fn tcp_retransmits(&self, side: Side) -> u64 {
        let snmp = must(Command::new("ip").args([
            "netns",
            "exec",
            self.namespace(side),
            "cat",
            "/proc/net/snmp",
        ]));
        let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
        let (names, values) = (tcp.next().unwrap_or(""), tcp.next().unwrap_or(""));
        names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(name, _)| *name == "RetransSegs")
            .and_then(|(_, value)| value.parse().ok())
            .expect("RetransSegs in /proc/net/snmp")
    }

    /// Removes every fault: both ends up, no rate limit, no loss rule.
    pub fn clear_faults(&self) {
        self.link_up(&BOTH);
        for side in BOTH {
            let ns = self.namespace(side);
            // Either may be absent already.
            let _ = run(Command::new("tc").args(["-n", ns, "qdisc", "del", "dev", DEVICE, "root"]));
            let _ = run(Command::new("ip").args([
                "netns",
                "exec",
                ns,
                "nft",
                "delete",
                "table",
                "netdev",
                FAULT_TABLE,
            ]));
        }
    }
}

/// The sum of the `counter packets N` of an `nft list ruleset` listing.
fn counted_packets(ruleset: &str) -> u64 {
    ruleset
        .split("counter packets ")
        .skip(1)
        .filter_map(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

impl Drop for NetPath {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            kill_all_in(ns);
            let _ = run(Command::new("ip").args(["netns", "del", ns]));
        }
    }
}

//! Measuring processes: CPU time and peak memory of children (from `wait4`)
//! and current memory of a running process (from `/proc`, Linux).

use std::process::{Child, Command, ExitStatus, Stdio};

use serde::Serialize;

/// What a finished process used.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Usage {
    /// User plus system CPU seconds.
    pub cpu_s: f64,
    /// Peak resident set size (`VmHWM`, `ru_maxrss`), KiB.
    pub peak_rss_kib: u64,
}

impl Usage {
    /// Peak RSS in MiB.
    pub fn rss_mib(&self) -> f64 {
        self.peak_rss_kib as f64 / 1024.0
    }
}

/// Waits for `child` with `wait4`, returning its exit status and what it used
/// (its own CPU time and peak RSS, plus those of any children it waited for,
/// e.g. the commands of a shell pipeline). Take the child's pipes before.
pub fn wait_with_usage(child: Child) -> (ExitStatus, Usage) {
    use std::os::unix::process::ExitStatusExt;
    let pid = child.id() as libc::pid_t;
    // `child` is reaped here; std's handle must not be waited on again.
    drop(child);
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers point to live, writable locals of the right type.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        assert_eq!(err.kind(), std::io::ErrorKind::Interrupted, "wait4: {err}");
    }
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        ExitStatus::from_raw(status),
        Usage {
            cpu_s: seconds(usage.ru_utime) + seconds(usage.ru_stime),
            peak_rss_kib: usage.ru_maxrss as u64,
        },
    )
}

/// Like [`wait_with_usage`], panicking unless the process exited successfully.
pub fn wait_ok(child: Child, what: &str) -> Usage {
    let (status, usage) = wait_with_usage(child);
    assert!(status.success(), "{what} failed: {status}");
    usage
}

/// A field (`VmRSS`, `VmHWM`, …) of `/proc/<pid>/status` in KiB; 0 if unreadable.
/// `pid` is a number or `self`.
pub fn status_kib(pid: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Current resident set size of process `pid`, KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(&pid.to_string(), "VmRSS")
}

/// User + system CPU seconds of process `pid` (a number or `self`) so far, from `/proc`.
pub fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // The command name may contain spaces: fields start after the last ')'.
    // utime and stime are fields 14 and 15 (1-based), i.e. 11 and 12 after the name.
    let ticks: u64 = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    ticks as f64 / per_second as f64
}

/// Raises this process's open-file soft limit to its hard limit (children
/// inherit it): a thousand stream pairs need a few thousand sockets.
pub fn raise_fd_limit() {
    // SAFETY: an all-zero rlimit is valid; getrlimit/setrlimit get a valid pointer.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Grows the pipe behind `fd` to 1 MiB (from the default 64 KiB), so
/// feeding or draining an external client through it takes fewer context
/// switches; best effort (the system maximum may be lower).
pub fn widen_pipe(fd: &impl std::os::fd::AsRawFd) {
    // SAFETY: F_SETPIPE_SZ on a valid descriptor only changes the pipe's capacity.
    unsafe {
        libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20);
    }
}

/// True when `tool -V` runs (curl, socat); prints a note otherwise.
pub fn have_tool(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !ok {
        println!("note: {tool} not found, its part is skipped");
    }
    ok
}

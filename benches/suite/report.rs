//! The suite's results: the table on stdout, the JSON file, the targets of
//! issue #8 and the plots.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::common::case::Outcome;
use crate::common::process::Usage;
use crate::latency::Latency;
use crate::plot::{draw, Line, Secondary};
use crate::swarm::StreamsPoint;

/// Case names (the targets look the cases up by them).
pub const SOCAT: &str = "1 socat forwarder (raw TCP copy)";
/// Our relay and client, plaintext.
pub const PLAIN: &str = "2 zebrastream relay + client, plain";
/// Our relay and client, encrypted.
pub const AGE_RT: &str = "2 zebrastream relay + client, age-rt";
/// Our relay with curl.
pub const CURL: &str = "3 zebrastream relay + curl";
/// The Python client through our relay, plaintext.
pub const PY_PLAIN: &str = "4 Python client via our relay, plain";
/// The Python client through our relay, encrypted.
pub const PY_AGE_RT: &str = "4 Python client via our relay, age-rt";
/// piping-server with curl.
pub const PIPING: &str = "5 piping-server + curl";

/// One point of the write-size sweep.
#[derive(Debug, Clone, Serialize)]
pub struct ChunkPoint {
    /// Bytes per write, KiB.
    pub write_kib: usize,
    /// age-rt (X25519) or plaintext.
    pub encrypted: bool,
    /// The transfer.
    pub outcome: Outcome,
}

/// The machine the suite ran on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPU model (`/proc/cpuinfo`).
    pub cpu: String,
    /// Cores available.
    pub cores: usize,
    /// Kernel release.
    pub kernel: String,
    /// Load averages (1, 5, 15 min) when the suite started.
    pub load_at_start: String,
    /// … and when it ended.
    pub load_at_end: String,
    /// When it ran (UTC).
    pub date: String,
}

impl Machine {
    fn now() -> Machine {
        let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
        let load = || {
            read("/proc/loadavg")
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        };
        Machine {
            cpu: read("/proc/cpuinfo")
                .lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
                .unwrap_or_default(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            load_at_start: load(),
            load_at_end: String::new(),
            date: Command::new("date")
                .args(["-u", "+%Y-%m-%d %H:%M UTC"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default(),
        }
    }
}

/// A target of issue #8 and whether this run met it.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// What is compared.
    pub name: String,
    /// The goal.
    pub goal: String,
    /// This run's value.
    pub value: String,
    /// Met?
    pub met: bool,
}

/// Everything one run measured.
#[derive(Debug, Serialize)]
pub struct Suite {
    /// Where.
    pub machine: Machine,
    /// The size knobs that were set.
    pub settings: Vec<(String, String)>,
    /// Cases 1–5.
    pub cases: Vec<Outcome>,
    /// Flush-to-deliver latency.
    pub latency: Vec<Latency>,
    /// Throughput vs write size.
    pub chunk_sizes: Vec<ChunkPoint>,
    /// Throughput and relay memory vs concurrent streams.
    pub streams: Vec<StreamsPoint>,
    /// The targets.
    pub targets: Vec<Target>,
}

impl Suite {
    /// An empty result, stamped with the machine and the settings.
    pub fn new() -> Suite {
        Suite {
            machine: Machine::now(),
            settings: std::env::vars()
                .filter(|(k, _)| k.starts_with("ZS_BENCH_"))
                .collect(),
            cases: Vec::new(),
            latency: Vec::new(),
            chunk_sizes: Vec::new(),
            streams: Vec::new(),
            targets: Vec::new(),
        }
    }

    fn case(&self, name: &str) -> Option<&Outcome> {
        self.cases.iter().find(|c| c.name == name)
    }

    /// Fills in the load at the end and the targets.
    fn conclude(&mut self) {
        self.machine.load_at_end = Machine::now().load_at_start;
        let mut targets = Vec::new();
        let ratio = |a: &str, b: &str| Some(self.case(a)?.mb_per_s / self.case(b)?.mb_per_s);
        let mut at_least = |name: &str, value: Option<f64>, goal: f64, percent: bool| {
            if let Some(v) = value {
                targets.push(Target {
                    name: name.into(),
                    goal: if percent {
                        format!("≥ {:.0} %", goal * 100.0)
                    } else {
                        format!("≥ {goal}×")
                    },
                    value: if percent {
                        format!("{:.0} %", v * 100.0)
                    } else {
                        format!("{v:.2}×")
                    },
                    met: v >= goal,
                });
            }
        };
        at_least(
            "our client age-rt / socat raw copy",
            ratio(AGE_RT, SOCAT),
            0.7,
            true,
        );
        at_least(
            "our relay / piping-server (curl both ends)",
            ratio(CURL, PIPING),
            1.2,
            false,
        );
        at_least(
            "our client / Python client, plain",
            ratio(PLAIN, PY_PLAIN),
            10.0,
            false,
        );
        at_least(
            "our client / Python client, age-rt",
            ratio(AGE_RT, PY_AGE_RT),
            10.0,
            false,
        );
        for l in &self.latency {
            for (q, value, goal) in [("p50", l.p50_ms, 1.0), ("p99", l.p99_ms, 5.0)] {
                targets.push(Target {
                    name: format!("flush-to-deliver {q}, {}", l.name),
                    goal: format!("< {goal} ms"),
                    value: format!("{value:.3} ms"),
                    met: value < goal,
                });
            }
        }
        targets.extend(self.flatness());
        self.targets = targets;
    }

    /// RSS flat: our producer, consumer and relay at the full size vs the
    /// sweep's 64 KiB point (a smaller transfer); and the relay's peak RSS
    /// per stream at the most streams (bounded).
    fn flatness(&self) -> Vec<Target> {
        let mut out = Vec::new();
        let flat =
            |big: &Usage, small: &Usage| big.peak_rss_kib <= small.peak_rss_kib * 5 / 4 + 1024;
        for (name, encrypted) in [(PLAIN, false), (AGE_RT, true)] {
            let small = self
                .chunk_sizes
                .iter()
                .find(|p| p.write_kib == 64 && p.encrypted == encrypted);
            let (Some(big), Some(small)) = (self.case(name), small) else {
                continue;
            };
            let small = &small.outcome;
            for (who, b, s) in [
                ("producer", &big.producer, &small.producer),
                ("relay", &big.relay, &small.relay),
                ("consumer", &big.consumer, &small.consumer),
            ] {
                out.push(Target {
                    name: format!("{who} RSS flat, {}", &name[2..]),
                    goal: format!(
                        "{} MiB ≈ {} MiB transfer (≤ +25 % + 1 MiB)",
                        big.bytes >> 20,
                        small.bytes >> 20
                    ),
                    value: format!("{:.1} vs {:.1} MiB", b.rss_mib(), s.rss_mib()),
                    met: flat(b, s),
                });
            }
        }
        out
    }

    /// Prints the tables.
    pub fn print(&mut self) {
        self.conclude();
        let m = &self.machine;
        println!(
            "\nmachine: {} × {}, Linux {}, load {} → {}, {}",
            m.cores, m.cpu, m.kernel, m.load_at_start, m.load_at_end, m.date
        );
        println!("\n{}", self.markdown());
    }

    /// All tables as Markdown (what `docs/performance.md` shows).
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let mut line = |text: String| {
            s.push_str(&text);
            s.push('\n');
        };
        line("| case | MiB | MB/s | TTFB ms | CPU s producer / relay / consumer | peak RSS MiB producer / relay / consumer |".into());
        line("|---|---:|---:|---:|---|---|".into());
        for c in &self.cases {
            line(format!(
                "| {} | {} | {:.0} | {:.1} | {:.2} / {:.2} / {:.2} | {:.1} / {:.1} / {:.1} |",
                c.name,
                c.bytes >> 20,
                c.mb_per_s,
                c.ttfb_ms,
                c.producer.cpu_s,
                c.relay.cpu_s,
                c.consumer.cpu_s,
                c.producer.rss_mib(),
                c.relay.rss_mib(),
                c.consumer.rss_mib()
            ));
        }
        line(String::new());
        line("| flush-to-deliver (100 B writes) | messages | p50 ms | p99 ms | max ms |".into());
        line("|---|---:|---:|---:|---:|".into());
        for l in &self.latency {
            line(format!(
                "| {} | {} | {:.3} | {:.3} | {:.3} |",
                l.name, l.messages, l.p50_ms, l.p99_ms, l.max_ms
            ));
        }
        line(String::new());
        line("| write size | plain MB/s | age-rt MB/s | age-rt CPU s producer / consumer |".into());
        line("|---:|---:|---:|---|".into());
        for pair in self.chunk_sizes.chunks(2) {
            if let [plain, encrypted] = pair {
                line(format!(
                    "| {} KiB | {:.0} | {:.0} | {:.2} / {:.2} |",
                    plain.write_kib,
                    plain.outcome.mb_per_s,
                    encrypted.outcome.mb_per_s,
                    encrypted.outcome.producer.cpu_s,
                    encrypted.outcome.consumer.cpu_s
                ));
            }
        }
        line(String::new());
        line("| concurrent streams | MiB each | aggregate MB/s | relay peak RSS MiB | clients' process peak RSS MiB |".into());
        line("|---:|---:|---:|---:|---:|".into());
        for p in &self.streams {
            line(format!(
                "| {} | {} | {:.0} | {:.1} | {:.1} |",
                p.streams,
                p.bytes_per_stream >> 20,
                p.mb_per_s,
                p.relay.rss_mib(),
                p.clients.rss_mib()
            ));
        }
        line(String::new());
        line("| target | goal | this run | met |".into());
        line("|---|---|---|---|".into());
        for t in &self.targets {
            line(format!(
                "| {} | {} | {} | {} |",
                t.name,
                t.goal,
                t.value,
                if t.met { "yes" } else { "**no**" }
            ));
        }
        s
    }

    /// Writes the JSON file and prints its path.
    pub fn write_json(&self) {
        let path = std::env::var_os("ZS_BENCH_JSON")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::common::server::target_dir().join("zs-bench.json"));
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let json = serde_json::to_string_pretty(self).expect("JSON");
        std::fs::write(&path, json).expect("write the JSON report");
        println!("JSON: {}", path.display());
    }

    /// Writes `throughput-vs-chunk.svg` and `throughput-vs-streams.svg` into `dir`.
    pub fn plot(&self, dir: &Path) {
        std::fs::create_dir_all(dir).expect("plot directory");
        let sweep = |encrypted: bool| -> Vec<(f64, f64)> {
            self.chunk_sizes
                .iter()
                .filter(|p| p.encrypted == encrypted)
                .map(|p| (p.write_kib as f64, p.outcome.mb_per_s))
                .collect()
        };
        let chunk = dir.join("throughput-vs-chunk.svg");
        let streams = dir.join("throughput-vs-streams.svg");
        let results = [
            draw(
                &chunk,
                "Our client through our relay: throughput vs write size",
                "write size (KiB, log scale)",
                &[
                    Line {
                        label: "plain",
                        points: sweep(false),
                    },
                    Line {
                        label: "age-rt (X25519)",
                        points: sweep(true),
                    },
                ],
                None,
            ),
            draw(
                &streams,
                "Concurrent stream pairs through one relay (plain)",
                "concurrent streams (log scale)",
                &[Line {
                    label: "aggregate throughput",
                    points: self
                        .streams
                        .iter()
                        .map(|p| (p.streams as f64, p.mb_per_s))
                        .collect(),
                }],
                Some(Secondary {
                    y_desc: "relay peak RSS (MiB)",
                    line: Line {
                        label: "relay peak RSS (right axis)",
                        points: self
                            .streams
                            .iter()
                            .map(|p| (p.streams as f64, p.relay.rss_mib()))
                            .collect(),
                    },
                }),
            ),
        ];
        for (result, path) in results.into_iter().zip([chunk, streams]) {
            match result {
                Ok(()) => println!("plot: {}", path.display()),
                Err(e) => println!("plot failed: {e}"),
            }
        }
    }
}

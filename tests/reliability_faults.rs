//! Fault injection: 200 randomized transfers through the relay with a TCP
//! proxy under the test's control in front of the producer, the consumer, or
//! both, that resets connections at random byte offsets, stalls them, or
//! slows them down. Whatever happens, for every case:
//!
//! - the consumer either received every byte and a success, or an error:
//!   never a short (or altered) success;
//! - the producer's success implies the consumer's success whenever the path
//!   from the relay to the consumer is sound (faults on the producer's side);
//! - neither side hangs.
//!
//! What no one-way HTTP relay can promise: when the connection between the
//! relay and the consumer breaks *after* the relay has written the last byte
//! and the terminator into it (here: a proxy that accepted the bytes, then
//! reset), the producer has already been told `[STATE:TRANSFER_SUCCESSFUL]`
//! and the consumer sees an error. The consumer never sees a short success;
//! the test counts these cases and reports them (docs/reliability.md).
//!
//! A plain test binary (`harness = false`): `-- --soak [SECS]` runs rounds
//! with fresh seeds for SECS; `ZS_FAULT_CASES=N` sets the round size and
//! `ZS_FAULT_SEED=S` replays a run; `ZS_TRACE=zebrastream=debug` logs the
//! relay and the clients to stderr.

mod support;

use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use support::fault_proxy::{Fault, FaultProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zebrastream::cipher::Format;
use zebrastream::client::{Config, Error, Opening, Resume, Sealing, StreamReader, StreamWriter};
use zebrastream::relay::{Relay, RelayConfig, RelayHandle};

/// Longest a side may take before the case counts as a hang.
const HANG_LIMIT: Duration = Duration::from_secs(40);
/// How long a resume may take in the resume cases (under the hang limit:
/// a resume that cannot happen must fail, not hang).
const RESUME_TIMEOUT: Duration = Duration::from_secs(12);

#[derive(Debug, Clone, Copy)]
enum Target {
    Producer,
    Consumer,
    Both,
}

#[derive(Debug, Clone, Copy)]
struct Case {
    index: u64,
    target: Target,
    fault: Fault,
    len: usize,
    encrypted: bool,
    /// Resume on at both ends; the fault hits only once (the first
    /// connection it triggers on).
    resume: bool,
}

fn random_fault(rng: &mut impl Rng, len: usize) -> Fault {
    // Offsets span the HTTP heads, the header, the body and just past its end.
    let span = (len as u64 + 2_000).max(1);
    match rng.gen_range(0..10) {
        0..=3 => Fault::ResetUpstreamAfter(rng.gen_range(0..span)),
        4..=6 => Fault::ResetDownstreamAfter(rng.gen_range(0..span)),
        7 => Fault::StallUpstream {
            after: rng.gen_range(0..span),
            millis: rng.gen_range(50..400),
        },
        8 => Fault::Throttle {
            bytes_per_sec: 256 * 1024,
        },
        _ => Fault::None,
    }
}

fn cases(seed: u64, count: u64) -> Vec<Case> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..count)
        .map(|index| {
            // Two cases slow a side to 1 KB/s with a small stream.
            let (fault, len) = if index < 2 {
                (
                    Fault::Throttle {
                        bytes_per_sec: 1024,
                    },
                    1_500,
                )
            } else {
                let len = rng.gen_range(0..200_000);
                (random_fault(&mut rng, len), len)
            };
            let target = match rng.gen_range(0..3) {
                0 => Target::Producer,
                1 => Target::Consumer,
                _ => Target::Both,
            };
            Case {
                index,
                target,
                fault,
                len,
                encrypted: rng.gen_bool(0.5),
                resume: false,
            }
        })
        .collect()
}

/// Encrypted cases with resume on: a reset or a stall at a random offset
/// (HTTP heads, header, body, just past its end) of the first connection it
/// triggers on, in front of the producer, the consumer or both.
fn resume_cases(seed: u64, count: u64) -> Vec<Case> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x7e5u64);
    (0..count)
        .map(|index| {
            let len = rng.gen_range(1..1_000_000);
            let span = len as u64 + 2_000;
            let fault = match rng.gen_range(0..10) {
                0..=3 => Fault::ResetUpstreamAfter(rng.gen_range(0..span)),
                4..=7 => Fault::ResetDownstreamAfter(rng.gen_range(0..span)),
                _ => Fault::StallUpstream {
                    after: rng.gen_range(0..span),
                    millis: rng.gen_range(2_000..6_000),
                },
            };
            let target = match rng.gen_range(0..3) {
                0 => Target::Producer,
                1 => Target::Consumer,
                _ => Target::Both,
            };
            Case {
                index: 10_000 + index,
                target,
                fault,
                len,
                encrypted: true,
                resume: true,
            }
        })
        .collect()
}

fn config(base: &str, path: &str, resume: bool) -> Config {
    let builder = Config::builder(path)
        .connect_url(format!("{base}/v0"))
        .connect_timeout(Duration::from_secs(8));
    let builder = if resume {
        builder.resume(
            Resume::default()
                .with_stall_timeout(Duration::from_secs(1))
                .with_resume_timeout(RESUME_TIMEOUT),
        )
    } else {
        builder
    };
    builder.build().unwrap()
}

async fn run_case(
    relay_addr: std::net::SocketAddr,
    relay_url: String,
    case: Case,
) -> Result<Outcome, String> {
    let direct = relay_url;
    let proxy = if case.resume {
        FaultProxy::start_once(relay_addr, case.fault).await
    } else {
        FaultProxy::start(relay_addr, case.fault).await
    };
    let (producer_base, consumer_base) = match case.target {
        Target::Producer => (proxy.http_base(), direct),
        Target::Consumer => (direct, proxy.http_base()),
        Target::Both => (proxy.http_base(), proxy.http_base()),
    };
    let path = format!("/faults/{}", case.index);
    let (seal, open) = if case.encrypted {
        let id = age::x25519::Identity::generate();
        (
            Sealing::recipients(vec![Box::new(id.to_public())], Format::AgeRt),
            Opening::identities(vec![Box::new(id)]),
        )
    } else {
        (Sealing::Plain, Opening::Plain)
    };
    let data: Arc<Vec<u8>> = Arc::new(
        (0..case.len)
            .map(|i| (i * 7 + case.index as usize) as u8)
            .collect(),
    );
    let wc = config(&producer_base, &path, case.resume);
    let rc = config(&consumer_base, &path, case.resume);
    let sent = data.clone();
    let resumed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let resumed_seen = resumed.clone();
    let producer = tokio::spawn(tokio::time::timeout(HANG_LIMIT, async move {
        let mut w = StreamWriter::connect(&wc, &seal).await?;
        for piece in sent.chunks(16 * 1024) {
            w.write_all(piece).await?;
        }
        w.shutdown().await?;
        Ok::<_, Error>(())
    }));
    let consumer = tokio::spawn(tokio::time::timeout(HANG_LIMIT, async move {
        let mut r = StreamReader::connect(&rc, &open).await?;
        let mut got = Vec::new();
        r.read_to_end(&mut got).await?;
        // With resume, the writer's success waits for this receipt.
        r.confirm().await?;
        resumed.store(r.resumes() > 0, std::sync::atomic::Ordering::Relaxed);
        Ok::<_, Error>(got)
    }));
    let produced = producer
        .await
        .unwrap()
        .map_err(|_| format!("{case:?}: producer hung"))?;
    let consumed = consumer
        .await
        .unwrap()
        .map_err(|_| format!("{case:?}: consumer hung"))?;
    match (&produced, &consumed) {
        (_, Ok(got)) if got.as_slice() != data.as_slice() => Err(format!(
            "{case:?}: SHORT OR ALTERED SUCCESS: consumer got {} of {} bytes",
            got.len(),
            data.len()
        )),
        (Ok(()), Err(e)) if matches!(case.target, Target::Producer) || case.resume => Err(format!(
            "{case:?}: producer succeeded but the consumer failed: {e} ({e:?})"
        )),
        (Ok(()), Err(_)) => Ok(Outcome::LostAfterDelivery),
        (Ok(()), Ok(_)) if resumed_seen.load(std::sync::atomic::Ordering::Relaxed) => {
            Ok(Outcome::Resumed)
        }
        (Ok(()), Ok(_)) => Ok(Outcome::Delivered),
        (Err(w), r) => {
            if case.resume {
                // Each resume case that did not complete, and why (the
                // round asserts how many complete).
                eprintln!(
                    "  not completed: {case:?}: producer: {w}; consumer: {}",
                    r.as_ref().err().map_or("ok".into(), |e| e.to_string())
                );
            }
            Ok(Outcome::Failed)
        }
    }
}

/// How a case ended when it kept the invariants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Both sides succeeded, byte-exact.
    Delivered,
    /// Both sides succeeded, byte-exact, after at least one resume.
    Resumed,
    /// The producer failed (and the consumer either failed or, had the
    /// producer's error come after delivery, succeeded byte-exact).
    Failed,
    /// The relay delivered everything into the consumer's connection, which
    /// broke downstream afterwards: producer success, consumer error.
    LostAfterDelivery,
}

async fn relay() -> RelayHandle {
    Relay::bind(
        RelayConfig::open_loopback()
            .data_wait(Duration::from_secs(3))
            .connect_wait(Duration::from_secs(10), Duration::from_secs(10)),
    )
    .await
    .unwrap()
}

/// What one round of cases came to.
#[derive(Debug, Default)]
struct Tally {
    delivered: usize,
    /// Of `delivered`: after a resume.
    resumed: usize,
    failed: usize,
    lost_after_delivery: usize,
    /// Invariant violations, one line each.
    violations: Vec<String>,
}

impl Tally {
    fn add(&mut self, round: Tally) {
        self.delivered += round.delivered;
        self.resumed += round.resumed;
        self.failed += round.failed;
        self.lost_after_delivery += round.lost_after_delivery;
        self.violations.extend(round.violations);
    }

    fn cases(&self) -> usize {
        self.delivered + self.failed + self.lost_after_delivery + self.violations.len()
    }
}

/// Runs `count` cases drawn from `seed`, a few at a time (faults are about
/// timing, not load), and checks that the faults really bit.
async fn run_round(relay: &RelayHandle, seed: u64, count: usize) -> Tally {
    let tally = run_cases(relay, cases(seed, count as u64)).await;
    eprintln!(
        "{count} cases (seed {seed}): {} delivered, {} failed cleanly, {} lost downstream after delivery, {} invariant violations",
        tally.delivered, tally.failed, tally.lost_after_delivery, tally.violations.len()
    );
    assert_no_violation(&tally, seed);
    // A fault-free run would prove nothing.
    assert!(
        tally.failed + tally.lost_after_delivery > count / 10,
        "the faults did not bite (seed {seed})"
    );
    tally
}

/// The resume cases: besides the invariants (a producer's success now
/// implies the consumer's, whatever broke), at least 95 % complete, and
/// resumes really happened.
async fn run_resume_round(relay: &RelayHandle, seed: u64, count: usize) -> Tally {
    let tally = run_cases(relay, resume_cases(seed, count as u64)).await;
    eprintln!(
        "{count} resume cases (seed {seed}): {} delivered ({} after a resume), {} failed cleanly, {} lost after delivery, {} invariant violations",
        tally.delivered, tally.resumed, tally.failed, tally.lost_after_delivery, tally.violations.len()
    );
    assert_no_violation(&tally, seed);
    assert!(
        tally.delivered * 100 >= count * 95,
        "only {} of {count} resume cases completed (seed {seed})",
        tally.delivered
    );
    assert!(
        tally.resumed > count / 4,
        "only {} of {count} cases resumed: the faults did not bite (seed {seed})",
        tally.resumed
    );
    tally
}

async fn run_cases(relay: &RelayHandle, cases: Vec<Case>) -> Tally {
    let relay_url = format!("http://{}", relay.local_addr());
    let mut tally = Tally::default();
    for batch in cases.chunks(8) {
        let runs: Vec<_> = batch
            .iter()
            .map(|&case| tokio::spawn(run_case(relay.local_addr(), relay_url.clone(), case)))
            .collect();
        for run in runs {
            match run.await.unwrap() {
                Ok(Outcome::Delivered) => tally.delivered += 1,
                Ok(Outcome::Resumed) => {
                    tally.delivered += 1;
                    tally.resumed += 1;
                }
                Ok(Outcome::Failed) => tally.failed += 1,
                Ok(Outcome::LostAfterDelivery) => tally.lost_after_delivery += 1,
                Err(violation) => tally.violations.push(violation),
            }
        }
    }
    tally
}

fn assert_no_violation(tally: &Tally, seed: u64) {
    assert!(
        tally.violations.is_empty(),
        "{} cases broke an invariant (seed {seed}):\n{}",
        tally.violations.len(),
        tally.violations.join("\n")
    );
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Without arguments (as `cargo test` runs it): one round of 200 cases.
/// `cargo test --release --test reliability_faults -- --soak [SECS]`: rounds
/// of 200 cases with fresh seeds until SECS (default 600) have passed, with a
/// running total. `ZS_FAULT_CASES` and `ZS_FAULT_SEED` set the round size and
/// the first seed (to replay a failure).
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let soak = args.iter().position(|a| a == "--soak").map(|i| {
        let secs = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(600);
        Duration::from_secs(secs)
    });
    if std::env::var_os("ZS_TRACE").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("ZS_TRACE"))
            .with_writer(std::io::stderr)
            .init();
    }
    let seed = env_or("ZS_FAULT_SEED", 0x5eed_2026u64);
    let count = env_or("ZS_FAULT_CASES", 200usize);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let relay = relay().await;
        let Some(soak) = soak else {
            run_round(&relay, seed, count).await;
            run_resume_round(&relay, seed, env_or("ZS_RESUME_CASES", 200usize)).await;
            return;
        };
        let started = std::time::Instant::now();
        let mut total = Tally::default();
        let mut round_seed = seed;
        while started.elapsed() < soak {
            total.add(run_round(&relay, round_seed, count).await);
            total.add(run_resume_round(&relay, round_seed, count).await);
            eprintln!(
                "soak {:.0} s: {} cases, {} delivered, {} failed cleanly, {} lost after delivery, 0 violations",
                started.elapsed().as_secs_f64(),
                total.cases(),
                total.delivered,
                total.failed,
                total.lost_after_delivery
            );
            round_seed = round_seed.wrapping_add(1);
        }
    });
    println!("randomized_faults_never_produce_a_short_success ... ok");
    println!("with_resume_a_producer_success_means_the_consumer_has_it_all ... ok");
}

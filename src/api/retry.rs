//! Retry policy for the Connect API: capped exponential backoff with full
//! jitter, bounded by a total failure budget.
//!
//! Only the Connect call is ever retried (it carries no data); an upload or
//! download is never retried once it started.

use std::time::Duration;

use rand::Rng;

/// When and how often a failed Connect call is retried.
///
/// The delay before retry `n` (0-based) is a random duration in
/// `[base/2, base]` with `base = min(max_delay, initial_delay * 2^n)`. Retries
/// stop when the time spent in the current run of failures would exceed
/// `budget`. An attempt that lasted at least `stable_after` (a long wait that
/// then failed, e.g. a proxy cutting an idle connection) starts a new run.
///
/// ```
/// use std::time::Duration;
/// use zebrastream::api::RetryPolicy;
///
/// let policy = RetryPolicy::default().budget(Duration::from_secs(10));
/// assert!(policy.base_delay(0) <= policy.base_delay(5));
/// assert_eq!(RetryPolicy::none().budget_duration(), Duration::ZERO);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    initial_delay: Duration,
    max_delay: Duration,
    budget: Duration,
    stable_after: Duration,
}

impl Default for RetryPolicy {
    /// 250 ms doubling up to 8 s, within 2 minutes of failures.
    fn default() -> Self {
        RetryPolicy {
            initial_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            budget: Duration::from_secs(120),
            stable_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        RetryPolicy {
            budget: Duration::ZERO,
            ..Self::default()
        }
    }

    /// Sets the first delay (doubled on each further retry).
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.initial_delay = delay;
        self
    }

    /// Sets the cap on a single delay.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// Sets the total time a run of failures may take before giving up.
    pub fn budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// The total failure budget.
    pub fn budget_duration(&self) -> Duration {
        self.budget
    }

    /// The delay before retry `retry` (0-based) before jitter.
    pub fn base_delay(&self, retry: u32) -> Duration {
        // 2^16 × anything sensible is far beyond any cap; avoid overflow.
        let factor = 1u32 << retry.min(16);
        self.initial_delay
            .saturating_mul(factor)
            .min(self.max_delay)
    }

    /// The jittered delay before retry `retry`: uniform in `[base/2, base]`.
    pub fn delay<R: Rng + ?Sized>(&self, retry: u32, rng: &mut R) -> Duration {
        let base = self.base_delay(retry);
        let half = base / 2;
        let spread = (base - half).as_micros() as u64;
        half + Duration::from_micros(rng.gen_range(0..=spread))
    }

    /// Starts tracking one run of attempts.
    pub fn start(&self) -> RetryRun {
        RetryRun {
            policy: *self,
            failed_for: Duration::ZERO,
            retries: 0,
        }
    }
}

/// The state of one run of Connect attempts under a [`RetryPolicy`].
#[derive(Debug, Clone)]
pub struct RetryRun {
    policy: RetryPolicy,
    failed_for: Duration,
    retries: u32,
}

impl RetryRun {
    /// Records a failed attempt that took `attempt_took`, and returns the delay
    /// to wait before the next attempt, or `None` when the budget is spent.
    pub fn next_delay<R: Rng + ?Sized>(
        &mut self,
        attempt_took: Duration,
        rng: &mut R,
    ) -> Option<Duration> {
        if attempt_took >= self.policy.stable_after {
            // A long-lived attempt counts as a fresh start, like a reconnect.
            self.failed_for = Duration::ZERO;
            self.retries = 0;
        } else {
            self.failed_for += attempt_took;
        }
        let delay = self.policy.delay(self.retries, rng);
        if self.failed_for + delay > self.policy.budget {
            return None;
        }
        self.failed_for += delay;
        self.retries += 1;
        Some(delay)
    }

    /// Retries scheduled so far in this run.
    pub fn retries(&self) -> u32 {
        self.retries
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy::default()
            .initial_delay(Duration::from_millis(100))
            .max_delay(Duration::from_secs(1));
        let bases: Vec<_> = (0..6).map(|n| p.base_delay(n).as_millis()).collect();
        assert_eq!(bases, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(p.base_delay(1000), Duration::from_secs(1));
    }

    #[test]
    fn jitter_stays_in_range_and_varies() {
        let p = RetryPolicy::default().initial_delay(Duration::from_millis(400));
        let mut rng = StdRng::seed_from_u64(7);
        let delays: Vec<_> = (0..50).map(|_| p.delay(0, &mut rng)).collect();
        assert!(delays
            .iter()
            .all(|d| *d >= Duration::from_millis(200) && *d <= Duration::from_millis(400)));
        assert!(delays.iter().any(|d| *d != delays[0]));
    }

    #[test]
    fn budget_bounds_the_run() {
        let p = RetryPolicy::default()
            .initial_delay(Duration::from_millis(100))
            .max_delay(Duration::from_millis(400))
            .budget(Duration::from_secs(2));
        let mut run = p.start();
        let mut rng = StdRng::seed_from_u64(1);
        let mut total = Duration::ZERO;
        while let Some(d) = run.next_delay(Duration::from_millis(10), &mut rng) {
            total += d + Duration::from_millis(10);
            assert!(run.retries() < 100);
        }
        assert!(total <= Duration::from_secs(2));
        assert!(run.retries() >= 4, "retries: {}", run.retries());
        assert!(RetryPolicy::none()
            .start()
            .next_delay(Duration::ZERO, &mut rng)
            .is_none());
    }

    proptest::proptest! {
        /// Whatever the policy and the attempt durations, a run of quick
        /// failures never spends more than its budget, and every delay stays
        /// within `[base/2, base]`.
        #[test]
        fn runs_respect_budget_and_bounds(
            initial_ms in 1u64..2_000,
            max_ms in 1u64..20_000,
            budget_ms in 0u64..120_000,
            attempts_ms in proptest::collection::vec(0u64..5_000, 1..40),
            seed in proptest::num::u64::ANY,
        ) {
            let policy = RetryPolicy::default()
                .initial_delay(Duration::from_millis(initial_ms))
                .max_delay(Duration::from_millis(max_ms))
                .budget(Duration::from_millis(budget_ms));
            let mut rng = StdRng::seed_from_u64(seed);
            let mut run = policy.start();
            let mut spent = Duration::ZERO;
            for took in attempts_ms {
                let took = Duration::from_millis(took);
                let retry = run.retries();
                let Some(delay) = run.next_delay(took, &mut rng) else { break };
                let base = policy.base_delay(retry);
                proptest::prop_assert!(delay >= base / 2 && delay <= base);
                spent += took + delay;
                proptest::prop_assert!(spent <= policy.budget_duration());
            }
        }
    }

    #[test]
    fn a_long_attempt_resets_the_run() {
        let p = RetryPolicy::default().budget(Duration::from_secs(1));
        let mut run = p.start();
        let mut rng = StdRng::seed_from_u64(3);
        while run.next_delay(Duration::from_millis(1), &mut rng).is_some() {}
        assert!(run.next_delay(Duration::from_secs(60), &mut rng).is_some());
        assert_eq!(run.retries(), 1);
    }
}

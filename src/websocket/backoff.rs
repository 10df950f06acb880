//! Reconnect delays for client mode: exponential backoff with random jitter.
//!
//! Pure: the caller passes the random number generator, so a test can run
//! hundreds of simulated clients with a seeded generator and no clock. The
//! module does not sleep or decide when to reset; the client loop does.

use std::time::Duration;

use rand::Rng;

/// Smallest jitter fraction a policy may use. With less, clients that were
/// closed at the same instant keep retrying in step.
pub const MIN_JITTER: f64 = 0.2;

/// Largest jitter fraction a policy may use; more would allow delays near
/// zero, which is a tight retry loop.
pub const MAX_JITTER: f64 = 0.9;

/// Growth of reconnect delays.
///
/// Retry `n` (from 0) has the nominal delay `initial · 2ⁿ`. The actual delay
/// is drawn uniformly from `nominal · (1 ± jitter)`, with the upper end cut
/// at `max`, so no delay exceeds `max` and no draw piles up on it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    /// Nominal delay before the first retry.
    pub initial: Duration,
    /// Cap on every delay.
    pub max: Duration,
    /// Fraction of the nominal delay that the draw may deviate, in
    /// [`MIN_JITTER`]..=[`MAX_JITTER`].
    pub jitter: f64,
}

/// Invalid backoff settings.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BackoffError {
    #[error("initial_backoff is {0:?}; set it to at least 100ms so a retry is never immediate")]
    InitialTooSmall(Duration),
    #[error("max_backoff {max:?} is less than initial_backoff {initial:?}; raise max_backoff")]
    MaxBelowInitial { initial: Duration, max: Duration },
    #[error("jitter is {0}; set it between {MIN_JITTER} and {MAX_JITTER}")]
    JitterOutOfRange(f64),
}

/// The retry state of one client: how many retries since the last reset.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: BackoffPolicy,
    attempt: u32,
}

// === impl BackoffPolicy ===

impl BackoffPolicy {
    /// Checks the policy; the client refuses to start with an invalid one.
    pub fn validate(&self) -> Result<(), BackoffError> {
        if self.initial < Duration::from_millis(100) {
            return Err(BackoffError::InitialTooSmall(self.initial));
        }
        if self.max < self.initial {
            return Err(BackoffError::MaxBelowInitial { initial: self.initial, max: self.max });
        }
        if !(MIN_JITTER..=MAX_JITTER).contains(&self.jitter) {
            return Err(BackoffError::JitterOutOfRange(self.jitter));
        }
        Ok(())
    }
}

impl Default for BackoffPolicy {
    /// 1 s doubling to 30 s with ±50 % jitter: the first retry falls between
    /// 0.5 and 1.5 s.
    fn default() -> Self {
        BackoffPolicy { initial: Duration::from_secs(1), max: Duration::from_secs(30), jitter: 0.5 }
    }
}

// === impl Backoff ===

impl Backoff {
    pub fn new(policy: BackoffPolicy) -> Backoff {
        Backoff { policy, attempt: 0 }
    }

    /// Draws the delay before the next retry and counts the retry.
    pub fn next_delay<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Duration {
        let initial = self.policy.initial.as_secs_f64();
        let max = self.policy.max.as_secs_f64();
        let jitter = self.policy.jitter.clamp(MIN_JITTER, MAX_JITTER);

        // 2^attempt overflows nothing in f64, and min() caps it.
        let nominal = (initial * 2f64.powi(self.attempt.min(62) as i32)).min(max);
        let low = nominal * (1.0 - jitter);
        let high = (nominal * (1.0 + jitter)).min(max);
        let seconds = if high > low { rng.random_range(low..high) } else { low };

        self.attempt = self.attempt.saturating_add(1);
        Duration::from_secs_f64(seconds)
    }

    /// Starts the schedule over, after a connection proved stable.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Number of retries drawn since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn policy() -> BackoffPolicy {
        BackoffPolicy::default()
    }

    #[test]
    fn first_retry_not_before_half_second() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..1_000 {
            let delay = Backoff::new(policy()).next_delay(&mut rng);
            assert!(delay >= Duration::from_millis(500), "{delay:?}");
            assert!(delay <= Duration::from_millis(1_500), "{delay:?}");
        }
    }

    #[test]
    fn delays_grow_and_stay_under_cap() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut backoff = Backoff::new(policy());
        let delays: Vec<Duration> = (0..12).map(|_| backoff.next_delay(&mut rng)).collect();

        for delay in &delays {
            assert!(*delay <= Duration::from_secs(30), "{delay:?}");
        }
        // Retry 5 has nominal 32 s, capped at 30, so it lies in 15..30 s.
        assert!(delays[5] >= Duration::from_secs(15), "{:?}", delays[5]);
        assert!(delays[1] < delays[5], "{delays:?}");
    }

    #[test]
    fn reset_restarts_schedule() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut backoff = Backoff::new(policy());
        for _ in 0..8 {
            backoff.next_delay(&mut rng);
        }
        backoff.reset();
        assert_eq!(backoff.attempt(), 0);
        assert!(backoff.next_delay(&mut rng) <= Duration::from_millis(1_500));
    }

    #[test]
    fn jitter_spreads_consecutive_draws() {
        let mut rng = StdRng::seed_from_u64(11);
        let draws: Vec<Duration> = (0..100).map(|_| Backoff::new(policy()).next_delay(&mut rng)).collect();
        let min = draws.iter().min().unwrap();
        let max = draws.iter().max().unwrap();
        // At least 20 % of the 1 s nominal delay between extremes.
        assert!(*max - *min >= Duration::from_millis(200), "{min:?}..{max:?}");
    }

    /// A feed server closes 500 clients at t=0 with 1012 and refuses
    /// connections until t=30 s. Every retry before then fails at once, so a
    /// client reconnects at the first of its cumulative delays at or after
    /// 30 s. No one-second bucket may hold more than 10 % of them.
    #[test]
    fn restart_herd_spreads_reconnects() {
        const CLIENTS: usize = 500;
        const SERVER_BACK_AT: f64 = 30.0;

        for seed in 0..5 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut buckets = std::collections::BTreeMap::<u64, usize>::new();

            for _ in 0..CLIENTS {
                let mut backoff = Backoff::new(policy());
                let mut t = 0.0;
                while t < SERVER_BACK_AT {
                    t += backoff.next_delay(&mut rng).as_secs_f64();
                }
                *buckets.entry(t as u64).or_default() += 1;
            }

            let (busiest, count) = buckets.iter().max_by_key(|(_, n)| **n).unwrap();
            assert!(count * 10 <= CLIENTS, "seed {seed}: second {busiest} holds {count} of {CLIENTS} reconnects");
        }
    }

    #[test]
    fn validate_rejects_small_jitter() {
        let policy = BackoffPolicy { jitter: 0.1, ..policy() };
        assert_eq!(policy.validate(), Err(BackoffError::JitterOutOfRange(0.1)));
    }

    #[test]
    fn validate_rejects_max_below_initial() {
        let policy = BackoffPolicy { max: Duration::from_millis(500), ..policy() };
        assert!(matches!(policy.validate(), Err(BackoffError::MaxBelowInitial { .. })));
    }
}

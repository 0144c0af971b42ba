//! What is worth trying again, and when: one classification of failures and one backoff,
//! used by every retry the binaries make — JetStream redeliveries, webhook interceptor
//! calls, creates through the Kubernetes API.
//!
//! The backoff is a pure function of the attempt number rather than an iterator (as
//! `backon`'s are): a redelivery's delay is computed from JetStream's delivery count, in
//! whichever replica receives it, with no state carried between attempts.

use std::time::Duration;

/// Whether doing the same thing again may succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// It may go away by itself (a peer unreachable, overloaded or too slow; HTTP 5xx, 408,
    /// 429; NATS unavailable): try again later.
    Transient,
    /// Refused for good as things are configured (403, 422, a refused certificate, an
    /// object the template renders invalid): the same attempt fails the same way until an
    /// operator changes something.
    Permanent,
    /// The input itself cannot be used (a body that is not JSON, a stored message that is
    /// not an event): no attempt with it can succeed.
    BadInput,
}

impl FailureKind {
    /// Every kind.
    pub const ALL: [FailureKind; 3] = [Self::Transient, Self::Permanent, Self::BadInput];

    /// Whether trying again later may help.
    pub fn is_transient(self) -> bool {
        self == Self::Transient
    }

    /// Its stable name, as dead letters record it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::Permanent => "permanent",
            Self::BadInput => "bad_input",
        }
    }

    /// The kind [`Self::as_str`] names.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

crate::label_values!(FailureKind {
    Transient => "transient",
    Permanent => "permanent",
    BadInput => "bad_input",
});

/// Exponential backoff with jitter: the wait after the `n`th failed attempt is
/// `base × 2^(n−1)`, capped at `max`, times a random factor between 0.5 and 1 (so that
/// callers that failed together do not retry together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    pub const fn new(base: Duration, max: Duration) -> Self {
        Self { base, max }
    }

    /// The capped wait after `attempt` failed attempts (1 for the first), before jitter.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exponent = attempt.clamp(1, 31) - 1;
        self.base
            .saturating_mul(2u32.saturating_pow(exponent))
            .min(self.max)
    }

    /// The wait after `attempt` failed attempts (1 for the first): between half of
    /// [`Self::ceiling`] and all of it.
    pub fn delay(&self, attempt: u32) -> Duration {
        let half = self.ceiling(attempt) / 2;
        let half_nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(fastrand::u64(0..=half_nanos))
    }
}

/// Something tried again until it works (a bind, a pull, a list): its failures in a row, the
/// wait before each next try from [`Backoff`], and whether to log a failure. The first is
/// logged, then one per wait at its longest: a failure that lasts is seen every few seconds,
/// not once per attempt.
#[derive(Debug, Clone)]
pub struct Retrying {
    delays: Backoff,
    failures: u32,
}

/// What to do after a failure: wait `wait`, and log it if `log` (the `failures`-th in a row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextTry {
    pub wait: Duration,
    pub log: bool,
    pub failures: u32,
}

impl Retrying {
    pub const fn new(delays: Backoff) -> Self {
        Self {
            delays,
            failures: 0,
        }
    }

    /// It worked: the next failure is the first again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Counts a failure.
    pub fn failed(&mut self) -> NextTry {
        self.failures = self.failures.saturating_add(1);
        NextTry {
            wait: self.delays.delay(self.failures),
            log: self.failures == 1 || self.delays.ceiling(self.failures) == self.delays.max,
            failures: self.failures,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lasting_failure_is_logged_first_then_once_per_longest_wait() {
        let mut retrying = Retrying::new(Backoff::new(
            Duration::from_millis(100),
            Duration::from_millis(400),
        ));
        let tries: Vec<NextTry> = (0..5).map(|_| retrying.failed()).collect();
        let logged: Vec<bool> = tries.iter().map(|t| t.log).collect();
        assert_eq!(logged, [true, false, true, true, true]);
        assert!(
            tries[0].wait >= Duration::from_millis(50)
                && tries[0].wait <= Duration::from_millis(100)
        );
        assert!(
            tries[4].wait >= Duration::from_millis(200)
                && tries[4].wait <= Duration::from_millis(400)
        );
        retrying.reset();
        assert_eq!(retrying.failed().failures, 1);
    }

    #[test]
    fn delays_double_up_to_the_cap_and_keep_half_to_all_of_it() {
        let backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(1));
        let ceilings: Vec<_> = (1..=5).map(|n| backoff.ceiling(n)).collect();
        assert_eq!(
            ceilings,
            [200, 400, 800, 1000, 1000].map(Duration::from_millis)
        );
        for attempt in 1..=40 {
            let delay = backoff.delay(attempt);
            let ceiling = backoff.ceiling(attempt);
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "{attempt}: {delay:?}"
            );
        }
        assert_eq!(
            backoff.ceiling(0),
            Duration::from_millis(200),
            "0 counts as 1"
        );
        assert_eq!(
            Backoff::new(Duration::from_secs(1), Duration::MAX).ceiling(u32::MAX),
            Duration::from_secs(1 << 30),
            "large attempt numbers saturate"
        );
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_backoff() {
        let backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(60));
        for _ in 0..1000 {
            let delay = backoff.delay(1);
            assert!(delay >= Duration::from_millis(100) && delay <= Duration::from_millis(200));
        }
        assert_eq!(
            Backoff::new(Duration::ZERO, Duration::MAX).delay(3),
            Duration::ZERO
        );
        let _ = Backoff::new(Duration::MAX, Duration::MAX).delay(1);
    }
}

//! Token-bucket policers, fed with a time passed in once per batch (no clock reads here).
//!
//! Tokens are kept in nano-tokens (1 token = 10⁹ units) so a rate in packets per second refills
//! `pps` units per nanosecond with integer arithmetic only. The bucket starts full.

/// Nano-tokens per token.
const SCALE: u64 = 1_000_000_000;

/// The largest `pps` and `burst` accepted, so that every product below fits a `u64`.
pub const MAX_RATE: u64 = 1_000_000_000;

/// A rate: `pps` packets per second on average, up to `burst` back to back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rate {
    pub pps: u64,
    pub burst: u64,
}

impl Rate {
    /// This rate's share when `workers` workers each police their own part of the traffic:
    /// `pps` and `burst` divided evenly, rounded up so no share drops to zero.
    pub fn share(self, workers: u32) -> Rate {
        let n = u64::from(workers.max(1));
        Rate {
            pps: self.pps.div_ceil(n),
            burst: self.burst.div_ceil(n),
        }
    }
}

/// One token bucket. Plain data: a worker owns its buckets and nothing is shared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    /// Refill per nanosecond, in nano-tokens (= pps).
    pps: u64,
    /// Capacity in nano-tokens.
    capacity: u64,
    /// Current fill in nano-tokens.
    tokens: u64,
    /// Time of the last refill, in nanoseconds on the caller's clock.
    last_ns: u64,
}

impl TokenBucket {
    /// A full bucket for `rate`; values are clamped to `1..=MAX_RATE`.
    pub fn new(rate: Rate, now_ns: u64) -> Self {
        let pps = rate.pps.clamp(1, MAX_RATE);
        let capacity = rate.burst.clamp(1, MAX_RATE) * SCALE;
        TokenBucket {
            pps,
            capacity,
            tokens: capacity,
            last_ns: now_ns,
        }
    }

    /// The rate this bucket enforces.
    pub fn rate(&self) -> Rate {
        Rate {
            pps: self.pps,
            burst: self.capacity / SCALE,
        }
    }

    /// Refills for the time since the last call, then takes one token if there is one.
    /// Time that runs backwards (a capture with unordered timestamps) refills nothing.
    #[inline]
    pub fn take(&mut self, now_ns: u64) -> bool {
        let elapsed = now_ns.saturating_sub(self.last_ns);
        // Enough time to refill completely from empty; clamping keeps `elapsed * pps` in range.
        let full_after = self.capacity / self.pps + 1;
        let refill = elapsed.min(full_after) * self.pps;
        self.tokens = (self.tokens + refill).min(self.capacity);
        self.last_ns = self.last_ns.max(now_ns);
        let ok = self.tokens >= SCALE;
        self.tokens -= SCALE * u64::from(ok);
        ok
    }

    /// Keeps the fill level of `old` (scaled to this bucket's capacity), for a reload that keeps a
    /// tunnel.
    pub fn carry_over(&mut self, old: &TokenBucket) {
        self.tokens = old.tokens.min(self.capacity);
        self.last_ns = old.last_ns;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn share_divides_rate_and_burst_rounding_up() {
        let r = Rate {
            pps: 1000,
            burst: 5,
        };
        assert_eq!(r.share(1), r);
        assert_eq!(r.share(0), r);
        assert_eq!(r.share(2), Rate { pps: 500, burst: 3 });
        assert_eq!(r.share(3), Rate { pps: 334, burst: 2 });
        assert_eq!(
            Rate { pps: 1, burst: 1 }.share(8),
            Rate { pps: 1, burst: 1 }
        );
    }
    const S: u64 = 1_000_000_000;

    #[test]
    fn starts_full_and_allows_a_burst() {
        let mut b = TokenBucket::new(Rate { pps: 10, burst: 5 }, 0);
        assert_eq!((0..8).filter(|_| b.take(0)).count(), 5);
    }

    #[test]
    fn refills_at_the_rate() {
        let mut b = TokenBucket::new(
            Rate {
                pps: 1000,
                burst: 1,
            },
            0,
        );
        assert!(b.take(0));
        assert!(!b.take(0));
        assert!(!b.take(MS / 2));
        assert!(b.take(MS));
        // Over one second at 1000 pps with one packet every 0.1 ms, 1000 get through (±1).
        let passed = (1..=10_000u64).filter(|i| b.take(MS + i * MS / 10)).count();
        assert!((999..=1001).contains(&passed), "{passed}");
    }

    #[test]
    fn never_exceeds_burst_after_a_long_idle_time() {
        let mut b = TokenBucket::new(
            Rate {
                pps: 1_000_000,
                burst: 3,
            },
            0,
        );
        for _ in 0..3 {
            b.take(0);
        }
        assert_eq!((0..10).filter(|_| b.take(3600 * S)).count(), 3);
        // u64::MAX elapsed does not overflow.
        assert!(b.take(u64::MAX));
    }

    #[test]
    fn time_going_backwards_refills_nothing() {
        let mut b = TokenBucket::new(Rate { pps: 1, burst: 1 }, 10 * S);
        assert!(b.take(10 * S));
        assert!(!b.take(5 * S));
        assert!(!b.take(10 * S));
        assert!(b.take(11 * S));
    }

    #[test]
    fn extreme_rates_are_clamped_not_overflowed() {
        let mut b = TokenBucket::new(
            Rate {
                pps: u64::MAX,
                burst: u64::MAX,
            },
            0,
        );
        assert_eq!(
            b.rate(),
            Rate {
                pps: MAX_RATE,
                burst: MAX_RATE
            }
        );
        assert!(b.take(u64::MAX / 2));
        let mut z = TokenBucket::new(Rate { pps: 0, burst: 0 }, 0);
        assert!(z.take(0));
        assert!(!z.take(0));
    }

    #[test]
    fn carry_over_keeps_an_empty_bucket_empty() {
        let mut old = TokenBucket::new(Rate { pps: 1, burst: 2 }, 0);
        old.take(0);
        old.take(0);
        let mut new = TokenBucket::new(Rate { pps: 1, burst: 10 }, 0);
        new.carry_over(&old);
        assert!(!new.take(0));
    }
}

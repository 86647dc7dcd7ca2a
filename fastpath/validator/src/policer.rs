//! Rate policers shared by every worker, and read by the kernel's fast lane: one cell of state
//! per bucket, updated with a compare-and-swap, so a rate means what the policy says however
//! many workers police it and however RSS spreads the traffic.
//!
//! Each bucket runs the generic cell rate algorithm (GCRA, ITU-T I.371 "virtual scheduling"),
//! which is a token bucket whose whole state is one number: the theoretical arrival time (TAT)
//! of the next packet. A packet conforms when it arrives no earlier than `TAT - tolerance`,
//! and then pushes the TAT one `interval` (1/pps) further. With `tolerance = (burst - 1) ×
//! interval`, that admits `burst` packets back to back from a full bucket and `pps` per second
//! after, exactly as a bucket of `burst` tokens refilled at `pps` would.
//!
//! Time is in ticks of 1/16 ns ([`TICKS_PER_NS`]), so `interval` is exact for every rate up
//! to 62.5 Mpps and within 1/16 ns of it beyond (always rounded up: never more than the
//! policy allows). Ticks are compared by their wrapping difference, so any clock works —
//! CLOCK_MONOTONIC on the box, the capture's Unix time in `replay` — as long as one bucket is
//! not left idle for 18 years.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Ticks per nanosecond of the policers' clock (the kernel's fast lane uses the same).
pub const TICKS_PER_NS: u64 = 16;

/// Nanoseconds per second.
const SECOND_NS: u64 = 1_000_000_000;

/// The largest `pps` and `burst` accepted.
pub const MAX_RATE: u64 = 1_000_000_000;

/// A rate: `pps` packets per second on average, up to `burst` back to back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rate {
    pub pps: u64,
    pub burst: u64,
}

impl Rate {
    /// Ticks between two packets at this rate, rounded up (`pps` clamped to `1..=MAX_RATE`).
    pub fn interval_ticks(self) -> u64 {
        (SECOND_NS * TICKS_PER_NS).div_ceil(self.pps.clamp(1, MAX_RATE))
    }

    /// How far ahead of now the TAT may be for a packet to conform: `burst - 1` intervals
    /// (`burst` clamped to `1..=MAX_RATE`).
    pub fn tolerance_ticks(self) -> u64 {
        (self.burst.clamp(1, MAX_RATE) - 1)
            .saturating_mul(self.interval_ticks())
            .min(i64::MAX as u64)
    }
}

/// Where a bucket's TAT lives: a plain atomic for buckets of user space alone, or a word of a
/// BPF map shared with the kernel (the data path's fast lane).
pub trait Cell: Send + Sync {
    /// The TAT, in ticks.
    fn tat(&self) -> &AtomicU64;
}

impl Cell for AtomicU64 {
    fn tat(&self) -> &AtomicU64 {
        self
    }
}

/// One bucket: its rate and its shared cell. Clones share the cell (and so the budget).
#[derive(Clone)]
pub struct Policer {
    interval: u64,
    tolerance: u64,
    /// Added to the caller's clock (nanoseconds) before it is turned into ticks: the data path
    /// counts from its start, the kernel from boot.
    offset_ns: u64,
    cell: Arc<dyn Cell>,
}

impl fmt::Debug for Policer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policer")
            .field("interval", &self.interval)
            .field("tolerance", &self.tolerance)
            .field("tat", &self.cell.tat().load(Relaxed))
            .finish()
    }
}

impl Policer {
    /// A full bucket for `rate` at `now_ns`, in a cell of its own.
    pub fn new(rate: Rate, now_ns: u64) -> Policer {
        Policer::new_at(rate, 0, now_ns)
    }

    /// A bucket for `rate` whose state is `cell` (kept as it is: a reload that keeps a tunnel
    /// keeps its fill). `offset_ns` is added to every `now_ns` this bucket is given.
    pub fn in_cell(rate: Rate, cell: Arc<dyn Cell>, offset_ns: u64) -> Policer {
        Policer {
            interval: rate.interval_ticks(),
            tolerance: rate.tolerance_ticks(),
            offset_ns,
            cell,
        }
    }

    /// A full bucket in a cell of its own, on a clock `offset_ns` away from the caller's.
    pub fn new_at(rate: Rate, offset_ns: u64, now_ns: u64) -> Policer {
        Policer::in_cell(rate, Arc::new(AtomicU64::new(0)), offset_ns).filled(now_ns)
    }

    /// What this bucket adds to the caller's clock.
    pub fn offset_ns(&self) -> u64 {
        self.offset_ns
    }

    /// Fills the bucket at `now_ns` (a fresh bucket starts full).
    pub fn filled(self, now_ns: u64) -> Policer {
        self.cell.tat().store(self.ticks(now_ns), Relaxed);
        self
    }

    /// The cell this bucket keeps its state in.
    pub fn cell(&self) -> &Arc<dyn Cell> {
        &self.cell
    }

    /// The rate this bucket enforces (`pps` as its rounded interval gives it back).
    pub fn rate(&self) -> Rate {
        Rate {
            pps: (SECOND_NS * TICKS_PER_NS) / self.interval,
            burst: self.tolerance / self.interval + 1,
        }
    }

    #[inline(always)]
    fn ticks(&self, now_ns: u64) -> u64 {
        now_ns
            .wrapping_add(self.offset_ns)
            .wrapping_mul(TICKS_PER_NS)
    }

    /// Takes one packet's worth if the bucket has it. Time that runs backwards (a capture
    /// with unordered timestamps) refills nothing. Lock-free: a compare-and-swap, retried only
    /// when another worker took from the same bucket in between.
    #[inline]
    pub fn take(&self, now_ns: u64) -> bool {
        let now = self.ticks(now_ns);
        let cell = self.cell.tat();
        let mut tat = cell.load(Relaxed);
        loop {
            // How far the TAT is ahead of now (0 when the bucket is full).
            let ahead = (tat.wrapping_sub(now) as i64).max(0) as u64;
            if ahead > self.tolerance {
                return false;
            }
            let next = now.wrapping_add(ahead).wrapping_add(self.interval);
            match cell.compare_exchange_weak(tat, next, Relaxed, Relaxed) {
                Ok(_) => return true,
                Err(now_there) => tat = now_there,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;

    #[test]
    fn starts_full_and_allows_a_burst() {
        let b = Policer::new(Rate { pps: 10, burst: 5 }, 0);
        assert_eq!((0..8).filter(|_| b.take(0)).count(), 5);
    }

    #[test]
    fn refills_at_the_rate() {
        let b = Policer::new(
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
        let b = Policer::new(
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
    }

    #[test]
    fn time_going_backwards_refills_nothing() {
        let b = Policer::new(Rate { pps: 1, burst: 1 }, 10 * S);
        assert!(b.take(10 * S));
        assert!(!b.take(5 * S));
        assert!(!b.take(10 * S));
        assert!(b.take(11 * S));
    }

    #[test]
    fn unix_time_in_nanoseconds_works_as_a_clock() {
        // A capture's timestamps: ~1.7e18 ns, whose ticks wrap a u64.
        let t0 = 1_733_400_000 * S;
        let b = Policer::new(Rate { pps: 2, burst: 2 }, t0);
        assert_eq!((0..5).filter(|_| b.take(t0)).count(), 2);
        assert!(!b.take(t0 + S / 4));
        assert!(b.take(t0 + S / 2));
    }

    #[test]
    fn extreme_rates_are_clamped_not_overflowed() {
        let b = Policer::new(
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
        let z = Policer::new(Rate { pps: 0, burst: 0 }, 0);
        assert!(z.take(0));
        assert!(!z.take(0));
    }

    #[test]
    fn intervals_are_exact_or_rounded_up() {
        assert_eq!(
            Rate {
                pps: 2000,
                burst: 1
            }
            .interval_ticks(),
            8_000_000
        );
        assert_eq!(Rate { pps: 3, burst: 1 }.interval_ticks(), 5_333_333_334);
        assert_eq!(
            Rate {
                pps: 1000,
                burst: 5
            }
            .tolerance_ticks(),
            4 * 16_000_000
        );
    }

    #[test]
    fn clones_share_one_budget_across_threads() {
        // Four threads take from clones of one bucket at the same instant: together they get
        // the burst, not four times it.
        let b = Policer::new(
            Rate {
                pps: 1,
                burst: 1000,
            },
            0,
        );
        let taken: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let b = b.clone();
                    s.spawn(move || (0..1000).filter(|_| b.take(0)).count())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(taken, 1000);
    }

    #[test]
    fn a_bucket_in_a_kept_cell_keeps_its_fill() {
        let old = Policer::new(Rate { pps: 1, burst: 2 }, 0);
        old.take(0);
        old.take(0);
        // The same rate in the kept cell: still empty. A larger burst has room for the
        // difference at once (the TAT counts what was taken, not what is left).
        let same = Policer::in_cell(Rate { pps: 1, burst: 2 }, old.cell().clone(), 0);
        assert!(!same.take(0));
        let larger = Policer::in_cell(Rate { pps: 1, burst: 3 }, old.cell().clone(), 0);
        assert!(larger.take(0));
        assert!(!larger.take(0));
        assert!(same.take(4 * S));
    }
}

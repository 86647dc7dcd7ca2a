//! The backscatter view: which sources sent the most dropped GRE over the last seconds, from
//! the workers' samples.
//!
//! The sources are chosen by whoever sends the storm, so the view is bounded: each second
//! tracks at most [`SOURCES_PER_SECOND`] distinct sources (samples from further new sources that
//! second are counted as untracked, not ranked), the window's sums are kept up to date as
//! samples arrive and seconds expire, and the top N is selected with a heap of N entries
//! rather than by sorting every source it saw. The maps use std's randomly keyed hasher, so
//! chosen addresses cannot make them collide.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::IpAddr;

/// Distinct sources one second of the view tracks at most.
pub const SOURCES_PER_SECOND: usize = 4096;

/// Sampled drops per source over a sliding window of whole seconds.
#[derive(Debug)]
pub struct TopSources {
    window: usize,
    /// Distinct sources tracked per second at most.
    cap: usize,
    /// One map per second, newest last.
    buckets: VecDeque<HashMap<IpAddr, u64>>,
    /// Per source, the sum of its counts in `buckets`.
    sums: HashMap<IpAddr, u64>,
    /// Samples not ranked because their second already tracked `cap` sources, since start.
    untracked: u64,
}

impl TopSources {
    /// A view over the last `window` seconds, tracking [`SOURCES_PER_SECOND`] sources a second.
    pub fn new(window: usize) -> TopSources {
        TopSources::with_cap(window, SOURCES_PER_SECOND)
    }

    /// A view over the last `window` seconds, tracking at most `cap` sources a second.
    pub fn with_cap(window: usize, cap: usize) -> TopSources {
        let window = window.max(1);
        let mut buckets = VecDeque::with_capacity(window + 1);
        buckets.push_back(HashMap::new());
        TopSources {
            window,
            cap: cap.max(1),
            buckets,
            sums: HashMap::new(),
            untracked: 0,
        }
    }

    /// Counts one sampled drop from `src` in the current second (or as untracked when this
    /// second already tracks `cap` other sources).
    pub fn add(&mut self, src: IpAddr) {
        let Some(bucket) = self.buckets.back_mut() else {
            return;
        };
        let room = bucket.len() < self.cap;
        if let Some(n) = bucket.get_mut(&src) {
            *n += 1;
        } else if room {
            bucket.insert(src, 1);
        } else {
            self.untracked += 1;
            return;
        }
        *self.sums.entry(src).or_insert(0) += 1;
    }

    /// Starts a new second, forgetting the oldest beyond the window.
    pub fn tick(&mut self) {
        let mut fresh = HashMap::new();
        while self.buckets.len() >= self.window {
            let Some(mut old) = self.buckets.pop_front() else {
                break;
            };
            for (src, n) in old.drain() {
                if let Some(sum) = self.sums.get_mut(&src) {
                    *sum -= n;
                    if *sum == 0 {
                        self.sums.remove(&src);
                    }
                }
            }
            // Its table is reused for the new second.
            fresh = old;
        }
        self.buckets.push_back(fresh);
    }

    /// The `n` sources with the most sampled drops in the window, most first (ties by address).
    pub fn top(&self, n: usize) -> Vec<(IpAddr, u64)> {
        if n == 0 {
            return Vec::new();
        }
        // A min-heap of the best n so far: its root is the one to beat.
        let mut heap: BinaryHeap<Reverse<(u64, Reverse<IpAddr>)>> =
            BinaryHeap::with_capacity(n + 1);
        for (&src, &count) in &self.sums {
            let entry = Reverse((count, Reverse(src)));
            if heap.len() < n {
                heap.push(entry);
            } else if heap.peek().is_some_and(|worst| entry < *worst) {
                heap.pop();
                heap.push(entry);
            }
        }
        heap.into_sorted_vec()
            .into_iter()
            .map(|Reverse((count, Reverse(src)))| (src, count))
            .collect()
    }

    /// Samples left out of the view because their second was full, since start.
    pub fn untracked(&self) -> u64 {
        self.untracked
    }

    /// Sources tracked now, over the whole window (at most window × cap).
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.sums.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn addr(i: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0xc000_0200 + i))
    }

    #[test]
    fn ranks_sources_and_forgets_them_after_the_window() {
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let mut t = TopSources::new(2);
        t.add(a);
        t.tick();
        t.add(b);
        t.add(b);
        assert_eq!(t.top(5), vec![(b, 2), (a, 1)]);
        assert_eq!(t.top(1), vec![(b, 2)]);
        t.tick();
        assert_eq!(t.top(5), vec![(b, 2)]);
        t.tick();
        assert!(t.top(5).is_empty());
        assert_eq!(t.tracked(), 0);
    }

    #[test]
    fn the_top_is_what_a_full_sort_gives_with_ties_by_address() {
        let mut t = TopSources::new(3);
        // Source i gets (i * 7) % 13 samples in each of three seconds: many ties.
        for second in 0..3 {
            for i in 0..200u32 {
                for _ in 0..(i * 7 + second) % 13 {
                    t.add(addr(i));
                }
            }
            if second < 2 {
                t.tick();
            }
        }
        let mut all: Vec<(IpAddr, u64)> = (0..200u32)
            .map(|i| (addr(i), (0..3).map(|s| u64::from((i * 7 + s) % 13)).sum()))
            .filter(|&(_, n)| n > 0)
            .collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        for n in [1, 5, 10, 199, 500] {
            assert_eq!(t.top(n), all[..n.min(all.len())], "top {n}");
        }
        assert!(t.top(0).is_empty());
    }

    #[test]
    fn a_second_tracks_at_most_cap_sources_and_counts_the_rest() {
        let mut t = TopSources::with_cap(10, 100);
        // A heavy source first, then a storm of one-off sources.
        for _ in 0..50 {
            t.add(addr(0));
        }
        for i in 1..10_000 {
            t.add(addr(i));
        }
        // The heavy source still counts once the table is full.
        t.add(addr(0));
        assert_eq!(t.tracked(), 100);
        assert_eq!(t.untracked(), 10_000 - 100);
        assert_eq!(t.top(1), vec![(addr(0), 51)]);
        // Every second has its own room; the window as a whole holds window × cap at most.
        for s in 0..30u32 {
            t.tick();
            for i in 0..1_000 {
                t.add(addr(100_000 * (s + 1) + i));
            }
            assert!(t.tracked() <= 10 * 100);
        }
        assert_eq!(t.untracked(), 9_900 + 30 * 900);
    }
}

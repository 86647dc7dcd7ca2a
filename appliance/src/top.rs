//! The backscatter view: which sources sent the most dropped GRE over the last seconds, from
//! the workers' samples.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// Sampled drops per source over a sliding window of whole seconds.
#[derive(Debug)]
pub struct TopSources {
    window: usize,
    /// One map per second, newest last.
    buckets: VecDeque<HashMap<IpAddr, u64>>,
}

impl TopSources {
    /// A view over the last `window` seconds.
    pub fn new(window: usize) -> TopSources {
        let mut buckets = VecDeque::with_capacity(window + 1);
        buckets.push_back(HashMap::new());
        TopSources {
            window: window.max(1),
            buckets,
        }
    }

    /// Counts one sampled drop from `src` in the current second.
    pub fn add(&mut self, src: IpAddr) {
        if let Some(b) = self.buckets.back_mut() {
            *b.entry(src).or_insert(0) += 1;
        }
    }

    /// Starts a new second, forgetting the oldest beyond the window.
    pub fn tick(&mut self) {
        self.buckets.push_back(HashMap::new());
        while self.buckets.len() > self.window {
            self.buckets.pop_front();
        }
    }

    /// The `n` sources with the most sampled drops in the window, most first (ties by address).
    pub fn top(&self, n: usize) -> Vec<(IpAddr, u64)> {
        let mut sum: HashMap<IpAddr, u64> = HashMap::new();
        for b in &self.buckets {
            for (a, c) in b {
                *sum.entry(*a).or_insert(0) += c;
            }
        }
        let mut v: Vec<_> = sum.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}

//! Policy reload without stopping the data path.
//!
//! The slow path compiles the new policy, then prepares for every worker everything the
//! worker will need — the policy's policers (shared by every worker; a tunnel that persists
//! keeps its bucket's cell), zeroed per-tunnel counters,
//! per-tunnel stats, the mapping from new to old tunnel indices by name — and hands it over in
//! a one-slot mailbox (an SPSC ring). Between two batches the worker takes it, carries the
//! per-tunnel counts of every tunnel whose name persists over, swaps it
//! with its own state and sends the old state back in a second ring. So the worker neither
//! allocates nor frees (the old policy is freed by the slow path, off the data-path cores), no
//! batch is classified half with one policy and half with the other, and every frame is
//! counted once.

use std::sync::Arc;

use super::stats::TunnelStats;
use validator::classify::{Buckets, Classifier};
use validator::policy::Policy;
use validator::reason::Verdict;

/// Reloads a worker can have pending.
pub const MAILBOX: usize = 4;

/// One worker's policy-dependent state: what a reload swaps.
pub struct PolicyState {
    pub generation: u64,
    pub policy: Arc<Policy>,
    pub classifier: Classifier,
    /// For each tunnel of `policy`, the index of the tunnel of the same name in the previous
    /// policy.
    pub previous: Vec<Option<u32>>,
    pub tunnel_packets: Vec<[u64; Verdict::COUNT]>,
    pub tunnel_stats: Arc<TunnelStats>,
    /// `[sampling]` of this policy.
    pub sampling: super::sample::Rates,
}

impl PolicyState {
    /// The state for `policy` (generation `generation`) of one worker, prepared off the data
    /// path; `previous[i]` is the index of tunnel `i` in the policy it replaces
    /// ([`Policy::previous_indices`]); `buckets` are the policy's policers, shared by every
    /// worker.
    pub fn prepare(
        generation: u64,
        policy: Arc<Policy>,
        previous: Vec<Option<u32>>,
        buckets: Buckets,
        sampling: super::sample::Rates,
    ) -> PolicyState {
        let tunnels = policy.tunnel_count();
        PolicyState {
            generation,
            classifier: Classifier::with_buckets(buckets),
            previous,
            tunnel_packets: vec![[0; Verdict::COUNT]; tunnels],
            tunnel_stats: super::stats::tunnel_stats(tunnels),
            sampling,
            policy,
        }
    }
}

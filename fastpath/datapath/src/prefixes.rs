//! Which prefixes the fast lane's tries hold, and what a reload changes in them.
//!
//! Every tunnel puts its peer prefix in the peers' trie and its local prefix in the locals'
//! trie; many tunnels share a prefix (100 000 tunnels to one concentrator share its address).
//! So each prefix is counted by the tunnels that use it: it goes into its trie when its count
//! leaves 0 and out when it comes back to 0. A reload then costs a pass over the tunnels to
//! find the few whose addresses changed, instead of listing and sorting 200 000 prefixes.

use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;

use validator::policy::{IpPrefix, Policy};

/// A prefix in one of the tries: (in the peers' trie, prefix).
pub type TriePrefix = (bool, IpPrefix);

/// How many tunnels of the applied policy use each prefix (none are kept at 0).
#[derive(Debug, Default)]
pub struct PrefixCounts {
    counts: HashMap<TriePrefix, u32, RandomState>,
}

/// What bringing the tries from one policy to the next takes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PrefixChanges {
    /// Prefixes no tunnel used before and one uses now: into the tries (first).
    pub insert: Vec<TriePrefix>,
    /// Prefixes used before and by no tunnel now: out of the tries (after the inserts).
    pub delete: Vec<TriePrefix>,
    /// The change in count of every prefix touched.
    delta: Vec<(TriePrefix, i64)>,
}

impl PrefixCounts {
    /// What going from `old` (the policy these counts are of) to `policy` changes; tunnel `i`
    /// of `policy` was tunnel `previous[i]` of `old` (see [`Policy::previous_indices`]).
    pub fn changes(
        &self,
        policy: &Policy,
        old: &Policy,
        previous: &[Option<u32>],
    ) -> PrefixChanges {
        let mut delta: HashMap<TriePrefix, i64, RandomState> = HashMap::default();
        let mut kept = vec![false; old.tunnel_count()];
        for (i, spec) in policy.specs().iter().enumerate() {
            let was = previous
                .get(i)
                .copied()
                .flatten()
                .and_then(|o| Some((o as usize, old.specs().get(o as usize)?)));
            if let Some((o, was)) = was {
                // The same spec (an unchanged block keeps its Arc) or the same addresses.
                if Arc::ptr_eq(was, spec) || (was.peer == spec.peer && was.local == spec.local) {
                    kept[o] = true;
                    continue;
                }
            }
            *delta.entry((true, spec.peer)).or_default() += 1;
            *delta.entry((false, spec.local)).or_default() += 1;
        }
        for (spec, _) in old.specs().iter().zip(&kept).filter(|(_, &k)| !k) {
            *delta.entry((true, spec.peer)).or_default() -= 1;
            *delta.entry((false, spec.local)).or_default() -= 1;
        }
        let mut changes = PrefixChanges::default();
        for (prefix, d) in delta.into_iter().filter(|&(_, d)| d != 0) {
            let before = i64::from(self.count(&prefix));
            match (before, before + d) {
                (0, after) if after > 0 => changes.insert.push(prefix),
                (b, 0) if b > 0 => changes.delete.push(prefix),
                _ => {}
            }
            changes.delta.push((prefix, d));
        }
        changes
    }

    /// Takes `changes` in, once the tries hold them.
    pub fn commit(&mut self, changes: &PrefixChanges) {
        for &(prefix, d) in &changes.delta {
            let after = i64::from(self.count(&prefix)) + d;
            match u32::try_from(after) {
                Ok(n) if n > 0 => {
                    self.counts.insert(prefix, n);
                }
                _ => {
                    self.counts.remove(&prefix);
                }
            }
        }
    }

    /// How many tunnels use `prefix`.
    pub fn count(&self, prefix: &TriePrefix) -> u32 {
        self.counts.get(prefix).copied().unwrap_or(0)
    }

    /// How many prefixes are in the tries.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// Whether the tries are empty.
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use validator::policy::{Defaults, FlagRule, KeyRule, TunnelSpec};
    use validator::protocols::ProtocolSet;

    fn host(a: u32) -> IpPrefix {
        IpPrefix::V4(a, 32)
    }

    fn policy(tunnels: &[(&str, u32, u32)]) -> Policy {
        let mut p = Policy::new(Defaults::default());
        for &(name, peer, local) in tunnels {
            p.add_tunnel(TunnelSpec {
                name: name.into(),
                peer: host(peer),
                local: host(local),
                key: KeyRule::Any,
                version: 0,
                protocols: ProtocolSet::new(),
                nested: false,
                checksum: FlagRule::Allow,
                sequence: FlagRule::Allow,
                rate: None,
            })
            .expect("distinct tunnels");
        }
        p
    }

    /// Applies `policy` after `old` to `counts` and returns the changes.
    fn step(counts: &mut PrefixCounts, policy: &Policy, old: &Policy) -> PrefixChanges {
        let changes = counts.changes(policy, old, &policy.previous_indices(old));
        counts.commit(&changes);
        changes
    }

    fn sorted(mut v: Vec<TriePrefix>) -> Vec<TriePrefix> {
        v.sort_by_key(|p| format!("{p:?}"));
        v
    }

    #[test]
    fn shared_prefixes_stay_until_their_last_tunnel_goes() {
        let mut counts = PrefixCounts::default();
        let empty = policy(&[]);
        let two = policy(&[("a", 1, 100), ("b", 2, 100)]);
        let first = step(&mut counts, &two, &empty);
        assert_eq!(
            sorted(first.insert),
            sorted(vec![(true, host(1)), (true, host(2)), (false, host(100))])
        );
        assert!(first.delete.is_empty());
        assert_eq!(counts.count(&(false, host(100))), 2);

        // b goes, c comes on a new local: the shared local stays in, b's peer goes out.
        let next = policy(&[("a", 1, 100), ("c", 3, 101)]);
        let changes = step(&mut counts, &next, &two);
        assert_eq!(
            sorted(changes.insert),
            sorted(vec![(true, host(3)), (false, host(101))])
        );
        assert_eq!(changes.delete, vec![(true, host(2))]);
        assert_eq!(counts.count(&(false, host(100))), 1);
        assert_eq!(counts.len(), 4);

        // The same policy again changes nothing; moving a tunnel's peer to another tunnel's
        // peer deletes only the one no longer used.
        assert_eq!(step(&mut counts, &next, &next), PrefixChanges::default());
        let moved = policy(&[("a", 1, 100), ("c", 1, 101)]);
        let changes = step(&mut counts, &moved, &next);
        assert!(changes.insert.is_empty());
        assert_eq!(changes.delete, vec![(true, host(3))]);
        assert_eq!(counts.count(&(true, host(1))), 2);

        // Everything goes.
        let changes = step(&mut counts, &empty, &moved);
        assert_eq!(changes.delete.len(), 3);
        assert!(counts.is_empty());
    }

    #[test]
    fn renamed_and_reordered_tunnels_are_counted_right() {
        let mut counts = PrefixCounts::default();
        let empty = policy(&[]);
        let abc = policy(&[("a", 1, 100), ("b", 2, 100), ("c", 3, 100)]);
        step(&mut counts, &abc, &empty);
        // Reordered: nothing changes in the tries.
        let cab = policy(&[("c", 3, 100), ("a", 1, 100), ("b", 2, 100)]);
        assert_eq!(
            step(&mut counts, &cab, &abc),
            PrefixChanges {
                delta: vec![],
                ..PrefixChanges::default()
            }
        );
        // Renamed: the old name leaves and the new one comes with the same addresses.
        let renamed = policy(&[("c", 3, 100), ("a", 1, 100), ("z", 2, 100)]);
        let changes = step(&mut counts, &renamed, &cab);
        assert!(changes.insert.is_empty() && changes.delete.is_empty());
        assert_eq!(counts.count(&(true, host(2))), 1);
        assert_eq!(counts.count(&(false, host(100))), 3);
    }
}

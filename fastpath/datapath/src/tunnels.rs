//! The kernel path's copy of the tunnel table: the validator's host pairs
//! ([`Policy::host_pairs`]) as entries of the program's `gg_hosts4`/`gg_hosts6` maps, its
//! prefix pairs ([`Policy::prefix_pairs`]) as the peer prefixes (`gg_peer_nets4/6`, each with an
//! id), the next shorter peer prefix covering each (`gg_net_parents`) and the pairs by (peer
//! prefix id, local prefix) (`gg_pairs4/6`), and the slot each tunnel holds in the per-tunnel
//! maps the kernel and the workers share (its policer cell in `gg_tunnel_tat`, its counters in
//! `gg_tunnel_counts`).
//!
//! A tunnel keeps its slot across reloads (found by name, as the workers carry its counts), so
//! its policer's fill and its kernel counts carry over with it. A slot freed by a reload is
//! reused last (first in, first out), long after the workers that still ran the old policy
//! have let go of it.

use std::collections::{HashMap, VecDeque};

use super::kernel_abi::{
    flag_rule, select, HostV4, HostV6, PairV4, PairV6, TunnelEntry, MAX_PEER_NETS, MAX_TUNNEL_SLOTS,
};
use validator::policy::{FlagRule, HostAddrs, HotRule, IpPrefix, PairKey, Policy};

/// A key of the maps whose values are tunnel entries: host pairs and prefix pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostKey {
    V4(HostV4),
    V6(HostV6),
    Pair4(PairV4),
    Pair6(PairV6),
}

/// What a reload changes in the kernel's tables, computed before anything is written.
#[derive(Debug, Default)]
pub struct Changes {
    /// Slot of each tunnel of the new policy (`None`: beyond the slots, judged in user space).
    pub slots: Vec<Option<u32>>,
    /// Slots taken by tunnels new to the kernel: their counters start from zero.
    pub fresh: Vec<u32>,
    /// Slots of tunnels the new policy no longer has.
    pub freed: Vec<u32>,
    /// Entries to write (new or changed).
    pub upsert: Vec<(HostKey, TunnelEntry)>,
    /// Entries to remove.
    pub delete: Vec<HostKey>,
    /// Id of each peer prefix of the new policy's prefix pairs.
    pub nets: HashMap<IpPrefix, u32>,
    /// Peer prefixes to add to the peer-prefix tries (new ones).
    pub net_insert: Vec<(IpPrefix, u32)>,
    /// Peer prefixes to remove (and their ids to free).
    pub net_delete: Vec<(IpPrefix, u32)>,
    /// Parents to write: (id, id of the next shorter covering peer prefix, 0 for none).
    pub parents: Vec<(u32, u32)>,
    /// The slot and peer-prefix id pools once the new policy's ids are taken (freed ones not
    /// yet returned).
    slot_pool: IdPool,
    net_pool: IdPool,
}

/// Ids handed to holders that keep them as long as they stay (tunnels' slots, peer prefixes'
/// ids): an id freed by one reload goes to the back of a queue and is reused by a later one,
/// first in first out, before ids never used yet.
#[derive(Clone, Debug, Default)]
struct IdPool {
    free: VecDeque<u32>,
    /// Ids never used yet start here.
    next: u32,
    /// One past the last id.
    end: u32,
}

impl IdPool {
    fn new(first: u32, end: u32) -> IdPool {
        IdPool {
            free: VecDeque::new(),
            next: first,
            end,
        }
    }

    /// An id, or `None` when all are taken.
    fn take(&mut self) -> Option<u32> {
        self.free.pop_front().or_else(|| {
            (self.next < self.end).then(|| {
                self.next += 1;
                self.next - 1
            })
        })
    }
}

/// The slots and host entries of the policy applied last.
#[derive(Debug)]
pub struct KernelTunnels {
    slots: Vec<Option<u32>>,
    slot_pool: IdPool,
    hosts: HashMap<HostKey, TunnelEntry>,
    /// Peer prefixes and their ids.
    nets: HashMap<IpPrefix, u32>,
    /// The parent written for each id.
    parents: HashMap<u32, u32>,
    /// Peer-prefix ids start at 1: 0 is "no parent".
    net_pool: IdPool,
}

impl Default for KernelTunnels {
    fn default() -> Self {
        KernelTunnels {
            slots: Vec::new(),
            slot_pool: IdPool::new(0, MAX_TUNNEL_SLOTS),
            hosts: HashMap::new(),
            nets: HashMap::new(),
            parents: HashMap::new(),
            net_pool: IdPool::new(1, MAX_PEER_NETS + 1),
        }
    }
}

impl KernelTunnels {
    /// The slot of tunnel `index` of the applied policy.
    pub fn slot(&self, index: u32) -> Option<u32> {
        self.slots.get(index as usize).copied().flatten()
    }

    /// Slot → tunnel index of the applied policy (`validator::NO_TUNNEL` for a free slot), up
    /// to the highest slot ever used.
    pub fn by_slot(&self) -> Vec<u32> {
        let mut t = vec![validator::NO_TUNNEL; self.slot_pool.next as usize];
        for (i, s) in (0u32..).zip(&self.slots) {
            if let Some(cell) = s.and_then(|s| t.get_mut(s as usize)) {
                *cell = i;
            }
        }
        t
    }

    /// Tunnels of the applied policy.
    pub fn tunnels(&self) -> usize {
        self.slots.len()
    }

    /// The parent written for peer-prefix id `id`.
    pub fn parent(&self, id: u32) -> Option<u32> {
        self.parents.get(&id).copied()
    }

    /// The entry written for `key`.
    pub fn entry(&self, key: &HostKey) -> Option<TunnelEntry> {
        self.hosts.get(key).copied()
    }

    /// Slots ever used (the counters worth reading lie below).
    pub fn high_water(&self) -> u32 {
        self.slot_pool.next
    }

    /// The changes from the applied policy to `policy`, whose tunnel `i` was tunnel
    /// `previous[i]` of it.
    pub fn changes(&self, policy: &Policy, previous: &[Option<u32>]) -> Changes {
        let mut c = Changes {
            slot_pool: self.slot_pool.clone(),
            net_pool: self.net_pool.clone(),
            ..Changes::default()
        };
        let mut kept = vec![false; self.slots.len()];
        for i in 0..policy.tunnel_count() {
            let carried = previous.get(i).copied().flatten().and_then(|o| {
                let s = self.slot(o)?;
                kept[o as usize] = true;
                Some(s)
            });
            let slot = carried.or_else(|| {
                let s = c.slot_pool.take()?;
                c.fresh.push(s);
                Some(s)
            });
            c.slots.push(slot);
        }
        c.freed = (0..self.slots.len())
            .filter(|&o| !kept[o])
            .filter_map(|o| self.slots[o])
            .collect();
        // Peer prefix ids: kept while the prefix stays, fresh (or freed long ago) for new ones.
        let pairs = policy.prefix_pairs();
        for p in &pairs {
            let net = p.peer;
            if c.nets.contains_key(&net) {
                continue;
            }
            let id = match self.nets.get(&net) {
                Some(&id) => Some(id),
                None => c.net_pool.take(),
            };
            if let Some(id) = id {
                if !self.nets.contains_key(&net) {
                    c.net_insert.push((net, id));
                }
                c.nets.insert(net, id);
            }
        }
        c.net_delete = self
            .nets
            .iter()
            .filter(|(net, _)| !c.nets.contains_key(net))
            .map(|(net, id)| (*net, *id))
            .collect();
        for (net, &id) in &c.nets {
            let parent = parent_of(*net, &c.nets);
            if self.parents.get(&id) != Some(&parent) {
                c.parents.push((id, parent));
            }
        }

        let mut wanted = HashMap::with_capacity(self.hosts.len());
        let entry_of = |tunnel: u32, key: PairKey, rule: HotRule| -> Option<TunnelEntry> {
            // Several tunnels on a pair: an entry that sends the frame up (with no entry the
            // program would look further and find another tunnel).
            let Some(select) = select_code(key) else {
                return Some(TunnelEntry {
                    select: select::SEVERAL,
                    ..TunnelEntry::default()
                });
            };
            // A tunnel beyond the slots has no entry: its pair's frames go up.
            let slot = c.slots.get(tunnel as usize).copied().flatten()?;
            let spec = policy.spec(tunnel)?;
            Some(TunnelEntry {
                rate_interval: spec.rate.map_or(0, |r| r.interval_ticks()),
                rate_tolerance: spec.rate.map_or(0, |r| r.tolerance_ticks()),
                slot,
                key: match key {
                    PairKey::Equal(k) => k,
                    _ => 0,
                },
                classes: rule.classes,
                select,
                version: rule.version,
                checksum: rule_code(rule.checksum),
                sequence: rule_code(rule.sequence),
                flags: rule.flags,
                pad: 0,
            })
        };
        for pair in policy.host_pairs() {
            if let Some(e) = entry_of(pair.tunnel, pair.key, pair.rule) {
                wanted.insert(host_key(pair.addrs), e);
            }
        }
        for pair in &pairs {
            let (Some(&net), Some(e)) = (
                c.nets.get(&pair.peer),
                entry_of(pair.tunnel, pair.key, pair.rule),
            ) else {
                continue;
            };
            wanted.insert(pair_key(net, pair.local), e);
        }
        c.upsert = wanted
            .iter()
            .filter(|(k, e)| self.hosts.get(k) != Some(e))
            .map(|(k, e)| (*k, *e))
            .collect();
        c.delete = self
            .hosts
            .keys()
            .filter(|k| !wanted.contains_key(k))
            .copied()
            .collect();
        c
    }

    /// Records `c` as applied.
    pub fn commit(&mut self, c: Changes) {
        self.net_pool = c.net_pool;
        for (_, id) in &c.net_delete {
            self.parents.remove(id);
            self.net_pool.free.push_back(*id);
        }
        self.parents.extend(c.parents.iter().copied());
        self.nets = c.nets;
        self.slot_pool = c.slot_pool;
        self.slot_pool.free.extend(c.freed);
        self.slots = c.slots;
        for k in c.delete {
            self.hosts.remove(&k);
        }
        self.hosts.extend(c.upsert);
    }
}

fn host_key(addrs: HostAddrs) -> HostKey {
    match addrs {
        HostAddrs::V4 { peer, local } => HostKey::V4(HostV4 {
            peer: peer.to_be_bytes(),
            local: local.to_be_bytes(),
        }),
        HostAddrs::V6 { peer, local } => HostKey::V6(HostV6 {
            peer: peer.to_be_bytes(),
            local: local.to_be_bytes(),
        }),
    }
}

/// The key of a prefix pair: the peer prefix's id, then the local prefix.
fn pair_key(net: u32, local: IpPrefix) -> HostKey {
    match local {
        IpPrefix::V4(a, len) => HostKey::Pair4(PairV4 {
            prefixlen: 32 + u32::from(len),
            net: net.to_be_bytes(),
            local: a.to_be_bytes(),
        }),
        IpPrefix::V6(a, len) => HostKey::Pair6(PairV6 {
            prefixlen: 32 + u32::from(len),
            net: net.to_be_bytes(),
            local: a.to_be_bytes(),
        }),
    }
}

/// The id of the longest peer prefix in `nets` that covers `net` and is shorter; 0 for none.
fn parent_of(net: IpPrefix, nets: &HashMap<IpPrefix, u32>) -> u32 {
    (0..net.len())
        .rev()
        .find_map(|len| {
            let shorter = match net {
                IpPrefix::V4(a, _) => IpPrefix::new(std::net::Ipv4Addr::from(a).into(), len),
                IpPrefix::V6(a, _) => IpPrefix::new(std::net::Ipv6Addr::from(a).into(), len),
            }?;
            nets.get(&shorter).copied()
        })
        .unwrap_or(0)
}

fn select_code(key: PairKey) -> Option<u8> {
    match key {
        PairKey::Any => Some(select::ANY),
        PairKey::Absent => Some(select::ABSENT),
        PairKey::Equal(_) => Some(select::EQUAL),
        PairKey::Several => None,
    }
}

fn rule_code(rule: FlagRule) -> u8 {
    match rule {
        FlagRule::Allow => flag_rule::ALLOW,
        FlagRule::Require => flag_rule::REQUIRE,
        FlagRule::Forbid => flag_rule::FORBID,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn policy(tunnels: &[(&str, &str, &str)]) -> Arc<Policy> {
        let mut text = String::new();
        for (name, peer, key) in tunnels {
            text += &format!(
                "[[tunnel]]\nname = \"{name}\"\npeer = \"{peer}\"\nlocal = \"198.51.100.10\"\n{key}\n"
            );
        }
        config::load_str(&text, "policy").expect("policy").policy
    }

    /// Applies `new` after `old`: the slots, and how many entries were written and removed.
    fn apply(
        k: &mut KernelTunnels,
        old: &Policy,
        new: &Policy,
    ) -> (Vec<Option<u32>>, usize, usize) {
        let c = k.changes(new, &new.previous_indices(old));
        let (upsert, delete) = (c.upsert.len(), c.delete.len());
        k.commit(c);
        let tunnels = u32::try_from(new.tunnel_count()).expect("a few tunnels");
        let slots = (0..tunnels).map(|i| k.slot(i)).collect();
        (slots, upsert, delete)
    }

    #[test]
    fn tunnels_keep_their_slots_across_reloads_and_freed_slots_are_reused_last() {
        let mut k = KernelTunnels::default();
        let empty = policy(&[]);
        let first = policy(&[
            ("a", "203.0.113.1", ""),
            ("b", "203.0.113.2", ""),
            ("c", "203.0.113.0/24", ""),
        ]);
        let (slots, upsert, delete) = apply(&mut k, &empty, &first);
        assert_eq!(slots, [Some(0), Some(1), Some(2)]);
        // Two host pairs and a prefix pair.
        assert_eq!((upsert, delete), (3, 0));
        // b goes, d comes: a and c keep their slots, d gets a fresh one (b's is reused last).
        let second = policy(&[
            ("c", "203.0.113.0/24", ""),
            ("d", "203.0.113.4", ""),
            ("a", "203.0.113.1", ""),
        ]);
        let (slots, upsert, delete) = apply(&mut k, &first, &second);
        assert_eq!(slots, [Some(2), Some(3), Some(0)]);
        assert_eq!((upsert, delete), (1, 1));
        assert_eq!(k.by_slot(), [2, validator::NO_TUNNEL, 0, 1]);
        // Nothing changed: nothing written.
        let (_, upsert, delete) = apply(&mut k, &second, &second);
        assert_eq!((upsert, delete), (0, 0));
    }

    #[test]
    fn a_pair_with_several_tunnels_sends_its_frames_up_and_a_key_rule_is_written() {
        let mut k = KernelTunnels::default();
        let one = policy(&[("a", "203.0.113.1", "key = 7")]);
        apply(&mut k, &policy(&[]), &one);
        let entry = k.hosts.values().next().copied().expect("an entry");
        assert_eq!((entry.select, entry.key), (select::EQUAL, 7));
        let two = policy(&[
            ("a", "203.0.113.1", "key = 7"),
            ("b", "203.0.113.1", "key = 8"),
        ]);
        let (_, upsert, delete) = apply(&mut k, &one, &two);
        assert_eq!((upsert, delete), (1, 0));
        let entry = k.hosts.values().next().copied().expect("an entry");
        assert_eq!(entry.select, select::SEVERAL);
    }

    #[test]
    fn peer_prefixes_get_ids_and_each_points_to_the_next_shorter_one() {
        let k = KernelTunnels::default();
        let p = policy(&[
            ("wide", "203.0.0.0/16", ""),
            ("narrow", "203.0.113.0/24", ""),
            ("other", "192.0.2.0/24", ""),
        ]);
        let c = k.changes(&p, &[None, None, None]);
        let id = |s: &str| {
            let (a, l) = s.split_once('/').unwrap();
            c.nets[&IpPrefix::new(a.parse().unwrap(), l.parse().unwrap()).unwrap()]
        };
        let parents: HashMap<u32, u32> = c.parents.iter().copied().collect();
        assert_eq!(parents[&id("203.0.113.0/24")], id("203.0.0.0/16"));
        assert_eq!(parents[&id("203.0.0.0/16")], 0);
        assert_eq!(parents[&id("192.0.2.0/24")], 0);
        assert_eq!(c.upsert.len(), 3);
    }
}

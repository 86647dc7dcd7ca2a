//! The kernel path's copy of the tunnel table: the validator's host pairs
//! ([`Policy::host_pairs`]) as entries of the program's `gg_hosts4`/`gg_hosts6` maps, and the
//! slot each tunnel holds in the per-tunnel maps the kernel and the workers share (its policer
//! cell in `gg_tunnel_tat`, its counters in `gg_tunnel_counts`).
//!
//! A tunnel keeps its slot across reloads (found by name, as the workers carry its counts), so
//! its policer's fill and its kernel counts carry over with it. A slot freed by a reload is
//! reused last (first in, first out), long after the workers that still ran the old policy
//! have let go of it.

use std::collections::{HashMap, VecDeque};

use super::kernel_abi::{flag_rule, select, HostV4, HostV6, TunnelEntry, MAX_TUNNEL_SLOTS};
use validator::policy::{FlagRule, HostAddrs, PairKey, Policy};

/// A key of the host-pair maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostKey {
    V4(HostV4),
    V6(HostV6),
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
}

/// The slots and host entries of the policy applied last.
#[derive(Debug, Default)]
pub struct KernelTunnels {
    slots: Vec<Option<u32>>,
    free: VecDeque<u32>,
    /// Slots never used yet start here.
    next: u32,
    hosts: HashMap<HostKey, TunnelEntry>,
}

impl KernelTunnels {
    /// The slot of tunnel `index` of the applied policy.
    pub fn slot(&self, index: u32) -> Option<u32> {
        self.slots.get(index as usize).copied().flatten()
    }

    /// Slot → tunnel index of the applied policy (`validator::NO_TUNNEL` for a free slot), up
    /// to the highest slot ever used.
    pub fn by_slot(&self) -> Vec<u32> {
        let mut t = vec![validator::NO_TUNNEL; self.next as usize];
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

    /// The entry written for `key`.
    pub fn entry(&self, key: &HostKey) -> Option<TunnelEntry> {
        self.hosts.get(key).copied()
    }

    /// Slots ever used (the counters worth reading lie below).
    pub fn high_water(&self) -> u32 {
        self.next
    }

    /// The changes from the applied policy to `policy`, whose tunnel `i` was tunnel
    /// `previous[i]` of it.
    pub fn changes(&self, policy: &Policy, previous: &[Option<u32>]) -> Changes {
        let mut c = Changes::default();
        let mut free = self.free.clone();
        let mut next = self.next;
        let mut kept = vec![false; self.slots.len()];
        for i in 0..policy.tunnel_count() {
            let carried = previous.get(i).copied().flatten().and_then(|o| {
                let s = self.slot(o)?;
                kept[o as usize] = true;
                Some(s)
            });
            let slot = carried.or_else(|| {
                let s = free.pop_front().or_else(|| {
                    (next < MAX_TUNNEL_SLOTS).then(|| {
                        next += 1;
                        next - 1
                    })
                })?;
                c.fresh.push(s);
                Some(s)
            });
            c.slots.push(slot);
        }
        c.freed = (0..self.slots.len())
            .filter(|&o| !kept[o])
            .filter_map(|o| self.slots[o])
            .collect();
        let mut wanted = HashMap::with_capacity(self.hosts.len());
        for pair in policy.host_pairs() {
            // Several tunnels on a pair go up: no entry, so the program hands the frame up.
            let Some(select) = select_code(pair.key) else {
                continue;
            };
            let (Some(slot), Some(spec)) = (
                c.slots.get(pair.tunnel as usize).copied().flatten(),
                policy.spec(pair.tunnel),
            ) else {
                continue;
            };
            let entry = TunnelEntry {
                rate_interval: spec.rate.map_or(0, |r| r.interval_ticks()),
                rate_tolerance: spec.rate.map_or(0, |r| r.tolerance_ticks()),
                slot,
                key: match pair.key {
                    PairKey::Equal(k) => k,
                    _ => 0,
                },
                classes: pair.rule.classes,
                select,
                version: pair.rule.version,
                checksum: rule_code(pair.rule.checksum),
                sequence: rule_code(pair.rule.sequence),
                flags: pair.rule.flags,
                pad: 0,
            };
            wanted.insert(host_key(pair.addrs), entry);
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
        for s in &c.fresh {
            if let Some(at) = self.free.iter().position(|f| f == s) {
                self.free.remove(at);
            } else {
                self.next = self.next.max(s + 1);
            }
        }
        self.free.extend(c.freed);
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

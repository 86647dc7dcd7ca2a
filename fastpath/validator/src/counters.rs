//! Plain per-worker counters: arrays indexed by port, reason and verdict. The hot path adds to
//! them; a slow path (or `replay`) reads them. No atomics, no locks, no metrics calls.

use crate::reason::{Decision, Direction, Reason, Verdict};

/// Packets and bytes per (port, reason, verdict), and per tunnel and verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counters {
    pub packets: [[[u64; Verdict::COUNT]; Reason::COUNT]; 2],
    pub bytes: [[[u64; Verdict::COUNT]; Reason::COUNT]; 2],
    pub tunnel_packets: Vec<[u64; Verdict::COUNT]>,
}

impl Counters {
    /// Zeroed counters for `tunnels` tunnels.
    pub fn new(tunnels: usize) -> Counters {
        Counters {
            packets: [[[0; Verdict::COUNT]; Reason::COUNT]; 2],
            bytes: [[[0; Verdict::COUNT]; Reason::COUNT]; 2],
            tunnel_packets: vec![[0; Verdict::COUNT]; tunnels],
        }
    }

    /// Counts one frame of `len` bytes.
    #[inline]
    pub fn record(&mut self, dir: Direction, d: Decision, len: usize) {
        let (p, r, v) = (dir as usize, d.reason.index(), d.verdict as usize);
        if let Some(c) = self
            .packets
            .get_mut(p)
            .and_then(|a| a.get_mut(r))
            .and_then(|a| a.get_mut(v))
        {
            *c += 1;
        }
        if let Some(c) = self
            .bytes
            .get_mut(p)
            .and_then(|a| a.get_mut(r))
            .and_then(|a| a.get_mut(v))
        {
            *c += len as u64;
        }
        if let Some(t) = d.tunnel().and_then(|t| self.tunnel_packets.get_mut(t)) {
            if let Some(c) = t.get_mut(v) {
                *c += 1;
            }
        }
    }

    /// Adds `other` (another worker's counters) to these.
    pub fn add(&mut self, other: &Counters) {
        let pairs = self
            .packets
            .iter_mut()
            .flatten()
            .flatten()
            .zip(other.packets.iter().flatten().flatten());
        let bytes = self
            .bytes
            .iter_mut()
            .flatten()
            .flatten()
            .zip(other.bytes.iter().flatten().flatten());
        for (a, b) in pairs.chain(bytes) {
            *a += b;
        }
        if self.tunnel_packets.len() < other.tunnel_packets.len() {
            self.tunnel_packets
                .resize(other.tunnel_packets.len(), [0; Verdict::COUNT]);
        }
        for (a, b) in self.tunnel_packets.iter_mut().zip(&other.tunnel_packets) {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        }
    }

    /// Packets for one (port, reason, verdict).
    pub fn packets(&self, dir: Direction, reason: Reason, verdict: Verdict) -> u64 {
        self.packets[dir as usize][reason.index()][verdict as usize]
    }

    /// All packets counted on a port.
    pub fn port_total(&self, dir: Direction) -> u64 {
        self.packets[dir as usize].iter().flatten().sum()
    }

    /// All packets counted.
    pub fn total(&self) -> u64 {
        self.port_total(Direction::FromOutside) + self.port_total(Direction::FromInside)
    }
}

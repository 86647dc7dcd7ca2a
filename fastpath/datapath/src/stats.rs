//! What a worker publishes for the rest of the process to read.
//!
//! A worker counts in plain integers it alone owns and copies them, every
//! [`PUBLISH_INTERVAL_NS`] and once more when it stops, into a [`WorkerStats`] of relaxed atomics
//! on cache lines of their own. Readers (the per-second line, the metrics endpoint, the final
//! report) take [`Snapshot`]s; nothing on the hot path touches a shared cache line per packet.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use arc_swap::ArcSwap;

use validator::counters::Counters;
use validator::reason::{Reason, Verdict};

/// How often a worker publishes its counters.
pub const PUBLISH_INTERVAL_NS: u64 = 100_000_000;

/// Declares a plain counter struct and its atomic mirror with `store`/`load` between them.
macro_rules! published {
    ($(#[$doc:meta])* $plain:ident / $atomic:ident { $($(#[$fdoc:meta])* $field:ident),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $plain { $($(#[$fdoc])* pub $field: u64,)* }

        impl $plain {
            /// Adds `other` field by field (for totals over workers).
            pub fn add(&mut self, other: &$plain) {
                $(self.$field += other.$field;)*
            }
        }

        #[doc = concat!("The published, atomic copy of [`", stringify!($plain), "`].")]
        #[derive(Debug, Default)]
        pub struct $atomic { $($field: AtomicU64,)* }

        impl $atomic {
            pub fn store(&self, v: &$plain) {
                $(self.$field.store(v.$field, Relaxed);)*
            }
            pub fn load(&self) -> $plain {
                $plain { $($field: self.$field.load(Relaxed),)* }
            }
        }
    };
}

published! {
    /// Per port and worker: ring traffic and ring health.
    PortCounters / AtomicPortCounters {
        /// Frames taken from the RX ring (each gets one verdict and one reason).
        rx_packets,
        /// Bytes of those frames.
        rx_bytes,
        /// Frames placed on the TX ring (forwarded from the other port).
        tx_packets,
        /// RX polls that found the ring empty.
        rx_empty_polls,
        /// Forwarded frames dropped because this port's TX ring stayed full.
        tx_ring_full,
        /// Refills that found no free frame while the fill ring was below its target.
        fill_starved,
        /// `sendto()` kicks of the TX ring.
        tx_kicks,
        /// Kicks that failed with an unexpected error.
        tx_kick_errors,
        /// Dropped GRE frames sampled to the slow path (received on this port).
        samples,
        /// Samples lost because the slow path's ring was full.
        samples_dropped,
        /// Frames the kernel dropped because they did not fit a UMEM frame (copy mode drops
        /// them before the socket sees them: `rx_dropped` less the fill-ring-empty drops).
        /// Counted under reason `oversize` too.
        kernel_oversize,
        /// The kernel's `XDP_STATISTICS` for this socket.
        xdp_rx_dropped,
        xdp_rx_invalid_descs,
        xdp_rx_ring_full,
        xdp_rx_fill_ring_empty_descs,
        xdp_tx_invalid_descs,
        xdp_tx_ring_empty_descs,
    }
}

published! {
    /// Where a worker's UMEM frames are: `free + fill + tx + in_hand == total` always holds.
    /// `fill` counts frames given to the kernel for receiving and not yet returned on the RX
    /// ring; `tx` frames put on a TX ring whose completion has not come back.
    FrameLedger / AtomicFrameLedger {
        total,
        free,
        fill,
        tx,
        /// Frames held by the worker between taking them from a ring and putting them on
        /// another: zero whenever it publishes.
        in_hand,
    }
}

impl FrameLedger {
    /// Whether every frame is accounted for.
    pub fn balanced(&self) -> bool {
        self.free + self.fill + self.tx + self.in_hand == self.total
    }
}

/// One worker's published counters.
#[derive(Debug)]
#[repr(align(128))]
pub struct WorkerStats {
    packets: [[[AtomicU64; Verdict::COUNT]; Reason::COUNT]; 2],
    bytes: [[[AtomicU64; Verdict::COUNT]; Reason::COUNT]; 2],
    /// Per tunnel of the running policy; replaced (by the worker) when a reload changes the
    /// tunnel list, so it sits behind an `ArcSwap` that the worker loads once per publication.
    tunnel_packets: ArcSwap<TunnelStats>,
    /// Generation of the policy the worker runs.
    generation: AtomicU64,
    ports: [AtomicPortCounters; 2],
    frames: AtomicFrameLedger,
    /// Incremented after each publication.
    publications: AtomicU64,
}

/// Per-tunnel packets by verdict, published by one worker for one policy generation.
pub type TunnelStats = Box<[[AtomicU64; Verdict::COUNT]]>;

/// Zeroed per-tunnel stats for `tunnels` tunnels.
pub fn tunnel_stats(tunnels: usize) -> Arc<TunnelStats> {
    Arc::new((0..tunnels).map(|_| Default::default()).collect())
}

/// A consistent-enough copy of a worker's (or the sum of several workers') counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub counters: Counters,
    pub ports: [PortCounters; 2],
    pub frames: FrameLedger,
    pub publications: u64,
    /// The policy generation (the highest of the workers' in a sum).
    pub generation: u64,
    /// What the fast lane decided in the kernel (already folded into `counters`), when it runs.
    pub kernel: Option<super::lane::LaneCounters>,
}

impl Snapshot {
    /// Zeroed counters for `tunnels` tunnels.
    pub fn new(tunnels: usize) -> Snapshot {
        Snapshot {
            counters: Counters::new(tunnels),
            ports: [PortCounters::default(); 2],
            frames: FrameLedger::default(),
            publications: 0,
            generation: 0,
            kernel: None,
        }
    }

    /// Folds the fast lane's decisions into the counters: one set of books for the frames
    /// decided in the kernel and those decided by the workers.
    pub fn with_kernel(mut self, kernel: Option<super::lane::LaneCounters>) -> Snapshot {
        if let Some(k) = &kernel {
            self.counters.add(&k.verdicts);
        }
        self.kernel = kernel;
        self
    }

    /// Frames the kernel judged on port `p` (0 without a fast lane).
    pub fn kernel_judged(&self, p: usize) -> u64 {
        self.kernel.as_ref().map_or(0, |k| k.judged(p))
    }

    /// The sum of several workers' snapshots.
    pub fn sum(parts: &[Snapshot]) -> Snapshot {
        let mut total = Snapshot::new(0);
        for p in parts {
            total.add(p);
        }
        total
    }

    /// Adds another worker's snapshot.
    pub fn add(&mut self, other: &Snapshot) {
        self.counters.add(&other.counters);
        for (a, b) in self.ports.iter_mut().zip(&other.ports) {
            a.add(b);
        }
        self.frames.add(&other.frames);
        self.publications += other.publications;
        self.generation = self.generation.max(other.generation);
    }
}

impl WorkerStats {
    /// Zeroed stats for `tunnels` tunnels.
    pub fn new(tunnels: usize) -> WorkerStats {
        WorkerStats {
            packets: Default::default(),
            bytes: Default::default(),
            tunnel_packets: ArcSwap::new(tunnel_stats(tunnels)),
            generation: AtomicU64::new(1),
            ports: Default::default(),
            frames: AtomicFrameLedger::default(),
            publications: AtomicU64::new(0),
        }
    }

    /// Copies a worker's plain counters in (called by the worker only).
    pub fn publish(&self, counters: &Counters, ports: &[PortCounters; 2], frames: &FrameLedger) {
        for (dst, src) in self
            .packets
            .iter()
            .flatten()
            .flatten()
            .zip(counters.packets.iter().flatten().flatten())
        {
            dst.store(*src, Relaxed);
        }
        for (dst, src) in self
            .bytes
            .iter()
            .flatten()
            .flatten()
            .zip(counters.bytes.iter().flatten().flatten())
        {
            dst.store(*src, Relaxed);
        }
        let tunnels = self.tunnel_packets.load();
        for (dst, src) in tunnels.iter().zip(&counters.tunnel_packets) {
            for (d, s) in dst.iter().zip(src) {
                d.store(*s, Relaxed);
            }
        }
        for (dst, src) in self.ports.iter().zip(ports) {
            dst.store(src);
        }
        self.frames.store(frames);
        self.publications.fetch_add(1, Relaxed);
    }

    /// Switches to the per-tunnel stats of a new policy generation (called by the worker when
    /// it applies a reload). The previous stats stay alive in the worker's retired state and
    /// are freed by the slow path.
    pub fn switch_policy(&self, generation: u64, tunnels: Arc<TunnelStats>) {
        self.tunnel_packets.store(tunnels);
        self.generation.store(generation, Relaxed);
    }

    /// The per-tunnel stats the worker currently publishes into.
    pub fn tunnel_stats(&self) -> Arc<TunnelStats> {
        self.tunnel_packets.load_full()
    }

    /// Reads the last publication.
    pub fn snapshot(&self) -> Snapshot {
        let tunnels = self.tunnel_packets.load();
        let mut s = Snapshot::new(tunnels.len());
        for (dst, src) in s
            .counters
            .packets
            .iter_mut()
            .flatten()
            .flatten()
            .zip(self.packets.iter().flatten().flatten())
        {
            *dst = src.load(Relaxed);
        }
        for (dst, src) in s
            .counters
            .bytes
            .iter_mut()
            .flatten()
            .flatten()
            .zip(self.bytes.iter().flatten().flatten())
        {
            *dst = src.load(Relaxed);
        }
        for (dst, src) in s.counters.tunnel_packets.iter_mut().zip(tunnels.iter()) {
            for (d, a) in dst.iter_mut().zip(src) {
                *d = a.load(Relaxed);
            }
        }
        for (dst, src) in s.ports.iter_mut().zip(&self.ports) {
            *dst = src.load();
        }
        s.frames = self.frames.load();
        s.publications = self.publications.load(Relaxed);
        s.generation = self.generation.load(Relaxed);
        s
    }
}

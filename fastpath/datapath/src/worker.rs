//! The worker loop: every step of a frame's life between the two ports, in one place.
//!
//! A worker owns one UMEM and the two sockets bound to it (the outside and the inside port on
//! the same queue id). Per round it
//!
//! 1. takes back the frames whose transmission completed (completion rings → free pool),
//! 2. tops up both fill rings from the free pool (the kernel receives into those frames),
//! 3. takes a batch from each RX ring, classifies it with one clock read, counts every frame
//!    once, moves the descriptors of forwarded frames onto the *other* port's TX ring (the
//!    packet bytes are not copied) and returns dropped frames to the free pool,
//! 4. kicks each TX ring that holds frames (copy mode transmits only inside `sendto()`, at most
//!    32 frames per call, so it kicks until the ring is empty or a bound is reached),
//! 5. when nothing moved for a while and nothing is in flight, sleeps in `poll()` on both RX
//!    sockets so an idle box does not burn its core.
//!
//! No allocation (every buffer is sized at start), no lock, no syscall per packet.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use xsk_rs::{FrameDesc, Umem};

use super::port::Port;
use super::reload::PolicyState;
use super::sample::{Offered, Rates, Sampler};
use super::stats::TunnelStats;
use super::stats::{FrameLedger, PortCounters, WorkerStats, PUBLISH_INTERVAL_NS};
use validator::classify::Classifier;
use validator::counters::Counters;
use validator::policy::Policy;
use validator::reason::{Decision, Direction, Reason, Verdict};

/// The largest batch a worker takes from an RX ring at once.
pub const MAX_BATCH: usize = config::MAX_BATCH_SIZE as usize;

/// Kicks per TX ring per round at most (each moves up to 32 frames in copy mode).
const MAX_KICKS: u32 = 16;

/// Empty rounds before the worker sleeps in `poll()`.
const SPIN_ROUNDS: u32 = 256;

/// How long an idle worker sleeps at most before it looks at its stop flag and publishes.
const IDLE_POLL_MS: i32 = 10;

/// How long a stopping worker waits for its TX rings to drain.
const DRAIN_NS: u64 = 200_000_000;

/// `XDP_PKT_CONTD` (`linux/if_xdp.h`): the frame continues in the next descriptor.
const XDP_PKT_CONTD: u32 = 1;

/// The sizes a worker is built with.
#[derive(Clone, Copy, Debug)]
pub struct WorkerConfig {
    /// UMEM frames this worker owns.
    pub frames: u32,
    /// Fill ring size (also the completion ring's) per port.
    pub fill_size: u32,
    /// Frames taken from an RX ring per batch (`1..=MAX_BATCH`).
    pub batch: usize,
    /// Bytes of frame data a UMEM frame holds (frame size minus headroom).
    pub capacity: usize,
    /// How often frames are sampled for the slow path.
    pub sampling: Rates,
}

/// What a worker reports when it stops.
#[derive(Clone, Debug)]
pub struct WorkerReport {
    pub frames: FrameLedger,
    pub ports: [PortCounters; 2],
}

/// What a worker shares with the rest of the process: the policy it classifies with, where it
/// publishes its counters, the flag that stops it, and the ring its samples go to.
pub struct Shared {
    pub policy: Arc<Policy>,
    pub stats: Arc<WorkerStats>,
    pub stop: Arc<AtomicBool>,
    pub samples: Sampler,
    /// New policies from the slow path, and the states they replaced going back.
    pub reloads: rtrb::Consumer<Box<PolicyState>>,
    pub retired: rtrb::Producer<Box<PolicyState>>,
    /// The data path's clock: policer time is nanoseconds since this instant.
    pub epoch: Instant,
    /// The policy's policers, shared with every other worker (and the kernel's budget).
    pub buckets: validator::classify::Buckets,
}

/// A worker: one UMEM, two ports, the classifier state and the counters.
pub struct Worker {
    // Field order matters for drop order: sockets before the UMEM they use.
    ports: [Port; 2],
    umem: Umem,
    free: Vec<FrameDesc>,
    ledger: FrameLedger,
    in_fill: [u32; 2],
    in_tx: [u32; 2],
    config: WorkerConfig,
    rx_buf: Vec<FrameDesc>,
    tx_buf: Vec<FrameDesc>,
    cq_buf: Vec<FrameDesc>,
    decisions: Vec<Decision>,
    lens: Vec<usize>,
    classifier: Classifier,
    policy: Arc<Policy>,
    counters: Counters,
    port_counters: [PortCounters; 2],
    stats: Arc<WorkerStats>,
    stop: Arc<AtomicBool>,
    clock: Instant,
    samples: Sampler,
    /// Generation of the policy in use.
    generation: u64,
    /// Where the per-tunnel counts of this policy are published.
    tunnel_stats: Arc<TunnelStats>,
    reloads: rtrb::Consumer<Box<PolicyState>>,
    retired: rtrb::Producer<Box<PolicyState>>,
}

impl Worker {
    /// A worker over `ports` (outside, inside) sharing `umem`, whose frames are `descs`.
    pub fn new(
        ports: [Port; 2],
        umem: Umem,
        descs: Vec<FrameDesc>,
        config: WorkerConfig,
        shared: Shared,
    ) -> Worker {
        let Shared {
            policy,
            stats,
            stop,
            samples,
            reloads,
            retired,
            epoch,
            buckets,
        } = shared;
        let mut samples = samples;
        samples.set_rates(config.sampling);
        let batch = config.batch.clamp(1, MAX_BATCH);
        let total = descs.len();
        let mut free = Vec::with_capacity(total);
        free.extend_from_slice(&descs);
        let clock = epoch;
        let tunnel_stats = stats.tunnel_stats();
        Worker {
            ports,
            umem,
            free,
            ledger: FrameLedger {
                total: total as u64,
                free: total as u64,
                ..FrameLedger::default()
            },
            in_fill: [0; 2],
            in_tx: [0; 2],
            config: WorkerConfig { batch, ..config },
            rx_buf: vec![FrameDesc::default(); batch],
            tx_buf: vec![FrameDesc::default(); batch],
            cq_buf: vec![FrameDesc::default(); config.fill_size as usize],
            decisions: vec![Decision::new(Verdict::Drop, Reason::Oversize); batch],
            lens: vec![0; batch],
            classifier: Classifier::with_buckets(buckets),
            counters: Counters::new(policy.tunnel_count()),
            policy,
            port_counters: [PortCounters::default(); 2],
            stats,
            stop,
            clock,
            samples,
            generation: 1,
            tunnel_stats,
            reloads,
            retired,
        }
    }

    /// Runs until the stop flag is set, then drains the TX rings and publishes a last time.
    pub fn run(mut self) -> WorkerReport {
        let mut last_publish = 0u64;
        let mut idle = 0u32;
        while !self.stop.load(Relaxed) {
            self.take_reload();
            let now = self.now_ns();
            self.reclaim(0);
            self.reclaim(1);
            self.refill();
            let moved = self.forward(Direction::FromOutside, now)
                + self.forward(Direction::FromInside, now);
            self.kick(0);
            self.kick(1);
            if moved == 0 && self.in_tx == [0, 0] {
                idle += 1;
                if idle >= SPIN_ROUNDS {
                    self.sleep();
                    idle = 0;
                }
            } else {
                idle = 0;
            }
            if now.wrapping_sub(last_publish) >= PUBLISH_INTERVAL_NS {
                self.publish();
                last_publish = now;
            }
        }
        self.drain();
        self.publish();
        WorkerReport {
            frames: self.ledger,
            ports: self.port_counters,
        }
    }

    /// Between batches: switches to a policy the slow path prepared, if one is waiting.
    /// Per-tunnel counts carry over for tunnels whose name persists (their policers did already:
    /// the new buckets keep their cells); the replaced state goes back to the slow path to be
    /// freed there.
    #[inline]
    fn take_reload(&mut self) {
        let Ok(mut next) = self.reloads.pop() else {
            return;
        };
        {
            let PolicyState {
                previous,
                tunnel_packets,
                ..
            } = &mut *next;
            for (counts, old) in tunnel_packets.iter_mut().zip(previous.iter()) {
                if let Some(c) = old.and_then(|o| self.counters.tunnel_packets.get(o as usize)) {
                    *counts = *c;
                }
            }
        }
        std::mem::swap(&mut self.policy, &mut next.policy);
        std::mem::swap(&mut self.classifier, &mut next.classifier);
        std::mem::swap(&mut self.counters.tunnel_packets, &mut next.tunnel_packets);
        std::mem::swap(&mut self.tunnel_stats, &mut next.tunnel_stats);
        std::mem::swap(&mut self.generation, &mut next.generation);
        let rates = self.samples.rates();
        self.samples.set_rates(next.sampling);
        next.sampling = rates;
        self.stats
            .switch_policy(self.generation, self.tunnel_stats.clone());
        self.publish();
        // The ring has room for every reload the slow path may have pending; if it had none,
        // dropping here would only free on this core, never lose a frame.
        let _ = self.retired.push(next);
    }

    // Nanoseconds since the worker started fit u64 for 584 years.
    #[allow(clippy::cast_possible_truncation)]
    fn now_ns(&self) -> u64 {
        self.clock.elapsed().as_nanos() as u64
    }

    /// Step 1: completions of port `p` back to the free pool.
    #[inline]
    fn reclaim(&mut self, p: usize) {
        if self.in_tx[p] == 0 {
            return;
        }
        // SAFETY: the completion ring hands back frames of this worker's UMEM that the kernel
        // has finished sending; they are owned by the worker again from here on.
        let n = unsafe { self.ports[p].cq.consume(&mut self.cq_buf) };
        // The pool has room for every frame of the UMEM, so this never reallocates.
        self.free.extend_from_slice(&self.cq_buf[..n]);
        // n ≤ cq_buf.len(), which is fill_size, a u32.
        #[allow(clippy::cast_possible_truncation)]
        let n = n as u32;
        self.in_tx[p] = self.in_tx[p].saturating_sub(n);
    }

    /// Step 2: fill rings topped up from the free pool, the emptier port first.
    #[inline]
    fn refill(&mut self) {
        let order = if self.in_fill[0] <= self.in_fill[1] {
            [0, 1]
        } else {
            [1, 0]
        };
        for p in order {
            let want = self.config.fill_size.saturating_sub(self.in_fill[p]) as usize;
            if want == 0 {
                continue;
            }
            if self.free.is_empty() {
                self.port_counters[p].fill_starved += 1;
                continue;
            }
            let take = want.min(self.free.len());
            let from = self.free.len() - take;
            // SAFETY: the frames in the free pool belong to this worker's UMEM and are on no
            // ring; once produced they are the kernel's until they come back on the RX ring.
            let done = unsafe { self.ports[p].fq.produce(&self.free[from..]) };
            // The ring took the first `done` of the slice (libxdp reserves all or nothing, but
            // do not rely on it): exactly those leave the pool. Draining does not allocate.
            self.free.drain(from..from + done);
            // done ≤ take ≤ want, which came from a u32.
            #[allow(clippy::cast_possible_truncation)]
            let done = done as u32;
            self.in_fill[p] += done;
            let port = &mut self.ports[p];
            if done > 0 && port.fq.needs_wakeup() {
                // A failed wakeup only delays reception; the next round retries.
                let _ = port.fq.wakeup(port.rx.fd_mut(), 0);
            }
        }
    }

    /// Step 3: one RX batch of the port frames arrive on from `dir`, classified and dispatched
    /// to the other port. Returns the frames taken.
    #[inline]
    fn forward(&mut self, dir: Direction, now: u64) -> usize {
        let (p, o) = (dir.index(), dir.other().index());
        let batch = self.config.batch;
        // SAFETY: the descriptors come from this UMEM's RX ring; the kernel does not touch
        // those frames again until the worker puts them on a fill or TX ring below.
        let n = unsafe { self.ports[p].rx.consume(&mut self.rx_buf[..batch]) };
        if n == 0 {
            self.port_counters[p].rx_empty_polls += 1;
            return 0;
        }
        // n ≤ batch ≤ MAX_BATCH (256).
        #[allow(clippy::cast_possible_truncation)]
        let taken = n as u32;
        self.in_fill[p] = self.in_fill[p].saturating_sub(taken);
        let capacity = self.config.capacity;

        let mut forwarded = 0;
        let mut rx_bytes = 0u64;
        {
            let mut frames: [&[u8]; MAX_BATCH] = [&[]; MAX_BATCH];
            // What the classifier sees: an oversize frame (longer than a UMEM frame holds, or
            // continued in another descriptor) is decided before classification, as an empty
            // frame, so it can spend no policer token.
            let mut judged: [&[u8]; MAX_BATCH] = [&[]; MAX_BATCH];
            for (((frame, seen), desc), len) in frames
                .iter_mut()
                .zip(judged.iter_mut())
                .zip(&self.rx_buf[..n])
                .zip(self.lens.iter_mut())
            {
                *len = desc.lengths().data();
                // SAFETY: `desc` was just received on this UMEM and is not on any ring, so the
                // kernel does not write the frame while this shared view of it lives (it ends
                // with this block, before any descriptor is handed to a ring).
                *frame = unsafe { self.umem.data(desc) }.contents();
                if !oversize(*len, capacity, desc) {
                    *seen = frame;
                }
            }
            self.classifier.classify_batch(
                &self.policy,
                now,
                dir,
                &judged[..n],
                &mut self.decisions[..n],
            );
            for (i, frame) in frames[..n].iter().enumerate() {
                let desc = self.rx_buf[i];
                let len = self.lens[i];
                let mut decision = self.decisions[i];
                if oversize(len, capacity, &desc) {
                    decision = Decision::new(Verdict::Drop, Reason::Oversize);
                }
                self.counters.record(dir, decision, len);
                rx_bytes += len as u64;
                match self.samples.offer(frame, dir, decision, now) {
                    Offered::Skipped => {}
                    Offered::Taken => self.port_counters[p].samples += 1,
                    Offered::Lost => self.port_counters[p].samples_dropped += 1,
                }
                if decision.verdict == Verdict::Forward {
                    self.tx_buf[forwarded] = desc;
                    forwarded += 1;
                } else {
                    self.free.push(desc);
                }
            }
        }
        let pc = &mut self.port_counters[p];
        pc.rx_packets += n as u64;
        pc.rx_bytes += rx_bytes;
        self.transmit(o, forwarded);
        n
    }

    /// Puts `self.tx_buf[..count]` on port `o`'s TX ring; what does not fit after one kick is
    /// dropped and counted as `tx_ring_full`.
    #[inline]
    fn transmit(&mut self, o: usize, count: usize) {
        if count == 0 {
            return;
        }
        // SAFETY: the descriptors are frames of this UMEM that the worker owns (taken from an
        // RX ring and put on no other ring); the TX ring hands them back on completion.
        let mut sent = unsafe { self.ports[o].tx.produce(&self.tx_buf[..count]) };
        if sent < count {
            self.kick(o);
            self.reclaim(o);
            // SAFETY: as above, for the descriptors not yet placed.
            sent += unsafe { self.ports[o].tx.produce(&self.tx_buf[sent..count]) };
        }
        // sent ≤ count ≤ tx_buf.len(), the batch (≤ MAX_BATCH, 256).
        #[allow(clippy::cast_possible_truncation)]
        let sent32 = sent as u32;
        self.in_tx[o] += sent32;
        self.port_counters[o].tx_packets += sent as u64;
        if sent < count {
            self.port_counters[o].tx_ring_full += (count - sent) as u64;
            self.free.extend_from_slice(&self.tx_buf[sent..count]);
        }
    }

    /// Step 4: kick port `p`'s TX ring while it holds frames.
    #[inline]
    fn kick(&mut self, p: usize) {
        if self.in_tx[p] == 0 {
            return;
        }
        // The TX ring is half the size of the fill ring (both derive from `ring_size`).
        let ring = self.config.fill_size / 2;
        let port = &mut self.ports[p];
        if !port.mode.copies() && !port.tx.needs_wakeup() {
            return;
        }
        let pc = &mut self.port_counters[p];
        for _ in 0..MAX_KICKS {
            if port.tx.nb_free_exact() >= ring {
                break;
            }
            pc.tx_kicks += 1;
            if port.tx.wakeup().is_err() {
                pc.tx_kick_errors += 1;
                break;
            }
        }
    }

    /// Step 5: sleep until a frame arrives on either port, at most `IDLE_POLL_MS`.
    fn sleep(&mut self) {
        use std::os::fd::AsRawFd;
        let mut fds = [
            libc::pollfd {
                fd: self.ports[0].rx.fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.ports[1].rx.fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of two pollfd structs that outlives the call; the
        // descriptors stay open because the worker owns the sockets.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, IDLE_POLL_MS) };
    }

    /// On stop: wait (bounded) for frames still on TX rings to complete.
    fn drain(&mut self) {
        let until = self.now_ns() + DRAIN_NS;
        while self.in_tx != [0, 0] && self.now_ns() < until {
            self.kick(0);
            self.kick(1);
            self.reclaim(0);
            self.reclaim(1);
        }
    }

    /// Copies the plain counters into the shared stats, with the kernel's XDP statistics.
    fn publish(&mut self) {
        for (p, (port, pc)) in self
            .ports
            .iter()
            .zip(self.port_counters.iter_mut())
            .enumerate()
        {
            if let Ok(x) = port.rx.fd().xdp_statistics() {
                // In copy mode the kernel drops a frame longer than a UMEM frame with
                // `rx_dropped` (and a frame it had no fill buffer for, which it also counts as
                // `rx_fill_ring_empty_descs`). The rest is the README's `oversize` (Verdicts and
                // reasons): count it there so every frame that reached the port has a reason.
                let oversize = x.rx_dropped().saturating_sub(x.rx_fill_ring_empty_descs());
                let new = oversize.saturating_sub(pc.kernel_oversize);
                pc.kernel_oversize = pc.kernel_oversize.max(oversize);
                self.counters.packets[p][Reason::Oversize.index()][Verdict::Drop as usize] += new;
                pc.xdp_rx_dropped = x.rx_dropped();
                pc.xdp_rx_invalid_descs = x.rx_invalid_descs();
                pc.xdp_rx_ring_full = x.rx_ring_full();
                pc.xdp_rx_fill_ring_empty_descs = x.rx_fill_ring_empty_descs();
                pc.xdp_tx_invalid_descs = x.tx_invalid_descs();
                pc.xdp_tx_ring_empty_descs = x.tx_ring_empty_descs();
            }
        }
        self.ledger.free = self.free.len() as u64;
        self.ledger.fill = u64::from(self.in_fill[0] + self.in_fill[1]);
        self.ledger.tx = u64::from(self.in_tx[0] + self.in_tx[1]);
        self.ledger.in_hand = 0;
        self.stats
            .publish(&self.counters, &self.port_counters, &self.ledger);
    }
}

/// A frame the data path drops as `oversize`: longer than a UMEM frame holds, or continued in
/// another descriptor (a multi-buffer frame).
#[inline(always)]
fn oversize(len: usize, capacity: usize, desc: &FrameDesc) -> bool {
    len > capacity || desc.options() & XDP_PKT_CONTD != 0
}

//! The classifier over the standard mix (see `benches/src/lib.rs`) with 10, 10 000 and 100 000
//! tunnels: ns per packet and Mpps on one core. Run with `make bench` or
//! `cargo bench -p benches --bench classifier`.
//!
//! What is measured models the AF_XDP copy-mode data path: the kernel has just copied a ring's
//! worth of frames into the UMEM, and the worker classifies them in batches of 64 with one clock
//! value and one policy per batch (`Classifier::classify_batch`). Each round copies the next of 64
//! distinct pools of 256 frames into a UMEM-like buffer (untimed), then classifies them (timed).
//! The 16 384 distinct frames pick their tunnels uniformly from the whole table, so a large table
//! is really walked, not a few cached entries of it.

use std::hint::black_box;
use std::time::{Duration, Instant};

use benches::{policy, standard_mix};
use criterion::{criterion_group, Criterion, Throughput};
use validator::{Classifier, Decision, Direction, Policy};

const RING: usize = 256;
const POOLS: usize = 64;
const BATCH: usize = 64;
const FRAME_SIZE: usize = 2048;
const TUNNEL_COUNTS: [usize; 3] = [10, 10_000, 100_000];

/// The distinct frames of one benchmark, and the UMEM-like buffer they are copied into.
struct Workload {
    policy: Policy,
    pools: Vec<Vec<Vec<u8>>>,
    umem: Vec<u8>,
    lens: [usize; RING],
    next: usize,
}

impl Workload {
    fn new(tunnels: usize) -> Workload {
        let frames = standard_mix(tunnels, RING * POOLS, 2017);
        let pools = frames.chunks(RING).map(<[Vec<u8>]>::to_vec).collect();
        Workload {
            policy: policy(tunnels),
            pools,
            umem: vec![0; RING * FRAME_SIZE],
            lens: [0; RING],
            next: 0,
        }
    }

    /// The kernel's part: copy the next pool into the UMEM frames.
    fn receive(&mut self) {
        let pool = &self.pools[self.next % POOLS];
        self.next += 1;
        for (i, f) in pool.iter().enumerate() {
            let len = f.len().min(FRAME_SIZE);
            self.umem[i * FRAME_SIZE..i * FRAME_SIZE + len].copy_from_slice(&f[..len]);
            self.lens[i] = len;
        }
    }

    /// The worker's part: classify the ring in batches.
    fn classify(&self, c: &mut Classifier, out: &mut [Decision; BATCH]) {
        let mut frames: [&[u8]; BATCH] = [&[]; BATCH];
        for start in (0..RING).step_by(BATCH) {
            for (j, slot) in frames.iter_mut().enumerate() {
                let i = start + j;
                *slot = &self.umem[i * FRAME_SIZE..i * FRAME_SIZE + self.lens[i]];
            }
            c.classify_batch(&self.policy, 0, Direction::FromOutside, &frames, out);
            black_box(&out);
        }
    }
}

fn bench_mix(cr: &mut Criterion) {
    let mut group = cr.benchmark_group("standard_mix");
    group.throughput(Throughput::Elements(RING as u64));
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for n in TUNNEL_COUNTS {
        let mut w = Workload::new(n);
        let mut c = Classifier::new(&w.policy, 0);
        let mut out = [Decision::default(); BATCH];
        group.bench_function(format!("{n}_tunnels"), |b| {
            // Time only the classification; the copy into the UMEM is the kernel's work.
            b.iter_custom(|iters| {
                let mut busy = Duration::ZERO;
                for _ in 0..iters {
                    w.receive();
                    let t = Instant::now();
                    w.classify(&mut c, &mut out);
                    busy += t.elapsed();
                }
                busy
            })
        });
    }
    group.finish();
}

/// The table of docs/benchmarks.md: ns/packet and Mpps per core, timing only the classification
/// of each ring.
fn summary() {
    println!("\nstandard mix, rings of {RING} frames from {POOLS} distinct pools, batches of {BATCH}, one core:");
    println!("{:>10} {:>12} {:>12}", "tunnels", "ns/packet", "Mpps/core");
    for n in TUNNEL_COUNTS {
        let mut w = Workload::new(n);
        let mut c = Classifier::new(&w.policy, 0);
        let mut out = [Decision::default(); BATCH];
        for _ in 0..POOLS * 4 {
            w.receive();
            w.classify(&mut c, &mut out);
        }
        // Best of five runs of 2 s wall time each: the least disturbed by the rest of the machine.
        let mut best = f64::MAX;
        for _ in 0..5 {
            let wall = Instant::now();
            let (mut busy, mut packets) = (Duration::ZERO, 0u64);
            while wall.elapsed() < Duration::from_secs(2) {
                w.receive();
                let t = Instant::now();
                w.classify(&mut c, &mut out);
                busy += t.elapsed();
                packets += RING as u64;
            }
            best = best.min(busy.as_nanos() as f64 / packets as f64);
        }
        println!("{n:>10} {best:>12.1} {:>12.1}", 1000.0 / best);
    }
}

criterion_group!(benches, bench_mix);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary();
}

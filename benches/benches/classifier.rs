//! The classifier over the standard mix (see `benches/src/lib.rs`) with 10, 10 000 and 100 000
//! tunnels: ns per packet and Mpps on one core. Run with `make bench` or
//! `cargo bench -p benches --bench classifier`.
//!
//! A pool of frames (8192, about 3 MB) is classified in batches of 64 through
//! `Classifier::classify_batch`, as the data path does: one clock value and one policy per batch.

use std::hint::black_box;
use std::time::{Duration, Instant};

use benches::{policy, standard_mix};
use criterion::{criterion_group, Criterion, Throughput};
use fastpath::{Classifier, Decision, Direction, Policy};

const POOL: usize = 8192;
const BATCH: usize = 64;
const TUNNEL_COUNTS: [usize; 3] = [10, 10_000, 100_000];

/// Classifies the whole pool once, batch by batch.
fn run_pool(
    c: &mut Classifier,
    policy: &Policy,
    frames: &[&[u8]],
    out: &mut [Decision; BATCH],
    now: u64,
) {
    for batch in frames.chunks(BATCH) {
        c.classify_batch(policy, now, Direction::FromOutside, batch, out);
        black_box(&out);
    }
}

fn bench_mix(cr: &mut Criterion) {
    let mut group = cr.benchmark_group("standard_mix");
    group.throughput(Throughput::Elements(POOL as u64));
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for n in TUNNEL_COUNTS {
        let policy = policy(n);
        let frames = standard_mix(n, POOL, 2017);
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let mut c = Classifier::new(&policy, 0);
        let mut out = [Decision::default(); BATCH];
        group.bench_function(format!("{n}_tunnels"), |b| {
            b.iter(|| run_pool(&mut c, &policy, &refs, &mut out, 0))
        });
    }
    group.finish();
}

/// A plain timed loop after criterion, printing the README's table: ns/packet and Mpps per core.
fn summary() {
    println!("\nstandard mix, {POOL} frames per pool, batches of {BATCH}, one core:");
    println!("{:>10} {:>12} {:>12}", "tunnels", "ns/packet", "Mpps/core");
    for n in TUNNEL_COUNTS {
        let policy = policy(n);
        let frames = standard_mix(n, POOL, 2017);
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let mut c = Classifier::new(&policy, 0);
        let mut out = [Decision::default(); BATCH];
        for _ in 0..50 {
            run_pool(&mut c, &policy, &refs, &mut out, 0);
        }
        // Best of five 1-second runs: the least disturbed by the rest of the machine.
        let mut best = f64::MAX;
        for _ in 0..5 {
            let start = Instant::now();
            let mut packets = 0u64;
            while start.elapsed() < Duration::from_secs(1) {
                run_pool(&mut c, &policy, &refs, &mut out, 0);
                packets += POOL as u64;
            }
            best = best.min(start.elapsed().as_nanos() as f64 / packets as f64);
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

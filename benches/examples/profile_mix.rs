//! Classifies the standard mix in a loop, for profilers that count instructions and branch
//! misses (`valgrind --tool=cachegrind --branch-sim=yes`), which work in this VM where `perf`
//! hardware counters do not:
//!
//! ```text
//! cargo build --release -p benches --example profile_mix
//! valgrind --tool=cachegrind --branch-sim=yes target/release/examples/profile_mix 10000 200
//! ```
//! Arguments: tunnel count (default 10 000) and rounds over 16 384 frames (default 100).

use std::hint::black_box;

use benches::{policy, standard_mix};
use validator::{Classifier, Decision, Direction};

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().unwrap_or(0));
    let tunnels = args.next().filter(|&n| n > 0).unwrap_or(10_000);
    let rounds = args.next().filter(|&n| n > 0).unwrap_or(100);
    let policy = policy(tunnels);
    let frames = standard_mix(tunnels, 16_384, 2017);
    let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
    let mut c = Classifier::new(&policy, 0);
    let mut out = [Decision::default(); 64];
    let mut forwarded = 0usize;
    for _ in 0..rounds {
        for batch in refs.chunks(64) {
            c.classify_batch(&policy, 0, Direction::FromOutside, batch, &mut out);
            forwarded += black_box(&out)
                .iter()
                .filter(|d| d.verdict == validator::Verdict::Forward)
                .count();
        }
    }
    println!(
        "{} frames classified, {forwarded} forwarded",
        rounds * refs.len()
    );
}

//! How fast the slow path drains the fast lane's sample ring (the BPF ring buffer the kernel
//! copies 1 in `[sampling] invalid` of its drops into): the kernel program is run with
//! BPF_PROG_RUN on the loopback interface (nothing is sent) to fill the ring with samples of a
//! dropped unknown-tunnel frame, then the reader drains it, over and over; prints the drain
//! rate. Needs root (BPF). Run it with `cargo run --release -p benches --example sample_ring`.

use std::time::{Duration, Instant};

use datapath::lane::{FastLane, OnFailure};
use datapath::Link;
use frames::{payload, FrameBuilder, Gre};

fn main() {
    let lo = Link::open("outside", "lo").expect("the loopback interface");
    let policy = config::load_str(
        "[defaults]\nunknown_tunnel = \"drop\"\n[[tunnel]]\nname = \"t\"\n\
         peer = \"203.0.113.7\"\nlocal = \"198.51.100.10\"\n",
        "bench",
    )
    .expect("policy")
    .policy;
    let mut lane = FastLane::load().expect("load the fast lane (root)");
    lane.configure(
        &lo,
        &lo,
        &policy,
        datapath::lane::Settings {
            on_failure: OnFailure::Open,
            sampling: datapath::SamplingRates {
                dropped: 1,
                ..Default::default()
            },
            max_frame: 3840,
            active: true,
        },
    )
    .expect("configure");
    let _alive = lane.heartbeat().expect("heartbeat");
    let mut ring = lane.samples(0).expect("map the sample ring");
    let inner = payload::ipv4_udp(
        "10.1.0.1".parse().unwrap(),
        "10.2.0.1".parse().unwrap(),
        1,
        2,
        &[0; 32],
    );
    let frame = FrameBuilder::ipv4(
        "192.0.2.1".parse().unwrap(),
        "198.51.100.10".parse().unwrap(),
    )
    .gre(Gre::v0(0x0800), inner)
    .build();
    const PER_ROUND: usize = 3000; // under the ring's 1 MiB at 288 bytes a record
    let (mut drained, mut spent) = (0u64, Duration::ZERO);
    for _ in 0..200 {
        for _ in 0..PER_ROUND {
            lane.test_run(&lo, 0, &frame).expect("BPF_PROG_RUN");
        }
        let start = Instant::now();
        while ring.pop().is_some() {
            drained += 1;
        }
        spent += start.elapsed();
    }
    let lost = lane.counters().samples_lost[0];
    println!(
        "drained {drained} samples in {:.1} ms: {:.0} ns a sample ({lost} lost to a full ring)",
        spent.as_secs_f64() * 1e3,
        spent.as_nanos() as f64 / drained.max(1) as f64
    );
}

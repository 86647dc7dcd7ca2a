//! Rates mean what the policy says whatever the number of workers: every worker polices with
//! the same buckets. Needs root.

use crate::common;

use std::time::Instant;

use common::netns::Topology;
use traffic::Class;

#[test]
fn a_tunnel_gets_its_whole_rate_on_a_box_with_two_workers() {
    let mut t = Topology::new(2);
    // One tunnel (one outer address pair: its frames land on one RX queue) with a policer.
    let policy = t.policy("", &common::berlin("rate = { pps = 2000, burst = 200 }\n"));
    let gre_box = t.start_box(&policy);
    assert!(gre_box.log.join("\n").contains("queue 1: AF_XDP"));
    let counter = t.start_counter(&t.in_ns.clone(), &t.in_if.clone(), None);
    let started = Instant::now();
    let sent = t.send(
        &t.out_ns,
        &t.out_if,
        &policy,
        &["--mix", "tunnel=1", "--count", "30000", "--pps", "10000"],
    );
    let seconds = started.elapsed().as_secs_f64();
    let (got, _) = counter.stop();
    let s = gre_box.stop();
    let tunnel = Class::Tunnel.index();
    assert_eq!(sent.frames[tunnel], 30000);
    let allowed = 2000.0 * seconds + 200.0;
    let delivered = got.frames[tunnel] as f64;
    assert!(
        (delivered - allowed).abs() <= 0.05 * allowed,
        "{delivered} delivered in {seconds:.2} s, {allowed:.0} allowed:\n{}",
        s.stdout
    );
    // What was not delivered was policed, on the books.
    assert_eq!(
        s.frames("outside", "forward", "tunnel") + s.frames("outside", "drop", "rate_limited"),
        30000,
        "{}",
        s.stdout
    );
}

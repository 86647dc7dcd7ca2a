//! No frame crosses unjudged while greguard runs: every RX queue of both ports must have a
//! worker at start, and a queue that loses its socket later (here: channels raised with
//! `ethtool -L`) still gets the kernel's decisions, with what it would hand up dropped. Needs
//! root.

mod common;

use std::time::Duration;

use common::netns::{sh, Topology};
use traffic::Class;

const TUNNELS: &str = traffic::LAB_TUNNELS;

/// Garbage of every kind the generator makes, beside tunnel traffic and non-GRE.
const MIX: &str = "tunnel=2,non_gre=1,unknown=4,invalid=2,bogon=1";

#[test]
fn a_queue_list_that_leaves_queues_without_a_worker_is_refused() {
    let t = Topology::new(4);
    let policy = t.policy("queues = [0]", TUNNELS);
    let out = t.run_once(&policy, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("has 4 RX queues, but queues 1, 2, 3 would have no worker"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("ethtool -L {} combined 1", t.box_out)),
        "{stderr}"
    );
    // Nothing stays behind: no program on either port.
    assert!(!t.xdp_attached(&t.box_out) && !t.xdp_attached(&t.box_in));
}

#[test]
fn ports_with_different_queue_counts_are_refused_with_the_fix() {
    let t = Topology::new(4);
    sh(&[
        "ip", "netns", "exec", &t.box_ns, "ethtool", "-L", &t.box_in, "rx", "2", "tx", "2",
    ]);
    let policy = t.policy("", TUNNELS);
    let out = t.run_once(&policy, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("has 4 RX queues and inside interface")
            && stderr.contains(&format!("ethtool -L {} combined 2", t.box_out)),
        "{stderr}"
    );
}

#[test]
fn with_every_queue_served_no_garbage_crosses() {
    let mut t = Topology::new(4);
    let policy = t.policy("", TUNNELS);
    let gre_box = t.start_box(&policy);
    let log = gre_box.log.join("\n");
    assert!(log.contains("queue 3: AF_XDP"), "{log}");
    let counter = t.start_counter(&t.in_ns.clone(), &t.in_if.clone(), None);
    let sent = t.send(
        &t.out_ns,
        &t.out_if,
        &policy,
        &["--mix", MIX, "--count", "10000", "--pps", "5000"],
    );
    let (got, _) = counter.stop();
    let s = gre_box.stop();
    assert!(s.status.success(), "{}", s.stderr);
    for c in [Class::Unknown, Class::Invalid, Class::Bogon] {
        assert!(sent.frames[c.index()] > 0);
        assert_eq!(
            got.frames[c.index()],
            0,
            "{} crossed:\n{}",
            c.name(),
            s.stdout
        );
    }
    for c in [Class::Tunnel, Class::NonGre] {
        assert_eq!(
            got.frames[c.index()],
            sent.frames[c.index()],
            "{}",
            c.name()
        );
    }
    assert_eq!(s.value("fast lane outside:", "bypassed"), 0, "{}", s.stdout);
    assert_eq!(s.value("fast lane outside:", "unserved"), 0, "{}", s.stdout);
}

#[test]
fn queues_added_after_the_start_are_judged_in_the_kernel_and_never_bypassed() {
    let mut t = Topology::new(4);
    for ifname in [t.box_out.clone(), t.box_in.clone()] {
        sh(&[
            "ip", "netns", "exec", &t.box_ns, "ethtool", "-L", &ifname, "rx", "1", "tx", "1",
        ]);
    }
    let policy = t.policy("", TUNNELS);
    let gre_box = t.start_box(&policy);
    sh(&[
        "ip", "netns", "exec", &t.box_ns, "ethtool", "-L", &t.box_out, "rx", "4", "tx", "4",
    ]);
    std::thread::sleep(Duration::from_millis(1500));
    let counter = t.start_counter(&t.in_ns.clone(), &t.in_if.clone(), None);
    let sent = t.send(
        &t.out_ns,
        &t.out_if,
        &policy,
        &["--mix", MIX, "--count", "10000", "--pps", "5000"],
    );
    let (got, _) = counter.stop();
    let s = gre_box.stop();
    assert!(
        s.stderr
            .contains("now has 4 RX queues; queues 1, 2, 3 have no worker"),
        "{}",
        s.stderr
    );
    // Garbage never crosses, whichever queue it lands on; non-GRE is still forwarded by the
    // kernel; tunnel frames on the queues without a worker are dropped, never passed.
    for c in [Class::Unknown, Class::Invalid, Class::Bogon] {
        assert_eq!(
            got.frames[c.index()],
            0,
            "{} crossed:\n{}",
            c.name(),
            s.stdout
        );
    }
    assert_eq!(
        got.frames[Class::NonGre.index()],
        sent.frames[Class::NonGre.index()]
    );
    assert!(got.frames[Class::Tunnel.index()] <= sent.frames[Class::Tunnel.index()]);
    assert_eq!(s.value("fast lane outside:", "bypassed"), 0, "{}", s.stdout);
    assert_eq!(s.value("fast lane outside:", "closed_dropped"), 0);
    assert!(
        s.value("fast lane outside:", "unserved") > 0,
        "no frame landed on an unserved queue:\n{}",
        s.stdout
    );
}

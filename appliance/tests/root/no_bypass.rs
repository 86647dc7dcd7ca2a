//! No frame crosses unjudged while greguard runs: every RX queue of both ports must have a
//! worker at start, and a queue that loses its socket later (here: channels raised with
//! `ethtool -L`) still gets the kernel's decisions, with what it would hand up dropped. Needs
//! root.

use crate::common;

use std::time::Duration;

use common::netns::{sh, Topology};
use frames::{FrameBuilder, Gre};
use traffic::Class;

const TUNNELS: &str = traffic::LAB_TUNNELS;

/// Garbage of every kind the generator makes, beside tunnel traffic and non-GRE.
/// A tunnel of a whole /24 of peers.
const SPREAD: &str = r#"
[[tunnel]]
name  = "spread"
peer  = "192.0.2.0/24"
local = "198.51.100.10"
"#;

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
    let (sent, got) = send_mix(&mut t, &policy);
    let s = gre_box.stop();
    assert!(s.status.success(), "{}", s.stderr);
    for c in [Class::Unknown, Class::Invalid, Class::Bogon] {
        assert!(sent.frames[c.index()] > 0);
    }
    assert_no_garbage(&got, &s.stdout);
    for c in [Class::Tunnel, Class::NonGre] {
        assert_eq!(
            got.frames[c.index()],
            sent.frames[c.index()],
            "{}",
            c.name()
        );
    }
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
    let policy = t.policy("", &format!("{TUNNELS}{SPREAD}"));
    let gre_box = t.start_box(&policy);
    sh(&[
        "ip", "netns", "exec", &t.box_ns, "ethtool", "-L", &t.box_out, "rx", "4", "tx", "4",
    ]);
    std::thread::sleep(Duration::from_millis(1500));
    let (sent, got) = send_mix(&mut t, &policy);
    // Frames a worker would have to judge (GRE of a tunnel's addresses, here with a wrong GRE
    // checksum, which only the validator verifies), sent from CPU 1: a packet socket sends on the TX queue of its CPU, and a
    // veth delivers on the RX queue of that number, queue 1, which has no worker. (A veth runs
    // native XDP only on the queues it had when the program was attached; its new queues hand
    // frames to the box's own stack, which forwards nothing. The kernel program's decisions on
    // a queue without a socket are checked frame by frame below.)
    let frames: Vec<Vec<u8>> = (1..=64u8)
        .map(|i| {
            FrameBuilder::ipv4(
                std::net::Ipv4Addr::new(192, 0, 2, i),
                "198.51.100.10".parse().unwrap(),
            )
            .gre(
                Gre::v0(0x0800).checksum_with(frames::Checksum::Wrong),
                inner_udp(),
            )
            .macs(traffic::mix::DST_MAC, Class::Invalid.mac(0))
            .build()
        })
        .collect();
    let counter = t.start_counter(&t.in_ns.clone(), &t.in_if.clone(), None);
    let out_if = t.out_if.clone();
    common::netns::in_netns(&t.out_ns, move || {
        pin_to_cpu(1);
        let socket = traffic::packet::PacketSocket::open(&out_if).expect("packet socket");
        for f in &frames {
            while socket.send_batch(&[f.as_slice()]).expect("send") == 0 {}
        }
    })
    .join()
    .expect("sender");
    let (spread_got, _) = counter.stop();
    let s = gre_box.stop();
    assert_no_garbage(&spread_got, &s.stdout);
    assert!(
        s.stderr
            .contains("now has 4 RX queues; queues 1, 2, 3 have no worker"),
        "{}",
        s.stderr
    );
    // Garbage never crosses, whichever queue it lands on; non-GRE is still forwarded by the
    // kernel; tunnel frames on the queues without a worker are dropped, never passed.
    assert_no_garbage(&got, &s.stdout);
    assert_eq!(
        got.frames[Class::NonGre.index()],
        sent.frames[Class::NonGre.index()]
    );
    assert!(got.frames[Class::Tunnel.index()] <= sent.frames[Class::Tunnel.index()]);
}

/// Sends 10 000 frames of the mix at 5 000 pps from outside; what was sent and what arrived.
fn send_mix(
    t: &mut Topology,
    policy: &std::path::Path,
) -> (traffic::ClassCounts, traffic::ClassCounts) {
    let counter = t.start_counter(&t.in_ns.clone(), &t.in_if.clone(), None);
    let sent = t.send(
        &t.out_ns,
        &t.out_if,
        policy,
        &["--mix", MIX, "--count", "10000", "--pps", "5000"],
    );
    let (got, _) = counter.stop();
    (sent, got)
}

/// Not one unknown, invalid or bogon frame arrived inside.
fn assert_no_garbage(got: &traffic::ClassCounts, report: &str) {
    for c in [Class::Unknown, Class::Invalid, Class::Bogon] {
        assert_eq!(got.frames[c.index()], 0, "{} crossed:\n{report}", c.name());
    }
}

/// Pins the calling thread to `cpu`.
fn pin_to_cpu(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET and sched_setaffinity(0, ...) act on
    // it and on this thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        assert_eq!(
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set),
            0
        );
    }
}

/// The program's three states, frame by frame (BPF_PROG_RUN on the box's real interfaces, RX
/// queue 1, which no socket serves): greguard alive, greguard gone with `open`, and with
/// `closed`.
#[test]
fn the_kernel_program_judges_an_unserved_queue_by_the_state_of_greguard() {
    use datapath::lane::{FastLane, OnFailure};
    use datapath::Link;
    use frames::Ipv6Ext;
    const DROP: u32 = 1;
    const REDIRECT: u32 = 4;
    let t = Topology::new(4);
    let (out_if, in_if) = (t.box_out.clone(), t.box_in.clone());
    common::netns::in_netns(&t.box_ns, move || {
        let links = [
            Link::open("outside", &out_if).unwrap(),
            Link::open("inside", &in_if).unwrap(),
        ];
        let loaded = config::load_str(&format!("{TUNNELS}{SPREAD}"), "policy").unwrap();
        let mut lane = FastLane::load().expect("load the fast lane");
        let configure = |lane: &mut FastLane, on_failure| {
            lane.configure(
                &links[0],
                &links[1],
                &loaded.policy,
                datapath::lane::Settings {
                    on_failure,
                    sampling: Default::default(),
                    max_frame: 3840,
                    active: true,
                },
            )
            .unwrap()
        };
        let run = |lane: &FastLane, frame: &[u8]| lane.test_run(&links[0], 1, frame).unwrap();
        let tunnel = tunnel_with(|b| b);
        let unknown = FrameBuilder::ipv4(
            "100.64.7.7".parse().unwrap(),
            "198.51.100.10".parse().unwrap(),
        )
        .gre(Gre::v0(0x0800), inner_udp())
        .build();
        let non_gre = FrameBuilder::ipv4(
            "192.0.2.9".parse().unwrap(),
            "198.51.100.10".parse().unwrap(),
        )
        .raw(17, vec![0; 24])
        .build();
        let v6 = |ext: Option<Ipv6Ext>| {
            let mut b = FrameBuilder::ipv6(
                "2001:db8::7".parse().unwrap(),
                "2001:db8:1::10".parse().unwrap(),
            );
            if let Some(e) = ext {
                b = b.ipv6_ext(e);
            }
            b.gre(Gre::v0(0x0800), inner_udp()).build()
        };
        // What the program cannot parse down to a GRE header, and hands up while greguard runs.
        let unparsed = [
            v6(Some(Ipv6Ext::destination_options())),
            v6(Some(Ipv6Ext::hop_by_hop())),
            tunnel_with(|b| b.ipv4_ihl(4)),
        ];
        // Plain IPv6 GRE of no tunnel (dropped as unknown while greguard runs), and a third VLAN
        // tag (non-GRE to the validator too: forwarded while greguard runs).
        let unknown6 = v6(None);
        let three_tags = tunnel_with(|b| b.vlan(1).vlan(2).vlan(3));

        // greguard alive (heartbeat current), queue 1 without a socket: the kernel decides
        // what it can, and drops what it would hand up.
        configure(&mut lane, OnFailure::Open);
        let mut heartbeat = lane.heartbeat().unwrap();
        assert_eq!(run(&lane, &non_gre), REDIRECT, "non-GRE is forwarded");
        assert_eq!(run(&lane, &unknown), DROP, "unknown GRE is dropped");
        assert_eq!(
            run(&lane, &tunnel),
            DROP,
            "tunnel GRE is not passed unjudged"
        );
        for f in &unparsed {
            assert_eq!(run(&lane, f), DROP);
        }
        assert_eq!(run(&lane, &unknown6), DROP);
        assert_eq!(run(&lane, &three_tags), REDIRECT);
        let c = lane.counters();
        assert_eq!(c.unserved[0], 1 + unparsed.len() as u64);
        assert_eq!(c.bypassed[0] + c.closed_dropped[0], 0);

        // greguard gone, on_failure = open: a wire.
        heartbeat.flatline();
        let all = [&tunnel, &unknown, &non_gre, &unknown6, &three_tags];
        for f in unparsed.iter().chain(all) {
            assert_eq!(run(&lane, f), REDIRECT);
        }
        assert_eq!(lane.counters().bypassed[0], unparsed.len() as u64 + 5);

        // greguard gone, on_failure = closed: only what is positively not GRE passes.
        configure(&mut lane, OnFailure::Closed);
        assert_eq!(run(&lane, &non_gre), REDIRECT);
        for f in unparsed
            .iter()
            .chain([&tunnel, &unknown, &unknown6, &three_tags])
        {
            assert_eq!(run(&lane, f), DROP, "{f:02x?}");
        }
        assert_eq!(lane.counters().closed_dropped[0], unparsed.len() as u64 + 4);
    })
    .join()
    .expect("kernel program checks");
}

/// A valid inner IPv4/UDP packet.
fn inner_udp() -> Vec<u8> {
    frames::payload::ipv4_udp(
        "10.1.0.1".parse().unwrap(),
        "10.2.0.1".parse().unwrap(),
        4500,
        4500,
        &[0; 12],
    )
}

/// A GRE frame of the spread tunnel, changed by `f`.
fn tunnel_with(f: impl FnOnce(FrameBuilder) -> FrameBuilder) -> Vec<u8> {
    f(FrameBuilder::ipv4(
        "192.0.2.9".parse().unwrap(),
        "198.51.100.10".parse().unwrap(),
    )
    .gre(Gre::v0(0x0800), inner_udp()))
    .build()
}

//! `greguard nft`: the ruleset it prints loads into nftables, and on a Linux bridge between the
//! lab's two ports it gives greguard's verdict on every frame of a sample whose reason nftables
//! can express. Needs root.

mod common;

use std::collections::HashMap;
use std::net::Ipv4Addr;

use common::netns::{sh, Topology};
use fastpath::build::{Checksum, FrameBuilder, Gre};
use fastpath::{Classifier, Direction, Reason, Verdict};
use traffic::mix::{Mix, Side, DST_MAC};
use traffic::Class;

/// The reasons whose checks the ruleset makes in full (config::nft::UNEXPRESSED lists the
/// rest): a frame with one of these must get greguard's verdict on the bridge.
fn expressed(reason: Reason) -> bool {
    !matches!(
        reason,
        Reason::BadIp
            | Reason::Truncated
            | Reason::BadChecksum
            | Reason::BadInner
            | Reason::RateLimited
            | Reason::Oversize
    )
}

/// A few frames for the reasons the generator's mix does not make, from the lab's tunnels.
fn crafted() -> Vec<Vec<u8>> {
    let berlin = || {
        FrameBuilder::ipv4(
            Ipv4Addr::new(203, 0, 113, 7),
            Ipv4Addr::new(198, 51, 100, 10),
        )
    };
    let inner = FrameBuilder::ipv4(Ipv4Addr::new(10, 1, 0, 1), Ipv4Addr::new(10, 2, 0, 1))
        .udp(1000, 2000, vec![7; 20])
        .build_ip();
    let inner_gre = FrameBuilder::ipv4(Ipv4Addr::new(10, 1, 0, 1), Ipv4Addr::new(10, 2, 0, 1))
        .gre(Gre::v0(0x0800), inner.clone())
        .build_ip();
    let mac = |v| Class::Invalid.mac(v);
    vec![
        // key_mismatch: berlin-branch wants key 1001.
        berlin()
            .gre(Gre::v0(0x0800).key(1002), inner.clone())
            .macs(DST_MAC, mac(100))
            .build(),
        // protocol_denied: TEB is not among berlin-branch's protocols.
        berlin()
            .gre(Gre::v0(0x6558).key(1001), vec![0u8; 60])
            .macs(DST_MAC, mac(101))
            .build(),
        // nested_gre: GRE inside the tunnel, not a keepalive.
        berlin()
            .gre(Gre::v0(0x0800).key(1001), inner_gre)
            .macs(DST_MAC, mac(102))
            .build(),
        // reserved_bits (0x0040) on an otherwise valid berlin-branch frame.
        berlin()
            .gre(Gre::v0(0x0800).key(1001).set_flags(0x0040), inner.clone())
            .macs(DST_MAC, mac(103))
            .build(),
        // bad_checksum from a real peer: greguard drops it, nftables cannot tell.
        berlin()
            .gre(
                Gre::v0(0x0800).checksum_with(Checksum::Wrong).key(1001),
                inner.clone(),
            )
            .macs(DST_MAC, mac(104))
            .build(),
        // A valid one with a checksum and a sequence number (header 16 bytes).
        berlin()
            .gre(Gre::v0(0x0800).checksum().key(1001).sequence(9), inner)
            .macs(DST_MAC, Class::Tunnel.mac(100))
            .build(),
    ]
}

#[test]
fn the_nft_ruleset_loads_and_agrees_with_greguard_on_a_bridge() {
    let mut t = Topology::new(1);
    let policy = t.policy("", traffic::LAB_TUNNELS);

    let out = common::greguard(&["nft", "-c", policy.to_str().unwrap()]);
    let (ruleset, stderr) = common::text(&out);
    assert!(out.status.success(), "greguard nft failed: {stderr}");
    assert!(ruleset.contains("table bridge greguard"), "{ruleset}");
    assert!(
        ruleset.contains("bad_checksum"),
        "the unexpressed checks are listed"
    );
    let rules = t.path("rules.nft");
    std::fs::write(&rules, &ruleset).unwrap();
    let rules_s = rules.to_str().unwrap();

    // The box becomes a bridge with the ruleset; `nft -c` first, as an operator would.
    sh(&["ip", "netns", "exec", &t.box_ns, "nft", "-c", "-f", rules_s]);
    sh(&["ip", "netns", "exec", &t.box_ns, "nft", "-f", rules_s]);
    sh(&[
        "ip", "-n", &t.box_ns, "link", "add", "br0", "type", "bridge",
    ]);
    for port in [&t.box_out, &t.box_in] {
        sh(&["ip", "-n", &t.box_ns, "link", "set", port, "master", "br0"]);
    }
    sh(&["ip", "-n", &t.box_ns, "link", "set", "br0", "up"]);

    // The sample: a few frames of every class of the generator, and the crafted ones.
    let loaded = config::load_file(&policy).expect("policy");
    let mix = Mix::new(
        loaded.policy.specs(),
        Side::Outside,
        [1; Class::COUNT],
        None,
        7,
    );
    let mut sample: Vec<Vec<u8>> = Class::ALL
        .iter()
        .flat_map(|&c| mix.pool(c).iter().take(40).cloned())
        .collect();
    sample.extend(crafted());

    // greguard's verdicts, frame by frame (the data path's classifier).
    let mut classifier = Classifier::new(&loaded.policy, 0);
    let verdicts: Vec<(Verdict, Reason)> = sample
        .iter()
        .map(|f| {
            let d = classifier.classify(&loaded.policy, 0, Direction::FromOutside, f);
            (d.verdict, d.reason)
        })
        .collect();

    let capture = t.path("inside.pcap");
    let (in_ns, in_if) = (t.in_ns.clone(), t.in_if.clone());
    let counter = t.start_counter(&in_ns, &in_if, Some(&capture));
    t.send_frames(sample.clone(), std::time::Duration::from_micros(200));
    let _ = counter.stop();

    let (_, arrived) = common::read_pcap(&capture);
    let mut got: HashMap<Vec<u8>, usize> = HashMap::new();
    for (_, _, bytes) in arrived {
        *got.entry(bytes).or_default() += 1;
    }
    let mut checked: HashMap<Reason, usize> = HashMap::new();
    let mut unexpressed_passed = 0;
    for (frame, &(verdict, reason)) in sample.iter().zip(&verdicts) {
        let crossed = got.get(frame).copied().unwrap_or(0) > 0;
        if !expressed(reason) {
            unexpressed_passed += usize::from(crossed);
            continue;
        }
        assert_eq!(
            crossed,
            verdict == Verdict::Forward,
            "greguard says {verdict:?} ({}) but on the bridge the frame {}: {frame:02x?}",
            reason.name(),
            if crossed { "crossed" } else { "did not cross" }
        );
        *checked.entry(reason).or_default() += 1;
    }
    for reason in [
        Reason::Tunnel,
        Reason::NonGre,
        Reason::UnknownTunnel,
        Reason::Bogon,
        Reason::BadVersion,
        Reason::BadFlags,
        Reason::ReservedBits,
        Reason::KeyMismatch,
        Reason::ProtocolDenied,
        Reason::NestedGre,
    ] {
        assert!(
            checked.get(&reason).copied().unwrap_or(0) > 0,
            "no frame of the sample was {} ({checked:?})",
            reason.name()
        );
    }
    // What nftables cannot check is the documented gap: the bad checksum from a real peer
    // crosses the bridge, where greguard drops it.
    assert!(unexpressed_passed > 0, "{checked:?}");
    drop(t);
}

//! `greguard nft`: the ruleset it prints loads into nftables, and on a Linux bridge between the
//! lab's two ports it gives greguard's verdict on every frame of a sample whose reason nftables
//! can express — for the lab's policy, and for random policies over the property-test
//! generators' frames. Needs root.

// Test policies hold a few tunnels: their indices fit u32.
#![allow(clippy::cast_possible_truncation)]

use crate::common;
use crate::shared;

use std::collections::HashMap;
use std::net::Ipv4Addr;

use crate::shape::Shape;
use common::netns::{sh, Topology};
use frames::{Checksum, FrameBuilder, Gre};
use traffic::mix::{Mix, Side, DST_MAC};
use traffic::Class;
use validator::{Classifier, Direction, Reason, Verdict};

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
    bridge(&t);

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

/// Joins the box's two ports in a Linux bridge. Bridged frames are not sent through the IP
/// layer's hooks (br_netfilter, where it is loaded, would check outer IP headers and hold
/// fragments for reassembly before the ruleset sees them).
fn bridge(t: &Topology) {
    for family in ["iptables", "ip6tables", "arptables"] {
        let _ = std::process::Command::new("ip")
            .args(["netns", "exec", &t.box_ns, "sysctl", "-qw"])
            .arg(format!("net.bridge.bridge-nf-call-{family}=0"))
            .output();
    }
    sh(&[
        "ip", "-n", &t.box_ns, "link", "add", "br0", "type", "bridge",
    ]);
    for port in [&t.box_out, &t.box_in] {
        sh(&["ip", "-n", &t.box_ns, "link", "set", port, "master", "br0"]);
    }
    sh(&["ip", "-n", &t.box_ns, "link", "set", "br0", "up"]);
}

/// The source MAC of the random test's frames (one the counter records).
const MARK: [u8; 6] = Class::Invalid.mac(0x6e);

/// Whether the ruleset makes greguard's decision `d` on `frame` in full: not where the decision
/// rests on a check config::nft::UNEXPRESSED lists (a broken outer header, a GRE checksum, the
/// inner checks beyond IPv4/IPv6 version and IHL, nesting nftables cannot see, IPv6 later
/// fragments, a first fragment's key, VLAN tags), nor on a policer.
fn nft_expresses(frame: &[u8], policy: &validator::Policy, d: validator::Decision) -> bool {
    use validator::Action;
    let be16 = |at: usize| {
        frame
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    let ethertype = be16(12).unwrap_or(0);
    if matches!(ethertype, 0x8100 | 0x88A8 | 0x9100) {
        return false;
    }
    let defaults = policy.defaults();
    let invalid = matches!(
        d.reason,
        Reason::Truncated
            | Reason::BadVersion
            | Reason::BadFlags
            | Reason::BadChecksum
            | Reason::BadInner
    );
    let policed = (invalid && defaults.invalid_gre == Action::RateLimit)
        || (d.reason == Reason::UnknownTunnel && defaults.unknown_tunnel == Action::RateLimit)
        || d.tunnel()
            .and_then(|t| policy.spec(t as u32))
            .is_some_and(|s| s.rate.is_some());
    if policed {
        return false;
    }
    // The GRE header and what follows, for outer IPv4 (the fragment rules and nesting).
    let (fragment, v6) = match ethertype {
        0x0800 => (be16(20).is_some_and(|f| f & 0x3FFF != 0), false),
        0x86DD => (ipv6_fragment(frame), true),
        _ => (false, false),
    };
    if v6 && matches!(d.reason, Reason::Fragment) {
        return false;
    }
    if fragment && d.reason == Reason::KeyMismatch {
        return false;
    }
    if !matches!(
        d.reason,
        Reason::NonGre
            | Reason::Bogon
            | Reason::Fragment
            | Reason::BadVersion
            | Reason::BadFlags
            | Reason::ReservedBits
            | Reason::UnknownTunnel
            | Reason::KeyMismatch
            | Reason::ProtocolDenied
            | Reason::ChecksumPolicy
            | Reason::SequencePolicy
            | Reason::Tunnel
    ) {
        return false;
    }
    // Inner bogons are checked behind ipv4 and ipv6 only (not WCCP's IPv4 packet).
    let shape = Shape::of(frame);
    let inner_ip = matches!(shape.v0, Some((0x0800 | 0x86DD, _)));
    if d.reason == Reason::Bogon && !shape.outer_bogon && !inner_ip {
        return false;
    }
    // Past the header checks, nesting and keepalives decide the tunnel rules: nftables sees
    // them only behind an inner IPv4 header of 20 bytes, whole, or an IPv6 header without
    // extension headers.
    !inner_unseen(frame, &shape)
}

/// Whether an outer IPv6 packet has a fragment header among the extension headers greguard
/// walks.
fn ipv6_fragment(frame: &[u8]) -> bool {
    let mut nh = frame.get(14 + 6).copied().unwrap_or(0);
    let mut at = 14 + 40;
    for _ in 0..4 {
        match nh {
            44 => return true,
            0 | 43 | 60 => {
                nh = frame.get(at).copied().unwrap_or(0);
                at += 8 + usize::from(frame.get(at + 1).copied().unwrap_or(0)) * 8;
            }
            _ => return false,
        }
    }
    false
}

/// An inner packet whose GRE (nested or keepalive) nftables cannot see as greguard does.
fn inner_unseen(frame: &[u8], shape: &Shape) -> bool {
    let Some((protocol, inner)) = shape.v0 else {
        return false;
    };
    let be16 = |at: usize| {
        frame
            .get(at..at + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
    };
    match protocol {
        0x0800 => {
            let ihl = frame.get(inner).map_or(5, |b| b & 0xF);
            let proto = frame.get(inner + 9).copied().unwrap_or(0);
            let frag = be16(inner + 6).unwrap_or(0) & 0x3FFF != 0;
            proto == 47 && (ihl != 5 || frag)
        }
        0x86DD => frame
            .get(inner + 6)
            .is_some_and(|nh| matches!(nh, 0 | 43 | 44 | 60)),
        // Nesting one carrier deep.
        0x6558 | 0x8847 | 0x8848 => true,
        _ => false,
    }
}

/// Random `[defaults]` and tunnel tables, and the generators' frames: the bridge gives
/// greguard's verdict on every frame whose decision nftables can express.
#[test]
fn the_nft_ruleset_agrees_with_greguard_under_random_policies() {
    use common::policies::{frame_runner, random_policy, seed, Draw};
    use proptest::strategy::{Strategy, ValueTree};
    use shared::generators::*;

    let seed = seed();
    let mut d = Draw::new(seed);
    let mut runner = frame_runner(seed);
    let mut t = Topology::new(1);
    bridge(&t);
    let corpus = corpus();
    let (mut policies, mut checked) = (0, 0);
    let mut report = String::new();
    while policies < 12 {
        let text = random_policy(&mut d);
        let policy_path = t.policy("", &text);
        let Ok(loaded) = config::load_file(&policy_path) else {
            continue;
        };
        policies += 1;
        let out = common::greguard(&["nft", "-c", policy_path.to_str().unwrap()]);
        assert!(out.status.success(), "{}", common::text(&out).1);
        let rules = t.path("random.nft");
        std::fs::write(&rules, &out.stdout).unwrap();
        let _ = std::process::Command::new("ip")
            .args([
                "netns", "exec", &t.box_ns, "nft", "delete", "table", "bridge", "greguard",
            ])
            .output();
        sh(&[
            "ip",
            "netns",
            "exec",
            &t.box_ns,
            "nft",
            "-f",
            rules.to_str().unwrap(),
        ]);

        // The corpus, the reason tests' frames, and random ones.
        let mut frames: Vec<Vec<u8>> = corpus.iter().map(|(_, b)| b.build()).collect();
        frames.extend(non_gre_frames().into_iter().map(|(_, f)| f));
        frames.extend(fragments().into_iter().map(|(_, b, _)| b.build()));
        frames.extend(fail_closed_frames().into_iter().map(|(_, f, _)| f));
        for i in 0..240 {
            let f = match i % 3 {
                0 => {
                    let (kind, mutations) =
                        (0..corpus.len(), proptest::collection::vec(mutation(), 1..4))
                            .new_tree(&mut runner)
                            .unwrap()
                            .current();
                    let mut f = corpus[kind].1.build();
                    for m in &mutations {
                        apply(&mut f, m);
                    }
                    f
                }
                1 => {
                    let ((src, dst), start, rest) = (
                        endpoints(),
                        proptest::option::of(gre_start()),
                        proptest::collection::vec(proptest::prelude::any::<u8>(), 0..100),
                    )
                        .new_tree(&mut runner)
                        .unwrap()
                        .current();
                    let mut gre = start.map(|s| s.to_vec()).unwrap_or_default();
                    gre.extend_from_slice(&rest);
                    FrameBuilder::ip(src, dst).raw(47, gre).build()
                }
                _ => tunnel_frame()
                    .new_tree(&mut runner)
                    .unwrap()
                    .current()
                    .build()
                    .0
                    .build(),
            };
            frames.push(f);
        }
        // Unicast to the inside host, from the mark: the bridge floods the frame to the inside.
        frames.retain(|f| f.len() >= 14 && f.len() <= 1514);
        for f in &mut frames {
            f[..6].copy_from_slice(&DST_MAC);
            f[6..12].copy_from_slice(&MARK);
        }

        let capture = t.path("random-inside.pcap");
        let (in_ns, in_if) = (t.in_ns.clone(), t.in_if.clone());
        let counter = t.start_counter(&in_ns, &in_if, Some(&capture));
        t.send_frames(frames.clone(), std::time::Duration::from_micros(150));
        std::thread::sleep(std::time::Duration::from_millis(100));
        let _ = counter.stop();
        let (_, arrived) = common::read_pcap(&capture);
        let mut got: HashMap<Vec<u8>, usize> = HashMap::new();
        for (_, _, bytes) in arrived {
            *got.entry(bytes).or_default() += 1;
        }
        let mut sent: HashMap<&[u8], usize> = HashMap::new();
        for f in &frames {
            *sent.entry(f.as_slice()).or_default() += 1;
        }
        for (frame, copies) in sent {
            let user = Classifier::new(&loaded.policy, 0).classify(
                &loaded.policy,
                0,
                Direction::FromOutside,
                frame,
            );
            if !nft_expresses(frame, &loaded.policy, user) {
                continue;
            }
            checked += copies;
            let crossed = got.get(frame).copied().unwrap_or(0);
            let want = if user.verdict == Verdict::Forward {
                copies
            } else {
                0
            };
            if crossed != want {
                report += &format!(
                    "policy {policies}: greguard {}/{}, {crossed} of {copies} crossed the bridge: {}\n",
                    user.verdict,
                    user.reason,
                    frame.iter().map(|b| format!("{b:02x}")).collect::<String>()
                );
            }
        }
        if !report.is_empty() {
            let listed = std::process::Command::new("ip")
                .args([
                    "netns", "exec", &t.box_ns, "nft", "list", "table", "bridge", "greguard",
                ])
                .output()
                .expect("nft list");
            report += &format!(
                "--- policy {policies}:\n{text}\n--- its ruleset after the frames:\n{}",
                String::from_utf8_lossy(&listed.stdout)
            );
            break;
        }
    }
    eprintln!("{checked} frames checked on the bridge under {policies} random policies");
    assert!(report.is_empty(), "seed {seed}:\n{report}");
    assert!(
        checked >= 1000,
        "only {checked} frames had a decision nftables expresses"
    );
}

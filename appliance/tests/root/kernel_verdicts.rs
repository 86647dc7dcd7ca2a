//! The fast lane's XDP program decides a frame only as the validator would. The program runs
//! with BPF_PROG_RUN on the box's real interfaces (nothing is sent; no socket serves the queue
//! and greguard's heartbeat is current, so what it would hand up is counted as `unserved`), and
//! each frame's kernel verdict and reason, read from its counters, is compared with the
//! `Classifier`'s for the same frame, port and policy:
//!
//! - over every frame of the property-test generators and their mutations, the frames of the
//!   reason tests and of `captures/`, under random `[defaults]` and tunnel tables;
//! - bit by bit over the version-0 flags, under both `reserved_bits` settings.
//!
//! Where the kernel decides, it must reach the validator's verdict, reason and tunnel; where it
//! hands a frame up, the table of docs/fast-lane.md must say it does. Three policies in four
//! run with the kernel path on (the program forwards tunnel traffic of host pairs itself), and
//! the run must see it forward; the tunnels' policers are the lane's shared cells, set before
//! each frame to the same state (full, or empty) for both engines. Needs root.

// Policies here have a handful of tunnels and keys below 2^16 (PPTP call IDs): the casts of
// tunnel indices and keys keep every bit.
#![allow(clippy::cast_possible_truncation)]

use crate::common;
use crate::shared;

use std::fmt::Write as _;

use crate::shape::Shape;
use common::netns::Topology;
use common::policies::{frame_runner, random_policy, seed, Draw};
use datapath::lane::{monotonic_ns, FastLane, LaneCounters, OnFailure, Settings};
use datapath::{Link, SamplingRates};
use frames::{FrameBuilder, Gre};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use shared::generators::*;
use validator::wire::numbers::gre_flags;
use validator::{Buckets, Classifier, Decision, Direction, Policy, Reason, Verdict, NO_TUNNEL};

/// What the kernel did with one frame: decided (verdict, reason, tunnel), or handed it up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    Decided(Verdict, Reason, u32),
    HandedUp,
}

/// The lane as a running box sets it (fail-closed; no sampling; 4096-byte UMEM frames, of which
/// 3840 bytes hold a frame).
fn settings() -> Settings {
    Settings {
        on_failure: OnFailure::Closed,
        sampling: SamplingRates::default(),
        max_frame: 4096 - 256,
        active: true,
    }
}

/// XDP actions (linux/bpf.h).
const XDP_DROP: u32 = 1;
const XDP_REDIRECT: u32 = 4;

/// Runs the program on `frame` as arriving on `port` and reads what it did from its counters:
/// the one verdict counter that moved, or `unserved` (handed up, no socket).
fn kernel(lane: &FastLane, links: &[Link; 2], port: usize, frame: &[u8]) -> Kernel {
    let before = lane.counters();
    let action = lane.test_run(&links[port], 0, frame).expect("BPF_PROG_RUN");
    let after = lane.counters();
    let moved = what_moved(port, &before, &after);
    let expected_action = match moved {
        Kernel::Decided(Verdict::Forward, _, _) => XDP_REDIRECT,
        _ => XDP_DROP,
    };
    assert_eq!(
        action, expected_action,
        "{moved:?} with XDP action {action}"
    );
    moved
}

fn what_moved(port: usize, before: &LaneCounters, after: &LaneCounters) -> Kernel {
    if after.unserved[port] > before.unserved[port] {
        return Kernel::HandedUp;
    }
    let tunnel = (0..after.verdicts.tunnel_packets.len())
        .find(|&t| {
            let at = |c: &LaneCounters| c.verdicts.tunnel_packets.get(t).copied();
            at(after) != at(before)
        })
        .map_or(NO_TUNNEL, |t| t as u32);
    for r in Reason::ALL {
        for v in Verdict::ALL {
            let at = |c: &LaneCounters| c.verdicts.packets[port][r as usize][v as usize];
            if at(after) > at(before) {
                return Kernel::Decided(v, r, tunnel);
            }
        }
    }
    panic!("the frame moved no counter");
}

/// Whether the table of docs/fast-lane.md says the program may hand `frame` up, given the
/// validator's decision for it: GRE it forwards or judges past the tunnel match (which the
/// kernel path judges only for some host pairs, and not at all when it is off), rate-limit
/// actions, what the program does not parse or check, and GRE whose addresses are in its
/// prefix tries.
fn may_go_up(frame: &[u8], dir: Direction, policy: &Policy, d: Decision) -> bool {
    if d.verdict == Verdict::Forward && d.reason != Reason::NonGre {
        return true;
    }
    let shape = Shape::of(frame);
    let tries = shape.in_tries(policy, dir);
    match d.reason {
        Reason::NonGre => shape.ipv6_extensions,
        Reason::Truncated
        | Reason::BadIp
        | Reason::BadChecksum
        | Reason::KeyMismatch
        | Reason::ProtocolDenied
        | Reason::NestedGre
        | Reason::ChecksumPolicy
        | Reason::SequencePolicy
        | Reason::RateLimited
        | Reason::Tunnel => true,
        Reason::BadVersion | Reason::BadFlags | Reason::ReservedBits => shape.outer_unparsed,
        Reason::Fragment => {
            shape.outer_unparsed || (policy.defaults().fragments_to_tunnel && tries)
        }
        Reason::Bogon => shape.outer_unparsed || (!shape.outer_bogon && shape.body_unchecked),
        Reason::BadInner => shape.outer_unparsed || shape.body_unchecked,
        Reason::UnknownTunnel => shape.outer_unparsed || shape.body_unchecked || tries,
        Reason::Oversize => false,
    }
}

/// One value of a strategy.
fn draw<S: Strategy>(runner: &mut TestRunner, s: S) -> S::Value {
    s.new_tree(runner).expect("generate").current()
}

/// A frame to judge: where it comes from (for the report), the port it arrives on, its bytes.
type Case = (String, Direction, Vec<u8>);

/// The fixed frames: the generators' corpus from both sides, the reason tests' non-GRE frames,
/// fragments and fail-closed frames, and every frame of `captures/` from both sides.
fn fixed_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (name, b) in corpus() {
        cases.push((format!("corpus {name}"), Direction::FromOutside, b.build()));
        if !matches!(
            b.network,
            frames::Network::Ipv4(_) | frames::Network::Ipv6(_)
        ) {
            continue;
        }
        cases.push((
            format!("corpus {name}, reversed"),
            Direction::FromInside,
            shared::reversed(b).build(),
        ));
    }
    for (name, f) in non_gre_frames() {
        cases.push((format!("non-GRE {name}"), Direction::FromOutside, f));
    }
    for (name, b, _) in fragments() {
        cases.push((
            format!("fragment {name}"),
            Direction::FromOutside,
            b.build(),
        ));
    }
    for (file, frames) in common::capture_frames() {
        for (i, f) in frames.into_iter().enumerate() {
            for dir in [Direction::FromOutside, Direction::FromInside] {
                cases.push((format!("{file} frame {}", i + 1), dir, f.clone()));
            }
        }
    }
    cases
}

/// Random frames: mutated corpus frames, random GRE behind valid outer headers, random tunnel
/// frames and random bytes after an Ethernet header.
fn random_cases(runner: &mut TestRunner, n: usize) -> Vec<Case> {
    let corpus = corpus();
    let mut cases = Vec::new();
    let dir = |reverse: bool| {
        if reverse {
            Direction::FromInside
        } else {
            Direction::FromOutside
        }
    };
    for i in 0..n {
        let case = match i % 8 {
            0..=2 => {
                let (kind, mutations) = draw(
                    runner,
                    (0..corpus.len(), proptest::collection::vec(mutation(), 1..5)),
                );
                let (name, b) = &corpus[kind];
                let mut f = b.build();
                for m in &mutations {
                    apply(&mut f, m);
                }
                (format!("mutated {name}"), Direction::FromOutside, f)
            }
            3..=5 => {
                let ((src, dst), tags, start, rest, reverse) = draw(
                    runner,
                    (
                        endpoints(),
                        0..3usize,
                        proptest::option::of(gre_start()),
                        proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120),
                        proptest::prelude::any::<bool>(),
                    ),
                );
                let mut gre = start.map(|s| s.to_vec()).unwrap_or_default();
                gre.extend_from_slice(&rest);
                let b = if reverse {
                    FrameBuilder::ip(dst, src)
                } else {
                    FrameBuilder::ip(src, dst)
                };
                let f = tagged(b, tags).raw(47, gre).build();
                ("random GRE".to_string(), dir(reverse), f)
            }
            6 => {
                let (b, d, _) = draw(runner, tunnel_frame()).build();
                ("tunnel frame".to_string(), d, b.build())
            }
            _ => {
                let (ty, rest) = draw(
                    runner,
                    (
                        proptest::sample::select(vec![0x0800u16, 0x86DD, 0x8100, 0x88A8]),
                        proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120),
                    ),
                );
                let f = FrameBuilder::ethernet(ty, rest).build();
                ("random bytes".to_string(), Direction::FromOutside, f)
            }
        };
        cases.push(case);
    }
    cases
}

/// Frames of every host pair and prefix pair of `policy` (where the kernel path may judge),
/// from both ends (an address inside each prefix):
/// with no key, the pair's key and another; IPv4, IPv6, keepalive, a numeric type, bridged
/// Ethernet, inner GRE (nested) and an inner bogon as payload; with and without a sequence
/// number; and PPTP data, acknowledgments and bad PPP.
fn host_pair_cases(policy: &Policy) -> Vec<Case> {
    use frames::payload;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use validator::policy::{HostAddrs, IpPrefix, PairKey};
    let (a4, b4) = (Ipv4Addr::new(10, 1, 0, 1), Ipv4Addr::new(10, 1, 0, 2));
    let (a6, b6): (Ipv6Addr, Ipv6Addr) = (
        "2001:db8:a::1".parse().unwrap(),
        "2001:db8:a::2".parse().unwrap(),
    );
    let payloads: Vec<(u16, Vec<u8>)> = vec![
        (0x0800, payload::ipv4_udp(a4, b4, 1, 2, &[0x5a; 18])),
        (0x86DD, payload::ipv6_udp(a6, b6, 1, 2, &[0x5a; 18])),
        (0x0000, Vec::new()),
        (0x1234, vec![0xc3; 20]),
        (0x6558, shared::udp4()),
        (
            0x0800,
            payload::ipv4(a4, b4, 47, &[0, 0, 0x08, 0, 0x45, 0, 0, 20]),
        ),
        (
            0x0800,
            payload::ipv4(Ipv4Addr::new(127, 0, 0, 1), b4, 17, &[0; 8]),
        ),
    ];
    let ppp: Vec<Vec<u8>> = vec![
        [
            vec![0xff, 0x03, 0x00, 0x21],
            payload::ipv4_udp(a4, b4, 1, 2, &[1; 10]),
        ]
        .concat(),
        vec![0x21, 0x45, 0, 0],
        vec![0x00, 0x20, 0, 0],
    ];
    // An address in a prefix: its host bits from a documentation address (no bogon, even in
    // 0.0.0.0/0 or ::/0).
    let inside = |p: IpPrefix| match p {
        IpPrefix::V4(a, len) => {
            let host = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(a | (0xCB00_7163 & host)))
        }
        IpPrefix::V6(a, len) => {
            let host = u128::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(
                a | (0x2001_0db8_0000_0000_0000_0000_0000_0099 & host),
            ))
        }
    };
    let mut ends: Vec<(IpAddr, IpAddr, PairKey)> = policy
        .host_pairs()
        .map(|pair| match pair.addrs {
            HostAddrs::V4 { peer, local } => (
                IpAddr::V4(Ipv4Addr::from(peer)),
                IpAddr::V4(Ipv4Addr::from(local)),
                pair.key,
            ),
            HostAddrs::V6 { peer, local } => (
                IpAddr::V6(Ipv6Addr::from(peer)),
                IpAddr::V6(Ipv6Addr::from(local)),
                pair.key,
            ),
        })
        .collect();
    ends.extend(
        policy
            .prefix_pairs()
            .into_iter()
            .map(|pair| (inside(pair.peer), inside(pair.local), pair.key)),
    );
    let mut cases = Vec::new();
    for (peer, local, key) in ends {
        let own = match key {
            PairKey::Equal(k) => k,
            _ => 5,
        };
        let mut headers = Vec::new();
        for key in [None, Some(own), Some(own ^ 1)] {
            for seq in [false, true] {
                for (proto, inner) in &payloads {
                    let mut g = Gre::v0(*proto);
                    if let Some(k) = key {
                        g = g.key(k);
                    }
                    if seq {
                        g = g.sequence(7);
                    }
                    headers.push((g, inner.clone()));
                }
                // PPTP: the call ID is the key (a u16).
                for p in &ppp {
                    let mut g = Gre::pptp(key.unwrap_or(own) as u16);
                    if seq {
                        g = g.sequence(7);
                    }
                    headers.push((g, p.clone()));
                }
                headers.push((Gre::pptp(own as u16).ack(3), Vec::new()));
            }
        }
        for (g, inner) in headers {
            for dir in [Direction::FromOutside, Direction::FromInside] {
                let (src, dst) = match dir {
                    Direction::FromOutside => (peer, local),
                    Direction::FromInside => (local, peer),
                };
                let f = FrameBuilder::ip(src, dst)
                    .gre(g.clone(), inner.clone())
                    .build();
                cases.push(("tunnel pair".to_string(), dir, f));
            }
        }
    }
    cases
}

/// Judges every case under `policy` in the kernel and in the validator; returns the number
/// judged and a report line per disagreement.
/// Frames judged, frames the kernel path judged in a tunnel (forwarded, or dropped by the
/// tunnel's rules or policer), and a report line per disagreement.
type Outcome = (usize, usize, Vec<String>);

fn compare(lane: &FastLane, links: &[Link; 2], policy: &Policy, cases: &[Case]) -> Outcome {
    let mut judged = 0;
    let mut in_tunnel = 0;
    let mut bad = Vec::new();
    for (i, (what, dir, frame)) in cases.iter().enumerate() {
        // BPF_PROG_RUN refuses frames shorter than an Ethernet header, which no port delivers.
        if frame.len() < 14 {
            continue;
        }
        judged += 1;
        // Both engines police with the lane's cells, each from the same state: full buckets,
        // or (every third frame) buckets with no room for the next 10 s.
        let now = monotonic_ns();
        let tat = if i % 3 == 2 {
            (now + 10_000_000_000) * validator::policer::TICKS_PER_NS
        } else {
            0
        };
        let cells: Vec<_> = (0..policy.tunnel_count() as u32)
            .filter_map(|t| lane.tunnel_cell(t))
            .collect();
        let set = || {
            for c in &cells {
                c.tat().store(tat, std::sync::atomic::Ordering::Relaxed);
            }
        };
        let buckets = Buckets::with_cells(policy, now, 0, None, &|t| lane.tunnel_cell(t));
        set();
        let user = Classifier::with_buckets(buckets).classify(policy, now, *dir, frame);
        set();
        let port = *dir as usize;
        let k = kernel(lane, links, port, frame);
        let ok = match k {
            Kernel::Decided(v, r, t) => (v, r, t) == (user.verdict, user.reason, user.tunnel),
            Kernel::HandedUp => may_go_up(frame, *dir, policy, user),
        };
        if matches!(k, Kernel::Decided(_, _, t) if t != NO_TUNNEL) {
            in_tunnel += 1;
        }
        if !ok {
            let mut hex = String::new();
            for b in frame {
                let _ = write!(hex, "{b:02x}");
            }
            bad.push(format!(
                "{what} from {}: validator {}/{}, kernel {k:?}\n  frame {hex}",
                dir.port(),
                user.verdict,
                user.reason
            ));
        }
    }
    (judged, in_tunnel, bad)
}

/// Runs `f` with the box's two ports, in the box's namespace.
fn on_the_box_ports(f: impl FnOnce([Link; 2]) + Send + 'static) {
    let t = Topology::new(1);
    let (out_if, in_if) = (t.box_out.clone(), t.box_in.clone());
    common::netns::in_netns(&t.box_ns, move || {
        f([
            Link::open("outside", &out_if).unwrap(),
            Link::open("inside", &in_if).unwrap(),
        ])
    })
    .join()
    .expect("the test's thread in the box's namespace failed (its panic is above)");
}

/// The differential test: at least 50 random policies and 10 000 frames per run.
#[test]
fn the_kernel_decides_as_the_validator_over_generated_frames_and_random_policies() {
    on_the_box_ports(|links| {
        let seed = seed();
        let mut d = Draw::new(seed);
        let mut runner = frame_runner(seed);
        let fixed = fixed_cases();
        let (mut policies, mut frames, mut in_tunnel) = (0, 0, 0);
        let mut report = String::new();
        while policies < 60 {
            let text = random_policy(&mut d);
            let Ok(loaded) = config::load_str(&text, "policy") else {
                continue; // two tunnels alike: draw again
            };
            let policy = &loaded.policy;
            let mut lane = FastLane::load().expect("load the fast lane");
            lane.configure(&links[0], &links[1], policy, settings())
                .unwrap();
            let kernel_path = policies % 4 != 3;
            lane.set_kernel_tunnels([kernel_path; 2]).unwrap();
            let _alive = lane.heartbeat().unwrap();
            let mut cases = random_cases(&mut runner, 240);
            cases.extend(fixed.iter().cloned());
            cases.extend(host_pair_cases(policy));
            let (judged, forwarded, bad) = compare(&lane, &links, policy, &cases);
            policies += 1;
            frames += judged;
            in_tunnel += forwarded;
            if !bad.is_empty() {
                let _ = writeln!(
                    report,
                    "--- policy {policies} ({} disagreements; the first 5):\n{text}",
                    bad.len()
                );
                for line in bad.iter().take(5) {
                    let _ = writeln!(report, "{line}");
                }
            }
        }
        eprintln!(
            "{frames} frames judged by kernel and validator under {policies} policies; \
             {in_tunnel} judged in a tunnel by the kernel path"
        );
        assert!(frames >= 10_000, "only {frames} frames");
        assert!(
            in_tunnel >= 1000,
            "the kernel path judged only {in_tunnel} frames in a tunnel"
        );
        assert!(
            report.is_empty(),
            "kernel and validator disagree:\n{report}"
        );
    });
}

/// RFC 2784 §2.3 on receipt, bit by bit: R, s and recursion bit 5 are discarded; recursion
/// bits 6–7 and the reserved bits 8–12 are ignored unless the policy drops them. The kernel and
/// the validator agree on every one, under both `reserved_bits` settings.
#[test]
fn version_0_flag_bits_get_the_validators_verdict_in_the_kernel() {
    on_the_box_ports(|links| {
        let inner = shared::udp4();
        for reserved in ["drop", "ignore"] {
            let text = format!(
                "[defaults]\nreserved_bits = \"{reserved}\"\n{}",
                common::berlin("")
            );
            let policy = config::load_str(&text, "policy").unwrap().policy;
            let mut lane = FastLane::load().expect("load the fast lane");
            lane.configure(&links[0], &links[1], &policy, settings())
                .unwrap();
            lane.set_kernel_tunnels([true; 2]).unwrap();
            let _alive = lane.heartbeat().unwrap();
            for bit in 3..=14 {
                let flag = 1u16 << bit;
                if flag == gre_flags::K {
                    continue; // the key is there
                }
                let frame = FrameBuilder::ipv4(
                    "203.0.113.7".parse().unwrap(),
                    "198.51.100.10".parse().unwrap(),
                )
                .gre(Gre::v0(0x0800).key(1001).set_flags(flag), inner.clone())
                .build();
                let user = Classifier::new(&policy, 0).classify(
                    &policy,
                    0,
                    Direction::FromOutside,
                    &frame,
                );
                let k = kernel(&lane, &links, 0, &frame);
                let context = format!(
                    "flag {flag:#06x}, reserved_bits = {reserved}: validator {:?}/{:?}, \
                     kernel {k:?}, frame {frame:02x?}",
                    user.verdict, user.reason
                );
                match k {
                    Kernel::Decided(v, r, _) => {
                        assert_eq!((v, r), (user.verdict, user.reason), "{context}")
                    }
                    Kernel::HandedUp => assert!(
                        may_go_up(&frame, Direction::FromOutside, &policy, user),
                        "{context}"
                    ),
                }
            }
        }
    });
}

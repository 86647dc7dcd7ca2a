//! Properties of the classifier over random and mutated input: it never panics, every decision
//! fits the reason table of the README's Verdicts and reasons under the policy's defaults, a
//! truncated GRE frame is never forwarded as tunnel traffic, and a batch decides as frames one by
//! one do.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::*;
use fastpath::build::{payload, FrameBuilder, Gre, Ipv6Ext};
use fastpath::wire::gre::proto;
use fastpath::{
    Action, Classifier, Decision, Defaults, Direction, KeyRule, Policy, Reason, TunnelSpec, Verdict,
};
use proptest::prelude::*;
use proptest::sample::Index;

/// Tunnels for every kind of frame the corpus holds: 0 PEER–LOCAL (every version-0 class), 1 the
/// same for IPv6, 2 PPTP, 3 a keyed tunnel on a prefix, 4 a tunnel with a tight policer when
/// `rated`.
fn prop_policy(defaults: Defaults, rated: bool) -> Policy {
    let every = protocols(ALL_V0_PROTOCOLS);
    policy(
        defaults,
        vec![
            TunnelSpec {
                protocols: every.clone(),
                ..tunnel("all", &PEER.to_string(), &LOCAL.to_string())
            },
            TunnelSpec {
                protocols: every.clone(),
                ..tunnel("all6", &PEER6.to_string(), &LOCAL6.to_string())
            },
            pptp_tunnel("pptp", &PPTP_PEER.to_string(), &LOCAL.to_string()),
            TunnelSpec {
                key: KeyRule::Equal(77),
                sequence: fastpath::FlagRule::Require,
                ..tunnel("keyed", "192.0.2.0/24", "198.51.100.0/24")
            },
            TunnelSpec {
                rate: rated.then_some(rate(1000, 2)),
                checksum: fastpath::FlagRule::Forbid,
                ..tunnel("rated", "100.64.0.1", &LOCAL.to_string())
            },
        ],
    )
}

fn defaults_strategy() -> impl Strategy<Value = Defaults> {
    (
        any::<bool>(),
        0..3u8,
        any::<bool>(),
        1..5u64,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(non_gre_drop, unknown, invalid_rl, burst, frag, reserved, bogons)| Defaults {
                non_gre: if non_gre_drop {
                    Verdict::Drop
                } else {
                    Verdict::Forward
                },
                unknown_tunnel: [Action::Forward, Action::Drop, Action::RateLimit]
                    [usize::from(unknown)],
                invalid_gre: if invalid_rl {
                    Action::RateLimit
                } else {
                    Action::Drop
                },
                rate_limit: rate(1000, burst),
                fragments_to_tunnel: frag,
                drop_reserved_bits: reserved,
                drop_bogons: bogons,
            },
        )
}

fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![Just(Direction::FromOutside), Just(Direction::FromInside)]
}

/// Valid frames of every kind: each GRE class, PPTP, fragments, options and extension headers,
/// tags, and the non-GRE background.
fn corpus() -> Vec<(&'static str, FrameBuilder)> {
    let eth = inner_ethernet();
    vec![
        ("ipv4", gre4(Gre::v0(proto::IPV4), udp4())),
        (
            "ipv4 c k s",
            gre4(Gre::v0(proto::IPV4).checksum().key(1).sequence(2), udp4()).vlan(5),
        ),
        (
            "ipv6 in ipv4",
            gre4(Gre::v0(proto::IPV6), udp6()).qinq(1, 2),
        ),
        ("teb", gre4(Gre::v0(proto::TEB), eth.clone())),
        (
            "mpls",
            gre4(Gre::v0(proto::MPLS_UNICAST), payload::mpls(16, 9, &udp4())),
        ),
        ("erspan type i", gre4(Gre::v0(proto::ERSPAN2), eth.clone())),
        (
            "erspan type ii",
            gre4(
                Gre::v0(proto::ERSPAN2).sequence(1),
                payload::erspan2(1, 2, 3, &eth),
            ),
        ),
        (
            "erspan type iii",
            gre4(
                Gre::v0(proto::ERSPAN3).sequence(1),
                payload::erspan3(1, 2, Some([0; 8]), &eth),
            ),
        ),
        (
            "nhrp",
            gre4(Gre::v0(proto::NHRP), payload::nhrp(1, &[0; 16])),
        ),
        ("wccp v1", gre4(Gre::v0(proto::WCCP), udp4())),
        (
            "wccp v2",
            gre4(Gre::v0(proto::WCCP), payload::wccp_v2(0, 0, &udp4())),
        ),
        (
            "keepalive request",
            gre4(
                Gre::v0(proto::IPV4),
                payload::keepalive_request(PEER, LOCAL),
            ),
        ),
        (
            "keepalive reply",
            gre4(Gre::v0(proto::KEEPALIVE), []).pad_to(60),
        ),
        ("numeric", gre4(Gre::v0(0x1234).checksum(), [9; 21])),
        (
            "nested",
            gre4(
                Gre::v0(proto::IPV4),
                gre4(Gre::v0(proto::IPV4), udp4()).build_ip(),
            ),
        ),
        ("pptp", pptp(Gre::pptp(5), ppp_ipv4())),
        (
            "pptp seq ack",
            pptp(Gre::pptp(5).sequence(1).ack(2), ppp_ipv4()).vlan(3),
        ),
        ("pptp ack only", pptp(Gre::pptp(5).ack(2), []).pad_to(60)),
        (
            "ipv6 outer",
            gre6(Gre::v0(proto::IPV6).key(3), udp6()).qinq(7, 8),
        ),
        (
            "ipv6 extension headers",
            gre6(Gre::v0(proto::IPV4), udp4())
                .ipv6_ext(Ipv6Ext::hop_by_hop())
                .ipv6_ext(Ipv6Ext::routing())
                .ipv6_ext(Ipv6Ext::destination_options()),
        ),
        (
            "ipv4 options",
            gre4(Gre::v0(proto::IPV4), udp4()).ipv4_options([0x94, 4, 0, 0, 1, 1, 1, 0]),
        ),
        (
            "ipv4 fragment",
            gre4(Gre::v0(proto::IPV4), udp4()).ipv4_fragment(true, 0),
        ),
        (
            "ipv6 fragment",
            gre6(Gre::v0(proto::IPV4), udp4()).ipv6_ext(Ipv6Ext::fragment(0, true)),
        ),
        (
            "keyed prefix",
            FrameBuilder::ipv4(Ipv4Addr::new(192, 0, 2, 5), Ipv4Addr::new(198, 51, 100, 5))
                .gre(Gre::v0(proto::IPV4).key(77).sequence(1), udp4()),
        ),
        (
            "rated",
            FrameBuilder::ipv4(Ipv4Addr::new(100, 64, 0, 1), LOCAL)
                .gre(Gre::v0(proto::IPV4), udp4()),
        ),
        (
            "unknown",
            FrameBuilder::ipv4(STRANGER, LOCAL).gre(Gre::v0(proto::IPV4), udp4()),
        ),
        ("arp", FrameBuilder::arp_request(LOCAL, PEER).pad_to(60)),
        (
            "icmp",
            FrameBuilder::ipv4(PEER, LOCAL).echo_request(1, 2, [0; 32]),
        ),
        ("tcp", FrameBuilder::ipv4(PEER, LOCAL).tcp(1, 2, 0x12, [])),
        (
            "udp",
            FrameBuilder::ipv4(PEER, LOCAL).udp(500, 500, [0; 40]),
        ),
        (
            "esp",
            FrameBuilder::ipv4(PEER, LOCAL).esp(1, 1, [0; 40]).vlan(1),
        ),
        (
            "icmpv6",
            FrameBuilder::ipv6(PEER6, LOCAL6).echo_request(1, 2, [0; 8]),
        ),
    ]
}

/// The corpus frames that the property policy forwards as tunnel traffic, and their tunnels.
fn tunnel_corpus() -> Vec<(&'static str, FrameBuilder, u32)> {
    let tunnels = [
        ("ipv4", 0),
        ("ipv4 c k s", 0),
        ("ipv6 in ipv4", 0),
        ("teb", 0),
        ("mpls", 0),
        ("erspan type i", 0),
        ("erspan type ii", 0),
        ("erspan type iii", 0),
        ("nhrp", 0),
        ("wccp v1", 0),
        ("wccp v2", 0),
        ("keepalive request", 0),
        ("keepalive reply", 0),
        ("numeric", 0),
        ("pptp", 2),
        ("pptp seq ack", 2),
        ("pptp ack only", 2),
        ("ipv6 outer", 1),
        ("ipv6 extension headers", 1),
        ("ipv4 options", 0),
        ("keyed prefix", 3),
        ("rated", 4),
    ];
    let corpus = corpus();
    tunnels
        .iter()
        .map(|&(name, t)| {
            let (_, b) = corpus.iter().find(|(n, _)| *n == name).expect(name);
            (name, b.clone(), t)
        })
        .collect()
}

#[test]
fn the_tunnel_corpus_is_tunnel_traffic() {
    let p = prop_policy(Defaults::default(), true);
    for (name, b, t) in tunnel_corpus() {
        assert_eq!(
            outside(&p, &b.build()),
            decision(Verdict::Forward, Reason::Tunnel, Some(t)),
            "{name}"
        );
    }
    // And the rest of the corpus is not.
    let names: Vec<_> = tunnel_corpus().iter().map(|(n, _, _)| *n).collect();
    for (name, b) in corpus() {
        if !names.contains(&name) {
            assert_ne!(outside(&p, &b.build()).reason, Reason::Tunnel, "{name}");
        }
    }
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(Index, u8),
    Truncate(Index),
    Insert(Index, u8),
    Remove(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<Index>().prop_map(Mutation::Remove),
    ]
}

fn apply(frame: &mut Vec<u8>, m: &Mutation) {
    match m {
        Mutation::Flip(i, mask) if !frame.is_empty() => {
            let at = i.index(frame.len());
            frame[at] ^= mask;
        }
        Mutation::Truncate(i) => {
            let len = i.index(frame.len() + 1);
            frame.truncate(len);
        }
        Mutation::Insert(i, b) => {
            let at = i.index(frame.len() + 1);
            frame.insert(at, *b);
        }
        Mutation::Remove(i) if !frame.is_empty() => {
            let at = i.index(frame.len());
            frame.remove(at);
        }
        _ => {}
    }
}

/// Classifies with a fresh classifier and checks the decision against the table.
fn check(p: &Policy, dir: Direction, frame: &[u8]) -> Result<Decision, TestCaseError> {
    let d = classify(p, dir, frame);
    prop_assert_ne!(
        d.reason,
        Reason::Oversize,
        "oversize is for the data path only"
    );
    if let Err(e) = consistent(p, d) {
        return Err(TestCaseError::fail(e));
    }
    Ok(d)
}

/// A GRE header start (flags/version word and protocol) that reaches the later stages often.
fn gre_start() -> impl Strategy<Value = [u8; 4]> {
    let fv = prop_oneof![
        Just(0x0000u16),
        Just(0x2000),
        Just(0x8000),
        Just(0x1000),
        Just(0xB000),
        Just(0x2001),
        Just(0x3081),
        Just(0x2081),
        Just(0x0008),
        Just(0x4000),
        Just(0x0003),
        any::<u16>(),
    ];
    let protocol = prop_oneof![
        Just(proto::IPV4),
        Just(proto::IPV6),
        Just(proto::TEB),
        Just(proto::PPP),
        Just(proto::MPLS_UNICAST),
        Just(proto::ERSPAN2),
        Just(proto::ERSPAN3),
        Just(proto::NHRP),
        Just(proto::WCCP),
        Just(proto::KEEPALIVE),
        Just(0x1234u16),
        any::<u16>(),
    ];
    (fv, protocol).prop_map(|(f, p)| {
        let [a, b] = f.to_be_bytes();
        let [c, d] = p.to_be_bytes();
        [a, b, c, d]
    })
}

fn endpoints() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    prop_oneof![
        Just((IpAddr::V4(PEER), IpAddr::V4(LOCAL))),
        Just((IpAddr::V4(PPTP_PEER), IpAddr::V4(LOCAL))),
        Just((IpAddr::V4(STRANGER), IpAddr::V4(LOCAL))),
        Just((IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), IpAddr::V4(LOCAL))),
        Just((IpAddr::V6(PEER6), IpAddr::V6(LOCAL6))),
        Just((IpAddr::V6(STRANGER6), IpAddr::V6(LOCAL6))),
    ]
}

/// Random parameters for a well-formed tunnel frame.
#[derive(Clone, Debug)]
struct TunnelFrame {
    kind: Index,
    v6: bool,
    tags: usize,
    checksum: bool,
    key: Option<u32>,
    sequence: bool,
    inner_data: usize,
    trailer: usize,
    reverse: bool,
}

fn tunnel_frame() -> impl Strategy<Value = TunnelFrame> {
    (
        (any::<Index>(), any::<bool>()),
        0..3usize,
        any::<bool>(),
        proptest::option::of(any::<u32>()),
        any::<bool>(),
        0..100usize,
        0..24usize,
        any::<bool>(),
    )
        .prop_map(
            |((kind, v6), tags, checksum, key, sequence, inner_data, trailer, reverse)| {
                TunnelFrame {
                    kind,
                    v6,
                    tags,
                    checksum,
                    key,
                    sequence,
                    inner_data,
                    trailer,
                    reverse,
                }
            },
        )
}

impl TunnelFrame {
    /// The frame, the direction it arrives from, and the tunnel it belongs to.
    fn build(&self) -> (FrameBuilder, Direction, u32) {
        let kinds: [(u16, Vec<u8>); 6] = [
            (
                proto::IPV4,
                payload::ipv4_udp(IN_A, IN_B, 1, 2, &vec![0x5A; self.inner_data]),
            ),
            (
                proto::IPV6,
                payload::ipv6_udp(IN6_A, IN6_B, 1, 2, &vec![0x5A; self.inner_data]),
            ),
            (
                proto::TEB,
                payload::ethernet([2; 6], [4; 6], 0x0800, &udp4()),
            ),
            (proto::KEEPALIVE, Vec::new()),
            (0x1234, vec![0xC3; self.inner_data]),
            (
                proto::ERSPAN3,
                payload::erspan3(1, 2, None, &inner_ethernet()),
            ),
        ];
        let (protocol, inner) = kinds[self.kind.index(kinds.len())].clone();
        let mut gre = Gre::v0(protocol);
        if self.checksum {
            gre = gre.checksum();
        }
        if let Some(k) = self.key {
            gre = gre.key(k);
        }
        if self.sequence {
            gre = gre.sequence(1);
        }
        let (mut b, t) = if self.v6 {
            (gre6(gre, inner), 1)
        } else {
            (gre4(gre, inner), 0)
        };
        b = match self.tags {
            0 => b,
            1 => b.vlan(10),
            _ => b.qinq(10, 20),
        };
        b = b.trailer(vec![0; self.trailer]);
        if self.reverse {
            (reversed(b), Direction::FromInside, t)
        } else {
            (b, Direction::FromOutside, t)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic_and_decide_by_the_table(
        bytes in proptest::collection::vec(any::<u8>(), 0..2000),
        defaults in defaults_strategy(),
        dir in direction(),
    ) {
        let p = prop_policy(defaults, true);
        check(&p, dir, &bytes)?;
    }

    #[test]
    fn random_bytes_after_an_ethernet_header_decide_by_the_table(
        ethertype in prop_oneof![Just(0x0800u16), Just(0x86DD), Just(0x8100), Just(0x88A8)],
        rest in proptest::collection::vec(any::<u8>(), 0..300),
        defaults in defaults_strategy(),
        dir in direction(),
    ) {
        let p = prop_policy(defaults, true);
        let f = FrameBuilder::ethernet(ethertype, rest).build();
        check(&p, dir, &f)?;
    }

    #[test]
    fn random_gre_behind_valid_outer_headers_decides_by_the_table(
        (src, dst) in endpoints(),
        tags in 0..3usize,
        start in proptest::option::of(gre_start()),
        rest in proptest::collection::vec(any::<u8>(), 0..400),
        defaults in defaults_strategy(),
        reverse in any::<bool>(),
    ) {
        let p = prop_policy(defaults, true);
        let mut gre = start.map(|s| s.to_vec()).unwrap_or_default();
        gre.extend_from_slice(&rest);
        let (b, dir) = if reverse {
            (FrameBuilder::ip(dst, src), Direction::FromInside)
        } else {
            (FrameBuilder::ip(src, dst), Direction::FromOutside)
        };
        let b = match tags {
            0 => b,
            1 => b.vlan(1),
            _ => b.qinq(1, 2),
        };
        let f = b.raw(47, gre).build();
        let d = check(&p, dir, &f)?;
        // Valid outer headers: never an outer-stage reason.
        prop_assert!(!matches!(d.reason, Reason::NonGre | Reason::BadIp), "{:?}", d);
    }

    #[test]
    fn mutated_frames_of_every_kind_never_panic_and_decide_by_the_table(
        kind in any::<Index>(),
        mutations in proptest::collection::vec(mutation(), 1..5),
        defaults in defaults_strategy(),
        dir in direction(),
    ) {
        let corpus = corpus();
        let (_, b) = &corpus[kind.index(corpus.len())];
        let mut f = b.build();
        for m in &mutations {
            apply(&mut f, m);
        }
        let p = prop_policy(defaults, true);
        check(&p, dir, &f)?;
    }

    #[test]
    fn truncating_a_tunnel_frame_before_its_ip_end_is_truncated(frame in tunnel_frame()) {
        let p = prop_policy(Defaults::default(), false);
        let (b, dir, t) = frame.build();
        let (f, layout) = b.build_with_layout();
        let full = classify(&p, dir, &f);
        prop_assert_eq!(full, decision(Verdict::Forward, Reason::Tunnel, Some(t)));
        for cut in 0..f.len() {
            let d = classify(&p, dir, &f[..cut]);
            if cut < layout.end {
                prop_assert_eq!(
                    d,
                    decision(Verdict::Drop, Reason::Truncated, None),
                    "cut at {} of {}", cut, f.len()
                );
            } else {
                // Only Ethernet padding was cut.
                prop_assert_eq!(d, full, "cut at {} of {}", cut, f.len());
            }
        }
    }

    #[test]
    fn truncating_any_corpus_tunnel_frame_never_yields_tunnel(
        kind in any::<Index>(),
        cut in any::<Index>(),
        trailer in 0..20usize,
    ) {
        let p = prop_policy(Defaults::default(), false);
        let corpus = tunnel_corpus();
        let (name, b, _) = &corpus[kind.index(corpus.len())];
        let (f, layout) = b.clone().trailer(vec![0; trailer]).build_with_layout();
        let cut = cut.index(f.len());
        let d = outside(&p, &f[..cut]);
        if cut < layout.end {
            prop_assert_ne!(d.reason, Reason::Tunnel, "{} cut at {}", name, cut);
            prop_assert_eq!(d.verdict, Verdict::Drop);
        } else {
            prop_assert_eq!(d.reason, Reason::Tunnel);
        }
    }

    #[test]
    fn a_batch_decides_as_frames_one_by_one(
        picks in proptest::collection::vec(
            (any::<Index>(), proptest::option::of(mutation())),
            0..64,
        ),
        batch_sizes in proptest::collection::vec(1..16usize, 1..8),
        defaults in defaults_strategy(),
        dir in direction(),
        step_ns in 0..5_000_000u64,
    ) {
        let p = prop_policy(defaults, true);
        let corpus = corpus();
        let frames: Vec<Vec<u8>> = picks
            .iter()
            .map(|(i, m)| {
                let mut f = corpus[i.index(corpus.len())].1.build();
                if let Some(m) = m {
                    apply(&mut f, m);
                }
                f
            })
            .collect();
        let mut batched = Classifier::new(&p, 0);
        let mut single = Classifier::new(&p, 0);
        let mut now = 0;
        let mut at = 0;
        for &n in batch_sizes.iter().cycle() {
            if at >= frames.len() {
                break;
            }
            let chunk = &frames[at..(at + n).min(frames.len())];
            let mut out = vec![Decision::default(); chunk.len()];
            batched.classify_batch(&p, now, dir, chunk, &mut out);
            for (f, d) in chunk.iter().zip(&out) {
                prop_assert_eq!(*d, single.classify(&p, now, dir, f));
            }
            at += chunk.len();
            now += step_ns;
        }
    }
}

#[test]
fn a_batch_looks_only_at_frames_it_has_room_for() {
    let p = prop_policy(Defaults::default(), true);
    let rated = corpus()
        .into_iter()
        .find(|(n, _)| *n == "rated")
        .unwrap()
        .1
        .build();
    let frames = vec![rated.clone(); 5];
    let mut c = Classifier::new(&p, 0);
    let mut out = vec![Decision::default(); 2];
    c.classify_batch(&p, 0, Direction::FromOutside, &frames, &mut out);
    assert!(out.iter().all(|d| d.reason == Reason::Tunnel));
    // The policer (burst 2) saw two frames, not five.
    let mut more = vec![Decision::default(); 1];
    c.classify_batch(&p, 0, Direction::FromOutside, &frames, &mut more);
    expect(more[0], Verdict::Drop, Reason::RateLimited, Some(4));
    // An empty batch is fine.
    c.classify_batch::<Vec<u8>>(&p, 0, Direction::FromOutside, &[], &mut []);
}

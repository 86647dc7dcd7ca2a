//! Frame and policy generators shared by the validator's property tests and the differential
//! tests of the kernel program and the nftables ruleset against the validator: a corpus of
//! valid frames of every kind, mutations, random GRE behind valid outer headers, random tunnel
//! frames, the frames of the reason tests, and random `[defaults]`.

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use frames::{payload, FrameBuilder, Gre, Ipv6Ext, Vlan};
use proptest::prelude::*;
use proptest::sample::Index;
use validator::wire::gre::proto;
use validator::{Action, Defaults, Direction, KeyRule, Policy, Reason, TunnelSpec, Verdict};

pub fn tagged(b: FrameBuilder, tags: usize) -> FrameBuilder {
    match tags {
        0 => b,
        1 => b.vlan(42),
        _ => b.qinq(100, 42),
    }
}

// ----- tunnel -----

pub fn non_gre_frames() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "arp",
            FrameBuilder::arp_request(LOCAL, PEER).pad_to(60).build(),
        ),
        (
            "icmp",
            FrameBuilder::ipv4(PEER, LOCAL)
                .echo_request(1, 1, [0; 8])
                .build(),
        ),
        (
            "tcp",
            FrameBuilder::ipv4(PEER, LOCAL)
                .tcp(1234, 443, 0x02, [])
                .build(),
        ),
        (
            "udp ike",
            FrameBuilder::ipv4(PEER, LOCAL)
                .udp(500, 500, [0; 28])
                .build(),
        ),
        (
            "esp",
            FrameBuilder::ipv4(PEER, LOCAL)
                .esp(0x1000, 1, [0; 32])
                .build(),
        ),
        (
            "icmpv6",
            FrameBuilder::ipv6(PEER6, LOCAL6)
                .echo_request(1, 1, [0; 8])
                .build(),
        ),
        (
            "ipv6 hop-by-hop then udp",
            FrameBuilder::ipv6(PEER6, LOCAL6)
                .ipv6_ext(Ipv6Ext::hop_by_hop())
                .udp(1, 2, [0; 4])
                .build(),
        ),
        (
            "ipv6 later fragment of udp",
            FrameBuilder::ipv6(PEER6, LOCAL6)
                .ipv6_ext(Ipv6Ext::fragment(100, false))
                .udp(1, 2, [0; 4])
                .build(),
        ),
        ("lldp", FrameBuilder::ethernet(0x88CC, [0u8; 46]).build()),
        ("third vlan tag", good_with_tags(&[0x88A8, 0x8100, 0x8100])),
        (
            "tagged udp",
            FrameBuilder::ipv4(PEER, LOCAL)
                .qinq(1, 2)
                .udp(1, 2, [])
                .build(),
        ),
    ]
}

pub fn good_with_tags(tpids: &[u16]) -> Vec<u8> {
    let mut b = gre4(Gre::v0(proto::IPV4), udp4());
    for &tpid in tpids {
        b = b.vlan_tag(Vlan { tpid, tci: 5 });
    }
    b.build()
}

pub fn fragments() -> Vec<(&'static str, FrameBuilder, u32)> {
    vec![
        (
            "ipv4 first fragment",
            gre4(Gre::v0(proto::IPV4), udp4()).ipv4_fragment(true, 0),
            T_V4,
        ),
        (
            "ipv4 middle fragment",
            gre4(Gre::v0(proto::IPV4), udp4()).ipv4_fragment(true, 100),
            T_V4,
        ),
        (
            "ipv4 last fragment",
            FrameBuilder::ipv4(PEER, LOCAL)
                .raw(47, [0xAB; 100])
                .ipv4_fragment(false, 185),
            T_V4,
        ),
        (
            "ipv6 first fragment",
            gre6(Gre::v0(proto::IPV4), udp4()).ipv6_ext(Ipv6Ext::fragment(0, true)),
            T_V6,
        ),
        (
            "ipv6 atomic fragment",
            gre6(Gre::v0(proto::IPV4), udp4()).ipv6_ext(Ipv6Ext::fragment(0, false)),
            T_V6,
        ),
        (
            "ipv6 later fragment",
            FrameBuilder::ipv6(PEER6, LOCAL6)
                .ipv6_ext(Ipv6Ext::destination_options())
                .ipv6_ext(Ipv6Ext::fragment(181, false))
                .raw(47, [0xAB; 100]),
            T_V6,
        ),
    ]
}

/// Tunnels for every kind of frame the corpus holds: 0 PEER–LOCAL (every version-0 class), 1 the
/// same for IPv6, 2 PPTP, 3 a keyed tunnel on a prefix, 4 a tunnel with a tight policer when
/// `rated`.
pub fn prop_policy(defaults: Defaults, rated: bool) -> Policy {
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
                sequence: validator::FlagRule::Require,
                ..tunnel("keyed", "192.0.2.0/24", "198.51.100.0/24")
            },
            TunnelSpec {
                rate: rated.then_some(rate(1000, 2)),
                checksum: validator::FlagRule::Forbid,
                ..tunnel("rated", "100.64.0.1", &LOCAL.to_string())
            },
        ],
    )
}

pub fn defaults_strategy() -> impl Strategy<Value = Defaults> {
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

pub fn direction() -> impl Strategy<Value = Direction> {
    prop_oneof![Just(Direction::FromOutside), Just(Direction::FromInside)]
}

/// Valid frames of every kind: each GRE class, PPTP, fragments, options and extension headers,
/// tags, and the non-GRE background.
pub fn corpus() -> Vec<(&'static str, FrameBuilder)> {
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
pub fn tunnel_corpus() -> Vec<(&'static str, FrameBuilder, u32)> {
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

#[derive(Clone, Debug)]
pub enum Mutation {
    Flip(Index, u8),
    Truncate(Index),
    Insert(Index, u8),
    Remove(Index),
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => any::<Index>().prop_map(Mutation::Remove),
    ]
}

pub fn apply(frame: &mut Vec<u8>, m: &Mutation) {
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

/// A GRE header start (flags/version word and protocol) that reaches the later stages often.
pub fn gre_start() -> impl Strategy<Value = [u8; 4]> {
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

pub fn endpoints() -> impl Strategy<Value = (IpAddr, IpAddr)> {
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
pub struct TunnelFrame {
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

pub fn tunnel_frame() -> impl Strategy<Value = TunnelFrame> {
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
    pub fn build(&self) -> (FrameBuilder, Direction, u32) {
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

/// The peer and local ends of the tunnel the fail-closed frames belong to (with `nested =
/// false` and protocols ipv4, ipv6, teb, mpls, erspan2, erspan3).
pub const FAIL_CLOSED_PEER: &str = "198.51.100.7";
pub const FAIL_CLOSED_LOCAL: &str = "203.0.113.1";

/// Frames that once passed `nested = false` or the inner checks, from FAIL_CLOSED_PEER to
/// FAIL_CLOSED_LOCAL, and the reason each must get: an inner IPv6 chain too long to walk or
/// running past its payload, GRE in a bridged frame or behind a label stack, a label stack that
/// never ends, an ERSPAN III Ethernet frame shorter than an Ethernet header.
pub fn fail_closed_frames() -> Vec<(&'static str, Vec<u8>, Reason)> {
    let peer: Ipv4Addr = FAIL_CLOSED_PEER.parse().unwrap();
    let local: Ipv4Addr = FAIL_CLOSED_LOCAL.parse().unwrap();
    let gre = |protocol: Gre, payload: Vec<u8>| {
        FrameBuilder::ipv4(peer, local)
            .gre(protocol, payload)
            .build()
    };
    // Inner IPv6 with five destination-options headers, the last leading to GRE: one more
    // than the walk follows (from the outer IPv4 header on).
    let hex = concat!(
        "4500008c00010000402f1406c6336407cb007101000086dd60000000004c0040",
        "20010db800000000000000000000000120010db8000000000000000000000002",
        "3c000104000000003c000104000000003c000104000000003c00010400000000",
        "2f00010400000000000008004500002000070000401166c40a0000010a000002",
        "f230ee48000c469361626364",
    );
    let ip: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let long_chain = FrameBuilder::ethernet(0x0800, ip).build();
    // A hop-by-hop header claiming 88 bytes in a 16-byte payload.
    let mut hbh = vec![17u8, 10, 0, 0, 0, 0, 0, 0];
    hbh.extend_from_slice(&[0; 8]);
    let past_payload = payload::ipv6(IN6_A, IN6_B, 0, &hbh);
    let inner_gre = gre4(Gre::v0(proto::IPV4), udp4()).build_ip();
    let inner_gre6 = gre6(Gre::v0(proto::IPV4), udp4()).build_ip();
    let mut tagged = payload::ethernet([2; 6], [4; 6], 0x8100, &[]);
    tagged.extend_from_slice(&[0, 5, 0x08, 0x00]);
    tagged.extend_from_slice(&inner_gre);
    vec![
        ("inner IPv6 chain of five", long_chain, Reason::BadInner),
        (
            "inner IPv6 extension header past the payload",
            gre(Gre::v0(proto::IPV6), past_payload),
            Reason::BadInner,
        ),
        (
            "IPv4/GRE in a bridged frame",
            gre(
                Gre::v0(proto::TEB),
                payload::ethernet([2; 6], [4; 6], 0x0800, &inner_gre),
            ),
            Reason::NestedGre,
        ),
        (
            "IPv4/GRE in a VLAN-tagged bridged frame",
            gre(Gre::v0(proto::TEB), tagged),
            Reason::NestedGre,
        ),
        (
            "IPv4/GRE behind a label stack",
            gre(
                Gre::v0(proto::MPLS_UNICAST),
                payload::mpls(100, 64, &inner_gre),
            ),
            Reason::NestedGre,
        ),
        (
            "IPv6/GRE behind a label stack",
            gre(
                Gre::v0(proto::MPLS_UNICAST),
                payload::mpls(100, 64, &inner_gre6),
            ),
            Reason::NestedGre,
        ),
        (
            "a label stack without its bottom",
            gre(Gre::v0(proto::MPLS_UNICAST), vec![0x00, 0x06, 0x40, 0x40]),
            Reason::BadInner,
        ),
        (
            "a label stack ending the frame",
            gre(Gre::v0(proto::MPLS_UNICAST), payload::mpls(100, 64, &[])),
            Reason::BadInner,
        ),
        (
            "ERSPAN III with 13 bytes of Ethernet frame",
            gre(
                Gre::v0(proto::ERSPAN3).sequence(1),
                payload::erspan3(1, 2, None, &[0u8; 13]),
            ),
            Reason::BadInner,
        ),
    ]
}

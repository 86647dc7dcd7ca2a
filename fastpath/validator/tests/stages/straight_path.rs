//! The straight path against the stages: `Classifier::classify` takes the common frames on a
//! path of its own (`straight.rs`) and must decide every frame exactly as the stages alone
//! (`Classifier::classify_staged`, the reference) do — verdict, reason and tunnel — under
//! random policies (keys, rules, several tunnels on a pair, prefix tunnels, policers) and
//! random defaults, for valid, mutated, truncated and random frames from both ports.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::common::generators::*;
use crate::common::*;
use frames::{payload, FrameBuilder, Gre};
use proptest::prelude::*;
use proptest::sample::Index;
use validator::wire::gre::proto;
use validator::{
    Classifier, Decision, Defaults, Direction, FlagRule, IpPrefix, KeyRule, Policy, ProtoClass,
    ProtocolSet, TunnelSpec,
};

/// The addresses random policies and frames are made of, so that frames hit their tunnels.
const PEERS: [Ipv4Addr; 4] = [
    PEER,
    STRANGER,
    Ipv4Addr::new(100, 64, 0, 1),
    Ipv4Addr::new(203, 0, 113, 200),
];
const LOCALS: [Ipv4Addr; 2] = [LOCAL, Ipv4Addr::new(198, 51, 100, 20)];
const KEYS: [u32; 3] = [1, 77, 0x0102_0304];

/// Classifies `frames` in order with the straight path and with the stages alone (each with
/// policers of its own, started alike) and asserts the same decision for each.
fn agree(p: &Policy, dir: Direction, frames: &[Vec<u8>]) -> Result<(), TestCaseError> {
    let mut straight = Classifier::new(p, 0);
    let mut staged = Classifier::new(p, 0);
    for (i, f) in frames.iter().enumerate() {
        let now = i as u64 * 100_000;
        let a: Decision = straight.classify(p, now, dir, f);
        let b = staged.classify_staged(p, now, dir, f);
        prop_assert_eq!(a, b, "frame {} of {}: {:02x?}", i, frames.len(), f);
    }
    Ok(())
}

fn flag_rule() -> impl Strategy<Value = FlagRule> {
    prop_oneof![
        4 => Just(FlagRule::Allow),
        1 => Just(FlagRule::Require),
        1 => Just(FlagRule::Forbid),
    ]
}

fn key_rule() -> impl Strategy<Value = KeyRule> {
    prop_oneof![
        Just(KeyRule::Any),
        Just(KeyRule::Absent),
        (0..KEYS.len()).prop_map(|i| KeyRule::Equal(KEYS[i])),
    ]
}

fn protocol_set() -> impl Strategy<Value = ProtocolSet> {
    (
        proptest::collection::vec(0..ProtoClass::NAMED.len(), 0..5),
        any::<bool>(),
    )
        .prop_map(|(classes, number)| {
            let mut set = ProtocolSet::new();
            for c in classes {
                set.allow_class(ProtoClass::NAMED[c].0);
            }
            if number {
                set.allow_number(0x1234);
            }
            set
        })
}

/// One random tunnel on the address pool: mostly host pairs, some prefixes, some IPv6.
fn spec() -> impl Strategy<Value = TunnelSpec> {
    let ends = prop_oneof![
        6 => (0..PEERS.len(), 0..LOCALS.len()).prop_map(|(p, l)| {
            (IpPrefix::host(PEERS[p].into()), IpPrefix::host(LOCALS[l].into()))
        }),
        1 => (0..LOCALS.len()).prop_map(|l| {
            (pfx("203.0.113.0/24"), IpPrefix::host(LOCALS[l].into()))
        }),
        1 => Just((pfx("100.64.0.0/10"), pfx("198.51.100.0/24"))),
        1 => Just((IpPrefix::host(PEER6.into()), IpPrefix::host(LOCAL6.into()))),
    ];
    (
        ends,
        key_rule(),
        prop_oneof![5 => Just(0u8), 1 => Just(1u8)],
        protocol_set(),
        any::<bool>(),
        flag_rule(),
        flag_rule(),
        prop_oneof![3 => Just(None), 1 => (1..4u64).prop_map(|b| Some(rate(1000, b)))],
    )
        .prop_map(
            |((peer, local), key, version, protocols, nested, checksum, sequence, rate)| {
                TunnelSpec {
                    name: String::new(),
                    peer,
                    local,
                    key,
                    version,
                    protocols,
                    nested,
                    checksum,
                    sequence,
                    rate,
                }
            },
        )
}

/// A random policy: the tunnels that can be built of a random list (the rest clash), under
/// random defaults.
fn random_policy() -> impl Strategy<Value = Policy> {
    (
        proptest::collection::vec(spec(), 0..10),
        defaults_strategy(),
    )
        .prop_map(|(specs, defaults): (Vec<TunnelSpec>, Defaults)| {
            let mut p = Policy::new(defaults);
            for (i, mut s) in specs.into_iter().enumerate() {
                s.name = format!("t{i}");
                let _clash = p.add_tunnel(s);
            }
            p
        })
}

/// A GRE payload of `class`-ish bytes: a real inner packet, or one bent at its first bytes,
/// or bytes of any kind and length (short ones too).
fn gre_payload() -> impl Strategy<Value = (u16, Vec<u8>)> {
    let inner4 = |src: Ipv4Addr, data: usize| {
        payload::ipv4_udp(src, Ipv4Addr::new(10, 2, 0, 1), 1, 2, &vec![0x5A; data])
    };
    prop_oneof![
        (0..64usize).prop_map(move |n| (proto::IPV4, inner4(IN_A, n))),
        (0..64usize).prop_map(|n| (
            proto::IPV6,
            payload::ipv6_udp(IN6_A, IN6_B, 1, 2, &vec![0x5A; n])
        )),
        Just((proto::TEB, inner_ethernet())),
        Just((
            proto::TEB,
            payload::ethernet(
                [2; 6],
                [4; 6],
                0x86DD,
                &payload::ipv6_udp(IN6_A, IN6_B, 1, 2, &[1; 8])
            )
        )),
        Just((proto::KEEPALIVE, Vec::new())),
        Just((proto::IPV4, payload::keepalive_request(PEER, LOCAL))),
        Just((proto::IPV4, gre4(Gre::v0(proto::IPV4), udp4()).build_ip())),
        Just((proto::IPV4, inner4(Ipv4Addr::new(127, 0, 0, 1), 8))),
        Just((
            proto::IPV6,
            payload::ipv6_udp(Ipv6Addr::LOCALHOST, IN6_B, 1, 2, &[0; 8])
        )),
        (
            prop_oneof![
                Just(proto::IPV4),
                Just(proto::IPV6),
                Just(proto::TEB),
                Just(0x1234u16)
            ],
            proptest::collection::vec(any::<u8>(), 0..80),
        ),
        (
            prop_oneof![Just(proto::IPV4), Just(proto::IPV6)],
            proptest::collection::vec(any::<u8>(), 20..80),
            prop_oneof![Just(0x45u8), Just(0x46), Just(0x44), Just(0x60), Just(0x65)],
        )
            .prop_map(|(p, mut bytes, first)| {
                bytes[0] = first;
                (p, bytes)
            }),
    ]
}

/// A GRE header on the pool's addresses: flags of every kind (keys from the pool), any
/// payload.
fn gre_frame() -> impl Strategy<Value = (Vec<u8>, Direction)> {
    (
        (0..PEERS.len() + 1, 0..LOCALS.len()),
        (
            any::<bool>(),
            proptest::option::of(0..KEYS.len() + 1),
            any::<bool>(),
        ),
        gre_payload(),
        prop_oneof![8 => Just(0u16), 1 => any::<u16>().prop_map(|f| f & 0x4FFF)],
        (any::<bool>(), 0..20usize),
    )
        .prop_map(
            |((p, l), (checksum, key, sequence), (protocol, inner), extra, (reverse, trailer))| {
                let peer = PEERS
                    .get(p)
                    .copied()
                    .unwrap_or(Ipv4Addr::new(203, 0, 113, 9));
                let local = LOCALS[l];
                let mut gre = Gre::v0(protocol);
                if checksum {
                    gre = gre.checksum();
                }
                if let Some(k) = key {
                    gre = gre.key(KEYS.get(k).copied().unwrap_or(999));
                }
                if sequence {
                    gre = gre.sequence(7);
                }
                if extra != 0 {
                    gre = gre.set_flags(extra);
                }
                let (src, dst, dir) = if reverse {
                    (local, peer, Direction::FromInside)
                } else {
                    (peer, local, Direction::FromOutside)
                };
                let f = FrameBuilder::ipv4(src, dst)
                    .gre(gre, inner)
                    .trailer(vec![0; trailer])
                    .build();
                (f, dir)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn gre_frames_on_random_policies_decide_alike(
        p in random_policy(),
        frames in proptest::collection::vec(gre_frame(), 1..24),
    ) {
        for dir in Direction::BOTH {
            let these: Vec<Vec<u8>> = frames
                .iter()
                .filter(|(_, d)| *d == dir)
                .map(|(f, _)| f.clone())
                .collect();
            agree(&p, dir, &these)?;
        }
    }

    #[test]
    fn mutated_and_cut_frames_decide_alike(
        p in random_policy(),
        picks in proptest::collection::vec(
            (any::<Index>(), proptest::collection::vec(mutation(), 0..3), any::<Index>()),
            1..16,
        ),
        dir in direction(),
    ) {
        let corpus = corpus();
        let frames: Vec<Vec<u8>> = picks
            .iter()
            .map(|(i, ms, cut)| {
                let mut f = corpus[i.index(corpus.len())].1.build();
                for m in ms {
                    apply(&mut f, m);
                }
                let keep = cut.index(f.len() + 1).max(f.len().saturating_sub(12));
                f.truncate(keep);
                f
            })
            .collect();
        agree(&p, dir, &frames)?;
    }

    #[test]
    fn tunnel_frames_decide_alike(
        p in random_policy(),
        frames in proptest::collection::vec(tunnel_frame(), 1..16),
    ) {
        for want in Direction::BOTH {
            let these: Vec<Vec<u8>> = frames
                .iter()
                .map(TunnelFrame::build)
                .filter(|(_, d, _)| *d == want)
                .map(|(b, _, _)| b.build())
                .collect();
            agree(&p, want, &these)?;
        }
    }

    #[test]
    fn random_bytes_behind_an_ipv4_gre_header_decide_alike(
        p in random_policy(),
        header in proptest::collection::vec(any::<u8>(), 20),
        rest in proptest::collection::vec(any::<u8>(), 0..120),
        dir in direction(),
    ) {
        // Ethernet, then a 20-byte header that claims IPv4 and GRE, random otherwise.
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&header);
        f[14] = 0x45;
        f[23] = 47;
        f.extend_from_slice(&rest);
        agree(&p, dir, &[f])?;
    }
}

#[test]
fn the_corpus_decides_alike_under_the_property_policy() {
    for defaults in [
        Defaults::default(),
        Defaults {
            drop_bogons: false,
            drop_reserved_bits: false,
            ..Defaults::default()
        },
    ] {
        let p = prop_policy(defaults, true);
        let frames: Vec<Vec<u8>> = corpus().iter().map(|(_, b)| b.build()).collect();
        for dir in Direction::BOTH {
            agree(&p, dir, &frames).unwrap();
        }
    }
}

#[test]
fn host_pairs_of_every_address_decide_alike() {
    // Addresses whose bytes are all alike or end in zeros: the host table's key is the pair's
    // bytes as the wire carries them.
    let addrs = [
        Ipv4Addr::new(0, 0, 0, 1),
        Ipv4Addr::new(1, 0, 0, 0),
        Ipv4Addr::new(255, 255, 255, 254),
        Ipv4Addr::new(10, 0, 0, 10),
    ];
    let mut p = Policy::new(Defaults {
        drop_bogons: false,
        ..Defaults::default()
    });
    let mut frames = Vec::new();
    for (i, a) in addrs.iter().enumerate() {
        for (j, b) in addrs.iter().enumerate() {
            let t = TunnelSpec {
                name: format!("t{i}{j}"),
                key: KeyRule::Equal(u32::from(*a) ^ u32::from(*b)),
                ..tunnel("x", &a.to_string(), &b.to_string())
            };
            p.add_tunnel(t).unwrap();
            for key in [u32::from(*a) ^ u32::from(*b), 5] {
                frames.push(
                    FrameBuilder::ip(IpAddr::V4(*a), IpAddr::V4(*b))
                        .gre(Gre::v0(proto::IPV4).key(key), udp4())
                        .build(),
                );
            }
        }
    }
    for dir in Direction::BOTH {
        agree(&p, dir, &frames).unwrap();
    }
    // And every one of them is found from outside.
    let mut c = Classifier::new(&p, 0);
    let found = frames
        .iter()
        .filter(|f| {
            c.classify(&p, 0, Direction::FromOutside, f).reason == validator::Reason::Tunnel
        })
        .count();
    assert_eq!(found, addrs.len() * addrs.len());
}

#[test]
fn a_short_header_with_reserved_bits_the_policy_ignores_is_truncated() {
    // Found by the properties above: C, S and a reserved bit in a 4-byte GRE packet. With
    // `reserved_bits = "ignore"` the reserved bit decides nothing; the optional fields C and S
    // announce run past the packet: truncated.
    let p = Policy::new(Defaults {
        drop_reserved_bits: false,
        ..Defaults::default()
    });
    let mut f = FrameBuilder::ipv4(PEER, LOCAL)
        .raw(47, vec![0x91, 0x00, 0x00, 0x00])
        .build();
    f.resize(60, 0);
    for dir in Direction::BOTH {
        agree(&p, dir, std::slice::from_ref(&f)).unwrap();
    }
    let d = Classifier::new(&p, 0).classify(&p, 0, Direction::FromOutside, &f);
    assert_eq!(d.reason, validator::Reason::Truncated);
}

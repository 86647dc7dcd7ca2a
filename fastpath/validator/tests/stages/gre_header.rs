//! The GRE header stage: RFC 2784 flag bits (MUST discard / SHOULD ignore) and PPTP enhanced GRE
//! (RFC 2637 §4.1), through the public classifier.

// Test payloads are a few dozen bytes: their lengths fit u16.
#![allow(clippy::cast_possible_truncation)]

use crate::common::*;
use frames::{payload, FrameBuilder, Gre};
use validator::wire::gre::{flags, proto};
use validator::{Action, Direction, KeyRule, Reason, TunnelSpec, Verdict};

// ----- version 0: bad_flags -----

#[test]
fn drops_version_0_with_routing_strict_or_recursion_bit_5() {
    let p = standard_policy();
    // RFC 2784 §2.3: bits 1–5 MUST be zero except K and S (RFC 2890): R 0x4000, s 0x0800, 0x0400.
    for bit in [flags::R, flags::STRICT, 0x0400] {
        for (dir, b) in [
            (
                Direction::FromOutside,
                gre4(Gre::v0(proto::IPV4).set_flags(bit), udp4()),
            ),
            (
                Direction::FromOutside,
                gre6(Gre::v0(proto::IPV4).set_flags(bit).key(1), udp4()).vlan(7),
            ),
            (
                Direction::FromInside,
                reversed(gre4(Gre::v0(proto::IPV4).set_flags(bit).checksum(), udp4())).qinq(1, 2),
            ),
        ] {
            assert_eq!(
                classify(&p, dir, &b.build()),
                decision(Verdict::Drop, Reason::BadFlags, None),
                "bit {bit:#06x}"
            );
        }
    }
}

#[test]
fn drops_version_0_must_discard_bits_even_with_reserved_bits_ignored() {
    let p = standard_policy_with(defaults(|d| d.drop_reserved_bits = false));
    let f = gre4(Gre::v0(proto::IPV4).set_flags(flags::R), udp4()).build();
    expect_drop(outside(&p, &f), Reason::BadFlags);
}

// ----- version 0: reserved_bits -----

#[test]
fn drops_version_0_with_any_reserved_bit_by_default() {
    let p = standard_policy();
    for i in 3..10 {
        let bit = 1u16 << i; // 0x0008 ..= 0x0200
        assert_ne!(bit & flags::V0_RESERVED, 0);
        let f = gre4(Gre::v0(proto::IPV4).set_flags(bit), udp4()).build();
        assert_eq!(
            outside(&p, &f),
            decision(Verdict::Drop, Reason::ReservedBits, None),
            "bit {bit:#06x}"
        );
        let f = gre6(Gre::v0(proto::IPV6).set_flags(bit).sequence(1), udp6())
            .qinq(3, 4)
            .build();
        expect_drop(outside(&p, &f), Reason::ReservedBits);
    }
    // All of them at once.
    let f = gre4(Gre::v0(proto::IPV4).set_flags(0x03F8), udp4()).build();
    expect_drop(outside(&p, &f), Reason::ReservedBits);
}

#[test]
fn accepts_version_0_reserved_bits_when_defaults_say_ignore() {
    let p = standard_policy_with(defaults(|d| d.drop_reserved_bits = false));
    for bits in [0x0008, 0x0080, 0x0200, 0x03F8] {
        let f = gre4(Gre::v0(proto::IPV4).set_flags(bits), udp4()).build();
        expect_tunnel(outside(&p, &f), T_V4);
        // The checksum covers the word with the bits set.
        let f = gre4(Gre::v0(proto::IPV4).set_flags(bits).checksum(), udp4()).build();
        expect_tunnel(outside(&p, &f), T_V4);
        let back = reversed(gre6(Gre::v0(proto::IPV4).set_flags(bits), udp4())).build();
        expect_tunnel(classify(&p, Direction::FromInside, &back), T_V6);
    }
}

#[test]
fn reserved_bits_are_judged_by_their_own_setting_not_invalid_gre() {
    // The README's Verdicts and reasons: reserved_bits is "per defaults.reserved_bits"; a
    // rate-limited invalid_gre budget does not let them through.
    let p = standard_policy_with(defaults(|d| {
        d.invalid_gre = Action::RateLimit;
        d.rate_limit = rate(1000, 100);
    }));
    let f = gre4(Gre::v0(proto::IPV4).set_flags(0x0010), udp4()).build();
    let mut c = validator::Classifier::new(&p, 0);
    expect(
        c.classify(&p, 0, Direction::FromOutside, &f),
        Verdict::Drop,
        Reason::ReservedBits,
        None,
    );
}

// ----- version 1 (PPTP) -----

#[test]
fn forwards_pptp_with_and_without_sequence_and_ack() {
    let p = standard_policy();
    for (seq, ack) in [
        (None, None),
        (Some(5), None),
        (None, Some(4)),
        (Some(5), Some(4)),
    ] {
        let mut g = Gre::pptp(0x1234);
        if let Some(s) = seq {
            g = g.sequence(s);
        }
        if let Some(a) = ack {
            g = g.ack(a);
        }
        for tags in [0, 1, 2] {
            let mut b = pptp(g.clone(), ppp_ipv4());
            b = match tags {
                0 => b,
                1 => b.vlan(10),
                _ => b.qinq(10, 20),
            };
            assert_eq!(
                outside(&p, &b.build()),
                decision(Verdict::Forward, Reason::Tunnel, Some(T_PPTP)),
                "seq {seq:?} ack {ack:?} tags {tags}"
            );
            assert_eq!(
                classify(&p, Direction::FromInside, &reversed(b).build()),
                decision(Verdict::Forward, Reason::Tunnel, Some(T_PPTP)),
            );
        }
    }
}

#[test]
fn forwards_pptp_ack_only_with_payload_length_0() {
    let p = standard_policy();
    let f = pptp(Gre::pptp(7).ack(99), []).build();
    expect_tunnel(outside(&p, &f), T_PPTP);
    let f = pptp(Gre::pptp(7).sequence(1).ack(99), [])
        .pad_to(60)
        .build();
    expect_tunnel(outside(&p, &f), T_PPTP);
}

#[test]
fn drops_pptp_with_payload_length_0_and_no_ack_as_bad_inner() {
    // Not a PPP frame and not an acknowledgment.
    let p = standard_policy();
    let f = pptp(Gre::pptp(7).sequence(1), []).build();
    expect_drop(outside(&p, &f), Reason::BadInner);
}

#[test]
fn drops_pptp_whose_payload_length_runs_past_the_frame() {
    let p = standard_policy();
    let ppp = ppp_ipv4();
    for g in [Gre::pptp(7), Gre::pptp(7).sequence(1), Gre::pptp(7).ack(2)] {
        let f = pptp(g.clone().payload_len(ppp.len() as u16 + 1), ppp.clone()).build();
        expect_drop(outside(&p, &f), Reason::Truncated);
        // An ack-only header announcing bytes it does not carry.
        let f = pptp(g.payload_len(1), []).build();
        expect_drop(outside(&p, &f), Reason::Truncated);
    }
}

#[test]
fn pptp_payload_length_bounds_the_ppp_frame() {
    // A shorter payload length than the bytes carried: the PPP frame is that long, the rest is
    // ignored (and a 4-byte PPP frame with protocol 0x0021 is valid).
    let p = standard_policy();
    let f = pptp(Gre::pptp(7).payload_len(4), ppp_ipv4()).build();
    expect_tunnel(outside(&p, &f), T_PPTP);
    // Cut to a one-byte PPP frame with an even first byte: no valid protocol.
    let f = pptp(
        Gre::pptp(7).payload_len(1),
        payload::ppp(0x0021, &[], false),
    )
    .build();
    expect_drop(outside(&p, &f), Reason::BadInner);
}

#[test]
fn drops_pptp_headers_cut_short() {
    let p = standard_policy();
    let full = pptp(Gre::pptp(7).sequence(1).ack(2), []).build();
    let gre_at = 14 + 20;
    for len in 0..16 {
        let f = FrameBuilder::ipv4(PPTP_PEER, LOCAL)
            .raw(47, full[gre_at..gre_at + len].to_vec())
            .build();
        expect_drop(outside(&p, &f), Reason::Truncated);
    }
}

#[test]
fn drops_version_1_with_forbidden_bits() {
    let p = standard_policy();
    let forbidden = [
        ("C", flags::C),
        ("R", flags::R),
        ("s", flags::STRICT),
        ("recursion 0x0100", 0x0100),
        ("recursion 0x0200", 0x0200),
        ("recursion 0x0400", 0x0400),
        ("flags 0x0008", 0x0008),
        ("flags 0x0040", 0x0040),
        ("flags 0x0078", 0x0078),
    ];
    for (name, bit) in forbidden {
        let f = pptp(Gre::pptp(7).set_flags(bit), ppp_ipv4()).build();
        assert_eq!(
            outside(&p, &f),
            decision(Verdict::Drop, Reason::BadFlags, None),
            "{name}"
        );
    }
}

#[test]
fn drops_version_1_without_key_bit() {
    let p = standard_policy();
    let f = pptp(Gre::pptp(7).clear_flags(flags::K), ppp_ipv4()).build();
    expect_drop(outside(&p, &f), Reason::BadFlags);
    let f = pptp(Gre::pptp(7).clear_flags(flags::K).ack(1), [])
        .vlan(1)
        .build();
    expect_drop(outside(&p, &f), Reason::BadFlags);
}

#[test]
fn drops_version_1_with_a_protocol_other_than_ppp() {
    let p = standard_policy();
    for protocol in [proto::IPV4, proto::KEEPALIVE, 0x880A, 0x880C] {
        let f = pptp(Gre::pptp(7).protocol(protocol), ppp_ipv4()).build();
        assert_eq!(
            outside(&p, &f),
            decision(Verdict::Drop, Reason::BadFlags, None),
            "{protocol:#06x}"
        );
    }
}

#[test]
fn pptp_call_id_is_the_key() {
    let p = policy(
        Default::default(),
        vec![
            TunnelSpec {
                key: KeyRule::Equal(0x1234),
                ..pptp_tunnel("a", &PPTP_PEER.to_string(), &LOCAL.to_string())
            },
            TunnelSpec {
                key: KeyRule::Equal(0x4321),
                ..pptp_tunnel("b", &PPTP_PEER.to_string(), &LOCAL.to_string())
            },
        ],
    );
    expect_tunnel(outside(&p, &pptp(Gre::pptp(0x1234), ppp_ipv4()).build()), 0);
    expect_tunnel(outside(&p, &pptp(Gre::pptp(0x4321), ppp_ipv4()).build()), 1);
    // The payload length (the key's high half) does not take part.
    expect_tunnel(outside(&p, &pptp(Gre::pptp(0x4321).ack(1), []).build()), 1);
    expect(
        outside(&p, &pptp(Gre::pptp(0x1235), ppp_ipv4()).build()),
        Verdict::Drop,
        Reason::KeyMismatch,
        Some(0),
    );
}

#[test]
fn pptp_ppp_frames_with_and_without_address_and_control() {
    let p = standard_policy();
    for ppp in [
        payload::ppp(0xC021, &[1, 1, 0, 4], true),       // LCP
        payload::ppp(0x0021, &udp4(), false),            // IPv4, ACFC
        payload::ppp(0x8021, &[1, 1, 0, 4], true),       // IPCP
        [&[0x21][..], &udp4()[..]].concat(),             // IPv4, ACFC + PFC
        [&[0xFF, 0x03, 0x57][..], &udp6()[..]].concat(), // IPv6, PFC
    ] {
        expect_tunnel(
            outside(&p, &pptp(Gre::pptp(1), ppp.clone()).build()),
            T_PPTP,
        );
    }
    for ppp in [
        payload::ppp(0x0020, &udp4(), true), // even low byte
        payload::ppp(0xC020, &[], false),    // even low byte
        vec![0xFF, 0x03],                    // nothing after address and control
        vec![0x00],                          // one even byte
    ] {
        expect_drop(
            outside(&p, &pptp(Gre::pptp(1), ppp.clone()).build()),
            Reason::BadInner,
        );
    }
}

//! The GRE checksum (RFC 2784 §2.5) against an independent computation: frames whose checksum is
//! filled in here, word by word as RFC 1071 §3 describes, must pass; changing any single byte the
//! checksum covers must make them fail.

// Test frames are small (their lengths fit u32), payload bytes are cut from counters on
// purpose, and the reference's folded sum fits 16 bits.
#![allow(clippy::cast_possible_truncation)]

use crate::common::*;
use frames::{payload, Checksum, FrameBuilder, Gre, Layout};
use proptest::prelude::*;
use validator::wire::gre::proto;
use validator::{Direction, Policy, Reason, TunnelSpec, Verdict};

/// RFC 1071 §3, written out: add the data as 16-bit big-endian words (an odd last byte padded
/// with a zero byte) with end-around carry, and complement. Not `validator::checksum`.
fn rfc1071_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut i = 0;
    while i < data.len() {
        let hi = data[i];
        let lo = if i + 1 < data.len() { data[i + 1] } else { 0 };
        sum += (u32::from(hi) << 8) + u32::from(lo);
        if sum > 0xFFFF {
            sum = (sum & 0xFFFF) + 1;
        }
        i += 2;
    }
    !(sum as u16)
}

/// A tunnel PEER–LOCAL (and PEER6–LOCAL6) allowing IPv4, IPv6 and the uninspected type 0x1234.
fn checksum_policy() -> Policy {
    let allow = protocols(&["ipv4", "ipv6", "0x1234"]);
    policy(
        Default::default(),
        vec![
            TunnelSpec {
                protocols: allow.clone(),
                ..tunnel("v4", &PEER.to_string(), &LOCAL.to_string())
            },
            TunnelSpec {
                protocols: allow,
                ..tunnel("v6", &PEER6.to_string(), &LOCAL6.to_string())
            },
        ],
    )
}

/// Builds `b` (whose GRE header has the C bit) with a zero checksum field, then writes the
/// independently computed checksum. Also checks that the builder's own checksum agrees.
fn with_independent_checksum(b: FrameBuilder) -> (Vec<u8>, Layout) {
    let mut zeroed = b.clone();
    if let frames::Upper::Gre { header, .. } = &mut zeroed.upper {
        assert!(header.checksum.is_some(), "the frame must carry a checksum");
        header.checksum = Some(Checksum::Value(0));
    } else {
        panic!("not GRE");
    }
    let (mut f, l) = zeroed.build_with_layout();
    let c = rfc1071_checksum(&f[l.upper..l.end]);
    f[l.upper + 4..l.upper + 6].copy_from_slice(&c.to_be_bytes());
    assert_eq!(f, b.build(), "the builder's checksum agrees with RFC 1071");
    (f, l)
}

fn payload_of_len(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Frames of many shapes, each with the C bit set.
fn shapes() -> Vec<(FrameBuilder, u32)> {
    let mut v = Vec::new();
    for len in 0..70 {
        let data = payload_of_len(len, 7);
        v.push((gre4(Gre::v0(0x1234).checksum(), data.clone()), 0));
        v.push((
            gre6(
                Gre::v0(0x1234).checksum().key(len as u32).sequence(3),
                data.clone(),
            )
            .vlan(5),
            1,
        ));
        // Inner IPv4 of every length, odd and even.
        let inner = payload::ipv4_udp(IN_A, IN_B, 1, 2, &data);
        v.push((
            gre4(Gre::v0(proto::IPV4).checksum().reserved1(0xFFFF), inner),
            0,
        ));
    }
    v.push((
        gre4(Gre::v0(proto::IPV6).checksum().key(0xFFFF_FFFF), udp6()).qinq(1, 2),
        0,
    ));
    v.push((gre4(Gre::v0(0x1234).checksum(), vec![0xFF; 33]), 0));
    v.push((gre4(Gre::v0(0x1234).checksum(), vec![0x00; 32]), 0));
    v
}

#[test]
fn independently_checksummed_gre_is_forwarded() {
    let p = checksum_policy();
    for (b, t) in shapes() {
        let (f, _) = with_independent_checksum(b.clone());
        expect_tunnel(outside(&p, &f), t);
        let (back, _) = with_independent_checksum(reversed(b));
        expect_tunnel(classify(&p, Direction::FromInside, &back), t);
    }
}

#[test]
fn changing_any_covered_byte_fails_the_checksum() {
    let p = checksum_policy();
    for (b, _) in shapes() {
        let (f, l) = with_independent_checksum(b);
        // Everything after the flags/protocol word: checksum, reserved1, key, sequence, payload.
        for at in l.upper + 4..l.end {
            for mask in [0x01, 0x80, 0xFF] {
                let mut g = f.clone();
                g[at] ^= mask;
                assert_eq!(
                    outside(&p, &g),
                    decision(Verdict::Drop, Reason::BadChecksum, None),
                    "byte {} of {} xor {mask:#04x}",
                    at - l.upper,
                    l.end - l.upper
                );
            }
        }
    }
}

#[test]
fn ethernet_padding_is_outside_the_checksum() {
    let p = checksum_policy();
    let (mut f, l) = with_independent_checksum(gre4(Gre::v0(0x1234).checksum(), [1, 2, 3]));
    f.extend_from_slice(&[0xAA; 20]);
    expect_tunnel(outside(&p, &f), 0);
    f[l.end] ^= 0xFF;
    expect_tunnel(outside(&p, &f), 0);
}

#[test]
fn the_reference_matches_rfc_1071_example() {
    // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
    assert_eq!(
        rfc1071_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
        !0xddf2
    );
}

proptest! {
    #[test]
    fn random_payloads_checksummed_here_pass_and_any_flip_fails(
        data in proptest::collection::vec(any::<u8>(), 0..600),
        key in proptest::option::of(any::<u32>()),
        seq in proptest::option::of(any::<u32>()),
        v6 in any::<bool>(),
        flip in any::<prop::sample::Index>(),
        mask in 1u8..=255,
    ) {
        let p = checksum_policy();
        let mut gre = Gre::v0(0x1234).checksum();
        if let Some(k) = key {
            gre = gre.key(k);
        }
        if let Some(s) = seq {
            gre = gre.sequence(s);
        }
        let (b, t) = if v6 { (gre6(gre, data), 1) } else { (gre4(gre, data), 0) };
        let (f, l) = with_independent_checksum(b);
        prop_assert_eq!(outside(&p, &f), decision(Verdict::Forward, Reason::Tunnel, Some(t)));
        let at = l.upper + 4 + flip.index(l.end - l.upper - 4);
        let mut g = f.clone();
        g[at] ^= mask;
        prop_assert_eq!(outside(&p, &g), decision(Verdict::Drop, Reason::BadChecksum, None));
    }
}

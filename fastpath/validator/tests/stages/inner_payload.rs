//! The inner-packet stage (the README's Verdicts and reasons `bad_inner`): for each protocol class
//! a payload that is what the protocol type says, and payloads that are not.

use crate::common::generators::{fail_closed_frames, FAIL_CLOSED_LOCAL, FAIL_CLOSED_PEER};
use crate::common::*;
use frames::{payload, FrameBuilder, Gre};
use validator::wire::gre::proto;
use validator::{Action, Classifier, Direction, Policy, Reason, TunnelSpec, Verdict};

/// One version-0 tunnel PEER–LOCAL allowing every class but ppp, and 0x1234; and one IPv6
/// tunnel likewise.
fn all_classes() -> Policy {
    policy(
        Default::default(),
        vec![
            TunnelSpec {
                protocols: protocols(ALL_V0_PROTOCOLS),
                ..tunnel("all", &PEER.to_string(), &LOCAL.to_string())
            },
            TunnelSpec {
                protocols: protocols(ALL_V0_PROTOCOLS),
                ..tunnel("all6", &PEER6.to_string(), &LOCAL6.to_string())
            },
        ],
    )
}

/// Checks `good` payloads forward and `bad` ones drop as bad_inner, over IPv4 and IPv6 outer,
/// from both ports.
#[track_caller]
fn check(header: Gre, good: &[Vec<u8>], bad: &[Vec<u8>]) {
    let p = all_classes();
    for (i, payload) in good.iter().enumerate() {
        for (b, t) in [
            (gre4(header.clone(), payload.clone()), 0),
            (gre6(header.clone(), payload.clone()).vlan(3), 1),
        ] {
            assert_eq!(
                outside(&p, &b.build()),
                decision(Verdict::Forward, Reason::Tunnel, Some(t)),
                "good payload #{i}"
            );
            assert_eq!(
                classify(&p, Direction::FromInside, &reversed(b).build()),
                decision(Verdict::Forward, Reason::Tunnel, Some(t)),
                "good payload #{i} from inside"
            );
        }
    }
    for (i, payload) in bad.iter().enumerate() {
        for b in [
            gre4(header.clone(), payload.clone()),
            gre6(header.clone(), payload.clone()).qinq(1, 2),
        ] {
            assert_eq!(
                outside(&p, &b.build()),
                decision(Verdict::Drop, Reason::BadInner, None),
                "bad payload #{i}"
            );
        }
    }
}

fn with_byte(mut v: Vec<u8>, at: usize, value: u8) -> Vec<u8> {
    v[at] = value;
    v
}

#[test]
fn ipv4_payload_must_be_an_ipv4_packet() {
    let udp = udp4();
    check(
        Gre::v0(proto::IPV4),
        &[
            udp.clone(),
            payload::ipv4(IN_A, IN_B, 6, &[0; 20]),
            // An inner header checksum is not the box's business.
            with_byte(udp.clone(), 10, !udp[10]),
            // Options inside.
            FrameBuilder::ipv4(IN_A, IN_B)
                .ipv4_options([1, 1, 1, 1])
                .udp(1, 2, [])
                .build_ip(),
            // Inner total length shorter than the payload (trailing bytes).
            [&udp[..], &[0; 7][..]].concat(),
        ],
        &[
            vec![],
            udp[..19].to_vec(),
            with_byte(udp.clone(), 0, 0x65), // version 6
            with_byte(udp.clone(), 0, 0x44), // IHL 4
            with_byte(udp.clone(), 0, 0x40), // IHL 0
            udp[..udp.len() - 1].to_vec(),   // total length beyond the payload
            FrameBuilder::ipv4(IN_A, IN_B)
                .ip_length(10)
                .udp(1, 2, [])
                .build_ip(), // total length below the header
            FrameBuilder::ipv4(IN_A, IN_B)
                .ipv4_ihl(15)
                .udp(1, 2, [])
                .build_ip(), // IHL beyond the total length
            udp6(),
        ],
    );
}

#[test]
fn ipv6_payload_must_be_an_ipv6_packet() {
    let udp = udp6();
    check(
        Gre::v0(proto::IPV6),
        &[
            udp.clone(),
            payload::ipv6(IN6_A, IN6_B, 59, &[]),
            [&udp[..], &[0; 3][..]].concat(),
        ],
        &[
            vec![],
            udp[..39].to_vec(),
            with_byte(udp.clone(), 0, 0x40),
            udp[..udp.len() - 1].to_vec(), // payload length beyond the payload
            udp4(),
        ],
    );
}

#[test]
fn teb_payload_must_hold_an_ethernet_header() {
    let eth = inner_ethernet();
    check(
        Gre::v0(proto::TEB),
        &[eth.clone(), eth[..14].to_vec()],
        &[vec![], eth[..13].to_vec()],
    );
}

/// RFC 3032 §2.1: a label stack ends with an entry whose S bit is set, and something follows
/// it; a stack that never ends inside the frame, or ends the frame, is no MPLS packet.
#[test]
fn mpls_payload_must_hold_a_label_stack_and_what_it_carries() {
    let m = payload::mpls(100, 64, &udp4());
    let mut two = 0x0006_4040u32.to_be_bytes().to_vec(); // label 100, S clear
    two.extend_from_slice(&m);
    let deepest = [[0x00u8, 0x06, 0x40, 0x40]; 15].concat();
    check(
        Gre::v0(proto::MPLS_UNICAST),
        &[
            m.clone(),
            m[..5].to_vec(),
            two.clone(),
            [&deepest[..], &m].concat(),
        ],
        &[
            vec![],
            m[..3].to_vec(),
            m[..4].to_vec(),              // bottom of stack, then nothing
            vec![0x00, 0x06, 0x40, 0x40], // S clear to the end of the frame
            two[..8].to_vec(),
            [&deepest[..], &two].concat(), // 17 entries: deeper than the walk goes
        ],
    );
    check(
        Gre::v0(proto::MPLS_MULTICAST),
        std::slice::from_ref(&m),
        &[m[..2].to_vec()],
    );
}

#[test]
fn erspan_type_1_payload_is_a_bare_ethernet_frame() {
    // Protocol 0x88BE without the S bit.
    let eth = inner_ethernet();
    check(
        Gre::v0(proto::ERSPAN2),
        &[eth.clone(), eth[..14].to_vec()],
        &[vec![], eth[..13].to_vec()],
    );
}

#[test]
fn erspan_type_2_payload_needs_a_version_1_header_and_a_frame() {
    // Protocol 0x88BE with the S bit.
    let eth = inner_ethernet();
    let e2 = payload::erspan2(5, 10, 1, &eth);
    check(
        Gre::v0(proto::ERSPAN2).sequence(1),
        &[e2.clone(), e2[..8 + 14].to_vec()],
        &[
            vec![],
            e2[..8].to_vec(),
            e2[..8 + 13].to_vec(),
            with_byte(e2.clone(), 0, 0x20), // version 2 in a type II packet
            with_byte(e2.clone(), 0, 0x00),
            eth.clone(), // a bare frame whose first nibble is not 1
        ],
    );
}

#[test]
fn erspan_type_3_payload_needs_a_version_2_header() {
    let eth = inner_ethernet();
    let e3 = payload::erspan3(5, 0xdead_beef, None, &eth);
    let e3o = payload::erspan3(5, 0xdead_beef, Some([7; 8]), &eth);
    check(
        Gre::v0(proto::ERSPAN3).sequence(9),
        &[
            e3.clone(),
            e3o.clone(),
            e3[..12 + 14].to_vec(),
            e3o[..20 + 14].to_vec(),
            with_byte(e3[..12].to_vec(), 10, 2 << 2), // frame type 2 (IP): no Ethernet header
        ],
        &[
            vec![],
            e3[..11].to_vec(),
            e3[..12].to_vec(),      // frame type 0 (Ethernet) without the frame
            e3[..12 + 13].to_vec(), // ... or with 13 bytes of it, as for type II
            e3o[..20].to_vec(),
            e3o[..19].to_vec(),             // O bit set, platform subheader cut
            with_byte(e3.clone(), 0, 0x10), // version 1
            payload::erspan2(5, 10, 1, &eth),
        ],
    );
}

#[test]
fn nhrp_payload_needs_a_version_1_fixed_header_within_its_size() {
    let n = payload::nhrp(1, &[0; 12]);
    check(
        Gre::v0(proto::NHRP),
        &[
            n.clone(),
            payload::nhrp(3, &[]),
            [&n[..], &[0; 4][..]].concat(), // packet size below the payload
        ],
        &[
            vec![],
            n[..19].to_vec(),
            with_byte(n.clone(), 16, 2),  // version 2
            with_byte(n.clone(), 11, 33), // packet size beyond the payload
            with_byte(n.clone(), 11, 19), // packet size below the fixed header
            n[..n.len() - 1].to_vec(),
        ],
    );
}

#[test]
fn wccp_payload_is_ipv4_with_or_without_the_v2_redirect_header() {
    let udp = udp4();
    check(
        Gre::v0(proto::WCCP),
        &[
            udp.clone(),
            payload::wccp_v2(0, 0, &udp),
            payload::wccp_v2(0, 90, &udp),
            payload::wccp_v2(payload::WCCP_D, 90, &udp),
            payload::wccp_v2(payload::WCCP_D | payload::WCCP_A, 90, &udp),
            // With A set and D clear the redirect header starts with nibble 4, like an IPv4
            // packet: it is still WCCPv2.
            payload::wccp_v2(payload::WCCP_A, 90, &udp),
        ],
        &[
            vec![],
            payload::wccp_v2(0, 0, &[]),
            payload::wccp_v2(0, 0, &udp[..udp.len() - 1]),
            payload::wccp_v2(0, 0, &udp6()),
            payload::wccp_v2(payload::WCCP_A, 0, &udp[..udp.len() - 1]),
            udp[..19].to_vec(),
            [0u8; 30].to_vec(),
        ],
    );
}

#[test]
fn keepalive_protocol_0_payload_is_not_inspected() {
    // A bare GRE header with protocol 0 is a keepalive reply; whatever follows it is not
    // looked at (there is no bad keepalive payload).
    check(
        Gre::v0(proto::KEEPALIVE),
        &[vec![], vec![0xFF; 3], udp4(), vec![0x45; 100]],
        &[],
    );
}

#[test]
fn numeric_protocol_payload_is_not_inspected() {
    check(Gre::v0(0x1234), &[vec![], vec![0; 1], vec![0xAB; 64]], &[]);
    let p = all_classes();
    expect(
        outside(&p, &gre4(Gre::v0(0x1235), vec![0xAB; 64]).build()),
        Verdict::Drop,
        Reason::ProtocolDenied,
        Some(0),
    );
}

#[test]
fn keepalive_request_over_an_ipv4_tunnel_that_allows_only_keepalive() {
    // The request's outer protocol is IPv4, but "keepalive" alone lets it through.
    let p = policy(
        Default::default(),
        vec![TunnelSpec {
            protocols: protocols(&["keepalive"]),
            ..tunnel("ka", &PEER.to_string(), &LOCAL.to_string())
        }],
    );
    let f = gre4(
        Gre::v0(proto::IPV4),
        payload::keepalive_request(PEER, LOCAL),
    )
    .build();
    expect_tunnel(outside(&p, &f), 0);
    expect(
        outside(&p, &good4()),
        Verdict::Drop,
        Reason::ProtocolDenied,
        Some(0),
    );
}

#[test]
fn bad_inner_is_invalid_gre_for_the_defaults() {
    let p = standard_policy_with(defaults(|d| {
        d.invalid_gre = Action::RateLimit;
        d.rate_limit = rate(1, 2);
    }));
    let f = gre4(Gre::v0(proto::IPV4), vec![0x45; 10]).build();
    let mut c = Classifier::new(&p, 0);
    for _ in 0..2 {
        expect(
            c.classify(&p, 0, Direction::FromOutside, &f),
            Verdict::Forward,
            Reason::BadInner,
            None,
        );
    }
    expect(
        c.classify(&p, 0, Direction::FromOutside, &f),
        Verdict::Drop,
        Reason::RateLimited,
        None,
    );
}

#[test]
fn backscatter_style_payloads_are_bad_inner() {
    // The 2017 wave: well-formed GRE headers around random bytes.
    let p = standard_policy();
    let mut seed = 0x1234_5678u32;
    let mut refused = 0;
    for _ in 0..200 {
        let bytes: Vec<u8> = (0..40)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 24) as u8
            })
            .collect();
        let src = std::net::Ipv4Addr::from((seed & 0x3FFF_FFFF) | 0x0100_0000);
        let f = FrameBuilder::ipv4(src, LOCAL)
            .gre(Gre::v0(proto::IPV4), bytes.clone())
            .build();
        let d = outside(&p, &f);
        assert_eq!(d.verdict, Verdict::Drop);
        if d.reason == Reason::BadInner {
            refused += 1;
        } else {
            // Only a payload that happens to look like IPv4 gets further.
            assert_eq!(bytes[0] >> 4, 4, "{d:?}");
        }
    }
    assert!(refused >= 180, "{refused}");
}

// ----- nesting one carrier deep, and inner chains that cannot be walked -----

/// The tunnel of the fail-closed frames: 198.51.100.0/24 to 203.0.113.1, the default
/// `nested = false`, protocols ipv4, ipv6, teb, mpls, erspan2, erspan3.
fn nested_policy() -> Policy {
    policy(
        Default::default(),
        vec![TunnelSpec {
            protocols: protocols(&["ipv4", "ipv6", "teb", "mpls", "erspan2", "erspan3"]),
            ..tunnel("t", FAIL_CLOSED_PEER, FAIL_CLOSED_LOCAL)
        }],
    )
}

/// Frames that once passed `nested = false` or the inner checks: an inner IPv6 chain too long
/// to walk or running past its payload, GRE in a bridged frame or behind a label stack, a label
/// stack that never ends, an ERSPAN III Ethernet frame shorter than an Ethernet header.
#[test]
fn frames_that_once_passed_fail_closed() {
    let p = nested_policy();
    for (name, frame, reason) in fail_closed_frames() {
        let d = outside(&p, &frame);
        assert_eq!((d.verdict, d.reason), (Verdict::Drop, reason), "{name}");
    }
}

#[test]
fn the_same_carriers_without_gre_pass() {
    let p = nested_policy();
    let send = |protocol: u16, payload: Vec<u8>| {
        let f = FrameBuilder::ipv4(
            FAIL_CLOSED_PEER.parse().unwrap(),
            FAIL_CLOSED_LOCAL.parse().unwrap(),
        )
        .gre(Gre::v0(protocol), payload)
        .build();
        outside(&p, &f)
    };
    let bridged = payload::ethernet([2; 6], [4; 6], 0x0800, &udp4());
    expect_tunnel(send(proto::TEB, bridged), 0);
    expect_tunnel(send(proto::MPLS_UNICAST, payload::mpls(1, 1, &udp4())), 0);
}

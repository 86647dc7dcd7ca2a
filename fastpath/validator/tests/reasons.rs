//! One or more tests per reason of the README's Verdicts and reasons, through the public
//! classifier, with frames from `frames`: both directions, IPv4 and IPv6 outer, untagged,
//! 802.1Q and QinQ.

mod common;

use common::generators::{fragments, non_gre_frames, tagged};
use common::*;
use frames::{payload, Checksum, FrameBuilder, Gre, Ipv6Ext, Vlan};
use validator::wire::gre::{flags, proto};
use validator::{Classifier, Direction, Reason, TunnelSpec, Verdict};

/// The three tagging variants every address test runs under.
#[test]
fn forwards_matching_tunnel_traffic_in_both_directions_families_and_taggings() {
    let p = standard_policy();
    for tags in 0..3 {
        let v4 = tagged(gre4(Gre::v0(proto::IPV4), udp4()), tags);
        let v6 = tagged(gre6(Gre::v0(proto::IPV6), udp6()), tags);
        for (b, t) in [(v4, T_V4), (v6, T_V6)] {
            // Outside: source is the peer. Inside: source is the local end.
            expect_tunnel(classify(&p, Direction::FromOutside, &b.build()), t);
            let back = reversed(b.clone()).build();
            expect_tunnel(classify(&p, Direction::FromInside, &back), t);
            // The wrong orientation for the port matches nothing.
            expect_drop(
                classify(&p, Direction::FromInside, &b.build()),
                Reason::UnknownTunnel,
            );
            expect_drop(
                classify(&p, Direction::FromOutside, &back),
                Reason::UnknownTunnel,
            );
        }
    }
}

#[test]
fn forwards_ipv6_in_ipv4_and_ipv4_in_ipv6() {
    let p = standard_policy();
    expect_tunnel(
        outside(&p, &gre4(Gre::v0(proto::IPV6), udp6()).build()),
        T_V4,
    );
    expect_tunnel(
        outside(&p, &gre6(Gre::v0(proto::IPV4), udp4()).build()),
        T_V6,
    );
}

#[test]
fn forwards_gre_with_every_optional_field_and_ethernet_padding() {
    let p = standard_policy();
    let f = gre4(Gre::v0(proto::IPV4).checksum().key(7).sequence(1), udp4())
        .trailer([0xEE; 9])
        .build();
    expect_tunnel(outside(&p, &f), T_V4);
    let small = gre4(Gre::v0(proto::KEEPALIVE), []).pad_to(60).build();
    let p2 = policy(
        Default::default(),
        vec![TunnelSpec {
            protocols: protocols(&["keepalive"]),
            ..tunnel("ka", &PEER.to_string(), &LOCAL.to_string())
        }],
    );
    expect_tunnel(outside(&p2, &small), 0);
}

#[test]
fn forwards_outer_ipv4_with_options_and_ipv6_with_extension_headers() {
    let p = standard_policy();
    let f = gre4(Gre::v0(proto::IPV4), udp4())
        .ipv4_options([0x94, 0x04, 0x00, 0x00])
        .build();
    expect_tunnel(outside(&p, &f), T_V4);
    let f = gre6(Gre::v0(proto::IPV4), udp4())
        .ipv6_ext(Ipv6Ext::hop_by_hop())
        .ipv6_ext(Ipv6Ext::destination_options())
        .ipv6_ext(Ipv6Ext::routing())
        .ipv6_ext(Ipv6Ext::DestinationOptions(vec![0x1e, 0x04, 1, 2, 3, 4]))
        .build();
    expect_tunnel(outside(&p, &f), T_V6);
}

#[test]
fn accepts_legacy_9100_vlan_tag() {
    let p = standard_policy();
    let f = gre4(Gre::v0(proto::IPV4), udp4())
        .vlan_tag(Vlan {
            tpid: 0x9100,
            tci: 7,
        })
        .build();
    expect_tunnel(outside(&p, &f), T_V4);
}

// ----- non_gre -----

#[test]
fn forwards_non_gre_by_default_from_both_ports() {
    let p = standard_policy();
    for (name, f) in non_gre_frames() {
        for dir in [Direction::FromOutside, Direction::FromInside] {
            assert_eq!(
                classify(&p, dir, &f),
                decision(Verdict::Forward, Reason::NonGre, None),
                "{name}"
            );
        }
    }
}

#[test]
fn drops_non_gre_when_defaults_say_drop() {
    let p = standard_policy_with(defaults(|d| d.non_gre = Verdict::Drop));
    for (name, f) in non_gre_frames() {
        assert_eq!(
            outside(&p, &f),
            decision(Verdict::Drop, Reason::NonGre, None),
            "{name}"
        );
    }
}

// ----- truncated -----

#[test]
fn drops_frames_shorter_than_their_ethernet_and_vlan_headers() {
    let p = standard_policy();
    let f = gre4(Gre::v0(proto::IPV4), udp4()).qinq(1, 2).build();
    for cut in [0, 1, 13, 14, 17, 18, 21] {
        expect_drop(outside(&p, &f[..cut]), Reason::Truncated);
    }
}

#[test]
fn drops_ip_headers_cut_short() {
    let p = standard_policy();
    let v4 = good4();
    expect_drop(outside(&p, &v4[..14 + 19]), Reason::Truncated);
    let v6 = gre6(Gre::v0(proto::IPV4), udp4()).build();
    expect_drop(outside(&p, &v6[..14 + 39]), Reason::Truncated);
    // IPv4 options announced by the IHL but cut off.
    let opts = gre4(Gre::v0(proto::IPV4), udp4())
        .ipv4_options([1; 8])
        .build();
    expect_drop(outside(&p, &opts[..14 + 24]), Reason::Truncated);
}

#[test]
fn drops_ipv4_total_length_beyond_the_frame() {
    let p = standard_policy();
    let f = good4();
    let too_long = (f.len() - 14 + 1) as u16;
    let b = gre4(Gre::v0(proto::IPV4), udp4()).ip_length(too_long);
    expect_drop(outside(&p, &b.build()), Reason::Truncated);
    // The same frame with a tag and from the inside.
    let back = reversed(b.vlan(3)).build();
    expect_drop(
        classify(&p, Direction::FromInside, &back),
        Reason::Truncated,
    );
}

#[test]
fn drops_ipv6_payload_length_beyond_the_frame() {
    let p = standard_policy();
    let f = gre6(Gre::v0(proto::IPV4), udp4()).build();
    let b = gre6(Gre::v0(proto::IPV4), udp4()).ip_length((f.len() - 54 + 1) as u16);
    expect_drop(outside(&p, &b.build()), Reason::Truncated);
}

#[test]
fn drops_ipv6_extension_header_running_past_the_payload() {
    let p = standard_policy();
    // A routing header claiming 16 bytes in an 8-byte payload.
    let mut f = FrameBuilder::ipv6(PEER6, LOCAL6)
        .ipv6_ext(Ipv6Ext::routing())
        .ip_protocol(47)
        .build();
    f[14 + 40 + 1] = 1;
    expect_drop(outside(&p, &f), Reason::Truncated);
}

#[test]
fn drops_gre_shorter_than_its_base_header() {
    let p = standard_policy();
    for len in 0..4 {
        let f = FrameBuilder::ipv4(PEER, LOCAL)
            .raw(47, vec![0; len])
            .build();
        expect_drop(outside(&p, &f), Reason::Truncated);
        let f = FrameBuilder::ipv6(PEER6, LOCAL6)
            .raw(47, vec![0; len])
            .build();
        expect_drop(outside(&p, &f), Reason::Truncated);
    }
}

#[test]
fn drops_gre_whose_optional_fields_are_cut_off() {
    let p = standard_policy();
    // C, K and S announced, the fields after the base header missing or partial.
    for (bits, len) in [
        (flags::C, 4),
        (flags::K, 7),
        (flags::S, 4),
        (flags::C | flags::K | flags::S, 15),
    ] {
        let mut gre = bits.to_be_bytes().to_vec();
        gre.extend_from_slice(&proto::IPV4.to_be_bytes());
        gre.resize(len, 0);
        let f = FrameBuilder::ipv4(PEER, LOCAL).raw(47, gre).build();
        expect_drop(outside(&p, &f), Reason::Truncated);
    }
    // A key bit set with no key field: the inner packet's first bytes would be read as the key,
    // and what is left is too short.
    let f = gre4(Gre::v0(proto::IPV4).set_flags(flags::K), [0u8; 3]).build();
    expect_drop(outside(&p, &f), Reason::Truncated);
}

// ----- bad_ip -----

#[test]
fn drops_ipv4_headers_invalid_in_themselves() {
    let p = standard_policy();
    let cases = [
        (
            "version 5",
            gre4(Gre::v0(proto::IPV4), udp4()).ip_version(5),
        ),
        (
            "version 6 in an IPv4 frame",
            gre4(Gre::v0(proto::IPV4), udp4()).ip_version(6),
        ),
        ("ihl 4", gre4(Gre::v0(proto::IPV4), udp4()).ipv4_ihl(4)),
        ("ihl 0", gre4(Gre::v0(proto::IPV4), udp4()).ipv4_ihl(0)),
        (
            "total length 19",
            gre4(Gre::v0(proto::IPV4), udp4()).ip_length(19),
        ),
        (
            "total length below the options",
            gre4(Gre::v0(proto::IPV4), udp4())
                .ipv4_options([1; 4])
                .ip_length(22),
        ),
        (
            "wrong header checksum",
            gre4(Gre::v0(proto::IPV4), udp4()).ip_checksum(Checksum::Wrong),
        ),
        (
            "wrong header checksum with options",
            gre4(Gre::v0(proto::IPV4), udp4())
                .ipv4_options([1; 4])
                .ip_checksum(Checksum::Wrong),
        ),
    ];
    for (name, b) in cases {
        for tags in 0..3 {
            assert_eq!(
                outside(&p, &tagged(b.clone(), tags).build()),
                decision(Verdict::Drop, Reason::BadIp, None),
                "{name}, {tags} tags"
            );
        }
    }
}

#[test]
fn drops_ipv6_with_wrong_version_or_too_long_extension_chain() {
    let p = standard_policy();
    let f = gre6(Gre::v0(proto::IPV4), udp4()).ip_version(4).build();
    expect_drop(outside(&p, &f), Reason::BadIp);
    let mut long = gre6(Gre::v0(proto::IPV4), udp4());
    for _ in 0..5 {
        long = long.ipv6_ext(Ipv6Ext::destination_options());
    }
    expect_drop(outside(&p, &long.build()), Reason::BadIp);
    // Four extension headers are still walked.
    let mut four = gre6(Gre::v0(proto::IPV4), udp4());
    for _ in 0..4 {
        four = four.ipv6_ext(Ipv6Ext::destination_options());
    }
    expect_tunnel(outside(&p, &four.build()), T_V6);
}

// ----- bogon -----

#[test]
fn drops_gre_from_bogon_outer_sources() {
    let p = standard_policy();
    for src in [
        "0.0.0.0",
        "0.1.2.3",
        "127.0.0.1",
        "224.0.0.5",
        "239.1.1.1",
        "240.0.0.1",
        "255.255.255.255",
    ] {
        let f = FrameBuilder::ipv4(src.parse().unwrap(), LOCAL)
            .gre(Gre::v0(proto::IPV4), udp4())
            .build();
        assert_eq!(
            outside(&p, &f),
            decision(Verdict::Drop, Reason::Bogon, None),
            "{src}"
        );
    }
    for src in ["::", "::1", "ff02::1", "ff0e::5"] {
        let f = FrameBuilder::ipv6(src.parse().unwrap(), LOCAL6)
            .gre(Gre::v0(proto::IPV4), udp4())
            .build();
        assert_eq!(
            outside(&p, &f),
            decision(Verdict::Drop, Reason::Bogon, None),
            "{src}"
        );
    }
}

#[test]
fn bogon_check_comes_before_the_gre_header_and_tunnel_match() {
    let p = standard_policy();
    let f = FrameBuilder::ipv4("127.0.0.1".parse().unwrap(), LOCAL)
        .gre(Gre::v0(proto::IPV4).version(5), [])
        .build();
    expect_drop(outside(&p, &f), Reason::Bogon);
    // A bogon inside port source: same verdict.
    let f = FrameBuilder::ipv4("0.0.0.1".parse().unwrap(), PEER)
        .gre(Gre::v0(proto::IPV4), udp4())
        .build();
    expect_drop(classify(&p, Direction::FromInside, &f), Reason::Bogon);
}

#[test]
fn drops_gre_with_bogon_inner_sources() {
    let p = standard_policy();
    let inner4 = payload::ipv4_udp("127.0.0.1".parse().unwrap(), IN_B, 1, 2, b"x");
    expect_drop(
        outside(&p, &gre4(Gre::v0(proto::IPV4), inner4).build()),
        Reason::Bogon,
    );
    let inner4 = payload::ipv4_udp("224.0.0.9".parse().unwrap(), IN_B, 1, 2, b"x");
    expect_drop(
        outside(&p, &gre6(Gre::v0(proto::IPV4), inner4).build()),
        Reason::Bogon,
    );
    let inner6 = payload::ipv6_udp("::1".parse().unwrap(), IN6_B, 1, 2, b"x");
    expect_drop(
        outside(&p, &gre4(Gre::v0(proto::IPV6), inner6).build()),
        Reason::Bogon,
    );
}

#[test]
fn bogon_destinations_are_not_bogons() {
    let p = standard_policy();
    let f = FrameBuilder::ipv4(PEER, "224.0.0.1".parse().unwrap())
        .gre(Gre::v0(proto::IPV4), udp4())
        .build();
    expect_drop(outside(&p, &f), Reason::UnknownTunnel);
    let inner = payload::ipv4_udp(IN_A, "255.255.255.255".parse().unwrap(), 1, 2, b"x");
    expect_tunnel(
        outside(&p, &gre4(Gre::v0(proto::IPV4), inner).build()),
        T_V4,
    );
}

#[test]
fn ignores_bogons_when_defaults_say_ignore() {
    let p = policy(
        defaults(|d| d.drop_bogons = false),
        vec![tunnel("loopback", "127.0.0.0/8", &LOCAL.to_string())],
    );
    let f = FrameBuilder::ipv4("127.0.0.1".parse().unwrap(), LOCAL)
        .gre(
            Gre::v0(proto::IPV4),
            payload::ipv4_udp("0.0.0.0".parse().unwrap(), IN_B, 68, 67, b"x"),
        )
        .build();
    expect_tunnel(outside(&p, &f), 0);
    let f = FrameBuilder::ipv4("224.1.1.1".parse().unwrap(), LOCAL)
        .gre(Gre::v0(proto::IPV4), udp4())
        .build();
    expect_drop(outside(&p, &f), Reason::UnknownTunnel);
}

// ----- fragment -----

#[test]
fn drops_gre_fragments_when_fragments_say_drop() {
    let p = standard_policy_with(defaults(|d| d.fragments_to_tunnel = false));
    for (name, b, _) in fragments() {
        for tags in 0..3 {
            assert_eq!(
                outside(&p, &tagged(b.clone(), tags).build()),
                decision(Verdict::Drop, Reason::Fragment, None),
                "{name}"
            );
        }
    }
}

#[test]
fn forwards_fragments_of_known_tunnels_by_default() {
    let p = standard_policy();
    for (name, b, t) in fragments() {
        assert_eq!(
            outside(&p, &b.build()),
            decision(Verdict::Forward, Reason::Fragment, Some(t)),
            "{name}"
        );
        assert_eq!(
            classify(&p, Direction::FromInside, &reversed(b.clone()).build()),
            decision(Verdict::Forward, Reason::Fragment, Some(t)),
            "{name} from inside"
        );
        // Outer addresses of no tunnel: dropped.
        let mut stranger = b.clone();
        match &mut stranger.network {
            frames::Network::Ipv4(ip) => ip.src = STRANGER,
            frames::Network::Ipv6(ip) => ip.src = STRANGER6,
            _ => unreachable!(),
        }
        assert_eq!(
            outside(&p, &stranger.build()),
            decision(Verdict::Drop, Reason::Fragment, None),
            "{name} from a stranger"
        );
    }
}

#[test]
fn a_fragment_matches_a_keyed_tunnel_whatever_its_key() {
    let p = policy(
        defaults(|d| d.fragments_to_tunnel = true),
        vec![
            TunnelSpec {
                key: validator::KeyRule::Equal(5),
                ..tunnel("k5", &PEER.to_string(), &LOCAL.to_string())
            },
            TunnelSpec {
                key: validator::KeyRule::Equal(6),
                ..tunnel("k6", &PEER.to_string(), &LOCAL.to_string())
            },
        ],
    );
    // A first fragment holds its key.
    let f = gre4(Gre::v0(proto::IPV4).key(6), udp4())
        .ipv4_fragment(true, 0)
        .build();
    expect(outside(&p, &f), Verdict::Forward, Reason::Fragment, Some(1));
    let f = gre4(Gre::v0(proto::IPV4).key(7), udp4())
        .ipv4_fragment(true, 0)
        .build();
    expect(outside(&p, &f), Verdict::Drop, Reason::KeyMismatch, Some(0));
    // Later fragments carry no key, so the first tunnel of the pair stands for all; so does a
    // first fragment that ends before its key field.
    let f = FrameBuilder::ipv4(PEER, LOCAL)
        .raw(47, [0xAB; 64])
        .ipv4_fragment(false, 100)
        .build();
    expect(outside(&p, &f), Verdict::Forward, Reason::Fragment, Some(0));
    let f = FrameBuilder::ipv4(PEER, LOCAL)
        .raw(47, [0x20, 0, 8, 0, 0, 0])
        .ipv4_fragment(true, 0)
        .build();
    expect(outside(&p, &f), Verdict::Forward, Reason::Fragment, Some(0));
}

/// A first fragment is held to the header checks its bytes allow: the version and flag bits
/// (RFC 2784 §2.3, RFC 2637 §4.1), whatever `fragments` says.
#[test]
fn a_first_fragment_is_held_to_the_gre_header_checks() {
    for tunnel_fragments in [true, false] {
        let p = standard_policy_with(defaults(|d| d.fragments_to_tunnel = tunnel_fragments));
        let first = |gre: Gre| gre4(gre, udp4()).ipv4_fragment(true, 0).build();
        expect_drop(
            outside(&p, &first(Gre::v0(proto::IPV4).version(6))),
            Reason::BadVersion,
        );
        expect_drop(
            outside(&p, &first(Gre::v0(proto::IPV4).set_flags(0x4000))),
            Reason::BadFlags,
        );
        expect_drop(
            outside(&p, &first(Gre::v0(proto::IPV4).set_flags(0x0100))),
            Reason::ReservedBits,
        );
        let v6 = gre6(Gre::v0(proto::IPV4).version(6), [])
            .ipv6_ext(Ipv6Ext::fragment(0, true))
            .build();
        expect_drop(outside(&p, &v6), Reason::BadVersion);
        // A later fragment has no header to check.
        let later = FrameBuilder::ipv4(PEER, LOCAL)
            .raw(47, [0xFF; 64])
            .ipv4_fragment(false, 100)
            .build();
        let d = outside(&p, &later);
        assert_eq!(d.reason, Reason::Fragment);
        assert_eq!(d.verdict == Verdict::Forward, tunnel_fragments);
    }
}

#[test]
fn fragments_sent_to_a_tunnel_are_policed_by_it() {
    let mut spec = tunnel("v4", &PEER.to_string(), &LOCAL.to_string());
    spec.rate = Some(rate(1, 2));
    let p = policy(defaults(|d| d.fragments_to_tunnel = true), vec![spec]);
    let f = gre4(Gre::v0(proto::IPV4), udp4())
        .ipv4_fragment(true, 0)
        .build();
    let mut c = Classifier::new(&p, 0);
    for _ in 0..2 {
        expect(
            c.classify(&p, 0, Direction::FromOutside, &f),
            Verdict::Forward,
            Reason::Fragment,
            Some(0),
        );
    }
    expect(
        c.classify(&p, 0, Direction::FromOutside, &f),
        Verdict::Drop,
        Reason::RateLimited,
        Some(0),
    );
}

// ----- bad_version -----

#[test]
fn drops_gre_versions_other_than_0_and_1() {
    let p = standard_policy();
    for v in 2..8 {
        for b in [
            gre4(Gre::v0(proto::IPV4).version(v), udp4()),
            gre6(Gre::v0(proto::IPV4).version(v), udp4()).qinq(1, 2),
            pptp(Gre::pptp(1).version(v), ppp_ipv4()),
        ] {
            assert_eq!(
                outside(&p, &b.build()),
                decision(Verdict::Drop, Reason::BadVersion, None),
                "version {v}"
            );
        }
    }
}

// ----- bad_checksum -----

#[test]
fn drops_gre_with_a_wrong_checksum() {
    let p = standard_policy();
    let wrong = Gre::v0(proto::IPV4).checksum_with(Checksum::Wrong);
    for b in [
        gre4(wrong.clone(), udp4()),
        gre4(wrong.clone().key(1).sequence(2), udp4()).vlan(9),
        gre6(wrong.clone(), udp6()),
        reversed(gre4(wrong.clone(), udp4())),
    ] {
        for dir in [Direction::FromOutside, Direction::FromInside] {
            expect_drop(classify(&p, dir, &b.build()), Reason::BadChecksum);
        }
    }
    expect_tunnel(
        outside(&p, &gre4(Gre::v0(proto::IPV4).checksum(), udp4()).build()),
        T_V4,
    );
}

#[test]
fn the_checksum_covers_the_reserved1_field() {
    let p = standard_policy();
    let f = gre4(Gre::v0(proto::IPV4).checksum().reserved1(0x1234), udp4()).build();
    expect_tunnel(outside(&p, &f), T_V4);
    let mut changed = f.clone();
    changed[14 + 20 + 6] ^= 0x01;
    expect_drop(outside(&p, &changed), Reason::BadChecksum);
}

#[test]
fn the_checksum_ignores_ethernet_padding_after_the_ip_packet() {
    let p = standard_policy();
    let f = gre4(Gre::v0(proto::IPV4).checksum(), udp4())
        .trailer([0x55; 11])
        .build();
    expect_tunnel(outside(&p, &f), T_V4);
}

// ----- unknown_tunnel -----

#[test]
fn drops_valid_gre_of_no_tunnel_by_default() {
    let p = standard_policy();
    for b in [
        FrameBuilder::ipv4(STRANGER, LOCAL).gre(Gre::v0(proto::IPV4), udp4()),
        FrameBuilder::ipv4(PEER, STRANGER).gre(Gre::v0(proto::IPV4), udp4()),
        FrameBuilder::ipv6(STRANGER6, LOCAL6).gre(Gre::v0(proto::IPV4), udp4()),
        FrameBuilder::ipv4(STRANGER, LOCAL).gre(Gre::pptp(1), ppp_ipv4()),
    ] {
        expect_drop(outside(&p, &b.build()), Reason::UnknownTunnel);
    }
}

// ----- key_mismatch -----

#[test]
fn drops_key_mismatches_and_names_the_tunnel() {
    use validator::KeyRule;
    let with_key = |k| TunnelSpec {
        key: k,
        ..tunnel("t", &PEER.to_string(), &LOCAL.to_string())
    };
    let keyed = policy(Default::default(), vec![with_key(KeyRule::Equal(1001))]);
    let none = policy(Default::default(), vec![with_key(KeyRule::Absent)]);
    let cases = [
        (&keyed, Gre::v0(proto::IPV4), "key required, absent"),
        (&keyed, Gre::v0(proto::IPV4).key(1002), "key different"),
        (
            &none,
            Gre::v0(proto::IPV4).key(1001),
            "key forbidden, present",
        ),
    ];
    for (p, gre, name) in cases {
        for dir in [Direction::FromOutside, Direction::FromInside] {
            let b = gre4(gre.clone(), udp4());
            let f = match dir {
                Direction::FromOutside => b.build(),
                Direction::FromInside => reversed(b).build(),
            };
            assert_eq!(
                classify(p, dir, &f),
                decision(Verdict::Drop, Reason::KeyMismatch, Some(0)),
                "{name}"
            );
        }
    }
    expect_tunnel(
        outside(
            &keyed,
            &gre4(Gre::v0(proto::IPV4).key(1001), udp4()).build(),
        ),
        0,
    );
    expect_tunnel(outside(&none, &good4()), 0);
}

// ----- protocol_denied -----

#[test]
fn drops_protocol_types_the_tunnel_does_not_allow() {
    let p = policy(
        Default::default(),
        vec![TunnelSpec {
            protocols: protocols(&["ipv4"]),
            ..tunnel("v4only", &PEER.to_string(), &LOCAL.to_string())
        }],
    );
    for b in [
        gre4(Gre::v0(proto::IPV6), udp6()),
        gre4(Gre::v0(proto::TEB), inner_ethernet()),
        gre4(Gre::v0(proto::MPLS_UNICAST), payload::mpls(16, 64, &udp4())),
        gre4(Gre::v0(0x1234), [1, 2, 3]),
        gre4(Gre::v0(proto::KEEPALIVE), []),
    ] {
        expect(
            outside(&p, &b.build()),
            Verdict::Drop,
            Reason::ProtocolDenied,
            Some(0),
        );
    }
    expect_tunnel(outside(&p, &good4()), 0);
}

#[test]
fn drops_a_gre_version_the_tunnel_is_not() {
    // A version-0 tunnel receiving PPTP, and a PPTP tunnel receiving version 0.
    let p = policy(
        Default::default(),
        vec![
            TunnelSpec {
                protocols: protocols(&["ipv4", "ppp"]),
                ..tunnel("v0", &PEER.to_string(), &LOCAL.to_string())
            },
            TunnelSpec {
                protocols: protocols(&["ipv4", "ppp"]),
                ..pptp_tunnel("v1", &PPTP_PEER.to_string(), &LOCAL.to_string())
            },
        ],
    );
    let f = gre4(Gre::pptp(1), ppp_ipv4()).build();
    expect(
        outside(&p, &f),
        Verdict::Drop,
        Reason::ProtocolDenied,
        Some(0),
    );
    let f = pptp(Gre::v0(proto::IPV4), udp4()).build();
    expect(
        outside(&p, &f),
        Verdict::Drop,
        Reason::ProtocolDenied,
        Some(1),
    );
}

// ----- nested_gre -----

#[test]
fn drops_gre_in_gre_unless_the_tunnel_allows_nesting() {
    let p = standard_policy();
    let inner_gre = gre4(Gre::v0(proto::IPV4), udp4()).build_ip();
    let inner_gre6 = FrameBuilder::ipv6(IN6_A, IN6_B)
        .gre(Gre::v0(proto::IPV4), udp4())
        .build_ip();
    let inner_teb = payload::ipv4(
        IN_A,
        IN_B,
        47,
        &Gre::v0(proto::TEB).encode(&inner_ethernet()),
    );
    for (name, b, t) in [
        (
            "gre in ipv4",
            gre4(Gre::v0(proto::IPV4), inner_gre.clone()),
            T_V4,
        ),
        ("gre in ipv6", gre4(Gre::v0(proto::IPV6), inner_gre6), T_V4),
        (
            "gre in ipv4 over ipv6",
            gre6(Gre::v0(proto::IPV4), inner_gre.clone()),
            T_V6,
        ),
        (
            "short inner gre",
            gre4(Gre::v0(proto::IPV4), payload::ipv4(IN_A, IN_B, 47, &[0, 0])),
            T_V4,
        ),
        (
            "inner gre with another protocol",
            gre4(Gre::v0(proto::IPV4), inner_teb),
            T_V4,
        ),
    ] {
        assert_eq!(
            outside(&p, &b.build()),
            decision(Verdict::Drop, Reason::NestedGre, Some(t)),
            "{name}"
        );
    }
    let nesting = policy(
        Default::default(),
        vec![TunnelSpec {
            nested: true,
            ..tunnel("nest", &PEER.to_string(), &LOCAL.to_string())
        }],
    );
    expect_tunnel(
        outside(&nesting, &gre4(Gre::v0(proto::IPV4), inner_gre).build()),
        0,
    );
}

#[test]
fn allows_a_keepalive_request_without_nesting() {
    let p = standard_policy();
    let f = gre4(
        Gre::v0(proto::IPV4),
        payload::keepalive_request(PEER, LOCAL),
    )
    .build();
    expect_tunnel(outside(&p, &f), T_V4);
    let back = reversed(gre4(
        Gre::v0(proto::IPV4),
        payload::keepalive_request(LOCAL, PEER),
    ))
    .build();
    expect_tunnel(classify(&p, Direction::FromInside, &back), T_V4);
    // The reply the far end sends back: a bare GRE header with protocol 0.
    let ka = policy(
        Default::default(),
        vec![TunnelSpec {
            protocols: protocols(&["ipv4", "keepalive"]),
            ..tunnel("ka", &PEER.to_string(), &LOCAL.to_string())
        }],
    );
    expect_tunnel(
        outside(&ka, &gre4(Gre::v0(proto::KEEPALIVE), []).build()),
        0,
    );
}

#[test]
fn an_inner_fragment_carrying_gre_is_nested_gre() {
    // The concentrator reassembles inner fragments: GRE split over them is still GRE in GRE.
    let p = standard_policy();
    for (more, offset) in [(true, 0), (false, 100)] {
        let inner = FrameBuilder::ipv4(IN_A, IN_B)
            .raw(47, [0, 0, 0x08, 0])
            .ipv4_fragment(more, offset)
            .build_ip();
        expect(
            outside(&p, &gre4(Gre::v0(proto::IPV4), inner).build()),
            Verdict::Drop,
            Reason::NestedGre,
            Some(T_V4),
        );
    }
    // Not even a keepalive: only a whole inner packet can be one.
    let inner = FrameBuilder::ipv4(IN_A, IN_B)
        .raw(47, [0, 0, 0, 0])
        .ipv4_fragment(true, 0)
        .build_ip();
    expect(
        outside(&p, &gre4(Gre::v0(proto::IPV4), inner).build()),
        Verdict::Drop,
        Reason::NestedGre,
        Some(T_V4),
    );
}

#[test]
fn gre_behind_inner_ipv6_extension_headers_is_nested_gre() {
    let p = standard_policy();
    for ext in [
        Ipv6Ext::destination_options(),
        Ipv6Ext::hop_by_hop(),
        Ipv6Ext::fragment(0, true),
    ] {
        let inner = FrameBuilder::ipv6(IN6_A, IN6_B)
            .ipv6_ext(ext.clone())
            .gre(Gre::v0(proto::IPV4), udp4())
            .build_ip();
        expect(
            outside(&p, &gre4(Gre::v0(proto::IPV6), inner).build()),
            Verdict::Drop,
            Reason::NestedGre,
            Some(T_V4),
        );
    }
}

// ----- checksum_policy / sequence_policy -----

#[test]
fn enforces_the_checksum_and_sequence_rules() {
    use validator::FlagRule::{Allow, Forbid, Require};
    let rules = [Allow, Require, Forbid];
    for c in rules {
        for s in rules {
            let p = policy(
                Default::default(),
                vec![TunnelSpec {
                    checksum: c,
                    sequence: s,
                    ..tunnel("t", &PEER.to_string(), &LOCAL.to_string())
                }],
            );
            for has_c in [false, true] {
                for has_s in [false, true] {
                    let mut gre = Gre::v0(proto::IPV4);
                    if has_c {
                        gre = gre.checksum();
                    }
                    if has_s {
                        gre = gre.sequence(9);
                    }
                    let want = if c.violated(has_c) {
                        decision(Verdict::Drop, Reason::ChecksumPolicy, Some(0))
                    } else if s.violated(has_s) {
                        decision(Verdict::Drop, Reason::SequencePolicy, Some(0))
                    } else {
                        decision(Verdict::Forward, Reason::Tunnel, Some(0))
                    };
                    let b = gre4(gre, udp4());
                    assert_eq!(
                        outside(&p, &b.build()),
                        want,
                        "{c:?} {s:?} C={has_c} S={has_s}"
                    );
                    assert_eq!(
                        classify(&p, Direction::FromInside, &reversed(b).vlan(5).build()),
                        want
                    );
                }
            }
        }
    }
}

#[test]
fn sequence_rule_applies_to_pptp() {
    let p = policy(
        Default::default(),
        vec![TunnelSpec {
            sequence: validator::FlagRule::Require,
            ..pptp_tunnel("p", &PPTP_PEER.to_string(), &LOCAL.to_string())
        }],
    );
    expect(
        outside(&p, &pptp(Gre::pptp(1), ppp_ipv4()).build()),
        Verdict::Drop,
        Reason::SequencePolicy,
        Some(0),
    );
    expect_tunnel(
        outside(&p, &pptp(Gre::pptp(1).sequence(1), ppp_ipv4()).build()),
        0,
    );
    // RFC 2637 §4.1: S marks a payload; an acknowledgment alone has none and is not refused.
    expect_tunnel(outside(&p, &pptp(Gre::pptp(1).ack(9), []).build()), 0);
}

// ----- rate_limited -----

#[test]
fn drops_traffic_over_the_tunnel_policer_and_refills_with_time() {
    let mut spec = tunnel("v4", &PEER.to_string(), &LOCAL.to_string());
    spec.rate = Some(rate(10, 3));
    let p = policy(Default::default(), vec![spec]);
    let mut c = Classifier::new(&p, 0);
    let f = good4();
    let back = reversed(gre4(Gre::v0(proto::IPV4), udp4())).build();
    // Both directions share the tunnel's policer.
    expect_tunnel(c.classify(&p, 0, Direction::FromOutside, &f), 0);
    expect_tunnel(c.classify(&p, 0, Direction::FromInside, &back), 0);
    expect_tunnel(c.classify(&p, 0, Direction::FromOutside, &f), 0);
    for dir_frame in [(Direction::FromOutside, &f), (Direction::FromInside, &back)] {
        expect(
            c.classify(&p, 0, dir_frame.0, dir_frame.1),
            Verdict::Drop,
            Reason::RateLimited,
            Some(0),
        );
    }
    // 10 pps: one token back after 100 ms.
    expect(
        c.classify(&p, 99_000_000, Direction::FromOutside, &f),
        Verdict::Drop,
        Reason::RateLimited,
        Some(0),
    );
    expect_tunnel(c.classify(&p, 100_000_000, Direction::FromOutside, &f), 0);
}

#[test]
fn packets_refused_by_tunnel_rules_do_not_use_the_policer() {
    let mut spec = tunnel("v4", &PEER.to_string(), &LOCAL.to_string());
    spec.rate = Some(rate(1, 1));
    spec.checksum = validator::FlagRule::Forbid;
    let p = policy(Default::default(), vec![spec]);
    let mut c = Classifier::new(&p, 0);
    let bad = gre4(Gre::v0(proto::IPV4).checksum(), udp4()).build();
    for _ in 0..5 {
        expect(
            c.classify(&p, 0, Direction::FromOutside, &bad),
            Verdict::Drop,
            Reason::ChecksumPolicy,
            Some(0),
        );
    }
    expect_tunnel(c.classify(&p, 0, Direction::FromOutside, &good4()), 0);
}

// ----- order of the checks -----

#[test]
fn the_first_failing_check_decides() {
    let p = standard_policy();
    // Bad GRE version and bad inner: the header stage runs first.
    let f = gre4(Gre::v0(proto::IPV4).version(3), [0u8; 3]).build();
    expect_drop(outside(&p, &f), Reason::BadVersion);
    // MUST-discard and reserved bits together: bad_flags.
    let f = gre4(Gre::v0(proto::IPV4).set_flags(flags::R | 0x0008), udp4()).build();
    expect_drop(outside(&p, &f), Reason::BadFlags);
    // Reserved bits and a wrong checksum: reserved_bits.
    let f = gre4(
        Gre::v0(proto::IPV4)
            .set_flags(0x0100)
            .checksum_with(Checksum::Wrong),
        udp4(),
    )
    .build();
    expect_drop(outside(&p, &f), Reason::ReservedBits);
    // Wrong checksum and bad inner: bad_checksum.
    let f = gre4(
        Gre::v0(proto::IPV4).checksum_with(Checksum::Wrong),
        [0u8; 5],
    )
    .build();
    expect_drop(outside(&p, &f), Reason::BadChecksum);
    // Bad inner from unknown addresses: bad_inner (the inner stage precedes the tunnel match).
    let f = FrameBuilder::ipv4(STRANGER, LOCAL)
        .gre(Gre::v0(proto::IPV4), [0x45u8; 10])
        .build();
    expect_drop(outside(&p, &f), Reason::BadInner);
    // Inner bogon from unknown addresses: bogon.
    let f = FrameBuilder::ipv4(STRANGER, LOCAL)
        .gre(
            Gre::v0(proto::IPV4),
            payload::ipv4_udp("127.0.0.1".parse().unwrap(), IN_B, 1, 2, b""),
        )
        .build();
    expect_drop(outside(&p, &f), Reason::Bogon);
    // Key mismatch before protocol: key_mismatch.
    let keyed = policy(
        Default::default(),
        vec![TunnelSpec {
            key: validator::KeyRule::Equal(1),
            protocols: protocols(&["ipv6"]),
            checksum: validator::FlagRule::Forbid,
            ..tunnel("t", &PEER.to_string(), &LOCAL.to_string())
        }],
    );
    let f = gre4(Gre::v0(proto::IPV4).key(2).checksum(), udp4()).build();
    expect(
        outside(&keyed, &f),
        Verdict::Drop,
        Reason::KeyMismatch,
        Some(0),
    );
    // Protocol before checksum policy.
    let f = gre4(Gre::v0(proto::IPV4).key(1).checksum(), udp4()).build();
    expect(
        outside(&keyed, &f),
        Verdict::Drop,
        Reason::ProtocolDenied,
        Some(0),
    );
    // Nesting before checksum policy.
    let nested = policy(
        Default::default(),
        vec![TunnelSpec {
            checksum: validator::FlagRule::Require,
            ..tunnel("t", &PEER.to_string(), &LOCAL.to_string())
        }],
    );
    let f = gre4(Gre::v0(proto::IPV4), good4()[14..].to_vec()).build();
    expect(
        outside(&nested, &f),
        Verdict::Drop,
        Reason::NestedGre,
        Some(0),
    );
}

#[test]
fn a_tunnel_index_is_reported_only_once_addresses_matched() {
    let p = standard_policy();
    // Invalid GRE of a known tunnel: the tunnel stage never ran.
    let f = gre4(Gre::v0(proto::IPV4).checksum_with(Checksum::Wrong), udp4()).build();
    assert_eq!(outside(&p, &f).tunnel(), None);
    assert_eq!(outside(&p, &good4()).tunnel(), Some(T_V4 as usize));
}

#[test]
fn reason_names_match_design() {
    let names: Vec<&str> = Reason::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(
        names,
        [
            "non_gre",
            "truncated",
            "bad_ip",
            "bogon",
            "fragment",
            "bad_version",
            "bad_flags",
            "reserved_bits",
            "bad_checksum",
            "bad_inner",
            "unknown_tunnel",
            "key_mismatch",
            "protocol_denied",
            "nested_gre",
            "checksum_policy",
            "sequence_policy",
            "rate_limited",
            "tunnel",
            "oversize",
        ]
    );
}

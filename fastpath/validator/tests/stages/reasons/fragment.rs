//! `fragment`.

use super::*;

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

//! `bogon`.

use super::*;

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

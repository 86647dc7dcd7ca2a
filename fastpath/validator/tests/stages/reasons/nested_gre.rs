//! `nested_gre`.

use super::*;

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

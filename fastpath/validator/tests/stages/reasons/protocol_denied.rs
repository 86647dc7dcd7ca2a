//! `protocol_denied`.

use super::*;

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

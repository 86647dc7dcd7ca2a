//! `unknown_tunnel`.

use super::*;

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

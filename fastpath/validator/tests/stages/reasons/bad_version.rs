//! `bad_version`.

use super::*;

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

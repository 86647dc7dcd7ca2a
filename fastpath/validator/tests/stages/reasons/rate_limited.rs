//! `rate_limited`.

use super::*;

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

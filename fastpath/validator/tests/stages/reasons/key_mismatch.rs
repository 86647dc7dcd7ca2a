//! `key_mismatch`.

use super::*;

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

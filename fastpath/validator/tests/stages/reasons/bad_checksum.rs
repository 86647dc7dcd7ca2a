//! `bad_checksum`.

use super::*;

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

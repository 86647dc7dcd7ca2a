//! `bad_ip`.

use super::*;

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

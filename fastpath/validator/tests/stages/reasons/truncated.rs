//! `truncated`.

// Test frames are a few hundred bytes: their lengths fit u16.
#![allow(clippy::cast_possible_truncation)]

use super::*;

#[test]
fn drops_frames_shorter_than_their_ethernet_and_vlan_headers() {
    let p = standard_policy();
    let f = gre4(Gre::v0(proto::IPV4), udp4()).qinq(1, 2).build();
    for cut in [0, 1, 13, 14, 17, 18, 21] {
        expect_drop(outside(&p, &f[..cut]), Reason::Truncated);
    }
}

#[test]
fn drops_ip_headers_cut_short() {
    let p = standard_policy();
    let v4 = good4();
    expect_drop(outside(&p, &v4[..14 + 19]), Reason::Truncated);
    let v6 = gre6(Gre::v0(proto::IPV4), udp4()).build();
    expect_drop(outside(&p, &v6[..14 + 39]), Reason::Truncated);
    // IPv4 options announced by the IHL but cut off.
    let opts = gre4(Gre::v0(proto::IPV4), udp4())
        .ipv4_options([1; 8])
        .build();
    expect_drop(outside(&p, &opts[..14 + 24]), Reason::Truncated);
}

#[test]
fn drops_ipv4_total_length_beyond_the_frame() {
    let p = standard_policy();
    let f = good4();
    let too_long = (f.len() - 14 + 1) as u16;
    let b = gre4(Gre::v0(proto::IPV4), udp4()).ip_length(too_long);
    expect_drop(outside(&p, &b.build()), Reason::Truncated);
    // The same frame with a tag and from the inside.
    let back = reversed(b.vlan(3)).build();
    expect_drop(
        classify(&p, Direction::FromInside, &back),
        Reason::Truncated,
    );
}

#[test]
fn drops_ipv6_payload_length_beyond_the_frame() {
    let p = standard_policy();
    let f = gre6(Gre::v0(proto::IPV4), udp4()).build();
    let b = gre6(Gre::v0(proto::IPV4), udp4()).ip_length((f.len() - 54 + 1) as u16);
    expect_drop(outside(&p, &b.build()), Reason::Truncated);
}

#[test]
fn drops_ipv6_extension_header_running_past_the_payload() {
    let p = standard_policy();
    // A routing header claiming 16 bytes in an 8-byte payload.
    let mut f = FrameBuilder::ipv6(PEER6, LOCAL6)
        .ipv6_ext(Ipv6Ext::routing())
        .ip_protocol(47)
        .build();
    f[14 + 40 + 1] = 1;
    expect_drop(outside(&p, &f), Reason::Truncated);
}

#[test]
fn drops_gre_shorter_than_its_base_header() {
    let p = standard_policy();
    for len in 0..4 {
        let f = FrameBuilder::ipv4(PEER, LOCAL)
            .raw(47, vec![0; len])
            .build();
        expect_drop(outside(&p, &f), Reason::Truncated);
        let f = FrameBuilder::ipv6(PEER6, LOCAL6)
            .raw(47, vec![0; len])
            .build();
        expect_drop(outside(&p, &f), Reason::Truncated);
    }
}

#[test]
fn drops_gre_whose_optional_fields_are_cut_off() {
    let p = standard_policy();
    // C, K and S announced, the fields after the base header missing or partial.
    for (bits, len) in [
        (flags::C, 4),
        (flags::K, 7),
        (flags::S, 4),
        (flags::C | flags::K | flags::S, 15),
    ] {
        let mut gre = bits.to_be_bytes().to_vec();
        gre.extend_from_slice(&proto::IPV4.to_be_bytes());
        gre.resize(len, 0);
        let f = FrameBuilder::ipv4(PEER, LOCAL).raw(47, gre).build();
        expect_drop(outside(&p, &f), Reason::Truncated);
    }
    // A key bit set with no key field: the inner packet's first bytes would be read as the key,
    // and what is left is too short.
    let f = gre4(Gre::v0(proto::IPV4).set_flags(flags::K), [0u8; 3]).build();
    expect_drop(outside(&p, &f), Reason::Truncated);
}

//! One or more tests per reason of the README's Verdicts and reasons, through the public
//! classifier, with frames from `frames`: both directions, IPv4 and IPv6 outer, untagged,
//! 802.1Q and QinQ.

use crate::common::generators::{fragments, non_gre_frames, tagged};
use crate::common::*;
use frames::{payload, Checksum, FrameBuilder, Gre, Ipv6Ext, Vlan};
use validator::wire::gre::{flags, proto};
use validator::{Classifier, Direction, Reason, TunnelSpec, Verdict};

#[test]
fn forwards_matching_tunnel_traffic_in_both_directions_families_and_taggings() {
    let p = standard_policy();
    for tags in 0..3 {
        let v4 = tagged(gre4(Gre::v0(proto::IPV4), udp4()), tags);
        let v6 = tagged(gre6(Gre::v0(proto::IPV6), udp6()), tags);
        for (b, t) in [(v4, T_V4), (v6, T_V6)] {
            // Outside: source is the peer. Inside: source is the local end.
            expect_tunnel(classify(&p, Direction::FromOutside, &b.build()), t);
            let back = reversed(b.clone()).build();
            expect_tunnel(classify(&p, Direction::FromInside, &back), t);
            // The wrong orientation for the port matches nothing.
            expect_drop(
                classify(&p, Direction::FromInside, &b.build()),
                Reason::UnknownTunnel,
            );
            expect_drop(
                classify(&p, Direction::FromOutside, &back),
                Reason::UnknownTunnel,
            );
        }
    }
}

#[test]
fn forwards_ipv6_in_ipv4_and_ipv4_in_ipv6() {
    let p = standard_policy();
    expect_tunnel(
        outside(&p, &gre4(Gre::v0(proto::IPV6), udp6()).build()),
        T_V4,
    );
    expect_tunnel(
        outside(&p, &gre6(Gre::v0(proto::IPV4), udp4()).build()),
        T_V6,
    );
}

#[test]
fn forwards_gre_with_every_optional_field_and_ethernet_padding() {
    let p = standard_policy();
    let f = gre4(Gre::v0(proto::IPV4).checksum().key(7).sequence(1), udp4())
        .trailer([0xEE; 9])
        .build();
    expect_tunnel(outside(&p, &f), T_V4);
    let small = gre4(Gre::v0(proto::KEEPALIVE), []).pad_to(60).build();
    let p2 = policy(
        Default::default(),
        vec![TunnelSpec {
            protocols: protocols(&["keepalive"]),
            ..tunnel("ka", &PEER.to_string(), &LOCAL.to_string())
        }],
    );
    expect_tunnel(outside(&p2, &small), 0);
}

#[test]
fn forwards_outer_ipv4_with_options_and_ipv6_with_extension_headers() {
    let p = standard_policy();
    let f = gre4(Gre::v0(proto::IPV4), udp4())
        .ipv4_options([0x94, 0x04, 0x00, 0x00])
        .build();
    expect_tunnel(outside(&p, &f), T_V4);
    let f = gre6(Gre::v0(proto::IPV4), udp4())
        .ipv6_ext(Ipv6Ext::hop_by_hop())
        .ipv6_ext(Ipv6Ext::destination_options())
        .ipv6_ext(Ipv6Ext::routing())
        .ipv6_ext(Ipv6Ext::DestinationOptions(vec![0x1e, 0x04, 1, 2, 3, 4]))
        .build();
    expect_tunnel(outside(&p, &f), T_V6);
}

#[test]
fn accepts_legacy_9100_vlan_tag() {
    let p = standard_policy();
    let f = gre4(Gre::v0(proto::IPV4), udp4())
        .vlan_tag(Vlan {
            tpid: 0x9100,
            tci: 7,
        })
        .build();
    expect_tunnel(outside(&p, &f), T_V4);
}

mod bad_checksum;
mod bad_ip;
mod bad_version;
mod bogon;
mod check_order;
mod flag_rules;
mod fragment;
mod key_mismatch;
mod nested_gre;
mod non_gre;
mod protocol_denied;
mod rate_limited;
mod truncated;
mod unknown_tunnel;

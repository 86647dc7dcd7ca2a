//! Tunnel selection (docs/policy.md): orientation by port, prefixes, the most
//! specific tunnel (longest peer, then longest local), and the key among equally specific ones.

use std::net::{IpAddr, Ipv4Addr};

use crate::common::*;
use frames::{FrameBuilder, Gre};
use validator::wire::gre::proto;
use validator::{Decision, Direction, KeyRule, Policy, Reason, TunnelSpec, Verdict};

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn keyed(name: &str, peer: &str, local: &str, key: KeyRule) -> TunnelSpec {
    TunnelSpec {
        key,
        ..tunnel(name, peer, local)
    }
}

/// GRE from `peer` to `local` arriving outside, and the reverse arriving inside; both must get
/// the same decision.
#[track_caller]
fn both_ways(p: &Policy, peer: &str, local: &str, key: Option<u32>) -> Decision {
    let gre = match key {
        Some(k) => Gre::v0(proto::IPV4).key(k),
        None => Gre::v0(proto::IPV4),
    };
    let (peer, local): (IpAddr, IpAddr) = (peer.parse().unwrap(), local.parse().unwrap());
    let out = FrameBuilder::ip(peer, local)
        .gre(gre.clone(), udp4())
        .build();
    let inn = FrameBuilder::ip(local, peer)
        .vlan(9)
        .gre(gre, udp4())
        .build();
    let d = classify(p, Direction::FromOutside, &out);
    assert_eq!(
        classify(p, Direction::FromInside, &inn),
        d,
        "inside differs"
    );
    d
}

#[test]
fn a_peer_prefix_matches_every_address_in_it() {
    let p = policy(
        Default::default(),
        vec![tunnel("branches", "203.0.113.0/28", "198.51.100.10")],
    );
    for last in 0..16 {
        let peer = format!("203.0.113.{last}");
        expect_tunnel(both_ways(&p, &peer, "198.51.100.10", None), 0);
    }
    expect_drop(
        both_ways(&p, "203.0.113.16", "198.51.100.10", None),
        Reason::UnknownTunnel,
    );
    expect_drop(
        both_ways(&p, "203.0.113.1", "198.51.100.11", None),
        Reason::UnknownTunnel,
    );
}

#[test]
fn a_local_prefix_matches_every_concentrator_in_it() {
    let p = policy(
        Default::default(),
        vec![tunnel("pool", "203.0.113.7", "198.51.100.0/30")],
    );
    for last in 0..4 {
        expect_tunnel(
            both_ways(&p, "203.0.113.7", &format!("198.51.100.{last}"), None),
            0,
        );
    }
    expect_drop(
        both_ways(&p, "203.0.113.7", "198.51.100.4", None),
        Reason::UnknownTunnel,
    );
}

#[test]
fn the_most_specific_tunnel_wins() {
    let p = policy(
        Default::default(),
        vec![
            tunnel("wide", "10.0.0.0/8", "172.16.0.0/12"),
            tunnel("narrow-peer", "10.1.0.0/16", "172.16.0.0/12"),
            tunnel("narrow-local", "10.0.0.0/8", "172.16.5.0/24"),
            tunnel("host", "10.1.2.3", "172.16.5.1"),
            tunnel("host-peer", "10.9.9.9", "172.16.0.0/12"),
        ],
    );
    expect_tunnel(both_ways(&p, "10.1.2.3", "172.16.5.1", None), 3);
    // Longest peer first, even against a longer local.
    expect_tunnel(both_ways(&p, "10.1.2.4", "172.16.5.1", None), 1);
    // Same peer length: longest local.
    expect_tunnel(both_ways(&p, "10.2.0.1", "172.16.5.1", None), 2);
    expect_tunnel(both_ways(&p, "10.2.0.1", "172.16.6.1", None), 0);
    // A host peer with a prefix local beats every peer prefix.
    expect_tunnel(both_ways(&p, "10.9.9.9", "172.16.5.1", None), 4);
    // The /16 peer has no local covering this one: back to the /8 peers.
    expect_tunnel(both_ways(&p, "10.1.2.4", "172.31.0.1", None), 1);
    expect_drop(
        both_ways(&p, "10.1.2.4", "172.32.0.1", None),
        Reason::UnknownTunnel,
    );
}

#[test]
fn falls_back_to_a_shorter_peer_when_the_longer_has_no_matching_local() {
    let p = policy(
        Default::default(),
        vec![
            tunnel("wide", "10.0.0.0/8", "172.16.0.0/12"),
            tunnel("narrow", "10.1.0.0/16", "172.16.5.0/24"),
        ],
    );
    expect_tunnel(both_ways(&p, "10.1.0.1", "172.16.9.9", None), 0);
    expect_tunnel(both_ways(&p, "10.1.0.1", "172.16.5.9", None), 1);
    expect_drop(
        both_ways(&p, "10.1.0.1", "172.32.0.1", None),
        Reason::UnknownTunnel,
    );
}

#[test]
fn among_equally_specific_tunnels_the_key_decides() {
    let peer = PEER.to_string();
    let local = LOCAL.to_string();
    let p = policy(
        Default::default(),
        vec![
            keyed("k1", &peer, &local, KeyRule::Equal(1)),
            keyed("k2", &peer, &local, KeyRule::Equal(2)),
            keyed("none", &peer, &local, KeyRule::Absent),
            keyed("any", &peer, &local, KeyRule::Any),
        ],
    );
    expect_tunnel(both_ways(&p, &peer, &local, Some(1)), 0);
    expect_tunnel(both_ways(&p, &peer, &local, Some(2)), 1);
    expect_tunnel(both_ways(&p, &peer, &local, None), 2);
    expect_tunnel(both_ways(&p, &peer, &local, Some(3)), 3);
}

#[test]
fn without_a_catch_all_an_unlisted_key_is_a_mismatch() {
    let peer = PEER.to_string();
    let local = LOCAL.to_string();
    let p = policy(
        Default::default(),
        vec![
            keyed("k1", &peer, &local, KeyRule::Equal(1)),
            keyed("k2", &peer, &local, KeyRule::Equal(2)),
        ],
    );
    expect(
        both_ways(&p, &peer, &local, Some(3)),
        Verdict::Drop,
        Reason::KeyMismatch,
        Some(0),
    );
    expect(
        both_ways(&p, &peer, &local, None),
        Verdict::Drop,
        Reason::KeyMismatch,
        Some(0),
    );
    let none_only = policy(
        Default::default(),
        vec![keyed("none", &peer, &local, KeyRule::Absent)],
    );
    expect(
        both_ways(&none_only, &peer, &local, Some(0)),
        Verdict::Drop,
        Reason::KeyMismatch,
        Some(0),
    );
    let any = policy(
        Default::default(),
        vec![keyed("any", &peer, &local, KeyRule::Any)],
    );
    expect_tunnel(both_ways(&any, &peer, &local, Some(0)), 0);
    expect_tunnel(both_ways(&any, &peer, &local, None), 0);
}

#[test]
fn a_key_mismatch_on_the_most_specific_tunnel_does_not_fall_back() {
    // The key only decides among equally specific tunnels.
    let p = policy(
        Default::default(),
        vec![
            keyed("wide", "203.0.113.0/24", &LOCAL.to_string(), KeyRule::Any),
            keyed(
                "host",
                &PEER.to_string(),
                &LOCAL.to_string(),
                KeyRule::Equal(5),
            ),
        ],
    );
    expect_tunnel(
        both_ways(&p, &PEER.to_string(), &LOCAL.to_string(), Some(5)),
        1,
    );
    expect(
        both_ways(&p, &PEER.to_string(), &LOCAL.to_string(), Some(6)),
        Verdict::Drop,
        Reason::KeyMismatch,
        Some(1),
    );
    expect_tunnel(both_ways(&p, "203.0.113.8", &LOCAL.to_string(), Some(6)), 0);
}

#[test]
fn prefix_tunnels_select_by_key_too() {
    let p = policy(
        Default::default(),
        vec![
            keyed("a", "203.0.113.0/24", "198.51.100.0/24", KeyRule::Equal(10)),
            keyed("b", "203.0.113.0/24", "198.51.100.0/24", KeyRule::Equal(20)),
        ],
    );
    expect_tunnel(both_ways(&p, "203.0.113.50", "198.51.100.60", Some(20)), 1);
    expect(
        both_ways(&p, "203.0.113.50", "198.51.100.60", Some(30)),
        Verdict::Drop,
        Reason::KeyMismatch,
        Some(0),
    );
}

#[test]
fn ipv6_prefixes_and_hosts() {
    let p = policy(
        Default::default(),
        vec![
            tunnel("v6-wide", "2001:db8:1::/48", "2001:db8:ffff::/64"),
            tunnel("v6-host", "2001:db8:1::7", "2001:db8:ffff::10"),
            tunnel("v4", &PEER.to_string(), &LOCAL.to_string()),
        ],
    );
    expect_tunnel(both_ways(&p, "2001:db8:1::7", "2001:db8:ffff::10", None), 1);
    expect_tunnel(
        both_ways(&p, "2001:db8:1:5::1", "2001:db8:ffff::99", None),
        0,
    );
    expect_drop(
        both_ways(&p, "2001:db8:2::1", "2001:db8:ffff::10", None),
        Reason::UnknownTunnel,
    );
    // An IPv4 tunnel does not match IPv4-mapped IPv6 addresses.
    expect_drop(
        both_ways(
            &p,
            &PEER.to_ipv6_mapped().to_string(),
            &LOCAL.to_ipv6_mapped().to_string(),
            None,
        ),
        Reason::UnknownTunnel,
    );
}

#[test]
fn the_port_decides_which_end_is_the_peer() {
    // A tunnel whose peer and local are swapped images of each other's prefixes.
    let p = policy(
        Default::default(),
        vec![
            tunnel("a", "192.0.2.1", "198.51.100.1"),
            tunnel("b", "198.51.100.1", "192.0.2.1"),
        ],
    );
    let f = FrameBuilder::ipv4(v4("192.0.2.1"), v4("198.51.100.1"))
        .gre(Gre::v0(proto::IPV4), udp4())
        .build();
    expect_tunnel(classify(&p, Direction::FromOutside, &f), 0);
    expect_tunnel(classify(&p, Direction::FromInside, &f), 1);
}

#[test]
fn decisions_name_the_tunnel_index_for_reports() {
    let p = standard_policy();
    let d = outside(&p, &good4());
    assert_eq!(p.tunnel_name(d.tunnel), "v4");
    let d = outside(&p, &gre6(Gre::v0(proto::IPV4), udp4()).build());
    assert_eq!(p.tunnel_name(d.tunnel), "v6");
    let d = outside(&p, &FrameBuilder::arp_request(LOCAL, PEER).build());
    assert_eq!(p.tunnel_name(d.tunnel), "");
}

#[test]
fn a_zero_length_peer_prefix_matches_every_peer() {
    let p = policy(
        Default::default(),
        vec![
            tunnel("anyone", "0.0.0.0/0", &LOCAL.to_string()),
            tunnel("known", &PEER.to_string(), &LOCAL.to_string()),
            tunnel("anyone6", "::/0", "::/0"),
        ],
    );
    expect_tunnel(
        both_ways(&p, &PEER.to_string(), &LOCAL.to_string(), None),
        1,
    );
    expect_tunnel(both_ways(&p, "192.0.2.1", &LOCAL.to_string(), Some(4)), 0);
    expect_tunnel(both_ways(&p, "8.8.8.8", &LOCAL.to_string(), None), 0);
    expect_drop(
        both_ways(&p, "8.8.8.8", "198.51.100.11", None),
        Reason::UnknownTunnel,
    );
    expect_tunnel(both_ways(&p, "2001:db8::1", "2001:db8::2", None), 2);
}

#[test]
fn a_prefix_given_with_host_bits_matches_its_network() {
    use validator::IpPrefix;
    // TunnelSpec fields are public: a caller may hand in 203.0.113.7/24 unmasked.
    let p = policy(
        Default::default(),
        vec![TunnelSpec {
            peer: IpPrefix::V4(u32::from(PEER), 24),
            ..tunnel("net", "0.0.0.0/0", &LOCAL.to_string())
        }],
    );
    expect_tunnel(both_ways(&p, "203.0.113.200", &LOCAL.to_string(), None), 0);
    expect_tunnel(
        both_ways(&p, &PEER.to_string(), &LOCAL.to_string(), None),
        0,
    );
}

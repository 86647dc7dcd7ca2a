//! `replay --from auto`: which port a captured frame arrived on, told by its outer addresses.
//!
//! A capture of both directions (`tcpdump -i any` on a concentrator) holds every tunnel's frames
//! twice over: peer → local, which the box sees on its outside port, and local → peer, which it
//! sees on its inside port. Classified from one side only, the other direction is
//! `unknown_tunnel`; classified from the side its addresses say, both are what the box would
//! make of them.

use validator::wire::ethernet::ethertype;
use validator::wire::ipv4::Ipv4Packet;
use validator::wire::ipv6::{self, Ipv6Packet, Upper};
use validator::wire::numbers::ip_protocol;
use validator::wire::vlan::untag;
use validator::{Direction, Match, Policy};

/// The port a frame arrived on, by its outer addresses: GRE whose (source, destination) are a
/// tunnel's (local, peer) arrived inside; everything else outside — GRE from a peer, GRE of no
/// tunnel, non-GRE and frames too broken to tell, which the outside port sees most of. When both
/// orientations match (tunnels defined both ways), outside wins, as for `--from outside`.
pub fn arrival(frame: &[u8], policy: &Policy) -> Direction {
    let (from_outside, from_inside) = match outer_gre_addresses(frame) {
        Some(Outer::V4(src, dst)) => (
            policy.match_v4(src, dst, None),
            policy.match_v4(dst, src, None),
        ),
        Some(Outer::V6(src, dst)) => (
            policy.match_v6(src, dst, None),
            policy.match_v6(dst, src, None),
        ),
        None => return Direction::FromOutside,
    };
    // No key is passed: a key mismatch still means the addresses are the tunnel's, and the
    // classifier, not this, is to say that the key is wrong.
    if from_outside == Match::None && from_inside != Match::None {
        Direction::FromInside
    } else {
        Direction::FromOutside
    }
}

/// The outer (source, destination) of a GRE packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outer {
    V4(u32, u32),
    V6(u128, u128),
}

/// The outer addresses of a frame carrying GRE: Ethernet, at most two VLAN tags (as the data path
/// walks), then IPv4 or IPv6 (with its extension headers) whose protocol is GRE. `None` for
/// anything else; the classifier judges what is broken, this only reads addresses.
fn outer_gre_addresses(frame: &[u8]) -> Option<Outer> {
    let (kind, l3) = untag(frame).ok()?;
    match kind {
        ethertype::IPV4 => {
            let ip = Ipv4Packet::new_checked(l3).ok()?;
            (ip.version() == 4 && ip.protocol() == ip_protocol::GRE)
                .then(|| Outer::V4(ip.source(), ip.destination()))
        }
        ethertype::IPV6 => {
            let ip = Ipv6Packet::new_checked(l3).ok()?;
            // A payload length past the captured bytes: walk what there is.
            let payload = ip
                .payload()
                .or_else(|| l3.get(ipv6::field::HEADER_LEN..))
                .unwrap_or(&[]);
            let gre = match ip.walk(payload) {
                Upper::Protocol { protocol, .. } | Upper::LaterFragment { protocol } => {
                    protocol == ip_protocol::GRE
                }
                Upper::ChainTooLong | Upper::Truncated => false,
            };
            (ip.version() == 6 && gre).then(|| Outer::V6(ip.source(), ip.destination()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frames::{payload, FrameBuilder, Gre, Ipv6Ext};
    use std::net::{Ipv4Addr, Ipv6Addr};

    const PEER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
    const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
    const PEER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 7);
    const LOCAL6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10);

    fn policy() -> std::sync::Arc<Policy> {
        let text = "[[tunnel]]\nname = \"v4\"\npeer = \"203.0.113.7\"\nlocal = \"198.51.100.10\"\nkey = 1001\n\
                    [[tunnel]]\nname = \"v6\"\npeer = \"2001:db8:100::7\"\nlocal = \"2001:db8:1::10\"\n";
        config::load_str(text, "test.toml").expect("policy").policy
    }

    fn gre4(src: Ipv4Addr, dst: Ipv4Addr, key: u32) -> Vec<u8> {
        let inner = payload::ipv4_udp(
            Ipv4Addr::new(10, 1, 0, 1),
            Ipv4Addr::new(10, 2, 0, 1),
            4000,
            53,
            b"q",
        );
        FrameBuilder::ipv4(src, dst)
            .gre(Gre::v0(0x0800).key(key), inner)
            .build()
    }

    #[test]
    fn a_tunnel_seen_from_its_local_end_arrived_inside() {
        let p = policy();
        assert_eq!(
            arrival(&gre4(PEER, LOCAL, 1001), &p),
            Direction::FromOutside
        );
        assert_eq!(arrival(&gre4(LOCAL, PEER, 1001), &p), Direction::FromInside);
        // The addresses decide, not the key: the classifier reports the mismatch.
        assert_eq!(arrival(&gre4(LOCAL, PEER, 7), &p), Direction::FromInside);
        let unknown = Ipv4Addr::new(192, 0, 2, 99);
        assert_eq!(
            arrival(&gre4(unknown, PEER, 1001), &p),
            Direction::FromOutside
        );
    }

    #[test]
    fn ipv6_and_vlan_tagged_gre_is_told_apart_too() {
        let p = policy();
        let inner = payload::ipv4_udp(
            Ipv4Addr::new(10, 1, 0, 1),
            Ipv4Addr::new(10, 2, 0, 1),
            1,
            2,
            b"",
        );
        let v6 = |src, dst| {
            FrameBuilder::ipv6(src, dst)
                .gre(Gre::v0(0x0800), inner.clone())
                .build()
        };
        assert_eq!(arrival(&v6(LOCAL6, PEER6), &p), Direction::FromInside);
        assert_eq!(arrival(&v6(PEER6, LOCAL6), &p), Direction::FromOutside);
        let behind_options = FrameBuilder::ipv6(LOCAL6, PEER6)
            .ipv6_ext(Ipv6Ext::hop_by_hop())
            .gre(Gre::v0(0x0800), inner.clone())
            .build();
        assert_eq!(arrival(&behind_options, &p), Direction::FromInside);
        let tagged = FrameBuilder::ipv4(LOCAL, PEER)
            .vlan(100)
            .vlan(200)
            .gre(Gre::v0(0x0800).key(1001), inner)
            .build();
        assert_eq!(arrival(&tagged, &p), Direction::FromInside);
    }

    #[test]
    fn what_is_no_gre_or_no_ip_arrived_outside() {
        let p = policy();
        let mut not_gre = gre4(LOCAL, PEER, 1001);
        not_gre[14 + 9] = 17; // UDP
        assert_eq!(arrival(&not_gre, &p), Direction::FromOutside);
        for junk in [
            &[][..],
            &[0u8; 13],
            &[0xFF; 60],
            &gre4(LOCAL, PEER, 1001)[..30],
        ] {
            assert_eq!(arrival(junk, &p), Direction::FromOutside);
        }
    }
}

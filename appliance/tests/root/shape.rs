//! What the frame-by-frame tests need to know of a frame's shape: the parts the fast lane's
//! table (docs/fast-lane.md) and nftables' list of what it cannot check name — outer headers
//! it does not parse, outer bogons, the outer addresses, the version-0 GRE body.

use validator::wire::numbers::{ethertype, gre_flags, gre_proto, ipv6_next_header};
use validator::{Direction, IpPrefix, Policy, ProtoClass};

/// The parts of a frame the table of docs/fast-lane.md names when it says what goes up.
#[derive(Debug, Default)]
pub struct Shape {
    /// IPv6 whose first next header is an extension header the validator walks.
    pub ipv6_extensions: bool,
    /// An outer header the program does not parse: IPv4 with options, IPv6 extension headers.
    pub outer_unparsed: bool,
    /// The outer source is a bogon.
    pub outer_bogon: bool,
    /// The outer (source, destination) addresses.
    pub addresses: Option<(IpPrefix, IpPrefix)>,
    /// A version-0 GRE body the program does not check: a GRE checksum, a payload other than
    /// IPv4, IPv6 without extension headers, keepalive or a numeric type.
    pub body_unchecked: bool,
    /// Version-0 GRE: its protocol type and where its payload starts (after the C, K and S
    /// fields).
    pub v0: Option<(u16, usize)>,
}

impl Shape {
    pub fn of(f: &[u8]) -> Shape {
        let mut s = Shape::default();
        let be16 = |at: usize| f.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
        let mut at = 12;
        let mut ty = be16(at).unwrap_or(0);
        for _ in 0..ethertype::MAX_VLAN_TAGS {
            if !ethertype::VLAN_TPIDS.contains(&ty) {
                break;
            }
            at += 4;
            ty = be16(at).unwrap_or(0);
        }
        let l3 = at + 2;
        let gre = match ty {
            ethertype::IPV4 => {
                let ihl = usize::from(f.get(l3).copied().unwrap_or(0) & 0xF) * 4;
                s.outer_unparsed = ihl != 20;
                if let Some(a) = f.get(l3 + 12..l3 + 20) {
                    let src = u32::from_be_bytes(a[..4].try_into().unwrap());
                    let dst = u32::from_be_bytes(a[4..].try_into().unwrap());
                    s.outer_bogon = validator::bogon::is_bogon_v4(src);
                    s.addresses = Some((IpPrefix::V4(src, 32), IpPrefix::V4(dst, 32)));
                }
                l3 + ihl
            }
            ethertype::IPV6 => {
                let nh = f.get(l3 + 6).copied().unwrap_or(0);
                s.ipv6_extensions = ipv6_next_header::WALKED.contains(&nh);
                s.outer_unparsed = s.ipv6_extensions;
                if let Some(a) = f.get(l3 + 8..l3 + 40) {
                    let src = u128::from_be_bytes(a[..16].try_into().unwrap());
                    let dst = u128::from_be_bytes(a[16..].try_into().unwrap());
                    s.outer_bogon = validator::bogon::is_bogon_v6(src);
                    s.addresses = Some((IpPrefix::V6(src, 128), IpPrefix::V6(dst, 128)));
                }
                l3 + 40
            }
            _ => return s,
        };
        let (Some(fv), Some(protocol)) = (be16(gre), be16(gre + 2)) else {
            return s;
        };
        if fv & gre_flags::VERSION == 0 {
            let fields = [gre_flags::C, gre_flags::K, gre_flags::S]
                .iter()
                .filter(|&&b| fv & b != 0)
                .count();
            let inner = gre + 4 + 4 * fields;
            s.v0 = Some((protocol, inner));
            let inner_extensions = protocol == gre_proto::IPV6
                && f.get(inner + 6)
                    .is_some_and(|nh| ipv6_next_header::WALKED.contains(nh));
            s.body_unchecked = fv & gre_flags::C != 0
                || inner_extensions
                || !matches!(
                    ProtoClass::of(protocol),
                    ProtoClass::Ipv4 | ProtoClass::Ipv6 | ProtoClass::Keepalive | ProtoClass::Other
                );
        }
        s
    }

    /// Whether the peer is in some tunnel's `peer` and the local end in some tunnel's `local`
    /// (not necessarily the same tunnel's): what the program's prefix tries tell.
    pub fn in_tries(&self, policy: &Policy, dir: Direction) -> bool {
        let Some((src, dst)) = self.addresses else {
            return false;
        };
        let (peer, local) = match dir {
            Direction::FromOutside => (src, dst),
            Direction::FromInside => (dst, src),
        };
        let specs = policy.specs();
        specs.iter().any(|t| t.peer.contains(&peer))
            && specs.iter().any(|t| t.local.contains(&local))
    }
}

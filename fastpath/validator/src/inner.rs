//! Inner-payload sanity (the README's Verdicts and reasons `bad_inner`): is the payload what the
//! GRE protocol type says? This is where the 2016–17 backscatter is caught: well-formed GRE headers
//! around payloads that are no packet of the announced type.

use crate::bogon::{is_bogon_v4, is_bogon_v6};
use crate::protocols::ProtoClass;
use crate::wire::ethernet::ethertype;
use crate::wire::gre::proto;
use crate::wire::ipv4::{protocol::GRE, Ipv4Packet};
use crate::wire::ipv6::{Ipv6Packet, Upper};
use crate::wire::vlan::untag;
use crate::wire::{be16, byte, erspan, ethernet, ppp};

/// What the classifier needs to know of a sane inner packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inner {
    /// The inner packet's IP source can never be a real sender (see [`crate::bogon`]).
    pub bogon: bool,
    /// The inner packet is GRE (other than a keepalive).
    pub nested: bool,
    /// The inner packet is a Cisco keepalive request: IP carrying GRE with protocol 0x0000.
    pub keepalive: bool,
}

const PLAIN: Inner = Inner {
    bogon: false,
    nested: false,
    keepalive: false,
};

/// Fixed NHRP header length (RFC 2332 §5.2.0.1).
const NHRP_FIXED_LEN: usize = 20;
/// Offset of `ar$pktsz` in the NHRP fixed header.
const NHRP_PKTSZ: usize = 10;
/// Offset of `ar$op.version` in the NHRP fixed header.
const NHRP_OP_VERSION: usize = 16;
/// WCCPv2 redirect header length.
const WCCP_REDIRECT_LEN: usize = 4;
/// An MPLS label stack entry (RFC 3032 §2.1): label, traffic class, S (bottom of stack), TTL.
const MPLS_ENTRY_LEN: usize = 4;
/// The S bit of a label stack entry's third byte.
const MPLS_BOTTOM: u8 = 0x01;
/// The deepest label stack walked; a deeper one is refused (`bad_inner`), as is one whose
/// bottom is not in the frame.
pub const MPLS_MAX_LABELS: usize = 16;

/// The payload is not what the protocol type says (reason `bad_inner`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotWhatItSays;

/// Checks `payload` against the protocol class. `erspan_type1` is true for ERSPAN (0x88BE)
/// without the GRE S bit, which carries no ERSPAN header. `ack_only` is a PPTP acknowledgment
/// with no payload, which is valid.
#[inline(always)]
pub fn check(
    class: ProtoClass,
    payload: &[u8],
    erspan_type1: bool,
    ack_only: bool,
) -> Result<Inner, NotWhatItSays> {
    check_class(class, payload, erspan_type1, ack_only).map_err(|()| NotWhatItSays)
}

#[inline(always)]
fn check_class(
    class: ProtoClass,
    payload: &[u8],
    erspan_type1: bool,
    ack_only: bool,
) -> Result<Inner, ()> {
    match class {
        ProtoClass::Ipv4 => ipv4(payload),
        ProtoClass::Ipv6 => ipv6(payload),
        ProtoClass::Teb => ethernet_carrier(payload),
        ProtoClass::Ppp if ack_only => Ok(PLAIN),
        ProtoClass::Ppp => ppp::protocol(payload).map(|_| PLAIN).ok_or(()),
        ProtoClass::Mpls => mpls(payload),
        ProtoClass::Erspan2 if erspan_type1 => at_least(payload, ethernet::field::HEADER_LEN),
        ProtoClass::Erspan2 => {
            let ok = payload.len() >= erspan::TYPE2_HEADER_LEN + ethernet::field::HEADER_LEN
                && erspan::version(payload) == erspan::VERSION_TYPE2;
            ok.then_some(PLAIN).ok_or(())
        }
        ProtoClass::Erspan3 => {
            let header = erspan::type3_header_len(payload);
            // A mirrored Ethernet frame (FT 0) is at least an Ethernet header, as for type II.
            let frame = if erspan::type3_frame_type(payload) == erspan::FRAME_TYPE_ETHERNET {
                ethernet::field::HEADER_LEN
            } else {
                0
            };
            let ok = payload.len() >= erspan::TYPE3_HEADER_LEN
                && erspan::version(payload) == erspan::VERSION_TYPE3
                && payload.len() >= header + frame;
            ok.then_some(PLAIN).ok_or(())
        }
        ProtoClass::Nhrp => {
            let size = usize::from(be16(payload, NHRP_PKTSZ));
            let ok = payload.len() >= NHRP_FIXED_LEN
                && byte(payload, NHRP_OP_VERSION) == 1
                && (NHRP_FIXED_LEN..=payload.len()).contains(&size);
            ok.then_some(PLAIN).ok_or(())
        }
        ProtoClass::Wccp => {
            // WCCPv1 puts the IPv4 packet right after GRE; v2 adds a 4-byte redirect header.
            // Linux ip_gre.c tells them apart by the first nibble alone, but a v2 header with A
            // set and D clear also starts with nibble 4: when that is no IPv4 packet, try v2.
            let v2 = || ipv4(payload.get(WCCP_REDIRECT_LEN..).unwrap_or(&[]));
            if byte(payload, 0) >> 4 == 4 {
                ipv4(payload).or_else(|()| v2())
            } else {
                v2()
            }
        }
        ProtoClass::Keepalive | ProtoClass::Other => Ok(PLAIN),
    }
}

#[inline(always)]
fn at_least(payload: &[u8], len: usize) -> Result<Inner, ()> {
    (payload.len() >= len).then_some(PLAIN).ok_or(())
}

/// IPv4 inside: version 4, IHL ≥ 5, header and total length within the payload.
#[inline(always)]
fn ipv4(payload: &[u8]) -> Result<Inner, ()> {
    let p = Ipv4Packet::new_checked(payload).map_err(|_| ())?;
    let hl = p.header_len();
    let total = p.total_len();
    if p.version() != 4 || hl < 20 || total < hl || total > payload.len() {
        return Err(());
    }
    // A fragment of inner GRE is nested GRE too (the far end reassembles it); only a whole
    // packet can be a keepalive.
    let body = if p.is_fragment() {
        &[][..]
    } else {
        payload.get(hl..total).unwrap_or(&[])
    };
    let (nested, keepalive) = nested_kind(p.protocol() == GRE, body);
    Ok(Inner {
        bogon: is_bogon_v4(p.source()),
        nested,
        keepalive,
    })
}

/// IPv6 inside: version 6 and the payload length within the payload, and an extension-header
/// chain the walk can follow to its end: GRE behind inner extension headers is nested GRE as
/// well, so a chain the walk cannot follow (longer than it walks, or running past the payload)
/// fails closed rather than hiding GRE from `nested = false`.
#[inline(always)]
fn ipv6(payload: &[u8]) -> Result<Inner, ()> {
    let p = Ipv6Packet::new_checked(payload).map_err(|_| ())?;
    if p.version() != 6 {
        return Err(());
    }
    let inner = p.payload().ok_or(())?;
    let (gre, body) = ipv6_upper(p.walk(inner))?;
    let (nested, keepalive) = nested_kind(gre, body);
    Ok(Inner {
        bogon: is_bogon_v6(p.source()),
        nested,
        keepalive,
    })
}

/// Whether an IPv6 extension walk ends at GRE, and the GRE bytes when they are a whole packet's
/// (a fragment's are not); `Err` when the walk could not reach the upper layer.
#[inline(always)]
fn ipv6_upper(upper: Upper<'_>) -> Result<(bool, &[u8]), ()> {
    match upper {
        Upper::Protocol {
            protocol,
            payload,
            fragment,
        } => Ok((protocol == GRE, if fragment { &[][..] } else { payload })),
        Upper::LaterFragment { protocol } => Ok((protocol == GRE, &[][..])),
        Upper::ChainTooLong | Upper::Truncated => Err(()),
    }
}

/// Transparent Ethernet bridging: at least an Ethernet header, and GRE one carrier deep — an
/// IP packet in the bridged frame (behind up to two VLAN tags) that carries GRE is nested GRE.
#[inline(always)]
fn ethernet_carrier(payload: &[u8]) -> Result<Inner, ()> {
    if payload.len() < ethernet::field::HEADER_LEN {
        return Err(());
    }
    // A tag cut short carries nothing to look into.
    let Ok((ethertype, rest)) = untag(payload) else {
        return Ok(PLAIN);
    };
    match ethertype {
        ethertype::IPV4 => Ok(carried_ip(4, rest)?),
        ethertype::IPV6 => Ok(carried_ip(6, rest)?),
        _ => Ok(PLAIN),
    }
}

/// MPLS (RFC 3032 §2.1): a label stack whose bottom entry (S set) is in the frame and is
/// followed by something, within [`MPLS_MAX_LABELS`] entries; then GRE one carrier deep — an
/// IPv4 or IPv6 packet after the stack (told by its first nibble, as label switching routers
/// do) that carries GRE is nested GRE.
#[inline(always)]
fn mpls(payload: &[u8]) -> Result<Inner, ()> {
    let mut at = 0;
    for _ in 0..MPLS_MAX_LABELS {
        let entry = payload.get(at..at + MPLS_ENTRY_LEN).ok_or(())?;
        at += MPLS_ENTRY_LEN;
        if entry[2] & MPLS_BOTTOM != 0 {
            let rest = payload.get(at..).unwrap_or(&[]);
            if rest.is_empty() {
                return Err(());
            }
            return match byte(rest, 0) >> 4 {
                4 => carried_ip(4, rest),
                6 => carried_ip(6, rest),
                _ => Ok(PLAIN),
            };
        }
    }
    Err(())
}

/// An IP packet one carrier deep (in a bridged frame or behind a label stack): not checked for
/// sanity — the carrier's own rules do not ask it to be a whole packet — only for the GRE it
/// may carry. A version-6 packet whose extension chain cannot be followed fails closed.
#[inline(always)]
fn carried_ip(version: u8, packet: &[u8]) -> Result<Inner, ()> {
    let gre = match version {
        4 => match Ipv4Packet::new_checked(packet) {
            Ok(p) if p.version() == 4 => p.protocol() == GRE,
            _ => false,
        },
        _ => match Ipv6Packet::new_checked(packet) {
            Ok(p) if p.version() == 6 => {
                let inner = p.payload().unwrap_or(&packet[packet.len().min(40)..]);
                ipv6_upper(p.walk(inner))?.0
            }
            _ => false,
        },
    };
    Ok(Inner {
        bogon: false,
        nested: gre,
        keepalive: false,
    })
}

/// (nested, keepalive) for an inner IP packet whose protocol is GRE (`gre`) with bytes `body`.
/// A Cisco keepalive is an inner GRE header with protocol type 0x0000.
#[inline(always)]
fn nested_kind(gre: bool, body: &[u8]) -> (bool, bool) {
    let keepalive = gre && body.len() >= 4 && be16(body, 2) == proto::KEEPALIVE;
    (gre & !keepalive, keepalive)
}

#[cfg(test)]
// Test packets are a few dozen bytes: their length fits the 16-bit field cut into two bytes.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    fn ipv4_packet(protocol: u8, body: &[u8]) -> Vec<u8> {
        let total = 20 + body.len();
        let mut p = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            0,
            0,
            0,
            64,
            protocol,
            0,
            0,
            10,
            0,
            0,
            1,
            10,
            0,
            0,
            2,
        ];
        p.extend_from_slice(body);
        p
    }

    #[test]
    fn ipv4_checks_and_nesting() {
        let udp = ipv4_packet(17, &[0; 8]);
        assert_eq!(
            check(ProtoClass::Ipv4, &udp, false, false),
            Ok(Inner {
                bogon: false,
                nested: false,
                keepalive: false
            })
        );
        let ka = ipv4_packet(47, &[0, 0, 0, 0]);
        assert!(
            check(ProtoClass::Ipv4, &ka, false, false)
                .unwrap()
                .keepalive
        );
        let nested = ipv4_packet(47, &[0, 0, 0x08, 0]);
        assert!(
            check(ProtoClass::Ipv4, &nested, false, false)
                .unwrap()
                .nested
        );
        let mut bad = udp.clone();
        bad[0] = 0x65;
        assert!(check(ProtoClass::Ipv4, &bad, false, false).is_err());
        assert!(check(ProtoClass::Ipv4, &udp[..27], false, false).is_err());
        assert!(check(ProtoClass::Ipv4, &[0u8; 18], false, false).is_err());
    }

    #[test]
    fn other_classes() {
        assert!(check(ProtoClass::Teb, &[0; 13], false, false).is_err());
        assert!(check(ProtoClass::Teb, &[0; 14], false, false).is_ok());
        assert!(check(ProtoClass::Ppp, &[], false, true).is_ok());
        assert!(check(ProtoClass::Ppp, &[], false, false).is_err());
        let mut e2 = [0u8; 22];
        e2[0] = 0x10;
        assert!(check(ProtoClass::Erspan2, &e2, false, false).is_ok());
        e2[0] = 0x20;
        assert!(check(ProtoClass::Erspan2, &e2, false, false).is_err());
        assert!(check(ProtoClass::Erspan2, &[0; 14], true, false).is_ok());
        let mut nhrp = [0u8; 24];
        nhrp[11] = 24;
        nhrp[16] = 1;
        assert!(check(ProtoClass::Nhrp, &nhrp, false, false).is_ok());
        nhrp[11] = 25;
        assert!(check(ProtoClass::Nhrp, &nhrp, false, false).is_err());
        let mut wccp = vec![0u8, 0, 0, 0];
        wccp.extend(ipv4_packet(6, &[0; 20]));
        assert!(check(ProtoClass::Wccp, &wccp, false, false).is_ok());
        assert!(check(ProtoClass::Wccp, &wccp[4..], false, false).is_ok());
        wccp[0] = 0x40; // WCCPv2 with the A (alternate bucket) flag
        assert!(check(ProtoClass::Wccp, &wccp, false, false).is_ok());
        assert!(check(ProtoClass::Other, &[], false, false).is_ok());
        assert!(check(ProtoClass::Keepalive, &[], false, false).is_ok());
    }
}

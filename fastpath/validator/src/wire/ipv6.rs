//! IPv6 header (RFC 8200 §3) and the walk over its extension headers (RFC 8200 §4).
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version| Traffic Class |           Flow Label                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Payload Length        |  Next Header  |   Hop Limit   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Source Address (128 bits)                     |
//! |                 Destination Address (128 bits)                |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The box walks hop-by-hop options (0), routing (43), destination options (60) and fragment (44)
//! headers, at most [`MAX_EXTENSION_HEADERS`] of them; a longer chain is refused as `bad_ip`.

use super::{be16, be16_at, byte, Truncated};

/// Byte offsets of the IPv6 header fields.
pub mod field {
    pub const VERSION: usize = 0;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const SOURCE: usize = 8;
    pub const DESTINATION: usize = 24;
    pub const HEADER_LEN: usize = 40;
}

/// Extension header numbers walked by the box.
pub use super::numbers::ipv6_next_header as next_header;

/// The longest extension-header chain the box walks.
pub use super::numbers::ipv6_next_header::MAX_EXTENSION_HEADERS;

/// A view over the fixed IPv6 header.
#[derive(Clone, Copy, Debug)]
pub struct Ipv6Packet<'a> {
    buf: &'a [u8],
    fixed: &'a [u8; field::HEADER_LEN],
}

/// Where the extension-header walk ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upper<'a> {
    /// The upper-layer protocol and its bytes (bounded by the payload length); `fragment` when a
    /// fragment header was passed on the way.
    Protocol {
        protocol: u8,
        payload: &'a [u8],
        fragment: bool,
    },
    /// A non-first fragment: what follows is not a header; `protocol` is the fragment header's
    /// next header.
    LaterFragment { protocol: u8 },
    /// The chain is longer than [`MAX_EXTENSION_HEADERS`].
    ChainTooLong,
    /// An extension header runs past the payload.
    Truncated,
}

impl<'a> Ipv6Packet<'a> {
    /// Checks that `buf` holds the fixed 40-byte header.
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, Truncated> {
        match buf.first_chunk::<{ field::HEADER_LEN }>() {
            Some(fixed) => Ok(Ipv6Packet { buf, fixed }),
            None => Err(Truncated),
        }
    }

    /// The version field (6 for IPv6).
    #[inline]
    pub fn version(&self) -> u8 {
        byte(self.fixed, field::VERSION) >> 4
    }

    /// The payload length field.
    #[inline]
    pub fn payload_len(&self) -> usize {
        usize::from(be16_at(self.fixed, field::PAYLOAD_LEN))
    }

    /// The first next-header value.
    #[inline]
    pub fn next_header(&self) -> u8 {
        byte(self.fixed, field::NEXT_HEADER)
    }

    /// The source address as a big-endian integer.
    #[inline]
    pub fn source(&self) -> u128 {
        addr(self.fixed, field::SOURCE)
    }

    /// The destination address as a big-endian integer.
    #[inline]
    pub fn destination(&self) -> u128 {
        addr(self.fixed, field::DESTINATION)
    }

    /// The payload bounded by the payload length, if the buffer holds it.
    #[inline]
    pub fn payload(&self) -> Option<&'a [u8]> {
        self.buf
            .get(field::HEADER_LEN..field::HEADER_LEN + self.payload_len())
    }

    /// Walks the extension headers of `payload` (see [`Ipv6Packet::payload`]).
    pub fn walk(&self, payload: &'a [u8]) -> Upper<'a> {
        walk_extensions(self.next_header(), payload)
    }
}

/// [`next_header::WALKED`] as a bit mask (all of them are below 64).
const WALKED_MASK: u64 = {
    let mut m = 0u64;
    let mut i = 0;
    while i < next_header::WALKED.len() {
        assert!(next_header::WALKED[i] < 64);
        m |= 1 << next_header::WALKED[i];
        i += 1;
    }
    m
};

/// True for the extension headers the box walks: a shift and a mask, not a search.
#[inline]
pub fn is_walked_extension(nh: u8) -> bool {
    (nh < 64) & (WALKED_MASK.wrapping_shr(u32::from(nh)) & 1 != 0)
}

/// Walks extension headers starting with `nh` over `payload`.
pub fn walk_extensions(mut nh: u8, payload: &[u8]) -> Upper<'_> {
    let mut at = 0usize;
    let mut fragment = false;
    let mut walked = 0usize;
    while is_walked_extension(nh) {
        if walked == MAX_EXTENSION_HEADERS {
            return Upper::ChainTooLong;
        }
        walked += 1;
        let Some(hdr) = payload.get(at..at + 8) else {
            return Upper::Truncated;
        };
        let next = byte(hdr, 0);
        if nh == next_header::FRAGMENT {
            // RFC 8200 §4.5: fixed 8 bytes; offset in the top 13 bits of bytes 2..4.
            fragment = true;
            if be16(hdr, 2) & 0xFFF8 != 0 {
                return Upper::LaterFragment { protocol: next };
            }
            at += 8;
        } else {
            // RFC 8200 §4.3–4.6: Hdr Ext Len in 8-octet units, not counting the first 8.
            at += 8 + usize::from(byte(hdr, 1)) * 8;
        }
        nh = next;
    }
    match payload.get(at..) {
        Some(rest) => Upper::Protocol {
            protocol: nh,
            payload: rest,
            fragment,
        },
        None => Upper::Truncated,
    }
}

#[inline]
fn addr(b: &[u8], at: usize) -> u128 {
    match b.get(at..at + 16) {
        Some(s) => {
            let mut a = [0u8; 16];
            a.copy_from_slice(s);
            u128::from_be_bytes(a)
        }
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_hop_by_hop_and_destination_options_to_gre() {
        // HBH (8 bytes) -> DstOpts (16 bytes) -> GRE (4 bytes)
        let mut p = vec![60, 0, 0, 0, 0, 0, 0, 0];
        p.extend_from_slice(&[47, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&[0, 0, 0x08, 0]);
        match walk_extensions(0, &p) {
            Upper::Protocol {
                protocol,
                payload,
                fragment,
            } => {
                assert_eq!(protocol, 47);
                assert_eq!(payload, &[0, 0, 8, 0]);
                assert!(!fragment);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn notes_fragments_and_stops_at_later_fragments() {
        let first = [47, 0, 0x00, 0x01, 0, 0, 0, 1, 0xAA];
        assert!(matches!(
            walk_extensions(44, &first),
            Upper::Protocol { fragment: true, .. }
        ));
        let later = [47, 0, 0x00, 0x08, 0, 0, 0, 1, 0xAA];
        assert_eq!(
            walk_extensions(44, &later),
            Upper::LaterFragment { protocol: 47 }
        );
    }

    #[test]
    fn refuses_long_chains_and_truncation() {
        let mut p = Vec::new();
        for _ in 0..5 {
            p.extend_from_slice(&[60, 0, 0, 0, 0, 0, 0, 0]);
        }
        assert_eq!(walk_extensions(60, &p), Upper::ChainTooLong);
        assert_eq!(
            walk_extensions(0, &[47, 1, 0, 0, 0, 0, 0, 0]),
            Upper::Truncated
        );
        assert_eq!(walk_extensions(0, &[47, 0, 0]), Upper::Truncated);
    }

    #[test]
    fn the_walked_mask_is_the_list() {
        for nh in 0..=255u8 {
            assert_eq!(
                is_walked_extension(nh),
                next_header::WALKED.contains(&nh),
                "{nh}"
            );
        }
    }

    #[test]
    fn reads_fixed_header() {
        let mut h = [0u8; 44];
        h[0] = 0x60;
        h[5] = 4;
        h[6] = 47;
        h[8] = 0x20;
        h[39] = 2;
        let p = Ipv6Packet::new_checked(&h).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!(p.payload_len(), 4);
        assert_eq!(p.next_header(), 47);
        assert_eq!(p.source() >> 120, 0x20);
        assert_eq!(p.destination(), 2);
        assert_eq!(p.payload().map(<[u8]>::len), Some(4));
        assert!(Ipv6Packet::new_checked(&h[..39]).is_err());
    }
}

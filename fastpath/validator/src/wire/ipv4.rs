//! IPv4 header (RFC 791 §3.1), options included.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |Version|  IHL  |Type of Service|          Total Length         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |         Identification        |Flags|      Fragment Offset    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Time to Live |    Protocol   |         Header Checksum       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                       Source Address                          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Destination Address                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                    Options                    |    Padding    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! `new_checked` only guarantees the fixed 20 bytes; the classifier then checks IHL, total length
//! and the header checksum against the buffer in that order.

use super::{be16_at, be32_at, byte, Truncated};

/// Byte offsets of the IPv4 header fields.
pub mod field {
    pub const VER_IHL: usize = 0;
    pub const TOTAL_LEN: usize = 2;
    pub const FLAGS_FRAG: usize = 6;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SOURCE: usize = 12;
    pub const DESTINATION: usize = 16;
    pub const MIN_HEADER_LEN: usize = 20;
}

/// IP protocol numbers the box looks at.
pub use super::numbers::ip_protocol as protocol;

/// More-fragments flag and fragment offset mask within the flags/fragment-offset word.
pub use super::numbers::ipv4_fragment::{MF as FLAG_MF, OFFSET_MASK as FRAG_OFFSET_MASK};

/// A view over an IPv4 header.
#[derive(Clone, Copy, Debug)]
pub struct Ipv4Packet<'a> {
    buf: &'a [u8],
    /// The fixed 20 bytes, so field reads need no bounds check.
    fixed: &'a [u8; field::MIN_HEADER_LEN],
}

impl<'a> Ipv4Packet<'a> {
    /// Checks that `buf` holds the fixed 20-byte header.
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, Truncated> {
        match buf.first_chunk::<{ field::MIN_HEADER_LEN }>() {
            Some(fixed) => Ok(Ipv4Packet { buf, fixed }),
            None => Err(Truncated),
        }
    }

    /// The version field (4 for IPv4).
    #[inline]
    pub fn version(&self) -> u8 {
        byte(self.fixed, field::VER_IHL) >> 4
    }

    /// The header length in bytes (IHL × 4).
    #[inline]
    pub fn header_len(&self) -> usize {
        usize::from(byte(self.fixed, field::VER_IHL) & 0x0F) * 4
    }

    /// The total length field.
    #[inline]
    pub fn total_len(&self) -> usize {
        usize::from(be16_at(self.fixed, field::TOTAL_LEN))
    }

    /// The flags and fragment offset word.
    #[inline]
    pub fn flags_frag(&self) -> u16 {
        be16_at(self.fixed, field::FLAGS_FRAG)
    }

    /// True for any fragment: MF set or a non-zero offset (RFC 791 §3.2).
    #[inline]
    pub fn is_fragment(&self) -> bool {
        self.flags_frag() & (FLAG_MF | FRAG_OFFSET_MASK) != 0
    }

    /// True for a fragment other than the first (a non-zero offset): its payload does not
    /// start with the upper-layer header.
    #[inline]
    pub fn is_later_fragment(&self) -> bool {
        self.flags_frag() & FRAG_OFFSET_MASK != 0
    }

    /// The protocol of the payload.
    #[inline]
    pub fn protocol(&self) -> u8 {
        byte(self.fixed, field::PROTOCOL)
    }

    /// The header checksum field.
    #[inline]
    pub fn checksum(&self) -> u16 {
        be16_at(self.fixed, field::CHECKSUM)
    }

    /// The source address as a big-endian integer.
    #[inline]
    pub fn source(&self) -> u32 {
        be32_at(self.fixed, field::SOURCE)
    }

    /// The destination address as a big-endian integer.
    #[inline]
    pub fn destination(&self) -> u32 {
        be32_at(self.fixed, field::DESTINATION)
    }

    /// The fixed 20-byte header (the whole header when IHL is 5).
    #[inline]
    pub fn fixed_header(&self) -> &'a [u8; field::MIN_HEADER_LEN] {
        self.fixed
    }

    /// The header including options, if the buffer holds it.
    #[inline]
    pub fn header(&self) -> Option<&'a [u8]> {
        self.buf.get(..self.header_len())
    }

    /// The payload as bounded by the total length (Ethernet padding excluded), if the buffer holds
    /// it and the total length is not below the header length.
    #[inline]
    pub fn payload(&self) -> Option<&'a [u8]> {
        self.buf.get(self.header_len()..self.total_len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: [u8; 24] = [
        0x45, 0x00, 0x00, 0x18, 0x12, 0x34, 0x20, 0x00, 0x40, 0x2f, 0x00, 0x00, 0xc0, 0x00, 0x02,
        0x01, 0xc6, 0x33, 0x64, 0x0a, 0xde, 0xad, 0xbe, 0xef,
    ];

    #[test]
    fn reads_fields() {
        let p = Ipv4Packet::new_checked(&HEADER).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 24);
        assert_eq!(p.protocol(), protocol::GRE);
        assert!(p.is_fragment());
        assert_eq!(p.source(), 0xc000_0201);
        assert_eq!(p.destination(), 0xc633_640a);
        assert_eq!(p.payload(), Some(&HEADER[20..24]));
    }

    #[test]
    fn refuses_short_buffer_and_bounds_payload() {
        assert!(Ipv4Packet::new_checked(&HEADER[..19]).is_err());
        let p = Ipv4Packet::new_checked(&HEADER[..22]).unwrap();
        assert_eq!(p.payload(), None);
    }
}

//! GRE header, version 0: RFC 2784 §2 with the key and sequence number extensions of RFC 2890 §2.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |C| |K|S| Reserved0       | Ver |         Protocol Type         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      Checksum (optional)      |       Reserved1 (Optional)    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         Key (optional)                        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                 Sequence Number (Optional)                    |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! The first 16 bits keep the RFC 1701 layout (C R K S s Recur Flags Ver), which is also the layout
//! of PPTP's enhanced GRE (RFC 2637 §4.1, see [`super::pptp`]). RFC 2784 §2.3: a receiver MUST
//! discard a packet with any of bits 1–5 set (R, s and the top recursion bit — K and S are bits 2
//! and 3, given meaning by RFC 2890) and MUST ignore bits 6–12 on receipt.

use super::{be16, be16_at, be32, Truncated};

/// Byte offsets of the fixed GRE fields.
pub mod field {
    pub const FLAGS_VERSION: usize = 0;
    pub const PROTOCOL: usize = 2;
    pub const BASE_LEN: usize = 4;
}

/// Bits of the flags/version word.
pub use super::numbers::gre_flags as flags;

/// Protocol types (EtherTypes) the box knows.
pub use super::numbers::gre_proto as proto;

/// A view over a version-0 GRE header.
#[derive(Clone, Copy, Debug)]
pub struct GrePacket<'a> {
    buf: &'a [u8],
    fixed: &'a [u8; field::BASE_LEN],
}

impl<'a> GrePacket<'a> {
    /// Checks that `buf` holds the 4-byte base header (flags, version, protocol type).
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, Truncated> {
        match buf.first_chunk::<{ field::BASE_LEN }>() {
            Some(fixed) => Ok(GrePacket { buf, fixed }),
            None => Err(Truncated),
        }
    }

    /// The whole GRE packet: header and payload.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// The first 16 bits: flags, recursion and version.
    #[inline]
    pub fn flags_version(&self) -> u16 {
        be16_at(self.fixed, field::FLAGS_VERSION)
    }

    /// The version (0 GRE, 1 PPTP enhanced GRE).
    #[inline]
    pub fn version(&self) -> u8 {
        (self.flags_version() & flags::VERSION) as u8
    }

    /// The protocol type of the payload.
    #[inline]
    pub fn protocol(&self) -> u16 {
        be16_at(self.fixed, field::PROTOCOL)
    }

    /// C bit.
    #[inline]
    pub fn has_checksum(&self) -> bool {
        self.flags_version() & flags::C != 0
    }

    /// K bit.
    #[inline]
    pub fn has_key(&self) -> bool {
        self.flags_version() & flags::K != 0
    }

    /// S bit.
    #[inline]
    pub fn has_sequence(&self) -> bool {
        self.flags_version() & flags::S != 0
    }

    /// Version-0 header length: 4, + 4 for each of C, K and S (RFC 2784 §2, RFC 2890 §2).
    #[inline]
    pub fn header_len(&self) -> usize {
        let fv = self.flags_version();
        4 + 4
            * (usize::from(fv & flags::C != 0)
                + usize::from(fv & flags::K != 0)
                + usize::from(fv & flags::S != 0))
    }

    /// The checksum field, if C is set and present in the buffer.
    #[inline]
    pub fn checksum(&self) -> Option<u16> {
        self.has_checksum().then(|| be16(self.buf, 4))
    }

    /// The key, if K is set (it follows the checksum word when C is set).
    #[inline]
    pub fn key(&self) -> Option<u32> {
        let at = 4 + 4 * usize::from(self.has_checksum());
        self.has_key().then(|| be32(self.buf, at))
    }

    /// The key, if K is set and the buffer holds its field (a first fragment may end before).
    #[inline]
    pub fn key_if_held(&self) -> Option<u32> {
        let at = 4 + 4 * usize::from(self.has_checksum());
        let field = self.buf.get(at..at + 4)?;
        self.has_key().then(|| be32(field, 0))
    }

    /// The sequence number, if S is set.
    #[inline]
    pub fn sequence(&self) -> Option<u32> {
        let at = 4 + 4 * (usize::from(self.has_checksum()) + usize::from(self.has_key()));
        self.has_sequence().then(|| be32(self.buf, at))
    }

    /// The payload after the version-0 header, if the buffer holds the header.
    #[inline]
    pub fn payload(&self) -> Option<&'a [u8]> {
        self.buf.get(self.header_len()..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_optional_fields_in_rfc_order() {
        // C K S set: checksum 0xBEEF, reserved1, key 1001, sequence 7, payload AA.
        let b = [
            0xB0, 0x00, 0x08, 0x00, 0xBE, 0xEF, 0, 0, 0, 0, 0x03, 0xE9, 0, 0, 0, 7, 0xAA,
        ];
        let g = GrePacket::new_checked(&b).unwrap();
        assert_eq!(g.version(), 0);
        assert_eq!(g.protocol(), proto::IPV4);
        assert_eq!(g.header_len(), 16);
        assert_eq!(g.checksum(), Some(0xBEEF));
        assert_eq!(g.key(), Some(1001));
        assert_eq!(g.sequence(), Some(7));
        assert_eq!(g.payload(), Some(&b[16..]));
    }

    #[test]
    fn key_without_checksum_sits_at_offset_four() {
        let b = [0x20, 0x00, 0x65, 0x58, 0, 0, 0, 42];
        let g = GrePacket::new_checked(&b).unwrap();
        assert_eq!(g.checksum(), None);
        assert_eq!(g.key(), Some(42));
        assert_eq!(g.sequence(), None);
        assert_eq!(g.header_len(), 8);
        assert!(GrePacket::new_checked(&b[..3]).is_err());
        assert_eq!(GrePacket::new_checked(&b[..6]).unwrap().payload(), None);
    }
}

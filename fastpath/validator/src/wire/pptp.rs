//! PPTP enhanced GRE header, version 1 (RFC 2637 §4.1).
//!
//! ```text
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |C|R|K|S|s|Recur|A| Flags | Ver |         Protocol Type         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |    Key (HW) Payload Length    |       Key (LW) Call ID        |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                  Sequence Number (Optional)                   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |               Acknowledgment Number (Optional)                |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! C, R, s, Recur and Flags MUST be 0, K MUST be 1, Ver is 1 and the protocol type is 0x880B (PPP).
//! The header is 8 bytes, + 4 if S, + 4 if A; when S is clear the acknowledgment sits in the
//! sequence slot. An ack-only packet has payload length 0.

use super::gre::flags;
use super::{be16, be32, Truncated};

/// Byte offsets of the fixed PPTP GRE fields.
pub mod field {
    pub const FLAGS_VERSION: usize = 0;
    pub const PROTOCOL: usize = 2;
    pub const PAYLOAD_LEN: usize = 4;
    pub const CALL_ID: usize = 6;
    pub const BASE_LEN: usize = 8;
}

/// A view over a version-1 GRE header.
#[derive(Clone, Copy, Debug)]
pub struct PptpPacket<'a> {
    buf: &'a [u8],
}

impl<'a> PptpPacket<'a> {
    /// Checks that `buf` holds the 8-byte base header.
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, Truncated> {
        if buf.len() < field::BASE_LEN {
            return Err(Truncated);
        }
        Ok(PptpPacket { buf })
    }

    /// The flags/version word.
    #[inline]
    pub fn flags_version(&self) -> u16 {
        be16(self.buf, field::FLAGS_VERSION)
    }

    /// The payload length field (PPP bytes after the header).
    #[inline]
    pub fn payload_len(&self) -> usize {
        usize::from(be16(self.buf, field::PAYLOAD_LEN))
    }

    /// The call ID (the low half of the key).
    #[inline]
    pub fn call_id(&self) -> u16 {
        be16(self.buf, field::CALL_ID)
    }

    /// The key as one 32-bit value (payload length, call ID), as the version-0 key is read.
    #[inline]
    pub fn key(&self) -> u32 {
        be32(self.buf, field::PAYLOAD_LEN)
    }

    /// S bit.
    #[inline]
    pub fn has_sequence(&self) -> bool {
        self.flags_version() & flags::S != 0
    }

    /// A bit.
    #[inline]
    pub fn has_ack(&self) -> bool {
        self.flags_version() & flags::A != 0
    }

    /// Header length: 8, + 4 if S, + 4 if A.
    #[inline]
    pub fn header_len(&self) -> usize {
        8 + 4 * (usize::from(self.has_sequence()) + usize::from(self.has_ack()))
    }

    /// The sequence number, if S is set.
    #[inline]
    pub fn sequence(&self) -> Option<u32> {
        self.has_sequence().then(|| be32(self.buf, 8))
    }

    /// The acknowledgment number, if A is set (in the sequence slot when S is clear).
    #[inline]
    pub fn ack(&self) -> Option<u32> {
        self.has_ack()
            .then(|| be32(self.buf, 8 + 4 * usize::from(self.has_sequence())))
    }

    /// The PPP payload, `payload_len` bytes after the header, if the buffer holds it.
    #[inline]
    pub fn payload(&self) -> Option<&'a [u8]> {
        let start = self.header_len();
        self.buf.get(start..start + self.payload_len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_sits_in_sequence_slot_without_s() {
        let b = [0x20, 0x81, 0x88, 0x0B, 0, 0, 0x12, 0x34, 0, 0, 0, 9];
        let p = PptpPacket::new_checked(&b).unwrap();
        assert_eq!(p.call_id(), 0x1234);
        assert_eq!(p.sequence(), None);
        assert_eq!(p.ack(), Some(9));
        assert_eq!(p.header_len(), 12);
        assert_eq!(p.payload(), Some(&[][..]));
    }

    #[test]
    fn sequence_and_ack_with_payload() {
        let b = [
            0x30, 0x81, 0x88, 0x0B, 0, 2, 0, 1, 0, 0, 0, 5, 0, 0, 0, 4, 0xC0, 0x21, 0xFF,
        ];
        let p = PptpPacket::new_checked(&b).unwrap();
        assert_eq!(p.sequence(), Some(5));
        assert_eq!(p.ack(), Some(4));
        assert_eq!(p.payload(), Some(&[0xC0, 0x21][..]));
        let short = PptpPacket::new_checked(&b[..17]).unwrap();
        assert_eq!(short.payload(), None);
        assert!(PptpPacket::new_checked(&b[..7]).is_err());
    }
}

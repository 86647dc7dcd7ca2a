//! Ethernet II header (IEEE 802.3 clause 3.1.1).
//!
//! ```text
//! +-------------------+-------------------+-----------+
//! | destination (6)   | source (6)        | type (2)  |
//! +-------------------+-------------------+-----------+
//! ```

use super::{be16_at, Truncated};

/// Byte ranges of the Ethernet header fields.
pub mod field {
    use core::ops::Range;
    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: usize = 12;
    pub const HEADER_LEN: usize = 14;
}

/// EtherType values the box looks at.
pub use super::numbers::ethertype;

/// A view over an Ethernet II header.
#[derive(Clone, Copy, Debug)]
pub struct EthernetFrame<'a> {
    buf: &'a [u8],
    fixed: &'a [u8; field::HEADER_LEN],
}

impl<'a> EthernetFrame<'a> {
    /// Checks that `buf` holds a whole Ethernet header.
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, Truncated> {
        match buf.first_chunk::<{ field::HEADER_LEN }>() {
            Some(fixed) => Ok(EthernetFrame { buf, fixed }),
            None => Err(Truncated),
        }
    }

    /// The destination MAC address.
    pub fn destination(&self) -> [u8; 6] {
        let mut mac = [0; 6];
        mac.copy_from_slice(self.fixed.get(field::DESTINATION).unwrap_or(&[0; 6]));
        mac
    }

    /// The source MAC address.
    pub fn source(&self) -> [u8; 6] {
        let mut mac = [0; 6];
        mac.copy_from_slice(self.fixed.get(field::SOURCE).unwrap_or(&[0; 6]));
        mac
    }

    /// The EtherType (or the TPID of a first VLAN tag).
    #[inline]
    pub fn ethertype(&self) -> u16 {
        be16_at(self.fixed, field::ETHERTYPE)
    }

    /// Everything after the 14-byte header.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.buf.get(field::HEADER_LEN..).unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_refuses_short_buffers() {
        let mut f = [0u8; 20];
        f[0..6].copy_from_slice(&[1, 2, 3, 4, 5, 6]);
        f[6..12].copy_from_slice(&[7, 8, 9, 10, 11, 12]);
        f[12] = 0x08;
        let e = EthernetFrame::new_checked(&f).unwrap();
        assert_eq!(e.destination(), [1, 2, 3, 4, 5, 6]);
        assert_eq!(e.source(), [7, 8, 9, 10, 11, 12]);
        assert_eq!(e.ethertype(), ethertype::IPV4);
        assert_eq!(e.payload().len(), 6);
        assert!(EthernetFrame::new_checked(&f[..13]).is_err());
    }
}

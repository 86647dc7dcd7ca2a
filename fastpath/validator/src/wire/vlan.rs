//! IEEE 802.1Q / 802.1ad VLAN tag: the 4 bytes that follow a TPID of 0x8100, 0x88A8 or 0x9100.
//!
//! ```text
//! +-----+---+-----------+----------------+
//! | PCP |DEI|  VID (12) | EtherType (16) |
//! +-----+---+-----------+----------------+
//! ```
//! The box walks at most two tags (QinQ); a third tag is not looked into.

use super::{be16_at, Truncated};

/// Byte offsets of the tag fields, relative to the end of the preceding TPID.
pub mod field {
    pub const TCI: usize = 0;
    pub const ETHERTYPE: usize = 2;
    pub const TAG_LEN: usize = 4;
}

/// A view over one VLAN tag (after its TPID).
#[derive(Clone, Copy, Debug)]
pub struct VlanTag<'a> {
    buf: &'a [u8],
    fixed: &'a [u8; field::TAG_LEN],
}

impl<'a> VlanTag<'a> {
    /// Checks that `buf` holds a whole tag.
    #[inline]
    pub fn new_checked(buf: &'a [u8]) -> Result<Self, Truncated> {
        match buf.first_chunk::<{ field::TAG_LEN }>() {
            Some(fixed) => Ok(VlanTag { buf, fixed }),
            None => Err(Truncated),
        }
    }

    /// The VLAN identifier (low 12 bits of the TCI).
    pub fn vid(&self) -> u16 {
        be16_at(self.fixed, field::TCI) & 0x0FFF
    }

    /// The priority code point.
    pub fn pcp(&self) -> u8 {
        (be16_at(self.fixed, field::TCI) >> 13) as u8
    }

    /// The EtherType of what follows the tag.
    #[inline]
    pub fn ethertype(&self) -> u16 {
        be16_at(self.fixed, field::ETHERTYPE)
    }

    /// Everything after the tag.
    #[inline]
    pub fn payload(&self) -> &'a [u8] {
        self.buf.get(field::TAG_LEN..).unwrap_or(&[])
    }
}

/// True for the TPIDs the box treats as VLAN tags.
#[inline]
pub fn is_vlan_tpid(ethertype: u16) -> bool {
    let [a, b, c] = super::ethernet::ethertype::VLAN_TPIDS;
    (ethertype == a) | (ethertype == b) | (ethertype == c)
}

/// The EtherType that counts and the bytes after it: past the Ethernet header and at most
/// [`MAX_VLAN_TAGS`](super::ethernet::ethertype::MAX_VLAN_TAGS) tags. A further tag's TPID is
/// returned as the EtherType: the box does not look into it. The one VLAN walk of the validator,
/// the samples and `replay`.
#[inline(always)]
pub fn untag(frame: &[u8]) -> Result<(u16, &[u8]), Truncated> {
    let eth = super::ethernet::EthernetFrame::new_checked(frame)?;
    let mut ethertype = eth.ethertype();
    let mut rest = eth.payload();
    for _ in 0..super::ethernet::ethertype::MAX_VLAN_TAGS {
        if !is_vlan_tpid(ethertype) {
            break;
        }
        let tag = VlanTag::new_checked(rest)?;
        ethertype = tag.ethertype();
        rest = tag.payload();
    }
    Ok((ethertype, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vid_pcp_and_inner_type() {
        let t = [0xA0, 0x64, 0x08, 0x00, 0xFF];
        let v = VlanTag::new_checked(&t).unwrap();
        assert_eq!(v.vid(), 100);
        assert_eq!(v.pcp(), 5);
        assert_eq!(v.ethertype(), 0x0800);
        assert_eq!(v.payload(), &[0xFF]);
        assert!(VlanTag::new_checked(&t[..3]).is_err());
        assert!(is_vlan_tpid(0x88A8) && is_vlan_tpid(0x8100) && !is_vlan_tpid(0x0800));
    }
}

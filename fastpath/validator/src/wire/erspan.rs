//! ERSPAN headers carried in GRE (draft-foschiano-erspan, as implemented by Linux `ip_gre.c`).
//!
//! Type I (protocol 0x88BE, GRE S bit clear): no ERSPAN header, the mirrored Ethernet frame follows
//! the GRE header directly. Type II (0x88BE, S set): an 8-byte header, version 1. Type III (0x22EB):
//! a 12-byte header, version 2, followed by an 8-byte platform-specific subheader when O is set.
//!
//! ```text
//! Type II:  | Ver(4) | VLAN(12) | COS(3) | En(2) | T(1) | Session ID(10) |
//!           | Reserved(12)      | Index(20)                              |
//! Type III: | Ver(4) | VLAN(12) | COS(3) | BSO(2) | T(1) | Session ID(10) |
//!           | Timestamp(32)                                              |
//!           | SGT(16) | P(1) | FT(5) | Hw ID(6) | D(1) | Gra(2) | O(1)    |
//! ```

use super::byte;

/// ERSPAN type II header length.
pub const TYPE2_HEADER_LEN: usize = 8;
/// ERSPAN type III header length without the platform subheader.
pub const TYPE3_HEADER_LEN: usize = 12;
/// Length of the optional type III platform-specific subheader.
pub const TYPE3_PLATFORM_LEN: usize = 8;
/// Version field value of type II.
pub const VERSION_TYPE2: u8 = 1;
/// Version field value of type III.
pub const VERSION_TYPE3: u8 = 2;

/// Type III frame type (FT) of a mirrored Ethernet frame; 2 is an IP packet.
pub const FRAME_TYPE_ETHERNET: u8 = 0;

/// The version field (top 4 bits) of an ERSPAN header.
#[inline]
pub fn version(header: &[u8]) -> u8 {
    byte(header, 0) >> 4
}

/// Type III header length including the platform subheader when the O bit is set.
#[inline]
pub fn type3_header_len(header: &[u8]) -> usize {
    TYPE3_HEADER_LEN + TYPE3_PLATFORM_LEN * usize::from(byte(header, 11) & 1)
}

/// The frame type (FT, 5 bits) of a type III header: what follows it.
#[inline]
pub fn type3_frame_type(header: &[u8]) -> u8 {
    (byte(header, 10) >> 2) & 0x1F
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_version_and_optional_subheader() {
        let mut h = [0u8; 12];
        h[0] = 0x20;
        assert_eq!(version(&h), VERSION_TYPE3);
        assert_eq!(type3_header_len(&h), 12);
        h[11] = 1;
        assert_eq!(type3_header_len(&h), 20);
        assert_eq!(type3_frame_type(&h), FRAME_TYPE_ETHERNET);
        h[10] = 2 << 2;
        assert_eq!(type3_frame_type(&h), 2);
        assert_eq!(version(&[0x10]), VERSION_TYPE2);
        assert_eq!(version(&[]), 0);
    }
}

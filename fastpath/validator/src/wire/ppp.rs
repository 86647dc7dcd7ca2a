//! PPP frame as carried in PPTP enhanced GRE (RFC 1661 §2, RFC 1662 §3).
//!
//! ```text
//! +----------+----------+----------+------------
//! | Address  | Control  | Protocol | Information
//! | 0xFF (1) | 0x03 (1) | 1 or 2   |
//! +----------+----------+----------+------------
//! ```
//! Address and control may be compressed away (ACFC, RFC 1661 §6.6) and the protocol field may be
//! one byte (PFC, §6.5). RFC 1661 §2: protocol numbers have an odd low byte and an even high byte,
//! so a first byte with its low bit set is a compressed one-byte protocol.

use super::byte;

/// All-stations address and unnumbered-information control (RFC 1662 §3.1).
pub const ADDRESS_CONTROL: [u8; 2] = [0xFF, 0x03];

/// The PPP protocol number of `payload`, or `None` when the payload is too short or the number is
/// not a valid PPP protocol number.
#[inline]
pub fn protocol(payload: &[u8]) -> Option<u16> {
    let at = if payload.starts_with(&ADDRESS_CONTROL) {
        2
    } else {
        0
    };
    let first = *payload.get(at)?;
    if first & 1 == 1 {
        return Some(u16::from(first));
    }
    let second = *payload.get(at + 1)?;
    (second & 1 == 1).then_some(u16::from_be_bytes([first, byte(payload, at + 1)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_full_compressed_and_rejects_invalid_numbers() {
        assert_eq!(protocol(&[0xFF, 0x03, 0xC0, 0x21]), Some(0xC021)); // LCP
        assert_eq!(protocol(&[0x00, 0x21, 0x45]), Some(0x0021)); // IPv4, ACFC
        assert_eq!(protocol(&[0x21, 0x45]), Some(0x21)); // IPv4, ACFC + PFC
        assert_eq!(protocol(&[0xFF, 0x03, 0x00, 0x20]), None); // even low byte
        assert_eq!(protocol(&[0xFF, 0x03]), None);
        assert_eq!(protocol(&[0x00]), None);
        assert_eq!(protocol(&[]), None);
    }
}

//! Typed zero-copy views over the bytes of a frame, in the manner of smoltcp's `wire` module:
//! each view checks its length once in `new_checked` and then reads big-endian fields without
//! further checks. Views never allocate and never panic on any input.

pub mod erspan;
pub mod ethernet;
pub mod gre;
pub mod ipv4;
pub mod ipv6;
pub mod numbers;
pub mod ppp;
pub mod pptp;
pub mod vlan;

/// Reads a big-endian u16 at `at`; callers have checked the length.
#[inline(always)]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(&[h, l]) => u16::from_be_bytes([h, l]),
        _ => 0,
    }
}

/// Reads a big-endian u32 at `at`; callers have checked the length.
#[inline(always)]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(&[a, c, d, e]) => u32::from_be_bytes([a, c, d, e]),
        _ => 0,
    }
}

/// Reads a byte at `at`; callers have checked the length.
#[inline(always)]
pub(crate) fn byte(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

/// Reads a big-endian u16 at a constant offset of a fixed-size header: no bounds check survives
/// inlining.
#[inline(always)]
pub(crate) fn be16_at<const N: usize>(b: &[u8; N], at: usize) -> u16 {
    match (b.get(at), b.get(at + 1)) {
        (Some(&h), Some(&l)) => u16::from_be_bytes([h, l]),
        _ => 0,
    }
}

/// Reads a big-endian u32 at a constant offset of a fixed-size header.
#[inline(always)]
pub(crate) fn be32_at<const N: usize>(b: &[u8; N], at: usize) -> u32 {
    (u32::from(be16_at(b, at)) << 16) | u32::from(be16_at(b, at + 2))
}

/// A buffer was shorter than the header it must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncated;

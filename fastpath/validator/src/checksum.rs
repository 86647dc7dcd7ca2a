//! The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of 16-bit
//! words. Used for the IPv4 header checksum (RFC 791 §3.1) and the GRE checksum (RFC 2784 §2.5),
//! which covers the GRE header and payload with no pseudo-header.

/// Ones' complement sum of `data` as big-endian 16-bit words (an odd last byte is padded with
/// zero), folded to 16 bits. A buffer whose stored checksum is right sums to `0xFFFF`.
#[inline]
pub fn ones_complement_sum(data: &[u8]) -> u16 {
    fold(wide_sum(data, u32::from_be_bytes))
}

/// Sums `data` as 32-bit words read by `word` (an odd tail padded with zeros) into a u64, whose
/// carries [`fold`] folds once at the end.
#[inline(always)]
fn wide_sum(data: &[u8], word: fn([u8; 4]) -> u32) -> u64 {
    let mut sum: u64 = 0;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        sum += u64::from(word([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut tail = [0u8; 4];
    tail[..rest.len()].copy_from_slice(rest);
    sum + u64::from(word(tail))
}

/// Folds a wide ones' complement sum to 16 bits.
#[inline]
// The last step's sum fits 16 bits (see the steps), so the cast keeps all of it.
#[allow(clippy::cast_possible_truncation)]
fn fold(sum: u64) -> u16 {
    // Fixed steps, no loop: 64 → 33 → 18 → 17 → 16 bits (each step's carry fits the next).
    let s = (sum & 0xFFFF_FFFF) + (sum >> 32);
    let s = (s & 0xFFFF) + (s >> 16);
    let s = (s & 0xFFFF) + (s >> 16);
    ((s & 0xFFFF) + (s >> 16)) as u16
}

/// True when `data` (with its checksum field in place) verifies.
///
/// The sum is taken in the machine's byte order: RFC 1071 §2(B) — the ones' complement sum is
/// independent of byte order up to a swap of its two bytes, and the verifying value 0xFFFF is its
/// own swap. That saves a byte swap per word on little-endian machines.
#[inline]
pub fn verifies(data: &[u8]) -> bool {
    sum_verifies(wide_sum(data, u32::from_ne_bytes))
}

/// [`verifies`] for a 20-byte IPv4 header without options (RFC 791 §3.1) whose first byte
/// (version and IHL) is not zero, as in every header the classifier's straight path takes:
/// its two 8-byte words and last 4-byte word added with end-around carry (RFC 1071 §2(C): the
/// carry out of a wider word goes back in at the bottom, which keeps the sum modulo 2^64 − 1,
/// a multiple of 0xFFFF), so no loop and no folding. (With a non-zero byte the sum is not
/// zero, the one sum [`sum_verifies`] has to rule out besides.)
#[inline(always)]
pub(crate) fn verifies_header(header: &[u8; 20]) -> bool {
    let (Some(a), Some(b), Some(c)) = (
        header.first_chunk::<8>(),
        header.get(8..16).and_then(|w| <[u8; 8]>::try_from(w).ok()),
        header.last_chunk::<4>(),
    ) else {
        return false;
    };
    let add = |x: u64, y: u64| {
        let (s, carry) = x.overflowing_add(y);
        // With a carry out, `s` is at most 2^64 − 2: adding it back cannot carry again.
        s + u64::from(carry)
    };
    let sum = add(
        add(u64::from_ne_bytes(*a), u64::from_ne_bytes(b)),
        u64::from(u32::from_ne_bytes(*c)),
    );
    multiple_of_ffff(sum)
}

/// True when a wide sum of words ([`wide_sum`]) folds to 0xFFFF, without folding it: folding
/// (adding the carries back, RFC 1071 §2(C)) keeps the value modulo 0xFFFF, since 2^16 is 1
/// modulo 0xFFFF, and the folded sum is 0 only when the sum is. So it folds to 0xFFFF exactly
/// when the sum is a non-zero multiple of 0xFFFF: one multiply instead of four folding steps.
/// (A byte-swapped sum is the sum times 256, which is invertible modulo 0xFFFF, so the test
/// holds in either byte order.)
#[inline(always)]
fn sum_verifies(sum: u64) -> bool {
    (sum != 0) & multiple_of_ffff(sum)
}

/// `sum % 0xFFFF == 0` as one multiply: 0xFFFF is odd, so multiplying by its inverse modulo
/// 2^64 maps the multiples of 0xFFFF, and only them, to 0 ..= u64::MAX / 0xFFFF.
#[inline(always)]
fn multiple_of_ffff(sum: u64) -> bool {
    sum.wrapping_mul(INVERSE_OF_FFFF) <= u64::MAX / 0xFFFF
}

/// The inverse of 0xFFFF modulo 2^64 (Newton's iteration, each step doubling the correct bits).
const INVERSE_OF_FFFF: u64 = {
    let mut x: u64 = 0xFFFF;
    let mut i = 0;
    while i < 6 {
        x = x.wrapping_mul(2u64.wrapping_sub(0xFFFFu64.wrapping_mul(x)));
        i += 1;
    }
    assert!(x.wrapping_mul(0xFFFF) == 1);
    x
};

/// The checksum to store in a zeroed checksum field of `data`.
pub fn compute(data: &[u8]) -> u16 {
    !ones_complement_sum(data)
}

#[cfg(test)]
// Test bytes are cut from counters on purpose; the reference's folded sum fits 16 bits.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;

    /// Straight from RFC 1071 §3: 16-bit words summed with end-around carry.
    fn reference(data: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        for pair in data.chunks(2) {
            let w = if pair.len() == 2 {
                u16::from_be_bytes([pair[0], pair[1]])
            } else {
                u16::from_be_bytes([pair[0], 0])
            };
            sum += u32::from(w);
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        sum as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        assert_eq!(
            ones_complement_sum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
    }

    #[test]
    fn matches_the_word_by_word_reference_for_all_lengths() {
        let data: Vec<u8> = (0..300u32)
            .map(|i| (i.wrapping_mul(97) ^ 0x5a) as u8)
            .collect();
        for len in 0..data.len() {
            assert_eq!(
                ones_complement_sum(&data[..len]),
                reference(&data[..len]),
                "len {len}"
            );
        }
    }

    #[test]
    fn native_order_verification_agrees_with_the_big_endian_sum() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        for len in 2..200usize {
            let mut data: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            assert_eq!(
                verifies(&data),
                ones_complement_sum(&data) == 0xFFFF,
                "len {len}"
            );
            // Make it verify: a checksum field in the first two bytes.
            data[0] = 0;
            data[1] = 0;
            let c = compute(&data);
            data[..2].copy_from_slice(&c.to_be_bytes());
            assert!(verifies(&data), "len {len}");
            data[len - 1] ^= 0x40;
            assert!(!verifies(&data), "len {len}");
        }
    }

    #[test]
    fn the_unfolded_test_agrees_with_folding() {
        let mut seed = 0x0123_4567_89ab_cdefu64;
        for round in 0..20_000u32 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut h = [0u8; 20];
            for (i, b) in h.iter_mut().enumerate() {
                *b = (seed >> (i % 8 * 8)) as u8 ^ (i as u8).wrapping_mul(31);
            }
            if round % 2 == 0 {
                // Half of them made to verify.
                h[10] = 0;
                h[11] = 0;
                let c = compute(&h);
                h[10..12].copy_from_slice(&c.to_be_bytes());
            }
            if round % 7 == 0 {
                h = [0; 20];
            }
            let folded = fold(wide_sum(&h, u32::from_ne_bytes)) == 0xFFFF;
            if h[0] != 0 {
                assert_eq!(verifies_header(&h), folded, "{h:?}");
            }
            assert_eq!(verifies(&h), folded, "{h:?}");
            assert_eq!(verifies(&h), ones_complement_sum(&h) == 0xFFFF, "{h:?}");
        }
        assert!(!verifies(&[]));
        assert!(verifies(&[0xFF, 0xFF]));
    }

    #[test]
    fn computed_checksum_verifies() {
        let mut data = vec![
            0x45, 0, 0, 20, 0, 0, 0, 0, 64, 47, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let c = compute(&data);
        data[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(verifies(&data));
        data[15] ^= 1;
        assert!(!verifies(&data));
    }
}

//! Source addresses that can never be a real sender (docs/policy.md, Bogons): IPv4
//! 0/8 ("this network", RFC 1122 §3.2.1.3), 127/8 (loopback), 224/4 (multicast, never a source),
//! 240/4 (reserved, including the limited broadcast 255.255.255.255); IPv6 :: (unspecified), ::1
//! (loopback) and ff00::/8 (multicast) — RFC 4291 §2.5.2, §2.5.3, §2.7.

/// The IPv4 bogon prefixes (address, length). The XDP program's test is generated from this
/// table (`fastpath/datapath/build.rs`).
pub const BOGONS_V4: [(u32, u8); 4] = [
    (0x0000_0000, 8),
    (0x7F00_0000, 8),
    (0xE000_0000, 4),
    (0xF000_0000, 4),
];

/// The IPv6 bogon prefixes (address, length).
pub const BOGONS_V6: [(u128, u8); 3] = [(0, 128), (1, 128), (0xFF << 120, 8)];

/// [`BOGONS_V4`] as the set of first octets they cover, a bit each: every prefix is 8 bits or
/// shorter, so the first octet alone decides (checked when this is built).
pub(crate) const BOGON_FIRST_OCTETS: [u64; 4] = {
    let mut set = [0u64; 4];
    let mut i = 0;
    while i < BOGONS_V4.len() {
        let (net, len) = BOGONS_V4[i];
        assert!(len >= 1 && len <= 8);
        let first = net >> 24;
        let mut octet = first;
        while octet < first + (1 << (8 - len)) {
            set[(octet >> 6) as usize] |= 1 << (octet & 63);
            octet += 1;
        }
        i += 1;
    }
    set
};

/// True when `src` can never be the source of a real packet: one load and a bit test.
#[inline]
pub fn is_bogon_v4(src: u32) -> bool {
    let octet = src >> 24;
    let word = BOGON_FIRST_OCTETS[(octet >> 6) as usize & 3];
    (word >> (octet & 63)) & 1 != 0
}

/// True when `src` can never be the source of a real packet.
#[inline]
pub fn is_bogon_v6(src: u128) -> bool {
    BOGONS_V6.iter().fold(false, |hit, &(net, len)| {
        hit | ((src ^ net) >> (128 - u32::from(len)) == 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn v4(s: &str) -> bool {
        is_bogon_v4(u32::from(s.parse::<Ipv4Addr>().unwrap()))
    }
    fn v6(s: &str) -> bool {
        is_bogon_v6(u128::from(s.parse::<Ipv6Addr>().unwrap()))
    }

    #[test]
    fn the_octet_set_is_the_prefix_list() {
        for octet in 0..=255u32 {
            for low in [0, 0x0012_3456, 0x00FF_FFFF] {
                let src = octet << 24 | low;
                let listed = BOGONS_V4
                    .iter()
                    .any(|&(net, len)| (src ^ net) >> (32 - u32::from(len)) == 0);
                assert_eq!(is_bogon_v4(src), listed, "{src:#010x}");
            }
        }
    }

    #[test]
    fn classifies_the_listed_ranges() {
        for b in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "224.0.0.5",
            "239.255.255.255",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(v4(b), "{b}");
        }
        for ok in [
            "1.0.0.0",
            "10.0.0.1",
            "126.255.255.255",
            "128.0.0.0",
            "192.168.1.1",
            "223.255.255.255",
        ] {
            assert!(!v4(ok), "{ok}");
        }
        for b in ["::", "::1", "ff02::1", "ff00::"] {
            assert!(v6(b), "{b}");
        }
        for ok in ["::2", "2001:db8::1", "fe80::1", "fe00::1"] {
            assert!(!v6(ok), "{ok}");
        }
    }
}

//! Every number greguard reads off the wire — EtherTypes, IP protocol numbers, IPv6 extension
//! headers, GRE flag bits and protocol types — in one file that depends on nothing.
//!
//! The wire views re-export these modules (`wire::gre::flags`, `wire::ethernet::ethertype`, …),
//! and `fastpath/datapath/build.rs` reads this same file to generate the C header of the XDP program
//! (`gg_shared.h`), so the kernel and the validator test the same bits by construction.

/// EtherType values the box looks at.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
    pub const IPV6: u16 = 0x86DD;
    /// IEEE 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// IEEE 802.1ad service VLAN tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88A8;
    /// Pre-standard QinQ tag still sent by some switches.
    pub const QINQ_LEGACY: u16 = 0x9100;
    /// The TPIDs the box treats as VLAN tags.
    pub const VLAN_TPIDS: [u16; 3] = [VLAN, QINQ, QINQ_LEGACY];
    /// VLAN tags walked before the EtherType that counts; a frame with more is not looked into.
    pub const MAX_VLAN_TAGS: usize = 2;
}

/// IP protocol numbers the box looks at (IPv4 protocol, IPv6 next header).
pub mod ip_protocol {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    /// GRE (RFC 2784).
    pub const GRE: u8 = 47;
    pub const ESP: u8 = 50;
}

/// The IPv4 flags/fragment-offset word (RFC 791 §3.1).
pub mod ipv4_fragment {
    /// More fragments.
    pub const MF: u16 = 0x2000;
    /// Fragment offset, in 8-byte units.
    pub const OFFSET_MASK: u16 = 0x1FFF;
    /// MF or an offset: the packet is a fragment.
    pub const ANY: u16 = MF | OFFSET_MASK;
}

/// IPv6 extension headers (RFC 8200 §4) the box walks to find GRE.
pub mod ipv6_next_header {
    pub const HOP_BY_HOP: u8 = 0;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const DESTINATION_OPTIONS: u8 = 60;
    pub const GRE: u8 = 47;
    /// The extension headers walked.
    pub const WALKED: [u8; 4] = [HOP_BY_HOP, ROUTING, FRAGMENT, DESTINATION_OPTIONS];
    /// The longest extension-header chain the box walks.
    pub const MAX_EXTENSION_HEADERS: usize = 4;
}

/// Bits of the GRE flags/version word (RFC 2784 §2, RFC 2890 §2, RFC 1701 §2.1, RFC 2637 §4.1).
pub mod gre_flags {
    /// Checksum present (RFC 2784 §2.2).
    pub const C: u16 = 0x8000;
    /// Routing present (RFC 1701; RFC 2784 MUST discard).
    pub const R: u16 = 0x4000;
    /// Key present (RFC 2890 §2.1).
    pub const K: u16 = 0x2000;
    /// Sequence number present (RFC 2890 §2.2).
    pub const S: u16 = 0x1000;
    /// Strict source route (RFC 1701).
    pub const STRICT: u16 = 0x0800;
    /// Recursion control (RFC 1701), 3 bits.
    pub const RECURSION: u16 = 0x0700;
    /// Acknowledgment present (RFC 2637, version 1 only).
    pub const A: u16 = 0x0080;
    /// Bits 9–12 (RFC 1701 "Flags"): must be zero in version 1; Linux drops them in version 0.
    pub const FLAGS_0078: u16 = 0x0078;
    /// Version field.
    pub const VERSION: u16 = 0x0007;
    /// RFC 2784 §2.3: bits 1–5 minus K and S (RFC 2890) — R, s and recursion bit 5.
    pub const V0_MUST_DISCARD: u16 = 0x4C00;
    /// RFC 2784 §2.3: bits 6–12, reserved, "MUST be ignored on receipt" (greguard drops them by
    /// default, as Linux does for 0x0078; `reserved_bits = "ignore"` follows the RFC).
    pub const V0_RESERVED: u16 = 0x03F8;
    /// RFC 2637 §4.1: in version 1, C, R, s, recursion and the flags bits are clear.
    pub const V1_MUST_BE_CLEAR: u16 = C | R | STRICT | RECURSION | FLAGS_0078;
}

/// GRE protocol types (EtherTypes) the box knows.
pub mod gre_proto {
    /// Cisco keepalive reply and other "no payload" uses.
    pub const KEEPALIVE: u16 = 0x0000;
    pub const IPV4: u16 = 0x0800;
    pub const IPV6: u16 = 0x86DD;
    /// Transparent Ethernet Bridging (RFC 1701 §3).
    pub const TEB: u16 = 0x6558;
    /// PPP, carried by PPTP enhanced GRE (RFC 2637 §4.1).
    pub const PPP: u16 = 0x880B;
    pub const MPLS_UNICAST: u16 = 0x8847;
    pub const MPLS_MULTICAST: u16 = 0x8848;
    /// ERSPAN type I and II.
    pub const ERSPAN2: u16 = 0x88BE;
    /// ERSPAN type III.
    pub const ERSPAN3: u16 = 0x22EB;
    /// NHRP (RFC 2332), as used by DMVPN.
    pub const NHRP: u16 = 0x2001;
    /// WCCP redirection.
    pub const WCCP: u16 = 0x883E;
}

//! A frame builder: Ethernet frames carrying GRE, and the background traffic around it (ARP, ICMP,
//! TCP, UDP, ESP), for tests, benchmarks, `greguard replay` fixtures and the lab's traffic
//! generator. It is off the hot path and allocates freely.
//!
//! Every length and checksum is right by default and every one of them can be overridden, so the
//! same builder makes the well-formed tunnel traffic and the broken frames the classifier must
//! refuse. A frame is described layer by layer — Ethernet and VLAN tags, outer IPv4 or IPv6 with
//! options or extension headers, then GRE (version 0 or PPTP version 1) with its payload or
//! another upper-layer protocol — and [`FrameBuilder::build`] writes it into a `Vec<u8>`.
//! The [`payload`] module makes the inner packets GRE carries.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use frames::{payload, FrameBuilder, Gre};
//! use validator::wire::gre::proto;
//!
//! let inner = payload::ipv4_udp(
//!     Ipv4Addr::new(10, 0, 0, 1),
//!     Ipv4Addr::new(10, 0, 0, 2),
//!     5000,
//!     53,
//!     b"query",
//! );
//! let frame = FrameBuilder::ipv4(Ipv4Addr::new(203, 0, 113, 7), Ipv4Addr::new(198, 51, 100, 10))
//!     .vlan(100)
//!     .gre(Gre::v0(proto::IPV4).key(1001).checksum(), inner)
//!     .build();
//! // Ethernet 14 + tag 4 + IPv4 20 + GRE 12 + inner IPv4 20 + UDP 8 + 5.
//! assert_eq!(frame.len(), 83);
//! ```

// A builder of test frames (a few kilobytes at most): lengths fit their fields, and where a
// value is wider than its field (a flow label's low 16 bits, a test's payload byte) keeping
// the low bits is the point.
#![allow(clippy::cast_possible_truncation)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use validator::checksum;
use validator::wire::ethernet::ethertype;
use validator::wire::gre::{flags, proto};
use validator::wire::ipv4::protocol;
use validator::wire::ipv6::next_header;

/// Destination MAC of built frames unless set otherwise (locally administered).
pub const DEFAULT_DST_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x02];
/// Source MAC of built frames unless set otherwise (locally administered).
pub const DEFAULT_SRC_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x00, 0x00, 0x01];

/// ICMPv6 (RFC 4443).
const ICMPV6: u8 = 58;
/// "Use for experimentation and testing" (RFC 3692): the protocol of an empty upper layer.
const EXPERIMENTAL: u8 = 253;

/// How a checksum field is filled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Checksum {
    /// The value that verifies.
    #[default]
    Correct,
    /// A value that never verifies: the correct one with its low bit flipped, which differs from
    /// it by one in ones' complement arithmetic (flipping all bits would give the other
    /// representation of zero where the correct value is 0x0000 or 0xFFFF).
    Wrong,
    /// Exactly this value.
    Value(u16),
}

impl Checksum {
    /// The value to store, given the one that verifies.
    pub fn resolve(self, correct: u16) -> u16 {
        match self {
            Checksum::Correct => correct,
            Checksum::Wrong => correct ^ 1,
            Checksum::Value(v) => v,
        }
    }
}

/// One IEEE 802.1Q / 802.1ad tag: the TPID and the tag control information (PCP, DEI, VID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vlan {
    pub tpid: u16,
    pub tci: u16,
}

impl Vlan {
    /// An 802.1Q customer tag (TPID 0x8100) with VLAN id `vid` and priority 0.
    pub fn dot1q(vid: u16) -> Vlan {
        Vlan {
            tpid: ethertype::VLAN,
            tci: vid & 0x0FFF,
        }
    }

    /// An 802.1ad service tag (TPID 0x88A8) with VLAN id `vid` and priority 0.
    pub fn dot1ad(vid: u16) -> Vlan {
        Vlan {
            tpid: ethertype::QINQ,
            tci: vid & 0x0FFF,
        }
    }
}

/// The outer IPv4 header (RFC 791 §3.1). `None` and `Correct` fields are computed when building.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv4Spec {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub tos: u8,
    pub identification: u16,
    pub ttl: u8,
    pub dont_fragment: bool,
    pub more_fragments: bool,
    /// Fragment offset in 8-byte units (13 bits).
    pub fragment_offset: u16,
    /// Option bytes, zero-padded (End of Option List) to a multiple of 4 when building.
    pub options: Vec<u8>,
    /// The version nibble (4 unless overridden).
    pub version: u8,
    /// The IHL nibble; `None` for the real header length.
    pub ihl: Option<u8>,
    /// The total length field; `None` for the real length.
    pub total_len: Option<u16>,
    /// The header checksum.
    pub checksum: Checksum,
    /// The protocol field; `None` for the protocol of the upper layer.
    pub protocol: Option<u8>,
}

impl Ipv4Spec {
    /// A plain header from `src` to `dst`: TTL 64, DF clear, no options.
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr) -> Ipv4Spec {
        Ipv4Spec {
            src,
            dst,
            tos: 0,
            identification: 0x1234,
            ttl: 64,
            dont_fragment: false,
            more_fragments: false,
            fragment_offset: 0,
            options: Vec::new(),
            version: 4,
            ihl: None,
            total_len: None,
            checksum: Checksum::Correct,
            protocol: None,
        }
    }
}

/// An IPv6 extension header (RFC 8200 §4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ipv6Ext {
    /// Hop-by-hop options (§4.3) with these option bytes, padded with Pad1/PadN to 8n bytes.
    HopByHop(Vec<u8>),
    /// Destination options (§4.6) with these option bytes, padded with Pad1/PadN to 8n bytes.
    DestinationOptions(Vec<u8>),
    /// Routing header (§4.4); `data` (type-specific) is zero-padded to 8n bytes.
    Routing {
        routing_type: u8,
        segments_left: u8,
        data: Vec<u8>,
    },
    /// Fragment header (§4.5); `offset` in 8-byte units (13 bits).
    Fragment { offset: u16, more: bool, id: u32 },
}

impl Ipv6Ext {
    /// An empty hop-by-hop options header (8 bytes).
    pub fn hop_by_hop() -> Ipv6Ext {
        Ipv6Ext::HopByHop(Vec::new())
    }

    /// An empty destination options header (8 bytes).
    pub fn destination_options() -> Ipv6Ext {
        Ipv6Ext::DestinationOptions(Vec::new())
    }

    /// A routing header of type 4 (segment routing) with no segments left (8 bytes).
    pub fn routing() -> Ipv6Ext {
        Ipv6Ext::Routing {
            routing_type: 4,
            segments_left: 0,
            data: Vec::new(),
        }
    }

    /// A fragment header.
    pub fn fragment(offset: u16, more: bool) -> Ipv6Ext {
        Ipv6Ext::Fragment {
            offset,
            more,
            id: 0x0bad_cafe,
        }
    }

    /// The header's protocol number, as the previous header's next header names it.
    pub fn number(&self) -> u8 {
        match self {
            Ipv6Ext::HopByHop(_) => next_header::HOP_BY_HOP,
            Ipv6Ext::DestinationOptions(_) => next_header::DESTINATION_OPTIONS,
            Ipv6Ext::Routing { .. } => next_header::ROUTING,
            Ipv6Ext::Fragment { .. } => next_header::FRAGMENT,
        }
    }

    /// Appends the header, followed by `next`, to `out`.
    fn encode(&self, next: u8, out: &mut Vec<u8>) {
        let start = out.len();
        match self {
            Ipv6Ext::HopByHop(options) | Ipv6Ext::DestinationOptions(options) => {
                out.extend_from_slice(&[next, 0]);
                out.extend_from_slice(options);
                let pad = (8 - (2 + options.len()) % 8) % 8;
                match pad {
                    0 => {}
                    1 => out.push(0), // Pad1
                    n => {
                        out.extend_from_slice(&[1, (n - 2) as u8]); // PadN
                        out.resize(out.len() + n - 2, 0);
                    }
                }
            }
            Ipv6Ext::Routing {
                routing_type,
                segments_left,
                data,
            } => {
                out.extend_from_slice(&[next, 0, *routing_type, *segments_left]);
                out.extend_from_slice(data);
                let pad = (8 - (4 + data.len()) % 8) % 8;
                out.resize(out.len() + pad, 0);
            }
            Ipv6Ext::Fragment { offset, more, id } => {
                let word = ((*offset & 0x1FFF) << 3) | u16::from(*more);
                out.extend_from_slice(&[next, 0]);
                out.extend_from_slice(&word.to_be_bytes());
                out.extend_from_slice(&id.to_be_bytes());
            }
        }
        if !matches!(self, Ipv6Ext::Fragment { .. }) {
            let units = (out.len() - start) / 8 - 1;
            out[start + 1] = u8::try_from(units).unwrap_or(u8::MAX);
        }
    }
}

/// The outer IPv6 header (RFC 8200 §3) and its extension headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ipv6Spec {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
    pub hop_limit: u8,
    /// Extension headers in order, chained by their next-header fields.
    pub extensions: Vec<Ipv6Ext>,
    /// The version nibble (6 unless overridden).
    pub version: u8,
    /// The payload length field; `None` for the real length.
    pub payload_len: Option<u16>,
    /// The last next-header value (after the extension headers); `None` for the upper layer's.
    pub protocol: Option<u8>,
}

impl Ipv6Spec {
    /// A plain header from `src` to `dst`: hop limit 64, no extension headers.
    pub fn new(src: Ipv6Addr, dst: Ipv6Addr) -> Ipv6Spec {
        Ipv6Spec {
            src,
            dst,
            traffic_class: 0,
            flow_label: 0,
            hop_limit: 64,
            extensions: Vec::new(),
            version: 6,
            payload_len: None,
            protocol: None,
        }
    }
}

/// What follows the Ethernet header and VLAN tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Network {
    Ipv4(Ipv4Spec),
    Ipv6(Ipv6Spec),
    /// An ARP request (RFC 826) for `target_ip`; the sender hardware address is the frame's
    /// source MAC.
    ArpRequest {
        sender_ip: Ipv4Addr,
        target_ip: Ipv4Addr,
    },
    /// Any other EtherType with these bytes.
    Other {
        ethertype: u16,
        payload: Vec<u8>,
    },
}

/// The two GRE header formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GreFormat {
    /// RFC 2784 with the RFC 2890 key and sequence number: 4 bytes, + 4 for each of C, K, S.
    Rfc2784,
    /// PPTP enhanced GRE (RFC 2637 §4.1): 8 bytes (payload length, call ID), + 4 for each of
    /// sequence and acknowledgment.
    Pptp,
}

/// A GRE header. The optional fields decide both the flag bits and the bytes written;
/// [`Gre::set_flags`] and [`Gre::clear_flags`] change bits without adding or removing fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gre {
    pub format: GreFormat,
    /// The version field (0 for RFC 2784, 1 for PPTP unless overridden).
    pub version: u8,
    pub protocol: u16,
    /// RFC 2784: checksum present (C bit and checksum/reserved1 word).
    pub checksum: Option<Checksum>,
    /// RFC 2784: the reserved1 field after the checksum.
    pub reserved1: u16,
    /// RFC 2784: key present (K bit and key word).
    pub key: Option<u32>,
    /// Sequence number present (S bit and sequence word), both formats.
    pub sequence: Option<u32>,
    /// PPTP: the call ID (low half of the key).
    pub call_id: u16,
    /// PPTP: acknowledgment present (A bit and ack word).
    pub ack: Option<u32>,
    /// PPTP: the payload length field; `None` for the real length.
    pub payload_len: Option<u16>,
    /// Bits ORed into the flags/version word.
    pub set_flags: u16,
    /// Bits cleared from the flags/version word (after `set_flags`).
    pub clear_flags: u16,
}

impl Gre {
    /// An RFC 2784 header (version 0) for `protocol`, no optional fields.
    pub fn v0(protocol: u16) -> Gre {
        Gre {
            format: GreFormat::Rfc2784,
            version: 0,
            protocol,
            checksum: None,
            reserved1: 0,
            key: None,
            sequence: None,
            call_id: 0,
            ack: None,
            payload_len: None,
            set_flags: 0,
            clear_flags: 0,
        }
    }

    /// A PPTP enhanced GRE header (version 1, K set, protocol PPP) for `call_id`, without sequence
    /// or acknowledgment.
    pub fn pptp(call_id: u16) -> Gre {
        Gre {
            format: GreFormat::Pptp,
            version: 1,
            protocol: proto::PPP,
            call_id,
            ..Gre::v0(proto::PPP)
        }
    }

    /// Adds a checksum that verifies.
    pub fn checksum(self) -> Gre {
        self.checksum_with(Checksum::Correct)
    }

    /// Adds a checksum filled as `checksum` says.
    pub fn checksum_with(mut self, checksum: Checksum) -> Gre {
        self.checksum = Some(checksum);
        self
    }

    /// Sets the reserved1 field that follows the checksum.
    pub fn reserved1(mut self, value: u16) -> Gre {
        self.reserved1 = value;
        self
    }

    /// Adds a key.
    pub fn key(mut self, key: u32) -> Gre {
        self.key = Some(key);
        self
    }

    /// Adds a sequence number.
    pub fn sequence(mut self, sequence: u32) -> Gre {
        self.sequence = Some(sequence);
        self
    }

    /// PPTP: adds an acknowledgment number.
    pub fn ack(mut self, ack: u32) -> Gre {
        self.ack = Some(ack);
        self
    }

    /// PPTP: overrides the payload length field.
    pub fn payload_len(mut self, len: u16) -> Gre {
        self.payload_len = Some(len);
        self
    }

    /// Sets the protocol type.
    pub fn protocol(mut self, protocol: u16) -> Gre {
        self.protocol = protocol;
        self
    }

    /// Sets the version field (the layout stays that of [`Gre::format`]).
    pub fn version(mut self, version: u8) -> Gre {
        self.version = version;
        self
    }

    /// ORs `bits` into the flags/version word, without adding fields.
    pub fn set_flags(mut self, bits: u16) -> Gre {
        self.set_flags |= bits;
        self
    }

    /// Clears `bits` from the flags/version word, without removing fields.
    pub fn clear_flags(mut self, bits: u16) -> Gre {
        self.clear_flags |= bits;
        self
    }

    /// The flags/version word as it will be written.
    pub fn flags_version(&self) -> u16 {
        let bit = |present: bool, b: u16| if present { b } else { 0 };
        let natural = match self.format {
            GreFormat::Rfc2784 => {
                bit(self.checksum.is_some(), flags::C)
                    | bit(self.key.is_some(), flags::K)
                    | bit(self.sequence.is_some(), flags::S)
            }
            GreFormat::Pptp => {
                flags::K
                    | bit(self.sequence.is_some(), flags::S)
                    | bit(self.ack.is_some(), flags::A)
            }
        };
        ((natural | self.set_flags) & !self.clear_flags & !flags::VERSION)
            | (u16::from(self.version) & flags::VERSION)
    }

    /// The header length in bytes.
    pub fn header_len(&self) -> usize {
        let words = match self.format {
            GreFormat::Rfc2784 => {
                usize::from(self.checksum.is_some())
                    + usize::from(self.key.is_some())
                    + usize::from(self.sequence.is_some())
            }
            GreFormat::Pptp => {
                1 + usize::from(self.sequence.is_some()) + usize::from(self.ack.is_some())
            }
        };
        4 + 4 * words
    }

    /// Header and payload, with the checksum (RFC 2784 §2.5: over header and payload) filled in.
    pub fn encode(&self, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.header_len() + payload.len());
        out.extend_from_slice(&self.flags_version().to_be_bytes());
        out.extend_from_slice(&self.protocol.to_be_bytes());
        let mut checksum_at = None;
        match self.format {
            GreFormat::Rfc2784 => {
                if self.checksum.is_some() {
                    checksum_at = Some(out.len());
                    out.extend_from_slice(&[0, 0]);
                    out.extend_from_slice(&self.reserved1.to_be_bytes());
                }
                if let Some(k) = self.key {
                    out.extend_from_slice(&k.to_be_bytes());
                }
                if let Some(s) = self.sequence {
                    out.extend_from_slice(&s.to_be_bytes());
                }
            }
            GreFormat::Pptp => {
                let len = self.payload_len.unwrap_or(saturate(payload.len()));
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&self.call_id.to_be_bytes());
                if let Some(s) = self.sequence {
                    out.extend_from_slice(&s.to_be_bytes());
                }
                if let Some(a) = self.ack {
                    out.extend_from_slice(&a.to_be_bytes());
                }
            }
        }
        out.extend_from_slice(payload);
        if let (Some(at), Some(mode)) = (checksum_at, self.checksum) {
            let c = mode.resolve(checksum::compute(&out));
            out[at..at + 2].copy_from_slice(&c.to_be_bytes());
        }
        out
    }
}

/// The layer above IP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upper {
    /// GRE (IP protocol 47) with its payload.
    Gre { header: Gre, payload: Vec<u8> },
    /// UDP (RFC 768) with a checksum that verifies.
    Udp {
        src_port: u16,
        dst_port: u16,
        data: Vec<u8>,
    },
    /// TCP (RFC 9293) with a 20-byte header and a checksum that verifies.
    Tcp {
        src_port: u16,
        dst_port: u16,
        seq: u32,
        ack: u32,
        /// The flag byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10).
        flags: u8,
        data: Vec<u8>,
    },
    /// An echo request: ICMP (RFC 792) over IPv4, ICMPv6 (RFC 4443) over IPv6.
    EchoRequest { id: u16, seq: u16, data: Vec<u8> },
    /// ESP (RFC 4303): SPI, sequence number, then opaque bytes.
    Esp { spi: u32, seq: u32, data: Vec<u8> },
    /// Any protocol with these bytes.
    Raw { protocol: u8, bytes: Vec<u8> },
}

/// Offsets into a built frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Start of the network layer (after Ethernet and VLAN tags).
    pub network: usize,
    /// Start of the upper layer (GRE, UDP, ...): after the IP header and extension headers.
    /// Equals `end` for non-IP frames.
    pub upper: usize,
    /// End of the network-layer bytes written; trailer and padding follow.
    pub end: usize,
}

/// An Ethernet frame described layer by layer. See the [module documentation](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameBuilder {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    /// VLAN tags, outermost first.
    pub vlans: Vec<Vlan>,
    pub network: Network,
    /// The layer above IP (ignored for non-IP frames).
    pub upper: Upper,
    /// Bytes after the network layer (outside any IP length).
    pub trailer: Vec<u8>,
    /// Zero-pad the frame to at least this length (60 is Ethernet's minimum without FCS).
    pub min_len: usize,
}

impl FrameBuilder {
    fn with_network(network: Network) -> FrameBuilder {
        FrameBuilder {
            dst_mac: DEFAULT_DST_MAC,
            src_mac: DEFAULT_SRC_MAC,
            vlans: Vec::new(),
            network,
            upper: Upper::Raw {
                protocol: EXPERIMENTAL,
                bytes: Vec::new(),
            },
            trailer: Vec::new(),
            min_len: 0,
        }
    }

    /// An IPv4 frame from `src` to `dst`. Its upper layer is empty (protocol 253) until one of
    /// [`FrameBuilder::gre`], [`FrameBuilder::udp`], ... sets it.
    pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr) -> FrameBuilder {
        Self::with_network(Network::Ipv4(Ipv4Spec::new(src, dst)))
    }

    /// An IPv6 frame from `src` to `dst`; see [`FrameBuilder::ipv4`].
    pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr) -> FrameBuilder {
        Self::with_network(Network::Ipv6(Ipv6Spec::new(src, dst)))
    }

    /// An IPv4 or IPv6 frame, by the family of the addresses.
    ///
    /// # Panics
    /// When `src` and `dst` are of different families.
    pub fn ip(src: IpAddr, dst: IpAddr) -> FrameBuilder {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => Self::ipv4(s, d),
            (IpAddr::V6(s), IpAddr::V6(d)) => Self::ipv6(s, d),
            _ => panic!("FrameBuilder::ip: {src} and {dst} are of different families"),
        }
    }

    /// A broadcast ARP request: who has `target_ip`, tell `sender_ip`.
    pub fn arp_request(sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> FrameBuilder {
        let mut b = Self::with_network(Network::ArpRequest {
            sender_ip,
            target_ip,
        });
        b.dst_mac = [0xff; 6];
        b
    }

    /// A frame of any EtherType carrying `payload`.
    pub fn ethernet(ethertype: u16, payload: impl Into<Vec<u8>>) -> FrameBuilder {
        Self::with_network(Network::Other {
            ethertype,
            payload: payload.into(),
        })
    }

    // ----- Ethernet and VLAN -----

    /// Sets both MAC addresses.
    pub fn macs(mut self, dst: [u8; 6], src: [u8; 6]) -> FrameBuilder {
        self.dst_mac = dst;
        self.src_mac = src;
        self
    }

    /// Adds an 802.1Q tag (TPID 0x8100) inside the tags already added.
    pub fn vlan(self, vid: u16) -> FrameBuilder {
        self.vlan_tag(Vlan::dot1q(vid))
    }

    /// Adds QinQ tags: an 802.1ad service tag (0x88A8) around an 802.1Q customer tag (0x8100).
    pub fn qinq(self, service_vid: u16, customer_vid: u16) -> FrameBuilder {
        self.vlan_tag(Vlan::dot1ad(service_vid))
            .vlan_tag(Vlan::dot1q(customer_vid))
    }

    /// Adds any tag inside the tags already added.
    pub fn vlan_tag(mut self, tag: Vlan) -> FrameBuilder {
        self.vlans.push(tag);
        self
    }

    /// Appends bytes after the network layer (outside any IP length, like Ethernet padding).
    pub fn trailer(mut self, bytes: impl Into<Vec<u8>>) -> FrameBuilder {
        self.trailer = bytes.into();
        self
    }

    /// Zero-pads the frame to at least `len` bytes.
    pub fn pad_to(mut self, len: usize) -> FrameBuilder {
        self.min_len = len;
        self
    }

    // ----- IP, either family -----

    /// Sets the IPv4 TTL or the IPv6 hop limit.
    ///
    /// # Panics
    /// On a non-IP frame, as do all IP setters.
    pub fn ttl(mut self, ttl: u8) -> FrameBuilder {
        match &mut self.network {
            Network::Ipv4(ip) => ip.ttl = ttl,
            Network::Ipv6(ip) => ip.hop_limit = ttl,
            _ => panic!("ttl: not an IP frame"),
        }
        self
    }

    /// Overrides the IPv4 protocol or the IPv6 last next header (after extension headers).
    pub fn ip_protocol(mut self, protocol: u8) -> FrameBuilder {
        match &mut self.network {
            Network::Ipv4(ip) => ip.protocol = Some(protocol),
            Network::Ipv6(ip) => ip.protocol = Some(protocol),
            _ => panic!("ip_protocol: not an IP frame"),
        }
        self
    }

    /// Overrides the IPv4 total length or the IPv6 payload length.
    pub fn ip_length(mut self, len: u16) -> FrameBuilder {
        match &mut self.network {
            Network::Ipv4(ip) => ip.total_len = Some(len),
            Network::Ipv6(ip) => ip.payload_len = Some(len),
            _ => panic!("ip_length: not an IP frame"),
        }
        self
    }

    /// Overrides the version nibble.
    pub fn ip_version(mut self, version: u8) -> FrameBuilder {
        match &mut self.network {
            Network::Ipv4(ip) => ip.version = version,
            Network::Ipv6(ip) => ip.version = version,
            _ => panic!("ip_version: not an IP frame"),
        }
        self
    }

    // ----- IPv4 only -----

    fn v4(&mut self, what: &str) -> &mut Ipv4Spec {
        match &mut self.network {
            Network::Ipv4(ip) => ip,
            _ => panic!("{what}: not an IPv4 frame"),
        }
    }

    fn v6(&mut self, what: &str) -> &mut Ipv6Spec {
        match &mut self.network {
            Network::Ipv6(ip) => ip,
            _ => panic!("{what}: not an IPv6 frame"),
        }
    }

    /// Sets how the IPv4 header checksum is filled.
    ///
    /// # Panics
    /// On a frame that is not IPv4, as do all `ipv4_*` setters.
    pub fn ip_checksum(mut self, checksum: Checksum) -> FrameBuilder {
        self.v4("ip_checksum").checksum = checksum;
        self
    }

    /// Overrides the IPv4 IHL nibble.
    pub fn ipv4_ihl(mut self, ihl: u8) -> FrameBuilder {
        self.v4("ipv4_ihl").ihl = Some(ihl);
        self
    }

    /// Sets the IPv4 options (zero-padded to a multiple of 4 bytes).
    ///
    /// # Panics
    /// When there are more than 40 bytes of options.
    pub fn ipv4_options(mut self, options: impl Into<Vec<u8>>) -> FrameBuilder {
        let options = options.into();
        assert!(options.len() <= 40, "IPv4 options are at most 40 bytes");
        self.v4("ipv4_options").options = options;
        self
    }

    /// Makes the IPv4 packet a fragment: MF flag and offset in 8-byte units.
    pub fn ipv4_fragment(mut self, more_fragments: bool, offset: u16) -> FrameBuilder {
        let ip = self.v4("ipv4_fragment");
        ip.more_fragments = more_fragments;
        ip.fragment_offset = offset & 0x1FFF;
        self
    }

    /// Sets the IPv4 don't-fragment flag.
    pub fn ipv4_dont_fragment(mut self, df: bool) -> FrameBuilder {
        self.v4("ipv4_dont_fragment").dont_fragment = df;
        self
    }

    /// Sets the IPv4 identification.
    pub fn ipv4_id(mut self, id: u16) -> FrameBuilder {
        self.v4("ipv4_id").identification = id;
        self
    }

    // ----- IPv6 only -----

    /// Appends an IPv6 extension header to the chain.
    ///
    /// # Panics
    /// On a frame that is not IPv6.
    pub fn ipv6_ext(mut self, ext: Ipv6Ext) -> FrameBuilder {
        self.v6("ipv6_ext").extensions.push(ext);
        self
    }

    // ----- the upper layer -----

    /// GRE with `payload` (make it with [`payload`]).
    pub fn gre(mut self, header: Gre, payload: impl Into<Vec<u8>>) -> FrameBuilder {
        self.upper = Upper::Gre {
            header,
            payload: payload.into(),
        };
        self
    }

    /// UDP.
    pub fn udp(mut self, src_port: u16, dst_port: u16, data: impl Into<Vec<u8>>) -> FrameBuilder {
        self.upper = Upper::Udp {
            src_port,
            dst_port,
            data: data.into(),
        };
        self
    }

    /// TCP with the given flag byte (e.g. 0x02 for SYN), sequence 1, ack 0 (or 1 with ACK).
    pub fn tcp(
        mut self,
        src_port: u16,
        dst_port: u16,
        flags: u8,
        data: impl Into<Vec<u8>>,
    ) -> FrameBuilder {
        self.upper = Upper::Tcp {
            src_port,
            dst_port,
            seq: 1,
            ack: u32::from(flags & 0x10 != 0),
            flags,
            data: data.into(),
        };
        self
    }

    /// An ICMP (IPv4) or ICMPv6 (IPv6) echo request.
    pub fn echo_request(mut self, id: u16, seq: u16, data: impl Into<Vec<u8>>) -> FrameBuilder {
        self.upper = Upper::EchoRequest {
            id,
            seq,
            data: data.into(),
        };
        self
    }

    /// ESP.
    pub fn esp(mut self, spi: u32, seq: u32, data: impl Into<Vec<u8>>) -> FrameBuilder {
        self.upper = Upper::Esp {
            spi,
            seq,
            data: data.into(),
        };
        self
    }

    /// Any protocol with these bytes.
    pub fn raw(mut self, protocol: u8, bytes: impl Into<Vec<u8>>) -> FrameBuilder {
        self.upper = Upper::Raw {
            protocol,
            bytes: bytes.into(),
        };
        self
    }

    // ----- output -----

    /// The frame.
    pub fn build(&self) -> Vec<u8> {
        self.build_with_layout().0
    }

    /// The frame and where its layers start.
    pub fn build_with_layout(&self) -> (Vec<u8>, Layout) {
        let mut out = Vec::new();
        let layout = self.build_into(&mut out);
        (out, layout)
    }

    /// Replaces the contents of `out` with the frame (reusing its allocation).
    pub fn build_into(&self, out: &mut Vec<u8>) -> Layout {
        out.clear();
        out.extend_from_slice(&self.dst_mac);
        out.extend_from_slice(&self.src_mac);
        for tag in &self.vlans {
            out.extend_from_slice(&tag.tpid.to_be_bytes());
            out.extend_from_slice(&tag.tci.to_be_bytes());
        }
        out.extend_from_slice(&self.network_ethertype().to_be_bytes());
        let network = out.len();
        let (packet, upper) = self.network_packet();
        out.extend_from_slice(&packet);
        let end = out.len();
        out.extend_from_slice(&self.trailer);
        if out.len() < self.min_len {
            out.resize(self.min_len, 0);
        }
        Layout {
            network,
            upper: network + upper,
            end,
        }
    }

    /// Only the network-layer packet (no Ethernet header, tags, trailer or padding): an inner
    /// IP packet for GRE to carry.
    pub fn build_ip(&self) -> Vec<u8> {
        self.network_packet().0
    }

    fn network_ethertype(&self) -> u16 {
        match &self.network {
            Network::Ipv4(_) => ethertype::IPV4,
            Network::Ipv6(_) => ethertype::IPV6,
            Network::ArpRequest { .. } => ethertype::ARP,
            Network::Other { ethertype, .. } => *ethertype,
        }
    }

    /// The network-layer bytes and the offset of the upper layer within them.
    fn network_packet(&self) -> (Vec<u8>, usize) {
        match &self.network {
            Network::Ipv4(ip) => {
                let (proto, upper) = self.upper_bytes(Pseudo::V4(ip.src, ip.dst));
                let mut p = ipv4_header(ip, upper.len(), ip.protocol.unwrap_or(proto));
                let at = p.len();
                p.extend_from_slice(&upper);
                (p, at)
            }
            Network::Ipv6(ip) => {
                let (proto, upper) = self.upper_bytes(Pseudo::V6(ip.src, ip.dst));
                let mut p = ipv6_header_and_extensions(ip, upper.len(), proto);
                let at = p.len();
                p.extend_from_slice(&upper);
                (p, at)
            }
            Network::ArpRequest {
                sender_ip,
                target_ip,
            } => {
                let p = payload::arp_request(self.src_mac, *sender_ip, *target_ip);
                let at = p.len();
                (p, at)
            }
            Network::Other { payload, .. } => (payload.clone(), payload.len()),
        }
    }

    /// The upper layer's protocol number and bytes, checksums filled in.
    fn upper_bytes(&self, pseudo: Pseudo) -> (u8, Vec<u8>) {
        match &self.upper {
            Upper::Gre { header, payload } => (protocol::GRE, header.encode(payload)),
            Upper::Udp {
                src_port,
                dst_port,
                data,
            } => {
                let mut u = Vec::with_capacity(8 + data.len());
                u.extend_from_slice(&src_port.to_be_bytes());
                u.extend_from_slice(&dst_port.to_be_bytes());
                u.extend_from_slice(&saturate(8 + data.len()).to_be_bytes());
                u.extend_from_slice(&[0, 0]);
                u.extend_from_slice(data);
                let c = match pseudo.checksum(protocol::UDP, &u) {
                    0 => 0xFFFF, // RFC 768: zero means "no checksum"
                    c => c,
                };
                u[6..8].copy_from_slice(&c.to_be_bytes());
                (protocol::UDP, u)
            }
            Upper::Tcp {
                src_port,
                dst_port,
                seq,
                ack,
                flags,
                data,
            } => {
                let mut t = Vec::with_capacity(20 + data.len());
                t.extend_from_slice(&src_port.to_be_bytes());
                t.extend_from_slice(&dst_port.to_be_bytes());
                t.extend_from_slice(&seq.to_be_bytes());
                t.extend_from_slice(&ack.to_be_bytes());
                t.extend_from_slice(&[5 << 4, *flags, 0xFF, 0xFF, 0, 0, 0, 0]);
                t.extend_from_slice(data);
                let c = pseudo.checksum(protocol::TCP, &t);
                t[16..18].copy_from_slice(&c.to_be_bytes());
                (protocol::TCP, t)
            }
            Upper::EchoRequest { id, seq, data } => {
                let (proto, ty) = match pseudo {
                    Pseudo::V6(..) => (ICMPV6, 128),
                    Pseudo::V4(..) => (protocol::ICMP, 8),
                };
                let mut m = vec![ty, 0, 0, 0];
                m.extend_from_slice(&id.to_be_bytes());
                m.extend_from_slice(&seq.to_be_bytes());
                m.extend_from_slice(data);
                // ICMPv6 covers a pseudo-header (RFC 4443 §2.3); ICMP over IPv4 does not.
                let c = match pseudo {
                    Pseudo::V6(..) => pseudo.checksum(proto, &m),
                    Pseudo::V4(..) => checksum::compute(&m),
                };
                m[2..4].copy_from_slice(&c.to_be_bytes());
                (proto, m)
            }
            Upper::Esp { spi, seq, data } => {
                let mut e = spi.to_be_bytes().to_vec();
                e.extend_from_slice(&seq.to_be_bytes());
                e.extend_from_slice(data);
                (protocol::ESP, e)
            }
            Upper::Raw { protocol, bytes } => (*protocol, bytes.clone()),
        }
    }
}

/// The addresses of a transport checksum's pseudo-header.
#[derive(Clone, Copy)]
enum Pseudo {
    V4(Ipv4Addr, Ipv4Addr),
    V6(Ipv6Addr, Ipv6Addr),
}

impl Pseudo {
    /// The checksum of `segment` (its checksum field zero) under this pseudo-header
    /// (RFC 768, RFC 9293 §3.1, RFC 8200 §8.1).
    fn checksum(self, protocol: u8, segment: &[u8]) -> u16 {
        let mut data = Vec::with_capacity(40 + segment.len());
        match self {
            Pseudo::V4(s, d) => {
                data.extend_from_slice(&s.octets());
                data.extend_from_slice(&d.octets());
                data.extend_from_slice(&[0, protocol]);
                data.extend_from_slice(&saturate(segment.len()).to_be_bytes());
            }
            Pseudo::V6(s, d) => {
                data.extend_from_slice(&s.octets());
                data.extend_from_slice(&d.octets());
                data.extend_from_slice(&(segment.len() as u32).to_be_bytes());
                data.extend_from_slice(&[0, 0, 0, protocol]);
            }
        }
        data.extend_from_slice(segment);
        checksum::compute(&data)
    }
}

/// A length for a 16-bit field; lengths beyond 65535 saturate.
fn saturate(len: usize) -> u16 {
    u16::try_from(len).unwrap_or(u16::MAX)
}

fn ipv4_header(ip: &Ipv4Spec, upper_len: usize, protocol: u8) -> Vec<u8> {
    let mut options = ip.options.clone();
    options.resize(options.len().next_multiple_of(4), 0);
    let header_len = 20 + options.len();
    let ihl = ip.ihl.unwrap_or((header_len / 4) as u8);
    let total = ip.total_len.unwrap_or(saturate(header_len + upper_len));
    let frag = (ip.fragment_offset & 0x1FFF)
        | if ip.dont_fragment { 0x4000 } else { 0 }
        | if ip.more_fragments { 0x2000 } else { 0 };
    let mut h = Vec::with_capacity(header_len);
    h.push((ip.version << 4) | (ihl & 0x0F));
    h.push(ip.tos);
    h.extend_from_slice(&total.to_be_bytes());
    h.extend_from_slice(&ip.identification.to_be_bytes());
    h.extend_from_slice(&frag.to_be_bytes());
    h.extend_from_slice(&[ip.ttl, protocol, 0, 0]);
    h.extend_from_slice(&ip.src.octets());
    h.extend_from_slice(&ip.dst.octets());
    h.extend_from_slice(&options);
    let c = ip.checksum.resolve(checksum::compute(&h));
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h
}

fn ipv6_header_and_extensions(ip: &Ipv6Spec, upper_len: usize, upper_proto: u8) -> Vec<u8> {
    let last = ip.protocol.unwrap_or(upper_proto);
    let mut exts = Vec::new();
    for (i, ext) in ip.extensions.iter().enumerate() {
        let next = ip.extensions.get(i + 1).map_or(last, Ipv6Ext::number);
        ext.encode(next, &mut exts);
    }
    let first = ip.extensions.first().map_or(last, Ipv6Ext::number);
    let payload_len = ip.payload_len.unwrap_or(saturate(exts.len() + upper_len));
    let flow = ip.flow_label & 0x000F_FFFF;
    let mut h = Vec::with_capacity(40 + exts.len());
    h.push((ip.version << 4) | (ip.traffic_class >> 4));
    h.push((ip.traffic_class << 4) | (flow >> 16) as u8);
    h.extend_from_slice(&(flow as u16).to_be_bytes());
    h.extend_from_slice(&payload_len.to_be_bytes());
    h.extend_from_slice(&[first, ip.hop_limit]);
    h.extend_from_slice(&ip.src.octets());
    h.extend_from_slice(&ip.dst.octets());
    h.extend_from_slice(&exts);
    h
}

/// Payloads for GRE to carry, and the small packets inside them. Each returns the bytes that
/// follow the GRE header.
pub mod payload {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::FrameBuilder;
    use validator::checksum;
    use validator::wire::ipv4::protocol;

    /// An IPv4 packet (no options, checksum right) carrying `body` as `protocol`.
    pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, body: &[u8]) -> Vec<u8> {
        FrameBuilder::ipv4(src, dst).raw(protocol, body).build_ip()
    }

    /// An IPv4 packet carrying UDP.
    pub fn ipv4_udp(
        src: Ipv4Addr,
        dst: Ipv4Addr,
        src_port: u16,
        dst_port: u16,
        data: &[u8],
    ) -> Vec<u8> {
        FrameBuilder::ipv4(src, dst)
            .udp(src_port, dst_port, data)
            .build_ip()
    }

    /// An IPv6 packet carrying `body` as `next_header`.
    pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, body: &[u8]) -> Vec<u8> {
        FrameBuilder::ipv6(src, dst)
            .raw(next_header, body)
            .build_ip()
    }

    /// An IPv6 packet carrying UDP.
    pub fn ipv6_udp(
        src: Ipv6Addr,
        dst: Ipv6Addr,
        src_port: u16,
        dst_port: u16,
        data: &[u8],
    ) -> Vec<u8> {
        FrameBuilder::ipv6(src, dst)
            .udp(src_port, dst_port, data)
            .build_ip()
    }

    /// An Ethernet II frame (for TEB and ERSPAN): MACs, EtherType and `body`, no FCS.
    pub fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16, body: &[u8]) -> Vec<u8> {
        let mut f = Vec::with_capacity(14 + body.len());
        f.extend_from_slice(&dst);
        f.extend_from_slice(&src);
        f.extend_from_slice(&ethertype.to_be_bytes());
        f.extend_from_slice(body);
        f
    }

    /// An ERSPAN type II header (version 1; 8 bytes) followed by the mirrored `frame`.
    /// Send it as protocol 0x88BE with the GRE S bit set; type I is the bare frame without S.
    pub fn erspan2(session_id: u16, vlan: u16, index: u32, frame: &[u8]) -> Vec<u8> {
        let mut p = Vec::with_capacity(8 + frame.len());
        p.extend_from_slice(&((1 << 12) | (vlan & 0x0FFF)).to_be_bytes());
        p.extend_from_slice(&(session_id & 0x03FF).to_be_bytes());
        p.extend_from_slice(&(index & 0x000F_FFFF).to_be_bytes());
        p.extend_from_slice(frame);
        p
    }

    /// An ERSPAN type III header (version 2; 12 bytes, + 8 with the platform-specific
    /// subheader, whose presence sets the O bit) followed by the mirrored `frame`.
    /// Send it as protocol 0x22EB.
    pub fn erspan3(
        session_id: u16,
        timestamp: u32,
        platform: Option<[u8; 8]>,
        frame: &[u8],
    ) -> Vec<u8> {
        let mut p = Vec::with_capacity(20 + frame.len());
        p.extend_from_slice(&(2u16 << 12).to_be_bytes());
        p.extend_from_slice(&(session_id & 0x03FF).to_be_bytes());
        p.extend_from_slice(&timestamp.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, u8::from(platform.is_some())]);
        if let Some(sub) = platform {
            p.extend_from_slice(&sub);
        }
        p.extend_from_slice(frame);
        p
    }

    /// A PPP frame (RFC 1661 §2) with a two-byte `protocol` field, after FF 03 (address and
    /// control, RFC 1662 §3.1) unless `address_control` is false.
    pub fn ppp(protocol: u16, information: &[u8], address_control: bool) -> Vec<u8> {
        let mut p = Vec::with_capacity(4 + information.len());
        if address_control {
            p.extend_from_slice(&validator::wire::ppp::ADDRESS_CONTROL);
        }
        p.extend_from_slice(&protocol.to_be_bytes());
        p.extend_from_slice(information);
        p
    }

    /// An NHRP packet (RFC 2332 §5.2.0.1): the 20-byte fixed header (IPv4 over IEEE 802,
    /// version 1, packet size and checksum right) followed by `body`.
    pub fn nhrp(op_type: u8, body: &[u8]) -> Vec<u8> {
        let size = super::saturate(20 + body.len());
        let mut p = vec![
            0x00, 0x06, // ar$afn: IEEE 802
            0x08, 0x00, // ar$pro.type: IPv4
            0, 0, 0, 0, 0,    // ar$pro.snap
            0xFF, // ar$hopcnt
        ];
        p.extend_from_slice(&size.to_be_bytes()); // ar$pktsz
        p.extend_from_slice(&[0, 0]); // ar$chksum
        p.extend_from_slice(&[0, 0]); // ar$extoff: no extensions
        p.extend_from_slice(&[1, op_type, 0, 0]); // version, type, shtl, sstl
        p.extend_from_slice(body);
        let c = checksum::compute(&p);
        p[12..14].copy_from_slice(&c.to_be_bytes());
        p
    }

    /// WCCPv2 redirect header flag: dynamic service.
    pub const WCCP_D: u8 = 0x80;
    /// WCCPv2 redirect header flag: alternate bucket used.
    pub const WCCP_A: u8 = 0x40;

    /// A WCCPv2 redirect: the 4-byte redirect header (`flags` of [`WCCP_D`] and [`WCCP_A`],
    /// `service_id`, buckets 0) followed by the redirected IPv4 packet. WCCPv1 carries the IPv4
    /// packet bare.
    pub fn wccp_v2(flags: u8, service_id: u8, ipv4_packet: &[u8]) -> Vec<u8> {
        let mut p = vec![flags & 0xC0, service_id, 0, 0];
        p.extend_from_slice(ipv4_packet);
        p
    }

    /// One MPLS label stack entry (RFC 3032), bottom of stack, followed by `body`.
    pub fn mpls(label: u32, ttl: u8, body: &[u8]) -> Vec<u8> {
        let entry = ((label & 0x000F_FFFF) << 12) | (1 << 8) | u32::from(ttl);
        let mut p = entry.to_be_bytes().to_vec();
        p.extend_from_slice(body);
        p
    }

    /// The payload of a Cisco GRE keepalive request sent from `tunnel_src` to `tunnel_dst`: an
    /// IPv4 packet from `tunnel_dst` back to `tunnel_src` carrying a bare GRE header with
    /// protocol 0x0000, which the far end decapsulates and routes back as the reply. Send it
    /// as GRE protocol 0x0800.
    pub fn keepalive_request(tunnel_src: Ipv4Addr, tunnel_dst: Ipv4Addr) -> Vec<u8> {
        ipv4(tunnel_dst, tunnel_src, protocol::GRE, &[0, 0, 0, 0])
    }

    /// An ARP request (RFC 826) for Ethernet and IPv4: who has `target_ip`, tell `sender_ip`.
    pub fn arp_request(sender_mac: [u8; 6], sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Vec<u8> {
        let mut p = vec![0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01];
        p.extend_from_slice(&sender_mac);
        p.extend_from_slice(&sender_ip.octets());
        p.extend_from_slice(&[0; 6]);
        p.extend_from_slice(&target_ip.octets());
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{
        Ipv4Header, Ipv6ExtensionSlice, LinkExtSlice, LinkSlice, NetSlice, SlicedPacket,
        TransportSlice,
    };

    const PEER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
    const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
    const PEER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 7);
    const LOCAL6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 10);
    const IN_SRC: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
    const IN_DST: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 1);

    /// RFC 1071 word by word, written out again here so the builder is not checked against
    /// itself.
    fn sum(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for pair in data.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            let lo = pair.get(1).map_or(0, |&b| u32::from(b));
            s += hi | lo;
            s = (s & 0xFFFF) + (s >> 16);
        }
        s as u16
    }

    fn ipv4_checksum_verifies(ip: &etherparse::Ipv4Slice<'_>) -> bool {
        let h: Ipv4Header = ip.header().to_header();
        h.calc_header_checksum() == ip.header().header_checksum()
    }

    fn udp_inner() -> Vec<u8> {
        payload::ipv4_udp(IN_SRC, IN_DST, 4000, 53, b"hello")
    }

    #[test]
    fn untagged_ipv4_gre_parses_and_verifies() {
        let inner = udp_inner();
        let (f, l) = FrameBuilder::ipv4(PEER, LOCAL)
            .gre(
                Gre::v0(proto::IPV4).checksum().key(1001).sequence(7),
                inner.clone(),
            )
            .build_with_layout();
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        match p.link {
            Some(LinkSlice::Ethernet2(e)) => {
                assert_eq!(e.destination(), DEFAULT_DST_MAC);
                assert_eq!(e.source(), DEFAULT_SRC_MAC);
                assert_eq!(e.ether_type().0, 0x0800);
            }
            other => panic!("{other:?}"),
        }
        assert!(p.link_exts.is_empty());
        let Some(NetSlice::Ipv4(ip)) = &p.net else {
            panic!("{:?}", p.net)
        };
        assert!(ipv4_checksum_verifies(ip));
        assert_eq!(ip.header().source_addr(), PEER);
        assert_eq!(ip.header().destination_addr(), LOCAL);
        assert_eq!(ip.header().protocol().0, 47);
        assert_eq!(usize::from(ip.header().total_len()), f.len() - 14);
        assert!(!ip.is_payload_fragmented());
        let gre = ip.payload().payload;
        assert_eq!(gre, &f[l.upper..l.end]);
        assert_eq!((l.network, l.upper, l.end), (14, 34, f.len()));
        assert_eq!(&gre[..4], &[0xB0, 0x00, 0x08, 0x00]);
        assert_eq!(&gre[8..12], &1001u32.to_be_bytes());
        assert_eq!(&gre[12..16], &7u32.to_be_bytes());
        assert_eq!(&gre[16..], &inner[..]);
        assert_eq!(sum(gre), 0xFFFF, "GRE checksum verifies");
    }

    #[test]
    fn gre_checksum_verifies_for_odd_lengths_and_wrong_one_does_not() {
        for len in 0..40 {
            let body: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let good = Gre::v0(0x1234).checksum().encode(&body);
            assert_eq!(sum(&good), 0xFFFF, "len {len}");
            let bad = Gre::v0(0x1234).checksum_with(Checksum::Wrong).encode(&body);
            assert_ne!(sum(&bad), 0xFFFF, "len {len}");
            assert_eq!(good.len(), 8 + len);
        }
        // An all-zero packet has checksum 0xFFFF; "wrong" must still not verify.
        let zero = Gre::v0(0).checksum_with(Checksum::Wrong).encode(&[0; 4]);
        assert_ne!(sum(&zero), 0xFFFF);
        let fixed = Gre::v0(0)
            .checksum_with(Checksum::Value(0xBEEF))
            .encode(&[]);
        assert_eq!(&fixed[4..6], &[0xBE, 0xEF]);
    }

    #[test]
    fn dot1q_and_qinq_tags_parse() {
        let f = FrameBuilder::ipv4(PEER, LOCAL)
            .vlan(100)
            .gre(Gre::v0(proto::IPV4), udp_inner())
            .build();
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        assert_eq!(p.link_exts.len(), 1);
        let LinkExtSlice::Vlan(v) = &p.link_exts[0] else {
            panic!()
        };
        assert_eq!(v.vlan_identifier().value(), 100);
        assert_eq!(&f[12..14], &[0x81, 0x00]);
        assert!(matches!(p.net, Some(NetSlice::Ipv4(_))));

        let f = FrameBuilder::ipv6(PEER6, LOCAL6)
            .qinq(200, 300)
            .gre(Gre::v0(proto::IPV4), udp_inner())
            .build();
        assert_eq!(&f[12..14], &[0x88, 0xA8]);
        assert_eq!(&f[16..18], &[0x81, 0x00]);
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let vids: Vec<u16> = p
            .link_exts
            .iter()
            .map(|e| match e {
                LinkExtSlice::Vlan(v) => v.vlan_identifier().value(),
                _ => panic!(),
            })
            .collect();
        assert_eq!(vids, vec![200, 300]);
        let Some(NetSlice::Ipv6(ip)) = &p.net else {
            panic!()
        };
        assert_eq!(ip.header().source_addr(), PEER6);
        assert_eq!(ip.payload().ip_number.0, 47);
    }

    #[test]
    fn ipv4_options_fragments_and_overrides() {
        let f = FrameBuilder::ipv4(PEER, LOCAL)
            .ipv4_options([0x94, 0x04, 0, 0, 0x01]) // router alert, NOP (padded to 8)
            .ipv4_fragment(true, 0)
            .ipv4_id(0x4242)
            .ttl(9)
            .gre(Gre::v0(proto::IPV4), udp_inner())
            .build();
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &p.net else {
            panic!()
        };
        let h = ip.header();
        assert_eq!(h.ihl(), 7);
        assert_eq!(h.options(), &[0x94, 0x04, 0, 0, 0x01, 0, 0, 0]);
        assert!(h.more_fragments());
        assert!(!h.dont_fragment());
        assert_eq!(h.identification(), 0x4242);
        assert_eq!(h.ttl(), 9);
        assert!(ipv4_checksum_verifies(ip));

        let f = FrameBuilder::ipv4(PEER, LOCAL)
            .ipv4_fragment(false, 185)
            .ipv4_dont_fragment(true)
            .raw(47, [0u8; 16])
            .build();
        let h = etherparse::Ipv4HeaderSlice::from_slice(&f[14..]).unwrap();
        assert_eq!(h.fragments_offset().value(), 185);
        assert!(h.dont_fragment() && !h.more_fragments());

        let f = FrameBuilder::ipv4(PEER, LOCAL)
            .ip_checksum(Checksum::Wrong)
            .raw(47, [0u8; 8])
            .build();
        let h = etherparse::Ipv4HeaderSlice::from_slice(&f[14..]).unwrap();
        assert_ne!(h.to_header().calc_header_checksum(), h.header_checksum());

        let f = FrameBuilder::ipv4(PEER, LOCAL)
            .ip_length(1000)
            .ip_version(5)
            .ipv4_ihl(4)
            .ip_protocol(6)
            .raw(47, [0u8; 8])
            .build();
        assert_eq!(f[14], 0x54);
        assert_eq!(&f[16..18], &1000u16.to_be_bytes());
        assert_eq!(f[23], 6);
        assert_eq!(
            sum(&f[14..34]),
            0xFFFF,
            "checksum still right over the bytes written"
        );
    }

    #[test]
    fn ipv6_extension_chain_parses() {
        let f = FrameBuilder::ipv6(PEER6, LOCAL6)
            .ipv6_ext(Ipv6Ext::HopByHop(vec![0x05, 0x02, 0, 0])) // router alert
            .ipv6_ext(Ipv6Ext::destination_options())
            .ipv6_ext(Ipv6Ext::Routing {
                routing_type: 4,
                segments_left: 0,
                data: vec![1, 2, 3, 4, 5],
            })
            .ipv6_ext(Ipv6Ext::fragment(0, true))
            .gre(Gre::v0(proto::IPV6).key(9), vec![0x60; 40])
            .build();
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Ipv6(ip)) = &p.net else {
            panic!("{:?}", p.net)
        };
        assert_eq!(usize::from(ip.header().payload_length()), f.len() - 14 - 40);
        let kinds: Vec<&str> = ip
            .extensions()
            .clone()
            .into_iter()
            .map(|e| match e {
                Ipv6ExtensionSlice::HopByHop(h) => {
                    assert_eq!(h.slice().len(), 8);
                    "hbh"
                }
                Ipv6ExtensionSlice::DestinationOptions(_) => "dst",
                Ipv6ExtensionSlice::Routing(r) => {
                    assert_eq!(r.slice().len(), 16);
                    "rt"
                }
                Ipv6ExtensionSlice::Fragment(fr) => {
                    assert!(fr.more_fragments());
                    assert_eq!(fr.fragment_offset().value(), 0);
                    "frag"
                }
                Ipv6ExtensionSlice::Authentication(_) => "ah",
            })
            .collect();
        assert_eq!(kinds, ["hbh", "dst", "rt", "frag"]);
        assert_eq!(ip.payload().ip_number.0, 47);
        assert!(ip.is_payload_fragmented());
    }

    #[test]
    fn pptp_header_layout() {
        let ppp = payload::ppp(0x0021, &[0x45; 20], true);
        let g = Gre::pptp(0x1234).sequence(5).ack(4).encode(&ppp);
        assert_eq!(&g[..4], &[0x30, 0x81, 0x88, 0x0B]);
        assert_eq!(&g[4..6], &24u16.to_be_bytes());
        assert_eq!(&g[6..8], &[0x12, 0x34]);
        assert_eq!(&g[8..16], &[0, 0, 0, 5, 0, 0, 0, 4]);
        assert_eq!(&g[16..], &ppp[..]);

        let ack_only = Gre::pptp(7).ack(3).encode(&[]);
        assert_eq!(ack_only, [0x20, 0x81, 0x88, 0x0B, 0, 0, 0, 7, 0, 0, 0, 3]);

        let odd = Gre::pptp(7)
            .payload_len(500)
            .set_flags(flags::C)
            .clear_flags(flags::K)
            .protocol(0x0800)
            .version(3)
            .encode(&[1, 2]);
        assert_eq!(&odd[..6], &[0x80, 0x03, 0x08, 0x00, 0x01, 0xF4]);
        assert_eq!(odd.len(), 10);
    }

    #[test]
    fn upper_layers_parse_with_valid_checksums() {
        let f = FrameBuilder::ipv4(PEER, LOCAL).udp(1, 2, b"abc").build();
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Udp(u))) = (&p.net, &p.transport)
        else {
            panic!()
        };
        let want = u
            .to_header()
            .calc_checksum_ipv4(&ip.header().to_header(), u.payload())
            .unwrap();
        assert_eq!(u.checksum(), want);
        assert_eq!(u.payload(), b"abc");

        let f = FrameBuilder::ipv6(PEER6, LOCAL6).udp(1, 2, b"abcd").build();
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let (Some(NetSlice::Ipv6(ip)), Some(TransportSlice::Udp(u))) = (&p.net, &p.transport)
        else {
            panic!()
        };
        let want = u
            .to_header()
            .calc_checksum_ipv6(&ip.header().to_header(), u.payload())
            .unwrap();
        assert_eq!(u.checksum(), want);

        let f = FrameBuilder::ipv4(PEER, LOCAL)
            .tcp(40000, 443, 0x02, [])
            .build();
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let (Some(NetSlice::Ipv4(ip)), Some(TransportSlice::Tcp(t))) = (&p.net, &p.transport)
        else {
            panic!()
        };
        assert!(t.syn() && !t.ack());
        let want = t.calc_checksum_ipv4(ip.header().source(), ip.header().destination());
        assert_eq!(t.checksum(), want.unwrap());

        let f = FrameBuilder::ipv4(PEER, LOCAL)
            .echo_request(1, 2, [9; 7])
            .build();
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(TransportSlice::Icmpv4(i)) = &p.transport else {
            panic!()
        };
        assert_eq!(i.type_u8(), 8);
        assert_eq!(sum(i.slice()), 0xFFFF);

        let f = FrameBuilder::ipv6(PEER6, LOCAL6)
            .echo_request(1, 2, [9; 7])
            .build();
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(TransportSlice::Icmpv6(i)) = &p.transport else {
            panic!()
        };
        assert_eq!(i.type_u8(), 128);
        assert!(i.is_checksum_valid(PEER6.octets(), LOCAL6.octets()));

        let f = FrameBuilder::ipv4(PEER, LOCAL)
            .esp(0x100, 1, [0xAA; 16])
            .build();
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &p.net else {
            panic!()
        };
        assert_eq!(ip.payload().ip_number.0, 50);
        assert_eq!(&ip.payload().payload[..4], &[0, 0, 1, 0]);
    }

    #[test]
    fn arp_and_other_ethertypes() {
        let f = FrameBuilder::arp_request(PEER, LOCAL).pad_to(60).build();
        assert_eq!(f.len(), 60);
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Arp(a)) = &p.net else {
            panic!("{:?}", p.net)
        };
        let a = a.to_packet();
        assert_eq!(a.sender_protocol_addr(), PEER.octets());
        assert_eq!(a.target_protocol_addr(), LOCAL.octets());
        assert_eq!(a.sender_hw_addr(), DEFAULT_SRC_MAC);
        assert_eq!(&f[..6], &[0xff; 6]);

        let (f, l) = FrameBuilder::ethernet(0x88CC, [1, 2, 3])
            .macs([1; 6], [2; 6])
            .trailer([7, 7])
            .build_with_layout();
        assert_eq!(
            f,
            [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 0x88, 0xCC, 1, 2, 3, 7, 7]
        );
        assert_eq!((l.network, l.upper, l.end), (14, 17, 17));
    }

    #[test]
    fn trailer_and_padding_sit_outside_the_ip_length() {
        let (f, l) = FrameBuilder::ipv4(PEER, LOCAL)
            .gre(Gre::v0(proto::KEEPALIVE), [])
            .pad_to(60)
            .build_with_layout();
        assert_eq!(f.len(), 60);
        assert_eq!(l.end, 14 + 24);
        let p = SlicedPacket::from_ethernet(&f).unwrap();
        let Some(NetSlice::Ipv4(ip)) = &p.net else {
            panic!()
        };
        assert_eq!(ip.header().total_len(), 24);
    }

    #[test]
    fn inner_payloads() {
        let udp = udp_inner();
        let ip = etherparse::Ipv4Slice::from_slice(&udp).unwrap();
        assert!(ipv4_checksum_verifies(&ip));
        assert_eq!(ip.header().source_addr(), IN_SRC);

        let v6 = payload::ipv6_udp(PEER6, LOCAL6, 1, 2, b"x");
        let ip6 = etherparse::Ipv6Slice::from_slice(&v6).unwrap();
        assert_eq!(ip6.payload().ip_number.0, 17);

        let eth = payload::ethernet([1; 6], [2; 6], 0x0800, &udp_inner());
        let p = SlicedPacket::from_ethernet(&eth).unwrap();
        assert!(matches!(p.transport, Some(TransportSlice::Udp(_))));

        let e2 = payload::erspan2(0x3FF, 10, 5, &eth);
        assert_eq!(&e2[..8], &[0x10, 0x0A, 0x03, 0xFF, 0, 0, 0, 5]);
        assert_eq!(&e2[8..], &eth[..]);
        let e3 = payload::erspan3(1, 2, None, &eth);
        assert_eq!(&e3[..12], &[0x20, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0]);
        let e3o = payload::erspan3(1, 2, Some([9; 8]), &eth);
        assert_eq!(e3o[11], 1);
        assert_eq!(&e3o[12..20], &[9; 8]);

        assert_eq!(
            payload::ppp(0xC021, &[1], true),
            [0xFF, 0x03, 0xC0, 0x21, 1]
        );
        assert_eq!(payload::ppp(0x0021, &[], false), [0x00, 0x21]);

        let n = payload::nhrp(1, &[0; 8]);
        assert_eq!(n.len(), 28);
        assert_eq!(&n[10..12], &28u16.to_be_bytes());
        assert_eq!(n[16], 1);
        assert_eq!(sum(&n), 0xFFFF);

        let w = payload::wccp_v2(0, 0, &udp_inner());
        assert_eq!(&w[..4], &[0; 4]);
        assert_eq!(w[4] >> 4, 4);

        assert_eq!(payload::mpls(16, 64, &[]), [0x00, 0x01, 0x01, 0x40]);

        let ka = payload::keepalive_request(PEER, LOCAL);
        let ip = etherparse::Ipv4Slice::from_slice(&ka).unwrap();
        assert_eq!(ip.header().source_addr(), LOCAL);
        assert_eq!(ip.header().destination_addr(), PEER);
        assert_eq!(ip.payload().ip_number.0, 47);
        assert_eq!(ip.payload().payload, &[0, 0, 0, 0]);
    }

    #[test]
    #[should_panic(expected = "different families")]
    fn mixed_families_panic() {
        let _ = FrameBuilder::ip(IpAddr::V4(PEER), IpAddr::V6(LOCAL6));
    }
}

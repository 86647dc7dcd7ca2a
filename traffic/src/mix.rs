//! Pre-built frames per class, from a policy's tunnels, and a weighted schedule over them.
//!
//! Building happens once, before sending: the send loop only copies pointers to ready frames.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use frames::{payload, FrameBuilder, Gre};
use validator::{FlagRule, IpPrefix, KeyRule, ProtoClass, TunnelSpec};

use crate::class::Class;

/// Variants built per class (sizes, sources, breakages cycle through them).
const VARIANTS: usize = 64;

/// Variants of the backscatter class: one spoofed source each, but every fourth from one of
/// [`HEAVY_SOURCES`] addresses, so a top-sources view has something to rank.
const UNKNOWN_VARIANTS: usize = 1024;
const HEAVY_SOURCES: usize = 4;

/// The destination MAC of every generated frame: locally administered and nobody's, so the
/// far namespace's stack ignores the frames while a packet socket still sees them.
pub const DST_MAC: [u8; 6] = [0x02, 0x67, 0x67, 0x00, 0x00, 0x01];

/// Which side the frames are sent from; tunnel frames are oriented accordingly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// From the peers: outer source = peer, destination = local.
    Outside,
    /// From the concentrators: outer source = local, destination = peer.
    Inside,
}

/// A small deterministic PRNG (xorshift64*): every run sends the same frames.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        // The low byte of each draw.
        (0..n).map(|_| (self.next_u64() & 0xFF) as u8).collect()
    }
    /// A random unicast address that is no bogon and in no documentation or shared range the
    /// lab's policies use (so it matches no tunnel).
    pub fn spoofed(&mut self) -> Ipv4Addr {
        loop {
            let a = Ipv4Addr::from((self.next_u64() & 0xFFFF_FFFF) as u32);
            let o = a.octets();
            if (1..224).contains(&o[0]) && ![10, 100, 127, 172, 192, 198, 203].contains(&o[0]) {
                return a;
            }
        }
    }
}

/// One endpoint address inside a prefix: the address itself for a host, else the first host.
fn host_in(p: &IpPrefix) -> IpAddr {
    match *p {
        IpPrefix::V4(a, len) => Ipv4Addr::from(if len >= 31 { a } else { a + 1 }).into(),
        IpPrefix::V6(a, len) => Ipv6Addr::from(if len >= 127 { a } else { a + 1 }).into(),
    }
}

/// A tunnel the generator can send valid frames for.
#[derive(Clone, Debug)]
struct Endpoint {
    src: IpAddr,
    dst: IpAddr,
    spec: TunnelSpec,
}

/// The frames of each class, and the order to send them in.
#[derive(Clone, Debug)]
pub struct Mix {
    pools: Vec<Vec<Vec<u8>>>,
    /// A cycle of (class, variant) picks whose shares follow the weights.
    schedule: Vec<(Class, usize)>,
}

impl Mix {
    /// Builds the pools for `tunnels`, sent from `side`, with per-class `weights` (indexed by
    /// [`Class::index`]; 0 = never) and an optional 802.1Q tag.
    pub fn new(
        tunnels: &[Arc<TunnelSpec>],
        side: Side,
        weights: [u32; Class::COUNT],
        vlan: Option<u16>,
        seed: u64,
    ) -> Mix {
        let mut rng = Rng::new(seed);
        let endpoints: Vec<Endpoint> = tunnels
            .iter()
            .filter(|t| t.peer.is_v6() == t.local.is_v6())
            .map(|t| {
                let (peer, local) = (host_in(&t.peer), host_in(&t.local));
                let (src, dst) = match side {
                    Side::Outside => (peer, local),
                    Side::Inside => (local, peer),
                };
                Endpoint {
                    src,
                    dst,
                    spec: TunnelSpec::clone(t),
                }
            })
            .collect();
        let local = endpoints
            .iter()
            .find_map(|e| match (side, e.dst, e.src) {
                (Side::Outside, IpAddr::V4(d), _) | (Side::Inside, _, IpAddr::V4(d)) => Some(d),
                _ => None,
            })
            .unwrap_or(Ipv4Addr::new(198, 51, 100, 10));
        let heavy: Vec<Ipv4Addr> = (0..HEAVY_SOURCES).map(|_| rng.spoofed()).collect();
        let pools: Vec<Vec<Vec<u8>>> = Class::ALL
            .iter()
            .map(|&class| {
                let variants = if class == Class::Unknown {
                    UNKNOWN_VARIANTS
                } else {
                    VARIANTS
                };
                (0..variants)
                    .filter_map(|v| {
                        let b = build(class, v, &endpoints, local, &heavy, &mut rng)?;
                        let b = match vlan {
                            Some(vid) => b.vlan(vid),
                            None => b,
                        };
                        // The variant byte wraps after 256 (the backscatter class has 1024
                        // variants); only the class byte is read back (Class::of_frame).
                        #[allow(clippy::cast_possible_truncation)]
                        let variant = (v % 256) as u8;
                        Some(b.macs(DST_MAC, class.mac(variant)).build())
                    })
                    .collect()
            })
            .collect();
        let mut schedule = Vec::new();
        let mut next = [0usize; Class::COUNT];
        for _ in 0..VARIANTS {
            for class in Class::ALL {
                let pool = &pools[class.index()];
                if pool.is_empty() {
                    continue;
                }
                for _ in 0..weights[class.index()] {
                    let v = next[class.index()] % pool.len();
                    next[class.index()] += 1;
                    schedule.push((class, v));
                }
            }
        }
        Mix { pools, schedule }
    }

    /// The `i`-th frame of the endless schedule, with its class.
    #[inline]
    pub fn frame(&self, i: usize) -> Option<(Class, &[u8])> {
        let &(class, v) = self.schedule.get(i % self.schedule.len().max(1))?;
        Some((class, &self.pools[class.index()][v]))
    }

    /// How many frames one cycle of the schedule holds (0 = nothing to send).
    pub fn cycle_len(&self) -> usize {
        self.schedule.len()
    }

    /// Every variant of one class.
    pub fn pool(&self, class: Class) -> &[Vec<u8>] {
        &self.pools[class.index()]
    }
}

/// An inner IPv4/UDP packet of `data_len` bytes of data.
fn inner_udp(rng: &mut Rng, data_len: usize) -> Vec<u8> {
    payload::ipv4_udp(
        Ipv4Addr::new(10, 1, 0, 1),
        Ipv4Addr::new(10, 2, 0, 1),
        40000,
        53,
        &rng.bytes(data_len),
    )
}

/// The GRE header a valid frame of tunnel `t` carries for inner `protocol`.
fn tunnel_gre(t: &TunnelSpec, protocol: u16, v: u16) -> Gre {
    let mut gre = if t.version == 1 {
        let call_id = match t.key {
            // A PPTP key field holds the call ID in its low 16 bits (RFC 2637 §4.1).
            KeyRule::Equal(k) => (k & 0xFFFF) as u16,
            _ => 1,
        };
        Gre::pptp(call_id)
    } else {
        Gre::v0(protocol)
    };
    if t.version == 0 {
        if let KeyRule::Equal(k) = t.key {
            gre = gre.key(k);
        }
        if t.checksum == FlagRule::Require {
            gre = gre.checksum();
        }
    }
    if t.sequence == FlagRule::Require || (t.version == 1 && t.sequence != FlagRule::Forbid) {
        gre = gre.sequence(u32::from(v) + 1);
    }
    gre
}

/// The frame builder for variant `v` of `class`, or `None` when the class has nothing to send
/// (no tunnel allows any payload the generator knows).
fn build(
    class: Class,
    v: usize,
    endpoints: &[Endpoint],
    local: Ipv4Addr,
    heavy: &[Ipv4Addr],
    rng: &mut Rng,
) -> Option<FrameBuilder> {
    // Variants are numbered below UNKNOWN_VARIANTS (1024), so this is never None.
    let v16 = u16::try_from(v).ok()?;
    Some(match class {
        Class::Tunnel => {
            let usable: Vec<&Endpoint> = endpoints
                .iter()
                .filter(|e| inner_for(&e.spec).is_some())
                .collect();
            let e = usable.get(v % usable.len().max(1))?;
            let (protocol, inner) = inner_for(&e.spec)?(rng, v);
            FrameBuilder::ip(e.src, e.dst).gre(tunnel_gre(&e.spec, protocol, v16), inner)
        }
        Class::Keepalive => {
            let usable: Vec<&Endpoint> = endpoints
                .iter()
                .filter(|e| {
                    e.spec.version == 0 && e.spec.protocols.has_class(ProtoClass::Keepalive)
                })
                .collect();
            let e = usable.get(v % usable.len().max(1))?;
            FrameBuilder::ip(e.src, e.dst).gre(tunnel_gre(&e.spec, 0x0000, v16), Vec::new())
        }
        Class::NonGre => {
            let peer = Ipv4Addr::new(203, 0, 113, 200);
            let b = FrameBuilder::ipv4(peer, local);
            match v % 5 {
                0 => FrameBuilder::arp_request(peer, local),
                1 => b.echo_request(0x4747, v16, rng.bytes(56)),
                2 => b.tcp(443, 50000 + v16, 0x10, rng.bytes(100 + v * 10)),
                3 => b.udp(500, 500, rng.bytes(120)),
                _ => b.esp(0x1000 + u32::from(v16), u32::from(v16), rng.bytes(100)),
            }
        }
        Class::Unknown => {
            // The wave's two shapes: 66 bytes (inner IPv4/UDP, no data) and 578 bytes.
            let data = if v % 2 == 0 { 0 } else { 512 };
            let inner = payload::ipv4_udp(rng.spoofed(), rng.spoofed(), 40000, 53, &vec![0; data]);
            let src = match heavy.get(v / 4 % heavy.len().max(1)) {
                Some(h) if v % 4 == 0 => *h,
                _ => rng.spoofed(),
            };
            FrameBuilder::ipv4(src, local).gre(Gre::v0(0x0800), inner)
        }
        Class::Invalid => {
            let src = rng.spoofed();
            let b = FrameBuilder::ipv4(src, local);
            match v % 5 {
                0 => b.gre(Gre::v0(0x0800).version(3), inner_udp(rng, 20)),
                1 => b.gre(Gre::v0(0x0800).set_flags(0x4000), inner_udp(rng, 20)),
                2 => {
                    let mut junk = rng.bytes(40 + v);
                    junk[0] = 0x15;
                    b.gre(Gre::v0(0x0800), junk)
                }
                3 => b.gre(
                    Gre::v0(0x0800).checksum_with(frames::Checksum::Wrong),
                    inner_udp(rng, 30),
                ),
                _ => b
                    .gre(Gre::v0(0x0800).key(7), inner_udp(rng, 40))
                    .ip_length(2000),
            }
        }
        Class::Bogon => {
            // Below VARIANTS (64), so this is never None.
            let last = u8::try_from(v).ok()?;
            let src = match v % 3 {
                0 => Ipv4Addr::new(0, 1, 2, last),
                1 => Ipv4Addr::new(127, 0, 0, last),
                _ => Ipv4Addr::new(240, 0, 0, last),
            };
            FrameBuilder::ipv4(src, local).gre(Gre::v0(0x0800), inner_udp(rng, 18))
        }
    })
}

/// A builder of an inner packet the tunnel allows: IPv4/UDP, IPv6/UDP or an Ethernet frame
/// (TEB), with the GRE protocol type; PPTP tunnels carry PPP.
type InnerFn = fn(&mut Rng, usize) -> (u16, Vec<u8>);

fn inner_for(t: &TunnelSpec) -> Option<InnerFn> {
    if t.version == 1 {
        return Some(|rng, v| {
            let ip = inner_udp(rng, 20 + (v % 8) * 60);
            (0x880B, payload::ppp(0x0021, &ip, true))
        });
    }
    let p = &t.protocols;
    if p.has_class(ProtoClass::Ipv4) {
        Some(|rng, v| (0x0800, inner_udp(rng, [18, 100, 500, 1200][v % 4])))
    } else if p.has_class(ProtoClass::Ipv6) {
        Some(|rng, v| {
            let (s, d) = (
                Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1),
                Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2),
            );
            (
                0x86DD,
                payload::ipv6_udp(s, d, 5000, 5001, &rng.bytes(40 + (v % 4) * 200)),
            )
        })
    } else if p.has_class(ProtoClass::Teb) {
        Some(|rng, v| {
            let eth = payload::ethernet(
                [2, 0, 0, 0, 0, 9],
                [2, 0, 0, 0, 0, 8],
                0x0800,
                &inner_udp(rng, 50 + (v % 4) * 100),
            );
            (0x6558, eth)
        })
    } else {
        None
    }
}

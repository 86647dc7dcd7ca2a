//! The standard mix: the classifier micro-benchmark's traffic (`make bench`, and
//! `examples/profile_mix`). Not the lab mix, which `greguard-gen` sends in the lab and the
//! end-to-end, scale and soak benchmarks (docs/benchmarks.md).
//!
//! The mix, by frame count:
//!
//! | share | class | what |
//! |---|---|---|
//! | 60 % | valid tunnel GRE | keyed GRE from the policy's peers: 40 % inner IPv4/UDP (64–1400 bytes), 8 % inner IPv6, 6 % TEB (Ethernet), 3 % keepalive replies, 3 % IPv4 with a GRE checksum (128-byte frames) |
//! | 20 % | non-GRE | TCP, UDP (IKE), ESP, ICMP, ARP |
//! | 20 % | invalid / unknown GRE | the 2016–17 backscatter: 12 % well-formed GRE from random spoofed sources (66 and 578 bytes, IPv4/UDP inside) → `unknown_tunnel`; 4 % garbage payload → `bad_inner`; 2 % bad version or flags; 2 % truncated |
//!
//! Tunnels are host pairs `100.64.x.y → 198.51.100.10` with key = index + 1; traffic picks tunnels
//! uniformly from the whole table, so with 100 000 tunnels a pool of frames touches as many
//! distinct table entries as it has tunnel frames.

// Bench tables hold far fewer than 2^32 tunnels and draws are below small bounds: every index,
// key and length fits its type.
#![allow(clippy::cast_possible_truncation)]

use std::net::{Ipv4Addr, Ipv6Addr};

use frames::{payload, FrameBuilder, Gre};
use validator::{
    Defaults, FlagRule, IpPrefix, KeyRule, Policy, ProtoClass, ProtocolSet, TunnelSpec,
};

/// The concentrator's address in the mix.
pub const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

/// The generator's deterministic PRNG, so the benchmark and the lab draw alike.
pub use traffic::mix::Rng;

/// The peer address of tunnel `i`.
pub fn peer(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 0)) + i as u32)
}

/// A policy of `n` keyed host-pair tunnels (ipv4, ipv6, teb, keepalive).
pub fn policy(n: usize) -> Policy {
    let mut p = Policy::new(Defaults::default());
    let mut protocols = ProtocolSet::new();
    for c in [
        ProtoClass::Ipv4,
        ProtoClass::Ipv6,
        ProtoClass::Teb,
        ProtoClass::Keepalive,
    ] {
        protocols.allow_class(c);
    }
    for i in 0..n {
        p.add_tunnel(TunnelSpec {
            name: format!("t{i}"),
            peer: IpPrefix::host(peer(i).into()),
            local: IpPrefix::host(LOCAL.into()),
            key: KeyRule::Equal(i as u32 + 1),
            version: 0,
            protocols: protocols.clone(),
            nested: false,
            checksum: FlagRule::Allow,
            sequence: FlagRule::Allow,
            rate: None,
        })
        .expect("distinct tunnels");
    }
    p
}

fn inner_udp(rng: &mut Rng, len: usize) -> Vec<u8> {
    payload::ipv4_udp(
        Ipv4Addr::new(10, 1, 0, 1),
        Ipv4Addr::new(10, 2, 0, 1),
        40000,
        53,
        &rng.bytes(len),
    )
}

/// `count` frames of the standard mix for a policy of `tunnels` tunnels.
pub fn standard_mix(tunnels: usize, count: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(seed);
    (0..count).map(|_| mix_frame(&mut rng, tunnels)).collect()
}

/// One frame of the standard mix.
pub fn mix_frame(rng: &mut Rng, tunnels: usize) -> Vec<u8> {
    let t = rng.below(tunnels as u64) as usize;
    let key = t as u32 + 1;
    let to_tunnel = |gre: Gre, body: Vec<u8>| {
        FrameBuilder::ipv4(peer(t), LOCAL)
            .gre(gre.key(key), body)
            .build()
    };
    let roll = rng.below(100);
    match roll {
        // 60 % valid tunnel traffic.
        0..=39 => {
            let len = [36, 100, 500, 1372][rng.below(4) as usize];
            to_tunnel(Gre::v0(0x0800), inner_udp(rng, len))
        }
        40..=47 => {
            let (s, d) = (
                Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1),
                Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2),
            );
            let inner = payload::ipv6_udp(s, d, 5000, 5001, &rng.bytes(200));
            to_tunnel(Gre::v0(0x86DD), inner)
        }
        48..=53 => {
            let eth = payload::ethernet(
                [2, 0, 0, 0, 0, 9],
                [2, 0, 0, 0, 0, 8],
                0x0800,
                &inner_udp(rng, 64),
            );
            to_tunnel(Gre::v0(0x6558), eth)
        }
        54..=56 => to_tunnel(Gre::v0(0x0000), Vec::new()),
        57..=59 => to_tunnel(Gre::v0(0x0800).checksum(), inner_udp(rng, 58)),
        // 20 % non-GRE.
        60..=67 => FrameBuilder::ipv4(peer(t), LOCAL)
            .tcp(443, 50000, 0x10, rng.bytes(200))
            .build(),
        68..=71 => FrameBuilder::ipv4(peer(t), LOCAL)
            .udp(500, 500, rng.bytes(120))
            .build(),
        72..=75 => FrameBuilder::ipv4(peer(t), LOCAL)
            .esp(0x1000 + key, 1, rng.bytes(100))
            .build(),
        76..=78 => FrameBuilder::ipv4(peer(t), LOCAL)
            .echo_request(1, 1, rng.bytes(56))
            .build(),
        79 => FrameBuilder::arp_request(LOCAL, peer(t)).build(),
        // 20 % invalid and unknown GRE in the backscatter's shapes.
        80..=91 => {
            let size = if rng.below(2) == 0 { 0 } else { 512 };
            let (s, d) = (rng.spoofed(), rng.spoofed());
            let inner = payload::ipv4_udp(s, d, 40000, 53, &vec![0; size]);
            FrameBuilder::ipv4(rng.spoofed(), LOCAL)
                .gre(Gre::v0(0x0800), inner)
                .build()
        }
        92..=95 => {
            let len = 20 + rng.below(500) as usize;
            let mut junk = rng.bytes(len);
            junk[0] = 0x15;
            FrameBuilder::ipv4(rng.spoofed(), LOCAL)
                .gre(Gre::v0(0x0800), junk)
                .build()
        }
        96 => FrameBuilder::ipv4(rng.spoofed(), LOCAL)
            .gre(Gre::v0(0x0800).version(3), inner_udp(rng, 20))
            .build(),
        97 => FrameBuilder::ipv4(rng.spoofed(), LOCAL)
            .gre(Gre::v0(0x0800).set_flags(0x4000), inner_udp(rng, 20))
            .build(),
        _ => {
            let mut f = to_tunnel(Gre::v0(0x0800), inner_udp(rng, 100));
            f.truncate(14 + 20 + 10);
            f
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use validator::{Classifier, Direction, Reason, Verdict};

    #[test]
    fn the_mix_has_the_documented_shares() {
        let policy = policy(1000);
        let frames = standard_mix(1000, 20_000, 7);
        let mut c = Classifier::new(&policy, 0);
        let mut by_reason = [0usize; Reason::COUNT];
        for f in &frames {
            let d = c.classify(&policy, 0, Direction::FromOutside, f);
            by_reason[d.reason.index()] += 1;
            if d.reason == Reason::Tunnel {
                assert_eq!(d.verdict, Verdict::Forward);
            }
        }
        let share = |r: Reason| by_reason[r.index()] as f64 / frames.len() as f64;
        assert!(
            (share(Reason::Tunnel) - 0.60).abs() < 0.02,
            "tunnel {}",
            share(Reason::Tunnel)
        );
        assert!(
            (share(Reason::NonGre) - 0.20).abs() < 0.02,
            "non_gre {}",
            share(Reason::NonGre)
        );
        assert!((share(Reason::UnknownTunnel) - 0.12).abs() < 0.02);
        assert!((share(Reason::BadInner) - 0.04).abs() < 0.01);
        assert!(
            share(Reason::Truncated) > 0.005
                && share(Reason::BadVersion) > 0.005
                && share(Reason::BadFlags) > 0.005
        );
    }
}

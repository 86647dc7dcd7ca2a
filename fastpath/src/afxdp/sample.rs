//! Samples of dropped GRE, handed from a worker to the slow path without blocking either.
//!
//! A worker counts its dropped GRE frames and every `1 in N` (the policy's
//! `[sampling] invalid`) pushes a [`Sample`] — who sent it, why it was dropped — into its own
//! pre-allocated single-producer ring. A full ring never blocks the worker: the sample is
//! counted as lost instead. The slow path drains the rings (here: the top-sources view of
//! `greguard run` and the lab).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::reason::{Decision, Direction, Reason};

/// Samples a worker's ring holds.
pub const SAMPLE_RING: usize = 4096;

/// The most bytes of a frame a sample keeps (a larger `[sampling] snaplen` is capped here, so
/// the ring's slots have a fixed size and the worker never allocates).
pub const MAX_SNAPLEN: usize = 256;

/// One sampled frame: its first bytes, when it arrived, where from, and its decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    pub port: Direction,
    pub decision: Decision,
    /// Outer IPv4 (in the first 4 bytes) or IPv6 source address.
    src: [u8; 16],
    v6: bool,
    /// The frame's length on the wire.
    pub len: u32,
    /// Nanoseconds since the data path's epoch (`DataPath::epoch`).
    pub at_ns: u64,
    caplen: u16,
    data: [u8; MAX_SNAPLEN],
}

impl Sample {
    /// A sample of the first `snaplen` bytes of `frame`, or `None` when it has no outer IP
    /// header to read a source from.
    #[inline]
    pub fn of(
        frame: &[u8],
        port: Direction,
        decision: Decision,
        at_ns: u64,
        snaplen: usize,
    ) -> Option<Sample> {
        let (src, v6) = outer_source(frame)?;
        let caplen = frame.len().min(snaplen).min(MAX_SNAPLEN);
        let mut data = [0u8; MAX_SNAPLEN];
        data[..caplen].copy_from_slice(&frame[..caplen]);
        Some(Sample {
            port,
            decision,
            src,
            v6,
            len: frame.len() as u32,
            at_ns,
            caplen: caplen as u16,
            data,
        })
    }

    /// The bytes kept of the frame (at most the snap length).
    pub fn bytes(&self) -> &[u8] {
        &self.data[..usize::from(self.caplen).min(MAX_SNAPLEN)]
    }

    /// The outer source address.
    pub fn source(&self) -> IpAddr {
        if self.v6 {
            Ipv6Addr::from(self.src).into()
        } else {
            Ipv4Addr::new(self.src[0], self.src[1], self.src[2], self.src[3]).into()
        }
    }
}

/// Whether a dropped frame is GRE the box judged (what the backscatter view counts).
#[inline]
pub fn is_dropped_gre(d: Decision) -> bool {
    d.verdict == crate::Verdict::Drop && !matches!(d.reason, Reason::NonGre | Reason::Oversize)
}

/// The outer source address of an Ethernet frame (untagged, 802.1Q or QinQ; IPv4 or IPv6).
#[inline]
fn outer_source(frame: &[u8]) -> Option<([u8; 16], bool)> {
    let mut off = 12;
    let mut ethertype = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
    let mut tags = 0;
    while matches!(ethertype, 0x8100 | 0x88A8 | 0x9100) && tags < 2 {
        off += 4;
        tags += 1;
        ethertype = u16::from_be_bytes([*frame.get(off)?, *frame.get(off + 1)?]);
    }
    let ip = frame.get(off + 2..)?;
    let mut src = [0u8; 16];
    match ethertype {
        0x0800 => {
            src[..4].copy_from_slice(ip.get(12..16)?);
            Some((src, false))
        }
        0x86DD => {
            src.copy_from_slice(ip.get(8..24)?);
            Some((src, true))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{FrameBuilder, Gre};
    use crate::Verdict;

    #[test]
    fn reads_the_outer_source_behind_vlan_tags() {
        let d = Decision::new(Verdict::Drop, Reason::UnknownTunnel);
        let src = Ipv4Addr::new(192, 0, 2, 99);
        for frame in [
            FrameBuilder::ipv4(src, Ipv4Addr::new(198, 51, 100, 1))
                .gre(Gre::v0(0x0800), vec![0; 20])
                .build(),
            FrameBuilder::ipv4(src, Ipv4Addr::new(198, 51, 100, 1))
                .qinq(10, 20)
                .gre(Gre::v0(0x0800), vec![0; 20])
                .build(),
        ] {
            let s = Sample::of(&frame, Direction::FromOutside, d, 5, 40).expect("sample");
            assert_eq!(s.bytes(), &frame[..40]);
            assert_eq!(s.len as usize, frame.len());
            assert_eq!(s.source(), IpAddr::from(src));
        }
        let v6: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let frame = FrameBuilder::ipv6(v6, "2001:db8::1".parse().unwrap())
            .gre(Gre::v0(0x86DD), vec![0; 40])
            .build();
        assert_eq!(
            Sample::of(&frame, Direction::FromOutside, d, 0, 9999)
                .unwrap()
                .source(),
            IpAddr::from(v6)
        );
    }

    #[test]
    fn short_or_non_ip_frames_give_no_sample() {
        let d = Decision::new(Verdict::Drop, Reason::Truncated);
        assert!(Sample::of(&[0u8; 10], Direction::FromOutside, d, 0, 64).is_none());
        assert!(Sample::of(
            &FrameBuilder::arp_request(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST).build(),
            Direction::FromOutside,
            d,
            0,
            64
        )
        .is_none());
        let mut cut = FrameBuilder::ipv4(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST).build();
        cut.truncate(20);
        assert!(Sample::of(&cut, Direction::FromOutside, d, 0, 64).is_none());
    }
}

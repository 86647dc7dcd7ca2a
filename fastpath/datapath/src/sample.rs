//! Sampled frames, handed from a worker to the slow path without blocking either.
//!
//! A worker counts its GRE frames and every `1 in N` of the dropped ones (`[sampling] invalid`)
//! and of the forwarded ones (`[sampling] forwarded`) copies the first `snaplen` bytes, with
//! when it arrived and its decision, into its own pre-allocated single-producer byte ring. A
//! record is a fixed header followed by the captured bytes, so a sample takes only the room it
//! needs and `snaplen` may be anything up to a whole frame. A full ring never blocks the worker:
//! the sample is counted as lost instead. The slow path drains the rings (pcap files, the log,
//! the top-sources view).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use validator::reason::{Decision, Direction, Reason, Verdict};

/// Records of full frames a worker's sample ring holds at least.
pub const RING_FRAMES: usize = 1024;

/// Bytes of a record's header: port, verdict, reason, tunnel, length, captured length, time.
const HEADER: usize = 24;

/// How often a worker samples, from `[sampling]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rates {
    /// 1 in N dropped GRE frames (0 = none).
    pub dropped: u32,
    /// 1 in N forwarded GRE frames (0 = none).
    pub forwarded: u32,
    /// Bytes kept of each sampled frame.
    pub snaplen: u32,
}

/// One sampled frame as the slow path reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    pub port: Direction,
    pub decision: Decision,
    /// The frame's length on the wire.
    pub len: u32,
    /// Nanoseconds since the data path's epoch (`DataPath::epoch`).
    pub at_ns: u64,
    /// The first `snaplen` bytes of the frame.
    pub data: Vec<u8>,
}

impl Sample {
    /// The bytes kept of the frame (at most the snap length).
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// The outer source address, when the kept bytes reach it (a snap length of at least 64,
    /// which the policy enforces, always does for IP frames).
    pub fn source(&self) -> Option<IpAddr> {
        outer_source(&self.data)
    }

    /// Whether the frame was dropped (the backscatter view and the drop log count only those).
    pub fn dropped(&self) -> bool {
        self.decision.verdict == Verdict::Drop
    }
}

/// A ring of `capacity`-byte frames: the worker's writing end and the slow path's reading end.
pub fn ring(capacity: usize) -> (Sampler, SampleReader) {
    let (producer, consumer) = rtrb::RingBuffer::new(RING_FRAMES * (HEADER + capacity));
    (
        Sampler {
            rates: Rates::default(),
            countdown: [1, 1],
            rng: 0x9E37_79B9_7F4A_7C15,
            ring: producer,
        },
        SampleReader { ring: consumer },
    )
}

/// What [`Sampler::offer`] did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Offered {
    /// Not sampled (not GRE, sampling off for its verdict, or not its turn).
    Skipped,
    /// Copied into the ring.
    Taken,
    /// Its turn, but the ring was full.
    Lost,
}

/// A worker's writing end: decides which frames to sample and copies them.
pub struct Sampler {
    rates: Rates,
    /// Frames until the next sample: dropped GRE, forwarded GRE. A u64: a skip is up to
    /// 2N - 1, more than a u32 holds for N above 2^31.
    countdown: [u64; 2],
    /// State of the xorshift generator that draws the skips between samples.
    rng: u64,
    ring: rtrb::Producer<u8>,
}

impl Sampler {
    /// Applies new rates (at start and at a reload).
    pub fn set_rates(&mut self, rates: Rates) {
        self.rates = rates;
        self.countdown = [
            u64::from(rates.dropped.max(1)),
            u64::from(rates.forwarded.max(1)),
        ];
    }

    /// The rates in force.
    pub fn rates(&self) -> Rates {
        self.rates
    }

    /// Samples `frame` when it is its turn. Never blocks, never allocates.
    #[inline]
    pub fn offer(&mut self, frame: &[u8], port: Direction, d: Decision, at_ns: u64) -> Offered {
        if d.reason == Reason::NonGre || d.reason == Reason::Oversize {
            return Offered::Skipped;
        }
        let (slot, every) = match d.verdict {
            Verdict::Drop => (0, self.rates.dropped),
            Verdict::Forward => (1, self.rates.forwarded),
        };
        if every == 0 {
            return Offered::Skipped;
        }
        self.countdown[slot] -= 1;
        if self.countdown[slot] != 0 {
            return Offered::Skipped;
        }
        self.countdown[slot] = next_skip(&mut self.rng, every);
        if self.write(frame, port, d, at_ns) {
            Offered::Taken
        } else {
            Offered::Lost
        }
    }

    /// Writes one record; false when the ring has no room for it.
    #[inline]
    fn write(&mut self, frame: &[u8], port: Direction, d: Decision, at_ns: u64) -> bool {
        let caplen = frame
            .len()
            .min(self.rates.snaplen as usize)
            .min(usize::from(u16::MAX));
        let mut header = [0u8; HEADER];
        header[0] = port as u8;
        header[1] = d.verdict as u8;
        header[2] = d.reason as u8;
        header[4..8].copy_from_slice(&d.tunnel.to_le_bytes());
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        header[8..12].copy_from_slice(&len.to_le_bytes());
        // caplen is at most u16::MAX (above).
        #[allow(clippy::cast_possible_truncation)]
        let caplen16 = caplen as u16;
        header[12..14].copy_from_slice(&caplen16.to_le_bytes());
        header[16..24].copy_from_slice(&at_ns.to_le_bytes());
        let Ok(mut chunk) = self.ring.write_chunk(HEADER + caplen) else {
            return false;
        };
        let (a, b) = chunk.as_mut_slices();
        copy_split(a, b, [&header, &frame[..caplen]]);
        chunk.commit_all();
        true
    }
}

/// Copies `parts` one after the other into the two halves `a` and `b` of a ring chunk,
/// wherever the wrap falls (their lengths add up to the chunk's).
#[inline]
fn copy_split(a: &mut [u8], b: &mut [u8], parts: [&[u8]; 2]) {
    let mut at = 0;
    for mut src in parts {
        if at < a.len() {
            let n = (a.len() - at).min(src.len());
            a[at..at + n].copy_from_slice(&src[..n]);
            at += n;
            src = &src[n..];
        }
        if !src.is_empty() {
            let off = at - a.len();
            b[off..off + src.len()].copy_from_slice(src);
            at += src.len();
        }
    }
}

/// The slow path's reading end of a worker's sample ring.
pub struct SampleReader {
    ring: rtrb::Consumer<u8>,
}

impl SampleReader {
    /// The oldest sample, if any.
    pub fn pop(&mut self) -> Option<Sample> {
        let mut header = [0u8; HEADER];
        {
            let chunk = self.ring.read_chunk(HEADER).ok()?;
            let (a, b) = chunk.as_slices();
            header[..a.len()].copy_from_slice(a);
            header[a.len()..].copy_from_slice(b);
            // Dropped without commit: the record stays until it is read whole below.
        }
        let caplen = usize::from(u16::from_le_bytes([header[12], header[13]]));
        // The worker commits a record at once, so its bytes are all there.
        let chunk = self.ring.read_chunk(HEADER + caplen).ok()?;
        let (a, b) = chunk.as_slices();
        let mut data = Vec::with_capacity(caplen);
        data.extend(a.iter().chain(b).skip(HEADER));
        chunk.commit_all();
        let port = if header[0] == Direction::FromInside as u8 {
            Direction::FromInside
        } else {
            Direction::FromOutside
        };
        let verdict = if header[1] == Verdict::Forward as u8 {
            Verdict::Forward
        } else {
            Verdict::Drop
        };
        let reason = Reason::ALL
            .get(usize::from(header[2]))
            .copied()
            .unwrap_or(Reason::Truncated);
        let le32 =
            |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
        let mut at = [0u8; 8];
        at.copy_from_slice(&header[16..24]);
        Some(Sample {
            port,
            decision: Decision {
                verdict,
                reason,
                tunnel: le32(4),
            },
            len: le32(8),
            at_ns: u64::from_le_bytes(at),
            data,
        })
    }
}

/// Frames to skip before the next sample: uniform in `1..=2N-1`, so one in N on average. A
/// fixed skip of N would alias with periodic traffic (a generator's cycle, a scanner's sweep)
/// and sample the same few sources every time, which sFlow's random skip avoids too.
#[inline]
fn next_skip(rng: &mut u64, every: u32) -> u64 {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    let n = u64::from(every.max(1));
    1 + *rng % (2 * n - 1)
}

/// The outer source address of an Ethernet frame (untagged, 802.1Q or QinQ; IPv4 or IPv6).
fn outer_source(frame: &[u8]) -> Option<IpAddr> {
    use validator::wire::ethernet::ethertype;
    let (ethertype, ip) = validator::wire::vlan::untag(frame).ok()?;
    match ethertype {
        ethertype::IPV4 => {
            let s: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            Some(Ipv4Addr::from(s).into())
        }
        ethertype::IPV6 => {
            let s: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            Some(Ipv6Addr::from(s).into())
        }
        _ => None,
    }
}

#[cfg(test)]
// Test frames are under 100 bytes and their bytes are cut from counters on purpose.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use frames::{FrameBuilder, Gre};

    fn rates(dropped: u32, forwarded: u32, snaplen: u32) -> Rates {
        Rates {
            dropped,
            forwarded,
            snaplen,
        }
    }

    #[test]
    fn reads_the_outer_source_behind_vlan_tags() {
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
            assert_eq!(outer_source(&frame), Some(IpAddr::from(src)));
        }
        let v6: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let frame = FrameBuilder::ipv6(v6, "2001:db8::1".parse().unwrap())
            .gre(Gre::v0(0x86DD), vec![0; 40])
            .build();
        assert_eq!(outer_source(&frame), Some(IpAddr::from(v6)));
        assert_eq!(outer_source(&[0u8; 10]), None);
        let arp = FrameBuilder::arp_request(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST).build();
        assert_eq!(outer_source(&arp), None);
        let mut cut = FrameBuilder::ipv4(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST).build();
        cut.truncate(20);
        assert_eq!(outer_source(&cut), None);
    }

    #[test]
    fn records_round_trip_across_the_ring_wrap_with_any_snap_length() {
        let (mut w, mut r) = ring(64);
        w.set_rates(rates(1, 1, 1500));
        let drop = Decision {
            verdict: Verdict::Drop,
            reason: Reason::KeyMismatch,
            tunnel: 3,
        };
        // Records of odd sizes, many times around a small ring, so every split of header and
        // data over the wrap occurs.
        for i in 0..20_000u32 {
            let frame: Vec<u8> = (0..(i % 97) as u8 + 1).map(|b| b ^ i as u8).collect();
            assert_eq!(
                w.offer(&frame, Direction::FromInside, drop, u64::from(i)),
                Offered::Taken
            );
            let s = r.pop().expect("a sample");
            assert_eq!(s.data, frame);
            assert_eq!(
                (s.port, s.decision, s.len, s.at_ns),
                (
                    Direction::FromInside,
                    drop,
                    frame.len() as u32,
                    u64::from(i)
                )
            );
            assert!(r.pop().is_none());
        }
    }

    #[test]
    fn a_full_ring_loses_samples_and_the_snap_length_cuts() {
        let (mut w, mut r) = ring(100);
        w.set_rates(rates(1, 0, 64));
        let d = Decision::new(Verdict::Drop, Reason::UnknownTunnel);
        let frame = vec![7u8; 100];
        let mut taken = 0;
        while w.offer(&frame, Direction::FromOutside, d, 0) == Offered::Taken {
            taken += 1;
        }
        assert!(taken >= RING_FRAMES, "{taken}");
        assert_eq!(w.offer(&frame, Direction::FromOutside, d, 0), Offered::Lost);
        let s = r.pop().unwrap();
        assert_eq!((s.data.len(), s.len), (64, 100));
        assert_eq!(
            w.offer(&frame, Direction::FromOutside, d, 0),
            Offered::Taken
        );
    }

    #[test]
    fn each_verdict_has_its_own_rate_and_non_gre_is_never_sampled() {
        let (mut w, mut r) = ring(128);
        w.set_rates(rates(10, 0, 128));
        let frame = [1u8; 60];
        let drop = Decision::new(Verdict::Drop, Reason::BadChecksum);
        let fwd = Decision::new(Verdict::Forward, Reason::Tunnel);
        let non_gre = Decision::new(Verdict::Forward, Reason::NonGre);
        let mut taken = [0; 3];
        for _ in 0..10_000 {
            for (k, d) in [drop, fwd, non_gre].into_iter().enumerate() {
                if w.offer(&frame, Direction::FromOutside, d, 0) == Offered::Taken {
                    taken[k] += 1;
                }
            }
            while r.pop().is_some() {}
        }
        assert!((800..1200).contains(&taken[0]), "{taken:?}");
        assert_eq!(taken[1..], [0, 0]);
        w.set_rates(rates(0, 1, 128));
        assert_eq!(
            w.offer(&frame, Direction::FromOutside, fwd, 0),
            Offered::Taken
        );
        assert_eq!(
            w.offer(&frame, Direction::FromOutside, drop, 0),
            Offered::Skipped
        );
        assert!(r.pop().is_some_and(|s| !s.dropped()));
    }

    #[test]
    fn sample_skips_average_one_in_n_and_stay_in_range() {
        let mut rng = 0x9E37_79B9_7F4A_7C15;
        // u32::MAX: skips beyond u32 (up to 2^33 - 3) must stay whole, never wrap to 0.
        for n in [1u32, 2, 50, 1000, u32::MAX] {
            let draws: Vec<u64> = (0..100_000).map(|_| next_skip(&mut rng, n)).collect();
            assert!(draws.iter().all(|&d| (1..2 * u64::from(n)).contains(&d)));
            let mean = draws.iter().map(|&d| d as f64).sum::<f64>() / draws.len() as f64;
            assert!(
                (mean - f64::from(n)).abs() <= f64::from(n) * 0.02 + 0.01,
                "n {n}: mean {mean}"
            );
        }
    }
}

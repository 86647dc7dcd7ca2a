//! Verdicts and reasons: the single source of the names used in `replay` output, metrics labels and
//! logs (the README's Verdicts and reasons). The discriminants are stable and dense so counters can
//! be plain arrays.

use core::fmt;

/// What happens to a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Verdict {
    /// The frame leaves unchanged on the other port.
    Forward = 0,
    /// The frame goes back to the fill ring.
    Drop = 1,
}

impl Verdict {
    /// Both verdicts, in counter order.
    pub const ALL: [Verdict; 2] = [Verdict::Forward, Verdict::Drop];
    /// Number of verdicts (size of counter arrays).
    pub const COUNT: usize = 2;

    /// The stable snake_case name.
    pub const fn name(self) -> &'static str {
        match self {
            Verdict::Forward => "forward",
            Verdict::Drop => "drop",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a frame got its verdict. The order of the variants is the order of the checks
/// (frame and outer IP → GRE header → inner packet → tunnel match → tunnel rules → policers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Reason {
    /// Not IP protocol 47 (including non-IP frames such as ARP).
    NonGre = 0,
    /// The frame ends before a header it announces ends.
    Truncated,
    /// The outer IP header is invalid in itself.
    BadIp,
    /// Outer or inner source address can never be a real sender.
    Bogon,
    /// GRE in an IP fragment; the box does not reassemble.
    Fragment,
    /// GRE version other than 0 or 1.
    BadVersion,
    /// Flag bits that RFC 2784 §2.3 / RFC 2637 §4.1 say to discard.
    BadFlags,
    /// Version 0 with bits of 0x03F8 set (RFC 2784 says ignore them).
    ReservedBits,
    /// The GRE checksum does not verify.
    BadChecksum,
    /// The payload is not what the protocol type says.
    BadInner,
    /// Valid GRE, but no tunnel matches the outer addresses.
    UnknownTunnel,
    /// The addresses match a tunnel, the key does not.
    KeyMismatch,
    /// The matching tunnel does not allow this protocol type.
    ProtocolDenied,
    /// The inner packet is itself GRE and the tunnel does not allow nesting.
    NestedGre,
    /// C bit against the tunnel's `checksum` rule.
    ChecksumPolicy,
    /// S bit against the tunnel's `sequence` rule.
    SequencePolicy,
    /// Over the tunnel's policer or the shared budget of a rate-limit action.
    RateLimited,
    /// Valid GRE matching a configured tunnel.
    Tunnel,
    /// Frame larger than a UMEM frame can hold (data path only).
    Oversize,
}

impl Reason {
    /// Number of reasons (size of counter arrays).
    pub const COUNT: usize = 19;

    /// Every reason, in check order.
    pub const ALL: [Reason; Reason::COUNT] = [
        Reason::NonGre,
        Reason::Truncated,
        Reason::BadIp,
        Reason::Bogon,
        Reason::Fragment,
        Reason::BadVersion,
        Reason::BadFlags,
        Reason::ReservedBits,
        Reason::BadChecksum,
        Reason::BadInner,
        Reason::UnknownTunnel,
        Reason::KeyMismatch,
        Reason::ProtocolDenied,
        Reason::NestedGre,
        Reason::ChecksumPolicy,
        Reason::SequencePolicy,
        Reason::RateLimited,
        Reason::Tunnel,
        Reason::Oversize,
    ];

    /// The stable snake_case name used in CSV, metrics and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Reason::NonGre => "non_gre",
            Reason::Truncated => "truncated",
            Reason::BadIp => "bad_ip",
            Reason::Bogon => "bogon",
            Reason::Fragment => "fragment",
            Reason::BadVersion => "bad_version",
            Reason::BadFlags => "bad_flags",
            Reason::ReservedBits => "reserved_bits",
            Reason::BadChecksum => "bad_checksum",
            Reason::BadInner => "bad_inner",
            Reason::UnknownTunnel => "unknown_tunnel",
            Reason::KeyMismatch => "key_mismatch",
            Reason::ProtocolDenied => "protocol_denied",
            Reason::NestedGre => "nested_gre",
            Reason::ChecksumPolicy => "checksum_policy",
            Reason::SequencePolicy => "sequence_policy",
            Reason::RateLimited => "rate_limited",
            Reason::Tunnel => "tunnel",
            Reason::Oversize => "oversize",
        }
    }

    /// Looks a reason up by its name.
    pub fn from_name(name: &str) -> Option<Reason> {
        Reason::ALL.iter().copied().find(|r| r.name() == name)
    }

    /// The reason's position in counter arrays.
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Tunnel index meaning "no tunnel matched".
pub const NO_TUNNEL: u32 = u32::MAX;

/// One frame's outcome: verdict, reason, and the tunnel whose addresses matched (or [`NO_TUNNEL`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    pub reason: Reason,
    pub tunnel: u32,
}

impl Decision {
    /// A decision without a tunnel.
    #[inline]
    pub const fn new(verdict: Verdict, reason: Reason) -> Self {
        Decision {
            verdict,
            reason,
            tunnel: NO_TUNNEL,
        }
    }

    /// The matched tunnel's index, if any.
    #[inline]
    pub fn tunnel(&self) -> Option<usize> {
        (self.tunnel != NO_TUNNEL).then_some(self.tunnel as usize)
    }
}

impl Default for Decision {
    fn default() -> Self {
        Decision::new(Verdict::Drop, Reason::Truncated)
    }
}

/// Which port a frame arrived on; it decides the orientation of the tunnel match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Direction {
    /// Arrived on the outside port: outer source is the peer, destination the local end.
    FromOutside = 0,
    /// Arrived on the inside port: outer source is the local end, destination the peer.
    FromInside = 1,
}

impl Direction {
    /// Both ports, in index order (outside 0, inside 1).
    pub const BOTH: [Direction; 2] = [Direction::FromOutside, Direction::FromInside];

    /// The port's index in per-port arrays.
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The other port: where a frame that arrived on this one leaves.
    #[inline]
    pub const fn other(self) -> Direction {
        match self {
            Direction::FromOutside => Direction::FromInside,
            Direction::FromInside => Direction::FromOutside,
        }
    }

    /// The port name the frame arrived on.
    pub const fn port(self) -> &'static str {
        match self {
            Direction::FromOutside => "outside",
            Direction::FromInside => "inside",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
            assert_eq!(Reason::from_name(r.name()), Some(*r));
        }
        let mut names: Vec<_> = Reason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Reason::COUNT);
    }
}

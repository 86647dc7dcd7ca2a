//! The straight path: the classifier's stages ([`crate::classify`]) specialised for the frames a
//! GRE concentrator mostly sees — untagged Ethernet and a 20-byte IPv4 header, then anything but
//! GRE, or GRE version 0 carrying IPv4, IPv6, Ethernet (TEB) or a keepalive to a host-pair
//! tunnel. The headers are read once, at fixed offsets after one length check, into registers.
//!
//! Checks that a working peer's frames pass (the outer header, the GRE flags, the GRE checksum)
//! run in the stages' order and return early, as the stages do: branches the predictor gets
//! right. The outcomes that real traffic mixes frame by frame — tunnel traffic, the backscatter
//! of unknown tunnels and garbage payloads, wrong keys — are decided without a branch on what
//! the frame holds: each of those checks sets one bit of a mask, in stage order, and the lowest
//! bit set decides, exactly as the stages' first early return would. A check after the deciding
//! one may look at bytes that mean nothing (the inner packet of a garbage payload); it only ever
//! reads within the frame, and its bit is never the lowest.
//!
//! What the straight path does not do itself — fragments, bogon sources, PPTP, other payload
//! classes and shapes (IPv6 extension headers, VLAN tags inside), pairs of several tunnels,
//! prefix tunnels, frames the tunnel's rules refuse — is a detour: `None`, and the frame goes
//! through the stages, which stay the reference and name its reason. A detour is always right,
//! so a detour may be taken earlier than its check's place in the stages; a differential test
//! holds the two paths to the same decisions.

use crate::bogon::BOGON_FIRST_OCTETS;
use crate::checksum;
use crate::policy::{Action, Defaults, FlagRule, HotRule, Policy, Select};
use crate::policy::{HOT_NESTED, HOT_RATE};
use crate::protocols::ProtoClass;
use crate::reason::{Decision, Direction, Reason, Verdict};
use crate::wire::ethernet::ethertype;
use crate::wire::gre::{flags, proto};
use crate::wire::ipv4::protocol;
use crate::wire::ipv6::is_walked_extension;
use crate::wire::numbers::ipv4_fragment;
use crate::wire::{be16, be16_at};

/// The outcomes of the straight path, in stage order. Up to `Checksum` they are decided by an
/// early return; from `Inner` on, by the lowest bit of a mask ([`Failed`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Check {
    /// The total length runs past the frame (RFC 791 §3.1).
    Truncated,
    /// GRE shorter than its base header, or than the optional fields C, K and S announce
    /// (RFC 2784 §2.1, RFC 2890 §2).
    GreTruncated,
    /// A version other than 0 or 1.
    Version,
    /// RFC 2784 §2.3: a bit the receiver MUST discard for.
    Flags,
    /// RFC 2784 §2.3: a reserved bit, which the policy drops (`reserved_bits`).
    Reserved,
    /// RFC 2784 §2.5: C set and the checksum does not verify.
    Checksum,
}

/// The checks the straight path decides by a mask, a bit each, in stage order: the lowest bit
/// set decides. Bit `PASSED` is always set: tunnel traffic when no check failed.
mod failed {
    /// The payload is not what the protocol type says (`bad_inner`).
    pub const INNER: u8 = 1;
    /// Detour: several tunnels on the pair, or prefix tunnels to search (the stages resolve
    /// them).
    pub const SEARCH: u8 = 2;
    /// No tunnel has these addresses.
    pub const UNKNOWN: u8 = 4;
    /// A tunnel has the addresses, not the key (RFC 2890 §2.1).
    pub const KEY: u8 = 8;
    /// Detour: the tunnel's rules refuse the frame; the stages name the rule.
    pub const REFUSED: u8 = 16;
    /// No check failed.
    pub const PASSED: u8 = 32;
    /// Outcomes by the lowest bit set.
    pub const OUTCOMES: usize = 6;
}

/// What the policy's defaults make of one outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The decision; its `tunnel` is ORed with the matched tunnel's index, so 0 names the
    /// tunnel and [`crate::NO_TUNNEL`] does not.
    decision: Decision,
    /// The entry's [`Admit::police`] bits that send the decision to a policer ([`HOT_RATE`]
    /// for tunnel traffic), or [`BUDGET`] for a `rate-limit` action.
    police: u8,
    /// The frame goes through the stages.
    detour: bool,
}

/// [`Outcome::police`]: the shared budget of a `rate-limit` action decides. Above every
/// `HOT_*` bit.
const BUDGET: u8 = 0x80;

/// The straight path's outcomes and tables under one policy's defaults, computed when the
/// policy is built, so that a frame's decision is one table load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Outcomes {
    non_gre: Decision,
    /// The flag and version bits of a GRE header the straight path does not take as they are:
    /// any version but 0, the bits RFC 2784 §2.3 says to discard for, and the reserved bits
    /// when the policy drops them.
    gre_refused: u16,
    /// First octets of the outer sources to drop ([`BOGON_FIRST_OCTETS`], or none when the
    /// policy does not drop bogons).
    bogons: [u64; 4],
    /// First octets of inner sources the straight path leaves to the stages: IPv4's set, then
    /// IPv6's ([`SUSPECT_FIRST_OCTETS`], or none when the policy does not drop bogons).
    suspects: [u64; 8],
    early: [Outcome; Check::Checksum as usize + 1],
    by_mask: [Outcome; failed::OUTCOMES],
}

impl Outcomes {
    /// The outcomes under `d`.
    pub(crate) fn of(d: &Defaults) -> Outcomes {
        let plain = |verdict: Verdict, reason: Reason| Outcome {
            decision: Decision::new(verdict, reason),
            police: 0,
            detour: false,
        };
        let by = |reason: Reason, action: Action| {
            let verdict = if action == Action::Forward {
                Verdict::Forward
            } else {
                Verdict::Drop
            };
            let police = if action == Action::RateLimit {
                BUDGET
            } else {
                0
            };
            Outcome {
                police,
                ..plain(verdict, reason)
            }
        };
        let named = |verdict: Verdict, reason: Reason, police: u8| Outcome {
            decision: Decision {
                verdict,
                reason,
                tunnel: 0,
            },
            police,
            detour: false,
        };
        let detour = Outcome {
            decision: Decision::default(),
            police: 0,
            detour: true,
        };
        let invalid = |reason: Reason| by(reason, d.invalid_gre);
        Outcomes {
            non_gre: Decision::new(d.non_gre, Reason::NonGre),
            gre_refused: flags::VERSION
                | flags::V0_MUST_DISCARD
                | if d.drop_reserved_bits {
                    flags::V0_RESERVED
                } else {
                    0
                },
            bogons: if d.drop_bogons {
                BOGON_FIRST_OCTETS
            } else {
                [0; 4]
            },
            suspects: if d.drop_bogons {
                SUSPECT_FIRST_OCTETS
            } else {
                [0; 8]
            },
            // In `Check` order.
            early: [
                plain(Verdict::Drop, Reason::Truncated),
                invalid(Reason::Truncated),
                invalid(Reason::BadVersion),
                invalid(Reason::BadFlags),
                plain(Verdict::Drop, Reason::ReservedBits),
                invalid(Reason::BadChecksum),
            ],
            // By the lowest bit of the mask: INNER, SEARCH, UNKNOWN, KEY, REFUSED, PASSED.
            by_mask: [
                invalid(Reason::BadInner),
                detour,
                by(Reason::UnknownTunnel, d.unknown_tunnel),
                named(Verdict::Drop, Reason::KeyMismatch, 0),
                detour,
                named(Verdict::Forward, Reason::Tunnel, HOT_RATE),
            ],
        }
    }

    /// The decision of a frame that failed check `c`.
    #[inline(always)]
    fn early(&self, c: Check) -> Option<Judged> {
        let o = self.early.get(c as usize)?;
        Some((o.decision, o.police != 0))
    }
}

/// A frame judged by the straight path: its decision, and whether a policer has a say first
/// (the tunnel's, for tunnel traffic; else the shared budget).
pub(crate) type Judged = (Decision, bool);

/// Ethernet (14 bytes), IPv4 (20) and the GRE base header with one optional word (8): what the
/// straight path reads at fixed offsets after a single length check.
const HEAD_LEN: usize = 42;
/// Offsets in the head.
const ETHERTYPE: usize = 12;
const IP: usize = 14;
const GRE: usize = IP + 20;

/// Judges a frame that arrived from `dir`, or `None` when it takes a detour through the stages.
#[inline(always)]
pub(crate) fn judge(policy: &Policy, dir: Direction, frame: &[u8]) -> Option<Judged> {
    let head = frame.first_chunk::<HEAD_LEN>()?;
    // Untagged IPv4 of version 4 with a 20-byte header (RFC 791 §3.1); the rest go through the
    // stages.
    if (be16_at(head, ETHERTYPE) != ethertype::IPV4) | (head[IP] != 0x45) {
        return None;
    }
    if head[IP + 9] != protocol::GRE {
        return Some((policy.outcomes().non_gre, false));
    }
    judge_gre(policy, dir, head, frame)
}

/// [`judge`] for GRE.
#[inline(never)]
fn judge_gre(
    policy: &Policy,
    dir: Direction,
    head: &[u8; HEAD_LEN],
    frame: &[u8],
) -> Option<Judged> {
    let outcomes = policy.outcomes();
    if !sound_outer(head, &outcomes.bogons) {
        return None;
    }
    // Stage 1's last check: the total length within the frame (RFC 791 §3.1).
    let Some(gre) = frame.get(GRE..IP + usize::from(be16_at(head, IP + 2))) else {
        return outcomes.early(Check::Truncated);
    };
    let g = match GreHead::read(head, gre, outcomes.gre_refused) {
        Ok(g) => g,
        Err(c) => return outcomes.early(c?),
    };
    let payload = gre.get(g.header_len..).unwrap_or(&[]);
    let (class, inner) = inner_facts(g.protocol, payload, &outcomes.suspects)?;
    // The pair's 8 bytes as the wire carries them: source then destination (the table's key
    // for a frame from outside, `Family::key`).
    let wire_pair = head
        .get(IP + 12..GRE)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_le_bytes);
    let key = match dir {
        Direction::FromOutside => wire_pair,
        Direction::FromInside => wire_pair.rotate_left(32),
    };
    let entry = policy.entry_v4(key);
    let a = &entry.admit;
    // The entry's own failures (no tunnel, several or prefixes to search); the key only when
    // the tunnel has a key rule and the frame's key is not the one it wants.
    let key_differs = u8::from(g.wire_key != entry.want) * failed::KEY;
    let shape = class + 4 * inner.kind;
    let flags = g.flags;
    let taken = (a.classes >> shape) & u16::from(a.flags >> flags) & 1;
    let mask = (u8::from(inner.bad) * failed::INNER)
        | (a.fail & (failed::SEARCH | failed::UNKNOWN | key_differs))
        | (u8::from(taken == 0) * failed::REFUSED)
        | failed::PASSED;
    let o = outcomes.by_mask.get(mask.trailing_zeros() as usize)?;
    if o.detour {
        return None;
    }
    let decision = Decision {
        tunnel: o.decision.tunnel | entry.tunnel,
        ..o.decision
    };
    Some((decision, (a.police | BUDGET) & o.police != 0))
}

/// Stage 1 past the protocol, for a 20-byte IPv4 header (RFC 791 §3.1): the total length no
/// shorter than the header and the header checksum, then the outer source (docs/policy.md
/// Bogons, `bogons` the first octets to drop) and fragments (RFC 791 §3.2). False (a detour:
/// the stages name the reason) when any of that fails, which a working peer's frames never do.
#[inline(always)]
fn sound_outer(head: &[u8; HEAD_LEN], bogons: &[u64; 4]) -> bool {
    let Some(header) = head.first_chunk::<GRE>().and_then(|h| h.last_chunk::<20>()) else {
        return false;
    };
    let total = be16_at(head, IP + 2);
    let fragment = be16_at(head, IP + 6) & ipv4_fragment::ANY != 0;
    let bogon = octet_in(bogons, 0, head[IP + 12]);
    checksum::verifies_header(header) & !fragment & !bogon & (total >= 20)
}

/// True when `octet` is in the 256-bit set that starts at word `at` of `sets`.
#[inline(always)]
fn octet_in<const N: usize>(sets: &[u64; N], at: usize, octet: u8) -> bool {
    let word = sets.get(at + usize::from(octet >> 6)).copied().unwrap_or(0);
    word >> (octet & 63) & 1 != 0
}

/// The GRE header (RFC 2784 §2, RFC 2890 §2) read into registers.
#[derive(Clone, Copy, Debug)]
struct GreHead {
    protocol: u16,
    /// 4, plus 4 for each of C, K and S.
    header_len: usize,
    /// The key as [`crate::policy::wire_key`] gives it.
    wire_key: u64,
    /// `2 × C + S`, the index into [`Admit::flags`].
    flags: u8,
}

impl GreHead {
    /// Stage 2 on `gre`, whose first 8 bytes end `head`: the header the straight path takes —
    /// version 0, none of the `refused` bits (RFC 2784 §2.3), the optional fields within the
    /// packet (RFC 2784 §2.1, RFC 2890 §2), and with C a checksum that verifies (RFC 2784
    /// §2.5). `Err` with the failed check, or `None` for a detour.
    #[inline(always)]
    fn read(head: &[u8; HEAD_LEN], gre: &[u8], refused: u16) -> Result<GreHead, Option<Check>> {
        let fv = be16_at(head, GRE);
        let (c, k, s) = (fv & flags::C != 0, fv & flags::K != 0, fv & flags::S != 0);
        let header_len = 4 + 4 * (usize::from(c) + usize::from(k) + usize::from(s));
        if (fv & refused != 0) | (gre.len() < header_len) {
            return Err(refusal(fv, gre.len(), header_len));
        }
        // The key field follows the checksum word when C is set (RFC 2890 §2.1). Without C it
        // is in the head whether or not K announces it: read either way and masked out
        // without K, so no branch on K.
        let key = if !c {
            head.last_chunk::<4>().map_or(0, |w| u32::from_le_bytes(*w))
        } else {
            if !checksum::verifies(gre) {
                return Err(Some(Check::Checksum));
            }
            gre.get(8..12)
                .and_then(|w| <[u8; 4]>::try_from(w).ok())
                .map_or(0, u32::from_le_bytes)
        };
        Ok(GreHead {
            protocol: be16_at(head, GRE + 2),
            header_len,
            wire_key: (u64::from(k) << 32 | u64::from(key)) & u64::from(k).wrapping_neg(),
            flags: 2 * u8::from(c) + u8::from(s),
        })
    }
}

/// Which check a GRE header the straight path does not take fails, in the stages' order: the
/// base header, the version, the MUST-discard bits, the reserved bits (refused only when the
/// policy drops them), the optional fields. `None` (a detour) for version 1 (PPTP, RFC 2637
/// §4.1).
#[cold]
#[inline(never)]
fn refusal(fv: u16, len: usize, header_len: usize) -> Option<Check> {
    let version = fv & flags::VERSION;
    if len < 4 {
        Some(Check::GreTruncated)
    } else if version == 1 {
        None
    } else if version != 0 {
        Some(Check::Version)
    } else if fv & flags::V0_MUST_DISCARD != 0 {
        Some(Check::Flags)
    } else if fv & flags::V0_RESERVED != 0 {
        Some(Check::Reserved)
    } else if len < header_len {
        Some(Check::GreTruncated)
    } else {
        None
    }
}

/// What the straight path learns of a GRE payload: [`crate::inner::check`] for the classes it
/// takes.
#[derive(Clone, Copy, Debug, Default)]
struct InnerFacts {
    /// Not what the protocol type says (`bad_inner`).
    bad: bool,
    /// 0 a plain packet, 1 nested GRE, 2 a Cisco keepalive (the index into [`Admit::classes`]
    /// is the class plus 4 times this).
    kind: u8,
}

/// [`InnerFacts::kind`] of nested GRE.
const NESTED: u8 = 1;
/// [`InnerFacts::kind`] of a keepalive.
const KEEPALIVE: u8 = 2;

/// The bytes of an inner IP header read at fixed offsets: all of IPv4's fixed header, and
/// IPv6's up to the end of the source address.
const INNER_HEAD: usize = 24;
/// Ethernet header length (IEEE 802.3 §3.1.1).
const ETHERNET: usize = 14;

/// First octets of inner sources the straight path leaves to the stages, IPv4's set then
/// IPv6's: IPv4 bogons ([`crate::bogon`]); for IPv6 ff00::/8 and ::/8 (which holds :: and ::1,
/// and which the stages look at closer).
const SUSPECT_FIRST_OCTETS: [u64; 8] = {
    let v4 = BOGON_FIRST_OCTETS;
    [v4[0], v4[1], v4[2], v4[3], 1, 0, 0, 1 << 63]
};

/// The class (its [`ProtoClass`] discriminant: keepalive 0, IPv4 1, IPv6 2, TEB 3) and the
/// facts of a payload of GRE protocol type `protocol`; `None` (a detour) for other classes.
/// IPv4 and IPv6 — nearly all tunnel traffic — are one computation, without a branch on which.
#[inline(always)]
fn inner_facts(protocol: u16, payload: &[u8], suspects: &[u64; 8]) -> Option<(u8, InnerFacts)> {
    // The class from its table (one load), then one range test for IPv4 or IPv6: compares of
    // the protocol type itself would become a search tree of branches.
    let class = ProtoClass::of(protocol) as u8;
    if class.wrapping_sub(ProtoClass::Ipv4 as u8) < 2 {
        let facts = inner_ip(payload, class == ProtoClass::Ipv6 as u8, suspects)?;
        return Some((class, facts));
    }
    match protocol {
        proto::TEB => Some((class, bridged(payload)?)),
        proto::KEEPALIVE => Some((class, InnerFacts::default())),
        _ => None,
    }
}

/// IPv4 (RFC 791 §3.1) or IPv6 (RFC 8200 §3) inside, one computation with each family's
/// offsets: the version, the header and total (or payload) length within the payload; inner
/// GRE. `None` (a detour) when the payload is too short to be read at fixed offsets, or — unless
/// it is no packet of its type anyway — has IPv6 extension headers to walk or a source in
/// `suspects` (docs/policy.md Bogons).
#[inline(always)]
fn inner_ip(payload: &[u8], v6: bool, suspects: &[u64; 8]) -> Option<InnerFacts> {
    let h = payload.first_chunk::<INNER_HEAD>()?;
    let family = usize::from(v6);
    let first = h[0];
    let header_len = if v6 {
        40
    } else {
        usize::from(first & 0x0F) * 4
    };
    // IPv4's total length at 2; IPv6's payload length at 4, after the 40-byte header.
    let total = usize::from(be16_at(h, 2 + 2 * family)) + 40 * family;
    let bad = (first >> 4 != 4 + 2 * u8::from(v6))
        | (header_len < 20)
        | (total < header_len)
        | (total > payload.len());
    let next = if v6 { h[6] } else { h[9] };
    let source = if v6 { h[8] } else { h[12] };
    let suspect = octet_in(suspects, 4 * family, source);
    if !bad & ((v6 & is_walked_extension(next)) | suspect) {
        return None;
    }
    // Inner GRE is rare: a branch the predictor gets right.
    let kind = if next == protocol::GRE {
        if keepalive(payload, v6, header_len, total) {
            KEEPALIVE
        } else {
            NESTED
        }
    } else {
        0
    };
    Some(InnerFacts { bad, kind })
}

/// A Cisco keepalive: GRE of protocol type 0 in a whole (unfragmented) inner packet, whose
/// header ends at `header_len` and the packet at `total`.
#[inline(always)]
fn keepalive(ip: &[u8], v6: bool, header_len: usize, total: usize) -> bool {
    let fragment = !v6 & (be16(ip, 6) & ipv4_fragment::ANY != 0);
    !fragment
        & (total.wrapping_sub(header_len) >= 4)
        & (be16(ip, header_len + 2) == proto::KEEPALIVE)
}

/// Transparent Ethernet bridging: at least an Ethernet header (IEEE 802.3 §3.1.1), and GRE one
/// carrier deep — an IPv4 or IPv6 packet in the bridged frame that carries GRE is nested (as
/// [`crate::inner`] checks it). `None` (a detour) for anything else in the bridged frame (a
/// VLAN tag, say) and for IPv6 extension headers.
#[inline(always)]
fn bridged(payload: &[u8]) -> Option<InnerFacts> {
    let Some(eth) = payload.first_chunk::<ETHERNET>() else {
        return Some(InnerFacts { bad: true, kind: 0 });
    };
    let ip = payload.get(ETHERNET..).unwrap_or(&[]);
    let version = ip.first().map_or(0, |b| b >> 4);
    let gre = match be16_at(eth, ETHERNET - 2) {
        ethertype::IPV4 => ip.len() >= 20 && version == 4 && ip.get(9) == Some(&protocol::GRE),
        ethertype::IPV6 if ip.len() >= 40 && version == 6 => {
            let next = ip.get(6).copied().unwrap_or(0);
            if is_walked_extension(next) {
                return None;
            }
            next == protocol::GRE
        }
        ethertype::IPV6 => false,
        _ => return None,
    };
    Some(InnerFacts {
        bad: false,
        kind: if gre { NESTED } else { 0 },
    })
}

/// What the straight path needs of a pair's entry, precomputed from its tunnel's rule
/// (docs/policy.md) when the policy is built, so that the tunnel stage of a frame is a few bit
/// tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Admit {
    /// Bit `class + 4 × kind` set when the rule takes a payload of that class (keepalive 0,
    /// IPv4 1, IPv6 2, TEB 3) and kind ([`InnerFacts::kind`]): the version (0 only here), the
    /// protocol classes (a keepalive is of its own class too) and `nested`.
    classes: u16,
    /// Bit `2 × C + S` set when the `checksum` and `sequence` rules take a frame with those
    /// bits.
    flags: u8,
    /// The entry's own [`failed`] bits: `UNKNOWN` for no tunnel, `SEARCH` for several tunnels
    /// or prefix tunnels to search, `KEY` when the tunnel has a key rule.
    fail: u8,
    /// [`HOT_RATE`] when the tunnel has a policer.
    police: u8,
}

impl Admit {
    /// The entry of `rule`'s tunnel, selected by key as `select` says.
    pub(crate) const fn of(rule: &HotRule, select: Select) -> Admit {
        let mut classes = 0u16;
        let mut class = 0;
        while class < 4 {
            let mut kind = 0;
            while kind < 3 {
                let allowed = rule.classes & (1 << class) != 0
                    || (kind == KEEPALIVE
                        && rule.classes & (1 << ProtoClass::Keepalive as u8) != 0);
                let nesting = kind != NESTED || rule.flags & HOT_NESTED != 0;
                if rule.version == 0 && allowed && nesting {
                    classes |= 1 << (class + 4 * kind);
                }
                kind += 1;
            }
            class += 1;
        }
        let mut flags = 0u8;
        let mut bits = 0;
        while bits < 4 {
            let (c, s) = (bits >> 1 == 1, bits & 1 == 1);
            if !violated(rule.checksum, c) && !violated(rule.sequence, s) {
                flags |= 1 << bits;
            }
            bits += 1;
        }
        let fail = match select {
            Select::Any => 0,
            Select::Absent | Select::Equal => failed::KEY,
            Select::Several => failed::SEARCH,
            Select::Vacant => failed::UNKNOWN,
        };
        Admit {
            classes,
            flags,
            fail,
            police: rule.flags & HOT_RATE,
        }
    }
}

/// True when a frame with the bit `present` breaks `rule` (RFC 2784 §2.5 C, RFC 2890 §2.2 S).
const fn violated(rule: FlagRule, present: bool) -> bool {
    match rule {
        FlagRule::Allow => false,
        FlagRule::Require => !present,
        FlagRule::Forbid => present,
    }
}

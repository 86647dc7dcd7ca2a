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
//! reads within the frame, and its bit is never the lowest. What the tunnel's rule says is
//! precomputed into its table entry as one bit per frame shape ([`accepting`]).
//!
//! What the straight path does not do itself — fragments, bogon sources, PPTP, other payload
//! classes and shapes (IPv6 extension headers, VLAN tags inside), pairs of several tunnels,
//! prefix tunnels, frames the tunnel's rules refuse — is a detour: `None`, and the frame goes
//! through the stages, which stay the reference and name its reason. A detour is always right,
//! so a detour may be taken earlier than its check's place in the stages; a differential test
//! (`tests/stages/straight_path.rs`) holds the two paths to the same decisions.

use crate::bogon::is_bogon_v4;
use crate::checksum;
use crate::classify::Buckets;
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

/// The outcomes of the straight path that an early return decides, in stage order.
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
/// set decides. `PASSED` is always set: tunnel traffic when no check failed. A miss in the
/// host table outranks every bit a table entry brings, so that on a miss the entry the probe
/// returns (another pair's) needs no masking out.
mod failed {
    /// The payload is not what the protocol type says (`bad_inner`).
    pub const INNER: u8 = 1;
    /// No tunnel has these addresses.
    pub const UNKNOWN: u8 = 2;
    /// Detour: several tunnels share the pair (the stages resolve them by key).
    pub const SEVERAL: u8 = 4;
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
    /// When the decision is not final: the entry's police bits that send it to a policer
    /// ([`HOT_RATE`] for tunnel traffic), [`BUDGET`] for a `rate-limit` action, [`DETOUR`] for a
    /// detour. One test of the entry's police bits ([`entry_police`]) against it covers them
    /// all.
    special: u8,
}

/// [`Outcome::special`]: the shared budget of a `rate-limit` action decides. Above every
/// `HOT_*` bit.
const BUDGET: u8 = 0x80;
/// [`Outcome::special`]: the frame goes through the stages.
const DETOUR: u8 = 0x40;
/// The bits of [`Outcome::special`] that do not depend on the entry: every entry's police
/// bits have them ([`entry_police`]).
const SPECIAL: u8 = BUDGET | DETOUR;

/// An entry's police bits for [`Outcome::special`]: [`HOT_RATE`] when its tunnel has a policer,
/// and the bits of every entry ([`SPECIAL`]).
pub(crate) const fn entry_police(rule: &HotRule) -> u8 {
    (rule.flags & HOT_RATE) | SPECIAL
}

/// The straight path's outcomes and tables under one policy's defaults, computed when the
/// policy is built, so that a frame's decision is one table load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Outcomes {
    non_gre: Decision,
    /// The flag and version bits of a GRE header the straight path does not take as they are:
    /// any version but 0, the bits RFC 2784 §2.3 says to discard for, and the reserved bits
    /// when the policy drops them.
    gre_refused: u16,
    /// What a byte tells the straight path, per family (IPv4, then IPv6): [`SUSPECT`] as the
    /// first octet of a source, [`WALKED`] as a next header. A table of bytes, so that a test
    /// is one load.
    bytes: [[u8; 256]; 2],
    early: [Outcome; Check::Checksum as usize + 1],
    by_mask: [Outcome; failed::OUTCOMES],
}

impl Outcomes {
    /// The outcomes under `d`.
    pub(crate) fn of(d: &Defaults) -> Outcomes {
        let plain = |verdict: Verdict, reason: Reason| Outcome {
            decision: Decision::new(verdict, reason),
            special: 0,
        };
        let by = |reason: Reason, action: Action| Outcome {
            decision: Decision::new(
                if action == Action::Forward {
                    Verdict::Forward
                } else {
                    Verdict::Drop
                },
                reason,
            ),
            special: if action == Action::RateLimit {
                BUDGET
            } else {
                0
            },
        };
        let named = |verdict: Verdict, reason: Reason, special: u8| Outcome {
            decision: Decision {
                verdict,
                reason,
                tunnel: 0,
            },
            special,
        };
        let detour = Outcome {
            decision: Decision::default(),
            special: DETOUR,
        };
        let invalid = |reason: Reason| by(reason, d.invalid_gre);
        let bytes = byte_tables(d.drop_bogons);
        Outcomes {
            non_gre: Decision::new(d.non_gre, Reason::NonGre),
            gre_refused: flags::VERSION
                | flags::V0_MUST_DISCARD
                | if d.drop_reserved_bits {
                    flags::V0_RESERVED
                } else {
                    0
                },
            bytes,
            // In `Check` order.
            early: [
                plain(Verdict::Drop, Reason::Truncated),
                invalid(Reason::Truncated),
                invalid(Reason::BadVersion),
                invalid(Reason::BadFlags),
                plain(Verdict::Drop, Reason::ReservedBits),
                invalid(Reason::BadChecksum),
            ],
            // By the lowest bit of the mask: INNER, UNKNOWN, SEVERAL, KEY, REFUSED, PASSED.
            by_mask: [
                invalid(Reason::BadInner),
                by(Reason::UnknownTunnel, d.unknown_tunnel),
                detour,
                named(Verdict::Drop, Reason::KeyMismatch, 0),
                detour,
                named(Verdict::Forward, Reason::Tunnel, HOT_RATE),
            ],
        }
    }

    /// A miss in the host table is a detour from now on: the policy has prefix tunnels, which
    /// the stages search.
    pub(crate) fn search_on_miss(&mut self) {
        if let Some(o) = self
            .by_mask
            .get_mut(failed::UNKNOWN.trailing_zeros() as usize)
        {
            o.special = DETOUR;
        }
    }

    /// Writes the decision of a frame that failed check `c` to `slot`.
    #[inline(always)]
    fn early(&self, c: Check, buckets: &Buckets, now_ns: u64, slot: &mut Decision) -> Done {
        let o = self.early.get(c as usize)?;
        *slot = o.decision;
        if o.special != 0 {
            *slot = buckets.police(o.decision, now_ns);
        }
        Some(())
    }
}

/// `Some` when the straight path wrote its decision, `None` for a detour through the stages.
pub(crate) type Done = Option<()>;

/// Ethernet (14 bytes), IPv4 (20) and the GRE base header with one optional word (8): what the
/// straight path reads at fixed offsets after a single length check.
const HEAD_LEN: usize = 42;
/// Offsets in the head.
const ETHERTYPE: usize = 12;
const IP: usize = 14;
const GRE: usize = IP + 20;

/// Decides a frame that arrived from `dir` at `now_ns` (policing it with `buckets` when a
/// policer has a say) into `slot`, or takes a detour through the stages (`None`).
#[inline(always)]
pub(crate) fn judge(
    policy: &Policy,
    buckets: &Buckets,
    now_ns: u64,
    dir: Direction,
    frame: &[u8],
    slot: &mut Decision,
) -> Done {
    let head = frame.first_chunk::<HEAD_LEN>()?;
    // Untagged IPv4 of version 4 with a 20-byte header (RFC 791 §3.1); the rest go through the
    // stages.
    if (be16_at(head, ETHERTYPE) != ethertype::IPV4) | (head[IP] != 0x45) {
        return None;
    }
    if head[IP + 9] != protocol::GRE {
        *slot = policy.outcomes().non_gre;
        return Some(());
    }
    judge_gre(policy, buckets, now_ns, dir, head, frame, slot)
}

/// [`judge`] for GRE.
#[inline(always)]
fn judge_gre(
    policy: &Policy,
    buckets: &Buckets,
    now_ns: u64,
    dir: Direction,
    head: &[u8; HEAD_LEN],
    frame: &[u8],
    slot: &mut Decision,
) -> Done {
    let outcomes = policy.outcomes();
    if !sound_outer(head, &outcomes.bytes[0]) {
        return None;
    }
    // Stage 1's last check: the total length within the frame (RFC 791 §3.1).
    let Some(gre) = frame.get(GRE..IP + usize::from(be16_at(head, IP + 2))) else {
        return outcomes.early(Check::Truncated, buckets, now_ns, slot);
    };
    let g = match GreHead::read(head, gre, outcomes.gre_refused) {
        Ok(g) => g,
        Err(c) => return outcomes.early(c?, buckets, now_ns, slot),
    };
    let payload = gre.get(usize::from(g.header_len)..).unwrap_or(&[]);
    let inner = inner_facts(g.protocol, payload, &outcomes.bytes)?;
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
    let (entry, hit) = policy.probe_v4(key);
    // Stages 3 to 5 by the lowest failed check: the payload; a miss (a detour when prefix
    // tunnels are to be searched: [`Outcomes::search_on_miss`]); the entry's own failures
    // (several tunnels on the pair); the key, when the tunnel has a key rule; the tunnel's
    // rules, one bit test for the frame's shape ([`accepting`]). On a miss the entry is another
    // pair's, whose bits the miss's outrank.
    let key_differs = u8::from(g.wire_key != entry.want) * failed::KEY;
    let shape = inner.shape + g.flags;
    let refused = (!entry.accept >> shape) & 1 != 0;
    let mask = (u8::from(inner.bad) * failed::INNER)
        | (u8::from(!hit) * failed::UNKNOWN)
        | (entry.fail & (failed::SEVERAL | key_differs))
        | (u8::from(refused) * failed::REFUSED)
        | failed::PASSED;
    let o = outcomes.by_mask.get(mask.trailing_zeros() as usize)?;
    // Only outcomes after a hit name the tunnel; the others' `NO_TUNNEL` is all ones already.
    *slot = o.decision;
    slot.tunnel |= entry.tunnel;
    if entry.police & o.special != 0 {
        return special(o.special, buckets, now_ns, slot);
    }
    Some(())
}

/// An outcome that is not final ([`Outcome::special`]): a detour, or a policer's say.
#[cold]
#[inline(never)]
fn special(special: u8, buckets: &Buckets, now_ns: u64, slot: &mut Decision) -> Done {
    if special & DETOUR != 0 {
        return None;
    }
    *slot = buckets.police(*slot, now_ns);
    Some(())
}

/// Stage 1 past the protocol, for a 20-byte IPv4 header (RFC 791 §3.1): the total length no
/// shorter than the header and the header checksum, then the outer source (docs/policy.md
/// Bogons: the first octets `ipv4` marks [`SUSPECT`]) and fragments (RFC 791 §3.2). False (a
/// detour: the stages name the reason) when any of that fails, which a working peer's frames
/// never do.
#[inline(always)]
fn sound_outer(head: &[u8; HEAD_LEN], ipv4: &[u8; 256]) -> bool {
    let Some(header) = head.first_chunk::<GRE>().and_then(|h| h.last_chunk::<20>()) else {
        return false;
    };
    let total = be16_at(head, IP + 2);
    let fragment = be16_at(head, IP + 6) & ipv4_fragment::ANY != 0;
    let bogon = ipv4[usize::from(head[IP + 12])] & SUSPECT != 0;
    checksum::verifies_header(header) & !fragment & !bogon & (total >= 20)
}

/// The GRE header (RFC 2784 §2, RFC 2890 §2) read into registers.
#[derive(Clone, Copy, Debug)]
struct GreHead {
    protocol: u16,
    /// 4, plus 4 for each of C, K and S.
    header_len: u8,
    /// The key as [`crate::policy::wire_key`] gives it.
    wire_key: u64,
    /// `16 × (2 × C + S)`: the high bits of the frame's shape ([`accepting`]).
    flags: u8,
}

/// What the top four bits of the GRE flags (C, R, K, S: RFC 2784 §2.1, RFC 2890 §2) say of
/// the header, by those bits: read from a table instead of computed bit by bit.
#[derive(Clone, Copy, Debug)]
struct Layout {
    /// 4, plus 4 for each of C, K and S.
    header_len: u8,
    /// `16 × (2 × C + S)`: the high bits of the frame's shape ([`accepting`]).
    flags: u8,
    /// K set: all ones over the key and the K bit of a [`crate::policy::wire_key`], else 0.
    key_mask: u64,
}

// C, K and S are 0 or 1: the lengths and indices fit a byte.
#[allow(clippy::cast_possible_truncation)]
const LAYOUTS: [Layout; 16] = {
    let mut t = [Layout {
        header_len: 4,
        flags: 0,
        key_mask: 0,
    }; 16];
    let mut bits = 0;
    while bits < 16 {
        let (c, k, s) = ((bits >> 3) & 1, (bits >> 1) & 1, bits & 1);
        t[bits] = Layout {
            header_len: (4 + 4 * (c + k + s)) as u8,
            flags: (16 * (2 * c + s)) as u8,
            key_mask: if k == 1 { (1 << 33) - 1 } else { 0 },
        };
        bits += 1;
    }
    t
};

impl GreHead {
    /// Stage 2 on `gre`, whose first 8 bytes end `head`: the header the straight path takes —
    /// version 0, none of the `refused` bits (RFC 2784 §2.3), the optional fields within the
    /// packet (RFC 2784 §2.1, RFC 2890 §2), and with C a checksum that verifies (RFC 2784
    /// §2.5). `Err` with the failed check, or `None` for a detour.
    #[inline(always)]
    fn read(head: &[u8; HEAD_LEN], gre: &[u8], refused: u16) -> Result<GreHead, Option<Check>> {
        let fv = be16_at(head, GRE);
        let layout = LAYOUTS[usize::from(fv >> 12)];
        let header_len = usize::from(layout.header_len);
        if (fv & refused != 0) | (gre.len() < header_len) {
            return Err(refusal(fv, refused, gre.len(), header_len));
        }
        // The key field follows the checksum word when C is set (RFC 2890 §2.1). Without C it
        // is in the head whether or not K announces it: read either way and masked out
        // without K, so no branch on K.
        let key = if fv & flags::C == 0 {
            head.last_chunk::<4>().map_or(0, |w| u32::from_le_bytes(*w))
        } else {
            checksummed_key(gre)?
        };
        Ok(GreHead {
            protocol: be16_at(head, GRE + 2),
            header_len: layout.header_len,
            wire_key: (1 << 32 | u64::from(key)) & layout.key_mask,
            flags: layout.flags,
        })
    }
}

/// With C set (rare on tunnels, so out of the way): the checksum over the whole GRE packet
/// (RFC 2784 §2.5), then the key field, which follows the checksum word (RFC 2890 §2.1).
#[cold]
#[inline(never)]
fn checksummed_key(gre: &[u8]) -> Result<u32, Option<Check>> {
    if !checksum::verifies(gre) {
        return Err(Some(Check::Checksum));
    }
    Ok(gre
        .get(8..12)
        .and_then(|w| <[u8; 4]>::try_from(w).ok())
        .map_or(0, u32::from_le_bytes))
}

/// Which check a GRE header the straight path does not take fails, in the stages' order: the
/// base header, the version, the MUST-discard bits, the reserved bits when the policy drops
/// them (they are in `refused`), the optional fields. `None` (a detour) for version 1 (PPTP,
/// RFC 2637 §4.1).
#[cold]
#[inline(never)]
fn refusal(fv: u16, refused: u16, len: usize, header_len: usize) -> Option<Check> {
    let version = fv & flags::VERSION;
    if len < 4 {
        Some(Check::GreTruncated)
    } else if version == 1 {
        None
    } else if version != 0 {
        Some(Check::Version)
    } else if fv & flags::V0_MUST_DISCARD != 0 {
        Some(Check::Flags)
    } else if fv & refused & flags::V0_RESERVED != 0 {
        Some(Check::Reserved)
    } else if len < header_len {
        Some(Check::GreTruncated)
    } else {
        None
    }
}

/// What the straight path learns of a GRE payload: [`crate::inner::check`] for the classes it
/// takes.
#[derive(Clone, Copy, Debug)]
struct InnerFacts {
    /// Not what the protocol type says (`bad_inner`).
    bad: bool,
    /// The payload's class (its [`ProtoClass`] discriminant: keepalive 0, IPv4 1, IPv6 2,
    /// TEB 3) plus 4 times its kind (0 plain, [`NESTED`] GRE, a [`KEEPALIVE`]): the low bits of
    /// the frame's shape ([`accepting`]).
    shape: u8,
}

/// A kind of payload: nested GRE.
const NESTED: u8 = 1;
/// A kind of payload: a Cisco keepalive.
const KEEPALIVE: u8 = 2;

/// The bytes of an inner IP header read at fixed offsets: all of IPv4's fixed header, and
/// IPv6's up to the end of the source address.
const INNER_HEAD: usize = 24;
/// Ethernet header length (IEEE 802.3 §3.1.1).
const ETHERNET: usize = 14;

/// [`Outcomes::bytes`]: as the first octet of a source (outer or inner), one the straight
/// path leaves to the stages: an IPv4 bogon ([`crate::bogon`]); for IPv6 ff00::/8 and ::/8
/// (which holds :: and ::1, and which the stages look at closer). Only when the policy drops
/// bogons.
const SUSPECT: u8 = 1;
/// [`Outcomes::bytes`]: as an IPv6 next header, an extension header the stages walk.
const WALKED: u8 = 2;

/// The byte tables of [`Outcomes::bytes`].
fn byte_tables(drop_bogons: bool) -> [[u8; 256]; 2] {
    let suspect = |yes: bool| if yes && drop_bogons { SUSPECT } else { 0 };
    let mut v4 = [0u8; 256];
    let mut v6 = [0u8; 256];
    for (byte, (four, six)) in (0..=255u8).zip(v4.iter_mut().zip(v6.iter_mut())) {
        *four = suspect(is_bogon_v4(u32::from(byte) << 24));
        *six =
            suspect(byte == 0 || byte == 0xFF) | if is_walked_extension(byte) { WALKED } else { 0 };
    }
    [v4, v6]
}

/// The facts of a payload of GRE protocol type `protocol`, or `None` when the stages must look
/// (a detour: a class the straight path does not take, a payload too short to be read at fixed
/// offsets, IPv6 extension headers to walk, an inner source that may be a bogon to drop, a
/// VLAN tag in a bridged frame) — before `bad_inner` in their order, which is fine: a detour is
/// right whatever the frame is. IPv4 and IPv6 — nearly all tunnel traffic — are one
/// computation, without a branch on which; the rest on a path of its own.
#[inline(always)]
fn inner_facts(protocol: u16, payload: &[u8], bytes: &[[u8; 256]; 2]) -> Option<InnerFacts> {
    // IPv4 or IPv6 as one test: the product of the differences is zero when one of them is.
    // (Two compares would become two branches, each of which mispredicts on mixed traffic.)
    let p = u32::from(protocol);
    let ip = (p ^ u32::from(proto::IPV4)) * (p ^ u32::from(proto::IPV6)) == 0;
    if ip {
        inner_ip(payload, protocol == proto::IPV6, bytes)
    } else {
        other_class(protocol, payload)
    }
}

/// Where IPv4 (RFC 791 §3.1) and IPv6 (RFC 8200 §3) keep what [`inner_ip`] reads.
struct Family {
    /// The first byte of a good header lies in `first ..= first + span`: version 4 with an IHL
    /// of at least 5, or version 6 with any traffic class.
    first: u8,
    span: u8,
    /// The total (IPv4) or payload (IPv6) length field, and what to add to it for the total.
    length_at: u8,
    length_add: u8,
    next_at: u8,
    source_at: u8,
    /// The class ([`ProtoClass`] discriminant): the low bits of the frame's shape.
    class: u8,
    /// Unused: eight bytes a family, so that one is found with a shift.
    _pad: u8,
}

/// IPv4's, then IPv6's.
const FAMILIES: [Family; 2] = [
    Family {
        first: 0x45,
        span: 0x0A,
        length_at: 2,
        length_add: 0,
        next_at: 9,
        source_at: 12,
        class: ProtoClass::Ipv4 as u8,
        _pad: 0,
    },
    Family {
        first: 0x60,
        span: 0x0F,
        length_at: 4,
        length_add: 40,
        next_at: 6,
        source_at: 8,
        class: ProtoClass::Ipv6 as u8,
        _pad: 0,
    },
];

/// IPv4 or IPv6 inside, one computation with each family's offsets ([`FAMILIES`]): the version
/// and header length, the total (or payload) length within the payload; inner GRE. `None` (a
/// detour) when the payload is too short to be read at fixed offsets, has IPv6 extension
/// headers to walk, or a [`SUSPECT`] source (docs/policy.md Bogons).
#[inline(always)]
fn inner_ip(payload: &[u8], v6: bool, bytes: &[[u8; 256]; 2]) -> Option<InnerFacts> {
    let f = &FAMILIES[usize::from(v6)];
    let h = payload.first_chunk::<INNER_HEAD>()?;
    let first = h[0];
    let header_len = if v6 {
        40
    } else {
        usize::from(first & 0x0F) * 4
    };
    let total = usize::from(be16_at(h, usize::from(f.length_at))) + usize::from(f.length_add);
    let bad =
        (first.wrapping_sub(f.first) > f.span) | (total < header_len) | (total > payload.len());
    let next = h.get(usize::from(f.next_at)).copied().unwrap_or(0);
    let source = h.get(usize::from(f.source_at)).copied().unwrap_or(0);
    let t = &bytes[usize::from(v6)];
    if (t[usize::from(source)] & SUSPECT) | (t[usize::from(next)] & WALKED) != 0 {
        return None;
    }
    let plain = InnerFacts {
        bad,
        shape: f.class,
    };
    // Inner GRE is rare: a branch the predictor gets right, to a path of its own.
    if next == protocol::GRE {
        return Some(with_gre(plain, payload, v6));
    }
    Some(plain)
}

/// The facts of an inner IP packet that carries GRE, from those of a `plain` one: its kind is
/// a Cisco keepalive ([`KEEPALIVE`]: GRE of protocol type 0 in a whole, unfragmented packet)
/// or nested GRE ([`NESTED`]). Inner GRE is rare, so out of the way.
#[cold]
#[inline(never)]
fn with_gre(plain: InnerFacts, ip: &[u8], v6: bool) -> InnerFacts {
    let (header_len, total, fragment) = if v6 {
        (40, 40 + usize::from(be16(ip, 4)), false)
    } else {
        let header_len = usize::from(ip.first().map_or(0, |b| b & 0x0F)) * 4;
        let fragment = be16(ip, 6) & ipv4_fragment::ANY != 0;
        (header_len, usize::from(be16(ip, 2)), fragment)
    };
    let keepalive = !fragment
        & (total.wrapping_sub(header_len) >= 4)
        & (be16(ip, header_len + 2) == proto::KEEPALIVE);
    let kind = if keepalive { KEEPALIVE } else { NESTED };
    InnerFacts {
        shape: plain.shape + 4 * kind,
        ..plain
    }
}

/// The payloads the straight path takes besides IPv4 and IPv6: bridged Ethernet (TEB) and
/// keepalives. `None` (a detour) for any other class.
#[inline(never)]
fn other_class(protocol: u16, payload: &[u8]) -> Option<InnerFacts> {
    match protocol {
        proto::TEB => bridged(payload),
        proto::KEEPALIVE => Some(InnerFacts {
            bad: false,
            shape: ProtoClass::Keepalive as u8,
        }),
        _ => None,
    }
}

/// Transparent Ethernet bridging: at least an Ethernet header (IEEE 802.3 §3.1.1), and GRE one
/// carrier deep — an IPv4 or IPv6 packet in the bridged frame that carries GRE is nested (as
/// [`crate::inner`] checks it). `None` (a detour) for anything else in the bridged frame (a
/// VLAN tag, say) and for IPv6 extension headers.
#[inline(always)]
fn bridged(payload: &[u8]) -> Option<InnerFacts> {
    let teb = ProtoClass::Teb as u8;
    let Some(eth) = payload.first_chunk::<ETHERNET>() else {
        return Some(InnerFacts {
            bad: true,
            shape: teb,
        });
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
        shape: teb + 4 * if gre { NESTED } else { 0 },
    })
}

/// The frame shapes a tunnel with `rule` takes (docs/policy.md), a bit each, so that the tunnel
/// stage of a frame is one bit test: bit `class + 4 × kind + 16 × (2 × C + S)` for a payload of
/// that class (keepalive 0, IPv4 1, IPv6 2, TEB 3) and kind (0 plain, 1 nested GRE, 2 a
/// keepalive) in a GRE header with those C and S bits. Set when the version is 0 (the straight
/// path takes no other), the class is allowed (a keepalive is of its own class too), nesting
/// is allowed if nested, and the `checksum` and `sequence` rules hold.
pub(crate) const fn accepting(rule: &HotRule) -> u64 {
    let mut accept = 0u64;
    let mut shape = 0;
    while shape < 64 {
        let (class, kind) = (shape & 3, (shape >> 2) & 3);
        let (c, s) = ((shape >> 5) & 1 == 1, (shape >> 4) & 1 == 1);
        let allowed = rule.classes & (1 << class) != 0
            || (kind == KEEPALIVE as usize
                && rule.classes & (1 << ProtoClass::Keepalive as u8) != 0);
        let nesting = kind != NESTED as usize || rule.flags & HOT_NESTED != 0;
        let bits = !violated(rule.checksum, c) && !violated(rule.sequence, s);
        if rule.version == 0 && kind < 3 && allowed && nesting && bits {
            accept |= 1 << shape;
        }
        shape += 1;
    }
    accept
}

/// The straight path's [`failed`] bits of an entry selected as `select` says: `KEY` when the
/// tunnel has a key rule, `SEVERAL` for several tunnels, `UNKNOWN` for none.
pub(crate) const fn entry_fails(select: Select) -> u8 {
    match select {
        Select::Any => 0,
        Select::Absent | Select::Equal => failed::KEY,
        Select::Several => failed::SEVERAL,
        Select::Vacant => failed::UNKNOWN,
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

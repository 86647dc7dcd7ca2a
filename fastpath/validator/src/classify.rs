//! The classifier: one verdict and one reason per frame (the README's Verdicts and reasons). It
//! reads like the reason table: one small function per stage, in the order the checks run, each
//! returning `Result<_, Reason>`:
//!
//! frame and outer IP → GRE header → inner packet → tunnel match → tunnel rules → policers.
//!
//! The same code serves the AF_XDP data path and `greguard replay`. It never allocates, never
//! panics and never indexes unchecked; the only state it writes is its policers' cells, which every worker shares ([`Buckets`]).

use crate::bogon::{is_bogon_v4, is_bogon_v6};
use crate::checksum;
use crate::inner::{self, Inner};
use std::sync::Arc;

use crate::policer::{Cell, Policer};
use crate::policy::{Action, Hit, HotRule, Policy, HOT_NESTED, HOT_NUMBERS, HOT_RATE};
use crate::protocols::ProtoClass;
use crate::reason::{Decision, Direction, Reason, Verdict};
use crate::straight;
use crate::wire::ethernet::ethertype;
use crate::wire::gre::{flags, proto, GrePacket};
use crate::wire::ipv4::{protocol, Ipv4Packet};
use crate::wire::ipv6::{self, Ipv6Packet, Upper};
use crate::wire::pptp::PptpPacket;
use crate::wire::vlan;

/// An outer address family: what the GRE stages need of IPv4 and IPv6 addresses. The stages are
/// generic over it, so the common IPv4 path never moves 128-bit addresses around.
trait OuterAddr: Copy {
    /// The address can never be a real sender.
    fn is_bogon(self) -> bool;
    /// The tunnel for (peer, local) and key.
    fn find(policy: &Policy, peer: Self, local: Self, key: Option<u32>) -> Hit;
}

impl OuterAddr for u32 {
    #[inline]
    fn is_bogon(self) -> bool {
        is_bogon_v4(self)
    }
    #[inline(always)]
    fn find(policy: &Policy, peer: u32, local: u32, key: Option<u32>) -> Hit {
        policy.find_v4(peer, local, key)
    }
}

impl OuterAddr for u128 {
    #[inline]
    fn is_bogon(self) -> bool {
        is_bogon_v6(self)
    }
    #[inline(always)]
    fn find(policy: &Policy, peer: u128, local: u128, key: Option<u32>) -> Hit {
        policy.find_v6(peer, local, key)
    }
}

/// What the outer stage found of a GRE packet: addresses, the GRE bytes (bounded by the IP
/// length; in a fragment, the start of GRE a first fragment carries, none for a later one) and
/// whether it is a fragment.
#[derive(Clone, Copy, Debug)]
struct OuterGre<'a, A> {
    src: A,
    dst: A,
    gre: &'a [u8],
    fragment: bool,
}

impl<A: OuterAddr> OuterGre<'_, A> {
    /// The tunnel match, oriented by the port the frame came from (stage 4).
    #[inline(always)]
    fn find(&self, policy: &Policy, dir: Direction, key: Option<u32>) -> Hit {
        match dir {
            Direction::FromOutside => A::find(policy, self.src, self.dst, key),
            Direction::FromInside => A::find(policy, self.dst, self.src, key),
        }
    }
}

/// The outer stage's result for GRE, by address family.
#[derive(Clone, Copy, Debug)]
enum Outer<'a> {
    V4(OuterGre<'a, u32>),
    V6(OuterGre<'a, u128>),
}

/// What the GRE header stage found.
#[derive(Clone, Copy, Debug)]
struct Header<'a> {
    version: u8,
    protocol: u16,
    key: Option<u32>,
    checksum: bool,
    sequence: bool,
    ack_only: bool,
    payload: &'a [u8],
}

/// The policers of one policy: one per tunnel with a `rate`, and the shared budget of the
/// rate-limit actions. Cloning shares them: every worker of the data path classifies with
/// clones of one `Buckets`, so a tunnel gets its rate whichever queues its frames arrive on.
#[derive(Clone, Debug)]
pub struct Buckets {
    /// One bucket per tunnel with a `rate`, indexed by tunnel.
    tunnels: Vec<Option<Policer>>,
    /// The shared budget of the rate-limit actions.
    budget: Policer,
}

impl Buckets {
    /// A decision of the straight path ([`crate::straight`]) that a policer has a say in:
    /// tunnel traffic through its tunnel's policer (`rate_limited` beyond it, RFC-less: the
    /// policy's `rate`), anything else through the shared budget of the `rate-limit` action
    /// (forwarded within it, `rate_limited` beyond) — as the stages' `police` and `act` do.
    #[cold]
    #[inline(never)]
    pub(crate) fn police(&self, d: Decision, now_ns: u64) -> Decision {
        if d.reason == Reason::Tunnel {
            let within = match self.tunnels.get(d.tunnel as usize) {
                Some(Some(b)) => b.take(now_ns),
                _ => true,
            };
            return if within {
                d
            } else {
                Decision {
                    verdict: Verdict::Drop,
                    reason: Reason::RateLimited,
                    tunnel: d.tunnel,
                }
            };
        }
        if self.budget.take(now_ns) {
            Decision::new(Verdict::Forward, d.reason)
        } else {
            Decision::new(Verdict::Drop, Reason::RateLimited)
        }
    }

    /// Fresh, full buckets for `policy` at `now_ns` (the caller's clock, to which `offset_ns`
    /// is added); the budget's state lives in `budget` when given (the fast lane's map, which
    /// the kernel reads).
    pub fn new(
        policy: &Policy,
        now_ns: u64,
        offset_ns: u64,
        budget: Option<Arc<dyn Cell>>,
    ) -> Buckets {
        Buckets::with_cells(policy, now_ns, offset_ns, budget, &|_| None)
    }

    /// [`Buckets::new`], with the state of tunnel `i`'s bucket in `cells(i)` where it gives
    /// one (the fast lane's per-tunnel map, which the kernel takes from too).
    pub fn with_cells(
        policy: &Policy,
        now_ns: u64,
        offset_ns: u64,
        budget: Option<Arc<dyn Cell>>,
        cells: &dyn Fn(u32) -> Option<Arc<dyn Cell>>,
    ) -> Buckets {
        let rate_limit = policy.defaults().rate_limit;
        Buckets {
            tunnels: policy
                .specs()
                .iter()
                .zip(0u32..)
                .map(|(s, i)| s.rate.map(|r| fresh(r, offset_ns, now_ns, cells(i))))
                .collect(),
            budget: match budget {
                Some(cell) => Policer::in_cell(rate_limit, cell, offset_ns).filled(now_ns),
                None => Policer::new_at(rate_limit, offset_ns, now_ns),
            },
        }
    }

    /// The buckets of `policy`, which replaces the policy of `old`: tunnel `i` was tunnel
    /// `previous[i]` there. A tunnel that persists keeps its cell (its fill, and the frames
    /// other workers police on it while they switch), at its new rate; so does the budget. New
    /// tunnels start full at `now_ns`.
    pub fn carried(
        policy: &Policy,
        now_ns: u64,
        previous: &[Option<u32>],
        old: &Buckets,
    ) -> Buckets {
        Buckets::carried_with_cells(policy, now_ns, previous, old, &|_| None)
    }

    /// [`Buckets::carried`], new tunnels' buckets in `cells(i)` where it gives one (see
    /// [`Buckets::with_cells`]).
    pub fn carried_with_cells(
        policy: &Policy,
        now_ns: u64,
        previous: &[Option<u32>],
        old: &Buckets,
        cells: &dyn Fn(u32) -> Option<Arc<dyn Cell>>,
    ) -> Buckets {
        let offset_ns = old.budget.offset_ns();
        let tunnels = policy
            .specs()
            .iter()
            .zip(0u32..)
            .map(|(spec, i)| {
                let rate = spec.rate?;
                let kept = previous
                    .get(i as usize)
                    .copied()
                    .flatten()
                    .and_then(|o| old.tunnels.get(o as usize))
                    .and_then(Option::as_ref);
                Some(match kept {
                    Some(b) => Policer::in_cell(rate, b.cell().clone(), offset_ns),
                    None => fresh(rate, offset_ns, now_ns, cells(i)),
                })
            })
            .collect();
        Buckets {
            tunnels,
            budget: Policer::in_cell(
                policy.defaults().rate_limit,
                old.budget.cell().clone(),
                offset_ns,
            ),
        }
    }
}

/// A full bucket at `now_ns`, in `cell` when given, else in a cell of its own.
fn fresh(rate: crate::Rate, offset_ns: u64, now_ns: u64, cell: Option<Arc<dyn Cell>>) -> Policer {
    match cell {
        Some(cell) => Policer::in_cell(rate, cell, offset_ns).filled(now_ns),
        None => Policer::new_at(rate, offset_ns, now_ns),
    }
}

/// A frame's classification state that outlives one frame: the policers.
///
/// A worker owns one `Classifier`; the [`Policy`] it classifies against is passed in per batch so
/// the data path loads it once per batch and a reload swaps it between batches.
#[derive(Debug)]
pub struct Classifier {
    buckets: Buckets,
}

impl Classifier {
    /// Fresh, full buckets of its own for `policy`, starting at `now_ns`.
    pub fn new(policy: &Policy, now_ns: u64) -> Classifier {
        Classifier::with_buckets(Buckets::new(policy, now_ns, 0, None))
    }

    /// A classifier that polices with `buckets`, which other classifiers may share.
    pub fn with_buckets(buckets: Buckets) -> Classifier {
        Classifier { buckets }
    }

    /// Classifies a batch: `out[i]` receives the decision for `frames[i]`. `now_ns` is read once
    /// by the caller for the whole batch. Frames beyond `out.len()` are not looked at.
    #[inline]
    pub fn classify_batch<F: AsRef<[u8]>>(
        &mut self,
        policy: &Policy,
        now_ns: u64,
        dir: Direction,
        frames: &[F],
        out: &mut [Decision],
    ) {
        for (frame, slot) in frames.iter().zip(out.iter_mut()) {
            self.classify_into(policy, now_ns, dir, frame.as_ref(), slot);
        }
    }

    /// Classifies one frame that arrived from `dir`: the common frames on the straight path
    /// (`straight.rs`: the stages specialised for them, decided without branching on the traffic
    /// mix), the others through the stages.
    #[inline(always)]
    pub fn classify(
        &mut self,
        policy: &Policy,
        now_ns: u64,
        dir: Direction,
        frame: &[u8],
    ) -> Decision {
        let mut d = Decision::default();
        self.classify_into(policy, now_ns, dir, frame, &mut d);
        d
    }

    /// [`Classifier::classify`] into `slot`: the straight path writes its decisions whole,
    /// copied from its tables.
    #[inline(always)]
    fn classify_into(
        &mut self,
        policy: &Policy,
        now_ns: u64,
        dir: Direction,
        frame: &[u8],
        slot: &mut Decision,
    ) {
        if straight::judge(policy, &self.buckets, now_ns, dir, frame, slot).is_none() {
            *slot = self.staged(policy, now_ns, dir, frame);
        }
    }

    /// Classifies one frame through the stages alone: the reference the straight path is held
    /// to (and the path of the frames it does not take).
    #[doc(hidden)]
    pub fn classify_staged(
        &mut self,
        policy: &Policy,
        now_ns: u64,
        dir: Direction,
        frame: &[u8],
    ) -> Decision {
        self.staged(policy, now_ns, dir, frame)
    }

    /// Classifies one frame through the stages, in the order of the reason table.
    #[inline(never)]
    fn staged(&mut self, policy: &Policy, now_ns: u64, dir: Direction, frame: &[u8]) -> Decision {
        match outer(frame) {
            Ok(Outer::V4(o)) => self.gre(policy, now_ns, dir, o),
            Ok(Outer::V6(o)) => self.gre(policy, now_ns, dir, o),
            Err(Reason::NonGre) => Decision::new(policy.defaults().non_gre, Reason::NonGre),
            Err(r) => Decision::new(Verdict::Drop, r),
        }
    }

    /// Everything after the outer IP header, for one address family.
    #[inline(always)]
    fn gre<A: OuterAddr>(
        &mut self,
        policy: &Policy,
        now_ns: u64,
        dir: Direction,
        outer: OuterGre<'_, A>,
    ) -> Decision {
        let d = policy.defaults();
        if d.drop_bogons && outer.src.is_bogon() {
            return Decision::new(Verdict::Drop, Reason::Bogon);
        }
        if outer.fragment {
            return self.fragment(policy, now_ns, dir, outer);
        }
        let header = match gre_header(outer.gre, d.drop_reserved_bits) {
            Ok(h) => h,
            // The README's Verdicts and reasons: reserved bits are judged by `reserved_bits` alone,
            // not `invalid_gre`.
            Err(Reason::ReservedBits) => return Decision::new(Verdict::Drop, Reason::ReservedBits),
            Err(r) => return self.invalid(policy, now_ns, r),
        };
        let class = ProtoClass::of(header.protocol);
        let erspan_type1 = !header.sequence;
        let inner = match inner::check(class, header.payload, erspan_type1, header.ack_only) {
            Ok(i) => i,
            Err(inner::NotWhatItSays) => return self.invalid(policy, now_ns, Reason::BadInner),
        };
        if d.drop_bogons && inner.bogon {
            return Decision::new(Verdict::Drop, Reason::Bogon);
        }
        let (tunnel, rule) = match outer.find(policy, dir, header.key) {
            Hit::Tunnel(t, rule) => (t, rule),
            Hit::KeyMismatch(t) => {
                return Decision {
                    verdict: Verdict::Drop,
                    reason: Reason::KeyMismatch,
                    tunnel: t,
                };
            }
            Hit::None => return self.unknown(policy, now_ns),
        };
        let reason = match tunnel_rules(policy, tunnel, &rule, &header, class, &inner) {
            Ok(()) if rule.has(HOT_RATE) => self.police(tunnel, now_ns),
            Ok(()) => Reason::Tunnel,
            Err(r) => r,
        };
        let verdict = if reason == Reason::Tunnel {
            Verdict::Forward
        } else {
            Verdict::Drop
        };
        Decision {
            verdict,
            reason,
            tunnel,
        }
    }

    /// Applies the tunnel's policer: `Tunnel` within it, `RateLimited` beyond.
    #[inline(always)]
    fn police(&mut self, tunnel: u32, now_ns: u64) -> Reason {
        match self.buckets.tunnels.get(tunnel as usize) {
            Some(Some(b)) => {
                if b.take(now_ns) {
                    Reason::Tunnel
                } else {
                    Reason::RateLimited
                }
            }
            _ => Reason::Tunnel,
        }
    }

    /// GRE that failed validation: dropped, or forwarded within the shared budget.
    #[inline(always)]
    fn invalid(&mut self, policy: &Policy, now_ns: u64, reason: Reason) -> Decision {
        self.act(policy.defaults().invalid_gre, now_ns, reason)
    }

    /// Valid GRE that matches no tunnel.
    #[inline(always)]
    fn unknown(&mut self, policy: &Policy, now_ns: u64) -> Decision {
        self.act(
            policy.defaults().unknown_tunnel,
            now_ns,
            Reason::UnknownTunnel,
        )
    }

    #[inline(always)]
    fn act(&mut self, action: Action, now_ns: u64, reason: Reason) -> Decision {
        match action {
            Action::Forward => Decision::new(Verdict::Forward, reason),
            Action::Drop => Decision::new(Verdict::Drop, reason),
            Action::RateLimit if self.buckets.budget.take(now_ns) => {
                Decision::new(Verdict::Forward, reason)
            }
            Action::RateLimit => Decision::new(Verdict::Drop, Reason::RateLimited),
        }
    }

    /// GRE in a fragment. A first fragment is held to the header checks its bytes allow
    /// ([`first_fragment`]); then, with `fragments = "tunnel"`, a fragment whose outer addresses
    /// match a tunnel is forwarded within that tunnel's policer (a later fragment carries no
    /// key, so it matches with any key), and everything else is dropped as `fragment`.
    fn fragment<A: OuterAddr>(
        &mut self,
        policy: &Policy,
        now_ns: u64,
        dir: Direction,
        outer: OuterGre<'_, A>,
    ) -> Decision {
        let d = policy.defaults();
        let key = match first_fragment(outer.gre, d.drop_reserved_bits) {
            Ok(key) => key,
            Err(Reason::ReservedBits) => return Decision::new(Verdict::Drop, Reason::ReservedBits),
            Err(r) => return self.invalid(policy, now_ns, r),
        };
        let drop = Decision::new(Verdict::Drop, Reason::Fragment);
        if !d.fragments_to_tunnel {
            return drop;
        }
        let hit = match key {
            FragmentKey::Held(key) => outer.find(policy, dir, key),
            // Any key: the tunnel the addresses match stands for all.
            FragmentKey::NotHeld => match outer.find(policy, dir, None) {
                Hit::KeyMismatch(t) => Hit::Tunnel(t, HotRule::default()),
                hit => hit,
            },
        };
        match hit {
            Hit::Tunnel(t, _) => match self.police(t, now_ns) {
                Reason::Tunnel => Decision {
                    verdict: Verdict::Forward,
                    reason: Reason::Fragment,
                    tunnel: t,
                },
                r => Decision {
                    verdict: Verdict::Drop,
                    reason: r,
                    tunnel: t,
                },
            },
            Hit::KeyMismatch(t) => Decision {
                verdict: Verdict::Drop,
                reason: Reason::KeyMismatch,
                tunnel: t,
            },
            Hit::None => drop,
        }
    }
}

/// Stage 1, frame and outer IP: Ethernet, up to two VLAN tags, IPv4 or IPv6.
#[inline(always)]
fn outer(frame: &[u8]) -> Result<Outer<'_>, Reason> {
    let (ethertype, rest) = vlan::untag(frame).map_err(|_| Reason::Truncated)?;
    match ethertype {
        ethertype::IPV4 => outer_v4(rest),
        ethertype::IPV6 => outer_v6(rest),
        _ => Err(Reason::NonGre),
    }
}

/// IPv4 (RFC 791 §3.1): version and IHL first (without them the protocol byte means nothing),
/// then the protocol — anything but GRE passes untouched — then lengths and the header checksum.
#[inline(always)]
fn outer_v4(buf: &[u8]) -> Result<Outer<'_>, Reason> {
    let ip = Ipv4Packet::new_checked(buf).map_err(|_| Reason::Truncated)?;
    let hl = ip.header_len();
    if ip.version() != 4 || hl < 20 {
        return Err(Reason::BadIp);
    }
    if ip.protocol() != protocol::GRE {
        return Err(Reason::NonGre);
    }
    let total = ip.total_len();
    if total < hl {
        return Err(Reason::BadIp);
    }
    if total > buf.len() {
        return Err(Reason::Truncated);
    }
    // The common 20-byte header is summed from its fixed array, which the compiler unrolls.
    let sum_ok = if hl == 20 {
        checksum::verifies(ip.fixed_header())
    } else {
        checksum::verifies(ip.header().ok_or(Reason::Truncated)?)
    };
    if !sum_ok {
        return Err(Reason::BadIp);
    }
    let gre = ip.payload().ok_or(Reason::Truncated)?;
    let gre = if ip.is_later_fragment() { &[][..] } else { gre };
    Ok(Outer::V4(OuterGre {
        src: ip.source(),
        dst: ip.destination(),
        gre,
        fragment: ip.is_fragment(),
    }))
}

/// IPv6 (RFC 8200): version, then the extension-header walk to GRE.
#[inline(always)]
fn outer_v6(buf: &[u8]) -> Result<Outer<'_>, Reason> {
    let ip = Ipv6Packet::new_checked(buf).map_err(|_| Reason::Truncated)?;
    if ip.version() != 6 {
        return Err(Reason::BadIp);
    }
    let nh = ip.next_header();
    if nh != protocol::GRE && !ipv6::is_walked_extension(nh) {
        return Err(Reason::NonGre);
    }
    let payload = ip.payload().ok_or(Reason::Truncated)?;
    let (src, dst) = (ip.source(), ip.destination());
    match ip.walk(payload) {
        Upper::Protocol {
            protocol: protocol::GRE,
            payload,
            fragment,
        } => Ok(Outer::V6(OuterGre {
            src,
            dst,
            gre: payload,
            fragment,
        })),
        Upper::LaterFragment {
            protocol: protocol::GRE,
        } => Ok(Outer::V6(OuterGre {
            src,
            dst,
            gre: &[],
            fragment: true,
        })),
        Upper::Protocol { .. } | Upper::LaterFragment { .. } => Err(Reason::NonGre),
        Upper::ChainTooLong => Err(Reason::BadIp),
        Upper::Truncated => Err(Reason::Truncated),
    }
}

/// Stage 2, the GRE header: version, flags, reserved bits, optional fields, checksum.
#[inline(always)]
fn gre_header(bytes: &[u8], drop_reserved: bool) -> Result<Header<'_>, Reason> {
    let gre = GrePacket::new_checked(bytes).map_err(|_| Reason::Truncated)?;
    let fv = gre.flags_version();
    match gre.version() {
        0 => gre_v0(gre, fv, drop_reserved),
        1 => gre_v1(bytes, fv, gre.protocol()),
        _ => Err(Reason::BadVersion),
    }
}

/// The key of a fragment's GRE header, as far as the fragment tells.
#[derive(Clone, Copy, Debug)]
enum FragmentKey {
    /// The fragment holds the K bit and, when set, the key (RFC 2890 §2.1; a PPTP call ID).
    Held(Option<u32>),
    /// A later fragment, or a first one that ends before the key: any key.
    NotHeld,
}

/// The start of GRE in a first fragment (`bytes`, empty for a later fragment): the version and
/// flag checks of [`gre_header`] where the first 4 bytes are there, and the key where its field
/// is. The rest of the header and the payload are in later fragments, which only the far end
/// reassembles.
#[inline(always)]
fn first_fragment(bytes: &[u8], drop_reserved: bool) -> Result<FragmentKey, Reason> {
    let Ok(gre) = GrePacket::new_checked(bytes) else {
        return Ok(FragmentKey::NotHeld);
    };
    let fv = gre.flags_version();
    match gre.version() {
        0 => {
            gre_v0_flags(fv, drop_reserved)?;
            Ok(match gre.key_if_held() {
                Some(key) => FragmentKey::Held(Some(key)),
                None if gre.has_key() => FragmentKey::NotHeld,
                None => FragmentKey::Held(None),
            })
        }
        1 => {
            gre_v1_flags(fv, gre.protocol())?;
            Ok(
                PptpPacket::new_checked(bytes).map_or(FragmentKey::NotHeld, |p| {
                    FragmentKey::Held(Some(u32::from(p.call_id())))
                }),
            )
        }
        _ => Err(Reason::BadVersion),
    }
}

/// Version 0: RFC 2784 §2.3 MUST-discard bits, the bits it says to ignore (per policy), the
/// optional fields of RFC 2784 §2 / RFC 2890 §2, and the checksum (RFC 2784 §2.5).
#[inline(always)]
fn gre_v0(gre: GrePacket<'_>, fv: u16, drop_reserved: bool) -> Result<Header<'_>, Reason> {
    gre_v0_flags(fv, drop_reserved)?;
    let payload = gre.payload().ok_or(Reason::Truncated)?;
    if gre.has_checksum() && !checksum::verifies(gre.as_bytes()) {
        return Err(Reason::BadChecksum);
    }
    Ok(Header {
        version: 0,
        protocol: gre.protocol(),
        key: gre.key(),
        checksum: gre.has_checksum(),
        sequence: gre.has_sequence(),
        ack_only: false,
        payload,
    })
}

/// Version 1 (RFC 2637 §4.1): C, R, s, recursion and flags clear, K set, protocol PPP; then the
/// sequence and acknowledgment fields and `payload_len` bytes of PPP.
#[inline(always)]
fn gre_v1(bytes: &[u8], fv: u16, protocol: u16) -> Result<Header<'_>, Reason> {
    gre_v1_flags(fv, protocol)?;
    let pptp = PptpPacket::new_checked(bytes).map_err(|_| Reason::Truncated)?;
    let payload = pptp.payload().ok_or(Reason::Truncated)?;
    Ok(Header {
        version: 1,
        protocol,
        key: Some(u32::from(pptp.call_id())),
        checksum: false,
        sequence: pptp.has_sequence(),
        ack_only: payload.is_empty() && pptp.has_ack(),
        payload,
    })
}

/// RFC 2784 §2.3 on receipt: the MUST-discard bits, then the bits to ignore, which the policy
/// may drop (`reserved_bits`).
#[inline(always)]
fn gre_v0_flags(fv: u16, drop_reserved: bool) -> Result<(), Reason> {
    if fv & flags::V0_MUST_DISCARD != 0 {
        return Err(Reason::BadFlags);
    }
    if drop_reserved && fv & flags::V0_RESERVED != 0 {
        return Err(Reason::ReservedBits);
    }
    Ok(())
}

/// RFC 2637 §4.1: C, R, s, recursion and flags clear, K set, protocol PPP.
#[inline(always)]
fn gre_v1_flags(fv: u16, protocol: u16) -> Result<(), Reason> {
    if (fv & flags::V1_MUST_BE_CLEAR != 0) | (fv & flags::K == 0) | (protocol != proto::PPP) {
        return Err(Reason::BadFlags);
    }
    Ok(())
}

/// Stage 5, tunnel rules: version and protocol type, nesting, C and S rules. Reads the hot rule
/// stored with the match; only numeric protocol types look at the tunnel's spec.
#[inline(always)]
fn tunnel_rules(
    policy: &Policy,
    tunnel: u32,
    rule: &HotRule,
    h: &Header<'_>,
    class: ProtoClass,
    inner: &Inner,
) -> Result<(), Reason> {
    let keepalive_bit = if inner.keepalive {
        ProtoClass::Keepalive.bit()
    } else {
        0
    };
    let by_class = rule.classes & (class.bit() | keepalive_bit) != 0;
    let by_number = class == ProtoClass::Other
        && rule.has(HOT_NUMBERS)
        && policy
            .spec(tunnel)
            .is_some_and(|t| t.protocols.allows(h.protocol, class));
    if rule.version != h.version || !(by_class || by_number) {
        return Err(Reason::ProtocolDenied);
    }
    if inner.nested && !rule.has(HOT_NESTED) {
        return Err(Reason::NestedGre);
    }
    if rule.checksum.violated(h.checksum) {
        return Err(Reason::ChecksumPolicy);
    }
    // RFC 2637 §4.1: S is set when a payload is present; an acknowledgment alone carries none,
    // so `sequence = "require"` does not apply to it.
    let bare_ack = h.ack_only && !h.sequence;
    if !bare_ack && rule.sequence.violated(h.sequence) {
        return Err(Reason::SequencePolicy);
    }
    Ok(())
}

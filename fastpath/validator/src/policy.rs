//! The compiled policy: defaults, tunnel rules and the tables that find a tunnel from a packet's
//! outer addresses. Built once off the hot path (by the `config` crate), then only read.
//!
//! Lookup (docs/policy.md): the most specific tunnel wins — longest `peer` prefix,
//! then longest `local` prefix — and among equally specific tunnels the key decides. Host pairs
//! (both ends a single address, by far the common case) sit in a two-slot cuckoo table
//! (`crate::hosts`): one probe of a fixed cost, whatever the tunnel count and whether the pair is
//! there or not; prefixes sit in a trie of peer prefixes whose values are tries of local
//! prefixes.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use foldhash::fast::RandomState;
use prefix_trie::PrefixMap;

use crate::hosts::{HostKey, HostTable};
use crate::policer::Rate;
use crate::protocols::ProtocolSet;
use crate::reason::{Verdict, NO_TUNNEL};
use crate::straight::{accepting, entry_fails, entry_police, Outcomes};

/// What to do with a class of packets that a policy can forward, drop or rate-limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Forward,
    Drop,
    /// Forward within the shared `rate_limit` budget, drop (`rate_limited`) beyond it.
    RateLimit,
}

/// The `[defaults]` of a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Defaults {
    /// Verdict for frames that are not IP protocol 47.
    pub non_gre: Verdict,
    /// Valid GRE that matches no tunnel.
    pub unknown_tunnel: Action,
    /// GRE that fails validation (never `Forward`).
    pub invalid_gre: Action,
    /// The shared budget of the rate-limit actions.
    pub rate_limit: Rate,
    /// Forward fragments whose outer addresses match a tunnel (`fragments = "tunnel"`).
    pub fragments_to_tunnel: bool,
    /// Drop version-0 GRE with bits of 0x03F8 set (`reserved_bits = "drop"`).
    pub drop_reserved_bits: bool,
    /// Drop GRE with a bogon outer or inner source (`bogons = "drop"`).
    pub drop_bogons: bool,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            non_gre: Verdict::Forward,
            unknown_tunnel: Action::Drop,
            invalid_gre: Action::Drop,
            rate_limit: Rate {
                pps: 1000,
                burst: 100,
            },
            fragments_to_tunnel: true,
            drop_reserved_bits: true,
            drop_bogons: true,
        }
    }
}

/// An IPv4 or IPv6 prefix; a host address has the full length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpPrefix {
    V4(u32, u8),
    V6(u128, u8),
}

impl IpPrefix {
    /// A prefix with the host bits cleared, or `None` for a length beyond the family's width.
    pub fn new(addr: IpAddr, len: u8) -> Option<IpPrefix> {
        match addr {
            IpAddr::V4(a) if len <= 32 => {
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                Some(IpPrefix::V4(u32::from(a) & mask, len))
            }
            IpAddr::V6(a) if len <= 128 => {
                let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
                Some(IpPrefix::V6(u128::from(a) & mask, len))
            }
            _ => None,
        }
    }

    /// A single address.
    pub fn host(addr: IpAddr) -> IpPrefix {
        match addr {
            IpAddr::V4(a) => IpPrefix::V4(u32::from(a), 32),
            IpAddr::V6(a) => IpPrefix::V6(u128::from(a), 128),
        }
    }

    /// True for a single address.
    pub fn is_host(&self) -> bool {
        matches!(self, IpPrefix::V4(_, 32) | IpPrefix::V6(_, 128))
    }

    /// The prefix length.
    #[allow(clippy::len_without_is_empty)] // a prefix length, not a collection's
    pub fn len(&self) -> u8 {
        match *self {
            IpPrefix::V4(_, l) | IpPrefix::V6(_, l) => l,
        }
    }

    /// True for IPv6.
    pub fn is_v6(&self) -> bool {
        matches!(self, IpPrefix::V6(..))
    }

    /// True when `other` lies within `self`.
    pub fn contains(&self, other: &IpPrefix) -> bool {
        match (*self, *other) {
            (IpPrefix::V4(a, l), IpPrefix::V4(b, m)) => {
                l <= m && IpPrefix::new(IpAddr::V4(b.into()), l) == Some(IpPrefix::V4(a, l))
            }
            (IpPrefix::V6(a, l), IpPrefix::V6(b, m)) => {
                l <= m && IpPrefix::new(IpAddr::V6(b.into()), l) == Some(IpPrefix::V6(a, l))
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            IpPrefix::V4(a, 32) => write!(f, "{}", std::net::Ipv4Addr::from(a)),
            IpPrefix::V6(a, 128) => write!(f, "{}", std::net::Ipv6Addr::from(a)),
            IpPrefix::V4(a, l) => write!(f, "{}/{l}", std::net::Ipv4Addr::from(a)),
            IpPrefix::V6(a, l) => write!(f, "{}/{l}", std::net::Ipv6Addr::from(a)),
        }
    }
}

/// The `key` rule of a tunnel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyRule {
    /// No `key` given: with or without a key, any value.
    Any,
    /// `key = "none"`: the K bit must be clear.
    Absent,
    /// `key = N`: the key must be present and equal N (for version 1, the call ID).
    Equal(u32),
}

/// `allow | require | forbid` for the C and S bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlagRule {
    #[default]
    Allow,
    Require,
    Forbid,
}

impl FlagRule {
    /// True when a packet with the bit `present` breaks the rule.
    #[inline]
    pub fn violated(self, present: bool) -> bool {
        match self {
            FlagRule::Allow => false,
            FlagRule::Require => !present,
            FlagRule::Forbid => present,
        }
    }
}

/// One `[[tunnel]]` as the builder takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelSpec {
    pub name: String,
    pub peer: IpPrefix,
    pub local: IpPrefix,
    pub key: KeyRule,
    pub version: u8,
    pub protocols: ProtocolSet,
    pub nested: bool,
    pub checksum: FlagRule,
    pub sequence: FlagRule,
    pub rate: Option<Rate>,
}

/// The part of a tunnel's rule the classifier reads on every packet. The lookup tables keep it
/// beside the tunnel index, precomputed into the bit masks the classifier's straight path tests,
/// so a match costs one hash probe and no further memory access.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HotRule {
    /// Allowed protocol classes ([`crate::ProtoClass::bit`]).
    pub classes: u16,
    /// GRE version (0 or 1).
    pub version: u8,
    /// Rule for the C bit.
    pub checksum: FlagRule,
    /// Rule for the S bit.
    pub sequence: FlagRule,
    /// `HOT_*` bits.
    pub flags: u8,
}

/// [`HotRule::flags`]: nested GRE allowed.
pub const HOT_NESTED: u8 = 1;
/// [`HotRule::flags`]: numeric protocol types outside the classes are allowed (see the tunnel's spec).
pub const HOT_NUMBERS: u8 = 2;
/// [`HotRule::flags`]: the tunnel has a policer.
pub const HOT_RATE: u8 = 4;

impl HotRule {
    fn of(rule: &TunnelSpec) -> HotRule {
        let flags = if rule.nested { HOT_NESTED } else { 0 }
            | if rule.protocols.has_numbers() {
                HOT_NUMBERS
            } else {
                0
            }
            | if rule.rate.is_some() { HOT_RATE } else { 0 };
        HotRule {
            classes: rule.protocols.class_mask(),
            version: rule.version,
            checksum: rule.checksum,
            sequence: rule.sequence,
            flags,
        }
    }

    /// True when `flag` (a `HOT_*` bit) is set.
    #[inline]
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// How an [`Entry`] selects its tunnel by key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Select {
    /// The pair's only tunnel has no `key` rule.
    Any,
    /// The pair's only tunnel has `key = "none"`.
    Absent,
    /// The pair's only tunnel has `key = N` (N in `Entry::want`).
    Equal,
    /// Several tunnels share the pair: resolve through `Policy::pairs`.
    #[default]
    Several,
    /// No tunnel has the pair: the value of the host table's vacant slots (never a pair's).
    Vacant,
}

/// The value stored for one (peer, local) pair in the lookup tables. The common case — one
/// tunnel per pair — is resolved from the entry alone; its rule is there precomputed for the
/// classifier's straight path, and in full in `Policy::hot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// `Select::Equal` and `Absent`: the [`wire_key`] a frame must carry (`key = N` wants N,
    /// `key = "none"` no key). `Select::Several`: the pair's index in `Policy::pairs`.
    pub(crate) want: u64,
    /// The frame shapes the tunnel's rule takes ([`crate::straight::accepting`]).
    pub(crate) accept: u64,
    pub(crate) tunnel: u32,
    /// The straight path's failure bits of the entry itself ([`crate::straight::entry_fails`]).
    pub(crate) fail: u8,
    /// [`HOT_RATE`] when the tunnel has a policer, and the bits every entry has
    /// ([`crate::straight::entry_police`]).
    pub(crate) police: u8,
    pub(crate) select: Select,
}

impl Entry {
    /// The entry of a pair with one tunnel, `tunnel`, of rule `rule`, selected as `select`
    /// says by the key `want`.
    const fn single(tunnel: u32, rule: &HotRule, select: Select, want: u64) -> Entry {
        Entry {
            want,
            accept: accepting(rule),
            tunnel,
            fail: entry_fails(select),
            police: entry_police(rule),
            select,
        }
    }

    /// The entry of pair `pair` with several tunnels (or none yet): resolved through
    /// `Policy::pairs`.
    const fn several(pair: u32) -> Entry {
        Entry {
            want: pair as u64,
            accept: 0,
            tunnel: NO_TUNNEL,
            fail: entry_fails(Select::Several),
            police: entry_police(&HOT_NONE),
            select: Select::Several,
        }
    }

    /// The key a `Select::Equal` entry wants (see [`wire_key`]).
    fn key(&self) -> u32 {
        // The low 32 bits of a wire key are the key's bytes as the wire carries them.
        #[allow(clippy::cast_possible_truncation)]
        let wire = self.want as u32;
        u32::from_be_bytes(wire.to_le_bytes())
    }

    /// The pair's index in `Policy::pairs`, when the entry resolves through it.
    fn pair(&self) -> Option<u32> {
        (self.select == Select::Several)
            .then(|| u32::try_from(self.want).ok())
            .flatten()
    }
}

/// The rule of no tunnel.
const HOT_NONE: HotRule = HotRule {
    classes: 0,
    version: 0,
    checksum: FlagRule::Allow,
    sequence: FlagRule::Allow,
    flags: 0,
};

/// The entry a missed lookup reads while no prefix tunnel exists: no tunnel, no key accepted.
const MISS: Entry = Entry {
    want: u64::MAX,
    accept: 0,
    tunnel: NO_TUNNEL,
    fail: entry_fails(Select::Vacant),
    police: entry_police(&HOT_NONE),
    select: Select::Vacant,
};

/// What vacant slots of the host table hold: never read as an entry (see `crate::hosts`).
impl Default for Entry {
    fn default() -> Entry {
        MISS
    }
}

impl Entry {
    /// True when a frame with [`wire_key`] `wire` selects the pair's only tunnel (not for
    /// `Select::Several`, which the caller resolves through the pair).
    #[inline(always)]
    pub(crate) fn accepts(&self, wire: u64) -> bool {
        (self.select == Select::Any) | (wire == self.want)
    }
}

/// A frame's GRE key as one word for [`Entry::want`]: the key's 4 bytes as the wire carries
/// them, read little-endian (so the straight path takes them from the frame with one load),
/// and the K bit above them, so "no key" and every key differ (RFC 2890 §2.1: the key field is
/// present only with K set).
#[inline(always)]
pub(crate) fn wire_key(key: Option<u32>) -> u64 {
    match key {
        Some(k) => (1 << 32) | u64::from(u32::from_le_bytes(k.to_be_bytes())),
        None => 0,
    }
}

/// All tunnels of one (peer, local) pair, told apart by their key rule.
#[derive(Clone, Debug, Default)]
struct PairTunnels {
    any: Option<u32>,
    absent: Option<u32>,
    keyed: Map<u32, u32>,
    /// The first tunnel defined on this pair (reported on a key mismatch).
    first: u32,
}

impl PairTunnels {
    fn count(&self) -> usize {
        usize::from(self.any.is_some()) + usize::from(self.absent.is_some()) + self.keyed.len()
    }
}

/// Outcome of the address and key lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Match {
    /// A tunnel matches addresses and key.
    Tunnel(u32),
    /// Tunnels match the addresses, none the key; the first of them is named.
    KeyMismatch(u32),
    /// No tunnel matches the addresses.
    None,
}

/// Outcome of the lookup on the hot path: [`Match`] with the matched tunnel's [`HotRule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hit {
    /// A tunnel matches addresses and key.
    Tunnel(u32, HotRule),
    /// Tunnels match the addresses, none the key; the first of them is named.
    KeyMismatch(u32),
    /// No tunnel matches the addresses.
    None,
}

impl From<Hit> for Match {
    fn from(h: Hit) -> Match {
        match h {
            Hit::Tunnel(t, _) => Match::Tunnel(t),
            Hit::KeyMismatch(t) => Match::KeyMismatch(t),
            Hit::None => Match::None,
        }
    }
}

type Map<K, V> = HashMap<K, V, RandomState>;

/// An address family's key in the host-pair table.
trait Family: Copy + Eq + std::hash::Hash {
    type Key: HostKey;
    fn key(peer: Self, local: Self) -> Self::Key;
    /// The (peer, local) pair of a key.
    fn pair(key: Self::Key) -> (Self, Self);
}

/// An IPv4 pair is keyed by its 8 bytes as the wire carries them (source then destination
/// for a frame from outside), read little-endian: the straight path takes the key from the
/// frame with one load.
impl Family for u32 {
    type Key = u64;
    #[inline(always)]
    fn key(peer: u32, local: u32) -> u64 {
        let wire = |a: u32| u64::from(u32::from_le_bytes(a.to_be_bytes()));
        wire(peer) | wire(local) << 32
    }
    fn pair(key: u64) -> (u32, u32) {
        // Each half of the key is one address's bytes.
        #[allow(clippy::cast_possible_truncation)]
        let address = |half: u64| u32::from_be_bytes((half as u32).to_le_bytes());
        (address(key), address(key >> 32))
    }
}

impl Family for u128 {
    type Key = (u128, u128);
    #[inline(always)]
    fn key(peer: u128, local: u128) -> (u128, u128) {
        (peer, local)
    }
    fn pair(key: (u128, u128)) -> (u128, u128) {
        key
    }
}

/// The lookup tables of one address family.
#[derive(Clone, Debug)]
struct FamilyTable<A: Family>
where
    (A, u8): prefix_trie::Prefix,
{
    hosts: HostTable<A::Key, Entry>,
    prefixes: PrefixMap<(A, u8), PrefixMap<(A, u8), Entry>>,
}

impl<A: Family> FamilyTable<A>
where
    (A, u8): prefix_trie::Prefix,
{
    /// Empty, with the host table's memory kept.
    fn clear(&mut self) {
        self.hosts.clear();
        self.prefixes = PrefixMap::new();
    }
}

impl<A: Family> Default for FamilyTable<A>
where
    (A, u8): prefix_trie::Prefix,
{
    fn default() -> Self {
        FamilyTable {
            hosts: HostTable::default(),
            prefixes: PrefixMap::new(),
        }
    }
}

macro_rules! family_lookup {
    ($name:ident, $addr:ty, $bits:expr) => {
        /// Finds the entry of the most specific (peer, local) pair.
        #[inline(always)]
        fn $name(t: &FamilyTable<$addr>, peer: $addr, local: $addr) -> Option<&Entry> {
            if let Some(entry) = t.hosts.get(<$addr as Family>::key(peer, local)) {
                return Some(entry);
            }
            if t.prefixes.is_empty() {
                return None;
            }
            // Covering peer prefixes come shortest first; keep them to try the longest first.
            let mut covers: [Option<&PrefixMap<($addr, u8), Entry>>; $bits + 1] = [None; $bits + 1];
            let mut n = 0;
            for (_, locals) in t.prefixes.cover(&(peer, $bits)) {
                if let Some(c) = covers.get_mut(n) {
                    *c = Some(locals);
                    n += 1;
                }
            }
            covers[..n]
                .iter()
                .rev()
                .flatten()
                .find_map(|locals| locals.get_lpm(&(local, $bits)).map(|(_, e)| e))
        }
    };
}

family_lookup!(lookup_v4, u32, 32);
family_lookup!(lookup_v6, u128, 128);

/// The addresses of a host pair: a tunnel whose `peer` and `local` are single addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostAddrs {
    V4 { peer: u32, local: u32 },
    V6 { peer: u128, local: u128 },
}

/// How the tunnel of a host pair is picked by a frame's key (docs/policy.md): by the key rule
/// of the pair's only tunnel, or among several tunnels on the pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairKey {
    /// No `key` rule: any key, or none.
    Any,
    /// `key = "none"`: no key.
    Absent,
    /// `key = N`: the key N.
    Equal(u32),
    /// Several tunnels share the pair.
    Several,
}

/// One entry of the host-pair table, for an engine that keeps a copy of it (the XDP program).
/// The match consults this table before any prefix: a frame whose oriented addresses are a
/// host pair is matched by that pair's entry alone, whatever prefix tunnels also cover them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostPair {
    pub addrs: HostAddrs,
    /// The pair's tunnel (meaningless for [`PairKey::Several`]).
    pub tunnel: u32,
    pub key: PairKey,
    /// The tunnel's hot rule (meaningless for [`PairKey::Several`]).
    pub rule: HotRule,
}

impl HostPair {
    fn of(addrs: HostAddrs, e: &Entry, rule: HotRule) -> HostPair {
        HostPair {
            addrs,
            tunnel: e.tunnel,
            key: pair_key(e),
            rule,
        }
    }
}

/// One entry of the prefix tables: a (peer prefix, local prefix) pair whose `peer` or `local`
/// is not a single address. The match looks here only when the host pairs have no entry for a
/// frame: among the peer prefixes that cover its peer, longest first, the first whose local
/// prefixes cover its local decides, by its longest such local prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefixPair {
    pub peer: IpPrefix,
    pub local: IpPrefix,
    /// The pair's tunnel (meaningless for [`PairKey::Several`]).
    pub tunnel: u32,
    pub key: PairKey,
    /// The tunnel's hot rule (meaningless for [`PairKey::Several`]).
    pub rule: HotRule,
}

fn pair_key(e: &Entry) -> PairKey {
    match e.select {
        Select::Any => PairKey::Any,
        Select::Absent => PairKey::Absent,
        Select::Equal => PairKey::Equal(e.key()),
        // `Vacant` is never stored in a table.
        Select::Several | Select::Vacant => PairKey::Several,
    }
}

/// An error building the tables.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// `peer` and `local` are of different address families.
    MixedFamilies,
    /// Another tunnel (by index) has the same peer, local and key rule: no packet could tell them
    /// apart.
    Indistinguishable { other: u32 },
    /// More tunnels than the tables can index.
    TooManyTunnels,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::MixedFamilies => {
                f.write_str("peer and local must both be IPv4 or both IPv6")
            }
            BuildError::Indistinguishable { other } => {
                write!(
                    f,
                    "same peer, local and key as tunnel #{other}: no packet could tell them apart"
                )
            }
            BuildError::TooManyTunnels => f.write_str("too many tunnels"),
        }
    }
}

impl std::error::Error for BuildError {}

/// A compiled policy: immutable once built; workers read it, never write it.
#[derive(Clone, Debug)]
pub struct Policy {
    defaults: Defaults,
    hot: Vec<HotRule>,
    /// Shared: a reload that keeps a tunnel keeps its spec, and building the new policy then
    /// costs a pointer per tunnel instead of a copy (with its name) in fresh memory.
    specs: Vec<Arc<TunnelSpec>>,
    v4: FamilyTable<u32>,
    v6: FamilyTable<u128>,
    pairs: Vec<PairTunnels>,
    /// The pair of each tunnel, by index (building only: a pair's entry names its pair only
    /// while it has several tunnels).
    pair_of: Vec<u32>,
    /// What `defaults` make of each outcome of the classifier's straight path (and, once a
    /// prefix tunnel exists, that a miss in the host table is the stages' to search).
    outcomes: Outcomes,
}

impl Policy {
    /// An empty policy with `defaults`; add tunnels with [`Policy::add_tunnel`].
    pub fn new(defaults: Defaults) -> Policy {
        Policy {
            defaults,
            hot: Vec::new(),
            specs: Vec::new(),
            v4: FamilyTable::default(),
            v6: FamilyTable::default(),
            pairs: Vec::new(),
            pair_of: Vec::new(),
            outcomes: Outcomes::of(&defaults),
        }
    }

    /// This policy emptied and set to `defaults`, its tables' memory kept: a reload builds the
    /// next policy in the one it replaced, in memory that is already there instead of fresh
    /// memory the kernel zeroes first.
    pub fn recycle(mut self, defaults: Defaults) -> Policy {
        self.defaults = defaults;
        self.outcomes = Outcomes::of(&defaults);
        self.hot.clear();
        self.specs.clear();
        self.pairs.clear();
        self.pair_of.clear();
        self.v4.clear();
        self.v6.clear();
        self
    }

    /// Makes room for `tunnels` more before they are added one by one, so that a policy of
    /// 100 000 tunnels is not built through a series of ever larger copies. Whatever has to grow
    /// gets an eighth more: a policy recycled for the next reload then fits a few more tunnels
    /// without moving to fresh memory. Both families' host tables get room for all of them: the
    /// unused one costs address space, not memory (only its control bytes are written).
    pub fn reserve(&mut self, tunnels: usize) {
        let room = tunnels.saturating_add(tunnels / 8);
        fn grow<T>(v: &mut Vec<T>, need: usize, room: usize) {
            if v.capacity() - v.len() < need {
                v.reserve_exact(room);
            }
        }
        grow(&mut self.specs, tunnels, room);
        grow(&mut self.hot, tunnels, room);
        grow(&mut self.pairs, tunnels, room);
        grow(&mut self.pair_of, tunnels, room);
        self.v4.hosts.reserve(tunnels, room);
        self.v6.hosts.reserve(tunnels, room);
    }

    /// Adds a tunnel and returns its index.
    pub fn add_tunnel(&mut self, spec: impl Into<Arc<TunnelSpec>>) -> Result<u32, BuildError> {
        let spec = spec.into();
        let index = u32::try_from(self.specs.len())
            .ok()
            .filter(|&i| i < NO_TUNNEL)
            .ok_or(BuildError::TooManyTunnels)?;
        let next_pair = u32::try_from(self.pairs.len()).map_err(|_| BuildError::TooManyTunnels)?;
        let entry = match (spec.peer, spec.local) {
            (IpPrefix::V4(p, pl), IpPrefix::V4(l, ll)) => {
                family_entry(&mut self.v4, (p, pl), (l, ll), 32, next_pair)
            }
            (IpPrefix::V6(p, pl), IpPrefix::V6(l, ll)) => {
                family_entry(&mut self.v6, (p, pl), (l, ll), 128, next_pair)
            }
            _ => return Err(BuildError::MixedFamilies),
        };
        let pair_id = match entry.pair() {
            Some(pair) => pair,
            None => self
                .pair_of
                .get(entry.tunnel as usize)
                .copied()
                .ok_or(BuildError::TooManyTunnels)?,
        };
        if pair_id == next_pair {
            self.pairs.push(PairTunnels {
                first: index,
                ..PairTunnels::default()
            });
        }
        let Some(pair) = self.pairs.get_mut(pair_id as usize) else {
            return Err(BuildError::TooManyTunnels);
        };
        let taken = match spec.key {
            KeyRule::Any => pair.any,
            KeyRule::Absent => pair.absent,
            KeyRule::Equal(k) => pair.keyed.get(&k).copied(),
        };
        if let Some(other) = taken {
            return Err(BuildError::Indistinguishable { other });
        }
        match spec.key {
            KeyRule::Any => pair.any = Some(index),
            KeyRule::Absent => pair.absent = Some(index),
            KeyRule::Equal(k) => {
                pair.keyed.insert(k, index);
            }
        }
        let hot = HotRule::of(&spec);
        *entry = if pair.count() == 1 {
            let (select, want) = match spec.key {
                KeyRule::Any => (Select::Any, 0),
                KeyRule::Absent => (Select::Absent, wire_key(None)),
                KeyRule::Equal(k) => (Select::Equal, wire_key(Some(k))),
            };
            Entry::single(index, &hot, select, want)
        } else {
            Entry::several(pair_id)
        };
        if !self.v4.prefixes.is_empty() {
            self.outcomes.search_on_miss();
        }
        self.pair_of.push(pair_id);
        self.hot.push(hot);
        self.specs.push(spec);
        Ok(index)
    }

    /// The defaults.
    #[inline]
    pub fn defaults(&self) -> &Defaults {
        &self.defaults
    }

    /// What the defaults make of each outcome of the classifier's straight path.
    #[inline(always)]
    pub(crate) fn outcomes(&self) -> &Outcomes {
        &self.outcomes
    }

    /// One probe of the IPv4 host table for a pair's key (`Family::key`), with no branch on
    /// the outcome: an entry, and whether it is the pair's (else it is another pair's, or the
    /// value of vacant slots).
    #[inline(always)]
    pub(crate) fn probe_v4(&self, key: u64) -> (&Entry, bool) {
        self.v4.hosts.probe(key)
    }

    /// Number of tunnels.
    pub fn tunnel_count(&self) -> usize {
        self.specs.len()
    }

    /// The spec a tunnel was built from (name, addresses), for reports.
    pub fn spec(&self, index: u32) -> Option<&TunnelSpec> {
        self.specs.get(index as usize).map(|s| &**s)
    }

    /// All tunnel specs in index order.
    pub fn specs(&self) -> &[Arc<TunnelSpec>] {
        &self.specs
    }

    /// The name of tunnel `index`, or "" when there is none.
    pub fn tunnel_name(&self, index: u32) -> &str {
        self.spec(index).map_or("", |s| s.name.as_str())
    }

    /// For each tunnel, the index of the tunnel of the same name in `old` (a reload carries
    /// policer levels, counts and metric series over by it). Most reloads change a few tunnels
    /// of many, so a name is first looked for at its own index, and only the names left over
    /// are looked up among the old tunnels left over.
    pub fn previous_indices(&self, old: &Policy) -> Vec<Option<u32>> {
        let mut taken = vec![false; old.tunnel_count()];
        let mut previous: Vec<Option<u32>> = self
            .specs
            .iter()
            .zip(0u32..)
            .map(|(spec, i)| {
                let was = old.specs.get(i as usize)?;
                // The same spec (a reload shares unchanged ones) needs no look at the names.
                (Arc::ptr_eq(was, spec) || was.name == spec.name).then(|| {
                    taken[i as usize] = true;
                    i
                })
            })
            .collect();
        if previous.iter().all(Option::is_some) {
            return previous;
        }
        // Names are unique in both policies, so a name matched at its own index is nowhere else.
        let left: HashMap<&str, u32, RandomState> = old
            .specs
            .iter()
            .zip(0u32..)
            .filter(|&(_, o)| !taken[o as usize])
            .map(|(spec, o)| (spec.name.as_str(), o))
            .collect();
        for (slot, spec) in previous.iter_mut().zip(&self.specs) {
            if slot.is_none() {
                *slot = left.get(spec.name.as_str()).copied();
            }
        }
        previous
    }

    /// Finds the tunnel for an IPv4 packet oriented as (peer, local) with an optional key.
    pub fn match_v4(&self, peer: u32, local: u32, key: Option<u32>) -> Match {
        self.find_v4(peer, local, key).into()
    }

    /// Finds the tunnel for an IPv6 packet oriented as (peer, local) with an optional key.
    pub fn match_v6(&self, peer: u128, local: u128, key: Option<u32>) -> Match {
        self.find_v6(peer, local, key).into()
    }

    /// [`Policy::match_v4`] with the matched tunnel's hot rule, for the classifier.
    #[inline(always)]
    pub fn find_v4(&self, peer: u32, local: u32, key: Option<u32>) -> Hit {
        self.resolve(lookup_v4(&self.v4, peer, local), key)
    }

    /// [`Policy::match_v6`] with the matched tunnel's hot rule, for the classifier.
    #[inline(always)]
    pub fn find_v6(&self, peer: u128, local: u128, key: Option<u32>) -> Hit {
        self.resolve(lookup_v6(&self.v6, peer, local), key)
    }

    /// Picks the tunnel of a pair by key: `key = N` for key N, `"none"` for no key, no `key` rule
    /// for either (docs/policy.md).
    #[inline(always)]
    fn resolve(&self, entry: Option<&Entry>, key: Option<u32>) -> Hit {
        let Some(e) = entry else { return Hit::None };
        if let Some(pair) = e.pair() {
            return self.resolve_several(pair, key);
        }
        match self.hot.get(e.tunnel as usize) {
            Some(&rule) if e.accepts(wire_key(key)) => Hit::Tunnel(e.tunnel, rule),
            _ => Hit::KeyMismatch(e.tunnel),
        }
    }

    /// Every entry of the host-pair tables, both families, in no particular order.
    pub fn host_pairs(&self) -> impl Iterator<Item = HostPair> + '_ {
        let v4 = self.v4.hosts.iter().map(|(k, e)| {
            let (peer, local) = <u32 as Family>::pair(k);
            HostPair::of(HostAddrs::V4 { peer, local }, e, self.rule_of(e))
        });
        let v6 = self.v6.hosts.iter().map(|((peer, local), e)| {
            HostPair::of(HostAddrs::V6 { peer, local }, e, self.rule_of(e))
        });
        v4.chain(v6)
    }

    /// The rule of an entry's tunnel (none for a pair of several tunnels).
    fn rule_of(&self, e: &Entry) -> HotRule {
        self.hot.get(e.tunnel as usize).copied().unwrap_or_default()
    }

    /// Every entry of the prefix tables, both families, in no particular order.
    pub fn prefix_pairs(&self) -> Vec<PrefixPair> {
        let mut out = Vec::new();
        let pair = |peer: IpPrefix, local: IpPrefix, e: &Entry| PrefixPair {
            peer,
            local,
            tunnel: e.tunnel,
            key: pair_key(e),
            rule: self.rule_of(e),
        };
        for ((p, pl), locals) in self.v4.prefixes.iter() {
            for ((l, ll), e) in locals.iter() {
                out.push(pair(IpPrefix::V4(p, pl), IpPrefix::V4(l, ll), e));
            }
        }
        for ((p, pl), locals) in self.v6.prefixes.iter() {
            for ((l, ll), e) in locals.iter() {
                out.push(pair(IpPrefix::V6(p, pl), IpPrefix::V6(l, ll), e));
            }
        }
        out
    }

    /// The rare pair with several tunnels.
    fn resolve_several(&self, pair: u32, key: Option<u32>) -> Hit {
        let Some(p) = self.pairs.get(pair as usize) else {
            return Hit::None;
        };
        let found = match key {
            Some(k) => p.keyed.get(&k).copied().or(p.any),
            None => p.absent.or(p.any),
        };
        match found.and_then(|t| self.hot.get(t as usize).map(|h| (t, *h))) {
            Some((t, hot)) => Hit::Tunnel(t, hot),
            None => Hit::KeyMismatch(p.first),
        }
    }
}

/// The entry for a (peer, local) pair, inserting a placeholder for pair `next_pair` when new.
fn family_entry<A>(
    t: &mut FamilyTable<A>,
    peer: (A, u8),
    local: (A, u8),
    bits: u8,
    next_pair: u32,
) -> &mut Entry
where
    A: Family,
    (A, u8): prefix_trie::Prefix,
{
    let fresh = Entry::several(next_pair);
    if peer.1 == bits && local.1 == bits {
        t.hosts.get_or_insert(A::key(peer.0, local.0), fresh)
    } else {
        let locals = t.prefixes.entry(peer).or_default();
        locals.entry(local).or_insert(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocols::ProtoClass;

    fn pfx(s: &str) -> IpPrefix {
        match s.split_once('/') {
            Some((a, l)) => IpPrefix::new(a.parse().unwrap(), l.parse().unwrap()).unwrap(),
            None => IpPrefix::host(s.parse().unwrap()),
        }
    }

    fn spec(name: &str, peer: &str, local: &str, key: KeyRule) -> TunnelSpec {
        let mut protocols = ProtocolSet::new();
        protocols.allow_class(ProtoClass::Ipv4);
        TunnelSpec {
            name: name.into(),
            peer: pfx(peer),
            local: pfx(local),
            key,
            version: 0,
            protocols,
            nested: false,
            checksum: FlagRule::Allow,
            sequence: FlagRule::Allow,
            rate: None,
        }
    }

    fn v4(s: &str) -> u32 {
        u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
    }

    #[test]
    fn tunnels_are_matched_by_name_wherever_they_moved() {
        let policy = |names: &[&str]| {
            let mut p = Policy::new(Defaults::default());
            for (i, name) in names.iter().enumerate() {
                let peer = format!("203.0.113.{i}");
                p.add_tunnel(spec(name, &peer, "198.51.100.1", KeyRule::Any))
                    .expect("distinct peers");
            }
            p
        };
        let old = policy(&["a", "b", "c"]);
        assert_eq!(
            policy(&["a", "b", "c", "d"]).previous_indices(&old),
            [Some(0), Some(1), Some(2), None]
        );
        assert_eq!(
            policy(&["a", "x", "c", "b"]).previous_indices(&old),
            [Some(0), None, Some(2), Some(1)]
        );
        assert_eq!(policy(&["c"]).previous_indices(&old), [Some(2)]);
        assert!(policy(&[]).previous_indices(&old).is_empty());
    }

    #[test]
    fn host_pairs_and_keys() {
        let mut p = Policy::new(Defaults::default());
        let a = p
            .add_tunnel(spec("a", "192.0.2.1", "198.51.100.1", KeyRule::Equal(7)))
            .unwrap();
        let b = p
            .add_tunnel(spec("b", "192.0.2.1", "198.51.100.1", KeyRule::Absent))
            .unwrap();
        let c = p
            .add_tunnel(spec("c", "192.0.2.2", "198.51.100.1", KeyRule::Any))
            .unwrap();
        assert_eq!(
            p.match_v4(v4("192.0.2.1"), v4("198.51.100.1"), Some(7)),
            Match::Tunnel(a)
        );
        assert_eq!(
            p.match_v4(v4("192.0.2.1"), v4("198.51.100.1"), None),
            Match::Tunnel(b)
        );
        assert_eq!(
            p.match_v4(v4("192.0.2.1"), v4("198.51.100.1"), Some(8)),
            Match::KeyMismatch(a)
        );
        assert_eq!(
            p.match_v4(v4("192.0.2.2"), v4("198.51.100.1"), Some(8)),
            Match::Tunnel(c)
        );
        assert_eq!(
            p.match_v4(v4("192.0.2.2"), v4("198.51.100.1"), None),
            Match::Tunnel(c)
        );
        assert_eq!(
            p.match_v4(v4("192.0.2.3"), v4("198.51.100.1"), None),
            Match::None
        );
    }

    #[test]
    fn most_specific_prefix_wins_and_falls_back() {
        let mut p = Policy::new(Defaults::default());
        let wide = p
            .add_tunnel(spec("wide", "10.0.0.0/8", "172.16.0.0/12", KeyRule::Any))
            .unwrap();
        let narrow = p
            .add_tunnel(spec("narrow", "10.1.0.0/16", "172.16.5.0/24", KeyRule::Any))
            .unwrap();
        let narrow_local = p
            .add_tunnel(spec("nl", "10.0.0.0/8", "172.16.5.128/25", KeyRule::Any))
            .unwrap();
        let host = p
            .add_tunnel(spec("host", "10.1.2.3", "172.16.5.1", KeyRule::Any))
            .unwrap();
        assert_eq!(
            p.match_v4(v4("10.1.2.3"), v4("172.16.5.1"), None),
            Match::Tunnel(host)
        );
        assert_eq!(
            p.match_v4(v4("10.1.2.4"), v4("172.16.5.1"), None),
            Match::Tunnel(narrow)
        );
        // Longest peer first: narrow (/16) beats nl (/8 with a longer local).
        assert_eq!(
            p.match_v4(v4("10.1.2.4"), v4("172.16.5.200"), None),
            Match::Tunnel(narrow)
        );
        // Peer outside 10.1/16: back to the /8 peers, longest local.
        assert_eq!(
            p.match_v4(v4("10.2.0.1"), v4("172.16.5.200"), None),
            Match::Tunnel(narrow_local)
        );
        // The /16 peer has no local covering 172.16.9.9: fall back to /8.
        assert_eq!(
            p.match_v4(v4("10.1.0.1"), v4("172.16.9.9"), None),
            Match::Tunnel(wide)
        );
        assert_eq!(
            p.match_v4(v4("11.0.0.1"), v4("172.16.9.9"), None),
            Match::None
        );
    }

    #[test]
    fn refuses_indistinguishable_and_mixed_tunnels() {
        let mut p = Policy::new(Defaults::default());
        p.add_tunnel(spec("a", "192.0.2.0/24", "198.51.100.1", KeyRule::Equal(1)))
            .unwrap();
        assert_eq!(
            p.add_tunnel(spec("b", "192.0.2.0/24", "198.51.100.1", KeyRule::Equal(1))),
            Err(BuildError::Indistinguishable { other: 0 })
        );
        assert!(p
            .add_tunnel(spec("c", "192.0.2.0/24", "198.51.100.1", KeyRule::Equal(2)))
            .is_ok());
        assert_eq!(
            p.add_tunnel(spec("d", "192.0.2.1", "2001:db8::1", KeyRule::Any)),
            Err(BuildError::MixedFamilies)
        );
        // Host bits are cleared: 192.0.2.5/24 is 192.0.2.0/24.
        assert_eq!(
            p.add_tunnel(spec("e", "192.0.2.5/24", "198.51.100.1", KeyRule::Equal(2))),
            Err(BuildError::Indistinguishable { other: 1 })
        );
        assert_eq!(p.tunnel_count(), 2);
        assert_eq!(
            p.match_v4(v4("192.0.2.9"), v4("198.51.100.1"), Some(1)),
            Match::Tunnel(0)
        );
    }

    #[test]
    fn ipv6_prefixes() {
        let mut p = Policy::new(Defaults::default());
        let t = p
            .add_tunnel(spec(
                "v6",
                "2001:db8:1::/48",
                "2001:db8:ffff::1",
                KeyRule::Any,
            ))
            .unwrap();
        let a = u128::from("2001:db8:1::7".parse::<std::net::Ipv6Addr>().unwrap());
        let l = u128::from("2001:db8:ffff::1".parse::<std::net::Ipv6Addr>().unwrap());
        assert_eq!(p.match_v6(a, l, None), Match::Tunnel(t));
        assert_eq!(p.match_v6(a + (1 << 80), l, None), Match::None);
        assert!(pfx("2001:db8::/32").contains(&pfx("2001:db8:1::/48")));
        assert!(!pfx("2001:db8:1::/48").contains(&pfx("2001:db8::/32")));
    }

    #[test]
    fn host_and_prefix_pairs_list_what_was_configured() {
        let mut p = Policy::new(Defaults::default());
        let nested = |mut s: TunnelSpec| {
            s.nested = true;
            s
        };
        p.add_tunnel(spec(
            "a",
            "192.0.2.1",
            "198.51.100.1",
            KeyRule::Equal(0x0102_0304),
        ))
        .unwrap();
        p.add_tunnel(nested(spec("b", "10.0.0.255", "1.2.3.4", KeyRule::Absent)))
            .unwrap();
        p.add_tunnel(spec("c", "192.0.2.2", "198.51.100.1", KeyRule::Any))
            .unwrap();
        p.add_tunnel(spec("d", "192.0.2.2", "198.51.100.1", KeyRule::Equal(9)))
            .unwrap();
        p.add_tunnel(spec("e", "2001:db8::1", "2001:db8::2", KeyRule::Equal(7)))
            .unwrap();
        p.add_tunnel(spec("f", "192.0.2.0/24", "198.51.100.1", KeyRule::Equal(5)))
            .unwrap();
        let mut hosts: Vec<(HostAddrs, u32, PairKey, HotRule)> = p
            .host_pairs()
            .map(|h| (h.addrs, h.tunnel, h.key, h.rule))
            .collect();
        hosts.sort_by_key(|h| (h.1, format!("{:?}", h.0)));
        let v4 = |peer: &str, local: &str| HostAddrs::V4 {
            peer: v4(peer),
            local: v4(local),
        };
        let hot = |i: u32| HotRule::of(p.spec(i).unwrap());
        assert_eq!(
            hosts,
            vec![
                (
                    v4("192.0.2.1", "198.51.100.1"),
                    0,
                    PairKey::Equal(0x0102_0304),
                    hot(0)
                ),
                (v4("10.0.0.255", "1.2.3.4"), 1, PairKey::Absent, hot(1)),
                (
                    HostAddrs::V6 {
                        peer: u128::from("2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap()),
                        local: u128::from("2001:db8::2".parse::<std::net::Ipv6Addr>().unwrap()),
                    },
                    4,
                    PairKey::Equal(7),
                    hot(4)
                ),
                (
                    v4("192.0.2.2", "198.51.100.1"),
                    NO_TUNNEL,
                    PairKey::Several,
                    HotRule::default()
                ),
            ]
        );
        assert_ne!(hot(1), hot(0));
        let prefixes = p.prefix_pairs();
        assert_eq!(prefixes.len(), 1);
        assert_eq!(
            (prefixes[0].tunnel, prefixes[0].key, prefixes[0].rule),
            (5, PairKey::Equal(5), hot(5))
        );
    }
}

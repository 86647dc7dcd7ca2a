//! What greguard and its XDP program (`fastpath/datapath/bpf/greguard.bpf.c`) share: the layout
//! of every map value the program reads or writes, the lane counter indices, the action codes
//! and the sizes. It depends on the validator's reasons alone: `fastpath/datapath/build.rs`
//! compiles it in, together with the validator's wire numbers, reasons, protocol classes,
//! bogon prefixes and policer clock, and generates the program's header `gg_shared.h` from
//! them — the C structs field by field, with `_Static_assert`s on the sizes and offsets
//! computed here. The C program defines no layout, mask or index of its own. The `const`
//! assertions below pin the layouts on this side.

use validator::reason::{Reason, Verdict};

/// Declares a `#[repr(C)]` struct shared with the XDP program, and a description of its fields
/// (name, Rust type, offset, size) from which the build script writes the C struct.
macro_rules! shared_struct {
    ($(#[$meta:meta])* pub struct $name:ident as $c_name:literal {
        $($(#[$fmeta:meta])* pub $field:ident: $ty:ty,)*
    }) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name {
            $($(#[$fmeta])* pub $field: $ty,)*
        }

        impl $name {
            /// The struct's name in the C program.
            pub const C_NAME: &'static str = $c_name;
            /// Each field's name, Rust type, offset and size.
            pub const FIELDS: &'static [(&'static str, &'static str, usize, usize)] = &[
                $((
                    stringify!($field),
                    stringify!($ty),
                    core::mem::offset_of!($name, $field),
                    core::mem::size_of::<$ty>(),
                ),)*
            ];
        }
    };
}

/// Queues per port the XSKMAP has room for: socket slot = port × `MAX_QUEUES` + queue.
pub const MAX_QUEUES: u32 = 256;

/// Bytes of a dropped frame the kernel copies into a sample.
pub const SNAP: usize = 256;

/// Entries of the per-CPU verdict counters (`gg_verdicts`): port × reason × verdict.
pub const VERDICT_KEYS: usize = 2 * Reason::COUNT * Verdict::COUNT;

/// The key of a (port, reason, verdict) counter in `gg_verdicts`; the C program's
/// `GG_VERDICT_KEY`, which the generated header asserts equal to this for every key.
// For port 0 or 1, the only ports, the key is below VERDICT_KEYS (a few dozen): it fits u32.
#[allow(clippy::cast_possible_truncation)]
pub const fn verdict_key(port: usize, reason: Reason, verdict: Verdict) -> u32 {
    ((port * Reason::COUNT + reason as usize) * Verdict::COUNT + verdict as usize) as u32
}

/// The per-port lane counters (`gg_lane`, key = port × [`lane::COUNT`] + lane): where the frames
/// the program did not judge went, and what became of its samples.
pub mod lane {
    /// Handed to a socket for the full validator.
    pub const TO_USER: u32 = 0;
    /// Redirected to the other port while greguard was gone (fail-open, or positively not GRE).
    pub const BYPASS: u32 = 1;
    /// Dropped while greguard was gone (fail-closed).
    pub const CLOSED_DROP: u32 = 2;
    /// A kernel drop copied to the sample ring.
    pub const SAMPLED: u32 = 3;
    /// Dropped: it would go up, but no socket serves the queue while greguard runs.
    pub const UNSERVED: u32 = 4;
    /// Dropped: the redirect target (other port or socket) was missing.
    pub const NO_TARGET: u32 = 5;
    /// A kernel drop to sample, but the sample ring was full.
    pub const SAMPLE_LOST: u32 = 6;
    /// Lanes per port.
    pub const COUNT: u32 = 7;
}

/// What the program does with GRE whose outer addresses match no tunnel (`unknown_action`).
pub mod action {
    /// Hand it up: user space decides.
    pub const PASS_UP: u8 = 0;
    /// Drop it as `unknown_tunnel`.
    pub const DROP: u8 = 1;
    /// Drop it as `rate_limited` while the shared budget has no room, else hand it up.
    pub const RATE_LIMIT: u8 = 2;
}

shared_struct! {
    /// The program's configuration (`gg_config`, one entry): written whole by user space.
    #[derive(Default)]
    pub struct Config as "gg_config" {
        pub outside_ifindex: u32,
        /// 1 in N kernel drops go up as samples (0 = none).
        pub sample_every: u32,
        /// `non_gre = "forward"`: redirect, else drop.
        pub non_gre_forward: u8,
        /// `unknown_tunnel`, as an [`action`] code.
        pub unknown_action: u8,
        /// `invalid_gre = "drop"`.
        pub invalid_drop: u8,
        /// `reserved_bits = "drop"`.
        pub drop_reserved: u8,
        /// `bogons = "drop"`.
        pub drop_bogons: u8,
        /// `on_failure = "open"`.
        pub fail_open: u8,
        /// 0: a bypass only (no daemon expected).
        pub active: u8,
        /// `fragments = "tunnel"`.
        pub fragments_to_tunnel: u8,
        /// The budget of the rate-limit actions, in policer ticks (`validator::policer`).
        pub rate_interval: u64,
        pub rate_tolerance: u64,
        /// 1 in N frames the kernel path forwards in a tunnel go up as samples (0 = none).
        pub sample_forwarded: u32,
        /// Frames longer than this (the bytes a UMEM frame holds) are never forwarded by the
        /// kernel path: they go up, where the data path counts them as `oversize`.
        pub max_frame: u32,
        /// Per port (bit 0 outside, bit 1 inside): the kernel path forwards tunnel traffic
        /// arriving there (`[ports] tunnel_path`).
        pub kernel_tunnels: u8,
        pub pad: [u8; 7],
    }
}

shared_struct! {
    /// One counter (`gg_verdicts`, `gg_lane`: per CPU).
    pub struct Counter as "gg_counter" {
        pub packets: u64,
        pub bytes: u64,
    }
}

shared_struct! {
    /// A kernel drop copied to the sample ring (`gg_samples`, a BPF ring buffer).
    pub struct KernelSample as "gg_sample" {
        pub port: u8,
        pub verdict: u8,
        pub reason: u8,
        pub pad: u8,
        /// On the wire.
        pub len: u32,
        /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC.
        pub at_ns: u64,
        pub caplen: u32,
        /// The tunnel's slot + 1 ([`TunnelEntry::slot`]); 0 for none.
        pub tunnel: u32,
        pub data: [u8; SNAP],
    }
}

shared_struct! {
    /// The key of the IPv4 prefix tries (`gg_peers4`, `gg_locals4`).
    pub struct LpmV4 as "lpm_v4" {
        pub prefixlen: u32,
        pub addr: [u8; 4],
    }
}

shared_struct! {
    /// The key of the IPv6 prefix tries (`gg_peers6`, `gg_locals6`).
    pub struct LpmV6 as "lpm_v6" {
        pub prefixlen: u32,
        pub addr: [u8; 16],
    }
}

shared_struct! {
    /// The per-CPU sampling state (`gg_bucket`).
    pub struct Bucket as "bucket" {
        /// Kernel drops until the next sample.
        pub skip: u64,
    }
}

shared_struct! {
    /// The key of the IPv4 host-pair table (`gg_hosts4`): the addresses as on the wire,
    /// oriented as (peer, local) by the port the frame arrived on.
    pub struct HostV4 as "host_v4" {
        pub peer: [u8; 4],
        pub local: [u8; 4],
    }
}

shared_struct! {
    /// The key of the IPv6 host-pair table (`gg_hosts6`).
    pub struct HostV6 as "host_v6" {
        pub peer: [u8; 16],
        pub local: [u8; 16],
    }
}

shared_struct! {
    /// A host pair's entry (`gg_hosts4`, `gg_hosts6`): how its tunnel is picked by key and the
    /// tunnel's rules, as the validator's `HostPair` and `HotRule` hold them.
    #[derive(Default)]
    pub struct TunnelEntry as "gg_tunnel" {
        /// The tunnel's policer, in policer ticks (0 and 0 with no `HOT_RATE` flag).
        pub rate_interval: u64,
        pub rate_tolerance: u64,
        /// The tunnel's slot: its policer cell in `gg_tunnel_tat`, its counters in
        /// `gg_tunnel_counts`. Kept by a tunnel across reloads.
        pub slot: u32,
        /// The key of [`select::EQUAL`].
        pub key: u32,
        /// `HotRule::classes`: the allowed protocol classes, one bit per class.
        pub classes: u16,
        /// A [`select`] code.
        pub select: u8,
        /// GRE version of the tunnel.
        pub version: u8,
        /// The C and S bit rules, as [`flag_rule`] codes.
        pub checksum: u8,
        pub sequence: u8,
        /// `HotRule::flags` (`HOT_NESTED`, `HOT_NUMBERS`, `HOT_RATE`).
        pub flags: u8,
        pub pad: u8,
    }
}

shared_struct! {
    /// The key of the IPv4 prefix-pair trie (`gg_pairs4`): a peer prefix's id (big-endian,
    /// all 32 bits significant) then the local address; `prefixlen` = 32 + the local prefix's
    /// length.
    pub struct PairV4 as "pair_v4" {
        pub prefixlen: u32,
        pub net: [u8; 4],
        pub local: [u8; 4],
    }
}

shared_struct! {
    /// The key of the IPv6 prefix-pair trie (`gg_pairs6`).
    pub struct PairV6 as "pair_v6" {
        pub prefixlen: u32,
        pub net: [u8; 4],
        pub local: [u8; 16],
    }
}

/// Peer prefixes the kernel path's prefix walk has ids for (ids 1 to this; 0 is none).
pub const MAX_PEER_NETS: u32 = 65_535;

/// Tunnels the kernel path has slots for (policer cells and counters); tunnels beyond are
/// judged in user space alone.
pub const MAX_TUNNEL_SLOTS: u32 = 65_536;

/// Verdicts per tunnel slot in `gg_tunnel_counts` (key = slot × this + verdict).
pub const TUNNEL_VERDICTS: u32 = 2;

/// Entries of the per-CPU tunnel counters (`gg_tunnel_counts`): slot × verdict, packets.
pub const TUNNEL_COUNT_KEYS: u32 = MAX_TUNNEL_SLOTS * TUNNEL_VERDICTS;

/// How a host pair's entry picks its tunnel by key (`TunnelEntry::select`).
pub mod select {
    /// Any key, or none.
    pub const ANY: u8 = 0;
    /// No key.
    pub const ABSENT: u8 = 1;
    /// The key `TunnelEntry::key`.
    pub const EQUAL: u8 = 2;
    /// Several tunnels share the pair: the program hands the frame up.
    pub const SEVERAL: u8 = 3;
}

/// The C and S bit rules (`TunnelEntry::checksum`, `::sequence`).
pub mod flag_rule {
    pub const ALLOW: u8 = 0;
    pub const REQUIRE: u8 = 1;
    pub const FORBID: u8 = 2;
}

// The layouts, pinned: a change here is a change of the program's ABI.
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<Config>() == 48);
    assert!(offset_of!(Config, sample_forwarded) == 32);
    assert!(offset_of!(Config, max_frame) == 36);
    assert!(offset_of!(Config, kernel_tunnels) == 40);
    assert!(TUNNEL_VERDICTS as usize == Verdict::COUNT);
    assert!(size_of::<HostV4>() == 8);
    assert!(size_of::<PairV4>() == 12);
    assert!(size_of::<PairV6>() == 24);
    assert!(offset_of!(PairV6, local) == 8);
    assert!(size_of::<HostV6>() == 32);
    assert!(size_of::<TunnelEntry>() == 32);
    assert!(offset_of!(TunnelEntry, slot) == 16);
    assert!(offset_of!(TunnelEntry, key) == 20);
    assert!(offset_of!(TunnelEntry, classes) == 24);
    assert!(offset_of!(TunnelEntry, select) == 26);
    assert!(offset_of!(TunnelEntry, flags) == 30);
    assert!(offset_of!(KernelSample, tunnel) == 20);
    assert!(offset_of!(Config, outside_ifindex) == 0);
    assert!(offset_of!(Config, sample_every) == 4);
    assert!(offset_of!(Config, non_gre_forward) == 8);
    assert!(offset_of!(Config, unknown_action) == 9);
    assert!(offset_of!(Config, invalid_drop) == 10);
    assert!(offset_of!(Config, drop_reserved) == 11);
    assert!(offset_of!(Config, drop_bogons) == 12);
    assert!(offset_of!(Config, fail_open) == 13);
    assert!(offset_of!(Config, active) == 14);
    assert!(offset_of!(Config, fragments_to_tunnel) == 15);
    assert!(offset_of!(Config, rate_interval) == 16);
    assert!(offset_of!(Config, rate_tolerance) == 24);
    assert!(size_of::<Counter>() == 16);
    assert!(offset_of!(Counter, packets) == 0);
    assert!(offset_of!(Counter, bytes) == 8);
    assert!(size_of::<KernelSample>() == 24 + SNAP);
    assert!(offset_of!(KernelSample, port) == 0);
    assert!(offset_of!(KernelSample, verdict) == 1);
    assert!(offset_of!(KernelSample, reason) == 2);
    assert!(offset_of!(KernelSample, len) == 4);
    assert!(offset_of!(KernelSample, at_ns) == 8);
    assert!(offset_of!(KernelSample, caplen) == 16);
    assert!(offset_of!(KernelSample, data) == 24);
    assert!(size_of::<LpmV4>() == 8);
    assert!(offset_of!(LpmV4, addr) == 4);
    assert!(size_of::<LpmV6>() == 20);
    assert!(offset_of!(LpmV6, addr) == 4);
    assert!(size_of::<Bucket>() == 8);
    // A socket slot per queue of each port; the program masks queue ids with MAX_QUEUES - 1.
    assert!(MAX_QUEUES.is_power_of_two());
    // The program bounds the sample copy with SNAP - 1 as a mask.
    assert!(SNAP.is_power_of_two());
};

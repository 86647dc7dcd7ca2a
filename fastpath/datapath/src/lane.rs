//! The fast lane: greguard's own XDP program (`fastpath/datapath/bpf/greguard.bpf.c`) on both ports,
//! and the BPF maps the policy compiles into.
//!
//! The program redirects non-GRE to the other port in the kernel (a DEVMAP), drops GRE that
//! fails the cheap header checks or whose outer addresses can match no tunnel (LPM tries of
//! every peer and local prefix), forwards the tunnel traffic it judges exactly on ports where
//! the kernel path is on (the tunnel tables of [`super::tunnels`]), and hands the rest to the
//! AF_XDP socket of its queue (an XSKMAP). It keeps per-CPU counters with the data path's (port, verdict, reason) indices.
//! A queue without a socket while greguard runs (its heartbeat, [`Heartbeat`], is current)
//! still gets the kernel's decisions, and what would go up is dropped. Once greguard is gone —
//! stopped with `--keep-bypass`, killed, frozen — the program fails open (every frame to the
//! other port) or closed (only what is positively not GRE passes), as `[ports] on_failure`
//! says. The rate-limit budget is a word of an mmapable map that the workers take from and the
//! program reads ([`FastLane::budget_cell`]).
//!
//! Loaded with the libbpf that xsk-rs already links (through libxdp-sys).

use std::io;

use super::bpf;
use super::link::Link;
use super::prefixes::{PrefixCounts, TriePrefix};
use super::sample::Rates;
use super::tunnels::{HostKey, KernelTunnels};
use validator::counters::Counters;
use validator::policy::{Action, IpPrefix, Policy};
use validator::reason::{Direction, Reason, Verdict};

/// The compiled program (built by `build.rs` with clang).
static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/greguard.bpf.o"));

/// The program's name, which tells greguard's program from anyone else's.
pub const PROGRAM_NAME: &str = "greguard_xdp";

/// Queues per port the XSKMAP has room for.
pub use super::kernel_abi::MAX_QUEUES;
use super::kernel_abi::{self, action, lane, Config};

/// How often greguard pushes its heartbeat deadline forward, and how far: once the deadline
/// has passed (greguard killed, frozen), queues without a socket fail open or closed.
pub const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);
pub const HEARTBEAT_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// What the program does once greguard is gone (the policy's `on_failure`).
pub use config::OnFailure;

/// How the program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attach {
    /// Native (driver) XDP: what AF_XDP copy and zero-copy modes need.
    Native,
    /// Generic (SKB) XDP.
    Generic,
}

impl Attach {
    fn flags(self) -> u32 {
        match self {
            Attach::Native => bpf::XDP_FLAGS_DRV_MODE,
            Attach::Generic => bpf::XDP_FLAGS_SKB_MODE,
        }
    }

    /// "native" or "generic".
    pub fn name(self) -> &'static str {
        match self {
            Attach::Native => "native",
            Attach::Generic => "generic",
        }
    }
}

/// Why the fast lane could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LaneError {
    #[error("libbpf could not open the embedded XDP program: {0}")]
    Open(io::Error),
    #[error("the kernel refused greguard's XDP program (verifier or privileges): {0}")]
    Load(io::Error),
    #[error("the XDP program has no map or program named {0}")]
    Missing(&'static str),
    #[error("attaching greguard's XDP program to {name} ({mode}): {err}")]
    Attach {
        name: String,
        mode: &'static str,
        err: io::Error,
    },
    #[error("updating the fast lane's {map} map: {err}")]
    Map { map: &'static str, err: io::Error },
    #[error("counting the possible CPUs for the per-CPU maps: {0}")]
    Cpus(io::Error),
}

/// Frames the kernel decided, and where the rest went, per port (sums over CPUs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaneCounters {
    /// Packets and bytes per (port, reason, verdict), the workers' counters' shape, and
    /// packets per tunnel of the applied policy and verdict (the kernel path's).
    pub verdicts: Counters,
    /// Per port: handed to a socket for the full validator.
    pub to_user: [u64; 2],
    /// Per port: redirected to the other port while greguard was gone (fail-open, or
    /// positively not GRE with fail-closed).
    pub bypassed: [u64; 2],
    /// Per port: dropped while greguard was gone (fail-closed).
    pub closed_dropped: [u64; 2],
    /// Per port: dropped because no socket served the queue while greguard ran (a worker
    /// gone, channels raised after the start), or the socket closed under the redirect.
    pub unserved: [u64; 2],
    /// Per port: dropped because the other port was missing from the program's DEVMAP.
    pub no_target: [u64; 2],
    /// Per port: kernel drops to be sampled that found the sample ring full (not sampled).
    pub samples_lost: [u64; 2],
    /// Per port: frames the kernel judged (drops, kernel-path forwards) handed up as samples (already counted in `packets`).
    pub sampled: [u64; 2],
}

impl LaneCounters {
    /// Frames the kernel judged on a port (every verdict and reason).
    pub fn judged(&self, port: usize) -> u64 {
        self.verdicts.packets[port].iter().flatten().sum()
    }
}

/// What [`FastLane::configure`] sets besides the ports and the policy.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// What the program does once greguard is gone.
    pub on_failure: OnFailure,
    /// How often kernel drops and kernel-path forwards go up as samples.
    pub sampling: Rates,
    /// The bytes a UMEM frame holds: the kernel path forwards no longer frame.
    pub max_frame: u32,
    /// false: a bypass only, no daemon behind it.
    pub active: bool,
}

/// The loaded program and its maps. Dropping it closes the object; the program stays attached
/// wherever it is (detach it with [`FastLane::detach`]).
pub struct FastLane {
    object: bpf::Object,
    prog_fd: i32,
    config_fd: i32,
    xsks_fd: i32,
    ports_fd: i32,
    verdicts_fd: i32,
    lane_fd: i32,
    alive_fd: i32,
    tries: [i32; 4],
    /// `gg_hosts4`, `gg_hosts6`, `gg_pairs4`, `gg_pairs6`.
    hosts: [i32; 4],
    /// `gg_peer_nets4`, `gg_peer_nets6`.
    nets: [i32; 2],
    parents_fd: i32,
    tunnel_counts_fd: i32,
    /// `gg_tunnel_tat` mapped into this process: the tunnels' policer cells.
    tats: std::sync::Arc<MappedArray>,
    /// Slots and host entries of the applied policy.
    tunnels: KernelTunnels,
    /// Slot → tunnel index of the applied policy, for the samples' reader.
    by_slot: std::sync::Arc<std::sync::RwLock<Vec<u32>>>,
    config: Config,
    /// The prefixes in the tries, counted by the tunnels of the applied policy that use them.
    prefixes: PrefixCounts,
    cpus: usize,
    attached: Vec<(u32, Attach)>,
}

impl FastLane {
    /// Loads the program into the kernel (not yet attached anywhere).
    pub fn load() -> Result<FastLane, LaneError> {
        let mut object = bpf::Object::open(OBJECT).map_err(LaneError::Open)?;
        object.load().map_err(LaneError::Load)?;
        let map = |name: &'static str| object.map(name).ok_or(LaneError::Missing(name));
        let tats = MappedArray::map(map("gg_tunnel_tat")?, kernel_abi::MAX_TUNNEL_SLOTS as usize)
            .map_err(|err| LaneError::Map {
            map: "gg_tunnel_tat",
            err,
        })?;
        Ok(FastLane {
            hosts: [
                map("gg_hosts4")?,
                map("gg_hosts6")?,
                map("gg_pairs4")?,
                map("gg_pairs6")?,
            ],
            nets: [map("gg_peer_nets4")?, map("gg_peer_nets6")?],
            parents_fd: map("gg_net_parents")?,
            tunnel_counts_fd: map("gg_tunnel_counts")?,
            tats: std::sync::Arc::new(tats),
            tunnels: KernelTunnels::default(),
            by_slot: Default::default(),
            prog_fd: object
                .program(PROGRAM_NAME)
                .ok_or(LaneError::Missing(PROGRAM_NAME))?,
            config_fd: map("gg_config")?,
            xsks_fd: map("gg_xsks")?,
            ports_fd: map("gg_ports")?,
            verdicts_fd: map("gg_verdicts")?,
            lane_fd: map("gg_lane")?,
            alive_fd: map("gg_alive")?,
            tries: [
                map("gg_peers4")?,
                map("gg_locals4")?,
                map("gg_peers6")?,
                map("gg_locals6")?,
            ],
            config: Config::default(),
            prefixes: PrefixCounts::default(),
            cpus: bpf::possible_cpus().map_err(LaneError::Cpus)?,
            attached: Vec::new(),
            object,
        })
    }

    /// Points each port at the other (the DEVMAP the program redirects through) and writes the
    /// configuration for `policy`. Call before attaching.
    pub fn configure(
        &mut self,
        outside: &Link,
        inside: &Link,
        policy: &Policy,
        settings: Settings,
    ) -> Result<(), LaneError> {
        let Settings {
            on_failure,
            sampling,
            max_frame,
            active,
        } = settings;
        for (from, to) in [(outside, inside), (inside, outside)] {
            // SAFETY: gg_ports maps a u32 ifindex to a u32 ifindex.
            unsafe { update(self.ports_fd, &from.ifindex, &to.ifindex, "gg_ports") }?;
        }
        self.config.outside_ifindex = outside.ifindex;
        self.config.fail_open = u8::from(on_failure == OnFailure::Open);
        self.config.active = u8::from(active);
        self.config.max_frame = max_frame;
        let none = Policy::new(policy.defaults().to_owned());
        self.apply(policy, &none, &vec![None; policy.tunnel_count()], sampling)
    }

    /// Turns the kernel path on or off per port (`[tunnel_path]`; index 0 outside, 1 inside):
    /// where on, the program forwards the tunnel traffic it judges exactly, arriving there.
    pub fn set_kernel_tunnels(&mut self, on: [bool; 2]) -> Result<(), LaneError> {
        self.config.kernel_tunnels = u8::from(on[0]) | (u8::from(on[1]) << 1);
        self.write_config()
    }

    /// The policer cell of tunnel `index` of the applied policy: a word of `gg_tunnel_tat`,
    /// which the kernel path takes from too. `None` for a tunnel beyond the slots.
    pub fn tunnel_cell(&self, index: u32) -> Option<std::sync::Arc<dyn validator::policer::Cell>> {
        let slot = self.tunnels.slot(index)?;
        Some(std::sync::Arc::new(SlotCell {
            array: self.tats.clone(),
            slot: slot as usize,
        }))
    }

    /// Brings the maps from `old` (the policy applied last) to `policy`, whose tunnel `i` was
    /// tunnel `previous[i]` of `old`: prefixes it adds go in before those it drops go out, so a
    /// frame in between is at worst handed to user space, never dropped for a tunnel that
    /// exists in both policies. Then the configuration is written in one update.
    pub fn apply(
        &mut self,
        policy: &Policy,
        old: &Policy,
        previous: &[Option<u32>],
        sampling: Rates,
    ) -> Result<(), LaneError> {
        let changes = self.prefixes.changes(policy, old, previous);
        for (i, &(peer, prefix)) in changes.insert.iter().enumerate() {
            let (fd, key) = self.trie_key(peer, prefix);
            // SAFETY: trie_key builds the trie's key layout; the value is one byte.
            if let Err(e) = unsafe { update(fd, key.as_slice(), &1u8, "prefix") } {
                // The running policy keeps its maps as they were.
                self.remove_prefixes(&changes.insert[..i]);
                return Err(e);
            }
        }
        // The host pairs: written after the prefixes that make their frames "known", removed
        // before those prefixes go.
        let tunnels = self.tunnels.changes(policy, previous);
        for &slot in &tunnels.fresh {
            self.zero_tunnel_counts(slot);
        }
        // The prefix walk's parents, then the pairs, then the peer prefixes that lead to them.
        for (i, &(id, parent)) in tunnels.parents.iter().enumerate() {
            if let Err(e) = self.write_parent(id, parent) {
                self.restore_parents(&tunnels.parents[..i]);
                self.remove_prefixes(&changes.insert);
                return Err(e);
            }
        }
        for (i, (key, entry)) in tunnels.upsert.iter().enumerate() {
            if let Err(e) = self.write_host(key, entry) {
                // The running policy keeps its maps as they were.
                self.restore_hosts(&tunnels.upsert[..i]);
                self.restore_parents(&tunnels.parents);
                self.remove_prefixes(&changes.insert);
                return Err(e);
            }
        }
        for (i, &(net, id)) in tunnels.net_insert.iter().enumerate() {
            let (fd, key) = self.net_key(net);
            // SAFETY: the peer-prefix tries map an LPM key (net_key's layout) to a u32 id.
            if let Err(e) = unsafe { update(fd, key.as_slice(), &id, "gg_peer_nets") } {
                for &(net, _) in &tunnels.net_insert[..i] {
                    let (fd, key) = self.net_key(net);
                    // SAFETY: as above.
                    unsafe { bpf::delete(fd, &key) };
                }
                self.restore_hosts(&tunnels.upsert);
                self.restore_parents(&tunnels.parents);
                self.remove_prefixes(&changes.insert);
                return Err(e);
            }
        }
        for key in &tunnels.delete {
            self.delete_host(key);
        }
        for &(net, _) in &tunnels.net_delete {
            let (fd, key) = self.net_key(net);
            // SAFETY: as above.
            unsafe { bpf::delete(fd, &key) };
        }
        self.tunnels.commit(tunnels);
        if let Ok(mut t) = self.by_slot.write() {
            *t = self.tunnels.by_slot();
        }
        self.remove_prefixes(&changes.delete);
        self.prefixes.commit(&changes);

        let d = policy.defaults();
        self.config.non_gre_forward = u8::from(d.non_gre == Verdict::Forward);
        self.config.unknown_action = match d.unknown_tunnel {
            Action::Drop => action::DROP,
            Action::RateLimit => action::RATE_LIMIT,
            Action::Forward => action::PASS_UP,
        };
        self.config.invalid_drop = u8::from(d.invalid_gre == Action::Drop);
        self.config.drop_reserved = u8::from(d.drop_reserved_bits);
        self.config.drop_bogons = u8::from(d.drop_bogons);
        self.config.fragments_to_tunnel = u8::from(d.fragments_to_tunnel);
        self.config.rate_interval = d.rate_limit.interval_ticks();
        self.config.rate_tolerance = d.rate_limit.tolerance_ticks();
        self.config.sample_every = sampling.dropped;
        self.config.sample_forwarded = sampling.forwarded;
        self.write_config()
    }

    fn write_parent(&self, id: u32, parent: u32) -> Result<(), LaneError> {
        // SAFETY: gg_net_parents is an array (u32 key) of u32.
        unsafe { update(self.parents_fd, &id, &parent, "gg_net_parents") }
    }

    /// Puts back the parents the applied policy had for the ids of `written` (0 for an id it
    /// did not use): the running policy's prefix walk stays as it was.
    fn restore_parents(&self, written: &[(u32, u32)]) {
        for &(id, _) in written {
            let _ = self.write_parent(id, self.tunnels.parent(id).unwrap_or(0));
        }
    }

    /// Puts back the entries the applied policy had for the keys of `written` (removing
    /// those it had none for): a reload that failed half-way leaves the maps as they were.
    fn restore_hosts(&self, written: &[(HostKey, kernel_abi::TunnelEntry)]) {
        for (key, _) in written {
            match self.tunnels.entry(key) {
                Some(old) => {
                    let _ = self.write_host(key, &old);
                }
                None => self.delete_host(key),
            }
        }
    }

    fn write_host(&self, key: &HostKey, entry: &kernel_abi::TunnelEntry) -> Result<(), LaneError> {
        // SAFETY: gg_hosts4/6 and gg_pairs4/6 map host_v4, host_v6, pair_v4 and pair_v6 keys
        // (HostV4, HostV6, PairV4, PairV6) to struct gg_tunnel (TunnelEntry), whose layouts
        // the generated header asserts.
        unsafe {
            match key {
                HostKey::V4(k) => update(self.hosts[0], k, entry, "gg_hosts4"),
                HostKey::V6(k) => update(self.hosts[1], k, entry, "gg_hosts6"),
                HostKey::Pair4(k) => update(self.hosts[2], k, entry, "gg_pairs4"),
                HostKey::Pair6(k) => update(self.hosts[3], k, entry, "gg_pairs6"),
            }
        }
    }

    fn delete_host(&self, key: &HostKey) {
        // SAFETY: the keys have the maps' key layouts (see write_host).
        unsafe {
            match key {
                HostKey::V4(k) => bpf::delete(self.hosts[0], as_bytes(k)),
                HostKey::V6(k) => bpf::delete(self.hosts[1], as_bytes(k)),
                HostKey::Pair4(k) => bpf::delete(self.hosts[2], as_bytes(k)),
                HostKey::Pair6(k) => bpf::delete(self.hosts[3], as_bytes(k)),
            }
        }
    }

    /// The peer-prefix trie of the prefix walk and the key of a peer prefix.
    fn net_key(&self, net: IpPrefix) -> (i32, Vec<u8>) {
        let family = usize::from(matches!(net, IpPrefix::V6(..)));
        (self.nets[family], lpm_key(net))
    }

    /// Zeroes a slot's per-CPU tunnel counters (a slot taken by a new tunnel).
    fn zero_tunnel_counts(&self, slot: u32) {
        let zeros = vec![0u64; self.cpus];
        for v in Verdict::ALL {
            let key = slot * kernel_abi::TUNNEL_VERDICTS + v as u32;
            // SAFETY: gg_tunnel_counts is a per-CPU array of u64: one value per possible CPU.
            let _ = unsafe { bpf::update(self.tunnel_counts_fd, &key, zeros.as_slice()) };
        }
    }

    /// Writes the configuration in one update.
    fn write_config(&self) -> Result<(), LaneError> {
        // SAFETY: gg_config is an array (u32 key) of `struct gg_config`, which Config mirrors.
        unsafe { update(self.config_fd, &0u32, &self.config, "gg_config") }
    }

    fn remove_prefixes(&self, prefixes: &[TriePrefix]) {
        for &(peer, prefix) in prefixes {
            let (fd, key) = self.trie_key(peer, prefix);
            // SAFETY: fd is an LPM trie of this object; trie_key builds its key layout.
            unsafe { bpf::delete(fd, &key) };
        }
    }

    /// The trie and key of a prefix: `{prefixlen: u32, addr: [u8; 4 or 16]}`.
    fn trie_key(&self, peer: bool, prefix: IpPrefix) -> (i32, Vec<u8>) {
        let family = 2 * usize::from(matches!(prefix, IpPrefix::V6(..)));
        (self.tries[family + usize::from(!peer)], lpm_key(prefix))
    }

    /// Attaches the program to `link`, replacing whatever XDP program is there in that mode
    /// (one netlink call: a bypass left by an earlier greguard keeps working until this one
    /// takes over).
    pub fn attach(&mut self, link: &Link, how: Attach) -> Result<(), LaneError> {
        bpf::attach(link.ifindex, self.prog_fd, how.flags()).map_err(|err| LaneError::Attach {
            name: link.name.clone(),
            mode: how.name(),
            err,
        })?;
        self.attached.push((link.ifindex, how));
        Ok(())
    }

    /// Detaches the program from every port it was attached to here.
    pub fn detach(&mut self) {
        for (ifindex, how) in self.attached.drain(..) {
            bpf::detach(ifindex, how.flags());
        }
    }

    /// Forgets where the program is attached, so it stays there when this is dropped (the
    /// bypass outlives the process).
    pub fn leave_attached(&mut self) {
        self.attached.clear();
    }

    /// Registers the AF_XDP socket `fd` for `port`'s queue `queue` (below [`MAX_QUEUES`],
    /// which the data path checks before it binds).
    pub fn add_socket(&mut self, port: Direction, queue: u32, fd: i32) -> Result<(), LaneError> {
        if queue >= MAX_QUEUES {
            return Err(LaneError::Map {
                map: "gg_xsks",
                err: io::Error::other(format!(
                    "queue {queue} has no slot (the program serves queues 0-{})",
                    MAX_QUEUES - 1
                )),
            });
        }
        let slot = port as u32 * MAX_QUEUES + queue;
        // SAFETY: gg_xsks is an XSKMAP: u32 slot to a u32 socket fd.
        unsafe { update(self.xsks_fd, &slot, &fd, "gg_xsks") }
    }

    /// Runs the program once on `frame` as if it arrived on `link`'s RX queue `queue`, without
    /// transmitting anything (BPF_PROG_RUN); returns its action. For tests of the kernel's
    /// decisions.
    pub fn test_run(&self, link: &Link, queue: u32, frame: &[u8]) -> io::Result<u32> {
        bpf::test_run(self.prog_fd, frame, link.ifindex, queue)
    }

    /// Sums the program's per-CPU counters.
    pub fn counters(&self) -> LaneCounters {
        let mut c = LaneCounters {
            verdicts: Counters::new(0),
            to_user: [0; 2],
            bypassed: [0; 2],
            closed_dropped: [0; 2],
            unserved: [0; 2],
            no_target: [0; 2],
            samples_lost: [0; 2],
            sampled: [0; 2],
        };
        let mut values = vec![[0u64; 2]; self.cpus];
        for port in 0..2 {
            for reason in 0..Reason::COUNT {
                for verdict in Verdict::ALL {
                    let key = kernel_abi::verdict_key(port, Reason::ALL[reason], verdict);
                    if self.read_percpu(self.verdicts_fd, key, &mut values) {
                        let v = verdict as usize;
                        c.verdicts.packets[port][reason][v] = values.iter().map(|v| v[0]).sum();
                        c.verdicts.bytes[port][reason][v] = values.iter().map(|v| v[1]).sum();
                    }
                }
            }
            let mut read = |l: u32| {
                // port is 0 or 1.
                #[allow(clippy::cast_possible_truncation)]
                let key = port as u32 * lane::COUNT + l;
                if self.read_percpu(self.lane_fd, key, &mut values) {
                    values.iter().map(|v| v[0]).sum()
                } else {
                    0
                }
            };
            c.to_user[port] = read(lane::TO_USER);
            c.bypassed[port] = read(lane::BYPASS);
            c.closed_dropped[port] = read(lane::CLOSED_DROP);
            c.sampled[port] = read(lane::SAMPLED);
            c.unserved[port] = read(lane::UNSERVED);
            c.no_target[port] = read(lane::NO_TARGET);
            c.samples_lost[port] = read(lane::SAMPLE_LOST);
        }
        c.verdicts.tunnel_packets = self.tunnel_counts();
        c
    }

    /// Packets per tunnel of the applied policy and verdict that the kernel path judged.
    fn tunnel_counts(&self) -> Vec<[u64; Verdict::COUNT]> {
        let mut out = vec![[0; Verdict::COUNT]; self.tunnels.tunnels()];
        let used = self.tunnels.high_water() as usize * Verdict::COUNT;
        if used == 0 {
            return out;
        }
        let mut values = vec![0u64; used * self.cpus];
        // SAFETY: gg_tunnel_counts is a per-CPU array of u64; `values` has room for `used`
        // keys times the possible CPUs.
        let Ok(n) = (unsafe { bpf::lookup_percpu_batch(self.tunnel_counts_fd, used, &mut values) })
        else {
            return out;
        };
        for (slot, index) in self.tunnels.by_slot().into_iter().enumerate() {
            let Some(t) = out.get_mut(index as usize) else {
                continue;
            };
            for (v, c) in t.iter_mut().enumerate() {
                let key = slot * Verdict::COUNT + v;
                if key < n {
                    *c = values[key * self.cpus..(key + 1) * self.cpus].iter().sum();
                }
            }
        }
        out
    }

    fn read_percpu(&self, fd: i32, key: u32, values: &mut [[u64; 2]]) -> bool {
        // SAFETY: both counter maps hold `struct gg_counter` (two u64, 16 bytes) per CPU and
        // `values` has one per possible CPU (`self.cpus`).
        unsafe { bpf::lookup_percpu(fd, key, values) }
    }
}

/// The word of the fast lane's `gg_budget` map (mapped into this process) that holds the TAT
/// of the rate-limit budget: user space takes from it, the kernel reads it.
struct MappedCell {
    page: *mut u8,
    len: usize,
}

// SAFETY: the mapping is owned by this value alone; the word in it is only used as an
// AtomicU64.
unsafe impl Send for MappedCell {}
// SAFETY: as above; shared access goes through the atomic.
unsafe impl Sync for MappedCell {}

impl validator::policer::Cell for MappedCell {
    fn tat(&self) -> &std::sync::atomic::AtomicU64 {
        // SAFETY: the mapping starts page-aligned with the array's first (and only) u64 value
        // and lives as long as self.
        unsafe { &*(self.page as *const std::sync::atomic::AtomicU64) }
    }
}

impl Drop for MappedCell {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping made in FastLane::budget_cell, once.
        unsafe { libc::munmap(self.page as *mut libc::c_void, self.len) };
    }
}

/// An mmapable BPF array of u64 mapped into this process (`gg_tunnel_tat`).
struct MappedArray {
    words: *mut u8,
    len: usize,
}

// SAFETY: the mapping is owned by this value alone; its words are only used as AtomicU64.
unsafe impl Send for MappedArray {}
// SAFETY: as above; shared access goes through the atomics.
unsafe impl Sync for MappedArray {}

impl MappedArray {
    /// Maps the `entries` u64 values of the mmapable array `fd`.
    fn map(fd: i32, entries: usize) -> io::Result<MappedArray> {
        let page = page_size()?;
        let len = (entries * 8).div_ceil(page) * page;
        let words = map_shared(fd, len, libc::PROT_READ | libc::PROT_WRITE, 0)?;
        Ok(MappedArray { words, len })
    }
}

impl Drop for MappedArray {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping made in MappedArray::map, once.
        unsafe { libc::munmap(self.words as *mut libc::c_void, self.len) };
    }
}

/// One tunnel's policer cell: a word of the mapped `gg_tunnel_tat`.
struct SlotCell {
    array: std::sync::Arc<MappedArray>,
    slot: usize,
}

impl validator::policer::Cell for SlotCell {
    fn tat(&self) -> &std::sync::atomic::AtomicU64 {
        // SAFETY: slot < MAX_TUNNEL_SLOTS (KernelTunnels never hands out more), so the word
        // lies inside the mapping, 8-byte aligned (the mapping is page-aligned); the mapping
        // lives as long as the Arc this cell holds.
        unsafe { &*(self.array.words.add(self.slot * 8) as *const std::sync::atomic::AtomicU64) }
    }
}

impl FastLane {
    /// The budget of the rate-limit actions as a policer cell that the kernel reads: the
    /// `gg_budget` array (`BPF_F_MMAPABLE`) mapped into this process.
    pub fn budget_cell(&self) -> Result<std::sync::Arc<dyn validator::policer::Cell>, LaneError> {
        let fd = self
            .object
            .map("gg_budget")
            .ok_or(LaneError::Missing("gg_budget"))?;
        let len = page_size().map_err(|err| LaneError::Map {
            map: "gg_budget",
            err,
        })?;
        // An mmapable array map is mapped from offset 0, its values in a row; one page holds
        // its single u64. The mapping stays valid after the map fd closes.
        let page = map_shared(fd, len, libc::PROT_READ | libc::PROT_WRITE, 0).map_err(|err| {
            LaneError::Map {
                map: "gg_budget",
                err,
            }
        })?;
        Ok(std::sync::Arc::new(MappedCell { page, len }))
    }
}

/// The size of a memory page (`sysconf(_SC_PAGESIZE)`); an error if sysconf fails.
fn page_size() -> io::Result<usize> {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page).map_err(|_| io::Error::last_os_error())
}

/// Maps `len` bytes of the BPF map `fd` from `offset`, shared with the kernel.
fn map_shared(fd: i32, len: usize, prot: i32, offset: usize) -> io::Result<*mut u8> {
    // SAFETY: a fresh mapping (no address asked for) of a map fd; what the bytes mean is the
    // caller's business.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            libc::MAP_SHARED,
            fd,
            offset as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED {
        Err(io::Error::last_os_error())
    } else {
        Ok(p as *mut u8)
    }
}

/// Writes greguard's heartbeat deadline into the program's `gg_alive` map from a thread of its
/// own, so a busy slow path never makes the kernel think greguard is gone. Holds its own
/// reference to the map: it may outlive the [`FastLane`].
pub struct Heartbeat {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    map: std::sync::Arc<std::os::fd::OwnedFd>,
}

impl FastLane {
    /// Beats once (so greguard counts as alive from here on) and starts the heartbeat thread.
    pub fn heartbeat(&self) -> Result<Heartbeat, LaneError> {
        use std::os::fd::BorrowedFd;
        // SAFETY: alive_fd is an open map fd of this object for as long as `self` lives; it is
        // only borrowed here to duplicate it.
        let borrowed = unsafe { BorrowedFd::borrow_raw(self.alive_fd) };
        let map = borrowed
            .try_clone_to_owned()
            .map_err(|err| LaneError::Map {
                map: "gg_alive",
                err,
            })?;
        let map = std::sync::Arc::new(map);
        beat(&map, grace_deadline())?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, fd) = (stop.clone(), map.clone());
        let thread = std::thread::Builder::new()
            .name("greguard-heartbeat".into())
            .spawn(move || {
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = beat(&fd, grace_deadline());
                    std::thread::park_timeout(HEARTBEAT_EVERY);
                }
            })
            .map_err(|err| LaneError::Map {
                map: "gg_alive",
                err,
            })?;
        Ok(Heartbeat {
            stop,
            thread: Some(thread),
            map,
        })
    }
}

impl Heartbeat {
    /// Stops beating and lets the deadline lapse now: from here, queues without a socket fail
    /// open or closed at once (a clean stop that leaves the bypass, or a dying worker).
    pub fn flatline(&mut self) {
        self.stop_beating();
        let _ = beat(&self.map, 0);
    }

    fn stop_beating(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

impl Drop for Heartbeat {
    /// Stops the thread; the last deadline stands (it lapses within [`HEARTBEAT_GRACE`]).
    fn drop(&mut self) {
        self.stop_beating();
    }
}

/// The deadline one heartbeat sets: [`HEARTBEAT_GRACE`] from now, in CLOCK_MONOTONIC ns.
fn grace_deadline() -> u64 {
    // HEARTBEAT_GRACE is half a second: its nanoseconds fit u64.
    #[allow(clippy::cast_possible_truncation)]
    let grace = HEARTBEAT_GRACE.as_nanos() as u64;
    monotonic_ns() + grace
}

/// Writes the heartbeat deadline (CLOCK_MONOTONIC ns).
fn beat(map: &std::os::fd::OwnedFd, deadline_ns: u64) -> Result<(), LaneError> {
    use std::os::fd::AsRawFd;
    // SAFETY: gg_alive is an array (u32 key) of one u64.
    unsafe { update(map.as_raw_fd(), &0u32, &deadline_ns, "gg_alive") }
}

impl Drop for FastLane {
    fn drop(&mut self) {
        self.detach();
    }
}

/// One map update, its error naming the map.
///
/// # Safety
/// As [`bpf::update`]: `K` and `V` have the map's key and value sizes.
unsafe fn update<K: ?Sized, V: ?Sized>(
    fd: i32,
    key: &K,
    value: &V,
    map: &'static str,
) -> Result<(), LaneError> {
    // SAFETY: passed on to the caller.
    unsafe { bpf::update(fd, key, value) }.map_err(|err| LaneError::Map { map, err })
}

/// An LPM trie key of a prefix: `{prefixlen: u32, addr: [u8; 4 or 16]}`.
fn lpm_key(prefix: IpPrefix) -> Vec<u8> {
    let mut key = Vec::with_capacity(20);
    match prefix {
        IpPrefix::V4(a, len) => {
            key.extend_from_slice(&u32::from(len).to_ne_bytes());
            key.extend_from_slice(&a.to_be_bytes());
        }
        IpPrefix::V6(a, len) => {
            key.extend_from_slice(&u32::from(len).to_ne_bytes());
            key.extend_from_slice(&a.to_be_bytes());
        }
    }
    key
}

/// The bytes of a map key (a `#[repr(C)]` struct of byte arrays).
fn as_bytes<T: Copy>(v: &T) -> &[u8] {
    // SAFETY: T is one of the shared key structs: plain bytes, no padding, no pointers.
    unsafe { std::slice::from_raw_parts(v as *const T as *const u8, std::mem::size_of::<T>()) }
}

/// Bytes of a frame the kernel copies into a sample.
pub const KERNEL_SNAPLEN: usize = kernel_abi::SNAP;

/// `BPF_RINGBUF_BUSY_BIT`, `BPF_RINGBUF_DISCARD_BIT` and `BPF_RINGBUF_HDR_SZ` (linux/bpf.h).
const RINGBUF_BUSY: u32 = 1 << 31;
const RINGBUF_DISCARD: u32 = 1 << 30;
const RINGBUF_HDR: usize = 8;

/// `struct gg_sample` before its data.
const SAMPLE_HEADER: usize = std::mem::offset_of!(kernel_abi::KernelSample, data);

/// The slow path's end of the fast lane's sample ring (a BPF ring buffer mapped into this
/// process): the kernel drops it sampled, with the kernel's verdict and reason. Read by hand
/// rather than with libbpf's `ring_buffer__consume`, which measured three times slower a
/// sample (`benches/examples/sample_ring.rs`, docs/benchmarks.md).
pub struct KernelSamples {
    consumer: *mut u8,
    producer: *mut u8,
    /// Data bytes (a power of two); the data area is mapped twice in a row, so a record that
    /// wraps reads as one slice.
    size: usize,
    page: usize,
    /// CLOCK_MONOTONIC at the data path's epoch, to turn `bpf_ktime_get_ns` into `at_ns`.
    epoch_ns: u64,
    /// Slot → tunnel index of the applied policy.
    by_slot: std::sync::Arc<std::sync::RwLock<Vec<u32>>>,
}

// SAFETY: the mappings are owned by this value alone and used through &mut self.
unsafe impl Send for KernelSamples {}

impl FastLane {
    /// Maps the sample ring buffer for reading; `epoch_ns` is CLOCK_MONOTONIC at the data
    /// path's epoch.
    pub fn samples(&self, epoch_ns: u64) -> Result<KernelSamples, LaneError> {
        let fd = self
            .object
            .map("gg_samples")
            .ok_or(LaneError::Missing("gg_samples"))?;
        let size = 1usize << 20; // max_entries of gg_samples
        let err = |e| LaneError::Map {
            map: "gg_samples",
            err: e,
        };
        let page = page_size().map_err(err)?;
        // A ring buffer map as the kernel documents it: the consumer page read-write at offset
        // 0, the producer page and twice the data read-only after it.
        let consumer = map_shared(fd, page, libc::PROT_READ | libc::PROT_WRITE, 0).map_err(err)?;
        let producer = match map_shared(fd, page + 2 * size, libc::PROT_READ, page) {
            Ok(p) => p,
            Err(e) => {
                // SAFETY: unmapping what was mapped just above.
                unsafe { libc::munmap(consumer as *mut libc::c_void, page) };
                return Err(err(e));
            }
        };
        Ok(KernelSamples {
            consumer,
            producer,
            size,
            page,
            epoch_ns,
            by_slot: self.by_slot.clone(),
        })
    }
}

impl KernelSamples {
    /// The oldest sample the kernel wrote, if any.
    pub fn pop(&mut self) -> Option<super::Sample> {
        use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
        // SAFETY: the first u64 of each page is the consumer and producer position, 8-byte
        // aligned at the start of page-aligned mappings that live as long as self.
        let (cons_pos, prod_pos) = unsafe {
            (
                &*(self.consumer as *const AtomicU64),
                &*(self.producer as *const AtomicU64),
            )
        };
        let mut cons = cons_pos.load(Ordering::Relaxed);
        let prod = prod_pos.load(Ordering::Acquire);
        while cons < prod {
            // The mask keeps bits below size (2^20), which any usize holds: the bits the cast
            // may drop are masked off anyway.
            #[allow(clippy::cast_possible_truncation)]
            let at = (cons as usize) & (self.size - 1);
            // SAFETY: `at` is inside the data area (which starts one page into the producer
            // mapping); record headers are 8-byte aligned.
            let header = unsafe { &*(self.producer.add(self.page + at) as *const AtomicU32) };
            let len_field = header.load(Ordering::Acquire);
            if len_field & RINGBUF_BUSY != 0 {
                return None; // the kernel is still writing it
            }
            let len = (len_field & !(RINGBUF_BUSY | RINGBUF_DISCARD)) as usize;
            let record = if len_field & RINGBUF_DISCARD == 0 && len >= SAMPLE_HEADER {
                // SAFETY: the record's bytes follow its header; the data area is mapped twice,
                // so they are contiguous even across the wrap, and len < size.
                let bytes = unsafe {
                    std::slice::from_raw_parts(
                        self.producer.add(self.page + at + RINGBUF_HDR),
                        len.min(self.size),
                    )
                };
                self.decode(bytes)
            } else {
                None
            };
            cons += ((len + RINGBUF_HDR + 7) & !7) as u64;
            cons_pos.store(cons, Ordering::Release);
            if record.is_some() {
                return record;
            }
        }
        None
    }

    fn decode(&self, b: &[u8]) -> Option<super::Sample> {
        use kernel_abi::KernelSample as S;
        use std::mem::offset_of;
        let u32_at = |i: usize| Some(u32::from_ne_bytes(b.get(i..i + 4)?.try_into().ok()?));
        let at_ns = offset_of!(S, at_ns);
        let at = u64::from_ne_bytes(b.get(at_ns..at_ns + 8)?.try_into().ok()?);
        let caplen = (u32_at(offset_of!(S, caplen))? as usize).min(KERNEL_SNAPLEN);
        let data = b.get(SAMPLE_HEADER..SAMPLE_HEADER + caplen)?.to_vec();
        let reason = *Reason::ALL.get(usize::from(*b.get(offset_of!(S, reason))?))?;
        let verdict = *Verdict::ALL.get(usize::from(*b.get(offset_of!(S, verdict))?))?;
        // Slot + 1 of the tunnel the kernel path judged the frame in; 0 for none.
        let tunnel = match u32_at(offset_of!(S, tunnel))?.checked_sub(1) {
            Some(slot) => self
                .by_slot
                .read()
                .ok()
                .and_then(|t| t.get(slot as usize).copied())
                .unwrap_or(validator::NO_TUNNEL),
            None => validator::NO_TUNNEL,
        };
        Some(super::Sample {
            port: if *b.get(offset_of!(S, port))? == 1 {
                Direction::FromInside
            } else {
                Direction::FromOutside
            },
            decision: validator::reason::Decision {
                verdict,
                reason,
                tunnel,
            },
            len: u32_at(offset_of!(S, len))?,
            at_ns: at.saturating_sub(self.epoch_ns),
            data,
        })
    }
}

impl Drop for KernelSamples {
    fn drop(&mut self) {
        // SAFETY: unmapping the two mappings made in FastLane::samples, once.
        unsafe {
            libc::munmap(self.consumer as *mut libc::c_void, self.page);
            libc::munmap(
                self.producer as *mut libc::c_void,
                self.page + 2 * self.size,
            );
        }
    }
}

/// CLOCK_MONOTONIC now, in nanoseconds (the clock of `bpf_ktime_get_ns` and of `Instant`).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Why a manual bypass could not be switched.
#[derive(Debug, thiserror::Error)]
pub enum BypassError {
    #[error(transparent)]
    Link(#[from] super::Error),
    #[error(transparent)]
    Lane(#[from] LaneError),
    #[error(
        "{name} has an XDP program greguard did not load (id {id}, name {prog:?}); \
         greguard will not replace or remove it (`ip link set dev {name} xdp off` does)"
    )]
    Foreign { name: String, id: u32, prog: String },
}

/// `greguard bypass on`: greguard's program on both ports with no daemon behind it, so every
/// frame is redirected to the other port in the kernel (native XDP, else generic). Replaces a
/// greguard program already there; refuses anyone else's. Returns how it was attached.
pub fn bypass_on(outside: &str, inside: &str) -> Result<Attach, BypassError> {
    let links = [
        Link::open("outside", outside)?,
        Link::open("inside", inside)?,
    ];
    for l in &links {
        refuse_foreign(l)?;
    }
    let mut lane = FastLane::load()?;
    lane.configure(
        &links[0],
        &links[1],
        &Policy::new(Default::default()),
        Settings {
            on_failure: OnFailure::Open,
            sampling: Rates::default(),
            max_frame: 0,
            active: false,
        },
    )?;
    let mut last = None;
    for how in [Attach::Native, Attach::Generic] {
        match lane
            .attach(&links[0], how)
            .and_then(|()| lane.attach(&links[1], how))
        {
            Ok(()) => {
                lane.leave_attached();
                return Ok(how);
            }
            Err(e) => {
                lane.detach();
                last = Some(e);
            }
        }
    }
    Err(last.expect("two attach modes tried").into())
}

/// `greguard bypass off`: detaches greguard's program from both ports (a port without one is
/// fine); refuses to touch anyone else's. Returns the ports it detached from.
pub fn bypass_off(outside: &str, inside: &str) -> Result<Vec<String>, BypassError> {
    let links = [
        Link::open("outside", outside)?,
        Link::open("inside", inside)?,
    ];
    for l in &links {
        refuse_foreign(l)?;
    }
    let mut detached = Vec::new();
    for l in &links {
        if let Ok(Some(_)) = l.attached_program() {
            l.detach_program().map_err(|e| {
                BypassError::Lane(LaneError::Attach {
                    name: l.name.clone(),
                    mode: "detach",
                    err: e,
                })
            })?;
            detached.push(l.name.clone());
        }
    }
    Ok(detached)
}

fn refuse_foreign(link: &Link) -> Result<(), BypassError> {
    if let Ok(Some(id)) = link.attached_program() {
        let prog = super::link::program_name(id).unwrap_or_default();
        if prog != PROGRAM_NAME {
            return Err(BypassError::Foreign {
                name: link.name.clone(),
                id,
                prog,
            });
        }
    }
    Ok(())
}

//! The validated policy: plain types, every default filled in, nothing left to check. The
//! appliance reads `[ports]`, `[sampling]` and `[metrics]` from here; the classifier gets the
//! compiled [`validator::Policy`], which holds the tunnels ([`crate::Loaded::tunnels`]).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use validator::Defaults;

/// A whole policy file after validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyModel {
    /// `[ports]`; `None` when the file has none (fine for `check` and `replay`, not for `run`).
    pub ports: Option<Ports>,
    /// `[defaults]`, as the classifier takes them.
    pub defaults: Defaults,
    /// `[sampling]`.
    pub sampling: Sampling,
    /// `[metrics]`.
    pub metrics: Metrics,
}

/// `[ports]`: the two interfaces and how the data path uses them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ports {
    /// Faces the tunnel peers / Internet.
    pub outside: String,
    /// Faces the VPN concentrator(s).
    pub inside: String,
    /// Which RX queues get a worker.
    pub queues: Queues,
    /// The cores to pin workers to, one per queue; `None` = the cores after core 0.
    pub cores: Option<Vec<u32>>,
    /// How to attach AF_XDP.
    pub xdp_mode: XdpMode,
    /// UMEM frame size in bytes (2048 or 4096).
    pub frame_size: u32,
    /// Descriptors in each RX and TX ring (a power of two); the fill and completion rings get
    /// twice as many and each worker's UMEM four times as many frames.
    pub ring_size: u32,
    /// Frames a worker takes from an RX ring per batch.
    pub batch_size: u32,
    /// Load greguard's XDP program to shed non-GRE and hopeless GRE in the kernel.
    pub fast_lane: bool,
    /// What the kernel does with frames once the daemon is gone.
    pub on_failure: OnFailure,
    /// Which path judges tunnel traffic: the fast lane's XDP program, or the workers.
    pub tunnel_path: TunnelPath,
}

/// `tunnel_path`: where tunnel traffic is judged and forwarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelPath {
    /// The kernel path where AF_XDP runs in copy or SKB mode, user space where it runs
    /// zero-copy (docs/fast-lane.md says why).
    Auto,
    /// The fast lane's XDP program forwards what it judges exactly; the rest goes up.
    Kernel,
    /// Every frame that may belong to a tunnel goes to the workers.
    User,
}

impl TunnelPath {
    /// The policy spelling.
    pub fn name(self) -> &'static str {
        match self {
            TunnelPath::Auto => "auto",
            TunnelPath::Kernel => "kernel",
            TunnelPath::User => "user",
        }
    }
}

impl fmt::Display for TunnelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `queues = "all"` or an explicit list of queue ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Queues {
    /// Every combined/RX queue the interface has at start-up.
    All,
    /// These queue ids, in this order (unique, non-empty).
    List(Vec<u32>),
}

/// RX and TX ring size when the policy does not set one.
pub const DEFAULT_RING_SIZE: u32 = 2048;
/// RX batch when the policy does not set one.
pub const DEFAULT_BATCH_SIZE: u32 = 64;
/// The largest batch the policy may ask for (the data path's batch arrays are this long).
pub const MAX_BATCH_SIZE: u32 = 256;

/// `xdp_mode`: an AF_XDP binding mode. `Auto` is only ever asked for; a bound port reports one
/// of the other three. The data path turns a concrete mode into socket flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum XdpMode {
    /// Zero-copy, else copy, else generic (SKB) mode.
    Auto,
    /// Native XDP, the NIC's DMA lands in the UMEM (`XDP_ZEROCOPY`).
    ZeroCopy,
    /// Native XDP, the kernel copies each frame into the UMEM (`XDP_COPY`, driver mode).
    Copy,
    /// Generic XDP on the skb path (`XDP_FLAGS_SKB_MODE`), for drivers without native XDP.
    Skb,
}

impl XdpMode {
    /// Every concrete mode, in the order `auto` tries them.
    pub const CONCRETE: [XdpMode; 3] = [XdpMode::ZeroCopy, XdpMode::Copy, XdpMode::Skb];

    /// The policy and metrics name.
    pub const fn name(self) -> &'static str {
        match self {
            XdpMode::Auto => "auto",
            XdpMode::ZeroCopy => "zerocopy",
            XdpMode::Copy => "copy",
            XdpMode::Skb => "skb",
        }
    }

    /// The concrete modes to try, in order, for this request.
    pub fn candidates(self) -> &'static [XdpMode] {
        match self {
            XdpMode::Auto => &Self::CONCRETE,
            XdpMode::ZeroCopy => &Self::CONCRETE[0..1],
            XdpMode::Copy => &Self::CONCRETE[1..2],
            XdpMode::Skb => &Self::CONCRETE[2..3],
        }
    }

    /// Whether the kernel copies frames and transmits only inside `sendto()`, so the TX ring
    /// must be kicked while frames are outstanding.
    pub fn copies(self) -> bool {
        !matches!(self, XdpMode::ZeroCopy)
    }
}

impl fmt::Display for XdpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `on_failure`: what the in-kernel program does when the daemon is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnFailure {
    /// Redirect every frame to the other port (a wire).
    Open,
    /// Only what is positively not GRE goes to the other port; the rest is dropped.
    Closed,
}

impl OnFailure {
    /// The policy spelling.
    pub fn name(self) -> &'static str {
        match self {
            OnFailure::Open => "open",
            OnFailure::Closed => "closed",
        }
    }
}

impl fmt::Display for OnFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `[sampling]`: what the slow path sees of the traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sampling {
    /// Mirror 1 in N invalid/unknown GRE packets (0 = none).
    pub invalid: u32,
    /// Mirror 1 in N forwarded GRE packets (0 = none).
    pub forwarded: u32,
    /// Bytes kept of each sampled packet (64..=65535).
    pub snaplen: u32,
    /// Directory for rotating pcap files; `None` = no files.
    pub pcap_dir: Option<PathBuf>,
    /// Size at which a pcap file is rotated, in MiB (≥ 1).
    pub pcap_rotate_mb: u64,
    /// How many rotated pcap files to keep (≥ 1).
    pub pcap_keep: u32,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            invalid: 100,
            forwarded: 0,
            snaplen: 256,
            pcap_dir: None,
            pcap_rotate_mb: 64,
            pcap_keep: 10,
        }
    }
}

/// `[metrics]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metrics {
    /// Where the Prometheus endpoint listens (`GET /metrics`).
    pub listen: SocketAddr,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            listen: SocketAddr::from(([127, 0, 0, 1], 9747)),
        }
    }
}

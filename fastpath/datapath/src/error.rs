//! Why the data path could not start, each with what the operator can do about it.

use std::fmt;
use std::io;

use super::mode::XdpMode;

/// A start-up failure of the data path. Every message names the interface (or capability) and
/// the next step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "missing {}: {}; AF_XDP needs CAP_NET_ADMIN, CAP_NET_RAW, CAP_IPC_LOCK, CAP_BPF and \
         CAP_SYS_ADMIN (libxdp looks its program up by id). Run as root, or grant them \
         (systemd: AmbientCapabilities=; shell: setcap on the binary)",
        if .missing.len() == 1 { "capability" } else { "capabilities" },
        .missing.join(", ")
    )]
    Privilege { missing: Vec<&'static str> },

    #[error(
        "{port} interface {name:?} does not exist; check `ip link show` and [ports] {port} in the policy"
    )]
    NoInterface { port: &'static str, name: String },

    #[error(
        "{port} interface {name:?} has {count} RX queue(s) (0..{count}); [ports] queues asks for \
         queue {queue}"
    )]
    NoQueue {
        port: &'static str,
        name: String,
        queue: u32,
        count: u32,
    },

    #[error(
        "{port} interface {name:?} has {count} RX queues, but queues {unserved} would have no \
         worker: a frame on them would cross unjudged. Serve every queue (`queues = \"all\"`, \
         or add them to [ports] queues), or lower the channels: `ethtool -L {name} combined {served}` \
         (`rx {served} tx {served}` where the driver counts them apart, as veth does)"
    )]
    UnservedQueues {
        port: &'static str,
        name: String,
        count: u32,
        /// The queue ids without a worker, as a list ("2, 3").
        unserved: String,
        /// How many queues the policy serves.
        served: u32,
    },

    #[error(
        "outside interface {outside:?} has {outside_count} RX queues and inside interface \
         {inside:?} has {inside_count}: one worker serves queue N of both ports, so they need \
         the same number. Make them equal: `ethtool -L {larger} combined {smaller}` (`rx \
         {smaller} tx {smaller}` on veth), or raise the other's"
    )]
    QueueCountsDiffer {
        outside: String,
        outside_count: u32,
        inside: String,
        inside_count: u32,
        larger: String,
        smaller: u32,
    },

    #[error(
        "{port} interface {name:?}: queue {queue} is beyond the {max} queues per port greguard's \
         XDP program has socket slots for; lower the channels (`ethtool -L {name} combined {max}`)"
    )]
    QueueTooHigh {
        port: &'static str,
        name: String,
        queue: u32,
        max: u32,
    },

    #[error(
        "core {core} does not exist or cannot be used (this process may run on cores {available}); \
         fix [ports] cores"
    )]
    NoCore { core: usize, available: String },

    #[error(
        "{port} interface {name:?} already has an XDP program attached (id {id}, name {prog:?}) \
         that greguard did not load; greguard will not replace it. If nothing needs it, detach it \
         with `ip link set dev {name} xdp off`, then start again"
    )]
    ForeignProgram {
        port: &'static str,
        name: String,
        id: u32,
        prog: String,
    },

    #[error("{port} interface {name:?}: cannot detach the stale XDP program id {id}: {source}")]
    StaleProgram {
        port: &'static str,
        name: String,
        id: u32,
        source: io::Error,
    },

    #[error("{port} interface {name:?} queue {queue}: AF_XDP refused ({mode}): {attempts}")]
    Refused {
        port: &'static str,
        name: String,
        queue: u32,
        mode: XdpMode,
        attempts: Attempts,
    },

    #[error(
        "cannot create a UMEM of {frames} frames of {frame_size} bytes: {source}; without \
         CAP_IPC_LOCK the locked-memory limit applies (raise it: systemd LimitMEMLOCK=infinity, \
         shell `ulimit -l unlimited`)"
    )]
    Umem {
        frames: u32,
        frame_size: u32,
        source: io::Error,
    },

    #[error("cannot start worker thread {worker}: {source}")]
    Thread { worker: usize, source: io::Error },

    #[error("worker {worker} stopped unexpectedly")]
    WorkerPanicked { worker: usize },

    #[error("fast lane: {0}")]
    Lane(String),
}

/// The modes tried on a socket and why each was refused, for [`Error::Refused`].
#[derive(Debug, Default)]
pub struct Attempts(pub Vec<(XdpMode, io::Error)>);

impl fmt::Display for Attempts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (mode, err)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{mode}: {err}")?;
            if let Some(hint) = hint(*mode, err) {
                write!(f, " ({hint})")?;
            }
        }
        Ok(())
    }
}

/// What an errno from binding an AF_XDP socket usually means.
fn hint(mode: XdpMode, err: &io::Error) -> Option<&'static str> {
    Some(match err.raw_os_error()? {
        libc::EOPNOTSUPP if mode == XdpMode::ZeroCopy => {
            "the driver has no AF_XDP zero-copy support; use xdp_mode = \"copy\" or \"auto\""
        }
        libc::EOPNOTSUPP => "the driver has no native XDP; use xdp_mode = \"skb\" or \"auto\"",
        libc::EPERM | libc::EACCES => {
            "a capability is missing: CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF, CAP_SYS_ADMIN"
        }
        libc::ENOBUFS => "the UMEM cannot be locked: grant CAP_IPC_LOCK or raise RLIMIT_MEMLOCK",
        libc::EBUSY => "another AF_XDP socket or XDP program holds this queue",
        libc::EINVAL => "the queue id or ring sizes are not valid for this interface",
        libc::ENXIO | libc::ENODEV => "the interface went away",
        _ => return None,
    })
}

/// The OS error behind an xsk-rs error (its `source`), so its errno can be shown and
/// explained; the error's own text when it has none.
pub fn os_error(e: &(dyn std::error::Error + 'static)) -> io::Error {
    e.source()
        .and_then(|s| s.downcast_ref::<io::Error>())
        .and_then(io::Error::raw_os_error)
        .map(io::Error::from_raw_os_error)
        .unwrap_or_else(|| io::Error::other(e.to_string()))
}

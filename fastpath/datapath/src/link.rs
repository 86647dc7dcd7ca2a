//! What the data path needs to know about an interface before it binds to it: its index, how
//! many RX queues it has, whether an XDP program is already attached (and whose), and whether
//! this process holds the capabilities AF_XDP asks for.

use std::ffi::{CStr, CString};
use std::fs;
use std::io;

use super::error::Error;

/// The name libxdp gives the default program it loads for AF_XDP sockets (`xsk_def_prog.c`).
/// A program of this name left on a port is what a greguard that did not stop cleanly leaves.
pub const LIBXDP_DEFAULT_PROGRAM: &str = "xsk_def_prog";

/// `XDP_FLAGS_SKB_MODE` and `XDP_FLAGS_DRV_MODE` from `linux/if_link.h`.
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// The capabilities AF_XDP needs, with their numbers from `linux/capability.h`:
/// CAP_NET_ADMIN to attach XDP, CAP_NET_RAW to open the socket, CAP_IPC_LOCK to pin the UMEM
/// (ENOBUFS without it), CAP_BPF to load the program and CAP_SYS_ADMIN because libxdp looks the
/// attached program up by id.
pub const REQUIRED_CAPABILITIES: [(&str, u32); 5] = [
    ("CAP_NET_ADMIN", 12),
    ("CAP_NET_RAW", 13),
    ("CAP_IPC_LOCK", 14),
    ("CAP_SYS_ADMIN", 21),
    ("CAP_BPF", 39),
];

/// The required capabilities missing from this process's effective set
/// (`CapEff` in `/proc/self/status`).
pub fn missing_capabilities() -> Vec<&'static str> {
    let effective = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(0);
    REQUIRED_CAPABILITIES
        .iter()
        .filter(|(_, bit)| effective & (1u64 << bit) == 0)
        .map(|(name, _)| *name)
        .collect()
}

/// An interface the data path binds to.
#[derive(Clone, Debug)]
pub struct Link {
    /// `outside` or `inside`.
    pub port: &'static str,
    pub name: String,
    pub ifindex: u32,
}

impl Link {
    /// Looks `name` up; a missing interface is [`Error::NoInterface`].
    pub fn open(port: &'static str, name: &str) -> Result<Link, Error> {
        let missing = || Error::NoInterface {
            port,
            name: name.to_owned(),
        };
        let c = CString::new(name).map_err(|_| missing())?;
        // SAFETY: `c` is a valid NUL-terminated string that outlives the call; if_nametoindex
        // only reads it.
        let ifindex = unsafe { libc::if_nametoindex(c.as_ptr()) };
        if ifindex == 0 {
            return Err(missing());
        }
        Ok(Link {
            port,
            name: name.to_owned(),
            ifindex,
        })
    }

    /// How many RX queues the kernel gives this interface (`/sys/class/net/IF/queues/rx-*`).
    pub fn rx_queues(&self) -> u32 {
        fs::read_dir(format!("/sys/class/net/{}/queues", self.name))
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                    .count()
            })
            .map_or(1, |n| u32::try_from(n).unwrap_or(u32::MAX))
            .max(1)
    }

    /// Whether the interface is administratively up (`IFF_UP` in `/sys/class/net/IF/flags`).
    pub fn is_up(&self) -> bool {
        fs::read_to_string(format!("/sys/class/net/{}/flags", self.name))
            .ok()
            .and_then(|s| u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok())
            .is_some_and(|f| f & 1 != 0)
    }

    /// The id of the XDP program attached to this interface in any mode, if one is.
    pub fn attached_program(&self) -> io::Result<Option<u32>> {
        self.program_id(0)
    }

    /// Whether the XDP program on this interface runs in generic (SKB) mode.
    pub fn generic_program_attached(&self) -> bool {
        matches!(self.program_id(XDP_FLAGS_SKB_MODE), Ok(Some(_)))
    }

    /// The id of the program attached in the mode `flags` selects (0 = whichever is attached).
    fn program_id(&self, flags: u32) -> io::Result<Option<u32>> {
        let mut id = 0u32;
        // SAFETY: `id` is a valid, writable u32 for the duration of the call; libbpf writes at
        // most one u32 through the pointer.
        let rc =
            unsafe { libxdp_sys::bpf_xdp_query_id(self.ifindex as i32, flags as i32, &mut id) };
        if rc < 0 {
            return Err(io::Error::from_raw_os_error(-rc));
        }
        Ok((id != 0).then_some(id))
    }

    /// Detaches whatever XDP program is attached, in both native and generic mode.
    pub fn detach_program(&self) -> io::Result<()> {
        let mut last = Ok(());
        for flags in [XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE] {
            // SAFETY: a null `opts` is allowed by libbpf (no expected program); the call only
            // sends a netlink request for this ifindex.
            let rc =
                unsafe { libxdp_sys::bpf_xdp_detach(self.ifindex as i32, flags, std::ptr::null()) };
            if rc < 0 && rc != -libc::ENOENT {
                last = Err(io::Error::from_raw_os_error(-rc));
            }
        }
        match self.attached_program()? {
            None => Ok(()),
            Some(_) => last.and(Err(io::Error::other("a program is still attached"))),
        }
    }
}

/// The name of the BPF program with this id, if the kernel tells it.
pub fn program_name(id: u32) -> Option<String> {
    // SAFETY: xdp_program__from_id returns either a valid program or an error pointer that
    // libxdp_get_error recognises; a valid program is closed exactly once below, after its name
    // (owned by the program) has been copied.
    unsafe {
        let prog = libxdp_sys::xdp_program__from_id(id);
        if prog.is_null() || libxdp_sys::libxdp_get_error(prog as *const _) != 0 {
            return None;
        }
        let name_ptr = libxdp_sys::xdp_program__name(prog);
        let name =
            (!name_ptr.is_null()).then(|| CStr::from_ptr(name_ptr).to_string_lossy().into_owned());
        libxdp_sys::xdp_program__close(prog);
        name
    }
}

/// Lets one `sendto()` on the copy-mode AF_XDP socket `fd` transmit up to `frames` frames
/// (`XDP_MAX_TX_SKB_BUDGET`, Linux 6.17 and later) instead of the kernel's default 32, so a
/// worker drains its TX ring in one call rather than one call per 32 frames. False where the
/// kernel does not know the option (the worker then kicks until the ring is empty).
pub fn set_tx_budget(fd: std::os::fd::RawFd, frames: u32) -> bool {
    const SOL_XDP: libc::c_int = 283;
    const XDP_MAX_TX_SKB_BUDGET: libc::c_int = 9;
    // 4 bytes.
    #[allow(clippy::cast_possible_truncation)]
    let len = std::mem::size_of::<u32>() as libc::socklen_t;
    // SAFETY: the kernel reads `len` bytes from `frames`, which lives for the call.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            SOL_XDP,
            XDP_MAX_TX_SKB_BUDGET,
            (&frames as *const u32).cast(),
            len,
        )
    };
    rc == 0
}

/// Whether the AF_XDP socket `fd` is bound in zero-copy mode (`XDP_OPTIONS`).
pub fn is_zero_copy(fd: std::os::fd::RawFd) -> bool {
    const SOL_XDP: libc::c_int = 283;
    const XDP_OPTIONS: libc::c_int = 8;
    const XDP_OPTIONS_ZEROCOPY: u32 = 1;
    let mut opts = 0u32;
    // 4 bytes.
    #[allow(clippy::cast_possible_truncation)]
    let mut len = std::mem::size_of::<u32>() as libc::socklen_t;
    // SAFETY: `opts` and `len` are valid for writes of the sizes passed; the kernel writes at
    // most `len` bytes into `opts`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            SOL_XDP,
            XDP_OPTIONS,
            (&mut opts as *mut u32).cast(),
            &mut len,
        )
    };
    rc == 0 && opts & XDP_OPTIONS_ZEROCOPY != 0
}

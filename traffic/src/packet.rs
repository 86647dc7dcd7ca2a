//! A Linux packet socket (AF_PACKET, SOCK_RAW) bound to one interface: whole Ethernet frames
//! out with `sendmmsg` in batches, in with `recvmmsg`, skipping what this host sent itself.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Frames per `sendmmsg`/`recvmmsg` call.
pub const BATCH: usize = 64;

/// `ETH_P_ALL` in network byte order, as the socket and bind calls want it.
// ETH_P_ALL is 0x0003.
#[allow(clippy::cast_possible_truncation)]
const ETH_P_ALL_BE: u16 = (libc::ETH_P_ALL as u16).to_be();

/// `AF_PACKET` as `sockaddr_ll`'s family field wants it.
// AF_PACKET is 17.
#[allow(clippy::cast_possible_truncation)]
const AF_PACKET_FAMILY: u16 = libc::AF_PACKET as u16;

/// The size of `T` as a socket call's length argument.
// Only socket option values and addresses are measured: a few dozen bytes.
#[allow(clippy::cast_possible_truncation)]
const fn socklen<T>() -> libc::socklen_t {
    std::mem::size_of::<T>() as libc::socklen_t
}

/// A bound packet socket.
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
}

impl PacketSocket {
    /// Opens a packet socket on `interface`. Sending bypasses the qdisc (`PACKET_QDISC_BYPASS`)
    /// as a traffic generator's should.
    pub fn open(interface: &str) -> io::Result<PacketSocket> {
        let name = CString::new(interface)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name has a NUL"))?;
        // SAFETY: `name` is a valid NUL-terminated string for the duration of the call.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) } as i32;
        if ifindex == 0 {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("interface {interface:?} does not exist"),
            ));
        }
        // SAFETY: plain socket(2) call; the returned descriptor is owned below.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                i32::from(ETH_P_ALL_BE),
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a freshly created descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = AF_PACKET_FAMILY;
        addr.sll_protocol = ETH_P_ALL_BE;
        addr.sll_ifindex = ifindex;
        // SAFETY: `addr` is a valid sockaddr_ll and the length passed is its size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                socklen::<libc::sockaddr_ll>(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        let one: libc::c_int = 1;
        // SAFETY: the option value is a valid c_int of the size passed. Failure only means
        // frames go through the qdisc, which is slower but correct.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                (&one as *const libc::c_int).cast(),
                socklen::<libc::c_int>(),
            )
        };
        // SAFETY: as above. With PACKET_AUXDATA the kernel reports a VLAN tag that the
        // receiving device took out of the frame (rx-vlan offload), so it can be put back.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_AUXDATA,
                (&one as *const libc::c_int).cast(),
                socklen::<libc::c_int>(),
            )
        };
        // A counter must not lose frames to its own socket buffer at lab rates: ask for a
        // large one (SO_RCVBUFFORCE as root, else whatever SO_RCVBUF allows).
        let size: libc::c_int = 64 << 20;
        for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
            // SAFETY: the option value is a valid c_int of the size passed.
            let rc = unsafe {
                libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    opt,
                    (&size as *const libc::c_int).cast(),
                    socklen::<libc::c_int>(),
                )
            };
            if rc == 0 {
                break;
            }
        }
        Ok(PacketSocket { fd, ifindex })
    }

    /// Frames the kernel dropped because this socket's buffer was full, since the last call
    /// (`PACKET_STATISTICS`, which resets on read).
    pub fn drops(&self) -> u64 {
        // SAFETY: plain old data; all-zero is valid.
        let mut stats: libc::tpacket_stats = unsafe { std::mem::zeroed() };
        let mut len = socklen::<libc::tpacket_stats>();
        // SAFETY: `stats` and `len` are valid for writes of the sizes passed.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut stats as *mut libc::tpacket_stats).cast(),
                &mut len,
            )
        };
        if rc == 0 {
            u64::from(stats.tp_drops)
        } else {
            0
        }
    }

    /// Sends `frames` with one `sendmmsg` call; returns how many the kernel took.
    pub fn send_batch(&self, frames: &[&[u8]]) -> io::Result<usize> {
        let n = frames.len().min(BATCH);
        let mut iov: [libc::iovec; BATCH] = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; BATCH];
        // SAFETY: mmsghdr is plain old data; all-zero is a valid value.
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..n {
            iov[i].iov_base = frames[i].as_ptr() as *mut libc::c_void;
            iov[i].iov_len = frames[i].len();
            msgs[i].msg_hdr.msg_iov = &mut iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        // n ≤ BATCH (64).
        #[allow(clippy::cast_possible_truncation)]
        let vlen = n as libc::c_uint;
        // SAFETY: the first `n` headers point at `n` iovecs that point at live frame buffers;
        // the kernel only reads them (sendmmsg does not write through iov_base).
        let rc = unsafe { libc::sendmmsg(self.fd.as_raw_fd(), msgs.as_mut_ptr(), vlen, 0) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOBUFS) | Some(libc::EAGAIN) => Ok(0),
                _ => Err(e),
            };
        }
        Ok(rc as usize)
    }

    /// Receives up to [`BATCH`] frames into `bufs` (each one frame), waiting at most
    /// `timeout_ms`. Returns `(len, incoming)` per frame; `incoming` is false for frames this
    /// host sent (`PACKET_OUTGOING`).
    pub fn recv_batch(
        &self,
        bufs: &mut [[u8; 2048]],
        out: &mut Vec<(usize, bool)>,
        timeout_ms: i32,
    ) -> io::Result<()> {
        out.clear();
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd that outlives the call.
        let ready = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if ready <= 0 {
            return Ok(());
        }
        let n = bufs.len().min(BATCH);
        let mut iov: [libc::iovec; BATCH] = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; BATCH];
        // SAFETY: plain old data; all-zero is valid.
        let mut addrs: [libc::sockaddr_ll; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: plain old data; all-zero is valid.
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let mut control = [[0u64; CONTROL_WORDS]; BATCH];
        for i in 0..n {
            msgs[i].msg_hdr.msg_control = control[i].as_mut_ptr().cast();
            msgs[i].msg_hdr.msg_controllen = std::mem::size_of_val(&control[i]);
            iov[i].iov_base = bufs[i].as_mut_ptr().cast();
            iov[i].iov_len = bufs[i].len();
            msgs[i].msg_hdr.msg_iov = &mut iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_ll).cast();
            msgs[i].msg_hdr.msg_namelen = socklen::<libc::sockaddr_ll>();
        }
        // n ≤ BATCH (64).
        #[allow(clippy::cast_possible_truncation)]
        let vlen = n as libc::c_uint;
        // SAFETY: every header points at a distinct, writable buffer and address of the sizes
        // given, all living until the call returns.
        let rc = unsafe {
            libc::recvmmsg(
                self.fd.as_raw_fd(),
                msgs.as_mut_ptr(),
                vlen,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(()),
                _ => Err(e),
            };
        }
        for i in 0..rc as usize {
            let incoming = addrs[i].sll_pkttype != libc::PACKET_OUTGOING;
            let mut len = msgs[i].msg_len as usize;
            if let Some((tpid, tci)) = vlan_of(&msgs[i].msg_hdr) {
                len = reinsert_vlan(&mut bufs[i], len, tpid, tci);
            }
            out.push((len, incoming));
        }
        Ok(())
    }

    /// The interface index this socket is bound to.
    pub fn ifindex(&self) -> i32 {
        self.ifindex
    }
}

/// Room for one `tpacket_auxdata` control message, in u64 words (for alignment).
const CONTROL_WORDS: usize = 8;

/// The VLAN tag (TPID, TCI) the kernel took out of a received frame, from its auxdata.
fn vlan_of(hdr: &libc::msghdr) -> Option<(u16, u16)> {
    // SAFETY: `hdr` was filled by recvmmsg; the CMSG macros walk its control buffer within
    // `msg_controllen`, and the data of a PACKET_AUXDATA message is a tpacket_auxdata.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(hdr);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == libc::PACKET_AUXDATA {
                let aux: libc::tpacket_auxdata =
                    std::ptr::read_unaligned(libc::CMSG_DATA(c).cast());
                if aux.tp_status & libc::TP_STATUS_VLAN_VALID != 0 {
                    let tpid = if aux.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                        aux.tp_vlan_tpid
                    } else {
                        0x8100
                    };
                    return Some((tpid, aux.tp_vlan_tci));
                }
                return None;
            }
            c = libc::CMSG_NXTHDR(hdr, c);
        }
        None
    }
}

/// Puts a VLAN tag back after the MAC addresses, as libpcap does; returns the new length.
fn reinsert_vlan(buf: &mut [u8; 2048], len: usize, tpid: u16, tci: u16) -> usize {
    if len < 12 || len + 4 > buf.len() {
        return len;
    }
    buf.copy_within(12..len, 16);
    buf[12..14].copy_from_slice(&tpid.to_be_bytes());
    buf[14..16].copy_from_slice(&tci.to_be_bytes());
    len + 4
}

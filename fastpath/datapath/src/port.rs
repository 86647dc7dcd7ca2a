//! One AF_XDP socket: an interface queue bound to a worker's UMEM, with its four rings.

use std::io;
use std::os::fd::AsRawFd;
use std::thread;
use std::time::Duration;

use xsk_rs::config::Interface;
use xsk_rs::{CompQueue, FillQueue, RxQueue, Socket, TxQueue, Umem};

use super::error::{os_error, Attempts, Error};
use super::link::{self, Link};
use super::mode::XdpMode;

/// How often, and how long apart, a bind that fails with EBUSY is retried: the kernel releases a
/// queue a moment after the previous socket on it closed.
const BUSY_RETRIES: u32 = 20;
const BUSY_WAIT: Duration = Duration::from_millis(50);

/// A bound socket. Its fill and completion rings are its own even though the UMEM is shared
/// with the worker's other port, so a frame sent here completes here.
pub struct Port {
    pub(crate) tx: TxQueue,
    pub(crate) rx: RxQueue,
    pub(crate) fq: FillQueue,
    pub(crate) cq: CompQueue,
    /// The mode this socket got.
    pub mode: XdpMode,
    pub link: Link,
    pub queue: u32,
}

impl Port {
    /// Binds `link`'s queue `queue` to `umem`, trying `requested`'s candidate modes in order.
    pub fn open(
        umem: &Umem,
        link: &Link,
        queue: u32,
        requested: XdpMode,
        ring_size: u32,
        own_program: bool,
    ) -> Result<Port, Error> {
        let interface =
            Interface::new(std::ffi::CString::new(link.name.as_str()).map_err(|_| {
                Error::NoInterface {
                    port: link.port,
                    name: link.name.clone(),
                }
            })?);
        let mut attempts = Attempts::default();
        for &mode in requested.candidates() {
            match bind(umem, &interface, queue, mode, ring_size, own_program) {
                Ok((tx, rx, fq, cq)) => {
                    // A socket sharing a UMEM inherits the copy/zero-copy choice of the first
                    // socket on it, whatever it asked for: report what the kernel gave.
                    let got = if link::is_zero_copy(rx.fd().as_raw_fd()) {
                        XdpMode::ZeroCopy
                    } else if link.generic_program_attached() {
                        XdpMode::Skb
                    } else {
                        XdpMode::Copy
                    };
                    if requested != XdpMode::Auto && got != requested {
                        attempts.0.push((
                            mode,
                            io::Error::other(format!("the kernel bound the socket in {got} mode")),
                        ));
                        continue;
                    }
                    if got != XdpMode::ZeroCopy {
                        // A TX ring's worth per sendto (the TX ring holds ring_size frames):
                        // one kick drains it. Measured on veth (docs/benchmarks.md): fewer
                        // calls, no throughput change beyond the noise; kept for the calls.
                        link::set_tx_budget(tx.fd().as_raw_fd(), ring_size);
                    }
                    return Ok(Port {
                        tx,
                        rx,
                        fq,
                        cq,
                        mode: got,
                        link: link.clone(),
                        queue,
                    });
                }
                Err(e) => attempts.0.push((mode, e)),
            }
        }
        Err(Error::Refused {
            port: link.port,
            name: link.name.clone(),
            queue,
            mode: requested,
            attempts,
        })
    }
}

type Rings = (TxQueue, RxQueue, FillQueue, CompQueue);

/// One bind in one mode, retried while the queue is still busy from a previous socket.
fn bind(
    umem: &Umem,
    interface: &Interface,
    queue: u32,
    mode: XdpMode,
    ring_size: u32,
    own_program: bool,
) -> io::Result<Rings> {
    let config = super::mode::socket_config(mode, ring_size, own_program)?;
    let mut tries = 0;
    loop {
        // SAFETY: each (interface, queue) pair is bound at most once per UMEM by the data path
        // (every worker has its own UMEM and its own queue id), which is the condition xsk-rs
        // puts on creating a socket without XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD (with it, the
        // fast lane's program is already attached and the socket goes into its XSKMAP).
        let created = unsafe { Socket::new(config, umem, interface, queue) };
        let err = match created {
            Ok((tx, rx, Some((fq, cq)))) => return Ok((tx, rx, fq, cq)),
            Ok((_, _, None)) => {
                return Err(io::Error::other(
                    "the queue is already bound to this UMEM (no fill and completion rings)",
                ))
            }
            Err(e) => os_error(&e),
        };
        if err.raw_os_error() == Some(libc::EBUSY) && tries < BUSY_RETRIES {
            tries += 1;
            thread::sleep(BUSY_WAIT);
            continue;
        }
        return Err(err);
    }
}

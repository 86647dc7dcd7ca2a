//! AF_XDP binding modes: which one the policy asks for and which one a port got.

use std::fmt;

use xsk_rs::config::{BindFlags, LibxdpFlags, QueueSize, SocketConfig, XdpFlags};

/// A binding mode. `Auto` is only ever asked for; a bound port reports one of the other three.
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

    /// The xsk-rs socket configuration for this concrete mode.
    /// With `own_program`, libxdp loads no program: greguard's fast lane is attached already.
    pub(crate) fn socket_config(
        self,
        ring_size: u32,
        own_program: bool,
    ) -> std::io::Result<SocketConfig> {
        let (xdp, bind) = match self {
            XdpMode::ZeroCopy => (XdpFlags::XDP_FLAGS_DRV_MODE, BindFlags::XDP_ZEROCOPY),
            XdpMode::Copy | XdpMode::Auto => (XdpFlags::XDP_FLAGS_DRV_MODE, BindFlags::XDP_COPY),
            XdpMode::Skb => (XdpFlags::XDP_FLAGS_SKB_MODE, BindFlags::XDP_COPY),
        };
        let size = QueueSize::new(ring_size)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        Ok(SocketConfig::builder()
            .rx_queue_size(size)
            .tx_queue_size(size)
            .xdp_flags(xdp)
            .bind_flags(bind | BindFlags::XDP_USE_NEED_WAKEUP)
            .libxdp_flags(if own_program {
                LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD
            } else {
                LibxdpFlags::empty()
            })
            .build())
    }
}

impl fmt::Display for XdpMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

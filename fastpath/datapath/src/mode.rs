//! AF_XDP binding modes: which one the policy asks for and which one a port got.

use xsk_rs::config::{BindFlags, LibxdpFlags, QueueSize, SocketConfig, XdpFlags};

/// A binding mode (the policy's `xdp_mode`, defined with the policy language).
pub use config::XdpMode;

/// The xsk-rs socket configuration for concrete mode `mode`.
/// With `own_program`, libxdp loads no program: greguard's fast lane is attached already.
pub(crate) fn socket_config(
    mode: XdpMode,
    ring_size: u32,
    own_program: bool,
) -> std::io::Result<SocketConfig> {
    let (xdp, bind) = match mode {
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

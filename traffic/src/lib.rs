//! greguard's traffic: the frames the lab, the integration tests and the end-to-end benchmark
//! send through the box, and the counter that says what came out on the other side.
//!
//! - [`class`]: the traffic classes, carried in each frame's source MAC;
//! - [`mix`]: pre-built frames per class from a policy's tunnels, and a weighted schedule;
//! - [`packet`]: a packet socket sending and receiving whole frames in batches.
//!
//! The `greguard-gen` binary puts them together: `greguard-gen send` and `greguard-gen count`.

pub mod blast;
pub mod class;
pub mod mix;
pub mod netns;
pub mod packet;

pub use class::{Class, ClassCounts};
pub use mix::{Mix, Side};

/// The lab's tunnels (TOML): a keyed branch with keepalives, a provider prefix with IPv6 and
/// IPv4 inside, and a PPTP user. `greguard-gen lab` and the data-path tests put them behind their
/// own `[ports]`; `greguard-gen` builds valid frames for each.
pub const LAB_TUNNELS: &str = r#"
# A branch with a fixed address and a key; its router sends keepalives.
[[tunnel]]
name      = "berlin-branch"
peer      = "203.0.113.7"
local     = "198.51.100.10"
key       = 1001
protocols = ["ipv4", "ipv6", "keepalive"]

# A provider block of branch routers, IPv6 and IPv4 inside.
[[tunnel]]
name      = "paris-pool"
peer      = "203.0.113.0/28"
local     = "198.51.100.10"
protocols = ["ipv6", "ipv4"]

# Road warriors on PPTP (RFC 2637 enhanced GRE).
[[tunnel]]
name      = "pptp-users"
peer      = "192.0.2.50"
local     = "198.51.100.20"
version   = 1
protocols = ["ppp"]
"#;

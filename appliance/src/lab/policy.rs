//! The lab's policy: a head office with three kinds of tunnel, the interfaces filled in at run
//! time. It is written next to the lab's other files and shown to the operator.

/// The policy text for a box whose ports are `outside` and `inside`.
pub fn lab_policy(outside: &str, inside: &str) -> String {
    format!(
        r#"# greguard lab policy (written by `greguard lab`).
[ports]
outside  = "{outside}"
inside   = "{inside}"
xdp_mode = "auto"

[defaults]
non_gre        = "forward"
unknown_tunnel = "drop"
invalid_gre    = "drop"
bogons         = "drop"

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

[sampling]
invalid = 50
"#
    )
}

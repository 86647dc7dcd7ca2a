//! The lab's policy: a head office with three kinds of tunnel, the interfaces filled in at run
//! time. It is written next to the lab's other files and shown to the operator.

/// The policy text for a box whose ports are `outside` and `inside`.
pub fn lab_policy(outside: &str, inside: &str) -> String {
    format!(
        r#"# greguard lab policy (written by `greguard-gen lab`).
[ports]
outside  = "{outside}"
inside   = "{inside}"
xdp_mode = "auto"

[defaults]
non_gre        = "forward"
unknown_tunnel = "drop"
invalid_gre    = "drop"
bogons         = "drop"

{tunnels}
[sampling]
invalid = 50
"#,
        tunnels = traffic::LAB_TUNNELS.trim()
    )
}

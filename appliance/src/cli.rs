//! The command line (the README's Commands).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use validator::Direction;

/// greguard: a transparent inline filter that keeps unwanted GRE away from VPN concentrators.
///
/// It validates every GRE packet (RFC 2784, 2890, 1701, 2637) and its inner packet, matches it
/// against the tunnels of a TOML policy, forwards good tunnel traffic and drops or rate-limits the
/// rest; everything that is not GRE passes untouched.
#[derive(Debug, Parser)]
#[command(
    name = "greguard",
    version,
    propagate_version = true,
    max_term_width = 100
)]
#[command(
    after_help = "Exit codes: 0 ok, 1 bad input (a policy, a capture, a --port), 2 a runtime \
failure or a command line that cannot be parsed.\n\
Reasons: README.md; the policy reference: docs/policy.md."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a policy without touching any interface and print what it compiles to.
    ///
    /// Exits 0 when the policy is valid, 1 with FILE:LINE:COL: message when it is not.
    Check {
        /// The policy file (TOML).
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: PathBuf,
    },
    /// Print the policy as an nftables ruleset for a Linux bridge between the two ports.
    ///
    /// The fallback where greguard cannot run: the checks nftables can express, in greguard's
    /// order, each rule counting and naming its reason. What nftables cannot check (GRE
    /// checksums, most inner-packet checks, ...) is listed in comments at the top. Load it with
    /// `nft -f`. Needs [ports] (the bridge ports facing outside and inside).
    Nft {
        /// The policy file (TOML).
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: PathBuf,
    },
    /// Run the data-path classifier over a capture and report a verdict for every frame.
    ///
    /// The same code and the same policy as the data path; policers run on the capture's
    /// timestamps, so every run gives the same result. Reads pcap and pcapng with Ethernet,
    /// Linux cooked (SLL, SLL2) or raw-IP link types.
    Replay(ReplayArgs),
    /// Run the appliance in the foreground: AF_XDP on both ports of the policy's [ports].
    ///
    /// Every frame arriving on one port leaves unchanged on the other unless the policy drops
    /// it. Prints the AF_XDP mode of every port and queue, one summary line per second, and a
    /// final report on SIGINT/SIGTERM, when it detaches its XDP programs. Needs root (or
    /// CAP_NET_ADMIN, CAP_NET_RAW, CAP_IPC_LOCK, CAP_BPF and CAP_SYS_ADMIN).
    Run(RunArgs),
    /// Attach or detach the in-kernel bypass by hand: greguard's XDP program with no daemon
    /// behind it redirects every frame to the other port (a wire).
    ///
    /// For maintenance windows, or to keep traffic flowing while greguard is stopped. `greguard
    /// run` takes a bypass over without a gap; `run --keep-bypass` leaves one when it stops.
    /// Refuses to touch an XDP program greguard did not load. Needs root.
    Bypass(BypassArgs),
}

/// What `greguard bypass` is asked to do.
#[derive(Debug, Args)]
pub struct BypassArgs {
    /// `on` attaches the bypass, `off` removes it.
    #[arg(value_enum)]
    pub action: BypassAction,
    /// The interface facing the Internet (the policy's ports.outside).
    #[arg(value_name = "OUTSIDE")]
    pub outside: String,
    /// The interface facing the concentrators (the policy's ports.inside).
    #[arg(value_name = "INSIDE")]
    pub inside: String,
}

/// `greguard bypass on|off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BypassAction {
    On,
    Off,
}

/// What `greguard run` is asked to do.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The policy file (TOML).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: PathBuf,
    /// Stop by itself after this many seconds (as if sent SIGTERM).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<f64>,
    /// Do not print the per-second summary lines.
    #[arg(short, long)]
    pub quiet: bool,
    /// Also print libbpf's and libxdp's informational messages.
    #[arg(short, long)]
    pub verbose: bool,
    /// How to print the per-second line: for people, or `kv` (key=value) for scripts.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// On a clean stop, leave the fast lane's XDP program attached: the kernel then forwards
    /// as `[ports] on_failure` says (open: every frame; closed: all but GRE) until
    /// `greguard bypass off` or the next start.
    #[arg(long)]
    pub keep_bypass: bool,
}

/// The per-second line's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// pps per port, the top drop reasons and sources.
    Human,
    /// `stats t=N port.verdict.reason=frames ... top=addr/samples,...`
    Kv,
}

/// What `greguard replay` is asked to do.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The policy file (TOML).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: PathBuf,
    /// The capture to classify (pcap or pcapng).
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// Write the forwarded frames to this pcap file.
    #[arg(long, value_name = "OUT.pcap")]
    pub forward: Option<PathBuf>,
    /// Write the dropped frames to this pcap file.
    #[arg(long, value_name = "OUT.pcap")]
    pub drop: Option<PathBuf>,
    /// Write one CSV line per frame: frame,port,verdict,reason,tunnel (frame numbered from 1;
    /// port is the side the frame was classified as arriving on).
    #[arg(long, value_name = "OUT.csv")]
    pub verdicts: Option<PathBuf>,
    /// The port the captured frames arrived on; decides which end of a tunnel is the peer.
    #[arg(long, value_enum, default_value_t = Port::Outside)]
    pub from: Port,
    /// Frames of the pcapng interface IFNAME (its if_name) arrived on PORT (outside or inside);
    /// repeatable. Frames of other interfaces arrive as --from says.
    #[arg(long = "port", value_name = "IFNAME=PORT", value_parser = interface_port)]
    pub ports: Vec<InterfacePort>,
}

/// A port of the box, or `auto` for replay to choose one per frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Port {
    /// Faces the tunnel peers / Internet: outer source is the peer.
    Outside,
    /// Faces the VPN concentrators: outer source is the local end.
    Inside,
    /// Each frame from the side its outer addresses say: a tunnel's (local, peer) arrived
    /// inside, everything else outside. For captures of both directions (tcpdump -i any).
    Auto,
}

/// `--port IFNAME=PORT`: the port the frames of one capture interface arrived on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InterfacePort {
    /// The interface's name in the capture (pcapng `if_name`).
    pub name: String,
    /// The port its frames arrived on.
    pub port: Direction,
}

/// Parses `IFNAME=outside|inside`; an interface is on one port, so `auto` has no meaning here.
fn interface_port(arg: &str) -> Result<InterfacePort, String> {
    let (name, port) = arg
        .rsplit_once('=')
        .ok_or_else(|| format!("{arg:?} is not IFNAME=PORT (for example eth0=outside)"))?;
    if name.is_empty() {
        return Err(format!("{arg:?} names no interface before '='"));
    }
    let port = match port {
        "outside" => Direction::FromOutside,
        "inside" => Direction::FromInside,
        other => return Err(format!("port {other:?} is neither outside nor inside")),
    };
    Ok(InterfacePort {
        name: name.to_owned(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_arguments_name_an_interface_and_a_port() {
        assert_eq!(
            interface_port("eth0=inside"),
            Ok(InterfacePort {
                name: "eth0".into(),
                port: Direction::FromInside
            })
        );
        // The last '=' splits, so a name may hold one.
        assert_eq!(
            interface_port("a=b=outside").map(|p| p.name),
            Ok("a=b".to_string())
        );
        for bad in ["eth0", "=outside", "eth0=auto", "eth0=", "eth0=Outside"] {
            assert!(interface_port(bad).is_err(), "{bad}");
        }
    }
}

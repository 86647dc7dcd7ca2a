//! The lab's topology: three network namespaces joined by two veth pairs, with the box in the
//! middle.
//!
//! ```text
//!  <p>-out [<p>-o] ──veth── [<p>-bo] <p>-box [<p>-bi] ──veth── [<p>-i] <p>-in
//!  10.77.0.1/24               greguard run                       10.77.0.2/24
//! ```
//!
//! Used by `greguard-gen lab` and the data-path tests. Every name carries the caller's prefix, so
//! two runs never collide; [`Topology::destroy`] (also on drop) kills what still runs in the
//! namespaces and deletes them, and the veths with them.

use std::io;
use std::process::Command;

/// The end hosts' addresses (same subnet: the box is a wire, not a router).
pub const OUTSIDE_ADDR: &str = "10.77.0.1";
pub const INSIDE_ADDR: &str = "10.77.0.2";

/// Runs `ip` (or another command) and turns a failure into an error carrying its output.
pub fn run(args: &[&str]) -> io::Result<String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot run {}: {e}", args[0])))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The namespaces and interfaces of one lab.
#[derive(Debug)]
pub struct Topology {
    pub prefix: String,
    pub out_ns: String,
    pub box_ns: String,
    pub in_ns: String,
    /// In `out_ns`: where the peers and the attackers send from.
    pub out_if: String,
    /// In `box_ns`: greguard's outside port.
    pub box_out: String,
    /// In `box_ns`: greguard's inside port.
    pub box_in: String,
    /// In `in_ns`: the concentrator's side.
    pub in_if: String,
    destroyed: bool,
}

impl Topology {
    /// Creates the namespaces and veths; `queues` > 1 gives every veth that many RX and TX
    /// queues. On failure whatever was created is removed again.
    pub fn create(prefix: &str, queues: u32) -> io::Result<Topology> {
        let mut t = Topology {
            prefix: prefix.to_owned(),
            out_ns: format!("{prefix}-out"),
            box_ns: format!("{prefix}-box"),
            in_ns: format!("{prefix}-in"),
            out_if: format!("{prefix}-o"),
            box_out: format!("{prefix}-bo"),
            box_in: format!("{prefix}-bi"),
            in_if: format!("{prefix}-i"),
            destroyed: false,
        };
        if t.box_out.len() > 15 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("prefix {prefix:?} too long for interface names (at most 12 characters)"),
            ));
        }
        match t.build(queues) {
            Ok(()) => Ok(t),
            Err(e) => {
                t.destroy();
                Err(e)
            }
        }
    }

    fn build(&self, queues: u32) -> io::Result<()> {
        for ns in [&self.out_ns, &self.box_ns, &self.in_ns] {
            run(&["ip", "netns", "add", ns])?;
        }
        let q = queues.to_string();
        for (a, b) in [(&self.out_if, &self.box_out), (&self.in_if, &self.box_in)] {
            let mut args = vec!["ip", "link", "add", a.as_str()];
            if queues > 1 {
                args.extend(["numrxqueues", &q, "numtxqueues", &q]);
            }
            args.extend(["type", "veth", "peer", "name", b.as_str()]);
            if queues > 1 {
                args.extend(["numrxqueues", &q, "numtxqueues", &q]);
            }
            run(&args)?;
        }
        for (ifname, ns) in [
            (&self.out_if, &self.out_ns),
            (&self.box_out, &self.box_ns),
            (&self.box_in, &self.box_ns),
            (&self.in_if, &self.in_ns),
        ] {
            run(&["ip", "link", "set", ifname, "netns", ns])?;
            run(&["ip", "-n", ns, "link", "set", ifname, "up"])?;
        }
        for ns in [&self.out_ns, &self.box_ns, &self.in_ns] {
            run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        }
        // veth hands TCP and UDP over with the checksum left to an offload that never happens;
        // a frame the box re-sends through AF_XDP would then arrive with a bad checksum. On a
        // wire every frame carries its checksum: make the end hosts compute theirs.
        // A frame the box's XDP program redirects into a veth is delivered only when the far
        // end has an XDP program or GRO enabled (otherwise it vanishes without a counter):
        // turn GRO on at the end hosts, as a NIC's receive path would take the frame anyway.
        for (ns, ifname) in [(&self.out_ns, &self.out_if), (&self.in_ns, &self.in_if)] {
            run(&[
                "ip", "netns", "exec", ns, "ethtool", "-K", ifname, "tx", "off", "gro", "on",
            ])?;
        }
        // With veth's default (no queue), a frame sent into a peer whose receive ring (256
        // frames) is full is dropped and counted as a TX drop. With a queueing discipline the
        // veth stops its queue instead (kernel 6.16 and later) and the box's AF_XDP transmit
        // waits in its TX ring, as it would for a NIC's full TX ring.
        for ifname in [&self.box_out, &self.box_in] {
            run(&[
                "tc",
                "-n",
                &self.box_ns,
                "qdisc",
                "replace",
                "dev",
                ifname,
                "root",
                "pfifo",
            ])?;
        }
        let out_addr = format!("{OUTSIDE_ADDR}/24");
        let in_addr = format!("{INSIDE_ADDR}/24");
        run(&[
            "ip",
            "-n",
            &self.out_ns,
            "addr",
            "add",
            &out_addr,
            "dev",
            &self.out_if,
        ])?;
        run(&[
            "ip",
            "-n",
            &self.in_ns,
            "addr",
            "add",
            &in_addr,
            "dev",
            &self.in_if,
        ])?;
        Ok(())
    }

    /// Kills every process left in the namespaces and deletes them (idempotent).
    pub fn destroy(&mut self) {
        if self.destroyed {
            return;
        }
        self.destroyed = true;
        for ns in [&self.out_ns, &self.box_ns, &self.in_ns] {
            if let Ok(pids) = run(&["ip", "netns", "pids", ns]) {
                for pid in pids.split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).status();
                }
            }
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }

    /// Whether an XDP program is attached to `ifname` in the box namespace.
    pub fn xdp_attached(&self, ifname: &str) -> bool {
        run(&["ip", "-n", &self.box_ns, "link", "show", "dev", ifname])
            .map(|s| s.contains("xdp"))
            .unwrap_or(false)
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        self.destroy();
    }
}

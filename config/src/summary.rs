//! The human summary `greguard check` prints: what the file compiled to, in the policy's own
//! words, so an operator can see at a glance that defaults and tunnels are what they meant.

use std::fmt::Write as _;
use std::sync::Arc;

use validator::{Action, FlagRule, KeyRule, Rate, TunnelSpec};

use crate::model::{Queues, Sampling};
use crate::Loaded;

fn action(a: Action) -> &'static str {
    match a {
        Action::Forward => "forward",
        Action::Drop => "drop",
        Action::RateLimit => "rate-limit",
    }
}

fn rate(r: Rate) -> String {
    format!("{} pps burst {}", r.pps, r.burst)
}

fn drop_or_ignore(drop: bool) -> &'static str {
    if drop {
        "drop"
    } else {
        "ignore"
    }
}

fn one_in(n: u32) -> String {
    match n {
        0 => "none".into(),
        n => format!("1 in {n}"),
    }
}

fn key(k: KeyRule) -> String {
    match k {
        KeyRule::Any => "any key".into(),
        KeyRule::Absent => "no key".into(),
        KeyRule::Equal(n) => format!("key {n}"),
    }
}

/// The tunnel's non-default rules, e.g. `nested, checksum require`.
fn extras(t: &TunnelSpec) -> String {
    let mut out = Vec::new();
    if t.nested {
        out.push("nested".to_owned());
    }
    for (what, rule) in [("checksum", t.checksum), ("sequence", t.sequence)] {
        match rule {
            FlagRule::Allow => {}
            FlagRule::Require => out.push(format!("{what} require")),
            FlagRule::Forbid => out.push(format!("{what} forbid")),
        }
    }
    if let Some(r) = t.rate {
        out.push(format!("rate {}", rate(r)));
    }
    out.join(", ")
}

/// `3 tunnels: 2 version 0, 1 version 1; 3 IPv4; 1 host pair, 2 with prefixes`, zero counts left
/// out.
fn census(tunnels: &[Arc<TunnelSpec>]) -> String {
    if tunnels.is_empty() {
        return "0 tunnels: all valid GRE is unknown_tunnel".to_string();
    }
    let count = |f: &dyn Fn(&TunnelSpec) -> bool| tunnels.iter().filter(|t| f(t)).count();
    let part = |items: &[(usize, &str, &str)]| {
        items
            .iter()
            .filter(|(n, _, _)| *n > 0)
            .map(|(n, one, many)| format!("{n} {}", if *n == 1 { one } else { many }))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let hosts = count(&|t| t.peer.is_host() && t.local.is_host());
    let parts = [
        part(&[
            (count(&|t| t.version == 0), "version 0", "version 0"),
            (count(&|t| t.version == 1), "version 1", "version 1"),
        ]),
        part(&[
            (count(&|t| !t.peer.is_v6()), "IPv4", "IPv4"),
            (count(&|t| t.peer.is_v6()), "IPv6", "IPv6"),
        ]),
        part(&[
            (hosts, "host pair", "host pairs"),
            (tunnels.len() - hosts, "with prefixes", "with prefixes"),
        ]),
    ];
    let noun = if tunnels.len() == 1 {
        "tunnel"
    } else {
        "tunnels"
    };
    format!("{} {noun}: {}", tunnels.len(), parts.join("; "))
}

impl Loaded {
    /// A short, line-oriented summary of the compiled policy for `greguard check`.
    pub fn summary(&self) -> String {
        let m = &self.model;
        let mut out = String::new();
        match &m.ports {
            Some(p) => {
                let queues = match &p.queues {
                    Queues::All => "all".to_owned(),
                    Queues::List(q) => list(q),
                };
                let cores = p.cores.as_deref().map_or("after 0".to_owned(), list);
                let _ = writeln!(
                    out,
                    "ports:    outside {}, inside {}; queues {queues}, cores {cores}; xdp {}, frame {}, fast lane {}, on failure {}, tunnel path {}",
                    p.outside,
                    p.inside,
                    p.xdp_mode,
                    p.frame_size,
                    if p.fast_lane { "on" } else { "off" },
                    p.on_failure,
                    p.tunnel_path
                );
            }
            None => {
                out.push_str("ports:    none (enough for check and replay; run needs [ports])\n")
            }
        }
        let d = &m.defaults;
        let _ = writeln!(
            out,
            "defaults: non_gre {}, unknown_tunnel {}, invalid_gre {}, rate_limit {}, fragments {}, reserved_bits {}, bogons {}",
            d.non_gre,
            action(d.unknown_tunnel),
            action(d.invalid_gre),
            rate(d.rate_limit),
            if d.fragments_to_tunnel { "tunnel" } else { "drop" },
            drop_or_ignore(d.drop_reserved_bits),
            drop_or_ignore(d.drop_bogons),
        );
        let Sampling {
            invalid,
            forwarded,
            snaplen,
            pcap_dir,
            pcap_rotate_mb,
            pcap_keep,
        } = &m.sampling;
        let pcap = pcap_dir.as_ref().map_or("no pcap files".to_owned(), |d| {
            format!(
                "pcap to {} ({pcap_rotate_mb} MiB x {pcap_keep})",
                d.display()
            )
        });
        let _ = writeln!(
            out,
            "sampling: invalid {}, forwarded {}, snaplen {snaplen}, {pcap}",
            one_in(*invalid),
            one_in(*forwarded)
        );
        let _ = writeln!(out, "metrics:  http://{}/metrics", m.metrics.listen);
        let _ = writeln!(out, "{}", census(self.tunnels()));
        let rows: Vec<[String; 6]> = self
            .tunnels()
            .iter()
            .map(|t| {
                [
                    t.name.clone(),
                    format!("{} → {}", t.peer, t.local),
                    key(t.key),
                    format!("v{}", t.version),
                    t.protocols.describe().join(","),
                    extras(t),
                ]
            })
            .collect();
        let mut widths = [0usize; 6];
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for row in &rows {
            let mut line = String::new();
            for (cell, w) in row.iter().zip(widths) {
                let _ = write!(line, "  {cell}{:pad$}", "", pad = w - cell.chars().count());
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        out
    }
}

fn list(ids: &[u32]) -> String {
    let ids: Vec<String> = ids.iter().map(u32::to_string).collect();
    format!("[{}]", ids.join(", "))
}

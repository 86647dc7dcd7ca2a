//! Tables shared by `replay` and `run`: frames per verdict and reason, per tunnel, and (for
//! `run`) ring health and the frame ledger.

use std::fmt::Write as _;
use std::time::Duration;

use datapath::{Binding, PortCounters, Snapshot, WorkerReport};
use validator::{Counters, Direction, Policy, Reason, Verdict};

/// The header of [`verdict_rows`].
pub fn verdict_header(first: &str) -> String {
    format!(
        "{:<8} {:<8} {:<16} {:>12} {:>7} {:>14}",
        first, "verdict", "reason", "frames", "share", "bytes"
    )
}

/// One row per (verdict, reason) seen on `dir`, the first column being `label`.
pub fn verdict_rows(s: &mut String, label: &str, c: &Counters, dir: Direction) {
    let total = c.port_total(dir);
    for verdict in Verdict::ALL {
        for reason in Reason::ALL {
            let n = c.packets(dir, reason, verdict);
            if n == 0 {
                continue;
            }
            let bytes = c.bytes[dir as usize][reason.index()][verdict as usize];
            let _ = writeln!(
                s,
                "{:<8} {:<8} {:<16} {:>12} {:>6.1}% {:>14}",
                label,
                verdict.name(),
                reason.name(),
                n,
                percent(n, total),
                bytes
            );
        }
    }
}

/// Frames forwarded on `dir`.
pub fn forwarded(c: &Counters, dir: Direction) -> u64 {
    Reason::ALL
        .iter()
        .map(|&r| c.packets(dir, r, Verdict::Forward))
        .sum()
}

/// Per tunnel that saw traffic: forwarded and dropped.
pub fn tunnel_rows(s: &mut String, policy: &Policy, c: &Counters) {
    let active: Vec<_> = c
        .tunnel_packets
        .iter()
        .enumerate()
        .filter(|(_, t)| t.iter().any(|&n| n > 0))
        .collect();
    if active.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n{:<32} {:>12} {:>12}",
        "tunnel", "forwarded", "dropped"
    );
    for (i, t) in active {
        let name = u32::try_from(i).map_or("", |i| policy.tunnel_name(i));
        let _ = writeln!(
            s,
            "{:<32} {:>12} {:>12}",
            name,
            t[Verdict::Forward as usize],
            t[Verdict::Drop as usize]
        );
    }
}

/// `n` as a percentage of `total`.
pub fn percent(n: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        n as f64 * 100.0 / total as f64
    }
}

/// Appends to a per-second line what went wrong on the rings in that second, if anything.
pub fn ring_alerts(s: &mut String, before: &Snapshot, now: &Snapshot) -> std::fmt::Result {
    for (i, port) in ["outside", "inside"].iter().enumerate() {
        let (a, b) = (&before.ports[i], &now.ports[i]);
        let alerts = [
            ("tx_ring_full", b.tx_ring_full - a.tx_ring_full),
            ("fill_starved", b.fill_starved - a.fill_starved),
            ("xdp_rx_ring_full", b.xdp_rx_ring_full - a.xdp_rx_ring_full),
            ("xdp_rx_dropped", b.xdp_rx_dropped - a.xdp_rx_dropped),
            (
                "xdp_fill_ring_empty",
                b.xdp_rx_fill_ring_empty_descs - a.xdp_rx_fill_ring_empty_descs,
            ),
        ];
        for (name, n) in alerts {
            if n > 0 {
                write!(s, "  {port} {name} {n}")?;
            }
        }
    }
    Ok(())
}

/// The ring counters of one port as `key=value` pairs.
fn ring_line(port: &str, p: &PortCounters) -> String {
    format!(
        "ring {port}: received={} kernel_oversize={} transmitted={} tx_ring_full={} fill_starved={} rx_empty_polls={} \
         tx_kicks={} xdp_rx_dropped={} xdp_rx_ring_full={} xdp_rx_fill_ring_empty_descs={} \
         xdp_rx_invalid_descs={} xdp_tx_invalid_descs={} xdp_tx_ring_empty_descs={} samples={} \
         samples_dropped={}",
        p.rx_packets,
        p.kernel_oversize,
        p.tx_packets,
        p.tx_ring_full,
        p.fill_starved,
        p.rx_empty_polls,
        p.tx_kicks,
        p.xdp_rx_dropped,
        p.xdp_rx_ring_full,
        p.xdp_rx_fill_ring_empty_descs,
        p.xdp_rx_invalid_descs,
        p.xdp_tx_invalid_descs,
        p.xdp_tx_ring_empty_descs,
        p.samples,
        p.samples_dropped
    )
}

/// What `greguard run` prints when it stops: every frame by port, verdict and reason; per
/// tunnel; ring health; the counting invariant; and where every UMEM frame is.
pub fn final_report(
    policy: &Policy,
    total: &Snapshot,
    reports: &[WorkerReport],
    bindings: &[Binding],
    elapsed: Duration,
) -> String {
    let c = &total.counters;
    let mut s = format!(
        "\ngreguard ran {:.1} s: {} frames from outside, {} from inside\n\n",
        elapsed.as_secs_f64(),
        c.port_total(Direction::FromOutside),
        c.port_total(Direction::FromInside)
    );
    s.push_str(&verdict_header("port"));
    s.push('\n');
    for dir in [Direction::FromOutside, Direction::FromInside] {
        verdict_rows(&mut s, dir.port(), c, dir);
    }
    tunnel_rows(&mut s, policy, c);
    s.push('\n');
    for (i, dir) in [Direction::FromOutside, Direction::FromInside]
        .iter()
        .enumerate()
    {
        let _ = writeln!(s, "{}", ring_line(dir.port(), &total.ports[i]));
    }
    if let Some(k) = &total.kernel {
        for (i, dir) in [Direction::FromOutside, Direction::FromInside]
            .iter()
            .enumerate()
        {
            let _ = writeln!(
                s,
                "fast lane {}: judged={} tunnel_forwarded={} to_user={} bypassed={} \
                 closed_dropped={} unserved={} no_target={} sampled={} samples_lost={}",
                dir.port(),
                k.judged(i),
                k.verdicts.packets(*dir, Reason::Tunnel, Verdict::Forward),
                k.to_user[i],
                k.bypassed[i],
                k.closed_dropped[i],
                k.unserved[i],
                k.no_target[i],
                k.sampled[i],
                k.samples_lost[i]
            );
        }
    }
    for (i, dir) in [Direction::FromOutside, Direction::FromInside]
        .iter()
        .enumerate()
    {
        let received = total.ports[i].rx_packets;
        let oversize = total.ports[i].kernel_oversize;
        let kernel = total.kernel_judged(i);
        let counted = c.port_total(*dir);
        let verdict = if received + oversize + kernel == counted {
            "ok"
        } else {
            "MISMATCH"
        };
        let _ = writeln!(
            s,
            "invariant {}: received={received} kernel_oversize={oversize} kernel_judged={kernel} counted={counted} {verdict}",
            dir.port(),
        );
    }
    for (w, r) in reports.iter().enumerate() {
        let Some(b) = bindings.iter().find(|b| b.worker == w) else {
            continue;
        };
        let _ = writeln!(
            s,
            "worker {w}: queue {} core {} outside_received={} inside_received={}",
            b.queue, b.core, r.ports[0].rx_packets, r.ports[1].rx_packets
        );
    }
    for (w, r) in reports.iter().enumerate() {
        let f = &r.frames;
        let _ = writeln!(
            s,
            "frames worker {w}: total={} free={} fill={} tx={} in_hand={} {}",
            f.total,
            f.free,
            f.fill,
            f.tx,
            f.in_hand,
            if f.balanced() {
                "balanced"
            } else {
                "UNBALANCED"
            }
        );
    }
    s
}

//! The Prometheus endpoint (docs/operations.md, Metrics): `GET /metrics` on `[metrics] listen`,
//! served by `metrics-exporter-prometheus` on a thread of its own.
//!
//! The workers never call into the metrics library. The main thread copies their published
//! counters into registered handles (`absolute` for counters, `set` for gauges) every time it
//! draws a summary, so a scrape is at most one publication old. Every series the box will ever
//! show is registered at start-up with value 0, so rates work from the first scrape.
//!
//! The top dropped sources are the exception: their `source` label is chosen by whoever sends
//! the storm. The exporter forgets a series only when it renders the exposition and finds the
//! series idle, which it otherwise does only at a scrape; so greguard keeps a handle on the
//! recorder and renders (and discards) the exposition itself while sources come and go, and the
//! number of such series stays bounded whether or not anyone scrapes.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context, Result};
use datapath::{Binding, Snapshot, XdpMode};
use metrics::{describe_counter, describe_gauge, Counter, Gauge};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;
use validator::{Direction, Policy, Reason, Verdict};

const PORTS: [Direction; 2] = [Direction::FromOutside, Direction::FromInside];

/// The `path` label of `greguard_fast_lane_packets_total`.
const LANE_PATHS: [&str; 7] = [
    "judged",
    "to_user",
    "bypassed",
    "closed_dropped",
    "unserved",
    "no_target",
    "sampled",
];

/// How long a gauge that is no longer set stays in the exposition (at least).
const GAUGE_IDLE: Duration = Duration::from_secs(15);

/// How often the exposition is rendered to forget idle top-source series, while needed.
const PRUNE_EVERY: Duration = Duration::from_secs(5);

/// The `stage` label of `greguard_samples_shed_total`.
const SHED_STAGES: [&str; 2] = ["pcap", "top"];

/// Per port and queue: ring health and the kernel's `XDP_STATISTICS`.
struct RingSeries {
    worker: usize,
    port: usize,
    rx_packets: Counter,
    tx_packets: Counter,
    kernel_oversize: Counter,
    rx_empty_polls: Counter,
    tx_ring_full: Counter,
    fill_starved: Counter,
    xdp_rx_dropped: Counter,
    xdp_rx_ring_full: Counter,
    xdp_rx_fill_ring_empty_descs: Counter,
    xdp_tx_ring_empty_descs: Counter,
    xdp_rx_invalid_descs: Counter,
    xdp_tx_invalid_descs: Counter,
}

/// Per worker (queue): where its UMEM frames are.
struct FrameSeries {
    worker: usize,
    free: Gauge,
    fill: Gauge,
    tx: Gauge,
}

/// Every registered series.
pub struct Exporter {
    packets: Vec<Counter>,
    bytes: Vec<Counter>,
    tunnels: Vec<[Counter; 2]>,
    /// The policy `tunnels` are the series of.
    tunnels_of: Arc<Policy>,
    samples: Counter,
    samples_dropped: Counter,
    /// Per stage of [`SHED_STAGES`].
    samples_shed: [Counter; 2],
    /// The (rank, source) series of the last top list, to zero those that leave it.
    top_published: Vec<(usize, IpAddr)>,
    /// Set when the top list changed (series created or zeroed): the pruning task renders for a
    /// while.
    top_changed: Arc<AtomicBool>,
    rings: Vec<RingSeries>,
    frames: Vec<FrameSeries>,
    reloads_ok: u64,
    reloads_error: u64,
    /// Per port: the fast lane's paths (judged, to_user, bypassed, closed_dropped, unserved, no_target, sampled).
    lane: [[Counter; LANE_PATHS.len()]; 2],
    fast_lane: Gauge,
    /// Per port: the kernel path judges its tunnel traffic.
    kernel_tunnels: [bool; 2],
    /// Generation of the policy `tunnels` belongs to.
    generation: u64,
    /// (port, queue, mode in use) per socket, for `greguard_xdp_mode`.
    modes: Vec<(&'static str, String, XdpMode)>,
    /// Tunnels of the running policy, and when it was loaded (Unix seconds).
    policy_tunnels: usize,
    policy_loaded: f64,
}

/// The series of tunnel `i` of `policy`.
fn tunnel_series(policy: &Policy, i: u32) -> [Counter; 2] {
    let name = policy.tunnel_name(i).to_owned();
    Verdict::ALL.map(|v| {
        metrics::counter!("greguard_tunnel_packets_total", "tunnel" => name.clone(), "verdict" => v.name())
    })
}

/// The per-tunnel series of `policy`, reusing those of `old`'s tunnels of the same name
/// (registering 200 000 series anew took longer than the rest of a 100 000-tunnel reload).
fn policy_series(policy: &Policy, old: Option<(&Policy, &[[Counter; 2]])>) -> Vec<[Counter; 2]> {
    let previous = old.map(|(p, _)| policy.previous_indices(p));
    // Tunnel indices are u32: Policy::add_tunnel refuses a tunnel whose index would not fit
    // (TooManyTunnels), so the count fits too.
    #[allow(clippy::cast_possible_truncation)]
    let count = policy.tunnel_count() as u32;
    (0..count)
        .map(|i| {
            let found = previous.as_ref().and_then(|p| p[i as usize]);
            match (found, old) {
                (Some(o), Some((_, series))) if (o as usize) < series.len() => {
                    series[o as usize].clone()
                }
                _ => tunnel_series(policy, i),
            }
        })
        .collect()
}

fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn describe() {
    describe_counter!(
        "greguard_packets_total",
        "Frames received per port, verdict and reason (every frame has exactly one)."
    );
    describe_counter!(
        "greguard_bytes_total",
        "Bytes of the frames in greguard_packets_total."
    );
    describe_counter!(
        "greguard_tunnel_packets_total",
        "Frames whose outer addresses matched a tunnel, per tunnel and verdict."
    );
    describe_counter!(
        "greguard_samples_total",
        "GRE frames sampled to the slow path (1 in [sampling] invalid dropped, 1 in [sampling] forwarded forwarded)."
    );
    describe_counter!(
        "greguard_samples_dropped_total",
        "Samples lost because a worker's sample ring, or the fast lane's, was full."
    );
    describe_counter!(
        "greguard_samples_shed_total",
        "Samples the slow path took but shed, by stage: pcap (the pcap writer's queue was full), top (their second of the top-sources view already tracked 4096 sources)."
    );
    describe_counter!(
        "greguard_policy_reloads_total",
        "Policy loads after start-up, by result."
    );
    describe_gauge!(
        "greguard_policy_generation",
        "Generation of the running policy (1 at start, +1 per successful reload)."
    );
    describe_gauge!(
        "greguard_policy_last_reload_timestamp_seconds",
        "Unix time the running policy was loaded."
    );
    describe_gauge!("greguard_policy_tunnels", "Tunnels in the running policy.");
    describe_gauge!(
        "greguard_top_dropped_source_samples",
        "Sampled dropped GRE frames of the top sources over the last 10 s, by rank (the backscatter view); 0 for a source that left the list."
    );
    describe_gauge!(
        "greguard_xdp_mode",
        "1 for the AF_XDP mode a port runs in, 0 for the others."
    );
    describe_counter!(
        "greguard_rx_packets_total",
        "Frames taken from a port's RX ring; with greguard_kernel_oversize_total and the fast lane's judged frames they add up to greguard_packets_total of the port."
    );
    describe_counter!(
        "greguard_tx_packets_total",
        "Frames placed on a port's TX ring (forwarded from the other port)."
    );
    describe_counter!(
        "greguard_fast_lane_packets_total",
        "Frames the fast lane's XDP program handled, by path: judged in the kernel (also in greguard_packets_total), to_user (handed to a socket), bypassed or closed_dropped (greguard gone: on_failure open or closed), unserved (dropped: no socket served the queue while greguard ran), no_target (dropped: the other port missing from the program's map), sampled (frames the kernel judged, copied to the slow path as samples)."
    );
    describe_gauge!(
        "greguard_tunnel_path",
        "1 for the path that judges a port's tunnel traffic (kernel: the fast lane's XDP program forwards what it judges exactly; user: the workers), 0 for the other."
    );
    describe_gauge!(
        "greguard_fast_lane",
        "1 when greguard's XDP program sheds traffic in the kernel, 0 when every frame goes through user space."
    );
    describe_counter!(
        "greguard_kernel_oversize_total",
        "Frames too long for a UMEM frame that the kernel dropped before the socket saw them (counted as reason oversize)."
    );
    describe_counter!(
        "greguard_rx_ring_empty_polls_total",
        "RX polls that found the ring empty."
    );
    describe_counter!(
        "greguard_tx_ring_full_total",
        "Forwarded frames dropped because the TX ring stayed full."
    );
    describe_counter!(
        "greguard_fill_ring_starved_total",
        "Refills that found no free UMEM frame while the fill ring was below its target."
    );
    describe_gauge!(
        "greguard_umem_frames",
        "UMEM frames of a worker by where they are: free, fill (given to the kernel to receive into), tx (on a TX ring)."
    );
    describe_counter!(
        "greguard_xdp_rx_dropped_total",
        "XDP_STATISTICS rx_dropped: frames the kernel dropped for this socket (too long for a UMEM frame, no fill buffer)."
    );
    describe_counter!(
        "greguard_xdp_rx_ring_full_total",
        "XDP_STATISTICS rx_ring_full: frames dropped because the RX ring was full."
    );
    describe_counter!(
        "greguard_xdp_rx_fill_ring_empty_descs_total",
        "XDP_STATISTICS rx_fill_ring_empty_descs: times the kernel found the fill ring empty."
    );
    describe_counter!(
        "greguard_xdp_tx_ring_empty_descs_total",
        "XDP_STATISTICS tx_ring_empty_descs: times the kernel found the TX ring empty when asked to send."
    );
    describe_counter!(
        "greguard_xdp_rx_invalid_descs_total",
        "XDP_STATISTICS rx_invalid_descs."
    );
    describe_counter!(
        "greguard_xdp_tx_invalid_descs_total",
        "XDP_STATISTICS tx_invalid_descs."
    );
}

/// The series of the source at `rank` in the top list.
fn top_gauge(rank: usize, source: IpAddr) -> Gauge {
    metrics::gauge!(
        "greguard_top_dropped_source_samples",
        "rank" => rank.to_string(),
        "source" => source.to_string()
    )
}

/// Installs the recorder and serves it on `listen` from a thread of its own, with the task that
/// forgets idle top-source series (see the module's doc).
fn serve(listen: SocketAddr, top_changed: Arc<AtomicBool>) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the metrics listener's runtime")?;
    let (recorder, server) = {
        let _inside = runtime.enter();
        PrometheusBuilder::new()
            .with_http_listener(listen)
            // Gauges not set for a while disappear: that is how a source that left the top
            // list leaves the metrics. Every other gauge is set at every publication.
            .idle_timeout(MetricKindMask::GAUGE, Some(GAUGE_IDLE))
            .build()
            .with_context(|| {
                format!("serving metrics on {listen} ([metrics] listen): is the address in use or not local?")
            })?
    };
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)
        .map_err(|e| anyhow!("installing the metrics recorder: {e}"))?;
    runtime.spawn(prune(handle, top_changed, PRUNE_EVERY, GAUGE_IDLE));
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            let _ = runtime.block_on(server);
        })
        .context("starting the metrics listener's thread")?;
    Ok(())
}

/// Renders the exposition (and throws it away) every `every` for a while after the top list
/// changed: rendering is when the exporter removes the series idle for longer than `idle`. While
/// the top list stays the same it does nothing.
async fn prune(
    handle: PrometheusHandle,
    top_changed: Arc<AtomicBool>,
    every: Duration,
    idle: Duration,
) {
    // The first render after a change sees the new series (which starts their idle time), the
    // first one more than `idle` later removes them; one more for timer slack.
    let renders = u32::try_from(idle.as_millis() / every.as_millis().max(1))
        .unwrap_or(u32::MAX)
        .saturating_add(2);
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut left = 0;
    loop {
        ticks.tick().await;
        if top_changed.swap(false, Ordering::Relaxed) {
            left = renders;
        }
        if left > 0 {
            left -= 1;
            drop(handle.render());
        }
    }
}

impl Exporter {
    /// Starts the HTTP listener on `listen` and registers every series at 0.
    pub fn start(
        listen: SocketAddr,
        policy: &Arc<Policy>,
        bindings: &[Binding],
        policy_loaded: SystemTime,
    ) -> Result<Exporter> {
        let top_changed = Arc::new(AtomicBool::new(false));
        serve(listen, top_changed.clone())?;
        describe();
        let mut packets = Vec::new();
        let mut bytes = Vec::new();
        for dir in PORTS {
            for verdict in Verdict::ALL {
                for reason in Reason::ALL {
                    let labels = [
                        ("port", dir.port()),
                        ("verdict", verdict.name()),
                        ("reason", reason.name()),
                    ];
                    packets.push(metrics::counter!("greguard_packets_total", &labels));
                    bytes.push(metrics::counter!("greguard_bytes_total", &labels));
                }
            }
        }
        let tunnels = policy_series(policy, None);
        let mut rings = Vec::new();
        let mut frames = Vec::new();
        let mut modes = Vec::new();
        for b in bindings {
            let port = if b.port == "outside" { 0 } else { 1 };
            let labels = [("port", b.port.to_owned()), ("queue", b.queue.to_string())];
            let c = |name: &'static str| metrics::counter!(name, &labels);
            rings.push(RingSeries {
                worker: b.worker,
                port,
                rx_packets: c("greguard_rx_packets_total"),
                tx_packets: c("greguard_tx_packets_total"),
                kernel_oversize: c("greguard_kernel_oversize_total"),
                rx_empty_polls: c("greguard_rx_ring_empty_polls_total"),
                tx_ring_full: c("greguard_tx_ring_full_total"),
                fill_starved: c("greguard_fill_ring_starved_total"),
                xdp_rx_dropped: c("greguard_xdp_rx_dropped_total"),
                xdp_rx_ring_full: c("greguard_xdp_rx_ring_full_total"),
                xdp_rx_fill_ring_empty_descs: c("greguard_xdp_rx_fill_ring_empty_descs_total"),
                xdp_tx_ring_empty_descs: c("greguard_xdp_tx_ring_empty_descs_total"),
                xdp_rx_invalid_descs: c("greguard_xdp_rx_invalid_descs_total"),
                xdp_tx_invalid_descs: c("greguard_xdp_tx_invalid_descs_total"),
            });
            modes.push((b.port, b.queue.to_string(), b.mode));
            if port == 0 {
                let q = b.queue.to_string();
                let g = |state: &'static str| metrics::gauge!("greguard_umem_frames", "queue" => q.clone(), "state" => state);
                frames.push(FrameSeries {
                    worker: b.worker,
                    free: g("free"),
                    fill: g("fill"),
                    tx: g("tx"),
                });
            }
        }
        for result in ["ok", "error"] {
            metrics::counter!("greguard_policy_reloads_total", "result" => result).absolute(0);
        }
        let exporter = Exporter {
            packets,
            bytes,
            tunnels,
            tunnels_of: policy.clone(),
            samples: metrics::counter!("greguard_samples_total"),
            samples_dropped: metrics::counter!("greguard_samples_dropped_total"),
            samples_shed: SHED_STAGES
                .map(|stage| metrics::counter!("greguard_samples_shed_total", "stage" => stage)),
            top_published: Vec::new(),
            top_changed,
            rings,
            frames,
            lane: ["outside", "inside"].map(|port| {
                LANE_PATHS.map(|path| {
                    metrics::counter!("greguard_fast_lane_packets_total", "port" => port, "path" => path)
                })
            }),
            fast_lane: metrics::gauge!("greguard_fast_lane"),
            kernel_tunnels: [false; 2],
            reloads_ok: 0,
            reloads_error: 0,
            generation: 1,
            modes,
            policy_tunnels: policy.tunnel_count(),
            policy_loaded: unix_seconds(policy_loaded),
        };
        exporter.publish(&Snapshot::new(policy.tunnel_count()), &[]);
        Ok(exporter)
    }

    /// The backscatter view: samples of the top sources of dropped GRE over the last seconds,
    /// by rank, and the samples the slow path shed. A (rank, source) that leaves the list is
    /// set to 0, and leaves the exposition once idle for `GAUGE_IDLE`.
    pub fn publish_slow_path(&mut self, top: &[(IpAddr, u64)], shed: &crate::slow_path::Shed) {
        let now: Vec<(usize, IpAddr)> = top
            .iter()
            .enumerate()
            .map(|(rank, (source, _))| (rank + 1, *source))
            .collect();
        for &(rank, source) in &self.top_published {
            if !now.contains(&(rank, source)) {
                top_gauge(rank, source).set(0.0);
                self.top_changed.store(true, Ordering::Relaxed);
            }
        }
        for (&(rank, source), (_, samples)) in now.iter().zip(top) {
            if !self.top_published.contains(&(rank, source)) {
                self.top_changed.store(true, Ordering::Relaxed);
            }
            top_gauge(rank, source).set(*samples as f64);
        }
        self.top_published = now;
        for (series, n) in self.samples_shed.iter().zip([shed.pcap, shed.top]) {
            series.absolute(n);
        }
    }

    /// A reload handed generation `generation` to the workers.
    pub fn reloaded(&mut self, policy: &Arc<Policy>, generation: u64, at: SystemTime) {
        self.reloads_ok += 1;
        metrics::counter!("greguard_policy_reloads_total", "result" => "ok")
            .absolute(self.reloads_ok);
        self.tunnels = policy_series(policy, Some((&self.tunnels_of, &self.tunnels)));
        self.tunnels_of = policy.clone();
        self.generation = generation;
        self.policy_tunnels = policy.tunnel_count();
        self.policy_loaded = unix_seconds(at);
    }

    /// A reload was refused; the running policy stays.
    /// Records the data path's choice of tunnel path per port (outside, inside), for
    /// `greguard_tunnel_path`.
    pub fn tunnel_paths(&mut self, kernel: [bool; 2]) {
        self.kernel_tunnels = kernel;
    }

    fn publish_tunnel_paths(&self) {
        for (port, k) in ["outside", "inside"].into_iter().zip(self.kernel_tunnels) {
            for (path, on) in [("kernel", k), ("user", !k)] {
                metrics::gauge!("greguard_tunnel_path", "port" => port, "path" => path)
                    .set(if on { 1.0 } else { 0.0 });
            }
        }
    }

    pub fn reload_failed(&mut self) {
        self.reloads_error += 1;
        metrics::counter!("greguard_policy_reloads_total", "result" => "error")
            .absolute(self.reloads_error);
    }

    /// Copies the workers' counters into the series: `total` summed over workers,
    /// `per_worker` for the per-queue series.
    pub fn publish(&self, total: &Snapshot, per_worker: &[Snapshot]) {
        // Gauges are set at every publication, so the idle timeout only ever removes the
        // top-sources series of (rank, source) pairs that left the list.
        for (port, queue, in_use) in &self.modes {
            for mode in XdpMode::CONCRETE {
                metrics::gauge!("greguard_xdp_mode", "port" => *port, "queue" => queue.clone(), "mode" => mode.name())
                    .set(if mode == *in_use { 1.0 } else { 0.0 });
            }
        }
        self.publish_tunnel_paths();
        metrics::gauge!("greguard_policy_generation").set(self.generation as f64);
        metrics::gauge!("greguard_policy_tunnels").set(self.policy_tunnels as f64);
        metrics::gauge!("greguard_policy_last_reload_timestamp_seconds").set(self.policy_loaded);
        let c = &total.counters;
        let mut i = 0;
        for dir in PORTS {
            for verdict in Verdict::ALL {
                for reason in Reason::ALL {
                    let (p, r, v) = (dir as usize, reason.index(), verdict as usize);
                    self.packets[i].absolute(c.packets[p][r][v]);
                    self.bytes[i].absolute(c.bytes[p][r][v]);
                    i += 1;
                }
            }
        }
        // Per-tunnel counts are indexed by the policy's tunnels: publish them only once every
        // worker runs the policy the series were registered for (right after a reload some
        // may still count for the previous one).
        if per_worker.iter().all(|w| w.generation == self.generation) {
            for (series, counts) in self.tunnels.iter().zip(&c.tunnel_packets) {
                for (s, n) in series.iter().zip(counts) {
                    s.absolute(*n);
                }
            }
        }
        let kernel_sampled: u64 = total.kernel.as_ref().map_or(0, |k| k.sampled.iter().sum());
        let samples = total.ports.iter().map(|p| p.samples).sum::<u64>() + kernel_sampled;
        let kernel_lost: u64 = total
            .kernel
            .as_ref()
            .map_or(0, |k| k.samples_lost.iter().sum());
        let lost = total.ports.iter().map(|p| p.samples_dropped).sum::<u64>() + kernel_lost;
        self.samples.absolute(samples);
        self.samples_dropped.absolute(lost);
        self.fast_lane
            .set(if total.kernel.is_some() { 1.0 } else { 0.0 });
        if let Some(k) = &total.kernel {
            for (p, series) in self.lane.iter().enumerate() {
                let values = [
                    k.judged(p),
                    k.to_user[p],
                    k.bypassed[p],
                    k.closed_dropped[p],
                    k.unserved[p],
                    k.no_target[p],
                    k.sampled[p],
                ];
                for (s, v) in series.iter().zip(values) {
                    s.absolute(v);
                }
            }
        }
        for r in &self.rings {
            let Some(w) = per_worker.get(r.worker) else {
                continue;
            };
            let p = &w.ports[r.port];
            r.rx_packets.absolute(p.rx_packets);
            r.tx_packets.absolute(p.tx_packets);
            r.kernel_oversize.absolute(p.kernel_oversize);
            r.rx_empty_polls.absolute(p.rx_empty_polls);
            r.tx_ring_full.absolute(p.tx_ring_full);
            r.fill_starved.absolute(p.fill_starved);
            r.xdp_rx_dropped.absolute(p.xdp_rx_dropped);
            r.xdp_rx_ring_full.absolute(p.xdp_rx_ring_full);
            r.xdp_rx_fill_ring_empty_descs
                .absolute(p.xdp_rx_fill_ring_empty_descs);
            r.xdp_tx_ring_empty_descs
                .absolute(p.xdp_tx_ring_empty_descs);
            r.xdp_rx_invalid_descs.absolute(p.xdp_rx_invalid_descs);
            r.xdp_tx_invalid_descs.absolute(p.xdp_tx_invalid_descs);
        }
        for f in &self.frames {
            let Some(w) = per_worker.get(f.worker) else {
                continue;
            };
            f.free.set(w.frames.free as f64);
            f.fill.set(w.frames.fill as f64);
            f.tx.set(w.frames.tx as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    /// Sets 1000 top-source series, one per millisecond, through a recorder of its own, and
    /// counts the series a render shows a second after the last one.
    fn top_series_left(pruning: bool) -> usize {
        let idle = Duration::from_millis(300);
        let recorder = PrometheusBuilder::new()
            .idle_timeout(MetricKindMask::GAUGE, Some(idle))
            .build_recorder();
        let handle = recorder.handle();
        let changed = Arc::new(AtomicBool::new(false));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let pruner = {
            let (handle, changed) = (handle.clone(), changed.clone());
            std::thread::spawn(move || {
                if pruning {
                    let task = prune(handle, changed, Duration::from_millis(100), idle);
                    let bounded =
                        async { tokio::time::timeout(Duration::from_secs(3), task).await };
                    let _ = runtime.block_on(bounded);
                }
            })
        };
        metrics::with_local_recorder(&recorder, || {
            for i in 0..1000u32 {
                top_gauge(1, IpAddr::V4(Ipv4Addr::from(i))).set(1.0);
                changed.store(true, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        std::thread::sleep(Duration::from_secs(1));
        let shown = handle
            .render()
            .lines()
            .filter(|l| l.starts_with("greguard_top_dropped_source_samples{"))
            .count();
        pruner.join().unwrap();
        shown
    }

    #[test]
    fn idle_top_source_series_are_forgotten_although_nobody_scrapes() {
        // Without the pruning renders every series stays until a scrape...
        assert_eq!(top_series_left(false), 1000);
        // ...with them, those idle for longer than the timeout are gone before any scrape.
        assert_eq!(top_series_left(true), 0);
    }
}

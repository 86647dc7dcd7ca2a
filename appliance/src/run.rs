//! `greguard run`: the appliance in the foreground.
//!
//! Loads the policy, starts the AF_XDP data path on the two ports, prints one summary line per
//! second, and on SIGINT or SIGTERM stops the workers, detaches the XDP programs and prints the
//! final counts.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Context};
use datapath::{self, DataPath, PortsSpec, Snapshot};
use validator::{Direction, Reason, Verdict};

use crate::cli::{Format, RunArgs};
use crate::exit::Failure;
use crate::exporter::Exporter;
use crate::notify::Notifier;
use crate::report;
use crate::slow_path::{self, SlowPath};

/// Runs until a stop signal (or `--duration`), then prints the final report.
pub fn run(args: &RunArgs) -> Result<(), Failure> {
    // Kept for reloads: tunnels whose text did not change are not read again.
    let mut loader = config::Loader::new();
    let loaded = loader.load_file(&args.config).map_err(Failure::input)?;
    loader.prepare_reloads();
    let ports = loaded.model.ports.clone().ok_or_else(|| {
        Failure::input(anyhow!(
            "{}: no [ports] table; `greguard run` needs ports.outside and ports.inside (the \
             interfaces facing the Internet and the concentrators)",
            args.config.display()
        ))
    })?;
    let spec = ports_spec(&ports, &loaded.model.sampling);
    let policy = loaded.policy;
    let tunnels = policy.tunnel_count();

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())
            .context("installing the SIGINT/SIGTERM handlers")
            .map_err(Failure::runtime)?;
    }
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())
        .context("installing the SIGHUP handler")
        .map_err(Failure::runtime)?;
    let mut running = loaded.model.clone();

    crate::log::init(args.verbose);
    datapath::log::route_bpf_logs(library_message);
    let mut data_path = DataPath::start(&spec, policy.clone(), |n| tracing::warn!("{n}"))
        .map_err(Failure::runtime)?;
    for b in data_path.bindings() {
        tracing::info!(
            "{} port {} queue {}: AF_XDP {} mode (worker {}, core {})",
            b.port,
            b.interface,
            b.queue,
            b.mode,
            b.worker,
            b.core
        );
    }
    let worker_cores: Vec<u32> = data_path.bindings().iter().map(|b| b.core).collect();
    if let Some(others) = datapath::cores::keep_off(&worker_cores) {
        let list: Vec<String> = others.iter().map(u32::to_string).collect();
        tracing::info!(
            "slow path (samples, pcap files, metrics) on cores {}, off the workers' cores",
            list.join(",")
        );
    }
    if data_path.fast_lane() {
        tracing::info!(
            "fast lane on: greguard's XDP program decides in the kernel what it judges as the \
             validator does (non-GRE, broken GRE headers, bad inner packets, GRE of no tunnel); \
             on failure it stays {}",
            ports.on_failure
        );
        for (port, kernel) in ["outside", "inside"].iter().zip(data_path.kernel_tunnels()) {
            tracing::info!(
                "{port}: tunnel traffic judged by the {} (tunnel_path = {})",
                if kernel {
                    "kernel path (the XDP program forwards what it judges exactly; the rest goes to the workers)"
                } else {
                    "workers (AF_XDP)"
                },
                ports.tunnel_path
            );
        }
    }
    tracing::info!(
        "forwarding between {} (outside) and {} (inside) with policy {} ({} tunnels); \
         Ctrl-C or SIGTERM stops",
        spec.outside,
        spec.inside,
        args.config.display(),
        tunnels
    );

    let mut exporter = Exporter::start(
        loaded.model.metrics.listen,
        &policy,
        data_path.bindings(),
        SystemTime::now(),
    )
    .map_err(Failure::runtime)?;
    exporter.tunnel_paths(data_path.kernel_tunnels());
    // The data path holds the policy from here; a reload frees (or recycles) it.
    drop(policy);
    tracing::info!("metrics at http://{}/metrics", loaded.model.metrics.listen);
    let mut notifier = Notifier::new();
    notifier.ready(&format!(
        "forwarding between {} and {}, policy generation 1",
        spec.outside, spec.inside
    ));
    let mut publications: Vec<u64> = vec![0; data_path.stats().len()];
    let epoch_wall = SystemTime::now()
        .checked_sub(data_path.epoch().elapsed())
        .unwrap_or_else(SystemTime::now);
    // Samples, the top-sources view, the drop log and the pcap writer thread, with bounded
    // work per pass of this loop.
    let mut slow = SlowPath::start(&loaded.model.sampling, epoch_wall).map_err(Failure::runtime)?;
    let mut samples = data_path.take_samples();
    let mut kernel_samples = data_path.kernel_samples();
    let mut next_publish = Instant::now();
    let started = Instant::now();
    let mut previous = Snapshot::new(0);
    let mut next_tick = started + Duration::from_secs(1);
    let mut queues_warned: Option<String> = None;
    let deadline = args.duration.map(|s| started + Duration::from_secs_f64(s));
    while !stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(w) = data_path.dead_worker() {
            return Err(worker_gone(w, data_path, &ports));
        }
        notifier.tick(|| {
            // Every worker published since the last ping (they do every 100 ms, idle or not).
            let now: Vec<u64> = data_path
                .stats()
                .iter()
                .map(|s| s.snapshot().publications)
                .collect();
            let progressing = now.iter().zip(&publications).all(|(n, before)| n > before);
            publications = now;
            progressing
        });
        if hup.swap(false, Ordering::Relaxed) {
            notifier.reloading();
            reload(
                &args.config,
                &mut loader,
                &mut running,
                &mut data_path,
                &mut exporter,
                &mut slow,
            );
            notifier.ready(&format!(
                "forwarding, policy generation {}",
                data_path.generation()
            ));
        }
        data_path.collect_retired();
        if let Some(spare) = data_path.take_spare_policy() {
            loader.recycle(spare);
        }
        let policy_now = data_path.policy().clone();
        slow.pass(
            &mut slow_path::sources(&mut samples, kernel_samples.as_mut()),
            &policy_now,
        );
        if Instant::now() >= next_publish {
            let per_worker: Vec<Snapshot> =
                data_path.stats().iter().map(|s| s.snapshot()).collect();
            let total = Snapshot::sum(&per_worker).with_kernel(data_path.lane_counters());
            exporter.publish(&total, &per_worker);
            exporter.publish_slow_path(&slow.top().top(TOP_SHOWN), &slow.shed());
            next_publish += METRICS_EVERY;
        }
        if Instant::now() >= next_tick {
            let unserved = data_path.unserved_queues();
            if unserved != queues_warned {
                if let Some(why) = &unserved {
                    tracing::error!(
                        "{why}: {}; restart greguard to serve them, or lower the channels \
                         with `ethtool -L`",
                        if data_path.fast_lane() {
                            "the kernel judges their frames and drops what it would hand up"
                        } else {
                            "their frames are not forwarded"
                        }
                    );
                }
                queues_warned = unserved;
            }
            let now = data_path.snapshot();
            let top = slow.top().top(TOP_SHOWN);
            let line = match args.format {
                Format::Human => second_line(started.elapsed(), &previous, &now, &top),
                Format::Kv => kv_line(started.elapsed(), &previous, &now, &top),
            };
            if !args.quiet {
                println!("{line}");
            }
            slow.tick();
            previous = now;
            next_tick += Duration::from_secs(1);
        }
    }

    notifier.stopping();
    let stats: Vec<_> = data_path.stats().to_vec();
    let bindings = data_path.bindings().to_vec();
    let policy = data_path.policy().clone();
    let keep_bypass = args.keep_bypass && data_path.fast_lane();
    data_path.keep_bypass(args.keep_bypass);
    let (reports, kernel) = data_path.stop().map_err(Failure::runtime)?;
    // The pcap writer writes what is queued and flushes (bounded wait).
    slow.stop();
    // Each worker published a last time on its way out; the sum is the final count.
    let total =
        Snapshot::sum(&stats.iter().map(|s| s.snapshot()).collect::<Vec<_>>()).with_kernel(kernel);
    print!(
        "{}",
        report::final_report(&policy, &total, &reports, &bindings, started.elapsed())
    );
    if keep_bypass {
        tracing::info!(
            "stopped; sockets closed, greguard's XDP program left attached as a bypass \
             (on_failure = {}); `greguard bypass off {} {}` removes it",
            ports.on_failure,
            spec.outside,
            spec.inside
        );
    } else {
        tracing::info!("stopped; sockets closed and XDP programs detached");
    }
    Ok(())
}

/// A worker ended on its own: its queues are no longer served. The data path stops (the fast
/// lane, when it runs, stays attached with its heartbeat stopped, so `on_failure` applies at
/// once) and greguard exits 2, for systemd to restart it.
fn worker_gone(worker: usize, mut data_path: DataPath, ports: &config::Ports) -> Failure {
    let lane = data_path.fast_lane();
    data_path.keep_bypass(lane);
    let stopped = data_path.stop();
    let meanwhile = if lane {
        format!(
            "; until greguard is back, its XDP program keeps the ports {} (on_failure)",
            ports.on_failure
        )
    } else {
        String::new()
    };
    let cause = match stopped {
        Err(e) => format!("{e}"),
        Ok(_) => format!("worker {worker} ended"),
    };
    Failure::runtime(anyhow!(
        "{cause}: its queues are no longer served, so greguard exits for its supervisor \
         (systemd) to restart it{meanwhile}"
    ))
}

/// SIGHUP: re-reads the policy, validates and compiles it here (off the data path) and hands
/// it to the workers. A policy that fails to load, that changes `[ports]` or `[metrics]`
/// (which need a restart), or whose `sampling.pcap_dir` cannot be used, is reported and
/// counted, and the running one stays. `[sampling]` applies with the policy: the rates in the
/// workers, the pcap settings in the slow path (which logs what changed).
fn reload(
    path: &std::path::Path,
    loader: &mut config::Loader,
    running: &mut config::PolicyModel,
    data_path: &mut DataPath,
    exporter: &mut Exporter,
    slow: &mut SlowPath,
) {
    let started = std::time::Instant::now();
    let keep = data_path.generation();
    let refused = |why: String, exporter: &mut Exporter| {
        tracing::error!("reload refused, generation {keep} keeps running: {why}");
        exporter.reload_failed();
    };
    let loaded = match loader.load_file(path) {
        Ok(l) => l,
        Err(e) => return refused(e.to_string(), exporter),
    };
    for (table, changed) in [
        ("[ports]", loaded.model.ports != running.ports),
        ("[metrics]", loaded.model.metrics != running.metrics),
    ] {
        if changed {
            return refused(
                format!(
                    "{}: {table} changed; restart greguard to apply it",
                    path.display()
                ),
                exporter,
            );
        }
    }
    if let Err(e) = slow.check(&loaded.model.sampling) {
        return refused(format!("{}: {e:#}", path.display()), exporter);
    }
    let policy = loaded.policy;
    let loaded_in = started.elapsed();
    match data_path.reload(policy.clone(), sampling_rates(&loaded.model.sampling)) {
        Ok(generation) => {
            let took = started.elapsed();
            tracing::info!(
                "policy reloaded from {} in {:.1} ms (load and compile {:.1} ms, apply {:.1} ms): \
                 generation {generation}, {} tunnels ({})",
                path.display(),
                took.as_secs_f64() * 1e3,
                loaded_in.as_secs_f64() * 1e3,
                (took - loaded_in).as_secs_f64() * 1e3,
                policy.tunnel_count(),
                loader.last()
            );
            exporter.reloaded(&policy, generation, SystemTime::now());
            match slow.apply(&loaded.model.sampling) {
                Ok(Some(change)) => tracing::info!("sample files: {change}"),
                Ok(None) => {}
                Err(e) => tracing::error!(
                    "sample files: the new [sampling] pcap settings could not be applied: {e:#}"
                ),
            }
            *running = loaded.model;
        }
        Err(e) => refused(e.to_string(), exporter),
    }
}

/// libxdp's messages on a machine without a BPF filesystem mounted (/sys/fs/bpf):
/// it then loads a single program without its dispatcher, which is what greguard wants anyway.
const EXPECTED_WARNINGS: [&str; 3] = [
    "No bpffs found",
    "Can't use dispatcher",
    "Falling back to loading single prog",
];

/// Where libbpf's and libxdp's messages go: into the log, warnings as warnings (but for the
/// expected ones above), the rest at debug level (`--verbose`).
fn library_message(library: &'static str, level: datapath::log::Level, message: &str) {
    let expected = EXPECTED_WARNINGS.iter().any(|w| message.contains(w));
    if level == datapath::log::Level::Warn && !expected {
        tracing::warn!(library, "{message}");
    } else {
        tracing::debug!(library, "{message}");
    }
}

/// The data path's view of `[ports]`.
fn ports_spec(p: &config::Ports, sampling: &config::Sampling) -> PortsSpec {
    PortsSpec {
        outside: p.outside.clone(),
        inside: p.inside.clone(),
        queues: match &p.queues {
            config::Queues::All => None,
            config::Queues::List(q) => Some(q.clone()),
        },
        cores: p.cores.clone(),
        mode: p.xdp_mode,
        frame_size: p.frame_size,
        ring_size: p.ring_size,
        batch_size: p.batch_size,
        sampling: sampling_rates(sampling),
        fast_lane: p.fast_lane,
        on_failure: p.on_failure,
        tunnel_path: p.tunnel_path,
    }
}

/// The workers' view of `[sampling]`.
fn sampling_rates(s: &config::Sampling) -> datapath::SamplingRates {
    datapath::SamplingRates {
        dropped: s.invalid,
        forwarded: s.forwarded,
        snaplen: s.snaplen,
    }
}

/// One line per second: packets per second per port, forwarded and dropped, and the top drop
/// reasons of that second.
fn second_line(
    elapsed: Duration,
    before: &Snapshot,
    now: &Snapshot,
    top: &[(IpAddr, u64)],
) -> String {
    use std::fmt::Write as _;
    let mut s = format!("[{:>5}s]", elapsed.as_secs());
    let mut drops: Vec<(u64, Reason)> = Vec::new();
    for dir in [Direction::FromOutside, Direction::FromInside] {
        let delta = |r: Reason, v: Verdict| {
            now.counters.packets(dir, r, v) - before.counters.packets(dir, r, v)
        };
        let fwd: u64 = Reason::ALL
            .iter()
            .map(|&r| delta(r, Verdict::Forward))
            .sum();
        let drop: u64 = Reason::ALL.iter().map(|&r| delta(r, Verdict::Drop)).sum();
        let _ = write!(
            s,
            "  {} {} pps (fwd {}, drop {})",
            dir.port(),
            fwd + drop,
            fwd,
            drop
        );
        for r in Reason::ALL {
            let n = delta(r, Verdict::Drop);
            if n > 0 {
                match drops.iter_mut().find(|(_, x)| *x == r) {
                    Some(e) => e.0 += n,
                    None => drops.push((n, r)),
                }
            }
        }
    }
    drops.sort_by_key(|d| std::cmp::Reverse(d.0));
    if !drops.is_empty() {
        s.push_str("  drops:");
        for (n, r) in drops.iter().take(4) {
            let _ = write!(s, " {} {}", r.name(), n);
        }
    }
    let _ = report::ring_alerts(&mut s, before, now);
    if !top.is_empty() {
        s.push_str("  top dropped sources:");
        for (a, n) in top.iter().take(3) {
            let _ = write!(s, " {a} {n}");
        }
    }
    s
}

/// The per-second line for scripts (the lab reads it): `stats t=SECONDS` then
/// `PORT.VERDICT.REASON=FRAMES` for every non-zero count of that second, and
/// `top=ADDR/SAMPLES,...` for the top sources of dropped GRE over the last seconds.
fn kv_line(elapsed: Duration, before: &Snapshot, now: &Snapshot, top: &[(IpAddr, u64)]) -> String {
    use std::fmt::Write as _;
    let mut s = format!("stats t={}", elapsed.as_secs());
    for dir in [Direction::FromOutside, Direction::FromInside] {
        for v in Verdict::ALL {
            for r in Reason::ALL {
                let n = now.counters.packets(dir, r, v) - before.counters.packets(dir, r, v);
                if n > 0 {
                    let _ = write!(s, " {}.{}.{}={n}", dir.port(), v.name(), r.name());
                }
            }
        }
    }
    let top: Vec<String> = top.iter().map(|(a, n)| format!("{a}/{n}")).collect();
    let _ = write!(s, " top={}", top.join(","));
    s
}

/// How often the workers' counters are copied into the metrics series.
const METRICS_EVERY: Duration = Duration::from_millis(250);

/// Sources listed in the kv line and the metrics.
const TOP_SHOWN: usize = 5;

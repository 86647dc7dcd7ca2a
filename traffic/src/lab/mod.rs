//! `greguard-gen lab` (what `make demo` runs): the real appliance on a laptop or CI machine. It
//! lives beside the generator, not in the product: the `greguard` binary links no traffic code.
//!
//! Builds three network namespaces joined by veths (outside ↔ box ↔ inside), writes the lab
//! policy, runs `greguard run` on the box's two veths with AF_XDP, and for `--seconds` drives
//! traffic with `greguard-gen`: the policy's tunnels (both ways), keepalives, ARP/ICMP/TCP/IKE/
//! ESP background, ping, and a storm of unknown, invalid and bogon GRE in the style of the
//! 2016–17 backscatter wave. It shows a live table every second and ends with a report that
//! compares, per class, what the inside received with what was sent. Everything it creates is
//! removed on the way out, also on Ctrl-C or failure.

mod policy;
mod procs;
mod table;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use traffic::netns::{Topology, INSIDE_ADDR};
use traffic::ClassCounts;

use procs::{Proc, Spawn};
use table::{BoxSecond, Live};

/// What `greguard-gen lab` is asked to do.
#[derive(Debug, clap::Args)]
pub struct LabArgs {
    /// How long the traffic runs.
    #[arg(long, default_value_t = 20)]
    pub seconds: u64,
    /// Frames per second sent from the outside (the inside replies with a tenth of it).
    #[arg(long, default_value_t = 20_000)]
    pub pps: u64,
    /// Seconds of storm in the middle of the run: unknown-peer GRE from random sources at
    /// `--storm-pps`, sent at kernel speed (BPF_PROG_RUN); 0 = no storm.
    #[arg(long, default_value_t = 5)]
    pub storm_seconds: u64,
    /// Frames per second of the storm; 0 = as fast as one CPU can.
    #[arg(long, default_value_t = 1_000_000)]
    pub storm_pps: u64,
}

/// How the lab ended, when it could run.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// What arrived is what the policy says should.
    Passed,
    /// The report shows traffic where the policy says it should not be.
    Failed,
}

/// Runs the lab. An error is a lab that could not run (no root, a missing binary, namespaces
/// that could not be made).
pub fn run(args: &LabArgs) -> anyhow::Result<Outcome> {
    let missing = datapath::link::missing_capabilities();
    if !missing.is_empty() {
        bail!(
            "the lab creates network namespaces and AF_XDP sockets and needs root (missing {}); \
             run `sudo make demo`",
            missing.join(", ")
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    for s in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(s, stop.clone()).context("installing the signal handlers")?;
    }
    let gen = std::env::current_exe().context("finding the greguard-gen binary")?;
    let exe = gen.with_file_name("greguard");
    if !exe.exists() {
        bail!(
            "{} is missing: build it with `cargo build --release --workspace` (make demo does)",
            exe.display()
        );
    }
    let dir = tempfile::Builder::new()
        .prefix("greguard-lab-")
        .tempdir()
        .context("creating the lab's directory")?;
    let prefix = format!("gl{}", std::process::id() % 100_000);
    println!(
        "greguard-gen lab: creating namespaces {prefix}-out, {prefix}-box, {prefix}-in and their veths"
    );
    let topo = Topology::create(&prefix, 1)
        .context("creating the lab's namespaces (needs iproute2 and ethtool: `make deps`)")?;
    let result = drive(args, &topo, &exe, &gen, dir.path().to_path_buf(), &stop);
    // Processes first, then the namespaces (Topology::destroy kills stragglers, too).
    drop(topo);
    println!(
        "greguard-gen lab: removed namespaces {prefix}-out, {prefix}-box, {prefix}-in and the veths"
    );
    Ok(if result? {
        Outcome::Passed
    } else {
        Outcome::Failed
    })
}

/// Everything between creating and removing the namespaces. `Ok(false)` = the report failed.
fn drive(
    args: &LabArgs,
    topo: &Topology,
    exe: &std::path::Path,
    gen: &std::path::Path,
    dir: PathBuf,
    stop: &AtomicBool,
) -> anyhow::Result<bool> {
    let policy = dir.join("lab.toml");
    std::fs::write(&policy, policy::lab_policy(&topo.box_out, &topo.box_in))
        .with_context(|| format!("writing {}", policy.display()))?;
    let policy_s = policy.to_string_lossy().into_owned();
    println!("greguard-gen lab: policy {policy_s}");

    let mut gre_box = Proc::spawn(Spawn {
        name: "greguard run",
        ns: &topo.box_ns,
        program: exe,
        args: &["run", "-c", &policy_s, "--format", "kv"],
    })?;
    let ready = gre_box.wait_for_stderr("forwarding between", Duration::from_secs(20))?;
    for line in &ready {
        println!("  {line}");
    }
    let mut mode = ready
        .iter()
        .filter(|l| l.contains(" queue "))
        .find_map(|l| {
            l.split("AF_XDP ")
                .nth(1)
                .and_then(|m| m.split(" mode").next())
        })
        .unwrap_or("?")
        .to_owned();
    if ready.iter().any(|l| l.contains("fast lane on")) {
        mode.push_str(" mode, fast lane on");
    } else {
        mode.push_str(" mode, fast lane off");
    }

    let counter = |name, ns: &str, ifname: &str| -> anyhow::Result<Proc> {
        let mut p = Proc::spawn(Spawn {
            name,
            ns,
            program: gen,
            args: &["count", "-i", ifname, "--progress"],
        })?;
        p.wait_for_stdout("ready", Duration::from_secs(5))?;
        Ok(p)
    };
    let mut count_in = counter("counter (inside)", &topo.in_ns, &topo.in_if)?;
    let mut count_out = counter("counter (outside)", &topo.out_ns, &topo.out_if)?;

    let seconds = args.seconds.to_string();
    let pps = args.pps.to_string();
    let reply_pps = (args.pps / 10).max(1).to_string();
    let mut storm = Proc::spawn(Spawn {
        name: "sender (outside)",
        ns: &topo.out_ns,
        program: gen,
        args: &[
            "send",
            "-c",
            &policy_s,
            "-i",
            &topo.out_if,
            "--pps",
            &pps,
            "--seconds",
            &seconds,
            "--progress",
        ],
    })?;
    let mut replies = Proc::spawn(Spawn {
        name: "sender (inside)",
        ns: &topo.in_ns,
        program: gen,
        args: &[
            "send",
            "-c",
            &policy_s,
            "-i",
            &topo.in_if,
            "--from",
            "inside",
            "--mix",
            "tunnel=9,keepalive=1",
            "--pps",
            &reply_pps,
            "--seconds",
            &seconds,
            "--progress",
        ],
    })?;
    let pings = (args.seconds * 5).to_string();
    let mut ping = Proc::spawn(Spawn {
        name: "ping",
        ns: &topo.out_ns,
        program: std::path::Path::new("ping"),
        args: &["-q", "-i", "0.2", "-c", &pings, "-W", "1", INSIDE_ADDR],
    })?;

    let mut live = Live::new(&topo.box_out, &topo.box_in, &mode, args.seconds);
    let started = Instant::now();
    // The storm phase: unknown-peer GRE at kernel speed in the middle of the run, from CPU 0
    // (greguard's worker runs on the cores after 0).
    let storm_seconds = args.storm_seconds.min(args.seconds.saturating_sub(2));
    let storm_at = started + Duration::from_secs((args.seconds - storm_seconds) / 2);
    let (storm_s, storm_pps) = (storm_seconds.to_string(), args.storm_pps.to_string());
    let mut blast: Option<Proc> = None;
    let mut next = started + Duration::from_secs(1);
    let mut interrupted = false;
    loop {
        std::thread::sleep(Duration::from_millis(50));
        if stop.load(Ordering::Relaxed) {
            interrupted = true;
            break;
        }
        for l in storm.stdout_lines() {
            live.sender_line(&l);
        }
        for l in count_in.stdout_lines() {
            live.inside_line(&l);
        }
        for l in gre_box.stdout_lines() {
            if let Some(s) = BoxSecond::parse(&l) {
                live.box_second(s);
            }
        }
        let _ = replies.stdout_lines();
        let _ = count_out.stdout_lines();
        if gre_box.exited() {
            bail!(
                "greguard run stopped during the lab:\n{}",
                gre_box.stderr_lines().join("\n")
            );
        }
        if storm_seconds > 0 && blast.is_none() && Instant::now() >= storm_at {
            blast = Some(Proc::spawn(Spawn {
                name: "storm (outside)",
                ns: &topo.out_ns,
                program: std::path::Path::new("taskset"),
                args: &[
                    "-c",
                    "0",
                    &gen.to_string_lossy(),
                    "blast",
                    "-i",
                    &topo.out_if,
                    "-c",
                    &policy_s,
                    "--class",
                    "unknown",
                    "--pps",
                    &storm_pps,
                    "--seconds",
                    &storm_s,
                ],
            })?);
            live.storm(true);
        }
        if blast.as_mut().is_some_and(|b| b.exited()) {
            live.storm(false);
        }
        if Instant::now() >= next {
            live.draw(started.elapsed());
            next += Duration::from_secs(1);
        }
        if storm.exited() && replies.exited() && blast.as_mut().is_none_or(|b| b.exited()) {
            break;
        }
    }
    if interrupted {
        println!("\ngreguard-gen lab: interrupted; stopping and cleaning up");
        for p in [&mut storm, &mut replies, &mut ping] {
            p.terminate();
        }
        if let Some(b) = blast.as_mut() {
            b.terminate();
        }
    }

    // Let the last frames land, then stop the counters and the box.
    std::thread::sleep(Duration::from_millis(700));
    let mut sent_out = totals(&storm.finish()?, "total sent")?;
    if let Some(b) = blast.as_mut() {
        let stormed = totals(&b.finish()?, "total sent")?;
        for (a, s) in sent_out.frames.iter_mut().zip(stormed.frames) {
            *a += s;
        }
    }
    let sent_in = totals(&replies.finish()?, "total sent")?;
    count_in.terminate();
    count_out.terminate();
    let got_in = totals(&count_in.finish()?, "total received")?;
    let got_out = totals(&count_out.finish()?, "total received")?;
    ping.terminate();
    let ping_out = ping.finish().unwrap_or_default();
    gre_box.terminate();
    let box_out = gre_box.finish()?;
    let box_err = gre_box.stderr_lines();

    println!("\n== what greguard counted (its final report)");
    for l in box_out.lines().filter(|l| !l.starts_with("stats ")) {
        println!("{l}");
    }
    println!("{}", tunnel_paths(&box_out));
    for l in box_err.iter().filter(|l| l.contains("stopped")) {
        println!("{l}");
    }
    let ping_summary = ping_out
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .unwrap_or("no ping summary")
        .to_owned();
    let ok = table::report(&sent_out, &got_in, &sent_in, &got_out, &ping_summary);
    let detached = !topo.xdp_attached(&topo.box_out) && !topo.xdp_attached(&topo.box_in);
    println!(
        "XDP programs on the box's ports after stop: {}",
        if detached {
            "none (detached)"
        } else {
            "STILL ATTACHED"
        }
    );
    Ok(ok && detached && !interrupted)
}

/// Which path carried the tunnels' frames, from greguard's final report: the kernel path's
/// forwards (`tunnel_forwarded` of its fast lane lines) and the rest of the `tunnel` forwards
/// of its verdict table (the workers').
fn tunnel_paths(report: &str) -> String {
    let number = |l: &str, key: &str| -> u64 {
        l.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.parse().ok())
            .unwrap_or(0)
    };
    let kernel: u64 = report
        .lines()
        .filter(|l| l.starts_with("fast lane "))
        .map(|l| number(l, "tunnel_forwarded="))
        .sum();
    // Verdict table rows: port, verdict, reason, frames, ...
    let all: u64 = report
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            (w.len() > 3 && w[1] == "forward" && w[2] == "tunnel")
                .then(|| w[3].parse::<u64>().ok())?
        })
        .sum();
    format!(
        "tunnel frames forwarded: {kernel} by the kernel path, {} by the workers",
        all.saturating_sub(kernel)
    )
}

/// The counts of a `greguard-gen` total line.
fn totals(out: &str, prefix: &str) -> anyhow::Result<ClassCounts> {
    let line = out
        .lines()
        .find(|l| l.starts_with(prefix))
        .ok_or_else(|| anyhow!("greguard-gen printed no {prefix:?} line:\n{out}"))?;
    Ok(ClassCounts::parse_line(line))
}

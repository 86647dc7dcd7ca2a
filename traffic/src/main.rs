//! `greguard-gen`: sends the lab's traffic classes through an interface, or counts per class
//! what arrives on one.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, TsResolution};
mod lab;

use traffic::packet::{PacketSocket, BATCH};
use traffic::{Class, ClassCounts, Mix, Side};

/// greguard's traffic generator and counter (AF_PACKET).
///
/// `send` sends valid tunnel GRE built from a policy's tunnels, keepalives, non-GRE
/// background and a storm of unknown, invalid and bogon GRE in the style of the 2016–17
/// backscatter wave. `count` counts per class what arrives. Every frame carries its class in
/// its source MAC (02:67:67:67:CC:VV), so the two sides can be compared.
#[derive(Debug, Parser)]
#[command(name = "greguard-gen", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The built-in lab (`make demo`): the real appliance between three network namespaces.
    ///
    /// Creates namespaces outside, box and inside joined by veths, runs `greguard run` (the
    /// binary beside this one) on the box's veths with AF_XDP, and drives traffic: the lab
    /// policy's tunnels both ways, keepalives, ARP/ICMP/TCP/IKE/ESP background, ping, and a
    /// storm of unknown, invalid and bogon GRE shaped like the 2016-17 backscatter wave. Shows a
    /// live table every second, then compares per class what arrived with what was sent; exits
    /// 1 when the report shows a mismatch, 2 when the lab cannot run. Removes everything it
    /// created, also on Ctrl-C. Needs root.
    Lab(lab::LabArgs),
    /// Send a weighted mix of traffic classes through an interface.
    Send(SendArgs),
    /// Count per class the frames arriving on an interface until SIGINT/SIGTERM or --seconds.
    Count {
        /// The interface to listen on.
        #[arg(short, long, value_name = "IFACE")]
        interface: String,
        /// Stop after this many seconds.
        #[arg(long)]
        seconds: Option<f64>,
        /// Also write every generated frame received to this pcap file.
        #[arg(long, value_name = "FILE")]
        pcap: Option<PathBuf>,
        /// Print the counts so far ten times a second.
        #[arg(long)]
        progress: bool,
    },
    /// Send classes at kernel speed with BPF_PROG_RUN live frames (millions of frames a
    /// second on one CPU).
    ///
    /// One template frame per class, sent over and over, each class from its own thread; for
    /// `unknown` each copy gets a random outer IPv4 source. Run it in the namespace of the
    /// interface. Needs root.
    ///
    /// Example, valid traffic at a fixed rate under a storm at the maximum rate:
    /// `greguard-gen blast -i p0 -c policy.toml --class tunnel=500000 --class unknown=0`
    Blast {
        /// The interface to send from.
        #[arg(short, long, value_name = "IFACE")]
        interface: String,
        /// The policy whose tunnels the `tunnel` class belongs to.
        #[arg(short = 'c', long = "config", value_name = "FILE")]
        config: PathBuf,
        /// A class to send: tunnel, non_gre or unknown, optionally with its own rate
        /// (`tunnel=500000`); repeat it for several classes at once.
        #[arg(long, value_name = "CLASS[=PPS]", default_value = "unknown")]
        class: Vec<String>,
        /// Frames per second of each class given without a rate; 0 = as fast as the CPU can.
        #[arg(long, default_value_t = 0)]
        pps: u64,
        /// Instead of --class: a weighted mix of every class, as fast as the CPU can, from one
        /// thread ("tunnel=30,keepalive=2,non_gre=10,unknown=40,invalid=15,bogon=3" is the
        /// lab's). Each call sends 16384 copies of one frame, so the mix holds over a run of
        /// calls, not frame by frame.
        #[arg(long, value_name = "WEIGHTS", conflicts_with = "class")]
        mix: Option<String>,
        /// Every copy of a frame whose outer IPv4 source is in this prefix leaves with a random
        /// source in it (unknown keeps its own random sources): with tunnels whose peers are
        /// consecutive addresses, traffic for all of them instead of one per template frame
        /// (`100.64.0.0/16`, as benches/scale uses it).
        #[arg(long, value_name = "PREFIX", value_parser = parse_spread)]
        spread: Option<(Ipv4Addr, u8)>,
        /// How long to send.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
    /// A bare in-kernel XDP redirect from one interface to another for --seconds: the ceiling
    /// a filter between the two is measured against. Needs root.
    Wire {
        /// Frames arriving here...
        #[arg(long, value_name = "IFACE")]
        from: String,
        /// ...leave here.
        #[arg(long, value_name = "IFACE")]
        to: String,
        /// How long the redirect stays.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Check GRE's version and RFC 2784 §2.3 must-discard bits, dropping what fails: the
        /// least a GRE filter does.
        #[arg(long)]
        gre_check: bool,
    },
    /// Count per class in XDP what arrives on an interface (and drop it) for --seconds.
    ///
    /// Far faster than `count`, and it also makes a veth accept frames redirected to it in
    /// the kernel. Needs root.
    Sink {
        /// The interface to count on.
        #[arg(short, long, value_name = "IFACE")]
        interface: String,
        /// How long to count.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
    },
}

/// How often `--progress` prints (cumulative counts, so a reader samples them when it likes).
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug, ValueEnum)]
enum From {
    Outside,
    Inside,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Lab(args) => match lab::run(&args) {
            Ok(lab::Outcome::Passed) => Ok(()),
            Ok(lab::Outcome::Failed) => {
                eprintln!(
                    "greguard-gen: the lab's report shows traffic where the policy says it \
                     should not be (see above)"
                );
                std::process::exit(1);
            }
            Err(e) => {
                eprintln!("greguard-gen: {e:#}");
                std::process::exit(2);
            }
        },
        Command::Send(args) => send(&args),
        Command::Count {
            interface,
            seconds,
            pcap,
            progress,
        } => count(&interface, seconds, pcap, progress),
        Command::Blast {
            interface,
            config,
            class,
            pps,
            mix,
            spread,
            seconds,
        } => {
            let out = Out {
                interface: &interface,
                spread,
            };
            match mix {
                Some(weights) => blast_mix(&out, &config, &weights, seconds),
                None => blast(&out, &config, &class, pps, seconds),
            }
        }
        Command::Sink { interface, seconds } => sink(&interface, seconds),
        Command::Wire {
            from,
            to,
            seconds,
            gre_check,
        } => wire(&from, &to, seconds, gre_check),
    };
    if let Err(e) = result {
        eprintln!("greguard-gen: {e:#}");
        std::process::exit(1);
    }
}

/// What `greguard-gen send` is asked to do.
#[derive(Debug, Args)]
struct SendArgs {
    /// The policy whose tunnels the valid frames belong to.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: PathBuf,
    /// The interface to send on.
    #[arg(short, long, value_name = "IFACE")]
    interface: String,
    /// Which side of the box the interface is on (orients the tunnel frames).
    #[arg(long, value_enum, default_value_t = From::Outside)]
    from: From,
    /// Frames per second in all (0 = as fast as possible).
    #[arg(long, default_value_t = 10_000)]
    pps: u64,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Stop after this many frames.
    #[arg(long)]
    count: Option<u64>,
    /// Class weights, e.g. "tunnel=30,keepalive=2,non_gre=10,unknown=40,invalid=15,bogon=3".
    #[arg(
        long,
        default_value = "tunnel=30,keepalive=2,non_gre=10,unknown=40,invalid=15,bogon=3"
    )]
    mix: String,
    /// Tag every frame with this 802.1Q VLAN id.
    #[arg(long, value_name = "VID")]
    vlan: Option<u16>,
    /// Also write every frame sent to this pcap file.
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// Seed of the frame contents.
    #[arg(long, default_value_t = 2017)]
    seed: u64,
    /// Print the counts so far ten times a second.
    #[arg(long)]
    progress: bool,
}

fn parse_weights(s: &str) -> Result<[u32; Class::COUNT]> {
    let mut w = [0u32; Class::COUNT];
    for part in s.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .with_context(|| format!("--mix: {part:?} is not class=weight"))?;
        let class = Class::from_name(k.trim()).with_context(|| {
            format!(
                "--mix: unknown class {k:?}; classes: {}",
                Class::ALL.map(Class::name).join(", ")
            )
        })?;
        w[class.index()] = v
            .trim()
            .parse()
            .with_context(|| format!("--mix: weight {v:?}"))?;
    }
    Ok(w)
}

fn stop_flag() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for s in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(s, stop.clone())?;
    }
    Ok(stop)
}

fn pcap_writer(path: &PathBuf) -> Result<PcapWriter<File>> {
    let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let header = PcapHeader {
        datalink: DataLink::ETHERNET,
        ts_resolution: TsResolution::NanoSecond,
        ..PcapHeader::default()
    };
    PcapWriter::with_header(file, header).with_context(|| format!("writing {}", path.display()))
}

fn write_pcap(w: &mut PcapWriter<File>, frame: &[u8]) -> Result<()> {
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let len = u32::try_from(frame.len()).context("a frame too long for pcap")?;
    w.write_packet(&PcapPacket::new(ts, len, frame))?;
    Ok(())
}

fn send(a: &SendArgs) -> Result<()> {
    let loaded = config::load_file(&a.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let weights = parse_weights(&a.mix)?;
    let side = match a.from {
        From::Outside => Side::Outside,
        From::Inside => Side::Inside,
    };
    let mix = Mix::new(loaded.policy.specs(), side, weights, a.vlan, a.seed);
    if mix.cycle_len() == 0 {
        bail!(
            "nothing to send: the mix is empty for this policy (no usable tunnel or all weights 0)"
        );
    }
    let socket = PacketSocket::open(&a.interface)
        .with_context(|| format!("opening a packet socket on {}", a.interface))?;
    let mut pcap = a.pcap.as_ref().map(pcap_writer).transpose()?;
    let stop = stop_flag()?;
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(a.seconds);
    let limit = a.count.unwrap_or(u64::MAX);
    let mut sent = ClassCounts::default();
    let mut next = 0usize;
    let mut total = 0u64;
    let mut last_line = start;
    let mut batch: Vec<&[u8]> = Vec::with_capacity(BATCH);
    let mut classes: Vec<Class> = Vec::with_capacity(BATCH);
    while !stop.load(Ordering::Relaxed) && total < limit {
        let now = Instant::now();
        if now >= until {
            break;
        }
        if a.pps > 0 {
            // Pace: never ahead of pps × elapsed.
            let allowed = (now - start).as_secs_f64() * a.pps as f64;
            if total as f64 >= allowed {
                let wait = (total as f64 + 1.0 - allowed) / a.pps as f64;
                std::thread::sleep(Duration::from_secs_f64(wait.min(0.01)));
                continue;
            }
        }
        let room = if a.pps > 0 {
            // A float `as` saturates (no wrap), as a count of frames allowed should.
            #[allow(clippy::cast_possible_truncation)]
            let allowed = ((now - start).as_secs_f64() * a.pps as f64) as u64;
            usize::try_from(allowed.saturating_sub(total))
                .unwrap_or(usize::MAX)
                .clamp(1, BATCH)
        } else {
            BATCH
        };
        let room = room.min(usize::try_from(limit - total).unwrap_or(usize::MAX));
        batch.clear();
        classes.clear();
        for i in 0..room {
            if let Some((class, frame)) = mix.frame(next + i) {
                batch.push(frame);
                classes.push(class);
            }
        }
        let n = socket.send_batch(&batch)?;
        for (class, frame) in classes.iter().zip(&batch).take(n) {
            sent.add(*class, frame.len());
            if let Some(w) = pcap.as_mut() {
                write_pcap(w, frame)?;
            }
        }
        next += n;
        total += n as u64;
        if a.progress && now.duration_since(last_line) >= PROGRESS_EVERY {
            println!("t={} sent {}", (now - start).as_secs(), sent.line());
            last_line = now;
        }
    }
    println!("total sent {}", sent.line());
    Ok(())
}

fn count(
    interface: &str,
    seconds: Option<f64>,
    pcap: Option<PathBuf>,
    progress: bool,
) -> Result<()> {
    let socket = PacketSocket::open(interface)
        .with_context(|| format!("opening a packet socket on {interface}"))?;
    let mut pcap = pcap.as_ref().map(pcap_writer).transpose()?;
    let stop = stop_flag()?;
    let start = Instant::now();
    let until = seconds.map(|s| start + Duration::from_secs_f64(s));
    let mut bufs = vec![[0u8; 2048]; BATCH];
    let mut got = Vec::with_capacity(BATCH);
    let mut received = ClassCounts::default();
    let mut other = 0u64;
    let mut dropped = socket.drops();
    let mut last_line = start;
    // Say when the socket is open, so a caller can start sending.
    println!("ready {interface}");
    while !stop.load(Ordering::Relaxed) && until.is_none_or(|u| Instant::now() < u) {
        socket.recv_batch(&mut bufs, &mut got, 100)?;
        for (buf, &(len, incoming)) in bufs.iter().zip(&got) {
            if !incoming {
                continue;
            }
            let frame = &buf[..len.min(buf.len())];
            match Class::of_frame(frame) {
                Some(class) => {
                    received.add(class, len);
                    if let Some(w) = pcap.as_mut() {
                        write_pcap(w, frame)?;
                    }
                }
                None => other += 1,
            }
        }
        let now = Instant::now();
        if progress && now.duration_since(last_line) >= PROGRESS_EVERY {
            println!(
                "t={} received {} other={other}",
                (now - start).as_secs(),
                received.line()
            );
            last_line = now;
        }
    }
    // Frames the kernel dropped before this counter could read them (its socket buffer was
    // full): any class, so a comparison with what was sent must allow for them.
    dropped += socket.drops();
    println!(
        "total received {} other={other} dropped={dropped}",
        received.line()
    );
    Ok(())
}

/// `CLASS` or `CLASS=PPS` of `blast --class`; a class without a rate gets `pps`.
fn blast_class(arg: &str, pps: u64) -> Result<(Class, u64)> {
    let (name, rate) = match arg.split_once('=') {
        Some((name, rate)) => (
            name,
            rate.parse()
                .with_context(|| format!("--class {arg}: the rate must be frames per second"))?,
        ),
        None => (arg, pps),
    };
    let class = Class::from_name(name)
        .filter(|c| matches!(c, Class::Tunnel | Class::NonGre | Class::Unknown))
        .ok_or_else(|| {
            anyhow::anyhow!("--class {arg}: the class must be tunnel, non_gre or unknown")
        })?;
    Ok((class, rate))
}

/// Where `blast` sends, and the prefix it spreads sources over.
struct Out<'a> {
    interface: &'a str,
    spread: Option<(Ipv4Addr, u8)>,
}

/// `--spread`: an IPv4 prefix.
fn parse_spread(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (net, len) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not an IPv4 prefix such as 100.64.0.0/16"))?;
    let net: Ipv4Addr = net.parse().map_err(|e| format!("{net:?}: {e}"))?;
    match len.parse::<u8>() {
        Ok(len) if len <= 32 => Ok((net, len)),
        _ => Err(format!("{len:?} is not a prefix length 0-32")),
    }
}

fn blast(
    out: &Out,
    config: &std::path::Path,
    classes: &[String],
    pps: u64,
    seconds: f64,
) -> Result<()> {
    let streams = classes
        .iter()
        .map(|c| blast_class(c, pps))
        .collect::<Result<Vec<_>>>()?;
    let loaded = config::load_file(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut frames = Vec::new();
    for &(class, rate) in &streams {
        let mut weights = [0u32; Class::COUNT];
        weights[class.index()] = 1;
        let mix = Mix::new(loaded.policy.specs(), Side::Outside, weights, None, 1);
        // An untagged IPv4 frame of the class (the randomised source needs one).
        let frame = mix
            .pool(class)
            .iter()
            .find(|f| untagged_ipv4(f))
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no IPv4 {class} frame for this policy"))?;
        frames.push((class, rate, frame));
    }
    let blaster = blaster(out)?;
    let sender = blaster.sender();
    // A paced class runs ahead of a full-speed one sharing its CPU; alone it needs no favour.
    let beside_full_speed = frames.iter().any(|(_, rate, _)| *rate == 0);
    let started = Instant::now();
    let results = std::thread::scope(|scope| {
        let threads: Vec<_> = frames
            .iter()
            .map(|(_, rate, frame)| {
                scope.spawn(move || {
                    if *rate > 0 && beside_full_speed {
                        traffic::blast::favour_this_thread();
                    }
                    sender.run(frame, *rate, seconds)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a blast thread panicked"))
            .collect::<std::io::Result<Vec<u64>>>()
    })?;
    let mut counts = ClassCounts::default();
    for ((class, _, _), sent) in frames.iter().zip(&results) {
        counts.frames[class.index()] += sent;
    }
    print_sent(&counts, started.elapsed().as_secs_f64());
    Ok(())
}

/// The blaster for `out`, with the program held in the dispatcher (or a notice why not).
fn blaster(out: &Out) -> Result<traffic::blast::Blaster> {
    let interface = out.interface;
    let blaster = traffic::blast::Blaster::new(interface, &[Class::Unknown])
        .with_context(|| format!("loading the blast program for {interface} (needs root)"))?;
    if let Some((net, len)) = out.spread {
        blaster.spread(net, len).context("configuring --spread")?;
    }
    if !blaster.held() {
        eprintln!(
            "greguard-gen: notice: loopback already has an XDP program, so every send waits \
             for the kernel to swap the XDP dispatcher: slower, and burstier when paced"
        );
    }
    Ok(blaster)
}

/// `total sent ...` and a `rate CLASS N pps` line per class sent.
fn print_sent(counts: &ClassCounts, secs: f64) {
    println!("total sent {}", counts.line());
    for class in Class::ALL {
        let sent = counts.frames[class.index()];
        if sent > 0 {
            println!(
                "rate {class} {:.0} pps over {secs:.2} s",
                sent as f64 / secs
            );
        }
    }
}

/// Copies of one frame per BPF_PROG_RUN call in `blast --mix`: enough to amortise the page
/// pool each call sets up and tears down.
const MIX_CHUNK: u32 = 16_384;

/// An untagged IPv4 frame: the blast program randomises such a frame's source in place.
fn untagged_ipv4(frame: &[u8]) -> bool {
    frame.len() > 14 && frame[12..14] == [0x08, 0x00]
}

/// One class of `blast --mix`.
struct MixClass<'a> {
    class: Class,
    weight: i64,
    frames: Vec<&'a [u8]>,
    /// The frame to send next.
    next: usize,
    /// Smooth weighted round-robin credit.
    credit: i64,
}

/// `blast --mix`: every class of the mix at kernel speed, one frame per call, the classes
/// interleaved by smooth weighted round-robin and each class's frames (sizes, tunnels) in turn.
fn blast_mix(out: &Out, config: &std::path::Path, weights: &str, seconds: f64) -> Result<()> {
    let weights = parse_weights(weights)?;
    let loaded = config::load_file(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mix = Mix::new(loaded.policy.specs(), Side::Outside, weights, None, 2017);
    // Per class: its frames (copies of `unknown` frames get a random IPv4 source, so only its
    // untagged IPv4 ones), sent in turn, the classes chosen by smooth weighted round-robin so
    // that any run of calls holds them in proportion.
    let mut classes: Vec<MixClass> = Class::ALL
        .iter()
        .filter(|c| weights[c.index()] > 0)
        .map(|&class| MixClass {
            class,
            weight: i64::from(weights[class.index()]),
            frames: mix
                .pool(class)
                .iter()
                .filter(|f| class != Class::Unknown || untagged_ipv4(f))
                .map(Vec::as_slice)
                .collect(),
            next: 0,
            credit: 0,
        })
        .filter(|c| !c.frames.is_empty())
        .collect();
    let total: i64 = classes.iter().map(|c| c.weight).sum();
    if classes.is_empty() {
        bail!("nothing to send: the mix is empty for this policy");
    }
    let blaster = blaster(out)?;
    let sender = blaster.sender();
    let mut counts = ClassCounts::default();
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(seconds);
    while Instant::now() < end {
        for c in classes.iter_mut() {
            c.credit += c.weight;
        }
        let Some(pick) = classes.iter_mut().max_by_key(|c| c.credit) else {
            break;
        };
        pick.credit -= total;
        let frame = pick.frames[pick.next % pick.frames.len()];
        pick.next += 1;
        sender.send(frame, MIX_CHUNK)?;
        counts.frames[pick.class.index()] += u64::from(MIX_CHUNK);
    }
    print_sent(&counts, started.elapsed().as_secs_f64());
    Ok(())
}

fn sink(interface: &str, seconds: f64) -> Result<()> {
    let sink = traffic::blast::Sink::attach(interface)
        .with_context(|| format!("attaching the sink to {interface} (needs root)"))?;
    println!("ready {interface}");
    std::thread::sleep(Duration::from_secs_f64(seconds));
    let counts = sink.counts()?;
    println!("total received {}", counts.line());
    Ok(())
}

fn wire(from: &str, to: &str, seconds: f64, gre_check: bool) -> Result<()> {
    let _wire = traffic::blast::Wire::attach(from, to, gre_check)
        .with_context(|| format!("attaching a redirect {from} -> {to} (needs root)"))?;
    println!("wire {from} -> {to}");
    std::thread::sleep(Duration::from_secs_f64(seconds));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blast_class_takes_its_own_rate_or_the_default_one() {
        assert_eq!(
            blast_class("tunnel=500000", 7).unwrap(),
            (Class::Tunnel, 500_000)
        );
        assert_eq!(blast_class("unknown", 7).unwrap(), (Class::Unknown, 7));
        assert_eq!(blast_class("non_gre=0", 7).unwrap(), (Class::NonGre, 0));
    }

    #[test]
    fn a_blast_class_outside_the_three_or_with_a_bad_rate_is_refused() {
        for bad in [
            "invalid",
            "bogon=5",
            "tunnel=fast",
            "tunnel=",
            "=5",
            "tunnel=-1",
        ] {
            assert!(blast_class(bad, 0).is_err(), "{bad} was taken");
        }
    }
}

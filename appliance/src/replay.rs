//! `greguard replay`: the data-path classifier over a capture, with a table by verdict and
//! reason, optional pcaps of forwarded and dropped frames and a per-frame CSV.
//!
//! Every frame is classified as arriving on one port: its pcapng interface's (`--port`), else
//! the one `--from` names, or with `--from auto` the one its outer addresses say.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, Context};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, TsResolution};
use validator::{Classifier, Counters, Decision, Direction, Policy, Verdict};

use crate::capture::{Capture, Frame};
use crate::cli::{Port, ReplayArgs};
use crate::exit::Failure;
use crate::{report, side};

/// The largest frame written to output pcaps (their snaplen).
const OUT_SNAPLEN: u32 = 262_144;

/// Runs the replay and prints the summary table.
pub fn run(opts: &ReplayArgs) -> Result<(), Failure> {
    let loaded = config::load_file(&opts.config).map_err(Failure::input)?;
    let policy = &loaded.policy;
    let mut capture = Capture::open(&opts.input).map_err(Failure::input)?;
    // Before any output is created: a --port the capture cannot have ends the replay.
    let sides = Sides::new(opts, &capture)?;
    let mut forward = opts.forward.as_deref().map(PcapOut::create).transpose()?;
    let mut drop = opts.drop.as_deref().map(PcapOut::create).transpose()?;
    let mut csv = opts.verdicts.as_deref().map(CsvOut::create).transpose()?;

    let mut counters = Counters::new(policy.tunnel_count());
    let mut classifier: Option<Classifier> = None;
    let mut cut = 0u64;
    while let Some(frame) = capture.next_frame() {
        let frame = frame.map_err(Failure::input)?;
        let dir = sides.of(&frame, policy);
        let frame_no = frame.number;
        cut += u64::from(frame.cut);
        // Policers start full at the first frame's time, as a box started just before it.
        let classifier = classifier.get_or_insert_with(|| Classifier::new(policy, frame.ts_ns));
        let mut decision = [Decision::default()];
        classifier.classify_batch(policy, frame.ts_ns, dir, &[&frame.data[..]], &mut decision);
        let d = decision[0];
        counters.record(dir, d, frame.orig_len as usize);
        let out = match d.verdict {
            Verdict::Forward => forward.as_mut(),
            Verdict::Drop => drop.as_mut(),
        };
        if let Some(out) = out {
            out.write(frame.ts_ns, frame.orig_len, &frame.data)?;
        }
        if let Some(csv) = csv.as_mut() {
            csv.write(frame_no, dir, d, policy)?;
        }
    }
    for out in [forward, drop].into_iter().flatten() {
        out.finish()?;
    }
    if let Some(csv) = csv {
        csv.finish()?;
    }

    print!("{}", summary(opts, &sides, policy, &counters));
    if capture.skipped() > 0 {
        println!(
            "\nnote: {} frames of interfaces with other link types (loopback, wireless, ...) were skipped.",
            capture.skipped()
        );
    }
    if cut > 0 {
        println!(
            "\nnote: {cut} frames were cut short by the capture's snap length; the box sees whole frames, \
             so they classify as truncated here. Capture with -s 0 for exact results."
        );
    }
    Ok(())
}

/// Which port each frame arrived on: the one `--port` gives its interface, else `--from`'s.
struct Sides {
    /// `--port`: interface name → port.
    interfaces: Vec<(String, Direction)>,
    /// `--from`, for frames of interfaces `--port` does not name.
    from: Port,
}

impl Sides {
    /// Checks `--port` against the capture's interfaces: a name the capture does not have is a
    /// typo, which would otherwise silently classify that interface from the wrong side.
    fn new(opts: &ReplayArgs, capture: &Capture) -> Result<Sides, Failure> {
        let mut sides = Sides {
            interfaces: Vec::new(),
            from: opts.from,
        };
        if opts.ports.is_empty() {
            return Ok(sides);
        }
        let input = opts.input.display();
        let Some(names) = capture.interface_names().map_err(Failure::input)? else {
            return Err(Failure::input(anyhow!(
                "{input}: --port needs a pcapng capture: pcap has no interface names \
                 (use --from, or one capture per port)"
            )));
        };
        for p in &opts.ports {
            if !names.contains(&p.name) {
                let have = if names.is_empty() {
                    "its interfaces have no names".to_string()
                } else {
                    format!("its interfaces are {}", names.join(", "))
                };
                return Err(Failure::input(anyhow!(
                    "{input}: --port {}: the capture has no interface {} ({have})",
                    p.name,
                    p.name
                )));
            }
            match sides.interfaces.iter().find(|(n, _)| *n == p.name) {
                Some((_, was)) if *was != p.port => {
                    return Err(Failure::input(anyhow!(
                        "--port {} is given both as outside and as inside",
                        p.name
                    )));
                }
                Some(_) => {}
                None => sides.interfaces.push((p.name.clone(), p.port)),
            }
        }
        Ok(sides)
    }

    /// The port `frame` arrived on.
    fn of(&self, frame: &Frame<'_>, policy: &Policy) -> Direction {
        let by_interface = frame.interface.as_deref().and_then(|name| {
            self.interfaces
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, dir)| *dir)
        });
        by_interface
            .or_else(|| direction(self.from))
            .unwrap_or_else(|| side::arrival(&frame.data, policy))
    }

    /// How the ports were chosen, for the summary's first line.
    fn describe(&self) -> String {
        let from = match direction(self.from) {
            Some(dir) => format!("arrived on the {} port", dir.port()),
            None => "each on the port its tunnel addresses say".to_string(),
        };
        if self.interfaces.is_empty() {
            return from;
        }
        let ports: Vec<String> = self
            .interfaces
            .iter()
            .map(|(name, dir)| format!("{name} on the {} port", dir.port()))
            .collect();
        format!("{}; frames of other interfaces {from}", ports.join(", "))
    }
}

/// The direction a fixed port stands for; `None` for `auto`, which is chosen frame by frame.
fn direction(port: Port) -> Option<Direction> {
    match port {
        Port::Outside => Some(Direction::FromOutside),
        Port::Inside => Some(Direction::FromInside),
        Port::Auto => None,
    }
}

/// A pcap file of frames (Ethernet, nanosecond timestamps, original lengths).
struct PcapOut {
    path: PathBuf,
    writer: PcapWriter<BufWriter<File>>,
}

impl PcapOut {
    fn create(path: &Path) -> Result<PcapOut, Failure> {
        let file = File::create(path)
            .with_context(|| format!("{}: cannot create output capture", path.display()))
            .map_err(Failure::runtime)?;
        let header = PcapHeader {
            snaplen: OUT_SNAPLEN,
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::NanoSecond,
            ..PcapHeader::default()
        };
        let writer = PcapWriter::with_header(BufWriter::new(file), header)
            .with_context(|| format!("{}: cannot write output capture", path.display()))
            .map_err(Failure::runtime)?;
        Ok(PcapOut {
            path: path.to_owned(),
            writer,
        })
    }

    fn write(&mut self, ts_ns: u64, orig_len: u32, data: &[u8]) -> Result<(), Failure> {
        let data = data.get(..OUT_SNAPLEN as usize).unwrap_or(data);
        // A pcap record holds 32-bit seconds; later times (a corrupt pcapng timestamp) are clamped.
        let ts = Duration::from_nanos(ts_ns).min(Duration::new(u64::from(u32::MAX), 999_999_999));
        let packet = PcapPacket::new(ts, orig_len, data);
        self.writer
            .write_packet(&packet)
            .with_context(|| format!("{}: cannot write output capture", self.path.display()))
            .map_err(Failure::runtime)?;
        Ok(())
    }

    fn finish(self) -> Result<(), Failure> {
        let path = self.path;
        self.writer
            .into_writer()
            .flush()
            .with_context(|| format!("{}: cannot write output capture", path.display()))
            .map_err(Failure::runtime)
    }
}

/// The per-frame verdict file.
struct CsvOut {
    path: PathBuf,
    writer: BufWriter<File>,
}

impl CsvOut {
    fn create(path: &Path) -> Result<CsvOut, Failure> {
        let file = File::create(path)
            .with_context(|| format!("{}: cannot create verdict file", path.display()))
            .map_err(Failure::runtime)?;
        let mut out = CsvOut {
            path: path.to_owned(),
            writer: BufWriter::new(file),
        };
        out.line(format_args!("frame,port,verdict,reason,tunnel"))?;
        Ok(out)
    }

    fn write(
        &mut self,
        frame: u64,
        dir: Direction,
        d: Decision,
        policy: &Policy,
    ) -> Result<(), Failure> {
        let name = policy.tunnel_name(d.tunnel);
        let name = csv_field(name);
        let port = dir.port();
        self.line(format_args!(
            "{frame},{port},{},{},{name}",
            d.verdict, d.reason
        ))
    }

    fn line(&mut self, args: std::fmt::Arguments<'_>) -> Result<(), Failure> {
        writeln!(self.writer, "{args}")
            .with_context(|| format!("{}: cannot write verdict file", self.path.display()))
            .map_err(Failure::runtime)
    }

    fn finish(mut self) -> Result<(), Failure> {
        self.writer
            .flush()
            .with_context(|| format!("{}: cannot write verdict file", self.path.display()))
            .map_err(Failure::runtime)
    }
}

/// Quotes a CSV field when it needs it (RFC 4180 §2).
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

/// The table printed at the end: one row per (port, verdict, reason) seen (a port's shares are of
/// that port's frames), the totals of both ports, then per-tunnel counts.
fn summary(opts: &ReplayArgs, sides: &Sides, policy: &Policy, c: &Counters) -> String {
    use std::fmt::Write as _;
    let total = c.total();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} frames from {} ({}), policy {}\n",
        total,
        opts.input.display(),
        sides.describe(),
        opts.config.display()
    );
    let _ = writeln!(s, "{}", report::verdict_header("port"));
    let ports = [Direction::FromOutside, Direction::FromInside];
    for dir in ports {
        report::verdict_rows(&mut s, dir.port(), c, dir);
    }
    let forwarded: u64 = ports.iter().map(|&dir| report::forwarded(c, dir)).sum();
    for (label, n) in [("forwarded", forwarded), ("dropped", total - forwarded)] {
        let _ = writeln!(
            s,
            "{:<34} {:>12} {:>6.1}%",
            label,
            n,
            report::percent(n, total)
        );
    }
    report::tunnel_rows(&mut s, policy, c);
    s
}

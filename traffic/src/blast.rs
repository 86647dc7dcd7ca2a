//! Kernel-speed traffic with BPF_PROG_RUN live frames (the technique of xdp-trafficgen): the
//! kernel runs a tiny XDP program on a template frame `repeat` times and transmits each run
//! out of an interface, tens of millions of frames a second on one CPU where a packet socket
//! manages two million. And the counting sink for the receiving end.
//!
//! Both need root (CAP_BPF, CAP_NET_ADMIN); the blaster must run in the network namespace of
//! the interface it sends from.

use std::ffi::CString;
use std::io;
use std::time::{Duration, Instant};

use fastpath::afxdp::bpf;

use crate::class::{Class, ClassCounts};

static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/blast.bpf.o"));

/// Classes the sink counts (the last slot: frames that are not ours).
const SINK_CLASSES: usize = 16;

/// A loaded copy of the programs.
struct Programs(bpf::Object);

impl Programs {
    fn load() -> io::Result<Programs> {
        let mut object = bpf::Object::open(OBJECT)?;
        object.load()?;
        Ok(Programs(object))
    }

    fn prog(&self, name: &str) -> io::Result<i32> {
        self.0
            .program(name)
            .ok_or_else(|| io::Error::other(format!("no program {name}")))
    }

    fn map(&self, name: &str) -> io::Result<i32> {
        self.0
            .map(name)
            .ok_or_else(|| io::Error::other(format!("no map {name}")))
    }

    /// Sets `blast_cfg`: where frames go, and whether their IPv4 source is randomised.
    fn configure(&self, ifindex: u32, randomize: bool) -> io::Result<()> {
        let cfg: [u32; 2] = [ifindex, u32::from(randomize)];
        // SAFETY: blast_cfg is an array (u32 key) of `struct blast_cfg`, two u32s.
        unsafe { bpf::update(self.map("blast_cfg")?, &0u32, &cfg) }
    }

    /// Attaches `prog` to `interface` in native mode; returns the ifindex.
    fn attach(&self, prog: &str, interface: &str) -> io::Result<u32> {
        let ifindex = ifindex(interface)?;
        bpf::attach(ifindex, self.prog(prog)?, bpf::XDP_FLAGS_DRV_MODE)?;
        Ok(ifindex)
    }
}

fn ifindex(name: &str) -> io::Result<u32> {
    let c = CString::new(name).map_err(|_| io::Error::other("bad interface name"))?;
    // SAFETY: a NUL-terminated name.
    match unsafe { libc::if_nametoindex(c.as_ptr()) } {
        0 => Err(io::Error::other(format!("no interface {name}"))),
        i => Ok(i),
    }
}

/// Sends one template frame over and over from an interface at kernel speed.
pub struct Blaster {
    /// Keeps the program loaded.
    _programs: Programs,
    prog: i32,
    frame: Vec<u8>,
}

impl Blaster {
    /// A blaster of `frame` out of `interface`; with `randomize`, each copy gets a random
    /// outer IPv4 source (the frame must be untagged IPv4).
    pub fn new(interface: &str, frame: Vec<u8>, randomize: bool) -> io::Result<Blaster> {
        let programs = Programs::load()?;
        programs.configure(ifindex(interface)?, randomize)?;
        Ok(Blaster {
            prog: programs.prog("gg_blast")?,
            _programs: programs,
            frame,
        })
    }

    /// Transmits `count` copies (one BPF_PROG_RUN call).
    pub fn send(&mut self, count: u32) -> io::Result<()> {
        bpf::run_live_frames(self.prog, &self.frame, count, 64)
    }

    /// Sends for `seconds` at `pps` frames per second (0 = as fast as the CPU allows), in
    /// slices of a millisecond. Returns the frames sent.
    pub fn run(&mut self, pps: u64, seconds: f64) -> io::Result<u64> {
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(seconds);
        let mut sent = 0u64;
        while Instant::now() < end {
            let chunk = if pps == 0 {
                65_536
            } else {
                let due = (start.elapsed().as_secs_f64() * pps as f64) as u64;
                if due <= sent {
                    std::thread::sleep(Duration::from_micros(200));
                    continue;
                }
                (due - sent).min(65_536) as u32
            };
            self.send(chunk)?;
            sent += u64::from(chunk);
        }
        Ok(sent)
    }
}

/// Counts frames per traffic class in XDP on the receiving end host, and drops them.
pub struct Sink {
    programs: Programs,
    ifindex: u32,
}

impl Sink {
    /// Attaches the sink to `interface` (native XDP; this also lets frames redirected into the
    /// veth's peer be delivered).
    pub fn attach(interface: &str) -> io::Result<Sink> {
        let programs = Programs::load()?;
        let ifindex = programs.attach("gg_sink", interface)?;
        Ok(Sink { programs, ifindex })
    }

    /// Frames counted so far, per class (sums over CPUs).
    pub fn counts(&self) -> io::Result<ClassCounts> {
        let fd = self.programs.map("sink_counts")?;
        let mut c = ClassCounts::default();
        let mut values = vec![0u64; bpf::possible_cpus()];
        for class in Class::ALL {
            // SAFETY: sink_counts holds one u64 per CPU and `values` one per possible CPU.
            if unsafe { bpf::lookup_percpu(fd, class as u32, &mut values) } {
                c.frames[class.index()] = values.iter().sum();
            }
        }
        Ok(c)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        bpf::detach(self.ifindex, bpf::XDP_FLAGS_DRV_MODE);
    }
}

/// A bare in-kernel redirect from one interface to another: the ceiling a filter between them
/// is measured against. Detached when dropped.
pub struct Wire {
    _programs: Programs,
    ifindex: u32,
}

impl Wire {
    pub fn attach(from: &str, to: &str) -> io::Result<Wire> {
        let programs = Programs::load()?;
        programs.configure(ifindex(to)?, false)?;
        let ifindex = programs.attach("gg_wire", from)?;
        Ok(Wire {
            _programs: programs,
            ifindex,
        })
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        bpf::detach(self.ifindex, bpf::XDP_FLAGS_DRV_MODE);
    }
}

const _: () = assert!(Class::COUNT < SINK_CLASSES);

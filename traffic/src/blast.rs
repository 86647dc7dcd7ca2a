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

use datapath::bpf;

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

    /// Sets `blast_cfg`: where frames go, the classes (a bit each) whose IPv4 source is
    /// randomised, and the prefix other sources are spread over (network, host bits).
    fn configure(&self, ifindex: u32, randomize: u32, spread: (u32, u32)) -> io::Result<()> {
        let cfg: [u32; 4] = [ifindex, randomize, spread.0, spread.1];
        // SAFETY: blast_cfg is an array (u32 key) of `struct blast_cfg`, four u32s.
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

/// Sends template frames over and over from an interface at kernel speed.
pub struct Blaster {
    /// Keeps the program loaded.
    programs: Programs,
    /// Where frames go, and the classes whose source is randomised.
    ifindex: u32,
    randomize: u32,
    prog: i32,
    /// The loopback device the program is held on (see [`hold_in_dispatcher`]), if it is.
    held_on: Option<u32>,
}

/// `XDP_FLAGS_UPDATE_IF_NOEXIST`: attach only where no program is.
const XDP_FLAGS_UPDATE_IF_NOEXIST: u32 = 1;

/// Keeps `prog` in the kernel's XDP dispatcher for as long as the blaster lives, by attaching
/// it (generic mode) to this namespace's loopback device, where it passes every frame that is
/// not one of ours (it checks the class MAC). Without it each BPF_PROG_RUN call adds the
/// program to the dispatcher and takes it out again, and each change waits for an RCU grace
/// period: on a 2-vCPU VM that left the sending CPU idle 60 % of the time, and made a paced
/// sender bursty. Returns the ifindex held on, or None when loopback already has a program
/// (sending still works, only slower).
fn hold_in_dispatcher(prog: i32) -> Option<u32> {
    let lo = ifindex("lo").ok()?;
    bpf::attach(
        lo,
        prog,
        bpf::XDP_FLAGS_SKB_MODE | XDP_FLAGS_UPDATE_IF_NOEXIST,
    )
    .ok()
    .map(|()| lo)
}

impl Blaster {
    /// A blaster out of `interface`. Copies of frames of the classes in `randomize` get a
    /// random outer IPv4 source (such frames must be untagged IPv4).
    pub fn new(interface: &str, randomize: &[Class]) -> io::Result<Blaster> {
        let programs = Programs::load()?;
        let mask = randomize.iter().fold(0u32, |m, c| m | 1 << c.index());
        let ifindex = ifindex(interface)?;
        programs.configure(ifindex, mask, (0, 0))?;
        let prog = programs.prog("gg_blast")?;
        Ok(Blaster {
            prog,
            programs,
            ifindex,
            randomize: mask,
            held_on: hold_in_dispatcher(prog),
        })
    }

    /// From now on, every copy of an untagged IPv4 frame whose source is in `net/len` (and
    /// whose class is not randomised) leaves with a random source in that prefix: traffic for
    /// many tunnels whose peers are consecutive addresses, from one template frame.
    pub fn spread(&self, net: std::net::Ipv4Addr, len: u8) -> io::Result<()> {
        let host = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
        self.programs
            .configure(self.ifindex, self.randomize, (u32::from(net) & !host, host))
    }

    /// Whether the program is held in the XDP dispatcher (full speed, smooth pacing).
    pub fn held(&self) -> bool {
        self.held_on.is_some()
    }

    /// A handle that sends through this blaster, one per sending thread.
    pub fn sender(&self) -> Sender<'_> {
        Sender {
            prog: self.prog,
            _blaster: std::marker::PhantomData,
        }
    }
}

/// Gives the calling thread the highest share of its CPU (nice -19), so that a paced stream
/// keeps its rate when a stream at the maximum rate shares the CPU: the paced thread sleeps
/// most of the time and, once due, runs ahead of the other. Without the privilege to raise
/// it, the thread stays as it is.
pub fn favour_this_thread() {
    // SAFETY: gettid and setpriority take no pointers; PRIO_PROCESS with a thread id sets that
    // thread's nice value on Linux.
    unsafe {
        let tid = libc::gettid() as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, -19);
    }
}

/// How often a paced sender sends. Each BPF_PROG_RUN call sets up and tears down a page pool,
/// which costs as much as sending thousands of frames (measured: two thirds of the sending
/// CPU with a call per millisecond at 0.5 Mpps), so a paced stream sends a slice's worth of
/// frames in one call, a burst at kernel speed, once per slice.
pub const SLICE: Duration = Duration::from_millis(4);

/// Sends through a [`Blaster`]; any number may run at once, from different threads.
#[derive(Clone, Copy)]
pub struct Sender<'a> {
    prog: i32,
    /// The blaster (and so the program) outlives the sender.
    _blaster: std::marker::PhantomData<&'a ()>,
}

impl Sender<'_> {
    /// Transmits `count` copies of `frame` (one BPF_PROG_RUN call).
    pub fn send(&self, frame: &[u8], count: u32) -> io::Result<()> {
        bpf::run_live_frames(self.prog, frame, count, 64)
    }

    /// Sends `frame` for `seconds` at `pps` frames per second (0 = as fast as the CPU
    /// allows), a [`SLICE`] at a time. Returns the frames sent.
    ///
    /// A paced sender that falls behind (its CPU was busy elsewhere) lets go of the slices it
    /// missed rather than catching up in one long burst: the rate stays a rate, and what is
    /// reported is what was sent.
    pub fn run(&self, frame: &[u8], pps: u64, seconds: f64) -> io::Result<u64> {
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(seconds);
        let mut sent = 0u64;
        if pps == 0 {
            while Instant::now() < end {
                self.send(frame, 65_536)?;
                sent += 65_536;
            }
            return Ok(sent);
        }
        // A float `as` saturates (no wrap): beyond u32::MAX frames a slice, u32::MAX.
        #[allow(clippy::cast_possible_truncation)]
        let per_slice = ((pps as f64 * SLICE.as_secs_f64()).round() as u32).max(1);
        let mut next = start;
        while next < end {
            let now = Instant::now();
            if now < next {
                std::thread::sleep(next - now);
            } else if now > next + SLICE {
                next = now;
            }
            self.send(frame, per_slice)?;
            sent += u64::from(per_slice);
            next += SLICE;
        }
        Ok(sent)
    }
}

impl Drop for Blaster {
    fn drop(&mut self) {
        if let Some(lo) = self.held_on {
            bpf::detach(lo, bpf::XDP_FLAGS_SKB_MODE);
        }
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
        let mut values = vec![0u64; bpf::possible_cpus()?];
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
    /// A redirect from `from` to `to`; with `gre_check`, GRE failing the version and
    /// must-discard bit checks is dropped instead (`gg_gre_check`).
    pub fn attach(from: &str, to: &str, gre_check: bool) -> io::Result<Wire> {
        let programs = Programs::load()?;
        programs.configure(ifindex(to)?, 0, (0, 0))?;
        let program = if gre_check { "gg_gre_check" } else { "gg_wire" };
        let ifindex = programs.attach(program, from)?;
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

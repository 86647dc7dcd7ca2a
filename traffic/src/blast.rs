//! Kernel-speed traffic with BPF_PROG_RUN live frames (the technique of xdp-trafficgen): the
//! kernel runs a tiny XDP program on a template frame `repeat` times and transmits each run
//! out of an interface, tens of millions of frames a second on one CPU where a packet socket
//! manages two million. And the counting sink for the receiving end.
//!
//! Both need root (CAP_BPF, CAP_NET_ADMIN); the blaster must run in the network namespace of
//! the interface it sends from.

use std::ffi::CString;
use std::io;
use std::os::raw::c_void;
use std::time::{Duration, Instant};

use crate::class::{Class, ClassCounts};

static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/blast.bpf.o"));

/// `BPF_F_TEST_XDP_LIVE_FRAMES` (linux/bpf.h).
const LIVE_FRAMES: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`.
const DRV_MODE: u32 = 1 << 2;
/// Classes the sink counts (the last slot: frames that are not ours).
const SINK_CLASSES: usize = 16;

/// A loaded copy of the programs.
struct Object {
    obj: *mut libxdp_sys::bpf_object,
}

impl Object {
    fn load() -> io::Result<Object> {
        // SAFETY: OBJECT is a valid ELF image for the whole program; null opts = defaults.
        let obj = unsafe {
            libxdp_sys::bpf_object__open_mem(
                OBJECT.as_ptr() as *const c_void,
                OBJECT.len(),
                std::ptr::null(),
            )
        };
        if obj.is_null() {
            return Err(io::Error::last_os_error());
        }
        let o = Object { obj };
        // SAFETY: obj is open.
        let rc = unsafe { libxdp_sys::bpf_object__load(obj) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(-rc));
        }
        Ok(o)
    }

    fn prog(&self, name: &str) -> io::Result<i32> {
        let c = CString::new(name).expect("no NUL");
        // SAFETY: the object is loaded; the name is NUL-terminated.
        let p = unsafe { libxdp_sys::bpf_object__find_program_by_name(self.obj, c.as_ptr()) };
        if p.is_null() {
            return Err(io::Error::other(format!("no program {name}")));
        }
        // SAFETY: p belongs to the loaded object.
        Ok(unsafe { libxdp_sys::bpf_program__fd(p) })
    }

    fn map(&self, name: &str) -> io::Result<i32> {
        let c = CString::new(name).expect("no NUL");
        // SAFETY: as above.
        let fd = unsafe { libxdp_sys::bpf_object__find_map_fd_by_name(self.obj, c.as_ptr()) };
        if fd < 0 {
            return Err(io::Error::other(format!("no map {name}")));
        }
        Ok(fd)
    }

    /// Sets `blast_cfg`: where frames go, and whether their IPv4 source is randomised.
    fn configure(&self, ifindex: u32, randomize: bool) -> io::Result<()> {
        let cfg: [u32; 2] = [ifindex, u32::from(randomize)];
        let key = 0u32;
        // SAFETY: key and value have the map's sizes (u32, struct blast_cfg of two u32s).
        let rc = unsafe {
            libxdp_sys::bpf_map_update_elem(
                self.map("blast_cfg")?,
                &key as *const u32 as *const c_void,
                cfg.as_ptr() as *const c_void,
                0,
            )
        };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(-rc));
        }
        Ok(())
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        // SAFETY: closed once.
        unsafe { libxdp_sys::bpf_object__close(self.obj) };
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
    object: Object,
    prog: i32,
    frame: Vec<u8>,
}

impl Blaster {
    /// A blaster of `frame` out of `interface`; with `randomize`, each copy gets a random
    /// outer IPv4 source (the frame must be untagged IPv4).
    pub fn new(interface: &str, frame: Vec<u8>, randomize: bool) -> io::Result<Blaster> {
        let object = Object::load()?;
        object.configure(ifindex(interface)?, randomize)?;
        let prog = object.prog("gg_blast")?;
        Ok(Blaster {
            object,
            prog,
            frame,
        })
    }

    /// Transmits `count` copies (one BPF_PROG_RUN call).
    pub fn send(&mut self, count: u32) -> io::Result<()> {
        let mut opts = libxdp_sys::bpf_test_run_opts {
            sz: std::mem::size_of::<libxdp_sys::bpf_test_run_opts>(),
            data_in: self.frame.as_ptr() as *const c_void,
            data_out: std::ptr::null_mut(),
            data_size_in: self.frame.len() as u32,
            data_size_out: 0,
            ctx_in: std::ptr::null(),
            ctx_out: std::ptr::null_mut(),
            ctx_size_in: 0,
            ctx_size_out: 0,
            retval: 0,
            repeat: count as i32,
            duration: 0,
            flags: LIVE_FRAMES,
            cpu: 0,
            batch_size: 64,
        };
        // SAFETY: opts points at the template, which outlives the call; no output buffers.
        let rc = unsafe { libxdp_sys::bpf_prog_test_run_opts(self.prog, &mut opts) };
        let _ = &self.object;
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(-rc));
        }
        Ok(())
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
    object: Object,
    ifindex: u32,
}

impl Sink {
    /// Attaches the sink to `interface` (native XDP; this also lets frames redirected into the
    /// veth's peer be delivered).
    pub fn attach(interface: &str) -> io::Result<Sink> {
        let object = Object::load()?;
        let prog = object.prog("gg_sink")?;
        let ifindex = ifindex(interface)?;
        // SAFETY: attaching our loaded program by fd.
        let rc =
            unsafe { libxdp_sys::bpf_xdp_attach(ifindex as i32, prog, DRV_MODE, std::ptr::null()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(-rc));
        }
        Ok(Sink { object, ifindex })
    }

    /// Frames counted so far, per class (sums over CPUs).
    pub fn counts(&self) -> io::Result<ClassCounts> {
        let fd = self.object.map("sink_counts")?;
        let cpus = fastpath::afxdp::lane::possible_cpus();
        let mut c = ClassCounts::default();
        for class in Class::ALL {
            let key = class as u32;
            let mut values = vec![0u64; cpus];
            // SAFETY: a per-CPU array lookup writes one u64 per possible CPU.
            let rc = unsafe {
                libxdp_sys::bpf_map_lookup_elem(
                    fd,
                    &key as *const u32 as *const c_void,
                    values.as_mut_ptr() as *mut c_void,
                )
            };
            if rc == 0 {
                c.frames[class.index()] = values.iter().sum();
            }
        }
        Ok(c)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        // SAFETY: detaching by ifindex and mode.
        unsafe { libxdp_sys::bpf_xdp_detach(self.ifindex as i32, DRV_MODE, std::ptr::null()) };
    }
}

/// A bare in-kernel redirect from one interface to another: the ceiling a filter between them
/// is measured against. Detached when dropped.
pub struct Wire {
    _object: Object,
    ifindex: u32,
}

impl Wire {
    pub fn attach(from: &str, to: &str) -> io::Result<Wire> {
        let object = Object::load()?;
        object.configure(ifindex(to)?, false)?;
        let prog = object.prog("gg_wire")?;
        let ifindex = ifindex(from)?;
        // SAFETY: attaching our loaded program by fd.
        let rc =
            unsafe { libxdp_sys::bpf_xdp_attach(ifindex as i32, prog, DRV_MODE, std::ptr::null()) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(-rc));
        }
        Ok(Wire {
            _object: object,
            ifindex,
        })
    }
}

impl Drop for Wire {
    fn drop(&mut self) {
        // SAFETY: detaching by ifindex and mode.
        unsafe { libxdp_sys::bpf_xdp_detach(self.ifindex as i32, DRV_MODE, std::ptr::null()) };
    }
}

const _: () = assert!(Class::COUNT < SINK_CLASSES);

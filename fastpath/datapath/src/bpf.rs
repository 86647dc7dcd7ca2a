//! A BPF object embedded in the binary, loaded through the libbpf that libxdp-sys links: the
//! handful of calls greguard's fast lane (`lane.rs`) and greguard-gen's blaster and sink need,
//! in one place.

use std::ffi::CString;
use std::io;
use std::os::raw::c_void;

/// `XDP_FLAGS_*` of `linux/if_link.h`.
pub const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
pub const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// `BPF_F_TEST_XDP_LIVE_FRAMES` (linux/bpf.h).
const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;

/// An opened (and, after [`Object::load`], loaded) BPF object; closed when dropped. Programs
/// attached to interfaces stay attached.
pub struct Object {
    obj: *mut libxdp_sys::bpf_object,
}

// SAFETY: the bpf_object pointer is only used through &self/&mut self or in Drop, and libbpf
// objects are not tied to the thread that created them.
unsafe impl Send for Object {}

impl Object {
    /// Opens an ELF image built for the BPF target.
    pub fn open(elf: &'static [u8]) -> io::Result<Object> {
        // SAFETY: `elf` lives for the whole program; libbpf copies what it keeps. A null opts
        // pointer means defaults.
        let obj = unsafe {
            libxdp_sys::bpf_object__open_mem(
                elf.as_ptr() as *const c_void,
                elf.len(),
                std::ptr::null(),
            )
        };
        if obj.is_null() {
            return Err(io::Error::last_os_error());
        }
        Ok(Object { obj })
    }

    /// Loads the programs and creates the maps in the kernel (the verifier runs here).
    pub fn load(&mut self) -> io::Result<()> {
        // SAFETY: self.obj is an open object.
        errno(unsafe { libxdp_sys::bpf_object__load(self.obj) })
    }

    /// The fd of a loaded program.
    pub fn program(&self, name: &str) -> Option<i32> {
        let c = CString::new(name).ok()?;
        // SAFETY: the object is open; the name is NUL-terminated.
        let prog = unsafe { libxdp_sys::bpf_object__find_program_by_name(self.obj, c.as_ptr()) };
        // SAFETY: prog belongs to this object.
        (!prog.is_null()).then(|| unsafe { libxdp_sys::bpf_program__fd(prog) })
    }

    /// The fd of a map.
    pub fn map(&self, name: &str) -> Option<i32> {
        let c = CString::new(name).ok()?;
        // SAFETY: as above.
        let fd = unsafe { libxdp_sys::bpf_object__find_map_fd_by_name(self.obj, c.as_ptr()) };
        (fd >= 0).then_some(fd)
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        // SAFETY: obj came from bpf_object__open_mem and is closed once, here.
        unsafe { libxdp_sys::bpf_object__close(self.obj) };
    }
}

/// Sets `key` to `value` in map `fd`.
///
/// # Safety
/// `K` and `V` must have exactly the map's key and value sizes: the kernel reads that many
/// bytes from each pointer.
pub unsafe fn update<K: ?Sized, V: ?Sized>(fd: i32, key: &K, value: &V) -> io::Result<()> {
    // SAFETY: the caller vouches for the sizes; both pointers are live for the call.
    errno(unsafe {
        libxdp_sys::bpf_map_update_elem(
            fd,
            key as *const K as *const c_void,
            value as *const V as *const c_void,
            0,
        )
    })
}

/// Deletes `key` from map `fd` (a missing key is not an error worth reporting).
///
/// # Safety
/// `key` must have exactly the map's key size.
pub unsafe fn delete(fd: i32, key: &[u8]) {
    // SAFETY: the caller vouches for the size.
    unsafe { libxdp_sys::bpf_map_delete_elem(fd, key.as_ptr() as *const c_void) };
}

/// Reads entry `key` of a per-CPU array into `values`, one per possible CPU; false when the
/// lookup fails.
///
/// # Safety
/// `values` must hold [`possible_cpus`] elements of the map's value size, which must be a
/// multiple of 8 (the kernel's per-CPU stride).
pub unsafe fn lookup_percpu<V: Copy>(fd: i32, key: u32, values: &mut [V]) -> bool {
    // SAFETY: the caller vouches for the buffer's size.
    unsafe {
        libxdp_sys::bpf_map_lookup_elem(
            fd,
            &key as *const u32 as *const c_void,
            values.as_mut_ptr() as *mut c_void,
        ) == 0
    }
}

/// Reads the first `keys` entries of a per-CPU array whose values are u64 into `values`
/// (key-major: key k's value on CPU c at `k × cpus + c`) in one call; returns how many keys
/// were read.
///
/// # Safety
/// The map's values must be u64 and `values` must hold `keys` × [`possible_cpus`] of them.
pub unsafe fn lookup_percpu_batch(fd: i32, keys: usize, values: &mut [u64]) -> io::Result<usize> {
    let mut count =
        u32::try_from(keys).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut key_buf = vec![0u32; keys];
    let mut out_batch = 0u32;
    let opts = libxdp_sys::bpf_map_batch_opts {
        sz: std::mem::size_of::<libxdp_sys::bpf_map_batch_opts>(),
        elem_flags: 0,
        flags: 0,
    };
    // SAFETY: the buffers hold `count` keys and, as the caller vouches, `count` values per CPU;
    // a null in_batch starts at the first key.
    let rc = unsafe {
        libxdp_sys::bpf_map_lookup_batch(
            fd,
            std::ptr::null_mut(),
            &mut out_batch as *mut u32 as *mut c_void,
            key_buf.as_mut_ptr() as *mut c_void,
            values.as_mut_ptr() as *mut c_void,
            &mut count,
            &opts,
        )
    };
    // ENOENT: the end of the array came first; `count` says how far it got.
    if rc != 0 && rc != -libc::ENOENT {
        return Err(io::Error::from_raw_os_error(-rc));
    }
    Ok(count as usize)
}

/// Attaches program `prog` to interface `ifindex` (`flags`: an `XDP_FLAGS_*` mode), replacing
/// whatever program is there in that mode in one netlink call.
pub fn attach(ifindex: u32, prog: i32, flags: u32) -> io::Result<()> {
    // SAFETY: prog is a program fd (the kernel checks it); null opts = no expected program.
    errno(unsafe { libxdp_sys::bpf_xdp_attach(ifindex as i32, prog, flags, std::ptr::null()) })
}

/// Detaches the XDP program of that mode from `ifindex`.
pub fn detach(ifindex: u32, flags: u32) {
    // SAFETY: detaching takes only the ifindex and mode.
    unsafe { libxdp_sys::bpf_xdp_detach(ifindex as i32, flags, std::ptr::null()) };
}

/// Runs XDP program `prog` `repeat` times on `frame` with BPF_PROG_RUN and live frames: each
/// run's verdict is carried out (a redirect transmits the frame), `batch` frames at a time.
pub fn run_live_frames(prog: i32, frame: &[u8], repeat: u32, batch: u32) -> io::Result<()> {
    let mut opts = libxdp_sys::bpf_test_run_opts {
        sz: std::mem::size_of::<libxdp_sys::bpf_test_run_opts>(),
        data_in: frame.as_ptr() as *const c_void,
        data_out: std::ptr::null_mut(),
        data_size_in: size_u32(frame.len())?,
        data_size_out: 0,
        ctx_in: std::ptr::null(),
        ctx_out: std::ptr::null_mut(),
        ctx_size_in: 0,
        ctx_size_out: 0,
        retval: 0,
        repeat: repeat as i32,
        duration: 0,
        flags: BPF_F_TEST_XDP_LIVE_FRAMES,
        cpu: 0,
        batch_size: batch,
    };
    // SAFETY: opts points at `frame`, which outlives the call; no output buffers.
    errno(unsafe { libxdp_sys::bpf_prog_test_run_opts(prog, &mut opts) })
}

/// Runs XDP program `prog` once on `frame` with BPF_PROG_RUN, as if it arrived on `ifindex`'s
/// RX queue `queue` (an interface of this network namespace); nothing is transmitted. Returns
/// the program's action (`XDP_DROP` = 1, `XDP_PASS` = 2, `XDP_REDIRECT` = 4, ...).
pub fn test_run(prog: i32, frame: &[u8], ifindex: u32, queue: u32) -> io::Result<u32> {
    // struct xdp_md: data (0), data_end (the frame's length), data_meta (0), ingress_ifindex,
    // rx_queue_index, egress_ifindex.
    let len = size_u32(frame.len())?;
    let ctx: [u32; 6] = [0, len, 0, ifindex, queue, 0];
    let mut out = vec![0u8; frame.len() + 256];
    // 24 bytes: the six u32 of `ctx`.
    #[allow(clippy::cast_possible_truncation)]
    let ctx_size = std::mem::size_of_val(&ctx) as u32;
    let mut opts = libxdp_sys::bpf_test_run_opts {
        sz: std::mem::size_of::<libxdp_sys::bpf_test_run_opts>(),
        data_in: frame.as_ptr() as *const c_void,
        data_out: out.as_mut_ptr() as *mut c_void,
        data_size_in: len,
        data_size_out: size_u32(out.len())?,
        ctx_in: ctx.as_ptr() as *const c_void,
        ctx_out: std::ptr::null_mut(),
        ctx_size_in: ctx_size,
        ctx_size_out: 0,
        retval: 0,
        repeat: 1,
        duration: 0,
        flags: 0,
        cpu: 0,
        batch_size: 0,
    };
    // SAFETY: opts points at `frame`, `ctx` and `out`, which outlive the call; the sizes are
    // theirs.
    errno(unsafe { libxdp_sys::bpf_prog_test_run_opts(prog, &mut opts) })?;
    Ok(opts.retval)
}

/// The number of possible CPUs (the length of a per-CPU map value), from libbpf's
/// `libbpf_num_possible_cpus` (which reads `/sys/devices/system/cpu/possible`). A failure is
/// an error: guessing too few would overflow the buffer a per-CPU map is read into.
pub fn possible_cpus() -> io::Result<usize> {
    extern "C" {
        // In the libbpf that libxdp-sys links; its bindings leave it out.
        fn libbpf_num_possible_cpus() -> std::os::raw::c_int;
    }
    // SAFETY: takes no arguments; libbpf caches the count after the first call.
    let n = unsafe { libbpf_num_possible_cpus() };
    if n > 0 {
        Ok(n as usize)
    } else {
        Err(io::Error::new(
            io::Error::from_raw_os_error(-n).kind(),
            format!(
                "libbpf could not count the possible CPUs (/sys/devices/system/cpu/possible): {}",
                io::Error::from_raw_os_error(-n)
            ),
        ))
    }
}

/// A buffer's length as BPF_PROG_RUN's u32 size fields take it; a longer one is refused.
fn size_u32(len: usize) -> io::Result<u32> {
    u32::try_from(len).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a buffer of {len} bytes is more than BPF_PROG_RUN's 32-bit sizes hold"),
        )
    })
}

/// libbpf's `-errno` convention as a Result.
fn errno(rc: i32) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(-rc))
    }
}

#[cfg(test)]
mod tests {
    /// The highest CPU of a list such as "0-3" or "0,2-5", plus one.
    fn parse_cpu_list(text: &str) -> Option<usize> {
        let mut highest = None;
        for part in text.trim().split(',') {
            let last = part.rsplit('-').next()?.trim().parse::<usize>().ok()?;
            highest = Some(highest.map_or(last, |h: usize| h.max(last)));
        }
        highest.map(|h| h + 1)
    }

    #[test]
    fn libbpf_counts_the_possible_cpus_as_sysfs_lists_them() {
        assert_eq!(parse_cpu_list("0-3\n"), Some(4));
        assert_eq!(parse_cpu_list("0,2-5"), Some(6));
        assert_eq!(parse_cpu_list("x-y"), None);
        let listed = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap();
        assert_eq!(
            super::possible_cpus().unwrap(),
            parse_cpu_list(&listed).unwrap()
        );
    }
}

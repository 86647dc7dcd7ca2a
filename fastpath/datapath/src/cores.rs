//! Where threads run: one core per worker, and the rest of the process kept off them.

use super::error::Error;
use super::PortsSpec;

/// The cores this thread may run on (its affinity mask).
fn available() -> Vec<u32> {
    core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        // A core id beyond u32 (Linux numbers CPUs far below it) could not be named in a
        // policy either: it is left out.
        .filter_map(|c| u32::try_from(c.id).ok())
        .collect()
}

/// The cores this process may run on, as "0,1,...".
pub(crate) fn list() -> String {
    available()
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// One core per worker: the policy's list, or the cores after core 0 (wrapping around).
pub(crate) fn resolve(spec: &PortsSpec, workers: usize) -> Result<Vec<u32>, Error> {
    let available = available();
    match &spec.cores {
        Some(wanted) => {
            for &c in wanted {
                if !available.contains(&c) {
                    return Err(Error::NoCore {
                        core: c as usize,
                        available: list(),
                    });
                }
            }
            Ok(wanted.iter().copied().cycle().take(workers).collect())
        }
        None => {
            if available.is_empty() {
                return Ok(vec![0; workers]);
            }
            Ok((0..workers)
                .map(|w| available[(w + 1) % available.len()])
                .collect())
        }
    }
}

/// Keeps the calling thread, and every thread it starts from now on, off the workers' cores:
/// it may run on any other core this process may use. The slow path (samples, pcap files,
/// the metrics endpoint) then never takes a worker's CPU, as the `cores` default (the cores
/// after core 0) intends. Returns the cores it may run on, or None (and changes nothing) when
/// the workers take every core.
pub fn keep_off(worker_cores: &[u32]) -> Option<Vec<u32>> {
    let others: Vec<u32> = available()
        .into_iter()
        .filter(|c| !worker_cores.contains(c))
        .collect();
    if others.is_empty() {
        return None;
    }
    // SAFETY: cpu_set_t is plain data, zeroed is the empty set; CPU_SET is given core ids
    // below CPU_SETSIZE (checked), and sched_setaffinity reads `size_of::<cpu_set_t>()` bytes
    // of `set` for the calling thread (pid 0).
    let ok = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in &others {
            if (c as usize) < libc::CPU_SETSIZE as usize {
                libc::CPU_SET(c as usize, &mut set);
            }
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    };
    ok.then_some(others)
}

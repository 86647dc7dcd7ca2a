//! The slow path's share of the main loop: the sampled frames of the workers and of the fast
//! lane go to the top-sources view, the drop log and the pcap writer thread.
//!
//! Its work per pass is bounded ([`BUDGET`]), whatever arrives: the main loop must get back to
//! signals, reloads and the watchdog within its period under any storm. Samples beyond the
//! budget stay in their rings, which are bounded: a worker counts what no longer fits as
//! `samples_dropped`, and the kernel takes no sample while its ring is full. A sample that was
//! taken but found the pcap writer's queue full is shed and counted (`stage="pcap"`), as is
//! one the top-sources view had no room to rank (`stage="top"`).

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use datapath::lane::KernelSamples;
use datapath::{Sample, SampleReader};
use validator::Policy;

use crate::log::DropLog;
use crate::pcap_writer::{Offer, PcapWriter};
use crate::samples::PcapSettings;
use crate::top::TopSources;

/// What one pass of the main loop may spend on samples.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Samples taken at most.
    pub samples: usize,
    /// Time spent at most (checked between chunks of [`CHUNK`] samples).
    pub time: Duration,
}

/// Per pass of the main loop (every 50 ms): 8192 samples, about 160 000 a second, in at most
/// 10 ms, a fraction of the 100 ms within which stop, reload and the watchdog are served.
pub const BUDGET: Budget = Budget {
    samples: 8192,
    time: Duration::from_millis(10),
};

/// Samples taken from one ring before the next ring's turn.
const CHUNK: usize = 64;

/// Longest the stop waits for the pcap writer to write what is queued and flush.
const WRITER_STOP_WAIT: Duration = Duration::from_millis(500);

/// Longest a reload waits for the pcap writer to take new settings.
const WRITER_RECONFIGURE_WAIT: Duration = Duration::from_millis(100);

/// Drops logged per second at most.
const DROP_LOG_PER_SECOND: u32 = 10;

/// Seconds the top-sources view looks back.
pub const TOP_WINDOW_SECS: usize = 10;

/// A ring of samples the slow path reads.
pub trait SampleSource {
    fn pop(&mut self) -> Option<Sample>;
}

impl SampleSource for SampleReader {
    fn pop(&mut self) -> Option<Sample> {
        SampleReader::pop(self)
    }
}

impl SampleSource for KernelSamples {
    fn pop(&mut self) -> Option<Sample> {
        KernelSamples::pop(self)
    }
}

/// The rings a pass reads: every worker's and the fast lane's.
pub fn sources<'a>(
    workers: &'a mut [SampleReader],
    kernel: Option<&'a mut KernelSamples>,
) -> Vec<&'a mut dyn SampleSource> {
    let mut all: Vec<&mut dyn SampleSource> = workers
        .iter_mut()
        .map(|w| w as &mut dyn SampleSource)
        .collect();
    if let Some(k) = kernel {
        all.push(k);
    }
    all
}

/// Hands samples from `sources` to `handle`, [`CHUNK`] from each ring in turn so that a busy
/// ring does not starve the others, until the rings are empty or `budget` is spent; what is
/// left stays in the rings. Returns how many were taken.
pub fn drain(
    sources: &mut [&mut dyn SampleSource],
    budget: Budget,
    mut handle: impl FnMut(Sample),
) -> usize {
    let started = Instant::now();
    let mut taken = 0;
    loop {
        let before = taken;
        for source in sources.iter_mut() {
            for _ in 0..CHUNK {
                if taken == budget.samples {
                    return taken;
                }
                match source.pop() {
                    Some(s) => {
                        handle(s);
                        taken += 1;
                    }
                    None => break,
                }
            }
        }
        if taken == before || started.elapsed() >= budget.time {
            return taken;
        }
    }
}

/// Samples shed since start, by stage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shed {
    /// Not written to the sample files: the writer's queue was full.
    pub pcap: u64,
    /// Not ranked in the top-sources view: their second already tracked as many sources as it
    /// may.
    pub top: u64,
}

/// The slow path: what the main loop does with samples.
pub struct SlowPath {
    top: TopSources,
    drops: DropLog,
    files: Option<PcapWriter>,
    /// `[sampling]`'s pcap settings as last applied (the files may have stopped on an error).
    pcap: Option<PcapSettings>,
    shed_pcap: u64,
    /// Wall-clock time of the data path's epoch, for the files' timestamps.
    epoch_wall: SystemTime,
    /// Samples the pcap writer's queue holds.
    queue: usize,
}

impl SlowPath {
    /// Starts the pcap writer when `[sampling] pcap_dir` asks for files.
    pub fn start(sampling: &config::Sampling, epoch_wall: SystemTime) -> Result<SlowPath> {
        SlowPath::start_with_queue(sampling, epoch_wall, crate::pcap_writer::QUEUE)
    }

    /// [`SlowPath::start`] with room for `queue` samples before the writer (tests shed early).
    fn start_with_queue(
        sampling: &config::Sampling,
        epoch_wall: SystemTime,
        queue: usize,
    ) -> Result<SlowPath> {
        let pcap = PcapSettings::of(sampling);
        let files = match &pcap {
            Some(p) => {
                let w = PcapWriter::start(p, epoch_wall, queue)?;
                tracing::info!("sampled frames go to {}", p.dir.display());
                Some(w)
            }
            None => None,
        };
        Ok(SlowPath {
            top: TopSources::new(TOP_WINDOW_SECS),
            drops: DropLog::new(DROP_LOG_PER_SECOND),
            files,
            pcap,
            shed_pcap: 0,
            epoch_wall,
            queue,
        })
    }

    /// One pass: at most [`BUDGET`] samples from `sources` (see [`sources`]).
    pub fn pass(&mut self, sources: &mut [&mut dyn SampleSource], policy: &Policy) {
        self.drops.roll();
        let (top, drops, files) = (&mut self.top, &mut self.drops, &self.files);
        let mut shed = 0;
        let mut gone = false;
        drain(sources, BUDGET, |sample| {
            if sample.dropped() {
                if let Some(source) = sample.source() {
                    top.add(source);
                }
                let tunnel = sample
                    .decision
                    .tunnel()
                    .and_then(|t| u32::try_from(t).ok())
                    .map(|t| policy.tunnel_name(t));
                drops.sample(&sample, tunnel);
            }
            if let Some(w) = files {
                match w.offer(sample) {
                    Offer::Queued => {}
                    Offer::Shed => shed += 1,
                    Offer::Gone => gone = true,
                }
            }
        });
        self.shed_pcap += shed;
        if gone {
            // The writer logged why; a reload or a restart tries again.
            if let Some(w) = self.files.take() {
                w.stop(Duration::ZERO);
            }
        }
    }

    /// The top-sources view.
    pub fn top(&self) -> &TopSources {
        &self.top
    }

    /// A second has passed: the view moves on.
    pub fn tick(&mut self) {
        self.top.tick();
    }

    /// Samples shed since start.
    pub fn shed(&self) -> Shed {
        Shed {
            pcap: self.shed_pcap,
            top: self.top.untracked(),
        }
    }

    /// Before a reload: whether `sampling`'s pcap settings can be applied, so that a reload
    /// that cannot is refused with the key named before anything changes.
    pub fn check(&self, sampling: &config::Sampling) -> Result<()> {
        match PcapSettings::of(sampling) {
            Some(p) if Some(&p) != self.pcap.as_ref() || self.files.is_none() => usable(&p.dir),
            _ => Ok(()),
        }
    }

    /// A reload: applies `sampling`'s pcap settings (starting, moving or stopping the files);
    /// returns what changed, for the log, if anything did.
    pub fn apply(&mut self, sampling: &config::Sampling) -> Result<Option<String>> {
        if self.files.as_ref().is_some_and(PcapWriter::gone) {
            // It stopped on an error (and logged it): this reload starts it again.
            if let Some(w) = self.files.take() {
                w.stop(Duration::ZERO);
            }
        }
        let new = PcapSettings::of(sampling);
        let change = describe(self.pcap.as_ref(), new.as_ref());
        let restart = self.files.is_none() && new.is_some();
        if change.is_none() && !restart {
            return Ok(None);
        }
        match (&new, &self.files) {
            (None, _) => {
                if let Some(w) = self.files.take() {
                    w.stop(WRITER_STOP_WAIT);
                }
            }
            (Some(p), Some(w)) => w.reconfigure(p.clone(), WRITER_RECONFIGURE_WAIT)?,
            (Some(p), None) => {
                self.files = Some(PcapWriter::start(p, self.epoch_wall, self.queue)?)
            }
        }
        self.pcap = new;
        Ok(Some(
            change.unwrap_or_else(|| "sample files started again".into()),
        ))
    }

    /// The stop: the pcap writer writes what is queued, flushes and ends (waited for at most
    /// half a second). Dropping the slow path does the same, so an early exit keeps its files
    /// whole too.
    pub fn stop(self) {}
}

impl Drop for SlowPath {
    fn drop(&mut self) {
        if let Some(w) = self.files.take() {
            if !w.stop(WRITER_STOP_WAIT) {
                tracing::warn!(
                    "the pcap writer did not finish within {} ms: the last samples may be \
                     missing from the newest file",
                    WRITER_STOP_WAIT.as_millis()
                );
            }
        }
    }
}

/// Whether sample files can go to `dir`: it exists (or is created) and can be listed.
fn usable(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::read_dir(dir).map(drop))
        .with_context(|| format!("sampling.pcap_dir = {:?} cannot be used", dir.display()))
}

/// The pcap keys that differ between `old` and `new`, as `key old -> new`.
fn describe(old: Option<&PcapSettings>, new: Option<&PcapSettings>) -> Option<String> {
    match (old, new) {
        (None, None) => None,
        (Some(o), None) => Some(format!(
            "sampling.pcap_dir {} -> none: sample files stop",
            o.dir.display()
        )),
        (None, Some(n)) => Some(format!(
            "sampling.pcap_dir none -> {}: sample files start (pcap_rotate_mb {}, pcap_keep {})",
            n.dir.display(),
            n.rotate_mb,
            n.keep
        )),
        (Some(o), Some(n)) => {
            let mut changes = Vec::new();
            if o.dir != n.dir {
                changes.push(format!(
                    "sampling.pcap_dir {} -> {}",
                    o.dir.display(),
                    n.dir.display()
                ));
            }
            if o.rotate_mb != n.rotate_mb {
                changes.push(format!(
                    "sampling.pcap_rotate_mb {} -> {}",
                    o.rotate_mb, n.rotate_mb
                ));
            }
            if o.keep != n.keep {
                changes.push(format!("sampling.pcap_keep {} -> {}", o.keep, n.keep));
            }
            (!changes.is_empty()).then(|| changes.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use validator::{Decision, Direction, Reason, Verdict};

    /// A ring holding `left` samples whose bytes are its id.
    struct Ring {
        left: VecDeque<Sample>,
    }

    impl Ring {
        fn new(id: u8, n: usize) -> Ring {
            let s = Sample {
                port: Direction::FromOutside,
                decision: Decision::new(Verdict::Drop, Reason::UnknownTunnel),
                len: 64,
                at_ns: 0,
                data: vec![id; 64],
            };
            Ring {
                left: std::iter::repeat_n(s, n).collect(),
            }
        }
    }

    impl SampleSource for Ring {
        fn pop(&mut self) -> Option<Sample> {
            self.left.pop_front()
        }
    }

    #[test]
    fn a_pass_takes_at_most_the_budget_shared_between_rings_and_leaves_the_rest() {
        let (mut busy, mut quiet, mut empty) =
            (Ring::new(1, 100_000), Ring::new(2, 100), Ring::new(3, 0));
        let budget = Budget {
            samples: 1_000,
            time: Duration::from_secs(10),
        };
        let mut per_ring = [0usize; 4];
        let taken = drain(&mut [&mut busy, &mut quiet, &mut empty], budget, |s| {
            per_ring[usize::from(s.data[0])] += 1
        });
        assert_eq!(taken, 1_000);
        // The quiet ring was emptied although the busy one could have filled the budget.
        assert_eq!(per_ring, [0, 900, 100, 0]);
        assert_eq!(busy.left.len(), 100_000 - 900);
        assert!(quiet.left.is_empty() && empty.left.is_empty());
    }

    #[test]
    fn a_pass_ends_when_the_rings_are_empty_or_its_time_is_spent() {
        let mut a = Ring::new(1, 10);
        let unlimited = Budget {
            samples: usize::MAX,
            time: Duration::from_secs(10),
        };
        assert_eq!(drain(&mut [&mut a], unlimited, |_| {}), 10);
        let mut b = Ring::new(1, 1_000_000);
        let slow = Budget {
            samples: usize::MAX,
            time: Duration::from_millis(20),
        };
        let started = Instant::now();
        let taken = drain(&mut [&mut b], slow, |_| {
            std::thread::sleep(Duration::from_micros(100))
        });
        // 20 ms at 0.1 ms a sample: about 200, checked every chunk of 64.
        assert!(taken < 1_000, "{taken}");
        assert!(started.elapsed() < Duration::from_millis(200));
    }

    fn sampling(dir: Option<&Path>, rotate_mb: u64, keep: u32) -> config::Sampling {
        config::Sampling {
            pcap_dir: dir.map(Path::to_path_buf),
            pcap_rotate_mb: rotate_mb,
            pcap_keep: keep,
            ..config::Sampling::default()
        }
    }

    #[test]
    fn samples_beyond_the_writers_queue_are_shed_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        // Room for 64 samples: a pass of 8192 in a millisecond or two outruns the writer.
        let mut slow =
            SlowPath::start_with_queue(&sampling(Some(dir.path()), 64, 10), SystemTime::now(), 64)
                .unwrap();
        let policy = config::load_str("", "test").unwrap().policy;
        let passes = 20;
        for _ in 0..passes {
            let mut ring = Ring::new(1, BUDGET.samples + 100);
            slow.pass(&mut [&mut ring], &policy);
            // The budget was taken, the rest left in the ring.
            assert_eq!(ring.left.len(), 100);
        }
        let shed = slow.shed();
        assert!(shed.pcap > 0, "{shed:?}");
        slow.stop();
        let mut in_files = 0u64;
        for f in std::fs::read_dir(dir.path()).unwrap() {
            let f = std::fs::File::open(f.unwrap().path()).unwrap();
            let mut r = pcap_file::pcap::PcapReader::new(f).unwrap();
            while let Some(p) = r.next_packet() {
                p.unwrap();
                in_files += 1;
            }
        }
        // Every sample taken was written or counted as shed.
        assert_eq!(in_files + shed.pcap, passes * BUDGET.samples as u64);
    }

    #[test]
    fn a_reload_moves_stops_and_restarts_the_files_and_says_what_changed() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut slow =
            SlowPath::start(&sampling(Some(a.path()), 64, 10), SystemTime::now()).unwrap();
        assert_eq!(slow.apply(&sampling(Some(a.path()), 64, 10)).unwrap(), None);
        let moved = slow
            .apply(&sampling(Some(b.path()), 1, 3))
            .unwrap()
            .unwrap();
        assert!(
            moved.contains("sampling.pcap_dir")
                && moved.contains("sampling.pcap_rotate_mb 64 -> 1")
                && moved.contains("sampling.pcap_keep 10 -> 3"),
            "{moved}"
        );
        let off = slow.apply(&sampling(None, 1, 3)).unwrap().unwrap();
        assert!(off.contains("sample files stop"), "{off}");
        assert!(slow.files.is_none());
        let on = slow
            .apply(&sampling(Some(a.path()), 1, 3))
            .unwrap()
            .unwrap();
        assert!(on.contains("sample files start"), "{on}");
        assert!(slow.files.is_some());
        slow.stop();
    }

    #[test]
    fn a_reload_to_a_directory_that_cannot_be_used_is_refused_with_the_key_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        let slow = SlowPath::start(&sampling(Some(dir.path()), 64, 10), SystemTime::now()).unwrap();
        let err = slow
            .check(&sampling(Some(&file.join("sub")), 64, 10))
            .unwrap_err();
        assert!(format!("{err:#}").contains("sampling.pcap_dir"), "{err:#}");
        assert!(slow.check(&sampling(Some(dir.path()), 64, 3)).is_ok());
        slow.stop();
    }
}

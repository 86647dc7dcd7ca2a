//! The pcap writer thread: sample files are written off the main thread, so a slow disk or a
//! storm of samples never keeps the main loop from signals, reloads and the watchdog.
//!
//! The main thread hands samples over a bounded channel with `try_send`: when the writer falls
//! behind, the channel fills and further samples are shed (the caller counts them) instead of
//! queueing without bound. The writer buffers its writes and flushes at least every
//! [`FLUSH_EVERY`], at every rotation and when it stops, so files stay readable while it runs.

use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use crossbeam_channel::{bounded, select, Receiver, Sender, TrySendError};
use datapath::Sample;

use crate::samples::{PcapRotator, PcapSettings};

/// Samples waiting for the writer at most (each at most a UMEM frame, 4 KiB: 16 MiB at worst,
/// 1.3 MiB at the default snap length).
pub const QUEUE: usize = 4096;

/// Longest a written sample stays in the writer's buffer.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// What became of a sample offered to the writer.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer {
    Queued,
    /// The queue was full: not written.
    Shed,
    /// The writer stopped on an error (it logged it): not written, and no further sample will be.
    Gone,
}

/// The main thread's end of the writer thread.
pub struct PcapWriter {
    samples: Sender<Sample>,
    settings: Sender<PcapSettings>,
    /// Disconnected when the thread ends.
    done: Receiver<()>,
    thread: JoinHandle<()>,
}

impl PcapWriter {
    /// Opens the directory (creating it, removing the oldest files beyond `keep`) and starts
    /// the thread, with room for `queue` samples ([`QUEUE`] in the daemon). `epoch_wall` is the
    /// wall-clock time of the data path's epoch.
    pub fn start(
        settings: &PcapSettings,
        epoch_wall: SystemTime,
        queue: usize,
    ) -> Result<PcapWriter> {
        let rotator = PcapRotator::new(settings, epoch_wall)?;
        let (samples, sample_rx) = bounded(queue);
        let (settings_tx, settings_rx) = bounded(1);
        let (done_tx, done) = bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("pcap-writer".into())
            .spawn(move || {
                let _done = done_tx;
                write_loop(rotator, &sample_rx, &settings_rx, epoch_wall);
            })
            .context("starting the pcap writer thread")?;
        Ok(PcapWriter {
            samples,
            settings: settings_tx,
            done,
            thread,
        })
    }

    /// Queues `sample` for the files, never waiting.
    pub fn offer(&self, sample: Sample) -> Offer {
        match self.samples.try_send(sample) {
            Ok(()) => Offer::Queued,
            Err(TrySendError::Full(_)) => Offer::Shed,
            Err(TrySendError::Disconnected(_)) => Offer::Gone,
        }
    }

    /// Whether the thread has ended (after an error it logged).
    pub fn gone(&self) -> bool {
        self.thread.is_finished()
    }

    /// Has the writer continue with other settings: it closes its file and opens the new
    /// directory (pruning it to the new `keep`) before the next sample. Waits at most `wait`
    /// for room (there is, unless two reloads come within one sample's write).
    pub fn reconfigure(&self, settings: PcapSettings, wait: Duration) -> Result<()> {
        self.settings
            .send_timeout(settings, wait)
            .map_err(|_| anyhow::anyhow!("the pcap writer did not take the new settings"))
    }

    /// Tells the thread to write what is queued, flush and end, and waits for it at most
    /// `wait`; returns whether it ended in time (if not, it is left to finish on its own).
    pub fn stop(self, wait: Duration) -> bool {
        let PcapWriter {
            samples,
            settings,
            done,
            thread,
        } = self;
        drop(samples);
        drop(settings);
        match done.recv_timeout(wait) {
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) | Ok(()) => {
                let _ = thread.join();
                true
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => false,
        }
    }
}

/// The thread: writes samples, applies new settings, flushes when due; ends when the main
/// thread drops its sender (after writing what was queued) or on an error.
fn write_loop(
    mut rotator: PcapRotator,
    samples: &Receiver<Sample>,
    settings: &Receiver<PcapSettings>,
    epoch_wall: SystemTime,
) {
    let mut last_flush = Instant::now();
    let mut dirty = false;
    let result: Result<()> = loop {
        let due = FLUSH_EVERY.saturating_sub(last_flush.elapsed());
        let step = select! {
            recv(settings) -> s => match s {
                Ok(s) => rotator
                    .close()
                    .and_then(|()| PcapRotator::new(&s, epoch_wall))
                    .map(|r| {
                        rotator = r;
                        dirty = false;
                    }),
                // Only dropped together with `samples`, whose end is handled below.
                Err(_) => Ok(()),
            },
            recv(samples) -> s => match s {
                Ok(s) => {
                    dirty = true;
                    rotator.write(&s)
                }
                Err(_) => break rotator.close(),
            },
            default(due) => Ok(()),
        };
        if let Err(e) = step {
            break Err(e);
        }
        if dirty && last_flush.elapsed() >= FLUSH_EVERY {
            if let Err(e) = rotator.flush() {
                break Err(e);
            }
            dirty = false;
            last_flush = Instant::now();
        } else if !dirty {
            last_flush = Instant::now();
        }
    };
    if let Err(e) = result {
        tracing::error!(
            "sample files stop: {e:#}; a reload with other [sampling] pcap settings or a \
             restart starts them again"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use validator::{Decision, Direction, Reason, Verdict};

    fn sample(i: u64) -> Sample {
        Sample {
            port: Direction::FromOutside,
            decision: Decision::new(Verdict::Drop, Reason::UnknownTunnel),
            len: 100,
            at_ns: i,
            data: vec![7; 100],
        }
    }

    fn packets(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|f| {
                let f = std::fs::File::open(f.unwrap().path()).unwrap();
                let mut r = pcap_file::pcap::PcapReader::new(f).unwrap();
                let mut n = 0;
                while let Some(p) = r.next_packet() {
                    p.unwrap();
                    n += 1;
                }
                n
            })
            .sum()
    }

    fn settings(dir: &std::path::Path) -> PcapSettings {
        PcapSettings {
            dir: dir.to_path_buf(),
            rotate_mb: 64,
            keep: 10,
        }
    }

    #[test]
    fn a_full_queue_sheds_and_everything_queued_is_written_at_stop() {
        let dir = tempfile::tempdir().unwrap();
        let w = PcapWriter::start(&settings(dir.path()), SystemTime::now(), 8).unwrap();
        let offers: Vec<Offer> = (0..100_000).map(|i| w.offer(sample(i))).collect();
        let queued = offers.iter().filter(|o| **o == Offer::Queued).count();
        let shed = offers.iter().filter(|o| **o == Offer::Shed).count();
        // 100 000 offers in a tight loop outrun a writer with room for 8.
        assert!(shed > 0, "nothing shed");
        assert_eq!(queued + shed, 100_000);
        assert!(w.stop(Duration::from_secs(5)));
        assert_eq!(packets(dir.path()), queued);
    }

    #[test]
    fn files_are_flushed_within_a_second_while_the_writer_runs() {
        let dir = tempfile::tempdir().unwrap();
        let w = PcapWriter::start(&settings(dir.path()), SystemTime::now(), QUEUE).unwrap();
        for i in 0..10 {
            assert_eq!(w.offer(sample(i)), Offer::Queued);
        }
        std::thread::sleep(FLUSH_EVERY + Duration::from_millis(300));
        assert_eq!(packets(dir.path()), 10);
        assert!(w.stop(Duration::from_secs(1)));
    }

    #[test]
    fn new_settings_move_the_files_and_apply_the_new_limit() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        for i in 0..5 {
            std::fs::write(b.path().join(format!("greguard-1-00000{i}.pcap")), b"").unwrap();
        }
        let w = PcapWriter::start(&settings(a.path()), SystemTime::now(), QUEUE).unwrap();
        assert_eq!(w.offer(sample(1)), Offer::Queued);
        let mut to_b = settings(b.path());
        to_b.keep = 2;
        w.reconfigure(to_b, Duration::from_secs(1)).unwrap();
        // Applied before the next sample is written.
        let deadline = Instant::now() + Duration::from_secs(2);
        while std::fs::read_dir(b.path()).unwrap().count() > 2 {
            assert!(Instant::now() < deadline, "not applied");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(w.offer(sample(2)), Offer::Queued);
        assert!(w.stop(Duration::from_secs(1)));
        assert_eq!(packets(a.path()), 1);
        // The newest old file and the new one.
        let mut names: Vec<String> = std::fs::read_dir(b.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names.len(), 2, "{names:?}");
        assert_eq!(names[0], "greguard-1-000004.pcap");
        std::fs::remove_file(b.path().join(&names[0])).unwrap();
        assert_eq!(packets(b.path()), 1);
    }

    #[test]
    fn a_write_error_ends_the_writer_and_offers_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let w = PcapWriter::start(&settings(dir.path()), SystemTime::now(), QUEUE).unwrap();
        // The directory goes away under the writer: the first file cannot be created.
        std::fs::remove_dir_all(dir.path()).unwrap();
        let _ = w.offer(sample(1));
        let deadline = Instant::now() + Duration::from_secs(2);
        while !w.gone() {
            assert!(Instant::now() < deadline, "writer still running");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(w.offer(sample(2)), Offer::Gone);
        assert!(w.stop(Duration::from_secs(1)));
    }
}

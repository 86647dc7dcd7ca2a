//! Rotating pcap files of the sampled frames (`[sampling] pcap_dir`): Ethernet link type,
//! nanosecond timestamps from when the worker took the frame, original lengths, at most
//! `snaplen` bytes each. A file is closed when the next frame would take it past
//! `pcap_rotate_mb`. At most `pcap_keep` greguard sample files stay in the directory, counting
//! those earlier runs left there: a restart loop must not fill the disk. tcpdump and Wireshark
//! open them.
//!
//! Writes are buffered (the pcap writer thread calls [`PcapRotator::flush`] at least once a
//! second, at every rotation and at stop), so a file is readable up to its last flush.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{BufWriter, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use datapath::Sample;
use pcap_file::pcap::PcapHeader;
use pcap_file::{DataLink, Endianness, TsResolution};

/// pcap's file header and per-record header sizes, for the rotation arithmetic.
const FILE_HEADER: u64 = 24;
const RECORD_HEADER: u64 = 16;

/// Buffer of the file being written: a few hundred samples per write(2).
const BUFFER: usize = 256 << 10;

/// Where and how sample files are written: `[sampling] pcap_dir`, `pcap_rotate_mb`,
/// `pcap_keep`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcapSettings {
    pub dir: PathBuf,
    pub rotate_mb: u64,
    pub keep: u32,
}

impl PcapSettings {
    /// The pcap part of `[sampling]`, when files are asked for.
    pub fn of(s: &config::Sampling) -> Option<PcapSettings> {
        s.pcap_dir.as_ref().map(|dir| PcapSettings {
            dir: dir.clone(),
            rotate_mb: s.pcap_rotate_mb,
            keep: s.pcap_keep,
        })
    }
}

/// Writes samples into `greguard-<run>-<seq>.pcap` files in one directory.
pub struct PcapRotator {
    dir: PathBuf,
    /// Unix seconds of the run's start: part of every file name, so runs never mix.
    run: u64,
    rotate_bytes: u64,
    keep: usize,
    seq: u64,
    current: Option<(BufWriter<File>, u64)>,
    /// The greguard sample files in `dir`, oldest first: those found at start (by run, then
    /// sequence number), then this rotator's in the order it opened them.
    files: VecDeque<PathBuf>,
    /// Wall-clock time of the data path's epoch.
    epoch_wall: SystemTime,
}

/// The run and sequence number of a `greguard-<run>-<seq>.pcap` name.
fn parse_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_prefix("greguard-")?.strip_suffix(".pcap")?;
    let (run, seq) = stem.split_once('-')?;
    Some((run.parse().ok()?, seq.parse().ok()?))
}

/// The greguard sample files in `dir`, oldest first.
fn existing(dir: &Path) -> Result<Vec<(u64, u64, PathBuf)>> {
    let mut found = Vec::new();
    let entries = fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        if let Some((run, seq)) = entry.file_name().to_str().and_then(parse_name) {
            found.push((run, seq, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

impl PcapRotator {
    /// A rotator writing into `settings.dir` (created if missing). The oldest sample files
    /// already there beyond `keep` are removed now; a new file makes room for itself when it
    /// is opened.
    pub fn new(settings: &PcapSettings, epoch_wall: SystemTime) -> Result<Self> {
        let dir = &settings.dir;
        fs::create_dir_all(dir)
            .with_context(|| format!("creating the sample directory {}", dir.display()))?;
        let run = epoch_wall
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let found = existing(dir)?;
        // A run started in the same second (a quick restart, a reload into the same directory)
        // goes on after its files instead of overwriting them.
        let seq = found
            .iter()
            .filter(|(r, _, _)| *r == run)
            .map(|(_, s, _)| *s)
            .max()
            .unwrap_or(0);
        let mut rotator = PcapRotator {
            dir: dir.clone(),
            run,
            rotate_bytes: settings.rotate_mb.max(1) << 20,
            keep: settings.keep.max(1) as usize,
            seq,
            current: None,
            files: found.into_iter().map(|(_, _, p)| p).collect(),
            epoch_wall,
        };
        rotator.prune(rotator.keep)?;
        Ok(rotator)
    }

    /// The sample files this rotator knows of in its directory, oldest first.
    #[cfg(test)]
    pub fn files(&self) -> Vec<PathBuf> {
        self.files.iter().cloned().collect()
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir
            .join(format!("greguard-{}-{:06}.pcap", self.run, seq))
    }

    /// Removes the oldest files until at most `limit` are left.
    fn prune(&mut self, limit: usize) -> Result<()> {
        while self.files.len() > limit {
            let Some(oldest) = self.files.pop_front() else {
                break;
            };
            match fs::remove_file(&oldest) {
                Err(e) if e.kind() != ErrorKind::NotFound => {
                    self.files.push_front(oldest.clone());
                    return Err(e).with_context(|| {
                        format!("removing the old sample file {}", oldest.display())
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Appends one sample, rotating first when it would not fit.
    pub fn write(&mut self, sample: &Sample) -> Result<()> {
        let data = sample.bytes();
        // pcap keeps a record's length in a u32 (a sample holds at most a snap length).
        let incl = u32::try_from(data.len())
            .with_context(|| format!("a sample of {} bytes is too long for pcap", data.len()))?;
        let record = RECORD_HEADER + u64::from(incl);
        let full = self
            .current
            .as_ref()
            .is_some_and(|(_, size)| size + record > self.rotate_bytes);
        if full {
            self.close()?;
        }
        if self.current.is_none() {
            self.open()?;
        }
        let ts = self
            .epoch_wall
            .checked_add(Duration::from_nanos(sample.at_ns))
            .unwrap_or(self.epoch_wall)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        // The record header, big-endian like the file header (pcap-file's default); 16 bytes.
        #[allow(clippy::cast_possible_truncation)]
        let mut header = [0u8; RECORD_HEADER as usize];
        let seconds = u32::try_from(ts.as_secs()).unwrap_or(u32::MAX);
        header[0..4].copy_from_slice(&seconds.to_be_bytes());
        header[4..8].copy_from_slice(&ts.subsec_nanos().to_be_bytes());
        header[8..12].copy_from_slice(&incl.to_be_bytes());
        header[12..16].copy_from_slice(&sample.len.max(incl).to_be_bytes());
        if let Some((w, size)) = self.current.as_mut() {
            w.write_all(&header)
                .and_then(|()| w.write_all(data))
                .context("writing a sample")?;
            *size += record;
        }
        Ok(())
    }

    /// Writes what is buffered to the current file.
    pub fn flush(&mut self) -> Result<()> {
        if let Some((w, _)) = self.current.as_mut() {
            w.flush().context("writing samples")?;
        }
        Ok(())
    }

    /// Flushes and closes the current file.
    pub fn close(&mut self) -> Result<()> {
        let flushed = self.flush();
        self.current = None;
        flushed
    }

    fn open(&mut self) -> Result<()> {
        // Room for the new file first: at no moment more than `keep` files.
        self.prune(self.keep - 1)?;
        self.seq += 1;
        let path = self.path(self.seq);
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut writer = BufWriter::with_capacity(BUFFER, file);
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::NanoSecond,
            endianness: Endianness::Big,
            // The largest frame the box can see; records hold at most MAX_SNAPLEN bytes of it
            // (readers such as pcap-file reject an original length above the header's snaplen).
            snaplen: 65535,
            ..PcapHeader::default()
        };
        header
            .write_to(&mut writer)
            .with_context(|| format!("writing {}", path.display()))?;
        self.current = Some((writer, FILE_HEADER));
        self.files.push_back(path);
        Ok(())
    }
}

#[cfg(test)]
// Test samples are a few hundred bytes: their lengths fit u32.
#[allow(clippy::cast_possible_truncation)]
mod tests {
    use super::*;
    use validator::{Decision, Direction, Reason, Verdict};

    fn sample(bytes: usize) -> Sample {
        Sample {
            port: Direction::FromOutside,
            decision: Decision::new(Verdict::Drop, Reason::UnknownTunnel),
            len: bytes as u32,
            at_ns: 1_000,
            data: vec![0xab; bytes],
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn settings(dir: &Path, keep: u32) -> PcapSettings {
        PcapSettings {
            dir: dir.to_path_buf(),
            rotate_mb: 1,
            keep,
        }
    }

    #[test]
    fn start_removes_the_oldest_files_of_earlier_runs_beyond_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        // Runs 100 (three files) and 20 (one), an unrelated file, and a name that only looks
        // like ours: sorted by run and number, not by name (20 < 100).
        for name in [
            "greguard-100-000001.pcap",
            "greguard-100-000002.pcap",
            "greguard-100-000010.pcap",
            "greguard-20-000007.pcap",
            "notes.txt",
            "greguard-x-1.pcap",
        ] {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        let at = UNIX_EPOCH + Duration::from_secs(200);
        let mut r = PcapRotator::new(&settings(dir.path(), 2), at).unwrap();
        assert_eq!(
            names(dir.path()),
            [
                "greguard-100-000002.pcap",
                "greguard-100-000010.pcap",
                "greguard-x-1.pcap",
                "notes.txt"
            ]
        );
        // The first file of this run replaces the oldest: still two of ours.
        r.write(&sample(100)).unwrap();
        r.close().unwrap();
        assert_eq!(
            names(dir.path()),
            [
                "greguard-100-000010.pcap",
                "greguard-200-000001.pcap",
                "greguard-x-1.pcap",
                "notes.txt"
            ]
        );
    }

    #[test]
    fn restarts_and_rotations_never_leave_more_than_keep_files() {
        let dir = tempfile::tempdir().unwrap();
        for run in 0..3u64 {
            // Two runs in the same second: the second goes on after the first's numbers.
            let at = UNIX_EPOCH + Duration::from_secs(1_000 + run / 2);
            let mut r = PcapRotator::new(&settings(dir.path(), 3), at).unwrap();
            // 2.5 MB of samples in 1 MB files: three files per run.
            for _ in 0..2_500 {
                r.write(&sample(1_000)).unwrap();
                assert!(names(dir.path()).len() <= 3);
            }
            r.close().unwrap();
        }
        assert_eq!(
            names(dir.path()),
            [
                "greguard-1001-000001.pcap",
                "greguard-1001-000002.pcap",
                "greguard-1001-000003.pcap"
            ]
        );
    }

    #[test]
    fn a_quick_restart_does_not_overwrite_the_previous_run() {
        let dir = tempfile::tempdir().unwrap();
        let at = UNIX_EPOCH + Duration::from_secs(5);
        for _ in 0..2 {
            let mut r = PcapRotator::new(&settings(dir.path(), 10), at).unwrap();
            r.write(&sample(64)).unwrap();
            r.close().unwrap();
        }
        assert_eq!(
            names(dir.path()),
            ["greguard-5-000001.pcap", "greguard-5-000002.pcap"]
        );
    }

    #[test]
    fn flushed_files_read_back_with_their_samples() {
        let dir = tempfile::tempdir().unwrap();
        let at = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut r = PcapRotator::new(&settings(dir.path(), 10), at).unwrap();
        for n in [64, 100, 128] {
            r.write(&sample(n)).unwrap();
        }
        r.flush().unwrap();
        let path = r.files()[0].clone();
        let mut reader = pcap_file::pcap::PcapReader::new(File::open(&path).unwrap()).unwrap();
        assert_eq!(reader.header().datalink, DataLink::ETHERNET);
        let mut lengths = Vec::new();
        while let Some(p) = reader.next_packet() {
            let p = p.unwrap();
            assert_eq!(
                p.timestamp,
                Duration::from_secs(1_700_000_000) + Duration::from_nanos(1_000)
            );
            assert_eq!(p.orig_len as usize, p.data.len());
            lengths.push(p.data.len());
        }
        assert_eq!(lengths, [64, 100, 128]);
    }
}

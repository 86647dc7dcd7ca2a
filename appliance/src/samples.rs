//! Rotating pcap files of the sampled frames (`[sampling] pcap_dir`): Ethernet link type,
//! nanosecond timestamps from when the worker took the frame, original lengths, at most
//! `snaplen` bytes each. A file is closed when the next frame would take it past
//! `pcap_rotate_mb`; only the newest `pcap_keep` files are kept. tcpdump and Wireshark open
//! them. Samples are written unbuffered (two writes each, on the slow path), so a file is
//! readable up to its last sample at any moment.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use fastpath::afxdp::Sample;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, TsResolution};

/// pcap's file header and per-record header sizes, for the rotation arithmetic.
const FILE_HEADER: u64 = 24;
const RECORD_HEADER: u64 = 16;

/// Writes samples into `greguard-<start>-<seq>.pcap` files in one directory.
pub struct PcapRotator {
    dir: PathBuf,
    /// Unix seconds of the run's start: part of every file name, so runs never mix.
    run: u64,
    rotate_bytes: u64,
    keep: usize,
    seq: u64,
    current: Option<(PcapWriter<File>, u64)>,
    /// Wall-clock time of the data path's epoch.
    epoch_wall: SystemTime,
}

impl PcapRotator {
    /// A rotator writing into `dir` (created if missing).
    pub fn new(dir: &Path, rotate_mb: u64, keep: u32, epoch_wall: SystemTime) -> Result<Self> {
        fs::create_dir_all(dir)
            .with_context(|| format!("creating the sample directory {}", dir.display()))?;
        Ok(PcapRotator {
            dir: dir.to_path_buf(),
            run: epoch_wall
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
            rotate_bytes: rotate_mb.max(1) << 20,
            keep: keep.max(1) as usize,
            seq: 0,
            current: None,
            epoch_wall,
        })
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir
            .join(format!("greguard-{}-{:06}.pcap", self.run, seq))
    }

    /// Appends one sample, rotating first when it would not fit.
    pub fn write(&mut self, sample: &Sample) -> Result<()> {
        let data = sample.bytes();
        let record = RECORD_HEADER + data.len() as u64;
        let full = self
            .current
            .as_ref()
            .is_some_and(|(_, size)| size + record > self.rotate_bytes);
        if full {
            self.current = None;
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
        if let Some((w, size)) = self.current.as_mut() {
            w.write_packet(&PcapPacket::new(ts, sample.len, data))
                .context("writing a sample")?;
            *size += record;
        }
        Ok(())
    }

    fn open(&mut self) -> Result<()> {
        self.seq += 1;
        let path = self.path(self.seq);
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::NanoSecond,
            // The largest frame the box can see; records hold at most MAX_SNAPLEN bytes of it
            // (readers such as pcap-file reject an original length above the header's snaplen).
            snaplen: 65535,
            ..PcapHeader::default()
        };
        let writer = PcapWriter::with_header(file, header)
            .with_context(|| format!("writing {}", path.display()))?;
        self.current = Some((writer, FILE_HEADER));
        // Keep the newest `keep` files of this run.
        if self.seq > self.keep as u64 {
            let _ = fs::remove_file(self.path(self.seq - self.keep as u64));
        }
        Ok(())
    }
}

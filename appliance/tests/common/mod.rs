//! Helpers for the CLI tests: run the real `greguard` binary, write small captures and policies.

#![allow(dead_code)]
// Test captures hold small frames (their lengths fit u32); their timestamps, in nanoseconds
// since 1970, fit u64 until 2554.
#![allow(clippy::cast_possible_truncation)]

pub mod netns;
pub mod policies;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;

/// The workspace root (captures/ and config/examples/ live there).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The lab's berlin-branch tunnel alone (the generator builds its frames from a policy), with
/// `extra` lines added to its table.
pub fn berlin(extra: &str) -> String {
    format!(
        "[[tunnel]]\nname      = \"berlin-branch\"\npeer      = \"203.0.113.7\"\n\
         local     = \"198.51.100.10\"\nkey       = 1001\n\
         protocols = [\"ipv4\", \"ipv6\", \"keepalive\"]\n{extra}"
    )
}

/// Runs `greguard` with `args`.
pub fn greguard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_greguard"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run greguard")
}

/// Stdout and stderr as text.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Writes `frames` (timestamp in ns, bytes) as a pcap of link type `link`.
pub fn write_pcap(path: &Path, link: DataLink, frames: &[(u64, Vec<u8>)]) {
    let file = std::fs::File::create(path).expect("create capture");
    let header = PcapHeader {
        datalink: link,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(file, header).expect("pcap header");
    for (ts, data) in frames {
        w.write_packet(&PcapPacket::new(
            Duration::from_nanos(*ts),
            data.len() as u32,
            data,
        ))
        .expect("write packet");
    }
}

/// Reads a pcap back: (timestamp ns, orig_len, bytes) per frame, and its link type.
pub fn read_pcap(path: &Path) -> (DataLink, Vec<(u64, u32, Vec<u8>)>) {
    let file = std::fs::File::open(path).expect("open output capture");
    let mut r = pcap_file::pcap::PcapReader::new(file).expect("output is a pcap");
    let link = r.header().datalink;
    let mut out = Vec::new();
    while let Some(p) = r.next_packet() {
        let p = p.expect("packet");
        out.push((
            p.timestamp.as_nanos() as u64,
            p.orig_len,
            p.data.into_owned(),
        ));
    }
    (link, out)
}

/// One line of a `--verdicts` CSV after its frame number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvRow {
    pub port: String,
    pub verdict: String,
    pub reason: String,
    pub tunnel: String,
}

impl CsvRow {
    /// A row from its four fields, for comparisons.
    pub fn new(port: &str, verdict: &str, reason: &str, tunnel: &str) -> CsvRow {
        CsvRow {
            port: port.into(),
            verdict: verdict.into(),
            reason: reason.into(),
            tunnel: tunnel.into(),
        }
    }
}

/// Reads a `--verdicts` CSV into rows after checking the header and the frame numbers.
pub fn read_verdicts(path: &Path) -> Vec<CsvRow> {
    let text = std::fs::read_to_string(path).expect("verdict file");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("frame,port,verdict,reason,tunnel"));
    lines
        .enumerate()
        .map(|(i, l)| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 5, "line {l}");
            assert_eq!(f[0], (i + 1).to_string(), "frames numbered from 1");
            CsvRow::new(f[1], f[2], f[3], f[4])
        })
        .collect()
}

/// Runs `greguard replay -c POLICY CAPTURE EXTRA... --verdicts TMP`, asserts it succeeded and
/// returns the verdict rows.
pub fn replay_verdicts(policy: &Path, capture: &Path, extra: &[&str]) -> Vec<CsvRow> {
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = dir.path().join("verdicts.csv");
    let mut args = vec![
        "replay",
        "-c",
        policy.to_str().unwrap(),
        capture.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--verdicts", csv.to_str().unwrap()]);
    let o = greguard(&args);
    assert!(o.status.success(), "{args:?}: {:?}", text(&o));
    read_verdicts(&csv)
}

/// Every frame of the captures in `captures/` (pcap and pcapng), by file name.
pub fn capture_frames() -> Vec<(String, Vec<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join("captures"))
        .expect("captures/")
        .map(|e| e.expect("entry").path())
        .collect();
    paths.sort();
    for path in paths {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let mut frames = Vec::new();
        if name.ends_with(".pcap") {
            let file = std::fs::File::open(&path).expect("open capture");
            let mut r = pcap_file::pcap::PcapReader::new(file).expect("a pcap");
            while let Some(p) = r.next_packet() {
                frames.push(p.expect("packet").data.into_owned());
            }
        } else if name.ends_with(".pcapng") {
            let file = std::fs::File::open(&path).expect("open capture");
            let mut r = pcap_file::pcapng::PcapNgReader::new(file).expect("a pcapng");
            while let Some(block) = r.next_block() {
                if let pcap_file::pcapng::Block::EnhancedPacket(p) = block.expect("block") {
                    frames.push(p.data.into_owned());
                }
            }
        } else {
            continue;
        }
        out.push((name, frames));
    }
    out
}

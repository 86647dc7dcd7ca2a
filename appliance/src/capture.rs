//! Reading captures for `greguard replay`: pcap and pcapng through `pcap-file`, with every link
//! type the box understands turned into the Ethernet frame the data path would see.
//!
//! Linux cooked captures (SLL, SLL2) and raw-IP captures carry no Ethernet header; a synthetic one
//! (zero MAC addresses, the EtherType the capture names) is put in front so the same classifier
//! runs on them.
//!
//! A pcap header's link-type field is read as libpcap reads it: the link type is its low 16 bits,
//! and an FCS the field declares is taken off the end of every whole frame.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pcap_file::pcap::PcapReader;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::DataLink;

/// A capture could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("{path}: cannot open capture: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a pcap or pcapng capture (the file starts with {magic})")]
    NotACapture { path: PathBuf, magic: String },
    #[error("{path}: corrupt capture after {frames} frames: {detail}")]
    Corrupt {
        path: PathBuf,
        frames: u64,
        detail: String,
    },
    #[error("{path}: link type {link:?} is not supported (use Ethernet, Linux cooked or raw IP captures)")]
    LinkType { path: PathBuf, link: DataLink },
}

/// One captured frame, as Ethernet.
#[derive(Debug)]
pub struct Frame<'a> {
    /// The frame's number in the capture, from 1, as Wireshark numbers frames (skipped frames of
    /// other interfaces count too).
    pub number: u64,
    /// Capture timestamp in nanoseconds since the epoch.
    pub ts_ns: u64,
    /// Length on the wire (may exceed the captured bytes when the capture's snaplen cut it).
    pub orig_len: u32,
    /// The Ethernet frame (synthesised for cooked and raw-IP link types).
    pub data: Cow<'a, [u8]>,
    /// True when the capture holds fewer bytes than were on the wire.
    pub cut: bool,
    /// The `if_name` of the pcapng interface the frame was captured on, when the capture names
    /// it (pcap captures name none): `replay --port` maps it to a port of the box.
    pub interface: Option<Arc<str>>,
}

/// Pcap magic numbers (both byte orders, micro and nanosecond).
const PCAP_MAGICS: [[u8; 4]; 4] = [
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0x4d, 0x3c, 0xb2, 0xa1],
    [0xa1, 0xb2, 0x3c, 0x4d],
];
/// Pcapng section header block type.
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// The link type within a pcap header's link-type field (libpcap's `LT_LINKTYPE`).
const LT_LINKTYPE: u32 = 0x0000_FFFF;
/// Set when the field's top four bits give an FCS length (libpcap's `LT_FCS_LENGTH_PRESENT`).
const LT_FCS_LENGTH_PRESENT: u32 = 0x0400_0000;
/// Where the FCS length sits, in 16-bit words (libpcap's `LT_FCS_LENGTH`).
const LT_FCS_LENGTH_SHIFT: u32 = 28;

enum Inner {
    Pcap {
        reader: PcapReader<BufReader<File>>,
        link: DataLink,
        /// Bytes of FCS at the end of every whole frame, as the header's link-type field says.
        fcs: usize,
        /// Nanosecond timestamps (magic a1b23c4d) rather than microseconds.
        nanos: bool,
    },
    PcapNg {
        reader: PcapNgReader<BufReader<File>>,
        last_ts: u64,
        /// Frames of interfaces with a link type the box never sees.
        skipped: u64,
        /// The `if_name` of every interface of the current section, by interface id: kept
        /// from the blocks as they pass so a frame gets its name without an allocation.
        names: Vec<Option<Arc<str>>>,
    },
}

/// A capture file opened for reading.
pub struct Capture {
    path: PathBuf,
    inner: Inner,
    frames: u64,
}

impl Capture {
    /// Opens a pcap or pcapng file, telling them apart by their first four bytes.
    pub fn open(path: &Path) -> Result<Capture, CaptureError> {
        let open_err = |source| CaptureError::Open {
            path: path.to_owned(),
            source,
        };
        let mut file = File::open(path).map_err(open_err)?;
        let mut magic = [0u8; 4];
        let got = read_up_to(&mut file, &mut magic).map_err(open_err)?;
        let file = File::open(path).map_err(open_err)?;
        let reader = BufReader::with_capacity(1 << 20, file);
        let corrupt = |e: pcap_file::PcapError| CaptureError::Corrupt {
            path: path.to_owned(),
            frames: 0,
            detail: e.to_string(),
        };
        let inner = if got == 4 && PCAP_MAGICS.contains(&magic) {
            let reader = PcapReader::new(reader).map_err(corrupt)?;
            let header = reader.header();
            let (link, fcs) = split_link_field(header.datalink);
            check_link(path, link)?;
            let nanos = header.ts_resolution == pcap_file::TsResolution::NanoSecond;
            Inner::Pcap {
                reader,
                link,
                fcs,
                nanos,
            }
        } else if got == 4 && magic == PCAPNG_MAGIC {
            Inner::PcapNg {
                reader: PcapNgReader::new(reader).map_err(corrupt)?,
                last_ts: 0,
                skipped: 0,
                names: Vec::new(),
            }
        } else {
            let magic = magic[..got]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ");
            let magic = if magic.is_empty() {
                "nothing: it is empty".to_string()
            } else {
                magic
            };
            return Err(CaptureError::NotACapture {
                path: path.to_owned(),
                magic,
            });
        };
        Ok(Capture {
            path: path.to_owned(),
            inner,
            frames: 0,
        })
    }

    /// The interface names (`if_name`) of the whole capture, each once, in the order the
    /// capture describes them; `None` for a pcap, which has no interfaces. A pcapng may describe
    /// an interface after frames of others, so this reads the file once more from its start.
    pub fn interface_names(&self) -> Result<Option<Vec<String>>, CaptureError> {
        if let Inner::Pcap { .. } = self.inner {
            return Ok(None);
        }
        let file = File::open(&self.path).map_err(|source| CaptureError::Open {
            path: self.path.clone(),
            source,
        })?;
        let mut frames = 0u64;
        let corrupt = |frames: u64, e: pcap_file::PcapError| CaptureError::Corrupt {
            path: self.path.clone(),
            frames,
            detail: e.to_string(),
        };
        let mut reader = PcapNgReader::new(BufReader::with_capacity(1 << 20, file))
            .map_err(|e| corrupt(0, e))?;
        let mut names: Vec<String> = Vec::new();
        while let Some(block) = reader.next_block() {
            match block.map_err(|e| corrupt(frames, e))? {
                Block::InterfaceDescription(idb) => {
                    if let Some(name) = if_name(&idb.options) {
                        if !names.iter().any(|n| n.as_str() == name) {
                            names.push(name.to_string());
                        }
                    }
                }
                Block::EnhancedPacket(_) | Block::SimplePacket(_) | Block::Packet(_) => frames += 1,
                _ => {}
            }
        }
        Ok(Some(names))
    }

    /// Frames skipped because their pcapng interface has a link type the box never sees.
    pub fn skipped(&self) -> u64 {
        match &self.inner {
            Inner::PcapNg { skipped, .. } => *skipped,
            Inner::Pcap { .. } => 0,
        }
    }

    /// The next frame, `None` at the end of the capture.
    pub fn next_frame(&mut self) -> Option<Result<Frame<'_>, CaptureError>> {
        let frames = self.frames;
        let path = &self.path;
        let corrupt = |detail: String| CaptureError::Corrupt {
            path: path.clone(),
            frames,
            detail,
        };
        let counter = &mut self.frames;
        let out = match &mut self.inner {
            Inner::Pcap {
                reader,
                link,
                fcs,
                nanos,
            } => {
                // Raw records: pcap-file 2.0 refuses a record whose original length exceeds the
                // header's snap length, which is every cut frame of `tcpdump -s N`.
                let packet = match reader.next_raw_packet()? {
                    Ok(p) => p,
                    Err(e) => return Some(Err(corrupt(e.to_string()))),
                };
                let frac_ns = if *nanos {
                    u64::from(packet.ts_frac)
                } else {
                    u64::from(packet.ts_frac) * 1000
                };
                let ts_ns = u64::from(packet.ts_sec) * 1_000_000_000 + frac_ns;
                let cut = (packet.data.len() as u64) < u64::from(packet.orig_len);
                let captured = without_fcs(packet.data.len(), packet.orig_len, *fcs);
                // What was taken off is FCS, on the wire as in the record.
                let fcs_taken = u32::try_from(packet.data.len() - captured).unwrap_or(0);
                let orig_len = packet.orig_len.saturating_sub(fcs_taken);
                let data = match packet.data {
                    Cow::Borrowed(b) => to_ethernet(*link, b.get(..captured).unwrap_or(b)),
                    Cow::Owned(v) => {
                        Cow::Owned(to_ethernet(*link, v.get(..captured).unwrap_or(&v)).into_owned())
                    }
                };
                *counter += 1;
                Ok(Frame {
                    number: *counter,
                    ts_ns,
                    orig_len: wire_len(orig_len, captured, data.len()),
                    data,
                    cut,
                    interface: None,
                })
            }
            Inner::PcapNg {
                reader,
                last_ts,
                skipped,
                names,
            } => loop {
                let block = match reader.next_block()? {
                    Ok(b) => b,
                    Err(e) => return Some(Err(corrupt(e.to_string()))),
                };
                // The block borrows the reader; take what is needed before asking for interfaces.
                let (iface, raw_ts, orig_len, data) = match block {
                    Block::EnhancedPacket(p) => (
                        p.interface_id,
                        Some(p.timestamp.as_nanos()),
                        p.original_len,
                        p.data.into_owned(),
                    ),
                    Block::SimplePacket(p) => (0, None, p.original_len, p.data.into_owned()),
                    Block::Packet(p) => (
                        u32::from(p.interface_id),
                        Some(u128::from(p.timestamp)),
                        p.original_len,
                        p.data.into_owned(),
                    ),
                    // Interface ids start again at 0 in every section (pcapng §4.1).
                    Block::SectionHeader(_) => {
                        names.clear();
                        continue;
                    }
                    Block::InterfaceDescription(idb) => {
                        names.push(if_name(&idb.options).map(Arc::from));
                        continue;
                    }
                    _ => continue,
                };
                *counter += 1;
                let Some(idb) = reader.interfaces().get(iface as usize) else {
                    break Err(corrupt(format!(
                        "a packet names interface {iface}, which the capture never described"
                    )));
                };
                let link = idb.linktype;
                if check_link(path, link).is_err() {
                    // Another interface of the capture (a loopback, a wireless monitor, ...):
                    // not traffic the box would see; counted and skipped.
                    *skipped += 1;
                    continue;
                }
                // pcap-file hands the raw 64-bit timestamp over as if it were nanoseconds; scale it
                // by the interface's if_tsresol (default 10^-6 s) and add if_tsoffset (pcapng §4.2).
                if let Some(raw) = raw_ts {
                    *last_ts = scale_timestamp(raw, tsresol(&idb.options))
                        .saturating_add_signed(tsoffset(&idb.options));
                }
                // A simple packet block's data includes its padding: keep what was captured.
                let data = if raw_ts.is_none() {
                    let keep = (orig_len as usize).min(if idb.snaplen == 0 {
                        usize::MAX
                    } else {
                        idb.snaplen as usize
                    });
                    data.get(..keep).map_or(data.clone(), <[u8]>::to_vec)
                } else {
                    data
                };
                let cut = (data.len() as u64) < u64::from(orig_len);
                let frame = to_ethernet(link, &data).into_owned();
                break Ok(Frame {
                    number: *counter,
                    ts_ns: *last_ts,
                    orig_len: wire_len(orig_len, data.len(), frame.len()),
                    data: Cow::Owned(frame),
                    cut,
                    interface: names.get(iface as usize).cloned().flatten(),
                });
            },
        };
        Some(out)
    }
}

/// The on-the-wire length of the Ethernet frame made of a captured frame: the original length,
/// adjusted by what replacing the link header added or removed.
fn wire_len(orig_len: u32, captured: usize, ethernet: usize) -> u32 {
    let delta = ethernet as i64 - captured as i64;
    u32::try_from((i64::from(orig_len) + delta).max(ethernet as i64)).unwrap_or(u32::MAX)
}

/// Splits a pcap header's link-type field as libpcap does (pcap/pcap.h's `LT_*` macros) into the
/// link type and the bytes of FCS at the end of every frame. pcap-file takes the whole 32-bit
/// field for the link type, so a header with FCS bits (or tcpdump's fuzzed captures, which set
/// the top bits without the FCS flag) would read as an unknown link type. Bits 16–25 are
/// reserved; libpcap ignores them, and so does this.
fn split_link_field(field: DataLink) -> (DataLink, usize) {
    let raw = u32::from(field);
    let link = DataLink::from(raw & LT_LINKTYPE);
    let fcs_words = if raw & LT_FCS_LENGTH_PRESENT != 0 {
        raw >> LT_FCS_LENGTH_SHIFT
    } else {
        0
    };
    (link, fcs_words as usize * 2)
}

/// How many of a pcap record's `captured` bytes are the frame: all of them but the `fcs` bytes of
/// FCS when the record holds the whole frame. A frame cut by the snap length lost its FCS with
/// its tail, and a record shorter than the FCS holds none, so those keep every byte.
fn without_fcs(captured: usize, orig_len: u32, fcs: usize) -> usize {
    let whole = captured as u64 == u64::from(orig_len);
    match captured.checked_sub(fcs) {
        Some(frame) if whole => frame,
        _ => captured,
    }
}

/// The interface's `if_name` option, if it has one.
fn if_name<'a>(options: &'a [InterfaceDescriptionOption<'_>]) -> Option<&'a str> {
    options.iter().find_map(|o| match o {
        InterfaceDescriptionOption::IfName(name) => Some(&**name),
        _ => None,
    })
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

fn check_link(path: &Path, link: DataLink) -> Result<(), CaptureError> {
    match link {
        DataLink::ETHERNET
        | DataLink::LINUX_SLL
        | DataLink::LINUX_SLL2
        | DataLink::RAW
        | DataLink::IPV4
        | DataLink::IPV6 => Ok(()),
        link => Err(CaptureError::LinkType {
            path: path.to_owned(),
            link,
        }),
    }
}

fn tsoffset(options: &[InterfaceDescriptionOption<'_>]) -> i64 {
    options
        .iter()
        .find_map(|o| match o {
            // The offset is a signed number of seconds stored in a u64 (pcapng §4.2).
            InterfaceDescriptionOption::IfTsOffset(secs) => {
                Some((*secs as i64).saturating_mul(1_000_000_000))
            }
            _ => None,
        })
        .unwrap_or(0)
}

fn tsresol(options: &[InterfaceDescriptionOption<'_>]) -> u8 {
    options
        .iter()
        .find_map(|o| match o {
            InterfaceDescriptionOption::IfTsResol(r) => Some(*r),
            _ => None,
        })
        .unwrap_or(6)
}

/// Converts a pcapng timestamp in units of `resol` (10^-n s, or 2^-n s with the high bit) to ns.
fn scale_timestamp(raw: u128, resol: u8) -> u64 {
    let ns = if resol & 0x80 != 0 {
        let shift = u32::from(resol & 0x7f).min(127);
        (raw * 1_000_000_000) >> shift
    } else {
        let exp = u32::from(resol).min(38);
        if exp >= 9 {
            raw / 10u128.pow(exp - 9)
        } else {
            raw.saturating_mul(10u128.pow(9 - exp))
        }
    };
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// The Ethernet frame for a captured frame of link type `link`. A frame too short for its link
/// header becomes an empty frame, which the classifier calls `truncated`.
pub fn to_ethernet(link: DataLink, data: &[u8]) -> Cow<'_, [u8]> {
    let parts: Option<(u16, &[u8])> = match link {
        DataLink::ETHERNET => return Cow::Borrowed(data),
        // SLL: packet type, ARPHRD, address length, 8-byte address, protocol (16 bytes).
        DataLink::LINUX_SLL => data
            .get(14..16)
            .zip(data.get(16..))
            .map(|(p, l3)| (u16::from_be_bytes([p[0], p[1]]), l3)),
        // SLL2: protocol first, then reserved, ifindex, ARPHRD, type, address (20 bytes).
        DataLink::LINUX_SLL2 => data
            .get(..2)
            .zip(data.get(20..))
            .map(|(p, l3)| (u16::from_be_bytes([p[0], p[1]]), l3)),
        DataLink::RAW => data
            .first()
            .map(|v| (if v >> 4 == 6 { 0x86DD } else { 0x0800 }, data)),
        DataLink::IPV4 => Some((0x0800, data)),
        DataLink::IPV6 => Some((0x86DD, data)),
        _ => None,
    };
    let Some((ethertype, l3)) = parts else {
        return Cow::Owned(Vec::new());
    };
    let mut frame = Vec::with_capacity(14 + l3.len());
    frame.extend_from_slice(&[0; 12]);
    frame.extend_from_slice(&ethertype.to_be_bytes());
    frame.extend_from_slice(l3);
    Cow::Owned(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcapng_timestamps_follow_if_tsresol() {
        assert_eq!(scale_timestamp(1_500_000, 6), 1_500_000_000);
        assert_eq!(scale_timestamp(1_500_000_000, 9), 1_500_000_000);
        assert_eq!(scale_timestamp(1 << 20, 0x80 | 20), 1_000_000_000);
        assert_eq!(scale_timestamp(15, 1), 1_500_000_000);
    }

    #[test]
    fn the_link_type_field_splits_as_libpcap_splits_it() {
        // tcpdump's fuzzed GRE captures: top bits set, FCS flag clear.
        assert_eq!(
            split_link_field(DataLink::from(0x3000_0001)),
            (DataLink::ETHERNET, 0)
        );
        // FCS present, 2 words.
        assert_eq!(
            split_link_field(DataLink::from(0x0400_0000 | (2 << 28) | 1)),
            (DataLink::ETHERNET, 4)
        );
        // Reserved bits are ignored; the largest FCS is 15 words.
        assert_eq!(
            split_link_field(DataLink::from(0xF7FF_0071)),
            (DataLink::LINUX_SLL, 30)
        );
        assert_eq!(
            split_link_field(DataLink::ETHERNET),
            (DataLink::ETHERNET, 0)
        );
    }

    #[test]
    fn fcs_comes_off_whole_frames_only() {
        assert_eq!(without_fcs(64, 64, 4), 60);
        // Cut by the snap length: the FCS was not captured.
        assert_eq!(without_fcs(40, 64, 4), 40);
        // Shorter than the FCS it should hold.
        assert_eq!(without_fcs(3, 3, 4), 3);
        assert_eq!(without_fcs(4, 4, 4), 0);
        assert_eq!(without_fcs(64, 64, 0), 64);
        // A record claiming more than was on the wire is no whole frame either.
        assert_eq!(without_fcs(64, 60, 4), 64);
    }

    #[test]
    fn cooked_and_raw_frames_get_an_ethernet_header() {
        let mut sll = vec![0u8; 16];
        sll[14] = 0x86;
        sll[15] = 0xDD;
        sll.push(0x60);
        let f = to_ethernet(DataLink::LINUX_SLL, &sll);
        assert_eq!(&f[12..], &[0x86, 0xDD, 0x60]);
        let raw = [0x45u8, 0];
        assert_eq!(
            &to_ethernet(DataLink::RAW, &raw)[12..],
            &[0x08, 0x00, 0x45, 0]
        );
        // Too short for the link header: an empty frame, which classifies as truncated.
        assert!(to_ethernet(DataLink::LINUX_SLL, &[0; 10]).is_empty());
        assert!(to_ethernet(DataLink::LINUX_SLL2, &[0; 19]).is_empty());
        assert!(to_ethernet(DataLink::RAW, &[]).is_empty());
    }
}

//! `greguard replay` end to end: the real binary on captures made by scapy (captures/) and on
//! captures these tests write.

// Test frames and captures are small (their lengths fit u32), a draw below a usize bound fits
// usize, and random bytes are draws below 256.
#![allow(clippy::cast_possible_truncation)]

mod common;

use std::net::Ipv4Addr;

use common::*;
use frames::{payload, FrameBuilder, Gre};
use pcap_file::DataLink;

const PEER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);

fn tunnel_frame(src: Ipv4Addr, dst: Ipv4Addr, key: u32) -> Vec<u8> {
    let inner = payload::ipv4_udp(
        Ipv4Addr::new(10, 1, 0, 1),
        Ipv4Addr::new(10, 2, 0, 1),
        4000,
        53,
        b"query",
    );
    FrameBuilder::ipv4(src, dst)
        .gre(Gre::v0(0x0800).key(key), inner)
        .build()
}

fn policy(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    let p = dir.join("policy.toml");
    std::fs::write(&p, body).unwrap();
    p
}

const ONE_TUNNEL: &str = r#"
[[tunnel]]
name  = "berlin"
peer  = "203.0.113.7"
local = "198.51.100.10"
key   = 1001
rate  = { pps = 10, burst = 2 }
"#;

/// Compares replay's CSV with the expected CSV written by captures/make-captures.py (`*` = any
/// verdict, reason and tunnel). The shipped captures are replayed from the outside port.
fn check_shipped(capture: &str, expected: &str) {
    let csv_text = std::fs::read_to_string(root().join("captures").join(expected)).unwrap();
    let policy = csv_text
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("# policy: ")
        .to_string();
    let got = replay_verdicts(
        &root().join(policy),
        &root().join("captures").join(capture),
        &[],
    );
    assert_eq!(
        csv_text.lines().nth(1),
        Some("frame,port,verdict,reason,tunnel"),
        "{expected}: header"
    );
    let want: Vec<CsvRow> = csv_text
        .lines()
        .skip(2)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 5, "{expected}: {l}");
            CsvRow::new(f[1], f[2], f[3], f[4])
        })
        .collect();
    assert_eq!(got.len(), want.len(), "frame count of {capture}");
    let mut checked = 0;
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(w.port, "outside", "{expected} frame {}", i + 1);
        assert_eq!(g.port, w.port, "{capture} frame {}", i + 1);
        if w.verdict == "*" {
            assert!(
                validator::Reason::from_name(&g.reason).is_some(),
                "frame {}: {g:?}",
                i + 1
            );
            continue;
        }
        assert_eq!(g, w, "{capture} frame {}", i + 1);
        checked += 1;
    }
    assert!(checked >= 10, "{capture}: only {checked} labelled frames");
}

#[test]
fn backscatter_capture_gets_the_verdicts_scapy_labelled() {
    check_shipped("backscatter-mix.pcap", "backscatter-mix.expected.csv");
}

#[test]
fn pptp_pcapng_capture_gets_the_verdicts_scapy_labelled() {
    check_shipped("pptp.pcapng", "pptp.expected.csv");
}

#[test]
fn dmvpn_capture_with_fuzzed_gre_gets_the_verdicts_scapy_labelled() {
    check_shipped("dmvpn-hub.pcap", "dmvpn-hub.expected.csv");
}

#[test]
fn forward_and_drop_pcaps_split_the_capture_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (fwd, drop, csv) = (
        dir.path().join("f.pcap"),
        dir.path().join("d.pcap"),
        dir.path().join("v.csv"),
    );
    let o = greguard(&[
        "replay",
        "-c",
        "config/examples/small-site.toml",
        "captures/backscatter-mix.pcap",
        "--forward",
        fwd.to_str().unwrap(),
        "--drop",
        drop.to_str().unwrap(),
        "--verdicts",
        csv.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{:?}", text(&o));
    let verdicts = read_verdicts(&csv);
    let (flink, forwarded) = read_pcap(&fwd);
    let (dlink, dropped) = read_pcap(&drop);
    assert_eq!(flink, DataLink::ETHERNET);
    assert_eq!(dlink, DataLink::ETHERNET);
    let n_fwd = verdicts.iter().filter(|v| v.verdict == "forward").count();
    assert_eq!(forwarded.len(), n_fwd);
    assert_eq!(dropped.len(), verdicts.len() - n_fwd);
    // Frames are written unchanged, in order, with their capture timestamps.
    let (_, input) = read_pcap(&root().join("captures/backscatter-mix.pcap"));
    let mut f = forwarded.iter();
    let mut d = dropped.iter();
    for (frame, v) in input.iter().zip(&verdicts) {
        let out = if v.verdict == "forward" {
            f.next()
        } else {
            d.next()
        }
        .unwrap();
        assert_eq!(out, frame);
    }
    // tcpdump (installed by `make test`) opens them.
    if let Ok(t) = std::process::Command::new("tcpdump")
        .args(["-nr", fwd.to_str().unwrap()])
        .output()
    {
        assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
        assert_eq!(String::from_utf8_lossy(&t.stdout).lines().count(), n_fwd);
    }
    let (stdout, _) = text(&o);
    assert!(stdout.contains("unknown_tunnel"), "{stdout}");
    let total_line = stdout
        .lines()
        .find(|l| l.starts_with("forwarded"))
        .expect("a forwarded line");
    assert_eq!(
        total_line.split_whitespace().nth(1),
        Some(n_fwd.to_string().as_str()),
        "{stdout}"
    );
}

#[test]
fn from_inside_reverses_the_tunnel_orientation() {
    let dir = tempfile::tempdir().unwrap();
    let pol = policy(dir.path(), ONE_TUNNEL);
    let cap = dir.path().join("in.pcap");
    // Concentrator → branch: source is the local end.
    write_pcap(
        &cap,
        DataLink::ETHERNET,
        &[(1_000_000_000, tunnel_frame(LOCAL, PEER, 1001))],
    );
    for (from, reason) in [("inside", "tunnel"), ("outside", "unknown_tunnel")] {
        let rows = replay_verdicts(&pol, &cap, &["--from", from]);
        assert_eq!(rows[0].reason, reason, "--from {from}");
        assert_eq!(rows[0].port, from);
    }
}

#[test]
fn policers_run_on_capture_time_and_give_the_same_result_every_run() {
    let dir = tempfile::tempdir().unwrap();
    let pol = policy(dir.path(), ONE_TUNNEL);
    let cap = dir.path().join("burst.pcap");
    // 6 frames at one instant (burst 2 passes), then 6 frames 100 ms apart (10 pps refills 1 each).
    let mut frames: Vec<(u64, Vec<u8>)> = (0..6)
        .map(|_| (5_000_000_000, tunnel_frame(PEER, LOCAL, 1001)))
        .collect();
    frames.extend((1..=6).map(|i| {
        (
            5_000_000_000 + i * 100_000_000,
            tunnel_frame(PEER, LOCAL, 1001),
        )
    }));
    write_pcap(&cap, DataLink::ETHERNET, &frames);
    let run = || {
        replay_verdicts(&pol, &cap, &[])
            .into_iter()
            .map(|v| v.reason)
            .collect::<Vec<_>>()
    };
    let first = run();
    let expect: Vec<&str> = ["tunnel", "tunnel"]
        .into_iter()
        .chain(["rate_limited"; 4])
        .chain(["tunnel"; 6])
        .collect();
    assert_eq!(first, expect);
    assert_eq!(run(), first);
}

#[test]
fn linux_cooked_and_raw_ip_captures_are_classified_like_ethernet() {
    let dir = tempfile::tempdir().unwrap();
    let pol = policy(dir.path(), ONE_TUNNEL);
    let eth = tunnel_frame(PEER, LOCAL, 1001);
    let ip = eth[14..].to_vec();
    let mut sll = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 0, 0, 1, 0x08, 0x00];
    sll.extend_from_slice(&ip);
    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 0, 0, 1,
    ];
    sll2.extend_from_slice(&ip);
    for (name, link, frame) in [
        ("sll", DataLink::LINUX_SLL, sll),
        ("sll2", DataLink::LINUX_SLL2, sll2),
        ("raw", DataLink::RAW, ip.clone()),
        ("ipv4", DataLink::IPV4, ip.clone()),
    ] {
        let cap = dir.path().join(format!("{name}.pcap"));
        write_pcap(&cap, link, &[(1, frame)]);
        assert_eq!(
            replay_verdicts(&pol, &cap, &[])[0],
            CsvRow::new("outside", "forward", "tunnel", "berlin"),
            "{name}"
        );
    }
}

#[test]
fn frames_cut_by_a_short_snap_length_are_truncated_with_a_note() {
    // As `tcpdump -s 40` writes them: header snaplen 40, records of 40 bytes with their full
    // original length.
    let dir = tempfile::tempdir().unwrap();
    let pol = policy(dir.path(), ONE_TUNNEL);
    let cap = dir.path().join("cut.pcap");
    let frame = tunnel_frame(PEER, LOCAL, 1001);
    let header = pcap_file::pcap::PcapHeader {
        snaplen: 40,
        ..Default::default()
    };
    let mut w =
        pcap_file::pcap::PcapWriter::with_header(std::fs::File::create(&cap).unwrap(), header)
            .unwrap();
    for i in 0..3u32 {
        let raw = pcap_file::pcap::RawPcapPacket {
            ts_sec: 100 + i,
            ts_frac: 0,
            incl_len: 40,
            orig_len: frame.len() as u32,
            data: std::borrow::Cow::Borrowed(&frame[..40]),
        };
        w.write_raw_packet(&raw).unwrap();
    }
    drop(w);
    let o = greguard(&["replay", "-c", pol.to_str().unwrap(), cap.to_str().unwrap()]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("3 frames were cut short"), "{out}");
    let rows = replay_verdicts(&pol, &cap, &[]);
    assert_eq!(
        rows,
        vec![CsvRow::new("outside", "drop", "truncated", ""); 3]
    );
}

#[test]
fn pcapng_frames_of_other_link_types_are_skipped_and_numbering_kept() {
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionBlock;
    use pcap_file::pcapng::PcapNgWriter;
    let dir = tempfile::tempdir().unwrap();
    let pol = policy(dir.path(), ONE_TUNNEL);
    let cap = dir.path().join("two.pcapng");
    let mut w = PcapNgWriter::new(std::fs::File::create(&cap).unwrap()).unwrap();
    w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::ETHERNET, 0))
        .unwrap();
    w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::NULL, 0))
        .unwrap();
    let frame = tunnel_frame(PEER, LOCAL, 1001);
    for iface in [0u32, 1, 0] {
        let data = if iface == 0 {
            frame.clone()
        } else {
            vec![2, 0, 0, 0, 0x45, 0]
        };
        let epb = EnhancedPacketBlock {
            interface_id: iface,
            timestamp: std::time::Duration::from_micros(1),
            original_len: data.len() as u32,
            data: std::borrow::Cow::Owned(data),
            options: vec![],
        };
        w.write_pcapng_block(epb).unwrap();
    }
    drop(w);
    let csv = dir.path().join("v.csv");
    let o = greguard(&[
        "replay",
        "-c",
        pol.to_str().unwrap(),
        cap.to_str().unwrap(),
        "--verdicts",
        csv.to_str().unwrap(),
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        out.contains("1 frames of interfaces with other link types"),
        "{out}"
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(
        text,
        "frame,port,verdict,reason,tunnel\n1,outside,forward,tunnel,berlin\n3,outside,forward,tunnel,berlin\n"
    );
}

/// The lab tunnel of systemd/greguard.toml (berlin-branch: peer 203.0.113.7, local
/// 198.51.100.10, key 1001).
fn lab_policy() -> std::path::PathBuf {
    root().join("systemd/greguard.toml")
}

/// Writes a little-endian microsecond pcap byte by byte, with `link_field` as the header's whole
/// link-type field (pcap-file writes a link type only). Records are (captured bytes, length on
/// the wire).
fn write_pcap_bytes(path: &std::path::Path, link_field: u32, records: &[(Vec<u8>, u32)]) {
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&0i32.to_le_bytes()); // thiszone
    b.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    b.extend_from_slice(&65_535u32.to_le_bytes()); // snaplen
    b.extend_from_slice(&link_field.to_le_bytes());
    for (i, (data, wire)) in records.iter().zip(0u32..).map(|(r, i)| (i, r)) {
        b.extend_from_slice(&(1_000 + i).to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes());
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(&wire.to_le_bytes());
        b.extend_from_slice(data);
    }
    std::fs::write(path, b).unwrap();
}

/// The records of a little-endian pcap, counted from its bytes alone (tcpdump's fuzzed captures
/// hold lengths pcap-file's checked reader refuses).
fn pcap_records(bytes: &[u8]) -> usize {
    let (mut at, mut n) = (24, 0);
    while let Some(h) = bytes.get(at..at + 16) {
        let incl = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
        at += 16 + incl;
        n += 1;
    }
    assert_eq!(at, bytes.len(), "the capture ends with a whole record");
    n
}

#[test]
fn tcpdump_fuzzed_gre_captures_with_bits_above_the_link_type_replay() {
    // tcpdump's regression captures set the top bits of the link-type field (0x30000001, FCS flag
    // clear): libpcap reads them as Ethernet, and so does replay. Their snap length cuts every
    // frame; the rest is '0' bytes.
    let expect = [
        (
            "gre-heapoverflow-1.pcap",
            [("forward", "non_gre"), ("drop", "bad_ip")],
        ),
        (
            "gre-heapoverflow-2.pcap",
            [("forward", "non_gre"), ("drop", "truncated")],
        ),
    ];
    for (name, want) in expect {
        let cap = root().join("captures/tcpdump").join(name);
        let bytes = std::fs::read(&cap).unwrap();
        assert_eq!(bytes[20..24], 0x3000_0001u32.to_le_bytes(), "{name}");
        let rows = replay_verdicts(&lab_policy(), &cap, &[]);
        assert_eq!(rows.len(), pcap_records(&bytes), "{name}: a line per frame");
        let got: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.verdict.as_str(), r.reason.as_str()))
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn an_fcs_declared_in_the_link_type_field_comes_off_whole_frames() {
    let dir = tempfile::tempdir().unwrap();
    let frame = tunnel_frame(PEER, LOCAL, 1001);
    let mut with_fcs = frame.clone();
    with_fcs.extend_from_slice(&[0xDE, 0xAD, 0xBE, 0xEF]);
    let wire = with_fcs.len() as u32;
    // Ethernet with an FCS of 2 16-bit words: the whole frame, then the frame cut by a snap
    // length, which lost its FCS with its tail.
    let fcs_cap = dir.path().join("fcs.pcap");
    write_pcap_bytes(
        &fcs_cap,
        0x0400_0000 | (2 << 28) | 1,
        &[(with_fcs.clone(), wire), (with_fcs[..40].to_vec(), wire)],
    );
    let plain_cap = dir.path().join("plain.pcap");
    write_pcap(&plain_cap, DataLink::ETHERNET, &[(1, frame.clone())]);
    let plain = replay_verdicts(&lab_policy(), &plain_cap, &[]);
    assert_eq!(
        plain,
        vec![CsvRow::new("outside", "forward", "tunnel", "berlin-branch")]
    );

    let (fwd, drop) = (dir.path().join("f.pcap"), dir.path().join("d.pcap"));
    let rows = replay_verdicts(
        &lab_policy(),
        &fcs_cap,
        &[
            "--forward",
            fwd.to_str().unwrap(),
            "--drop",
            drop.to_str().unwrap(),
        ],
    );
    assert_eq!(
        rows,
        vec![
            plain[0].clone(),
            CsvRow::new("outside", "drop", "truncated", "")
        ]
    );
    // The forwarded frame is the frame without its FCS, on the wire as in the record.
    let (_, forwarded) = read_pcap(&fwd);
    assert_eq!(forwarded.len(), 1);
    assert_eq!(
        (forwarded[0].1, &forwarded[0].2),
        (frame.len() as u32, &frame)
    );
    // Nothing comes off a cut frame.
    let (_, dropped) = read_pcap(&drop);
    assert_eq!(dropped.len(), 1);
    assert_eq!((dropped[0].1, &dropped[0].2[..]), (wire, &with_fcs[..40]));
}

#[test]
fn from_auto_classifies_each_direction_from_its_own_port() {
    // What `tcpdump -i any` on the concentrator sees: the branch's frames and the replies.
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("both.pcap");
    // The port each frame arrived on: the branch's frames outside, the replies inside.
    let ports = [
        "outside", "inside", "outside", "inside", "outside", "inside",
    ];
    let frames: Vec<(u64, Vec<u8>)> = ports
        .iter()
        .zip(0u64..)
        .map(|(&port, i)| {
            let f = if port == "outside" {
                tunnel_frame(PEER, LOCAL, 1001)
            } else {
                tunnel_frame(LOCAL, PEER, 1001)
            };
            (1_000_000_000 + i * 1_000_000, f)
        })
        .collect();
    write_pcap(&cap, DataLink::ETHERNET, &frames);

    let auto = replay_verdicts(&lab_policy(), &cap, &["--from", "auto"]);
    assert_eq!(auto.len(), ports.len());
    for (i, (row, port)) in auto.iter().zip(ports).enumerate() {
        let want = CsvRow::new(port, "forward", "tunnel", "berlin-branch");
        assert_eq!(*row, want, "frame {}", i + 1);
    }
    // From one side, the replies are GRE of no tunnel.
    let outside = replay_verdicts(&lab_policy(), &cap, &["--from", "outside"]);
    assert_eq!(outside.len(), ports.len());
    for (i, (row, port)) in outside.iter().zip(ports).enumerate() {
        let want = if port == "outside" {
            CsvRow::new("outside", "forward", "tunnel", "berlin-branch")
        } else {
            CsvRow::new("outside", "drop", "unknown_tunnel", "")
        };
        assert_eq!(*row, want, "frame {}", i + 1);
    }

    // The summary counts both ports.
    let o = greguard(&[
        "replay",
        "-c",
        lab_policy().to_str().unwrap(),
        cap.to_str().unwrap(),
        "--from",
        "auto",
    ]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.starts_with("6 frames from"), "{out}");
    for port in ["outside", "inside"] {
        assert!(
            out.lines().any(|l| l
                .split_whitespace()
                .take(4)
                .eq([port, "forward", "tunnel", "3"])),
            "{port}: {out}"
        );
    }
    let forwarded = out.lines().find(|l| l.starts_with("forwarded")).unwrap();
    assert_eq!(forwarded.split_whitespace().nth(1), Some("6"), "{out}");
}

/// A pcapng block for [`write_pcapng`].
enum Ng {
    /// An Ethernet interface, with its `if_name` if given.
    Interface(Option<&'static str>),
    /// A frame of the interface with this id.
    Frame(u32, Vec<u8>),
}

fn write_pcapng(path: &std::path::Path, blocks: Vec<Ng>) {
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::{
        InterfaceDescriptionBlock, InterfaceDescriptionOption,
    };
    use pcap_file::pcapng::PcapNgWriter;
    let mut w = PcapNgWriter::new(std::fs::File::create(path).unwrap()).unwrap();
    for block in blocks {
        match block {
            Ng::Interface(name) => {
                let mut idb = InterfaceDescriptionBlock::new(DataLink::ETHERNET, 0);
                if let Some(name) = name {
                    idb.options
                        .push(InterfaceDescriptionOption::IfName(name.into()));
                }
                w.write_pcapng_block(idb).unwrap();
            }
            Ng::Frame(iface, data) => {
                let epb = EnhancedPacketBlock {
                    interface_id: iface,
                    timestamp: std::time::Duration::from_micros(1),
                    original_len: data.len() as u32,
                    data: std::borrow::Cow::Owned(data),
                    options: vec![],
                };
                w.write_pcapng_block(epb).unwrap();
            }
        }
    }
}

/// A pcapng of the lab tunnel on interfaces eth0, eth1 and one without a name; eth1 and the
/// unnamed one are described only after eth0's first frame. Frames: eth0 peer → local, eth1
/// local → peer, unnamed local → peer, eth0 local → peer.
fn two_port_pcapng(path: &std::path::Path) {
    let (inbound, outbound) = (
        tunnel_frame(PEER, LOCAL, 1001),
        tunnel_frame(LOCAL, PEER, 1001),
    );
    write_pcapng(
        path,
        vec![
            Ng::Interface(Some("eth0")),
            Ng::Frame(0, inbound),
            Ng::Interface(Some("eth1")),
            Ng::Frame(1, outbound.clone()),
            Ng::Interface(None),
            Ng::Frame(2, outbound.clone()),
            Ng::Frame(0, outbound),
        ],
    );
}

#[test]
fn port_maps_pcapng_interfaces_to_ports_and_the_rest_follow_from() {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("ports.pcapng");
    two_port_pcapng(&cap);
    let tunnel = |port| CsvRow::new(port, "forward", "tunnel", "berlin-branch");
    let unknown = CsvRow::new("outside", "drop", "unknown_tunnel", "");
    let ports = ["--port", "eth0=outside", "--port", "eth1=inside"];
    // The unnamed interface follows --from (outside by default); eth0's reply arrived outside,
    // whatever its addresses say.
    assert_eq!(
        replay_verdicts(&lab_policy(), &cap, &ports),
        vec![
            tunnel("outside"),
            tunnel("inside"),
            unknown.clone(),
            unknown.clone()
        ]
    );
    let auto = [&ports[..], &["--from", "auto"]].concat();
    assert_eq!(
        replay_verdicts(&lab_policy(), &cap, &auto),
        vec![
            tunnel("outside"),
            tunnel("inside"),
            tunnel("inside"),
            unknown.clone()
        ]
    );
    // eth1 not named: it follows --from too.
    let one = ["--port", "eth0=outside", "--from", "inside"];
    assert_eq!(
        replay_verdicts(&lab_policy(), &cap, &one),
        vec![
            tunnel("outside"),
            tunnel("inside"),
            tunnel("inside"),
            unknown
        ]
    );
}

#[test]
fn a_port_the_capture_cannot_have_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let cap = dir.path().join("ports.pcapng");
    two_port_pcapng(&cap);
    let policy = lab_policy();
    let run = |capture: &str, extra: &[&str]| {
        let mut args = vec!["replay", "-c", policy.to_str().unwrap(), capture];
        args.extend_from_slice(extra);
        greguard(&args)
    };
    let csv = dir.path().join("v.csv");
    let o = run(
        cap.to_str().unwrap(),
        &[
            "--port",
            "eth0=outside",
            "--port",
            "wan0=inside",
            "--verdicts",
            csv.to_str().unwrap(),
        ],
    );
    let (out, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("wan0"), "{err}");
    assert!(err.contains("its interfaces are eth0, eth1"), "{err}");
    assert!(!csv.exists(), "no output is written");

    let o = run("captures/backscatter-mix.pcap", &["--port", "eth0=outside"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("pcap has no interface names"), "{err}");

    let o = run(
        cap.to_str().unwrap(),
        &["--port", "eth0=outside", "--port", "eth0=inside"],
    );
    assert_eq!(o.status.code(), Some(1), "{:?}", text(&o));
    assert!(text(&o).1.contains("both as outside and as inside"));

    // An interface is on one port: `auto` is no port.
    let o = run(cap.to_str().unwrap(), &["--port", "eth0=auto"]);
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("neither outside nor inside"),
        "{:?}",
        text(&o)
    );
}

#[test]
fn a_missing_capture_is_bad_input() {
    let o = greguard(&[
        "replay",
        "-c",
        "config/examples/small-site.toml",
        "captures/nope.pcap",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let (_, err) = text(&o);
    assert!(
        err.contains("captures/nope.pcap: cannot open capture"),
        "{err}"
    );
}

#[test]
fn a_file_that_is_no_capture_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pcap");
    std::fs::write(&junk, b"GET / HTTP/1.1\r\n").unwrap();
    let o = greguard(&[
        "replay",
        "-c",
        "config/examples/small-site.toml",
        junk.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let (_, err) = text(&o);
    assert!(err.contains("not a pcap or pcapng capture"), "{err}");
    std::fs::write(&junk, b"").unwrap();
    let o = greguard(&[
        "replay",
        "-c",
        "config/examples/small-site.toml",
        junk.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).1.contains("it is empty"), "{:?}", text(&o));
}

#[test]
fn a_capture_cut_mid_frame_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(root().join("captures/backscatter-mix.pcap")).unwrap();
    let cut = dir.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 7]).unwrap();
    let o = greguard(&[
        "replay",
        "-c",
        "config/examples/small-site.toml",
        cut.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let (_, err) = text(&o);
    assert!(err.contains("corrupt capture after 189 frames"), "{err}");
}

#[test]
fn a_bad_policy_stops_replay_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let pol = policy(dir.path(), "[defaults]\nnon_gre = \"maybe\"\n");
    let o = greguard(&[
        "replay",
        "-c",
        pol.to_str().unwrap(),
        "captures/backscatter-mix.pcap",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let (_, err) = text(&o);
    assert!(
        err.starts_with(&format!("{}:2:11: ", pol.display())),
        "{err}"
    );
}

#[test]
fn an_output_that_cannot_be_written_is_a_runtime_failure() {
    let o = greguard(&[
        "replay",
        "-c",
        "config/examples/small-site.toml",
        "captures/backscatter-mix.pcap",
        "--drop",
        "/nonexistent-dir/out.pcap",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o)
            .1
            .contains("/nonexistent-dir/out.pcap: cannot create output capture"),
        "{:?}",
        text(&o)
    );
}

#[test]
fn mutated_captures_give_a_result_or_a_clear_error_never_a_crash() {
    // Byte flips, deletions and insertions anywhere in the shipped captures, headers included.
    let dir = tempfile::tempdir().unwrap();
    let mut seed = 0x2017_1226_u64;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n.max(1) as u64) as usize
    };
    for i in 0..60 {
        let src = ["backscatter-mix.pcap", "pptp.pcapng", "dmvpn-hub.pcap"][i % 3];
        let mut data = std::fs::read(root().join("captures").join(src)).unwrap();
        for _ in 0..1 + next(12) {
            let pos = next(data.len());
            match next(3) {
                0 => data[pos] = next(256) as u8,
                1 => drop(data.drain(pos..(pos + 1 + next(40)).min(data.len()))),
                _ => data
                    .splice(pos..pos, (0..1 + next(40)).map(|_| next(256) as u8))
                    .for_each(drop),
            }
        }
        let cap = dir.path().join(format!("m{i}-{src}"));
        std::fs::write(&cap, &data).unwrap();
        let o = greguard(&[
            "replay",
            "-c",
            "config/examples/small-site.toml",
            cap.to_str().unwrap(),
        ]);
        let (out, err) = text(&o);
        match o.status.code() {
            Some(0) => assert!(out.contains("frames from"), "{out}"),
            Some(1) => assert!(
                err.contains(cap.to_str().unwrap()),
                "error names the file: {err}"
            ),
            other => panic!("exit {other:?} on {}: {err}", cap.display()),
        }
    }
}

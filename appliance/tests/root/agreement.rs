//! A live box and `greguard replay` agree frame by frame: frames sent through the running
//! appliance (fast lane on, so the kernel program and the validator judge together) arrive on
//! the inside exactly when `replay` of the same frames under the same policy forwards them —
//! under `reserved_bits = "drop"` and `"ignore"`. The frames: every version-0 flag bit on a
//! tunnel's traffic, the frames that once passed `nested = false`, the generators' corpus,
//! the reason tests' non-GRE frames and fragments, mutated corpus frames and random GRE.
//! Needs root.

// Flag bits (0x0300 at most) and draws below 255 fit their types; one random byte is cut
// from a draw on purpose.
#![allow(clippy::cast_possible_truncation)]

use crate::common;
use crate::shared;

use std::collections::BTreeMap;
use std::time::Duration;

use common::netns::Topology;
use common::policies::{seed, Draw};
use frames::{FrameBuilder, Gre};
use pcap_file::DataLink;
use shared::generators::*;
use validator::wire::numbers::gre_flags;
use validator::Reason;

/// The source MAC of every frame the test sends (one the counter records): what arrives with
/// it is the test's.
const MARK: [u8; 6] = traffic::Class::Invalid.mac(0x5a);

/// The lab's berlin-branch tunnel, and the tunnel of the fail-closed frames.
fn tunnels() -> String {
    format!(
        "{}\n[[tunnel]]\nname = \"fail-closed\"\npeer = \"{FAIL_CLOSED_PEER}\"\n\
         local = \"{FAIL_CLOSED_LOCAL}\"\n\
         protocols = [\"ipv4\", \"ipv6\", \"teb\", \"mpls\", \"erspan2\", \"erspan3\"]\n",
        common::berlin("")
    )
}

/// The frames to send, each marked with [`MARK`], with a label.
fn frames(draw: &mut Draw) -> Vec<(String, Vec<u8>)> {
    let inner = shared::udp4();
    let berlin = |gre: Gre| {
        FrameBuilder::ipv4(
            "203.0.113.7".parse().unwrap(),
            "198.51.100.10".parse().unwrap(),
        )
        .gre(gre, inner.clone())
        .build()
    };
    let mut frames = vec![("tunnel".to_string(), berlin(Gre::v0(0x0800).key(1001)))];
    for bit in (3..=14).chain([0x0300]) {
        let flag = if bit > 16 { bit as u16 } else { 1u16 << bit };
        if flag != gre_flags::K {
            let f = berlin(Gre::v0(0x0800).key(1001).set_flags(flag));
            frames.push((format!("flag {flag:#06x}"), f));
        }
    }
    frames.extend(
        fail_closed_frames()
            .into_iter()
            .map(|(name, f, _)| (name.to_string(), f)),
    );
    let corpus = corpus();
    frames.extend(
        corpus
            .iter()
            .map(|(n, b)| (format!("corpus {n}"), b.build())),
    );
    frames.extend(
        non_gre_frames()
            .into_iter()
            .map(|(n, f)| (format!("non-GRE {n}"), f)),
    );
    frames.extend(
        fragments()
            .into_iter()
            .map(|(n, b, _)| (format!("fragment {n}"), b.build())),
    );
    // Mutated corpus frames: flipped bits, cut or grown.
    for _ in 0..300 {
        let mut f = draw.pick(&corpus).1.build();
        for _ in 0..1 + draw.below(3) {
            if f.is_empty() {
                break;
            }
            let at = draw.below(f.len());
            match draw.below(4) {
                0 => f.truncate(at),
                1 => f.insert(at, draw.next() as u8),
                _ => f[at] ^= 1 + draw.below(255) as u8,
            }
        }
        frames.push(("mutated".to_string(), f));
    }
    // Every frame at least the 60 bytes of a minimal Ethernet frame, padded with zeros as a
    // NIC pads it: a shorter one cannot be on a wire, and the receiving host's stack drops some
    // (a VLAN tag with nothing after it) before the counter sees them.
    for (_, f) in &mut frames {
        if f.len() < 60 {
            f.resize(60, 0);
        }
        f[6..12].copy_from_slice(&MARK);
    }
    frames
}

/// Frames as a multiset.
fn counted<'a>(frames: impl IntoIterator<Item = &'a Vec<u8>>) -> BTreeMap<&'a [u8], usize> {
    let mut m = BTreeMap::new();
    for f in frames {
        *m.entry(f.as_slice()).or_insert(0) += 1;
    }
    m
}

/// `greguard replay`'s verdict on each of `frames`, written as a capture in `dir`.
fn replayed(
    policy: &std::path::Path,
    frames: &[Vec<u8>],
    dir: &std::path::Path,
) -> Vec<common::CsvRow> {
    let capture = dir.join("sent.pcap");
    let stamped: Vec<(u64, Vec<u8>)> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| (1_000_000_000 + i as u64 * 1_000_000, f.clone()))
        .collect();
    common::write_pcap(&capture, DataLink::ETHERNET, &stamped);
    common::replay_verdicts(policy, &capture, &[])
}

#[test]
fn a_live_box_forwards_exactly_what_replay_forwards() {
    let seed = seed();
    let mut draw = Draw::new(seed);
    for reserved in ["drop", "ignore"] {
        let mut t = Topology::new(1);
        let policy = t.policy(
            "",
            &format!(
                "[defaults]\nunknown_tunnel = \"drop\"\ninvalid_gre = \"drop\"\n\
                 reserved_bits = \"{reserved}\"\n{}",
                tunnels()
            ),
        );
        let labelled = frames(&mut draw);
        let frames: Vec<Vec<u8>> = labelled.iter().map(|(_, f)| f.clone()).collect();
        let verdicts = replayed(&policy, &frames, t.dir.path());
        let verdict_of = |label: &str| {
            let i = labelled.iter().position(|(l, _)| l == label).expect(label);
            (verdicts[i].verdict.as_str(), verdicts[i].reason.as_str())
        };
        assert_eq!(verdicts.len(), frames.len());

        let arrived_pcap = t.path("arrived.pcap");
        let gre_box = t.start_box(&policy);
        let counter = t.start_counter(&t.in_ns.clone(), &t.in_if.clone(), Some(&arrived_pcap));
        t.send_frames(frames.clone(), Duration::from_micros(200));
        std::thread::sleep(Duration::from_millis(300));
        counter.stop();
        let s = gre_box.stop();
        assert!(s.status.success(), "{}", s.stderr);

        let (_, got) = common::read_pcap(&arrived_pcap);
        let got: Vec<Vec<u8>> = got
            .into_iter()
            .map(|(_, _, f)| f)
            .filter(|f| f.get(6..12) == Some(&MARK[..]))
            .collect();
        let forwarded: Vec<Vec<u8>> = frames
            .iter()
            .zip(&verdicts)
            .filter(|(_, row)| row.verdict == "forward")
            .map(|(f, _)| f.clone())
            .collect();
        let (want, have) = (counted(&forwarded), counted(&got));
        let mut report = String::new();
        for (f, n) in &want {
            if have.get(f) != Some(n) {
                report += &format!(
                    "replay forwards, the box passed {:?}: {f:02x?}\n",
                    have.get(f)
                );
            }
        }
        for (f, n) in &have {
            if want.get(f) != Some(n) {
                report += &format!(
                    "the box passed {n}, replay forwards {:?}: {f:02x?}\n",
                    want.get(f)
                );
            }
        }
        assert!(
            report.is_empty(),
            "reserved_bits = {reserved} (seed {seed}):\n{report}\n{}",
            s.stdout
        );
        // The frames that once passed fail closed, in replay and on the wire.
        for (name, _, reason) in fail_closed_frames() {
            assert_eq!(verdict_of(name), ("drop", reason.name()), "{name}");
        }
        assert!(
            s.frames("outside", "drop", Reason::NestedGre.name()) >= 4,
            "{}",
            s.stdout
        );
        // RFC 2784 §2.3: bits 0x0100 and 0x0200 are ignored under "ignore", dropped under
        // "drop"; 0x0400 is always discarded.
        let expected = if reserved == "ignore" {
            ("forward", "tunnel")
        } else {
            ("drop", "reserved_bits")
        };
        for flag in ["0x0100", "0x0200", "0x0300"] {
            assert_eq!(verdict_of(&format!("flag {flag}")), expected, "flag {flag}");
        }
        assert_eq!(verdict_of("flag 0x0400"), ("drop", "bad_flags"));
        assert_eq!(verdict_of("tunnel"), ("forward", "tunnel"));
    }
}

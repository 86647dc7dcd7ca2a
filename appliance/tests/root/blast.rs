//! `greguard-gen blast`, the kernel-speed generator of the lab's storm and the storm benchmark:
//! several classes at once from one process, each paced or at full speed, every frame sent
//! arriving, and nothing left on loopback afterwards. Needs root.

// SLICE is a few milliseconds: it fits u64.
#![allow(clippy::cast_possible_truncation)]

use crate::common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdout, Command, Stdio};

use common::netns::{gen_binary, sh, Topology};
use traffic::{Class, ClassCounts};

/// Frames the box's outside veth dropped because its receive ring was full (`ip -s link`).
fn ring_drops(t: &Topology) -> u64 {
    let out = sh(&["ip", "-n", &t.box_ns, "-s", "link", "show", &t.box_out]);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("RX:"));
    lines
        .nth(1)
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no RX dropped in {text}"))
}

/// Every frame sent arrived in its class (the sink reads the class MAC), but for those the
/// receiving veth's full ring dropped, which the kernel counts (a busy CPU can delay the
/// receive, for example while an earlier test's namespaces are being freed).
fn assert_all_arrived(t: &Topology, sent: &ClassCounts, got: &ClassCounts, context: &str) {
    for class in Class::ALL {
        assert!(
            got.frames[class.index()] <= sent.frames[class.index()],
            "{class}: {context}"
        );
    }
    let missing: u64 = sent.frames.iter().sum::<u64>() - got.frames.iter().sum::<u64>();
    assert_eq!(
        missing,
        ring_drops(t),
        "frames lost other than at the ring: {context}"
    );
}

/// `greguard-gen sink` on the box's outside port for `seconds` (no greguard here): it counts
/// per class in XDP.
struct Sink {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Sink {
    fn start(t: &Topology, seconds: &str) -> Sink {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &t.box_ns])
            .arg(gen_binary())
            .args(["sink", "-i", &t.box_out, "--seconds", seconds])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the sink");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("sink output");
        assert!(line.starts_with("ready"), "sink said {line:?}");
        Sink { child, out }
    }

    /// Waits for the sink's end; what it counted, and its output.
    fn finish(mut self) -> (ClassCounts, String) {
        assert!(self.child.wait().expect("sink").success());
        let mut rest = String::new();
        self.out.read_to_string(&mut rest).expect("sink output");
        (total(&rest, "total received"), rest)
    }
}

/// `greguard-gen blast` from the outside host with `args`: what it sent, stdout, stderr.
fn blast(t: &Topology, policy: &std::path::Path, args: &[&str]) -> (ClassCounts, String, String) {
    let out = Command::new("ip")
        .args(["netns", "exec", &t.out_ns])
        .arg(gen_binary())
        .args(["blast", "-i", &t.out_if, "-c"])
        .arg(policy)
        .args(args)
        .output()
        .expect("run greguard-gen blast");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "blast failed: {stdout}{stderr}");
    (total(&stdout, "total sent"), stdout, stderr)
}

/// The counts of the line starting with `prefix`.
fn total(text: &str, prefix: &str) -> ClassCounts {
    ClassCounts::parse_line(
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in {text}")),
    )
}

#[test]
fn blast_sends_a_paced_class_beside_a_full_speed_one_and_every_frame_arrives() {
    let t = Topology::new(1);
    let policy = t.policy("", traffic::LAB_TUNNELS);
    let sink = Sink::start(&t, "4");
    let (sent, stdout, stderr) = blast(
        &t,
        &policy,
        &[
            "--class",
            "tunnel=20000",
            "--class",
            "unknown",
            "--pps",
            "200000",
            "--seconds",
            "1",
        ],
    );
    // Loopback had no program, so the blaster held its program there: no notice.
    assert!(!stderr.contains("notice"), "{stderr}");
    for class in ["tunnel", "unknown"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("rate {class} "))),
            "no rate line for {class}: {stdout}"
        );
    }
    let (got, rest) = sink.finish();

    let tunnel = sent.frames[Class::Tunnel.index()];
    let unknown = sent.frames[Class::Unknown.index()];
    // A paced class never runs ahead of its schedule: at most its rate times the time it ran,
    // plus the one slice it sends at the start.
    let slice = 20_000 * traffic::blast::SLICE.as_millis() as u64 / 1000;
    assert!(tunnel > 0 && tunnel <= 20_000 + slice, "{stdout}");
    assert!(unknown > 0, "{stdout}");
    for class in [
        Class::Keepalive,
        Class::NonGre,
        Class::Invalid,
        Class::Bogon,
    ] {
        assert_eq!(sent.frames[class.index()], 0, "{stdout}");
    }
    assert_all_arrived(&t, &sent, &got, &format!("sent {stdout} received {rest}"));

    // The program held on the outside host's loopback is gone with the blaster.
    let lo = sh(&["ip", "-n", &t.out_ns, "-d", "link", "show", "lo"]);
    let lo = String::from_utf8_lossy(&lo.stdout);
    assert!(!lo.contains("xdp"), "{lo}");
}

#[test]
fn blast_mix_sends_every_class_of_the_mix_and_every_frame_arrives() {
    let t = Topology::new(1);
    let policy = t.policy("", traffic::LAB_TUNNELS);
    let sink = Sink::start(&t, "3");
    let (sent, stdout, _) = blast(
        &t,
        &policy,
        &[
            "--mix",
            "tunnel=3,keepalive=1,non_gre=1,unknown=4,invalid=2,bogon=1",
            "--seconds",
            "0.5",
        ],
    );
    let (got, rest) = sink.finish();
    // Smooth weighted round-robin: the first 12 calls already hold every class; a call sends
    // copies of one frame, so every count is a whole number of calls.
    for class in Class::ALL {
        let n = sent.frames[class.index()];
        assert!(n > 0, "no {class} frame sent: {stdout}");
        assert_eq!(n % 16_384, 0, "{stdout}");
    }
    assert_all_arrived(&t, &sent, &got, &format!("sent {stdout} received {rest}"));
}

#[test]
fn blast_spread_reaches_every_tunnel_of_a_consecutive_block() {
    let mut t = Topology::new(1);
    // 64 tunnels with peers 100.64.0.0 to .63; the tunnel class's template is the first.
    let tunnels: String = (0..64)
        .map(|i| {
            format!(
                "[[tunnel]]\nname = \"s{i}\"\npeer = \"100.64.0.{i}\"\nlocal = \"198.51.100.30\"\n"
            )
        })
        .collect();
    let policy = t.policy("", &tunnels);
    let greguard = t.start_box(&policy);
    let (sent, stdout, _) = blast(
        &t,
        &policy,
        &[
            "--class",
            "tunnel=20000",
            "--spread",
            "100.64.0.0/26",
            "--seconds",
            "0.5",
        ],
    );
    let tunnel = sent.frames[Class::Tunnel.index()];
    assert!(tunnel > 1000, "{stdout}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let report = greguard.stop();
    // Every copy got a source in the block, with a right header checksum: each was forwarded
    // as its tunnel's, and (thousands of copies over 64 sources) every tunnel had some.
    assert_eq!(
        report.frames("outside", "forward", "tunnel"),
        tunnel,
        "{}",
        report.stdout
    );
    let used = (0..64)
        .filter(|i| {
            report.stdout.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() == 3 && f[0] == format!("s{i}") && f[1].parse::<u64>().is_ok_and(|n| n > 0)
            })
        })
        .count();
    assert_eq!(used, 64, "{}", report.stdout);
}

#[test]
fn blast_spread_refuses_what_is_not_a_prefix() {
    let t = Topology::new(1);
    let policy = t.policy("", traffic::LAB_TUNNELS);
    for bad in ["100.64.0.0", "100.64.0.0/33", "fe80::/64"] {
        let out = Command::new("ip")
            .args(["netns", "exec", &t.out_ns])
            .arg(gen_binary())
            .args(["blast", "-i", &t.out_if, "-c"])
            .arg(&policy)
            .args(["--spread", bad, "--seconds", "0.1"])
            .output()
            .expect("run greguard-gen blast");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad} accepted");
        assert!(stderr.contains("--spread"), "{bad}: {stderr}");
    }
}

//! The real data path: `greguard run` on veths between network namespaces, real AF_XDP
//! sockets, frames from `greguard-gen`, and what arrives on the other side. Needs root.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::netns::{sh, Topology};
use traffic::Class;

/// The lab's tunnels: a keyed v0 branch with keepalives, a prefix pool with IPv6 and IPv4, and a
/// PPTP user; the generator builds valid frames for each.
const TUNNELS: &str = traffic::LAB_TUNNELS;

/// Frames of a pcap file, as a multiset.
fn frames(path: &Path) -> HashMap<Vec<u8>, usize> {
    let mut m = HashMap::new();
    for (_, _, data) in common::read_pcap(path).1 {
        *m.entry(data).or_insert(0) += 1;
    }
    m
}

#[test]
fn valid_tunnel_frames_cross_byte_identical_in_both_directions() {
    let mut t = Topology::new(1);
    let policy = t.policy("", TUNNELS);
    let gre_box = t.start_box(&policy);

    // Outside → inside.
    let (sent_pcap, got_pcap) = (t.path("sent-out.pcap"), t.path("got-in.pcap"));
    let counter = t.start_counter(&t.in_ns.clone(), &t.in_if.clone(), Some(&got_pcap));
    let sent = t.send(
        &t.out_ns,
        &t.out_if,
        &policy,
        &[
            "--mix",
            "tunnel=5,keepalive=1,non_gre=2",
            "--count",
            "3000",
            "--pps",
            "20000",
            "--pcap",
            sent_pcap.to_str().unwrap(),
        ],
    );
    let (got, _) = counter.stop();
    assert_eq!(sent.total(), 3000);
    assert_eq!(
        got.frames[Class::Tunnel.index()],
        sent.frames[Class::Tunnel.index()]
    );
    assert_eq!(
        got.frames[Class::Keepalive.index()],
        sent.frames[Class::Keepalive.index()]
    );
    // ARP, ICMP, TCP, IKE and ESP frames of the background class cross unchanged too.
    assert!(sent.frames[Class::NonGre.index()] > 0);
    assert_eq!(
        got.frames[Class::NonGre.index()],
        sent.frames[Class::NonGre.index()]
    );
    assert_eq!(
        frames(&got_pcap),
        frames(&sent_pcap),
        "frames changed crossing the box"
    );

    let tunnel_out = sent.frames[Class::Tunnel.index()] + sent.frames[Class::Keepalive.index()];

    // Inside → outside: the same tunnels, the other orientation.
    let (sent_pcap, got_pcap) = (t.path("sent-in.pcap"), t.path("got-out.pcap"));
    let counter = t.start_counter(&t.out_ns.clone(), &t.out_if.clone(), Some(&got_pcap));
    let sent = t.send(
        &t.in_ns,
        &t.in_if,
        &policy,
        &[
            "--from",
            "inside",
            "--mix",
            "tunnel=1",
            "--count",
            "2000",
            "--pps",
            "20000",
            "--pcap",
            sent_pcap.to_str().unwrap(),
        ],
    );
    let (got, _) = counter.stop();
    assert_eq!(sent.total(), 2000);
    assert_eq!(got.frames[Class::Tunnel.index()], 2000);
    assert_eq!(
        frames(&got_pcap),
        frames(&sent_pcap),
        "frames changed crossing the box"
    );

    let box_in = t.box_in.clone();
    let stopped = gre_box.stop();
    assert!(stopped.status.success(), "{}", stopped.stderr);
    assert_eq!(stopped.frames("outside", "forward", "tunnel"), tunnel_out);
    assert_eq!(stopped.frames("inside", "forward", "tunnel"), 2000);
    assert!(
        !t.xdp_attached(&t.box_out.clone()) && !t.xdp_attached(&box_in),
        "XDP left attached"
    );
}

#[test]
fn invalid_unknown_and_bogon_gre_never_arrive_and_are_counted_by_reason() {
    let mut t = Topology::new(1);
    // The user-space validator names every reason; the fast lane has its own test.
    let policy = t.policy("fast_lane = false", TUNNELS);
    let gre_box = t.start_box(&policy);
    let counter = t.start_counter(&t.in_ns.clone(), &t.in_if.clone(), None);
    let sent = t.send(
        &t.out_ns,
        &t.out_if,
        &policy,
        &[
            "--mix",
            "unknown=4,invalid=5,bogon=1",
            "--count",
            "5000",
            "--pps",
            "50000",
        ],
    );
    let (got, _) = counter.stop();
    let stopped = gre_box.stop();
    for c in [Class::Unknown, Class::Invalid, Class::Bogon] {
        assert!(sent.frames[c.index()] > 0);
        assert_eq!(got.frames[c.index()], 0, "{c} frames crossed the box");
    }
    assert_eq!(
        stopped.frames("outside", "drop", "unknown_tunnel"),
        sent.frames[Class::Unknown.index()]
    );
    assert_eq!(
        stopped.frames("outside", "drop", "bogon"),
        sent.frames[Class::Bogon.index()]
    );
    // The invalid class cycles through five breakages, each with its own reason.
    let invalid: u64 = [
        "bad_version",
        "bad_flags",
        "bad_inner",
        "bad_checksum",
        "truncated",
    ]
    .iter()
    .map(|r| {
        let n = stopped.frames("outside", "drop", r);
        assert!(n > 0, "no {r} drops:\n{}", stopped.stdout);
        n
    })
    .sum();
    assert_eq!(invalid, sent.frames[Class::Invalid.index()]);
    // Only the namespaces' own chatter (IPv6 ND, ARP) is forwarded.
    assert_eq!(
        stopped.verdict_total("outside", "forward"),
        stopped.frames("outside", "forward", "non_gre")
    );
}

#[test]
fn ping_and_a_tcp_connection_cross_the_box() {
    let mut t = Topology::new(1);
    let policy = t.policy("", TUNNELS);
    let gre_box = t.start_box(&policy);
    // IPv6: neighbour discovery and ICMPv6 echo across the box.
    for (ns, dev, addr) in [
        (&t.out_ns, &t.out_if, "fd77::1/64"),
        (&t.in_ns, &t.in_if, "fd77::2/64"),
    ] {
        sh(&["ip", "-n", ns, "addr", "add", addr, "dev", dev, "nodad"]);
    }
    sh(&[
        "ip", "netns", "exec", &t.out_ns, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2",
        "fd77::2",
    ]);
    t.ping(3);

    let server = common::netns::in_netns(&t.in_ns, || {
        let l = TcpListener::bind("10.77.0.2:7777").expect("listen");
        let (mut s, _) = l.accept().expect("accept");
        let mut buf = vec![0u8; 100_000];
        s.read_exact(&mut buf).expect("read");
        s.write_all(&buf.iter().map(|b| b.wrapping_add(1)).collect::<Vec<_>>())
            .expect("write");
        buf
    });
    std::thread::sleep(Duration::from_millis(200));
    let client = common::netns::in_netns(&t.out_ns, || {
        let mut s =
            TcpStream::connect_timeout(&"10.77.0.2:7777".parse().unwrap(), Duration::from_secs(5))
                .expect("connect through the box");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
        s.write_all(&data).expect("send");
        let mut back = vec![0u8; data.len()];
        s.read_exact(&mut back).expect("reply");
        (data, back)
    });
    let (data, back) = client.join().expect("client");
    let received = server.join().expect("server");
    assert_eq!(received, data);
    assert!(back.iter().zip(&data).all(|(b, d)| *b == d.wrapping_add(1)));
    let stopped = gre_box.stop();
    assert!(stopped.frames("outside", "forward", "non_gre") > 10);
    assert!(stopped.frames("inside", "forward", "non_gre") > 10);
}

#[test]
fn vlan_tagged_tunnel_frames_pass_and_tagged_garbage_does_not() {
    let mut t = Topology::new(1);
    let policy = t.policy("", TUNNELS);
    let gre_box = t.start_box(&policy);
    let got_pcap = t.path("got.pcap");
    let counter = t.start_counter(&t.in_ns.clone(), &t.in_if.clone(), Some(&got_pcap));
    let sent_pcap = t.path("sent.pcap");
    let sent = t.send(
        &t.out_ns,
        &t.out_if,
        &policy,
        &[
            "--vlan",
            "100",
            "--mix",
            "tunnel=1,unknown=1",
            "--count",
            "2000",
            "--pps",
            "20000",
            "--pcap",
            sent_pcap.to_str().unwrap(),
        ],
    );
    let (got, _) = counter.stop();
    let stopped = gre_box.stop();
    assert_eq!(
        got.frames[Class::Tunnel.index()],
        sent.frames[Class::Tunnel.index()]
    );
    assert_eq!(got.frames[Class::Unknown.index()], 0);
    let tagged = frames(&got_pcap);
    assert!(
        tagged.keys().all(|f| f[12..14] == [0x81, 0x00]),
        "a frame lost its tag"
    );
    let sent_tunnel: HashMap<_, _> = frames(&sent_pcap)
        .into_iter()
        .filter(|(f, _)| Class::of_frame(f) == Some(Class::Tunnel))
        .collect();
    assert_eq!(tagged, sent_tunnel);
    assert_eq!(
        stopped.frames("outside", "drop", "unknown_tunnel"),
        sent.frames[Class::Unknown.index()]
    );
}

#[test]
fn every_frame_is_counted_once_per_port_and_no_umem_frame_is_lost() {
    let mut t = Topology::new(1);
    // A small UMEM (4 × 256 frames), recycled many times over by 30 000 frames.
    let policy = t.policy("ring_size = 256\nbatch_size = 32", TUNNELS);
    let gre_box = t.start_box(&policy);
    let c_in = t.start_counter(&t.in_ns.clone(), &t.in_if.clone(), None);
    let from_out = t.send(
        &t.out_ns,
        &t.out_if,
        &policy,
        &["--count", "20000", "--pps", "40000"],
    );
    let (got_in, _) = c_in.stop();
    let c_out = t.start_counter(&t.out_ns.clone(), &t.out_if.clone(), None);
    let from_in = t.send(
        &t.in_ns,
        &t.in_if,
        &policy,
        &["--from", "inside", "--count", "10000", "--pps", "40000"],
    );
    let (got_out, _) = c_out.stop();
    let s = gre_box.stop();
    assert!(s.status.success(), "{}", s.stderr);

    let passed = |c: &traffic::ClassCounts| {
        c.frames[Class::Tunnel.index()]
            + c.frames[Class::Keepalive.index()]
            + c.frames[Class::NonGre.index()]
    };
    for (port, sent, got) in [
        ("outside", &from_out, &got_in),
        ("inside", &from_in, &got_out),
    ] {
        let ring = format!("ring {port}:");
        let received = s.value(&ring, "received");
        // The README's Verdicts and reasons: every frame received on a port has exactly one verdict
        // and one reason.
        let counted = s.verdict_total(port, "forward") + s.verdict_total(port, "drop");
        let kernel = s.value(&format!("invariant {port}:"), "kernel_judged");
        assert_eq!(
            received + s.value(&ring, "kernel_oversize") + kernel,
            counted,
            "{port}:\n{}",
            s.stdout
        );
        // Nothing vanishes unaccounted: what the socket did not receive, the kernel counted as
        // dropped (RX ring full when the worker was not scheduled in time).
        // The fast lane's verdicts are frames the socket never saw.
        let kernel_drops = s.value(&ring, "xdp_rx_ring_full") + s.value(&ring, "xdp_rx_dropped");
        assert!(
            received + kernel + kernel_drops >= sent.total(),
            "{port}: {received} + {kernel} + {kernel_drops} < {}",
            sent.total()
        );
        // What should pass arrived, less at most what the kernel dropped before the box saw it.
        assert!(
            passed(got) <= passed(sent) && passed(got) + kernel_drops >= passed(sent),
            "{port}: {} of {} arrived, {kernel_drops} kernel drops",
            passed(got),
            passed(sent)
        );
    }
    assert_eq!(
        s.value("ring inside:", "tx_ring_full") + s.value("ring outside:", "tx_ring_full"),
        0
    );
    // Every UMEM frame is back: free + fill + tx = total, with nothing left on a TX ring.
    assert_eq!(s.value("frames worker 0:", "total"), 1024);
    assert_eq!(s.value("frames worker 0:", "tx"), 0);
    assert_eq!(
        s.value("frames worker 0:", "free") + s.value("frames worker 0:", "fill"),
        1024
    );
    assert!(s.stdout.contains("balanced") && !s.stdout.contains("UNBALANCED"));
}

#[test]
fn two_queues_are_served_by_two_workers_pinned_to_their_cores() {
    let mut t = Topology::new(2);
    let policy = t.policy("queues = [0, 1]\ncores = [1, 0]", TUNNELS);
    let gre_box = t.start_box(&policy);
    let log = gre_box.log.join("\n");
    for q in [
        "queue 0: AF_XDP copy mode (worker 0, core 1)",
        "queue 1: AF_XDP copy mode (worker 1, core 0)",
    ] {
        assert!(log.contains(q), "missing {q:?} in:\n{log}");
    }
    // Each worker thread is pinned to its core.
    let pid = gre_box.pid();
    let mut pinned = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks") {
        let dir = task.expect("task").path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if let Some(w) = comm.trim().strip_prefix("greguard-w") {
            let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
            let cpus = status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .unwrap_or("")
                .trim()
                .to_owned();
            pinned.push((w.to_owned(), cpus));
        }
    }
    pinned.sort();
    assert_eq!(
        pinned,
        [
            ("0".to_owned(), "1".to_owned()),
            ("1".to_owned(), "0".to_owned())
        ]
    );

    // A packet socket transmits on the queue of the CPU it runs on: one sender per CPU.
    let gen = common::netns::gen_binary();
    let senders: Vec<_> = ["0", "1"]
        .iter()
        .map(|cpu| {
            Command::new("ip")
                .args(["netns", "exec", &t.out_ns, "taskset", "-c", cpu])
                .arg(&gen)
                .args([
                    "send", "-i", &t.out_if, "--mix", "tunnel=1", "--count", "3000", "--pps",
                    "20000", "-c",
                ])
                .arg(&policy)
                .output()
                .expect("sender")
        })
        .collect();
    for s in &senders {
        assert!(s.status.success());
    }
    let stopped = gre_box.stop();
    let w0 = stopped.value("worker 0:", "outside_received");
    let w1 = stopped.value("worker 1:", "outside_received");
    assert!(
        w0 >= 3000 && w1 >= 3000,
        "queues not both served: {w0} {w1}\n{}",
        stopped.stdout
    );
    assert_eq!(stopped.frames("outside", "forward", "tunnel"), 6000);
    let _ = &mut t;
}

#[test]
fn a_missing_interface_exits_2_and_names_it() {
    let t = Topology::new(1);
    let policy = t.dir.path().join("missing.toml");
    std::fs::write(
        &policy,
        "[ports]\noutside = \"gg-nope0\"\ninside = \"gg-nope1\"\n",
    )
    .unwrap();
    let out = t.run_once(&policy, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("outside interface \"gg-nope0\" does not exist"),
        "{stderr}"
    );
    assert!(stderr.contains("ip link show"), "{stderr}");
}

#[test]
fn a_refused_mode_exits_2_and_says_what_to_do() {
    let t = Topology::new(1);
    let policy = t.policy("xdp_mode = \"zerocopy\"", TUNNELS);
    let out = t.run_once(&policy, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("AF_XDP refused (zerocopy)"), "{stderr}");
    assert!(
        stderr.contains("use xdp_mode = \"copy\" or \"auto\""),
        "{stderr}"
    );
    assert!(
        !t.xdp_attached(&t.box_out),
        "a refused start left XDP attached"
    );
}

#[test]
fn a_missing_capability_is_named() {
    let t = Topology::new(1);
    let policy = t.policy("", TUNNELS);
    let out = t.run_once(
        &policy,
        &[
            "setpriv",
            "--bounding-set",
            "-sys_admin",
            "--inh-caps",
            "-sys_admin",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("missing capability: CAP_SYS_ADMIN"),
        "{stderr}"
    );
}

#[test]
fn a_stale_program_left_by_a_killed_box_is_detached_at_the_next_start() {
    let mut t = Topology::new(1);
    // libxdp's program (without the fast lane); the fast lane's own bypass has its test.
    let policy = t.policy("fast_lane = false", TUNNELS);
    let first = t.start_box(&policy);
    // SAFETY: kill(2) on our child's pid.
    unsafe { libc::kill(first.pid() as i32, libc::SIGKILL) };
    drop(first);
    assert!(
        t.xdp_attached(&t.box_out.clone()),
        "kill -9 should leave the program attached"
    );
    let second = t.start_box(&policy);
    let log = second.log.join("\n");
    assert!(log.contains("detached a stale AF_XDP program"), "{log}");
    t.ping(2);
    let stopped = second.stop();
    assert!(stopped.status.success());
    assert!(!t.xdp_attached(&t.box_out.clone()));
}

#[test]
fn a_foreign_xdp_program_is_left_alone_and_reported() {
    let t = Topology::new(1);
    // Someone else's program: a minimal XDP_PASS, compiled here and attached with ip.
    let obj = t.path("pass.o");
    let src = t.path("pass.c");
    // XDP_PASS is 2 (linux/bpf.h); no header needed.
    std::fs::write(&src, "__attribute__((section(\"xdp\"), used)) int pass(void *ctx) { return 2; }\nchar _license[] __attribute__((section(\"license\"), used)) = \"GPL\";\n").unwrap();
    sh(&[
        "clang",
        "-O2",
        "-target",
        "bpf",
        "-c",
        src.to_str().unwrap(),
        "-o",
        obj.to_str().unwrap(),
    ]);
    sh(&[
        "ip",
        "-n",
        &t.box_ns,
        "link",
        "set",
        "dev",
        &t.box_out,
        "xdp",
        "obj",
        obj.to_str().unwrap(),
        "sec",
        "xdp",
    ]);
    let policy = t.policy("", TUNNELS);
    let out = t.run_once(&policy, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("that greguard did not load"), "{stderr}");
    assert!(
        stderr.contains(&format!("ip link set dev {} xdp off", t.box_out)),
        "{stderr}"
    );
    assert!(
        t.xdp_attached(&t.box_out),
        "greguard removed someone else's program"
    );
}

#[test]
fn frames_larger_than_a_umem_frame_are_dropped_as_oversize() {
    use fastpath::build::{payload, FrameBuilder, Gre};
    let mut t = Topology::new(1);
    // veth allows native XDP up to about 3500 bytes; a 2048-byte UMEM frame holds 1792.
    for (ns, dev) in [
        (&t.out_ns, &t.out_if),
        (&t.box_ns, &t.box_out),
        (&t.box_ns, &t.box_in),
        (&t.in_ns, &t.in_if),
    ] {
        sh(&["ip", "-n", ns, "link", "set", "dev", dev, "mtu", "3000"]);
    }
    let policy = t.policy("frame_size = 2048", TUNNELS);
    let gre_box = t.start_box(&policy);
    let counter = t.start_counter(&t.in_ns.clone(), &t.in_if.clone(), None);
    let frame = |data: usize| {
        let inner = payload::ipv4_udp(
            "10.1.0.1".parse().unwrap(),
            "10.2.0.1".parse().unwrap(),
            1,
            2,
            &vec![7; data],
        );
        FrameBuilder::ipv4(
            "203.0.113.7".parse().unwrap(),
            "198.51.100.10".parse().unwrap(),
        )
        .gre(Gre::v0(0x0800).key(1001), inner)
        .macs(traffic::mix::DST_MAC, Class::Tunnel.mac(0))
        .build()
    };
    let (small, big) = (frame(1000), frame(2400));
    assert!(small.len() < 1792 && big.len() > 1792 && big.len() <= 3014);
    let frames: Vec<Vec<u8>> = (0..10).flat_map(|_| [small.clone(), big.clone()]).collect();
    t.send_frames(frames, Duration::from_millis(2));
    let (got, _) = counter.stop();
    let s = gre_box.stop();
    assert_eq!(
        got.frames[Class::Tunnel.index()],
        10,
        "only the small frames arrive"
    );
    assert_eq!(s.frames("outside", "forward", "tunnel"), 10);
    assert_eq!(s.frames("outside", "drop", "oversize"), 10, "{}", s.stdout);
    assert_eq!(s.value("ring outside:", "kernel_oversize"), 10);
    assert!(
        s.stdout.contains("invariant outside:") && !s.stdout.contains("MISMATCH"),
        "{}",
        s.stdout
    );
}

#[test]
fn run_without_a_ports_table_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("no-ports.toml");
    std::fs::write(&policy, TUNNELS).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_greguard"))
        .args(["run", "-c"])
        .arg(&policy)
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no [ports] table"), "{stderr}");
}

#[test]
fn skb_mode_is_used_when_asked_for_and_forwards() {
    let mut t = Topology::new(1);
    let policy = t.policy("xdp_mode = \"skb\"", TUNNELS);
    let gre_box = t.start_box(&policy);
    let log = gre_box.log.join("\n");
    assert!(log.contains("queue 0: AF_XDP skb mode"), "{log}");
    let counter = t.start_counter(&t.in_ns.clone(), &t.in_if.clone(), None);
    let sent = t.send(
        &t.out_ns,
        &t.out_if,
        &policy,
        &["--count", "2000", "--pps", "20000"],
    );
    let (got, _) = counter.stop();
    let s = gre_box.stop();
    for c in Class::ALL {
        let want = if c.should_pass() {
            sent.frames[c.index()]
        } else {
            0
        };
        assert_eq!(got.frames[c.index()], want, "{c}");
    }
    assert!(s.stdout.contains("invariant outside:") && !s.stdout.contains("MISMATCH"));
}

/// `GET /metrics` from inside the box's namespace (its loopback is its own).
fn scrape(t: &Topology) -> String {
    common::netns::in_netns(&t.box_ns, || {
        let mut s = TcpStream::connect("127.0.0.1:9747").expect("connect to /metrics");
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).expect("read /metrics");
        body.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default()
    })
    .join()
    .expect("scrape")
}

/// The value of the series `name{labels}` (labels in the exporter's order).
fn series(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name_and_labels)?
                .strip_prefix(' ')?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no series {name_and_labels} in:\n{text}"))
}

/// The sum of every series of `name` whose labels contain `label`.
fn sum(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn metrics_exist_from_start_and_add_up_after_traffic() {
    let mut t = Topology::new(1);
    let policy = t.policy("", TUNNELS);
    let gre_box = t.start_box(&policy);
    std::thread::sleep(Duration::from_millis(400));
    let fresh = scrape(&t);
    // Every port × verdict × reason series exists, at zero for everything but chatter.
    let combos = fresh
        .lines()
        .filter(|l| l.starts_with("greguard_packets_total{"))
        .count();
    assert_eq!(combos, 2 * 2 * fastpath::Reason::COUNT, "{fresh}");
    assert_eq!(
        series(
            &fresh,
            r#"greguard_packets_total{port="outside",verdict="drop",reason="unknown_tunnel"}"#
        ),
        0.0
    );
    for name in ["berlin-branch", "paris-pool", "pptp-users"] {
        assert_eq!(
            series(
                &fresh,
                &format!(r#"greguard_tunnel_packets_total{{tunnel="{name}",verdict="forward"}}"#)
            ),
            0.0
        );
    }
    assert_eq!(
        series(
            &fresh,
            r#"greguard_xdp_mode{port="outside",queue="0",mode="copy"}"#
        ),
        1.0
    );
    assert_eq!(
        series(
            &fresh,
            r#"greguard_xdp_mode{port="outside",queue="0",mode="zerocopy"}"#
        ),
        0.0
    );
    assert_eq!(
        series(&fresh, r#"greguard_policy_reloads_total{result="error"}"#),
        0.0
    );
    assert_eq!(series(&fresh, "greguard_policy_generation"), 1.0);

    let sent = t.send(
        &t.out_ns,
        &t.out_if,
        &policy,
        &["--count", "5000", "--pps", "20000"],
    );
    std::thread::sleep(Duration::from_millis(700));
    let after = scrape(&t);
    // The counting invariant, from the scrape alone.
    for port in ["outside", "inside"] {
        let label = format!(r#"port="{port}""#);
        let counted = sum(&after, "greguard_packets_total", &label);
        let judged = format!(r#"port="{port}",path="judged""#);
        let received = sum(&after, "greguard_rx_packets_total", &label)
            + sum(&after, "greguard_kernel_oversize_total", &label)
            + sum(&after, "greguard_fast_lane_packets_total", &judged);
        assert_eq!(counted, received, "{port}:\n{after}");
    }
    // Every unknown, invalid and bogon frame was dropped; the fast lane counts the invalid
    // frames from addresses of no tunnel as unknown_tunnel (see docs/fast-lane.md), so
    // unknown_tunnel holds at least the unknown class.
    let garbage = [Class::Unknown, Class::Invalid, Class::Bogon]
        .iter()
        .map(|c| sent.frames[c.index()])
        .sum::<u64>();
    assert_eq!(
        sum(
            &after,
            "greguard_packets_total",
            r#"port="outside",verdict="drop""#
        ),
        garbage as f64
    );
    assert!(
        series(
            &after,
            r#"greguard_packets_total{port="outside",verdict="drop",reason="unknown_tunnel"}"#
        ) >= sent.frames[Class::Unknown.index()] as f64
    );
    assert_eq!(series(&after, "greguard_fast_lane"), 1.0);
    let tunnel_fwd = sum(
        &after,
        "greguard_tunnel_packets_total",
        r#"verdict="forward""#,
    );
    assert_eq!(
        tunnel_fwd,
        (sent.frames[Class::Tunnel.index()] + sent.frames[Class::Keepalive.index()]) as f64
    );
    assert!(series(&after, "greguard_samples_total") > 0.0);
    // The backscatter view: the top sources of dropped GRE, by rank. A source that held rank 1
    // earlier and lost it shows 0 there until its series expires: one source holds it now.
    let first: Vec<f64> = after
        .lines()
        .filter(|l| l.starts_with(r#"greguard_top_dropped_source_samples{rank="1",source=""#))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .collect();
    assert_eq!(
        first.iter().filter(|&&v| v >= 1.0).count(),
        1,
        "rank 1 in:\n{after}"
    );
    assert_eq!(
        series(&after, r#"greguard_samples_shed_total{stage="pcap"}"#),
        0.0
    );
    assert_eq!(
        series(&after, r#"greguard_samples_shed_total{stage="top"}"#),
        0.0
    );
    // Gauges set once at start are still there (they are re-set at every publication).
    assert_eq!(
        series(
            &after,
            r#"greguard_xdp_mode{port="outside",queue="0",mode="copy"}"#
        ),
        1.0
    );

    // Names and help texts pass promtool (Debian package prometheus, installed by make deps).
    let check = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = check.expect("promtool (apt-get install prometheus, or make deps)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(after.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    gre_box.stop();
}

/// The lab's tunnel named `name`, alone, as a policy for the generator.
fn only_tunnel(t: &Topology, name: &str) -> std::path::PathBuf {
    let block = TUNNELS
        .split("[[tunnel]]")
        .find(|b| b.contains(&format!("\"{name}\"")))
        .unwrap_or_else(|| panic!("no tunnel {name}"));
    let path = t.path(&format!("{name}.toml"));
    std::fs::write(&path, format!("[[tunnel]]{block}")).unwrap();
    path
}

#[test]
fn sighup_swaps_the_policy_under_traffic_and_a_broken_one_is_refused() {
    let mut t = Topology::new(1);
    let policy = t.policy("", TUNNELS);
    let (berlin, pptp) = (
        only_tunnel(&t, "berlin-branch"),
        only_tunnel(&t, "pptp-users"),
    );
    let gre_box = t.start_box(&policy);
    let counter = t.start_counter(&t.in_ns.clone(), &t.in_if.clone(), None);
    // Continuous traffic of a tunnel both policies keep.
    let steady = Command::new("ip")
        .args(["netns", "exec", &t.out_ns])
        .arg(common::netns::gen_binary())
        .args([
            "send",
            "-i",
            &t.out_if,
            "--mix",
            "tunnel=1",
            "--pps",
            "20000",
            "--seconds",
            "3",
            "-c",
        ])
        .arg(&berlin)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("steady sender");
    std::thread::sleep(Duration::from_millis(800));

    // The new policy keeps berlin-branch and paris-pool, drops pptp-users, adds a tunnel.
    let without_pptp = TUNNELS
        .split("[[tunnel]]")
        .filter(|b| !b.contains("pptp-users"))
        .collect::<Vec<_>>()
        .join("[[tunnel]]");
    let text = format!(
        "[ports]\noutside = \"{}\"\ninside = \"{}\"\n{without_pptp}\n[[tunnel]]\nname = \"lyon\"\npeer = \"192.0.2.77\"\nlocal = \"198.51.100.10\"\n",
        t.box_out, t.box_in
    );
    std::fs::write(&policy, &text).unwrap();
    // SAFETY: kill(2) on our child's pid.
    unsafe { libc::kill(gre_box.pid() as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(700));
    // A broken policy: refused with FILE:LINE:COL, the running one stays.
    std::fs::write(&policy, format!("{text}\n[[tunnel]]\nname = \"broken\"\npeer = \"not-an-address\"\nlocal = \"198.51.100.10\"\n")).unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(gre_box.pid() as i32, libc::SIGHUP) };
    let out = steady.wait_with_output().expect("steady sender");
    let steady_sent = traffic::ClassCounts::parse_line(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("total sent"))
            .expect("total"),
    );
    // pptp-users is gone: its frames are now unknown.
    let pptp_sent = t.send(
        &t.out_ns,
        &t.out_if,
        &pptp,
        &["--mix", "tunnel=1", "--count", "500", "--pps", "20000"],
    );
    std::thread::sleep(Duration::from_millis(400));
    let metrics = scrape(&t);
    let (got, _) = counter.stop();
    let s = gre_box.stop();

    assert!(steady_sent.total() > 50_000, "{steady_sent:?}");
    assert_eq!(
        got.frames[Class::Tunnel.index()],
        steady_sent.frames[Class::Tunnel.index()],
        "berlin-branch lost frames across the reload, or pptp frames crossed after it"
    );
    assert_eq!(
        s.frames("outside", "drop", "unknown_tunnel"),
        pptp_sent.total()
    );
    assert!(
        s.stderr.contains("policy reloaded from") && s.stderr.contains("generation 2, 3 tunnels"),
        "{}",
        s.stderr
    );
    let refused = s
        .stderr
        .lines()
        .find(|l| l.contains("reload refused"))
        .unwrap_or_else(|| panic!("{}", s.stderr));
    assert!(
        refused.contains("generation 2 keeps running")
            && refused.contains(&format!("{}:", policy.display())),
        "{refused}"
    );
    assert_eq!(
        series(&metrics, r#"greguard_policy_reloads_total{result="ok"}"#),
        1.0
    );
    assert_eq!(
        series(&metrics, r#"greguard_policy_reloads_total{result="error"}"#),
        1.0
    );
    assert_eq!(series(&metrics, "greguard_policy_generation"), 2.0);
    // The per-tunnel count of a kept tunnel carried over the reload.
    assert_eq!(
        series(
            &metrics,
            r#"greguard_tunnel_packets_total{tunnel="berlin-branch",verdict="forward"}"#
        ),
        steady_sent.total() as f64
    );
}

#[test]
fn a_reload_that_changes_the_ports_is_refused() {
    let mut t = Topology::new(1);
    let policy = t.policy("", TUNNELS);
    let gre_box = t.start_box(&policy);
    std::fs::write(
        &policy,
        format!(
            "[ports]\noutside = \"{}\"\ninside = \"{}\"\nqueues = [0]\n{TUNNELS}",
            t.box_in, t.box_out
        ),
    )
    .unwrap();
    // SAFETY: kill(2) on our child's pid.
    unsafe { libc::kill(gre_box.pid() as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(500));
    t.ping(2);
    let s = gre_box.stop();
    assert!(
        s.stderr
            .contains("[ports] changed; restart greguard to apply it"),
        "{}",
        s.stderr
    );
}

#[test]
fn systemd_hears_ready_reloading_watchdog_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let mut t = Topology::new(1);
    let policy = t.policy("", TUNNELS);
    let socket_path = t.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let path = socket_path.to_str().unwrap().to_owned();
    let gre_box = t.start_box_with_env(
        &policy,
        &[("NOTIFY_SOCKET", &path), ("WATCHDOG_USEC", "400000")],
    );
    let mut buf = [0u8; 512];
    let mut next = || {
        let n = socket.recv(&mut buf).expect("a notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let mut seen = Vec::new();
    let mut until = |want: &str, seen: &mut Vec<String>| {
        for _ in 0..50 {
            let m = next();
            seen.push(m.clone());
            if m.contains(want) {
                return m;
            }
        }
        panic!("no {want} in {seen:?}");
    };
    until("READY=1", &mut seen);
    until("WATCHDOG=1", &mut seen);
    // SAFETY: kill(2) on our child's pid.
    unsafe { libc::kill(gre_box.pid() as i32, libc::SIGHUP) };
    let reloading = until("RELOADING=1", &mut seen);
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    let ready = until("READY=1", &mut seen);
    assert!(ready.contains("generation 2"), "{ready}");
    // SAFETY: as above.
    unsafe { libc::kill(gre_box.pid() as i32, libc::SIGTERM) };
    until("STOPPING=1", &mut seen);
    let s = gre_box.stop();
    assert!(s.status.success(), "{}", s.stderr);
}

#[test]
fn sampled_frames_land_in_rotating_pcap_files_that_tcpdump_reads() {
    let mut t = Topology::new(1);
    let dir = t.path("samples");
    // Every dropped GRE frame sampled by the workers (the fast lane samples on its own).
    let policy = t.policy(
        "fast_lane = false",
        &format!(
            "{TUNNELS}\n[sampling]\ninvalid = 1\nsnaplen = 128\npcap_dir = \"{}\"\npcap_rotate_mb = 1\npcap_keep = 2\n",
            dir.display()
        ),
    );
    let started = std::time::SystemTime::now();
    let gre_box = t.start_box(&policy);
    let sent = t.send(
        &t.out_ns,
        &t.out_if,
        &policy,
        &["--mix", "unknown=1", "--count", "25000", "--pps", "25000"],
    );
    std::thread::sleep(Duration::from_millis(500));
    let s = gre_box.stop();
    // Every dropped GRE frame was sampled (1 in 1) and none was lost to a full ring.
    assert_eq!(
        s.value("ring outside:", "samples"),
        sent.total(),
        "{}",
        s.stdout
    );
    assert_eq!(s.value("ring outside:", "samples_dropped"), 0);

    // About 2.8 MB of samples in 1 MB files: three were written, the newest two kept.
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 2, "{files:?}");
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert!(
        names[0].ends_with("-000002.pcap") && names[1].ends_with("-000003.pcap"),
        "{names:?}"
    );
    let mut read = 0;
    for f in &files {
        assert!(std::fs::metadata(f).unwrap().len() <= 1 << 20);
        let mut r = pcap_file::pcap::PcapReader::new(std::fs::File::open(f).unwrap()).unwrap();
        assert_eq!(r.header().datalink, pcap_file::DataLink::ETHERNET);
        let mut n = 0;
        while let Some(p) = r.next_packet() {
            let p = p.expect("packet");
            assert!(
                p.orig_len == 66 || p.orig_len == 578,
                "orig_len {}",
                p.orig_len
            );
            assert_eq!(p.data.len(), (p.orig_len as usize).min(128));
            assert_eq!(Class::of_frame(&p.data), Some(Class::Unknown));
            let ts = std::time::UNIX_EPOCH + p.timestamp;
            assert!(ts >= started - Duration::from_secs(1) && ts <= std::time::SystemTime::now());
            n += 1;
        }
        // tcpdump reads the same number of frames.
        let out = Command::new("tcpdump")
            .args(["-nn", "-r"])
            .arg(f)
            .output()
            .expect("tcpdump");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), n);
        read += n;
    }
    assert!(read > 10_000 && read < 25_000, "{read}");

    // The log names sampled drops, at most 10 a second, and says how many it left out.
    let logged: Vec<&str> = s
        .stderr
        .lines()
        .filter(|l| l.contains("dropped GRE") && l.contains("reason=\"unknown_tunnel\""))
        .collect();
    assert!(
        !logged.is_empty() && logged.len() <= 30,
        "{} lines:\n{}",
        logged.len(),
        s.stderr
    );
    assert!(
        logged[0].contains("src=") && logged[0].contains("port=\"outside\""),
        "{}",
        logged[0]
    );
    assert!(s.stderr.contains("not logged (rate limit)"), "{}", s.stderr);
}

#[test]
fn forwarded_gre_is_sampled_whole_when_the_snap_length_allows() {
    let mut t = Topology::new(1);
    let dir = t.path("forwarded");
    let policy = t.policy(
        "",
        &format!(
            "{TUNNELS}\n[sampling]\ninvalid = 0\nforwarded = 1\nsnaplen = 2048\npcap_dir = \"{}\"\n",
            dir.display()
        ),
    );
    let gre_box = t.start_box(&policy);
    let sent = t.send(
        &t.out_ns,
        &t.out_if,
        &policy,
        &[
            "--mix",
            "tunnel=4,keepalive=1,non_gre=2,unknown=2",
            "--count",
            "6000",
            "--pps",
            "20000",
        ],
    );
    std::thread::sleep(Duration::from_millis(500));
    let s = gre_box.stop();
    // Every forwarded GRE frame (tunnel traffic and keepalives) and nothing else was sampled.
    let gre_forwarded = sent.frames[Class::Tunnel.index()] + sent.frames[Class::Keepalive.index()];
    assert!(gre_forwarded > 3000, "{}", sent.line());
    assert_eq!(
        s.value("ring outside:", "samples"),
        gre_forwarded,
        "{}",
        s.stdout
    );
    assert_eq!(s.value("ring outside:", "samples_dropped"), 0);

    let mut read = 0u64;
    let mut longest = 0;
    for f in std::fs::read_dir(&dir).unwrap() {
        let mut r =
            pcap_file::pcap::PcapReader::new(std::fs::File::open(f.unwrap().path()).unwrap())
                .unwrap();
        while let Some(p) = r.next_packet() {
            let p = p.expect("packet");
            // Whole frames: the snap length is above the frame size.
            assert_eq!(p.data.len(), p.orig_len as usize);
            assert!(matches!(
                Class::of_frame(&p.data),
                Some(Class::Tunnel | Class::Keepalive)
            ));
            longest = longest.max(p.data.len());
            read += 1;
        }
    }
    assert_eq!(read, gre_forwarded);
    assert!(longest > 256, "longest sample {longest}");
    // Forwarded samples are not drops: the drop log stays quiet.
    assert!(!s.stderr.contains("dropped GRE"), "{}", s.stderr);
}

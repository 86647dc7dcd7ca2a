//! The fast lane: greguard's own XDP program in front of the AF_XDP sockets. Non-GRE and GRE
//! that can match no tunnel are decided in the kernel; tunnel traffic goes through the full
//! validator with `tunnel_path = "user"`, and is forwarded by the kernel path itself with
//! `"kernel"` (and `"auto"` on veth, whose AF_XDP is copy mode); a reload changes the kernel's
//! verdicts; after `kill -9` the program keeps
//! the box open or closed as `on_failure` says. Needs root.

use crate::common;

use std::time::Duration;

use common::netns::Topology;
use frames::{FrameBuilder, Gre, Ipv6Ext};
use traffic::Class;

const TUNNELS: &str = traffic::LAB_TUNNELS;

#[test]
fn non_gre_and_unknown_gre_stay_in_the_kernel_and_tunnel_gre_meets_the_validator() {
    fast_lane_with_tunnels_on("user");
}

#[test]
fn the_kernel_path_forwards_tunnel_gre_of_host_pairs_itself() {
    fast_lane_with_tunnels_on("kernel");
}

/// Non-GRE, unknown GRE, bad inner packets and tunnel GRE (of berlin-branch, a host pair)
/// through a box whose tunnel traffic takes `path`.
fn fast_lane_with_tunnels_on(path: &str) {
    let kernel_path = path == "kernel";
    let mut t = Topology::new(1);
    let policy = t.policy(&format!("tunnel_path = \"{path}\""), TUNNELS);
    let gre_box = t.start_box(&policy);
    let logged = format!(
        "outside: tunnel traffic judged by the {}",
        if kernel_path {
            "kernel path"
        } else {
            "workers"
        }
    );
    let counter = t.start_counter(&t.in_ns.clone(), &t.in_if.clone(), None);
    // Tunnel frames of berlin-branch alone (the lab's tunnels also have prefix tunnels, whose
    // frames go to the workers on either path).
    let berlin = t.policy("", &common::berlin(""));
    let sent = t.send(
        &t.out_ns,
        &t.out_if,
        &berlin,
        &[
            "--mix",
            "tunnel=2,non_gre=1,unknown=2",
            "--count",
            "6000",
            "--pps",
            "20000",
        ],
    );
    // From a real peer, with an inner "IPv4" packet that is not one: the kernel checks an IPv4
    // payload as the validator does, and drops it as bad_inner itself.
    let bad_inner = FrameBuilder::ipv4(
        "203.0.113.7".parse().unwrap(),
        "198.51.100.10".parse().unwrap(),
    )
    .gre(Gre::v0(0x0800).key(1001), vec![0x45; 12])
    .macs(traffic::mix::DST_MAC, Class::Invalid.mac(0))
    .build();
    t.send_frames(vec![bad_inner; 25], Duration::ZERO);
    let (got, _) = counter.stop();
    let s = gre_box.stop();
    assert!(s.status.success(), "{}", s.stderr);
    assert!(s.stderr.contains(&logged), "{}", s.stderr);

    let sent_of = |c: Class| sent.frames[c.index()];
    assert_eq!(got.frames[Class::Tunnel.index()], sent_of(Class::Tunnel));
    assert_eq!(got.frames[Class::NonGre.index()], sent_of(Class::NonGre));
    assert_eq!(got.frames[Class::Unknown.index()], 0);
    assert_eq!(got.frames[Class::Invalid.index()], 0);

    // User space received the tunnel frames; besides them at most the host's own IPv6
    // multicast listener reports, whose Hop-by-Hop header the kernel program leaves to the
    // full parser. None of the 3000-odd unknown or non-GRE frames, nor the bad-inner ones.
    let received = s.value("ring outside:", "received");
    let expected = if kernel_path {
        0
    } else {
        sent_of(Class::Tunnel)
    };
    assert!(
        (expected..expected + 5).contains(&received),
        "{received} received, {expected} expected:\n{}",
        s.stdout
    );
    assert_eq!(s.frames("outside", "drop", "bad_inner"), 25);
    assert_eq!(
        s.frames("outside", "forward", "tunnel"),
        sent_of(Class::Tunnel)
    );
    // The kernel forwarded the non-GRE and dropped the unknown GRE, and its verdicts are in
    // the same table.
    assert!(s.frames("outside", "forward", "non_gre") >= sent_of(Class::NonGre));
    assert_eq!(
        s.frames("outside", "drop", "unknown_tunnel"),
        sent_of(Class::Unknown),
        "{}",
        s.stdout
    );
    let judged = s.value("fast lane outside:", "judged");
    let in_kernel = if kernel_path {
        sent_of(Class::Tunnel)
    } else {
        0
    };
    assert!(judged >= sent_of(Class::NonGre) + sent_of(Class::Unknown) + 25 + in_kernel);
    // 1 in 100 (the default) of the kernel's drops was still handed to the slow path.
    assert!(s.value("fast lane outside:", "sampled") > 0, "{}", s.stdout);
    for port in ["outside", "inside"] {
        let line = s
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("invariant {port}:")))
            .expect("invariant line");
        assert!(line.ends_with(" ok"), "{line}");
    }
}

#[test]
fn a_reload_changes_the_kernel_verdicts() {
    reload_changes_kernel_verdicts("user");
}

#[test]
fn a_reload_takes_a_tunnel_off_the_kernel_path() {
    reload_changes_kernel_verdicts("kernel");
}

/// berlin-branch's frames, forwarded; then, after a reload that removes it, dropped in the
/// kernel as unknown_tunnel. Its frames took `path` before the reload.
fn reload_changes_kernel_verdicts(path: &str) {
    let mut t = Topology::new(1);
    let policy = t.policy(&format!("tunnel_path = \"{path}\""), TUNNELS);
    let berlin = t.policy("", &common::berlin(""));
    let gre_box = t.start_box(&policy);
    let counter = t.start_counter(&t.in_ns.clone(), &t.in_if.clone(), None);
    let send = |t: &Topology| {
        t.send(
            &t.out_ns,
            &t.out_if,
            &berlin,
            &["--mix", "tunnel=1", "--count", "2000", "--pps", "20000"],
        )
    };
    let first = send(&t);
    std::thread::sleep(Duration::from_millis(300));
    // The same file without the two tunnels that cover 203.0.113.7.
    let only_pptp = TUNNELS
        .split("[[tunnel]]")
        .filter(|t| t.contains("pptp-users"))
        .map(|t| format!("[[tunnel]]{t}"))
        .collect::<String>();
    std::fs::write(
        &policy,
        std::fs::read_to_string(&policy)
            .unwrap()
            .replace(TUNNELS, &only_pptp),
    )
    .unwrap();
    // SAFETY: kill(2) on our child's pid.
    unsafe { libc::kill(gre_box.pid() as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(500));
    let second = send(&t);
    let (got, _) = counter.stop();
    let s = gre_box.stop();
    assert!(s.stderr.contains("generation 2"), "{}", s.stderr);
    let tunnel = Class::Tunnel.index();
    assert_eq!(got.frames[tunnel], first.frames[tunnel]);
    // After the reload the kernel drops berlin-branch's frames itself: user space saw only
    // the first batch.
    assert_eq!(
        s.frames("outside", "drop", "unknown_tunnel"),
        second.frames[tunnel]
    );
    // (Besides, at most the host's IPv6 multicast listener reports: see above.)
    let received = s.value("ring outside:", "received");
    let expected = if path == "kernel" {
        0
    } else {
        first.frames[tunnel]
    };
    assert!(
        (expected..expected + 5).contains(&received),
        "{received}:\n{}",
        s.stdout
    );
}

/// `kill -9` leaves the program attached; with `on_failure` it keeps forwarding or filtering.
fn after_kill_9(
    on_failure: &str,
) -> (
    Topology,
    std::path::PathBuf,
    traffic::ClassCounts,
    traffic::ClassCounts,
) {
    let mut t = Topology::new(1);
    let policy = t.policy(&format!("on_failure = \"{on_failure}\""), TUNNELS);
    let first = t.start_box(&policy);
    // SAFETY: kill(2) on our child's pid.
    unsafe { libc::kill(first.pid() as i32, libc::SIGKILL) };
    drop(first);
    assert!(t.xdp_attached(&t.box_out.clone()));
    // The program takes greguard for gone once its heartbeat has lapsed (half a second).
    std::thread::sleep(Duration::from_millis(700));
    // Non-GRE keeps crossing either way.
    t.ping(3);
    let counter = t.start_counter(&t.in_ns.clone(), &t.in_if.clone(), None);
    let sent = t.send(
        &t.out_ns,
        &t.out_if,
        &policy,
        &[
            "--mix",
            "tunnel=1,non_gre=1,unknown=1",
            "--count",
            "3000",
            "--pps",
            "20000",
        ],
    );
    let (got, _) = counter.stop();
    (t, policy, sent, got)
}

#[test]
fn kill_9_with_on_failure_open_leaves_a_wire() {
    let (mut t, policy, sent, got) = after_kill_9("open");
    // Everything crosses, garbage included: the box is a wire until greguard is back.
    assert_eq!(got.frames, sent.frames, "{} / {}", sent.line(), got.line());
    // So do the frames the kernel cannot parse (which fail-closed drops, below).
    let counter = t.start_counter(&t.in_ns.clone(), &t.in_if.clone(), None);
    t.send_frames(unparsed_gre(), Duration::ZERO);
    let (got, _) = counter.stop();
    assert_eq!(got.frames[Class::Invalid.index()], 40);
    // The next start takes the program over without a gap and detaches it at its stop.
    let second = t.start_box(&policy);
    let log = second.log.join("\n");
    assert!(log.contains("still attached from an earlier run"), "{log}");
    t.ping(2);
    let s = second.stop();
    assert!(s.status.success());
    assert!(!t.xdp_attached(&t.box_out.clone()));
}

#[test]
fn kill_9_with_on_failure_closed_stops_gre_and_passes_the_rest() {
    let (mut t, _policy, sent, got) = after_kill_9("closed");
    assert_eq!(
        got.frames[Class::NonGre.index()],
        sent.frames[Class::NonGre.index()]
    );
    assert_eq!(got.frames[Class::Tunnel.index()], 0);
    assert_eq!(got.frames[Class::Unknown.index()], 0);

    // Closed means closed: what the kernel cannot positively call non-GRE is dropped too.
    let counter = t.start_counter(&t.in_ns.clone(), &t.in_if.clone(), None);
    t.send_frames(unparsed_gre(), Duration::ZERO);
    let (got, _) = counter.stop();
    assert_eq!(got.frames[Class::Invalid.index()], 0);
}

/// Ten each of four frames the kernel program cannot parse down to a GRE header, all marked
/// as the invalid class: GRE behind IPv6 destination-options and hop-by-hop headers, an outer
/// IPv4 header with IHL < 5, and three VLAN tags (the third is not looked into).
fn unparsed_gre() -> Vec<Vec<u8>> {
    let mark = |b: FrameBuilder| b.macs(traffic::mix::DST_MAC, Class::Invalid.mac(0)).build();
    let v6 = |ext: Ipv6Ext| {
        FrameBuilder::ipv6(
            "2001:db8::7".parse().unwrap(),
            "2001:db8:1::10".parse().unwrap(),
        )
        .ipv6_ext(ext)
        .gre(Gre::v0(0x0800), vec![0x45; 40])
    };
    let kinds = [
        mark(v6(Ipv6Ext::destination_options())),
        mark(v6(Ipv6Ext::hop_by_hop())),
        mark(berlin_gre().ipv4_ihl(4)),
        mark(berlin_gre().vlan(10).vlan(20).vlan(30)),
    ];
    (0..10).flat_map(|_| kinds.iter().cloned()).collect()
}

/// A well-formed GRE frame of berlin-branch.
fn berlin_gre() -> FrameBuilder {
    FrameBuilder::ipv4(
        "203.0.113.7".parse().unwrap(),
        "198.51.100.10".parse().unwrap(),
    )
    .gre(Gre::v0(0x0800).key(1001), vec![0x45; 40])
}

#[test]
fn keep_bypass_leaves_the_program_attached_and_traffic_crossing() {
    let mut t = Topology::new(1);
    let policy = t.policy("", TUNNELS);
    let gre_box = t.start_box_args(&policy, &["--keep-bypass"]);
    let s = gre_box.stop();
    assert!(s.status.success(), "{}", s.stderr);
    assert!(
        s.stderr.contains("left attached as a bypass"),
        "{}",
        s.stderr
    );
    assert!(t.xdp_attached(&t.box_out.clone()));
    assert!(t.xdp_attached(&t.box_in.clone()));
    t.ping(2);
}

#[test]
fn bypass_on_makes_the_box_a_wire_and_off_removes_it() {
    let t = Topology::new(1);
    let bypass = |action: &str| {
        let out = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &t.box_ns,
                env!("CARGO_BIN_EXE_greguard"),
                "bypass",
            ])
            .args([action, &t.box_out, &t.box_in])
            .output()
            .expect("greguard bypass");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let said = bypass("on");
    assert!(said.contains("bypass on"), "{said}");
    assert!(t.xdp_attached(&t.box_out) && t.xdp_attached(&t.box_in));
    t.ping(2);
    let said = bypass("off");
    assert!(said.contains("detached from"), "{said}");
    assert!(!t.xdp_attached(&t.box_out) && !t.xdp_attached(&t.box_in));
    // Without greguard nothing joins the two ports.
    let ping = std::process::Command::new("ip")
        .args(["netns", "exec", &t.out_ns, "ping", "-c", "1", "-W", "1"])
        .arg(traffic::netns::INSIDE_ADDR)
        .output()
        .expect("ping");
    assert!(!ping.status.success());
}

#[test]
fn rate_limited_unknown_gre_is_policed_in_the_kernel_first() {
    let mut t = Topology::new(1);
    let policy = t.policy(
        "",
        &format!(
            "[defaults]\nunknown_tunnel = \"rate-limit\"\nrate_limit = {{ pps = 1000, burst = 100 }}\n{TUNNELS}"
        ),
    );
    let gre_box = t.start_box(&policy);
    let counter = t.start_counter(&t.in_ns.clone(), &t.in_if.clone(), None);
    let sent = t.send(
        &t.out_ns,
        &t.out_if,
        &policy,
        &["--mix", "unknown=1", "--count", "10000", "--pps", "20000"],
    );
    let (got, _) = counter.stop();
    let s = gre_box.stop();
    let unknown = Class::Unknown.index();
    // Half a second of traffic against 1000 pps and a burst of 100: a few hundred pass (the
    // kernel's per-CPU bucket first, then user space's exact one), the rest is dropped, most of
    // it in the kernel, none of it lost from the books.
    let passed = s.frames("outside", "forward", "unknown_tunnel");
    let limited = s.frames("outside", "drop", "rate_limited");
    assert_eq!(passed + limited, sent.frames[unknown], "{}", s.stdout);
    assert_eq!(got.frames[unknown], passed);
    assert!(
        passed > 0 && passed < 2000,
        "{passed} passed:\n{}",
        s.stdout
    );
    assert!(
        s.value("ring outside:", "received") < 2500,
        "user space saw the flood:\n{}",
        s.stdout
    );
}

//! SIGHUP: a new policy under traffic without loss, a broken one refused, a `[ports]` change
//! refused.

use super::metrics::{scrape, series};
use super::*;

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

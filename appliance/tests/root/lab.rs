//! `greguard-gen lab` (what `make demo` runs) end to end: it passes its own report and leaves no
//! namespace, veth or XDP program behind, also when interrupted. Needs root.

use crate::common;

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

/// The two lab runs share the machine's two cores: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Namespaces whose name starts with `prefix`.
fn namespaces(prefix: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_lab_passes_its_report_and_removes_everything() {
    common::netns::require_root();
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let child = Command::new(common::netns::gen_binary())
        .args(["lab", "--seconds", "3", "--pps", "5000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the lab");
    let prefix = format!("gl{}-", child.id() % 100_000);
    let out = child.wait_with_output().expect("lab output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("RESULT: every valid tunnel frame"),
        "{stdout}"
    );
    // The live table ran and showed the storm being dropped, with its top sources.
    assert!(
        stdout.contains("outside  drop     unknown_tunnel"),
        "{stdout}"
    );
    assert!(stdout.contains("top sources of dropped GRE"), "{stdout}");
    // A second of storm at a million frames a second ran in the middle, shed in the kernel.
    assert!(stdout.contains("STORM: unknown-peer GRE"), "{stdout}");
    let unknown_sent: u64 = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("unknown") && l.ends_with(" ok"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    assert!(unknown_sent > 100_000, "{stdout}");
    assert!(stdout.contains("fast lane outside: judged="), "{stdout}");
    for class in [
        "tunnel",
        "keepalive",
        "non_gre",
        "unknown",
        "invalid",
        "bogon",
    ] {
        let row = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(class) && l.ends_with(" ok"))
            .unwrap_or_else(|| panic!("no ok row for {class}:\n{stdout}"));
        let sent: u64 = row.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(sent > 0, "nothing of {class} was sent: {row}");
    }
    assert!(stdout.contains("none (detached)"), "{stdout}");
    assert!(
        namespaces(&prefix).is_empty(),
        "left behind: {:?}",
        namespaces(&prefix)
    );
}

#[test]
fn an_interrupted_lab_still_removes_everything() {
    common::netns::require_root();
    let _one = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let child = Command::new(common::netns::gen_binary())
        .args(["lab", "--seconds", "30", "--pps", "5000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the lab");
    let prefix = format!("gl{}-", child.id() % 100_000);
    // Wait until the traffic runs (the namespaces exist), then press Ctrl-C.
    let mut waited = 0;
    while namespaces(&prefix).len() < 3 && waited < 100 {
        std::thread::sleep(Duration::from_millis(100));
        waited += 1;
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        namespaces(&prefix).len(),
        3,
        "the lab did not create its namespaces"
    );
    // SAFETY: kill(2) on our child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().expect("lab output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("interrupted; stopping and cleaning up"),
        "{stdout}"
    );
    assert!(stdout.contains("removed namespaces"), "{stdout}");
    assert_eq!(
        out.status.code(),
        Some(1),
        "an interrupted lab does not pass its report"
    );
    assert!(
        namespaces(&prefix).is_empty(),
        "left behind: {:?}",
        namespaces(&prefix)
    );
    let links = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip link");
    assert!(!String::from_utf8_lossy(&links.stdout).contains(&prefix[..prefix.len() - 1]));
}

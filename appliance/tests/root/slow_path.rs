//! The slow path under load and over restarts: a storm with every drop sampled to pcap files
//! does not keep greguard from stopping, sample files never exceed `pcap_keep` across
//! restarts, and a reload applies new pcap settings. Needs root.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::netns::{gen_binary, Topology};

/// `greguard-gen blast` of unknown-peer GRE from random sources, as fast as CPU 0 allows, for
/// `seconds`, in the background.
fn start_storm(t: &Topology, policy: &Path, seconds: &str) -> Child {
    Command::new("ip")
        .args(["netns", "exec", &t.out_ns, "taskset", "-c", "0"])
        .arg(gen_binary())
        .args(["blast", "-i", &t.out_if, "-c"])
        .arg(policy)
        .args(["--class", "unknown=0", "--seconds", seconds])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start greguard-gen blast")
}

/// Whether process `pid` has exited (gone, or a zombie waiting to be reaped).
fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => true,
    }
}

/// The greguard sample files in `dir`, sorted by name.
fn sample_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.retain(|f| {
        let name = f.file_name().unwrap().to_string_lossy();
        name.starts_with("greguard-") && name.ends_with(".pcap")
    });
    files.sort();
    files
}

/// Frames in a pcap file, which must read whole.
fn packets(path: &Path) -> usize {
    let file = std::fs::File::open(path).unwrap();
    let mut r = pcap_file::pcap::PcapReader::new(file).unwrap();
    let mut n = 0;
    while let Some(p) = r.next_packet() {
        p.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        n += 1;
    }
    n
}

/// The storm of issue 13: every dropped GRE frame sampled (`invalid = 1`) into pcap files,
/// unknown-peer GRE at full speed. SIGTERM must end greguard within 2 s, its XDP programs
/// detached, and the files it leaves must read whole.
fn sigterm_under_a_sampled_storm(fast_lane: bool) {
    let mut t = Topology::new(1);
    let dir = t.path("samples");
    let policy = t.policy(
        &format!("fast_lane = {fast_lane}"),
        &format!(
            "{}\n[sampling]\ninvalid = 1\npcap_dir = \"{}\"\npcap_rotate_mb = 1\npcap_keep = 4\n",
            traffic::LAB_TUNNELS,
            dir.display()
        ),
    );
    let gre_box = t.start_box(&policy);
    let mut storm = start_storm(&t, &policy, "4");
    std::thread::sleep(Duration::from_millis(1500));
    // The slow path writes samples while the storm runs.
    let during = sample_files(&dir);
    assert!(!during.is_empty(), "no sample file under the storm");

    let pid = gre_box.pid();
    let asked = Instant::now();
    // SAFETY: kill(2) on the pid of the running box, a child of this test.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    while !exited(pid) && asked.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = asked.elapsed();
    eprintln!("fast lane {fast_lane}: stopped {took:?} after SIGTERM");
    // The storm is still running: the stop did not wait for it to end.
    let storm_running = storm.try_wait().expect("blast").is_none();
    let s = gre_box.stop();
    let _ = storm.wait();
    assert!(
        took < Duration::from_secs(2),
        "greguard took {took:?} to stop under the storm:\n{}",
        s.stderr
    );
    assert!(
        storm_running,
        "the storm ended before the stop was measured"
    );
    assert!(s.status.success(), "{}", s.stderr);
    assert!(
        !t.xdp_attached(&t.box_out) && !t.xdp_attached(&t.box_in),
        "an XDP program is still attached"
    );
    // It was a storm: far more unknown-peer GRE than the slow path could take one by one.
    let shed_in_kernel = s.frames("outside", "drop", "unknown_tunnel");
    assert!(shed_in_kernel > 200_000, "{}", s.stdout);
    // At most pcap_keep files, each readable to its last record.
    let files = sample_files(&dir);
    assert!(
        !files.is_empty() && files.len() <= 4,
        "{} files: {files:?}",
        files.len()
    );
    let written: usize = files.iter().map(|f| packets(f)).sum();
    assert!(written > 1000, "{written} samples in {files:?}");
    eprintln!(
        "fast lane {fast_lane}: {shed_in_kernel} unknown_tunnel drops, {} samples in {} files",
        written,
        files.len()
    );
}

#[test]
fn sigterm_ends_greguard_within_2_s_under_a_sampled_storm_with_the_fast_lane() {
    sigterm_under_a_sampled_storm(true);
}

#[test]
fn sigterm_ends_greguard_within_2_s_under_a_sampled_storm_without_the_fast_lane() {
    sigterm_under_a_sampled_storm(false);
}

#[test]
fn restarts_never_leave_more_than_pcap_keep_sample_files() {
    let mut t = Topology::new(1);
    let dir = t.path("samples");
    // A file left by someone else stays.
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), "mine").unwrap();
    let policy = t.policy(
        "",
        &format!(
            "{}\n[sampling]\ninvalid = 1\npcap_dir = \"{}\"\npcap_keep = 2\n",
            traffic::LAB_TUNNELS,
            dir.display()
        ),
    );
    let mut runs: Vec<Vec<PathBuf>> = Vec::new();
    for _ in 0..3 {
        let before = sample_files(&dir);
        let gre_box = t.start_box(&policy);
        t.send(
            &t.out_ns,
            &t.out_if,
            &policy,
            &["--mix", "unknown=1", "--count", "500", "--pps", "10000"],
        );
        std::thread::sleep(Duration::from_millis(300));
        let s = gre_box.stop();
        assert!(s.status.success(), "{}", s.stderr);
        let after = sample_files(&dir);
        assert!(after.len() <= 2, "{after:?}");
        // This run wrote a file of its own, whole.
        let new: Vec<PathBuf> = after
            .iter()
            .filter(|f| !before.contains(f))
            .cloned()
            .collect();
        assert_eq!(new.len(), 1, "before {before:?} after {after:?}");
        assert!(packets(&new[0]) > 0);
        runs.push(new);
    }
    // The newest two runs' files are kept, the first run's is gone.
    assert_eq!(sample_files(&dir), [runs[1][0].clone(), runs[2][0].clone()]);
    assert!(dir.join("notes.txt").exists());
}

#[test]
fn a_reload_applies_new_pcap_settings_and_says_what_changed() {
    let mut t = Topology::new(1);
    let (first, second) = (t.path("first"), t.path("second"));
    let sampling = |dir: &Path, keep: u32| {
        format!(
            "{}\n[sampling]\ninvalid = 1\npcap_dir = \"{}\"\npcap_keep = {keep}\n",
            traffic::LAB_TUNNELS,
            dir.display()
        )
    };
    let policy = t.policy("", &sampling(&first, 10));
    let gre_box = t.start_box(&policy);
    let send = |t: &Topology| {
        t.send(
            &t.out_ns,
            &t.out_if,
            &policy,
            &["--mix", "unknown=1", "--count", "300", "--pps", "10000"],
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    send(&t);
    // The new directory holds five files of an earlier run: the new limit of 2 applies now.
    std::fs::create_dir_all(&second).unwrap();
    for i in 1..=5 {
        std::fs::copy(
            &sample_files(&first)[0],
            second.join(format!("greguard-1-00000{i}.pcap")),
        )
        .unwrap();
    }
    let text = std::fs::read_to_string(&policy).unwrap();
    let head = text.split("[[tunnel]]").next().unwrap().to_owned();
    std::fs::write(&policy, format!("{head}{}", sampling(&second, 2))).unwrap();
    // SAFETY: kill(2) on the pid of the running box, a child of this test.
    unsafe { libc::kill(gre_box.pid() as i32, libc::SIGHUP) };
    std::thread::sleep(Duration::from_millis(500));
    send(&t);
    let s = gre_box.stop();
    assert!(s.status.success(), "{}", s.stderr);
    assert!(
        s.stderr.contains("policy reloaded")
            && s.stderr.contains("sample files: sampling.pcap_dir")
            && s.stderr.contains("sampling.pcap_keep 10 -> 2"),
        "{}",
        s.stderr
    );
    // The first directory kept its file; the second holds the newest old one and this run's.
    assert_eq!(sample_files(&first).len(), 1);
    let files = sample_files(&second);
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files[0].ends_with("greguard-1-000005.pcap"), "{files:?}");
    assert!(packets(&files[1]) > 0);
}

//! Operations: the systemd notifications, and sampled frames in rotating pcap files.

use super::*;

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
    // The workers sample with the policy's snap length (the kernel path's samples hold 256
    // bytes at most).
    let policy = t.policy(
        "tunnel_path = \"user\"",
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

/// The kernel path samples what it forwards too (`[sampling] forwarded`): the first 256 bytes
/// of each frame, with the frame's length, in the same pcap files, and counted once.
#[test]
fn the_kernel_path_samples_the_frames_it_forwards() {
    let mut t = Topology::new(1);
    let dir = t.path("forwarded");
    let policy = t.policy(
        "tunnel_path = \"kernel\"",
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
            "tunnel=4,keepalive=1,non_gre=2",
            "--count",
            "4000",
            "--pps",
            "20000",
        ],
    );
    std::thread::sleep(Duration::from_millis(500));
    let s = gre_box.stop();
    let gre_forwarded = sent.frames[Class::Tunnel.index()] + sent.frames[Class::Keepalive.index()];
    // Every one went through the kernel path and was sampled there, none through the workers.
    assert_eq!(
        s.value("fast lane outside:", "tunnel_forwarded"),
        gre_forwarded,
        "{}",
        s.stdout
    );
    assert_eq!(
        s.value("fast lane outside:", "sampled"),
        gre_forwarded,
        "{}",
        s.stdout
    );
    assert_eq!(s.value("ring outside:", "samples"), 0, "{}", s.stdout);

    let mut read = 0u64;
    let mut cut = 0u64;
    for f in std::fs::read_dir(&dir).unwrap() {
        let mut r =
            pcap_file::pcap::PcapReader::new(std::fs::File::open(f.unwrap().path()).unwrap())
                .unwrap();
        while let Some(p) = r.next_packet() {
            let p = p.expect("packet");
            assert_eq!(p.data.len(), (p.orig_len as usize).min(256));
            cut += u64::from(p.data.len() < p.orig_len as usize);
            assert!(matches!(
                Class::of_frame(&p.data),
                Some(Class::Tunnel | Class::Keepalive)
            ));
            read += 1;
        }
    }
    assert_eq!(read, gre_forwarded);
    // The mix has frames longer than a kernel sample holds.
    assert!(cut > 0);
    assert!(!s.stderr.contains("dropped GRE"), "{}", s.stderr);
}

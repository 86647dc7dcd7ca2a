//! Starting up: the exit-2 paths (a missing interface, a refused mode, a missing capability)
//! and XDP programs left on the ports (greguard's own from a killed box, someone else's).

use super::*;

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

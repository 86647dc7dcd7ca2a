//! The systemd unit: `systemd-analyze verify` accepts it (with the binary where the build put
//! it), and its ExecStartPre/ExecReload check the policy first.

use crate::common;

use std::process::Command;

#[test]
fn the_unit_file_verifies() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let unit = std::fs::read_to_string(root.join("systemd/greguard.service")).expect("unit file");
    assert!(
        unit.contains("Type=notify") && unit.contains("ExecReload=/usr/local/bin/greguard check")
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("greguard.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/greguard", env!("CARGO_BIN_EXE_greguard")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A throwaway systemd machine: `systemd-nspawn --volatile=yes` boots this host's `/usr` with an
/// empty `/etc` and its own network namespace, with the unit, the policy directory and the
/// binaries bound in. Dropping it powers the container off.
struct Machine {
    nspawn: std::process::Child,
    /// PID 1 inside (the container's systemd), for `nsenter`.
    init: u32,
}

impl Machine {
    fn boot(name: &str, binds: &[String]) -> Machine {
        let mut cmd = Command::new("systemd-nspawn");
        cmd.args([
            "-D",
            "/",
            "--volatile=yes",
            "-M",
            name,
            "--register=no",
            "--keep-unit",
        ])
        .args([
            "--private-network",
            "--capability=all",
            "--system-call-filter=bpf",
        ])
        .args(binds.iter().map(|b| format!("--bind-ro={b}")))
        // Arguments after -b go to the container's systemd; the last one marks it for us.
        .args([
            "-b",
            "systemd.firstboot=off",
            &format!("greguard.test={name}"),
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        let nspawn = cmd
            .spawn()
            .expect("systemd-nspawn (Debian package systemd-container)");
        let marker = format!("greguard.test={name}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let init = loop {
            let found = std::fs::read_dir("/proc").unwrap().find_map(|e| {
                let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
                let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
                (args.first()?.ends_with(b"systemd") && args.contains(&marker.as_bytes()))
                    .then_some(pid)
            });
            if let Some(pid) = found {
                break pid;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the container did not boot"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        let mut m = Machine { nspawn, init };
        // Wait until boot is over (the state may be "degraded": a minimal system has units
        // that fail without their hardware).
        loop {
            let state = m.run(&["systemctl", "is-system-running"]);
            let state = String::from_utf8_lossy(&state.stdout).trim().to_string();
            if state == "running" || state == "degraded" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "boot stuck in {state:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        m
    }

    /// Runs a command inside, in every namespace of the container.
    fn run(&mut self, args: &[&str]) -> std::process::Output {
        Command::new("nsenter")
            .args(["-t", &self.init.to_string(), "-a"])
            .args(args)
            .output()
            .expect("nsenter")
    }

    /// Runs a command inside and returns its stdout, panicking when it fails.
    fn ok(&mut self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits up to 10 s for a property of the service to satisfy `want`.
    fn wait_for(&mut self, key: &str, want: impl Fn(&str) -> bool) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let v = self.show(key);
            if want(&v) {
                return v;
            }
            assert!(std::time::Instant::now() < deadline, "{key} stays {v:?}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// `systemctl show greguard -p KEY --value`.
    fn show(&mut self, key: &str) -> String {
        self.ok(&["systemctl", "show", "greguard", "-p", key, "--value"])
            .trim()
            .to_string()
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        // SIGTERM asks nspawn to shut the container down cleanly; SIGKILL if it hangs.
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.nspawn.id() as i32, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
    }
}

/// The whole life of the service under a real systemd 252: start (Type=notify, ExecStartPre),
/// traffic through the hardened sandbox, `systemctl reload` (good and broken policy), the
/// watchdog, a `kill -9` and its restart, and `systemctl stop`.
#[test]
fn the_service_runs_reloads_restarts_and_stops_under_systemd() {
    common::netns::require_root();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_greguard"));
    let gen = common::netns::gen_binary();
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(root.join("systemd/greguard.service"))
        .unwrap()
        .replace("/usr/local/bin/greguard", "/opt/greguard/greguard");
    std::fs::write(dir.path().join("greguard.service"), unit).unwrap();
    let etc = dir.path().join("etc");
    std::fs::create_dir(&etc).unwrap();
    let example = std::fs::read_to_string(root.join("systemd/greguard.toml")).unwrap();
    std::fs::write(etc.join("greguard.toml"), &example).unwrap();

    let name = format!("ggsd{}", std::process::id());
    let mut m = Machine::boot(
        &name,
        &[
            format!(
                "{}:/etc/systemd/system/greguard.service",
                dir.path().join("greguard.service").display()
            ),
            format!("{}:/etc/greguard", etc.display()),
            format!("{}:/opt/greguard/greguard", bin.display()),
            format!("{}:/opt/greguard/greguard-gen", gen.display()),
        ],
    );
    // The example policy's ports, in the container's own network namespace. The far ends get
    // GRO, which veth needs to deliver what an XDP program redirects into it (the kernel path
    // forwards tunnel traffic that way; docs/fast-lane.md).
    m.ok(&[
        "sh",
        "-c",
        "ip link add eth0 type veth peer name eth0p && ip link add eth1 type veth peer name eth1p \
         && for l in eth0 eth0p eth1 eth1p; do ip link set $l up; done \
         && ethtool -K eth0p gro on >/dev/null && ethtool -K eth1p gro on >/dev/null",
    ]);
    // The container's first boot may have tried the (preset-enabled) unit before the ports
    // existed; start from a clean slate.
    let _ = m.run(&["systemctl", "reset-failed", "greguard"]);
    m.ok(&["systemctl", "restart", "greguard"]);
    assert_eq!(m.show("ActiveState"), "active");
    let status = m.show("StatusText");
    assert!(
        status.contains("forwarding") && status.contains("generation 1"),
        "{status}"
    );
    let first_pid = m.show("MainPID");

    // Tunnel traffic crosses the sandboxed service; unknown GRE does not.
    let out = m.ok(&[
        "sh",
        "-c",
        "/opt/greguard/greguard-gen count -i eth1p --seconds 4 > /tmp/count & sleep 0.5; \
         /opt/greguard/greguard-gen send -i eth0p -c /etc/greguard/greguard.toml --count 4000 \
         --pps 20000 --mix tunnel=3,unknown=1 | grep '^total'; wait; grep '^total' /tmp/count",
    ]);
    let mut lines = out.lines();
    let sent = traffic::ClassCounts::parse_line(lines.next().unwrap());
    let got = traffic::ClassCounts::parse_line(lines.next().unwrap());
    let tunnel = traffic::Class::Tunnel.index();
    let unknown = traffic::Class::Unknown.index();
    assert!(sent.frames[tunnel] > 2000, "{out}");
    assert_eq!(got.frames[tunnel], sent.frames[tunnel], "{out}");
    assert_eq!(got.frames[unknown], 0, "{out}");
    // The StateDirectory holds the sample files.
    let samples = m.ok(&["ls", "/var/lib/greguard/samples"]);
    assert!(samples.contains(".pcap"), "{samples}");

    // systemctl reload: ExecReload checks, then SIGHUP; the status says the new generation.
    // systemd 252 has no Type=notify-reload: the reload job ends when `kill -HUP` returns,
    // and greguard applies the policy (RELOADING=1 … READY=1) moments later.
    m.ok(&["systemctl", "reload", "greguard"]);
    m.wait_for("StatusText", |s| s.contains("generation 2"));
    // A broken policy fails the reload in ExecReload and the service keeps running as it was.
    std::fs::write(
        etc.join("greguard.toml"),
        format!("{example}\n[[tunnel]]\nname = \"broken\"\npeer = \"nope\"\nlocal = \"198.51.100.10\"\n"),
    )
    .unwrap();
    let r = m.run(&["systemctl", "reload", "greguard"]);
    assert!(!r.status.success());
    assert_eq!(m.show("ActiveState"), "active");
    assert_eq!(m.show("MainPID"), first_pid);
    let log = m.ok(&["journalctl", "-u", "greguard", "--no-pager", "-o", "cat"]);
    assert!(
        log.contains("/etc/greguard/greguard.toml:") && log.contains("\"nope\" is not an IPv4"),
        "{log}"
    );
    std::fs::write(etc.join("greguard.toml"), &example).unwrap();

    // The watchdog (WatchdogSec=10) is fed: after 12 s the same process still runs.
    std::thread::sleep(std::time::Duration::from_secs(12));
    assert_eq!(m.show("MainPID"), first_pid);
    assert_eq!(m.show("ActiveState"), "active");

    // kill -9: the fast lane's program stays (on_failure = "open" keeps the ports joined),
    // systemd restarts the service, and the new process takes the program over.
    m.ok(&["systemctl", "kill", "-s", "KILL", "greguard"]);
    m.wait_for("MainPID", |pid| pid != first_pid && pid != "0");
    m.wait_for("StatusText", |s| s.contains("forwarding"));
    let log = m.ok(&["journalctl", "-u", "greguard", "--no-pager", "-o", "cat"]);
    assert!(
        log.contains("fast lane on") && log.contains("still attached from an earlier run"),
        "{log}"
    );

    // systemctl stop: a clean exit that leaves no XDP program on the ports.
    m.ok(&["systemctl", "stop", "greguard"]);
    assert_eq!(m.show("Result"), "success");
    let links = m.ok(&["ip", "-o", "link"]);
    assert!(!links.contains("xdp"), "{links}");
}

//! The data-path tests' topology (`traffic::netns`) and the processes they run in it:
//!
//! ```text
//!  <p>-out [<p>-o] ──veth── [<p>-bo] <p>-box [<p>-bi] ──veth── [<p>-i] <p>-in
//!  10.77.0.1/24               greguard run                       10.77.0.2/24
//! ```
//!
//! Names carry a prefix unique to this process and test, so parallel runs never collide;
//! dropping the topology stops what it started and deletes the namespaces (and with them the
//! veths). Tests that use it need root.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// One data-path test at a time: they measure what crosses the box, and two boxes busy-polling
/// on two cores at once would starve each other's senders.
static SERIAL: Mutex<()> = Mutex::new(());

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The `greguard-gen` binary, built beside `greguard` by `cargo build --release`.
pub fn gen_binary() -> PathBuf {
    let dir = Path::new(env!("CARGO_BIN_EXE_greguard"))
        .parent()
        .expect("binary dir")
        .to_path_buf();
    let gen = dir.join("greguard-gen");
    assert!(
        gen.exists(),
        "{} is missing: build it first (`cargo build --release --workspace`, which `make test` does)",
        gen.display()
    );
    gen
}

/// Runs a command, panicking with its output when it fails.
pub fn sh(args: &[&str]) -> Output {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    assert_eq!(
        uid, 0,
        "the data-path tests create network namespaces and AF_XDP sockets: run them as root \
         (`make test` in CI runs as root)"
    );
}

/// The three namespaces and two veth pairs (`traffic::netns`, whose fields it derefs to:
/// `out_ns`, `box_ns`, `in_ns`, `out_if`, `box_out`, `box_in`, `in_if`), a temp dir, and one
/// test at a time.
pub struct Topology {
    pub dir: tempfile::TempDir,
    net: traffic::netns::Topology,
    _serial: MutexGuard<'static, ()>,
}

impl std::ops::Deref for Topology {
    type Target = traffic::netns::Topology;
    fn deref(&self) -> &traffic::netns::Topology {
        &self.net
    }
}

impl Topology {
    /// Creates the topology; `queues` > 1 gives every veth that many RX and TX queues.
    pub fn new(queues: u32) -> Topology {
        require_root();
        let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("gt{}{}", std::process::id() % 100_000, n);
        Topology {
            dir: tempfile::tempdir().expect("temp dir"),
            net: traffic::netns::Topology::create(&prefix, queues).expect("create namespaces"),
            _serial: serial,
        }
    }

    /// Sends `frames` in order from the outside host through a packet socket, pausing `gap`
    /// after each (none for a zero gap).
    pub fn send_frames(&self, frames: Vec<Vec<u8>>, gap: Duration) {
        let out_if = self.out_if.clone();
        in_netns(&self.out_ns, move || {
            let socket = traffic::packet::PacketSocket::open(&out_if).expect("packet socket");
            for f in &frames {
                while socket.send_batch(&[f.as_slice()]).expect("send") == 0 {}
                if !gap.is_zero() {
                    std::thread::sleep(gap);
                }
            }
        })
        .join()
        .expect("sender");
    }

    /// Pings the inside host from the outside one through the box, `count` times; panics on
    /// loss.
    pub fn ping(&self, count: u32) {
        sh(&[
            "ip",
            "netns",
            "exec",
            &self.out_ns,
            "ping",
            "-c",
            &count.to_string(),
            "-i",
            "0.2",
            "-W",
            "2",
            traffic::netns::INSIDE_ADDR,
        ]);
    }

    /// Runs `greguard run -c policy` in the box namespace to completion (for start-up errors).
    pub fn run_once(&self, policy: &Path, wrapper: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.box_ns])
            .args(wrapper)
            .arg(env!("CARGO_BIN_EXE_greguard"))
            .args(["run", "-c"])
            .arg(policy)
            .output()
            .expect("run greguard")
    }

    /// Writes a policy with this topology's `[ports]` followed by `rest`.
    pub fn policy(&self, ports_extra: &str, rest: &str) -> PathBuf {
        let path = self.dir.path().join(format!(
            "policy{}.toml",
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(
            &path,
            format!(
                "[ports]\noutside = \"{}\"\ninside = \"{}\"\n{ports_extra}\n{rest}",
                self.box_out, self.box_in
            ),
        )
        .expect("write policy");
        path
    }

    /// A path in the test's temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts `greguard run -q -c policy` in the box namespace and waits until it forwards.
    pub fn start_box(&mut self, policy: &Path) -> Box {
        self.start_box_with_env(policy, &[])
    }

    /// [`Topology::start_box`] with extra environment variables.
    /// The process keeps the pid of the spawned child through `sh`, `ip netns exec` and
    /// greguard (each execs the next), which is also the `WATCHDOG_PID` a watchdog needs.
    pub fn start_box_with_env(&mut self, policy: &Path, env: &[(&str, &str)]) -> Box {
        self.start_box_full(policy, env, &[])
    }

    /// `greguard run` with extra arguments.
    pub fn start_box_args(&mut self, policy: &Path, args: &[&str]) -> Box {
        self.start_box_full(policy, &[], args)
    }

    fn start_box_full(&mut self, policy: &Path, env: &[(&str, &str)], args: &[&str]) -> Box {
        let mut child = Command::new("sh")
            .args([
                "-c",
                "WATCHDOG_PID=$$; export WATCHDOG_PID; exec \"$0\" \"$@\"",
                "ip",
                "netns",
                "exec",
                &self.box_ns,
                env!("CARGO_BIN_EXE_greguard"),
                "run",
                "-q",
                "-c",
            ])
            .arg(policy)
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start greguard run");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut log = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let ready = line.contains("forwarding between");
                    log.push(line);
                    if ready {
                        break;
                    }
                }
                Err(_) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!(
                            "greguard run exited with {status} before forwarding:\n{}",
                            log.join("\n")
                        );
                    }
                    assert!(
                        Instant::now() < deadline,
                        "greguard run did not start:\n{}",
                        log.join("\n")
                    );
                }
            }
        }
        Box {
            child: Some(child),
            log,
            lines: rx,
        }
    }

    /// Starts `greguard-gen count` on `ifname` in `ns`, waiting until its socket is open.
    pub fn start_counter(&mut self, ns: &str, ifname: &str, pcap: Option<&Path>) -> Counter {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns])
            .arg(gen_binary())
            .args(["count", "-i", ifname]);
        if let Some(p) = pcap {
            cmd.arg("--pcap").arg(p);
        }
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("start counter");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("counter output");
        assert!(line.starts_with("ready"), "counter said {line:?}");
        Counter { child, stdout }
    }

    /// Runs `greguard-gen send` in `ns` on `ifname` with `args`; returns the per-class counts.
    pub fn send(
        &self,
        ns: &str,
        ifname: &str,
        policy: &Path,
        args: &[&str],
    ) -> traffic::ClassCounts {
        let out = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(gen_binary())
            .args(["send", "-i", ifname, "-c"])
            .arg(policy)
            .args(args)
            .output()
            .expect("run greguard-gen send");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "greguard-gen send failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let total = stdout
            .lines()
            .find(|l| l.starts_with("total sent"))
            .unwrap_or_else(|| panic!("no total in {stdout}"));
        traffic::ClassCounts::parse_line(total)
    }
}

/// A running `greguard run`.
pub struct Box {
    child: Option<Child>,
    /// Its stderr so far.
    pub log: Vec<String>,
    lines: mpsc::Receiver<String>,
}

/// What `greguard run` printed when it stopped.
pub struct Stopped {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Stopped {
    /// Frames counted for (port, verdict, reason) in the final table.
    pub fn frames(&self, port: &str, verdict: &str, reason: &str) -> u64 {
        self.stdout
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 6 && f[0] == port && f[1] == verdict && f[2] == reason)
                    .then(|| f[3].parse().expect("frames column"))
            })
            .unwrap_or(0)
    }

    /// All frames counted on a port with a verdict.
    pub fn verdict_total(&self, port: &str, verdict: &str) -> u64 {
        self.stdout
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 6 && f[0] == port && f[1] == verdict)
                    .then(|| f[3].parse::<u64>().expect("frames"))
            })
            .sum()
    }

    /// A `key=value` from the line starting with `prefix`.
    pub fn value(&self, prefix: &str, key: &str) -> u64 {
        let line = self
            .stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?} in:\n{}", self.stdout));
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no {key} in {line}"))
            .parse()
            .expect("number")
    }
}

impl Box {
    /// Sends SIGTERM and collects the final report.
    pub fn stop(mut self) -> Stopped {
        let child = self.child.take().expect("running");
        // SAFETY: kill(2) on the pid of a child we own and have not reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let out = child.wait_with_output().expect("wait for greguard");
        let mut stderr = self.log.join("\n");
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
            stderr.push('\n');
            stderr.push_str(&l);
        }
        Stopped {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }
}

impl Drop for Box {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A running `greguard-gen count`.
pub struct Counter {
    child: Child,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Counter {
    /// Waits a moment for frames in flight, stops the counter and returns what it counted
    /// (per class, and frames that were not ours).
    pub fn stop(mut self) -> (traffic::ClassCounts, u64) {
        std::thread::sleep(Duration::from_millis(500));
        // SAFETY: kill(2) on the pid of a child we own and have not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let mut rest = String::new();
        let mut line = String::new();
        while self.stdout.read_line(&mut line).unwrap_or(0) > 0 {
            rest.push_str(&line);
            line.clear();
        }
        let _ = self.child.wait();
        let total = rest
            .lines()
            .find(|l| l.starts_with("total received"))
            .unwrap_or_else(|| panic!("no total in {rest}"));
        let other = total
            .split_whitespace()
            .find_map(|w| w.strip_prefix("other="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        (traffic::ClassCounts::parse_line(total), other)
    }
}

/// Runs `f` on a thread that has entered network namespace `ns` (for sockets in it).
#[must_use = "join the thread: a panic in it fails the test only through the join"]
pub fn in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let path = format!("/var/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        // SAFETY: setns(2) with a valid namespace descriptor; it only changes this thread's
        // network namespace.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
}

//! The lab's child processes, each started inside a namespace with `ip netns exec`, with its
//! output read line by line on background threads.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};

/// What to start.
pub struct Spawn<'a> {
    pub name: &'static str,
    pub ns: &'a str,
    pub program: &'a Path,
    pub args: &'a [&'a str],
}

/// A running child.
pub struct Proc {
    name: &'static str,
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    /// Everything read so far.
    out_seen: Vec<String>,
    err_seen: Vec<String>,
}

fn reader(r: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Proc {
    pub fn spawn(s: Spawn<'_>) -> anyhow::Result<Proc> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", s.ns])
            .arg(s.program)
            .args(s.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {} in {}", s.name, s.ns))?;
        let stdout = reader(child.stdout.take().expect("piped stdout"));
        let stderr = reader(child.stderr.take().expect("piped stderr"));
        Ok(Proc {
            name: s.name,
            child,
            stdout,
            stderr,
            out_seen: Vec::new(),
            err_seen: Vec::new(),
        })
    }

    /// New stdout lines since the last call.
    pub fn stdout_lines(&mut self) -> Vec<String> {
        let new: Vec<String> = self.stdout.try_iter().collect();
        self.out_seen.extend(new.iter().cloned());
        new
    }

    /// Every stderr line so far.
    pub fn stderr_lines(&mut self) -> Vec<String> {
        self.err_seen.extend(self.stderr.try_iter());
        self.err_seen.clone()
    }

    fn wait_for(
        &mut self,
        needle: &str,
        timeout: Duration,
        stderr: bool,
    ) -> anyhow::Result<Vec<String>> {
        let deadline = Instant::now() + timeout;
        let mut lines = Vec::new();
        loop {
            let rx = if stderr { &self.stderr } else { &self.stdout };
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(l) => {
                    let done = l.contains(needle);
                    lines.push(l);
                    if done {
                        let seen = if stderr {
                            &mut self.err_seen
                        } else {
                            &mut self.out_seen
                        };
                        seen.extend(lines.iter().cloned());
                        return Ok(lines);
                    }
                }
                Err(_) => {
                    let exited = self.exited();
                    if exited || Instant::now() > deadline {
                        lines.extend(self.stderr.try_iter());
                        return Err(anyhow!(
                            "{} {} before it was ready:\n{}",
                            self.name,
                            if exited { "exited" } else { "timed out" },
                            lines.join("\n")
                        ));
                    }
                }
            }
        }
    }

    /// Waits until stderr says `needle`; returns stderr so far.
    pub fn wait_for_stderr(
        &mut self,
        needle: &str,
        timeout: Duration,
    ) -> anyhow::Result<Vec<String>> {
        self.wait_for(needle, timeout, true)
    }

    /// Waits until stdout says `needle`.
    pub fn wait_for_stdout(
        &mut self,
        needle: &str,
        timeout: Duration,
    ) -> anyhow::Result<Vec<String>> {
        self.wait_for(needle, timeout, false)
    }

    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Asks the child to stop (SIGTERM to the program `ip netns exec` became).
    pub fn terminate(&mut self) {
        if !self.exited() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
        }
    }

    /// Waits for the child (at most 10 s, then kills it) and returns all its stdout.
    pub fn finish(&mut self) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.exited() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return Err(anyhow!("{} did not stop within 10 s", self.name));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The reader threads end with the pipes; collect what is left.
        let deadline = Instant::now() + Duration::from_secs(2);
        while let Ok(l) = self
            .stdout
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.out_seen.push(l);
        }
        self.err_seen.extend(self.stderr.try_iter());
        Ok(self.out_seen.join("\n"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.exited() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

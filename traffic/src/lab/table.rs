//! The lab's live table (one per second) and its final report.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::time::Duration;

use traffic::{Class, ClassCounts};

/// One second of `greguard run --format kv`.
#[derive(Debug, Default)]
pub struct BoxSecond {
    /// (port, verdict, reason) → frames in that second.
    pub counts: BTreeMap<(String, String, String), u64>,
    /// Top sources of dropped GRE: (address, samples).
    pub top: Vec<(String, u64)>,
}

impl BoxSecond {
    /// Parses `stats t=N port.verdict.reason=frames ... top=a/n,...`.
    pub fn parse(line: &str) -> Option<BoxSecond> {
        let rest = line.strip_prefix("stats ")?;
        let mut s = BoxSecond::default();
        for word in rest.split_whitespace() {
            let (k, v) = word.split_once('=')?;
            if k == "top" {
                s.top = v
                    .split(',')
                    .filter_map(|e| e.rsplit_once('/'))
                    .filter_map(|(a, n)| Some((a.to_owned(), n.parse().ok()?)))
                    .collect();
            } else if k != "t" {
                let mut parts = k.splitn(3, '.');
                let key = (
                    parts.next()?.to_owned(),
                    parts.next()?.to_owned(),
                    parts.next()?.to_owned(),
                );
                s.counts.insert(key, v.parse().ok()?);
            }
        }
        Some(s)
    }
}

/// What the table shows, updated from the processes' lines.
pub struct Live {
    header: String,
    seconds: u64,
    /// Cumulative counts of the outside sender and the inside counter.
    sent: ClassCounts,
    arrived: ClassCounts,
    last_box: BoxSecond,
    tty: bool,
    /// The storm phase is on.
    storm: bool,
}

impl Live {
    pub fn new(outside: &str, inside: &str, mode: &str, seconds: u64) -> Live {
        Live {
            header: format!("box: {outside} (outside) <-> {inside} (inside), AF_XDP {mode}"),
            seconds,
            sent: ClassCounts::default(),
            arrived: ClassCounts::default(),
            last_box: BoxSecond::default(),
            tty: std::io::stdout().is_terminal(),
            storm: false,
        }
    }

    /// Marks the storm phase (unknown-peer GRE at kernel speed) on or off.
    pub fn storm(&mut self, on: bool) {
        self.storm = on;
    }

    /// A progress line of the outside sender (cumulative counts).
    pub fn sender_line(&mut self, line: &str) {
        if line.starts_with("t=") {
            self.sent = ClassCounts::parse_line(line);
        }
    }

    /// A progress line of the inside counter (cumulative counts).
    pub fn inside_line(&mut self, line: &str) {
        if line.starts_with("t=") {
            self.arrived = ClassCounts::parse_line(line);
        }
    }

    pub fn box_second(&mut self, s: BoxSecond) {
        self.last_box = s;
    }

    /// Prints the table for the last second.
    pub fn draw(&self, elapsed: Duration) {
        let mut s = String::new();
        if self.tty {
            s.push_str("\x1b[2J\x1b[H");
        }
        let _ = writeln!(
            s,
            "\ngreguard-gen lab  {:>3} s of {}   {}   (Ctrl-C stops and cleans up){}",
            elapsed.as_secs(),
            self.seconds,
            self.header,
            if self.storm {
                "\n  STORM: unknown-peer GRE from random sources at kernel speed (counted in the box's pps, not in 'sent' until it ends)"
            } else {
                ""
            }
        );
        let _ = writeln!(
            s,
            "\n  {:<12} {:>14} {:>16}",
            "class", "sent (outside)", "arrived (inside)"
        );
        for c in Class::ALL {
            let i = c.index();
            let _ = writeln!(
                s,
                "  {:<12} {:>14} {:>16}",
                c.name(),
                self.sent.frames[i],
                self.arrived.frames[i]
            );
        }
        let _ = writeln!(
            s,
            "\n  {:<8} {:<8} {:<16} {:>10}   (greguard, last second)",
            "port", "verdict", "reason", "pps"
        );
        for ((port, verdict, reason), n) in &self.last_box.counts {
            let _ = writeln!(s, "  {port:<8} {verdict:<8} {reason:<16} {n:>10}");
        }
        let _ = writeln!(s, "\n  top sources of dropped GRE (sampled, last 10 s):");
        if self.last_box.top.is_empty() {
            let _ = writeln!(s, "    (none yet)");
        }
        for (a, n) in &self.last_box.top {
            let _ = writeln!(s, "    {a:<40} {n:>6}");
        }
        print!("{s}");
    }
}

/// The final comparison: per class, sent and arrived in both directions, and whether that is
/// what the policy says. Returns whether everything matched.
pub fn report(
    sent_out: &ClassCounts,
    got_in: &ClassCounts,
    sent_in: &ClassCounts,
    got_out: &ClassCounts,
    ping: &str,
) -> bool {
    let mut ok = true;
    println!("\n== the lab's report: what was sent, what arrived on the other side");
    println!(
        "  {:<12} {:>12} {:>12} {:>12} {:>12}   {:<8} result",
        "class", "sent out→in", "arrived in", "sent in→out", "arrived out", "policy"
    );
    for c in Class::ALL {
        let i = c.index();
        let expect_pass = c.should_pass();
        let good = |sent: u64, got: u64| if expect_pass { got == sent } else { got == 0 };
        let row_ok = good(sent_out.frames[i], got_in.frames[i])
            && good(sent_in.frames[i], got_out.frames[i]);
        ok &= row_ok;
        println!(
            "  {:<12} {:>12} {:>12} {:>12} {:>12}   {:<8} {}",
            c.name(),
            sent_out.frames[i],
            got_in.frames[i],
            sent_in.frames[i],
            got_out.frames[i],
            if expect_pass { "pass" } else { "drop" },
            if row_ok { "ok" } else { "MISMATCH" }
        );
    }
    println!("  ping outside → inside through the box: {ping}");
    let ping_ok = ping.contains(" 0% packet loss");
    ok &= ping_ok;
    println!(
        "\n{}",
        if ok {
            "RESULT: every valid tunnel frame and all background traffic crossed the box unchanged in number; no unknown, invalid or bogon GRE did."
        } else {
            "RESULT: MISMATCH — see the rows above."
        }
    );
    ok
}

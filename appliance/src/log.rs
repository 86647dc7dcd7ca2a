//! The daemon's log: `tracing` events as plain lines on stderr, which journald takes as they
//! are (without our own timestamps when `JOURNAL_STREAM` says stderr goes to the journal).
//! Sampled drops are logged at a bounded rate: a storm of a million frames a second must not
//! become a million log lines.

use std::time::{Duration, Instant};

use datapath::Sample;
use tracing::Level;

/// Installs the subscriber: INFO and above, DEBUG with `verbose`.
pub fn init(verbose: bool) {
    let level = if verbose { Level::DEBUG } else { Level::INFO };
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(false)
        .with_ansi(false);
    // A second init (tests, the lab) keeps the first subscriber.
    let _ = if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
}

/// At most `per_second` sampled drops logged each second; the rest are counted and the count
/// is logged when the second ends.
pub struct DropLog {
    per_second: u32,
    second: Instant,
    logged: u32,
    suppressed: u64,
}

impl DropLog {
    pub fn new(per_second: u32) -> DropLog {
        DropLog {
            per_second,
            second: Instant::now(),
            logged: 0,
            suppressed: 0,
        }
    }

    /// Logs one sample, or counts it when this second's budget is spent.
    pub fn sample(&mut self, s: &Sample, tunnel: Option<&str>) {
        self.roll();
        if self.logged < self.per_second {
            self.logged += 1;
            tracing::info!(
                port = s.port.port(),
                reason = s.decision.reason.name(),
                src = %s.source().map_or_else(|| "-".to_string(), |a| a.to_string()),
                len = s.len,
                tunnel = tunnel.unwrap_or(""),
                "dropped GRE"
            );
        } else {
            self.suppressed += 1;
        }
    }

    /// Starts a new second when due, reporting what the last one suppressed.
    pub fn roll(&mut self) {
        if self.second.elapsed() >= Duration::from_secs(1) {
            if self.suppressed > 0 {
                tracing::info!(
                    suppressed = self.suppressed,
                    "more dropped GRE samples this second, not logged (rate limit)"
                );
            }
            self.second = Instant::now();
            self.logged = 0;
            self.suppressed = 0;
        }
    }
}

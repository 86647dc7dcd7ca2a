//! systemd's notification protocol (`Type=notify`), through the `sd-notify` crate: READY=1
//! once both ports forward and metrics are served, RELOADING=1 with MONOTONIC_USEC around a
//! reload, STOPPING=1 on the way out, and WATCHDOG=1 at half the interval systemd asks for.
//! Outside systemd (no `NOTIFY_SOCKET`) every call is a no-op.

use std::time::{Duration, Instant};

use sd_notify::NotifyState;

/// The notifier and the watchdog's schedule.
pub struct Notifier {
    watchdog: Option<Duration>,
    next_ping: Instant,
}

impl Notifier {
    pub fn new() -> Notifier {
        let mut usec = 0;
        let watchdog = sd_notify::watchdog_enabled(false, &mut usec)
            .then(|| Duration::from_micros(usec / 2).max(Duration::from_millis(10)));
        Notifier {
            watchdog,
            next_ping: Instant::now(),
        }
    }

    /// Both ports forward: the service is up.
    pub fn ready(&self, status: &str) {
        let _ = sd_notify::notify(false, &[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// A reload starts (systemd 252 wants the monotonic time with it).
    pub fn reloading(&self) {
        let mut states = vec![NotifyState::Reloading];
        if let Ok(now) = NotifyState::monotonic_usec_now() {
            states.push(now);
        }
        let _ = sd_notify::notify(false, &states);
    }

    pub fn stopping(&self) {
        let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
    }

    /// Pings the watchdog when it is due and `healthy()` says the workers are still making
    /// progress; call often (the main loop does, every 50 ms). A stuck worker thus gets the
    /// service restarted by systemd, not just a stuck main thread.
    pub fn tick(&mut self, healthy: impl FnOnce() -> bool) {
        if let Some(every) = self.watchdog {
            let now = Instant::now();
            if now >= self.next_ping {
                if healthy() {
                    let _ = sd_notify::notify(false, &[NotifyState::Watchdog]);
                }
                self.next_ping = now + every;
            }
        }
    }
}

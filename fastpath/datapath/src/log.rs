//! libbpf's and libxdp's messages, routed to a sink of greguard's choosing instead of stderr.
//!
//! `csrc/bpf_log.c` formats each message and calls [`greguard_bpf_log`]; the sink set with
//! [`route_bpf_logs`] decides what to do with it (the binary logs warnings and keeps debug
//! chatter out of the operator's way).

use std::ffi::{c_char, c_int, CStr};
use std::sync::OnceLock;

/// How loud a library message is (libbpf's and libxdp's levels share these numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Warn,
    Info,
    Debug,
}

/// Receives `(library, level, message)`.
pub type Sink = fn(&'static str, Level, &str);

static SINK: OnceLock<Sink> = OnceLock::new();

extern "C" {
    fn greguard_route_bpf_logs();
}

/// Sends every later libbpf/libxdp message to `sink`. The first sink set stays.
pub fn route_bpf_logs(sink: Sink) {
    if SINK.set(sink).is_ok() {
        // SAFETY: the shim only installs two print callbacks in the libraries; it is sound to
        // call at any time and the callbacks it installs only call `greguard_bpf_log`.
        unsafe { greguard_route_bpf_logs() };
    }
}

/// Called by the C shim with one formatted message.
///
/// # Safety
/// `message` must be a valid NUL-terminated string for the duration of the call.
#[no_mangle]
pub unsafe extern "C" fn greguard_bpf_log(source: c_int, level: c_int, message: *const c_char) {
    let Some(sink) = SINK.get() else { return };
    if message.is_null() {
        return;
    }
    // SAFETY: the shim passes a NUL-terminated buffer that lives until it returns.
    let text = unsafe { CStr::from_ptr(message) }.to_string_lossy();
    let level = match level {
        0 => Level::Warn,
        1 => Level::Info,
        _ => Level::Debug,
    };
    let library = if source == 0 { "libbpf" } else { "libxdp" };
    sink(library, level, text.trim_end());
}

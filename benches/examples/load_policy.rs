//! Loads a policy file several times in one process, as a daemon's reloads do, and prints how
//! long each load took with the whole-file reader (`config::load_file`, what `greguard check`
//! uses) and with `config::Loader` (what `greguard run` uses, reusing unchanged tunnels and the
//! memory of the policy before):
//!
//! ```text
//! cargo build --release -p benches --example load_policy
//! target/release/examples/load_policy policy.toml [TIMES] [loader]
//! ```
//! `loader` leaves the whole-file reader out, for profiles of the loader alone.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .expect("usage: load_policy FILE [TIMES] [loader]");
    let path = Path::new(&path);
    let times: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let only_loader = args.next().as_deref() == Some("loader");
    let mut loader = config::Loader::new();
    let mut running: Option<Arc<validator::Policy>> = None;
    for i in 0..times {
        let t = Instant::now();
        if !only_loader {
            drop(config::load_file(path).expect("policy loads"));
        }
        let whole_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let loaded = loader.load_file(path).expect("policy loads");
        let loader_ms = t.elapsed().as_secs_f64() * 1e3;
        println!(
            "load {i}: whole file {whole_ms:.1} ms, loader {loader_ms:.1} ms ({}), {} tunnels",
            loader.last(),
            loaded.policy.tunnel_count()
        );
        // As the daemon does: the policy replaced goes back to the loader for its memory.
        let replaced = running.replace(loaded.policy);
        if let Some(policy) = replaced.and_then(|p| Arc::try_unwrap(p).ok()) {
            loader.recycle(policy);
        }
    }
}

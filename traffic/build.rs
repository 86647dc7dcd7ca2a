//! Compiles greguard-gen's XDP programs (`bpf/blast.bpf.c`) with clang for the BPF target; the
//! object is embedded in the library and loaded when `blast` or `sink` run.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=bpf/blast.bpf.c");
    println!("cargo:rerun-if-env-changed=BPF_CLANG");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("blast.bpf.o");
    let clang = std::env::var("BPF_CLANG").unwrap_or_else(|_| "clang".into());
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-I/usr/include/{arch}-linux-gnu"))
        .args(["-c", "bpf/blast.bpf.c", "-o"])
        .arg(&out)
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run {clang} to build greguard-gen's XDP programs (Debian: apt-get install clang libbpf-dev): {e}")
        });
    assert!(status.success(), "{clang} failed on bpf/blast.bpf.c");
}

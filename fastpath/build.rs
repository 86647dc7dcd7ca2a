//! Compiles the C shim that routes libbpf's and libxdp's messages into greguard's log, and the
//! fast lane's XDP program (`bpf/greguard.bpf.c`, with clang for the BPF target; the object is
//! embedded in the library and loaded at run time).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=csrc/bpf_log.c");
    cc::Build::new()
        .file("csrc/bpf_log.c")
        .warnings(true)
        .compile("greguard_bpf_log");

    println!("cargo:rerun-if-changed=bpf/greguard.bpf.c");
    println!("cargo:rerun-if-env-changed=BPF_CLANG");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("greguard.bpf.o");
    let clang = std::env::var("BPF_CLANG").unwrap_or_else(|_| "clang".into());
    // <asm/types.h> lives in Debian's multiarch include directory.
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-I/usr/include/{arch}-linux-gnu"))
        .args(["-c", "bpf/greguard.bpf.c", "-o"])
        .arg(&out)
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run {clang} to build the XDP program (Debian: apt-get install clang libbpf-dev): {e}")
        });
    assert!(
        status.success(),
        "{clang} failed on bpf/greguard.bpf.c (needs libbpf-dev for <bpf/bpf_helpers.h>)"
    );
}

//! Builds an XDP program with clang for the BPF target, from a build script: the one place the
//! workspace says how (the fast lane's program in `fastpath/datapath`, the generator's in
//! `traffic`). The object lands in `OUT_DIR`, where the crate embeds it with `include_bytes!`.
//!
//! Needs clang and libbpf's headers (`<bpf/bpf_helpers.h>`; Debian: `apt-get install clang
//! libbpf-dev`). `BPF_CLANG` names another clang.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Compiles `source` (relative to the crate being built) into `OUT_DIR/<object>`, with the
/// extra include directories `include`; returns the object's path. Tells cargo to rebuild when
/// the source or `BPF_CLANG` changes. A failure ends the build with what to install.
pub fn compile(source: &str, object: &str, include: &[&Path]) -> PathBuf {
    println!("cargo:rerun-if-changed={source}");
    println!("cargo:rerun-if-env-changed=BPF_CLANG");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR is set for build scripts"))
        .join(object);
    let clang = std::env::var("BPF_CLANG").unwrap_or_else(|_| "clang".into());
    // <asm/types.h> lives in Debian's multiarch include directory.
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    let mut cmd = Command::new(&clang);
    // BPF ISA v3 for atomic compare-and-swap (the policers; Linux 5.12 and later).
    cmd.args([
        "-O2", "-g", "-target", "bpf", "-mcpu=v3", "-Wall", "-Werror",
    ])
    .arg(format!("-I/usr/include/{arch}-linux-gnu"));
    for dir in include {
        cmd.arg("-I").arg(dir);
    }
    let status = cmd
        .args(["-c", source, "-o"])
        .arg(&out)
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {clang} to build the XDP program {source} \
                 (Debian: apt-get install clang libbpf-dev): {e}"
            )
        });
    assert!(
        status.success(),
        "{clang} failed on {source} (it needs libbpf-dev for <bpf/bpf_helpers.h>)"
    );
    out
}

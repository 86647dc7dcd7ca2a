//! Compiles the C shim that routes libbpf's and libxdp's messages into greguard's log.

fn main() {
    println!("cargo:rerun-if-changed=csrc/bpf_log.c");
    cc::Build::new()
        .file("csrc/bpf_log.c")
        .warnings(true)
        .compile("greguard_bpf_log");
}

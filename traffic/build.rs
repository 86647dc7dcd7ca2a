//! Compiles greguard-gen's XDP programs (`bpf/blast.bpf.c`) with clang for the BPF target; the
//! object is embedded in the library and loaded when `blast` or `sink` run.

fn main() {
    bpf_build::compile("bpf/blast.bpf.c", "blast.bpf.o", &[]);
}

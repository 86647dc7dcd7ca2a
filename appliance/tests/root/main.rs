//! The tests that need root: they create network namespaces and veths, run the real `greguard
//! run` with AF_XDP sockets and its XDP program, load nftables rulesets and start systemd in a
//! container. One binary, built only with the `root-tests` feature, which `make test` turns on
//! (`cargo test --features appliance/root-tests`); a plain `cargo test` as a normal user leaves
//! it out. Each module is one capability.

#[path = "../common/mod.rs"]
mod common;
#[path = "../../../fastpath/validator/tests/common/mod.rs"]
mod shared;

mod agreement;
mod blast;
mod datapath;
mod fastlane;
mod kernel_verdicts;
mod lab;
mod nft;
mod no_bypass;
mod policers;
mod shape;
mod slow_path;
mod systemd;

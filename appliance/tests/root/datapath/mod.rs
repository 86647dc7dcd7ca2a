//! The real data path: `greguard run` on veths between network namespaces, real AF_XDP
//! sockets, frames from `greguard-gen`, and what arrives on the other side. Needs root.

use crate::common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::netns::{sh, Topology};
use traffic::Class;

/// The lab's tunnels: a keyed v0 branch with keepalives, a prefix pool with IPv6 and IPv4, and a
/// PPTP user; the generator builds valid frames for each.
const TUNNELS: &str = traffic::LAB_TUNNELS;

/// Frames of a pcap file, as a multiset.
fn frames(path: &Path) -> HashMap<Vec<u8>, usize> {
    let mut m = HashMap::new();
    for (_, _, data) in common::read_pcap(path).1 {
        *m.entry(data).or_insert(0) += 1;
    }
    m
}

mod forwarding;
mod metrics;
mod operations;
mod reload;
mod start;

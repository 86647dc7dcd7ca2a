//! What a policy means when it leaves things out (docs/policy.md).

use std::net::SocketAddr;

use config::{Metrics, OnFailure, Queues, Sampling, XdpMode};
use validator::{Action, Defaults, FlagRule, KeyRule, ProtoClass, Rate, Verdict};

#[test]
fn an_empty_file_is_all_defaults_and_no_ports() {
    let l = config::load_str("", "empty.toml").unwrap();
    assert_eq!(l.model.ports, None);
    assert_eq!(l.model.defaults, Defaults::default());
    assert!(l.tunnels().is_empty());
    assert_eq!(l.policy.tunnel_count(), 0);
    assert_eq!(
        l.model.sampling,
        Sampling {
            invalid: 100,
            forwarded: 0,
            snaplen: 256,
            pcap_dir: None,
            pcap_rotate_mb: 64,
            pcap_keep: 10,
        }
    );
    assert_eq!(
        l.model.metrics,
        Metrics {
            listen: "127.0.0.1:9747".parse::<SocketAddr>().unwrap()
        }
    );
}

#[test]
fn defaults_table_matches_the_design() {
    let d = config::load_str("[defaults]\n", "p.toml")
        .unwrap()
        .model
        .defaults;
    assert_eq!(d.non_gre, Verdict::Forward);
    assert_eq!(d.unknown_tunnel, Action::Drop);
    assert_eq!(d.invalid_gre, Action::Drop);
    assert_eq!(
        d.rate_limit,
        Rate {
            pps: 1000,
            burst: 100
        }
    );
    assert!(d.fragments_to_tunnel);
    assert!(d.drop_reserved_bits);
    assert!(d.drop_bogons);
}

#[test]
fn every_default_can_be_changed() {
    let text = r#"
[defaults]
non_gre        = "drop"
unknown_tunnel = "rate-limit"
invalid_gre    = "rate-limit"
rate_limit     = { pps = 5, burst = 2 }
fragments      = "drop"
reserved_bits  = "ignore"
bogons         = "ignore"
"#;
    let d = config::load_str(text, "p.toml").unwrap().model.defaults;
    assert_eq!(
        d,
        Defaults {
            non_gre: Verdict::Drop,
            unknown_tunnel: Action::RateLimit,
            invalid_gre: Action::RateLimit,
            rate_limit: Rate { pps: 5, burst: 2 },
            fragments_to_tunnel: false,
            drop_reserved_bits: false,
            drop_bogons: false,
        }
    );
}

#[test]
fn ports_defaults() {
    let l = config::load_str("[ports]\noutside = \"eth0\"\ninside = \"eth1\"\n", "p.toml").unwrap();
    let p = l.model.ports.unwrap();
    assert_eq!(p.queues, Queues::All);
    assert_eq!(p.cores, None);
    assert_eq!(p.xdp_mode, XdpMode::Auto);
    assert_eq!(p.frame_size, 4096);
    assert!(p.fast_lane);
    assert_eq!(p.on_failure, OnFailure::Open);
}

#[test]
fn ports_values_are_read() {
    let text = r#"
[ports]
outside = "eth0"
inside = "eth1"
queues = [3, 1]
cores = [5, 6]
xdp_mode = "skb"
frame_size = 2048
fast_lane = false
on_failure = "closed"
"#;
    let p = config::load_str(text, "p.toml")
        .unwrap()
        .model
        .ports
        .unwrap();
    assert_eq!(p.queues, Queues::List(vec![3, 1]));
    assert_eq!(p.cores, Some(vec![5, 6]));
    assert_eq!(p.xdp_mode, XdpMode::Skb);
    assert_eq!(p.frame_size, 2048);
    assert!(!p.fast_lane);
    assert_eq!(p.on_failure, OnFailure::Closed);
}

#[test]
fn tunnel_defaults_for_version_0() {
    let text = "[[tunnel]]\nname = \"t\"\npeer = \"203.0.113.7\"\nlocal = \"198.51.100.10\"\n";
    let l = config::load_str(text, "p.toml").unwrap();
    let t = &l.tunnels()[0];
    assert_eq!(t.key, KeyRule::Any);
    assert_eq!(t.version, 0);
    assert_eq!(t.protocols.describe(), vec!["ipv4", "ipv6"]);
    assert!(!t.nested);
    assert_eq!((t.checksum, t.sequence), (FlagRule::Allow, FlagRule::Allow));
    assert_eq!(t.rate, None);
}

#[test]
fn tunnel_defaults_for_version_1_are_ppp() {
    let text = "[[tunnel]]\nname = \"t\"\npeer = \"203.0.113.0/24\"\nlocal = \"198.51.100.10\"\nversion = 1\n";
    let t = config::load_str(text, "p.toml").unwrap().tunnels()[0].clone();
    assert_eq!(t.protocols.describe(), vec!["ppp"]);
    assert_eq!(t.key, KeyRule::Any);
}

#[test]
fn tunnel_values_are_read() {
    let text = r#"
[[tunnel]]
name = "t"
peer = "2001:db8::/32"
local = "2001:db8:ffff::1"
key = "none"
protocols = ["IPv4", "teb", "0x88BE", 34887, "0x1234", 4660]
nested = true
checksum = "forbid"
sequence = "require"
rate = { pps = 10, burst = 1 }
"#;
    let t = config::load_str(text, "p.toml").unwrap().tunnels()[0].clone();
    assert_eq!(t.peer.to_string(), "2001:db8::/32");
    assert_eq!(t.local.to_string(), "2001:db8:ffff::1");
    assert_eq!(t.key, KeyRule::Absent);
    // 34887 = 0x8847 (MPLS); 0x1234 twice is one number.
    assert_eq!(
        t.protocols.describe(),
        vec!["ipv4", "teb", "mpls", "erspan2", "0x1234"]
    );
    assert!(t.protocols.allows(0x1234, ProtoClass::Other));
    assert!(t.nested);
    assert_eq!(
        (t.checksum, t.sequence),
        (FlagRule::Forbid, FlagRule::Require)
    );
    assert_eq!(t.rate, Some(Rate { pps: 10, burst: 1 }));
}

#[test]
fn sampling_and_metrics_values_are_read() {
    let text = r#"
[sampling]
invalid = 0
forwarded = 1000
snaplen = 64
pcap_dir = "/tmp/samples"
pcap_rotate_mb = 1
pcap_keep = 1

[metrics]
listen = "[::1]:9100"
"#;
    let m = config::load_str(text, "p.toml").unwrap().model;
    assert_eq!(m.sampling.invalid, 0);
    assert_eq!(m.sampling.forwarded, 1000);
    assert_eq!(m.sampling.snaplen, 64);
    assert_eq!(m.sampling.pcap_dir, Some("/tmp/samples".into()));
    assert_eq!((m.sampling.pcap_rotate_mb, m.sampling.pcap_keep), (1, 1));
    assert_eq!(
        m.metrics.listen,
        "[::1]:9100".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn summary_is_readable() {
    let text = r#"
[ports]
outside = "eth0"
inside = "eth1"

[[tunnel]]
name = "berlin"
peer = "203.0.113.7"
local = "198.51.100.10"
key = 1001
rate = { pps = 200000, burst = 5000 }

[[tunnel]]
name = "pool"
peer = "192.0.2.0/24"
local = "198.51.100.10"
version = 1
"#;
    let s = config::load_str(text, "p.toml").unwrap().summary();
    assert!(s.contains("outside eth0, inside eth1"), "{s}");
    assert!(s.contains("unknown_tunnel drop"), "{s}");
    assert!(
        s.contains("2 tunnels: 1 version 0, 1 version 1; 2 IPv4; 1 host pair, 1 with prefixes"),
        "{s}"
    );
    assert!(s.contains("berlin  203.0.113.7 → 198.51.100.10   key 1001  v0  ipv4,ipv6  rate 200000 pps burst 5000"), "{s}");
    assert!(
        s.contains("pool    192.0.2.0/24 → 198.51.100.10  any key   v1  ppp"),
        "{s}"
    );
    let none = config::load_str("", "p.toml").unwrap().summary();
    assert!(none.contains("ports:    none"), "{none}");
    assert!(none.contains("0 tunnels"), "{none}");
}

//! The shipped example policies load, and compile to what their comments say.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use config::{Loaded, OnFailure, Queues, XdpMode};
use validator::{Action, FlagRule, KeyRule, Match, Rate};

fn example(name: &str) -> Loaded {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    config::load_file(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn v4(s: &str) -> u32 {
    u32::from(s.parse::<Ipv4Addr>().unwrap())
}

fn v6(s: &str) -> u128 {
    u128::from(s.parse::<Ipv6Addr>().unwrap())
}

/// The name of the tunnel a match found, or what else it was.
fn matched(l: &Loaded, m: Match) -> String {
    match m {
        Match::Tunnel(i) => l.policy.tunnel_name(i).to_owned(),
        Match::KeyMismatch(i) => format!("key mismatch on {}", l.policy.tunnel_name(i)),
        Match::None => "none".to_owned(),
    }
}

#[test]
fn small_site() {
    let l = example("small-site.toml");
    assert_eq!(l.policy.tunnel_count(), 4);
    let ports = l.model.ports.as_ref().unwrap();
    assert_eq!(
        (ports.outside.as_str(), ports.inside.as_str()),
        ("enp1s0f0", "enp1s0f1")
    );
    assert_eq!(ports.queues, Queues::All);
    assert_eq!(ports.on_failure, OnFailure::Open);
    let p = &l.policy;
    assert_eq!(
        matched(
            &l,
            p.match_v4(v4("203.0.113.7"), v4("198.51.100.10"), Some(1001))
        ),
        "berlin-branch"
    );
    assert_eq!(
        matched(
            &l,
            p.match_v4(v4("203.0.113.7"), v4("198.51.100.10"), Some(1002))
        ),
        "key mismatch on berlin-branch"
    );
    assert_eq!(
        matched(
            &l,
            p.match_v4(v4("203.0.113.8"), v4("198.51.100.10"), Some(1001))
        ),
        "none"
    );
    assert_eq!(
        matched(
            &l,
            p.match_v6(v6("2001:db8:100::7"), v6("2001:db8:ffff::10"), Some(2001))
        ),
        "vienna-v6"
    );
    let berlin = &l.tunnels()[0];
    assert_eq!(
        berlin.rate,
        Some(Rate {
            pps: 200_000,
            burst: 5000
        })
    );
    assert_eq!(l.tunnels()[1].checksum, FlagRule::Require);
    assert_eq!(l.tunnels()[2].sequence, FlagRule::Forbid);
    assert_eq!(l.tunnels()[2].protocols.describe(), vec!["ipv4"]);
    assert_eq!(
        l.model.sampling.pcap_dir.as_deref(),
        Some(std::path::Path::new("/var/lib/greguard/samples"))
    );
}

#[test]
fn pptp_concentrator() {
    let l = example("pptp-concentrator.toml");
    assert_eq!(l.policy.tunnel_count(), 2);
    assert!(l
        .tunnels()
        .iter()
        .all(|t| t.version == 1 && t.key == KeyRule::Any));
    assert!(l
        .tunnels()
        .iter()
        .all(|t| t.protocols.describe() == vec!["ppp"]));
    let ports = l.model.ports.as_ref().unwrap();
    assert_eq!(ports.queues, Queues::List(vec![0, 1]));
    assert_eq!(ports.cores, Some(vec![2, 3]));
    assert_eq!(ports.xdp_mode, XdpMode::Copy);
    assert_eq!(l.model.defaults.invalid_gre, Action::RateLimit);
    assert_eq!(
        l.model.defaults.rate_limit,
        Rate {
            pps: 100,
            burst: 20
        }
    );
    let p = &l.policy;
    // Any client of the pool, any call ID.
    assert_eq!(
        matched(
            &l,
            p.match_v4(v4("192.0.2.77"), v4("198.51.100.20"), Some(0x4711))
        ),
        "pptp-office-pool"
    );
    assert_eq!(
        matched(
            &l,
            p.match_v4(v4("203.0.113.100"), v4("198.51.100.20"), Some(1))
        ),
        "pptp-mobile-pool"
    );
    // 203.0.113.128 is outside the /25.
    assert_eq!(
        matched(
            &l,
            p.match_v4(v4("203.0.113.128"), v4("198.51.100.20"), Some(1))
        ),
        "none"
    );
}

#[test]
fn dmvpn_hub() {
    let l = example("dmvpn-hub.toml");
    assert_eq!(l.policy.tunnel_count(), 2);
    assert_eq!(
        l.tunnels()[0].protocols.describe(),
        vec!["ipv4", "nhrp", "keepalive"]
    );
    assert_eq!(
        l.model.ports.as_ref().unwrap().on_failure,
        OnFailure::Closed
    );
    let p = &l.policy;
    assert_eq!(
        matched(
            &l,
            p.match_v4(v4("203.0.113.45"), v4("198.51.100.1"), Some(100))
        ),
        "dmvpn-spokes"
    );
    // The fixed spoke is a host pair: more specific than the pool.
    assert_eq!(
        matched(
            &l,
            p.match_v4(v4("203.0.113.200"), v4("198.51.100.1"), Some(100))
        ),
        "dmvpn-datacenter-spoke"
    );
    assert_eq!(
        matched(&l, p.match_v4(v4("203.0.113.45"), v4("198.51.100.1"), None)),
        "key mismatch on dmvpn-spokes"
    );
}

#[test]
fn summaries_name_every_tunnel() {
    for name in [
        "small-site.toml",
        "pptp-concentrator.toml",
        "dmvpn-hub.toml",
    ] {
        let l = example(name);
        let s = l.summary();
        for t in l.tunnels() {
            assert!(s.contains(&t.name), "{name}: {s}");
        }
    }
}

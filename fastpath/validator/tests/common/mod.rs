//! Shared helpers of the classifier's integration tests: addresses, tunnel specs, policies and
//! frames built with `frames`.

#![allow(dead_code)]
// Test policies hold far fewer than 2^32 tunnels: their indices fit u32.
#![allow(clippy::cast_possible_truncation)]

pub mod generators;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use frames::{payload, FrameBuilder, Gre};
use validator::wire::gre::proto;
use validator::{
    Action, Classifier, Decision, Defaults, Direction, FlagRule, IpPrefix, KeyRule, Policy,
    ProtoClass, ProtocolSet, Rate, Reason, TunnelSpec, Verdict, NO_TUNNEL,
};

/// The far end of the IPv4 test tunnel.
pub const PEER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
/// The concentrator end of the IPv4 test tunnels.
pub const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
/// The far end of the PPTP test tunnel.
pub const PPTP_PEER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 20);
/// An address no tunnel names.
pub const STRANGER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 99);
pub const PEER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x1, 0, 0, 0, 0, 0x7);
pub const LOCAL6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 0x10);
pub const STRANGER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x99, 0, 0, 0, 0, 0x99);

/// Addresses of inner packets.
pub const IN_A: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
pub const IN_B: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 1);
pub const IN6_A: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 1, 0, 0, 0, 1);
pub const IN6_B: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 2, 0, 0, 0, 1);

/// Indexes of the tunnels of [`standard_policy`].
pub const T_V4: u32 = 0;
pub const T_V6: u32 = 1;
pub const T_PPTP: u32 = 2;

/// "a.b.c.d", "a.b.c.d/len", IPv6 likewise.
pub fn pfx(s: &str) -> IpPrefix {
    match s.split_once('/') {
        Some((a, l)) => IpPrefix::new(a.parse().unwrap(), l.parse().unwrap()).unwrap(),
        None => IpPrefix::host(s.parse::<IpAddr>().unwrap()),
    }
}

/// A protocol set from policy names (`"ipv4"`, ...) and numbers (`"0x1234"`).
pub fn protocols(names: &[&str]) -> ProtocolSet {
    let mut set = ProtocolSet::new();
    for n in names {
        match n.strip_prefix("0x") {
            Some(hex) => set.allow_number(u16::from_str_radix(hex, 16).unwrap()),
            None => set.allow_class(ProtoClass::from_name(n).expect("protocol name")),
        }
    }
    set
}

/// Every version-0 protocol class by name, and one numeric type outside the classes.
pub const ALL_V0_PROTOCOLS: &[&str] = &[
    "ipv4",
    "ipv6",
    "teb",
    "mpls",
    "erspan2",
    "erspan3",
    "nhrp",
    "wccp",
    "keepalive",
    "0x1234",
];

/// A version-0 tunnel allowing ipv4 and ipv6, any key, no nesting, checksum and sequence allowed.
pub fn tunnel(name: &str, peer: &str, local: &str) -> TunnelSpec {
    TunnelSpec {
        name: name.into(),
        peer: pfx(peer),
        local: pfx(local),
        key: KeyRule::Any,
        version: 0,
        protocols: protocols(&["ipv4", "ipv6"]),
        nested: false,
        checksum: FlagRule::Allow,
        sequence: FlagRule::Allow,
        rate: None,
    }
}

/// A PPTP (version 1) tunnel allowing ppp, any call ID.
pub fn pptp_tunnel(name: &str, peer: &str, local: &str) -> TunnelSpec {
    TunnelSpec {
        version: 1,
        protocols: protocols(&["ppp"]),
        ..tunnel(name, peer, local)
    }
}

/// A policy of `specs`, in order (tunnel `i` is `specs[i]`).
pub fn policy(defaults: Defaults, specs: Vec<TunnelSpec>) -> Policy {
    let mut p = Policy::new(defaults);
    for (i, s) in specs.into_iter().enumerate() {
        assert_eq!(p.add_tunnel(s).unwrap(), i as u32);
    }
    p
}

/// Tunnels [`T_V4`] (PEER–LOCAL), [`T_V6`] (PEER6–LOCAL6) and [`T_PPTP`] (PPTP_PEER–LOCAL)
/// with `defaults`.
pub fn standard_policy_with(defaults: Defaults) -> Policy {
    policy(
        defaults,
        vec![
            tunnel("v4", &PEER.to_string(), &LOCAL.to_string()),
            tunnel("v6", &PEER6.to_string(), &LOCAL6.to_string()),
            pptp_tunnel("pptp", &PPTP_PEER.to_string(), &LOCAL.to_string()),
        ],
    )
}

/// [`standard_policy_with`] the default defaults.
pub fn standard_policy() -> Policy {
    standard_policy_with(Defaults::default())
}

/// Defaults with every action at its documented default except as changed by `f`.
pub fn defaults(f: impl FnOnce(&mut Defaults)) -> Defaults {
    let mut d = Defaults::default();
    f(&mut d);
    d
}

/// A rate for small budgets.
pub fn rate(pps: u64, burst: u64) -> Rate {
    Rate { pps, burst }
}

/// Classifies one frame with a fresh classifier at time 0.
pub fn classify(policy: &Policy, dir: Direction, frame: &[u8]) -> Decision {
    Classifier::new(policy, 0).classify(policy, 0, dir, frame)
}

/// Classifies one frame arriving on the outside port.
pub fn outside(policy: &Policy, frame: &[u8]) -> Decision {
    classify(policy, Direction::FromOutside, frame)
}

/// The expected decision.
pub fn decision(verdict: Verdict, reason: Reason, tunnel: Option<u32>) -> Decision {
    Decision {
        verdict,
        reason,
        tunnel: tunnel.unwrap_or(NO_TUNNEL),
    }
}

/// Asserts verdict, reason and tunnel at once.
#[track_caller]
pub fn expect(d: Decision, verdict: Verdict, reason: Reason, tunnel: Option<u32>) {
    assert_eq!(d, decision(verdict, reason, tunnel));
}

/// Asserts a dropped frame with no tunnel.
#[track_caller]
pub fn expect_drop(d: Decision, reason: Reason) {
    expect(d, Verdict::Drop, reason, None);
}

/// Asserts a frame forwarded through `tunnel`.
#[track_caller]
pub fn expect_tunnel(d: Decision, tunnel: u32) {
    expect(d, Verdict::Forward, Reason::Tunnel, Some(tunnel));
}

/// An inner IPv4/UDP packet.
pub fn udp4() -> Vec<u8> {
    payload::ipv4_udp(IN_A, IN_B, 40000, 53, b"inner query")
}

/// An inner IPv6/UDP packet.
pub fn udp6() -> Vec<u8> {
    payload::ipv6_udp(IN6_A, IN6_B, 40000, 53, b"inner query")
}

/// An inner Ethernet frame carrying IPv4/UDP.
pub fn inner_ethernet() -> Vec<u8> {
    payload::ethernet(
        [0x02, 0, 0, 0, 0, 0xAA],
        [0x02, 0, 0, 0, 0, 0xBB],
        0x0800,
        &udp4(),
    )
}

/// A PPP frame carrying IPv4 (protocol 0x0021), with address and control.
pub fn ppp_ipv4() -> Vec<u8> {
    payload::ppp(0x0021, &udp4(), true)
}

/// GRE from PEER to LOCAL.
pub fn gre4(header: Gre, payload: impl Into<Vec<u8>>) -> FrameBuilder {
    FrameBuilder::ipv4(PEER, LOCAL).gre(header, payload)
}

/// GRE from PEER6 to LOCAL6.
pub fn gre6(header: Gre, payload: impl Into<Vec<u8>>) -> FrameBuilder {
    FrameBuilder::ipv6(PEER6, LOCAL6).gre(header, payload)
}

/// A well-formed IPv4-in-GRE frame of tunnel [`T_V4`].
pub fn good4() -> Vec<u8> {
    gre4(Gre::v0(proto::IPV4), udp4()).build()
}

/// PPTP from PPTP_PEER to LOCAL.
pub fn pptp(header: Gre, payload: impl Into<Vec<u8>>) -> FrameBuilder {
    FrameBuilder::ipv4(PPTP_PEER, LOCAL).gre(header, payload)
}

/// The frame reversed: source and destination addresses swapped (inside→outside traffic of
/// the same tunnel).
pub fn reversed(mut b: FrameBuilder) -> FrameBuilder {
    match &mut b.network {
        frames::Network::Ipv4(ip) => std::mem::swap(&mut ip.src, &mut ip.dst),
        frames::Network::Ipv6(ip) => std::mem::swap(&mut ip.src, &mut ip.dst),
        _ => panic!("not IP"),
    }
    b
}

/// Whether `verdict` and `tunnel` fit `reason` under `policy`, per the README's Verdicts and
/// reasons and Policy reference.
pub fn consistent(policy: &Policy, d: Decision) -> Result<(), String> {
    let defs = policy.defaults();
    let has_tunnel = d.tunnel != NO_TUNNEL;
    if has_tunnel && d.tunnel as usize >= policy.tunnel_count() {
        return Err(format!("tunnel index out of range: {d:?}"));
    }
    let invalid_may_forward = defs.invalid_gre == Action::RateLimit;
    let (verdict_ok, tunnel_ok) = match d.reason {
        Reason::NonGre => (d.verdict == defs.non_gre, !has_tunnel),
        Reason::BadIp => (d.verdict == Verdict::Drop, !has_tunnel),
        Reason::Truncated
        | Reason::BadVersion
        | Reason::BadFlags
        | Reason::BadChecksum
        | Reason::BadInner => (
            d.verdict == Verdict::Drop || invalid_may_forward,
            !has_tunnel,
        ),
        Reason::ReservedBits => (
            defs.drop_reserved_bits && (d.verdict == Verdict::Drop || invalid_may_forward),
            !has_tunnel,
        ),
        Reason::Bogon => (defs.drop_bogons && d.verdict == Verdict::Drop, !has_tunnel),
        Reason::Fragment => match d.verdict {
            Verdict::Forward => (defs.fragments_to_tunnel, has_tunnel),
            Verdict::Drop => (true, !has_tunnel),
        },
        Reason::UnknownTunnel => (
            (d.verdict == Verdict::Drop) == (defs.unknown_tunnel == Action::Drop),
            !has_tunnel,
        ),
        Reason::KeyMismatch
        | Reason::ProtocolDenied
        | Reason::NestedGre
        | Reason::ChecksumPolicy
        | Reason::SequencePolicy => (d.verdict == Verdict::Drop, has_tunnel),
        Reason::RateLimited => (d.verdict == Verdict::Drop, true),
        Reason::Tunnel => (d.verdict == Verdict::Forward, has_tunnel),
        Reason::Oversize => (false, false),
    };
    if !Reason::ALL.contains(&d.reason) {
        return Err(format!("unknown reason {d:?}"));
    }
    match (verdict_ok, tunnel_ok) {
        (true, true) => Ok(()),
        (false, _) => Err(format!(
            "verdict does not fit the reason: {d:?} under {defs:?}"
        )),
        (_, false) => Err(format!("tunnel does not fit the reason: {d:?}")),
    }
}

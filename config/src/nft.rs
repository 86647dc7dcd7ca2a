//! `greguard nft`: a policy as an nftables ruleset for a Linux bridge between the two ports —
//! the fallback where greguard cannot run, and its peer in the benchmarks.
//!
//! The ruleset follows the check order of the README's Verdicts and reasons with raw payload
//! matches on the transport header (`@th`, the GRE header; Debian 12's nftables 1.0.6 has no `gre`
//! expression):
//!
//! ```text
//! forward:   non_gre (by ethertype, then IP protocol) → gre
//! gre:       outer bogon → bad_version / bad_flags / reserved_bits → fragment → by GRE
//!            header length (C, K, S bits) to v0_at_4 … v0_at_16, version 1 on to tunnels
//! v0_at_L:   inner IPv4/IPv6 version and IHL (bad_inner), inner bogon, keepalive and nested
//!            GRE marked for the tunnel rules
//! tunnels:   outer addresses by direction (a verdict map, or rules most specific first where
//!            tunnels overlap) → addr_N, else unknown_tunnel
//! addr_N:    the tunnels sharing those addresses, chosen by key, else key_mismatch
//! tun_N:     version and protocol type, nesting, C and S rules, the policer → accept
//! ```
//!
//! What nftables cannot check is listed at the top of the ruleset (see [`UNEXPRESSED`]); every
//! rule counts and carries its reason as a comment, so `nft list ruleset` shows the drops.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use validator::{
    Action, Defaults, FlagRule, IpPrefix, KeyRule, ProtoClass, Rate, TunnelSpec, Verdict,
};

use crate::Loaded;

/// The checks of the README's Verdicts and reasons this ruleset does not make, or makes only in
/// part.
pub const UNEXPRESSED: &[&str] = &[
    "bad_ip, truncated: the kernel does not parse a broken outer IP header (version, IHL, total \
     length, header checksum) or a cut-off frame as IP, so such frames get the non_gre verdict",
    "bad_checksum: GRE checksums (RFC 2784 §2.5) are not verified",
    "bad_inner: only the inner IPv4 version and IHL and the inner IPv6 version are checked; not \
     the inner total length, TEB, ERSPAN or MPLS lengths, PPP protocol numbers (RFC 1661 §2) or \
     the PPTP payload length",
    "inner bogons are checked behind the protocol types ipv4 and ipv6 only, not in the IPv4 \
     packet of a WCCP redirect",
    "keepalive and nested GRE are recognised behind an inner IPv4 header without options or an \
     IPv6 header without extension headers only: not behind inner extension headers, in inner \
     fragments, in bridged (TEB) frames or behind MPLS label stacks; an inner IPv6 \
     extension chain is not walked",
    "fragment: an IPv6 fragment after the first is not seen as GRE (it meets the non_gre rule); \
     with fragments = \"tunnel\" fragments are forwarded without the tunnel's policer, and a \
     first fragment's key does not choose among the tunnels of its addresses",
    "GRE inside VLAN tags that the kernel has not taken off the frame is treated as non_gre",
    "rate limits are per rule (nftables' token buckets), not per greguard worker",
];

/// The mark bits the layout chains set for the tunnel rules (top byte of the packet mark).
const KEEPALIVE_MARK: u32 = 0x0100_0000;
const NESTED_MARK: u32 = 0x0200_0000;

/// Why a policy cannot become a ruleset.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error(
        "the policy has no [ports]: the ruleset needs ports.outside and ports.inside, the bridge \
         ports facing the Internet and the concentrators"
    )]
    NoPorts,
}

/// The ruleset for a loaded policy; `source` names the policy file in the header comment.
pub fn ruleset(loaded: &Loaded, source: &str) -> Result<String, NftError> {
    let model = &loaded.model;
    let tunnels = loaded.tunnels();
    let ports = model.ports.as_ref().ok_or(NftError::NoPorts)?;
    let d = &model.defaults;
    let mut o = String::new();
    header(&mut o, source, &ports.outside, &ports.inside);
    let _ = writeln!(o, "table bridge greguard {{");
    if uses_budget(d) {
        let _ = writeln!(
            o,
            "\tlimit shared_budget {{ rate {}/second burst {} packets }}\n",
            d.rate_limit.pps, d.rate_limit.burst
        );
    }
    forward_chain(&mut o, d);
    for len in [4u32, 8, 12, 16] {
        layout_chain(&mut o, d, len);
    }
    let groups = address_groups(tunnels);
    let sides = Sides {
        outside: quote(&ports.outside),
        inside: quote(&ports.inside),
    };
    tunnels_chain(&mut o, d, &groups, &sides);
    if d.fragments_to_tunnel {
        fragment_chain(&mut o, &groups, &sides);
    }
    for (n, group) in groups.iter().enumerate() {
        addr_chain(&mut o, n, group, tunnels);
    }
    for (i, t) in tunnels.iter().enumerate() {
        tunnel_chain(&mut o, i, t);
    }
    if uses_budget(d) {
        let _ = writeln!(
            o,
            "\tchain budget {{\n\t\tlimit name \"shared_budget\" accept\n\t\tcounter drop comment \"rate_limited\"\n\t}}"
        );
    }
    let _ = writeln!(o, "}}");
    Ok(o)
}

fn header(o: &mut String, source: &str, outside: &str, inside: &str) {
    let _ = writeln!(
        o,
        "# greguard nft: the policy {source} as an nftables ruleset (bridge family).\n\
         # Load it with `nft -f FILE` on the host whose Linux bridge joins {outside} (outside, the\n\
         # tunnel peers) and {inside} (inside, the concentrators). Each rule counts and names its\n\
         # greguard reason in its comment; `nft list table bridge greguard` shows them.\n\
         #\n\
         # What nftables cannot do, so this ruleset does not:"
    );
    for line in UNEXPRESSED {
        let _ = writeln!(o, "#   - {line}");
    }
    let _ = writeln!(o);
}

fn uses_budget(d: &Defaults) -> bool {
    d.invalid_gre == Action::RateLimit || d.unknown_tunnel == Action::RateLimit
}

/// The verdict statement of an action.
fn act(action: Action) -> &'static str {
    match action {
        Action::Forward => "accept",
        Action::Drop => "drop",
        Action::RateLimit => "goto budget",
    }
}

/// A rule: `<matches> counter <verdict> comment "<reason>"`.
fn rule(o: &mut String, matches: &str, verdict: &str, reason: &str) {
    let sep = if matches.is_empty() { "" } else { " " };
    let _ = writeln!(
        o,
        "\t\t{matches}{sep}counter {verdict} comment \"{reason}\""
    );
}

fn forward_chain(o: &mut String, d: &Defaults) {
    let invalid = act(d.invalid_gre);
    let _ = writeln!(
        o,
        "\tchain forward {{\n\t\ttype filter hook forward priority filter; policy accept;"
    );
    let non_gre = match d.non_gre {
        Verdict::Forward => "accept",
        Verdict::Drop => "drop",
    };
    // A frame the kernel did not parse as IP has no layer-4 protocol, and a rule that asks
    // for one does not match it: decide on the ethertype first, and send only GRE on.
    rule(o, "meta protocol != { ip, ip6 }", non_gre, "non_gre");
    rule(o, "meta l4proto != gre", non_gre, "non_gre");
    let _ = writeln!(o, "\t\tmeta l4proto gre goto gre");
    rule(o, "", non_gre, "non_gre");
    let _ = writeln!(o, "\t}}\n\n\tchain gre {{");
    let _ = writeln!(
        o,
        "\t\tmeta mark set meta mark & {:#010x}",
        !(KEEPALIVE_MARK | NESTED_MARK)
    );
    if d.drop_bogons {
        rule(
            o,
            "ip saddr { 0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/3 }",
            "drop",
            "bogon",
        );
        rule(o, "ip6 saddr { ::, ::1, ff00::/8 }", "drop", "bogon");
    }
    let fragment = if d.fragments_to_tunnel {
        "goto fragment"
    } else {
        "drop"
    };
    // A fragment after the first carries no GRE header, but nftables reads its first bytes as
    // one (`@th`): it is judged before the header rules. A first fragment is held to them, as
    // greguard holds it.
    rule(o, "ip frag-off & 0x1fff != 0", fragment, "fragment");
    rule(o, "frag frag-off != 0", fragment, "fragment");
    // The version is the low 3 bits of the first 16 (RFC 2784 §2.1).
    rule(o, "@th,13,3 > 1", invalid, "bad_version");
    // RFC 2784 §2.3: R, s and recursion bits, MUST discard.
    rule(o, "@th,13,3 0 @th,0,16 & 0x4c00 != 0", invalid, "bad_flags");
    if d.drop_reserved_bits {
        rule(
            o,
            "@th,13,3 0 @th,0,16 & 0x03f8 != 0",
            "drop",
            "reserved_bits",
        );
    }
    // RFC 2637 §4.1: C, R, s, recursion and flags clear, K set, protocol PPP.
    rule(o, "@th,13,3 1 @th,0,16 & 0xcf78 != 0", invalid, "bad_flags");
    rule(o, "@th,13,3 1 @th,2,1 0", invalid, "bad_flags");
    rule(o, "@th,13,3 1 @th,16,16 != 0x880b", invalid, "bad_flags");
    rule(o, "ip frag-off & 0x3fff != 0", fragment, "fragment");
    rule(o, "exthdr frag exists", fragment, "fragment");
    // Version 0: the header is 4 bytes plus 4 for each of C, K and S (RFC 2890 §2).
    let _ = writeln!(
        o,
        "\t\t@th,0,16 & 0xb007 vmap {{ 0x0000 : goto v0_at_4, 0x8000 : goto v0_at_8, \
         0x2000 : goto v0_at_8, 0x1000 : goto v0_at_8, 0xa000 : goto v0_at_12, \
         0x9000 : goto v0_at_12, 0x3000 : goto v0_at_12, 0xb000 : goto v0_at_16 }}"
    );
    let _ = writeln!(o, "\t\tgoto tunnels\n\t}}\n");
}

/// The inner-packet stage for version-0 GRE whose header is `len` bytes long.
fn layout_chain(o: &mut String, d: &Defaults, len: u32) {
    let invalid = act(d.invalid_gre);
    let bit = |byte: u32| byte * 8;
    let v4 = "@th,16,16 0x0800";
    let v6 = "@th,16,16 0x86dd";
    let _ = writeln!(o, "\tchain v0_at_{len} {{");
    let at = bit(len);
    rule(o, &format!("{v4} @th,{at},4 != 4"), invalid, "bad_inner");
    rule(
        o,
        &format!("{v4} @th,{},4 < 5", at + 4),
        invalid,
        "bad_inner",
    );
    rule(o, &format!("{v6} @th,{at},4 != 6"), invalid, "bad_inner");
    if d.drop_bogons {
        let src4 = bit(len + 12);
        rule(
            o,
            &format!("{v4} @th,{src4},8 {{ 0, 127 }}"),
            "drop",
            "bogon",
        );
        rule(o, &format!("{v4} @th,{src4},8 >= 224"), "drop", "bogon");
        let src6 = bit(len + 8);
        rule(
            o,
            &format!("{v6} @th,{src6},128 {{ 0, 1 }}"),
            "drop",
            "bogon",
        );
        rule(o, &format!("{v6} @th,{src6},8 0xff"), "drop", "bogon");
    }
    // Inner GRE (IPv4 protocol / IPv6 next header 47): a keepalive when its protocol is 0.
    for (matches, gre_proto_at) in [
        (format!("{v4} @th,{},8 47", bit(len + 9)), bit(len + 20 + 2)),
        (format!("{v6} @th,{},8 47", bit(len + 6)), bit(len + 40 + 2)),
    ] {
        let _ = writeln!(
            o,
            "\t\t{matches} @th,{gre_proto_at},16 0 meta mark set meta mark | {KEEPALIVE_MARK:#010x}"
        );
        let _ = writeln!(
            o,
            "\t\t{matches} @th,{gre_proto_at},16 != 0 meta mark set meta mark | {NESTED_MARK:#010x}"
        );
    }
    let _ = writeln!(o, "\t\tgoto tunnels\n\t}}\n");
}

/// The tunnels that share one (peer, local) pair, which the key tells apart.
struct Group {
    peer: IpPrefix,
    local: IpPrefix,
    tunnels: Vec<usize>,
}

/// Tunnels grouped by exact address pair, in policy order of first appearance.
fn address_groups(tunnels: &[Arc<TunnelSpec>]) -> Vec<Group> {
    let mut index: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut groups: Vec<Group> = Vec::new();
    for (i, t) in tunnels.iter().enumerate() {
        let k = (t.peer.to_string(), t.local.to_string());
        match index.get(&k) {
            Some(&g) => groups[g].tunnels.push(i),
            None => {
                index.insert(k, groups.len());
                groups.push(Group {
                    peer: t.peer,
                    local: t.local,
                    tunnels: vec![i],
                });
            }
        }
    }
    groups
}

/// The bridge port names, quoted.
struct Sides {
    outside: String,
    inside: String,
}

fn quote(name: &str) -> String {
    let clean: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "_.-@:".contains(*c))
        .collect();
    format!("\"{clean}\"")
}

/// First address and last address of a prefix, as u128 (IPv4 in the low 32 bits).
fn span(p: &IpPrefix) -> (u128, u128) {
    match *p {
        IpPrefix::V4(a, l) => {
            let host = u32::MAX.checked_shr(u32::from(l)).unwrap_or(0);
            (u128::from(a), u128::from(a | host))
        }
        IpPrefix::V6(a, l) => {
            let host = u128::MAX.checked_shr(u32::from(l)).unwrap_or(0);
            (a, a | host)
        }
    }
}

/// True when no two of `prefixes` (distinct, one family) share an address.
fn disjoint(prefixes: &mut [IpPrefix]) -> bool {
    prefixes.sort_by_key(span);
    prefixes.windows(2).all(|w| span(&w[0]).1 < span(&w[1]).0)
}

/// True when no packet can match two of the groups' address pairs, so a verdict map (whose
/// interval elements must not overlap) can hold them: the peers are pairwise disjoint, and the
/// locals of one peer are.
fn verdict_map_fits(groups: &[&Group]) -> bool {
    let mut by_peer: BTreeMap<String, Vec<IpPrefix>> = BTreeMap::new();
    let mut peers = Vec::new();
    for g in groups {
        let locals = by_peer.entry(g.peer.to_string()).or_default();
        if locals.is_empty() {
            peers.push(g.peer);
        }
        locals.push(g.local);
    }
    disjoint(&mut peers) && by_peer.values_mut().all(|l| disjoint(l))
}

/// Matches each group's outer addresses from both ports, sending a match to `target(n)`.
fn match_addresses(
    o: &mut String,
    groups: &[Group],
    sides: &Sides,
    target: impl Fn(usize) -> String,
) {
    for (ip, v6) in [("ip", false), ("ip6", true)] {
        let family: Vec<(usize, &Group)> = groups
            .iter()
            .enumerate()
            .filter(|(_, g)| g.peer.is_v6() == v6)
            .collect();
        if family.is_empty() {
            continue;
        }
        // From outside the peer is the source; from inside, the destination.
        let orient = [
            (&sides.outside, format!("{ip} saddr . {ip} daddr")),
            (&sides.inside, format!("{ip} daddr . {ip} saddr")),
        ];
        let refs: Vec<&Group> = family.iter().map(|(_, g)| *g).collect();
        if verdict_map_fits(&refs) {
            let elements: Vec<String> = family
                .iter()
                .map(|(n, g)| format!("{} . {} : {}", g.peer, g.local, target(*n)))
                .collect();
            for (port, key) in &orient {
                let _ = writeln!(
                    o,
                    "\t\tiifname {port} {key} vmap {{ {} }}",
                    elements.join(", ")
                );
            }
        } else {
            // Most specific first (docs/policy.md): longest peer prefix, then
            // longest local prefix.
            let mut ordered = family.clone();
            ordered.sort_by_key(|(_, g)| {
                (
                    std::cmp::Reverse(g.peer.len()),
                    std::cmp::Reverse(g.local.len()),
                )
            });
            for (port, _) in &orient {
                let (peer_at, local_at) = if *port == &sides.outside {
                    ("saddr", "daddr")
                } else {
                    ("daddr", "saddr")
                };
                for (n, g) in &ordered {
                    let _ = writeln!(
                        o,
                        "\t\tiifname {port} {ip} {peer_at} {} {ip} {local_at} {} {}",
                        g.peer,
                        g.local,
                        target(*n)
                    );
                }
            }
        }
    }
}

fn tunnels_chain(o: &mut String, d: &Defaults, groups: &[Group], sides: &Sides) {
    let _ = writeln!(o, "\tchain tunnels {{");
    match_addresses(o, groups, sides, |n| format!("goto addr_{n}"));
    rule(o, "", act(d.unknown_tunnel), "unknown_tunnel");
    let _ = writeln!(o, "\t}}\n");
}

fn fragment_chain(o: &mut String, groups: &[Group], sides: &Sides) {
    let _ = writeln!(o, "\tchain fragment {{");
    match_addresses(o, groups, sides, |_| "accept".to_owned());
    rule(o, "", "drop", "fragment");
    let _ = writeln!(o, "\t}}\n");
}

/// Chooses among the tunnels of one address pair by key (docs/policy.md): `key = N`
/// for key N (a version-1 packet's call ID), `key = "none"` for no key, no `key` for either.
fn addr_chain(o: &mut String, n: usize, group: &Group, tunnels: &[Arc<TunnelSpec>]) {
    let _ = writeln!(o, "\tchain addr_{n} {{");
    let by = |rule: KeyRule| {
        group
            .tunnels
            .iter()
            .filter(move |&&i| tunnels[i].key == rule)
    };
    for &i in &group.tunnels {
        if let KeyRule::Equal(k) = tunnels[i].key {
            // Version 0: K set, the key after the checksum field if C is set (RFC 2890 §2.1).
            let _ = writeln!(
                o,
                "\t\t@th,13,3 0 @th,0,16 & 0xa000 == 0x2000 @th,32,32 {k} goto tun_{i}"
            );
            let _ = writeln!(
                o,
                "\t\t@th,13,3 0 @th,0,16 & 0xa000 == 0xa000 @th,64,32 {k} goto tun_{i}"
            );
            // Version 1: the call ID (RFC 2637 §4.1).
            if k <= u32::from(u16::MAX) {
                let _ = writeln!(o, "\t\t@th,13,3 1 @th,48,16 {k} goto tun_{i}");
            }
        }
    }
    for i in by(KeyRule::Absent) {
        let _ = writeln!(o, "\t\t@th,2,1 0 goto tun_{i}");
    }
    if let Some(i) = by(KeyRule::Any).next() {
        let _ = writeln!(o, "\t\tgoto tun_{i}");
    } else {
        rule(o, "", "drop", "key_mismatch");
    }
    let _ = writeln!(o, "\t}}\n");
}

/// The protocol types a tunnel allows, as an nftables set body.
fn allowed_types(t: &TunnelSpec) -> Vec<String> {
    let mut types: Vec<u16> = ProtoClass::NAMED
        .iter()
        .filter(|(c, _)| t.protocols.has_class(*c))
        .flat_map(|(c, _)| c.types())
        .chain(t.protocols.numbers().iter().copied())
        .collect();
    types.sort_unstable();
    types.dedup();
    types.iter().map(|p| format!("{p:#06x}")).collect()
}

/// One tunnel's rules (the README's Verdicts and reasons stage 5) and policer.
fn tunnel_chain(o: &mut String, i: usize, t: &TunnelSpec) {
    let name: String = t
        .name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "_.-".contains(*c))
        .collect();
    let _ = writeln!(o, "\tchain tun_{i} {{\n\t\t# tunnel {name}");
    rule(
        o,
        &format!("@th,13,3 != {}", t.version),
        "drop",
        "protocol_denied",
    );
    let types = allowed_types(t);
    let keepalive_ok = if t.protocols.has_class(ProtoClass::Keepalive) {
        format!("meta mark & {KEEPALIVE_MARK:#010x} != {KEEPALIVE_MARK:#010x} ")
    } else {
        String::new()
    };
    if types.is_empty() {
        rule(o, keepalive_ok.trim_end(), "drop", "protocol_denied");
    } else {
        rule(
            o,
            &format!("{keepalive_ok}@th,16,16 != {{ {} }}", types.join(", ")),
            "drop",
            "protocol_denied",
        );
    }
    if !t.nested {
        rule(
            o,
            &format!("meta mark & {NESTED_MARK:#010x} == {NESTED_MARK:#010x}"),
            "drop",
            "nested_gre",
        );
    }
    match t.checksum {
        FlagRule::Allow => {}
        FlagRule::Require => rule(o, "@th,0,1 0", "drop", "checksum_policy"),
        FlagRule::Forbid => rule(o, "@th,0,1 1", "drop", "checksum_policy"),
    }
    match (t.sequence, t.version) {
        (FlagRule::Allow, _) => {}
        (FlagRule::Forbid, _) => rule(o, "@th,3,1 1", "drop", "sequence_policy"),
        (FlagRule::Require, 0) => rule(o, "@th,3,1 0", "drop", "sequence_policy"),
        (FlagRule::Require, _) => {
            // A bare acknowledgment (A set, no payload) needs no sequence number.
            rule(o, "@th,3,1 0 @th,32,16 != 0", "drop", "sequence_policy");
            rule(o, "@th,3,1 0 @th,8,1 0", "drop", "sequence_policy");
        }
    }
    if let Some(Rate { pps, burst }) = t.rate {
        rule(
            o,
            &format!("limit rate over {pps}/second burst {burst} packets"),
            "drop",
            "rate_limited",
        );
    }
    rule(o, "", "accept", "tunnel");
    let _ = writeln!(o, "\t}}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ruleset_of(text: &str) -> String {
        let loaded = crate::load_str(text, "test.toml").expect("policy");
        ruleset(&loaded, "test.toml").expect("ruleset")
    }

    const PORTS: &str = "[ports]\noutside = \"o0\"\ninside = \"i0\"\n";

    #[test]
    fn a_policy_without_ports_has_no_ruleset() {
        let loaded = crate::load_str(
            "[[tunnel]]\nname = \"a\"\npeer = \"192.0.2.1\"\nlocal = \"198.51.100.1\"\nprotocols = [\"ipv4\"]\n",
            "t.toml",
        )
        .unwrap();
        assert!(matches!(ruleset(&loaded, "t"), Err(NftError::NoPorts)));
    }

    #[test]
    fn disjoint_tunnels_go_into_a_verdict_map_both_ways() {
        let r = ruleset_of(&format!("{PORTS}{}", traffic_like_tunnels()));
        assert!(r.contains(
            "iifname \"o0\" ip saddr . ip daddr vmap { 203.0.113.7 . 198.51.100.10 : goto addr_0, 192.0.2.0/28 . 198.51.100.20 : goto addr_1 }"
        ), "{r}");
        assert!(
            r.contains("iifname \"i0\" ip daddr . ip saddr vmap {"),
            "{r}"
        );
        assert!(r.contains("@th,13,3 0 @th,0,16 & 0xa000 == 0x2000 @th,32,32 1001 goto tun_0"));
        assert!(r.contains("counter drop comment \"key_mismatch\""));
        assert!(r.contains("@th,16,16 != { 0x0800, 0x86dd }"), "{r}");
        assert!(r.contains("limit rate over 200000/second burst 5000 packets counter drop comment \"rate_limited\""));
        assert!(!r.contains("shared_budget"));
    }

    #[test]
    fn overlapping_tunnels_become_rules_most_specific_first() {
        let r = ruleset_of(&format!(
            "{PORTS}[[tunnel]]\nname = \"wide\"\npeer = \"192.0.2.0/24\"\nlocal = \"198.51.100.1\"\nprotocols = [\"ipv4\"]\n\
             [[tunnel]]\nname = \"narrow\"\npeer = \"192.0.2.7\"\nlocal = \"198.51.100.1\"\nprotocols = [\"ipv6\"]\n"
        ));
        assert!(!r.contains("vmap { 192.0.2"), "{r}");
        let narrow = r
            .find("iifname \"o0\" ip saddr 192.0.2.7 ip daddr 198.51.100.1 goto addr_1")
            .expect("narrow rule");
        let wide = r
            .find("iifname \"o0\" ip saddr 192.0.2.0/24 ip daddr 198.51.100.1 goto addr_0")
            .expect("wide rule");
        assert!(narrow < wide, "{r}");
    }

    #[test]
    fn defaults_choose_the_verdicts_of_the_shared_rules() {
        let r = ruleset_of(&format!(
            "{PORTS}[defaults]\nnon_gre = \"drop\"\nunknown_tunnel = \"rate-limit\"\nreserved_bits = \"ignore\"\nbogons = \"ignore\"\n"
        ));
        assert!(r.contains("meta l4proto != gre counter drop comment \"non_gre\""));
        assert!(r.contains("limit shared_budget { rate 1000/second burst 100 packets }"));
        assert!(r.contains("counter goto budget comment \"unknown_tunnel\""));
        assert!(!r.contains("reserved_bits"));
        assert!(!r.contains("\"bogon\""));
        for line in UNEXPRESSED {
            assert!(r.contains(line), "{line}");
        }
    }

    fn traffic_like_tunnels() -> &'static str {
        "[[tunnel]]\nname = \"berlin\"\npeer = \"203.0.113.7\"\nlocal = \"198.51.100.10\"\nkey = 1001\nprotocols = [\"ipv4\", \"ipv6\"]\n\
         [[tunnel]]\nname = \"paris\"\npeer = \"192.0.2.0/28\"\nlocal = \"198.51.100.20\"\nprotocols = [\"ipv4\"]\nrate = { pps = 200000, burst = 5000 }\n"
    }
}

//! `checksum_policy` and `sequence_policy`: the C and S bits against a tunnel's rules.

use super::*;

#[test]
fn enforces_the_checksum_and_sequence_rules() {
    use validator::FlagRule::{Allow, Forbid, Require};
    let rules = [Allow, Require, Forbid];
    for c in rules {
        for s in rules {
            let p = policy(
                Default::default(),
                vec![TunnelSpec {
                    checksum: c,
                    sequence: s,
                    ..tunnel("t", &PEER.to_string(), &LOCAL.to_string())
                }],
            );
            for has_c in [false, true] {
                for has_s in [false, true] {
                    let mut gre = Gre::v0(proto::IPV4);
                    if has_c {
                        gre = gre.checksum();
                    }
                    if has_s {
                        gre = gre.sequence(9);
                    }
                    let want = if c.violated(has_c) {
                        decision(Verdict::Drop, Reason::ChecksumPolicy, Some(0))
                    } else if s.violated(has_s) {
                        decision(Verdict::Drop, Reason::SequencePolicy, Some(0))
                    } else {
                        decision(Verdict::Forward, Reason::Tunnel, Some(0))
                    };
                    let b = gre4(gre, udp4());
                    assert_eq!(
                        outside(&p, &b.build()),
                        want,
                        "{c:?} {s:?} C={has_c} S={has_s}"
                    );
                    assert_eq!(
                        classify(&p, Direction::FromInside, &reversed(b).vlan(5).build()),
                        want
                    );
                }
            }
        }
    }
}

#[test]
fn sequence_rule_applies_to_pptp() {
    let p = policy(
        Default::default(),
        vec![TunnelSpec {
            sequence: validator::FlagRule::Require,
            ..pptp_tunnel("p", &PPTP_PEER.to_string(), &LOCAL.to_string())
        }],
    );
    expect(
        outside(&p, &pptp(Gre::pptp(1), ppp_ipv4()).build()),
        Verdict::Drop,
        Reason::SequencePolicy,
        Some(0),
    );
    expect_tunnel(
        outside(&p, &pptp(Gre::pptp(1).sequence(1), ppp_ipv4()).build()),
        0,
    );
    // RFC 2637 §4.1: S marks a payload; an acknowledgment alone has none and is not refused.
    expect_tunnel(outside(&p, &pptp(Gre::pptp(1).ack(9), []).build()), 0);
}

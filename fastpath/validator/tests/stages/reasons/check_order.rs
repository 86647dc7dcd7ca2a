//! The order of the checks: the first that fails decides.

use super::*;

#[test]
fn the_first_failing_check_decides() {
    let p = standard_policy();
    // Bad GRE version and bad inner: the header stage runs first.
    let f = gre4(Gre::v0(proto::IPV4).version(3), [0u8; 3]).build();
    expect_drop(outside(&p, &f), Reason::BadVersion);
    // MUST-discard and reserved bits together: bad_flags.
    let f = gre4(Gre::v0(proto::IPV4).set_flags(flags::R | 0x0008), udp4()).build();
    expect_drop(outside(&p, &f), Reason::BadFlags);
    // Reserved bits and a wrong checksum: reserved_bits.
    let f = gre4(
        Gre::v0(proto::IPV4)
            .set_flags(0x0100)
            .checksum_with(Checksum::Wrong),
        udp4(),
    )
    .build();
    expect_drop(outside(&p, &f), Reason::ReservedBits);
    // Wrong checksum and bad inner: bad_checksum.
    let f = gre4(
        Gre::v0(proto::IPV4).checksum_with(Checksum::Wrong),
        [0u8; 5],
    )
    .build();
    expect_drop(outside(&p, &f), Reason::BadChecksum);
    // Bad inner from unknown addresses: bad_inner (the inner stage precedes the tunnel match).
    let f = FrameBuilder::ipv4(STRANGER, LOCAL)
        .gre(Gre::v0(proto::IPV4), [0x45u8; 10])
        .build();
    expect_drop(outside(&p, &f), Reason::BadInner);
    // Inner bogon from unknown addresses: bogon.
    let f = FrameBuilder::ipv4(STRANGER, LOCAL)
        .gre(
            Gre::v0(proto::IPV4),
            payload::ipv4_udp("127.0.0.1".parse().unwrap(), IN_B, 1, 2, b""),
        )
        .build();
    expect_drop(outside(&p, &f), Reason::Bogon);
    // Key mismatch before protocol: key_mismatch.
    let keyed = policy(
        Default::default(),
        vec![TunnelSpec {
            key: validator::KeyRule::Equal(1),
            protocols: protocols(&["ipv6"]),
            checksum: validator::FlagRule::Forbid,
            ..tunnel("t", &PEER.to_string(), &LOCAL.to_string())
        }],
    );
    let f = gre4(Gre::v0(proto::IPV4).key(2).checksum(), udp4()).build();
    expect(
        outside(&keyed, &f),
        Verdict::Drop,
        Reason::KeyMismatch,
        Some(0),
    );
    // Protocol before checksum policy.
    let f = gre4(Gre::v0(proto::IPV4).key(1).checksum(), udp4()).build();
    expect(
        outside(&keyed, &f),
        Verdict::Drop,
        Reason::ProtocolDenied,
        Some(0),
    );
    // Nesting before checksum policy.
    let nested = policy(
        Default::default(),
        vec![TunnelSpec {
            checksum: validator::FlagRule::Require,
            ..tunnel("t", &PEER.to_string(), &LOCAL.to_string())
        }],
    );
    let f = gre4(Gre::v0(proto::IPV4), good4()[14..].to_vec()).build();
    expect(
        outside(&nested, &f),
        Verdict::Drop,
        Reason::NestedGre,
        Some(0),
    );
}

#[test]
fn a_tunnel_index_is_reported_only_once_addresses_matched() {
    let p = standard_policy();
    // Invalid GRE of a known tunnel: the tunnel stage never ran.
    let f = gre4(Gre::v0(proto::IPV4).checksum_with(Checksum::Wrong), udp4()).build();
    assert_eq!(outside(&p, &f).tunnel(), None);
    assert_eq!(outside(&p, &good4()).tunnel(), Some(T_V4 as usize));
}

#[test]
fn reason_names_match_design() {
    let names: Vec<&str> = Reason::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(
        names,
        [
            "non_gre",
            "truncated",
            "bad_ip",
            "bogon",
            "fragment",
            "bad_version",
            "bad_flags",
            "reserved_bits",
            "bad_checksum",
            "bad_inner",
            "unknown_tunnel",
            "key_mismatch",
            "protocol_denied",
            "nested_gre",
            "checksum_policy",
            "sequence_policy",
            "rate_limited",
            "tunnel",
            "oversize",
        ]
    );
}

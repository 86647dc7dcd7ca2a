//! The `[defaults]` actions of docs/policy.md through the classifier: non_gre,
//! unknown_tunnel, invalid_gre and their shared rate-limit budget, fragments, reserved_bits,
//! bogons.

use crate::common::*;
use frames::{Checksum, FrameBuilder, Gre};
use validator::wire::gre::proto;
use validator::{Action, Classifier, Decision, Direction, Policy, Reason, Verdict};

const MS: u64 = 1_000_000;

fn unknown() -> Vec<u8> {
    FrameBuilder::ipv4(STRANGER, LOCAL)
        .gre(Gre::v0(proto::IPV4), udp4())
        .build()
}

fn invalid() -> Vec<u8> {
    gre4(Gre::v0(proto::IPV4).checksum_with(Checksum::Wrong), udp4()).build()
}

fn run(p: &Policy, c: &mut Classifier, now: u64, f: &[u8]) -> Decision {
    c.classify(p, now, Direction::FromOutside, f)
}

#[test]
fn design_defaults_forward_non_gre_and_tunnel_fragments_and_drop_the_rest() {
    let d = validator::Defaults::default();
    assert_eq!(d.non_gre, Verdict::Forward);
    assert_eq!(d.unknown_tunnel, Action::Drop);
    assert_eq!(d.invalid_gre, Action::Drop);
    assert_eq!(d.rate_limit, rate(1000, 100));
    assert!(d.fragments_to_tunnel && d.drop_reserved_bits && d.drop_bogons);
}

#[test]
fn forwards_unknown_tunnels_when_defaults_say_forward() {
    let p = standard_policy_with(defaults(|d| d.unknown_tunnel = Action::Forward));
    let mut c = Classifier::new(&p, 0);
    for _ in 0..1000 {
        expect(
            run(&p, &mut c, 0, &unknown()),
            Verdict::Forward,
            Reason::UnknownTunnel,
            None,
        );
    }
    let v6 = FrameBuilder::ipv6(STRANGER6, LOCAL6)
        .gre(Gre::v0(proto::IPV6), udp6())
        .build();
    expect(
        classify(&p, Direction::FromInside, &v6),
        Verdict::Forward,
        Reason::UnknownTunnel,
        None,
    );
    // Invalid GRE is still dropped.
    expect_drop(outside(&p, &invalid()), Reason::BadChecksum);
}

#[test]
fn rate_limits_unknown_tunnels_within_the_shared_budget() {
    let p = standard_policy_with(defaults(|d| {
        d.unknown_tunnel = Action::RateLimit;
        d.rate_limit = rate(100, 3);
    }));
    let mut c = Classifier::new(&p, 0);
    for _ in 0..3 {
        expect(
            run(&p, &mut c, 0, &unknown()),
            Verdict::Forward,
            Reason::UnknownTunnel,
            None,
        );
    }
    for _ in 0..3 {
        expect(
            run(&p, &mut c, 0, &unknown()),
            Verdict::Drop,
            Reason::RateLimited,
            None,
        );
    }
    // 100 pps: one more after 10 ms, and only one.
    expect(
        run(&p, &mut c, 10 * MS, &unknown()),
        Verdict::Forward,
        Reason::UnknownTunnel,
        None,
    );
    expect(
        run(&p, &mut c, 10 * MS, &unknown()),
        Verdict::Drop,
        Reason::RateLimited,
        None,
    );
    // Invalid GRE is not part of this action: dropped, without using the budget.
    expect_drop(run(&p, &mut c, 1000 * MS, &invalid()), Reason::BadChecksum);
    for _ in 0..3 {
        expect(
            run(&p, &mut c, 1000 * MS, &unknown()),
            Verdict::Forward,
            Reason::UnknownTunnel,
            None,
        );
    }
}

#[test]
fn rate_limits_invalid_gre_within_the_shared_budget() {
    let p = standard_policy_with(defaults(|d| {
        d.invalid_gre = Action::RateLimit;
        d.rate_limit = rate(1, 2);
    }));
    let mut c = Classifier::new(&p, 0);
    let bad_version = gre4(Gre::v0(proto::IPV4).version(4), udp4()).build();
    expect(
        run(&p, &mut c, 0, &invalid()),
        Verdict::Forward,
        Reason::BadChecksum,
        None,
    );
    expect(
        run(&p, &mut c, 0, &bad_version),
        Verdict::Forward,
        Reason::BadVersion,
        None,
    );
    expect(
        run(&p, &mut c, 0, &invalid()),
        Verdict::Drop,
        Reason::RateLimited,
        None,
    );
    expect(
        run(&p, &mut c, 0, &bad_version),
        Verdict::Drop,
        Reason::RateLimited,
        None,
    );
    // Unknown tunnels keep their own (drop) action and do not touch the budget.
    expect_drop(run(&p, &mut c, 0, &unknown()), Reason::UnknownTunnel);
    expect(
        run(&p, &mut c, 1000 * MS, &invalid()),
        Verdict::Forward,
        Reason::BadChecksum,
        None,
    );
}

#[test]
fn unknown_and_invalid_gre_share_one_budget() {
    let p = standard_policy_with(defaults(|d| {
        d.invalid_gre = Action::RateLimit;
        d.unknown_tunnel = Action::RateLimit;
        d.rate_limit = rate(1, 4);
    }));
    let mut c = Classifier::new(&p, 0);
    let frames = [unknown(), invalid(), unknown(), invalid()];
    for f in &frames {
        assert_eq!(run(&p, &mut c, 0, f).verdict, Verdict::Forward);
    }
    for f in &frames {
        expect(
            run(&p, &mut c, 0, f),
            Verdict::Drop,
            Reason::RateLimited,
            None,
        );
    }
}

#[test]
fn the_shared_budget_is_not_used_by_tunnel_or_non_gre_traffic() {
    let p = standard_policy_with(defaults(|d| {
        d.unknown_tunnel = Action::RateLimit;
        d.rate_limit = rate(1, 1);
    }));
    let mut c = Classifier::new(&p, 0);
    let arp = FrameBuilder::arp_request(LOCAL, PEER).build();
    for _ in 0..10 {
        expect_tunnel(run(&p, &mut c, 0, &good4()), T_V4);
        expect(
            run(&p, &mut c, 0, &arp),
            Verdict::Forward,
            Reason::NonGre,
            None,
        );
        // Hopeless frames dropped before the GRE header never use it either.
        expect_drop(
            run(
                &p,
                &mut c,
                0,
                &gre4(Gre::v0(proto::IPV4), udp4()).ip_version(7).build(),
            ),
            Reason::BadIp,
        );
    }
    expect(
        run(&p, &mut c, 0, &unknown()),
        Verdict::Forward,
        Reason::UnknownTunnel,
        None,
    );
}

#[test]
fn outer_truncation_and_bad_ip_are_dropped_even_when_invalid_gre_is_rate_limited() {
    let p = standard_policy_with(defaults(|d| d.invalid_gre = Action::RateLimit));
    let f = good4();
    expect_drop(outside(&p, &f[..30]), Reason::Truncated);
    let f = gre4(Gre::v0(proto::IPV4), udp4())
        .ip_checksum(Checksum::Wrong)
        .build();
    expect_drop(outside(&p, &f), Reason::BadIp);
    // A GRE header cut short is invalid GRE, and forwarded within the budget.
    let f = FrameBuilder::ipv4(PEER, LOCAL)
        .raw(47, [0x20, 0, 8, 0, 0])
        .build();
    expect(outside(&p, &f), Verdict::Forward, Reason::Truncated, None);
}

#[test]
fn bogons_and_fragments_keep_their_own_actions_under_rate_limit() {
    let p = standard_policy_with(defaults(|d| {
        d.invalid_gre = Action::RateLimit;
        d.unknown_tunnel = Action::Forward;
        d.fragments_to_tunnel = false;
    }));
    let f = FrameBuilder::ipv4("127.0.0.2".parse().unwrap(), LOCAL)
        .gre(Gre::v0(proto::IPV4), udp4())
        .build();
    expect_drop(outside(&p, &f), Reason::Bogon);
    let f = gre4(Gre::v0(proto::IPV4), udp4())
        .ipv4_fragment(true, 0)
        .build();
    expect_drop(outside(&p, &f), Reason::Fragment);
}

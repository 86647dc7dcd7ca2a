//! `non_gre`.

use super::*;

#[test]
fn forwards_non_gre_by_default_from_both_ports() {
    let p = standard_policy();
    for (name, f) in non_gre_frames() {
        for dir in [Direction::FromOutside, Direction::FromInside] {
            assert_eq!(
                classify(&p, dir, &f),
                decision(Verdict::Forward, Reason::NonGre, None),
                "{name}"
            );
        }
    }
}

#[test]
fn drops_non_gre_when_defaults_say_drop() {
    let p = standard_policy_with(defaults(|d| d.non_gre = Verdict::Drop));
    for (name, f) in non_gre_frames() {
        assert_eq!(
            outside(&p, &f),
            decision(Verdict::Drop, Reason::NonGre, None),
            "{name}"
        );
    }
}

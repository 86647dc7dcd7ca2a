//! The generator's classes are what they claim: the classifier gives every frame of a class
//! the verdict the lab expects, from either side.

use traffic::{Class, Mix, Side};
use validator::{Classifier, Direction, Reason, Verdict};

/// The lab's tunnels and one that requires a GRE checksum.
fn policy_text() -> String {
    format!(
        "{}\n{}",
        traffic::LAB_TUNNELS,
        r#"
[[tunnel]]
name = "hamburg"
peer = "203.0.113.20"
local = "198.51.100.10"
key = 1002
checksum = "require"
"#
    )
}

#[test]
fn every_class_gets_the_verdict_the_lab_expects_from_both_sides() {
    let loaded = config::load_str(&policy_text(), "mix.toml").expect("policy");
    let policy = loaded.policy;
    for (side, dir) in [
        (Side::Outside, Direction::FromOutside),
        (Side::Inside, Direction::FromInside),
    ] {
        for vlan in [None, Some(42)] {
            let mix = Mix::new(policy.specs(), side, [1; Class::COUNT], vlan, 7);
            let mut classifier = Classifier::new(&policy, 0);
            for class in Class::ALL {
                let pool = mix.pool(class);
                assert!(!pool.is_empty(), "{class}: no frames");
                for frame in pool {
                    assert_eq!(Class::of_frame(frame), Some(class));
                    let d = classifier.classify(&policy, 0, dir, frame);
                    let want = if class.should_pass() {
                        Verdict::Forward
                    } else {
                        Verdict::Drop
                    };
                    assert_eq!(
                        d.verdict, want,
                        "{class} from {side:?} vlan {vlan:?}: {:?}",
                        d.reason
                    );
                    match class {
                        Class::Tunnel | Class::Keepalive => assert_eq!(d.reason, Reason::Tunnel),
                        Class::NonGre => assert_eq!(d.reason, Reason::NonGre),
                        Class::Unknown => assert_eq!(d.reason, Reason::UnknownTunnel),
                        Class::Bogon => assert_eq!(d.reason, Reason::Bogon),
                        Class::Invalid => assert!(matches!(
                            d.reason,
                            Reason::BadVersion
                                | Reason::BadFlags
                                | Reason::BadInner
                                | Reason::BadChecksum
                                | Reason::Truncated
                        )),
                    }
                }
            }
        }
    }
}

#[test]
fn tunnel_frames_cover_every_tunnel_and_the_schedule_follows_the_weights() {
    let policy = config::load_str(&policy_text(), "mix.toml")
        .expect("policy")
        .policy;
    let mut weights = [0; Class::COUNT];
    weights[Class::Tunnel.index()] = 3;
    weights[Class::Unknown.index()] = 1;
    let mix = Mix::new(policy.specs(), Side::Outside, weights, None, 1);
    let mut classifier = Classifier::new(&policy, 0);
    let mut seen = std::collections::BTreeSet::new();
    for f in mix.pool(Class::Tunnel) {
        seen.insert(
            classifier
                .classify(&policy, 0, Direction::FromOutside, f)
                .tunnel,
        );
    }
    assert_eq!(seen.len(), 4, "tunnels hit: {seen:?}");
    let mut counts = [0usize; Class::COUNT];
    for i in 0..mix.cycle_len() {
        counts[mix.frame(i).expect("frame").0.index()] += 1;
    }
    assert_eq!(
        counts[Class::Tunnel.index()],
        3 * counts[Class::Unknown.index()]
    );
    assert_eq!(counts.iter().sum::<usize>(), mix.cycle_len());
}

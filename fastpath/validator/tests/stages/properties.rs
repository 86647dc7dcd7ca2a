//! Properties of the classifier over random and mutated input: it never panics, every decision
//! fits the reason table of the README's Verdicts and reasons under the policy's defaults, a
//! truncated GRE frame is never forwarded as tunnel traffic, and a batch decides as frames one by
//! one do.

use crate::common::generators::*;
use crate::common::*;
use frames::FrameBuilder;
use proptest::prelude::*;
use proptest::sample::Index;
use validator::{Classifier, Decision, Defaults, Direction, Policy, Reason, Verdict};

#[test]
fn the_tunnel_corpus_is_tunnel_traffic() {
    let p = prop_policy(Defaults::default(), true);
    for (name, b, t) in tunnel_corpus() {
        assert_eq!(
            outside(&p, &b.build()),
            decision(Verdict::Forward, Reason::Tunnel, Some(t)),
            "{name}"
        );
    }
    // And the rest of the corpus is not.
    let names: Vec<_> = tunnel_corpus().iter().map(|(n, _, _)| *n).collect();
    for (name, b) in corpus() {
        if !names.contains(&name) {
            assert_ne!(outside(&p, &b.build()).reason, Reason::Tunnel, "{name}");
        }
    }
}

/// Classifies with a fresh classifier and checks the decision against the table.
fn check(p: &Policy, dir: Direction, frame: &[u8]) -> Result<Decision, TestCaseError> {
    let d = classify(p, dir, frame);
    prop_assert_ne!(
        d.reason,
        Reason::Oversize,
        "oversize is for the data path only"
    );
    if let Err(e) = consistent(p, d) {
        return Err(TestCaseError::fail(e));
    }
    Ok(d)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic_and_decide_by_the_table(
        bytes in proptest::collection::vec(any::<u8>(), 0..2000),
        defaults in defaults_strategy(),
        dir in direction(),
    ) {
        let p = prop_policy(defaults, true);
        check(&p, dir, &bytes)?;
    }

    #[test]
    fn random_bytes_after_an_ethernet_header_decide_by_the_table(
        ethertype in prop_oneof![Just(0x0800u16), Just(0x86DD), Just(0x8100), Just(0x88A8)],
        rest in proptest::collection::vec(any::<u8>(), 0..300),
        defaults in defaults_strategy(),
        dir in direction(),
    ) {
        let p = prop_policy(defaults, true);
        let f = FrameBuilder::ethernet(ethertype, rest).build();
        check(&p, dir, &f)?;
    }

    #[test]
    fn random_gre_behind_valid_outer_headers_decides_by_the_table(
        (src, dst) in endpoints(),
        tags in 0..3usize,
        start in proptest::option::of(gre_start()),
        rest in proptest::collection::vec(any::<u8>(), 0..400),
        defaults in defaults_strategy(),
        reverse in any::<bool>(),
    ) {
        let p = prop_policy(defaults, true);
        let mut gre = start.map(|s| s.to_vec()).unwrap_or_default();
        gre.extend_from_slice(&rest);
        let (b, dir) = if reverse {
            (FrameBuilder::ip(dst, src), Direction::FromInside)
        } else {
            (FrameBuilder::ip(src, dst), Direction::FromOutside)
        };
        let b = match tags {
            0 => b,
            1 => b.vlan(1),
            _ => b.qinq(1, 2),
        };
        let f = b.raw(47, gre).build();
        let d = check(&p, dir, &f)?;
        // Valid outer headers: never an outer-stage reason.
        prop_assert!(!matches!(d.reason, Reason::NonGre | Reason::BadIp), "{:?}", d);
    }

    #[test]
    fn mutated_frames_of_every_kind_never_panic_and_decide_by_the_table(
        kind in any::<Index>(),
        mutations in proptest::collection::vec(mutation(), 1..5),
        defaults in defaults_strategy(),
        dir in direction(),
    ) {
        let corpus = corpus();
        let (_, b) = &corpus[kind.index(corpus.len())];
        let mut f = b.build();
        for m in &mutations {
            apply(&mut f, m);
        }
        let p = prop_policy(defaults, true);
        check(&p, dir, &f)?;
    }

    #[test]
    fn truncating_a_tunnel_frame_before_its_ip_end_is_truncated(frame in tunnel_frame()) {
        let p = prop_policy(Defaults::default(), false);
        let (b, dir, t) = frame.build();
        let (f, layout) = b.build_with_layout();
        let full = classify(&p, dir, &f);
        prop_assert_eq!(full, decision(Verdict::Forward, Reason::Tunnel, Some(t)));
        for cut in 0..f.len() {
            let d = classify(&p, dir, &f[..cut]);
            if cut < layout.end {
                prop_assert_eq!(
                    d,
                    decision(Verdict::Drop, Reason::Truncated, None),
                    "cut at {} of {}", cut, f.len()
                );
            } else {
                // Only Ethernet padding was cut.
                prop_assert_eq!(d, full, "cut at {} of {}", cut, f.len());
            }
        }
    }

    #[test]
    fn truncating_any_corpus_tunnel_frame_never_yields_tunnel(
        kind in any::<Index>(),
        cut in any::<Index>(),
        trailer in 0..20usize,
    ) {
        let p = prop_policy(Defaults::default(), false);
        let corpus = tunnel_corpus();
        let (name, b, _) = &corpus[kind.index(corpus.len())];
        let (f, layout) = b.clone().trailer(vec![0; trailer]).build_with_layout();
        let cut = cut.index(f.len());
        let d = outside(&p, &f[..cut]);
        if cut < layout.end {
            prop_assert_ne!(d.reason, Reason::Tunnel, "{} cut at {}", name, cut);
            prop_assert_eq!(d.verdict, Verdict::Drop);
        } else {
            prop_assert_eq!(d.reason, Reason::Tunnel);
        }
    }

    #[test]
    fn a_batch_decides_as_frames_one_by_one(
        picks in proptest::collection::vec(
            (any::<Index>(), proptest::option::of(mutation())),
            0..64,
        ),
        batch_sizes in proptest::collection::vec(1..16usize, 1..8),
        defaults in defaults_strategy(),
        dir in direction(),
        step_ns in 0..5_000_000u64,
    ) {
        let p = prop_policy(defaults, true);
        let corpus = corpus();
        let frames: Vec<Vec<u8>> = picks
            .iter()
            .map(|(i, m)| {
                let mut f = corpus[i.index(corpus.len())].1.build();
                if let Some(m) = m {
                    apply(&mut f, m);
                }
                f
            })
            .collect();
        let mut batched = Classifier::new(&p, 0);
        let mut single = Classifier::new(&p, 0);
        let mut now = 0;
        let mut at = 0;
        for &n in batch_sizes.iter().cycle() {
            if at >= frames.len() {
                break;
            }
            let chunk = &frames[at..(at + n).min(frames.len())];
            let mut out = vec![Decision::default(); chunk.len()];
            batched.classify_batch(&p, now, dir, chunk, &mut out);
            for (f, d) in chunk.iter().zip(&out) {
                prop_assert_eq!(*d, single.classify(&p, now, dir, f));
            }
            at += chunk.len();
            now += step_ns;
        }
    }
}

#[test]
fn a_batch_looks_only_at_frames_it_has_room_for() {
    let p = prop_policy(Defaults::default(), true);
    let rated = corpus()
        .into_iter()
        .find(|(n, _)| *n == "rated")
        .unwrap()
        .1
        .build();
    let frames = vec![rated.clone(); 5];
    let mut c = Classifier::new(&p, 0);
    let mut out = vec![Decision::default(); 2];
    c.classify_batch(&p, 0, Direction::FromOutside, &frames, &mut out);
    assert!(out.iter().all(|d| d.reason == Reason::Tunnel));
    // The policer (burst 2) saw two frames, not five.
    let mut more = vec![Decision::default(); 1];
    c.classify_batch(&p, 0, Direction::FromOutside, &frames, &mut more);
    expect(more[0], Verdict::Drop, Reason::RateLimited, Some(4));
    // An empty batch is fine.
    c.classify_batch::<Vec<u8>>(&p, 0, Direction::FromOutside, &[], &mut []);
}

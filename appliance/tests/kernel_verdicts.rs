//! The fast lane's XDP program decides a frame only as the validator would: run on the box's
//! real interfaces with BPF_PROG_RUN (nothing is sent), each frame's kernel verdict and reason
//! are compared with the `Classifier`'s for the same frame and policy. Needs root.

mod common;

use common::netns::Topology;
use fastpath::afxdp::lane::{FastLane, LaneCounters, OnFailure};
use fastpath::afxdp::Link;
use fastpath::build::{payload, FrameBuilder, Gre};
use fastpath::{Classifier, Direction, Reason, Verdict};

/// What the kernel did with one frame: decided (verdict, reason), or handed it up.
#[derive(Debug, PartialEq, Eq)]
enum Kernel {
    Decided(Verdict, Reason),
    HandedUp,
}

/// The one verdict counter or the `unserved` (handed up, no socket) count that moved.
fn what_moved(before: &LaneCounters, after: &LaneCounters) -> Kernel {
    if after.unserved[0] > before.unserved[0] {
        return Kernel::HandedUp;
    }
    for r in Reason::ALL {
        for v in Verdict::ALL {
            let at = |c: &LaneCounters| c.verdicts.packets[0][r as usize][v as usize];
            if at(after) > at(before) {
                return Kernel::Decided(v, r);
            }
        }
    }
    panic!("the frame moved no counter");
}

/// RFC 2784 §2.3 on receipt, bit by bit: R, s and recursion bit 5 are discarded; recursion
/// bits 6–7 and the reserved bits 8–12 are ignored unless the policy drops them. The kernel and
/// the validator agree on every one, under both `reserved_bits` settings.
#[test]
fn version_0_flag_bits_get_the_validators_verdict_in_the_kernel() {
    let t = Topology::new(1);
    let (out_if, in_if) = (t.box_out.clone(), t.box_in.clone());
    common::netns::in_netns(&t.box_ns, move || {
        let links = [
            Link::open("outside", &out_if).unwrap(),
            Link::open("inside", &in_if).unwrap(),
        ];
        let inner = payload::ipv4_udp(
            "10.1.0.1".parse().unwrap(),
            "10.2.0.1".parse().unwrap(),
            4500,
            4500,
            &[0; 32],
        );
        for reserved in ["drop", "ignore"] {
            let text = format!(
                "[defaults]\nreserved_bits = \"{reserved}\"\n{}",
                common::berlin("")
            );
            let policy = config::load_str(&text, "policy").unwrap().policy;
            let mut lane = FastLane::load().expect("load the fast lane");
            lane.configure(&links[0], &links[1], &policy, OnFailure::Closed, 0, true)
                .unwrap();
            let _alive = lane.heartbeat().unwrap();
            for bit in 3..=14 {
                let flag = 1u16 << bit;
                if flag == 0x2000 {
                    continue; // K: the key is there
                }
                let frame = FrameBuilder::ipv4(
                    "203.0.113.7".parse().unwrap(),
                    "198.51.100.10".parse().unwrap(),
                )
                .gre(Gre::v0(0x0800).key(1001).set_flags(flag), inner.clone())
                .build();
                let user = Classifier::new(&policy, 0).classify(
                    &policy,
                    0,
                    Direction::FromOutside,
                    &frame,
                );
                let before = lane.counters();
                lane.test_run(&links[0], 0, &frame).unwrap();
                let kernel = what_moved(&before, &lane.counters());
                let context = format!(
                    "flag {flag:#06x}, reserved_bits = {reserved}: validator {:?}/{:?}, \
                     kernel {kernel:?}, frame {frame:02x?}",
                    user.verdict, user.reason
                );
                match kernel {
                    Kernel::Decided(v, r) => {
                        assert_eq!((v, r), (user.verdict, user.reason), "{context}")
                    }
                    // Handed up only what the validator must see: here, what it forwards or
                    // judges past the header (a C or S bit without its field is truncated).
                    Kernel::HandedUp => assert!(
                        !matches!(user.reason, Reason::BadFlags | Reason::ReservedBits),
                        "{context}"
                    ),
                }
            }
        }
    })
    .join()
    .expect("kernel against validator");
}

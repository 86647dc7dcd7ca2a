//! greguard's validator: zero-copy wire views, the GRE classifier, compiled policy tables and
//! policers shared by every worker, counters and reasons. Pure: no I/O, no C, no `unsafe`. The
//! `config` crate compiles a policy into a [`Policy`], and the data path (`datapath`) or
//! `greguard replay` feeds frames to a [`Classifier`]. The fast lane's XDP program is built from
//! the definitions here (`wire::numbers`, [`Reason`], [`ProtoClass`], the bogon prefixes, the
//! policers' clock), so it tests the same bits.
//!
//! ```
//! use validator::{Classifier, Defaults, Direction, Policy, Reason, Verdict};
//! let policy = Policy::new(Defaults::default());
//! let mut classifier = Classifier::new(&policy, 0);
//! let arp = [0xffu8; 42]; // broadcast frame with EtherType 0xffff: not IP at all
//! let d = classifier.classify(&policy, 0, Direction::FromOutside, &arp);
//! assert_eq!((d.verdict, d.reason), (Verdict::Forward, Reason::NonGre));
//! ```

#![forbid(unsafe_code)]

pub mod bogon;
pub mod checksum;
pub mod classify;
pub mod counters;
mod hosts;
pub mod inner;
pub mod policer;
pub mod policy;
pub mod protocols;
pub mod reason;
mod straight;
pub mod wire;

pub use classify::{Buckets, Classifier};
pub use counters::Counters;
pub use policer::{Cell, Policer, Rate};
pub use policy::{
    Action, BuildError, Defaults, FlagRule, Hit, HotRule, IpPrefix, KeyRule, Match, Policy,
    TunnelSpec,
};
pub use protocols::{ProtoClass, ProtocolSet};
pub use reason::{Decision, Direction, Reason, Verdict, NO_TUNNEL};

//! greguard's traffic: the frames the lab, the integration tests and the end-to-end benchmark
//! send through the box, and the counter that says what came out on the other side.
//!
//! - [`class`]: the traffic classes, carried in each frame's source MAC;
//! - [`mix`]: pre-built frames per class from a policy's tunnels, and a weighted schedule;
//! - [`packet`]: a packet socket sending and receiving whole frames in batches.
//!
//! The `greguard-gen` binary puts them together: `greguard-gen send` and `greguard-gen count`.

pub mod class;
pub mod mix;
pub mod netns;
pub mod packet;

pub use class::{Class, ClassCounts};
pub use mix::{Mix, Side};

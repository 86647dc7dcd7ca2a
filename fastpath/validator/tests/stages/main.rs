//! The validator's tests, one module per stage of the classification (the README's Verdicts
//! and reasons): frame and outer IP and every reason (`reasons`, one module per reason), the
//! GRE header, its checksum, the inner packet, the tunnel match, the defaults' actions — and
//! properties over random and mutated frames. Frames come from the `frames` crate; policies,
//! addresses and the generators shared with the differential tests from `common`.

#[path = "../common/mod.rs"]
mod common;

mod defaults;
mod gre_checksum;
mod gre_header;
mod inner_payload;
mod properties;
mod reasons;
mod straight_path;
mod tunnel_match;

//! `greguard bypass on|off OUTSIDE INSIDE`: the in-kernel bypass by hand.
//!
//! `on` attaches greguard's XDP program to both ports with no daemon behind it, so the kernel
//! redirects every frame to the other port (a wire, as a bypass NIC would be); `off` removes
//! it. `greguard run` takes a bypass over without a gap when it starts, and `run
//! --keep-bypass` leaves one behind when it stops.

use anyhow::Context;
use datapath::lane;

use crate::cli::{BypassAction, BypassArgs};
use crate::exit::Failure;

pub fn run(args: &BypassArgs) -> Result<(), Failure> {
    match args.action {
        BypassAction::On => {
            let how = lane::bypass_on(&args.outside, &args.inside)
                .context("greguard bypass on")
                .map_err(Failure::runtime)?;
            println!(
                "bypass on: every frame between {} and {} is redirected in the kernel ({} XDP); \
                 `greguard bypass off {} {}` or `greguard run` ends it",
                args.outside,
                args.inside,
                match how {
                    lane::Attach::Native => "native",
                    lane::Attach::Generic => "generic",
                },
                args.outside,
                args.inside
            );
        }
        BypassAction::Off => {
            let detached = lane::bypass_off(&args.outside, &args.inside)
                .context("greguard bypass off")
                .map_err(Failure::runtime)?;
            if detached.is_empty() {
                println!("bypass off: no greguard program was attached");
            } else {
                println!("bypass off: detached from {}", detached.join(" and "));
            }
        }
    }
    Ok(())
}

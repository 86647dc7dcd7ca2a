//! `greguard check -c FILE`: load, validate and compile a policy; print what it compiles to.

use std::path::Path;

use crate::exit::Failure;

/// Loads the policy and prints its summary.
pub fn run(path: &Path) -> Result<(), Failure> {
    let loaded = config::load_file(path).map_err(Failure::input)?;
    print!("{}", loaded.summary());
    println!("{}: ok", path.display());
    Ok(())
}

//! `greguard check -c FILE`: load, validate and compile a policy; print what it compiles to.
//! `greguard nft -c FILE`: the same policy as an nftables ruleset.

use std::path::Path;

use crate::exit::Failure;

/// Loads the policy and prints its summary.
pub fn run(path: &Path) -> Result<(), Failure> {
    let loaded = config::load_file(path).map_err(Failure::input)?;
    print!("{}", loaded.summary());
    println!("{}: ok", path.display());
    Ok(())
}

/// Loads the policy and prints it as an nftables ruleset.
pub fn nft(path: &Path) -> Result<(), Failure> {
    let loaded = config::load_file(path).map_err(Failure::input)?;
    let text = config::nft::ruleset(&loaded, &path.display().to_string())
        .map_err(|e| Failure::input(anyhow::anyhow!("{}: {e}", path.display())))?;
    print!("{text}");
    Ok(())
}

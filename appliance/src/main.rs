//! The `greguard` binary: a thin layer over the `fastpath` and `config` crates.

mod bypass;
mod capture;
mod check;
mod cli;
mod exit;
mod exporter;
mod log;
mod notify;
mod pcap_writer;
mod replay;
mod report;
mod run;
mod samples;
mod side;
mod slow_path;
mod top;

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Check { config } => check::run(&config),
        cli::Command::Nft { config } => check::nft(&config),
        cli::Command::Replay(args) => replay::run(&args),
        cli::Command::Run(args) => run::run(&args),
        cli::Command::Bypass(args) => bypass::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            // Policy errors are printed bare, FILE:LINE:COL: message, so editors can jump to them.
            if failure.error.downcast_ref::<config::Error>().is_some() {
                eprintln!("{failure}");
            } else {
                eprintln!("greguard: {failure}");
            }
            ExitCode::from(failure.code)
        }
    }
}

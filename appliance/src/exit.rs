//! Errors with their exit code (the README's Commands): 1 bad input, 2 runtime failure.

use std::fmt;

/// An error that ends the program, with the exit code it ends it with.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl Failure {
    /// Bad input: a policy, a capture, arguments (exit 1).
    pub fn input(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: 1,
            error: error.into(),
        }
    }

    /// A runtime failure: an output that cannot be written, an interface, AF_XDP (exit 2).
    pub fn runtime(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: 2,
            error: error.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The chain, outermost first: "writing out.pcap: Permission denied".
        write!(f, "{:#}", self.error)
    }
}

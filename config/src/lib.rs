//! greguard's policy file (docs/policy.md): the TOML schema, validation with
//! `FILE:LINE:COL: message` errors, and compilation into [`validator::Policy`] tables.
//!
//! Loading goes text → serde (structs that refuse unknown keys and keep the span of every value)
//! → semantic checks → a plain [`PolicyModel`] plus the compiled [`validator::Policy`]. A policy
//! that fails anywhere yields one [`Error`] (the earliest in the file) and nothing else, so a
//! reload can never half-apply a broken file.
//!
//! ```
//! let loaded = config::load_str(
//!     r#"
//!     [[tunnel]]
//!     name  = "berlin"
//!     peer  = "203.0.113.7"
//!     local = "198.51.100.10"
//!     key   = 1001
//!     "#,
//!     "policy.toml",
//! )
//! .unwrap();
//! assert_eq!(loaded.policy.tunnel_count(), 1);
//!
//! let text = "[[tunnel]]\nname = \"x\"\npeer = \"a\"\nlocal = \"198.51.100.10\"\n";
//! let err = config::load_str(text, "policy.toml").unwrap_err();
//! assert_eq!(err.to_string(), r#"policy.toml:3:8: tunnel "x": peer = "a" is not an IPv4 or IPv6 address or prefix; e.g. "203.0.113.7", "203.0.113.0/28", "2001:db8::1" or "2001:db8::/48""#);
//! ```

#![forbid(unsafe_code)]

mod address;
mod error;
mod loader;
mod model;
pub mod nft;
mod schema;
mod summary;
mod validate;

use std::path::Path;
use std::sync::Arc;

pub use error::Error;
pub use loader::{Loader, Reuse, MAX_POLICY_BYTES};
pub use model::{
    Metrics, OnFailure, PolicyModel, Ports, Queues, Sampling, TunnelPath, XdpMode,
    DEFAULT_BATCH_SIZE, DEFAULT_RING_SIZE, MAX_BATCH_SIZE,
};

/// A policy that loaded: the validated model and the tables the classifier runs on.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// Everything the file says but the tunnels, defaults filled in.
    pub model: PolicyModel,
    /// The compiled tables, which hold the tunnels (shared: the data path runs on it, and a
    /// [`Loader`] keeps it to reuse unchanged tunnels).
    pub policy: Arc<validator::Policy>,
}

impl Loaded {
    /// The `[[tunnel]]`s in file order, checked; tunnel `i` here is tunnel `i` of the policy.
    pub fn tunnels(&self) -> &[Arc<validator::TunnelSpec>] {
        self.policy.specs()
    }
}

/// Reads and loads the policy at `path`. Errors name the file as given. It goes through a
/// [`Loader`], which reads a large file tunnel by tunnel (a few times faster than the whole
/// file at once) and gives what [`load_str`] gives.
pub fn load_file(path: &Path) -> Result<Loaded, Error> {
    Loader::new().load_file(path)
}

/// Loads a policy from `text`; `origin` is the file name used in errors.
pub fn load_str(text: &str, origin: &str) -> Result<Loaded, Error> {
    let raw: schema::RawPolicy =
        toml::from_str(text).map_err(|e| Error::from_toml(origin, text, &e))?;
    let (model, policy) = validate::validate(&raw, text)
        .map_err(|p| Error::at(origin, text, p.span.start, p.message))?;
    Ok(Loaded {
        model,
        policy: Arc::new(policy),
    })
}

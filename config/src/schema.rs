//! The policy file as serde reads it (docs/policy.md): every table refuses unknown
//! keys, and every value a later check may have to point at keeps its span. Values stay close to
//! the TOML types here (integers as `i64`, choices as strings) so that range and spelling checks
//! can name the key and list what is allowed, which serde's derived messages cannot do.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use serde_spanned::Spanned;

pub(crate) type S<T> = Spanned<T>;

/// The whole file. Every table is optional: `[ports]` is needed only to `run`, so `check` and
/// `replay` work on a policy written for a capture.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    pub ports: Option<RawPorts>,
    pub defaults: Option<RawDefaults>,
    #[serde(default)]
    pub tunnel: Vec<S<RawTunnel>>,
    pub sampling: Option<RawSampling>,
    pub metrics: Option<RawMetrics>,
}

/// The text before a policy's first `[[tunnel]]` line, read on its own by [`crate::Loader`].
/// `tunnel` is taken only to tell that the preamble names it at all, which the split cannot
/// handle (the whole file is then read as one).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPreamble {
    pub ports: Option<RawPorts>,
    pub defaults: Option<RawDefaults>,
    pub tunnel: Option<de::IgnoredAny>,
    pub sampling: Option<RawSampling>,
    pub metrics: Option<RawMetrics>,
}

impl RawPreamble {
    /// The preamble as a policy without tunnels; `None` when it names `tunnel`.
    pub fn into_policy(self) -> Option<RawPolicy> {
        self.tunnel.is_none().then_some(RawPolicy {
            ports: self.ports,
            defaults: self.defaults,
            tunnel: Vec::new(),
            sampling: self.sampling,
            metrics: self.metrics,
        })
    }
}

/// One `[[tunnel]]` line and the lines up to the next, read on its own by [`crate::Loader`].
/// Anything but tunnels (another table, say) is refused, so the block means the same alone as
/// in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBlock {
    pub tunnel: Vec<S<RawTunnel>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPorts {
    pub outside: S<String>,
    pub inside: S<String>,
    pub queues: Option<S<RawQueues>>,
    pub cores: Option<S<Vec<S<i64>>>>,
    pub xdp_mode: Option<S<String>>,
    pub frame_size: Option<S<i64>>,
    pub ring_size: Option<S<i64>>,
    pub batch_size: Option<S<i64>>,
    pub fast_lane: Option<bool>,
    pub on_failure: Option<S<String>>,
    pub tunnel_path: Option<S<String>>,
}

/// `queues = "all"` or `queues = [0, 1]`.
#[derive(Debug)]
pub(crate) enum RawQueues {
    Word(String),
    List(Vec<S<i64>>),
}

impl<'de> Deserialize<'de> for RawQueues {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawQueues;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"all\" or an array of queue ids")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawQueues, E> {
                Ok(RawQueues::Word(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawQueues, A::Error> {
                let mut ids = Vec::new();
                while let Some(id) = seq.next_element::<S<i64>>()? {
                    ids.push(id);
                }
                Ok(RawQueues::List(ids))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDefaults {
    pub non_gre: Option<S<String>>,
    pub unknown_tunnel: Option<S<String>>,
    pub invalid_gre: Option<S<String>>,
    pub rate_limit: Option<RawRate>,
    pub fragments: Option<S<String>>,
    pub reserved_bits: Option<S<String>>,
    pub bogons: Option<S<String>>,
}

/// `{ pps = N, burst = M }`: both are required, a policer without either is meaningless.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRate {
    pub pps: S<i64>,
    pub burst: S<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTunnel {
    pub name: S<String>,
    pub peer: S<String>,
    pub local: S<String>,
    pub key: Option<S<RawKey>>,
    pub version: Option<S<i64>>,
    pub protocols: Option<S<Vec<S<RawProtocol>>>>,
    pub nested: Option<bool>,
    pub checksum: Option<S<String>>,
    pub sequence: Option<S<String>>,
    pub rate: Option<RawRate>,
}

/// `key = 1001` or `key = "none"`; any other string is refused later with the tunnel's name.
#[derive(Debug)]
pub(crate) enum RawKey {
    Number(i64),
    Word(String),
}

impl<'de> Deserialize<'de> for RawKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer 0-4294967295 or \"none\"")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawKey, E> {
                Ok(RawKey::Number(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawKey, E> {
                Ok(RawKey::Word(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// One entry of `protocols`: a name, a `"0xNNNN"` string, or an integer.
#[derive(Debug)]
pub(crate) enum RawProtocol {
    Name(String),
    Number(i64),
}

impl<'de> Deserialize<'de> for RawProtocol {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawProtocol;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a protocol name, a \"0xNNNN\" string or an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawProtocol, E> {
                Ok(RawProtocol::Number(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawProtocol, E> {
                Ok(RawProtocol::Name(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSampling {
    pub invalid: Option<S<i64>>,
    pub forwarded: Option<S<i64>>,
    pub snaplen: Option<S<i64>>,
    pub pcap_dir: Option<S<String>>,
    pub pcap_rotate_mb: Option<S<i64>>,
    pub pcap_keep: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetrics {
    pub listen: Option<S<String>>,
}

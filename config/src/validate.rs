//! From what serde read to a [`PolicyModel`] and a compiled [`Policy`]: every range, spelling and
//! cross-field rule of docs/policy.md, each failure tied to the span of the value at
//! fault.
//!
//! All checks run and collect their problems; the one earliest in the file is reported. That
//! makes the answer deterministic and the same one an operator fixing the file top to bottom
//! meets first. Tunnels are compiled as they pass, so the tables' own refusals (two tunnels no
//! packet could tell apart) take part in the same ordering.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::PathBuf;

use validator::policer::MAX_RATE;
use validator::{
    Action, BuildError, Defaults, FlagRule, IpPrefix, KeyRule, Policy, ProtoClass, ProtocolSet,
    Rate, TunnelSpec, Verdict,
};

use crate::address::{parse_prefix, AddrError};
use crate::error::line_column;
use crate::model::{
    Metrics, OnFailure, PolicyModel, Ports, Queues, Sampling, TunnelPath, XdpMode,
    DEFAULT_BATCH_SIZE, DEFAULT_RING_SIZE, MAX_BATCH_SIZE,
};
use crate::schema::{
    RawDefaults, RawKey, RawMetrics, RawPolicy, RawPorts, RawProtocol, RawQueues, RawRate,
    RawSampling, RawTunnel, S,
};

/// A semantic error: where (byte span in the file) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    pub span: Range<usize>,
    pub message: String,
}

/// Spelled out in "unknown protocol" messages; built from fastpath's own name table.
fn protocol_names() -> String {
    let names: Vec<&str> = ProtoClass::NAMED.iter().map(|(_, n)| *n).collect();
    names.join(", ")
}

/// Linux's IFNAMSIZ less the terminating NUL.
const MAX_IFNAME: usize = 15;
/// Tunnel names end up in metrics labels, CSV cells and log lines; keep them short and plain.
const MAX_TUNNEL_NAME: usize = 64;
/// Queue and core ids: far beyond any NIC or machine, small enough to be an obvious typo above.
const MAX_ID: i64 = 65_535;

struct Checker<'t> {
    text: &'t str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn fail(&mut self, span: Range<usize>, message: String) {
        self.problems.push(Problem { span, message });
    }

    fn line_of(&self, span: &Range<usize>) -> usize {
        line_column(self.text, span.start).0
    }

    /// A string that must be one of `options`; `key` names it in the message
    /// (`defaults.non_gre`, `tunnel "x": checksum`).
    fn choice<T: Copy>(
        &mut self,
        value: Option<&S<String>>,
        key: &str,
        options: &[(&str, T)],
        default: T,
    ) -> T {
        let Some(v) = value else { return default };
        if let Some((_, t)) = options.iter().find(|(name, _)| *name == v.get_ref()) {
            return *t;
        }
        let allowed: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        self.fail(
            v.span(),
            format!(
                "{key} = {:?} is not allowed; allowed: {}",
                v.get_ref(),
                allowed.join(", ")
            ),
        );
        default
    }

    /// An integer within `lo..=hi`; `why` (may be empty) explains a bound that is not obvious.
    fn int(&mut self, value: &S<i64>, key: &str, lo: i64, hi: i64, why: &str) -> Option<i64> {
        let v = *value.get_ref();
        if (lo..=hi).contains(&v) {
            return Some(v);
        }
        self.fail(
            value.span(),
            format!("{key} = {v} is out of range; allowed: {lo}-{hi}{why}"),
        );
        None
    }

    fn int_or(
        &mut self,
        value: Option<&S<i64>>,
        key: &str,
        lo: i64,
        hi: i64,
        why: &str,
        default: i64,
    ) -> i64 {
        value
            .map_or(Some(default), |v| self.int(v, key, lo, hi, why))
            .unwrap_or(default)
    }

    /// `{ pps, burst }`, both within the policer's range.
    fn rate(&mut self, raw: &RawRate, key: &str) -> Option<Rate> {
        let max = i64::try_from(MAX_RATE).unwrap_or(i64::MAX);
        let pps = self.int(&raw.pps, &format!("{key}.pps"), 1, max, "");
        let burst = self.int(
            &raw.burst,
            &format!("{key}.burst"),
            1,
            max,
            " (a burst below 1 would pass nothing)",
        );
        Some(Rate {
            pps: u64::try_from(pps?).ok()?,
            burst: u64::try_from(burst?).ok()?,
        })
    }

    fn ports(&mut self, raw: &RawPorts) -> Ports {
        self.interface(&raw.outside, "ports.outside");
        self.interface(&raw.inside, "ports.inside");
        if raw.inside.get_ref() == raw.outside.get_ref() {
            self.fail(
                raw.inside.span(),
                format!(
                    "ports.inside = {:?} is also ports.outside; the two ports must be different interfaces",
                    raw.inside.get_ref()
                ),
            );
        }
        let queues = match raw.queues.as_ref() {
            None => Queues::All,
            Some(q) => match q.get_ref() {
                RawQueues::Word(w) if w == "all" => Queues::All,
                RawQueues::Word(w) => {
                    self.fail(
                        q.span(),
                        format!("ports.queues = {w:?} is not allowed; allowed: \"all\" or an array of queue ids such as [0, 1]"),
                    );
                    Queues::All
                }
                RawQueues::List(ids) => {
                    Queues::List(self.ids(q.span(), ids, "ports.queues", "queue", "\"all\""))
                }
            },
        };
        let cores = raw.cores.as_ref().map(|c| {
            let ids = self.ids(
                c.span(),
                c.get_ref(),
                "ports.cores",
                "core",
                "omit cores to use the cores after core 0",
            );
            if let Queues::List(q) = &queues {
                if !ids.is_empty() && !q.is_empty() && ids.len() != q.len() {
                    self.fail(
                        c.span(),
                        format!(
                            "ports.cores lists {} cores for {} queues; give one core per queue",
                            ids.len(),
                            q.len()
                        ),
                    );
                }
            }
            ids
        });
        let xdp_mode = self.choice(
            raw.xdp_mode.as_ref(),
            "ports.xdp_mode",
            &[
                ("auto", XdpMode::Auto),
                ("zerocopy", XdpMode::ZeroCopy),
                ("copy", XdpMode::Copy),
                ("skb", XdpMode::Skb),
            ],
            XdpMode::Auto,
        );
        let frame_size = match raw.frame_size.as_ref() {
            None => 4096,
            Some(f) => match *f.get_ref() {
                2048 => 2048,
                4096 => 4096,
                other => {
                    self.fail(
                        f.span(),
                        format!(
                            "ports.frame_size = {other} is not allowed; allowed: 2048 or 4096 (AF_XDP frames are a power of two, at most a page)"
                        ),
                    );
                    4096
                }
            },
        };
        let ring_size = match raw.ring_size.as_ref() {
            None => DEFAULT_RING_SIZE,
            Some(r) => {
                let v = *r.get_ref();
                if let Some(size) = u32::try_from(v)
                    .ok()
                    .filter(|s| (64..=16384).contains(s) && s.is_power_of_two())
                {
                    size
                } else {
                    self.fail(
                        r.span(),
                        format!("ports.ring_size = {v} is not allowed; allowed: a power of two from 64 to 16384"),
                    );
                    DEFAULT_RING_SIZE
                }
            }
        };
        let batch_size = match raw.batch_size.as_ref() {
            None => DEFAULT_BATCH_SIZE.min(ring_size),
            Some(b) => {
                let v = *b.get_ref();
                if let Some(size) = u32::try_from(v)
                    .ok()
                    .filter(|s| (1..=MAX_BATCH_SIZE.min(ring_size)).contains(s))
                {
                    size
                } else {
                    self.fail(
                        b.span(),
                        format!(
                            "ports.batch_size = {v} is not allowed; allowed: 1 to {} (at most 256 and at most ring_size)",
                            MAX_BATCH_SIZE.min(ring_size)
                        ),
                    );
                    DEFAULT_BATCH_SIZE.min(ring_size)
                }
            }
        };
        let on_failure = self.choice(
            raw.on_failure.as_ref(),
            "ports.on_failure",
            &[("open", OnFailure::Open), ("closed", OnFailure::Closed)],
            OnFailure::Open,
        );
        let tunnel_path = self.choice(
            raw.tunnel_path.as_ref(),
            "ports.tunnel_path",
            &[
                ("auto", TunnelPath::Auto),
                ("kernel", TunnelPath::Kernel),
                ("user", TunnelPath::User),
            ],
            TunnelPath::Auto,
        );
        Ports {
            outside: raw.outside.get_ref().clone(),
            inside: raw.inside.get_ref().clone(),
            queues,
            cores,
            xdp_mode,
            frame_size,
            ring_size,
            batch_size,
            fast_lane: raw.fast_lane.unwrap_or(true),
            on_failure,
            tunnel_path,
        }
    }

    /// The rules the kernel applies to interface names (`dev_valid_name`), so a typo is caught by
    /// `check` and not at start-up.
    fn interface(&mut self, name: &S<String>, key: &str) {
        let n = name.get_ref();
        let valid = !n.is_empty()
            && n.len() <= MAX_IFNAME
            && n != "."
            && n != ".."
            && !n.chars().any(|c| c == '/' || c == ':' || c.is_whitespace());
        if !valid {
            self.fail(
                name.span(),
                format!("{key} = {n:?} is not a valid interface name; allowed: 1-{MAX_IFNAME} characters without \"/\", \":\" or whitespace"),
            );
        }
    }

    /// A non-empty list of unique small ids (queues, cores).
    fn ids(
        &mut self,
        span: Range<usize>,
        ids: &[S<i64>],
        key: &str,
        what: &str,
        instead: &str,
    ) -> Vec<u32> {
        if ids.is_empty() {
            self.fail(
                span,
                format!("{key} is empty; list at least one {what} id or use {instead}"),
            );
        }
        let mut out: Vec<u32> = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(v) = self
                .int(id, key, 0, MAX_ID, "")
                .and_then(|v| u32::try_from(v).ok())
            else {
                continue;
            };
            if out.contains(&v) {
                self.fail(id.span(), format!("{key}: {what} {v} is listed twice"));
            } else {
                out.push(v);
            }
        }
        out
    }

    fn defaults(&mut self, raw: Option<&RawDefaults>) -> Defaults {
        let d = Defaults::default();
        let Some(raw) = raw else { return d };
        let non_gre = self.choice(
            raw.non_gre.as_ref(),
            "defaults.non_gre",
            &[("forward", Verdict::Forward), ("drop", Verdict::Drop)],
            d.non_gre,
        );
        let unknown_tunnel = self.choice(
            raw.unknown_tunnel.as_ref(),
            "defaults.unknown_tunnel",
            &[
                ("forward", Action::Forward),
                ("drop", Action::Drop),
                ("rate-limit", Action::RateLimit),
            ],
            d.unknown_tunnel,
        );
        let invalid_gre = match raw.invalid_gre.as_ref() {
            Some(v) if v.get_ref() == "forward" => {
                self.fail(
                    v.span(),
                    "defaults.invalid_gre = \"forward\" is not allowed: GRE that fails validation is never forwarded; allowed: drop, rate-limit".into(),
                );
                d.invalid_gre
            }
            v => self.choice(
                v,
                "defaults.invalid_gre",
                &[("drop", Action::Drop), ("rate-limit", Action::RateLimit)],
                d.invalid_gre,
            ),
        };
        let rate_limit = raw
            .rate_limit
            .as_ref()
            .and_then(|r| self.rate(r, "defaults.rate_limit"))
            .unwrap_or(d.rate_limit);
        let fragments_to_tunnel = self.choice(
            raw.fragments.as_ref(),
            "defaults.fragments",
            &[("drop", false), ("tunnel", true)],
            d.fragments_to_tunnel,
        );
        let drop_reserved_bits = self.choice(
            raw.reserved_bits.as_ref(),
            "defaults.reserved_bits",
            &[("drop", true), ("ignore", false)],
            d.drop_reserved_bits,
        );
        let drop_bogons = self.choice(
            raw.bogons.as_ref(),
            "defaults.bogons",
            &[("drop", true), ("ignore", false)],
            d.drop_bogons,
        );
        Defaults {
            non_gre,
            unknown_tunnel,
            invalid_gre,
            rate_limit,
            fragments_to_tunnel,
            drop_reserved_bits,
            drop_bogons,
        }
    }

    fn tunnel_name(&mut self, name: &S<String>) {
        let n = name.get_ref();
        let valid = !n.is_empty()
            && n.len() <= MAX_TUNNEL_NAME
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            self.fail(
                name.span(),
                format!("tunnel name {n:?} is not allowed; allowed: 1-{MAX_TUNNEL_NAME} letters, digits, \"-\", \"_\" or \".\" (names appear in metrics labels, CSV and logs)"),
            );
        }
    }

    fn prefix(&mut self, value: &S<String>, key: &str) -> Option<IpPrefix> {
        let text = value.get_ref();
        let message = match parse_prefix(text) {
            Ok(p) => return Some(p),
            Err(AddrError::Garbage) => format!(
                "{key} = {text:?} is not an IPv4 or IPv6 address or prefix; e.g. \"203.0.113.7\", \"203.0.113.0/28\", \"2001:db8::1\" or \"2001:db8::/48\""
            ),
            Err(AddrError::TooLong { len, max }) => {
                let family = if max == 32 { "IPv4" } else { "IPv6" };
                format!("{key} = {text:?}: prefix length {len} is longer than an {family} address; allowed: 0-{max}")
            }
            Err(AddrError::HostBits { network, host }) => format!(
                "{key} = {text:?} has host bits set; did you mean \"{network}\" (the network) or \"{host}\" (the single address)?"
            ),
        };
        self.fail(value.span(), message);
        None
    }

    /// One `[[tunnel]]`; `None` when any of its values is wrong (the problems are recorded).
    fn tunnel(&mut self, raw: &RawTunnel) -> Option<TunnelSpec> {
        let before = self.problems.len();
        self.tunnel_name(&raw.name);
        let ctx = format!("tunnel {:?}: ", raw.name.get_ref());
        let peer = self.prefix(&raw.peer, &format!("{ctx}peer"));
        let local = self.prefix(&raw.local, &format!("{ctx}local"));
        if let (Some(p), Some(l)) = (peer, local) {
            if p.is_v6() != l.is_v6() {
                let fam = |v6: bool| if v6 { "IPv6" } else { "IPv4" };
                self.fail(
                    raw.local.span(),
                    format!(
                        "{ctx}local = {:?} is {} but peer = {:?} is {}; peer and local must be of the same family",
                        raw.local.get_ref(),
                        fam(l.is_v6()),
                        raw.peer.get_ref(),
                        fam(p.is_v6())
                    ),
                );
            }
        }
        let version = match raw.version.as_ref() {
            None => Some(0u8),
            Some(v) => match *v.get_ref() {
                0 => Some(0),
                1 => Some(1),
                other => {
                    self.fail(
                        v.span(),
                        format!("{ctx}version = {other} is not allowed; allowed: 0 (GRE, RFC 2784/2890) or 1 (PPTP enhanced GRE, RFC 2637)"),
                    );
                    None
                }
            },
        };
        let key = raw
            .key
            .as_ref()
            .map_or(Some(KeyRule::Any), |k| self.key(k, &ctx, version));
        let protocols = self.protocols(raw, &ctx, version);
        let flag_rules = [
            ("allow", FlagRule::Allow),
            ("require", FlagRule::Require),
            ("forbid", FlagRule::Forbid),
        ];
        let checksum = self.choice(
            raw.checksum.as_ref(),
            &format!("{ctx}checksum"),
            &flag_rules,
            FlagRule::Allow,
        );
        if let (Some(1), Some(c), FlagRule::Require) = (version, raw.checksum.as_ref(), checksum) {
            self.fail(
                c.span(),
                format!("{ctx}checksum = \"require\" would drop every packet: version 1 (PPTP) never carries a checksum (RFC 2637 §4.1); allowed with version = 1: allow, forbid"),
            );
        }
        let sequence = self.choice(
            raw.sequence.as_ref(),
            &format!("{ctx}sequence"),
            &flag_rules,
            FlagRule::Allow,
        );
        let rate = match raw.rate.as_ref() {
            None => None,
            Some(r) => Some(self.rate(r, &format!("{ctx}rate"))?),
        };
        if self.problems.len() != before {
            return None;
        }
        Some(TunnelSpec {
            name: raw.name.get_ref().clone(),
            peer: peer?,
            local: local?,
            key: key?,
            version: version?,
            protocols: protocols?,
            nested: raw.nested.unwrap_or(false),
            checksum,
            sequence,
            rate,
        })
    }

    fn key(&mut self, k: &S<RawKey>, ctx: &str, version: Option<u8>) -> Option<KeyRule> {
        let rule = match k.get_ref() {
            RawKey::Word(w) if w == "none" => KeyRule::Absent,
            RawKey::Word(w) => {
                self.fail(
                    k.span(),
                    format!("{ctx}key = {w:?} is not allowed; allowed: an integer 0-4294967295 or \"none\""),
                );
                return None;
            }
            RawKey::Number(n) => match u32::try_from(*n) {
                Ok(n) => KeyRule::Equal(n),
                Err(_) => {
                    self.fail(
                        k.span(),
                        format!(
                            "{ctx}key = {n} is out of range; allowed: 0-4294967295 or \"none\""
                        ),
                    );
                    return None;
                }
            },
        };
        if version == Some(1) {
            // RFC 2637 §4.1: the key field of a PPTP packet holds the *receiver's* call ID, which
            // the control connection negotiates per call: it differs per call and per direction,
            // so no fixed value can describe a PPTP tunnel.
            self.fail(
                k.span(),
                format!("{ctx}key is not allowed with version = 1: a PPTP packet carries the receiver's call ID, negotiated per call and different in each direction (RFC 2637 §4.1); match PPTP tunnels by peer and local"),
            );
            return None;
        }
        Some(rule)
    }

    fn protocols(
        &mut self,
        raw: &RawTunnel,
        ctx: &str,
        version: Option<u8>,
    ) -> Option<ProtocolSet> {
        let mut set = ProtocolSet::new();
        let Some(list) = raw.protocols.as_ref() else {
            let defaults: &[ProtoClass] = match version {
                Some(1) => &[ProtoClass::Ppp],
                _ => &[ProtoClass::Ipv4, ProtoClass::Ipv6],
            };
            defaults.iter().for_each(|c| set.allow_class(*c));
            return Some(set);
        };
        if list.get_ref().is_empty() {
            let default = if version == Some(1) {
                "[\"ppp\"]"
            } else {
                "[\"ipv4\", \"ipv6\"]"
            };
            self.fail(
                list.span(),
                format!("{ctx}protocols = [] allows nothing; list at least one protocol, or omit protocols for {default}"),
            );
            return None;
        }
        let mut ok = true;
        for entry in list.get_ref() {
            let (class, number, shown) = match entry.get_ref() {
                RawProtocol::Name(name) => {
                    let lower = name.to_ascii_lowercase();
                    if let Some(class) = ProtoClass::from_name(&lower) {
                        (class, None, format!("{name:?}"))
                    } else if let Some(hex) = lower.strip_prefix("0x") {
                        match u16::from_str_radix(hex, 16) {
                            Ok(n)
                                if !hex.is_empty()
                                    && hex.len() <= 4
                                    && hex.bytes().all(|b| b.is_ascii_hexdigit()) =>
                            {
                                (ProtoClass::of(n), Some(n), format!("{name:?}"))
                            }
                            _ => {
                                self.fail(
                                    entry.span(),
                                    format!("{ctx}protocol {name:?} is not a 16-bit protocol type; allowed: 0x0000-0xffff"),
                                );
                                ok = false;
                                continue;
                            }
                        }
                    } else {
                        self.fail(
                            entry.span(),
                            format!("{ctx}unknown protocol {name:?}; allowed: {} or a number 0x0000-0xffff", protocol_names()),
                        );
                        ok = false;
                        continue;
                    }
                }
                RawProtocol::Number(n) => match u16::try_from(*n) {
                    Ok(v) => (ProtoClass::of(v), Some(v), format!("{n} (0x{v:04x})")),
                    Err(_) => {
                        self.fail(
                            entry.span(),
                            format!("{ctx}protocol {n} is out of range; allowed: 0-65535 (0x0000-0xffff)"),
                        );
                        ok = false;
                        continue;
                    }
                },
            };
            let refusal = match (version, class) {
                (Some(0), ProtoClass::Ppp) => Some(format!(
                    "{ctx}protocol {shown} (PPP) needs version = 1: in greguard PPP over GRE is PPTP (RFC 2637)"
                )),
                (Some(1), ProtoClass::Ppp) => None,
                (Some(1), _) => Some(format!(
                    "{ctx}protocol {shown} is not allowed with version = 1; PPTP carries only \"ppp\""
                )),
                _ => None,
            };
            if let Some(message) = refusal {
                self.fail(entry.span(), message);
                ok = false;
                continue;
            }
            match number {
                Some(n) => set.allow_number(n),
                None => set.allow_class(class),
            }
        }
        ok.then_some(set)
    }

    fn sampling(&mut self, raw: Option<&RawSampling>) -> Sampling {
        let d = Sampling::default();
        let Some(raw) = raw else { return d };
        let u32_max = i64::from(u32::MAX);
        let invalid = self.int_or(
            raw.invalid.as_ref(),
            "sampling.invalid",
            0,
            u32_max,
            " (1 in N; 0 = none)",
            i64::from(d.invalid),
        );
        let forwarded = self.int_or(
            raw.forwarded.as_ref(),
            "sampling.forwarded",
            0,
            u32_max,
            " (1 in N; 0 = none)",
            i64::from(d.forwarded),
        );
        let snaplen = self.int_or(
            raw.snaplen.as_ref(),
            "sampling.snaplen",
            64,
            65_535,
            " bytes (a sample must at least hold the outer headers)",
            i64::from(d.snaplen),
        );
        let pcap_dir = raw.pcap_dir.as_ref().and_then(|p| {
            let path = PathBuf::from(p.get_ref());
            if path.is_absolute() {
                Some(path)
            } else {
                self.fail(
                    p.span(),
                    format!("sampling.pcap_dir = {:?} is not an absolute path; the daemon runs in \"/\", so give the full path (or omit pcap_dir to write no files)", p.get_ref()),
                );
                None
            }
        });
        let pcap_rotate_mb = self.int_or(
            raw.pcap_rotate_mb.as_ref(),
            "sampling.pcap_rotate_mb",
            1,
            1 << 20,
            " MiB",
            d.pcap_rotate_mb as i64,
        );
        let pcap_keep = self.int_or(
            raw.pcap_keep.as_ref(),
            "sampling.pcap_keep",
            1,
            1_000_000,
            " files",
            i64::from(d.pcap_keep),
        );
        Sampling {
            // Each value is within its range (checked above) or the default; the fallbacks
            // are never taken.
            invalid: u32::try_from(invalid).unwrap_or(d.invalid),
            forwarded: u32::try_from(forwarded).unwrap_or(d.forwarded),
            snaplen: u32::try_from(snaplen).unwrap_or(d.snaplen),
            pcap_dir,
            pcap_rotate_mb: pcap_rotate_mb as u64,
            pcap_keep: u32::try_from(pcap_keep).unwrap_or(d.pcap_keep),
        }
    }

    fn metrics(&mut self, raw: Option<&RawMetrics>) -> Metrics {
        let d = Metrics::default();
        let Some(listen) = raw.and_then(|m| m.listen.as_ref()) else {
            return d;
        };
        match listen.get_ref().parse::<SocketAddr>() {
            Ok(listen) => Metrics { listen },
            Err(_) => {
                self.fail(
                    listen.span(),
                    format!("metrics.listen = {:?} is not an IP address and port; e.g. \"127.0.0.1:9747\" or \"[::1]:9747\"", listen.get_ref()),
                );
                d
            }
        }
    }
}

/// One tunnel on its own (read from `text`), for [`crate::Loader`]; `None` when any value is
/// wrong (the full load then finds and reports it).
pub(crate) fn tunnel_spec(raw: &RawTunnel, text: &str) -> Option<TunnelSpec> {
    Checker {
        text,
        problems: Vec::new(),
    }
    .tunnel(raw)
}

/// Validates `raw` (read from `text`) and compiles it. On failure returns the problem earliest
/// in the file.
pub(crate) fn validate(raw: &RawPolicy, text: &str) -> Result<(PolicyModel, Policy), Problem> {
    let mut c = Checker {
        text,
        problems: Vec::new(),
    };
    let ports = raw.ports.as_ref().map(|p| c.ports(p));
    let defaults = c.defaults(raw.defaults.as_ref());
    let mut policy = Policy::new(defaults);
    policy.reserve(raw.tunnel.len());
    // Name → span of the first tunnel with that name; policy index → raw tunnel, for messages.
    let mut names: HashMap<&str, Range<usize>> = HashMap::new();
    let mut built: Vec<&S<RawTunnel>> = Vec::new();
    for t in &raw.tunnel {
        let name = &t.get_ref().name;
        if let Some(first) = names.get(name.get_ref().as_str()) {
            let line = c.line_of(first);
            c.fail(
                name.span(),
                format!("tunnel {:?}: name already used by the tunnel at line {line}; tunnel names must be unique", name.get_ref()),
            );
        } else {
            names.insert(name.get_ref(), name.span());
        }
        let Some(spec) = c.tunnel(t.get_ref()) else {
            continue;
        };
        match policy.add_tunnel(spec) {
            Ok(_) => built.push(t),
            Err(e) => {
                let ctx = format!("tunnel {:?}: ", name.get_ref());
                let (span, message) = match e {
                    BuildError::Indistinguishable { other } => {
                        let other = built.get(other as usize).map(|o| {
                            let n = &o.get_ref().name;
                            (n.get_ref().clone(), c.line_of(&n.span()))
                        });
                        let (other, line) = other.unwrap_or_default();
                        (
                            name.span(),
                            format!("{ctx}same peer, local and key as tunnel {other:?} (line {line}): no packet could tell them apart; give them different keys or addresses"),
                        )
                    }
                    BuildError::MixedFamilies => (
                        t.get_ref().local.span(),
                        format!("{ctx}peer and local must both be IPv4 or both IPv6"),
                    ),
                    BuildError::TooManyTunnels => (
                        name.span(),
                        format!("{ctx}too many tunnels for the lookup tables"),
                    ),
                };
                c.fail(span, message);
            }
        }
    }
    let sampling = c.sampling(raw.sampling.as_ref());
    let metrics = c.metrics(raw.metrics.as_ref());
    if let Some((_, first)) = c
        .problems
        .iter()
        .enumerate()
        .min_by_key(|(i, p)| (p.span.start, *i))
    {
        return Err(first.clone());
    }
    let model = PolicyModel {
        ports,
        defaults,
        sampling,
        metrics,
    };
    Ok((model, policy))
}

//! GRE protocol types grouped into the classes a policy names (docs/policy.md
//! `protocols`), and the per-tunnel set of allowed ones.

use crate::wire::gre::proto;

/// The protocol classes a policy can name. Numeric types outside these classes are kept apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ProtoClass {
    Keepalive = 0,
    Ipv4,
    Ipv6,
    Teb,
    Ppp,
    Mpls,
    Erspan2,
    Erspan3,
    Nhrp,
    Wccp,
    /// Any other protocol type: no inner sanity check, allowed only by number.
    Other,
}

impl ProtoClass {
    /// The classes a policy can name, with their policy names.
    pub const NAMED: [(ProtoClass, &'static str); 10] = [
        (ProtoClass::Ipv4, "ipv4"),
        (ProtoClass::Ipv6, "ipv6"),
        (ProtoClass::Teb, "teb"),
        (ProtoClass::Ppp, "ppp"),
        (ProtoClass::Mpls, "mpls"),
        (ProtoClass::Erspan2, "erspan2"),
        (ProtoClass::Erspan3, "erspan3"),
        (ProtoClass::Nhrp, "nhrp"),
        (ProtoClass::Wccp, "wccp"),
        (ProtoClass::Keepalive, "keepalive"),
    ];

    /// The class of a GRE protocol type: one table load and one compare, no branch ladder.
    /// The known types hash to distinct slots under `p ^ p >> 8` (checked by a unit test).
    #[inline]
    pub fn of(protocol: u16) -> ProtoClass {
        let (known, class) = CLASS_TABLE[slot(protocol)];
        if known == protocol {
            class
        } else {
            ProtoClass::Other
        }
    }

    /// Looks a class up by its policy name.
    pub fn from_name(name: &str) -> Option<ProtoClass> {
        Self::NAMED
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(c, _)| *c)
    }

    /// The policy name of a named class.
    pub fn name(self) -> &'static str {
        Self::NAMED
            .iter()
            .find(|(c, _)| *c == self)
            .map_or("other", |(_, n)| n)
    }

    /// The GRE protocol types of the class (two for MPLS; none for `Other`).
    pub fn types(self) -> impl Iterator<Item = u16> {
        KNOWN
            .iter()
            .filter(move |(_, c)| *c == self)
            .map(|(p, _)| *p)
    }

    /// The class's bit in a [`ProtocolSet`] mask.
    #[inline]
    pub const fn bit(self) -> u16 {
        1 << self as u8
    }
}

/// The known protocol types and their classes.
pub const KNOWN: [(u16, ProtoClass); 11] = [
    (proto::IPV4, ProtoClass::Ipv4),
    (proto::IPV6, ProtoClass::Ipv6),
    (proto::TEB, ProtoClass::Teb),
    (proto::PPP, ProtoClass::Ppp),
    (proto::MPLS_UNICAST, ProtoClass::Mpls),
    (proto::MPLS_MULTICAST, ProtoClass::Mpls),
    (proto::ERSPAN2, ProtoClass::Erspan2),
    (proto::ERSPAN3, ProtoClass::Erspan3),
    (proto::NHRP, ProtoClass::Nhrp),
    (proto::WCCP, ProtoClass::Wccp),
    (proto::KEEPALIVE, ProtoClass::Keepalive),
];

#[inline(always)]
const fn slot(protocol: u16) -> usize {
    ((protocol ^ (protocol >> 8)) & 0xFF) as usize
}

/// 256 slots; an empty slot holds a type that cannot hash to it, so it never matches.
const CLASS_TABLE: [(u16, ProtoClass); 256] = {
    let mut t = [(0u16, ProtoClass::Other); 256];
    let mut i: u16 = 0;
    while i < 256 {
        // 0x0100 | i hashes to slot (i ^ 1): never to slot i.
        t[i as usize] = (0x0100 | i, ProtoClass::Other);
        i += 1;
    }
    let mut k = 0;
    while k < KNOWN.len() {
        t[slot(KNOWN[k].0)] = KNOWN[k];
        k += 1;
    }
    t
};

/// The protocol types a tunnel allows: a bit per class, plus numeric types outside the classes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProtocolSet {
    classes: u16,
    numbers: Box<[u16]>,
}

impl ProtocolSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Allows a whole class.
    pub fn allow_class(&mut self, class: ProtoClass) {
        if class != ProtoClass::Other {
            self.classes |= class.bit();
        }
    }

    /// Allows one numeric protocol type; a number that belongs to a class allows that class.
    pub fn allow_number(&mut self, protocol: u16) {
        match ProtoClass::of(protocol) {
            ProtoClass::Other => {
                if !self.numbers.contains(&protocol) {
                    let mut v = self.numbers.to_vec();
                    v.push(protocol);
                    v.sort_unstable();
                    self.numbers = v.into_boxed_slice();
                }
            }
            class => self.allow_class(class),
        }
    }

    /// True when the class is allowed.
    #[inline]
    pub fn has_class(&self, class: ProtoClass) -> bool {
        self.classes & class.bit() != 0
    }

    /// True when `protocol` (of class `class`) is allowed.
    #[inline]
    pub fn allows(&self, protocol: u16, class: ProtoClass) -> bool {
        self.has_class(class)
            | ((class == ProtoClass::Other) && self.numbers.binary_search(&protocol).is_ok())
    }

    /// The mask of allowed classes (see [`ProtoClass::bit`]).
    #[inline]
    pub fn class_mask(&self) -> u16 {
        self.classes
    }

    /// True when numeric types outside the classes are allowed.
    #[inline]
    pub fn has_numbers(&self) -> bool {
        !self.numbers.is_empty()
    }

    /// The numeric types allowed outside the classes, sorted.
    pub fn numbers(&self) -> &[u16] {
        &self.numbers
    }

    /// True when nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.classes == 0 && self.numbers.is_empty()
    }

    /// Names of the allowed classes and numbers, for summaries.
    pub fn describe(&self) -> Vec<String> {
        let mut out: Vec<String> = ProtoClass::NAMED
            .iter()
            .filter(|(c, _)| self.has_class(*c))
            .map(|(_, n)| n.to_string())
            .collect();
        out.extend(self.numbers.iter().map(|n| format!("0x{n:04x}")));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_table_has_no_collisions_and_agrees_with_a_plain_match() {
        let mut slots: Vec<usize> = KNOWN.iter().map(|(p, _)| slot(*p)).collect();
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots.len(), KNOWN.len());
        for p in 0..=u16::MAX {
            let expected = KNOWN
                .iter()
                .find(|(k, _)| *k == p)
                .map_or(ProtoClass::Other, |(_, c)| *c);
            assert_eq!(ProtoClass::of(p), expected, "{p:#06x}");
        }
    }

    #[test]
    fn classes_and_numbers() {
        let mut s = ProtocolSet::new();
        assert!(s.is_empty());
        s.allow_class(ProtoClass::Ipv4);
        s.allow_number(0x86DD);
        s.allow_number(0x1234);
        assert!(s.allows(0x0800, ProtoClass::Ipv4));
        assert!(s.allows(0x86DD, ProtoClass::Ipv6));
        assert!(s.allows(0x1234, ProtoClass::Other));
        assert!(!s.allows(0x1235, ProtoClass::Other));
        assert!(!s.allows(0x6558, ProtoClass::Teb));
        assert_eq!(s.describe(), vec!["ipv4", "ipv6", "0x1234"]);
        assert_eq!(ProtoClass::of(0x8848), ProtoClass::Mpls);
        assert_eq!(ProtoClass::from_name("erspan3"), Some(ProtoClass::Erspan3));
        assert_eq!(ProtoClass::from_name("ip"), None);
    }
}

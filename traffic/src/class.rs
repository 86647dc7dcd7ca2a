//! The classes of traffic the generator sends and the counter tells apart.
//!
//! Every generated frame carries its class in its source MAC address,
//! `02:67:67:67:CC:VV` (CC = class, VV = variant): the box rewrites nothing, so the counter on
//! the far side can say what it received per class, whatever the frame's shape.

use std::fmt;

/// What a generated frame stands for, and what the box should do with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Valid GRE of a configured tunnel carrying inner traffic: forwarded.
    Tunnel,
    /// A Cisco GRE keepalive inside a configured tunnel: forwarded.
    Keepalive,
    /// ARP, ICMP, TCP, IKE, ESP: not GRE, forwarded by default.
    NonGre,
    /// Well-formed GRE from random spoofed sources, in the 66- and 578-byte shapes of the
    /// 2016–17 backscatter wave: `unknown_tunnel`, dropped.
    Unknown,
    /// Broken GRE: bad version, must-discard flags, truncated, garbage inner packet, bad
    /// checksum: dropped.
    Invalid,
    /// GRE from addresses that can never be a sender (0/8, 127/8, 240/4): dropped.
    Bogon,
}

impl Class {
    pub const ALL: [Class; 6] = [
        Class::Tunnel,
        Class::Keepalive,
        Class::NonGre,
        Class::Unknown,
        Class::Invalid,
        Class::Bogon,
    ];
    pub const COUNT: usize = 6;

    /// The name used on the command line and in reports.
    pub const fn name(self) -> &'static str {
        match self {
            Class::Tunnel => "tunnel",
            Class::Keepalive => "keepalive",
            Class::NonGre => "non_gre",
            Class::Unknown => "unknown",
            Class::Invalid => "invalid",
            Class::Bogon => "bogon",
        }
    }

    pub fn from_name(name: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Whether a box running the lab policy should let this class through.
    pub const fn should_pass(self) -> bool {
        matches!(self, Class::Tunnel | Class::Keepalive | Class::NonGre)
    }

    pub const fn index(self) -> usize {
        self as usize
    }

    /// The source MAC of variant `variant` of this class.
    pub const fn mac(self, variant: u8) -> [u8; 6] {
        [0x02, 0x67, 0x67, 0x67, self as u8, variant]
    }

    /// The class a received frame carries in its source MAC, if it is one of ours.
    pub fn of_frame(frame: &[u8]) -> Option<Class> {
        match frame.get(6..11)? {
            [0x02, 0x67, 0x67, 0x67, c] => Class::ALL.get(usize::from(*c)).copied(),
            _ => None,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Frames and bytes per class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassCounts {
    pub frames: [u64; Class::COUNT],
    pub bytes: [u64; Class::COUNT],
}

impl ClassCounts {
    pub fn add(&mut self, class: Class, len: usize) {
        self.frames[class.index()] += 1;
        self.bytes[class.index()] += len as u64;
    }

    pub fn total(&self) -> u64 {
        self.frames.iter().sum()
    }

    /// `class=frames` pairs, the line format both subcommands print.
    pub fn line(&self) -> String {
        Class::ALL
            .iter()
            .map(|c| format!("{}={}", c.name(), self.frames[c.index()]))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Parses what [`ClassCounts::line`] printed (unknown words are ignored).
    pub fn parse_line(line: &str) -> ClassCounts {
        let mut c = ClassCounts::default();
        for word in line.split_whitespace() {
            if let Some((k, v)) = word.split_once('=') {
                if let (Some(class), Ok(n)) = (Class::from_name(k), v.parse()) {
                    c.frames[class.index()] = n;
                }
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_survives_the_source_mac() {
        for c in Class::ALL {
            let mut frame = vec![0u8; 60];
            frame[6..12].copy_from_slice(&c.mac(9));
            assert_eq!(Class::of_frame(&frame), Some(c));
        }
        assert_eq!(Class::of_frame(&[0u8; 60]), None);
        assert_eq!(Class::of_frame(&[0u8; 8]), None);
    }

    #[test]
    fn count_lines_round_trip() {
        let mut c = ClassCounts::default();
        c.add(Class::Tunnel, 100);
        c.add(Class::Bogon, 66);
        c.add(Class::Bogon, 66);
        let parsed = ClassCounts::parse_line(&format!("t=3 {}", c.line()));
        assert_eq!(parsed.frames, c.frames);
    }
}

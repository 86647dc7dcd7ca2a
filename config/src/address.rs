//! `peer` and `local` values: an IPv4 or IPv6 address, or a prefix `ADDR/LEN`.
//!
//! A prefix with host bits set (`10.0.0.1/8`) is refused rather than silently truncated: it is
//! almost always a typo for either the network or the single host, and guessing wrong would open
//! or close a tunnel to a whole range.

use std::net::IpAddr;

use validator::IpPrefix;

/// Why a `peer`/`local` string is not a usable address or prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AddrError {
    /// Neither an address nor `ADDR/LEN`.
    Garbage,
    /// A prefix length beyond the family's width (`max` = 32 or 128).
    TooLong { len: String, max: u8 },
    /// Host bits set; `network` is the prefix with them cleared.
    HostBits { network: IpPrefix, host: IpAddr },
}

/// Parses `203.0.113.7`, `203.0.113.0/28`, `2001:db8::1` or `2001:db8::/32`.
pub(crate) fn parse_prefix(text: &str) -> Result<IpPrefix, AddrError> {
    let Some((addr, len)) = text.split_once('/') else {
        return text
            .parse::<IpAddr>()
            .map(IpPrefix::host)
            .map_err(|_| AddrError::Garbage);
    };
    let addr: IpAddr = addr.parse().map_err(|_| AddrError::Garbage)?;
    // Digits only: `u8::from_str` would also take "+8".
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AddrError::Garbage);
    }
    let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let too_long = || AddrError::TooLong {
        len: len.to_owned(),
        max,
    };
    let bits: u8 = len.parse().map_err(|_| too_long())?;
    let network = IpPrefix::new(addr, bits).ok_or_else(too_long)?;
    if network != exact(addr, bits) {
        return Err(AddrError::HostBits {
            network,
            host: addr,
        });
    }
    Ok(network)
}

/// The prefix `addr/bits` without clearing anything, to compare with the cleared one.
fn exact(addr: IpAddr, bits: u8) -> IpPrefix {
    match addr {
        IpAddr::V4(a) => IpPrefix::V4(u32::from(a), bits),
        IpAddr::V6(a) => IpPrefix::V6(u128::from(a), bits),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_and_prefixes_of_both_families() {
        assert_eq!(
            parse_prefix("203.0.113.7"),
            Ok(IpPrefix::V4(0xCB00_7107, 32))
        );
        assert_eq!(
            parse_prefix("203.0.113.0/28"),
            Ok(IpPrefix::V4(0xCB00_7100, 28))
        );
        assert_eq!(parse_prefix("0.0.0.0/0"), Ok(IpPrefix::V4(0, 0)));
        assert_eq!(
            parse_prefix("2001:db8::/32"),
            Ok(IpPrefix::V6(0x2001_0db8 << 96, 32))
        );
        assert_eq!(parse_prefix("2001:db8::1").map(|p| p.is_host()), Ok(true));
    }

    #[test]
    fn refuses_garbage_and_overlong_prefixes() {
        for bad in [
            "",
            "berlin",
            "203.0.113",
            "203.0.113.7/",
            "203.0.113.7/+8",
            "/8",
            "1.2.3.4/ 8",
            " 1.2.3.4",
            "fe80::1%eth0",
            "1.2.3.4/8/8",
        ] {
            assert_eq!(parse_prefix(bad), Err(AddrError::Garbage), "{bad:?}");
        }
        assert_eq!(
            parse_prefix("10.0.0.0/33"),
            Err(AddrError::TooLong {
                len: "33".into(),
                max: 32
            })
        );
        assert_eq!(
            parse_prefix("2001:db8::/129"),
            Err(AddrError::TooLong {
                len: "129".into(),
                max: 128
            })
        );
        assert_eq!(
            parse_prefix("10.0.0.0/99999"),
            Err(AddrError::TooLong {
                len: "99999".into(),
                max: 32
            })
        );
    }

    #[test]
    fn refuses_host_bits_and_names_the_network() {
        match parse_prefix("10.0.0.1/8") {
            Err(AddrError::HostBits { network, .. }) => {
                assert_eq!(network.to_string(), "10.0.0.0/8")
            }
            other => panic!("{other:?}"),
        }
        match parse_prefix("2001:db8::1/64") {
            Err(AddrError::HostBits { network, .. }) => {
                assert_eq!(network.to_string(), "2001:db8::/64")
            }
            other => panic!("{other:?}"),
        }
    }
}

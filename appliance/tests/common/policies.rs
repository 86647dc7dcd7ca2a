//! Random policies for the differential tests of the kernel program and the nftables ruleset
//! against the validator: every value of every `[defaults]` key, and tunnel tables drawn over
//! the addresses the frame generators use (so frames hit them, miss them, and hit them with the
//! wrong key), as TOML text that `config::load_str` and `greguard nft` both read.

// A draw below a usize bound fits usize; the clock's nanoseconds since 1970 (a seed) fit u64
// until 2554.
#![allow(clippy::cast_possible_truncation)]

/// A small deterministic random source (SplitMix64), so a failing run can be replayed with its
/// seed.
pub struct Draw(u64);

impl Draw {
    pub fn new(seed: u64) -> Draw {
        Draw(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// True with `percent` % probability.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// The run's seed: `GG_SEED` when set (to replay a failure), else the clock. Printed, so a
/// failure can be replayed.
pub fn seed() -> u64 {
    let seed = std::env::var("GG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("random policies and frames from seed {seed} (GG_SEED={seed} replays them)");
    seed
}

/// A proptest runner for the frame generators, seeded from the run's seed.
pub fn frame_runner(seed: u64) -> proptest::test_runner::TestRunner {
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut rng_seed = [0u8; 32];
    rng_seed[..8].copy_from_slice(&seed.to_le_bytes());
    TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &rng_seed),
    )
}

/// Peer and local addresses for IPv4 and IPv6 tunnels: the generators' endpoints (PEER,
/// PPTP_PEER, STRANGER, LOCAL, ...), prefixes around them, and addresses of no frame.
const PEERS4: &[&str] = &[
    "203.0.113.7",
    "203.0.113.0/24",
    "203.0.113.20",
    "192.0.2.0/24",
    "192.0.2.99",
    "100.64.0.1",
    "0.0.0.0/0",
    "198.18.0.1",
];
const LOCALS4: &[&str] = &[
    "198.51.100.10",
    "198.51.100.0/24",
    "198.51.100.5",
    "0.0.0.0/0",
];
const PEERS6: &[&str] = &[
    "2001:db8:1::7",
    "2001:db8:1::/48",
    "2001:db8::/32",
    "2001:db8:99::99",
    "::/0",
];
const LOCALS6: &[&str] = &["2001:db8:ffff::10", "2001:db8:ffff::/48", "::/0"];
const FLAG_RULES: &[&str] = &["allow", "require", "forbid"];

/// A random policy as TOML: random `[defaults]` and 0–6 random tunnels. Some draws are refused
/// by the loader (two tunnels with the same addresses and key); callers draw again.
pub fn random_policy(d: &mut Draw) -> String {
    let mut t = String::from("[defaults]\n");
    t += &format!("non_gre = \"{}\"\n", d.pick(&["forward", "drop"]));
    t += &format!(
        "unknown_tunnel = \"{}\"\n",
        d.pick(&["forward", "drop", "rate-limit"])
    );
    t += &format!("invalid_gre = \"{}\"\n", d.pick(&["drop", "rate-limit"]));
    t += &format!(
        "rate_limit = {{ pps = {}, burst = {} }}\n",
        d.pick(&[1, 1000, 100000]),
        1 + d.below(5)
    );
    t += &format!("fragments = \"{}\"\n", d.pick(&["drop", "tunnel"]));
    t += &format!("reserved_bits = \"{}\"\n", d.pick(&["drop", "ignore"]));
    t += &format!("bogons = \"{}\"\n", d.pick(&["drop", "ignore"]));
    for i in 0..d.below(7) {
        t += &format!("\n[[tunnel]]\nname = \"t{i}\"\n");
        let pptp = d.chance(15);
        let (peer, local) = if !pptp && d.chance(30) {
            (d.pick(PEERS6), d.pick(LOCALS6))
        } else {
            (d.pick(PEERS4), d.pick(LOCALS4))
        };
        t += &format!("peer = \"{peer}\"\nlocal = \"{local}\"\n");
        if pptp {
            t += "version = 1\n";
            if d.chance(30) {
                t += &format!("key = {}\n", d.pick(&[5, 6]));
            }
        } else {
            match d.below(4) {
                0 => t += "key = \"none\"\n",
                1 => t += &format!("key = {}\n", d.pick(&[1, 3, 77, 1001])),
                _ => {}
            }
            // Every version-0 class by name, and a numeric type.
            let mut protocols: Vec<&str> = validator::ProtoClass::NAMED
                .iter()
                .map(|(_, name)| *name)
                .filter(|name| *name != "ppp")
                .chain(["0x1234"])
                .filter(|_| d.chance(50))
                .collect();
            if protocols.is_empty() {
                protocols.push("ipv4");
            }
            let list: Vec<String> = protocols.iter().map(|p| format!("\"{p}\"")).collect();
            t += &format!("protocols = [{}]\n", list.join(", "));
            t += &format!("nested = {}\n", d.chance(30));
            t += &format!("checksum = \"{}\"\n", d.pick(FLAG_RULES));
        }
        t += &format!("sequence = \"{}\"\n", d.pick(FLAG_RULES));
        if d.chance(30) {
            t += &format!(
                "rate = {{ pps = {}, burst = {} }}\n",
                d.pick(&[1, 1000]),
                1 + d.below(3)
            );
        }
    }
    t
}

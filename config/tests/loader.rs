//! `config::Loader` reads a policy in blocks and reuses unchanged tunnels; whatever the file,
//! its answer must be the one `config::load_str` gives reading the whole file. These tests edit
//! policies at random, with the snippets most likely to fool a split at `[[tunnel]]` lines, and
//! compare the two after every edit with one loader kept across all of them.

// A draw below a usize bound fits usize; a draw below 10 fits u8.
#![allow(clippy::cast_possible_truncation)]

use std::path::PathBuf;

use std::sync::Arc;

use config::{Loaded, Loader};
use validator::{IpPrefix, KeyRule, Policy};

/// A small deterministic generator (xorshift64*), so a failure can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Lines that change what a block means, or break it, when inserted anywhere.
const SNIPPETS: &[&str] = &[
    "[[tunnel]]",
    "[[tunnel]]\r",
    "[[ tunnel ]]",
    "  [[tunnel]]",
    "[tunnel]",
    "[tunnel.rate]",
    "pps = 10",
    "burst = 20",
    "[sampling]",
    "invalid = 10",
    "[ports]",
    "outside = \"eth9\"",
    "[defaults]",
    "unknown_tunnel = \"forward\"",
    "[metrics]",
    "tunnel = []",
    "name = \"dup\"",
    "peer = \"203.0.113.99\"",
    "local = \"198.51.100.99\"",
    "key = 7",
    "key = \"none\"",
    "version = 1",
    "protocols = [",
    "\"ipv4\",",
    "]",
    "protocols = [\"ipv4\"]",
    "nested = true",
    "checksum = \"require\"",
    "rate = { pps = 5, burst = 5 }",
    "x = \"\"\"",
    "\"\"\"",
    "y = '''",
    "'''",
    "z = { a = 1,",
    "}",
    "# [[tunnel]]",
    "",
    "\\",
];

/// A policy of `n` tunnels in the layout operators generate: a preamble, then one block each.
fn generated(n: usize) -> String {
    let mut text = String::from(
        "[ports]\noutside = \"eth0\"\ninside = \"eth1\"\n\n[defaults]\nunknown_tunnel = \"drop\"\n\n",
    );
    for i in 0..n {
        text.push_str(&format!(
            "[[tunnel]]\nname = \"t{i}\"\npeer = \"100.64.{}.{}\"\nlocal = \"198.51.100.30\"\n",
            i / 256,
            i % 256
        ));
        match i % 4 {
            0 => text.push_str(&format!("key = {i}\n")),
            1 => text.push_str("protocols = [\"ipv4\", \"ipv6\"]\n"),
            2 => text.push_str("[tunnel.rate]\npps = 100\nburst = 200\n"),
            _ => text.push_str("# a comment\n\n"),
        }
    }
    text
}

fn example(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    std::fs::read_to_string(path).expect("example policy")
}

/// One random edit of `text`, by whole lines.
fn edit(text: &str, rng: &mut Rng) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.is_empty() {
        lines.push(String::new());
    }
    let at = rng.below(lines.len());
    match rng.below(7) {
        0 => {
            lines.remove(at);
        }
        1 => {
            let line = lines[rng.below(lines.len())].clone();
            lines.insert(at, line);
        }
        2 => {
            let other = rng.below(lines.len());
            lines.swap(at, other);
        }
        3 => {
            // A digit changed: another address, key or rate.
            let line = &mut lines[at];
            if let Some(pos) = line.find(|c: char| c.is_ascii_digit()) {
                let digit = char::from(b'0' + rng.below(10) as u8);
                line.replace_range(pos..pos + 1, &digit.to_string());
            }
        }
        4 => {
            // A whole block moved: a tunnel reordered.
            let blocks: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i] == "[[tunnel]]")
                .collect();
            if let (Some(&from), Some(&to)) = (
                blocks.get(rng.below(blocks.len().max(1))),
                blocks.get(rng.below(blocks.len().max(1))),
            ) {
                let end = blocks
                    .iter()
                    .copied()
                    .find(|&b| b > from)
                    .unwrap_or(lines.len());
                let moved: Vec<String> = lines.drain(from..end).collect();
                let to = to.min(lines.len());
                for (k, line) in moved.into_iter().enumerate() {
                    lines.insert(to + k, line);
                }
            }
        }
        5 => {
            // One character that opens or closes something, inside a line.
            let line = &mut lines[at];
            let pos = (0..=line.len())
                .filter(|&p| line.is_char_boundary(p))
                .nth(rng.below(line.len() + 1))
                .unwrap_or(0);
            let c = ['"', '\'', '[', ']', '{', '}', '#', '=', ','][rng.below(9)];
            line.insert(pos, c);
        }
        _ => lines.insert(at, SNIPPETS[rng.below(SNIPPETS.len())].to_owned()),
    }
    let mut out = lines.join("\n");
    if rng.below(2) == 0 {
        out.push('\n');
    }
    out
}

/// What a load gave, in a form two loads can be compared by.
fn outcome(result: Result<Loaded, config::Error>) -> Result<Loaded, String> {
    result.map_err(|e| e.to_string())
}

fn assert_same(text: &str, by_loader: Result<Loaded, String>, whole: Result<Loaded, String>) {
    match (by_loader, whole) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.model, b.model, "models differ for:\n{text}");
            assert_eq!(
                a.policy.specs(),
                b.policy.specs(),
                "tables differ for:\n{text}"
            );
            assert_eq!(a.policy.defaults(), b.policy.defaults());
            assert_same_lookups(&a.policy, &b.policy);
        }
        (Err(a), Err(b)) => assert_eq!(a, b, "errors differ for:\n{text}"),
        (a, b) => panic!(
            "loader {} but the whole file {}:\n{text}",
            a.map_or_else(|e| format!("failed ({e})"), |_| "loaded".into()),
            b.map_or_else(|e| format!("failed ({e})"), |_| "loaded".into()),
        ),
    }
}

/// Every tunnel's own addresses and key find the same tunnel in both policies (the loader may
/// build its tables in a recycled policy's memory).
fn assert_same_lookups(a: &Policy, b: &Policy) {
    for spec in a.specs() {
        let key = match spec.key {
            KeyRule::Equal(k) => Some(k),
            KeyRule::Any | KeyRule::Absent => None,
        };
        match (spec.peer, spec.local) {
            (IpPrefix::V4(p, _), IpPrefix::V4(l, _)) => {
                assert_eq!(
                    a.match_v4(p, l, key),
                    b.match_v4(p, l, key),
                    "{}",
                    spec.name
                );
                assert_eq!(a.match_v4(p, l, Some(9)), b.match_v4(p, l, Some(9)));
            }
            (IpPrefix::V6(p, _), IpPrefix::V6(l, _)) => {
                assert_eq!(
                    a.match_v6(p, l, key),
                    b.match_v6(p, l, key),
                    "{}",
                    spec.name
                );
            }
            _ => {}
        }
    }
}

/// Edits `start` `rounds` times (each edit on the last text that loaded, so the file stays
/// mostly valid, as an operator's does) and compares after each. Returns how many edits loaded
/// and how many tunnels the loader took unread over all of them.
fn edit_and_compare(start: &str, seed: u64, rounds: usize) -> (usize, usize) {
    let mut rng = Rng(seed);
    let mut loader = Loader::new();
    let mut good = start.to_owned();
    let (mut loaded, mut reused, mut split) = (0, 0, 0);
    let mut previous: Option<Arc<Policy>> = None;
    for round in 0..rounds {
        if round % 25 == 0 {
            // Edits drift towards files the split does not fit; start again now and then.
            good = start.to_owned();
        }
        let text = edit(&good, &mut rng);
        let by_loader = outcome(loader.load_str(&text, "p.toml"));
        // As the daemon does: the policy replaced is given back for its memory.
        if let Ok(l) = &by_loader {
            if let Some(p) = previous
                .replace(l.policy.clone())
                .and_then(|p| Arc::try_unwrap(p).ok())
            {
                loader.recycle(p);
            }
        }
        let whole = outcome(config::load_str(&text, "p.toml"));
        let ok = by_loader.is_ok();
        assert_same(&text, by_loader, whole);
        if ok {
            loaded += 1;
            split += usize::from(!loader.last().whole_file);
            reused += loader.last().reused;
            good = text;
        }
    }
    eprintln!(
        "{loaded} of {rounds} edits loaded, {reused} tunnels reused, {split} loads by blocks"
    );
    (loaded, reused)
}

#[test]
fn random_edits_of_a_generated_policy_load_as_the_whole_file_does() {
    let (loaded, reused) = edit_and_compare(&generated(40), 2017, 3000);
    // The edits must exercise both paths: loads that succeed, and tunnels taken unread.
    assert!(loaded > 300, "only {loaded} edits loaded");
    assert!(reused > 10_000, "only {reused} tunnels reused");
}

#[test]
fn random_edits_of_the_examples_load_as_the_whole_file_does() {
    for (i, name) in [
        "small-site.toml",
        "dmvpn-hub.toml",
        "pptp-concentrator.toml",
    ]
    .iter()
    .enumerate()
    {
        let (loaded, _) = edit_and_compare(&example(name), 1000 + i as u64, 1500);
        assert!(loaded > 100, "{name}: only {loaded} edits loaded");
    }
}

#[test]
fn an_unchanged_file_reads_nothing_again_and_one_edit_reads_one_tunnel() {
    let text = generated(200);
    let mut loader = Loader::new();
    loader.load_str(&text, "p.toml").expect("loads");
    assert_eq!((loader.last().reused, loader.last().read), (0, 200));
    assert!(!loader.last().whole_file);

    loader.load_str(&text, "p.toml").expect("loads");
    assert_eq!((loader.last().reused, loader.last().read), (200, 0));

    let edited = text.replace("name = \"t17\"", "name = \"renamed\"");
    let l = loader.load_str(&edited, "p.toml").expect("loads");
    assert_eq!((loader.last().reused, loader.last().read), (199, 1));
    assert_eq!(l.tunnels()[17].name, "renamed");

    // A tunnel added in the middle and one removed: the rest are found where they moved.
    let added = edited.replacen(
        "[[tunnel]]\nname = \"t50\"",
        "[[tunnel]]\nname = \"new\"\npeer = \"192.0.2.1\"\nlocal = \"198.51.100.30\"\n\n[[tunnel]]\nname = \"t50\"",
        1,
    );
    let start = added.find("[[tunnel]]\nname = \"t90\"").expect("t90");
    let end = start + added[start + 1..].find("[[tunnel]]").expect("t91") + 1;
    let removed = format!("{}{}", &added[..start], &added[end..]);
    let l = loader.load_str(&removed, "p.toml").expect("loads");
    assert_eq!((loader.last().reused, loader.last().read), (199, 1));
    assert_eq!(l.tunnels().len(), 200);
    assert!(l.tunnels().iter().all(|t| t.name != "t90"));
}

#[test]
fn an_error_is_reported_as_the_whole_file_reports_it_and_known_tunnels_stay() {
    let text = generated(20);
    let mut loader = Loader::new();
    loader.load_str(&text, "p.toml").expect("loads");
    let broken = text.replace("peer = \"100.64.0.7\"", "peer = \"100.64.0.777\"");
    let err = loader.load_str(&broken, "p.toml").expect_err("refused");
    let whole = config::load_str(&broken, "p.toml").expect_err("refused");
    assert_eq!(err.to_string(), whole.to_string());
    assert!(err.to_string().starts_with("p.toml:"), "{err}");
    // Fixed again: nothing needs reading.
    loader.load_str(&text, "p.toml").expect("loads");
    assert_eq!((loader.last().reused, loader.last().read), (20, 0));
}

#[test]
fn tables_after_the_tunnels_are_read_with_the_preamble() {
    let text = format!("{}\n[sampling]\ninvalid = 10\n\n[metrics]\n", generated(5));
    let mut loader = Loader::new();
    let l = loader.load_str(&text, "p.toml").expect("loads");
    assert!(!loader.last().whole_file);
    assert_eq!(l.model.sampling.invalid, 10);
    assert_same(&text, Ok(l), outcome(config::load_str(&text, "p.toml")));
}

#[test]
fn a_file_the_split_does_not_fit_is_read_whole() {
    // A table between two tunnels belongs to no block: the block before it refuses it.
    let text = generated(6).replacen(
        "[[tunnel]]\nname = \"t3\"",
        "[sampling]\ninvalid = 10\n\n[[tunnel]]\nname = \"t3\"",
        1,
    );
    let mut loader = Loader::new();
    let l = loader.load_str(&text, "p.toml").expect("loads");
    assert!(loader.last().whole_file);
    assert_eq!(l.model.sampling.invalid, 10);
    assert_same(&text, Ok(l), outcome(config::load_str(&text, "p.toml")));
}

#[test]
fn a_file_beyond_the_size_limit_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.toml");
    // Sparse: the size is there, the disk space is not.
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(config::MAX_POLICY_BYTES + 1).unwrap();
    let err = Loader::new().load_file(&path).unwrap_err().to_string();
    assert!(
        err.contains("more than the") && err.contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_policy_replaced_by_rename_under_a_reader_is_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.toml");
    let version = |n: usize| {
        (0..n)
            .map(|i| format!("[[tunnel]]\nname = \"t{i}\"\npeer = \"192.0.2.{i}\"\nlocal = \"198.51.100.1\"\n"))
            .collect::<String>()
    };
    let (a, b) = (version(3), version(40));
    std::fs::write(&path, &a).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (path, stop) = (path.clone(), stop.clone());
        std::thread::spawn(move || {
            let tmp = path.with_extension("tmp");
            let mut flip = false;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                std::fs::write(&tmp, if flip { &a } else { &b }).unwrap();
                std::fs::rename(&tmp, &path).unwrap();
                flip = !flip;
            }
        })
    };
    let mut loader = Loader::new();
    for _ in 0..300 {
        let loaded = loader.load_file(&path).expect("a whole version");
        assert!(matches!(loaded.tunnels().len(), 3 | 40));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
}

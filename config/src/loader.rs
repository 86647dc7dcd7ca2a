//! Loading the same policy file again and again, as SIGHUP reloads do, at the cost of what
//! changed. A file of 100 000 tunnels is 10 MB of TOML; reading all of it takes the `toml` crate
//! about half a second here, most of it spent building a document tree of a few hundred MB. An
//! operator who edits one tunnel should not wait for the other 99 999.
//!
//! So the file is split at its `[[tunnel]]` lines into a preamble and one block per tunnel. Each
//! part is read on its own, and a block whose text is the same as in the last load is not read
//! at all: its tunnel is taken from the last policy, shared ([`std::sync::Arc`]), not copied.
//! The rest of a reload's cost is memory: the new tables are built in the memory of a policy
//! no longer in use ([`Loader::recycle`]) and the file is read into the buffer of the text
//! before, because fresh memory is zeroed by the kernel first, which at this size took longer
//! than everything else together.
//!
//! Why a block means the same alone as in the file (TOML 1.1): a `[[tunnel]]` line at the start
//! of a line, outside any string or bracket, opens a new element of the `tunnel` array, and every
//! key and `[tunnel.…]` header after it up to the next `[[tunnel]]` belongs to that element. If
//! the line were inside a multi-line string, array or inline table, the part before it would end
//! open and fail to parse alone. The split is used only if every part parses alone, the preamble
//! does not name `tunnel`, and every block holds exactly one tunnel and nothing else (another
//! table inside a block would be refused as an unknown key). Tables after the last tunnel
//! (`[sampling]` at the end, as in the examples) start at their header line and are read with
//! the preamble; the two are always read, being small, and tunnels do not depend on them.
//!
//! Anything else (a file the split does not fit, any error at all) goes to [`crate::load_str`],
//! which reads the whole file and gives the error with its line and column. Either way the
//! result is what `load_str` gives; a test holds the two equal over random edits.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use foldhash::fast::RandomState;
use validator::{Policy, TunnelSpec};

use crate::schema::{RawBlock, RawPreamble};
use crate::{validate, Error, Loaded};

/// The line that starts every block.
const TUNNEL_HEADER: &str = "[[tunnel]]";

/// Loads a policy file, reusing the tunnels whose text has not changed since its last load.
#[derive(Debug, Default)]
pub struct Loader {
    /// The last text loaded through blocks, and its tunnels.
    known: Known,
    /// A policy no longer in use, to build the next one in (see [`Loader::recycle`]).
    recycled: Option<Policy>,
    /// The buffer the next file is read into: the text before last, kept so that reading a
    /// file of 10 MB does not need 10 MB of fresh memory (which the kernel zeroes first).
    spare: String,
    /// How the last load went, for the reload log.
    last: Reuse,
}

/// A text, where each of its blocks is, and the policy whose tunnel `i` is block `i`.
#[derive(Debug, Default)]
struct Known {
    text: String,
    blocks: Vec<Range<usize>>,
    policy: Option<Arc<Policy>>,
}

/// What the last [`Loader::load_str`] reused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reuse {
    /// Tunnels taken from the previous load unread.
    pub reused: usize,
    /// Tunnels read (new or changed); with `whole_file`, every tunnel.
    pub read: usize,
    /// The whole file was read as one (the cut at `[[tunnel]]` lines did not fit it).
    pub whole_file: bool,
}

impl std::fmt::Display for Reuse {
    /// For the reload log: "99999 unchanged, 1 read" or "whole file read".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.whole_file {
            f.write_str("whole file read")
        } else {
            write!(f, "{} unchanged, {} read", self.reused, self.read)
        }
    }
}

impl Loader {
    /// A loader that has seen nothing yet.
    pub fn new() -> Loader {
        Loader::default()
    }

    /// Reads and loads the policy at `path`. Errors name the file as given.
    pub fn load_file(&mut self, path: &Path) -> Result<Loaded, Error> {
        let origin = path.display().to_string();
        let mut text = std::mem::take(&mut self.spare);
        if let Err(e) = read_consistent(path, &mut text) {
            self.spare = text;
            return Err(Error::unreadable(&origin, &e));
        }
        self.load_text(text, &origin)
    }

    /// Loads a policy from `text` (`origin` names it in errors); the result equals
    /// [`crate::load_str`]'s.
    pub fn load_str(&mut self, text: &str, origin: &str) -> Result<Loaded, Error> {
        let mut owned = std::mem::take(&mut self.spare);
        owned.clear();
        owned.push_str(text);
        self.load_text(owned, origin)
    }

    /// What the last successful load reused.
    pub fn last(&self) -> Reuse {
        self.last
    }

    /// Makes the first reload as quick as later ones, which build in the memory of the
    /// policy they replace and read into the buffer of the text before: a copy of the last
    /// policy and text loaded, made now (at start-up), puts that memory in place. Without it the
    /// first reload of a 100 000-tunnel policy spends 100 ms more waiting for fresh memory.
    pub fn prepare_reloads(&mut self) {
        if let (None, Some(policy)) = (&self.recycled, &self.known.policy) {
            let mut copy = Policy::new(*policy.defaults());
            copy.reserve(policy.tunnel_count());
            for spec in policy.specs() {
                // The same tunnels as a policy that built: none is refused.
                let _ = copy.add_tunnel(spec.clone());
            }
            self.recycled = Some(copy);
        }
        if self.spare.capacity() < self.known.text.len() {
            self.spare = String::with_capacity(with_room(self.known.text.len()));
            self.spare.push_str(&self.known.text);
        }
    }

    /// Gives back a policy no longer in use (the data path's replaced one): the next load
    /// builds its tables in this one's memory ([`Policy::recycle`]).
    pub fn recycle(&mut self, policy: Policy) {
        self.recycled = Some(policy);
    }

    fn load_text(&mut self, text: String, origin: &str) -> Result<Loaded, Error> {
        if let Some((loaded, blocks, reuse)) = self.by_blocks(&text) {
            self.last = reuse;
            let old = std::mem::replace(
                &mut self.known,
                Known {
                    text,
                    blocks,
                    policy: Some(loaded.policy.clone()),
                },
            );
            self.spare = old.text;
            return Ok(loaded);
        }
        let result = crate::load_str(&text, origin);
        self.spare = text;
        let loaded = result?;
        self.last = Reuse {
            reused: 0,
            read: loaded.policy.tunnel_count(),
            whole_file: true,
        };
        Ok(loaded)
    }

    /// The load through blocks, with where each block is in `text`; `None` when the split
    /// does not fit or anything fails.
    fn by_blocks(&mut self, text: &str) -> Option<(Loaded, Vec<Range<usize>>, Reuse)> {
        let Split {
            preamble,
            blocks,
            postamble,
        } = split(text)?;
        // The postamble starts with a table header, so after the preamble it means what it
        // means after the last tunnel.
        let head = [preamble, postamble].concat();
        let raw = toml::from_str::<RawPreamble>(&head).ok()?.into_policy()?;
        let (model, mut policy) = validate::validate(&raw, &head).ok()?;

        // Each block: a known tunnel, or one read now (few, after an edit).
        let mut finder = Finder::new(&self.known);
        let mut read = Vec::new();
        let mut found = Vec::with_capacity(blocks.len());
        for &block in &blocks {
            match finder.find(block) {
                Some(spec) => found.push(Some(spec)),
                None => {
                    read.push(read_block(block)?);
                    found.push(None);
                }
            }
        }
        let reuse = Reuse {
            reused: blocks.len() - read.len(),
            read: read.len(),
            whole_file: false,
        };
        let mut read = read.into_iter();
        if let Some(spare) = self.recycled.take() {
            policy = spare.recycle(*policy.defaults());
        }
        policy.reserve(blocks.len());
        for spec in found {
            let spec = match spec {
                Some(known) => known.clone(),
                None => Arc::new(read.next()?),
            };
            policy.add_tunnel(spec).ok()?;
        }
        if !names_unique(policy.specs()) {
            return None;
        }
        let base = text.as_ptr() as usize;
        let at = blocks
            .iter()
            .map(|b| {
                let start = b.as_ptr() as usize - base;
                start..start + b.len()
            })
            .collect();
        let policy = Arc::new(policy);
        Some((Loaded { model, policy }, at, reuse))
    }
}

/// Finds a block's text among the known blocks. Files change little between loads and keep
/// their order, so it first tries the block after the last one found (one comparison of
/// adjacent memory); only when that fails does it build a map of all known blocks.
struct Finder<'k> {
    text: &'k str,
    blocks: &'k [Range<usize>],
    specs: &'k [Arc<TunnelSpec>],
    next: usize,
    by_text: Option<HashMap<&'k str, usize, RandomState>>,
}

impl<'k> Finder<'k> {
    fn new(known: &'k Known) -> Self {
        let specs = known.policy.as_deref().map_or(&[][..], Policy::specs);
        Finder {
            text: &known.text,
            // Known blocks always match the policy's tunnels one to one; never trust more.
            blocks: &known.blocks[..known.blocks.len().min(specs.len())],
            specs,
            next: 0,
            by_text: None,
        }
    }

    fn text(&self, i: usize) -> Option<&'k str> {
        self.text.get(self.blocks.get(i)?.clone())
    }

    fn find(&mut self, block: &str) -> Option<&'k Arc<TunnelSpec>> {
        let i = if self.text(self.next) == Some(block) {
            self.next
        } else {
            let (text, blocks) = (self.text, self.blocks);
            let by_text = self.by_text.get_or_insert_with(|| {
                let mut map =
                    HashMap::with_capacity_and_hasher(blocks.len(), RandomState::default());
                for (i, at) in blocks.iter().enumerate() {
                    if let Some(b) = text.get(at.clone()) {
                        map.entry(b).or_insert(i);
                    }
                }
                map
            });
            *by_text.get(block)?
        };
        self.next = i + 1;
        self.specs.get(i)
    }
}

/// `n` and room to grow: buffers and tables sized to fit exactly would move into fresh memory
/// as soon as one tunnel is added, which is what reusing them is to avoid.
fn with_room(n: usize) -> usize {
    n.saturating_add(n / 8)
}

/// The largest policy file read: 100 000 tunnels take about 10 MB.
pub const MAX_POLICY_BYTES: u64 = 64 << 20;

/// Reads `path` into `text` as one consistent version: the open file's size and modification
/// time must be the same before and after the read, and all of it read, or it is read again (an
/// editor or a deploy tool may be writing it). Replacing the file by a rename, as
/// docs/operations.md tells operators to, never shows a reader half a file.
fn read_consistent(path: &Path, text: &mut String) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    use std::os::unix::fs::MetadataExt;
    const ATTEMPTS: u32 = 5;
    let version = |m: &std::fs::Metadata| (m.len(), m.mtime(), m.mtime_nsec());
    for _ in 0..ATTEMPTS {
        text.clear();
        let mut file = std::fs::File::open(path)?;
        let before = file.metadata()?;
        if before.len() > MAX_POLICY_BYTES {
            return Err(Error::new(
                ErrorKind::InvalidData,
                format!(
                    "the file is {} bytes, more than the {MAX_POLICY_BYTES} a policy may have",
                    before.len()
                ),
            ));
        }
        // At most MAX_POLICY_BYTES (64 MiB, checked above): it fits any usize.
        #[allow(clippy::cast_possible_truncation)]
        let len = before.len() as usize;
        text.reserve_exact(with_room(len));
        (&mut file)
            .take(MAX_POLICY_BYTES + 1)
            .read_to_string(text)?;
        // The file that was read (a rename since the open does not matter: that was a whole
        // version too).
        let after = file.metadata()?;
        if version(&before) == version(&after) && text.len() as u64 == after.len() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Err(Error::other(format!(
        "the file changed while it was read, {ATTEMPTS} times in a row; write the new \
         version next to it and rename it into place"
    )))
}

/// Whether no two tunnels share a name.
fn names_unique(specs: &[Arc<TunnelSpec>]) -> bool {
    let mut names = HashSet::with_capacity_and_hasher(specs.len(), RandomState::default());
    specs.iter().all(|s| names.insert(s.name.as_str()))
}

/// One block alone: exactly one tunnel, and nothing wrong with it.
fn read_block(block: &str) -> Option<TunnelSpec> {
    let raw = toml::from_str::<RawBlock>(block).ok()?;
    match raw.tunnel.as_slice() {
        [one] => validate::tunnel_spec(one.get_ref(), block),
        _ => None,
    }
}

/// A policy cut at its `[[tunnel]]` lines.
#[derive(Debug, PartialEq)]
struct Split<'t> {
    /// Before the first `[[tunnel]]` line.
    preamble: &'t str,
    /// From each `[[tunnel]]` line to the next (the last to the postamble).
    blocks: Vec<&'t str>,
    /// From the first line after the last `[[tunnel]]` that opens one of the top-level tables
    /// (`[sampling]`, say) to the end; empty when there is none.
    postamble: &'t str,
}

/// Lines that open a top-level table other than `tunnel`, spelled as the examples do.
const TOP_LEVEL_HEADERS: [&str; 4] = ["[ports]", "[defaults]", "[sampling]", "[metrics]"];

/// `text` cut into a preamble, blocks and postamble; `None` when it has no `[[tunnel]]` line
/// (a file without tunnels is small anyway).
fn split(text: &str) -> Option<Split<'_>> {
    // memchr's SIMD search: `str::match_indices` took 8 ms of a 10 MB file.
    let mut starts: Vec<usize> = memchr::memmem::find_iter(text.as_bytes(), TUNNEL_HEADER)
        .filter(|&at| is_whole_line(text, at, TUNNEL_HEADER))
        .collect();
    let first = *starts.first()?;
    let last = *starts.last()?;
    let end = TOP_LEVEL_HEADERS
        .iter()
        .filter_map(|h| {
            text[last..]
                .match_indices(h)
                .map(|(at, _)| last + at)
                .find(|&at| is_whole_line(text, at, h))
        })
        .min()
        .unwrap_or(text.len());
    starts.push(end);
    let blocks = starts.windows(2).map(|w| &text[w[0]..w[1]]).collect();
    Some(Split {
        preamble: &text[..first],
        blocks,
        postamble: &text[end..],
    })
}

/// Whether `header`, found at `at`, is a line of its own.
fn is_whole_line(text: &str, at: usize, header: &str) -> bool {
    let before = &text.as_bytes()[..at];
    let after = &text.as_bytes()[at + header.len()..];
    (before.is_empty() || before.ends_with(b"\n"))
        && (after.is_empty() || after.starts_with(b"\n") || after.starts_with(b"\r\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_takes_only_whole_header_lines() {
        let text =
            "[ports]\n[[tunnel]]\na = 1\n  [[tunnel]]\nb = \"[[tunnel]]\"\n[[tunnel]]\r\nc = 3";
        let cut = split(text).expect("has tunnels");
        assert_eq!(cut.preamble, "[ports]\n");
        assert_eq!(
            cut.blocks,
            [
                "[[tunnel]]\na = 1\n  [[tunnel]]\nb = \"[[tunnel]]\"\n",
                "[[tunnel]]\r\nc = 3"
            ]
        );
        assert_eq!(cut.postamble, "");
        assert!(split("[ports]\n# [[tunnel]]\n").is_none());
    }

    #[test]
    fn split_ends_the_last_block_at_the_first_top_level_table() {
        let text =
            "[[tunnel]]\na = 1\n[[tunnel]]\nb = 2\n [metrics]\n[metrics]\nc = 3\n[sampling]\n";
        let cut = split(text).expect("has tunnels");
        assert_eq!(cut.preamble, "");
        assert_eq!(
            cut.blocks,
            ["[[tunnel]]\na = 1\n", "[[tunnel]]\nb = 2\n [metrics]\n"]
        );
        assert_eq!(cut.postamble, "[metrics]\nc = 3\n[sampling]\n");
    }
}

//! Policy errors as an operator reads them: `FILE:LINE:COL: message`, the message naming the key
//! and what is allowed. Everything that can go wrong with a policy ends up as one [`Error`], so
//! `greguard check`, `run` and a SIGHUP reload print the same line for the same mistake.

use std::fmt;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// Why a policy could not be loaded, and where.
///
/// `line` and `column` are 1-based (the column counts characters, as editors do) and are `None`
/// only when the file could not be read at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{}{message}", Location(*.line, *.column))]
pub struct Error {
    /// The file name as the operator gave it (or the `origin` passed to [`crate::load_str`]).
    pub file: String,
    /// 1-based line of the offending text.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the offending text.
    pub column: Option<usize>,
    /// What is wrong and what is allowed instead.
    pub message: String,
}

/// Renders `LINE:COL: ` or, without a position, a single space (`FILE: message`).
struct Location(Option<usize>, Option<usize>);

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(line), Some(column)) => write!(f, "{line}:{column}: "),
            (Some(line), None) => write!(f, "{line}: "),
            _ => f.write_str(" "),
        }
    }
}

impl Error {
    /// An error at byte offset `offset` of `text`.
    pub(crate) fn at(origin: &str, text: &str, offset: usize, message: String) -> Error {
        let (line, column) = line_column(text, offset);
        Error {
            file: origin.to_owned(),
            line: Some(line),
            column: Some(column),
            message,
        }
    }

    /// The file could not be read: no position to point at.
    pub(crate) fn unreadable(origin: &str, err: &std::io::Error) -> Error {
        Error {
            file: origin.to_owned(),
            line: None,
            column: None,
            message: format!("cannot read policy: {err}"),
        }
    }

    /// A syntax or type error from `toml`, with the path of the key it concerns in front.
    pub(crate) fn from_toml(origin: &str, text: &str, err: &toml::de::Error) -> Error {
        let Some(span) = err.span() else {
            // toml gives every parse and type error a span; without one, point at the start.
            return Error::at(origin, text, 0, friendly(err.message(), None));
        };
        let message = match DeTable::parse(text) {
            // The document parses, so this is a type error: name the key it concerns.
            Ok(doc) => {
                let mut path = Vec::new();
                locate_in(doc.get_ref(), span.start, 0, &mut path);
                let mut what = friendly(err.message(), None);
                let path = render_path(&path);
                if path == "tunnel" && what.ends_with("expected an array") {
                    what.push_str("; write [[tunnel]] (double brackets) for each tunnel");
                }
                match path {
                    p if p.is_empty() => what,
                    p => format!("{p}: {what}"),
                }
            }
            Err(_) => {
                let found = text.get(span.clone()).filter(|s| !s.is_empty());
                format!("invalid TOML: {}", friendly(err.message(), found))
            }
        };
        Error::at(origin, text, span.start, message)
    }
}

/// 1-based line and character column of byte `offset` in `text` (clamped to the text).
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

/// One step of the way from the document root to an offending value.
#[derive(Debug)]
enum Seg {
    Key(String),
    /// An element of the top-level `[[tunnel]]` array, named by its `name` when it has one.
    Tunnel(usize, Option<String>),
    Index,
}

/// True when byte `pos` lies in `span` (an empty span covers its start).
fn covers(span: &Range<usize>, pos: usize) -> bool {
    span.start <= pos && pos < span.end.max(span.start + 1)
}

/// Fills `path` with the keys leading to the value at byte `pos`. An error that points at a key
/// itself (an unknown key) stops at the table holding it. Tables written as `[header]` have a span
/// covering only the header, so every table is searched whatever its span.
fn locate_in(table: &DeTable<'_>, pos: usize, depth: usize, path: &mut Vec<Seg>) -> bool {
    for (key, value) in table.iter() {
        if covers(&key.span(), pos) {
            return true;
        }
        path.push(Seg::Key(key.get_ref().to_string()));
        let hit = covers(&value.span(), pos);
        let inner = if depth == 0 && key.get_ref() == "tunnel" {
            locate_tunnels(value.get_ref(), pos, path)
        } else {
            locate(value.get_ref(), pos, depth + 1, path)
        };
        if hit || inner {
            return true;
        }
        path.pop();
    }
    false
}

fn locate(value: &DeValue<'_>, pos: usize, depth: usize, path: &mut Vec<Seg>) -> bool {
    match value {
        DeValue::Table(t) => locate_in(t, pos, depth, path),
        DeValue::Array(a) => {
            for element in a.iter() {
                path.push(Seg::Index);
                if covers(&element.span(), pos) | locate(element.get_ref(), pos, depth + 1, path) {
                    return true;
                }
                path.pop();
            }
            false
        }
        _ => false,
    }
}

/// Like [`locate`] for the `[[tunnel]]` array: each element is named by its `name`, because
/// `tunnel "berlin"` says more to an operator than an index.
fn locate_tunnels(value: &DeValue<'_>, pos: usize, path: &mut Vec<Seg>) -> bool {
    let DeValue::Array(a) = value else {
        return locate(value, pos, 1, path);
    };
    for (i, element) in a.iter().enumerate() {
        let name = element
            .get_ref()
            .as_table()
            .and_then(|t| t.get("name"))
            .and_then(|n| n.get_ref().as_str())
            .map(str::to_owned);
        path.push(Seg::Tunnel(i, name));
        if covers(&element.span(), pos) | locate(element.get_ref(), pos, 2, path) {
            return true;
        }
        path.pop();
    }
    false
}

/// `ports.queues`, `tunnel "berlin": rate.pps`, `tunnel #2: protocols`. Array indices are left
/// out: the column already points at the element.
fn render_path(path: &[Seg]) -> String {
    let mut out = String::new();
    let mut dotted = Vec::new();
    for seg in path {
        match seg {
            Seg::Key(k) => dotted.push(k.as_str()),
            Seg::Index => {}
            Seg::Tunnel(i, name) => {
                dotted.clear();
                out = match name {
                    Some(n) => format!("tunnel {n:?}"),
                    None => format!("tunnel #{}", i + 1),
                };
            }
        }
    }
    match (out.is_empty(), dotted.is_empty()) {
        (_, true) => out,
        (true, false) => dotted.join("."),
        (false, false) => format!("{out}: {}", dotted.join(".")),
    }
}

/// Rewrites serde's and toml's wording into the policy's: "key" instead of "field", plain
/// "integer" instead of Rust type names, and the allowed keys listed without backticks.
fn friendly(message: &str, found: Option<&str>) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((name, expected)) = rest.split_once('`') {
            let allowed: Vec<&str> = expected.split('`').skip(1).step_by(2).collect::<Vec<_>>();
            return if allowed.is_empty() {
                format!("unknown key {name:?}; no keys are allowed here")
            } else {
                format!("unknown key {name:?}; allowed: {}", allowed.join(", "))
            };
        }
    }
    if let Some(name) = message
        .strip_prefix("missing field `")
        .and_then(|r| r.strip_suffix('`'))
    {
        return format!("missing key {name:?}");
    }
    if message == "duplicate key" {
        if let Some(key) = found {
            return format!("duplicate key {key}: each key may appear once in a table");
        }
    }
    // toml hands integers beyond i64 over as i128.
    if let Some((n, "` as i128, expected i64")) = message
        .strip_prefix("invalid type: integer `")
        .and_then(|rest| rest.split_once('`').map(|(n, _)| (n, &rest[n.len()..])))
    {
        return format!("integer {n} is out of range; TOML integers are 64-bit");
    }
    let mut m = message.to_owned();
    for (rust, policy) in [
        ("invalid type: map", "invalid type: table"),
        ("expected i64", "expected an integer"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected a table"),
    ] {
        m = m.replace(rust, policy);
    }
    if let Some(i) = m.find("expected struct ") {
        m.truncate(i);
        m.push_str("expected a table");
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let text = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // The `=` after "bé": é is two bytes but one column.
        assert_eq!(line_column(text, 10), (2, 4));
        assert_eq!(line_column(text, 1000), (3, 1));
    }

    #[test]
    fn displays_file_line_column_message() {
        let e = Error::at("p.toml", "x\ny = 1", 2, "bad".into());
        assert_eq!(e.to_string(), "p.toml:2:1: bad");
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        assert_eq!(
            Error::unreadable("p.toml", &io).to_string(),
            "p.toml: cannot read policy: gone"
        );
    }

    #[test]
    fn rewrites_serde_wording() {
        assert_eq!(
            friendly("unknown field `x`, expected one of `a`, `b`, `c`", None),
            "unknown key \"x\"; allowed: a, b, c"
        );
        assert_eq!(
            friendly("unknown field `x`, expected `pps` or `burst`", None),
            "unknown key \"x\"; allowed: pps, burst"
        );
        assert_eq!(
            friendly("missing field `name`", None),
            "missing key \"name\""
        );
        assert_eq!(
            friendly("invalid type: string \"zero\", expected i64", None),
            "invalid type: string \"zero\", expected an integer"
        );
        assert_eq!(
            friendly(
                "invalid type: integer `99999999999999999999` as i128, expected i64",
                None
            ),
            "integer 99999999999999999999 is out of range; TOML integers are 64-bit"
        );
        assert_eq!(
            friendly("invalid type: integer `5`, expected struct RawRate", None),
            "invalid type: integer `5`, expected a table"
        );
    }
}

//! bulk: a fast reader for large `[balance.subnets]` tables.
//!
//! A `subnets` map of a million prefixes is most of a large config, and the
//! `toml` crate spends about 1.5 s and 600 MB on it (a token vector, then a
//! spanned document tree, before serde sees a value). Written as a standard
//! table, one `"prefix" = ["pool", ...]` per line, it has a grammar small
//! enough to read exactly here, straight into [`RawSubnets`].
//!
//! This is only a shortcut: [`extract`] takes those lines out of the text
//! (leaving empty lines, so every line number stays true) only when every line
//! of every such table has the simple form, and the caller checks the result
//! against what `toml` read from the rest (see `merge`). Anything else, and the
//! whole file goes through `toml` as before, which also reports any error.

use std::borrow::Cow;

use super::raw::{RawConfig, RawSubnets};

/// What [`extract`] took out of a config text.
pub(super) struct Extracted<'a> {
    /// The text with the tables' lines left empty.
    pub rest: String,
    /// The tables, by `[[balance]]` index.
    pub tables: Vec<(usize, RawSubnets<'a>)>,
    /// `[[balance]]` headers seen, to check against what toml reads.
    pub headers: usize,
}

/// Takes the simple `[balance.subnets]` tables out of `text`. None when the
/// file has no such table, or one that is not simple.
pub(super) fn extract(text: &str) -> Option<Extracted<'_>> {
    // Multi-line strings could hold lines that look like headers.
    if !text.contains("[balance.subnets]") || text.contains("\"\"\"") || text.contains("'''") {
        return None;
    }
    let mut rest = String::with_capacity(text.len());
    let mut tables: Vec<(usize, RawSubnets<'_>)> = Vec::new();
    let mut balances = 0usize;
    let mut current: Option<RawSubnets<'_>> = None;
    for line in text.split_inclusive('\n') {
        let content = strip_comment(line.trim());
        if content.starts_with('[') {
            if let Some(t) = current.take() {
                tables.push((balances - 1, t));
            }
            match content {
                "[[balance]]" => balances += 1,
                "[balance.subnets]" => {
                    // Before any [[balance]], or twice for one: let toml say why.
                    if balances == 0 || tables.last().is_some_and(|t| t.0 == balances - 1) {
                        return None;
                    }
                    current = Some(RawSubnets::default());
                    blank(&mut rest, line);
                    continue;
                }
                _ => {}
            }
        } else if let Some(t) = current.as_mut() {
            if !content.is_empty() {
                entry(line, t)?;
            }
            blank(&mut rest, line);
            continue;
        }
        rest.push_str(line);
    }
    if let Some(t) = current.take() {
        tables.push((balances - 1, t));
    }
    Some(Extracted {
        rest,
        tables,
        headers: balances,
    })
}

/// Puts the extracted tables into the config `toml` read from the rest of the
/// text. None when that does not line up (a `[[balance]]` counted here that
/// toml did not see as one, or a `subnets` key also written another way).
pub(super) fn merge<'a>(
    mut raw: RawConfig<'a>,
    tables: Vec<(usize, RawSubnets<'a>)>,
    headers: usize,
) -> Option<RawConfig<'a>> {
    if raw.balance.len() != headers {
        return None;
    }
    for (i, t) in tables {
        let b = raw.balance.get_mut(i)?;
        if !b.subnets.is_empty() {
            return None;
        }
        b.subnets = t;
    }
    Some(raw)
}

fn blank(rest: &mut String, line: &str) {
    if line.ends_with('\n') {
        rest.push('\n');
    }
}

/// A header or blank line's content without its comment. Lines holding a
/// quote keep everything (a `#` may be inside a string).
fn strip_comment(line: &str) -> &str {
    if line.contains('"') || line.contains('\'') {
        return line;
    }
    match line.find('#') {
        Some(i) => line[..i].trim_end(),
        None => line,
    }
}

/// Reads `"key" = ["a", "b"]` with an optional comment; None if the line has
/// any other shape.
fn entry<'a>(line: &'a str, out: &mut RawSubnets<'a>) -> Option<()> {
    let mut s = Scanner { rest: line };
    s.ws();
    let key = s.string()?;
    s.ws();
    s.eat('=')?;
    s.ws();
    s.eat('[')?;
    let start = out.pools.len();
    s.ws();
    if s.eat(']').is_none() {
        loop {
            out.pools.push(Cow::Borrowed(s.string()?));
            s.ws();
            if s.eat(']').is_some() {
                break;
            }
            s.eat(',')?;
            s.ws();
            if s.eat(']').is_some() {
                break;
            }
        }
    }
    s.ws();
    if !(s.rest.is_empty() || s.rest.starts_with('#')) {
        out.pools.truncate(start);
        return None;
    }
    out.entries
        .push((Cow::Borrowed(key), start as u32, out.pools.len() as u32));
    Some(())
}

struct Scanner<'a> {
    rest: &'a str,
}

impl<'a> Scanner<'a> {
    fn ws(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t', '\r', '\n']);
    }

    fn eat(&mut self, c: char) -> Option<()> {
        self.rest = self.rest.strip_prefix(c)?;
        Some(())
    }

    /// A basic string without escapes or control characters.
    fn string(&mut self) -> Option<&'a str> {
        let body = self.rest.strip_prefix('"')?;
        let end = body.find('"')?;
        let s = &body[..end];
        if s.bytes().any(|b| b == b'\\' || b < 0x20 || b == 0x7f) {
            return None;
        }
        self.rest = &body[end + 1..];
        Some(s)
    }
}

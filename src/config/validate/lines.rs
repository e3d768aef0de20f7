//! lines: the line of a key path (`pools.eu.endpoints[1].weight`,
//! `dnssec."example.test".ksk`) in the config text, from the TOML parser's
//! spans, for the problems validation finds after deserializing (which
//! knows keys, not positions). Only run when there are problems to report.

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// Fills in the line of every error that has a key but no line: the line
/// of the value the key names, or of the nearest enclosing one found.
pub(crate) fn fill<'e>(text: &str, errors: impl IntoIterator<Item = &'e mut super::ConfigError>) {
    let mut todo: Vec<&mut super::ConfigError> = errors
        .into_iter()
        .filter(|e| e.line.is_none() && !e.key.is_empty())
        .collect();
    if todo.is_empty() {
        return;
    }
    let Ok(root) = DeTable::parse(text) else {
        return;
    };
    for e in &mut todo {
        e.line = find(root.get_ref(), &e.key).map(|at| line_at(text, at));
    }
}

fn line_at(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

/// The byte offset of what `path` names, as deep as it resolves.
fn find(root: &DeTable<'_>, path: &str) -> Option<usize> {
    let mut table = root;
    let mut rest = path;
    let mut found: Option<usize> = None;
    loop {
        // The longest key of this table the path goes on with (keys may
        // hold dots: `subnets."10.0.0.0/8"`, `dnssec."example.test"`).
        let quoted = rest.strip_prefix('"').and_then(|r| r.split_once('"'));
        let next = match quoted {
            Some((key, after)) => table.get(key).map(|v| (v, after)),
            None => table
                .iter()
                .filter(|(k, _)| {
                    let k: &str = k.get_ref();
                    rest.strip_prefix(k)
                        .is_some_and(|a| a.is_empty() || a.starts_with(['.', '[']))
                })
                .max_by_key(|(k, _)| k.get_ref().len())
                .map(|(k, v)| (v, &rest[k.get_ref().len()..])),
        };
        let Some((value, after)) = next else {
            return found;
        };
        let (value, after) = index(value, after);
        found = Some(value.span().start);
        rest = after.strip_prefix('.').unwrap_or(after);
        match value.get_ref() {
            DeValue::Table(t) if !rest.is_empty() => table = t,
            _ => return found,
        }
        if rest.is_empty() {
            return found;
        }
    }
}

/// Follows `[N]` indexes into arrays.
fn index<'a, 'i>(
    mut value: &'a Spanned<DeValue<'i>>,
    mut rest: &'a str,
) -> (&'a Spanned<DeValue<'i>>, &'a str) {
    while let Some(r) = rest.strip_prefix('[') {
        let Some((n, after)) = r.split_once(']') else {
            break;
        };
        let (Ok(n), DeValue::Array(items)) = (n.parse::<usize>(), value.get_ref()) else {
            break;
        };
        let Some(item) = items.get(n) else { break };
        value = item;
        rest = after;
    }
    (value, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[server]
dns_listen = [\"127.0.0.1:53\"]

[pools.eu]
endpoints = [
  { address = \"192.0.2.1\" },
  { address = \"192.0.2.2\", weight = 0 },
]

[[balance]]
name = \"a.example.test\"

[[balance]]
name = \"b.example.test\"
subnets = { \"10.0.0.1/8\" = [\"eu\"] }

[dnssec.\"example.test\"]
ksk = \"k.pem\"
";

    fn line(path: &str) -> Option<usize> {
        let root = DeTable::parse(TEXT).unwrap();
        find(root.get_ref(), path).map(|at| line_at(TEXT, at))
    }

    #[test]
    fn key_paths_resolve_to_their_lines() {
        assert_eq!(line("server.dns_listen"), Some(2));
        assert_eq!(line("server.dns_listen[0]"), Some(2));
        assert_eq!(line("pools.eu.endpoints[1].weight"), Some(7));
        assert_eq!(line("pools.eu.endpoints[1]"), Some(7));
        assert_eq!(line("balance[1].name"), Some(14));
        assert_eq!(line("balance[1].subnets.10.0.0.1/8"), Some(15));
        assert_eq!(line("dnssec.\"example.test\".ksk"), Some(18));
        // A key that is not there: the nearest enclosing value.
        assert_eq!(line("pools.eu.monitor"), Some(4));
        assert_eq!(line("nothing.here"), None);
    }
}

//! recover: every key-level problem of a config in one pass, for the error
//! path of deserializing. serde stops at the first unknown key or wrong
//! type; here each one is recorded and its `key = value` taken out of the
//! parsed document, which is then deserialized again, until it goes through
//! (validation then runs on what is left, so its problems are reported too)
//! or a problem remains that removing a key cannot get past (a required key
//! missing, a bad array item). A syntax error stops the parser itself: that
//! one is reported alone, with its line and column.

use serde_path_to_error::Segment;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::super::ConfigError;
use super::super::raw::RawConfig;
use std::path::Path;

/// Problems reported for one file at most (each costs a deserialization).
const MAX_PROBLEMS: usize = 100;

/// What deserializing with recovery found.
pub(super) struct Recovered<'a> {
    /// The config without the keys taken out; None when a problem could
    /// not be got past.
    pub raw: Option<RawConfig<'a>>,
    pub errors: Vec<ConfigError>,
    /// Key paths of values taken out for their type or value: semantic
    /// problems under them are the removal's, not the operator's.
    pub removed: Vec<String>,
}

/// Deserializes `text` (known to fail), recording every problem.
pub(super) fn deserialize<'a>(text: &'a str, file: &Path) -> Recovered<'a> {
    let mut out = problems(text, file);
    // In the order of the file (serde meets keys in its own order).
    out.errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
    out
}

fn problems<'a>(text: &'a str, file: &Path) -> Recovered<'a> {
    let mut out = Recovered {
        raw: None,
        errors: Vec::new(),
        removed: Vec::new(),
    };
    let mut root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(e) => {
            out.errors.push(syntax_error(file, text, &e));
            return out;
        }
    };
    while out.errors.len() < MAX_PROBLEMS {
        let de = toml::Deserializer::from(root.clone());
        let e = match serde_path_to_error::deserialize::<_, RawConfig<'a>>(de) {
            Ok(raw) => {
                out.raw = Some(raw);
                return out;
            }
            Err(e) => e,
        };
        let segments: Vec<Segment> = e.path().iter().cloned().collect();
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = inner.message().trim().to_string();
        let line = inner.span().map(|s| line_at(text, s.start));
        if let Some(field) = quoted(&message, "unknown field `") {
            // The path ends with the unknown key (or, from other
            // deserializers, at its table).
            let (table, key) = match segments.split_last() {
                Some((Segment::Map { key }, parent)) if key == field => (parent, path.clone()),
                _ => (&segments[..], join(&path, field)),
            };
            let expected = message
                .split_once(", expected ")
                .map(|(_, e)| format!(", expected {e}"))
                .unwrap_or_default();
            out.errors.push(
                ConfigError::new(file, key, format!("unknown key `{field}`{expected}"))
                    .at_line(line),
            );
            if !remove(root.get_mut(), table, field) {
                return out;
            }
            continue;
        }
        if let Some(field) = quoted(&message, "missing field `") {
            // A key taken out here was required: its own error says enough.
            if !out.removed.contains(&join(&path, field)) {
                out.errors
                    .push(ConfigError::new(file, key_of(&path), message).at_line(line));
            }
            return out;
        }
        out.errors
            .push(ConfigError::new(file, key_of(&path), message).at_line(line));
        let Some((Segment::Map { key: last }, parent)) = segments.split_last() else {
            return out;
        };
        if !remove(root.get_mut(), parent, last) {
            return out;
        }
        out.removed.push(path);
    }
    out
}

/// A TOML syntax error: its line and column, and the parser's message.
pub(super) fn syntax_error(file: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let mut err = ConfigError::file(
        file,
        format!(
            "TOML syntax: {} (parsing stops at the first syntax error: \
             other problems show once it is fixed)",
            e.message().trim()
        ),
    );
    if let Some(span) = e.span() {
        let at = span.start.min(text.len());
        let before = &text[..at];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        err = err.at_line(Some(before.matches('\n').count() + 1));
        err.column = Some(text[line_start..at].chars().count() + 1);
    }
    err
}

fn line_at(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

/// The text between `prefix` and the next backquote.
fn quoted<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split_once('`').map(|(name, _)| name)
}

fn key_of(path: &str) -> String {
    if path == "." {
        String::new()
    } else {
        path.to_string()
    }
}

fn join(path: &str, key: &str) -> String {
    if path == "." {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Takes `key` out of the table `segments` lead to; false when they lead
/// nowhere or the key is not there.
fn remove(root: &mut DeTable<'_>, segments: &[Segment], key: &str) -> bool {
    let mut table = root;
    let mut rest = segments;
    while let Some((first, tail)) = rest.split_first() {
        let Segment::Map { key: name } = first else {
            return false;
        };
        let Some(mut value) = table.get_mut(name.as_str()) else {
            return false;
        };
        let mut tail = tail;
        while let Some((Segment::Seq { index }, t)) = tail.split_first() {
            let Some(item) = array_item(value, *index) else {
                return false;
            };
            value = item;
            tail = t;
        }
        let DeValue::Table(t) = value.get_mut() else {
            return false;
        };
        table = t;
        rest = tail;
    }
    table.remove(key).is_some()
}

fn array_item<'v, 'i>(
    value: &'v mut Spanned<DeValue<'i>>,
    index: usize,
) -> Option<&'v mut Spanned<DeValue<'i>>> {
    match value.get_mut() {
        DeValue::Array(items) => items.get_mut(index),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> (bool, Vec<String>) {
        let r = deserialize(text, Path::new("g.toml"));
        (
            r.raw.is_some(),
            r.errors.iter().map(ToString::to_string).collect(),
        )
    }

    #[test]
    fn every_unknown_key_is_reported_and_the_rest_still_reads() {
        let text = "[server]\ndns_listen = [\"127.0.0.1:53\"]\nlisten_dns = 1\n\n[pools.eu]\nendpoints = [{ address = \"192.0.2.1\", wieght = 2 }]\ncolour = \"red\"\n";
        let (ok, errors) = problems(text);
        assert!(ok, "{errors:?}");
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors[0]
                .starts_with("g.toml:3: server.listen_dns: unknown key `listen_dns`, expected")
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("g.toml:6: pools.eu.endpoints[0].wieght: unknown key")),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("g.toml:7: pools.eu.colour: unknown key")),
            "{errors:?}"
        );
    }

    #[test]
    fn a_wrong_type_is_reported_and_taken_out() {
        let text =
            "[server]\ndns_listen = [\"127.0.0.1:53\"]\nudp_workers = \"two\"\nfast_path = 3\n";
        let r = deserialize(text, Path::new("g.toml"));
        assert!(r.raw.is_some());
        assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
        assert_eq!(r.errors[0].line, Some(3));
        assert_eq!(r.errors[1].line, Some(4));
        assert_eq!(r.removed, ["server.fast_path", "server.udp_workers"]);
    }

    #[test]
    fn a_required_key_of_the_wrong_type_stops_without_a_second_error() {
        let text = "[server]\ndns_listen = \"127.0.0.1:53\"\nbogus = 1\n";
        let (ok, errors) = problems(text);
        assert!(!ok);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].starts_with("g.toml:2: server.dns_listen: invalid type"));
        assert!(errors[1].starts_with("g.toml:3: server.bogus: unknown key"));
    }

    #[test]
    fn a_syntax_error_has_line_and_column() {
        let text = "[server]\ndns_listen = [\"127.0.0.1:53\"\n\n[pools.eu]\n";
        let (ok, errors) = problems(text);
        assert!(!ok);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("g.toml:"), "{errors:?}");
        assert!(errors[0].contains("TOML syntax"), "{errors:?}");
        let text = "[server]\ndns_listen = [\"127.0.0.1:53\"]\nport = = 5\n";
        let (_, errors) = problems(text);
        assert!(
            errors[0].starts_with("g.toml:3:8: TOML syntax"),
            "{errors:?}"
        );
    }
}

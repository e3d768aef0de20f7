//! line: finds the line of a zone-file parse error, which hickory's parser
//! does not report, and the line of a record a rule refuses once the file
//! is parsed. Used only on the error path.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hickory_proto::rr::{DNSClass, LowerName, Name, RecordType};
use hickory_proto::serialize::txt::{Parser, parse_ttl};

/// Where the first `rtype` record of `name` is written in the zone file at
/// `path` (or a file it `$INCLUDE`s): the file and line. Reads and rewrites
/// the file again (`bind`), so only for a problem to report.
pub(super) fn locate(
    path: &Path,
    origin: &Name,
    name: &LowerName,
    rtype: RecordType,
) -> Option<(PathBuf, usize)> {
    let text = std::fs::read_to_string(path).ok()?;
    let rw = super::bind::rewrite(&text, path, origin).ok()?;
    let at = find_record(&rw.text, origin, name, rtype)?;
    rw.source(at).map(|(f, l)| (f.to_path_buf(), l))
}

/// The first name with two CNAME records of different targets in text as
/// `bind::rewrite` writes it (hickory's parser keeps the last one only):
/// the name and the 1-based lines of the first and the second. One pass; an
/// owner name is parsed only on CNAME lines.
pub(super) fn second_cname(text: &str, origin: &Name) -> Option<(LowerName, usize, usize)> {
    let mut origins = vec![origin.clone()];
    // The owner token in force and the origin it is relative to.
    let mut owner: Option<(&str, usize)> = None;
    let mut seen: HashMap<LowerName, (usize, LowerName)> = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let mut tokens = line.split_whitespace();
        if line.starts_with('$') {
            if let (Some(d), Some(o)) = (tokens.next(), tokens.next())
                && d.eq_ignore_ascii_case("$ORIGIN")
                && let Ok(o) = Name::parse(o, None)
            {
                origins.push(o);
            }
            continue;
        }
        if !line.starts_with([' ', '\t']) {
            owner = tokens.next().map(|t| (t, origins.len() - 1));
        }
        let mut rtype = None;
        for t in tokens.by_ref().take(3) {
            if parse_ttl(t).is_err() && t.parse::<DNSClass>().is_err() {
                rtype = Some(t);
                break;
            }
        }
        if !rtype.is_some_and(|t| t.eq_ignore_ascii_case("CNAME")) {
            continue;
        }
        let current = origins.last()?;
        let (Some((tok, at)), Some(target)) = (owner, tokens.next()) else {
            continue;
        };
        let resolve = |t: &str, o: &Name| {
            if t == "@" {
                Some(LowerName::new(o))
            } else {
                Name::parse(t, Some(o)).ok().map(|n| LowerName::new(&n))
            }
        };
        let (Some(name), Some(target)) = (resolve(tok, &origins[at]), resolve(target, current))
        else {
            continue;
        };
        match seen.get(&name) {
            Some((first, t)) if *t != target => return Some((name, *first, i + 1)),
            Some(_) => {}
            None => {
                seen.insert(name, (i + 1, target));
            }
        }
    }
    None
}

/// The 1-based line of the first `rtype` record of `name` in text as
/// `bind::rewrite` writes it (one record or `$ORIGIN`/`$TTL` per line, an
/// owner or a blank for the previous one, then TTL and class in any order,
/// then the type).
fn find_record(text: &str, origin: &Name, name: &LowerName, rtype: RecordType) -> Option<usize> {
    let mut current = origin.clone();
    let mut owner: Option<LowerName> = None;
    for (i, line) in text.lines().enumerate() {
        let mut tokens = line.split_whitespace();
        if line.starts_with('$') {
            if let (Some(d), Some(o)) = (tokens.next(), tokens.next())
                && d.eq_ignore_ascii_case("$ORIGIN")
                && let Ok(o) = Name::parse(o, None)
            {
                current = o;
            }
            continue;
        }
        if !line.starts_with([' ', '\t']) {
            let Some(first) = tokens.next() else {
                continue;
            };
            owner = if first == "@" {
                Some(LowerName::new(&current))
            } else {
                Name::parse(first, Some(&current))
                    .ok()
                    .map(|n| LowerName::new(&n))
            };
        }
        let t = tokens
            .take(3)
            .find(|t| parse_ttl(t).is_err() && t.parse::<DNSClass>().is_err());
        let found = t.and_then(|t| t.to_ascii_uppercase().parse::<RecordType>().ok());
        if found == Some(rtype) && owner.as_ref() == Some(name) {
            return Some(i + 1);
        }
    }
    None
}

/// The 1-based line where the first record that fails to parse starts.
///
/// Prefixes of the text that end where no parenthesis is open are complete
/// records, and once a bad record is included every longer prefix fails, so a
/// binary search over those boundaries finds the first bad record.
pub(super) fn first_failing_line(text: &str, path: &Path, origin: &Name) -> Option<usize> {
    let boundaries = record_boundaries(text);
    let parses = |end: usize| {
        Parser::new(&text[..end], Some(path.to_path_buf()), Some(origin.clone()))
            .parse()
            .is_ok()
    };
    // boundaries[i] = (byte offset just after line i+1's end, line number i+1)
    let (mut lo, mut hi) = (0usize, boundaries.len());
    // Invariant: prefix ending at boundaries[lo-1] parses (or lo == 0);
    // the first failing boundary index is in [lo, hi).
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if parses(boundaries[mid].0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let (_, end_line) = *boundaries.get(lo)?;
    // The failing record ends at end_line; it starts after the previous boundary.
    let start_line = if lo == 0 { 1 } else { boundaries[lo - 1].1 + 1 };
    // Point at the first non-blank, non-comment line of that record.
    Some(
        text.lines()
            .enumerate()
            .skip(start_line - 1)
            .take(end_line + 1 - start_line)
            .find(|(_, l)| {
                let t = l.trim();
                !t.is_empty() && !t.starts_with(';')
            })
            .map(|(i, _)| i + 1)
            .unwrap_or(end_line),
    )
}

/// Byte offsets after each line where no parenthesis is open, with the line number.
fn record_boundaries(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let mut in_quote = false;
        let mut escaped = false;
        for c in line.chars() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_quote = !in_quote,
                ';' if !in_quote => break,
                '(' if !in_quote => depth += 1,
                ')' if !in_quote => depth -= 1,
                _ => {}
            }
        }
        offset += line.len();
        if depth <= 0 {
            depth = 0;
            out.push((offset, i + 1));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn finds_a_record_by_owner_and_type() {
        let text = "$ORIGIN example.test.\n$TTL 300\n@ IN SOA ns1 host 1 2 3 4 5\nwww 60 IN A 192.0.2.1\n\tIN AAAA ::1\n$ORIGIN sub.example.test.\nx CNAME www.example.test.\n";
        let origin = Name::from_str("example.test.").unwrap();
        let at = |n: &str, t| find_record(text, &origin, &LowerName::from_str(n).unwrap(), t);
        assert_eq!(at("example.test.", RecordType::SOA), Some(3));
        assert_eq!(at("WWW.example.test.", RecordType::A), Some(4));
        assert_eq!(at("www.example.test.", RecordType::AAAA), Some(5));
        assert_eq!(at("x.sub.example.test.", RecordType::CNAME), Some(7));
        assert_eq!(at("x.example.test.", RecordType::CNAME), None);
    }

    #[test]
    fn finds_a_second_cname_with_another_target() {
        let origin = Name::from_str("example.test.").unwrap();
        let text = "$TTL 300\na CNAME b\nb A 192.0.2.1\na IN CNAME b.example.test.\n\t60 CNAME c\n";
        let (name, first, second) = second_cname(text, &origin).expect("two targets");
        assert_eq!(name, LowerName::from_str("a.example.test.").unwrap());
        assert_eq!(
            (first, second),
            (2, 5),
            "the same target again is no second CNAME"
        );
        assert_eq!(second_cname("a CNAME b\nc CNAME b\n", &origin), None);
    }

    #[test]
    fn names_the_bad_line_after_a_multiline_soa() {
        let text = "$TTL 300\n@ IN SOA ns1 host (\n 1 ; serial\n 3600 600 86400 60 )\n@ IN NS ns1\nns1 IN A 192.0.2.1\nbad IN A 999.1.2.3\nok IN A 192.0.2.2\n";
        let origin = Name::from_str("example.test.").unwrap();
        assert_eq!(first_failing_line(text, Path::new("z"), &origin), Some(7));
    }

    #[test]
    fn names_a_bad_line_inside_parentheses_by_its_record_start() {
        let text = "$TTL 300\n@ IN SOA ns1 host (\n 1 2 3\n x 5 )\n";
        let origin = Name::from_str("example.test.").unwrap();
        assert_eq!(first_failing_line(text, Path::new("z"), &origin), Some(2));
    }
}

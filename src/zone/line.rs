//! line: finds the line of a zone-file parse error, which hickory's parser
//! does not report. Used only on the error path.

use std::path::Path;

use hickory_proto::rr::Name;
use hickory_proto::serialize::txt::Parser;

/// The 1-based line where the first record that fails to parse starts.
///
/// Prefixes of the text that end where no parenthesis is open are complete
/// records, and once a bad record is included every longer prefix fails, so a
/// binary search over those boundaries finds the first bad record.
pub fn first_failing_line(text: &str, path: &Path, origin: &Name) -> Option<usize> {
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

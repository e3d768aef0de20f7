//! The links of README.md and the guide: every relative link names a file
//! that exists and, with `#anchor`, a heading of that page (mdBook's ids);
//! every page is listed in SUMMARY.md.

use std::path::Path;

use super::{documentation, repo};

/// mdBook's id for a heading: lower case, blanks to `-`, only letters,
/// digits, `-` and `_` kept (inline code's text included).
fn heading_id(heading: &str) -> String {
    heading
        .chars()
        .filter_map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                Some(c.to_ascii_lowercase())
            } else if c.is_whitespace() {
                Some('-')
            } else {
                None
            }
        })
        .collect()
}

/// The ids of a page's headings (outside code blocks).
fn heading_ids(text: &str) -> Vec<String> {
    let mut fence = false;
    let mut ids = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fence = !fence;
        } else if !fence && line.starts_with('#') {
            ids.push(heading_id(line.trim_start_matches('#').trim()));
        }
    }
    ids
}

/// Every relative link of README.md and the guide names a file that exists
/// and, with `#anchor`, a heading of that page; every page is in SUMMARY.md.
#[test]
fn every_link_in_the_documentation_resolves() {
    assert_eq!(heading_id("`[backends.NAME]`"), "backendsname");
    assert_eq!(
        heading_id("History: events and sparklines"),
        "history-events-and-sparklines"
    );
    let docs = documentation();
    let summary = std::fs::read_to_string(repo().join("docs/src/SUMMARY.md")).expect("SUMMARY.md");
    let mut problems = Vec::new();
    let mut checked = 0;
    for (file, text) in &docs {
        let page = Path::new(file);
        let name = page
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if file.starts_with("docs/src/")
            && name != "SUMMARY.md"
            && !summary.contains(&format!("({name})"))
        {
            problems.push(format!("{file} is not in SUMMARY.md"));
        }
        let mut fence = false;
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                fence = !fence;
            }
            if fence {
                continue;
            }
            for (i, _) in line.match_indices("](") {
                let rest = &line[i + 2..];
                let Some(end) = rest.find(')') else { continue };
                let target = &rest[..end];
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let (path, anchor) = match target.split_once('#') {
                    Some((p, a)) => (p, Some(a)),
                    None => (target, None),
                };
                let linked = if path.is_empty() {
                    page.to_path_buf()
                } else {
                    page.parent().unwrap_or(Path::new("")).join(path)
                };
                let Ok(linked_text) = std::fs::read(repo().join(&linked)) else {
                    problems.push(format!("{file}:{}: {target}: no such file", n + 1));
                    continue;
                };
                if let Some(anchor) = anchor {
                    let ids = heading_ids(&String::from_utf8_lossy(&linked_text));
                    if !ids.iter().any(|id| id == anchor) {
                        problems.push(format!(
                            "{file}:{}: {target}: no heading #{anchor} (has {ids:?})",
                            n + 1
                        ));
                    }
                }
            }
        }
    }
    assert!(checked >= 20, "only {checked} links checked");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

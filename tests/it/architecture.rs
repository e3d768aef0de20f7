//! The module graph: `src/lib.rs` states a direction (`cli → app → shells →
//! state → core → config`); this test reads `src/**/*.rs`, collects which
//! top-level module names which (`crate::x`, `super::…` that climbs out of a
//! module, `use crate::{a, b}`), and fails on a cycle, printing it with the
//! files that make each edge. The same check runs inside `proxy` over its
//! files, and a third test holds every edge to the layers `lib.rs` states
//! (`LAYERS`). Test code (`#[cfg(test)]` items and the files they declare)
//! does not count: a test may reach anywhere.
//!
//! Edges that close a cycle today are listed in `ALLOWED` with why they are
//! still there; an entry that no longer exists fails the test too, so the
//! list only shrinks.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

/// (from, to, why): top-level edges that close a cycle and are not broken yet.
const ALLOWED: &[(&str, &str, &str)] = &[];

/// (from, to, why): edges between the files of `src/proxy` that close a cycle.
const PROXY_ALLOWED: &[(&str, &str, &str)] = &[];

#[test]
fn top_level_modules_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let refs = references(&src);
    let mut edges: Edges = BTreeMap::new();
    for r in &refs {
        if let (Some(from), Some(to)) = (r.from.first(), r.to.first())
            && from != to
            && is_top_level(&src, to)
        {
            edges
                .entry((from.clone(), to.clone()))
                .or_default()
                .insert(r.at.clone());
        }
    }
    assert!(
        edges.len() > 40,
        "the scan found only {} edges: is it reading src/?",
        edges.len()
    );
    check(&edges, ALLOWED, "src");
}

/// The direction `src/lib.rs` states, bottom first: a module may name
/// modules of its own layer or below, never above. (Edges inside a layer are
/// held by the cycle test.) A new top-level module must be placed here.
const LAYERS: &[&[&str]] = &[
    // Leaves: they name no other module of the crate.
    &["config", "metrics", "wallclock"],
    // The pure core.
    &["geo", "health", "balance"],
    &["steer"],
    // What the snapshot is made of, the snapshot, and what reads it whole.
    &["zone", "dnssec", "events"],
    &["state"],
    &["explain"],
    // The IO shells.
    &[
        "dns", "probe", "resolve", "proxy", "cluster", "control", "admin", "notify",
    ],
    &["app"],
    &["cli"],
];

#[test]
fn modules_name_only_their_layer_or_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let layer = |m: &str| LAYERS.iter().position(|l| l.contains(&m));
    let mut wrong = Vec::new();
    for r in references(&src) {
        let (Some(from), Some(to)) = (r.from.first(), r.to.first()) else {
            continue;
        };
        if from == to || !is_top_level(&src, to) {
            continue;
        }
        match (layer(from), layer(to)) {
            (Some(a), Some(b)) if b <= a => {}
            (Some(_), Some(_)) => wrong.push(format!("{from} → {to} at {}", r.at)),
            _ => wrong.push(format!(
                "{from} or {to} is in no layer of LAYERS (tests/it/architecture.rs): place it"
            )),
        }
    }
    wrong.sort();
    wrong.dedup();
    assert!(
        wrong.is_empty(),
        "edges that point up (move the item down, or the module up):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn proxy_files_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let refs = references(&src);
    let mut edges: Edges = BTreeMap::new();
    for r in &refs {
        // Between the children of `proxy` (files or folders); `proxy/mod.rs`
        // is their parent, not one of them.
        if r.from.len() >= 2
            && r.to.len() >= 2
            && r.from[0] == "proxy"
            && r.to[0] == "proxy"
            && r.from[1] != r.to[1]
            && is_top_level(&src.join("proxy"), &r.to[1])
        {
            edges
                .entry((r.from[1].clone(), r.to[1].clone()))
                .or_default()
                .insert(r.at.clone());
        }
    }
    assert!(
        edges.contains_key(&("service".to_string(), "headers".to_string())),
        "the scan missed service → headers: {:?}",
        edges.keys().collect::<Vec<_>>()
    );
    check(&edges, PROXY_ALLOWED, "src/proxy");
}

/// The scanner itself: paths in groups, `super` chains, strings, comments
/// and test code.
#[test]
fn the_scanner_reads_paths_and_skips_test_code() {
    let text = r##"
        //! [`crate::doc_link`] is not an edge
        use crate::{a::{self, X}, b::Y};
        use super::super::c::Z;
        use super::sibling;
        pub(crate) fn f() -> &'static str { let _ = 'x'; "crate::in_a_string" }
        fn g() { let _ = r#"crate::raw"#; crate::d::call(); self::child::h(); }
        #[cfg(test)]
        #[allow(dead_code)]
        fn only_in_tests() { crate::e::x(); }
        #[cfg(test)]
        mod tests { use crate::f; }
        #[cfg(test)]
        mod more_tests;
        macro_rules! m { () => { $crate::g::h() } }
    "##;
    let mut test_files = Vec::new();
    let found = paths_in(
        &tokens(text),
        &names(&["m", "sub", "file"]),
        &mut test_files,
    );
    let found: BTreeSet<String> = found.into_iter().map(|(p, _)| p.join("::")).collect();
    let want: BTreeSet<String> = [
        "a",
        "a::X",
        "b::Y",
        "m::c::Z",
        "m::sub::sibling",
        "d::call",
        "m::sub::file::child::h",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(found, want);
    assert_eq!(test_files, ["more_tests"]);
}

type Edges = BTreeMap<(String, String), BTreeSet<String>>;

/// Fails on a cycle among `edges` once the allowed ones are set aside, and on
/// an allowed edge that is gone.
fn check(edges: &Edges, allowed: &[(&str, &str, &str)], scope: &str) {
    let stale: Vec<_> = allowed
        .iter()
        .filter(|(a, b, _)| !edges.contains_key(&(a.to_string(), b.to_string())))
        .map(|(a, b, _)| format!("{a} → {b}"))
        .collect();
    assert!(
        stale.is_empty(),
        "{scope}: allowed edges that no longer exist (remove them from the list): {stale:?}"
    );
    let allowed: HashSet<(String, String)> = allowed
        .iter()
        .map(|(a, b, _)| (a.to_string(), b.to_string()))
        .collect();
    let graph: BTreeMap<&str, Vec<&str>> =
        edges
            .keys()
            .filter(|e| !allowed.contains(*e))
            .fold(BTreeMap::new(), |mut g, (a, b)| {
                g.entry(a.as_str())
                    .or_insert_with(Vec::new)
                    .push(b.as_str());
                g
            });
    if let Some(cycle) = find_cycle(&graph) {
        let mut report = format!("{scope}: a module cycle: {}\n", cycle.join(" → "));
        for pair in cycle.windows(2) {
            let files = &edges[&(pair[0].to_string(), pair[1].to_string())];
            report += &format!("  {} → {}: {:?}\n", pair[0], pair[1], files);
        }
        panic!(
            "{report}Break one of these edges (move the item to the lower module), \
             or, if it cannot be broken now, add it to the allowed list with why."
        );
    }
}

/// One cycle, as a path that starts and ends on the same node.
fn find_cycle<'a>(graph: &BTreeMap<&'a str, Vec<&'a str>>) -> Option<Vec<&'a str>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit<'a>(
        node: &'a str,
        graph: &BTreeMap<&'a str, Vec<&'a str>>,
        marks: &mut BTreeMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<&'a str>> {
        marks.insert(node, Mark::Open);
        stack.push(node);
        for &next in graph.get(node).map(Vec::as_slice).unwrap_or(&[]) {
            match marks.get(next) {
                Some(Mark::Open) => {
                    let start = stack.iter().position(|n| *n == next).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(next);
                    return Some(cycle);
                }
                Some(Mark::Done) => {}
                None => {
                    if let Some(c) = visit(next, graph, marks, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        marks.insert(node, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for &node in graph.keys() {
        if !marks.contains_key(node)
            && let Some(c) = visit(node, graph, &mut marks, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

/// `dir/name.rs` or `dir/name/mod.rs` exists: `name` is a module of `dir`.
fn is_top_level(src: &Path, name: &str) -> bool {
    src.join(format!("{name}.rs")).is_file() || src.join(name).join("mod.rs").is_file()
}

fn names(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// One reference: the module path of the file that makes it, the absolute
/// path it names, and `file:line`.
struct Reference {
    from: Vec<String>,
    to: Vec<String>,
    at: String,
}

/// Every path reference of the crate's non-test code.
fn references(src: &Path) -> Vec<Reference> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut excluded: Vec<PathBuf> = Vec::new();
    let mut scanned = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(src).unwrap_or(file);
        if rel == Path::new("lib.rs") || rel == Path::new("main.rs") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(file) else {
            panic!("cannot read {}", file.display());
        };
        let module = module_path(rel);
        let mut test_mods = Vec::new();
        let found = paths_in(&tokens(&text), &module, &mut test_mods);
        // `#[cfg(test)] mod x;` in a/mod.rs or a.rs: a/x.rs and a/x/.
        let dir = if rel.file_name().is_some_and(|n| n == "mod.rs") {
            rel.parent().map(Path::to_path_buf).unwrap_or_default()
        } else {
            rel.with_extension("")
        };
        for m in test_mods {
            excluded.push(dir.join(format!("{m}.rs")));
            excluded.push(dir.join(m));
        }
        scanned.push((rel.to_path_buf(), module, found));
    }
    let mut out = Vec::new();
    for (rel, module, found) in scanned {
        if excluded.iter().any(|e| rel.starts_with(e)) {
            continue;
        }
        for (to, line) in found {
            out.push(Reference {
                from: module.clone(),
                to,
                at: format!("src/{}:{line}", rel.display()),
            });
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        panic!("cannot list {}", dir.display());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `proxy/h1/mod.rs` → [proxy, h1]; `proxy/http.rs` → [proxy, http].
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .with_extension("")
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

// === the scanner ===

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    Path,
    Punct(char),
}

/// Rust source → tokens with their line, without comments, strings and
/// character literals (whose contents are not code).
fn tokens(text: &str) -> Vec<(Tok, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(chars[i] == '\n');
                    i += 1;
                }
            }
        } else if c == '"' {
            i = skip_string(&chars, i + 1, &mut line);
        } else if c == '\'' {
            if at(i + 1) == '\\' {
                // '\n', '\'', '\u{..}'
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                // A lifetime: the quote, then its name as an identifier.
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let raw = matches!(word.as_str(), "r" | "br" | "cr");
            if raw && (at(i) == '"' || (at(i) == '#' && matches!(at(i + 1), '"' | '#'))) {
                let mut hashes = 0;
                while at(i) == '#' {
                    hashes += 1;
                    i += 1;
                }
                i += 1; // the opening quote
                loop {
                    if i >= chars.len() {
                        break;
                    }
                    if chars[i] == '"' && (1..=hashes).all(|k| at(i + k) == '#') {
                        i += 1 + hashes;
                        break;
                    }
                    line += usize::from(chars[i] == '\n');
                    i += 1;
                }
            } else if matches!(word.as_str(), "b" | "c") && at(i) == '"' {
                i = skip_string(&chars, i + 1, &mut line);
            } else if word == "b" && at(i) == '\'' {
                i += 1;
                if at(i) == '\\' {
                    i += 1;
                }
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else {
                out.push((Tok::Ident(word), line));
            }
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
        } else if c == ':' && at(i + 1) == ':' {
            out.push((Tok::Path, line));
            i += 2;
        } else {
            out.push((Tok::Punct(c), line));
            i += 1;
        }
    }
    out
}

/// Past the closing quote of a string whose body starts at `i`.
fn skip_string(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            c => {
                *line += usize::from(c == '\n');
                i += 1;
            }
        }
    }
    i
}

fn ident(t: Option<&(Tok, usize)>) -> Option<&str> {
    match t {
        Some((Tok::Ident(s), _)) => Some(s),
        _ => None,
    }
}

fn punct(t: Option<&(Tok, usize)>, c: char) -> bool {
    matches!(t, Some((Tok::Punct(p), _)) if *p == c)
}

/// The absolute module paths named in `toks` (by a file at `module`), with
/// their lines; the names of `#[cfg(test)] mod x;` files go to `test_mods`.
fn paths_in(
    toks: &[(Tok, usize)],
    module: &[String],
    test_mods: &mut Vec<String>,
) -> Vec<(Vec<String>, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        if is_cfg_test(toks, i) {
            i = skip_item(toks, i + 7, test_mods);
            continue;
        }
        let word = ident(toks.get(i));
        let starts = matches!(word, Some("crate" | "super" | "self"))
            && toks.get(i + 1).map(|t| &t.0) == Some(&Tok::Path)
            && !punct(i.checked_sub(1).and_then(|p| toks.get(p)), '$')
            && !matches!(
                i.checked_sub(1).and_then(|p| toks.get(p)),
                Some((Tok::Path, _))
            );
        if !starts {
            i += 1;
            continue;
        }
        let line = toks[i].1;
        // The leading `crate`, `self` or `super::super::…` resolved.
        let mut base: Vec<String> = match word {
            Some("crate") => Vec::new(),
            _ => module.to_vec(),
        };
        let mut j = i;
        loop {
            match ident(toks.get(j)) {
                Some("super") => {
                    base.pop();
                }
                Some("crate") if j == i => {}
                Some("self") if j == i => {}
                _ => break,
            }
            if toks.get(j + 1).map(|t| &t.0) != Some(&Tok::Path) {
                break;
            }
            j += 2;
        }
        let (trees, next) = path_tree(toks, j);
        for tail in trees {
            let mut full = base.clone();
            full.extend(tail);
            out.push((full, line));
        }
        i = next.max(i + 1);
    }
    out
}

/// `#[cfg(test)]` at `i`.
fn is_cfg_test(toks: &[(Tok, usize)], i: usize) -> bool {
    punct(toks.get(i), '#')
        && punct(toks.get(i + 1), '[')
        && ident(toks.get(i + 2)) == Some("cfg")
        && punct(toks.get(i + 3), '(')
        && ident(toks.get(i + 4)) == Some("test")
        && punct(toks.get(i + 5), ')')
        && punct(toks.get(i + 6), ']')
}

/// Skips the item after a `#[cfg(test)]` (its other attributes, then up to
/// its `;` or its closing brace); `mod x;` is remembered in `test_mods`.
fn skip_item(toks: &[(Tok, usize)], mut i: usize, test_mods: &mut Vec<String>) -> usize {
    while punct(toks.get(i), '#') && punct(toks.get(i + 1), '[') {
        let mut depth = 0;
        i += 1;
        while i < toks.len() {
            if punct(toks.get(i), '[') {
                depth += 1;
            } else if punct(toks.get(i), ']') {
                depth -= 1;
                if depth == 0 {
                    i += 1;
                    break;
                }
            }
            i += 1;
        }
    }
    let mut k = i;
    if ident(toks.get(k)) == Some("pub") {
        k += 1;
        if punct(toks.get(k), '(') {
            while k < toks.len() && !punct(toks.get(k), ')') {
                k += 1;
            }
            k += 1;
        }
    }
    if ident(toks.get(k)) == Some("mod")
        && let Some(name) = ident(toks.get(k + 1))
        && punct(toks.get(k + 2), ';')
    {
        test_mods.push(name.to_string());
        return k + 3;
    }
    let mut depth = 0i32;
    while i < toks.len() {
        match &toks[i].0 {
            Tok::Punct('(' | '[') => depth += 1,
            Tok::Punct(')' | ']') => depth -= 1,
            Tok::Punct('{') => depth += 1,
            Tok::Punct('}') => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            Tok::Punct(';') if depth == 0 => return i + 1,
            _ => {}
        }
        i += 1;
    }
    i
}

/// The paths from `i` on: `a::b::c`, `a::{b, c::{d, self}}`, `*`; returns
/// each as its segments (`self` in a group adds nothing) and where it ends.
fn path_tree(toks: &[(Tok, usize)], mut i: usize) -> (Vec<Vec<String>>, usize) {
    let mut prefix = Vec::new();
    loop {
        match toks.get(i).map(|t| &t.0) {
            Some(Tok::Ident(s)) => {
                if s != "self" {
                    prefix.push(s.clone());
                }
                i += 1;
                if toks.get(i).map(|t| &t.0) == Some(&Tok::Path) {
                    i += 1;
                    continue;
                }
                return (vec![prefix], i);
            }
            Some(Tok::Punct('{')) => {
                i += 1;
                let mut all = Vec::new();
                while i < toks.len() && !punct(toks.get(i), '}') {
                    if punct(toks.get(i), ',') {
                        i += 1;
                        continue;
                    }
                    let (trees, next) = path_tree(toks, i);
                    for t in trees {
                        let mut p = prefix.clone();
                        p.extend(t);
                        all.push(p);
                    }
                    // `as name` and anything else up to the next item.
                    i = next.max(i + 1);
                    while i < toks.len() && !punct(toks.get(i), ',') && !punct(toks.get(i), '}') {
                        i += 1;
                    }
                }
                return (all, i + 1);
            }
            _ => return (vec![prefix], i),
        }
    }
}

//! What a console block says: [`parse`] reads its `$ command` lines and the
//! output under each, [`check_output`] compares what a command printed with
//! it (the masks `[..]` and `...`, blanks, comments, `[exit: N]`), and
//! [`replace_port`] maps documented ports to bound ones.

use std::fmt::Write as _;

/// One `$ command` of a console block and the output written under it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Example {
    /// Where the `$` line is: `docs/src/dnssec.md:42`.
    pub(super) at: String,
    pub(super) command: String,
    pub(super) expected: Vec<String>,
    pub(super) exit: i32,
}

/// The examples of every console block in `text`, in order.
pub(super) fn parse(file: &str, text: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((_, line)) = lines.next() {
        let trimmed = line.trim_start();
        let Some(info) = trimmed.strip_prefix("```") else {
            continue;
        };
        let indent = line.len() - trimmed.len();
        let console = info.trim() == "console";
        // The block's lines, without the fence's indentation.
        let mut block: Vec<(usize, String)> = Vec::new();
        for (n, l) in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                break;
            }
            let l = if l.len() >= indent && l[..indent].trim().is_empty() {
                &l[indent..]
            } else {
                l.trim_start()
            };
            block.push((n + 1, l.to_string()));
        }
        if !console {
            continue;
        }
        let mut current: Option<Example> = None;
        let mut continued = false;
        for (n, l) in block {
            if continued {
                if let Some(ex) = current.as_mut() {
                    continued = l.ends_with('\\');
                    ex.command.push('\n');
                    ex.command.push_str(&l);
                }
                continue;
            }
            if let Some(cmd) = l.strip_prefix("$ ") {
                out.extend(current.take());
                continued = cmd.ends_with('\\');
                current = Some(Example {
                    at: format!("{file}:{n}"),
                    command: cmd.to_string(),
                    expected: Vec::new(),
                    exit: 0,
                });
            } else if let Some(ex) = current.as_mut() {
                ex.expected.push(l);
            } else {
                // Output before any command: a block that cannot run.
                out.push(Example {
                    at: format!("{file}:{n}"),
                    command: String::new(),
                    expected: vec![l],
                    exit: 0,
                });
            }
        }
        out.extend(current);
    }
    for ex in &mut out {
        while ex.expected.last().is_some_and(|l| l.trim().is_empty()) {
            ex.expected.pop();
        }
        if let Some(code) = ex
            .expected
            .last()
            .and_then(|l| l.trim().strip_prefix("[exit: "))
            .and_then(|l| l.strip_suffix(']'))
            .and_then(|c| c.parse().ok())
        {
            ex.exit = code;
            ex.expected.pop();
        }
    }
    out
}

/// A line as compared: comment removed, blanks collapsed, ends trimmed.
pub(super) fn normalize(line: &str, comments: bool) -> String {
    let line = if comments {
        match line.find("  # ") {
            Some(i) => &line[..i],
            None => line,
        }
    } else {
        line
    };
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `actual` matches `pattern`, where `[..]` stands for any text.
pub(super) fn line_matches(pattern: &str, actual: &str) -> bool {
    let parts: Vec<&str> = pattern.split("[..]").collect();
    if parts.len() == 1 {
        return pattern == actual;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !actual.starts_with(first) || actual.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &actual[first.len()..];
    if !rest.ends_with(last) {
        return false;
    }
    rest = &rest[..rest.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// Whether the output lines match the expected ones (`...` = any lines).
pub(super) fn lines_match(expected: &[String], actual: &[String]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((e, rest)) if e == "..." => {
            (0..=actual.len()).any(|skip| lines_match(rest, &actual[skip..]))
        }
        Some((e, rest)) => match actual.split_first() {
            Some((a, more)) => line_matches(e, a) && lines_match(rest, more),
            None => false,
        },
    }
}

/// Compares a command's output with the example's; the mismatch, if any.
pub(super) fn check_output(ex: &Example, code: i32, output: &str) -> Result<(), String> {
    let expected: Vec<String> = ex.expected.iter().map(|l| normalize(l, true)).collect();
    let mut actual: Vec<String> = output.lines().map(|l| normalize(l, false)).collect();
    while actual.last().is_some_and(|l| l.is_empty()) {
        actual.pop();
    }
    let mut problems = String::new();
    if code != ex.exit {
        let _ = write!(problems, "exit status {code}, expected {}; ", ex.exit);
    }
    if !lines_match(&expected, &actual) {
        problems.push_str("output differs; ");
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{}: $ {}\n  {}\n  expected:\n{}\n  got:\n{}",
        ex.at,
        ex.command,
        problems.trim_end_matches("; "),
        indent(&ex.expected.join("\n")),
        indent(output.trim_end())
    ))
}

pub(super) fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` with `prefix` + `from` replaced by `prefix` + `to` wherever `from`
/// is a whole number (not followed by another digit: `-p 5353` but not
/// `-p 53530`).
pub(super) fn replace_port(text: &str, prefix: &str, from: &str, to: &str) -> String {
    let needle = format!("{prefix}{from}");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(&needle) {
        let after = &rest[i + needle.len()..];
        out.push_str(&rest[..i]);
        if after.starts_with(|c: char| c.is_ascii_digit()) {
            out.push_str(&needle);
        } else {
            out.push_str(prefix);
            out.push_str(to);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[test]
fn the_parser_reads_commands_outputs_continuations_and_exit_statuses() {
    let page = "text\n\n```console\n$ echo a \\\n  b\na b\n$ false\n[exit: 1]\n```\n\n```toml\n$ not = \"run\"\n```\n\n- a list\n  ```console\n  $ true\n  ```\n";
    let ex = parse("p.md", page);
    assert_eq!(ex.len(), 3, "{ex:?}");
    assert_eq!(ex[0].at, "p.md:4");
    assert_eq!(ex[0].command, "echo a \\\n  b");
    assert_eq!(ex[0].expected, vec!["a b"]);
    assert_eq!((ex[1].command.as_str(), ex[1].exit), ("false", 1));
    assert!(ex[1].expected.is_empty());
    assert_eq!(
        (ex[2].at.as_str(), ex[2].command.as_str()),
        ("p.md:17", "true")
    );
}

#[test]
fn masks_match_what_they_stand_for_and_nothing_else() {
    assert!(line_matches(
        "ttl [..] IN A 192.0.2.2",
        "ttl 29 IN A 192.0.2.2"
    ));
    assert!(line_matches("[..]", ""));
    assert!(line_matches("a[..]b[..]c", "a-x-b-y-c"));
    assert!(!line_matches("a[..]b[..]c", "a-x-c-y-b"));
    assert!(!line_matches("ab[..]ba", "aba"));
    assert!(!line_matches("192.0.2.2", "192.0.2.1"));
    let lines = |s: &str| s.lines().map(str::to_string).collect::<Vec<_>>();
    assert!(lines_match(&lines("a\n...\nd"), &lines("a\nb\nc\nd")));
    assert!(lines_match(&lines("a\n...\nd"), &lines("a\nd")));
    assert!(!lines_match(&lines("a\n...\nd"), &lines("a\nb\nc")));
    assert!(!lines_match(&lines("a\nb"), &lines("a\nb\nc")));
    assert_eq!(normalize("a\t30  IN   A  # a comment", true), "a 30 IN A");
    assert_eq!(normalize("a  # not a comment", false), "a # not a comment");
}

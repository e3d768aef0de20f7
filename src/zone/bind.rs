//! bind: reads a master file the way BIND's `named-checkzone` does and
//! rewrites it as text hickory's zone parser reads to the same records: one
//! record or directive per line, with
//!
//! - `$INCLUDE file [origin]` inlined (the file resolved against the
//!   including file's folder; the origin restored after it, as BIND does);
//! - `$GENERATE range lhs [ttl] [class] type rhs` expanded (hickory has no
//!   `$GENERATE`), with BIND's `$`, `$$`, `\$` and `${offset,width,base}`;
//! - `$ORIGIN` made absolute (a relative one is relative to the current
//!   origin) and `@` in RDATA replaced by the origin (hickory reads `@` only
//!   as an owner);
//! - a zone with no `$TTL` and no TTL on its first record (the SOA) given the
//!   SOA MINIMUM as default TTL, with the warning BIND prints; any other
//!   record without a TTL to inherit is refused, as BIND refuses it;
//! - parentheses joined and comments dropped.
//!
//! Every output line remembers the file and line it came from, so a record
//! hickory then rejects is reported at its place in the operator's file.

use std::path::{Path, PathBuf};

use hickory_proto::rr::{DNSClass, Name, RecordType};
use hickory_proto::serialize::txt::parse_ttl;

use crate::config::{ConfigError, Warning};

/// Nested `$INCLUDE`s deeper than this are refused (a file including itself).
const MAX_INCLUDE_DEPTH: usize = 8;
/// Records one `$GENERATE` may produce.
const MAX_GENERATE: u64 = 65_536;

/// A master file rewritten for hickory's parser.
pub struct Rewritten {
    pub text: String,
    /// For output line `i + 1`: the file (index into `files`) and line it came from.
    pub lines: Vec<(usize, usize)>,
    pub files: Vec<PathBuf>,
    pub warnings: Vec<Warning>,
}

impl Rewritten {
    /// Where output line `line` (1-based) came from.
    pub fn source(&self, line: usize) -> Option<(&Path, usize)> {
        let (f, l) = *self.lines.get(line.checked_sub(1)?)?;
        Some((self.files[f].as_path(), l))
    }
}

/// Rewrites `text` (the file at `path`) for zone `origin`.
pub fn rewrite(text: &str, path: &Path, origin: &Name) -> Result<Rewritten, ConfigError> {
    let mut w = Writer {
        out: Rewritten {
            text: String::with_capacity(text.len() + 64),
            lines: Vec::new(),
            files: vec![path.to_path_buf()],
            warnings: Vec::new(),
        },
        origin: origin.clone(),
        default_ttl: false,
        any_ttl: false,
        warned_1035: false,
    };
    w.file(text, 0, 0)?;
    Ok(w.out)
}

/// One token as written: quotes and escapes kept.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    text: String,
    quoted: bool,
}

/// One record or directive: a line, or several joined by parentheses.
#[derive(Debug)]
struct Entry {
    line: usize,
    /// Started with white space: the previous owner continues.
    blank_owner: bool,
    tokens: Vec<Token>,
}

/// Splits master-file text into entries (RFC 1035 §5.1 syntax).
fn entries(text: &str, file: &Path) -> Result<Vec<Entry>, ConfigError> {
    let err = |line: usize, msg: &str| ConfigError::file(file, msg).at_line(Some(line));
    let mut out = Vec::new();
    let mut cur: Option<Entry> = None;
    let mut tok: Option<Token> = None;
    let mut depth = 0usize;
    let mut depth_line = 0;
    let mut in_quote = false;
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if cur.is_none() {
            cur = Some(Entry {
                line,
                blank_owner: raw.starts_with([' ', '\t']),
                tokens: Vec::new(),
            });
        }
        let Some(entry) = cur.as_mut() else {
            continue;
        };
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if in_quote {
                let t = tok.get_or_insert_with(|| Token {
                    text: String::new(),
                    quoted: true,
                });
                t.text.push(c);
                match c {
                    '\\' => t.text.extend(chars.next()),
                    '"' => in_quote = false,
                    _ => {}
                }
                continue;
            }
            match c {
                ';' => break,
                ' ' | '\t' | '(' | ')' => {
                    entry.tokens.extend(tok.take());
                    if c == '(' {
                        if depth == 0 {
                            depth_line = line;
                        }
                        depth += 1;
                    } else if c == ')' {
                        depth = depth
                            .checked_sub(1)
                            .ok_or_else(|| err(line, "')' without a '(' before it"))?;
                    }
                }
                _ => {
                    let t = tok.get_or_insert_with(|| Token {
                        text: String::new(),
                        quoted: c == '"',
                    });
                    t.text.push(c);
                    if c == '\\' {
                        t.text.extend(chars.next());
                    } else if c == '"' {
                        in_quote = true;
                    }
                }
            }
        }
        if in_quote {
            return Err(err(line, "a quoted string runs past the end of the line"));
        }
        entry.tokens.extend(tok.take());
        if depth == 0
            && let Some(e) = cur.take()
            && !e.tokens.is_empty()
        {
            out.push(e);
        }
    }
    if depth > 0 {
        return Err(err(depth_line, "'(' is never closed"));
    }
    Ok(out)
}

struct Writer {
    out: Rewritten,
    origin: Name,
    /// A `$TTL` (or the SOA MINIMUM standing in for it) is in force.
    default_ttl: bool,
    /// Some record so far had an explicit TTL.
    any_ttl: bool,
    warned_1035: bool,
}

impl Writer {
    fn err(&self, file: usize, line: usize, msg: impl Into<String>) -> ConfigError {
        ConfigError::file(&self.out.files[file], msg).at_line(Some(line))
    }

    fn warn(&mut self, file: usize, line: usize, msg: String) {
        let key = format!("{}:{line}", self.out.files[file].display());
        self.out.warnings.push(Warning::new(key, msg));
    }

    fn emit(&mut self, file: usize, line: usize, text: &str) {
        self.out.text.push_str(text);
        self.out.text.push('\n');
        self.out.lines.push((file, line));
    }

    fn emit_origin(&mut self, file: usize, line: usize) {
        let o = format!("$ORIGIN {}", self.origin);
        self.emit(file, line, &o);
    }

    fn file(&mut self, text: &str, file: usize, depth: usize) -> Result<(), ConfigError> {
        for e in entries(text, &self.out.files[file].clone())? {
            let first = &e.tokens[0];
            if !e.blank_owner && !first.quoted && first.text.starts_with('$') {
                self.directive(&e, file, depth)?;
            } else {
                self.record(&e, file)?;
            }
        }
        Ok(())
    }

    fn directive(&mut self, e: &Entry, file: usize, depth: usize) -> Result<(), ConfigError> {
        let args = &e.tokens[1..];
        let line = e.line;
        match e.tokens[0].text.to_ascii_uppercase().as_str() {
            "$ORIGIN" => {
                let [name] = args else {
                    return Err(self.err(file, line, "$ORIGIN takes one domain name"));
                };
                self.origin = self.name(&name.text, file, line)?;
                self.emit_origin(file, line);
            }
            "$TTL" => {
                let [ttl] = args else {
                    return Err(self.err(file, line, "$TTL takes one TTL"));
                };
                let v = parse_ttl(&ttl.text)
                    .map_err(|_| self.err(file, line, format!("bad $TTL {:?}", ttl.text)))?;
                self.default_ttl = true;
                self.emit(file, line, &format!("$TTL {v}"));
            }
            "$INCLUDE" => {
                let (name, origin) = match args {
                    [f] => (f, None),
                    [f, o] => (f, Some(o)),
                    _ => {
                        return Err(self.err(
                            file,
                            line,
                            "$INCLUDE takes a file name and an optional origin",
                        ));
                    }
                };
                if depth >= MAX_INCLUDE_DEPTH {
                    return Err(self.err(
                        file,
                        line,
                        format!("$INCLUDE nested deeper than {MAX_INCLUDE_DEPTH} files"),
                    ));
                }
                let rel = name.text.trim_matches('"');
                let base = self.out.files[file].parent().unwrap_or(Path::new("."));
                let path = base.join(rel);
                let text = std::fs::read_to_string(&path).map_err(|err| {
                    self.err(
                        file,
                        line,
                        format!("cannot read $INCLUDE {}: {err}", path.display()),
                    )
                })?;
                let saved = self.origin.clone();
                if let Some(o) = origin {
                    self.origin = self.name(&o.text, file, line)?;
                    self.emit_origin(file, line);
                }
                self.out.files.push(path);
                let index = self.out.files.len() - 1;
                self.file(&text, index, depth + 1)?;
                // BIND: the origin in force before the $INCLUDE applies after it.
                self.origin = saved;
                self.emit_origin(file, line);
            }
            "$GENERATE" => self.generate(e, file)?,
            other => {
                return Err(self.err(
                    file,
                    line,
                    format!(
                        "unknown directive {other} ($ORIGIN, $TTL, $INCLUDE and $GENERATE are)"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A domain name relative to the current origin (or `@`), absolute.
    fn name(&self, text: &str, file: usize, line: usize) -> Result<Name, ConfigError> {
        if text == "@" {
            return Ok(self.origin.clone());
        }
        Name::parse(text, Some(&self.origin))
            .map_err(|e| self.err(file, line, format!("bad domain name {text:?}: {e}")))
    }

    /// `[ttl] [class] type` after the owner: (index of the type, explicit TTL?).
    fn fields(tokens: &[Token]) -> (Option<usize>, bool) {
        let mut ttl = false;
        let mut class = false;
        for (i, t) in tokens.iter().enumerate().take(3) {
            if !ttl && parse_ttl(&t.text).is_ok() {
                ttl = true;
            } else if !class && t.text.parse::<DNSClass>().is_ok() {
                class = true;
            } else {
                return (Some(i), ttl);
            }
        }
        (None, ttl)
    }

    fn record(&mut self, e: &Entry, file: usize) -> Result<(), ConfigError> {
        let line = e.line;
        let rest = if e.blank_owner {
            &e.tokens[..]
        } else {
            &e.tokens[1..]
        };
        let (type_at, explicit) = Writer::fields(rest);
        let rtype =
            type_at.and_then(|i| rest[i].text.to_ascii_uppercase().parse::<RecordType>().ok());
        self.ttl_for(explicit, rtype, type_at.map(|i| &rest[i + 1..]), file, line)?;
        let mut text = String::new();
        if e.blank_owner {
            text.push('\t');
        } else {
            text.push_str(&e.tokens[0].text);
        }
        for (i, t) in rest.iter().enumerate() {
            if i > 0 || !e.blank_owner {
                text.push(' ');
            }
            // `@` in RDATA is the origin; hickory reads it only as an owner.
            if type_at.is_some_and(|at| i > at) && !t.quoted && t.text == "@" {
                text.push_str(&self.origin.to_string());
            } else {
                text.push_str(&t.text);
            }
        }
        self.emit(file, line, &text);
        Ok(())
    }

    /// BIND's TTL rules for a record with or without an explicit TTL.
    fn ttl_for(
        &mut self,
        explicit: bool,
        rtype: Option<RecordType>,
        rdata: Option<&[Token]>,
        file: usize,
        line: usize,
    ) -> Result<(), ConfigError> {
        if explicit {
            self.any_ttl = true;
            return Ok(());
        }
        if self.default_ttl {
            return Ok(());
        }
        if self.any_ttl {
            if !self.warned_1035 {
                self.warned_1035 = true;
                self.warn(
                    file,
                    line,
                    "no TTL and no $TTL: using the previous record's TTL (RFC 1035), as BIND does"
                        .into(),
                );
            }
            return Ok(());
        }
        let minimum = rdata
            .and_then(|r| r.get(6))
            .and_then(|t| parse_ttl(&t.text).ok());
        match (rtype, minimum) {
            (Some(RecordType::SOA), Some(min)) => {
                self.warn(
                    file,
                    line,
                    format!("no TTL specified; using SOA MINIMUM ({min}) instead, as BIND does"),
                );
                self.default_ttl = true;
                self.emit(file, line, &format!("$TTL {min}"));
                Ok(())
            }
            (Some(RecordType::SOA), None) => Ok(()), // hickory names the bad SOA
            _ => Err(self.err(
                file,
                line,
                "no TTL specified, no $TTL before this record and no SOA before it to take the MINIMUM from",
            )),
        }
    }

    /// `$GENERATE start-stop[/step] lhs [ttl] [class] type rhs`.
    fn generate(&mut self, e: &Entry, file: usize) -> Result<(), ConfigError> {
        let line = e.line;
        let t = &e.tokens[1..];
        let usage = "$GENERATE needs start-stop[/step] lhs [ttl] [class] type rhs";
        if t.len() < 4 {
            return Err(self.err(file, line, usage));
        }
        let (start, stop, step) = range(&t[0].text)
            .ok_or_else(|| self.err(file, line, format!("bad $GENERATE range {:?}", t[0].text)))?;
        let count = (u64::from(stop) - u64::from(start)) / u64::from(step) + 1;
        if count > MAX_GENERATE {
            return Err(self.err(
                file,
                line,
                format!("$GENERATE would make {count} records; at most {MAX_GENERATE}"),
            ));
        }
        let lhs = &t[1];
        let middle = &t[2..t.len() - 1];
        let rhs = &t[t.len() - 1];
        let (type_at, explicit) = Writer::fields(middle);
        if type_at != Some(middle.len() - 1) {
            return Err(self.err(file, line, usage));
        }
        let rtype = middle[middle.len() - 1]
            .text
            .to_ascii_uppercase()
            .parse::<RecordType>()
            .ok();
        // A quoted rhs holds several RDATA fields (`"10 mail$"` for MX).
        let rhs_text = rhs
            .text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(&rhs.text);
        let fields: Vec<&str> = middle.iter().map(|t| t.text.as_str()).collect();
        let fields = fields.join(" ");
        let mut i = start;
        loop {
            let owner = substitute(&lhs.text, i).map_err(|m| self.err(file, line, m))?;
            let rdata = substitute(rhs_text, i).map_err(|m| self.err(file, line, m))?;
            let rdata_tokens: Vec<Token> = rdata
                .split_whitespace()
                .map(|s| Token {
                    text: s.to_string(),
                    quoted: false,
                })
                .collect();
            self.ttl_for(explicit, rtype, Some(&rdata_tokens), file, line)?;
            let rdata: Vec<String> = rdata_tokens
                .iter()
                .map(|t| {
                    if t.text == "@" {
                        self.origin.to_string()
                    } else {
                        t.text.clone()
                    }
                })
                .collect();
            self.emit(file, line, &format!("{owner} {fields} {}", rdata.join(" ")));
            match i.checked_add(step) {
                Some(next) if next <= stop => i = next,
                _ => break,
            }
        }
        Ok(())
    }
}

/// `start-stop[/step]`, start ≤ stop, step ≥ 1.
fn range(text: &str) -> Option<(u32, u32, u32)> {
    let (span, step) = match text.split_once('/') {
        Some((s, st)) => (s, st.parse().ok()?),
        None => (text, 1),
    };
    let (a, b) = span.split_once('-')?;
    let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
    (a <= b && step >= 1).then_some((a, b, step))
}

/// BIND's `$GENERATE` substitution: `$` is the iterator, `${offset[,width[,base]]}`
/// formats it (base d, o, x, X, or n / N for reversed nibbles), `$$` and
/// `\$` are a literal `$` (written `\$`, as a name or RDATA escape).
fn substitute(template: &str, i: u32) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push('\\');
                out.extend(chars.next());
            }
            '$' if chars.peek() == Some(&'$') => {
                chars.next();
                out.push_str("\\$");
            }
            '$' if chars.peek() == Some(&'{') => {
                chars.next();
                let mut spec = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => spec.push(c),
                        None => {
                            return Err(format!("$GENERATE modifier ${{{spec} is never closed"));
                        }
                    }
                }
                out.push_str(&modifier(&spec, i)?);
            }
            '$' => out.push_str(&i.to_string()),
            c => out.push(c),
        }
    }
    Ok(out)
}

fn modifier(spec: &str, i: u32) -> Result<String, String> {
    let bad = || format!("bad $GENERATE modifier ${{{spec}}}: want offset[,width[,base]]");
    let mut parts = spec.split(',');
    let offset: i64 = parts
        .next()
        .unwrap_or("0")
        .trim()
        .parse()
        .map_err(|_| bad())?;
    let width: usize = match parts.next() {
        Some(w) => w.trim().parse().map_err(|_| bad())?,
        None => 0,
    };
    let base = match parts.next() {
        Some(b) => b.trim(),
        None => "d",
    };
    if parts.next().is_some() || width > 255 {
        return Err(bad());
    }
    // BIND computes in an unsigned int: a negative result wraps.
    let v = (i64::from(i) + offset) as u32;
    Ok(match base {
        "d" => format!("{v:0width$}"),
        "o" => format!("{v:0width$o}"),
        "x" => format!("{v:0width$x}"),
        "X" => format!("{v:0width$X}"),
        "n" | "N" => nibbles(v, width, base == "N"),
        _ => return Err(bad()),
    })
}

/// BIND's nibble format: hex digits least significant first, dot
/// separated, padded until `width` characters are written.
fn nibbles(mut v: u32, mut width: usize, upper: bool) -> String {
    let mut out = String::new();
    loop {
        let d = std::char::from_digit(v & 0xf, 16).unwrap_or('0');
        out.push(if upper { d.to_ascii_uppercase() } else { d });
        v >>= 4;
        width = width.saturating_sub(1);
        if width > 0 || v != 0 {
            out.push('.');
            width = width.saturating_sub(1);
        }
        if v == 0 && width == 0 {
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn origin() -> Name {
        Name::from_str("example.com.").unwrap()
    }

    fn rewrite_ok(text: &str) -> Rewritten {
        rewrite(text, Path::new("z.zone"), &origin()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn rewrite_err(text: &str) -> ConfigError {
        match rewrite(text, Path::new("z.zone"), &origin()) {
            Ok(r) => panic!("expected an error, got:\n{}", r.text),
            Err(e) => e,
        }
    }

    #[test]
    fn generate_substitutions_match_bind() {
        // Expected values from named-checkzone 9.18 -D on the same lines.
        assert_eq!(substitute("host$", 3).unwrap(), "host3");
        assert_eq!(substitute("h${1,3,x}\\$x", 2).unwrap(), "h003\\$x");
        assert_eq!(substitute("d$$", 1).unwrap(), "d\\$");
        assert_eq!(substitute("o${-1,3,o}", 0).unwrap(), "o37777777777");
        assert_eq!(substitute("o${-1,3,o}", 10).unwrap(), "o011");
        assert_eq!(substitute("X${0,0,X}", 255).unwrap(), "XFF");
        assert_eq!(substitute("h${0,4,n}", 10).unwrap(), "ha.0.");
        assert_eq!(substitute("${0,0,n}", 0x1ab).unwrap(), "b.a.1");
        assert!(
            substitute("${1,2,q}", 1)
                .unwrap_err()
                .contains("bad $GENERATE modifier")
        );
        assert!(substitute("${1", 1).unwrap_err().contains("never closed"));
        assert_eq!(range("0-20/10"), Some((0, 20, 10)));
        assert_eq!(range("5-1"), None);
        assert_eq!(range("1-5/0"), None);
    }

    #[test]
    fn generate_expands_with_the_generate_line_as_source() {
        let r =
            rewrite_ok("$TTL 300\n@ SOA ns hm 1 2 3 4 5\n$GENERATE 1-3/2 m$ IN MX \"10 host$\"\n");
        let lines: Vec<&str> = r.text.lines().collect();
        assert_eq!(lines[2], "m1 IN MX 10 host1");
        assert_eq!(lines[3], "m3 IN MX 10 host3");
        assert_eq!(lines.len(), 4);
        assert_eq!(r.source(4), Some((Path::new("z.zone"), 3)));
        let e = rewrite_err("$TTL 300\n\n$GENERATE 1-x a$ A 10.0.0.$\n");
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("bad $GENERATE range"), "{e}");
        let e = rewrite_err("$TTL 300\n$GENERATE 0-70000 a$ A 10.0.0.1\n");
        assert!(e.message.contains("at most 65536"), "{e}");
    }

    #[test]
    fn no_ttl_anywhere_takes_the_soa_minimum_with_a_warning() {
        let r =
            rewrite_ok("@ IN SOA ns hm ( 1 3h 1h\n 1w 600 ) ; comment\n  NS ns\nns A 192.0.2.1\n");
        let lines: Vec<&str> = r.text.lines().collect();
        assert_eq!(lines[0], "$TTL 600");
        assert_eq!(lines[1], "@ IN SOA ns hm 1 3h 1h 1w 600");
        assert_eq!(lines[2], "\tNS ns");
        assert_eq!(r.warnings.len(), 1);
        assert!(
            r.warnings[0].message.contains("SOA MINIMUM (600)"),
            "{:?}",
            r.warnings
        );
        assert_eq!(r.warnings[0].key, "z.zone:1");
        // A record first, without any TTL to take: refused, as BIND does.
        let e = rewrite_err("; hi\nns A 192.0.2.1\n@ SOA ns hm 1 2 3 4 5\n");
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("no TTL specified"), "{e}");
    }

    #[test]
    fn origins_and_at_become_absolute() {
        let r = rewrite_ok("$TTL 1\n$ORIGIN sub\n@ MX 10 @\nx CNAME \"@\"\n");
        let lines: Vec<&str> = r.text.lines().collect();
        assert_eq!(lines[1], "$ORIGIN sub.example.com.");
        assert_eq!(lines[2], "@ MX 10 sub.example.com.");
        assert_eq!(
            lines[3], "x CNAME \"@\"",
            "a quoted @ is text, not the origin"
        );
    }

    #[test]
    fn syntax_errors_name_their_line() {
        let e = rewrite_err("$TTL 1\n@ SOA ns hm (1 2\n3 4 5\n\nx A 1.2.3.4\n");
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("never closed"), "{e}");
        let e = rewrite_err("$TTL 1\nx A 1.2.3.4 )\n");
        assert_eq!(e.line, Some(2));
        let e = rewrite_err("$TTL 1\nx TXT \"abc\n");
        assert_eq!(e.line, Some(2));
        let e = rewrite_err("$TTL 1\n$DATE 2020\n");
        assert!(e.message.contains("unknown directive $DATE"), "{e}");
        let e = rewrite_err("$TTL 1\n$INCLUDE nope.zone\n");
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("cannot read $INCLUDE"), "{e}");
    }
}

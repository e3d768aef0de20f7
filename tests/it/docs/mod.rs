//! The documentation runner: every ```` ```console ```` block of README.md and
//! docs/src/*.md is run, and what each command prints must match what the
//! page shows under it.
//!
//! A block holds `$ command` lines, each followed by its expected output
//! (standard output and standard error together, as a terminal shows them).
//! A command ending in `\` continues on the next line. In expected output:
//! - `[..]` matches any text within a line (times, serials, TTLs that count
//!   down, key tags);
//! - a line `...` matches any number of lines, none included;
//! - runs of blanks compare equal to one space (dig separates with tabs);
//! - two blanks then `# ` start a comment for the reader, not compared;
//! - a last line `[exit: N]` expects that exit status (else 0).
//!
//! The commands run in bash, in a folder laid out like a checkout
//! (`config/geosteer.toml`, `zones/`, `geoip/`), against a geosteer this test
//! starts in-process from the shipped default config (config/geosteer.toml)
//! on free ports. In the commands, `cargo run --release --` becomes the
//! built binary (and `geosteer` is on `PATH`), and the documented ports
//! (`-p 5353`, `127.0.0.1:5353`, `127.0.0.1:8053`) become the bound ones;
//! in the output the bound ports read as the documented ones again. The
//! config file the commands see names the ports the server runs on, so
//! commands that read `admin_listen` from it reach the server, and no `GEOSTEER_CONFIG` or
//! `GEOSTEER_ADMIN` is passed on (a host with /etc/geosteer/geosteer.toml
//! would be read before the folder's config: the examples assume none).
//!
//! Pages that need another setup get it here (see [`Setup`]): the DNSSEC
//! page runs against the default config plus a signed `example.test`, the
//! zone transfer page with transfers allowed to loopback, the Internet page
//! with the config's `nsid` and `version` lines uncommented.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use geosteer::app;

/// How long one documented command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// One `$ command` of a console block and the output written under it.
#[derive(Debug, Clone, PartialEq)]
struct Example {
    /// Where the `$` line is: `docs/src/dnssec.md:42`.
    at: String,
    command: String,
    expected: Vec<String>,
    exit: i32,
}

/// The examples of every console block in `text`, in order.
fn parse(file: &str, text: &str) -> Vec<Example> {
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
fn normalize(line: &str, comments: bool) -> String {
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
fn line_matches(pattern: &str, actual: &str) -> bool {
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
fn lines_match(expected: &[String], actual: &[String]) -> bool {
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
fn check_output(ex: &Example, code: i32, output: &str) -> Result<(), String> {
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

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` with `prefix` + `from` replaced by `prefix` + `to` wherever `from`
/// is a whole number (not followed by another digit: `-p 5353` but not
/// `-p 53530`).
fn replace_port(text: &str, prefix: &str, from: &str, to: &str) -> String {
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

/// Where and against what the commands of a page run.
struct Ctx {
    /// The folder laid out like a checkout: the commands' working directory.
    dir: PathBuf,
    dns: u16,
    admin: u16,
}

impl Ctx {
    /// The command as it runs here: the built binary, the bound ports.
    fn command(&self, command: &str) -> String {
        let dns = self.dns.to_string();
        let admin = self.admin.to_string();
        let command = command.replace("cargo run --release --", "geosteer");
        let command = replace_port(&command, "-p ", "5353", &dns);
        let command = replace_port(&command, "127.0.0.1:", "5353", &dns);
        replace_port(&command, "127.0.0.1:", "8053", &admin)
    }

    /// The output as documented: the bound ports read as the documented ones.
    fn output(&self, output: &str) -> String {
        let (dns, admin) = (self.dns.to_string(), self.admin.to_string());
        let output = replace_port(output, "#", &dns, "5353");
        let output = replace_port(&output, "-p ", &dns, "5353");
        let output = replace_port(&output, ":", &dns, "5353");
        replace_port(&output, ":", &admin, "8053")
    }

    /// Runs one example in bash; its exit status and output, or why not.
    fn run(&self, ex: &Example) -> Result<(i32, String), String> {
        if ex.command.is_empty() {
            return Err(format!(
                "{}: output without a `$ ` command before it",
                ex.at
            ));
        }
        let bin = Path::new(env!("CARGO_BIN_EXE_geosteer"));
        let bin_dir = bin.parent().expect("the binary's folder");
        let path = format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out_path = self.dir.join(".docs-output");
        let out = std::fs::File::create(&out_path).expect("output file");
        let err = out.try_clone().expect("output file");
        let mut child = Command::new("bash")
            .args(["-c", &self.command(&ex.command)])
            .current_dir(&self.dir)
            .env("PATH", path)
            .env("NO_COLOR", "1")
            .env_remove("GEOSTEER_ADMIN")
            .env_remove("GEOSTEER_CONFIG")
            .env_remove("GEOSTEER_ADMIN_TOKEN")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("{}: cannot run bash: {e}", ex.at))?;
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "{}: $ {}\n  did not finish within {COMMAND_TIMEOUT:?}",
                        ex.at, ex.command
                    ));
                }
            }
        };
        let output = std::fs::read(&out_path).unwrap_or_default();
        let output = self.output(&String::from_utf8_lossy(&output));
        Ok((status.code().unwrap_or(-1), output))
    }

    /// Runs every example in order; one message per failure.
    fn run_all(&self, examples: &[Example]) -> Vec<String> {
        examples
            .iter()
            .filter_map(|ex| match self.run(ex) {
                Ok((code, output)) => check_output(ex, code, &output).err(),
                Err(e) => Some(e),
            })
            .collect()
    }
}

/// The server and folder a page's examples run against.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Setup {
    /// The shipped default config, as the Quick start runs it.
    Default,
    /// The default config with `example.test` signed by one P-256 key,
    /// `config/example.test.pem`.
    Dnssec,
    /// The default config with `[transfer."example.test"]` allowing
    /// loopback.
    Transfer,
    /// The default config with its `nsid` and `version` lines uncommented.
    Identity,
}

impl Setup {
    fn for_page(file: &str) -> Setup {
        match file {
            "docs/src/dnssec.md" => Setup::Dnssec,
            "docs/src/transfers.md" => Setup::Transfer,
            "docs/src/internet.md" => Setup::Identity,
            _ => Setup::Default,
        }
    }
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped config with the given listen addresses.
fn shipped_config(setup: Setup, dns: &str, admin: &str, extra: &str) -> String {
    let mut text = std::fs::read_to_string(repo().join("config/geosteer.toml"))
        .expect("read config/geosteer.toml");
    if setup == Setup::Identity {
        for line in ["nsid = \"node1\"", "version = \"geosteer\""] {
            let commented = format!("# {line}");
            assert!(text.contains(&commented), "no `{commented}` in {text}");
            text = text.replacen(&commented, line, 1);
        }
    }
    assert!(text.contains("dns_listen = [\"127.0.0.1:5353\"]"), "{text}");
    assert!(text.contains("admin_listen = \"127.0.0.1:8053\""), "{text}");
    format!(
        "{}{extra}",
        text.replace(
            "dns_listen = [\"127.0.0.1:5353\"]",
            &format!("dns_listen = [\"{dns}\"]")
        )
        .replace(
            "admin_listen = \"127.0.0.1:8053\"",
            &format!("admin_listen = \"{admin}\"")
        )
    )
}

/// Lays out a checkout-like folder for `setup`, starts geosteer on it and
/// runs `examples`; one message per failure.
async fn run_setup(setup: Setup, examples: Vec<Example>) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().to_path_buf();
    std::fs::create_dir(root.join("config")).expect("config folder");
    for shared in ["zones", "geoip"] {
        std::os::unix::fs::symlink(repo().join(shared), root.join(shared)).expect("symlink");
    }
    let extra = match setup {
        Setup::Default | Setup::Identity => String::new(),
        Setup::Transfer => {
            "\n[transfer.\"example.test\"]\nallow_transfer = [\"127.0.0.1\"]\n".to_string()
        }
        Setup::Dnssec => {
            crate::harness::keys::generate(
                &root.join("config"),
                "example.test.pem",
                crate::harness::keys::Alg::EcdsaP256,
            );
            "\n[dnssec.\"example.test\"]\nkeys = [\"example.test.pem\"]\n".to_string()
        }
    };
    let config_path = root.join("config/geosteer.toml");
    // The config names the ports it runs on, as an operator's does (a reload
    // then changes nothing that needs a restart): free ports picked here,
    // tried again if another process takes one first.
    let mut attempt = 0;
    let running = loop {
        attempt += 1;
        let (dns, admin) = (free_port(true), free_port(false));
        std::fs::write(
            &config_path,
            shipped_config(
                setup,
                &format!("127.0.0.1:{dns}"),
                &format!("127.0.0.1:{admin}"),
                &extra,
            ),
        )
        .expect("write config");
        match app::start(&config_path).await {
            Ok(running) => break running,
            Err(e) if attempt < 5 => eprintln!("{setup:?}: start failed ({e}), again"),
            Err(e) => panic!("{setup:?}: the shipped config did not start: {e}"),
        }
    };
    let (dns, admin): (SocketAddr, SocketAddr) = (running.dns_addrs[0], running.admin_addr);
    let ctx = Ctx {
        dir: root,
        dns: dns.port(),
        admin: admin.port(),
    };
    let failures = tokio::task::spawn_blocking(move || ctx.run_all(&examples))
        .await
        .expect("runner task");
    running.stop().await;
    drop(dir);
    failures
}

/// A loopback port free right now (for TCP, and for UDP too when `udp`).
fn free_port(udp: bool) -> u16 {
    for _ in 0..50 {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a TCP port");
        let port = tcp.local_addr().expect("local address").port();
        if !udp || std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port for TCP and UDP in 50 tries");
}

/// README.md and every page of the guide, as (path from the top, text).
fn documentation() -> Vec<(String, String)> {
    let mut files = vec!["README.md".to_string()];
    let mut pages: Vec<String> = std::fs::read_dir(repo().join("docs/src"))
        .expect("docs/src")
        .map(|e| e.expect("docs/src entry").file_name())
        .filter_map(|n| n.to_str().map(str::to_string))
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/src/{n}"))
        .collect();
    pages.sort();
    assert!(pages.len() >= 10, "the guide's pages: {pages:?}");
    files.extend(pages);
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(repo().join(&f))
                .unwrap_or_else(|e| panic!("read {f}: {e}"));
            (f, text)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_example_in_the_documentation_runs_as_written() {
    let mut by_setup: Vec<(Setup, Vec<Example>)> = Vec::new();
    let mut total = 0;
    for (file, text) in documentation() {
        let setup = Setup::for_page(&file);
        let examples = parse(&file, &text);
        total += examples.len();
        match by_setup.iter_mut().find(|(s, _)| *s == setup) {
            Some((_, all)) => all.extend(examples),
            None => by_setup.push((setup, examples)),
        }
    }
    // An empty parse must not pass: the Quick start alone has several.
    assert!(total >= 10, "only {total} console examples found");
    let mut failures = Vec::new();
    for (setup, examples) in by_setup {
        failures.extend(run_setup(setup, examples).await);
    }
    assert!(
        failures.is_empty(),
        "{} of {total} documented commands do not do what the documentation shows:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
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

/// A wrong example fails the runner: the command really runs and the
/// mismatch names the page, the line and both outputs.
#[test]
fn a_wrong_example_fails_the_runner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = Ctx {
        dir: dir.path().to_path_buf(),
        dns: 40001,
        admin: 40002,
    };
    let page = "```console\n$ echo 192.0.2.1\n192.0.2.2\n$ echo right\nright\n$ exit 3\n$ echo 127.0.0.1:5353 127.0.0.1:8053; printf 'a\\nb\\nc\\n'\n127.0.0.1:5353 127.0.0.1:8053\na\n...\nc\n```\n";
    let examples = parse("wrong.md", page);
    let failures = ctx.run_all(&examples);
    assert_eq!(failures.len(), 2, "{failures:#?}");
    assert!(
        failures[0].starts_with("wrong.md:2: $ echo 192.0.2.1"),
        "{}",
        failures[0]
    );
    assert!(failures[0].contains("| 192.0.2.2") && failures[0].contains("| 192.0.2.1"));
    assert!(
        failures[1].contains("exit status 3, expected 0"),
        "{}",
        failures[1]
    );
    // The documented ports became the bound ones and read as documented.
    assert_eq!(
        ctx.command("dig @127.0.0.1 -p 5353 x; curl 127.0.0.1:8053; dig -p 53530"),
        "dig @127.0.0.1 -p 40001 x; curl 127.0.0.1:40002; dig -p 53530"
    );
    assert_eq!(
        ctx.output(";; SERVER: 127.0.0.1#40001(127.0.0.1) -p 40001 :400010"),
        ";; SERVER: 127.0.0.1#5353(127.0.0.1) -p 5353 :400010"
    );
}

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

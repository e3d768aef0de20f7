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

mod example;
mod links;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use geosteer::app;

/// How long one documented command may run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

use example::{Example, check_output, parse, replace_port};

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

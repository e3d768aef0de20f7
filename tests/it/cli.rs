//! The operator's CLI conventions: shell completions and the man page come
//! from the same clap definitions as the parser, and `--version` names the
//! commit of a checkout.

use std::process::Command;

use clap::CommandFactory;
use geosteer::cli::Cli;

/// Runs the binary; its standard output, which must be UTF-8, on success.
fn run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_geosteer"))
        .args(args)
        .output()
        .expect("run geosteer");
    assert!(
        out.status.success(),
        "geosteer {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Every subcommand the parser knows, checked against the ones the guide
/// documents so that an empty list cannot pass the tests below.
fn subcommands() -> Vec<String> {
    let names: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    for known in [
        "serve",
        "check",
        "explain",
        "status",
        "drain",
        "undrain",
        "completions",
        "man",
    ] {
        assert!(names.iter().any(|n| n == known), "{known} in {names:?}");
    }
    names
}

#[test]
fn completions_for_each_shell_offer_every_subcommand() {
    let subs = subcommands();
    for shell in ["bash", "zsh", "fish"] {
        let script = run(&["completions", shell]);
        for sub in &subs {
            assert!(script.contains(sub.as_str()), "{shell}: no {sub}");
        }
        // Options of a subcommand are completed too, not only the names.
        assert!(script.contains("log-format"), "{shell}: no --log-format");
    }
    let bash = run(&["completions", "bash"]);
    assert!(bash.contains("complete -F"), "not a bash script: {bash}");
    let zsh = run(&["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef geosteer"), "not a zsh script");
    let fish = run(&["completions", "fish"]);
    assert!(fish.contains("complete -c geosteer"), "not a fish script");
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_geosteer"))
        .args(["completions", "cmd.exe"])
        .output()
        .expect("run geosteer");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn the_man_page_is_roff_and_names_every_subcommand() {
    let page = run(&["man"]);
    assert!(page.starts_with(".TH geosteer 1 "), "{}", &page[..80]);
    for sub in subcommands() {
        let heading = format!(".SH \"GEOSTEER {}\"", sub.to_uppercase());
        assert!(page.contains(&heading), "no {heading}");
        let synopsis = format!("\\fBgeosteer {sub}\\fR");
        assert!(page.contains(&synopsis), "no synopsis {synopsis}");
    }
    // The options come from the same definitions as the parser.
    assert!(page.contains("\\-\\-log\\-format"));
    assert!(page.contains("config/geosteer.toml"));
}

#[test]
fn version_names_the_commit_of_a_checkout_or_the_one_given() {
    let version = run(&["--version"]);
    let version = version.trim();
    let pkg = env!("CARGO_PKG_VERSION");
    let dir = env!("CARGO_MANIFEST_DIR");
    let head = Command::new("git")
        .args(["-C", dir, "rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(given) = option_env!("GEOSTEER_COMMIT").filter(|c| !c.trim().is_empty()) {
        // A build that was told its commit (the Containerfile's build argument).
        assert_eq!(version, format!("geosteer {pkg} ({})", given.trim()));
        return;
    }
    match head {
        Some(head) if std::path::Path::new(dir).join(".git").exists() => {
            // "geosteer 0.1.0 (abc1234)": a prefix of HEAD's full hash.
            let short = version
                .strip_prefix(&format!("geosteer {pkg} ("))
                .and_then(|rest| rest.strip_suffix(')'))
                .unwrap_or_else(|| panic!("no commit in {version:?}"));
            assert!(short.len() >= 7, "{version}");
            assert!(head.starts_with(short), "{version} is not HEAD {head}");
        }
        // No checkout or no git: the package version alone.
        _ => assert_eq!(version, format!("geosteer {pkg}")),
    }
}

#[test]
fn the_help_of_the_runtime_levers_says_what_they_do_in_a_fleet() {
    // Weights became fleet-wide (etcd) while the help still said "single
    // node only for now".
    let weight = run(&["weight", "--help"]);
    assert!(!weight.contains("single node only"), "{weight}");
    assert!(weight.contains("in a fleet written to etcd"), "{weight}");
    let top = run(&["--help"]);
    assert!(
        top.contains("weight, override, push and explain --admin"),
        "{top}"
    );
}

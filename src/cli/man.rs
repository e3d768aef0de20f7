//! `geosteer completions SHELL` and `geosteer man`: shell completion scripts
//! (clap_complete) and a roff man page (clap_mangen), both generated from the
//! same clap definitions as the parser, so they cannot drift from it.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;
use clap_mangen::Man;

use super::Cli;

/// Prints the completion script for `shell`.
pub(super) fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "geosteer", &mut script);
    print(&script)
}

/// Prints the man page.
pub(super) fn man() -> anyhow::Result<ExitCode> {
    print(&render().context("rendering the man page")?)
}

/// One page for the whole tool: clap_mangen's top-level sections, then a
/// section per subcommand with its description, synopsis and options (rather
/// than the `geosteer-serve(1)`-style references of clap_mangen's own
/// SUBCOMMANDS section, pages nobody installs), so that
/// `geosteer man > geosteer.1` is the whole manual.
fn render() -> std::io::Result<Vec<u8>> {
    let mut cmd = Cli::command();
    cmd.build();
    let mut page = Vec::new();
    let top = Man::new(cmd.clone());
    top.render_title(&mut page)?;
    top.render_name_section(&mut page)?;
    top.render_synopsis_section(&mut page)?;
    top.render_description_section(&mut page)?;
    top.render_options_section(&mut page)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("geosteer {}", sub.get_name());
        writeln!(page, ".SH \"{}\"", name.to_uppercase())?;
        let man = Man::new(sub.clone());
        for part in [
            Man::render_description_section,
            Man::render_synopsis_section,
            Man::render_options_section,
        ] {
            let mut text = Vec::new();
            part(&man, &mut text)?;
            // The subcommand's parts share its one heading.
            page.extend(text.split_inclusive(|&b| b == b'\n').flat_map(|line| {
                if line.starts_with(b".SH ") {
                    b".PP\n"
                } else {
                    line
                }
            }));
        }
    }
    page.extend_from_slice(SECTIONS.as_bytes());
    top.render_version_section(&mut page)?;
    Ok(with_title_first(&page))
}

/// FILES, ENVIRONMENT and EXIT STATUS: what no clap definition carries.
/// The exit statuses are [`super::exit`]'s; a test holds them together.
const SECTIONS: &str = r#".SH FILES
.TP
\fB/etc/geosteer/geosteer.toml\fR
The config that serve, check, explain and dnssec ds read when neither
\fB\-\-config\fR nor \fBGEOSTEER_CONFIG\fR names one.
.TP
\fB./config/geosteer.toml\fR
Read instead when /etc/geosteer/geosteer.toml does not exist (a checkout).
Every command that reads a config it was not given with \fB\-\-config\fR
says which one on standard error.
.SH ENVIRONMENT
.TP
\fBGEOSTEER_CONFIG\fR
The config file, when \fB\-\-config\fR is not given.
.TP
\fBGEOSTEER_ADMIN\fR
The admin API that status, drain, undrain, weight, override, push and explain \-\-admin talk to,
as a URL (http://127.0.0.1:8053) or host:port, when \fB\-\-admin\fR is
not given. Without either, they read \fBserver.admin_listen\fR of the
config (found as above), else use http://127.0.0.1:8053.
.TP
\fBGEOSTEER_ADMIN_TOKEN\fR
The bearer token drain, undrain and weight send, for a server with
\fBserver.admin_token\fR set. A refusal (401) says so.
.TP
\fBGEOSTEER_LOG\fR
serve's log filter, in tracing's EnvFilter syntax (e.g. debug or
info,geosteer::probe=debug).
.TP
\fBNO_COLOR\fR
When set and not empty, log lines carry no colour even on a terminal. Colour
is only ever used when standard error is a terminal.
.SH "EXIT STATUS"
.TP
\fB0\fR
Done; for check, the config and its zone files are valid.
.TP
\fB1\fR
The command failed: an invalid config, an action the server refused (no
such pool, a wrong token), or any other error. The message starts with
\fBerror:\fR on standard error (check prints each problem so on standard
output).
.TP
\fB2\fR
The command line is wrong (an unknown option, a missing argument).
.TP
\fB3\fR
The admin API could not be reached (nothing listens there, or it timed out).
"#;

/// clap_mangen defines the `Aq` string (an apostrophe that groff and other
/// formatters both print) before every section, the title included; man(7)
/// wants `.TH` first. Keeps one definition, right after the title.
fn with_title_first(page: &[u8]) -> Vec<u8> {
    const AQ: [&[u8]; 2] = [b".ie \\n(.g .ds Aq \\(aq\n", b".el .ds Aq '\n"];
    let mut out = Vec::with_capacity(page.len());
    for line in page.split_inclusive(|&b| b == b'\n') {
        if AQ.contains(&line) {
            continue;
        }
        out.extend_from_slice(line);
        if line.starts_with(b".TH ") {
            AQ.iter().for_each(|l| out.extend_from_slice(l));
        }
    }
    out
}

fn print(bytes: &[u8]) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .context("writing to standard output")?;
    Ok(ExitCode::SUCCESS)
}

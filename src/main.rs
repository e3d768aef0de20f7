//! The `geosteer` binary: parses the command line and hands it to `cli`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = geosteer::cli::Cli::parse();
    geosteer::cli::run(cli)
}

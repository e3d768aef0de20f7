//! cli: one file per subcommand; `anyhow` lives only here and in `main`.

mod admin_client;
mod check;
mod explain;
mod serve;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// The default config path, relative to the working directory.
pub const DEFAULT_CONFIG: &str = "config/geosteer.toml";
pub const DEFAULT_ADMIN: &str = "http://127.0.0.1:8053";

#[derive(Debug, Parser)]
#[command(
    name = "geosteer",
    version,
    about = "Health-aware global DNS load balancer"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve DNS, probes, the admin API and proxies from a config.
    Serve {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
    },
    /// Validate a config and its zone files without serving.
    Check {
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Show, step by step, how the answer for one client is chosen.
    Explain {
        #[arg(long)]
        name: String,
        #[arg(long = "type", default_value = "A")]
        qtype: String,
        /// Client address, or subnet as in an ECS option (IP/PREFIX).
        #[arg(long)]
        client: String,
        /// Offline: read this config (every pool healthy unless --down).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Offline: treat this pool as down (repeatable).
        #[arg(long)]
        down: Vec<String>,
        /// Live: ask a running server's admin API (e.g. http://127.0.0.1:8053).
        #[arg(long)]
        admin: Option<String>,
    },
    /// Print pools and endpoints of a running server.
    Status {
        #[arg(long, default_value = DEFAULT_ADMIN)]
        admin: String,
    },
    /// Drain an endpoint of a pool (out of every answer at once).
    Drain {
        pool: String,
        endpoint: String,
        #[arg(long, default_value = DEFAULT_ADMIN)]
        admin: String,
    },
    /// Return a drained endpoint to rotation.
    Undrain {
        pool: String,
        endpoint: String,
        #[arg(long, default_value = DEFAULT_ADMIN)]
        admin: String,
    },
}

/// Runs one subcommand; the exit code is the process's.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Serve { config, log_format } => serve::run(&config, log_format),
        Command::Check { config } => check::run(&config),
        Command::Explain {
            name,
            qtype,
            client,
            config,
            down,
            admin,
        } => explain::run(&name, &qtype, &client, config, &down, admin),
        Command::Status { admin } => status::status(&admin),
        Command::Drain {
            pool,
            endpoint,
            admin,
        } => status::drain(&admin, &pool, &endpoint, true),
        Command::Undrain {
            pool,
            endpoint,
            admin,
        } => status::drain(&admin, &pool, &endpoint, false),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("geosteer: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Single-threaded runtime for the short-lived client subcommands.
fn block_on<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(f))
}

//! cli: one file per subcommand; `anyhow` lives only here and in `main`.

mod admin_client;
mod check;
mod explain;
mod man;
mod notify;
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
    // The package version, and the git commit when built from a checkout (build.rs).
    version = env!("GEOSTEER_VERSION"),
    about = "Health-aware global DNS load balancer",
    long_about = "Health-aware global DNS load balancer: an authoritative DNS server that \
answers each A/AAAA query for a balanced name with endpoints of the pool picked from the \
client's location, the configured weights and the live health of each pool.\n\n\
serve reloads its config on SIGHUP and drains and exits on SIGTERM or SIGINT; under \
systemd (Type=notify) it reports READY=1 once its DNS sockets answer. Log filter: \
GEOSTEER_LOG. Admin token for drain and undrain: GEOSTEER_ADMIN_TOKEN."
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
        /// The config file; relative paths in it are relative to its folder.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Log lines as text or as JSON objects (on standard error).
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
    },
    /// Validate a config and its zone files without serving.
    Check {
        /// The config file to validate, with the zone files it names.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Show, step by step, how the answer for one client is chosen.
    Explain {
        /// The balanced name (e.g. www.example.test).
        #[arg(long)]
        name: String,
        /// The query type: A or AAAA.
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
        /// The running server's admin API.
        #[arg(long, default_value = DEFAULT_ADMIN)]
        admin: String,
        /// Print the last state changes instead (newest first).
        #[arg(long)]
        events: bool,
    },
    /// Drain an endpoint of a pool (out of every answer at once).
    Drain {
        /// The pool's name.
        pool: String,
        /// The endpoint's address, as in the config.
        endpoint: String,
        /// The running server's admin API (token: GEOSTEER_ADMIN_TOKEN).
        #[arg(long, default_value = DEFAULT_ADMIN)]
        admin: String,
    },
    /// Return a drained endpoint to rotation.
    Undrain {
        /// The pool's name.
        pool: String,
        /// The endpoint's address, as in the config.
        endpoint: String,
        /// The running server's admin API (token: GEOSTEER_ADMIN_TOKEN).
        #[arg(long, default_value = DEFAULT_ADMIN)]
        admin: String,
    },
    /// Print a shell completion script (e.g. `geosteer completions bash`).
    Completions {
        /// The shell: bash, zsh, fish (also elvish, powershell).
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page, in roff (`geosteer man > geosteer.1`).
    Man,
    /// DNSSEC: print the DS records to give the parent zone.
    Dnssec {
        #[command(subcommand)]
        action: DnssecAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum DnssecAction {
    /// Print the DS records (SHA-256) of a signed zone's KSKs, for the parent.
    Ds {
        /// The zone, as in [dnssec."ZONE"] (e.g. example.com).
        zone: String,
        /// The config file.
        #[arg(long, default_value = DEFAULT_CONFIG)]
        config: PathBuf,
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
        Command::Status { admin, events } => match events {
            true => status::events(&admin),
            false => status::status(&admin),
        },
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
        Command::Completions { shell } => man::completions(shell),
        Command::Man => man::man(),
        Command::Dnssec {
            action: DnssecAction::Ds { zone, config },
        } => check::ds(&config, &zone),
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

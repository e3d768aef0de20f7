//! cli: one file per subcommand; `anyhow` lives only here and in `main`.

mod admin_client;
mod check;
mod explain;
mod fleet_config;
pub mod locate;
mod man;
mod notify;
mod serve;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

/// Exit statuses, as the man page's EXIT STATUS lists them.
pub mod exit {
    /// Done; `check`: the config is valid.
    pub const OK: u8 = 0;
    /// The command failed: an invalid config, a refused action, an error
    /// from the server.
    pub const FAILURE: u8 = 1;
    /// The command line is wrong (clap's own status).
    pub const USAGE: u8 = 2;
    /// The admin API could not be reached.
    pub const UNREACHABLE: u8 = 3;
}

/// The admin API did not answer; exits with [`exit::UNREACHABLE`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unreachable(pub String);

const CONFIG_HELP: &str = "The config file [default: $GEOSTEER_CONFIG, else \
/etc/geosteer/geosteer.toml, else ./config/geosteer.toml]";
const ADMIN_HELP: &str = "The running server's admin API, as a URL or host:port \
[default: $GEOSTEER_ADMIN, else server.admin_listen of the config]";

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
systemd (Type=notify) it reports READY=1 once its DNS sockets answer. status, drain, \
undrain, weight, override, push and explain --admin talk to a running server's admin API; the FILES and \
ENVIRONMENT sections say how they find it."
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
        #[arg(long, help = CONFIG_HELP)]
        config: Option<PathBuf>,
        /// Log lines as text or as JSON objects (on standard error).
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
    },
    /// Validate a config and its zone files without serving.
    Check {
        /// The config file to validate, with the zone files it names.
        #[arg(long, help = CONFIG_HELP)]
        config: Option<PathBuf>,
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
        /// Offline: read this config (every pool healthy unless --down); with
        /// --admin, the config whose server.admin_listen to ask.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Offline: treat this pool as down (repeatable).
        #[arg(long)]
        down: Vec<String>,
        /// Live: ask a running server's admin API (URL or host:port; without a
        /// value: $GEOSTEER_ADMIN, else server.admin_listen of the config).
        #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "ADMIN")]
        admin: Option<String>,
    },
    /// Print pools and endpoints of a running server.
    Status {
        #[arg(long, help = ADMIN_HELP)]
        admin: Option<String>,
        /// The config whose server.admin_listen to ask.
        #[arg(long, help = CONFIG_HELP)]
        config: Option<PathBuf>,
        /// Print the last state changes instead (newest first).
        #[arg(long)]
        events: bool,
    },
    /// Drain an endpoint of a pool (out of every answer at once), or with
    /// --backend a proxy backend's server (no new requests).
    Drain {
        #[command(flatten)]
        target: Target,
        /// Drain gradually: the endpoint's weight ramps to zero over this
        /// (`10m`, `90s`), then it is drained (single node; not with --backend,
        /// whose servers keep their drain_timeout).
        #[arg(long, value_name = "DURATION")]
        over: Option<String>,
        #[arg(long, help = ADMIN_HELP)]
        admin: Option<String>,
        /// The config whose server.admin_listen to ask.
        #[arg(long, help = CONFIG_HELP)]
        config: Option<PathBuf>,
    },
    /// Return a drained endpoint (or with --backend, server) to rotation.
    Undrain {
        #[command(flatten)]
        target: Target,
        /// In a fleet whose etcd is unreachable: lift the endpoint's drain on
        /// this node only, explicitly temporary ("undrained locally, pending
        /// etcd"). When etcd returns the undrain is written there (the whole
        /// fleet returns the endpoint), unless the drain changed in etcd
        /// meanwhile: then etcd wins and it is drained here again. With etcd
        /// reachable it is a plain undrain.
        #[arg(long, conflicts_with = "backend")]
        local: bool,
        #[arg(long, help = ADMIN_HELP)]
        admin: Option<String>,
        /// The config whose server.admin_listen to ask.
        #[arg(long, help = CONFIG_HELP)]
        config: Option<PathBuf>,
    },
    /// Set the runtime weight of an endpoint (replaces the config's until
    /// --reset; kept across reloads, and restarts with server.state_file; in
    /// a fleet written to etcd and applied by every node), or with --backend
    /// of a proxy backend's server (this node only).
    Weight {
        /// A proxy backend's name: weigh its server SERVER (host:port)
        /// instead of a pool's endpoint.
        #[arg(long, value_name = "NAME")]
        backend: Option<String>,
        /// POOL ENDPOINT N (the pool's name, the endpoint's address as in
        /// the config, the weight 1-10000), or with --backend SERVER N;
        /// without N with --reset.
        #[arg(required = true, num_args = 1..=3, value_name = "POOL ENDPOINT | SERVER")]
        what: Vec<String>,
        /// Back to the config's weight.
        #[arg(long)]
        reset: bool,
        #[arg(long, help = ADMIN_HELP)]
        admin: Option<String>,
        /// The config whose server.admin_listen to ask.
        #[arg(long, help = CONFIG_HELP)]
        config: Option<PathBuf>,
    },
    /// Override an endpoint's state: `down` takes it out of answers like a
    /// failed check, `up` keeps it in despite failing checks (a drain still
    /// wins). Until --clear, or for --for; kept across reloads.
    Override {
        /// The pool's name.
        pool: String,
        /// The endpoint, as in the config.
        endpoint: String,
        /// up or down.
        #[arg(required_unless_present = "clear", conflicts_with = "clear", value_parser = ["up", "down"])]
        state: Option<String>,
        /// Why (shown in status, events and explain); required to set one.
        #[arg(long, required_unless_present = "clear")]
        reason: Option<String>,
        /// Ends by itself after this long (e.g. 2h, 30m).
        #[arg(long = "for", value_name = "DURATION")]
        for_: Option<String>,
        /// Ends the override: the checks decide again.
        #[arg(long)]
        clear: bool,
        #[arg(long, help = ADMIN_HELP)]
        admin: Option<String>,
        /// The config whose server.admin_listen to ask.
        #[arg(long, help = CONFIG_HELP)]
        config: Option<PathBuf>,
    },
    /// Push an endpoint's health (its pool's monitor has type = "external"):
    /// it holds for --ttl, then the endpoint goes down unless pushed again.
    Push {
        /// The pool's name.
        pool: String,
        /// The endpoint, as in the config.
        endpoint: String,
        /// up or down.
        #[arg(value_parser = ["up", "down"])]
        status: String,
        /// How long it holds (e.g. 30s).
        #[arg(long)]
        ttl: String,
        /// Why (shown as the endpoint's last error when down).
        #[arg(long)]
        reason: Option<String>,
        /// The latency the pusher measured, in milliseconds.
        #[arg(long)]
        latency_ms: Option<u64>,
        #[arg(long, help = ADMIN_HELP)]
        admin: Option<String>,
        /// The config whose server.admin_listen to ask.
        #[arg(long, help = CONFIG_HELP)]
        config: Option<PathBuf>,
    },
    /// Print a shell completion script (e.g. `geosteer completions bash`).
    Completions {
        /// The shell: bash, zsh, fish (also elvish, powershell).
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page, in roff (`geosteer man > geosteer.1`).
    Man,
    /// The fleet's one config in etcd: push, diff, history, rollback (nodes
    /// with `[cluster] config = "etcd"` follow it).
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// DNSSEC: print the DS records to give the parent zone.
    Dnssec {
        #[command(subcommand)]
        action: DnssecAction,
    },
}

/// What drain and undrain act on: `POOL ENDPOINT`, or `--backend NAME SERVER`.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// A proxy backend's name: drain its server SERVER (host:port) instead
    /// of a pool's endpoint.
    #[arg(long, value_name = "NAME")]
    backend: Option<String>,
    /// POOL ENDPOINT (the pool's name and the endpoint's address, as in the
    /// config), or with --backend the server's host:port.
    #[arg(required = true, num_args = 1..=2, value_name = "POOL ENDPOINT | SERVER")]
    what: Vec<String>,
}

/// A drain's target, checked.
pub enum Drainable {
    Endpoint { pool: String, address: String },
    Server { backend: String, address: String },
}

impl Target {
    /// Checks the arguments of subcommand `sub`; a usage error exits (2).
    fn resolve(self, sub: &str) -> Drainable {
        let usage = |msg: &str| -> ! {
            let mut cmd = Cli::command();
            cmd.build();
            let mut cmd = cmd.find_subcommand(sub).cloned().unwrap_or(cmd);
            cmd.error(clap::error::ErrorKind::WrongNumberOfValues, msg)
                .exit()
        };
        match (self.backend, <[String; 1]>::try_from(self.what)) {
            (Some(backend), Ok([address])) => Drainable::Server { backend, address },
            (Some(_), Err(_)) => usage("--backend NAME takes one SERVER (host:port)"),
            (None, Err(what)) => match <[String; 2]>::try_from(what) {
                Ok([pool, address]) => Drainable::Endpoint { pool, address },
                Err(_) => usage("expected POOL ENDPOINT (or --backend NAME SERVER)"),
            },
            (None, Ok(_)) => usage("expected POOL ENDPOINT (or --backend NAME SERVER)"),
        }
    }
}

/// `weight`'s arguments, checked: what to weigh and the weight (None:
/// `--reset`). A usage error exits (2).
fn weighable(backend: Option<String>, what: Vec<String>, reset: bool) -> (Drainable, Option<u32>) {
    let usage = |msg: String| -> ! {
        let mut cmd = Cli::command();
        cmd.build();
        let mut cmd = cmd.find_subcommand("weight").cloned().unwrap_or(cmd);
        cmd.error(clap::error::ErrorKind::WrongNumberOfValues, msg)
            .exit()
    };
    let names = if backend.is_some() { 1 } else { 2 };
    let expected = match &backend {
        Some(_) => "--backend NAME SERVER N (or SERVER --reset)",
        None => "POOL ENDPOINT N (or POOL ENDPOINT --reset, or --backend NAME SERVER N)",
    };
    let weight = match (reset, what.len() == names + usize::from(!reset)) {
        (_, false) => usage(format!("expected {expected}")),
        (true, true) => None,
        (false, true) => match what[names].parse::<u32>() {
            Ok(w) => Some(w),
            Err(_) => usage(format!(
                "the weight must be a whole number (1-10000), not {:?}",
                what[names]
            )),
        },
    };
    let mut what = what.into_iter();
    let mut next = || what.next().unwrap_or_default();
    let target = match backend {
        Some(backend) => Drainable::Server {
            backend,
            address: next(),
        },
        None => Drainable::Endpoint {
            pool: next(),
            address: next(),
        },
    };
    (target, weight)
}

/// Where etcd is, for `geosteer config`.
#[derive(Debug, clap::Args)]
pub struct EtcdFlags {
    /// An etcd client URL (repeatable) [default: [cluster] etcd of the config].
    #[arg(long, value_name = "URL")]
    etcd: Vec<String>,
    /// The fleet's key prefix [default: [cluster] prefix of the config, else /geosteer].
    #[arg(long)]
    prefix: Option<String>,
}

impl EtcdFlags {
    fn args(self) -> fleet_config::EtcdArgs {
        fleet_config::EtcdArgs {
            etcd: self.etcd,
            prefix: self.prefix,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Validate a full config (as check does), then store its tables but
    /// [server] and [cluster], and its zone files, as the fleet's next
    /// revision: every node with [cluster] config = "etcd" loads it.
    Push {
        #[arg(long, help = CONFIG_HELP)]
        config: Option<PathBuf>,
        #[command(flatten)]
        at: EtcdFlags,
        /// A note kept in the history.
        #[arg(long, short)]
        message: Option<String>,
    },
    /// Show what a push of the config would change (a unified diff).
    Diff {
        #[arg(long, help = CONFIG_HELP)]
        config: Option<PathBuf>,
        #[command(flatten)]
        at: EtcdFlags,
    },
    /// List the revisions etcd keeps (the last 20), newest first.
    History {
        /// A config whose [cluster] says where etcd is.
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        at: EtcdFlags,
    },
    /// Push the config of an earlier revision again, as a new revision.
    Rollback {
        /// The revision to restore.
        revision: u64,
        /// A config whose [cluster] says where etcd is.
        #[arg(long)]
        config: Option<PathBuf>,
        #[command(flatten)]
        at: EtcdFlags,
    },
}

#[derive(Debug, Subcommand)]
pub enum DnssecAction {
    /// Print the DS records (SHA-256) of a signed zone's KSKs, for the parent.
    Ds {
        /// The zone, as in [dnssec."ZONE"] (e.g. example.com).
        zone: String,
        #[arg(long, help = CONFIG_HELP)]
        config: Option<PathBuf>,
    },
}

/// Runs one subcommand; the exit code is the process's.
pub fn run(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Serve { config, log_format } => serve::run(locate::config(config), log_format),
        Command::Check { config } => check::run(&located(config)),
        Command::Explain {
            name,
            qtype,
            client,
            config,
            down,
            admin,
        } => explain::run(&name, &qtype, &client, config, &down, admin),
        Command::Status {
            admin,
            config,
            events,
        } => locate::admin(admin, config).and_then(|admin| match events {
            true => status::events(&admin),
            false => status::status(&admin),
        }),
        Command::Drain {
            target,
            over: Some(over),
            admin,
            config,
        } => locate::admin(admin, config)
            .and_then(|admin| status::drain_over(&admin, target.resolve("drain"), &over)),
        Command::Drain {
            target,
            over: None,
            admin,
            config,
        } => locate::admin(admin, config)
            .and_then(|admin| status::drain(&admin, target.resolve("drain"), true, false)),
        Command::Undrain {
            target,
            local,
            admin,
            config,
        } => locate::admin(admin, config)
            .and_then(|admin| status::drain(&admin, target.resolve("undrain"), false, local)),
        Command::Weight {
            backend,
            what,
            reset,
            admin,
            config,
        } => {
            let (target, weight) = weighable(backend, what, reset);
            locate::admin(admin, config).and_then(|admin| status::weight(&admin, target, weight))
        }
        Command::Override {
            pool,
            endpoint,
            state,
            reason,
            for_,
            clear,
            admin,
            config,
        } => locate::admin(admin, config).and_then(|admin| {
            let set =
                (!clear).then(|| (state.unwrap_or_default(), reason.unwrap_or_default(), for_));
            status::set_override(&admin, &pool, &endpoint, set)
        }),
        Command::Push {
            pool,
            endpoint,
            status: up,
            ttl,
            reason,
            latency_ms,
            admin,
            config,
        } => locate::admin(admin, config).and_then(|admin| {
            status::push(&admin, &pool, &endpoint, &up, &ttl, reason, latency_ms)
        }),
        Command::Completions { shell } => man::completions(shell),
        Command::Man => man::man(),
        Command::Config { action } => match action {
            ConfigAction::Push {
                config,
                at,
                message,
            } => fleet_config::push(&located(config), at.args(), message),
            ConfigAction::Diff { config, at } => fleet_config::diff(&located(config), at.args()),
            ConfigAction::History { config, at } => {
                fleet_config::history(config.as_deref(), at.args())
            }
            ConfigAction::Rollback {
                revision,
                config,
                at,
            } => fleet_config::rollback(config.as_deref(), at.args(), revision),
        },
        Command::Dnssec {
            action: DnssecAction::Ds { zone, config },
        } => check::ds(&located(config), &zone),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            match e.downcast_ref::<Unreachable>() {
                Some(_) => ExitCode::from(exit::UNREACHABLE),
                None => ExitCode::from(exit::FAILURE),
            }
        }
    }
}

/// The config a subcommand reads, announced on standard error when found
/// by search or by `GEOSTEER_CONFIG`.
fn located(flag: Option<PathBuf>) -> PathBuf {
    let located = locate::config(flag);
    located.announce();
    located.path
}

/// Single-threaded runtime for the short-lived client subcommands.
fn block_on<F: std::future::Future>(f: F) -> anyhow::Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(f))
}

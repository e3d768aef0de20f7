//! `geosteer serve`: runs everything until SIGTERM or SIGINT; SIGHUP reloads.
//! Under systemd (`Type=notify`) it says READY once DNS answers, RELOADING
//! and READY around a reload, and STOPPING when it begins to shut down.

use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

use super::LogFormat;
use super::locate::{Located, Source};
use super::notify::{self, READY, RELOADING, STOPPING};

/// Default log filter: hickory logs two lines per query at INFO, which costs
/// about a third of the query path.
const DEFAULT_FILTER: &str = "info,hickory_server=warn,hickory_proto=warn,hickory_net=warn";

pub(super) fn run(located: Located, format: LogFormat) -> anyhow::Result<ExitCode> {
    init_logging(format);
    if located.source != Source::Flag {
        tracing::info!("reading {} ({})", located.path.display(), located.source);
    }
    let path = located.path.as_path();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        // Handlers first: a SIGHUP that arrives while starting, or right
        // after READY (systemd's ExecReload, a test), must not find the
        // default action, which ends the process.
        let mut signals = Signals::install()?;
        let running = match crate::app::start(path).await {
            Ok(r) => r,
            Err(e) => {
                for line in e.to_string().lines() {
                    tracing::error!("{line}");
                }
                return Ok(ExitCode::FAILURE);
            }
        };
        // app::start returns with the DNS sockets bound and their workers
        // running: a query sent from now on is answered.
        let addrs: Vec<String> = running.dns_addrs.iter().map(|a| a.to_string()).collect();
        notify::notify(&format!(
            "{READY}\nSTATUS=answering DNS on {}",
            addrs.join(", ")
        ));
        signals.wait(&running).await;
        notify::notify(STOPPING);
        tracing::info!("shutting down");
        running.stop().await;
        Ok(ExitCode::SUCCESS)
    })
}

pub(super) fn init_logging(format: LogFormat) {
    let filter =
        EnvFilter::try_from_env("GEOSTEER_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Colour only for a person at a terminal: never into files, pipes or
/// journald, and never when `NO_COLOR` is set (https://no-color.org).
fn colour() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The signals `serve` acts on: SIGTERM and SIGINT stop, SIGHUP reloads.
#[cfg(unix)]
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// Until a stop: reloads on every SIGHUP meanwhile.
    async fn wait(&mut self, running: &crate::app::Running) {
        let stop = running.shutdown_token();
        loop {
            tokio::select! {
                _ = self.term.recv() => return,
                _ = self.int.recv() => return,
                _ = stop.cancelled() => return,
                _ = self.hup.recv() => {
                    tracing::info!("SIGHUP: reloading {}", running.config_path.display());
                    notify::notify(RELOADING);
                    // Control::reload logs the outcome, one line per problem.
                    let status = match running.reload().await {
                        Ok(r) if r.pending_restart.is_empty() => "STATUS=reloaded".to_string(),
                        Ok(r) => format!(
                            "STATUS=reloaded; pending restart: {}",
                            r.pending_restart.join(", ")
                        ),
                        Err(e) => {
                            // One line: the first problem, the rest are in the log.
                            let first = e.to_string().lines().next().unwrap_or_default().to_string();
                            format!("STATUS=reload failed, serving the previous config: {first}")
                        }
                    };
                    notify::notify(&format!("{READY}\n{status}"));
                }
            }
        }
    }
}

//! `geosteer explain`: offline from a config, or live from an admin API.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};

use crate::explain::{Explanation, explain};
use crate::health::{EndpointState, HealthView};
use crate::state::{Loaded, Snapshot};

pub(super) fn run(
    name: &str,
    qtype: &str,
    client: &str,
    config: Option<PathBuf>,
    down: &[String],
    admin: Option<String>,
) -> anyhow::Result<ExitCode> {
    let explanation = match admin {
        Some(admin) => {
            if !down.is_empty() {
                bail!(
                    "--admin asks a running server, whose health it shows; it does not take --down"
                );
            }
            let admin = super::locate::admin(Some(admin), config)?;
            live(&admin, name, qtype, client)?
        }
        None => {
            let located = super::locate::config(config);
            located.announce();
            offline(&located.path, name, qtype, client, down)?
        }
    };
    print!("{}", explanation.render());
    Ok(ExitCode::SUCCESS)
}

fn offline(
    path: &std::path::Path,
    name: &str,
    qtype: &str,
    client: &str,
    down: &[String],
) -> anyhow::Result<Explanation> {
    let loaded = Loaded::from_path(path, &crate::metrics::Registry::default())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut health = all_up(&loaded);
    for pool in down {
        let id = loaded
            .config
            .pool_id(pool)
            .with_context(|| format!("--down {pool}: no such pool"))?;
        let p = &mut health.pools[id.index()];
        for e in &mut p.endpoints {
            e.state = EndpointState::Down;
        }
        p.recount(loaded.config.pool(id).min_healthy, false);
    }
    let snap = Snapshot {
        generation: 0,
        config: loaded.config,
        steering: loaded.steering,
        zones: loaded.zones,
        dnssec: loaded.dnssec,
        geo: loaded.geo,
        health: Arc::new(health),
    };
    explain(&snap, name, qtype, client).map_err(anyhow::Error::msg)
}

/// Offline, every endpoint is up and every pool healthy.
fn all_up(loaded: &Loaded) -> HealthView {
    let mut view = HealthView::initial(&loaded.config);
    for (p, cfg) in view.pools.iter_mut().zip(&loaded.config.pools) {
        for e in &mut p.endpoints {
            e.state = EndpointState::Up;
        }
        p.recount(cfg.min_healthy, false);
    }
    view
}

fn live(
    admin: &super::locate::Admin,
    name: &str,
    qtype: &str,
    client: &str,
) -> anyhow::Result<Explanation> {
    let body = super::admin_client::get(
        admin,
        &format!(
            "/api/v1/explain?name={}&type={}&client={}",
            super::admin_client::encode(name),
            super::admin_client::encode(qtype),
            super::admin_client::encode(client)
        ),
    )?;
    serde_json::from_str::<Explanation>(&body).context("unexpected answer from the admin API")
}

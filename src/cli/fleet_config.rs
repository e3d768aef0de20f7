//! `geosteer config push | diff | history | rollback`: the fleet's one
//! config in etcd (`[cluster] config = "etcd"` on each node; see
//! `cluster::fleetcfg` for the keys and `config::fleet` for what is stored).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};

use crate::cluster::etcd::Etcd;
use crate::cluster::fleetcfg;
use crate::config::fleet::{self, FleetDoc};
use crate::config::{ClusterConfig, fleet::DEFAULT_CONFIG_DIR};
use crate::state::Loaded;

/// Where etcd is: `--etcd` and `--prefix`, else the config's `[cluster]`.
pub(super) struct EtcdArgs {
    pub etcd: Vec<String>,
    pub prefix: Option<String>,
}

/// `config push`: validates `path` as `check` does, then stores its fleet
/// tables and zone files as the next revision.
pub(super) fn push(path: &Path, at: EtcdArgs, message: Option<String>) -> anyhow::Result<ExitCode> {
    let (doc, kept, cluster) = local_doc(path, &at)?;
    let doc = FleetDoc { message, ..doc };
    super::block_on(async {
        let etcd = connect(&cluster).await?;
        if let Some(current) = fleetcfg::fetch_current(&etcd, &cluster.prefix)
            .await
            .map_err(anyhow::Error::msg)?
            && current.config == doc.config
            && current.zones == doc.zones
        {
            println!(
                "nothing to push: revision {} in etcd is the same",
                current.revision
            );
            return Ok(ExitCode::SUCCESS);
        }
        let n = fleetcfg::push(&etcd, &cluster.prefix, doc)
            .await
            .map_err(anyhow::Error::msg)?;
        println!(
            "pushed revision {n} to {} ({}; kept on each node: {})",
            fleetcfg::current_key(&cluster.prefix),
            path.display(),
            if kept.is_empty() {
                "nothing".to_string()
            } else {
                kept.join(", ")
            }
        );
        Ok(ExitCode::SUCCESS)
    })?
}

/// `config diff`: what a push of `path` would change.
pub(super) fn diff(path: &Path, at: EtcdArgs) -> anyhow::Result<ExitCode> {
    let (doc, _, cluster) = local_doc(path, &at)?;
    super::block_on(async {
        let etcd = connect(&cluster).await?;
        let current = fleetcfg::fetch_current(&etcd, &cluster.prefix)
            .await
            .map_err(anyhow::Error::msg)?;
        let (old, label) = match &current {
            Some(c) => (c.comparable(), format!("revision {}", c.revision)),
            None => (String::new(), "an empty etcd".to_string()),
        };
        let diff = fleet::diff(&old, &doc.comparable());
        if diff.is_empty() {
            println!("no difference between {} and {label}", path.display());
        } else {
            println!("# {label} (etcd) -> {} (local)", path.display());
            print!("{diff}");
        }
        Ok(ExitCode::SUCCESS)
    })?
}

/// `config history`: the revisions etcd keeps, newest first; `*` marks the
/// current one.
pub(super) fn history(path: Option<&Path>, at: EtcdArgs) -> anyhow::Result<ExitCode> {
    let cluster = cluster_of(path, &at)?;
    super::block_on(async {
        let etcd = connect(&cluster).await?;
        let docs = fleetcfg::history(&etcd, &cluster.prefix)
            .await
            .map_err(anyhow::Error::msg)?;
        let current = fleetcfg::fetch_current(&etcd, &cluster.prefix)
            .await
            .map_err(anyhow::Error::msg)?
            .map(|d| d.revision);
        if docs.is_empty() {
            println!("no fleet config in etcd under {}", cluster.prefix);
            return Ok(ExitCode::SUCCESS);
        }
        println!("  {:>4}  {:<20}  {:<24}  NOTE", "REV", "PUSHED (UTC)", "BY");
        for d in docs.iter().rev() {
            let mark = if Some(d.revision) == current {
                "*"
            } else {
                " "
            };
            let note = match (d.rollback_of, &d.message) {
                (Some(r), Some(m)) => format!("rollback to {r}: {m}"),
                (Some(r), None) => format!("rollback to {r}"),
                (None, Some(m)) => m.clone(),
                (None, None) => String::new(),
            };
            println!(
                "{mark} {:>4}  {:<20}  {:<24}  {note}",
                d.revision,
                // From etcd: a time past 9999 must not panic the command.
                crate::events::rfc3339(d.at),
                d.by
            );
        }
        Ok(ExitCode::SUCCESS)
    })?
}

/// `config rollback REV`: a new revision with REV's config and zones.
pub(super) fn rollback(
    path: Option<&Path>,
    at: EtcdArgs,
    revision: u64,
) -> anyhow::Result<ExitCode> {
    let cluster = cluster_of(path, &at)?;
    super::block_on(async {
        let etcd = connect(&cluster).await?;
        let old = fleetcfg::fetch(&etcd, &cluster.prefix, revision)
            .await
            .map_err(anyhow::Error::msg)?;
        let doc = FleetDoc {
            revision: 0,
            by: who(),
            at: crate::wallclock::unix_ms(),
            message: None,
            rollback_of: Some(revision),
            ..old
        };
        let n = fleetcfg::push(&etcd, &cluster.prefix, doc)
            .await
            .map_err(anyhow::Error::msg)?;
        println!("pushed revision {n}: the config of revision {revision}");
        Ok(ExitCode::SUCCESS)
    })?
}

/// The fleet doc of a full config file, validated as `check` validates it;
/// the local tables it leaves out; where etcd is.
fn local_doc(path: &Path, at: &EtcdArgs) -> anyhow::Result<(FleetDoc, Vec<String>, ClusterConfig)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    if fleet::from_etcd(&text) == Some(true) {
        bail!(
            "{} is a node's local file (its config comes from etcd); push the fleet's full config instead",
            path.display()
        );
    }
    let loaded = match Loaded::from_path(path, &crate::metrics::Registry::default()) {
        Ok(l) => l,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            bail!(
                "{} does not load ({} problems): nothing pushed",
                path.display(),
                errors.0.len()
            );
        }
    };
    let split = fleet::split(&text).map_err(anyhow::Error::msg)?;
    let mut zones = BTreeMap::new();
    for (zone, _) in split.zone_paths {
        // The loaded config resolved the path: read that one.
        let origin = format!("{}.", zone.trim_end_matches('.').to_ascii_lowercase());
        let file = loaded
            .config
            .zones
            .iter()
            .find(|z| z.origin == origin)
            .map(|z| z.path.clone())
            .with_context(|| format!("zone {zone} is not in the loaded config"))?;
        let body = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read zone file {}", file.display()))?;
        zones.insert(zone, body);
    }
    let doc = FleetDoc {
        revision: 0,
        config: split.config,
        zones,
        by: who(),
        at: crate::wallclock::unix_ms(),
        message: None,
        rollback_of: None,
    };
    let cluster = cluster_with(loaded.config.cluster.clone(), at)?;
    Ok((doc, split.kept_local, cluster))
}

/// Where etcd is, from `path`'s `[cluster]` (if any) and the flags.
fn cluster_of(path: Option<&Path>, at: &EtcdArgs) -> anyhow::Result<ClusterConfig> {
    let from_file = match path {
        Some(p) => crate::config::load(p, &crate::state::host_name())
            .ok()
            .and_then(|(c, _)| c.cluster)
            .or(crate::config::fleet_cluster(p, &crate::state::host_name())
                .ok()
                .flatten()),
        None => None,
    };
    cluster_with(from_file, at)
}

fn cluster_with(from_file: Option<ClusterConfig>, at: &EtcdArgs) -> anyhow::Result<ClusterConfig> {
    let mut cluster = match from_file {
        Some(c) => c,
        None if at.etcd.is_empty() => {
            bail!("where is etcd? give --etcd URL (or a config with a [cluster] table)")
        }
        None => ClusterConfig {
            etcd: Vec::new(),
            node: String::new(),
            prefix: "/geosteer".to_string(),
            location: None,
            lease: std::time::Duration::from_secs(10),
            partition_grace: std::time::Duration::from_secs(60),
            username: None,
            password: None,
            ca: None,
            cert: None,
            key: None,
            config_from_etcd: false,
            config_dir: PathBuf::from(DEFAULT_CONFIG_DIR),
        },
    };
    if !at.etcd.is_empty() {
        cluster.etcd = at.etcd.clone();
    }
    if let Some(p) = &at.prefix {
        if !p.starts_with('/') || p.ends_with('/') {
            bail!("--prefix {p:?} must start with '/' and not end with one, e.g. /geosteer");
        }
        cluster.prefix = p.clone();
    }
    Ok(cluster)
}

async fn connect(cluster: &ClusterConfig) -> anyhow::Result<Etcd> {
    use crate::cluster::etcd::EtcdError;
    let etcd = Etcd::new(cluster).map_err(anyhow::Error::msg)?;
    let reached = async {
        etcd.authenticate().await?;
        etcd.get(&fleetcfg::current_key(&cluster.prefix)).await
    };
    match reached.await {
        Ok(_) => Ok(etcd),
        Err(EtcdError::Unreachable(e)) => Err(anyhow::Error::new(super::Unreachable(format!(
            "etcd ({}) does not answer: {e}",
            cluster.etcd.join(", ")
        )))),
        Err(e) => Err(anyhow::anyhow!("etcd ({}): {e}", cluster.etcd.join(", "))),
    }
}

/// `user@host`, for the history.
fn who() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_string());
    format!("{user}@{}", crate::state::host_name())
}

//! fleetcfg: one config for the fleet through etcd (`[cluster] config =
//! "etcd"`), the IO half of [`crate::config::fleet`].
//!
//! In etcd, under the fleet's prefix:
//!
//! ```text
//! PREFIX/config/current        N                 the revision every node should run
//! PREFIX/config/rev/000…N      FleetDoc (JSON)   revision N, the last KEEP_REVISIONS kept
//! ```
//!
//! `geosteer config push` writes revision N+1 and moves `current` in one
//! transaction guarded by `current`'s old value, so two pushes at once
//! cannot both win. Each node follows `current` ([`follow`]): it writes the
//! revision under `[cluster] config_dir` (`rev-N/fleet.toml` and
//! `rev-N/zones/*.zone`), points `config_dir/current` at it and reloads,
//! exactly as on SIGHUP. A revision that does not load on a node leaves the
//! node on the one it runs (`current` pointed back), logged, and published
//! beside its verdicts so that `/api/v1/cluster` and `status` flag it. At
//! start the node reads `current` from etcd (bounded, [`prime`]); when etcd
//! is unreachable it starts from the revision it ran last.

use std::future::Future;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::etcd::{Etcd, EtcdError, Event, WatchMessage, Write};
use crate::config::ClusterConfig;
use crate::config::fleet::{self, FleetDoc};
use crate::state::FleetConfigState;

/// Revisions kept in etcd for `config history` and `config rollback`.
pub const KEEP_REVISIONS: u64 = 20;
/// How long a starting node waits for etcd before using its last revision.
const PRIME_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between attempts to reach etcd.
const RETRY: Duration = Duration::from_secs(1);
/// Revision folders kept under `config_dir` (the serving one included).
const KEEP_LOCAL: usize = 3;

/// `PREFIX/config/current`.
pub fn current_key(prefix: &str) -> String {
    format!("{prefix}/config/current")
}

/// `PREFIX/config/rev/N`, zero-padded so that keys sort by revision.
pub fn revision_key(prefix: &str, n: u64) -> String {
    format!("{prefix}/config/rev/{n:020}")
}

fn revisions_prefix(prefix: &str) -> String {
    format!("{prefix}/config/rev/")
}

/// The revision `current` names, if any, and the doc.
pub async fn fetch_current(etcd: &Etcd, prefix: &str) -> Result<Option<FleetDoc>, String> {
    let Some(n) = current_revision(etcd, prefix).await? else {
        return Ok(None);
    };
    fetch(etcd, prefix, n).await.map(Some)
}

async fn current_revision(etcd: &Etcd, prefix: &str) -> Result<Option<u64>, String> {
    let value = etcd
        .get(&current_key(prefix))
        .await
        .map_err(|e| e.to_string())?;
    value
        .map(|v| {
            String::from_utf8_lossy(&v)
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("{}: not a revision number", current_key(prefix)))
        })
        .transpose()
}

/// Revision `n` from etcd.
pub async fn fetch(etcd: &Etcd, prefix: &str, n: u64) -> Result<FleetDoc, String> {
    let value = etcd
        .get(&revision_key(prefix, n))
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| {
            format!("revision {n} is not in etcd (only the last {KEEP_REVISIONS} are kept)")
        })?;
    serde_json::from_slice(&value).map_err(|e| format!("revision {n} in etcd: {e}"))
}

/// The revisions kept in etcd, oldest first.
pub async fn history(etcd: &Etcd, prefix: &str) -> Result<Vec<FleetDoc>, String> {
    let (_, kvs) = etcd
        .range(&revisions_prefix(prefix))
        .await
        .map_err(|e| e.to_string())?;
    let mut docs: Vec<FleetDoc> = kvs
        .iter()
        .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
        .collect();
    docs.sort_by_key(|d| d.revision);
    Ok(docs)
}

/// Stores `doc` as the next revision and makes it current, in one
/// transaction that fails when another push moved `current` meanwhile
/// (then it tries again on the new one, three times). Returns the revision.
pub async fn push(etcd: &Etcd, prefix: &str, mut doc: FleetDoc) -> Result<u64, String> {
    for _ in 0..3 {
        let old = current_revision(etcd, prefix).await?;
        let n = old.unwrap_or(0) + 1;
        doc.revision = n;
        let body = serde_json::to_string(&doc).map_err(|e| e.to_string())?;
        let mut writes = vec![
            Write::Put(revision_key(prefix, n), body, 0),
            Write::Put(current_key(prefix), n.to_string(), 0),
        ];
        if n > KEEP_REVISIONS {
            writes.push(Write::Delete(revision_key(prefix, n - KEEP_REVISIONS)));
        }
        let expected = old.map(|o| o.to_string());
        match etcd
            .write_if(
                &current_key(prefix),
                expected.as_deref().map(str::as_bytes),
                &writes,
            )
            .await
        {
            Ok(true) => return Ok(n),
            Ok(false) => continue,
            Err(EtcdError::Refused(m)) if m.contains("too large") => {
                return Err(format!(
                    "etcd refused revision {n} as too large ({} bytes of config and zones; etcd's --max-request-bytes is 1.5 MiB by default): {m}",
                    doc.comparable().len()
                ));
            }
            Err(e) => return Err(e.to_string()),
        }
    }
    Err("another push moved the current revision three times meanwhile; try again".into())
}

/// Writes revision `doc` under `config_dir`: its zone files and
/// `fleet.toml`, each written to a temporary name, synced and renamed.
pub fn write_revision(config_dir: &Path, doc: &FleetDoc) -> Result<(), String> {
    // Absolute: `fleet.toml` names its zone files by full path.
    let config_dir =
        std::path::absolute(config_dir).map_err(|e| format!("{}: {e}", config_dir.display()))?;
    let dir = fleet::revision_dir(&config_dir, doc.revision);
    let zones = dir.join("zones");
    std::fs::create_dir_all(&zones).map_err(|e| format!("{}: {e}", zones.display()))?;
    for (zone, text) in &doc.zones {
        write_atomic(&dir.join(fleet::zone_file(zone)), text.as_bytes())?;
    }
    let config = fleet::materialize(doc, &dir)?;
    write_atomic(&dir.join(fleet::FLEET_FILE), config.as_bytes())
}

/// Points `config_dir/current` at revision `n`, atomically.
pub fn set_current(config_dir: &Path, n: u64) -> Result<(), String> {
    write_atomic(
        &config_dir.join(fleet::CURRENT_FILE),
        format!("{n}\n").as_bytes(),
    )
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp).map_err(fail)?;
    file.write_all(bytes).map_err(fail)?;
    file.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)?;
    if let Some(parent) = path.parent()
        && let Ok(dir) = std::fs::File::open(parent)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Removes revision folders but the newest [`KEEP_LOCAL`] and `serving`.
fn prune(config_dir: &Path, serving: u64) {
    let Ok(entries) = std::fs::read_dir(config_dir) else {
        return;
    };
    let mut revs: Vec<u64> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("rev-")?.parse().ok())
        .collect();
    revs.sort_unstable_by(|a, b| b.cmp(a));
    for n in revs.into_iter().skip(KEEP_LOCAL).filter(|n| *n != serving) {
        let _ = std::fs::remove_dir_all(fleet::revision_dir(config_dir, n));
    }
}

/// At start: writes etcd's current revision under `config_dir` and points
/// `current` at it, so the node starts on what the fleet runs. When etcd
/// does not answer within [`PRIME_TIMEOUT`], the node starts from the
/// revision it ran last (a warning says so); the config load fails with
/// a clear message when it never received one. Returns the revision the
/// node ran last when `current` moved away from it, so that the start can
/// go back to it if the new one does not load here ([`unprime`]).
pub async fn prime(cluster: &ClusterConfig) -> Result<Option<u64>, String> {
    let etcd = Etcd::new(cluster)?;
    let fetched = tokio::time::timeout(PRIME_TIMEOUT, async {
        let _ = etcd.authenticate().await;
        fetch_current(&etcd, &cluster.prefix).await
    })
    .await;
    match fetched {
        Ok(Ok(Some(doc))) => {
            let last = fleet::current(&cluster.config_dir).ok();
            write_revision(&cluster.config_dir, &doc)?;
            set_current(&cluster.config_dir, doc.revision)?;
            tracing::info!(revision = doc.revision, "fleet config: revision from etcd");
            Ok(last.filter(|n| *n != doc.revision))
        }
        Ok(Ok(None)) => match fleet::current(&cluster.config_dir) {
            // etcd lost its data (or is a new cluster): what ran last.
            Ok(n) => {
                tracing::warn!(
                    "fleet config: etcd has no config under {}; starting from revision {n}, the last received",
                    current_key(&cluster.prefix)
                );
                Ok(None)
            }
            Err(_) => Err(format!(
                "fleet config: etcd has no config under {} yet: push one with `geosteer config push`",
                current_key(&cluster.prefix)
            )),
        },
        Ok(Err(e)) => {
            tracing::warn!("fleet config: {e}; starting from the last revision received");
            Ok(None)
        }
        Err(_) => {
            tracing::warn!(
                "fleet config: etcd did not answer within {PRIME_TIMEOUT:?}; starting from the last revision received"
            );
            Ok(None)
        }
    }
}

/// At start, when the revision [`prime`] fetched does not load here: points
/// `config_dir/current` back at `last`, the revision the node ran before,
/// and returns the one that failed, for `FleetConfigState::failed` (so the
/// node is flagged as behind and [`follow`] does not try it again). A
/// restart then keeps the node on its old revision, as a push does.
pub fn unprime(cluster: &ClusterConfig, last: u64, why: &str) -> Result<(u64, String), String> {
    let failed = fleet::current(&cluster.config_dir)?;
    set_current(&cluster.config_dir, last)?;
    tracing::error!(
        revision = failed,
        "fleet config: revision {failed} does not load here, starting on revision {last}: {why}"
    );
    Ok((failed, why.to_string()))
}

/// Follows `current` in etcd until `stop`: each new revision is written
/// under `config_dir` and loaded with `reload` (the same as SIGHUP). A
/// revision that fails to load leaves the node on the one it serves and is
/// recorded in `state` (`None` again once a later one loads). `serving`
/// gives the revision the running config came from.
pub async fn follow<R, F>(
    cluster: ClusterConfig,
    state: Arc<std::sync::Mutex<FleetConfigState>>,
    serving: impl Fn() -> Option<u64>,
    reload: R,
    stop: CancellationToken,
) where
    R: Fn() -> F,
    F: Future<Output = Result<(), String>>,
{
    let etcd = match Etcd::new(&cluster) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!("fleet config: {e}");
            return;
        }
    };
    let key = current_key(&cluster.prefix);
    loop {
        let session = async {
            let _ = etcd.authenticate().await;
            let (revision, kvs) = etcd.range(&key).await.map_err(|e| e.to_string())?;
            if let Some(n) = kvs.iter().find(|kv| kv.key == key).and_then(|kv| {
                String::from_utf8_lossy(&kv.value)
                    .trim()
                    .parse::<u64>()
                    .ok()
            }) {
                apply(&etcd, &cluster, n, &state, &serving, &reload).await?;
            }
            let mut watch = etcd
                .watch(&key, revision + 1)
                .await
                .map_err(|e| e.to_string())?;
            loop {
                match watch.next().await.map_err(|e| e.to_string())? {
                    WatchMessage::Events(events) => {
                        let newest = events.iter().rev().find_map(|e| match e {
                            Event::Put(kv) if kv.key == key => String::from_utf8_lossy(&kv.value)
                                .trim()
                                .parse::<u64>()
                                .ok(),
                            _ => None,
                        });
                        if let Some(n) = newest {
                            apply(&etcd, &cluster, n, &state, &serving, &reload).await?;
                        }
                    }
                    WatchMessage::Nothing => {}
                    WatchMessage::Ended(why) => return Err::<(), String>(why),
                }
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            result = session => {
                if let Err(e) = result {
                    tracing::debug!("fleet config: {e}; following again in {RETRY:?}");
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(RETRY) => {}
        }
    }
}

/// Loads revision `n` unless this node serves it already or it failed here.
/// Err: etcd or the disk failed before the load (the session starts over
/// and tries again); a revision that does not load is recorded instead.
async fn apply<R, F>(
    etcd: &Etcd,
    cluster: &ClusterConfig,
    n: u64,
    state: &std::sync::Mutex<FleetConfigState>,
    serving: &impl Fn() -> Option<u64>,
    reload: &R,
) -> Result<(), String>
where
    R: Fn() -> F,
    F: Future<Output = Result<(), String>>,
{
    let before = serving();
    let failed_already = state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .failed
        .as_ref()
        .is_some_and(|(f, _)| *f == n);
    if before == Some(n) || failed_already {
        return Ok(());
    }
    let dir = &cluster.config_dir;
    let doc = fetch(etcd, &cluster.prefix, n).await?;
    write_revision(dir, &doc)?;
    set_current(dir, n)?;
    let outcome = reload().await;
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    match outcome {
        Ok(()) => {
            tracing::info!(revision = n, "fleet config: now serving revision {n}");
            st.failed = None;
            prune(dir, n);
        }
        Err(e) => {
            // Back to what serves, so that a SIGHUP reloads that one.
            if let Some(b) = before
                && let Err(back) = set_current(dir, b)
            {
                tracing::error!("fleet config: {back}");
            }
            tracing::error!(
                revision = n,
                "fleet config: revision {n} does not load here, still serving {}: {e}",
                before.map_or("the config it started with".to_string(), |b| format!(
                    "revision {b}"
                ))
            );
            st.failed = Some((n, e));
        }
    }
    Ok(())
}

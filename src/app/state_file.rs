//! state_file: a single node's drains, runtime weights and overrides, kept
//! across restarts in `[server] state_file` (a fleet keeps them in etcd),
//! and the runtime weights of proxy backends' servers.
//!
//! The health writer saves the file after every command that changes one of
//! them (and after a reload), before the command returns: when the admin API
//! says a drain is done, it is on disk. A save writes a temporary file next
//! to it, fsyncs it, renames it over the old one and fsyncs the folder, so a
//! crash leaves the old file or the new one, never half of one.
//!
//! At start-up [`read`] refuses a file it cannot parse: it is moved aside
//! (`NAME.corrupt-UNIXMS`) and the start fails naming both paths, so the
//! state it held is never dropped silently. Entries for endpoints the config
//! no longer has are reported and dropped ([`apply`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{BackendId, Config, EndpointKey, PoolId};
use crate::control::MAX_RUNTIME_WEIGHT;
use crate::health::ramp::Direction;
use crate::health::{Forced, HealthBook, HealthView};

/// The file's format version.
const VERSION: u32 = 1;

/// What the file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Saved {
    pub version: u32,
    pub endpoints: Vec<SavedEndpoint>,
    /// Proxy backends' servers with a runtime weight (absent when none:
    /// files written before servers had one read the same).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<SavedServer>,
}

impl Default for Saved {
    fn default() -> Saved {
        Saved {
            version: VERSION,
            endpoints: Vec::new(),
            servers: Vec::new(),
        }
    }
}

/// One proxy server's runtime weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedServer {
    pub backend: String,
    /// `host:port`, as in the config.
    pub server: String,
    pub weight: u32,
}

/// One endpoint's operator state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedEndpoint {
    pub pool: String,
    /// Its key: the address (or name) as in the config.
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drained: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    #[serde(default, rename = "override", skip_serializing_if = "Option::is_none")]
    pub forced: Option<Forced>,
    /// A gradual drain under way (`drain --over`): resumed where it was
    /// after a restart, or drained at once when it ended meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_over: Option<DrainOver>,
}

/// A gradual drain's period, wall clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainOver {
    pub start_unix_ms: u64,
    pub end_unix_ms: u64,
}

/// The operator state of `view` (of `config`): every endpoint drained,
/// weighted or overridden, and every proxy server weighted, in config order.
pub fn of(config: &Config, view: &HealthView) -> Saved {
    let mut endpoints = Vec::new();
    for (pool, ph) in config.pools.iter().zip(&view.pools) {
        for (e, eh) in pool.endpoints.iter().zip(&ph.endpoints) {
            let drain_over =
                eh.ramp
                    .filter(|r| r.direction == Direction::Down)
                    .map(|r| DrainOver {
                        start_unix_ms: r.start_unix_ms,
                        end_unix_ms: r.end_unix_ms,
                    });
            if eh.draining || eh.weight.is_some() || eh.forced.is_some() || drain_over.is_some() {
                endpoints.push(SavedEndpoint {
                    pool: pool.name.clone(),
                    endpoint: e.key().to_string(),
                    drained: eh.draining,
                    weight: eh.weight,
                    forced: eh.forced.clone(),
                    drain_over,
                });
            }
        }
    }
    let mut servers = Vec::new();
    for (b, bh) in config.backends.iter().zip(&view.backends) {
        for (sv, sh) in b.servers.iter().zip(&bh.servers) {
            if let Some(weight) = sh.weight {
                servers.push(SavedServer {
                    backend: b.name.clone(),
                    server: sv.address.to_string(),
                    weight,
                });
            }
        }
    }
    Saved {
        version: VERSION,
        endpoints,
        servers,
    }
}

/// Reads `path`: absent is no saved state. A file that does not parse is
/// moved aside (`NAME.corrupt-<now_unix_ms>`) and refused with an error
/// naming both paths.
pub fn read(path: &Path, now_unix_ms: u64) -> Result<Saved, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Saved::default()),
        Err(e) => return Err(format!("server.state_file {}: {e}", path.display())),
    };
    let why = match serde_json::from_slice::<Saved>(&bytes) {
        Ok(s) if s.version == VERSION => return Ok(s),
        Ok(s) => format!(
            "format version {} (this geosteer reads {VERSION})",
            s.version
        ),
        Err(e) => e.to_string(),
    };
    let aside = aside(path, now_unix_ms);
    let moved = match std::fs::rename(path, &aside) {
        Ok(()) => format!("moved aside to {}", aside.display()),
        Err(e) => format!("could not move it aside to {}: {e}", aside.display()),
    };
    Err(format!(
        "server.state_file {} is corrupt ({why}); {moved}. Refusing to start without the drains, weights and overrides it held: fix it and move it back, or start again to begin with none",
        path.display()
    ))
}

fn aside(path: &Path, now_unix_ms: u64) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    path.with_file_name(format!("{name}.corrupt-{now_unix_ms}"))
}

/// Puts `saved` into `book` (of `config`). Returns the entries it dropped,
/// each with why (an endpoint no longer in the config, a bad weight).
pub fn apply(book: &mut HealthBook, config: &Config, saved: &Saved) -> Vec<String> {
    let mut dropped = Vec::new();
    for s in &saved.endpoints {
        let found = config.pool_id(&s.pool).and_then(|p| {
            let key = EndpointKey::parse(&s.endpoint)?;
            let i = config
                .pool(p)
                .endpoints
                .iter()
                .position(|e| e.key() == key)?;
            Some((p, i as u32))
        });
        let Some((pool, endpoint)) = found else {
            dropped.push(format!(
                "pool {} endpoint {}: not in the config any more",
                s.pool, s.endpoint
            ));
            continue;
        };
        put(book, pool, endpoint, s, &mut dropped);
    }
    for s in &saved.servers {
        let found = config
            .backends
            .iter()
            .position(|b| b.name == s.backend)
            .and_then(|b| {
                let addr: std::net::SocketAddr = s.server.parse().ok()?;
                let i = config.backends[b]
                    .servers
                    .iter()
                    .position(|x| x.address == addr)?;
                Some((BackendId(b as u32), i as u32))
            });
        let Some((backend, server)) = found else {
            dropped.push(format!(
                "backend {} server {}: not in the config any more",
                s.backend, s.server
            ));
            continue;
        };
        if !(1..=MAX_RUNTIME_WEIGHT).contains(&s.weight) {
            dropped.push(format!(
                "backend {} server {}: weight {} is not 1-{MAX_RUNTIME_WEIGHT}",
                s.backend, s.server, s.weight
            ));
            continue;
        }
        book.set_server_weight(backend, server, Some(s.weight));
    }
    dropped
}

fn put(
    book: &mut HealthBook,
    pool: PoolId,
    endpoint: u32,
    s: &SavedEndpoint,
    dropped: &mut Vec<String>,
) {
    if s.drained {
        book.set_draining(pool, endpoint, true);
    }
    match s.weight {
        Some(w) if !(1..=MAX_RUNTIME_WEIGHT).contains(&w) => dropped.push(format!(
            "pool {} endpoint {}: weight {w} is not 1-{MAX_RUNTIME_WEIGHT}",
            s.pool, s.endpoint
        )),
        w => {
            book.set_weight(pool, endpoint, w);
        }
    }
    if s.forced.is_some() {
        book.set_forced(pool, endpoint, s.forced.clone());
    }
    // The same ramp as before the restart (an ended one drains at the
    // writer's first step).
    if let Some(d) = s.drain_over
        && !s.drained
    {
        let period =
            std::time::Duration::from_millis(d.end_unix_ms.saturating_sub(d.start_unix_ms));
        book.drain_over(pool, endpoint, period, d.start_unix_ms);
    }
}

/// Writes `saved` to `path` atomically: a temporary file beside it, fsync,
/// rename, fsync of the folder.
pub fn write(path: &Path, saved: &Saved) -> std::io::Result<()> {
    let mut text = serde_json::to_vec_pretty(saved).map_err(std::io::Error::other)?;
    text.push(b'\n');
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved() -> Saved {
        Saved {
            version: VERSION,
            endpoints: vec![SavedEndpoint {
                pool: "eu".into(),
                endpoint: "192.0.2.1".into(),
                drained: true,
                weight: Some(4),
                forced: Some(Forced {
                    up: false,
                    reason: "disk swap".into(),
                    until_unix_ms: None,
                }),
                drain_over: None,
            }],
            servers: vec![SavedServer {
                backend: "web".into(),
                server: "127.0.0.1:9001".into(),
                weight: 4,
            }],
        }
    }

    #[test]
    fn a_write_reads_back_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        assert_eq!(read(&path, 1).expect("absent"), Saved::default());
        write(&path, &saved()).expect("write");
        assert_eq!(read(&path, 1).expect("read"), saved());
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["state.json".to_string()]);
    }

    #[test]
    fn a_corrupt_file_is_refused_and_moved_aside() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        std::fs::write(&path, b"{\"version\": 1, \"endpoints\": [").expect("write");
        let e = read(&path, 42).expect_err("corrupt");
        let aside = dir.path().join("state.json.corrupt-42");
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains(&aside.display().to_string()), "{e}");
        assert!(!path.exists() && aside.exists());
        std::fs::write(&path, b"{\"version\": 7, \"endpoints\": []}").expect("write");
        let e = read(&path, 43).expect_err("another version");
        assert!(e.contains("format version 7"), "{e}");
    }
}

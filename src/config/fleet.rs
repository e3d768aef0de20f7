//! fleet: one config for the whole fleet, kept in etcd (`[cluster] config =
//! "etcd"`).
//!
//! The fleet's config is every table of `geosteer.toml` except `[server]`
//! and `[cluster]`, the node's own (the same split the config-skew
//! fingerprint makes), plus the text of every zone file it names. `geosteer
//! config push` stores one [`FleetDoc`] per revision; each node keeps a small
//! local file with its `[server]` and `[cluster]`, writes the revision it
//! receives to `[cluster] config_dir` ([`materialize`] says how) and loads
//! the two together ([`merge`]) exactly as it loads one file. DNSSEC key
//! files, TLS certificates and GeoIP databases stay on each node: relative
//! paths resolve against the local file.
//!
//! Text in, text out, except [`current`], which reads the one small file the
//! shell writes; the shell writes the revisions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The tables each node keeps in its local file.
pub const LOCAL_TABLES: [&str; 2] = ["server", "cluster"];

/// The value of `[cluster] config` that reads the fleet's config from etcd.
pub const FROM_ETCD: &str = "etcd";

/// `[cluster] config_dir` when unset (systemd's `StateDirectory=geosteer`).
pub const DEFAULT_CONFIG_DIR: &str = "/var/lib/geosteer/fleet-config";

/// In a revision's folder: the fleet's tables, zones pointing at its copies.
pub const FLEET_FILE: &str = "fleet.toml";

/// In `config_dir`: the number of the revision the node serves.
pub const CURRENT_FILE: &str = "current";

/// The folder of revision `n` under `config_dir`.
pub fn revision_dir(config_dir: &Path, n: u64) -> PathBuf {
    config_dir.join(format!("rev-{n}"))
}

/// `[cluster] config_dir` of a local file's text, resolved against `base`.
pub fn config_dir(local: &str, base: &Path) -> PathBuf {
    let table: Option<toml::Table> = local.parse().ok();
    let dir = table
        .as_ref()
        .and_then(|t| t.get("cluster"))
        .and_then(|c| c.get("config_dir"))
        .and_then(|v| v.as_str())
        .unwrap_or(DEFAULT_CONFIG_DIR);
    base.join(dir)
}

/// The revision `config_dir` says the node serves.
pub fn current(config_dir: &Path) -> Result<u64, String> {
    let file = config_dir.join(CURRENT_FILE);
    let text = std::fs::read_to_string(&file).map_err(|e| {
        format!(
            "no fleet config received yet ({}: {e}); push one with `geosteer config push`, and start the node while etcd is reachable",
            file.display()
        )
    })?;
    text.trim().parse().map_err(|_| {
        format!(
            "{}: {:?} is not a revision number",
            file.display(),
            text.trim()
        )
    })
}

/// One revision of the fleet's config as stored in etcd
/// (`PREFIX/config/rev/N`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetDoc {
    /// 1, 2, 3…: one more per push or rollback.
    pub revision: u64,
    /// The TOML of the fleet's tables; `[zones]` names each zone's file as
    /// `zones/<zone>.zone` ([`zone_file`]).
    pub config: String,
    /// Zone file text by zone name (as `[zones]` spells it).
    pub zones: BTreeMap<String, String>,
    /// Who pushed it (`user@host`) and when (Unix ms).
    pub by: String,
    pub at: u64,
    /// `--message`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A rollback: the revision it restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_of: Option<u64>,
}

impl FleetDoc {
    /// What [`diff`] compares: the config and each zone, as one text.
    pub fn comparable(&self) -> String {
        let mut text = self.config.clone();
        for (zone, body) in &self.zones {
            text.push_str(&format!("\n# ---- zone {zone} ----\n"));
            text.push_str(body);
        }
        text
    }
}

/// The file name a zone is stored under: `zones/<zone>.zone`, the zone in
/// lower case without a trailing dot (names are letters, digits, `-`, `_`
/// and dots; anything else becomes `_`).
pub fn zone_file(zone: &str) -> String {
    let name: String = zone
        .trim_end_matches('.')
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("zones/{name}.zone")
}

/// Whether config text asks for the fleet's config from etcd: its
/// `[cluster] config` is `"etcd"`. None when the text does not parse (the
/// full parse reports it).
pub fn from_etcd(text: &str) -> Option<bool> {
    let table: toml::Table = text.parse().ok()?;
    Some(
        table
            .get("cluster")
            .and_then(|c| c.get("config"))
            .and_then(|v| v.as_str())
            == Some(FROM_ETCD),
    )
}

/// What `config push` stores from a full config: its fleet tables (every
/// table but `[server]` and `[cluster]`) with `[zones]` pointing at
/// [`zone_file`] names, and the zone paths as the config wrote them (to be
/// read by the caller, relative to the config's folder). Also returns the
/// local tables it left out, for the message.
pub fn split(text: &str) -> Result<Split, String> {
    let mut table: toml::Table = text.parse().map_err(|e| format!("{e}"))?;
    let kept_local = LOCAL_TABLES
        .iter()
        .filter(|t| table.remove(**t).is_some())
        .map(|t| format!("[{t}]"))
        .collect();
    let mut zone_paths = BTreeMap::new();
    if let Some(zones) = table.get_mut("zones").and_then(|z| z.as_table_mut()) {
        for (zone, value) in zones.iter_mut() {
            let Some(path) = value.as_str() else {
                return Err(format!("zones.{zone}: not a file path"));
            };
            zone_paths.insert(zone.clone(), path.to_string());
            *value = toml::Value::String(zone_file(zone));
        }
    }
    let config = toml::to_string(&table).map_err(|e| format!("{e}"))?;
    Ok(Split {
        config,
        zone_paths,
        kept_local,
    })
}

/// See [`split`].
#[derive(Debug, Clone, PartialEq)]
pub struct Split {
    pub config: String,
    pub zone_paths: BTreeMap<String, String>,
    pub kept_local: Vec<String>,
}

/// The fleet's config as a node loads it, once its zone files were written
/// under `dir`: `[zones]` rewritten to those files' full paths.
pub fn materialize(doc: &FleetDoc, dir: &Path) -> Result<String, String> {
    let mut table: toml::Table = doc
        .config
        .parse()
        .map_err(|e| format!("revision {}: {e}", doc.revision))?;
    if let Some(zones) = table.get_mut("zones").and_then(|z| z.as_table_mut()) {
        for (zone, value) in zones.iter_mut() {
            let path: PathBuf = dir.join(zone_file(zone));
            *value = toml::Value::String(path.to_string_lossy().into_owned());
        }
    }
    toml::to_string(&table).map_err(|e| format!("revision {}: {e}", doc.revision))
}

/// The tables of a node's local file other than `[server]` and `[cluster]`:
/// with the fleet's config in etcd these belong there, not here.
pub fn foreign_tables(local: &str) -> Vec<String> {
    let Ok(table) = local.parse::<toml::Table>() else {
        return Vec::new();
    };
    table
        .keys()
        .filter(|k| !LOCAL_TABLES.contains(&k.as_str()))
        .cloned()
        .collect()
}

/// The text a node parses: the fleet's (materialized) config, then its local
/// file. Returns the text and the line the local part starts at (1-based),
/// so that messages can name the right file and line.
pub fn merge(fleet: &str, local: &str) -> (String, usize) {
    let mut text = String::with_capacity(fleet.len() + local.len() + 1);
    text.push_str(fleet);
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let local_from = text.lines().count() + 1;
    text.push_str(local);
    (text, local_from)
}

/// A line-by-line difference between two texts, in unified style (`-` old,
/// `+` new, two lines of context); empty when they are equal.
pub fn diff(old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(2)
        .header("etcd", "local")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
[server]
dns_listen = ["127.0.0.1:5353"]

[cluster]
etcd = ["http://127.0.0.1:2379"]

[zones]
"Example.test" = "../zones/example.test.zone"

[pools.eu]
endpoints = [{ address = "192.0.2.1" }]
"#;

    #[test]
    fn a_push_keeps_the_fleet_tables_and_names_zone_files_by_zone() {
        let s = split(FULL).expect("splits");
        assert_eq!(s.kept_local, vec!["[server]", "[cluster]"]);
        assert!(!s.config.contains("dns_listen"), "{}", s.config);
        assert!(!s.config.contains("etcd"), "{}", s.config);
        assert!(s.config.contains("zones/example.test.zone"), "{}", s.config);
        assert_eq!(
            s.zone_paths.get("Example.test").map(String::as_str),
            Some("../zones/example.test.zone")
        );
        assert!(s.config.contains("192.0.2.1"));
    }

    #[test]
    fn a_node_points_zones_at_its_copies_and_appends_its_local_file() {
        let s = split(FULL).expect("splits");
        let doc = FleetDoc {
            revision: 3,
            config: s.config,
            zones: BTreeMap::new(),
            by: "op@host".into(),
            at: 0,
            message: None,
            rollback_of: None,
        };
        let fleet = materialize(&doc, Path::new("/var/lib/g/rev-3")).expect("materializes");
        assert!(
            fleet.contains("/var/lib/g/rev-3/zones/example.test.zone"),
            "{fleet}"
        );
        let local = "[server]\ndns_listen = [\"127.0.0.1:53\"]\n";
        let (merged, from) = merge(&fleet, local);
        let table: toml::Table = merged.parse().expect("merged text is one TOML document");
        assert!(table.contains_key("server") && table.contains_key("pools"));
        assert_eq!(merged.lines().nth(from - 1), Some("[server]"));
    }

    #[test]
    fn from_etcd_reads_the_cluster_key_only() {
        assert_eq!(from_etcd("[cluster]\nconfig = \"etcd\"\n"), Some(true));
        assert_eq!(from_etcd("[cluster]\netcd = []\n"), Some(false));
        assert_eq!(from_etcd("[server"), None);
    }

    #[test]
    fn foreign_tables_are_what_a_local_file_must_not_hold() {
        assert_eq!(
            foreign_tables("[server]\n[cluster]\n[pools.x]\nendpoints = []\n"),
            vec!["pools"]
        );
    }

    #[test]
    fn diff_is_empty_for_equal_texts_and_marks_changes() {
        assert!(diff("a\nb\n", "a\nb\n").is_empty());
        let d = diff("a\nb\n", "a\nc\n");
        assert!(d.contains("-b") && d.contains("+c"), "{d}");
    }

    #[test]
    fn zone_file_names_are_tame() {
        assert_eq!(zone_file("Example.TEST."), "zones/example.test.zone");
        assert_eq!(zone_file("../etc"), "zones/.._etc.zone");
    }
}

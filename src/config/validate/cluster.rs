//! `[cluster]`: the fleet half of the validator (etcd endpoints, node name,
//! prefix, lease, credentials), and the quorum arithmetic `check` prints.

use super::super::raw::RawCluster;
use super::super::*;
use super::Validator;

/// Shortest lease: keep-alives go out every third of it, and a shorter one
/// would expire on an ordinary etcd leader election.
const MIN_LEASE: Duration = Duration::from_secs(2);
/// How long a node cut off from etcd keeps the last fleet view by default.
const DEFAULT_PARTITION_GRACE: Duration = Duration::from_secs(60);

impl Validator<'_> {
    pub(super) fn cluster(&mut self, c: &RawCluster) -> ClusterConfig {
        let key = |k: &str| format!("cluster.{k}");
        if c.etcd.is_empty() {
            self.err(
                key("etcd"),
                "needs at least one etcd client URL, e.g. \"http://127.0.0.1:2379\"",
            );
        }
        let mut tls_urls = 0;
        for (i, url) in c.etcd.iter().enumerate() {
            match url.split_once("://") {
                Some(("http", rest)) | Some(("https", rest)) if !rest.is_empty() => {
                    tls_urls += usize::from(url.starts_with("https://"));
                }
                _ => self.err(
                    format!("cluster.etcd[{i}]"),
                    format!(
                        "{url:?} is not an etcd client URL (http://HOST:PORT or https://HOST:PORT)"
                    ),
                ),
            }
        }
        if tls_urls != 0 && tls_urls != c.etcd.len() {
            self.err(
                key("etcd"),
                "mixes http:// and https:// URLs: one etcd cluster speaks one of them",
            );
        }
        let node = match &c.node {
            Some(n) => n.clone(),
            None => self.host_name.to_string(),
        };
        if node.is_empty()
            || node.len() > 63
            || !node
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            self.err(
                key("node"),
                format!("{node:?} is not a node name: 1-63 letters, digits, '-', '_' or '.', unique in the fleet (default: the host name)"),
            );
        }
        let prefix = c.prefix.clone().unwrap_or_else(|| "/geosteer".to_string());
        if !prefix.starts_with('/') || prefix.ends_with('/') || prefix.contains("//") {
            self.err(
                key("prefix"),
                format!("{prefix:?} must start with '/' and not end with one, e.g. \"/geosteer\""),
            );
        }
        let location = c.location.map(|[lat, lon]| (lat, lon));
        if let Some((lat, lon)) = location
            && (!(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon))
        {
            self.err(
                key("location"),
                "must be [latitude, longitude] in degrees (-90..90, -180..180)",
            );
        }
        let lease = self.duration(&key("lease"), c.lease.as_deref(), Duration::from_secs(10));
        if lease < MIN_LEASE {
            self.err(
                key("lease"),
                "must be at least 2s (keep-alives go out every third of it)",
            );
        }
        let partition_grace = self.duration(
            &key("partition_grace"),
            c.partition_grace.as_deref(),
            DEFAULT_PARTITION_GRACE,
        );
        if c.username.is_some() != c.password.is_some() {
            self.err(key("username"), "username and password go together");
        }
        if c.cert.is_some() != c.key.is_some() {
            self.err(
                key("cert"),
                "cert and key go together (a client certificate and its private key)",
            );
        }
        if (c.ca.is_some() || c.cert.is_some()) && tls_urls == 0 {
            self.err(key("ca"), "TLS settings need https:// etcd URLs");
        }
        let config_from_etcd = match c.config.as_deref() {
            None | Some("file") => false,
            Some(super::super::fleet::FROM_ETCD) => true,
            Some(other) => {
                self.err(
                    key("config"),
                    format!("{other:?} is not a config source: \"file\" (this file, the default) or \"etcd\" (pushed with `geosteer config push`)"),
                );
                false
            }
        };
        let config_dir = self.path(
            c.config_dir
                .as_deref()
                .unwrap_or(super::super::fleet::DEFAULT_CONFIG_DIR),
        );
        ClusterConfig {
            config_from_etcd,
            config_dir,
            etcd: c.etcd.clone(),
            node,
            prefix,
            location,
            lease: lease.max(MIN_LEASE),
            partition_grace,
            username: c.username.clone(),
            password: c.password.clone(),
            ca: c.ca.as_deref().map(|p| self.path(p)),
            cert: c.cert.as_deref().map(|p| self.path(p)),
            key: c.key.as_deref().map(|p| self.path(p)),
        }
    }
}

/// How many of N vantages must see an endpoint down under `quorum`, for the
/// fleet sizes operators run: the warning `check` prints.
pub(super) fn arithmetic(quorum: f64) -> String {
    let sizes = (1..=5u32)
        .map(|n| format!("{} of {n}", needed(quorum, n)))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "quorum {quorum}: an endpoint leaves the fleet's answers when more than {:.0}% of the fresh vantages see it down: {sizes}",
        quorum * 100.0
    )
}

/// The fewest down votes out of `n` that are more than `quorum` of them.
pub(super) fn needed(quorum: f64, n: u32) -> u32 {
    (0..=n)
        .find(|d| f64::from(*d) > quorum * f64::from(n))
        .unwrap_or(n)
}

//! locate: which config file a subcommand reads, and which admin API the
//! client subcommands talk to.
//!
//! Config: `--config`, else `GEOSTEER_CONFIG`, else the first of
//! [`SEARCH`] that exists (the last one when none does, so that the error
//! names it). Admin API: `--admin`, else `GEOSTEER_ADMIN`, else
//! `server.admin_listen` of that config, else [`DEFAULT_ADMIN`]. Both accept
//! a URL or `host:port`.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Where a config is looked for when neither `--config` nor
/// `GEOSTEER_CONFIG` names one, in order.
pub const SEARCH: [&str; 2] = ["/etc/geosteer/geosteer.toml", "config/geosteer.toml"];
/// The admin API when nothing names one: `server.admin_listen`'s default.
pub const DEFAULT_ADMIN: &str = "http://127.0.0.1:8053";

/// A config path and how it was chosen.
#[derive(Debug, Clone)]
pub struct Located {
    pub path: PathBuf,
    pub source: Source,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    /// The first of [`SEARCH`] that exists.
    Search,
    /// None of [`SEARCH`] exists.
    NotFound,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag => write!(f, "--config"),
            Source::Env => write!(f, "GEOSTEER_CONFIG"),
            Source::Search => write!(f, "the first of {} found", search_list()),
            Source::NotFound => write!(f, "none of {} exists", search_list()),
        }
    }
}

fn search_list() -> String {
    SEARCH
        .iter()
        .map(|p| match p.starts_with('/') {
            true => p.to_string(),
            false => format!("./{p}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The config a subcommand reads.
pub fn config(flag: Option<PathBuf>) -> Located {
    if let Some(path) = flag {
        return Located {
            path,
            source: Source::Flag,
        };
    }
    if let Some(path) = env("GEOSTEER_CONFIG") {
        return Located {
            path: PathBuf::from(path),
            source: Source::Env,
        };
    }
    match SEARCH.iter().find(|p| Path::new(p).is_file()) {
        Some(p) => Located {
            path: PathBuf::from(p),
            source: Source::Search,
        },
        None => Located {
            path: PathBuf::from(SEARCH[SEARCH.len() - 1]),
            source: Source::NotFound,
        },
    }
}

impl Located {
    /// Tells the operator which config is read when no `--config` said so
    /// (on standard error: standard output stays the command's own).
    pub fn announce(&self) {
        if self.source != Source::Flag {
            eprintln!("reading {} ({})", self.path.display(), self.source);
        }
    }
}

/// The admin API a client subcommand talks to, and where that came from.
#[derive(Debug, Clone)]
pub struct Admin {
    pub url: String,
    pub from: String,
}

/// `--admin`, else `GEOSTEER_ADMIN`, else `server.admin_listen` of the
/// config (see [`config`]), else [`DEFAULT_ADMIN`].
pub fn admin(flag: Option<String>, config_flag: Option<PathBuf>) -> anyhow::Result<Admin> {
    if let Some(a) = flag.filter(|a| !a.trim().is_empty()) {
        return Ok(Admin {
            url: url(&a).context("--admin")?,
            from: "--admin".into(),
        });
    }
    if let Some(a) = env("GEOSTEER_ADMIN") {
        return Ok(Admin {
            url: url(&a).context("GEOSTEER_ADMIN")?,
            from: "GEOSTEER_ADMIN".into(),
        });
    }
    let located = config(config_flag);
    if located.source == Source::NotFound {
        return Ok(Admin {
            url: DEFAULT_ADMIN.into(),
            from: format!("the default: {}", located.source),
        });
    }
    let path = &located.path;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {} ({})", path.display(), located.source))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{}: not valid TOML", path.display()))?;
    let from = format!("server.admin_listen of {}", path.display());
    let listen = match table.get("server").and_then(|s| s.get("admin_listen")) {
        None => {
            return Ok(Admin {
                url: DEFAULT_ADMIN.into(),
                from: format!("{} (not set: the default)", from),
            });
        }
        Some(v) => v
            .as_str()
            .with_context(|| format!("{from}: not a string"))?,
    };
    let addr: std::net::SocketAddr = listen
        .parse()
        .with_context(|| format!("{from}: {listen:?} is not IP:PORT"))?;
    if addr.port() == 0 {
        bail!(
            "{from} is {listen:?} (port 0: the server picks one at start); give --admin or GEOSTEER_ADMIN"
        );
    }
    Ok(Admin {
        url: format!("http://{}", reachable(addr)),
        from,
    })
}

/// A listen address as a client dials it: the wildcard as loopback.
fn reachable(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let ip = match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    std::net::SocketAddr::new(ip, addr.port())
}

/// A URL (`http://host:port`, `https://…`) as given, or `host:port` as an
/// `http://` URL.
pub fn url(given: &str) -> anyhow::Result<String> {
    let given = given.trim().trim_end_matches('/');
    let url = match given.contains("://") {
        true => given.to_string(),
        false => format!("http://{given}"),
    };
    let parsed = reqwest::Url::parse(&url)
        .with_context(|| format!("{given:?} is neither a URL nor host:port"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        bail!("{given:?} is neither an http(s) URL nor host:port");
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_and_urls_are_both_accepted() {
        assert_eq!(url("127.0.0.1:48080").unwrap(), "http://127.0.0.1:48080");
        assert_eq!(url("[::1]:8053").unwrap(), "http://[::1]:8053");
        assert_eq!(url("localhost:8053").unwrap(), "http://localhost:8053");
        assert_eq!(
            url("https://gslb.example:8053/").unwrap(),
            "https://gslb.example:8053"
        );
        assert!(url("ftp://x:1").is_err());
        assert!(url("not a host:port").is_err());
    }

    #[test]
    fn a_wildcard_listener_is_dialled_on_loopback() {
        assert_eq!(
            reachable("0.0.0.0:8053".parse().unwrap()).to_string(),
            "127.0.0.1:8053"
        );
        assert_eq!(
            reachable("[::]:8053".parse().unwrap()).to_string(),
            "[::1]:8053"
        );
        assert_eq!(
            reachable("192.0.2.1:8053".parse().unwrap()).to_string(),
            "192.0.2.1:8053"
        );
    }
}

//! `[server]` and `[server.rrl]`: the listener half of the validator
//! (addresses, GeoIP paths, the admin token, probe source, NSID and version,
//! rate limiting, TCP limits).

use super::super::raw::*;
use super::super::*;
use super::{Validator, parse_net};

/// `server.nsid`: every answer to an NSID query carries it, so it stays
/// short enough to leave room for records in a 512-byte answer.
const MAX_NSID: usize = 128;
/// `server.version`: one TXT character-string.
const MAX_VERSION: usize = 255;

impl Validator<'_> {
    pub(super) fn server(&mut self, raw: RawServer) -> ServerConfig {
        let mut dns_listen = Vec::new();
        if raw.dns_listen.is_empty() {
            self.err("server.dns_listen", "needs at least one address");
        }
        for (i, a) in raw.dns_listen.iter().enumerate() {
            if let Some(a) = self.socket_addr(&format!("server.dns_listen[{i}]"), a) {
                if dns_listen.contains(&a) {
                    self.err(
                        format!("server.dns_listen[{i}]"),
                        format!("{a} is listed twice"),
                    );
                }
                dns_listen.push(a);
            }
        }
        let admin_listen = match raw.admin_listen.as_deref() {
            None => SocketAddr::from(([127, 0, 0, 1], 8053)),
            Some(a) => self
                .socket_addr("server.admin_listen", a)
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8053))),
        };
        let geoip = match raw.geoip {
            None => Vec::new(),
            Some(OneOrMany::One(p)) => vec![self.path(&p)],
            Some(OneOrMany::Many(ps)) => ps.iter().map(|p| self.path(p)).collect(),
        };
        if let Some(t) = &raw.admin_token
            && t.trim().is_empty()
        {
            self.err(
                "server.admin_token",
                "must not be empty (remove the key to disable)",
            );
        }
        let allow_text = raw
            .health_query_allow
            .unwrap_or_else(|| vec!["127.0.0.0/8".into(), "::1/128".into()]);
        let mut health_query_allow = Vec::new();
        for (i, n) in allow_text.iter().enumerate() {
            match parse_net(n) {
                Ok(net) => health_query_allow.push(net),
                Err(e) => self.err(format!("server.health_query_allow[{i}]"), e),
            }
        }
        let nsid = self.identifier("server.nsid", raw.nsid, MAX_NSID);
        let version = self.identifier("server.version", raw.version, MAX_VERSION);
        let cookie_secrets = self.cookie_secrets(raw.cookie_secret);
        let require_cookie_over = match raw.require_cookie_over {
            Some(0) => {
                self.err(
                    "server.require_cookie_over",
                    "must be at least 1 query a second (remove the key to answer every query in full)",
                );
                None
            }
            n => n,
        };
        let state_file = raw.state_file.as_deref().map(|p| self.path(p));
        if raw.state_file.as_deref() == Some("") {
            self.err(
                "server.state_file",
                "must not be empty (remove the key to keep no state)",
            );
        }
        let resolvers = raw
            .resolvers
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, a)| self.socket_addr(&format!("server.resolvers[{i}]"), a))
            .collect();
        let refresh = self.refresh(raw.min_refresh.as_deref(), raw.max_refresh.as_deref());
        let stale_for = match raw.stale_for.as_deref() {
            Some("0s" | "0ms" | "0") => Duration::ZERO,
            text => self.duration("server.stale_for", text, Duration::from_secs(3600)),
        };
        ServerConfig {
            resolvers,
            refresh,
            stale_for,
            state_file,
            dns_listen,
            admin_listen,
            geoip,
            admin_token: raw.admin_token,
            health_query_allow,
            udp_workers: raw.udp_workers.unwrap_or(0),
            fast_path: raw.fast_path.unwrap_or(true),
            probe_source: raw.probe_source.as_deref().and_then(|text| {
                let ip = text.parse::<IpAddr>();
                if ip.is_err() {
                    self.err(
                        "server.probe_source",
                        format!("{text:?} is not an IP address (probes connect from it)"),
                    );
                }
                ip.ok()
            }),
            nsid,
            version,
            rrl: self.rrl(raw.rrl.as_ref()),
            tcp_idle_timeout: self.duration(
                "server.tcp_idle_timeout",
                raw.tcp_idle_timeout.as_deref(),
                Duration::from_secs(10),
            ),
            tcp_max_connections: match raw.tcp_max_connections {
                Some(0) => {
                    self.err("server.tcp_max_connections", "must be at least 1");
                    1
                }
                Some(n) => n as usize,
                None => 1000,
            },
            cookie_secret_generated: cookie_secrets.is_empty(),
            cookie_secrets,
            require_cookie_over,
        }
    }

    /// `server.min_refresh` and `max_refresh`: at least 1 s, the minimum
    /// not above the maximum.
    fn refresh(&mut self, min: Option<&str>, max: Option<&str>) -> (Duration, Duration) {
        let min = self.duration("server.min_refresh", min, Duration::from_secs(5));
        let max = self.duration("server.max_refresh", max, Duration::from_secs(300));
        if min < Duration::from_secs(1) {
            self.err(
                "server.min_refresh",
                "must be at least 1s (a host is not resolved more often)",
            );
        }
        if max < min {
            self.err(
                "server.max_refresh",
                format!(
                    "is shorter than min_refresh ({})",
                    humantime::format_duration(min)
                ),
            );
        }
        (min, max.max(min))
    }

    /// `server.cookie_secret`: one secret or a list (the first makes
    /// cookies), each 32 hexadecimal digits; empty when absent.
    fn cookie_secrets(&mut self, raw: Option<OneOrMany>) -> Vec<CookieSecret> {
        let (texts, many) = match raw {
            None => return Vec::new(),
            Some(OneOrMany::One(t)) => (vec![t], false),
            Some(OneOrMany::Many(ts)) => (ts, true),
        };
        if texts.is_empty() {
            self.err(
                "server.cookie_secret",
                "needs at least one secret (remove the key for one made at start-up)",
            );
        }
        let mut out = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            match CookieSecret::from_hex(t) {
                Some(s) => out.push(s),
                None => self.err(
                    if many {
                        format!("server.cookie_secret[{i}]")
                    } else {
                        "server.cookie_secret".to_string()
                    },
                    "must be 32 hexadecimal digits (a 128-bit secret, e.g. from `openssl rand -hex 16`)",
                ),
            }
        }
        out
    }

    fn rrl(&mut self, raw: Option<&RawRrl>) -> RrlConfig {
        let mut c = RrlConfig::default();
        let Some(r) = raw else {
            return c;
        };
        let key = |k: &str| format!("server.rrl.{k}");
        c.enabled = r.enabled.unwrap_or(true);
        if let Some(rate) = r.responses_per_second {
            if !(1..=1_000_000).contains(&rate) {
                self.err(
                    key("responses_per_second"),
                    "must be 1-1000000 (set enabled = false to turn rate limiting off)",
                );
            }
            c.responses_per_second = rate.max(1);
        }
        let window = self.duration(&key("window"), r.window.as_deref(), Duration::from_secs(15));
        if !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&window) {
            self.err(key("window"), "must be 1s-1h");
        }
        c.window_secs = window.as_secs().clamp(1, 3600) as u32;
        if let Some(slip) = r.slip {
            if slip > 10 {
                self.err(
                    key("slip"),
                    "must be 0-10 (0: drop every response over the limit; 1: truncate every one)",
                );
            }
            c.slip = slip.min(10);
        }
        if let Some(exempt) = &r.exempt {
            c.exempt.clear();
            for (i, n) in exempt.iter().enumerate() {
                match parse_net(n) {
                    Ok(net) => c.exempt.push(net),
                    Err(e) => self.err(format!("server.rrl.exempt[{i}]"), e),
                }
            }
        }
        if let Some(size) = r.table_size {
            if !(1..=16_777_216).contains(&size) {
                self.err(key("table_size"), "must be 1-16777216 accounts");
            }
            c.table_size = size.clamp(1, 16_777_216) as usize;
        }
        c
    }

    /// `server.nsid` and `server.version`: printable ASCII (space included)
    /// of 1..=`max` bytes, so that `dig` shows it as typed and it fits one
    /// TXT string; None when absent or invalid (the error is recorded).
    fn identifier(&mut self, key: &str, value: Option<String>, max: usize) -> Option<String> {
        let v = value?;
        if v.is_empty() {
            self.err(key, "must not be empty (remove the key to disable)");
            return None;
        }
        if v.len() > max {
            self.err(key, format!("is {} bytes long; at most {max}", v.len()));
            return None;
        }
        if let Some(c) = v.chars().find(|c| !(' '..='~').contains(c)) {
            self.err(
                key,
                format!("{c:?} is not printable ASCII (letters, digits, punctuation, space)"),
            );
            return None;
        }
        Some(v)
    }
}

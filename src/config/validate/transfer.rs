//! `[transfer."ZONE"]`: the zone-transfer half of the validator (who may
//! transfer a zone, its TSIG key, whom to NOTIFY).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use super::super::raw::*;
use super::super::*;
use super::{Validator, normalize_name, parse_net};

/// RFC 8945 §6: a key no shorter than the hash's output (SHA-256: 32 bytes).
const MIN_SECRET: usize = 32;

impl Validator<'_> {
    /// Attaches each `[transfer."ZONE"]` to its zone of `[zones]`.
    pub(super) fn transfers(
        &mut self,
        raw: &std::collections::BTreeMap<String, RawTransfer>,
        zones: &mut [ZoneConfig],
    ) {
        for (zone, t) in raw {
            let key = |k: &str| format!("transfer.\"{zone}\".{k}");
            let Some(origin) = normalize_name(zone) else {
                self.err(
                    format!("transfer.\"{zone}\""),
                    format!("{zone:?} is not a valid domain name"),
                );
                continue;
            };
            let Some(z) = zones.iter_mut().find(|z| z.origin == origin) else {
                self.err(
                    format!("transfer.\"{zone}\""),
                    format!("{origin} is not a zone of [zones]"),
                );
                continue;
            };
            if t.allow_transfer.is_empty() {
                self.warn(
                    key("allow_transfer"),
                    "is empty: every transfer of this zone is refused (only NOTIFY goes out)",
                );
            }
            let mut allow = Vec::new();
            for (i, n) in t.allow_transfer.iter().enumerate() {
                match parse_net(n) {
                    Ok(net) => allow.push(net),
                    Err(e) => self.err(key(&format!("allow_transfer[{i}]")), e),
                }
            }
            let tsig = t.tsig.as_ref().and_then(|k| self.tsig_key(&key("tsig"), k));
            let mut notify = Vec::new();
            for (i, a) in t.notify.iter().enumerate() {
                let k = key(&format!("notify[{i}]"));
                // A bare address means the DNS port.
                let parsed = a
                    .parse::<IpAddr>()
                    .map(|ip| SocketAddr::new(ip, 53))
                    .ok()
                    .or_else(|| self.socket_addr(&k, a));
                if let Some(addr) = parsed {
                    if notify.contains(&addr) {
                        self.err(k, format!("{addr} is listed twice"));
                    } else {
                        notify.push(addr);
                    }
                }
            }
            z.transfer = Some(TransferConfig {
                allow,
                tsig,
                notify,
            });
        }
    }

    /// Balanced names are left out of transfers: says so for each zone that
    /// has both, since a secondary listed in their NS would answer them
    /// without addresses.
    pub(super) fn balanced_not_transferred(
        &mut self,
        zones: &[ZoneConfig],
        balance: &[std::sync::Arc<BalanceConfig>],
    ) {
        for z in zones.iter().filter(|z| z.transfer.is_some()) {
            let names: Vec<&str> = balance
                .iter()
                .map(|b| b.name.as_str())
                .filter(|n| super::in_zone(n, &z.origin))
                .collect();
            if names.is_empty() {
                continue;
            }
            let shown = names.iter().take(3).copied().collect::<Vec<_>>().join(", ");
            let more = names.len().saturating_sub(3);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            self.warn(
                format!("transfer.\"{}\"", z.origin.trim_end_matches('.')),
                format!(
                    "balanced names ({shown}{more}) are not transferred: only geosteer nodes can answer them, \
                     so delegate them to a sub-zone whose NS are geosteer nodes only (docs/src/transfers.md)"
                ),
            );
        }
    }

    fn tsig_key(&mut self, key: &str, raw: &RawTsig) -> Option<TsigKey> {
        let name = normalize_name(&raw.name);
        if name.is_none() {
            self.err(
                format!("{key}.name"),
                format!(
                    "{:?} is not a valid key name (a domain name, e.g. \"xfr.example.\")",
                    raw.name
                ),
            );
        }
        let secret = match B64.decode(raw.secret.trim()) {
            Ok(s) if s.is_empty() => {
                self.err(format!("{key}.secret"), "must not be empty");
                None
            }
            Ok(s) => {
                if s.len() < MIN_SECRET {
                    self.warn(
                        format!("{key}.secret"),
                        format!(
                            "is {} bytes; RFC 8945 asks for at least {MIN_SECRET} for HMAC-SHA256 (`openssl rand -base64 32`)",
                            s.len()
                        ),
                    );
                }
                Some(s)
            }
            Err(e) => {
                self.err(
                    format!("{key}.secret"),
                    format!("is not base64 ({e}); make one with `openssl rand -base64 32`"),
                );
                None
            }
        };
        Some(TsigKey {
            name: name?,
            secret: secret?,
        })
    }
}

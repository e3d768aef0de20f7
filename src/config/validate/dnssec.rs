//! `[dnssec."ZONE"]`: the signing half of the validator (key paths, the KSK,
//! signature validity and refresh). The keys themselves are read when the
//! zones load (`dnssec::keys`), so a bad key names its path there.

use super::super::raw::*;
use super::super::*;
use super::{Validator, normalize_name};

const DEFAULT_VALIDITY: Duration = Duration::from_secs(7 * 86_400);
/// Shortest validity: resolvers' clocks drift, and signatures start an hour back.
const MIN_VALIDITY: Duration = Duration::from_secs(60);

impl Validator<'_> {
    pub(super) fn dnssec(
        &mut self,
        raw: &std::collections::BTreeMap<String, RawDnssec>,
        zones: &mut [ZoneConfig],
    ) {
        for (zone, d) in raw {
            let key = |k: &str| format!("dnssec.\"{zone}\".{k}");
            let Some(origin) = normalize_name(zone) else {
                self.err(
                    format!("dnssec.\"{zone}\""),
                    format!("{zone:?} is not a valid domain name"),
                );
                continue;
            };
            let Some(z) = zones.iter_mut().find(|z| z.origin == origin) else {
                self.err(
                    format!("dnssec.\"{zone}\""),
                    format!("{origin} is not a zone of [zones]"),
                );
                continue;
            };
            if d.keys.is_empty() {
                self.err(
                    key("keys"),
                    "needs at least one key: `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out zone.pem`",
                );
            }
            let keys: Vec<PathBuf> = d.keys.iter().map(|k| self.path(k)).collect();
            for (i, k) in keys.iter().enumerate() {
                if keys[..i].contains(k) {
                    self.err(
                        key(&format!("keys[{i}]")),
                        format!("{} is listed twice", k.display()),
                    );
                }
            }
            let ksk = d.ksk.as_ref().map(|k| self.path(k));
            if let Some(k) = &ksk {
                if !keys.contains(k) {
                    self.err(key("ksk"), format!("{} is not one of keys", k.display()));
                } else if keys.len() < 2 {
                    self.err(
                        key("ksk"),
                        "a KSK needs a second key (the ZSK); with one key, leave ksk out (it signs everything)",
                    );
                }
            }
            let validity = self.duration(
                &key("signature_validity"),
                d.signature_validity.as_deref(),
                DEFAULT_VALIDITY,
            );
            if validity < MIN_VALIDITY {
                self.err(key("signature_validity"), "must be at least 60s");
            }
            let refresh = self.duration(&key("refresh"), d.refresh.as_deref(), validity / 2);
            if refresh >= validity {
                self.err(
                    key("refresh"),
                    "must be shorter than signature_validity (signatures are re-made that long before they expire)",
                );
            }
            let nsec = match d.nsec.as_deref() {
                None | Some("compact") => NsecMode::Compact,
                Some("chain") => NsecMode::Chain,
                Some(n) => {
                    self.err(
                        key("nsec"),
                        format!(
                            "{n:?}: \"compact\" (RFC 9824 compact denial) or \"chain\" (an NSEC chain, the zone becomes walkable)"
                        ),
                    );
                    NsecMode::Compact
                }
            };
            if z.transfer.is_some() {
                self.warn(
                    format!("dnssec.\"{zone}\""),
                    "the zone is also transferred ([transfer]): secondaries get its records unsigned and must sign them themselves with the same keys, or answer bogus",
                );
            }
            z.dnssec = Some(DnssecConfig {
                keys,
                ksk,
                validity,
                refresh,
                nsec,
            });
        }
    }
}

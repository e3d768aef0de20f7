//! `geosteer check`: validates the config and zone files without serving.

use std::path::Path;
use std::process::ExitCode;

use crate::state::Loaded;

pub(super) fn run(path: &Path) -> anyhow::Result<ExitCode> {
    match Loaded::from_path(path, &crate::metrics::Registry::default()) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                println!("{w}");
            }
            for signer in loaded.dnssec.signers() {
                for key in &signer.keys {
                    println!("dnssec {}: key {}", signer.origin, key.describe());
                }
            }
            println!(
                "{}: ok ({} zones, {} pools, {} balanced names, {} proxies)",
                path.display(),
                loaded.config.zones.len(),
                loaded.config.pools.len(),
                loaded.config.balance.len(),
                loaded.config.proxies.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for e in &errors.0 {
                println!("error: {e}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `geosteer dnssec ds ZONE`: the DS records of the zone's KSKs.
pub(super) fn ds(path: &Path, zone: &str) -> anyhow::Result<ExitCode> {
    let loaded = match Loaded::from_path(path, &crate::metrics::Registry::default()) {
        Ok(l) => l,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let want = crate::config::normalize_name(zone)
        .ok_or_else(|| anyhow::anyhow!("{zone:?} is not a domain name"))?;
    let Some(signer) = loaded
        .dnssec
        .signers()
        .find(|s| s.origin.to_lowercase().to_string() == want)
    else {
        anyhow::bail!(
            "{want} is not a signed zone of {} (no [dnssec.\"{}\"])",
            path.display(),
            want.trim_end_matches('.')
        );
    };
    for key in signer.keys.iter().filter(|k| k.ksk) {
        if let Some(ds) = crate::dnssec::keys::ds(&signer.origin, key, 3600) {
            println!("{ds}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

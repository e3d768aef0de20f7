//! `geosteer check`: validates the config and zone files without serving.

use std::path::Path;
use std::process::ExitCode;

use crate::state::Loaded;

pub fn run(path: &Path) -> anyhow::Result<ExitCode> {
    match Loaded::from_path(path, &crate::metrics::Registry::default()) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                println!("{w}");
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

//! config: the reload family (the Prometheus conventions for a process that
//! reloads its config) and `geosteer_build_info`.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use super::{gauge, gauges};
use crate::control::Control;

pub(super) struct Config {
    pub control: Arc<Control>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Config")
    }
}

/// `GEOSTEER_VERSION` is "0.1.0" or "0.1.0 (abc1234)" (build.rs): the
/// package version and the commit ("unknown" without one).
fn build() -> (&'static str, &'static str) {
    let full = env!("GEOSTEER_VERSION");
    match full.split_once(" (") {
        Some((version, rest)) => (version, rest.trim_end_matches(')')),
        None => (full, "unknown"),
    }
}

impl Collector for Config {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let st = self.control.reload_status();
        gauge(
            &mut enc,
            "geosteer_config_last_reload_successful",
            "Whether the last config reload succeeded (1) or failed and the previous config still serves (0); 1 before any reload.",
            i64::from(st.last_reload_successful),
        )?;
        gauge(
            &mut enc,
            "geosteer_config_last_reload_success_timestamp_seconds",
            "Unix time the serving config was loaded (start-up or the last successful reload).",
            st.loaded_at_unix_ms as f64 / 1000.0,
        )?;
        gauge(
            &mut enc,
            "geosteer_config_generation",
            "The serving config's generation: 1 at start-up, one more per successful reload.",
            st.version as i64,
        )?;
        gauge(
            &mut enc,
            "geosteer_config_pending_restart",
            "Settings of the serving config that differ from the ones the process started with and take effect on restart only.",
            st.pending_restart.len() as i64,
        )?;
        let (version, commit) = build();
        gauges(
            &mut enc,
            "geosteer_build_info",
            "The running build: always 1, labelled with the package version and the git commit.",
            [([("version", version), ("commit", commit)], 1i64)],
        )
    }
}

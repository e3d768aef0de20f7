//! sample: a small served world (zones, pools, balanced names) for the fast
//! path's unit tests, its Criterion benchmark and its fuzz target, which all
//! need a `Snapshot` and no running server.

use std::path::Path;
use std::sync::Arc;

use crate::config::ConfigErrors;
use crate::health::HealthView;
use crate::metrics::Registry;
use crate::state::{Loaded, Snapshot};

/// `example.test`: every kind of name the fast path meets, and some it
/// leaves to hickory (CNAME, MX, NS).
pub const ZONE: &str = "$ORIGIN example.test.
$TTL 300
@ IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 86400 60
@ IN NS ns1.example.test.
ns1 IN A 127.0.0.1
static IN A 192.0.2.10
static IN AAAA 2001:db8::10
multi IN A 192.0.2.20
multi IN A 192.0.2.21
multi IN A 192.0.2.22
www IN TXT \"hello\"
txt IN TXT \"a\" \"b\"
mail IN MX 10 mail.example.test.
mail IN A 192.0.2.25
alias IN CNAME static.example.test.
deep.ent IN A 192.0.2.30
caa IN CAA 0 issue \"ca.example\"
";

/// `wild.test`: a wildcard makes the whole zone hickory's.
pub const WILD_ZONE: &str = "$ORIGIN wild.test.
$TTL 300
@ IN SOA ns1.wild.test. hostmaster.wild.test. 1 3600 600 86400 60
@ IN NS ns1.wild.test.
ns1 IN A 127.0.0.1
* IN A 192.0.2.99
";

/// The config: a geo name, a failover name, and one too big for UDP.
pub fn config(geoip: Option<&Path>) -> String {
    let geoip = geoip
        .map(|p| format!("geoip = {:?}\n", p.display().to_string()))
        .unwrap_or_default();
    let big: Vec<String> = (1..=60)
        .map(|i| format!("{{ address = \"2001:db8:ff::{i:x}\" }}"))
        .collect();
    format!(
        r#"[server]
dns_listen = ["127.0.0.1:0"]
admin_listen = "127.0.0.1:0"
{geoip}
[zones]
"example.test" = "example.test.zone"
"wild.test" = "wild.test.zone"

[pools.us]
endpoints = [{{ address = "192.0.2.1" }}, {{ address = "2001:db8:1::1" }}]
[pools.eu]
endpoints = [{{ address = "192.0.2.2" }}, {{ address = "2001:db8:2::1" }}]
[pools.ap]
endpoints = [{{ address = "192.0.2.3" }}]
[pools.big]
endpoints = [{}]

[[balance]]
name = "www.example.test"
policy = "geo"
pools = ["us", "eu", "ap"]
ttl = 30
countries = {{ DE = ["eu"], JP = ["ap"] }}
subnets = {{ "10.1.0.0/16" = ["ap"] }}

[[balance]]
name = "fo.example.test"
policy = "failover"
pools = ["eu", "us"]

[[balance]]
name = "big.example.test"
policy = "failover"
pools = ["big"]
answers = 60
"#,
        big.join(", ")
    )
}

/// Writes the sample config and zones into `dir` and loads them, every pool
/// healthy (no monitors).
pub fn snapshot(dir: &Path, geoip: Option<&Path>) -> Result<(Snapshot, Registry), ConfigErrors> {
    snapshot_with(dir, geoip, "")
}

/// The same with `extra` appended to the config (a `[dnssec]` table).
pub fn snapshot_with(
    dir: &Path,
    geoip: Option<&Path>,
    extra: &str,
) -> Result<(Snapshot, Registry), ConfigErrors> {
    let write = |name: &str, text: &str| {
        std::fs::write(dir.join(name), text).map_err(|e| {
            ConfigErrors(vec![crate::config::ConfigError::file(
                &dir.join(name),
                e.to_string(),
            )])
        })
    };
    write("example.test.zone", ZONE)?;
    write("wild.test.zone", WILD_ZONE)?;
    write("geosteer.toml", &format!("{}{extra}", config(geoip)))?;
    let registry = Registry::default();
    let loaded = Loaded::from_path(&dir.join("geosteer.toml"), &registry)?;
    let snap = Snapshot {
        generation: 1,
        health: Arc::new(HealthView::initial(&loaded.config)),
        config: loaded.config,
        steering: loaded.steering,
        zones: loaded.zones,
        dnssec: loaded.dnssec,
        geo: loaded.geo,
    };
    Ok((snap, registry))
}

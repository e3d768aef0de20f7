//! `geosteer status`, `drain` and `undrain`: through a running server's admin API.

use std::process::ExitCode;

use super::Drainable;
use super::admin_client::{encode, get, post};
use super::locate::Admin;

pub(super) fn status(admin: &Admin) -> anyhow::Result<ExitCode> {
    let body = get(admin, "/api/v1/status")?;
    let v: serde_json::Value = serde_json::from_str(&body)?;
    print!("{}", render(&v));
    Ok(ExitCode::SUCCESS)
}

/// `status --events`: the last state changes, newest first.
pub(super) fn events(admin: &Admin) -> anyhow::Result<ExitCode> {
    let body = get(admin, "/api/v1/events")?;
    let v: serde_json::Value = serde_json::from_str(&body)?;
    print!("{}", render_events(&v));
    Ok(ExitCode::SUCCESS)
}

/// `drain` and `undrain` (`local`: `undrain --local`, this node only while
/// etcd is unreachable).
pub(super) fn drain(
    admin: &Admin,
    target: Drainable,
    on: bool,
    local: bool,
) -> anyhow::Result<ExitCode> {
    let verb = if on { "drain" } else { "undrain" };
    let (path, what) = match &target {
        Drainable::Endpoint { pool, address } => (
            format!(
                "/api/v1/pools/{}/endpoints/{}/{verb}{}",
                encode(pool),
                encode(address),
                if local { "?local=true" } else { "" }
            ),
            format!("{pool} {address}"),
        ),
        Drainable::Server { backend, address } => (
            format!(
                "/api/v1/backends/{}/servers/{}/{verb}",
                encode(backend),
                encode(address)
            ),
            format!("backend {backend} {address}"),
        ),
    };
    let body = post(admin, &path)?;
    let reply: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    match (reply["pending_etcd"].as_bool(), reply["message"].as_str()) {
        (Some(true), _) => println!(
            "{what}: undrained locally, pending etcd (this node only; written to etcd when it returns, unless the drain changed there meanwhile)"
        ),
        (_, Some(message)) => println!("{what}: {message}"),
        _ => println!("{what}: {verb}ed"),
    }
    Ok(ExitCode::SUCCESS)
}

/// `drain POOL ENDPOINT --over DURATION`: a gradual drain.
pub(super) fn drain_over(admin: &Admin, target: Drainable, over: &str) -> anyhow::Result<ExitCode> {
    let Drainable::Endpoint { pool, address } = target else {
        anyhow::bail!(
            "--over is for pool endpoints: a backend's server drains at once and keeps its drain_timeout"
        );
    };
    let path = format!(
        "/api/v1/pools/{}/endpoints/{}/drain",
        encode(&pool),
        encode(&address)
    );
    super::admin_client::post_json(admin, &path, &serde_json::json!({ "over": over }))?;
    println!("{pool} {address}: draining over {over} (weight ramps to 0, then drained)");
    Ok(ExitCode::SUCCESS)
}

/// `geosteer weight POOL ENDPOINT N` (or `--reset`), and `weight --backend
/// NAME SERVER N` for a proxy server.
pub(super) fn weight(
    admin: &Admin,
    target: Drainable,
    weight: Option<u32>,
) -> anyhow::Result<ExitCode> {
    let (path, what) = match &target {
        Drainable::Endpoint { pool, address } => (
            format!(
                "/api/v1/pools/{}/endpoints/{}/weight",
                encode(pool),
                encode(address)
            ),
            format!("{pool} {address}"),
        ),
        Drainable::Server { backend, address } => (
            format!(
                "/api/v1/backends/{}/servers/{}/weight",
                encode(backend),
                encode(address)
            ),
            format!("backend {backend} {address}"),
        ),
    };
    match weight {
        Some(w) => {
            super::admin_client::post_json(admin, &path, &serde_json::json!({ "weight": w }))?;
            println!("{what}: weight {w}");
        }
        None => {
            super::admin_client::delete(admin, &path)?;
            println!("{what}: weight reset to the config's");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `geosteer override POOL ENDPOINT up|down --reason R [--for D]` (None:
/// `--clear`).
pub(super) fn set_override(
    admin: &Admin,
    pool: &str,
    address: &str,
    set: Option<(String, String, Option<String>)>,
) -> anyhow::Result<ExitCode> {
    let path = format!(
        "/api/v1/pools/{}/endpoints/{}/override",
        encode(pool),
        encode(address)
    );
    match set {
        Some((state, reason, for_)) => {
            let mut body = serde_json::json!({ "state": state, "reason": reason });
            if let Some(f) = &for_ {
                body["for"] = f.as_str().into();
            }
            super::admin_client::post_json(admin, &path, &body)?;
            match for_ {
                Some(f) => println!("{pool} {address}: override {state} for {f} ({reason})"),
                None => println!("{pool} {address}: override {state} ({reason})"),
            }
        }
        None => {
            super::admin_client::delete(admin, &path)?;
            println!("{pool} {address}: override cleared, its checks decide");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `geosteer push POOL ENDPOINT up|down --ttl D`.
pub(super) fn push(
    admin: &Admin,
    pool: &str,
    address: &str,
    status: &str,
    ttl: &str,
    reason: Option<String>,
    latency_ms: Option<u64>,
) -> anyhow::Result<ExitCode> {
    let path = format!(
        "/api/v1/pools/{}/endpoints/{}/health",
        encode(pool),
        encode(address)
    );
    let mut body = serde_json::json!({ "status": status, "ttl": ttl });
    if let Some(r) = reason {
        body["reason"] = r.into();
    }
    if let Some(l) = latency_ms {
        body["latency_ms"] = l.into();
    }
    super::admin_client::put_json(admin, &path, &body)?;
    println!("{pool} {address}: pushed {status} for {ttl}");
    Ok(ExitCode::SUCCESS)
}

/// `(1 up of 2, 1 draining)`, with each family of a dual-stack pool:
/// `(1 up of 2; A 0/1 down, AAAA 1/1)`.
fn pool_counts(p: &serde_json::Value) -> String {
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
    let mut out = format!("({} up of {}", n(&p["up"]), n(&p["total"]));
    if n(&p["draining"]) > 0 {
        out.push_str(&format!(", {} draining", n(&p["draining"])));
    }
    if let Some(f) = p["families"].as_object().filter(|f| f.len() > 1) {
        let each: Vec<String> = f
            .iter()
            .map(|(k, h)| {
                let rtype = if k == "v4" { "A" } else { "AAAA" };
                let state = h["state"].as_str().unwrap_or("-");
                let mut s = format!("{rtype} {}/{}", n(&h["up"]), n(&h["total"]));
                if state != "healthy" {
                    s.push(' ');
                    s.push_str(state);
                }
                s
            })
            .collect();
        out.push_str("; ");
        out.push_str(&each.join(", "));
    }
    out.push(')');
    out
}

/// The status JSON as a table.
fn render(v: &serde_json::Value) -> String {
    let s = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    };
    let pct = |v: &serde_json::Value| {
        v.as_f64()
            .map(|f| format!("{:.2}%", f * 100.0))
            .unwrap_or("-".into())
    };
    let ms = |v: &serde_json::Value| {
        v.as_f64()
            .map(|f| format!("{f:.1}ms"))
            .unwrap_or("-".into())
    };
    let mut out = render_config(&v["config"]);
    out.push_str(&format!(
        "{:<16} {:<28} {:<10} {:>8} {:>9} {:>9}  {}\n",
        "POOL", "ENDPOINT", "STATE", "ERR", "LATENCY", "INFLIGHT", "LAST ERROR"
    ));
    for p in v["pools"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:<16} {:<28} {:<10} {:>8} {:>9} {:>9}  {}\n",
            s(&p["name"]),
            pool_counts(p),
            s(&p["state"]),
            // Nothing up to measure: the error rate would read a green 0 %.
            if p["up"].as_u64() == Some(0) {
                "-".to_string()
            } else {
                pct(&p["error_rate"])
            },
            ms(&p["latency_ms"]),
            "",
            if p["up"].as_u64() == Some(0) {
                s(&p["last_error"])
            } else {
                String::new()
            }
        ));
        if let Some(cap) = p["capacity"].as_object() {
            let n = |k: &str| cap.get(k).and_then(|v| v.as_f64());
            let keep = cap
                .get("keep_permille")
                .and_then(|v| v.as_u64())
                .unwrap_or(1000);
            let source = match cap.get("source").and_then(|v| v.as_str()) {
                Some(s) if s != "reported" => format!(", from {s}"),
                _ => String::new(),
            };
            let load = match (n("load"), n("utilisation")) {
                (Some(l), Some(u)) => format!(
                    "load {} ({:.0}% of capacity {}{source})",
                    (l * 100.0).round() / 100.0,
                    u * 100.0,
                    n("capacity").unwrap_or(0.0)
                ),
                _ => format!("load - (capacity {}{source})", n("capacity").unwrap_or(0.0)),
            };
            let spill = if keep < 1000 {
                format!(
                    ": keeping {}% of its catchment, spilling the rest",
                    keep / 10
                )
            } else {
                String::new()
            };
            out.push_str(&format!("{:<16} {:<28} {load}{spill}\n", "", ""));
        }
        if let Some(pct) = p["ramp"]["permille"].as_u64() {
            out.push_str(&format!(
                "{:<16} {:<28} slow start: taking back {}% of its catchment\n",
                "",
                "",
                pct / 10
            ));
        }
        for e in p["endpoints"].as_array().into_iter().flatten() {
            let mut state = s(&e["state"]);
            if state == "draining" && e["health"].as_str() != Some("up") {
                state = format!("draining/{}", s(&e["health"]));
            }
            // A runtime weight shows beside the address: `w 5 (config 1)`.
            let address = match e["config_weight"].as_u64() {
                Some(c) => format!("{} w {} (config {c})", s(&e["address"]), s(&e["weight"])),
                None => s(&e["address"]),
            };
            out.push_str(&format!(
                "{:<16} {:<28} {:<10} {:>8} {:>9} {:>9}  {}\n",
                "",
                address,
                state,
                pct(&e["error_rate"]),
                ms(&e["latency_ms"]),
                s(&e["in_flight"]),
                s(&e["last_error"])
            ));
            if let Some(pct) = e["ramp"]["permille"].as_u64() {
                let what = match e["ramp"]["direction"].as_str() {
                    Some("down") => "draining gradually",
                    _ => "slow start",
                };
                out.push_str(&format!(
                    "{:<16} {:<28} {what}: weight at {}%\n",
                    "",
                    "",
                    pct / 10
                ));
            }
            // A host endpoint: each address it resolves to, and staleness.
            if let Some(r) = e.get("resolved").filter(|r| r.is_object()) {
                for a in r["addresses"].as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "{:<16}   {:<26} {:<10} {:>8} {:>9} {:>9}  {}\n",
                        "",
                        format!("-> {}", s(&a["address"])),
                        s(&a["state"]),
                        "",
                        "",
                        "",
                        a["last_error"].as_str().unwrap_or("")
                    ));
                }
                if r["expired"].as_bool() == Some(true) {
                    out.push_str(&format!(
                        "{:<16} {:<28} cannot resolve past stale_for, no address: {}\n",
                        "",
                        "",
                        s(&r["error"])
                    ));
                } else if r["stale"].as_bool() == Some(true) {
                    let since = r["failing_since_unix_ms"]
                        .as_u64()
                        .map(crate::events::rfc3339)
                        .unwrap_or_default();
                    out.push_str(&format!(
                        "{:<16} {:<28} stale since {since}, last addresses kept: {}\n",
                        "",
                        "",
                        s(&r["error"])
                    ));
                }
            }
            if let Some(o) = e.get("override").filter(|o| o.is_object()) {
                let until = match o["until_unix_ms"].as_u64() {
                    Some(u) => format!(", until {}", crate::events::rfc3339(u)),
                    None => String::new(),
                };
                out.push_str(&format!(
                    "{:<16} {:<28} override {}: {}{until}\n",
                    "",
                    "",
                    s(&o["state"]),
                    s(&o["reason"])
                ));
            }
            if e["undrained_locally"].as_bool() == Some(true) {
                out.push_str(&format!(
                    "{:<16} {:<28} undrained locally, pending etcd (drained fleet-wide)\n",
                    "", ""
                ));
            }
            // Votes only where the vantages disagree (some down, some up).
            let (down, total) = (e["votes"]["down"].as_u64(), e["votes"]["total"].as_u64());
            let disputed = matches!((down, total), (Some(d), Some(t)) if d > 0 && d < t);
            if disputed && let Some(summary) = e["votes"]["summary"].as_str() {
                out.push_str(&format!("{:<16} {:<28} votes: {summary}\n", "", ""));
            }
        }
    }
    if let Some(c) = v.get("cluster").filter(|c| c.is_object()) {
        out.push_str(&format!(
            "\nFLEET {} ({} vantages, etcd {}{}{})\n",
            s(&c["node"]),
            s(&c["vantages"]),
            if c["connected"].as_bool() == Some(true) {
                "connected".to_string()
            } else if c["frozen"].as_bool() == Some(true) {
                format!(
                    "UNREACHABLE, fleet view FROZEN, deciding alone {}",
                    until(c["frozen_until_unix_ms"].as_u64())
                )
            } else {
                "UNREACHABLE".to_string()
            },
            if c["config_skew"].as_bool() == Some(true) {
                ", CONFIG SKEW"
            } else {
                ""
            },
            if c["name_clash"].as_bool() == Some(true) {
                ", NAME USED TWICE"
            } else {
                ""
            },
        ));
        if c["config_behind"].as_bool() == Some(true) {
            out.push_str(
                "  CONFIG BEHIND: not every node serves the newest fleet config revision\n",
            );
        }
        out.push_str(&format!(
            "  {:<16} {:<18} {:<18} {:<10} {}\n",
            "NODE", "LOCATION", "CONFIG", "STATE", "LAST SEEN"
        ));
        for n in c["nodes"].as_array().into_iter().flatten() {
            let location = match n["location"].as_array() {
                Some(l) if l.len() == 2 => format!(
                    "{:.2},{:.2}",
                    l[0].as_f64().unwrap_or(0.0),
                    l[1].as_f64().unwrap_or(0.0)
                ),
                _ => "-".into(),
            };
            // A fleet config from etcd: its revision, else the file's hash.
            let mut config = match n["config_revision"].as_u64() {
                Some(r) => format!("rev {r}"),
                None => s(&n["config"]),
            };
            if n["config_skew"].as_bool() == Some(true) {
                config.push_str(" SKEW");
            }
            if n["config_behind"].as_bool() == Some(true) {
                config.push_str(" BEHIND");
            }
            let state = match (
                n["this_node"].as_bool(),
                n["connected"].as_bool(),
                n["frozen"].as_bool(),
            ) {
                (Some(true), _, _) => "this node",
                (_, Some(true), Some(true)) => "frozen",
                (_, Some(true), _) => "fresh",
                _ => "gone",
            };
            out.push_str(&format!(
                "  {:<16} {:<18} {:<18} {:<10} {}\n",
                s(&n["name"]),
                location,
                config,
                state,
                ago(n["last_seen_unix_ms"].as_u64())
            ));
        }
        for n in c["nodes"].as_array().into_iter().flatten() {
            if let Some(f) = n["config_failed"].as_object() {
                out.push_str(&format!(
                    "  config rev {} does not load on {}: {}\n",
                    s(&f["revision"]),
                    s(&n["name"]),
                    s(&f["error"]).lines().next().unwrap_or_default()
                ));
            }
        }
        for d in c["drains"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  drained fleet-wide: {} {}{}\n",
                s(&d["pool"]),
                s(&d["address"]),
                if d["undrained_locally"].as_bool() == Some(true) {
                    " (undrained locally, pending etcd)"
                } else {
                    ""
                }
            ));
        }
    }
    for b in v["backends"].as_array().into_iter().flatten() {
        out.push_str(&format!("\nBACKEND {}\n", s(&b["name"])));
        for sv in b["servers"].as_array().into_iter().flatten() {
            // A runtime weight shows beside the address: `w 4 (config 1)`.
            let address = match sv["config_weight"].as_u64() {
                Some(c) => format!("{} w {} (config {c})", s(&sv["address"]), s(&sv["weight"])),
                None => s(&sv["address"]),
            };
            out.push_str(&format!(
                "  {:<26} {:<10} in-flight {:>4}  requests {:>8}  errors {:>6}{}\n",
                address,
                s(&sv["state"]),
                s(&sv["in_flight"]),
                s(&sv["requests"]),
                s(&sv["errors"]),
                sv["check_error"]
                    .as_str()
                    .map(|e| format!("  check: {e}"))
                    .unwrap_or_default()
            ));
        }
    }
    out
}

/// The config's lines above the tables: its generation, a failed last
/// reload with each of its problems, the settings pending a restart.
fn render_config(r: &serde_json::Value) -> String {
    if !r.is_object() {
        return String::new();
    }
    let version = r["version"].as_u64().unwrap_or(0);
    let mut out = format!(
        "CONFIG generation {version}, loaded {}\n",
        ago(r["loaded_at_unix_ms"].as_u64())
    );
    if r["last_reload_successful"].as_bool() == Some(false) {
        out.push_str(&format!(
            "  LAST RELOAD FAILED ({}), still serving generation {version}:\n",
            ago(r["last_reload_at_unix_ms"].as_u64())
        ));
        for line in r["last_reload_error"].as_str().unwrap_or("").lines() {
            out.push_str(&format!("    {line}\n"));
        }
    }
    let pending: Vec<&str> = r["pending_restart"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str())
        .collect();
    if !pending.is_empty() {
        out.push_str(&format!(
            "  PENDING RESTART: {} changed; a restart applies them\n",
            pending.join(", ")
        ));
    }
    out.push('\n');
    out
}

/// The events JSON as lines: time (UTC), how long ago, kind, subject, state, reason.
fn render_events(v: &serde_json::Value) -> String {
    let events = v["events"].as_array().cloned().unwrap_or_default();
    if events.is_empty() {
        return "no state changes since start-up\n".into();
    }
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    let mut out = format!(
        "{:<23} {:>9}  {:<9} {:<28} {:<22} {}\n",
        "TIME (UTC)", "AGO", "KIND", "SUBJECT", "STATE", "REASON"
    );
    for e in &events {
        let at = e["at_unix_ms"].as_u64().unwrap_or(0);
        let time = humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(at),
        )
        .to_string()
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string();
        let mut subject: Vec<String> =
            [text(&e["backend"]), text(&e["pool"]), text(&e["endpoint"])]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
        subject.extend(
            e["names"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| text(n).trim_end_matches('.').to_string()),
        );
        let mut state = text(&e["state"]);
        if let Some(from) = e["from"].as_str() {
            state.push_str(&format!(" (was {from})"));
        }
        out.push_str(&format!(
            "{:<23} {:>9}  {:<9} {:<28} {:<22} {}\n",
            time,
            ago(Some(at)),
            text(&e["kind"]),
            subject.join(" "),
            state,
            text(&e["reason"])
        ));
    }
    out
}

/// "3s ago" from a Unix-ms time.
fn ago(at: Option<u64>) -> String {
    let Some(at) = at else {
        return "-".into();
    };
    let now = crate::wallclock::unix_ms();
    let secs = now.saturating_sub(at) / 1000;
    if secs == 0 {
        "now".into()
    } else {
        format!("{secs}s ago")
    }
}

/// `in 42s` for a Unix ms time ahead; `now` once it has passed.
fn until(at: Option<u64>) -> String {
    let Some(at) = at else {
        return "-".into();
    };
    let secs = at
        .saturating_sub(crate::wallclock::unix_ms())
        .div_ceil(1000);
    if secs == 0 {
        "now".into()
    } else {
        format!("in {secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn votes_are_printed_only_under_disputed_endpoints() {
        let endpoint = |address: &str, down: u64| {
            serde_json::json!({
                "address": address, "state": "up",
                "votes": { "down": down, "total": 3, "summary": format!("down {down}/3 at {address}") }
            })
        };
        let v = serde_json::json!({ "pools": [{
            "name": "eu", "up": 1, "total": 3, "state": "healthy",
            "endpoints": [endpoint("192.0.2.1", 0), endpoint("192.0.2.2", 1), endpoint("192.0.2.3", 3)]
        }]});
        let out = render(&v);
        let votes: Vec<&str> = out.lines().filter(|l| l.contains("votes:")).collect();
        assert_eq!(votes.len(), 1, "{out}");
        assert!(votes[0].contains("down 1/3 at 192.0.2.2"), "{out}");
    }
}

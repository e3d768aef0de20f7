//! `geosteer status`, `drain` and `undrain`: through a running server's admin API.

use std::process::ExitCode;

use super::admin_client::{encode, get, post};

pub fn status(admin: &str) -> anyhow::Result<ExitCode> {
    let body = get(admin, "/api/v1/status")?;
    let v: serde_json::Value = serde_json::from_str(&body)?;
    print!("{}", render(&v));
    Ok(ExitCode::SUCCESS)
}

pub fn drain(admin: &str, pool: &str, endpoint: &str, on: bool) -> anyhow::Result<ExitCode> {
    let verb = if on { "drain" } else { "undrain" };
    post(
        admin,
        &format!(
            "/api/v1/pools/{}/endpoints/{}/{verb}",
            encode(pool),
            encode(endpoint)
        ),
    )?;
    println!("{pool} {endpoint}: {verb}ed");
    Ok(ExitCode::SUCCESS)
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
    let mut out = format!(
        "{:<16} {:<28} {:<10} {:>8} {:>9} {:>9}  {}\n",
        "POOL", "ENDPOINT", "STATE", "ERR", "LATENCY", "INFLIGHT", "LAST ERROR"
    );
    for p in v["pools"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:<16} {:<28} {:<10} {:>8} {:>9} {:>9}\n",
            s(&p["name"]),
            format!("({} up of {})", s(&p["up"]), s(&p["total"])),
            s(&p["state"]),
            pct(&p["error_rate"]),
            ms(&p["latency_ms"]),
            ""
        ));
        for e in p["endpoints"].as_array().into_iter().flatten() {
            let mut state = s(&e["state"]);
            if e["draining"].as_bool() == Some(true) {
                state.push_str("+drain");
            }
            out.push_str(&format!(
                "{:<16} {:<28} {:<10} {:>8} {:>9} {:>9}  {}\n",
                "",
                s(&e["address"]),
                state,
                pct(&e["error_rate"]),
                ms(&e["latency_ms"]),
                s(&e["in_flight"]),
                s(&e["last_error"])
            ));
        }
    }
    for b in v["backends"].as_array().into_iter().flatten() {
        out.push_str(&format!("\nBACKEND {}\n", s(&b["name"])));
        for sv in b["servers"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  {:<26} {:<10} in-flight {:>4}  requests {:>8}  errors {:>6}\n",
                s(&sv["address"]),
                s(&sv["state"]),
                s(&sv["in_flight"]),
                s(&sv["requests"]),
                s(&sv["errors"])
            ));
        }
    }
    out
}

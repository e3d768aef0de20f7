//! page: `GET /`, a small self-refreshing HTML table of pools and endpoints.

use std::fmt::Write;

use axum::extract::State;
use axum::response::Html;

use super::{AdminState, views};

pub async fn index(State(st): State<AdminState>) -> Html<String> {
    let status = views::status(&st);
    let mut rows = String::new();
    for p in &status.pools {
        let _ = write!(
            rows,
            "<tr class=\"pool {state}\"><td>{name}</td><td></td><td>{state}</td><td>{up}/{total}</td><td>{err:.2}%</td><td>{lat}</td><td></td></tr>",
            name = esc(&p.name),
            state = p.state.as_str(),
            up = p.up,
            total = p.total,
            err = p.error_rate * 100.0,
            lat = p
                .latency_ms
                .map(|l| format!("{l:.1} ms"))
                .unwrap_or_else(|| "-".into()),
        );
        for e in &p.endpoints {
            let state = format!("{:?}", e.state).to_lowercase()
                + if e.draining { " (draining)" } else { "" };
            let _ = write!(
                rows,
                "<tr><td></td><td>{addr}</td><td>{state}</td><td>w {w}</td><td>{err:.2}%</td><td>{lat}</td><td>{last}</td></tr>",
                addr = esc(&e.address),
                w = e.weight,
                err = e.error_rate * 100.0,
                lat = e
                    .latency_ms
                    .map(|l| format!("{l:.1} ms"))
                    .unwrap_or_else(|| "-".into()),
                last = esc(e.last_error.as_deref().unwrap_or("")),
            );
        }
    }
    let reload_error = status
        .config
        .reload
        .last_reload_error
        .as_deref()
        .map(|e| format!("<p class=\"err\">last reload failed: {}</p>", esc(e)))
        .unwrap_or_default();
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"5\">\
<title>geosteer</title><style>body{{font:14px system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}\
td,th{{padding:.25em .8em;text-align:left;border-bottom:1px solid #ddd}}.pool td{{font-weight:600}}\
.healthy td:nth-child(3){{color:#080}}.degraded td:nth-child(3){{color:#b60}}.down td:nth-child(3){{color:#c00}}.err{{color:#c00}}</style></head>\
<body><h1>geosteer</h1><p>config {path} (generation {generation}) · refreshes every 5 s · <a href=\"/api/v1/status\">JSON</a> · <a href=\"/metrics\">metrics</a></p>{reload_error}\
<table><tr><th>pool</th><th>endpoint</th><th>state</th><th>up / weight</th><th>errors</th><th>latency</th><th>last error</th></tr>{rows}</table></body></html>",
        path = esc(&status.config.path),
        generation = status.config.generation,
    ))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

//! page: `GET /`, a small self-refreshing HTML page: the table of pools and
//! endpoints, a sparkline per pool of error rate and latency (and
//! utilisation, with a capacity) over its monitor's window, and the last
//! state changes; and `GET /api/v1/events`,
//! the same history as JSON. The history is `crate::events`, kept by the
//! health writer.

use std::fmt::Write;
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};

use super::{AdminState, views};
use crate::events::{Event, Series};

/// Every 5 s the page fetches itself and swaps in the new body, counting
/// refreshes in `<body data-refreshes>`; without script, a meta refresh does
/// it. Not a navigation: headless Chromium's `--virtual-time-budget` never
/// finishes across one (and the browser test checks the counter).
const REFRESH: &str = "let refreshes=0;setInterval(async()=>{try{const r=await fetch(location.href,{cache:'no-store'});\
const d=new DOMParser().parseFromString(await r.text(),'text/html');d.body.dataset.refreshes=++refreshes;\
document.body.replaceWith(d.body);}catch(e){}},5000);";

/// `GET /api/v1/events`: the events, newest first, and each pool's samples.
pub(super) async fn events(State(st): State<AdminState>) -> Response {
    Json(serde_json::json!({
        "events": st.shared.events.events(),
        "pools": st.shared.events.series(),
    }))
    .into_response()
}

/// `A 1/1 · AAAA 0/1 down` for a dual-stack pool: what each family's
/// queries see. Empty for a single-family pool (the pool's own row says it).
fn families(p: &views::PoolView) -> String {
    if p.families.len() < 2 {
        return String::new();
    }
    p.families
        .iter()
        .map(|(f, h)| {
            let rtype = if *f == "v4" { "A" } else { "AAAA" };
            format!(
                "<span class=\"family {}\">{rtype} {}/{} {}</span>",
                h.state.as_str(),
                h.up,
                h.total,
                h.state.as_str()
            )
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

pub(super) async fn index(State(st): State<AdminState>) -> Html<String> {
    let status = views::status(&st);
    let series = st.shared.events.series();
    let mut rows = String::new();
    for p in &status.pools {
        let history = series
            .iter()
            .find(|s| s.pool == p.name)
            .map(sparklines)
            .unwrap_or_default();
        let _ = write!(
            rows,
            "<tr class=\"pool {state}\" id=\"pool-{name}\"><td>{name}</td><td>{families}</td><td class=\"state\">{state}</td><td>{up}/{total}{draining}</td><td>{err}</td><td>{lat}</td><td class=\"last-error\">{last}</td><td class=\"history\">{history}</td></tr>",
            name = esc(&p.name),
            state = p.state.as_str(),
            up = p.up,
            total = p.total,
            draining = if p.draining > 0 {
                format!(" <span class=\"draining\">({} draining)</span>", p.draining)
            } else {
                String::new()
            },
            families = families(p),
            // Nothing left to measure: the error rate would read a green 0 %.
            err = if p.up == 0 {
                "-".to_string()
            } else {
                format!("{:.2}%", p.error_rate * 100.0)
            },
            last = if p.up == 0 {
                esc(p.last_error.as_deref().unwrap_or(""))
            } else {
                String::new()
            },
            lat = p
                .latency_ms
                .map(|l| format!("{l:.1} ms"))
                .unwrap_or_else(|| "-".into()),
        );
        for e in &p.endpoints {
            let mut state = if e.draining {
                format!("draining ({:?})", e.health).to_lowercase()
            } else {
                e.state.to_string()
            };
            if let Some(o) = &e.forced {
                let until = o
                    .until_unix_ms
                    .map(|u| format!(", until {}", crate::events::rfc3339(u)))
                    .unwrap_or_default();
                state = format!(
                    "{state} <span class=\"override\">override {}: {}{}</span>",
                    o.state,
                    esc(&o.reason),
                    until
                );
            }
            let _ = write!(
                rows,
                "<tr class=\"endpoint {cls}\"><td></td><td>{addr}</td><td class=\"state\">{state}</td><td>w {w}</td><td>{err:.2}%</td><td>{lat}</td><td class=\"last-error\">{last}</td><td></td></tr>",
                cls = e.state,
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
    let backends = backend_rows(&status.backends);
    let events = st.shared.events.events();
    let mut event_rows = String::new();
    for e in &events {
        event_row(&mut event_rows, e);
    }
    if events.is_empty() {
        event_rows.push_str("<tr><td colspan=\"5\">no state changes since start-up</td></tr>");
    }
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><noscript><meta http-equiv=\"refresh\" content=\"5\"></noscript>\
<script>{REFRESH}</script><title>geosteer</title><style>body{{font:14px system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}\
td,th{{padding:.25em .8em;text-align:left;border-bottom:1px solid #ddd}}.pool td{{font-weight:600}}\
.healthy td:nth-child(3),.up td:nth-child(3),td.ok{{color:#080}}.degraded td:nth-child(3),td.degraded,td.drained{{color:#b60}}.down td:nth-child(3),td.down,td.failed,td.fail_open,.err{{color:#c00}}\
td.healthy,td.up,td.recovered,td.undrained,span.healthy{{color:#080}}span.degraded{{color:#b60}}span.down{{color:#c00}}.draining td:nth-child(3),span.draining{{color:#06c}}svg{{vertical-align:middle;margin-right:.6em}}.history small{{color:#666;margin-right:.8em}}h2{{font-size:1.1em;margin-top:1.6em}}</style></head>\
<body><h1>geosteer</h1><p>config {path} (generation {generation}) · refreshes every 5 s · <a href=\"/api/v1/status\">JSON</a> · <a href=\"/metrics\">metrics</a></p>{reload_error}\
<table><tr><th>pool</th><th>endpoint</th><th>state</th><th>up / weight</th><th>errors</th><th>latency</th><th>last error</th><th>errors · latency over the window</th></tr>{rows}</table>{backends}\
<h2>Last {count} state changes (newest first; <a href=\"/api/v1/events\">JSON</a>)</h2>\
<table id=\"events\"><tr><th>time (UTC)</th><th>what</th><th>subject</th><th>state</th><th>reason</th></tr>{event_rows}</table></body></html>",
        count = crate::events::CAPACITY,
        REFRESH = REFRESH,
        path = esc(&status.config.path),
        generation = status.config.generation,
    ))
}

/// The proxy backends' servers (state by active checks, passive ejection
/// and draining; the check's last error while it takes one out), as a table
/// after the pools; empty without backends.
fn backend_rows(backends: &serde_json::Value) -> String {
    let Some(list) = backends.as_array().filter(|l| !l.is_empty()) else {
        return String::new();
    };
    let mut rows = String::new();
    for b in list {
        let name = b["name"].as_str().unwrap_or("");
        for sv in b["servers"].as_array().into_iter().flatten() {
            let state = sv["state"].as_str().unwrap_or("");
            let _ = write!(
                rows,
                "<tr class=\"server {cls}\"><td>{name}</td><td>{addr}</td><td class=\"state\">{cls}</td><td>{in_flight}</td><td>{requests}</td><td>{errors}</td><td class=\"last-error\">{check}</td></tr>",
                name = esc(name),
                cls = esc(state),
                addr = match sv["config_weight"].as_u64() {
                    // A runtime weight, as `geosteer status` shows it.
                    Some(c) => format!(
                        "{} w {} (config {c})",
                        esc(sv["address"].as_str().unwrap_or("")),
                        sv["weight"].as_u64().unwrap_or(0)
                    ),
                    None => esc(sv["address"].as_str().unwrap_or("")),
                },
                in_flight = sv["in_flight"].as_u64().unwrap_or(0),
                requests = sv["requests"].as_u64().unwrap_or(0),
                errors = sv["errors"].as_u64().unwrap_or(0),
                check = esc(sv["check_error"].as_str().unwrap_or("")),
            );
        }
    }
    format!(
        "<h2>Proxy backends</h2><table id=\"backends\"><tr><th>backend</th><th>server</th><th>state</th><th>in flight</th><th>requests</th><th>errors</th><th>check error</th></tr>{rows}</table>"
    )
}

/// One row of the event table.
fn event_row(out: &mut String, e: &Event) {
    let kind = serde_json::to_value(e.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut subject: Vec<&str> = [&e.backend, &e.pool, &e.endpoint]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    subject.extend(e.names.iter().map(|n| n.trim_end_matches('.')));
    let state = match &e.from {
        Some(from) => format!("{} <small>(was {})</small>", esc(&e.state), esc(from)),
        None => esc(&e.state),
    };
    let _ = write!(
        out,
        "<tr class=\"event ev-{kind}\"><td>{time}</td><td>{kind}</td><td>{subject}</td><td class=\"{cls}\">{state}</td><td>{reason}</td></tr>",
        time = clock(e.at_unix_ms),
        subject = esc(&subject.join(" ")),
        cls = esc(&e.state),
        reason = esc(&e.reason),
    );
}

/// "2026-12-02 06:30:12.345"
fn clock(unix_ms: u64) -> String {
    let t = SystemTime::UNIX_EPOCH + Duration::from_millis(unix_ms);
    humantime::format_rfc3339_millis(t)
        .to_string()
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string()
}

/// Two inline SVG sparklines: error rate and latency, with the monitor's
/// threshold as a dashed line when it fits the scale; a third, of the
/// utilisation with `spill_at` dashed, for a pool with a capacity.
fn sparklines(s: &Series) -> String {
    let utilisation = match s.spill_at {
        Some(spill_at) => {
            let util: Vec<Option<f64>> = s.samples.iter().map(|x| x.utilisation).collect();
            let last = s.samples.last().and_then(|x| x.utilisation);
            format!(
                "{}<small class=\"util\">util {}</small>",
                spark(&util, Some(spill_at), 1.0, "#870", "utilisation"),
                last.map_or("-".into(), |u| format!("{:.0}%", u * 100.0)),
            )
        }
        None => String::new(),
    };
    let errors: Vec<Option<f64>> = s.samples.iter().map(|x| Some(x.error_rate)).collect();
    let latency: Vec<Option<f64>> = s.samples.iter().map(|x| x.latency_ms).collect();
    let last_err = s.samples.last().map(|x| x.error_rate);
    let last_lat = s.samples.last().and_then(|x| x.latency_ms);
    format!(
        "{}<small>err {}</small>{}<small>lat {}</small>{utilisation}<small>{} s</small>",
        spark(&errors, s.max_error_rate, 0.01, "#c00", "error rate"),
        last_err.map_or("-".into(), |e| format!("{:.1}%", e * 100.0)),
        spark(&latency, s.max_latency_ms, 1.0, "#06c", "latency"),
        last_lat.map_or("-".into(), |l| format!("{l:.0} ms")),
        s.window_ms / 1000,
    )
}

/// A 120×24 polyline of `values` (gaps where None) from 0 to the larger of
/// their maximum and `floor`.
fn spark(
    values: &[Option<f64>],
    threshold: Option<f64>,
    floor: f64,
    color: &str,
    what: &str,
) -> String {
    const W: f64 = 120.0;
    const H: f64 = 24.0;
    let max = values.iter().flatten().fold(floor, |m, v| m.max(*v));
    let step = if values.len() > 1 {
        W / (values.len() - 1) as f64
    } else {
        0.0
    };
    let y = |v: f64| H - 1.0 - (v / max).clamp(0.0, 1.0) * (H - 2.0);
    let mut lines = String::new();
    let mut points = String::new();
    let flush = |points: &mut String, lines: &mut String| {
        if !points.is_empty() {
            let _ = write!(
                lines,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>",
                points.trim_end()
            );
            points.clear();
        }
    };
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => {
                let _ = write!(points, "{:.1},{:.1} ", i as f64 * step, y(*v));
            }
            None => flush(&mut points, &mut lines),
        }
    }
    flush(&mut points, &mut lines);
    if let Some(t) = threshold.filter(|t| *t <= max) {
        let _ = write!(
            lines,
            "<line x1=\"0\" x2=\"{W}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#999\" stroke-dasharray=\"3 2\"/>",
            y = y(t)
        );
    }
    format!(
        "<svg class=\"spark\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{what} over the window\"><rect width=\"{W}\" height=\"{H}\" fill=\"#f6f6f6\"/>{lines}</svg>"
    )
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

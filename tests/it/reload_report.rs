//! What an on-call engineer sees of reloads: a failed one in `geosteer
//! status` and in `/metrics` (the Prometheus reload family, promtool-clean),
//! the warnings and the restart-only changes in the reload's reply; and the
//! log of `serve` as a file or journald gets it: no colour codes, one line
//! per problem, notes at INFO once at start-up.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::harness::geosteer::{TestServer, server_header};
use crate::harness::http::{get, post};
use crate::metrics::promtool_check;

const POOLS: &str = "
[monitors.web]
type = \"tcp\"
interval = \"5s\"
timeout = \"1s\"
fall = 3
[pools.eu]
monitor = \"web\"
endpoints = [{ address = \"192.0.2.1\", probe = \"127.0.0.1:9\" }]
[pools.spare]
endpoints = [{ address = \"192.0.2.5\", probe = \"127.0.0.1:9\" }]
[[balance]]
name = \"www.example.test\"
policy = \"failover\"
pools = [\"eu\"]
";

/// Three problems, each on its own line of the config.
const BROKEN: &str = "
[pools.us]
endpoints = [{ address = \"192.0.2.9\", weight = 0 }]
[[balance]]
name = \"www.example.org\"
policy = \"closest\"
pools = [\"us\"]
";

fn metric(m: &str, name: &str) -> f64 {
    m.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in:\n{m}"))
}

async fn status_cli(admin: String) -> String {
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_geosteer"))
            .args(["status", "--admin", &admin])
            .env_remove("GEOSTEER_ADMIN")
            .output()
            .expect("run geosteer status")
    })
    .await
    .expect("join");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn a_failed_reload_shows_in_status_and_metrics_and_restart_only_changes_are_pending() {
    let good = format!("{}{POOLS}", server_header(""));
    let s = TestServer::start(&good, &[]).await;
    let admin = s.running.admin_addr.to_string();
    let metrics = || async { get(&format!("http://{admin}/metrics")).await.1 };
    let m = metrics().await;
    assert_eq!(metric(&m, "geosteer_config_last_reload_successful"), 1.0);
    assert_eq!(metric(&m, "geosteer_config_generation"), 1.0);
    let started = metric(&m, "geosteer_config_last_reload_success_timestamp_seconds");
    let now = geosteer::wallclock::unix_ms() as f64 / 1000.0;
    assert!(
        started <= now && started > now - 120.0,
        "{started} vs {now}"
    );
    let version = env!("GEOSTEER_VERSION");
    let pkg = env!("CARGO_PKG_VERSION");
    let commit = version
        .split_once(" (")
        .map_or("unknown", |(_, c)| c.trim_end_matches(')'));
    assert!(
        m.contains(&format!(
            "geosteer_build_info{{version=\"{pkg}\",commit=\"{commit}\"}} 1\n"
        )),
        "{m}"
    );

    // A reload with three problems: the reply lists them, status shows
    // them, the metrics say so, and generation 1 still serves.
    std::fs::write(s.config_path(), format!("{good}{BROKEN}")).expect("write");
    let (code, body) = post(&format!("http://{admin}/api/v1/reload"), None).await;
    assert_eq!(code, 422, "{body}");
    let reply: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(reply["errors"].as_array().map(Vec::len), Some(3), "{reply}");
    let m = metrics().await;
    assert_eq!(metric(&m, "geosteer_config_last_reload_successful"), 0.0);
    assert_eq!(metric(&m, "geosteer_config_generation"), 1.0);
    assert_eq!(
        metric(&m, "geosteer_config_last_reload_success_timestamp_seconds"),
        started
    );
    let (_, status) =
        crate::harness::http::get_json(&format!("http://{admin}/api/v1/status")).await;
    assert_eq!(
        status["config"]["last_reload_successful"], false,
        "{status}"
    );
    let text = status_cli(admin.clone()).await;
    assert!(
        text.contains("LAST RELOAD FAILED") && text.contains("still serving generation 1"),
        "{text}"
    );
    for needle in [
        "pools.us.endpoints[0].weight",
        "balance[1].name",
        "balance[1].policy",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("    ") && l.contains(needle)),
            "{needle} in:\n{text}"
        );
    }

    // A good reload that moves restart-only settings: applied otherwise,
    // and the reply, status and metrics say what waits for a restart.
    let moved = good.replace("udp_workers = 1", "udp_workers = 2").replace(
        "dns_listen = [\"127.0.0.1:0\"]",
        "dns_listen = [\"127.0.0.2:0\"]",
    );
    assert_ne!(moved, good);
    std::fs::write(s.config_path(), &moved).expect("write");
    let (code, body) = post(&format!("http://{admin}/api/v1/reload"), None).await;
    assert_eq!(code, 200, "{body}");
    let reply: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(reply["reloaded"], true);
    assert_eq!(reply["version"], 2);
    assert_eq!(
        reply["pending_restart"],
        serde_json::json!(["server.dns_listen", "server.udp_workers"]),
        "{reply}"
    );
    let warnings: Vec<&str> = reply["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(|w| w.as_str())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("note: monitors.web:") && w.contains("= 16s")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("warning: pools.spare.endpoints[0].probe")),
        "{warnings:?}"
    );
    let m = metrics().await;
    assert_eq!(metric(&m, "geosteer_config_last_reload_successful"), 1.0);
    assert_eq!(metric(&m, "geosteer_config_generation"), 2.0);
    assert_eq!(metric(&m, "geosteer_config_pending_restart"), 2.0);
    assert!(metric(&m, "geosteer_config_last_reload_success_timestamp_seconds") >= started);
    let text = status_cli(admin.clone()).await;
    assert!(!text.contains("FAILED"), "{text}");
    assert!(
        text.contains("PENDING RESTART: server.dns_listen, server.udp_workers changed"),
        "{text}"
    );
    // Still answering where it started.
    assert_eq!(s.running.dns_addrs[0].ip().to_string(), "127.0.0.1");
    let (ok, said) = promtool_check(&m);
    assert!(ok && said.is_empty(), "promtool:\n{said}\n{m}");
    s.stop().await;
}

/// `serve` as systemd or a shell redirection runs it: standard error is a
/// pipe. Not one escape byte; a reload with three problems is four lines
/// (the summary and one per problem), each with its time and level; the
/// failover-bound note is INFO, once, at start-up.
#[test]
fn the_log_of_serve_has_no_colour_and_one_line_per_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port();
    let good = format!("{}{POOLS}", server_header(""))
        .replace("127.0.0.1:0\"]", &format!("127.0.0.1:{port}\"]"));
    let path = dir.path().join("geosteer.toml");
    std::fs::write(&path, &good).expect("write");
    std::fs::write(
        dir.path().join("example.test.zone"),
        crate::harness::geosteer::ZONE,
    )
    .expect("zone");
    let mut child = Command::new(env!("CARGO_BIN_EXE_geosteer"))
        .args(["serve", "--config"])
        .arg(&path)
        .env_remove("NO_COLOR")
        .env_remove("GEOSTEER_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn geosteer serve");
    let (tx, rx) = mpsc::channel::<String>();
    let stderr = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut r = BufReader::new(stderr);
        let mut line = Vec::new();
        while r
            .read_until(b'\n', &mut line)
            .map(|n| n > 0)
            .unwrap_or(false)
        {
            all.extend_from_slice(&line);
            let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
            line.clear();
        }
        all
    });
    let mut seen: Vec<String> = Vec::new();
    let wait_for = |needle: &str, seen: &mut Vec<String>| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) => {
                    let hit = l.contains(needle);
                    seen.push(l);
                    if hit {
                        return;
                    }
                }
                Err(_) => panic!("no {needle:?} in the log:\n{}", seen.concat()),
            }
        }
    };
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig}");
    };
    wait_for("admin API listening", &mut seen);
    std::fs::write(&path, format!("{good}{BROKEN}")).expect("write");
    signal("-HUP");
    wait_for("balance[1].policy", &mut seen);
    std::fs::write(&path, &good).expect("write");
    signal("-HUP");
    wait_for("reloaded", &mut seen);
    signal("-TERM");
    let deadline = Instant::now() + Duration::from_secs(15);
    while child.try_wait().ok().flatten().is_none() {
        assert!(Instant::now() < deadline, "serve did not exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    let bytes = reader.join().expect("reader");
    let log = String::from_utf8_lossy(&bytes);
    assert!(
        !bytes.contains(&0x1b),
        "escape bytes in a piped log:\n{log:?}"
    );
    // Every line carries its time and level.
    for line in log.lines() {
        let mut words = line.split_whitespace();
        let (time, level) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        assert!(
            time.len() >= 20 && time.starts_with("20") && time.ends_with('Z'),
            "no time in {line:?} of:\n{log}"
        );
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level),
            "no level in {line:?}"
        );
    }
    let failed: Vec<&str> = log
        .lines()
        .skip_while(|l| !l.contains("reload failed"))
        .take(4)
        .collect();
    assert!(failed[0].contains("problems=3"), "{failed:?}");
    for (line, key) in failed[1..].iter().zip([
        "pools.us.endpoints[0].weight",
        "balance[1].name",
        "balance[1].policy",
    ]) {
        assert!(
            line.contains(" ERROR ") && line.contains(key),
            "{key} in {line:?}"
        );
    }
    // The failover bound: a note at INFO, at start-up only; the real
    // warning at WARN on every load.
    let notes: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("note: monitors.web:"))
        .collect();
    assert_eq!(notes.len(), 1, "{log}");
    assert!(notes[0].contains(" INFO "), "{}", notes[0]);
    let warnings = log
        .lines()
        .filter(|l| l.contains(" WARN ") && l.contains("pools.spare.endpoints[0].probe"))
        .count();
    assert_eq!(warnings, 2, "{log}");
}
